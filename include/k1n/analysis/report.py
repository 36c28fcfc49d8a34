"""One run's bottleneck report, computed from its task-instance table and the workflow spec.

What a report holds (`RunReport.as_dict()` is its JSON form):

- **wall and work**: wall time is the run's own start -> end when known, otherwise the first
  queued/start -> the last end. Total task time is the sum of every task instance's final-try
  seconds (mapped indexes each count). Every Airflow task id gets its seconds and share of that
  total, sorted descending; mapped tasks are rolled up (count, sum, max, skew = max / mean)
  with the per-index detail kept.
- **over 10 %**: the tasks above 10 % of the total, the old analyzer's "critical path" list,
  kept so that its readers find the same list.
- **critical path** (the real one): CPM on the spec's *declared* dependencies with *measured*
  durations. Granularity is the spec task: Task 8's group in the optimized DAG is one node whose
  duration is the span of its stages (first start -> last end), so its internal hand-offs are part
  of Task 8, as a reader of the spec expects. `check_quality_gates`, which reads every task's
  result, is a final node after every spec sink. A baseline run's linear order is *not* taken as
  dependencies, so its critical path is the chain that would decide the wall time with every
  independent task overlapped; for an optimized run that is the chain that did.
- **orchestration overhead**: in total, the wall time not covered by any running task, plus the
  sum of queue waits (start - queued). Along the critical path: each critical task's wait from
  its critical predecessor's end (the run start for the first) to its own start, the run's tail
  after the last critical task, and the hand-offs inside a group node. A wait is split into
  *serialized* time (task instances that ran wholly inside it: the critical task queued behind
  independent work, as in the baseline's linear order) and *hand-off* time (the rest: scheduler
  and executor latency, slots, a declared predecessor that started late). The critical path's
  overhead is the hand-off part; the serialized part is what parallelization recovers. When
  every critical task ran, the path's durations plus its waits add up to the wall time.
- **parallelization opportunities**: pairs of spec tasks with no dependency path between them
  that did not overlap although the later one was ready while the earlier one ran, and a
  what-if wall time: the measured durations scheduled on the declared graph (the CPM length),
  plus the measured median hand-off per hop along that path and the measured run head and
  tail. For a baseline run this predicts the optimized DAG's wall time (with Task 8 as the
  baseline ran it: a scheduling what-if, not a caching one).
- **targets** from the spec, judged on the production scale: seconds / time scale.

Tries: the final try of each task instance counts for every duration; earlier tries are kept in
the detail and summed as `retry_seconds`. A retried task's failed tries and retry delay therefore
fall into the wait before its final try, i.e. into the overhead figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from include.k1n.analysis.errors import AnalysisInputError
from include.k1n.analysis.graph import (
    SLACK_TOLERANCE,
    Schedule,
    cpm_schedule,
    dependency_graph,
    independent_pairs,
)
from include.k1n.analysis.table import (
    covered_seconds,
    covered_within,
    normalize_instances,
    select_run,
)
from include.k1n.workflow.spec import WorkflowSpec

REPORT_SCHEMA = "k1n.analysis.run-report/1"
QUALITY_GATES_TASK_ID = "check_quality_gates"
# Tasks outside the spec that run after every spec task and so end the critical path.
FINAL_TASK_IDS: tuple[str, ...] = (QUALITY_GATES_TASK_ID,)
OVER_SHARE_THRESHOLD = 0.10
TASK8_SPEC_ID = 8
GRANULARITY = "spec-task"

_EPOCH = pd.Timestamp(0, tz="UTC")


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """What is known about a run besides its task instances.

    `start`/`end` are the run's own bounds (None: derived from the task instances).
    `time_scale` is the run's `time_scale` conf (None: unknown, taken as 1 with a note).
    `pass_rate` is the quality-gate pass rate when known (0..1).
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


@dataclass(frozen=True)
class RunData:
    """What a loader returns: the run's info and its raw or normalized task-instance table."""

    info: RunInfo
    instances: pd.DataFrame

    def analyze(self, spec: WorkflowSpec, *, time_scale: float | None = None) -> RunReport:
        return analyze_run(self.instances, spec, self.info, time_scale=time_scale)


