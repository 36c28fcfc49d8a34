"""The workflow spec: one YAML file that drives both DAGs, the tests and the reports.

`load_spec()` reads `workflow.yaml` next to this module (or the file named by
`K1N_WORKFLOW_SPEC`) into typed models and checks the whole graph. Every problem is raised as one
`SpecError` whose message names the file, the task and the problem, so a broken spec reads as a
one-line DAG import error.

Only the standard library, PyYAML, pydantic and the plugin's pure `scheduling` module are
imported here: DAG files call this at parse time and must stay fast.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from airflow_bottleneck.scheduling import remaining_path
from k1n.errors import FileProblem
from k1n.io import read_yaml
from k1n.settings import k1n_settings

DEFAULT_SPEC_PATH = Path(__file__).with_name("workflow.yaml")


class HandlerKind(StrEnum):
    """How a task runs; `k1n.tasks.dispatch` maps each kind onto its implementation."""

    PROFILE = "profile"
    COMMAND = "command"
    PATTERN_LIBRARY = "pattern_library"
    CODEGEN = "codegen"
    UNIT_TESTS = "unit_tests"
    STATIC_ANALYSIS = "static_analysis"
    CODE_SECURITY = "code_security"


class SpecError(FileProblem):
    """A workflow spec that cannot be used; the message names file, task and problem."""

    def __init__(self, path: Path | str, problem: str, task: str | None = None) -> None:
        self.task = task
        super().__init__(path, problem, f"task {task}" if task else None)


# Bounds that keep every number usable downstream (timedeltas, sleeps, priority weights): a
# week of production time is far beyond any task, and keeps floats exact to the millisecond.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_RETRIES = 100
MAX_GATES = 1_000_000
MAX_ID = 10_000


class Targets(BaseModel):
    """The goals the migration is judged against, on the production time scale."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    workflow_minutes_max: float = Field(gt=0, le=MAX_SECONDS / 60)
    workflow_minutes_goal: float = Field(gt=0, le=MAX_SECONDS / 60)
    task8_minutes_max: float = Field(gt=0, le=MAX_SECONDS / 60)
    concurrent_workflows: int = Field(ge=1, le=100)
    quality_gate_pass_rate_min: float = Field(gt=0, le=1)


class TaskSpec(BaseModel):
    """One workflow task as declared in the spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: StrictInt = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=200)
    phase: int = Field(ge=1, le=MAX_ID)
    handler: HandlerKind
    seconds: float = Field(ge=0, le=MAX_SECONDS, description="profiled duration on the old system")
    depends_on: tuple[StrictInt, ...] = ()
    retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    retry_delay_seconds: float = Field(default=30, gt=0, le=MAX_SECONDS)
    timeout_seconds: float = Field(gt=0, le=MAX_SECONDS)
    quality_gates: int = Field(
        default=10, ge=1, le=MAX_GATES, description="gates a stand-in reports"
    )
    failing_gates: int = Field(
        default=0, ge=0, le=MAX_GATES, description="gates a stand-in reports as failed"
    )
    command: str | None = Field(
        default=None, max_length=4000, description="argv template for handler: command"
    )
    stages_seconds: dict[str, Annotated[float, Field(ge=0, le=MAX_SECONDS)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> TaskSpec:
        if self.handler is HandlerKind.COMMAND and not (self.command or "").strip():
            raise ValueError("handler 'command' needs a non-empty 'command'")
        if self.handler is not HandlerKind.COMMAND and self.command is not None:
            raise ValueError(f"'command' is only used by handler 'command', not '{self.handler}'")
        if self.failing_gates > self.quality_gates:
            raise ValueError("failing_gates cannot exceed quality_gates")
        return self

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds)

    @property
    def slug(self) -> str:
        """`Code Generation` -> `code_generation`."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")

    @property
    def airflow_task_id(self) -> str:
        """Task id in both DAGs; it starts with the spec id so reports can map it back."""
        return f"task_{self.id:02d}_{self.slug}"

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})"


