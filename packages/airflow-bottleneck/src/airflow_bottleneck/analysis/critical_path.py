"""The critical path in the DAG's own graph, and the wall time split along it.

A task's duration here is its span: its first instance's start to its last instance's end (a
mapped task's indexes together), the time its downstream tasks waited for it. The critical
path is the longest chain of those durations through the graph (CPM, `graph.cpm_schedule`);
its slack tells every other task how close it came.

Along the path, each step's time since the previous step ended splits into waiting on a
branch off the path, hand-off (ready -> started: scheduler, queue, executor), start-up
(started -> the task's own code started, when the DAG's tasks record it) and work; with the run's
start before the first step and its end after the last, the parts add up to the wall time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from airflow_bottleneck.analysis.graph import Schedule, TaskGraph, cpm_schedule
from airflow_bottleneck.analysis.model import CriticalPath, OverheadSplit, PathStep


@dataclass(frozen=True)
class PathAnalysis:
    schedule: Schedule
    path: CriticalPath
    parts: dict[str, float]  # work, startup, handoff, waiting, residual


def analyze_path(
    graph: TaskGraph,
    spans: pd.DataFrame,
    labels: dict[str, str],
    statuses: dict[str, str],
    run_start: float,
    run_end: float,
) -> PathAnalysis:
    """CPM over `graph` with the measured `spans` (index: task id; columns start, code_start,
    end, epoch seconds; NaN for a task that did not run), and the path's steps (each with its
    task's status from `statuses`, so a skipped step says so)."""
    measured = spans.dropna(subset=["start", "end"])
    durations = (measured["end"] - measured["start"]).clip(lower=0).to_dict()
    schedule = cpm_schedule(graph.digraph, durations)
    steps: list[PathStep] = []
    previous_end = run_start
    parts = {"work": 0.0, "startup": 0.0, "handoff": 0.0, "waiting": 0.0}
    for task in schedule.path:
        if task not in measured.index:
            continue  # did not run (skipped): it took no time
        start, end = float(measured.at[task, "start"]), float(measured.at[task, "end"])
        code = measured.at[task, "code_start"]
        code = start if pd.isna(code) else min(max(float(code), start), end)
        ends = [
            float(measured.at[up, "end"])
            for up in graph.digraph.predecessors(task)
            if up in measured.index
        ]
        ready = min(max([previous_end, *ends]), start) if start >= previous_end else start
        step = PathStep(
            task=task,
            label=labels.get(task, task),
            status=statuses.get(task, "ran"),  # type: ignore[arg-type]
            ready_offset=round(ready - run_start, 3),
            start_offset=round(start - run_start, 3),
            code_start_offset=round(code - run_start, 3),
            end_offset=round(end - run_start, 3),
            waiting_seconds=round(max(0.0, ready - previous_end), 3),
            handoff_seconds=round(max(0.0, start - ready), 3),
            startup_seconds=round(code - start, 3),
            work_seconds=round(end - code, 3),
        )
        parts["waiting"] += max(0.0, ready - previous_end)
        parts["handoff"] += max(0.0, start - ready)
        parts["startup"] += code - start
        parts["work"] += end - code
        steps.append(step)
        previous_end = max(previous_end, end)
    tail = max(0.0, run_end - previous_end)
    parts["handoff"] += tail
    wall = run_end - run_start
    parts["residual"] = wall - sum(parts.values())
    span = parts["work"] + parts["startup"] + parts["handoff"]
    path = CriticalPath(
        seconds=round(schedule.length, 3),
        span_seconds=round(span, 3),
        share_of_wall=round(span / wall, 6) if wall > 0 else 0.0,
        tasks=[step.task for step in steps],
        steps=steps,
        tail_seconds=round(tail, 3),
    )
    return PathAnalysis(schedule, path, parts)


def overhead_split(
    analysis: PathAnalysis,
    *,
    wall: float,
    idle: float,
    queue_wait: float,
    retry_seconds: float,
    per_hop: tuple[float, int],
) -> OverheadSplit:
    parts = analysis.parts
    return OverheadSplit(
        wall_seconds=round(wall, 3),
        work_seconds=round(parts["work"], 3),
        startup_seconds=round(parts["startup"], 3),
        handoff_seconds=round(parts["handoff"], 3),
        waiting_seconds=round(parts["waiting"], 3),
        residual_seconds=round(parts["residual"], 3),
        orchestration_seconds=round(parts["startup"] + parts["handoff"] + parts["waiting"], 3),
        idle_seconds=round(idle, 3),
        queue_wait_seconds=round(queue_wait, 3),
        retry_seconds=round(retry_seconds, 3),
        per_hop_seconds=round(per_hop[0], 3),
        hops=per_hop[1],
    )


def near_critical_margin(schedule: Schedule, share: float) -> float:
    """The slack below which a task counts as near-critical: `share` of the path's length."""
    return round(schedule.length * share, 3) if math.isfinite(schedule.length) else 0.0
