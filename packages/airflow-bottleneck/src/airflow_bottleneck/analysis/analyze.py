"""One run's bottleneck report, from its task-instance table and its DAG's graph.

`analyze_run(RunData, extension)` -> `RunReport` (`model.py`). What each figure means is in
`airflow_bottleneck/analysis/README.md`; in short:

- tasks: every Airflow task id's final tries: seconds, share, queue wait, start-up (the task's
  start -> its own code's start, when the DAG's tasks record it), work, tries, status;
- the critical path in the DAG's own graph (`critical_path.py`), with each task's slack and
  the near-critical ones, and the wall time split along it into work, start-up, hand-offs
  and waiting, parts that add up to the wall time;
- for a DAG a registered `ReportExtension` describes, what the extension adds: names, a
  declared-dependency what-if, targets on the production scale (`airflow_bottleneck.extension`).

A run that has not finished is analysed as far as it got and marked `partial`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.critical_path import (
    analyze_path,
    near_critical_margin,
    overhead_split,
)
from airflow_bottleneck.analysis.errors import AnalysisInputError
from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.analysis.model import (
    History,
    InstanceColumns,
    Production,
    ProductionStep,
    RunReport,
    TaskTiming,
)
from airflow_bottleneck.analysis.production import (
    ProductionReplay,
    ProductionTask,
    replay_production,
)
from airflow_bottleneck.analysis.table import covered_seconds, normalize_instances, select_run
from airflow_bottleneck.analysis.timing import (
    mapped_rollups,
    offset,
    offsets,
    optional_strings,
    per_hop,
    status_of,
    status_reason,
    task_figures,
)
from airflow_bottleneck.extension import EnrichmentInput, ReportExtension

# A task within this share of the critical path's length from being critical is near-critical.
NEAR_CRITICAL_SHARE = 0.05
FINISHED_STATES = frozenset({"success", "failed"})
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class RunInfo:
    """What is known about a run besides its task instances.

    `start`/`end`: the run's own bounds (None: derived from the task instances).
    `time_scale`: the run's `time_scale` conf (None: unknown, taken as 1 with a note).
    `pass_rate`: the quality-gate pass rate when known (0..1). `observed_at`: when the data was
    read (epoch seconds): the end of a run that has not finished.
    """

    dag_id: str = ""
    run_id: str = ""
    state: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    time_scale: float | None = None
    pass_rate: float | None = None
    source: str = ""
    label: str = ""
    notes: tuple[str, ...] = ()
    observed_at: float | None = None


@dataclass(frozen=True)
class RunData:
    """What a loader returns: the run's info, its task-instance table and its DAG's graph."""

    info: RunInfo
    instances: pd.DataFrame
    graph: TaskGraph | None = None
    history: History | None = field(default=None, compare=False)

    def analyze(
        self,
        extension: ReportExtension | None = None,
        *,
        time_scale: float | None = None,
        detail: bool = False,
    ) -> RunReport:
        return analyze_run(self, extension, time_scale=time_scale, detail=detail)


def analyze_run(
    data: RunData,
    extension: ReportExtension | None = None,
    *,
    time_scale: float | None = None,
    detail: bool = False,
) -> RunReport:
    """The report of one run; `extension` adds what a project knows about its DAG,
    `time_scale` overrides the recorded one, `detail` adds every try and every map index.
    Raises `AnalysisInputError` when nothing ran yet."""
    info = data.info
    table = normalize_instances(
        data.instances, None if extension is None else extension.task_number
    )
    if table[["dag_id", "run_id"]].drop_duplicates().shape[0] > 1:
        table = select_run(table, info.dag_id or None, info.run_id or None)
    if len(table):
        info = replace(
            info,
            dag_id=info.dag_id or str(table["dag_id"].iloc[0] or ""),
            run_id=info.run_id or str(table["run_id"].iloc[0] or ""),
        )
    table = table.reset_index(drop=True)
    notes = list(info.notes)
    scale = _time_scale(time_scale, info.time_scale, notes)
    final = table[table["final"].to_numpy()]
    ran = final[(final["t_start"].notna() & final["t_end"].notna()).to_numpy()]
    if ran.empty:
        raise AnalysisInputError(
            f"run {info.dag_id}/{info.run_id}: no task instance has both a start and an end yet"
        )
    partial = info.state not in FINISHED_STATES and info.state is not None
    run_start, run_end = _run_bounds(table, info, partial, notes)
    wall = run_end - run_start

    figures = task_figures(table).frame
    numbers = {str(t): None if pd.isna(n) else int(n) for t, n in figures["spec_id"].items()}
    labels = _labels(numbers, extension, data.graph)
    graph = _graph(data.graph, numbers, extension, notes)
    spans = figures[["start", "code_start", "end"]]
    statuses = {str(task_id): status_of(row) for task_id, row in figures.iterrows()}
    analysis = analyze_path(graph, spans, labels, statuses, run_start, run_end)
    schedule = analysis.schedule
    margin = near_critical_margin(schedule, NEAR_CRITICAL_SHARE)
    starts, ends = ran["t_start"].to_numpy(), ran["t_end"].to_numpy()
    busy = float(covered_seconds(starts, ends)[0])
    hop = per_hop(ran)
    total = float(final["seconds"].sum())
    critical = set(analysis.path.tasks)

    stand_ins = {
        task_id
        for task_id, number in numbers.items()
        if extension is None or extension.stand_in(task_id, number)
    }
    production = replay_production(graph, spans, stand_ins, scale, run_start, run_end)

    tasks = []
    for task_id, row in figures.sort_values(["seconds"], ascending=False, kind="stable").iterrows():
        slack = schedule.slack(task_id) if task_id in schedule.durations else None
        status = statuses[task_id]
        node = graph.nodes.get(task_id)
        state = None if pd.isna(row["state"]) else str(row["state"])  # None: not scheduled yet
        startup = float(row["startup"]) if row["startup_known"] else None
        tasks.append(
            TaskTiming(
                task=task_id,
                label=labels.get(task_id, task_id),
                spec_id=None if pd.isna(row["spec_id"]) else int(row["spec_id"]),
                group=node.group if node is not None else None,
                status=status,  # type: ignore[arg-type]
                reason=status_reason(
                    status, state, bool(row["mapped"]) or (node is not None and node.mapped)
                ),
                state=state,
                instances=int(row["instances"]),
                mapped=bool(row["mapped"]),
                tries=int(row["tries"]),
                seconds=round(float(row["seconds"]), 3),
                share=round(float(row["seconds"]) / total, 6) if total else 0.0,
                queue_wait_seconds=round(float(row["queue_wait"]), 3),
                startup_seconds=None if startup is None else round(startup, 3),
                work_seconds=round(float(row["seconds"]) - (startup or 0.0), 3),
                retry_seconds=round(float(row["retry_seconds"]), 3),
                start_offset=offset(row["start"], run_start),
                end_offset=offset(row["end"], run_start),
                critical=task_id in critical,
                slack_seconds=None if slack is None or status != "ran" else round(slack, 3),
                near_critical=(
                    task_id not in critical
                    and status == "ran"
                    and slack is not None
                    and slack <= margin
                ),
                **_production_figures(production.tasks.get(task_id), row, startup, scale),
            )
        )
    _note_missing_startup(figures, notes)
    what_if, targets = None, []
    if extension is not None:
        added = extension.enrich(
            EnrichmentInput(
                ran=ran,
                numbers=numbers,
                wall_seconds=wall,
                run_start=run_start,
                per_hop=hop[0],
                head=max(0.0, float(np.min(starts)) - run_start),
                tail=max(0.0, run_end - float(np.max(ends))),
                time_scale=scale,
                pass_rate=info.pass_rate,
                production_wall_seconds=production.wall_seconds,
                production_ran=_moved_to(ran, production, run_start),
            )
        )
        what_if, targets = added.what_if, list(added.targets)
        notes.extend(added.notes)
    if partial:
        notes.insert(0, f"the run is {info.state}: a partial report, figures may still change")
    return RunReport(
        source=info.source,
        label=info.label,
        dag_id=info.dag_id,
        run_id=info.run_id,
        state=info.state,
        partial=partial,
        start=_timestamp(run_start).isoformat(),
        end=_timestamp(run_end).isoformat(),
        time_scale=scale,
        graph_source=graph.source,  # type: ignore[arg-type]
        wall_seconds=round(wall, 3),
        total_task_seconds=round(total, 3),
        production=Production(
            wall_seconds=round(production.wall_seconds, 3),
            wall_minutes=round(production.wall_seconds / 60, 4),
            total_task_seconds=round(
                sum(t.production_seconds or 0.0 for t in tasks if t.status != "not run"), 3
            ),
            stand_in_tasks=sorted(t for t in stand_ins if t in production.tasks),
            critical_path=[
                ProductionStep(
                    task=task_id,
                    label=labels.get(task_id, task_id),
                    handoff_seconds=round(production.tasks[task_id].handoff, 3),
                    startup_seconds=round(production.tasks[task_id].startup, 3),
                    work_seconds=round(production.tasks[task_id].work, 3),
                    stand_in=production.tasks[task_id].stand_in,
                )
                for task_id in production.path
            ],
            tail_seconds=round(production.tail_seconds, 3),
        ),
        task_count=len(tasks),
        instance_count=len(final),
        tasks=tasks,
        mapped=mapped_rollups(table, run_start, detail=detail),
        critical_path=analysis.path,
        near_critical_margin_seconds=margin,
        overhead=overhead_split(
            analysis,
            wall=wall,
            idle=max(0.0, wall - busy),
            queue_wait=float(figures["queue_wait"].sum()),
            retry_seconds=float(figures["retry_seconds"].sum()),
            per_hop=hop,
        ),
        what_if=what_if,
        targets=targets,
        history=data.history,
        notes=notes,
        instances=_instance_columns(table, run_start) if detail else None,
    )


def _production_figures(
    replayed: ProductionTask | None, row: pd.Series, startup: float | None, scale: float
) -> dict[str, Any]:
    """A task's production seconds (its final tries: start-ups as measured, a stand-in's work
    ÷ scale) and where the production replay puts it."""
    if replayed is None:
        return {}
    work = float(row["seconds"]) - (startup or 0.0)
    seconds = (startup or 0.0) + (work / scale if replayed.stand_in else work)
    return {
        "stand_in": replayed.stand_in,
        "production_seconds": round(seconds, 3),
        "production_start_offset": round(replayed.start, 3),
        "production_end_offset": round(replayed.end, 3),
    }


def _moved_to(ran: pd.DataFrame, production: ProductionReplay, run_start: float) -> pd.DataFrame:
    """`ran` with each task's instances moved to where the production replay puts the task
    (every instance of a task by the same shift of its start, stretched like its span)."""
    moved = ran.copy()
    task_ids = moved["task_id"].astype("object")
    first = moved.groupby(task_ids, observed=True)["t_start"].transform("min")
    last = moved.groupby(task_ids, observed=True)["t_end"].transform("max")
    replay_start = task_ids.map({t: p.start for t, p in production.tasks.items()})
    replay_end = task_ids.map({t: p.end for t, p in production.tasks.items()})
    stretch = ((replay_end - replay_start) / (last - first)).where(last > first, 1.0)
    for column in ("t_start", "t_end"):
        moved[column] = run_start + replay_start + (moved[column] - first) * stretch
    return moved


def _time_scale(override: float | None, recorded: float | None, notes: list[str]) -> float:
    scale = override if override is not None else recorded
    if scale is None:
        notes.append("time scale unknown: taken as 1 (seconds are production seconds)")
        return 1.0
    if not math.isfinite(scale) or scale <= 0:
        raise AnalysisInputError(f"time scale must be a positive number, got {scale}")
    return float(scale)


def _run_bounds(
    table: pd.DataFrame, info: RunInfo, partial: bool, notes: list[str]
) -> tuple[float, float]:
    """Run start/end as epoch seconds: the run's own when known, else from the instances;
    for a run still going, the end is when it was observed."""
    first_seen = float(np.nanmin(table[["t_queued", "t_start"]].to_numpy(dtype="float64")))
    last_end = float(np.nanmax(table["t_end"].to_numpy(dtype="float64")))
    start = _epoch(info.start) if info.start is not None else first_seen
    if info.end is not None:
        end = _epoch(info.end)
    elif partial:
        end = max(last_end, info.observed_at or time.time())
    else:
        end = last_end
    if info.start is None or (info.end is None and not partial):
        notes.append("run start/end not recorded: first queued/start -> last end of the tasks")
    if start > first_seen or end < last_end:
        # Clocks of the run and of its tasks disagree; never let a task lie outside its run.
        notes.append("run bounds widened to enclose every task instance")
        start, end = min(start, first_seen), max(end, last_end)
    return start, end


def _labels(
    numbers: Mapping[str, int | None], extension: ReportExtension | None, graph: TaskGraph | None
) -> dict[str, str]:
    """What to call each task: the DAG's display name or the task id, unless the extension
    names it."""
    labels = {}
    for task_id, number in numbers.items():
        node = graph.nodes.get(task_id) if graph is not None else None
        label = node.label if node is not None and node.label else task_id
        labels[task_id] = label if extension is None else extension.label(task_id, number, label)
    return labels


def _graph(
    graph: TaskGraph | None,
    numbers: Mapping[str, int | None],
    extension: ReportExtension | None,
    notes: list[str],
) -> TaskGraph:
    task_ids = list(numbers)
    if graph is None:
        if extension is not None:
            graph = extension.declared_graph(numbers)
        if graph is None:
            graph = TaskGraph.unknown(task_ids)
        notes.append(f"dependency graph: {graph.description}")
    unknown = [t for t in task_ids if t not in graph.nodes]
    if unknown:
        notes.append("tasks not in the DAG's graph (no dependencies known): " + ", ".join(unknown))
    return graph.with_tasks(task_ids)


def _note_missing_startup(figures: pd.DataFrame, notes: list[str]) -> None:
    ran = figures[figures["start"].notna() & figures["end"].notna()]
    unknown = int((~ran["startup_known"].astype(bool)).sum())
    if unknown == len(ran) and len(ran):
        notes.append("start-up not recorded by this DAG's tasks: each task's time counts as work")
    elif unknown:
        notes.append(f"start-up not recorded by {unknown} task(s): their time counts as work")


def _instance_columns(table: pd.DataFrame, run_start: float) -> InstanceColumns:
    """Every try of every task instance (the detail view), column by column."""
    columns: dict[str, list] = {
        "task": table["task_id"].astype("object").to_numpy().tolist(),
        "map_index": table["map_index"].to_numpy().tolist(),
        "try_number": table["try_number"].to_numpy().tolist(),
        "final": table["final"].to_numpy().tolist(),
        "state": optional_strings(table["state"]),
        "seconds": table["seconds"].to_numpy().round(3).tolist(),
    }
    for name, column in (
        ("queued_offset", "t_queued"),
        ("start_offset", "t_start"),
        ("code_start_offset", "t_code_start"),
        ("end_offset", "t_end"),
    ):
        columns[name] = offsets(table[column], run_start)
    # model_construct: the values are built and typed above; validating a million rows again
    # would cost seconds.
    return InstanceColumns.model_construct(**columns)


def _epoch(value: pd.Timestamp | str) -> float:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return (stamp - _EPOCH) / pd.Timedelta(seconds=1)


def _timestamp(epoch_seconds: float) -> pd.Timestamp:
    return _EPOCH + pd.Timedelta(microseconds=round(epoch_seconds * 1e6))
