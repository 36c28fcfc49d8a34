"""dispatch.run_task: every handler kind is wired, and each leaves a valid result file."""

from __future__ import annotations

import pytest

from include.k1n.tasks import context, dispatch
from include.k1n.workflow.results import read_result
from include.k1n.workflow.spec import HandlerKind, TaskSpec


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("K1N_WORK_DIR", str(tmp_path))
    return context.RunContext(
        dag_id="k1n_test", run_id="manual__2026-11-25T20:00:00+00:00", time_scale=1 / 1000
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


def test_every_handler_kind_has_an_implementation():
    assert set(dispatch._HANDLERS) == set(HandlerKind)


def test_run_dir_is_per_dag_and_run_and_path_safe(ctx, tmp_path):
    assert ctx.work_dir == tmp_path / "runs" / "k1n_test" / "manual__2026-11-25T20_00_00_00_00"


def test_profile_task_waits_scaled_and_records_its_gates(ctx, caplog):
    caplog.set_level("INFO")
    result = dispatch.run_task(spec_task(failing_gates=2), ctx)
    assert result["quality_gates"] == {"passed": 8, "total": 10}
    assert result["waited_seconds"] == pytest.approx(0.03, abs=0.02)
    assert read_result(ctx.work_dir, 3) == result
    assert "stand-in" in caplog.text


def test_command_task_runs_an_agent_script(ctx, tmp_path, monkeypatch):
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
    assert read_result(ctx.work_dir, 1) == result


def test_pattern_library_task_indexes_the_library(ctx):
    result = dispatch.run_task(
        spec_task(id=7, name="Pattern Library", handler="pattern_library"), ctx
    )
    assert result["quality_gates"]["passed"] == result["quality_gates"]["total"] > 100
    assert (ctx.work_dir / "pattern-index.json").exists()
    assert result["handler"] == "pattern_library"
