"""The report model: what the analysis says about one run, and about two runs side by side.

One typed model (pydantic) for every consumer: `analyze_run` returns a `RunReport`,
`compare_runs` a `Comparison`; the plugin's FastAPI routes serve them as their response
schema (so `/bottlenecks/openapi.json` documents every field), the text/Markdown/CSV renderers and
the HTML page read them, and the metrics store stores them. `airflow_bottleneck/analysis/README.md`
explains every figure.

Seconds are measured seconds unless a field says production (seconds / time scale); offsets
are seconds from the run's start.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPORT_SCHEMA = "airflow-bottleneck.run-report/3"
COMPARISON_SCHEMA = "airflow-bottleneck.comparison/3"
FORECAST_SCHEMA = "airflow-bottleneck.forecast/1"
CRITICALITY_SCHEMA = "airflow-bottleneck.criticality/1"
OVER_SHARE_THRESHOLD = 0.10

TaskStatus = Literal["ran", "running", "skipped", "failed", "not run"]
GraphSource = Literal["dag", "execution", "spec", "none"]


class StrictModel(BaseModel):
    """Frozen, no unknown fields, NaN/inf as JSON null: the base of every report model."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="null")


class Columns(StrictModel):
    """Rows stored column by column: row i is the i-th item of every list. A million rows
    build and serialize in a fraction of the time a million row objects take. `rows()` gives
    them back as `row_model` objects."""

    row_model: ClassVar[type[StrictModel]]

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        lengths = {name: len(getattr(self, name)) for name in type(self).model_fields}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        return self

    def __len__(self) -> int:
        first = next(iter(type(self).model_fields))
        return len(getattr(self, first))

    def rows(self) -> Iterator[StrictModel]:
        names = list(type(self).model_fields)
        for values in zip(*(getattr(self, name) for name in names), strict=True):
            yield self.row_model.model_construct(**dict(zip(names, values, strict=True)))


# -- one run ----------------------------------------------------------------------------------


class TaskTiming(StrictModel):
    """One Airflow task (a mapped task's indexes together), its final tries."""

    task: str = Field(description="Airflow task id")
    label: str = Field(description="what to call it: a report extension's name, else the task id")
    spec_id: int | None = Field(description="a report extension's number of the task, if any")
    group: str | None = Field(description="its task group, if any")
    status: TaskStatus
    reason: str | None = Field(
        default=None, description="why a skipped, failed-upstream or unfinished task shows so"
    )
    state: str | None = Field(description="Airflow state of its final try ('mixed' if mapped)")
    instances: int = Field(description="map indexes (1 for an unmapped task)")
    mapped: bool
    tries: int = Field(description="highest try number")
    seconds: float = Field(description="its final tries' durations, summed")
    share: float = Field(description="of the run's total task time, 0..1")
    queue_wait_seconds: float = Field(description="queued -> started, summed")
    startup_seconds: float | None = Field(
        description="started -> its own code started (recorded by the task); None: not recorded"
    )
    work_seconds: float = Field(description="its own code started -> ended")
    retry_seconds: float = Field(description="earlier, failed tries")
    start_offset: float | None
    end_offset: float | None
    critical: bool = Field(description="on the critical path")
    slack_seconds: float | None = Field(
        description="how much later it could have ended without delaying the run"
    )
    near_critical: bool = Field(description="not critical, but within the near-critical margin")
    stand_in: bool = Field(
        default=False,
        description="a stand-in: it waits its production seconds x the run's time scale, so its "
        "work is scaled back in production figures (real work is not)",
    )
    production_seconds: float | None = Field(
        default=None,
        description="its final tries in production: start-ups as measured, work (a stand-in's "
        "÷ time scale)",
    )
    production_start_offset: float | None = Field(
        default=None, description="where it starts in the run's replay at production durations"
    )
    production_end_offset: float | None = None


class MappedIndex(StrictModel):
    map_index: int
    try_number: int
    state: str | None
    seconds: float
    start_offset: float | None
    end_offset: float | None


class MappedIndexColumns(Columns):
    """A mapped task's final tries, one per map index, in map-index order (`MappedIndex`)."""

    row_model: ClassVar[type[StrictModel]] = MappedIndex
    map_index: list[int]
    try_number: list[int]
    state: list[str | None]
    seconds: list[float]
    start_offset: list[float | None]
    end_offset: list[float | None]


