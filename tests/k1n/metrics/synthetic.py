"""Synthetic nightly runs: reports with known per-task seconds and seeded noise."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis import RunData, RunInfo, analyze_run
from k1n.metrics import WALL_TIME
from k1n.reporting.extension import K1NExtension
from k1n.workflow.spec import load_spec

DAG_ID = "k1n_22task_optimized"
TIME_SCALE = 1 / 60
FIRST_NIGHT = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
QUALITY_GATES = "check_quality_gates"
CODEGEN_SHARE = 0.45


def base_seconds() -> dict[str, float]:
    """What every task of the optimized DAG takes at time scale 1/60, plus a 0.3 s task whose
    jitter must never alarm, and the wall time."""
    spec = load_spec()
    seconds = {task.airflow_task_id: task.seconds * TIME_SCALE for task in spec.tasks}
    # The optimized DAG's Task 8 (mapped, cached): 45 % of the profile's seconds at 1/60.
    seconds["task_08_code_generation"] *= CODEGEN_SHARE
    seconds[QUALITY_GATES] = 0.3
    seconds[WALL_TIME] = spec.critical_path_seconds * TIME_SCALE + 4.0
    return seconds


def noisy_night(
    rng: np.random.Generator,
    base: dict[str, float],
    relative_sd: float = 0.03,
    jitter_sd: float = 0.08,
) -> dict[str, float]:
    """One night's seconds: proportional noise plus scheduler jitter (which only delays)."""
    values = np.array(list(base.values()))
    noisy = values * (1 + rng.normal(0, relative_sd, values.size))
    noisy += np.abs(rng.normal(0, jitter_sd, values.size))
    return dict(zip(base, noisy.round(3).tolist(), strict=True))


def report(
    seconds: dict[str, float],
    night: int = 0,
    *,
    dag_id: str = DAG_ID,
    state: str = "success",
    pass_rate: float | None = 0.97,
    time_scale: float = TIME_SCALE,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The JSON form of a real `RunReport` (what the nightly DAG passes as an XCom) of a run
    in which every task started at the run's start and took those seconds.

    The report comes from the analysis itself, so its targets are judged as for a real run.
    """
    start = FIRST_NIGHT + timedelta(days=night)
    run_id = run_id or f"scheduled__{start.isoformat()}"
    rows = [
        {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task,
            "map_index": -1,
            "try_number": 1,
            "state": "success",
            "start": start,
            "end": start + timedelta(seconds=value),
        }
        for task, value in seconds.items()
        if task != WALL_TIME
    ]
    info = RunInfo(
        dag_id=dag_id,
        run_id=run_id,
        state=state,
        start=pd.Timestamp(start),
        end=pd.Timestamp(start + timedelta(seconds=seconds[WALL_TIME])),
        time_scale=time_scale,
        pass_rate=pass_rate,
    )
    data = RunData(info, pd.DataFrame(rows))
    return analyze_run(data, K1NExtension(_spec()), detail=True).as_dict()


@cache
def _spec():
    return load_spec()


def noisy_reports(
    seed: int,
    nights: int,
    slower: Mapping[int, Mapping[str, float]] | None = None,
    **report_options: Any,
) -> list[dict[str, Any]]:
    """`nights` reports of noise around `base_seconds()`, oldest first.

    `slower` maps a night to factors on the *true* seconds of some tasks (or `WALL_TIME`)
    before that night's noise: `{14: {"task_13_...": 1.25}}` is a real 25 % slowdown, measured
    as noisily as every other night.
    """
    rng = np.random.default_rng(seed)
    base = base_seconds()
    reports = []
    for night in range(nights):
        factors = (slower or {}).get(night, {})
        true_seconds = {task: value * factors.get(task, 1.0) for task, value in base.items()}
        reports.append(report(noisy_night(rng, true_seconds), night, **report_options))
    return reports


def with_seconds(source: dict[str, Any], **changes: float) -> dict[str, Any]:
    """A copy of a report with some tasks' (or `wall_seconds`') seconds replaced."""
    seconds = {task["task"]: task["seconds"] for task in source["tasks"]}
    seconds[WALL_TIME] = source["wall_seconds"]
    seconds.update(changes)
    night = (datetime.fromisoformat(source["start"]) - FIRST_NIGHT).days
    copied = report(
        seconds,
        night,
        dag_id=source["dag_id"],
        state=source["state"],
        pass_rate=source["targets"][-1]["actual"],
        time_scale=source["time_scale"],
        run_id=source["run_id"],
    )
    return json.loads(json.dumps(copied))


def scaled(source: dict[str, Any], task: str, factor: float) -> dict[str, Any]:
    """A copy of a report with one task's (or the wall time's) seconds times `factor`."""
    value = (
        source["wall_seconds"]
        if task == WALL_TIME
        else next(t["seconds"] for t in source["tasks"] if t["task"] == task)
    )
    return with_seconds(copy.deepcopy(source), **{task: value * factor})


def _spec_id(task: str) -> int | None:
    return int(task[5:7]) if task.startswith("task_") else None
