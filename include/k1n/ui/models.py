"""Response models of the JSON endpoints: what FastAPI documents in `/k1n/openapi.json`.

The report and comparison models mirror `RunReport.as_dict()` and `Comparison.as_dict()` of
the analysis core field by field. They allow extra fields, so a field the analysis adds later
passes through (undocumented) instead of failing the response. Non-finite floats serialize as
null: JSON has no NaN or Infinity.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", ser_json_inf_nan="null")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


# -- runs -----------------------------------------------------------------------------------------


class RunLinks(_Closed):
    report: str = Field(description="this run's report (JSON)")
    markdown: str = Field(description="this run's report as markdown")
    page: str = Field(description="the HTML page showing this run")


class RunSummary(_Closed):
    """One run of a K1N DAG."""

    dag_id: str
    run_id: str
    label: str = Field(description="`baseline` or `optimized`")
    state: str | None
    run_type: str | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    wall_seconds: float | None = Field(description="end - start, measured (None while running)")
    time_scale: float | None = Field(description="the run's `time_scale` conf (None: default)")
    production_wall_seconds: float | None = Field(description="wall seconds / time scale")
    links: RunLinks


class RunList(_Closed):
    runs: list[RunSummary]
    count: int = Field(description="runs in this page")
    limit: int
    offset: int


# -- one run's report -----------------------------------------------------------------------------


class TaskStat(_Open):
    """One Airflow task id (a mapped task's indexes summed), final tries."""

    task: str
    spec_id: int | None
    name: str | None
    seconds: float | None
    share: float | None = Field(description="of the total task seconds, 0..1")
    instances: int
    mapped: bool
    tries: int
    retry_seconds: float | None
    queue_wait_seconds: float | None
    state: str | None
    start_offset: float | None = Field(description="first start, seconds after the run start")
    end_offset: float | None = Field(description="last end, seconds after the run start")


class ShareItem(_Open):
    task: str
    spec_id: int | None
    seconds: float | None
    share: float | None


class MappedIndex(_Open):
    map_index: int
    try_number: int
    state: str | None
    seconds: float | None
    start_offset: float | None
    end_offset: float | None


class MappedRollup(_Open):
    """A mapped task: its indexes' count, sum, max, mean, skew (max / mean)."""

    task: str
    spec_id: int | None
    count: int
    sum_seconds: float | None
    max_seconds: float | None
    mean_seconds: float | None
    skew: float | None
    indexes: list[MappedIndex] | None = None


class Node(_Open):
    """A spec-level node of the critical path method (Task 8's group is one node)."""

    node: str
    spec_id: int | None
    name: str
    measured: bool
    seconds: float | None
    work_seconds: float | None
    instances: int
    start_offset: float | None
    end_offset: float | None
    ready_offset: float | None
    ready_wait_seconds: float | None
    internal_gap_seconds: float | None
    earliest_start: float | None
    latest_start: float | None
    slack_seconds: float | None
    critical: bool


class Wait(_Open):
    """A wait along the critical path; `after` None: run head, `before` None: run tail."""

    after: str | None
    before: str | None
    from_offset: float | None
    to_offset: float | None
    gap_seconds: float | None
    serialized_seconds: float | None
    handoff_seconds: float | None


class CriticalPath(_Open):
    """Declared dependencies, measured durations: the chain that determines the wall time."""

    seconds: float | None
    tasks: list[str] = Field(description="spec-level nodes, first to last")
    spec_ids: list[int | None]
    waits: list[Wait]


class Production(_Open):
    wall_seconds: float | None
    wall_minutes: float | None
    total_task_seconds: float | None


class Overhead(_Open):
    idle_seconds: float | None
    idle_share_of_wall: float | None
    busy_seconds: float | None
    queue_wait_seconds: float | None
    retry_seconds: float | None
    run_start_gap_seconds: float | None
    run_end_gap_seconds: float | None
    critical_path_seconds: float | None
    critical_path_share_of_wall: float | None
    critical_path_handoff_seconds: float | None
    critical_path_internal_seconds: float | None
    critical_path_serialized_seconds: float | None
    per_hop_seconds: float | None
    hops_measured: int


class ParallelPair(_Open):
    first: str
    then: str
    first_seconds: float | None
    then_seconds: float | None
    saving_max_seconds: float | None


class Opportunities(_Open):
    """What-if: every independent task in parallel, from this run's measured durations."""

    what_if_seconds: float | None
    what_if_with_overhead_seconds: float | None
    hops: int
    path: list[str]
    saving_seconds: float | None
    speedup: float | None
    pairs: list[ParallelPair]


class Target(_Open):
    key: str
    description: str
    operator: str
    limit: float
    actual: float | None
    unit: str
    met: bool | None


class InstanceRow(_Open):
    task: str
    spec_id: int | None
    map_index: int
    try_number: int
    final: bool
    state: str | None
    seconds: float | None
    queued_offset: float | None
    start_offset: float | None
    end_offset: float | None


class RunReport(_Open):
    """One run's bottleneck report (measured seconds unless a field says production)."""

    schema_: str = Field(alias="schema", serialization_alias="schema")
    source: str
    label: str
    dag_id: str
    run_id: str
    state: str | None
    start: str
    end: str
    time_scale: float
    granularity: str
    wall_seconds: float | None
    total_task_seconds: float | None
    production: Production
    task_count: int
    instance_count: int
    tasks: list[TaskStat]
    over_10_percent: list[ShareItem]
    mapped: list[MappedRollup]
    nodes: list[Node]
    critical_path: CriticalPath
    overhead_seconds: float | None = Field(description="wall time with no task running")
    overhead: Overhead
    opportunities: Opportunities
    targets: list[Target]
    notes: list[str]
    instances: list[InstanceRow] | None = Field(
        default=None, description="every try of every task instance (only with detail=true)"
    )


# -- two runs -------------------------------------------------------------------------------------


class ComparedRun(_Open):
    label: str
    source: str
    dag_id: str
    run_id: str
    state: str | None
    time_scale: float
    measured_wall_seconds: float | None
    measured_total_task_seconds: float | None
    critical_path_seconds: float | None
    overhead_seconds: float | None


class PairOfFloats(_Open):
    a: float | None
    b: float | None


class Prediction(_Open):
    predicted_b_wall_seconds: float | None
    predicted_b_wall_without_overhead_seconds: float | None
    measured_b_wall_seconds: float | None
    error_percent: float | None


class TaskDelta(_Open):
    node: str
    spec_id: int | None
    name: str
    a_seconds: float | None
    b_seconds: float | None
    delta_seconds: float | None
    change: float | None


class TargetsOfPair(_Open):
    a: list[Target]
    b: list[Target]


class Comparison(_Open):
    """Run A (reference) against run B, production seconds (measured / each run's scale)."""

    schema_: str = Field(alias="schema", serialization_alias="schema")
    scale: str
    a: ComparedRun
    b: ComparedRun
    wall_seconds: PairOfFloats
    total_task_seconds: PairOfFloats
    speedup_percent: float | None = Field(description="how much less wall time B took, % of A")
    speedup_factor: float | None = Field(description="A's wall / B's wall")
    prediction: Prediction
    tasks: list[TaskDelta]
    targets: TargetsOfPair


class Problem(_Closed):
    """An error response."""

    detail: str
