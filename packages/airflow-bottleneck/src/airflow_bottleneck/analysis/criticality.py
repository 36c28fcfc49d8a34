"""Criticality across runs: which tasks decide a DAG's wall time, run after run.

For each of a DAG's last runs, the critical path method runs on that run's measured spans
in the DAG's graph (as the one-run report does). A task is critical in a run when its slack
there is zero (every task of every longest chain, ties included); over the runs this gives

- `criticality`: the share of runs in which it was critical;
- `decided_seconds`: its mean span per run along the one critical path the report names
  (so the tasks' decided seconds never add up to more than the wall time), and that as a share
  of the mean wall: the ranking, most deciding first;
- its duration's five numbers (for a box plot), p90 and median slack.

A task that sits on the path in a third of the runs and decides 20 % of the wall matters more
to the wall than the longest task that always has slack.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.forecast import epoch_seconds, run_spans
from airflow_bottleneck.analysis.graph import TaskGraph, cpm_schedule
from airflow_bottleneck.analysis.model import (
    BoxStats,
    Criticality,
    HistoryRun,
    TaskCriticality,
)
from airflow_bottleneck.analysis.table import normalize_instances


def criticality(
    instances: pd.DataFrame,
    runs: pd.DataFrame,
    graph: TaskGraph,
    *,
    dag_id: str,
    labels: Mapping[str, str] | None = None,
) -> Criticality:
    """Criticality of every task over `runs` (columns run_id, start, end; oldest first) from
    their task instances."""
    labels = labels or {}
    table = normalize_instances(instances)
    spans = run_spans(table) if len(table) else pd.DataFrame()
    starts = epoch_seconds(runs["start"]).to_numpy() if len(runs) else np.array([])
    ends = epoch_seconds(runs["end"]).to_numpy() if len(runs) else np.array([])
    walls = ends - starts
    history_runs = [
        HistoryRun(
            run_id=str(run_id),
            start=None if pd.isna(start) else pd.Timestamp(start).isoformat(),
            wall_seconds=None if np.isnan(wall) else round(float(wall), 3),
        )
        for run_id, start, wall in zip(runs["run_id"], runs["start"], walls, strict=True)
    ]
    per_task: dict[str, dict[str, list[float]]] = {}
    analysed = 0
    for run_id in runs["run_id"].astype(str):
        if spans.empty or run_id not in spans.index.get_level_values("run_id"):
            continue
        durations = spans.loc[run_id, "span"].to_dict()
        durations = {str(task): float(seconds) for task, seconds in durations.items()}
        schedule = cpm_schedule(graph.with_tasks(durations).digraph, durations)
        named_path = set(schedule.path)
        analysed += 1
        for task, seconds in durations.items():
            record = per_task.setdefault(
                task, {"seconds": [], "slack": [], "critical": [], "decided": []}
            )
            slack = schedule.slack(task)
            record["seconds"].append(seconds)
            record["slack"].append(slack)
            record["critical"].append(1.0 if slack == 0.0 else 0.0)
            record["decided"].append(seconds if task in named_path else 0.0)
    mean_wall = float(np.nanmean(walls)) if len(walls) and not np.isnan(walls).all() else 0.0
    tasks = [
        _task(task, labels.get(task, task), record, analysed, mean_wall)
        for task, record in per_task.items()
    ]
    tasks.sort(key=lambda t: (-t.decided_seconds, -t.criticality, t.task))
    notes = []
    if analysed < len(runs):
        notes.append(f"{len(runs) - analysed} run(s) had no finished task: left out")
    return Criticality(
        dag_id=dag_id,
        runs=history_runs,
        mean_wall_seconds=round(mean_wall, 3),
        tasks=tasks,
        notes=notes,
    )


def _task(
    task: str, label: str, record: dict[str, list[float]], analysed: int, mean_wall: float
) -> TaskCriticality:
    seconds = np.array(record["seconds"])
    decided = float(np.sum(record["decided"])) / analysed if analysed else 0.0
    q = np.quantile(seconds, [0.0, 0.25, 0.5, 0.75, 1.0, 0.9])
    return TaskCriticality(
        task=task,
        label=label,
        runs=len(seconds),
        critical_runs=int(np.sum(record["critical"])),
        criticality=round(float(np.sum(record["critical"])) / analysed, 4) if analysed else 0.0,
        decided_seconds=round(decided, 3),
        decided_share=round(decided / mean_wall, 4) if mean_wall > 0 else 0.0,
        median_slack_seconds=round(float(np.median(record["slack"])), 3),
        durations=BoxStats(
            minimum=round(float(q[0]), 3),
            q1=round(float(q[1]), 3),
            median=round(float(q[2]), 3),
            q3=round(float(q[3]), 3),
            maximum=round(float(q[4]), 3),
            p90=round(float(q[5]), 3),
        ),
    )