# -- report parts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskStat:
    """One Airflow task id: its final tries summed (a mapped task's indexes all count)."""

    task: str
    spec_id: int | None
    name: str | None
    seconds: float
    share: float
    instances: int
    mapped: bool
    tries: int
    retry_seconds: float
    queue_wait_seconds: float
    state: str | None
    start_offset: float | None
    end_offset: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "spec_id": self.spec_id,
            "name": self.name,
            "seconds": _round(self.seconds),
            "share": _round(self.share, 6),
            "instances": self.instances,
            "mapped": self.mapped,
            "tries": self.tries,
            "retry_seconds": _round(self.retry_seconds),
            "queue_wait_seconds": _round(self.queue_wait_seconds),
            "state": self.state,
            "start_offset": _round(self.start_offset),
            "end_offset": _round(self.end_offset),
        }


@dataclass(frozen=True)
class MappedRollup:
    """A mapped task's indexes: count, sum, max, mean, skew (max / mean) and the detail.

    `indexes` has one row per map index (its final try): map_index, try_number, state, seconds,
    start_offset, end_offset.
    """

    task: str
    spec_id: int | None
    count: int
    sum_seconds: float
    max_seconds: float
    mean_seconds: float
    skew: float
    indexes: pd.DataFrame = field(repr=False, compare=False)

    def as_dict(self, detail: bool = True) -> dict[str, Any]:
        result = {
            "task": self.task,
            "spec_id": self.spec_id,
            "count": self.count,
            "sum_seconds": _round(self.sum_seconds),
            "max_seconds": _round(self.max_seconds),
            "mean_seconds": _round(self.mean_seconds),
            "skew": _round(self.skew, 4),
        }
        if detail:
            result["indexes"] = _records(self.indexes)
        return result


@dataclass(frozen=True)
class NodeStat:
    """One spec-level node (a spec task, Task 8's group as one; or a final task) in the CPM."""

    node: str
    spec_id: int | None
    name: str
    measured: bool
    duration: float
    work_seconds: float
    instances: int
    start_offset: float | None
    end_offset: float | None
    ready_offset: float | None
    ready_wait: float | None
    internal_gap: float
    earliest_start: float
    latest_start: float
    slack: float
    critical: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "spec_id": self.spec_id,
            "name": self.name,
            "measured": self.measured,
            "seconds": _round(self.duration),
            "work_seconds": _round(self.work_seconds),
            "instances": self.instances,
            "start_offset": _round(self.start_offset),
            "end_offset": _round(self.end_offset),
            "ready_offset": _round(self.ready_offset),
            "ready_wait_seconds": _round(self.ready_wait),
            "internal_gap_seconds": _round(self.internal_gap),
            "earliest_start": _round(self.earliest_start),
            "latest_start": _round(self.latest_start),
            "slack_seconds": _round(self.slack),
            "critical": self.critical,
        }


@dataclass(frozen=True)
class Wait:
    """A wait along the critical path: `after` ended at `from_offset`, `before` started at
    `to_offset` (seconds from the run start).

    `after` is None for the run's head (run start -> first critical task), `before` is None for
    its tail (last critical task -> run end).
    """

    before: str | None
    after: str | None
    from_offset: float
    to_offset: float
    gap_seconds: float
    serialized_seconds: float
    handoff_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "before": self.before,
            "from_offset": _round(self.from_offset),
            "to_offset": _round(self.to_offset),
            "gap_seconds": _round(self.gap_seconds),
            "serialized_seconds": _round(self.serialized_seconds),
            "handoff_seconds": _round(self.handoff_seconds),
        }


@dataclass(frozen=True)
class CriticalPath:
    """The chain of dependent nodes that determines the wall time, with its waits."""

    seconds: float
    nodes: tuple[str, ...]
    spec_ids: tuple[int | None, ...]
    waits: tuple[Wait, ...]

    @property
    def handoff_seconds(self) -> float:
        return sum(wait.handoff_seconds for wait in self.waits)

    @property
    def serialized_seconds(self) -> float:
        return sum(wait.serialized_seconds for wait in self.waits)


