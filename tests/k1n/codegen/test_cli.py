"""`codegen` on the command line: exit codes, output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k1n.codegen.cli import main


def test_json_summary_and_exit_zero(
    small_library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--state-dir", str(tmp_path / "state"), "--library-dir", str(small_library)]
    assert main([*argv, "--json", "--workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "optimized"
    assert summary["workers"] == 2
    assert summary["regenerated"] == 12
    assert set(summary["stages"]) == {"parse", "generate", "compile", "validate", "write"}
    assert summary["quality_gates"] == {"passed": 12, "total": 12}

    assert main([*argv, "--clean", "--mode", "baseline"]) == 0
    table = capsys.readouterr().out
    assert "codegen baseline, 1 worker(s): 12 patterns, 12 regenerated" in table
    assert "quality gates 12/12" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --state-dir"),
        (["--state-dir", "{tmp}/state", "--library-dir", "{tmp}/nowhere"], "is not a directory"),
        (["--state-dir", "{tmp}/file"], "exists and is not a directory"),
        (["--state-dir", "{tmp}/state", "--workers", "0"], "must be at least 1"),
        (["--state-dir", "{tmp}/state", "--mode", "turbo"], "invalid choice"),
    ],
)
def test_errors_are_one_line_and_exit_two(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("codegen: ")
    assert message in captured.err
