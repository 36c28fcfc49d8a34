"""Checks of Task 8's published output, for the downstream Tasks 9, 10 and 12.

Each check takes the output directory (`CodegenEngine.output_dir`: `<kind>/<name>.py` and
`<kind>/test_<name>.py`) and returns a task result::

    {"quality_gates": {"passed": P, "total": T}, "details": {...}}

`run_unit_tests` (Task 9)
    Runs pytest in a subprocess on every generated test file. Gates: tests passed / tests
    collected, read from pytest's JUnit XML; a module that fails to import counts as a failed
    test. Details: counts and each failure as `{"file", "test", "message"}`.

`run_static_analysis` (Task 10)
    Runs ruff with a broad rule set (`STATIC_ANALYSIS_RULES`: pycodestyle, pyflakes, bugbear,
    isort, pyupgrade, simplify, comprehensions, pie, return, ruff-specific), ignoring only
    project configuration. Gates: files without findings / Python files. Details: each finding
    as `{"file", "line", "code", "message"}`.

`run_security_scan` (Task 12)
    ruff's flake8-bandit rules and the few checks they lack (`security.py`), without running
    anything. Gates: modules without findings / modules. Details: each finding as
    `{"location": "file:line", "rule", "message"}`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from k1n.checks.security import scan_tree
from k1n.child_env import child_environment
from k1n.codegen.errors import CodegenError
from k1n.codegen.validation import find_ruff

STATIC_ANALYSIS_RULES = "E,W,F,B,I,UP,SIM,C4,PIE,RET,RUF"
UNIT_TEST_TIMEOUT_SECONDS = 1800
MAX_DETAILS = 200  # findings listed in a result; the counts always cover all of them


def _python_files(output_dir: Path) -> list[Path]:
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise CodegenError(f"output dir {output_dir} is not a directory: has Task 8 published?")
    files = sorted(path for path in output_dir.rglob("*.py") if "__pycache__" not in path.parts)
    if not files:
        raise CodegenError(f"output dir {output_dir} holds no Python files")
    return files


def _result(passed: int, total: int, details: dict[str, Any]) -> dict[str, Any]:
    return {"quality_gates": {"passed": passed, "total": total}, "details": details}


# -- Task 9: unit tests ----------------------------------------------------------------------


def run_unit_tests(output_dir: Path) -> dict[str, Any]:
    """Run the generated tests with pytest; gates = passed tests / tests."""
    output_dir = Path(output_dir)
    files = [path for path in _python_files(output_dir) if path.name.startswith("test_")]
    if not files:
        raise CodegenError(f"output dir {output_dir} holds no test_*.py files")
    with tempfile.TemporaryDirectory(prefix="k1n-unit-tests-") as scratch:
        junit = Path(scratch) / "junit.xml"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            # The output dir is its own project: no ini file or conftest from around it.
            "-c",
            os.devnull,
            f"--rootdir={output_dir}",
            "--import-mode=prepend",
            # Rewriting 3 500 asserts costs two thirds of the run (12 s against 4 s, inside
            # Task 9's 4 s budget at 1/60); pass/fail is the same and failures still name
            # the test and line.
            "--assert=plain",
            str(output_dir),
        ]
        # Generated code runs here: the allow-listed environment, none of the worker's secrets.
        env = child_environment(
            {
                # No pytest pycs in the output's __pycache__ next to the published, hashed ones.
                "PYTHONDONTWRITEBYTECODE": "1",
                # Only pytest itself: plugins installed for the project have no business here.
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            }
        )
        try:
            completed = subprocess.run(
                argv,
                cwd=output_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=UNIT_TEST_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CodegenError(
                f"pytest did not finish within {UNIT_TEST_TIMEOUT_SECONDS} s"
            ) from None
        if not junit.is_file():
            tail = " | ".join(completed.stdout.strip().splitlines()[-3:])
            raise CodegenError(f"pytest exited with {completed.returncode} and no report: {tail}")
        counts, failures = _read_junit(junit, output_dir)
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    details = {
        **counts,
        "passed": passed,
        "test_files": len(files),
        "exit_code": completed.returncode,
        "failed": failures[:MAX_DETAILS],
    }
    return _result(passed, max(counts["tests"], 1), details)


def _read_junit(path: Path, output_dir: Path) -> tuple[dict[str, int], list[dict[str, str]]]:
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    # pytest names a test module by its dotted path from rootdir; map it back to the file.
    modules = {
        ".".join(path.relative_to(output_dir).with_suffix("").parts): path.relative_to(output_dir)
        for path in output_dir.rglob("test_*.py")
    }
    failures = []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        module = case.get("classname", "")
        file = modules.get(module)
        if file is None:  # a collection error names the module as "kind.test_x" or path-like
            file = next((f for m, f in modules.items() if module.endswith(m.split(".")[-1])), None)
        failures.append(
            {
                "file": file.as_posix() if file else module,
                "test": case.get("name", ""),
                "message": " ".join((problem.get("message") or problem.text or "").split())[:300],
            }
        )
    return counts, failures


# -- Task 10: static analysis ----------------------------------------------------------------


def run_static_analysis(output_dir: Path) -> dict[str, Any]:
    """Lint the output with ruff's broad rule set; gates = files without findings / files."""
    output_dir = Path(output_dir)
    files = _python_files(output_dir)
    argv = [
        find_ruff(),
        "check",
        "--isolated",  # judge generated code by this rule set, not by whatever config is around
        "--no-cache",
        "--select",
        STATIC_ANALYSIS_RULES,
        "--line-length",
        "100",
        "--target-version",
        "py311",
        "--output-format",
        "json",
        "--exit-zero",
        ".",
    ]
    completed = subprocess.run(
        argv, cwd=output_dir, capture_output=True, text=True, check=False, env=child_environment()
    )
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        raise CodegenError(f"ruff failed with exit code {completed.returncode}: {tail}")
    findings = []
    for finding in json.loads(completed.stdout or "[]"):
        file = Path(finding["filename"]).resolve().relative_to(output_dir.resolve()).as_posix()
        findings.append(
            {
                "file": file,
                "line": finding["location"]["row"],
                "code": finding["code"] or "syntax",
                "message": finding["message"],
            }
        )
    flagged = sorted({finding["file"] for finding in findings})
    details = {
        "rules": STATIC_ANALYSIS_RULES,
        "files": len(files),
        "findings_total": len(findings),
        "files_with_findings": flagged[:MAX_DETAILS],
        "findings": findings[:MAX_DETAILS],
    }
    return _result(len(files) - len(flagged), len(files), details)


# -- Task 12: security scan ------------------------------------------------------------------


def run_security_scan(output_dir: Path) -> dict[str, Any]:
    """Scan every generated module (`security.py`); gates = clean modules / modules."""
    output_dir = Path(output_dir)
    files = _python_files(output_dir)
    findings = scan_tree(output_dir, files)
    flagged = {finding["location"].rsplit(":", 1)[0] for finding in findings}
    details = {
        "modules": len(files),
        "findings_total": len(findings),
        "flagged_modules": sorted(flagged)[:MAX_DETAILS],
        "findings": findings[:MAX_DETAILS],
    }
    return _result(len(files) - len(flagged), len(files), details)
