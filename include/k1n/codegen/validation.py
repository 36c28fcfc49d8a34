"""Checking generated code: its tests in separate interpreters, and ruff.

Used by the validate stage (every dirty pattern must import, pass its tests, lint and format
clean) and, for ruff, by the downstream checks of Tasks 10 and 12.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from k1n.child_env import child_environment
from k1n.codegen.compiling import pattern_of, run_scripts, split
from k1n.codegen.contracts import PatternValidation, TestCounts, TestRun, parse_document
from k1n.codegen.errors import CodegenError

RUNNER = Path(__file__).resolve().parent / "_runner.py"
# The linter gate on generated code; `checks.run_static_analysis` applies a broader set later.
LINT_RULES = "E,F,W,B,I"
LINE_LENGTH = "100"
TARGET_VERSION = "py311"
MAX_PROBLEMS_SHOWN = 3
# What every dirty pattern must pass to be published, in the order failures are named.
CHECKS = ("compiles", "imports", "tests", "lint", "format")


@cache
def ruff_version() -> str:
    """`ruff --version` of the ruff the checks run: part of every stored result's digest."""
    completed = subprocess.run(
        [find_ruff(), "--version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or f"unknown ({completed.returncode})"


def find_ruff() -> str:
    """The ruff executable: the one the `ruff` package ships, else the first on PATH."""
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found is None:
            raise CodegenError("ruff is not installed: validation needs it") from None
        return found


def ruff(
    root: Path, arguments: list[str], paths: Sequence[str] = (".",)
) -> subprocess.CompletedProcess[str]:
    """Run ruff on `paths` under `root` with only the given settings; exit codes 0 and 1 are
    findings."""
    # --isolated: the project's own ruff settings must not decide what generated code is;
    # --no-cache: no .ruff_cache next to the code (it would end up looking like output).
    argv = [
        find_ruff(),
        *arguments,
        "--isolated",
        "--no-cache",
        "--line-length",
        LINE_LENGTH,
        "--target-version",
        TARGET_VERSION,
        *paths,
    ]
    completed = subprocess.run(
        argv, cwd=root, capture_output=True, text=True, check=False, env=child_environment()
    )
    if completed.returncode not in (0, 1):
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        raise CodegenError(
            f"ruff {arguments[0]} failed with exit code {completed.returncode}: {tail}"
        )
    return completed


def ruff_json(
    root: Path, arguments: list[str], paths: Sequence[str] = (".",)
) -> list[dict[str, Any]]:
    """ruff's findings as JSON objects, each with `file` relative to `root`."""
    completed = ruff(root, [*arguments, "--output-format", "json"], paths)
    findings = json.loads(completed.stdout or "[]")
    for finding in findings:
        relative = Path(finding["filename"]).resolve().relative_to(root.resolve())
        finding["file"] = relative.as_posix()
    return findings


def findings_by_pattern(root: Path, arguments: list[str]) -> dict[str, list[str]]:
    """ruff's findings per pattern, as `file:line: CODE message`."""
    result: dict[str, list[str]] = {}
    for finding in ruff_json(root, arguments):
        result.setdefault(pattern_of(finding["file"]), []).append(
            f"{finding['file']}:{finding['location']['row']}: "
            f"{finding['code'] or 'syntax'} {finding['message']}"
        )
    return result


def lint_findings(root: Path) -> dict[str, list[str]]:
    """Lint findings per pattern."""
    return findings_by_pattern(root, ["check", "--select", LINT_RULES, "--exit-zero"])


def unformatted(root: Path) -> dict[str, list[str]]:
    """Files `ruff format` would change, per pattern."""
    return findings_by_pattern(root, ["format", "--check"])


def run_tests(root: Path, patterns: list[tuple[str, str]], workers: int) -> dict[str, TestRun]:
    """Import each (name, kind) pattern's module and run its tests in `workers` interpreters.

    A separate interpreter keeps generated code out of this process (see `_runner.py`).
    """
    jobs = [{"root": str(root), "patterns": batch} for batch in split(patterns, workers)]
    results: dict[str, TestRun] = {}
    for outcome in run_scripts(RUNNER, jobs, "the generated tests' runner") if jobs else []:
        for name, run in outcome.items():
            results[name] = parse_document(TestRun, run, f"the tests' runner on {name}")
    return results


def judge_patterns(
    names: list[str],
    runs: dict[str, TestRun],
    lint: dict[str, list[str]],
    unformatted_files: dict[str, list[str]],
) -> tuple[dict[str, PatternValidation], dict[str, list[str]], dict[str, list[str]]]:
    """Per pattern, its checks and test counts; then the failed checks and the problems of
    every pattern that failed one."""
    results: dict[str, PatternValidation] = {}
    failures: dict[str, list[str]] = {}
    problems: dict[str, list[str]] = {}
    for name in names:
        run = runs[name]
        checks = {
            "compiles": True,  # compile raised otherwise
            "imports": run.imports,
            "tests": run.imports and 0 < run.tests_passed == run.tests_total,
            "lint": name not in lint,
            "format": name not in unformatted_files,
        }
        found = run.problems + lint.get(name, []) + unformatted_files.get(name, [])
        results[name] = PatternValidation(
            checks=checks,
            tests=TestCounts(passed=run.tests_passed, total=run.tests_total),
            problems=found,
        )
        failed = [check for check in CHECKS if not checks[check]]
        if failed:
            failures[name] = failed
            problems[name] = found
    return results, failures, problems


def summarise(failures: dict[str, list[str]], problems: dict[str, list[str]]) -> str:
    """`pattern crc_000 failed tests (first problem); ...; and N more pattern(s)`."""
    shown = []
    for name in sorted(failures)[:MAX_PROBLEMS_SHOWN]:
        first = problems.get(name, [""])[0]
        shown.append(
            f"pattern {name} failed {', '.join(failures[name])}" + (f" ({first})" if first else "")
        )
    more = len(failures) - len(shown)
    return "; ".join(shown) + (f"; and {more} more pattern(s)" if more else "")
