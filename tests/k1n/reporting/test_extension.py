"""What the K1N extension adds to the reports, found through its entry point, and how it
fails when its own configuration is broken (a 503 in the plugin, never a 500)."""

from __future__ import annotations

import os
import time

import pytest

from airflow_bottleneck.extension import ExtensionUnavailable, extension_for, registered_extensions
from k1n.reporting.extension import K1NExtension
from k1n.settings import DEFAULT_TIME_SCALE
from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID, QUALITY_GATES_TASK_ID
from k1n.workflow.spec import DEFAULT_SPEC_PATH, load_spec


def test_the_entry_point_registers_the_extension_for_the_workflow_dags_only() -> None:
    assert any(isinstance(e, K1NExtension) for e in registered_extensions())
    assert isinstance(extension_for(OPTIMIZED_DAG_ID), K1NExtension)
    assert isinstance(extension_for(BASELINE_DAG_ID), K1NExtension)
    assert extension_for("someone_elses_dag") is None


def test_names_numbers_and_labels_come_from_the_spec() -> None:
    spec = load_spec()
    extension = K1NExtension(spec)
    assert extension.task_number("task_08_code_generation.publish_code") == 8
    assert extension.task_number(QUALITY_GATES_TASK_ID) is None
    member = extension.label("task_08_code_generation.publish_code", 8, "publish_code")
    assert member == f"8 {spec.by_id[8].name} · publish_code"
    assert extension.label(QUALITY_GATES_TASK_ID, None, "gates") == "gates"
    assert extension.short_label(OPTIMIZED_DAG_ID) == "optimized"


def test_the_run_time_scale_comes_from_the_conf_else_the_default() -> None:
    notes: list[str] = []
    assert K1NExtension().run_time_scale({"time_scale": "1/30"}, notes) == pytest.approx(1 / 30)
    assert notes == []
    assert K1NExtension().run_time_scale({}, notes) == pytest.approx(DEFAULT_TIME_SCALE)
    assert "DAG default" in notes[0]


def test_a_broken_environment_is_a_note_or_unavailable_never_an_error(monkeypatch) -> None:
    monkeypatch.setenv("K1N_TIME_SCALE", "fast")
    notes: list[str] = []
    assert K1NExtension().run_time_scale({}, notes) == DEFAULT_TIME_SCALE
    assert notes and notes[0].startswith("K1N_TIME_SCALE")
    with pytest.raises(ExtensionUnavailable, match="K1N_TIME_SCALE"):
        K1NExtension().label("task_01_security_audit", 1, "x")  # the spec path needs settings


def test_a_broken_spec_makes_the_extension_unavailable(monkeypatch, tmp_path) -> None:
    broken = tmp_path / "workflow.yaml"
    broken.write_text("tasks: [\n")
    monkeypatch.setenv("K1N_WORKFLOW_SPEC", str(broken))
    with pytest.raises(ExtensionUnavailable, match=r"workflow\.yaml"):
        K1NExtension().declared_graph({})


def test_the_cache_token_changes_when_the_spec_file_changes(monkeypatch, tmp_path) -> None:
    copy = tmp_path / "workflow.yaml"
    copy.write_text(DEFAULT_SPEC_PATH.read_text())
    monkeypatch.setenv("K1N_WORKFLOW_SPEC", str(copy))
    extension = K1NExtension()
    before = extension.cache_token()
    assert extension.cache_token() == before  # read once, not per call
    copy.write_text(DEFAULT_SPEC_PATH.read_text() + "\n# edited\n")
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert extension.cache_token() != before