class MappedRollup(StrictModel):
    """A mapped task's indexes: count, sum, max, mean and skew (max / mean)."""

    task: str
    count: int
    sum_seconds: float
    max_seconds: float
    mean_seconds: float
    skew: float
    indexes: MappedIndexColumns | None = Field(default=None, description="only with detail")


class PathStep(StrictModel):
    """One task of the critical path, and the time before it since the previous one ended.

    previous end -> `ready` (its last upstream task ended): waiting on another branch;
    `ready` -> start: hand-off (scheduler, queue, executor); start -> its own code: start-up;
    its code -> end: work. For the first step "previous end" is the run's start.
    """

    task: str
    label: str
    status: TaskStatus = "ran"
    ready_offset: float
    start_offset: float
    code_start_offset: float
    end_offset: float
    waiting_seconds: float
    handoff_seconds: float
    startup_seconds: float
    work_seconds: float


class CriticalPath(StrictModel):
    """The chain of dependent tasks, in the DAG's own graph, that decided the wall time."""

    seconds: float = Field(description="the path's task durations (start -> end), summed")
    span_seconds: float = Field(
        description="the wall time the path accounts for: its tasks' start-ups and work and "
        "the hand-offs before them, from the run's start to its end (waiting on other "
        "branches excluded)"
    )
    share_of_wall: float = Field(description="span_seconds / wall time")
    tasks: list[str]
    steps: list[PathStep]
    tail_seconds: float = Field(description="the last task's end -> the run's end")


class OverheadSplit(StrictModel):
    """The wall time along the critical path, split into parts that add up to it:
    wall = work + start-up + hand-offs + waiting (+ a residual of rounding, ~0)."""

    wall_seconds: float
    work_seconds: float
    startup_seconds: float
    handoff_seconds: float = Field(description="ready -> start on the path, run start and end")
    waiting_seconds: float = Field(description="waiting on a branch off the path")
    residual_seconds: float
    orchestration_seconds: float = Field(description="start-up + hand-offs + waiting")
    idle_seconds: float = Field(description="wall time with no task running at all")
    queue_wait_seconds: float = Field(description="queued -> started, every task instance")
    retry_seconds: float
    per_hop_seconds: float = Field(description="median hand-off between dependent tasks")
    hops: int


class ParallelPair(StrictModel):
    """Two numbered tasks with no dependency path between them that ran one after the other
    although `then` was ready while `first` ran; `saving_max_seconds` bounds the gain."""

    first: str
    then: str
    saving_max_seconds: float


class DeclaredWhatIf(StrictModel):
    """What if only the declared dependencies applied: this run's measured durations (per
    numbered task; a task group's members as one) on a report extension's declared graph."""

    seconds: float
    with_handoffs_seconds: float = Field(description="plus this run's median hand-off per hop")
    production_with_handoffs_seconds: float | None = Field(
        default=None, description="the same at production durations (stand-ins scaled back)"
    )
    speedup: float = Field(description="this run's wall / with_handoffs_seconds")
    path: list[str]
    pairs: list[ParallelPair]


class TargetCheck(StrictModel):
    """One target judged on the production scale; `met` is None when not measurable."""

    key: str
    description: str
    operator: Literal["<=", "<", ">="]
    limit: float
    actual: float | None
    unit: str
    met: bool | None


class ProductionStep(StrictModel):
    """One task on the production critical path: its hand-off (measured delay after its
    binding upstream, or the run's head), start-up (measured) and work (a stand-in's scaled
    back)."""

    task: str
    label: str
    handoff_seconds: float
    startup_seconds: float
    work_seconds: float
    stand_in: bool


class Production(StrictModel):
    """The run at production durations (`analysis.production`): the run's own schedule
    replayed with each stand-in's work ÷ time scale and everything else as measured. Its
    critical path's hand-offs, start-ups and work and the tail add up to the wall."""

    wall_seconds: float
    wall_minutes: float
    total_task_seconds: float
    stand_in_tasks: list[str] = Field(
        default_factory=list, description="tasks whose work scales with the time scale"
    )
    critical_path: list[ProductionStep] = Field(default_factory=list)
    tail_seconds: float = 0.0

    @property
    def work_seconds(self) -> float:
        """Work along the production critical path."""
        return sum(step.work_seconds for step in self.critical_path)


class HistoryRun(StrictModel):
    run_id: str
    start: str | None
    wall_seconds: float | None


class History(StrictModel):
    """The same DAG's last runs (oldest first, this one last) and each task's seconds in them."""

    runs: list[HistoryRun]
    tasks: dict[str, list[float | None]]


