"""The downstream checks (Tasks 9, 10, 12) on published generated code."""

from __future__ import annotations

from pathlib import Path

import pytest

from k1n import checks
from k1n.checks.security import scan_source
from k1n.codegen import CodegenError

# Planted findings are assembled at run time so this file does not trip the scanners itself.
EVAL_CALL = "ev" + 'al("6 * 7")'
SECRET_ASSIGNMENT = "pass" + 'word = "hunter22"'


@pytest.fixture
def bad_output(published_output: Path) -> Path:
    """A good output plus a failing test, an unused import and an eval()."""
    output = published_output
    planted = output / "planted"
    planted.mkdir()
    (planted / "test_planted.py").write_text(
        "def test_passes() -> None:\n    assert 1 + 1 == 2\n\n\n"
        "def test_fails() -> None:\n    assert 1 + 1 == 3\n"
    )
    (planted / "unused_import.py").write_text('"""Imports what it never uses."""\n\nimport os\n')
    (planted / "evaluates.py").write_text(f'"""Runs a string."""\n\nANSWER = {EVAL_CALL}\n')
    return output


def test_checks_pass_on_generated_output(published_output: Path) -> None:
    output = published_output
    python_files = len(list(output.glob("*/*.py")))

    unit = checks.run_unit_tests(output)
    assert unit["quality_gates"]["passed"] == unit["quality_gates"]["total"] > 12
    assert unit["details"]["failed"] == []
    static = checks.run_static_analysis(output)
    assert static["quality_gates"] == {"passed": python_files, "total": python_files}
    security = checks.run_security_scan(output)
    assert security["quality_gates"] == {"passed": python_files, "total": python_files}
    # The checks leave no trace in the published tree (no pytest or ruff caches, no pycs).
    assert not list(output.rglob("*pytest*")) and not list(output.rglob(".ruff_cache"))


def test_unit_tests_gate_drops_on_a_failing_test(bad_output: Path) -> None:
    result = checks.run_unit_tests(bad_output)
    gates = result["quality_gates"]
    assert gates["passed"] == gates["total"] - 1
    assert [(f["file"], f["test"]) for f in result["details"]["failed"]] == [
        ("planted/test_planted.py", "test_fails")
    ]


def test_static_analysis_gate_drops_on_an_unused_import(bad_output: Path) -> None:
    result = checks.run_static_analysis(bad_output)
    gates = result["quality_gates"]
    assert gates["passed"] == gates["total"] - 1
    assert result["details"]["files_with_findings"] == ["planted/unused_import.py"]
    assert result["details"]["findings"][0]["code"] == "F401"


def test_security_scan_gate_drops_on_eval(bad_output: Path) -> None:
    result = checks.run_security_scan(bad_output)
    gates = result["quality_gates"]
    assert gates["passed"] == gates["total"] - 1
    assert result["details"]["findings"] == [
        {
            "location": "planted/evaluates.py:3",
            "rule": "S307",
            "message": "Use of possibly insecure function; consider using `ast.literal_eval`",
        }
    ]


@pytest.mark.parametrize(
    ("source", "rules"),
    [
        (EVAL_CALL, ["S307"]),
        ("ex" + "ec('x = 1')", ["S102"]),
        ("compile('1', 'f', 'eval')", ["K1S02"]),
        ("import re\nre.compile('a+')", []),
        ("import os\nos.system('ls')", ["S605"]),
        ("from os import system as run\nrun('ls')", ["S605"]),
        ("import os\nos.execv('/bin/ls', ['ls'])", ["S606"]),
        ("import subprocess as sp\nsp.run('ls', shell=True)", ["S602"]),
        ("import subprocess\nsubprocess.run(['ls'], shell=False)", []),
        ("import pickle\npickle.loads(b'')", ["S301"]),
        ("from marshal import loads\nloads(b'')", ["S302"]),
        ("import yaml\nyaml.load('a: 1')", ["S506"]),
        ("import yaml\nyaml.load('a: 1', Loader=yaml.SafeLoader)", []),
        ("__imp" + "ort__('os')", ["K1S06"]),
        (SECRET_ASSIGNMENT, ["S105"]),
        ("api_key = ''", []),
        ("connect(tok" + "en='abc123')", ["S106"]),
        ("settings = {'secret': 'abc'}", ["K1S07"]),
        ("TOKEN_COUNT = 3", []),
        ("def broken(:\n    pass", ["K1S00"]),
    ],
)
def test_security_scan_rules(source: str, rules: list[str]) -> None:
    assert [finding["rule"] for finding in scan_source(source, "m.py")] == rules


def test_checks_reject_a_missing_output_dir(tmp_path: Path) -> None:
    for check in (checks.run_unit_tests, checks.run_static_analysis, checks.run_security_scan):
        with pytest.raises(CodegenError, match="is not a directory"):
            check(tmp_path / "missing")
