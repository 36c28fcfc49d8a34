"""Build the baseline and the optimized DAG from one workflow spec.

Both DAGs have the same 22 tasks (ids `task_<NN>_<name>`), the same handlers and a final
`check_quality_gates`; they differ only in how the tasks are wired and how Task 8 runs:

- baseline: the old order 1 -> 2 -> ... -> 22; Task 8 is one task running the five codegen
  stages serially with no template cache and a full rebuild, as the bash handlers did;
- optimized: the transitive reduction of the declared dependencies, so every independent set
  (1 || 2, 3 || 4 || 5, ...) runs in parallel; Task 8 is a task group
  parse -> generate (mapped over shards) -> compile -> validate -> write, with the template
  bytecode cache and the incremental manifest.

Nothing here touches the metadata DB or the network: DAG files call these at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, chain, get_current_context, task, task_group

from include.k1n import settings
from include.k1n.tasks.context import CodegenMode, RunContext
from include.k1n.workflow.names import (
    BASELINE_DAG_ID,
    CODEGEN_STAGE_TASK_IDS,
    OPTIMIZED_DAG_ID,
)
from include.k1n.workflow.spec import HandlerKind, TaskSpec, WorkflowSpec, load_spec

log = logging.getLogger(__name__)

TAGS = ["k1n", "workflow"]
CODEGEN_POOL = "codegen"
# Async callback of the optimized DAG's deadline alert (runs in the triggerer).
DEADLINE_CALLBACK = "include.k1n.dag_builders.alerts.workflow_deadline_missed"
START_DATE = pendulum.datetime(2026, 11, 1, tz="UTC")
MAX_RETRY_DELAY = timedelta(minutes=10)


def _run_context(codegen_mode: CodegenMode) -> RunContext:
    context = get_current_context()
    dag_run = context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    return RunContext(
        dag_id=context["dag"].dag_id,
        run_id=context["run_id"],
        time_scale=settings.parse_time_scale(context["params"]["time_scale"]),
        codegen_mode=codegen_mode,
        slow_tasks=_chaos_knob(conf, "slow_tasks", float),
        failing_gates=_chaos_knob(conf, "failing_gates", int),
    )


def _chaos_knob(conf: Any, key: str, kind: type) -> dict[int, Any]:
    """A test/chaos knob from the run conf: `{"13": 3.0}` -> `{13: 3.0}` (see RunContext)."""
    value = conf.get(key) if isinstance(conf, dict) else None
    if not value:
        return {}
    knob = {int(task): kind(amount) for task, amount in dict(value).items()}
    log.warning("run conf %s=%s: stand-in tasks are deliberately altered", key, knob)
    return knob


def _spec_task(task_number: int) -> TaskSpec:
    return load_spec().task(task_number)


@contextmanager
def _no_retry_for_invalid_code() -> Iterator[None]:
    """Generated code that fails validation fails the same way on retry: skip the retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.k1n.codegen import ValidationFailed

    try:
        yield
    except ValidationFailed as exc:
        raise AirflowFailException(str(exc)) from exc


@task
def run_workflow_task(task_number: int, codegen_mode: CodegenMode) -> dict[str, Any]:
    """Run one spec task with its handler and return its result file."""
    from include.k1n.tasks.dispatch import run_task

    with _no_retry_for_invalid_code():
        return run_task(_spec_task(task_number), _run_context(codegen_mode))


@task(retries=0)
def check_quality_gates(result_task_ids: dict[str, str]) -> dict[str, Any]:
    """Fail the run when the gate pass rate over all tasks is below the spec's threshold."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.k1n.workflow.quality import evaluate_quality_gates
    from include.k1n.workflow.spec import load_spec

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


@task
def parse_library(max_shards: int) -> list[dict[str, Any]]:
    """Parse the pattern library and split the patterns to regenerate into shards."""
    from include.k1n.tasks.dispatch import codegen_parse

    return codegen_parse(_run_context("optimized"), max_shards)


@task(map_index_template="{{ shard_name }}")
def generate_code(shard: dict[str, Any]) -> dict[str, Any]:
    """Render one shard of patterns from the Jinja2 templates."""
    from include.k1n.tasks.dispatch import codegen_generate

    get_current_context()["shard_name"] = shard["name"]  # type: ignore[typeddict-unknown-key]
    return codegen_generate(_run_context("optimized"), shard)


@task(trigger_rule="none_failed")
def compile_code() -> dict[str, Any]:
    """Byte-compile the generated modules (none_failed: an empty shard list skips generate)."""
    from include.k1n.tasks.dispatch import codegen_compile

    return codegen_compile(_run_context("optimized"))


@task
def validate_code() -> dict[str, Any]:
    """Import the generated modules, run their tests and lint them."""
    from include.k1n.tasks.dispatch import codegen_validate

    with _no_retry_for_invalid_code():
        return codegen_validate(_run_context("optimized"))


@task
def write_outputs(task_number: int) -> dict[str, Any]:
    """Publish the generated code atomically and record Task 8's result."""
    from include.k1n.tasks.dispatch import codegen_write

    return codegen_write(_spec_task(task_number), _run_context("optimized"))