@dataclass(frozen=True)
class Overhead:
    """Wall time that was not task work, in total and along the critical path."""

    busy_seconds: float
    idle_seconds: float
    queue_wait_seconds: float
    retry_seconds: float
    run_start_gap_seconds: float
    run_end_gap_seconds: float
    critical_path_seconds: float
    critical_path_handoff_seconds: float
    critical_path_internal_seconds: float
    critical_path_serialized_seconds: float
    per_hop_seconds: float
    hops_measured: int

    def as_dict(self, wall_seconds: float) -> dict[str, Any]:
        return {
            "idle_seconds": _round(self.idle_seconds),
            "idle_share_of_wall": _round(_ratio(self.idle_seconds, wall_seconds), 6),
            "busy_seconds": _round(self.busy_seconds),
            "queue_wait_seconds": _round(self.queue_wait_seconds),
            "retry_seconds": _round(self.retry_seconds),
            "run_start_gap_seconds": _round(self.run_start_gap_seconds),
            "run_end_gap_seconds": _round(self.run_end_gap_seconds),
            "critical_path_seconds": _round(self.critical_path_seconds),
            "critical_path_share_of_wall": _round(
                _ratio(self.critical_path_seconds, wall_seconds), 6
            ),
            "critical_path_handoff_seconds": _round(self.critical_path_handoff_seconds),
            "critical_path_internal_seconds": _round(self.critical_path_internal_seconds),
            "critical_path_serialized_seconds": _round(self.critical_path_serialized_seconds),
            "per_hop_seconds": _round(self.per_hop_seconds),
            "hops_measured": self.hops_measured,
        }


@dataclass(frozen=True)
class ParallelPair:
    """Two spec tasks with no dependency path between them that ran one after the other
    although `then` was ready (every declared predecessor done) while `first` still ran.

    `saving_max_seconds` bounds what overlapping them could save: the time `then` waited
    while ready and `first` ran, and never more than the shorter of the two.
    """

    first: str
    then: str
    first_seconds: float
    then_seconds: float
    saving_max_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "then": self.then,
            "first_seconds": _round(self.first_seconds),
            "then_seconds": _round(self.then_seconds),
            "saving_max_seconds": _round(self.saving_max_seconds),
        }


@dataclass(frozen=True)
class Opportunities:
    """What running every independent task in parallel would give, from this run's numbers."""

    what_if_seconds: float
    what_if_with_overhead_seconds: float
    hops: int
    path: tuple[str, ...]
    pairs: tuple[ParallelPair, ...]

    def saving_seconds(self, wall_seconds: float) -> float:
        return max(0.0, wall_seconds - self.what_if_with_overhead_seconds)

    def as_dict(self, wall_seconds: float) -> dict[str, Any]:
        return {
            "what_if_seconds": _round(self.what_if_seconds),
            "what_if_with_overhead_seconds": _round(self.what_if_with_overhead_seconds),
            "hops": self.hops,
            "path": list(self.path),
            "saving_seconds": _round(self.saving_seconds(wall_seconds)),
            "speedup": _round(_ratio(wall_seconds, self.what_if_with_overhead_seconds), 4),
            "pairs": [pair.as_dict() for pair in self.pairs],
        }


@dataclass(frozen=True)
class TargetCheck:
    """One spec target judged on the production scale; `met` is None when not measurable."""

    key: str
    description: str
    operator: str
    limit: float
    actual: float | None
    unit: str

    @property
    def met(self) -> bool | None:
        if self.actual is None:
            return None
        compare = {"<=": float.__le__, "<": float.__lt__, ">=": float.__ge__}[self.operator]
        return bool(compare(float(self.actual), float(self.limit)))

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "unknown"}[self.met]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "description": self.description,
            "operator": self.operator,
            "limit": self.limit,
            "actual": _round(self.actual, 4),
            "unit": self.unit,
            "met": self.met,
        }


