"""Build the baseline and the optimized DAG from one workflow spec.

Both DAGs have the spec's tasks (ids `task_<NN>_<name>`), the same handlers, a final
`check_quality_gates` and a teardown `clean_up_storage`; they differ only in how the tasks are
wired and how Task 8 runs:

- baseline: the old order 1 -> 2 -> ... -> 22; Task 8 is one task running the five codegen
  stages serially with no template cache and a full rebuild, as the bash handlers did;
- optimized: the transitive reduction of the declared dependencies, so every independent set
  (1 || 2, 3 || 4 || 5, ...) runs in parallel; Task 8 is a task group
  parse -> generate (mapped over shards) -> compile -> validate -> write, with the template
  bytecode cache and incremental builds.

They need nothing created beforehand: no pool (the mapped shards are bounded by
`max_active_tis_per_dagrun`), no Variable, no connection. What passes between tasks is an XCom
or an object in the storage root (`K1N_STORAGE_URL`, see `k1n.storage`), never a file
on a worker's disk. Nothing here touches the metadata DB or the network: DAG files call these
at parse time.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from airflow.sdk import DAG, Variable, chain, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from airflow_bottleneck.priority import (
    CRITICAL_PATH_PRIORITY,
    SIMULATED_SCHEDULE_PRIORITY,
    simulated_schedule_weights,
)
from k1n import settings
from k1n.dag_builders.defaults import (
    START_DATE,
    TAGS,
    default_args,
    retry_arguments,
    time_scale_param,
)
from k1n.tasks.context import RunContext, WorkflowMode
from k1n.workflow.names import (
    BASELINE_DAG_ID,
    CLEAN_UP_TASK_ID,
    CODE_START_XCOM_KEY,
    CODEGEN_STAGE_TASK_IDS,
    OPTIMIZED_DAG_ID,
    QUALITY_GATES_TASK_ID,
    RETENTION_VARIABLE,
)
from k1n.workflow.spec import (
    CODEGEN_READERS,
    HandlerKind,
    TaskSpec,
    WorkflowSpec,
    load_spec,
)

log = logging.getLogger(__name__)

PriorityRule = Literal["simulated", "critical_path", "static", "downstream"]
# The profile's order is simulated under two slots, where the order decides most (this
# machine's cores; from four slots up every order gives the K1N profile the same wall).
PROFILE_SLOTS = 2

# Async callback of the optimized DAG's deadline alert (runs in the triggerer).
DEADLINE_CALLBACK = "k1n.dag_builders.alerts.workflow_deadline_missed"


# -- inside a task ------------------------------------------------------------------------


def _record_code_start() -> None:
    """When this task's own code started: the reports split start-up from work with it. Each
    task imports what it needs first: loading our modules is start-up, and a stand-in's work,
    which the reports scale back by the run's time scale, must be its wait alone."""
    get_current_context()["ti"].xcom_push(key=CODE_START_XCOM_KEY, value=time.time())


def _run_context(workflow_mode: WorkflowMode, codegen_result: Any = None) -> RunContext:
    """The run this task belongs to, its conf checked; a bad conf fails the task, no retry."""
    from airflow.sdk import ObjectStoragePath

    from k1n.workflow.run_conf import (
        FAILING_GATES_MAX,
        SLOW_FACTOR_MAX,
        knob,
        library_variant,
    )

    context = get_current_context()
    dag_run = context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    known = set(load_spec().by_id)
    try:
        time_scale = settings.parse_time_scale(context["params"]["time_scale"])
        slow = knob(conf, "slow_tasks", known_ids=known, integer=False, maximum=SLOW_FACTOR_MAX)
        failing = knob(
            conf, "failing_gates", known_ids=known, integer=True, maximum=FAILING_GATES_MAX
        )
        variant = library_variant(
            conf, library_configured=settings.k1n_settings().pattern_library is not None
        )
    except ValueError as exc:
        raise AirflowFailException(f"run conf: {exc}") from None
    for key, value in (("slow_tasks", slow), ("failing_gates", failing)):
        if value:
            log.warning("run conf %s=%s: stand-in tasks are deliberately altered", key, value)
    if variant:
        log.warning(
            "run conf library_variant=%s: the demo library with every pattern changed", variant
        )
    return RunContext(
        dag_id=context["dag"].dag_id,
        run_id=context["run_id"],
        time_scale=time_scale,
        storage=ObjectStoragePath(settings.storage_url()),
        cache_dir=settings.cache_dir(),
        workflow_mode=workflow_mode,
        codegen_result=codegen_result,
        slow_tasks=slow,
        failing_gates=failing,
        library_variant=variant,
    )