class Links(StrictModel):
    """Where this run is in the Airflow UI (paths under the UI's base URL)."""

    run: str = Field(description="the run's page: its grid, and the Gantt chart (Gantt button)")
    tasks: dict[str, str] = Field(
        description="each task id's task-instance page (its logs); a mapped task's list"
    )


class InstanceRow(StrictModel):
    task: str
    map_index: int
    try_number: int
    final: bool
    state: str | None
    seconds: float
    queued_offset: float | None
    start_offset: float | None
    code_start_offset: float | None
    end_offset: float | None


class InstanceColumns(Columns):
    """Every try of every task instance (`InstanceRow`), column by column."""

    row_model: ClassVar[type[StrictModel]] = InstanceRow
    task: list[str]
    map_index: list[int]
    try_number: list[int]
    final: list[bool]
    state: list[str | None]
    seconds: list[float]
    queued_offset: list[float | None]
    start_offset: list[float | None]
    code_start_offset: list[float | None]
    end_offset: list[float | None]


class RunReport(StrictModel):
    """One run's bottleneck report."""

    schema_: str = Field(default=REPORT_SCHEMA, alias="schema")
    source: str
    label: str
    dag_id: str
    run_id: str
    state: str | None
    partial: bool = Field(description="the run had not finished: every figure may still change")
    start: str
    end: str
    time_scale: float
    graph_source: GraphSource = Field(
        description="dag: the DAG's own graph; execution: the order a sequential runner used; "
        "spec: a report extension's declared dependencies (no graph of its own); none: unknown"
    )
    wall_seconds: float
    total_task_seconds: float
    production: Production
    task_count: int
    instance_count: int
    tasks: list[TaskTiming]
    mapped: list[MappedRollup]
    critical_path: CriticalPath
    near_critical_margin_seconds: float
    overhead: OverheadSplit
    what_if: DeclaredWhatIf | None = Field(description="DAGs a report extension describes only")
    targets: list[TargetCheck]
    history: History | None = None
    links: Links | None = Field(default=None, description="set by the plugin: the run in the UI")
    notes: list[str]
    instances: InstanceColumns | None = Field(
        default=None, description="only with detail: every try of every task instance, by column"
    )

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_inf_nan="null", populate_by_name=True
    )

    @property
    def over_10_percent(self) -> list[TaskTiming]:
        return [task for task in self.tasks if task.share > OVER_SHARE_THRESHOLD]

    def task(self, task_id: str) -> TaskTiming | None:
        return next((task for task in self.tasks if task.task == task_id), None)

    def as_dict(self) -> dict:
        """The JSON form (what the API serves and the metrics store stores)."""
        return self.model_dump(mode="json", by_alias=True)


# -- two runs ---------------------------------------------------------------------------------


class ComparedRun(StrictModel):
    label: str = Field(description="how the comparison names this run")
    dag_id: str
    run_id: str
    state: str | None
    partial: bool
    time_scale: float
    wall_seconds: float = Field(description="production seconds")
    critical_path_seconds: float = Field(description="production seconds")
    work_seconds: float = Field(description="production seconds along the critical path")
    orchestration_seconds: float = Field(description="production seconds along the path")


class TaskDelta(StrictModel):
    """One task (or numbered task) in both runs, production seconds; None: not in that run."""

    key: str
    label: str
    a_seconds: float | None
    b_seconds: float | None
    delta_seconds: float | None
    change: float | None = Field(description="(b - a) / a")


class Prediction(StrictModel):
    """A's declared-dependency what-if next to B's measured wall time (an extension's DAGs)."""

    predicted_b_wall_seconds: float
    measured_b_wall_seconds: float
    error_percent: float


class AttributionPart(StrictModel):
    """One part of the wall-time difference B - A (production seconds): a task's work along
    the runs' critical paths, or one kind of orchestration along them."""

    key: str = Field(description="a task key (as in `tasks`), or startup/handoff/waiting/other")
    label: str
    kind: Literal["task", "orchestration"]
    delta_seconds: float = Field(description="B - A; the parts sum to the wall difference")
    a_seconds: float
    b_seconds: float
    path_change: Literal["joined", "left", "stayed", "none"] = Field(
        description="joined: on B's critical path only; left: on A's only"
    )


class Attribution(StrictModel):
    """The wall-time difference B - A split into parts that add up to it, and one sentence."""

    delta_seconds: float
    headline: str
    parts: list[AttributionPart] = Field(description="largest |delta| first")