class WorkflowSpec(BaseModel):
    """The whole workflow; construction checks ids, dependencies and cycles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    name: str = Field(min_length=1, max_length=200)
    targets: Targets
    tasks: tuple[TaskSpec, ...] = Field(min_length=1, max_length=1000)
    source: Path = Field(default=DEFAULT_SPEC_PATH, exclude=True)

    @cached_property
    def by_id(self) -> dict[int, TaskSpec]:
        return {task.id: task for task in self.tasks}

    def task(self, task_id: int) -> TaskSpec:
        return self.by_id[task_id]

    @property
    def total_seconds(self) -> float:
        """What the old system took running every task back to back."""
        return sum(task.seconds for task in self.tasks)

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        sorter = graphlib.TopologicalSorter({t.id: t.depends_on for t in self.tasks})
        return tuple(sorter.static_order())

    @cached_property
    def ancestors(self) -> dict[int, frozenset[int]]:
        """Every task each task transitively depends on."""
        result: dict[int, frozenset[int]] = {}
        for task_id in self.topological_order:
            deps = self.by_id[task_id].depends_on
            result[task_id] = frozenset(deps).union(*(result[d] for d in deps))
        return result

    @cached_property
    def reduced_dependencies(self) -> dict[int, tuple[int, ...]]:
        """The transitive reduction: a dependency implied by another one is dropped.

        For a DAG the reduction is unique; the DAG edges are these, so the graph view in the
        Airflow UI shows no redundant arrows and the scheduler evaluates fewer trigger rules.
        """
        reduced = {}
        for task in self.tasks:
            implied = set().union(*(self.ancestors[d] for d in task.depends_on))
            reduced[task.id] = tuple(sorted(d for d in task.depends_on if d not in implied))
        return reduced

    @cached_property
    def dependents(self) -> dict[int, tuple[int, ...]]:
        """The tasks that depend on each task directly."""
        dependents: dict[int, list[int]] = {task.id: [] for task in self.tasks}
        for task in self.tasks:
            for dep in task.depends_on:
                dependents[dep].append(task.id)
        return {task_id: tuple(ids) for task_id, ids in dependents.items()}

    @cached_property
    def scheduling_graph(self) -> dict[str, list[str]]:
        """The graph as `airflow_bottleneck.scheduling` takes it: each task id (a string) and
        the ids of the tasks that depend on it directly."""
        return {str(task_id): [str(d) for d in ids] for task_id, ids in self.dependents.items()}

    @cached_property
    def profile_seconds(self) -> dict[str, float]:
        """Each task's profiled seconds, keyed as in `scheduling_graph`."""
        return {str(task.id): task.seconds for task in self.tasks}

    @cached_property
    def remaining_path_seconds(self) -> dict[int, float]:
        """Longest profiled path from each task to the end, itself included."""
        remaining = remaining_path(self.scheduling_graph, self.profile_seconds)
        return {int(task_id): seconds for task_id, seconds in remaining.items()}

    @property
    def critical_path_seconds(self) -> float:
        """Profiled length of the longest dependency chain: the best any schedule can do."""
        return max(self.remaining_path_seconds.values())

    def tasks_with(self, handler: HandlerKind) -> list[TaskSpec]:
        return [task for task in self.tasks if task.handler is handler]


def spec_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The spec in use: `K1N_WORKFLOW_SPEC` when set, else the project's own."""
    value = k1n_settings(environ).workflow_spec
    return value.expanduser() if value else DEFAULT_SPEC_PATH


def load_spec(path: Path | str | None = None) -> WorkflowSpec:
    """Read and check a workflow spec; any problem raises one `SpecError`."""
    spec_path = Path(path) if path is not None else spec_path_from_env()
    raw = read_yaml(spec_path, SpecError)
    return parse_spec(raw, spec_path)


def parse_spec(raw: Any, path: Path | str = "<spec>") -> WorkflowSpec:
    """Check an already-loaded spec document (a mapping) and build the models."""
    path = Path(path)
    if not isinstance(raw, Mapping):
        raise SpecError(path, f"expected a mapping with 'tasks', got {type(raw).__name__}")
    raw_tasks = raw.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SpecError(path, "'tasks' must be a non-empty list")
    for index, raw_task in enumerate(raw_tasks):
        if not isinstance(raw_task, Mapping):
            raise SpecError(path, "must be a mapping", task=f"#{index + 1}")
        if "handler" not in raw_task:
            raise SpecError(path, "missing 'handler'", task=_raw_label(raw_task, index))
    _check_ids(path, raw_tasks)
    try:
        spec = WorkflowSpec.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise _spec_error_from_validation(path, raw_tasks, exc) from None
    _check_graph(path, spec)
    return spec


