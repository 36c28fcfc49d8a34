"""Benchmark: the look-ahead reports against what really happened, on a real local Airflow
(embedded PostgreSQL, api-server, scheduler with LocalExecutor and the plugin's deadline
watch, dag-processor, triggerer: what `make demo` starts).

1. Runs, one after another: `--history` runs of the optimized K1N DAG at 1/60 and of the
   fan-out test DAG (a DAG no extension describes); then the deadline is set from them (the
   median wall x `DEADLINE_MARGIN`, `[bottlenecks] deadlines`, the scheduler restarted);
   then `--runs` unperturbed runs and `--runs` runs with one task slowed 3x (`slow_tasks`
   {"6": 3} for the K1N DAG, its longest stand-in on the critical path; `slow`
   {"transform_batch": 3} for the fan-out DAG). Every run's task
   instances and graph are recorded (`docs/bench/look_ahead_runs.json.gz`; `--dags` replaces
   the named DAGs' runs there and keeps the others').
2. ETA accuracy, side by side with the naive estimate (start + the median wall of the same
   history, what run statistics alone give): for each measured run, at 25 %, 50 % and 75 % of
   its wall, the forecast from what the metadata DB held at that moment (`state_at` of the
   recorded task instances; the forecast is a pure function of them) and the DAG's successful
   unperturbed runs before it: |predicted end - actual end| / wall.
3. Predicted deadline miss: live, the scheduler's own alerts (the audit log's
   `bottleneck.deadline_miss_predicted` events): how long before the deadline each fired, as
   a share of the deadline; and that no run finishing in time raised one. The same replayed
   every 0.5 s from the records beside it.

`--replay` recomputes 2. and 3.'s replay from the recorded file without a stack. Figures go to
`docs/bench/latest.json` (section `look_ahead`); nothing here asserts a time.

    PYTHONPATH=. .venv/bin/python bench/bench_look_ahead.py [--history 6] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis.forecast import dag_history, forecast_run, state_at
from airflow_bottleneck.analysis.graph import TaskGraph, TaskNode
from airflow_bottleneck.analysis.table import normalize_instances
from airflow_bottleneck.readers.rest_api import read_run
from bench.bench_workflow import LOCAL_BUNDLE, restart_scheduler
from bench.results import PROJECT_DIR, record, stats
from k1n.workflow.names import OPTIMIZED_DAG_ID
from k1n_local.stack import AirflowStack

log = logging.getLogger("bench_look_ahead")

HOME = PROJECT_DIR / ".airflow" / "bench-look-ahead"
RECORDED = PROJECT_DIR / "docs" / "bench" / "look_ahead_runs.json.gz"
FAN_OUT_DAGS = PROJECT_DIR / "tests" / "fixtures" / "dags"
FAN_OUT_DAG_ID = "fan_out_etl"
SCALE = 1 / 60
FRACTIONS = (0.25, 0.5, 0.75)
SLOW_FACTOR = 3.0
# The deadline: this many times the history's median wall (between an unperturbed run and
# one with a task slowed 3x).
DEADLINE_MARGIN = 1.15
# The scheduler's watch polls as often as the replay steps, so the live and replayed leads
# measure the same forecast (a 5 s DAG's deadline is 6 s: a 1 s poll alone costs ~9 % of it).
REPLAY_STEP_SECONDS = 0.5
WATCH_SECONDS = REPLAY_STEP_SECONDS
HISTORY_RUNS = 20
MEASURED_KINDS = ("in_time", "slowed")

# (DAG id, the conf of an unperturbed run, the conf of a slowed one)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    OPTIMIZED_DAG_ID: ({"time_scale": SCALE}, {"time_scale": SCALE, "slow_tasks": {"6": 3.0}}),
    FAN_OUT_DAG_ID: ({}, {"slow": {"transform_batch": SLOW_FACTOR}}),
}


# -- the live part ----------------------------------------------------------------------------


def look_ahead_stack() -> AirflowStack:
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "fan-out", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(FAN_OUT_DAGS)}},
    ]
    shutil.rmtree(HOME, ignore_errors=True)
    return AirflowStack(
        HOME,
        extra_env={
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__BOTTLENECKS__DEADLINE_WATCH_SECONDS": str(WATCH_SECONDS),
        },
    )


@contextlib.contextmanager
def running(stack: AirflowStack, dag_ids: list[str]) -> Iterator[Any]:
    stack.start()
    try:
        client = stack.client()
        for dag_id in dag_ids:
            client.wait_for_dag(dag_id, timeout=300)
            client.unpause(dag_id)
        yield client
    finally:
        stack.stop()


def run_once(client: Any, dag_id: str, conf: dict[str, Any], kind: str) -> dict[str, Any]:
    run_id = client.trigger(dag_id, conf=conf)
    client.wait_for_run(dag_id, run_id, timeout=1800)
    data = read_run(client, dag_id, run_id, None)
    info = data.info
    wall = (info.end - info.start).total_seconds()
    log.info("%s %s (%s): %s %.1f s", dag_id, run_id, kind, info.state, wall)
    instances = data.instances.copy()
    for column in ("queued", "start", "end"):
        instances[column] = pd.to_datetime(instances[column], utc=True).map(
            lambda value: None if pd.isna(value) else value.isoformat()
        )
    graph = data.graph
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "kind": kind,
        "state": info.state,
        "start": info.start.isoformat(),
        "end": info.end.isoformat(),
        "wall_seconds": wall,
        "instances": instances[
            ["task_id", "map_index", "try_number", "state", "queued", "start", "end", "duration"]
        ]
        .astype(object)
        .where(instances.notna(), None)
        .to_dict("records"),
        "graph": None if graph is None else graph_record(graph),
    }


def graph_record(graph: TaskGraph) -> dict[str, Any]:
    return {
        "nodes": [
            {"task_id": n.task_id, "mapped": n.mapped, "max_active": n.max_active}
            for n in graph.nodes.values()
        ],
        "edges": [list(edge) for edge in graph.edges],
        "max_active_tasks": graph.max_active_tasks,
    }


def graph_of(record_: dict[str, Any]) -> TaskGraph:
    nodes = {
        n["task_id"]: TaskNode(
            n["task_id"], n["task_id"], mapped=n["mapped"], max_active=n["max_active"]
        )
        for n in record_["nodes"]
    }
    edges = tuple(tuple(edge) for edge in record_["edges"])
    return TaskGraph(nodes, edges, "dag", "recorded", record_["max_active_tasks"])  # type: ignore[arg-type]


def live_alerts(client: Any) -> list[dict[str, Any]]:
    """The scheduler's deadline alerts, from the audit log (REST API event logs)."""
    body = client.request(
        "GET",
        "/api/v2/eventLogs",
        params={"event": "bottleneck.deadline_miss_predicted", "limit": 500},
    )
    return [json.loads(entry["extra"]) for entry in body.get("event_logs", [])]


