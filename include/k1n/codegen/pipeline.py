"""All five stages of Task 8 in one call: the baseline's Task 8 and `k1n codegen`.

In Airflow the optimized DAG runs the stages as separate tasks; here they run one after the
other in this process, with a process pool for generate when there are several workers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from k1n import storage
from k1n.codegen.contracts import CodegenSummary, GenerateResult, Shard
from k1n.codegen.engine import CodegenEngine, StagingLike
from k1n.codegen.errors import CodegenError
from k1n.codegen.planning import plan_shards
from k1n.codegen.staging import Staging


def process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool that starts fast where that is safe.

    Forking copies the parent's imports, so workers start in milliseconds; but forking a
    process with other threads can copy a lock some thread holds and deadlock the child. So:
    fork when this process has one thread, spawn otherwise. (Never in an Airflow task: the
    baseline's Task 8 runs with one worker.)
    """
    method = "fork" if threading.active_count() == 1 else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method)
    )


@contextlib.contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of the `with` block as `seconds[stage]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = round(time.perf_counter() - started, 3)


def _generate_in_worker(
    engine_args: dict[str, Any], staging_root: str, patterns: list[str]
) -> GenerateResult:
    """Pool entry point: a fresh engine in the worker process renders one shard."""
    engine = CodegenEngine(**engine_args)
    return engine.generate(storage.open_root(staging_root), patterns)


def run_stages(
    engine: CodegenEngine, staging: StagingLike | None = None, workers: int = 1
) -> CodegenSummary:
    """Parse, generate, compile, validate and write in one call; return a summary.

    `workers > 1` renders the shards in a process pool and runs the generated tests in that
    many interpreters. Without `staging`, a private local folder is used and removed.
    """
    if workers < 1:
        raise CodegenError(f"workers must be at least 1, got {workers}")
    started = time.perf_counter()
    scratch = None if staging is not None else tempfile.mkdtemp(prefix="k1n-staging-")
    stage = engine._staging(staging if staging is not None else Path(scratch))  # type: ignore[arg-type]
    seconds: dict[str, float] = {}
    try:
        with _timed(seconds, "parse"):
            plan = engine.parse(stage)
        with _timed(seconds, "generate"):
            shards = plan_shards(plan.dirty, max_shards=workers, min_per_shard=1)
            generated = _generate_shards(engine, stage, shards, workers)
        with _timed(seconds, "compile"):
            compiled = engine.compile(stage, workers=workers)
        with _timed(seconds, "validate"):
            validated = engine.validate(stage, workers=workers)
        with _timed(seconds, "write"):
            written = engine.write(stage)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return CodegenSummary(
        mode=engine.mode,
        workers=workers,
        library_size=plan.library_size,
        regenerated=len(plan.dirty),
        unchanged=plan.clean,
        removed_patterns=len(plan.removed),
        dirty_reasons=plan.dirty_reasons,
        shards=len(shards),
        templates_compiled=sum(stats.templates_compiled for stats in generated),
        templates_from_cache=sum(stats.templates_from_cache for stats in generated),
        files_compiled=compiled.files,
        tests_run=validated.tests_run,
        published_files=written.published_files,
        snapshot=written.snapshot,
        store=written.store,
        stages=seconds,
        seconds=round(time.perf_counter() - started, 3),
        quality_gates=written.quality_gates,
    )


def _generate_shards(
    engine: CodegenEngine, stage: Staging, shards: list[Shard], workers: int
) -> list[GenerateResult]:
    if not shards:
        return []
    if workers == 1 or len(shards) == 1 or not storage.is_local(stage.root):
        return [engine.generate(stage, shard.patterns) for shard in shards]
    with process_pool(len(shards)) as pool:
        futures = [
            pool.submit(
                _generate_in_worker,
                engine._engine_args(),
                stage.root.path,
                shard.patterns,
            )
            for shard in shards
        ]
        return [future.result() for future in futures]