def _spec_task(task_number: int) -> TaskSpec:
    return load_spec().task(task_number)


@task(multiple_outputs=False)
def run_workflow_task(
    task_number: int, workflow_mode: WorkflowMode, codegen_result: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one spec task with its handler and return its result."""
    from k1n.tasks.dispatch import run_task

    spec_task, ctx = _spec_task(task_number), _run_context(workflow_mode, codegen_result)
    _record_code_start()
    return run_task(spec_task, ctx)


@task(retries=0, multiple_outputs=False)
def check_quality_gates(result_task_ids: dict[str, str]) -> dict[str, Any]:
    """Fail the run when the gate pass rate over all tasks is below the spec's threshold."""
    from k1n.workflow.quality import evaluate_quality_gates

    _record_code_start()
    ti = get_current_context()["ti"]
    results = {int(num): ti.xcom_pull(task_ids=tid) for num, tid in result_task_ids.items()}
    verdict = evaluate_quality_gates(results, load_spec().targets.quality_gate_pass_rate_min)
    log.info(verdict.summary())
    if not verdict.ok:
        # Kept as the return value even on failure: reports and the nightly verdict read the
        # pass rate from it. A quality verdict does not change on retry.
        ti.xcom_push(key="return_value", value=verdict.as_dict())
        raise AirflowFailException(verdict.summary())
    return verdict.as_dict()


@task(retries=1, multiple_outputs=False)
def clean_up_storage(workflow_mode: WorkflowMode, codegen_task_id: str) -> dict[str, Any]:
    """Record the run as finished and apply the storage retention (the DAG's teardown)."""
    from k1n.tasks.retention import DEFAULT_KEEP_RUNS, finish_run

    _record_code_start()
    ti = get_current_context()["ti"]
    codegen_result = ti.xcom_pull(task_ids=codegen_task_id)  # None when Task 8 failed
    keep = Variable.get(RETENTION_VARIABLE, default=DEFAULT_KEEP_RUNS)
    try:
        keep_runs = int(keep)
    except (TypeError, ValueError):
        raise AirflowFailException(
            f"Variable {RETENTION_VARIABLE}: expected a whole number, got {keep!r}"
        ) from None
    return finish_run(_run_context(workflow_mode, codegen_result), keep_runs)


@task(multiple_outputs=False)
def parse_library(max_shards: int) -> list[dict[str, Any]]:
    """Parse the pattern library and split the patterns to regenerate into shards."""
    from k1n.tasks.dispatch import codegen_parse

    _record_code_start()
    return codegen_parse(_run_context("optimized"), max_shards)


@task(map_index_template="{{ shard_name }}", multiple_outputs=False)
def generate_code(shard: dict[str, Any]) -> dict[str, Any]:
    """Render one shard of patterns from the Jinja2 templates."""
    from k1n.tasks.dispatch import codegen_generate

    _record_code_start()
    get_current_context()["shard_name"] = shard["name"]  # type: ignore[typeddict-unknown-key]
    return codegen_generate(_run_context("optimized"), shard)


@task(trigger_rule="none_failed", multiple_outputs=False)
def publish_code(task_number: int) -> dict[str, Any]:
    """Compile and validate what generate staged, publish it as one snapshot: Task 8's result
    (none_failed: nothing changed skips generate, and the current snapshot stays)."""
    from k1n.tasks.dispatch import codegen_publish

    _record_code_start()
    return codegen_publish(_spec_task(task_number), _run_context("optimized"))


# -- building the DAGs --------------------------------------------------------------------


def _task_arguments(
    spec_task: TaskSpec, spec: WorkflowSpec, priority: PriorityRule = "simulated"
) -> dict[str, Any]:
    """Retries, timeout, priority and docs of one spec task."""
    return {
        **retry_arguments(spec_task.retries, spec_task.retry_delay_seconds),
        # The spec's timeout is in production seconds; at a demo time scale it is a generous
        # upper bound, never a too-tight one.
        "execution_timeout": spec_task.timeout,
        **_priority(spec_task, spec, priority),
        "doc_md": _task_doc(spec_task),
    }


def _priority(spec_task: TaskSpec, spec: WorkflowSpec, rule: PriorityRule) -> dict[str, Any]:
    """Which ready task starts first when slots are short. `simulated` (shipped): the order
    whose replay under the DAG's slots ends first, over the DAG's last good runs, the spec's
    profile under `PROFILE_SLOTS` until there is one; `critical_path`: the longest remaining
    chain, measured the same way; `static`: the profile's remaining chain only; `downstream`:
    Airflow's default rule."""
    if rule == "downstream":
        return {"priority_weight": 1, "weight_rule": "downstream"}
    if rule == "simulated":
        ranks = _profile_ranks(spec)
        return {"priority_weight": ranks[spec_task.id], "weight_rule": SIMULATED_SCHEDULE_PRIORITY}
    profiled = max(1, round(spec.remaining_path_seconds[spec_task.id]))
    weight_rule = CRITICAL_PATH_PRIORITY if rule == "critical_path" else "absolute"
    return {"priority_weight": profiled, "weight_rule": weight_rule}


def _profile_ranks(spec: WorkflowSpec) -> dict[int, int]:
    """The spec's profile replayed under `PROFILE_SLOTS`: each task's rank, once per spec."""
    cached = _PROFILE_RANKS.get(id(spec))
    if cached is None or cached[0] is not spec:
        ranks = simulated_schedule_weights(
            spec.scheduling_graph, spec.profile_seconds, PROFILE_SLOTS
        )
        cached = (spec, {int(task_id): rank for task_id, rank in ranks.items()})
        _PROFILE_RANKS[id(spec)] = cached
    return cached[1]


# id(spec) -> (the spec, its ranks); the spec is kept so that its id is never reused.
_PROFILE_RANKS: dict[int, tuple[WorkflowSpec, dict[int, int]]] = {}


def _task_doc(spec_task: TaskSpec) -> str:
    stand_in = (
        "\n\n**Stand-in**: no agent is configured; this waits the profiled seconds x time scale."
        if spec_task.handler is HandlerKind.PROFILE
        else ""
    )
    return (
        f"**Task {spec_task.id}: {spec_task.name}** (phase {spec_task.phase}), handler "
        f"`{spec_task.handler}`, profiled {spec_task.seconds:.0f} s on the old system.{stand_in}"
    )


def _dag(
    dag_id: str, spec: WorkflowSpec, doc_md: str | None, description: str, **extra: Any
) -> DAG:
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=spec.targets.concurrent_workflows,
        tags=[*TAGS, "workflow", dag_id.rsplit("_", 1)[-1]],
        default_args=default_args(),
        params={"time_scale": time_scale_param("How fast stand-in tasks run")},
        **extra,
    )