@dataclass(frozen=True)
class RunReport:
    """Everything the analysis says about one run; `as_dict()` is its JSON form."""

    info: RunInfo
    time_scale: float
    start: pd.Timestamp
    end: pd.Timestamp
    wall_seconds: float
    total_task_seconds: float
    tasks: tuple[TaskStat, ...]
    mapped: tuple[MappedRollup, ...]
    nodes: tuple[NodeStat, ...]
    critical_path: CriticalPath
    overhead: Overhead
    opportunities: Opportunities
    targets: tuple[TargetCheck, ...]
    notes: tuple[str, ...]
    instances: pd.DataFrame = field(repr=False, compare=False)

    @property
    def over_10_percent(self) -> tuple[TaskStat, ...]:
        return tuple(task for task in self.tasks if task.share > OVER_SHARE_THRESHOLD)

    def node(self, name: str) -> NodeStat:
        return next(node for node in self.nodes if node.node == name)

    def node_for_spec(self, spec_id: int) -> NodeStat | None:
        return next((node for node in self.nodes if node.spec_id == spec_id), None)

    def production_seconds(self, seconds: float) -> float:
        """Seconds of this run on the production scale."""
        return seconds / self.time_scale

    def as_dict(self, detail: bool = True) -> dict[str, Any]:
        """The JSON report; `detail=False` leaves out per-index and per-try rows."""
        result: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "source": self.info.source,
            "label": self.info.label,
            "dag_id": self.info.dag_id,
            "run_id": self.info.run_id,
            "state": self.info.state,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "time_scale": self.time_scale,
            "granularity": GRANULARITY,
            "wall_seconds": _round(self.wall_seconds),
            "total_task_seconds": _round(self.total_task_seconds),
            "production": {
                "wall_seconds": _round(self.production_seconds(self.wall_seconds)),
                "wall_minutes": _round(self.production_seconds(self.wall_seconds) / 60, 4),
                "total_task_seconds": _round(self.production_seconds(self.total_task_seconds)),
            },
            "task_count": len(self.tasks),
            "instance_count": int(self.instances["final"].sum()),
            "tasks": [task.as_dict() for task in self.tasks],
            "over_10_percent": [
                {
                    "task": t.task,
                    "spec_id": t.spec_id,
                    "seconds": _round(t.seconds),
                    "share": _round(t.share, 6),
                }
                for t in self.over_10_percent
            ],
            "mapped": [rollup.as_dict(detail) for rollup in self.mapped],
            "nodes": [node.as_dict() for node in self.nodes],
            "critical_path": {
                "seconds": _round(self.critical_path.seconds),
                "tasks": list(self.critical_path.nodes),
                "spec_ids": list(self.critical_path.spec_ids),
                "waits": [wait.as_dict() for wait in self.critical_path.waits],
            },
            "overhead_seconds": _round(self.overhead.idle_seconds),
            "overhead": self.overhead.as_dict(self.wall_seconds),
            "opportunities": self.opportunities.as_dict(self.wall_seconds),
            "targets": [target.as_dict() for target in self.targets],
            "notes": list(self.notes),
        }
        if detail:
            result["instances"] = _records(_instance_detail(self.instances, self.start))
        return result


# -- analysis -----------------------------------------------------------------------------------


def analyze_run(
    instances: pd.DataFrame,
    spec: WorkflowSpec,
    info: RunInfo | None = None,
    *,
    time_scale: float | None = None,
) -> RunReport:
    """The report of one run.

    `instances` is a raw or normalized task-instance table (see `table.py`); when it holds
    several runs, `info.dag_id`/`info.run_id` pick one. `time_scale` overrides `info.time_scale`.
    Raises `AnalysisInputError` when the table is unusable or no task instance finished.
    """
    info = info or RunInfo()
    table = normalize_instances(instances)
    several = table[["dag_id", "run_id"]].drop_duplicates().shape[0] > 1
    if several:
        table = select_run(table, info.dag_id or None, info.run_id or None)
    if not info.dag_id and len(table):
        info = replace(info, dag_id=str(table["dag_id"].iloc[0] or ""))
    if not info.run_id and len(table):
        info = replace(info, run_id=str(table["run_id"].iloc[0] or ""))
    table = table.reset_index(drop=True)

    notes = list(info.notes)
    scale = _time_scale(time_scale, info.time_scale, notes)
    final = table[table["final"].to_numpy()]
    ran_mask = (final["t_start"].notna() & final["t_end"].notna()).to_numpy()
    ran = final[ran_mask]
    if ran.empty:
        raise AnalysisInputError(
            f"run {info.dag_id}/{info.run_id}: no task instance has both a start and an end"
        )
    unfinished = int((final["t_start"].notna() & final["t_end"].isna()).sum())
    if unfinished:
        notes.append(f"{unfinished} task instance(s) started but have no end yet; left out")

    run_start, run_end = _run_bounds(table, info, notes)
    wall = run_end - run_start
    total = float(final["seconds"].sum())
    starts, ends = ran["t_start"].to_numpy(), ran["t_end"].to_numpy()
    busy = float(covered_seconds(starts, ends)[0])

    tasks = _task_stats(table, final, spec, total, run_start)
    mapped = _mapped_rollups(final, run_start)

    graph_finals = [t for t in FINAL_TASK_IDS if (table["task_id"] == t).any()]
    graph = dependency_graph(spec, graph_finals)
    measured = _node_measurements(ran, spec, graph_finals, notes)
    durations = measured["duration"].to_dict()
    schedule = cpm_schedule(graph, durations)

    nodes = _node_stats(graph, schedule, measured, run_start)
    critical = _critical_path(graph, schedule, measured, starts, ends, run_start, run_end)

    per_hop, hops_measured = _per_hop(ran)
    first_start, last_end = float(np.min(starts)), float(np.max(ends))
    internal = sum(node.internal_gap for node in nodes if node.critical and node.measured)
    queue_waits = (final["t_start"] - final["t_queued"]).clip(lower=0).sum(skipna=True)
    overhead = Overhead(
        busy_seconds=busy,
        idle_seconds=max(0.0, wall - busy),
        queue_wait_seconds=float(queue_waits),
        retry_seconds=float(table.loc[~table["final"].to_numpy(), "seconds"].sum()),
        run_start_gap_seconds=max(0.0, first_start - run_start),
        run_end_gap_seconds=max(0.0, run_end - last_end),
        critical_path_seconds=critical.handoff_seconds + internal,
        critical_path_handoff_seconds=critical.handoff_seconds,
        critical_path_internal_seconds=internal,
        critical_path_serialized_seconds=critical.serialized_seconds,
        per_hop_seconds=per_hop,
        hops_measured=hops_measured,
    )
    opportunities = _opportunities(graph, schedule, measured, overhead, run_start)
    task8 = next((node for node in nodes if node.spec_id == TASK8_SPEC_ID), None)
    targets = build_targets(
        spec,
        wall_seconds=wall,
        task8_seconds=task8.duration if task8 is not None and task8.measured else None,
        time_scale=scale,
        pass_rate=info.pass_rate,
    )
    return RunReport(
        info=info,
        time_scale=scale,
        start=_timestamp(run_start),
        end=_timestamp(run_end),
        wall_seconds=wall,
        total_task_seconds=total,
        tasks=tasks,
        mapped=mapped,
        nodes=nodes,
        critical_path=critical,
        overhead=overhead,
        opportunities=opportunities,
        targets=targets,
        notes=tuple(notes),
        instances=table,
    )