def record_runs(history: int, runs: int, dag_ids: list[str]) -> dict[str, Any]:
    stack = look_ahead_stack()
    recorded: list[dict[str, Any]] = []
    with running(stack, dag_ids) as client:
        time.sleep(15)  # the first parses and heartbeats settle
        for dag_id in dag_ids:
            plain = CASES[dag_id][0]
            recorded += [run_once(client, dag_id, plain, "history") for _ in range(history)]
        deadlines = {
            dag_id: DEADLINE_MARGIN
            * statistics.median(r["wall_seconds"] for r in recorded if r["dag_id"] == dag_id)
            for dag_id in dag_ids
        }
        restart_scheduler(
            stack,
            {
                "AIRFLOW__BOTTLENECKS__DEADLINES": json.dumps(
                    {dag_id: seconds / 60 for dag_id, seconds in deadlines.items()}
                )
            },
        )
        for dag_id in dag_ids:
            plain, slowed = CASES[dag_id]
            # The first run after a scheduler start waits for its warm-up: recorded (the watch
            # judges it too), not measured.
            recorded.append(run_once(client, dag_id, plain, "warm-up"))
            for _ in range(runs):
                recorded.append(run_once(client, dag_id, plain, "in_time"))
                recorded.append(run_once(client, dag_id, slowed, "slowed"))
        time.sleep(2 * WATCH_SECONDS)
        alerts = live_alerts(client)
    document = {"deadlines": deadlines, "runs": recorded, "alerts": alerts}
    if RECORDED.exists():  # keep what an earlier invocation recorded of the other DAGs
        with gzip.open(RECORDED, "rt") as stream:
            earlier = json.load(stream)
        document["deadlines"] = {
            **{d: s for d, s in earlier["deadlines"].items() if d not in dag_ids},
            **deadlines,
        }
        document["runs"] = [r for r in earlier["runs"] if r["dag_id"] not in dag_ids] + recorded
        document["alerts"] = [a for a in earlier["alerts"] if a["dag_id"] not in dag_ids] + alerts
    with gzip.open(RECORDED, "wt") as stream:
        json.dump(document, stream, default=str)
    return document