def _task_arguments(spec_task: TaskSpec, spec: WorkflowSpec) -> dict[str, Any]:
    """Retries, backoff, timeout and priority of one spec task."""
    return {
        "retries": spec_task.retries,
        "retry_delay": timedelta(seconds=spec_task.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": MAX_RETRY_DELAY,
        # The spec's timeout is in production seconds; at a demo time scale it is a generous
        # upper bound, never a too-tight one.
        "execution_timeout": timedelta(seconds=spec_task.timeout_seconds),
        # Longest remaining chain first, when slots are short.
        "priority_weight": max(1, round(spec.remaining_path_seconds[spec_task.id])),
        "weight_rule": "absolute",
        "doc_md": _task_doc(spec_task),
    }


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
        tags=[*TAGS, dag_id.rsplit("_", 1)[-1]],
        default_args={"owner": "k1n-platform"},
        params={
            "time_scale": Param(
                settings.default_time_scale(),
                type="number",
                exclusiveMinimum=0,
                description="Stand-in tasks wait profiled seconds x this (1/60: a minute -> 1 s).",
            ),
        },
        **extra,
    )


def workflow_deadline(spec: WorkflowSpec) -> Any:
    """Deadline alert: a run still going `workflow_minutes_max` x the time scale after it was
    queued. The interval is fixed at parse time from the default scale (`K1N_TIME_SCALE`); a
    run triggered with another `time_scale` param is measured against that default."""
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


def _quality_gates(result_task_ids: dict[int, str], spec: WorkflowSpec):
    return check_quality_gates.override(
        doc_md=f"Pass rate over all gates must be >= {spec.targets.quality_gate_pass_rate_min:.0%}."
    )(result_task_ids={str(num): tid for num, tid in result_task_ids.items()})


def build_baseline_dag(doc_md: str | None = None, spec: WorkflowSpec | None = None) -> DAG:
    """The old system: every task one after another, Task 8 as a single serial rebuild."""
    spec = spec or load_spec()
    with _dag(BASELINE_DAG_ID, spec, doc_md, "K1N workflow, the old sequential order") as dag:
        tasks = [
            run_workflow_task.override(
                task_id=spec_task.airflow_task_id, **_task_arguments(spec_task, spec)
            )(task_number=spec_task.id, codegen_mode="baseline")
            for spec_task in spec.tasks
        ]
        gates = _quality_gates({t.id: t.airflow_task_id for t in spec.tasks}, spec)
        chain(*tasks, gates)
    return dag


def build_optimized_dag(doc_md: str | None = None, spec: WorkflowSpec | None = None) -> DAG:
    """Parallel branches from the reduced dependency graph; Task 8 as a mapped task group."""
    spec = spec or load_spec()
    with _dag(
        OPTIMIZED_DAG_ID,
        spec,
        doc_md,
        "K1N workflow, parallel and cached",
        deadline=workflow_deadline(spec),
    ) as dag:
        heads: dict[int, Any] = {}  # what a dependent waits for
        result_task_ids: dict[int, str] = {}
        for spec_task in spec.tasks:
            if spec_task.handler is HandlerKind.CODEGEN:
                group, write_task_id = _codegen_group(spec_task, spec)
                heads[spec_task.id] = group
                result_task_ids[spec_task.id] = write_task_id
            else:
                heads[spec_task.id] = run_workflow_task.override(
                    task_id=spec_task.airflow_task_id, **_task_arguments(spec_task, spec)
                )(task_number=spec_task.id, codegen_mode="optimized")
                result_task_ids[spec_task.id] = spec_task.airflow_task_id
        for task_id, deps in spec.reduced_dependencies.items():
            for dep in deps:
                heads[dep] >> heads[task_id]
        dependents = {dep for deps in spec.reduced_dependencies.values() for dep in deps}
        sinks = [heads[t.id] for t in spec.tasks if t.id not in dependents]
        sinks >> _quality_gates(result_task_ids, spec)
    return dag


def _codegen_group(spec_task: TaskSpec, spec: WorkflowSpec) -> tuple[Any, str]:
    """Task 8 as parse -> generate (mapped) -> compile -> validate -> write."""
    arguments = _task_arguments(spec_task, spec)
    group_id = spec_task.airflow_task_id

    @task_group(group_id=group_id, tooltip=f"Task {spec_task.id}: {spec_task.name}")
    def code_generation():
        shards = parse_library.override(**arguments)(max_shards=settings.codegen_shards())
        # The `codegen` pool (airflow_settings.yaml) bounds shards across concurrent runs.
        generated = generate_code.override(**arguments, pool=CODEGEN_POOL).expand(shard=shards)
        compiled = compile_code.override(**arguments)()
        validated = validate_code.override(**arguments)()
        written = write_outputs.override(**arguments)(task_number=spec_task.id)
        chain(generated, compiled, validated, written)

    return code_generation(), f"{group_id}.{CODEGEN_STAGE_TASK_IDS[-1]}"