def build_targets(
    spec: WorkflowSpec,
    *,
    wall_seconds: float,
    task8_seconds: float | None,
    time_scale: float,
    pass_rate: float | None,
) -> tuple[TargetCheck, ...]:
    """The spec's targets for one run, times scaled back to production (seconds / time scale)."""
    targets = spec.targets
    wall_minutes = wall_seconds / time_scale / 60
    task8_minutes = None if task8_seconds is None else task8_seconds / time_scale / 60
    return (
        TargetCheck(
            "workflow_minutes_max",
            f"whole workflow <= {targets.workflow_minutes_max:g} min",
            "<=",
            targets.workflow_minutes_max,
            wall_minutes,
            "min",
        ),
        TargetCheck(
            "workflow_minutes_goal",
            f"whole workflow goal <= {targets.workflow_minutes_goal:g} min",
            "<=",
            targets.workflow_minutes_goal,
            wall_minutes,
            "min",
        ),
        TargetCheck(
            "task8_minutes_max",
            f"Task 8 < {targets.task8_minutes_max:g} min",
            "<",
            targets.task8_minutes_max,
            task8_minutes,
            "min",
        ),
        TargetCheck(
            "quality_gate_pass_rate_min",
            f"quality gates >= {targets.quality_gate_pass_rate_min:.0%}",
            ">=",
            targets.quality_gate_pass_rate_min,
            pass_rate,
            "ratio",
        ),
    )


# -- helpers ------------------------------------------------------------------------------------


def _time_scale(override: float | None, recorded: float | None, notes: list[str]) -> float:
    scale = override if override is not None else recorded
    if scale is None:
        notes.append("time scale unknown: taken as 1 (seconds are production seconds)")
        return 1.0
    if not math.isfinite(scale) or scale <= 0:
        raise AnalysisInputError(f"time scale must be a positive number, got {scale}")
    return float(scale)


def _run_bounds(table: pd.DataFrame, info: RunInfo, notes: list[str]) -> tuple[float, float]:
    """Run start/end as epoch seconds: the run's own when known, else from the instances."""
    first_seen = float(np.nanmin(table[["t_queued", "t_start"]].to_numpy(dtype="float64")))
    last_end = float(np.nanmax(table["t_end"].to_numpy(dtype="float64")))
    start = _epoch(info.start) if info.start is not None else first_seen
    end = _epoch(info.end) if info.end is not None else last_end
    if info.start is None or info.end is None:
        notes.append("run start/end not recorded: first queued/start -> last end of the tasks")
    if start > first_seen or end < last_end:
        # Clocks of the run and of its tasks disagree; never let a task lie outside its run.
        notes.append("run bounds widened to enclose every task instance")
        start, end = min(start, first_seen), max(end, last_end)
    return start, end