# -- the evaluation ----------------------------------------------------------------------------


def epoch(iso: str) -> float:
    return pd.Timestamp(iso).timestamp()


def history_for(runs: list[dict[str, Any]], run: dict[str, Any], graph: TaskGraph):
    """The DAG's successful unperturbed runs that ended before `run` started (last 20)."""
    before = [
        r
        for r in runs
        if r["dag_id"] == run["dag_id"]
        and r["kind"] != "slowed"
        and r["state"] == "success"
        and epoch(r["end"]) <= epoch(run["start"])
    ][-HISTORY_RUNS:]
    instances = pd.concat(
        [
            pd.DataFrame(r["instances"]).assign(dag_id=r["dag_id"], run_id=r["run_id"])
            for r in before
        ]
    )
    bounds = pd.DataFrame(
        [{"run_id": r["run_id"], "start": r["start"], "end": r["end"]} for r in before]
    )
    return dag_history(instances, bounds, graph), statistics.median(
        r["wall_seconds"] for r in before
    )


def forecast_at(
    run: dict[str, Any], graph: TaskGraph, history: Any, moment: float, deadline: float | None
):
    table = normalize_instances(
        pd.DataFrame(run["instances"]).assign(dag_id=run["dag_id"], run_id=run["run_id"])
    )
    return forecast_run(
        state_at(table, moment),
        graph,
        history,
        dag_id=run["dag_id"],
        run_id=run["run_id"],
        state="running",
        run_start=epoch(run["start"]),
        now=moment,
        deadline=None if deadline is None else (deadline, "bench"),
    )


