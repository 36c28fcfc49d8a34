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

Each check works unit by unit (a test file with the modules it imports; one module) and, given
a `ResultStore` (`results.py`), checks only the units whose inputs changed since a verified
result and reuses the rest; the result is the same as a full check's (`details.reused` and
`details.checked` say how many units were which).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from k1n.checks.results import ResultStore, reuse_or_compute, unit_digest
from k1n.checks.security import scan_tree
from k1n.child_env import child_environment
from k1n.codegen.errors import CodegenError
from k1n.codegen.validation import ruff_json, ruff_version

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


def _relative(output_dir: Path, files: list[Path]) -> list[str]:
    return [path.relative_to(output_dir).as_posix() for path in files]


def _checked(
    output_dir: Path,
    files: list[str],
    inputs_of: Callable[[], Mapping[str, list[str]]],
    fingerprint: str,
    results: ResultStore | None,
    compute: Callable[[list[str]], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, int]]:
    """Each unit's result (stored ones reused), and how many units were reused / checked.

    The whole output's results are stored too, under the digest of every file: an unchanged
    output is one read, not one per unit."""
    if results is None:  # a full check: nothing to reuse, so no file to hash
        units = list(inputs_of())
        return compute(units), {"reused": 0, "checked": len(units)}
    whole = unit_digest(output_dir, files, f"{fingerprint}\nevery unit")
    stored = results.get(whole)
    if stored is not None:
        return stored, {"reused": len(stored), "checked": 0}
    inputs = inputs_of()
    digests = {key: unit_digest(output_dir, paths, fingerprint) for key, paths in inputs.items()}
    by_unit, reused = reuse_or_compute(results, digests, compute)
    results.put(whole, by_unit)
    return by_unit, {"reused": reused, "checked": len(digests) - reused}


def _fingerprint(*parts: str) -> str:
    return "\n".join([f"python {platform.python_version()}", *parts])


# -- Task 9: unit tests ----------------------------------------------------------------------


def pytest_version() -> str:
    """The installed pytest's version, read from its metadata: importing pytest costs Task 9
    ~0.3 s even when every result is reused (the checks run it as `python -m pytest`)."""
    return importlib.metadata.version("pytest")


def unit_tests_fingerprint() -> str:
    """What decides a test file's result besides its files: pytest and how it is run."""
    return _fingerprint(f"pytest {pytest_version()}", " ".join(PYTEST_OPTIONS))


def _test_inputs(output_dir: Path, tests: list[Path]) -> dict[str, list[str]]:
    """Each test file -> itself and the generated modules beside it that it imports."""
    modules: dict[Path, dict[str, Path]] = {}
    inputs = {}
    for test in tests:
        if test.parent not in modules:
            modules[test.parent] = {path.stem: path for path in test.parent.glob("*.py")}
        beside = modules[test.parent]
        imported = sorted(
            beside[name]
            for name in _imported_names(test)
            if name in beside and beside[name] != test
        )
        inputs[test.relative_to(output_dir).as_posix()] = _relative(output_dir, [test, *imported])
    return inputs


def _imported_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_bytes())
    except SyntaxError:
        return set()  # pytest reports it as a collection error of this file alone
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def run_unit_tests(output_dir: Path, results: ResultStore | None = None) -> dict[str, Any]:
    """Run the generated tests with pytest; gates = passed tests / tests."""
    output_dir = Path(output_dir)
    files = [path for path in _python_files(output_dir) if path.name.startswith("test_")]
    if not files:
        raise CodegenError(f"output dir {output_dir} holds no test_*.py files")
    every_file = _relative(output_dir, _python_files(output_dir))
    by_file, units = _checked(
        output_dir,
        every_file,
        lambda: _test_inputs(output_dir, files),
        unit_tests_fingerprint(),
        results,
        lambda tests: _pytest(output_dir, tests),
    )
    tests = _relative(output_dir, files)
    counts = {
        key: sum(by_file[test]["counts"][key] for test in tests)
        for key in ("tests", "failures", "errors", "skipped")
    }
    failures = [failure for test in tests for failure in by_file[test]["failed"]]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    details = {
        **counts,
        "passed": passed,
        "test_files": len(files),
        "exit_code": 0 if passed == counts["tests"] else 1,
        "failed": failures[:MAX_DETAILS],
        **units,
    }
    return _result(passed, max(counts["tests"], 1), details)


PYTEST_OPTIONS = (
    "-q",
    "-p",
    "no:cacheprovider",
    # The output dir is its own project: no ini file or conftest from around it.
    "-c",
    os.devnull,
    "--import-mode=prepend",
    # Rewriting 3 500 asserts costs two thirds of the run (12 s against 4 s, inside Task 9's
    # 4 s budget at 1/60); pass/fail is the same and failures still name the test and line.
    "--assert=plain",
)


def _pytest(output_dir: Path, tests: list[str]) -> dict[str, Any]:
    """pytest on `tests` (paths under `output_dir`): each file's counts and failures."""
    with tempfile.TemporaryDirectory(prefix="k1n-unit-tests-") as scratch:
        junit = Path(scratch) / "junit.xml"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            *PYTEST_OPTIONS,
            f"--junitxml={junit}",
            f"--rootdir={output_dir}",
            *tests,
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
        return _read_junit(junit, output_dir, tests)