def workflow_deadline(spec: WorkflowSpec) -> Any:
    """Deadline alert: a run still going `workflow_minutes_max` x the time scale after it was
    queued. The interval is fixed at parse time from the default scale (`K1N_TIME_SCALE`); a
    run triggered with another `time_scale` param is measured against that default."""
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    minutes = spec.targets.workflow_minutes_max * settings.default_time_scale()
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(
            DEADLINE_CALLBACK,
            kwargs={
                "limit_minutes": round(minutes, 3),
                "target": spec.targets.workflow_minutes_max,
            },
        ),
    )


def _quality_gates(result_task_ids: dict[int, str], spec: WorkflowSpec) -> Any:
    threshold = spec.targets.quality_gate_pass_rate_min
    return check_quality_gates.override(
        task_id=QUALITY_GATES_TASK_ID,
        doc_md=f"Pass rate over all gates must be >= {threshold:.0%}.",
    )(result_task_ids={str(num): tid for num, tid in result_task_ids.items()})


def _clean_up(workflow_mode: WorkflowMode, codegen_task_id: str) -> Any:
    """The teardown: runs once everything that reads the run's storage is done, whatever the
    outcome, and never decides the run's state."""
    return clean_up_storage.override(
        task_id=CLEAN_UP_TASK_ID,
        priority_weight=1,
        doc_md="Teardown: record the run as finished, remove its staging, apply retention "
        f"(Variable `{RETENTION_VARIABLE}`: finished runs kept).",
    )(workflow_mode=workflow_mode, codegen_task_id=codegen_task_id).as_teardown()


def _codegen_task(spec: WorkflowSpec) -> TaskSpec | None:
    found = spec.tasks_with(HandlerKind.CODEGEN)
    return found[0] if found else None