def _raw_label(raw_task: Mapping[str, Any], index: int) -> str:
    """How a message names a raw task: its id and name when they are plain values, else its
    position (a message never prints a whole nested value)."""
    task_id, name = raw_task.get("id"), raw_task.get("name")
    name_part = f" ({name[:80]})" if isinstance(name, str) and name else ""
    if not _plain_id(task_id) or task_id is None:
        return f"#{index + 1}{name_part}"
    return f"{task_id}{name_part}"


def _plain_id(task_id: Any) -> bool:
    return task_id is None or (isinstance(task_id, int) and not isinstance(task_id, bool))


def _check_ids(path: Path, raw_tasks: list[Mapping[str, Any]]) -> None:
    seen: dict[Any, int] = {}
    for index, raw_task in enumerate(raw_tasks):
        task_id = raw_task.get("id")
        if not _plain_id(task_id):
            raise SpecError(
                path,
                f"field 'id': expected an integer, got a {type(task_id).__name__}",
                task=_raw_label(raw_task, index),
            )
        if task_id in seen and task_id is not None:
            raise SpecError(
                path,
                f"duplicate id {task_id} (also task #{seen[task_id] + 1} in the list)",
                task=_raw_label(raw_task, index),
            )
        seen[task_id] = index


def _check_graph(path: Path, spec: WorkflowSpec) -> None:
    known = spec.by_id
    for task in spec.tasks:
        if task.id in task.depends_on:
            raise SpecError(path, "depends on itself", task=task.label)
        unknown = sorted(set(task.depends_on) - known.keys())
        if unknown:
            raise SpecError(path, f"depends on unknown task id(s) {unknown}", task=task.label)
        if len(set(task.depends_on)) != len(task.depends_on):
            raise SpecError(path, "lists a dependency twice", task=task.label)
    try:
        _ = spec.topological_order
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        chain = " -> ".join(known[task_id].label for task_id in reversed(cycle))
        raise SpecError(path, f"dependency cycle: {chain}", task=known[cycle[0]].label) from None
    position = {task.id: index for index, task in enumerate(spec.tasks)}
    for task in spec.tasks:
        later = [dep for dep in task.depends_on if position[dep] > position[task.id]]
        if later:
            raise SpecError(
                path,
                f"listed before task(s) {later} it depends on: the baseline DAG runs the "
                "tasks in list order",
                task=task.label,
            )
    _check_codegen_readers(path, spec)


# Handlers that read what the codegen task published.
CODEGEN_READERS = frozenset(
    {HandlerKind.UNIT_TESTS, HandlerKind.STATIC_ANALYSIS, HandlerKind.CODE_SECURITY}
)


def _check_codegen_readers(path: Path, spec: WorkflowSpec) -> None:
    """At most one codegen task, and every task checking its output depends on it."""
    codegen = spec.tasks_with(HandlerKind.CODEGEN)
    if len(codegen) > 1:
        raise SpecError(path, "more than one task has handler 'codegen'", task=codegen[1].label)
    for task in spec.tasks:
        if task.handler not in CODEGEN_READERS:
            continue
        if not codegen or codegen[0].id not in spec.ancestors[task.id]:
            raise SpecError(
                path,
                f"handler '{task.handler}' checks generated code, so the task must depend "
                "(directly or not) on the task with handler 'codegen'",
                task=task.label,
            )


def _spec_error_from_validation(
    path: Path, raw_tasks: list[Mapping[str, Any]], exc: ValidationError
) -> SpecError:
    """Turn pydantic's first error into one line naming the task and the field."""
    error = exc.errors()[0]
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        index = loc[1]
        field = ".".join(str(part) for part in loc[2:])
        problem = f"field '{field}': {message}" if field else message
        if error["type"] == "extra_forbidden":
            problem = f"unknown field '{field}'"
        return SpecError(path, problem, task=_raw_label(raw_tasks[index], index))
    field = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        return SpecError(path, f"unknown field '{field}'")
    return SpecError(path, f"field '{field}': {message}")
