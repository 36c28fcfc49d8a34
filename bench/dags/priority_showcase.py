"""
### Priority showcase (benchmark only)

A small fan-out/fan-in DAG that `bench/bench_priority.py --write-showcase` drew at random
(`priority_showcase.json` beside this file): the one where the simulation predicts the largest
gain of the plugin's shipped priority rule over Airflow's `downstream` rule under two slots.
One DAG per rule, differing only in `weight_rule`; each task sleeps its profiled seconds.
"""

import json
import time
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_bottleneck.priority import (
    CRITICAL_PATH_PRIORITY,
    SIMULATED_SCHEDULE_PRIORITY,
    remaining_path_weights,
    simulated_schedule_weights,
)
from k1n.dag_builders.defaults import START_DATE, TAGS, default_args

SHOWCASE = json.loads(Path(__file__).with_name("priority_showcase.json").read_text())
DOWNSTREAM = {name: entry["downstream"] for name, entry in SHOWCASE["tasks"].items()}
SECONDS = {name: entry["sleep_seconds"] for name, entry in SHOWCASE["tasks"].items()}
# Until a run of the variant succeeded, the measured rules weigh what the profile gives.
PROFILE_WEIGHTS = {
    "downstream": ("downstream", dict.fromkeys(DOWNSTREAM, 1)),
    "critical_path": (CRITICAL_PATH_PRIORITY, remaining_path_weights(DOWNSTREAM, SECONDS)),
    "simulated": (
        SIMULATED_SCHEDULE_PRIORITY,
        simulated_schedule_weights(DOWNSTREAM, SECONDS, SHOWCASE["slots"]),
    ),
}


@task
def sleep_profiled(seconds: float) -> None:
    """Sleep the task's profiled seconds."""
    time.sleep(seconds)


for rule in SHOWCASE["variants"]:
    weight_rule, weights = PROFILE_WEIGHTS[rule]
    with DAG(
        dag_id=f"bench_priority_showcase_{rule}",
        doc_md=__doc__,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=SHOWCASE["slots"],
        tags=[*TAGS, "benchmark"],
        default_args=default_args(),
    ) as dag:
        tasks = {
            name: sleep_profiled.override(
                task_id=name, weight_rule=weight_rule, priority_weight=weights[name]
            )(seconds)
            for name, seconds in SECONDS.items()
        }
        for name, children in DOWNSTREAM.items():
            for child in children:
                tasks[name] >> tasks[child]
    globals()[dag.dag_id] = dag
