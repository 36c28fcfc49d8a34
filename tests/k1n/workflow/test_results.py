"""The result-file contract: path, atomic write, validated read, one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from k1n import io as fileio
from k1n.tasks import command as handlers
from k1n.workflow import results
from k1n.workflow.results import (
    HandlerError,
    ResultFileError,
    read_result,
    result_path,
    write_result,
)


def test_result_path_is_task_results_task_id_json(tmp_path: Path) -> None:
    assert result_path(tmp_path, 7) == tmp_path / "task-results" / "task-7.json"


def test_exception_hierarchy_and_reexport() -> None:
    assert issubclass(ResultFileError, HandlerError)
    assert issubclass(HandlerError, RuntimeError)
    # Callers catch handlers.HandlerError; it must be the very class results.py raises.
    assert handlers.HandlerError is results.HandlerError
    assert handlers.ResultFileError is results.ResultFileError


def test_write_then_read_round_trip_keeps_extra_keys(tmp_path: Path) -> None:
    result = {
        "quality_gates": {"passed": 4, "total": 5},
        "handler": "test",
        "findings": {"strcpy": 1, "gets": 0},
        "notes": ["a", "b"],
    }
    path = write_result(tmp_path, 3, result)

    assert path == result_path(tmp_path, 3)
    assert json.loads(path.read_text(encoding="utf-8")) == result
    assert read_result(tmp_path, 3) == result


def test_write_leaves_no_temporary_files_and_a_readable_file(tmp_path: Path) -> None:
    write_result(tmp_path, 3, {"quality_gates": {"passed": 1, "total": 1}})
    write_result(tmp_path, 3, {"quality_gates": {"passed": 0, "total": 1}})

    assert [p.name for p in (tmp_path / "task-results").iterdir()] == ["task-3.json"]
    assert read_result(tmp_path, 3)["quality_gates"] == {"passed": 0, "total": 1}
    assert stat.S_IMODE(result_path(tmp_path, 3).stat().st_mode) == 0o644


def test_write_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content reaches the final path only through os.replace of a complete temporary file."""
    write_result(tmp_path, 1, {"quality_gates": {"passed": 1, "total": 1}, "version": "old"})
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def checking_replace(src: str, dst: str) -> None:
        # At the moment of the swap the temporary file is complete and the target untouched.
        assert Path(src).parent == Path(dst).parent
        assert json.loads(Path(src).read_text(encoding="utf-8"))["version"] == "new"
        assert json.loads(Path(dst).read_text(encoding="utf-8"))["version"] == "old"
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", checking_replace)
    write_result(tmp_path, 1, {"quality_gates": {"passed": 1, "total": 1}, "version": "new"})

    assert len(replaced) == 1
    assert read_result(tmp_path, 1)["version"] == "new"


def test_failed_write_keeps_old_file_and_removes_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_result(tmp_path, 1, {"quality_gates": {"passed": 1, "total": 1}, "version": "old"})

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_result(tmp_path, 1, {"quality_gates": {"passed": 0, "total": 1}, "version": "new"})

    assert [p.name for p in (tmp_path / "task-results").iterdir()] == ["task-1.json"]
    assert read_result(tmp_path, 1)["version"] == "old"


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        ({"handler": "x"}, "quality_gates"),
        ({"quality_gates": {"passed": 3, "total": 2}}, "exceeds total"),
        ({"quality_gates": {"passed": -1, "total": 2}}, "quality_gates.passed"),
        ({"quality_gates": {"passed": 1.5, "total": 2}}, "integer"),
        ({"quality_gates": {"passed": 1, "total": 2}, "when": object()}, "JSON-serialisable"),
        ({"quality_gates": {"passed": 1, "total": 2}, "ratio": float("nan")}, "JSON"),
    ],
)
def test_write_refuses_invalid_results_and_writes_nothing(
    tmp_path: Path, result: dict, fragment: str
) -> None:
    with pytest.raises(ResultFileError, match=fragment) as excinfo:
        write_result(tmp_path, 2, result)

    assert str(result_path(tmp_path, 2)) in str(excinfo.value)
    results_dir = tmp_path / "task-results"
    assert not results_dir.exists() or list(results_dir.iterdir()) == []


def test_read_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="not found") as excinfo:
        read_result(tmp_path, 9)
    assert str(result_path(tmp_path, 9)) in str(excinfo.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ("", "invalid JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('{"handler": "x"}', "quality_gates: Field required"),
        ('{"quality_gates": 5}', "quality_gates"),
        ('{"quality_gates": {"passed": 3, "total": 2}}', "passed (3) exceeds total (2)"),
        ('{"quality_gates": {"passed": -1, "total": 2}}', "quality_gates.passed"),
        ('{"quality_gates": {"passed": 1, "total": 0}}', "quality_gates.total"),
        ('{"quality_gates": {"passed": 1, "total": -2}}', "quality_gates.total"),
        ('{"quality_gates": {"passed": 1.0, "total": 2}}', "valid integer"),
        ('{"quality_gates": {"passed": "1", "total": 2}}', "valid integer"),
        ('{"quality_gates": {"passed": true, "total": 2}}', "valid integer"),
        ('{"quality_gates": {"passed": 1, "total": 2.5}}', "valid integer"),
        ('{"quality_gates": {"passed": 1}}', "quality_gates.total: Field required"),
    ],
)
def test_read_rejects_broken_files_with_one_line_naming_path(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = result_path(tmp_path, 4)
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ResultFileError) as excinfo:
        read_result(tmp_path, 4)

    message = str(excinfo.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert "\n" not in message


def test_read_rejects_non_utf8_file(tmp_path: Path) -> None:
    path = result_path(tmp_path, 4)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"quality_gates": "\xff"}')

    with pytest.raises(ResultFileError, match="cannot read") as excinfo:
        read_result(tmp_path, 4)
    assert str(path) in str(excinfo.value)


def test_read_keeps_extra_keys_inside_quality_gates(tmp_path: Path) -> None:
    path = result_path(tmp_path, 5)
    path.parent.mkdir(parents=True)
    content = {"quality_gates": {"passed": 1, "total": 2, "failed": ["lint"]}}
    path.write_text(json.dumps(content), encoding="utf-8")
    assert read_result(tmp_path, 5) == content


def test_read_accepts_edge_values(tmp_path: Path) -> None:
    path = result_path(tmp_path, 5)
    path.parent.mkdir(parents=True)
    path.write_text('{"quality_gates": {"passed": 0, "total": 1}}', encoding="utf-8")
    assert read_result(tmp_path, 5) == {"quality_gates": {"passed": 0, "total": 1}}

    path.write_text('{"quality_gates": {"passed": 1, "total": 1}}', encoding="utf-8")
    assert read_result(tmp_path, 5) == {"quality_gates": {"passed": 1, "total": 1}}
