"""What one workflow task does when it runs: the spec's handler, mapped onto its implementation.

Plain Python with no Airflow import, so the same code runs under the scheduler, in tests and
from the command line; `k1n.dag_builders.workflow` wraps these functions in Airflow
tasks. Every handler returns a result that passes the result contract
(`k1n.workflow.results`): it becomes the task's XCom and feeds the quality gates.

Nothing here relies on a file another task left on this machine: local folders are private
to one task and removed when it ends; what later tasks read goes to object storage
(`RunContext.storage`) or into the result.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from k1n import settings, storage
from k1n.codegen import CodegenError, plan_shards, run_stages
from k1n.codegen.contracts import Shard, parse_document
from k1n.tasks.context import RunContext
from k1n.workflow.results import validated_result
from k1n.workflow.spec import HandlerKind, TaskSpec

# Where Tasks 9, 10 and 12 keep verified results of unchanged units (under the storage root).
CHECK_RESULTS = "check-results"

log = logging.getLogger(__name__)

Handler = Callable[[TaskSpec, RunContext], dict[str, Any]]


def run_task(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Run `task` with its handler and return its validated result."""
    started = time.perf_counter()
    result = validated_result(
        {**_HANDLERS[task.handler](task, ctx), "handler": task.handler.value},
        f"task {task.label}",
    )
    log.info(
        "task %s finished in %.2f s: quality gates %s/%s",
        task.label,
        time.perf_counter() - started,
        result["quality_gates"]["passed"],
        result["quality_gates"]["total"],
    )
    return result


def _scratch(task: TaskSpec, ctx: RunContext) -> tempfile.TemporaryDirectory[str]:
    """A local folder private to this task, removed when it ends."""
    return tempfile.TemporaryDirectory(prefix=f"k1n-{storage.key_for(ctx.run_id)}-{task.id}-")


def _run_profile(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    from k1n.tasks.stand_in import run_profile

    return run_profile(
        task_id=task.id,
        name=task.name,
        seconds=task.seconds * ctx.slow_tasks.get(task.id, 1.0),
        time_scale=ctx.time_scale,
        gates_total=task.quality_gates,
        gates_failed=min(
            task.quality_gates, task.failing_gates + ctx.failing_gates.get(task.id, 0)
        ),
    )


def _run_command(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    from k1n.tasks.command import run_command

    assert task.command is not None  # the spec guarantees it for handler: command
    with _scratch(task, ctx) as scratch:
        return run_command(
            task.command,
            task_id=task.id,
            run_id=ctx.run_id,
            work_dir=Path(scratch),
            project_dir=settings.PROJECT_DIR,
            timeout=task.timeout_seconds,
        )


def _run_pattern_library(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Task 7: validate and index the library; the index goes to the run's records."""
    from k1n.codegen import index_library

    # Parsed YAML kept as Task 8's parse keeps it (the optimized mode only).
    result, index = index_library(ctx.library_dir(), ctx.codegen_engine().parsed_cache_dir)
    target = ctx.run_prefix / "pattern-index.json"
    storage.write_json(target, index)
    return {**result, "index": str(target)}


def _run_codegen(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Task 8 in one process: all five stages, the way the baseline DAG runs it."""
    return run_stages(ctx.codegen_engine(), workers=1).model_dump(mode="json")


def _output_check(check_name: str) -> Handler:
    def run_check(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
        from k1n import checks
        from k1n.checks.results import ResultStore

        snapshot = ctx.codegen_snapshot
        if snapshot is None:
            raise CodegenError(
                f"task {task.label} checks Task 8's output but got no snapshot id from it"
            )
        # Optimized: verified results of unchanged units, shared by every run (keyed by digest);
        # the baseline checks everything, as the old handlers did.
        results = (
            ResultStore(
                ctx.storage / CHECK_RESULTS / check_name,
                owner=f"{ctx.dag_id}/{ctx.run_id}/{task.airflow_task_id}",
            )
            if ctx.workflow_mode == "optimized"
            else None
        )

        def check_checkout() -> dict[str, Any]:
            with _scratch(task, ctx) as scratch:
                ctx.codegen_store.checkout(snapshot, Path(scratch))
                return getattr(checks, check_name)(Path(scratch), results)

        result = (
            check_checkout()
            if results is None
            else checks.check_snapshot(check_name, snapshot, results, check_checkout)
        )
        return {**result, "snapshot": snapshot}

    run_check.__doc__ = (
        f"Run `checks.{check_name}` on the snapshot this run's Task 8 published, checking "
        "only what changed since a verified result, and nothing for a snapshot checked before "
        "(the baseline: everything)."
    )
    return run_check


_HANDLERS: Mapping[HandlerKind, Handler] = {
    HandlerKind.PROFILE: _run_profile,
    HandlerKind.COMMAND: _run_command,
    HandlerKind.PATTERN_LIBRARY: _run_pattern_library,
    HandlerKind.CODEGEN: _run_codegen,
    HandlerKind.UNIT_TESTS: _output_check("run_unit_tests"),
    HandlerKind.STATIC_ANALYSIS: _output_check("run_static_analysis"),
    HandlerKind.CODE_SECURITY: _output_check("run_security_scan"),
}


# -- Task 8 stage by stage, for the optimized DAG's task group ----------------------------


# Each stage's XCom is its typed result dumped to JSON (`k1n.codegen.contracts`): readable in
# the UI, and no class of ours has to be allowed for XCom deserialisation.


def codegen_parse(ctx: RunContext, max_shards: int) -> list[dict[str, Any]]:
    """Stage 1: parse the library, find what changed, cut the dirty patterns into shards."""
    plan = ctx.codegen_engine().parse(ctx.codegen_staging)
    shards = plan_shards(plan.dirty, max_shards=max_shards)
    log.info(
        "library: %s patterns, %s to regenerate in %s shard(s), %s unchanged",
        plan.library_size,
        len(plan.dirty),
        len(shards),
        plan.clean,
    )
    return [shard.model_dump(mode="json") for shard in shards]


def codegen_generate(ctx: RunContext, shard: Mapping[str, Any]) -> dict[str, Any]:
    """Stage 2 (mapped): render one shard's patterns into the run's staging."""
    patterns = parse_document(Shard, shard, "the shard from parse_library").patterns
    return ctx.codegen_engine().generate(ctx.codegen_staging, patterns).model_dump(mode="json")


def codegen_publish(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Stages 3-5: byte-compile and validate what generate staged, on every core, then publish
    the snapshot; Task 8's result. With nothing regenerated there is nothing to compile or
    validate, and the current snapshot stays."""
    engine, staging = ctx.codegen_engine(), ctx.codegen_staging
    if engine.planned(staging).dirty:
        engine.compile(staging, workers=_cores())
        engine.validate(staging, workers=_cores())
    written = engine.write(staging).model_dump(mode="json")
    return validated_result({**written, "handler": task.handler.value}, f"task {task.label}")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