def build_baseline_dag(doc_md: str | None = None, spec: WorkflowSpec | None = None) -> DAG:
    """The old system: every task one after another, Task 8 as a single serial rebuild."""
    spec = spec or load_spec()
    codegen = _codegen_task(spec)
    with _dag(BASELINE_DAG_ID, spec, doc_md, "K1N workflow, the old sequential order") as dag:
        tasks: dict[int, Any] = {}
        for spec_task in spec.tasks:
            reads_codegen = spec_task.handler in CODEGEN_READERS and codegen is not None
            tasks[spec_task.id] = run_workflow_task.override(
                task_id=spec_task.airflow_task_id, **_task_arguments(spec_task, spec)
            )(
                task_number=spec_task.id,
                workflow_mode="baseline",
                codegen_result=tasks[codegen.id] if reads_codegen else None,
            )
        gates = _quality_gates({t.id: t.airflow_task_id for t in spec.tasks}, spec)
        chain(*tasks.values(), gates)
        if codegen is not None:
            readers = [tasks[t.id] for t in spec.tasks if t.handler in CODEGEN_READERS]
            [tasks[codegen.id], *readers] >> _clean_up("baseline", codegen.airflow_task_id)
    return dag


def build_optimized_dag(
    doc_md: str | None = None,
    spec: WorkflowSpec | None = None,
    *,
    dag_id: str = OPTIMIZED_DAG_ID,
    priority: PriorityRule = "simulated",
) -> DAG:
    """Parallel branches from the reduced dependency graph; Task 8 as a mapped task group.
    `dag_id` and `priority` let the benchmarks build variants (bench/dags/)."""
    spec = spec or load_spec()
    with _dag(
        dag_id,
        spec,
        doc_md,
        "K1N workflow, parallel and cached",
        deadline=workflow_deadline(spec),
    ) as dag:
        heads: dict[int, Any] = {}  # what a dependent waits for
        result_task_ids: dict[int, str] = {}
        codegen_result = None
        readers = []
        for spec_task in spec.tasks:  # the spec lists dependencies first (spec._check_graph)
            if spec_task.handler is HandlerKind.CODEGEN:
                group, written = _codegen_group(spec_task, spec, priority)
                heads[spec_task.id], codegen_result = group, written
                result_task_ids[spec_task.id] = written.operator.task_id
                continue
            reads_codegen = spec_task.handler in CODEGEN_READERS
            heads[spec_task.id] = run_workflow_task.override(
                task_id=spec_task.airflow_task_id, **_task_arguments(spec_task, spec, priority)
            )(
                task_number=spec_task.id,
                workflow_mode="optimized",
                codegen_result=codegen_result if reads_codegen else None,
            )
            result_task_ids[spec_task.id] = spec_task.airflow_task_id
            if reads_codegen:
                readers.append(heads[spec_task.id])
        for task_id, deps in spec.reduced_dependencies.items():
            for dep in deps:
                heads[dep] >> heads[task_id]
        dependents = {dep for deps in spec.reduced_dependencies.values() for dep in deps}
        sinks = [heads[t.id] for t in spec.tasks if t.id not in dependents]
        sinks >> _quality_gates(result_task_ids, spec)
        if codegen_result is not None:
            [codegen_result, *readers] >> _clean_up("optimized", codegen_result.operator.task_id)
    return dag


def _codegen_group(
    spec_task: TaskSpec, spec: WorkflowSpec, priority: PriorityRule
) -> tuple[Any, Any]:
    """Task 8 as parse -> generate (mapped) -> publish (compile, validate, write)."""
    arguments = _task_arguments(spec_task, spec, priority)
    parse_id, generate_id, publish_id = CODEGEN_STAGE_TASK_IDS
    shards = settings.codegen_shards()
    written: list[Any] = []

    @task_group(
        group_id=spec_task.airflow_task_id, tooltip=f"Task {spec_task.id}: {spec_task.name}"
    )
    def code_generation() -> None:
        parsed = parse_library.override(task_id=parse_id, **arguments)(max_shards=shards)
        # At most `shards` generate tasks of one run at once; no pool needed.
        generated = generate_code.override(
            task_id=generate_id, max_active_tis_per_dagrun=shards, **arguments
        ).expand(shard=parsed)
        written.append(
            publish_code.override(task_id=publish_id, **arguments)(task_number=spec_task.id)
        )
        generated >> written[0]

    return code_generation(), written[0]