class Comparison(StrictModel):
    """Run A (the reference) against run B, in production seconds (each run's seconds / its
    own time scale), so runs at different scales compare."""

    schema_: str = Field(default=COMPARISON_SCHEMA, alias="schema")
    title: str
    a: ComparedRun
    b: ComparedRun
    verdict: Literal["faster", "slower", "same"] = Field(description="B against A")
    factor: float = Field(description="always >= 1: how many times faster or slower B was")
    percent: float = Field(description="how much less (faster) or more (slower) wall time, %")
    work_delta_seconds: float = Field(description="B - A: work along the critical path")
    orchestration_delta_seconds: float = Field(
        description="B - A: start-ups, hand-offs and waiting along the critical path"
    )
    prediction: Prediction | None
    attribution: Attribution
    tasks: list[TaskDelta]
    targets_a: list[TargetCheck]
    targets_b: list[TargetCheck]

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_inf_nan="null", populate_by_name=True
    )

    def as_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


# -- what is ahead: one running run ----------------------------------------------------------

ForecastStatus = Literal["done", "running", "pending", "skipped"]


class ForecastTask(StrictModel):
    """One task's expected timing (seconds from the run's start); finished tasks as measured."""

    task: str
    label: str
    status: ForecastStatus
    expected_seconds: float | None = Field(description="its expected span (median of history)")
    elapsed_seconds: float | None = Field(description="running: how long it has run so far")
    expected_start_offset: float | None
    expected_end_offset: float | None
    low_end_offset: float | None = Field(description="with p10 durations")
    high_end_offset: float | None = Field(description="with p90 durations")
    on_path: bool = Field(description="on the remaining critical path")
    overrunning: bool = Field(description="running longer than its p90 in history")
    history_runs: int = Field(description="successful runs of it in the history")


class Deadline(StrictModel):
    """When the run must end by, and whether the forecast says it will not."""

    offset_seconds: float = Field(description="seconds from the run's start")
    at: str
    source: str = Field(description="where the deadline comes from")
    miss_predicted: bool | None = Field(
        description="the band's lower edge is past the deadline; None: no forecast"
    )
    missed: bool | None = Field(description="a finished run: did it end after the deadline")


class Forecast(StrictModel):
    """A live ETA: now + the remaining critical path, durations from the DAG's history."""

    schema_: str = Field(default=FORECAST_SCHEMA, alias="schema")
    dag_id: str
    run_id: str
    state: str | None
    available: bool = Field(description="False: too little history to forecast (see reason)")
    reason: str | None
    start: str
    observed_at: str
    elapsed_seconds: float
    history_runs: int = Field(description="successful runs the statistics come from")
    expected_end: str | None
    expected_end_offset: float | None
    low_end_offset: float | None = Field(description="the band: p10 durations")
    high_end_offset: float | None = Field(description="the band: p90 durations")
    remaining_seconds: float | None
    progress: float | None = Field(description="elapsed / expected wall, 0..1")
    naive_end_offset: float | None = Field(
        description="start + the median wall of the history (what run statistics alone give)"
    )
    handoff_seconds: float = Field(description="median hand-off per hop in the history")
    path: list[str] = Field(description="the remaining critical path, finished tasks left out")
    overrunning: list[str]
    deadline: Deadline | None
    tasks: list[ForecastTask]
    notes: list[str]

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_inf_nan="null", populate_by_name=True
    )

    def as_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


# -- many runs of one DAG ---------------------------------------------------------------------


class BoxStats(StrictModel):
    """Five numbers of a task's duration over runs (seconds)."""

    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    p90: float


class TaskCriticality(StrictModel):
    task: str
    label: str
    runs: int = Field(description="runs in which it ran")
    critical_runs: int = Field(description="runs in which it was on the critical path")
    criticality: float = Field(description="critical_runs / runs analysed, 0..1")
    decided_seconds: float = Field(
        description="mean seconds of wall time it decided per run (its span when critical)"
    )
    decided_share: float = Field(description="decided_seconds / the runs' mean wall")
    median_slack_seconds: float | None
    durations: BoxStats


class Criticality(StrictModel):
    """Which tasks decide the wall time across a DAG's last runs, most deciding first."""

    schema_: str = Field(default=CRITICALITY_SCHEMA, alias="schema")
    dag_id: str
    runs: list[HistoryRun]
    mean_wall_seconds: float
    tasks: list[TaskCriticality]
    notes: list[str]

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_inf_nan="null", populate_by_name=True
    )

    def as_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)
