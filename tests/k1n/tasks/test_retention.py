"""Retention: finished runs beyond the newest N are removed, running runs are never touched,
and a snapshot goes only when nothing refers to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from k1n import storage
from k1n.codegen import Staging
from k1n.codegen.contracts import Plan
from k1n.tasks.context import RunContext
from k1n.tasks.retention import RUN_RECORD, finish_run
from tests.k1n.codegen.test_snapshots import publish


def context(tmp_path: Path, run_id: str, snapshot: str | None = None) -> RunContext:
    return RunContext(
        dag_id="k1n_test",
        run_id=run_id,
        time_scale=1,
        storage=storage.open_root(tmp_path / "storage"),
        cache_dir=tmp_path / "cache",
        codegen_result={"snapshot": snapshot} if snapshot else None,
    )


def plan_on(base: str | None) -> Plan:
    """A plan that builds on `base` (its library does not matter to retention)."""
    return Plan(
        engine="test",
        mode="optimized",
        library={},
        templates={},
        dirty={},
        recorded={},
        removed=[],
        base=base,
    )


def finished(ctx: RunContext) -> bool:
    return storage.read_json(ctx.run_prefix / RUN_RECORD) is not None


def test_finishing_records_the_run_removes_its_staging_and_keeps_the_newest(tmp_path):
    runs = [context(tmp_path, f"run-{n}") for n in range(4)]
    for ctx in runs:
        Staging(ctx.codegen_staging).write_plan(plan_on(None))
        summary = finish_run(ctx, keep_runs=2)
        assert storage.children(ctx.codegen_staging) == []
    assert summary["removed_runs"] == ["run-1"]
    assert [finished(ctx) for ctx in runs] == [False, False, True, True]
    assert Path(runs[0].run_prefix.path).exists() is False


def test_a_running_run_is_never_touched_and_keeps_its_snapshots(tmp_path):
    running = context(tmp_path, "running")
    store = running.codegen_store
    base = publish(store, {"a.py": b"base"})
    staging = Staging(running.codegen_staging)
    staging.write_plan(plan_on(base))
    published_by_running = publish(store, {"a.py": b"mine"})
    staging.write_published(published_by_running)
    unreferenced = publish(store, {"a.py": b"nobody's"})
    current = publish(store, {"a.py": b"current"})

    summary = finish_run(context(tmp_path, "done"), keep_runs=1)

    assert summary["removed_snapshots"] == [unreferenced]
    assert set(store.snapshot_ids()) == {base, published_by_running, current}
    assert storage.read_json(running.codegen_staging / "plan.json")["base"] == base
    assert not finished(running)


def test_no_snapshot_is_removed_while_a_run_reads_the_pointer(tmp_path):
    reading = context(tmp_path, "reading")
    publish(reading.codegen_store, {"a.py": b"old"})
    publish(reading.codegen_store, {"a.py": b"new"})
    Staging(reading.codegen_staging).write_claim()
    summary = finish_run(context(tmp_path, "done"), keep_runs=1)
    assert summary["removed_snapshots"] == []
    assert len(reading.codegen_store.snapshot_ids()) == 2


def test_kept_finished_runs_keep_the_snapshot_they_published(tmp_path):
    ctx = context(tmp_path, "first")
    mine = publish(ctx.codegen_store, {"a.py": b"first"})
    finish_run(context(tmp_path, "first", snapshot=mine), keep_runs=2)
    publish(ctx.codegen_store, {"a.py": b"second"})
    finish_run(context(tmp_path, "second"), keep_runs=2)
    assert mine in ctx.codegen_store.snapshot_ids()
    finish_run(context(tmp_path, "third"), keep_runs=2)  # "first" falls out of the window
    assert mine not in ctx.codegen_store.snapshot_ids()


def test_keep_runs_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep_runs must be at least 1"):
        finish_run(context(tmp_path, "x"), keep_runs=0)
