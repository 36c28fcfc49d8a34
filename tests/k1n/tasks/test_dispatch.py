"""dispatch.run_task: every handler kind is wired, each returns a valid result, and nothing a
later task reads is left on local disk."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from k1n import checks, storage
from k1n.codegen import (
    CodegenEngine,
    CodegenError,
    CodegenStore,
    default_library_dir,
    run_stages,
)
from k1n.codegen.library import parsed_cache_file
from k1n.codegen.staging import COMPILE_RECORD, VALIDATE_RECORD
from k1n.tasks import dispatch
from k1n.tasks.context import RunContext
from k1n.workflow.spec import HandlerKind, TaskSpec, load_spec
from tests.k1n.conftest import copy_small_library

RUN_ID = "manual__2026-11-25T20:00:00+00:00"


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(
        dag_id="k1n_test",
        run_id=RUN_ID,
        time_scale=1 / 1000,
        storage=storage.open_root(tmp_path / "storage"),
        cache_dir=tmp_path / "cache",
    )


def spec_task(**overrides) -> TaskSpec:
    fields = {
        "id": 3,
        "name": "Architecture",
        "phase": 2,
        "handler": "profile",
        "seconds": 30,
        "timeout_seconds": 60,
    } | overrides
    return TaskSpec.model_validate(fields)


def local_scratch_left() -> list[str]:
    return [p.name for p in Path(tempfile.gettempdir()).glob(f"k1n-{storage.key_for(RUN_ID)}-*")]


def test_every_handler_kind_has_an_implementation():
    assert set(dispatch._HANDLERS) == set(HandlerKind)


def test_run_prefix_is_per_dag_and_run_collision_free_and_path_safe(ctx, tmp_path):
    prefix = Path(ctx.run_prefix.path)
    assert prefix.parent.parent == tmp_path / "storage" / "runs"
    assert prefix.name.startswith("manual__2026-11-25T20_00_00_00_00-")
    other = RunContext(**{**ctx.__dict__, "run_id": "manual__2026-11-25T20_00_00_00_00"})
    assert other.run_prefix.path != ctx.run_prefix.path


def test_profile_task_waits_scaled_and_records_its_gates(ctx, caplog):
    caplog.set_level("INFO")
    result = dispatch.run_task(spec_task(failing_gates=2), ctx)
    assert result["quality_gates"] == {"passed": 8, "total": 10}
    assert result["handler"] == "profile"
    assert result["waited_seconds"] == pytest.approx(0.03, abs=0.02)
    assert "stand-in" in caplog.text


def test_command_task_runs_an_agent_script_in_a_private_folder_it_removes(
    ctx, tmp_path, monkeypatch
):
    scan = tmp_path / "scan"
    scan.mkdir()
    (scan / "clean.sh").write_text("echo hello\n")
    monkeypatch.setenv("K1N_SCAN_DIR", str(scan))
    task = spec_task(
        id=1,
        name="Security Audit",
        handler="command",
        command="ops/agents/security-agent-handler.sh {task_id}",
    )
    result = dispatch.run_task(task, ctx)
    assert result["quality_gates"]["passed"] == result["quality_gates"]["total"] > 0
    assert local_scratch_left() == []


def test_pattern_library_task_indexes_the_library_into_object_storage(ctx):
    result = dispatch.run_task(
        spec_task(id=7, name="Pattern Library", handler="pattern_library"), ctx
    )
    assert result["quality_gates"]["passed"] == result["quality_gates"]["total"] > 100
    index = storage.read_json(ctx.run_prefix / "pattern-index.json")
    assert len(index["patterns"]) == result["library_size"]
    assert result["handler"] == "pattern_library"


def test_a_library_variant_reaches_tasks_7_and_8_with_every_pattern_changed(ctx):
    task_7 = spec_task(id=7, name="Pattern Library", handler="pattern_library")
    hashes = {}
    for variant in (0, 5):
        run = RunContext(**{**ctx.__dict__, "run_id": f"{RUN_ID}-{variant}"})
        run = RunContext(**{**run.__dict__, "library_variant": variant})
        dispatch.run_task(task_7, run)
        index = storage.read_json(run.run_prefix / "pattern-index.json")
        hashes[variant] = {p["name"]: p["spec_sha256"] for p in index["patterns"]}
        assert run.codegen_engine().library_dir == (run.library_dir() or default_library_dir())
    assert hashes[0].keys() == hashes[5].keys()
    assert all(hashes[0][name] != hashes[5][name] for name in hashes[0])


def test_checks_read_the_snapshot_their_run_published_not_the_current_one(ctx, tmp_path):
    """Task 8 publishes; a later publication moves the pointer; Task 9 still reads its own."""
    spec = load_spec()
    library = copy_small_library(tmp_path / "library")  # Task 8 on 12 patterns, not 600
    codegen = run_stages(
        CodegenEngine(ctx.codegen_store, library_dir=library, cache_dir=ctx.cache_dir)
    )
    ours = codegen.snapshot
    ctx.codegen_store.point_at("0" * 20)  # another run's snapshot
    checker = RunContext(**{**ctx.__dict__, "codegen_result": codegen.model_dump(mode="json")})
    result = dispatch.run_task(spec.task(12), checker)
    assert result["snapshot"] == ours
    assert result["quality_gates"]["passed"] == result["quality_gates"]["total"]
    assert local_scratch_left() == []


def test_a_check_without_a_snapshot_fails_with_a_clear_error(ctx):
    with pytest.raises(CodegenError, match="got no snapshot id"):
        dispatch.run_task(load_spec().task(10), ctx)


def test_the_baseline_checks_everything_and_the_optimized_dag_reuses_verified_results(
    ctx, tmp_path
):
    """The baseline checks as the old handlers did; the optimized DAG's second run reuses."""
    library = copy_small_library(tmp_path / "library")
    codegen = run_stages(
        CodegenEngine(ctx.codegen_store, library_dir=library, cache_dir=ctx.cache_dir)
    )
    task = load_spec().task(10)
    checked = {}
    for run, mode in enumerate(("baseline", "baseline", "optimized", "optimized")):
        checker = RunContext(
            **{
                **ctx.__dict__,
                "run_id": f"{RUN_ID}-{run}",
                "workflow_mode": mode,
                "codegen_result": codegen.model_dump(mode="json"),
            }
        )
        checked[run] = dispatch.run_task(task, checker)["details"]
    assert checked[0]["reused"] == checked[1]["reused"] == 0  # nothing stored, nothing reused
    assert checked[1]["checked"] == checked[2]["checked"] > 0
    assert checked[2]["reused"] == 0
    assert (checked[3]["reused"], checked[3]["checked"]) == (checked[2]["checked"], 0)
    stored = ctx.storage / dispatch.CHECK_RESULTS
    assert [p.name for p in stored.iterdir()] == ["run_static_analysis"]  # the optimized runs'