def _task_stats(
    table: pd.DataFrame,
    final: pd.DataFrame,
    spec: WorkflowSpec,
    total: float,
    run_start: float,
) -> tuple[TaskStat, ...]:
    grouped = final.groupby("task_id", observed=True, sort=False)
    stats = grouped.agg(
        seconds=("seconds", "sum"),
        instances=("seconds", "size"),
        max_map_index=("map_index", "max"),
        spec_id=("spec_id", "first"),
        first_start=("t_start", "min"),
        last_end=("t_end", "max"),
        states=("state", "nunique"),
        state=("state", "first"),
    )
    stats["queue_wait"] = (
        (final["t_start"] - final["t_queued"])
        .clip(lower=0)
        .groupby(final["task_id"], observed=True)
    ).sum()
    everything = table.groupby("task_id", observed=True, sort=False)
    stats["tries"] = everything["try_number"].max()
    retried = table[~table["final"].to_numpy()]
    stats["retry_seconds"] = retried.groupby("task_id", observed=True)["seconds"].sum()
    stats = stats.fillna({"retry_seconds": 0.0, "queue_wait": 0.0})
    stats = stats.reset_index().sort_values(
        ["seconds", "task_id"], ascending=[False, True], kind="stable"
    )
    result = []
    for row in stats.itertuples(index=False):
        spec_id = None if pd.isna(row.spec_id) else int(row.spec_id)
        spec_task = spec.by_id.get(spec_id) if spec_id is not None else None
        result.append(
            TaskStat(
                task=str(row.task_id),
                spec_id=spec_id,
                name=spec_task.name if spec_task else None,
                seconds=float(row.seconds),
                share=_ratio(float(row.seconds), total),
                instances=int(row.instances),
                mapped=bool(row.max_map_index >= 0),
                tries=int(row.tries),
                retry_seconds=float(row.retry_seconds),
                queue_wait_seconds=float(row.queue_wait),
                state=(None if pd.isna(row.state) else str(row.state))
                if row.states <= 1
                else "mixed",
                start_offset=_offset(row.first_start, run_start),
                end_offset=_offset(row.last_end, run_start),
            )
        )
    return tuple(result)


def _mapped_rollups(final: pd.DataFrame, run_start: float) -> tuple[MappedRollup, ...]:
    mapped = final[final["map_index"].to_numpy() >= 0]
    if mapped.empty:
        return ()
    stats = mapped.groupby("task_id", observed=True).agg(
        count=("seconds", "size"),
        total=("seconds", "sum"),
        longest=("seconds", "max"),
        mean=("seconds", "mean"),
        spec_id=("spec_id", "first"),
    )
    detail = pd.DataFrame(
        {
            "task_id": mapped["task_id"].to_numpy(),
            "map_index": mapped["map_index"].to_numpy(),
            "try_number": mapped["try_number"].to_numpy(),
            "state": mapped["state"].astype("object").to_numpy(),
            "seconds": mapped["seconds"].to_numpy(),
            "start_offset": (mapped["t_start"] - run_start).to_numpy(),
            "end_offset": (mapped["t_end"] - run_start).to_numpy(),
        }
    ).sort_values(["task_id", "map_index"], kind="stable")
    by_task = dict(tuple(detail.groupby("task_id", observed=True, sort=False)))
    result = []
    for row in stats.sort_values("total", ascending=False).itertuples():
        indexes = by_task[row.Index].drop(columns="task_id").reset_index(drop=True)
        result.append(
            MappedRollup(
                task=str(row.Index),
                spec_id=None if pd.isna(row.spec_id) else int(row.spec_id),
                count=int(row.count),
                sum_seconds=float(row.total),
                max_seconds=float(row.longest),
                mean_seconds=float(row.mean),
                skew=_ratio(float(row.longest), float(row.mean)) if row.mean > 0 else 1.0,
                indexes=indexes,
            )
        )
    return tuple(result)