def evaluate(document: dict[str, Any]) -> dict[str, Any]:
    runs, deadlines = document["runs"], document["deadlines"]
    figures: dict[str, Any] = {}
    for dag_id in deadlines:
        measured = [r for r in runs if r["dag_id"] == dag_id and r["kind"] in MEASURED_KINDS]
        warm_ups = {
            r["run_id"]: r for r in runs if r["dag_id"] == dag_id and r["kind"] == "warm-up"
        }
        graph = graph_of(next(r["graph"] for r in runs if r["dag_id"] == dag_id and r["graph"]))
        errors: dict[str, dict[str, list[float]]] = {}
        leads, early_alerts = [], []
        for run in measured:
            history, naive_wall = history_for(runs, run, graph)
            start, end, wall = epoch(run["start"]), epoch(run["end"]), run["wall_seconds"]
            for fraction in FRACTIONS:
                forecast = forecast_at(run, graph, history, start + fraction * wall, None)
                key = f"{run['kind']} at {fraction:.0%}"
                bucket = errors.setdefault(key, {"eta": [], "naive": []})
                predicted = start + (forecast.expected_end_offset or 0.0)
                bucket["eta"].append(abs(predicted - end) / wall * 100)
                bucket["naive"].append(abs(start + naive_wall - end) / wall * 100)
            deadline = deadlines[dag_id]
            fired = None
            moment = start + REPLAY_STEP_SECONDS
            while moment < end and fired is None:
                forecast = forecast_at(run, graph, history, moment, deadline)
                if forecast.deadline is not None and forecast.deadline.miss_predicted:
                    fired = moment - start
                moment += REPLAY_STEP_SECONDS
            missed = wall > deadline
            if missed and fired is not None:
                leads.append((deadline - fired) / deadline * 100)
            elif missed:
                leads.append(None)
            elif fired is not None:
                early_alerts.append(run["run_id"])
        live = [a for a in document.get("alerts", []) if a["dag_id"] == dag_id]
        walls = {r["run_id"]: r for r in measured}
        live_leads = []
        live_false = []
        warm_up_alerts = []
        for alert in live:
            run = walls.get(alert["run_id"])
            if run is None:
                if alert["run_id"] in warm_ups:
                    warm_up = warm_ups[alert["run_id"]]
                    warm_up_alerts.append(
                        {
                            "wall_seconds": round(warm_up["wall_seconds"], 3),
                            "missed": warm_up["wall_seconds"] > deadlines[dag_id],
                        }
                    )
                continue
            deadline_at = epoch(alert["deadline"])
            share = (deadline_at - epoch(alert["predicted_at"])) / deadlines[dag_id] * 100
            if run["wall_seconds"] > deadlines[dag_id]:
                live_leads.append(share)
            else:
                live_false.append(alert["run_id"])
        missed_runs = [r for r in measured if r["wall_seconds"] > deadlines[dag_id]]
        in_time = [r for r in measured if r["wall_seconds"] <= deadlines[dag_id]]
        figures[dag_id] = {
            "deadline_seconds": round(deadlines[dag_id], 3),
            "walls": {
                kind: stats(r["wall_seconds"] for r in measured if r["kind"] == kind)
                for kind in ("in_time", "slowed")
            },
            "eta_error_percent_of_wall": {
                key: {
                    "eta_median": round(statistics.median(v["eta"]), 2),
                    "naive_median": round(statistics.median(v["naive"]), 2),
                    "eta": stats(v["eta"]),
                    "naive": stats(v["naive"]),
                }
                for key, v in errors.items()
            },
            "deadline": {
                "watch_seconds": WATCH_SECONDS,
                "replay_step_seconds": REPLAY_STEP_SECONDS,
                "runs_missing": len(missed_runs),
                "runs_in_time": len(in_time),
                "replay_lead_percent_of_deadline": stats(x for x in leads if x is not None),
                "replay_missed_without_alert": sum(x is None for x in leads),
                "replay_alerts_on_runs_in_time": early_alerts,
                "live_alerts": len(live),
                "live_lead_percent_of_deadline": stats(live_leads),
                "live_alerts_on_runs_in_time": live_false,
                # The unmeasured first run after the scheduler's restart, when it was alerted.
                "live_alerts_on_warm_up_runs": warm_up_alerts,
                "live_missed_runs_without_alert": sorted(
                    {r["run_id"] for r in missed_runs} - {a["run_id"] for a in live}
                ),
            },
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replay", action="store_true", help="evaluate the recorded runs only")
    parser.add_argument("--dags", default=",".join(CASES), help="comma-separated DAG ids")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    if args.replay:
        with gzip.open(RECORDED, "rt") as stream:
            document = json.load(stream)
    else:
        document = record_runs(args.history, args.runs, args.dags.split(","))
    figures = evaluate(document)
    figures["recorded_runs"] = len(document["runs"])
    figures["seconds"] = round(time.monotonic() - began, 1)
    record("look_ahead", figures)
    print(json.dumps(figures, indent=1)[:6000])


if __name__ == "__main__":
    main()
