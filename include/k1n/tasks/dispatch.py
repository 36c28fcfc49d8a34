"""What one workflow task does when it runs: the spec's handler, mapped onto its implementation.

Plain Python with no Airflow import, so the same code runs under the scheduler, in tests and
from the command line. `include.k1n.dag_builders.workflow` wraps these functions in Airflow tasks.
Every handler writes `task-results/task-<id>.json` into the run's work directory and returns
the validated result, which becomes the task's XCom and feeds the quality gates.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from include.k1n import settings
from include.k1n.tasks.context import RunContext
from include.k1n.workflow.results import read_result, write_result
from include.k1n.workflow.spec import HandlerKind, TaskSpec

log = logging.getLogger(__name__)


def run_task(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Run `task` with its handler and return its validated result."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = _HANDLERS[task.handler](task, ctx)
    log.info(
        "task %s finished in %.2f s: quality gates %s/%s",
        task.label,
        time.perf_counter() - started,
        result["quality_gates"]["passed"],
        result["quality_gates"]["total"],
    )
    return result


def _record(task: TaskSpec, ctx: RunContext, result: dict[str, Any]) -> dict[str, Any]:
    """Write an in-process handler's result file, exactly as an external handler would."""
    write_result(ctx.work_dir, task.id, {**result, "handler": task.handler.value})
    return read_result(ctx.work_dir, task.id)


def _run_profile(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    from include.k1n.tasks.stand_in import run_profile

    return run_profile(
        task_id=task.id,
        name=task.name,
        seconds=task.seconds * ctx.slow_tasks.get(task.id, 1.0),
        time_scale=ctx.time_scale,
        work_dir=ctx.work_dir,
        gates_total=task.quality_gates,
        gates_failed=min(
            task.quality_gates, task.failing_gates + ctx.failing_gates.get(task.id, 0)
        ),
    )


def _run_command(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    from include.k1n.tasks.command import run_command

    assert task.command is not None  # the spec guarantees it for handler: command
    return run_command(
        task.command,
        task_id=task.id,
        run_id=ctx.run_id,
        work_dir=ctx.work_dir,
        project_dir=settings.PROJECT_DIR,
        timeout=task.timeout_seconds,
    )


def _run_pattern_library(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    from include.k1n.codegen import index_library

    index = index_library(ctx.work_dir / "pattern-index.json")
    return _record(task, ctx, index)


def _run_codegen(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Task 8 in one process: all five stages, the way the baseline DAG runs it."""
    summary = ctx.codegen_engine().run(staging_dir=ctx.codegen_staging_dir, workers=1)
    return _record(task, ctx, summary)


def _output_check(check_name: str) -> Callable[[TaskSpec, RunContext], dict[str, Any]]:
    def run_check(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
        from include.k1n.codegen import checks

        output_dir = ctx.codegen_engine().output_dir
        return _record(task, ctx, getattr(checks, check_name)(output_dir))

    run_check.__doc__ = f"Run `checks.{check_name}` on the DAG's published codegen output."
    return run_check


_HANDLERS: dict[HandlerKind, Callable[[TaskSpec, RunContext], dict[str, Any]]] = {
    HandlerKind.PROFILE: _run_profile,
    HandlerKind.COMMAND: _run_command,
    HandlerKind.PATTERN_LIBRARY: _run_pattern_library,
    HandlerKind.CODEGEN: _run_codegen,
    HandlerKind.UNIT_TESTS: _output_check("run_unit_tests"),
    HandlerKind.STATIC_ANALYSIS: _output_check("run_static_analysis"),
    HandlerKind.CODE_SECURITY: _output_check("run_security_scan"),
}


# -- Task 8 stage by stage, for the optimized DAG's task group ----------------------------


def codegen_parse(ctx: RunContext, max_shards: int) -> list[dict[str, Any]]:
    """Stage 1: parse the library, find what changed, cut the dirty patterns into shards."""
    from include.k1n.codegen import plan_shards

    plan = ctx.codegen_engine().parse(ctx.codegen_staging_dir)
    shards = plan_shards(plan["dirty"], max_shards=max_shards)
    log.info(
        "library: %s patterns, %s to regenerate in %s shard(s), %s unchanged",
        plan["library_size"],
        len(plan["dirty"]),
        len(shards),
        plan["clean"],
    )
    return shards


def codegen_generate(ctx: RunContext, shard: dict[str, Any]) -> dict[str, Any]:
    """Stage 2 (mapped): render one shard's patterns into the run's staging directory."""
    return ctx.codegen_engine().generate(ctx.codegen_staging_dir, shard["patterns"])


def codegen_compile(ctx: RunContext) -> dict[str, Any]:
    """Stage 3: byte-compile everything staged, on every core."""
    return ctx.codegen_engine().compile(ctx.codegen_staging_dir, workers=_cores())


def codegen_validate(ctx: RunContext) -> dict[str, Any]:
    """Stage 4: import, run the generated tests, lint, on every core."""
    return ctx.codegen_engine().validate(ctx.codegen_staging_dir, workers=_cores())


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def codegen_write(task: TaskSpec, ctx: RunContext) -> dict[str, Any]:
    """Stage 5: publish atomically and record Task 8's result."""
    return _record(task, ctx, ctx.codegen_engine().write(ctx.codegen_staging_dir))