@pytest.mark.parametrize("task_number", [9, 10, 12])
def test_a_snapshot_checked_before_is_one_read_and_a_new_tool_checks_it_again(
    ctx, tmp_path, monkeypatch, task_number
):
    library = copy_small_library(tmp_path / "library")
    codegen = run_stages(
        CodegenEngine(ctx.codegen_store, library_dir=library, cache_dir=ctx.cache_dir)
    )
    task = load_spec().task(task_number)

    def run(name: str) -> dict:
        checker = {"run_id": f"{RUN_ID}-{name}", "codegen_result": codegen.model_dump(mode="json")}
        return dispatch.run_task(task, RunContext(**{**ctx.__dict__, **checker}))

    def without_counts(result: dict) -> dict:
        details = {k: v for k, v in result["details"].items() if k not in ("reused", "checked")}
        return {**result, "details": details}

    first = run("first")
    checkouts: list[str] = []
    real_checkout = CodegenStore.checkout

    def counted(store: CodegenStore, snapshot: str, into: Path):
        checkouts.append(snapshot)
        return real_checkout(store, snapshot, into)

    monkeypatch.setattr(CodegenStore, "checkout", counted)
    again = run("again")
    assert checkouts == []  # no checkout, no file hashed: the stored result of the snapshot
    assert without_counts(again) == without_counts(first)
    units = first["details"]["reused"] + first["details"]["checked"]
    assert (again["details"]["reused"], again["details"]["checked"]) == (units, 0)

    monkeypatch.setattr(checks, "ruff_version", lambda: "ruff 99.0.0")
    monkeypatch.setattr(checks, "pytest_version", lambda: "99.0.0")
    new_tool = run("new-tool")
    assert checkouts == [codegen.snapshot]
    assert new_tool["details"]["checked"] == units
    assert without_counts(new_tool) == without_counts(first)


def test_publish_compiles_and_validates_only_when_parse_planned_a_rebuild(
    ctx, tmp_path, monkeypatch
):
    monkeypatch.setenv("K1N_PATTERN_LIBRARY", str(copy_small_library(tmp_path / "library")))
    codegen = load_spec().task(8)
    for shard in dispatch.codegen_parse(ctx, max_shards=2):
        dispatch.codegen_generate(ctx, shard)
    first = dispatch.codegen_publish(codegen, ctx)
    assert (first["regenerated"], first["quality_gates"]) == (12, {"passed": 12, "total": 12})
    records = {child.name for child in storage.children(ctx.codegen_staging)}
    assert {COMPILE_RECORD, VALIDATE_RECORD} <= records

    # The next run, nothing changed: no shard, so the DAG skips generate; publish compiles and
    # validates nothing and keeps the current snapshot.
    again = dataclasses.replace(ctx, run_id="manual__2026-11-25T21:00:00+00:00")
    assert dispatch.codegen_parse(again, max_shards=2) == []
    second = dispatch.codegen_publish(codegen, again)
    assert (second["snapshot"], second["regenerated"]) == (first["snapshot"], 0)
    assert second["quality_gates"] == first["quality_gates"]
    records = {child.name for child in storage.children(again.codegen_staging)}
    assert not records & {COMPILE_RECORD, VALIDATE_RECORD}


@pytest.mark.parametrize(("mode", "kept"), [("optimized", True), ("baseline", False)])
def test_task_7_keeps_the_parsed_library_in_the_optimized_mode_only(
    ctx, tmp_path, monkeypatch, mode, kept
):
    library = copy_small_library(tmp_path / "library")
    monkeypatch.setenv("K1N_PATTERN_LIBRARY", str(library))
    run = dataclasses.replace(ctx, workflow_mode=mode)
    result = dispatch.run_task(load_spec().task(7), run)
    assert result["quality_gates"] == {"passed": 12, "total": 12}
    assert parsed_cache_file(run.cache_dir, library).exists() is kept