def _read_junit(path: Path, output_dir: Path, tests: list[str]) -> dict[str, Any]:
    """Per test file: its counts (tests, failures, errors, skipped) and failures."""
    root = ElementTree.parse(path).getroot()
    # pytest names a test module by its dotted path from rootdir; map it back to the file.
    modules = {".".join(Path(test).with_suffix("").parts): test for test in tests}
    by_file: dict[str, Any] = {
        test: {"counts": dict.fromkeys(("tests", "failures", "errors", "skipped"), 0), "failed": []}
        for test in tests
    }
    for case in root.iter("testcase"):
        # A collection error has no class name and names the module ("kind.test_x") instead.
        module = case.get("classname") or case.get("name", "")
        file = modules.get(module)
        if file is None:
            file = next((f for m, f in modules.items() if module.endswith(m.split(".")[-1])), None)
        if file is None:
            raise CodegenError(f"pytest reported a test of an unknown module {module!r}")
        counts = by_file[file]["counts"]
        counts["tests"] += 1
        problem = case.find("failure")
        kind = "failures"
        if problem is None:
            problem, kind = case.find("error"), "errors"
        if problem is None:
            if case.find("skipped") is not None:
                counts["skipped"] += 1
            continue
        counts[kind] += 1
        by_file[file]["failed"].append(
            {
                "file": file,
                "test": case.get("name", ""),
                "message": " ".join((problem.get("message") or problem.text or "").split())[:300],
            }
        )
    return by_file


# -- Task 10: static analysis ----------------------------------------------------------------

STATIC_ANALYSIS_ARGUMENTS = ("--select", STATIC_ANALYSIS_RULES)


def static_analysis_fingerprint(files: list[str]) -> str:
    """ruff, its rules, and which files exist (isort tells first-party imports by them)."""
    return _fingerprint(ruff_version(), *STATIC_ANALYSIS_ARGUMENTS, *files)


def run_static_analysis(output_dir: Path, results: ResultStore | None = None) -> dict[str, Any]:
    """Lint the output with ruff's broad rule set; gates = files without findings / files."""
    output_dir = Path(output_dir)
    files = _relative(output_dir, _python_files(output_dir))
    by_file, units = _checked(
        output_dir,
        files,
        lambda: {file: [file] for file in files},
        static_analysis_fingerprint(files),
        results,
        lambda chosen: _ruff_findings(output_dir, chosen),
    )
    findings = [finding for file in files for finding in by_file[file]]
    flagged = [file for file in files if by_file[file]]
    details = {
        "rules": STATIC_ANALYSIS_RULES,
        "files": len(files),
        "findings_total": len(findings),
        "files_with_findings": flagged[:MAX_DETAILS],
        "findings": findings[:MAX_DETAILS],
        **units,
    }
    return _result(len(files) - len(flagged), len(files), details)


def _ruff_findings(output_dir: Path, files: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {file: [] for file in files}
    for finding in ruff_json(
        output_dir, ["check", *STATIC_ANALYSIS_ARGUMENTS, "--exit-zero"], files
    ):
        found[finding["file"]].append(
            {
                "file": finding["file"],
                "line": finding["location"]["row"],
                "code": finding["code"] or "syntax",
                "message": finding["message"],
            }
        )
    return found


# -- Task 12: security scan ------------------------------------------------------------------


def security_scan_fingerprint() -> str:
    """ruff, the selected rules, and this project's own AST rules (their source)."""
    from k1n.checks import security

    source = hashlib.sha256(Path(security.__file__).read_bytes()).hexdigest()
    return _fingerprint(ruff_version(), security.RUFF_RULES, f"security.py {source}")


def run_security_scan(output_dir: Path, results: ResultStore | None = None) -> dict[str, Any]:
    """Scan every generated module (`security.py`); gates = clean modules / modules."""
    output_dir = Path(output_dir)
    files = _relative(output_dir, _python_files(output_dir))
    by_file, units = _checked(
        output_dir,
        files,
        lambda: {file: [file] for file in files},
        security_scan_fingerprint(),
        results,
        lambda chosen: _security_findings(output_dir, chosen),
    )
    findings = [finding for file in files for finding in by_file[file]]
    flagged = [file for file in files if by_file[file]]
    details = {
        "modules": len(files),
        "findings_total": len(findings),
        "flagged_modules": flagged[:MAX_DETAILS],
        "findings": findings[:MAX_DETAILS],
        **units,
    }
    return _result(len(files) - len(flagged), len(files), details)


def _security_findings(output_dir: Path, files: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {file: [] for file in files}
    for finding in scan_tree(output_dir, [output_dir / file for file in files]):
        found[finding["location"].rsplit(":", 1)[0]].append(finding)
    return found


# -- a published snapshot at once --------------------------------------------------------------

# What decides a check's result of a whole snapshot besides the snapshot's content (its id is
# the hash of that content, file list included): the tools and rules each check names.
_SNAPSHOT_FINGERPRINTS: Mapping[str, Callable[[], str]] = {
    "run_unit_tests": unit_tests_fingerprint,
    "run_static_analysis": lambda: static_analysis_fingerprint([]),
    "run_security_scan": security_scan_fingerprint,
}


def check_snapshot(
    check_name: str,
    snapshot_id: str,
    results: ResultStore,
    check_checkout: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`check_name`'s result of a published snapshot, stored under the snapshot's id and the
    check's fingerprint: a snapshot checked before is one read, with no checkout and no file
    hashed. Else `check_checkout()` (check out, then check unit by unit), stored for the next."""
    fingerprint = _SNAPSHOT_FINGERPRINTS[check_name]()
    key = hashlib.sha256(f"{fingerprint}\nsnapshot {snapshot_id}".encode()).hexdigest()
    stored = results.get(key)
    if stored is not None:
        details = stored["details"]
        every_unit = details["reused"] + details["checked"]
        return {**stored, "details": {**details, "reused": every_unit, "checked": 0}}
    result = check_checkout()
    results.put(key, result)
    return result