def _node_measurements(
    ran: pd.DataFrame, spec: WorkflowSpec, finals: list[str], notes: list[str]
) -> pd.DataFrame:
    """Per spec-level node: instances, work, first start, last end, CPM duration, internal gap."""
    node_of_spec = {task.id: task.airflow_task_id for task in spec.tasks}
    node = ran["spec_id"].map(node_of_spec).astype("object")
    is_final = ran["task_id"].isin(finals).to_numpy()
    node = node.where(node.notna().to_numpy() | ~is_final, ran["task_id"].astype("object"))
    outside = ran.loc[node.isna().to_numpy(), "task_id"].astype("str").unique()
    if len(outside):
        notes.append(
            "not in the spec's dependency graph (counted in totals only): "
            + ", ".join(sorted(outside))
        )
    keep = node.notna().to_numpy()
    rows = ran[keep]
    codes, names = pd.factorize(node[keep], sort=False)
    starts, ends = rows["t_start"].to_numpy(), rows["t_end"].to_numpy()
    frame = pd.DataFrame(
        {
            "instances": np.bincount(codes, minlength=len(names)),
            "work": np.bincount(codes, weights=rows["seconds"].to_numpy(), minlength=len(names)),
            "start": pd.Series(starts).groupby(codes).min().to_numpy(),
            "end": pd.Series(ends).groupby(codes).max().to_numpy(),
            "covered": covered_seconds(starts, ends, codes.astype("int64")),
        },
        index=pd.Index(names.astype("object"), name="node"),
    )
    span = frame["end"] - frame["start"]
    # One instance: its recorded duration. A group (Task 8's stages, mapped indexes): its span,
    # first start -> last end, which is what the rest of the workflow waited for.
    frame["duration"] = np.where(frame["instances"] == 1, frame["work"], span)
    frame["internal_gap"] = np.where(frame["instances"] == 1, 0.0, (span - frame["covered"]))
    frame["internal_gap"] = frame["internal_gap"].clip(lower=0)
    missing = [
        task.airflow_task_id for task in spec.tasks if task.airflow_task_id not in frame.index
    ]
    if missing:
        notes.append(
            f"{len(missing)} spec task(s) never finished in this run: " + ", ".join(missing)
        )
    return frame


def _ready(graph: nx.DiGraph, node: str, measured: pd.DataFrame, run_start: float) -> float:
    """When `node` could start: its last measured declared predecessor's end, else run start."""
    ends = [measured.at[p, "end"] for p in graph.predecessors(node) if p in measured.index]
    return max(ends) if ends else run_start


def _node_stats(
    graph: nx.DiGraph, schedule: Schedule, measured: pd.DataFrame, run_start: float
) -> tuple[NodeStat, ...]:
    result = []
    for node in graph.nodes:
        known = node in measured.index
        ready = _ready(graph, node, measured, run_start) if known else None
        start = measured.at[node, "start"] if known else None
        result.append(
            NodeStat(
                node=node,
                spec_id=graph.nodes[node]["spec_id"],
                name=graph.nodes[node]["name"],
                measured=known,
                duration=schedule.durations[node],
                work_seconds=float(measured.at[node, "work"]) if known else 0.0,
                instances=int(measured.at[node, "instances"]) if known else 0,
                start_offset=_offset(start, run_start),
                end_offset=_offset(measured.at[node, "end"] if known else None, run_start),
                ready_offset=_offset(ready, run_start),
                ready_wait=max(0.0, start - ready) if known else None,
                internal_gap=float(measured.at[node, "internal_gap"]) if known else 0.0,
                earliest_start=schedule.earliest_start[node],
                latest_start=schedule.latest_start[node],
                slack=schedule.slack(node),
                critical=schedule.is_critical(node),
            )
        )
    return tuple(result)


def _critical_path(
    graph: nx.DiGraph,
    schedule: Schedule,
    measured: pd.DataFrame,
    starts: np.ndarray,
    ends: np.ndarray,
    run_start: float,
    run_end: float,
) -> CriticalPath:
    """The CPM path with the measured wait before each of its nodes and after the last one."""
    waits = []
    last_end, last_node = run_start, None
    for node in schedule.path:
        if node not in measured.index:
            continue
        # From the critical predecessor's end (not the last declared predecessor's): the waits
        # and the path's durations then add up to the wall time exactly.
        start = float(measured.at[node, "start"])
        waits.append(_wait(last_node, node, last_end, start, starts, ends, run_start))
        last_end, last_node = float(measured.at[node, "end"]), node
    if last_node is not None:
        waits.append(_wait(last_node, None, last_end, run_end, starts, ends, run_start))
    return CriticalPath(
        seconds=schedule.length,
        nodes=schedule.path,
        spec_ids=tuple(graph.nodes[node]["spec_id"] for node in schedule.path),
        waits=tuple(waits),
    )


def _wait(
    after: str | None,
    before: str | None,
    ready: float,
    start: float,
    starts: np.ndarray,
    ends: np.ndarray,
    run_start: float,
) -> Wait:
    gap = max(0.0, start - ready)
    serialized = covered_within(starts, ends, ready, start) if gap > 0 else 0.0
    return Wait(
        before=before,
        after=after,
        from_offset=ready - run_start,
        to_offset=start - run_start,
        gap_seconds=gap,
        serialized_seconds=serialized,
        handoff_seconds=max(0.0, gap - serialized),
    )


def _per_hop(ran: pd.DataFrame) -> tuple[float, int]:
    """Median hand-off: each task's first start minus the last end of anything before it."""
    first_starts = ran.groupby("task_id", observed=True)["t_start"].min().to_numpy()
    ends = np.sort(ran["t_end"].to_numpy())
    before = np.searchsorted(ends, first_starts, side="right") - 1
    valid = before >= 0
    if not valid.any():
        return 0.0, 0
    hops = first_starts[valid] - ends[before[valid]]
    return float(np.median(hops)), int(valid.sum())


def _opportunities(
    graph: nx.DiGraph,
    schedule: Schedule,
    measured: pd.DataFrame,
    overhead: Overhead,
    run_start: float,
) -> Opportunities:
    spec_nodes = [n for n in measured.sort_values("start").index if graph.nodes[n]["spec_id"]]
    pairs = []
    for a, b in independent_pairs(graph, spec_nodes):
        first, then = (a, b) if measured.at[a, "start"] <= measured.at[b, "start"] else (b, a)
        first_start, first_end = measured.at[first, "start"], measured.at[first, "end"]
        if first_end > measured.at[then, "start"]:
            continue  # they overlapped
        # Independent tasks that simply became ready one after the other (10 ends just as 16's
        # predecessor 14 does) are no opportunity: only the time `then` sat ready counts.
        ready = _ready(graph, then, measured, run_start)
        overlap = min(
            float(first_end - max(ready, first_start)),
            schedule.durations[first],
            schedule.durations[then],
        )
        if overlap > SLACK_TOLERANCE:
            pairs.append(
                ParallelPair(
                    first, then, schedule.durations[first], schedule.durations[then], overlap
                )
            )
    pairs.sort(key=lambda pair: (-pair.saving_max_seconds, pair.first, pair.then))
    hops = max(0, len(schedule.path) - 1)
    with_overhead = (
        schedule.length
        + overhead.per_hop_seconds * hops
        + overhead.run_start_gap_seconds
        + overhead.run_end_gap_seconds
    )
    return Opportunities(
        what_if_seconds=schedule.length,
        what_if_with_overhead_seconds=with_overhead,
        hops=hops,
        path=schedule.path,
        pairs=tuple(pairs),
    )


def _instance_detail(table: pd.DataFrame, run_start: pd.Timestamp) -> pd.DataFrame:
    origin = _epoch(run_start)
    return pd.DataFrame(
        {
            "task": table["task_id"].astype("object").to_numpy(),
            "spec_id": table["spec_id"].astype("object").to_numpy(),
            "map_index": table["map_index"].to_numpy(),
            "try_number": table["try_number"].to_numpy(),
            "final": table["final"].to_numpy(),
            "state": table["state"].astype("object").to_numpy(),
            "seconds": table["seconds"].to_numpy(),
            "queued_offset": (table["t_queued"] - origin).to_numpy(),
            "start_offset": (table["t_start"] - origin).to_numpy(),
            "end_offset": (table["t_end"] - origin).to_numpy(),
        }
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: floats rounded to the millisecond, NaN/NA as None.

    Built column-wise with `tolist()` (C speed) and zipped once: a million rows take about a
    second, against ten for `DataFrame.to_dict("records")` on object columns.
    """
    columns: list[list[Any]] = []
    for name in frame.columns:
        values = frame[name]
        missing = values.isna().to_numpy()
        if pd.api.types.is_float_dtype(values.dtype):
            cells = values.to_numpy(dtype="float64").round(3).tolist()
        else:
            cells = values.astype("object").tolist()
        if missing.any():
            cells = [None if gap else cell for cell, gap in zip(cells, missing, strict=True)]
        columns.append(cells)
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _offset(value: Any, origin: float) -> float | None:
    return None if value is None or pd.isna(value) else float(value) - origin


def _epoch(value: pd.Timestamp | str) -> float:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return (stamp - _EPOCH) / pd.Timedelta(seconds=1)


def _timestamp(epoch_seconds: float) -> pd.Timestamp:
    return _EPOCH + pd.Timedelta(microseconds=round(epoch_seconds * 1e6))
