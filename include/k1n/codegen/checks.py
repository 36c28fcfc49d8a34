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
    Parses every module (tests included) with `ast` and reports, without running anything:

    ====== ==============================================================================
    rule   what it flags
    ====== ==============================================================================
    K1S01  `eval(...)` or `exec(...)`
    K1S02  built-in `compile(...)` (turns a string into code)
    K1S03  `os.system`, `os.popen` and the `os.exec*` / `os.spawn*` families
    K1S04  a `subprocess` call with `shell=True`
    K1S05  `pickle`/`cPickle`/`marshal`/`shelve` loads, `yaml.load` without a safe Loader
    K1S06  `__import__(...)`
    K1S07  a string literal assigned (or passed as keyword, or used as dict value) to a name
           that looks like a secret: password, passwd, secret, token, api_key, private_key,
           credential, auth_key (empty strings are not flagged)
    K1S00  a file that cannot be parsed (unscannable: counted as not clean)
    ====== ==============================================================================

    Calls are resolved through `import x as y` and `from x import y as z`. Gates: modules
    without findings / modules. Details: each finding as `{"location": "file:line", "rule",
    "message"}`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from include.k1n.codegen.engine import find_ruff
from include.k1n.codegen.errors import CodegenError

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
        env = {
            **os.environ,
            # No pytest pycs in the output's __pycache__ next to the published, hashed ones.
            "PYTHONDONTWRITEBYTECODE": "1",
            # Only pytest itself: plugins installed for the project have no business here.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
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
    completed = subprocess.run(argv, cwd=output_dir, capture_output=True, text=True, check=False)
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

SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api_?key|private_?key|credential|auth_?key)", re.IGNORECASE
)
DANGEROUS_CALLS = {
    "eval": ("K1S01", "eval() runs a string as code"),
    "exec": ("K1S01", "exec() runs a string as code"),
    "compile": ("K1S02", "compile() turns a string into code"),
    "__import__": ("K1S06", "__import__() imports a computed module"),
    "os.system": ("K1S03", "os.system() runs a shell command"),
    "os.popen": ("K1S03", "os.popen() runs a shell command"),
    "pickle.load": ("K1S05", "pickle.load() can run arbitrary code"),
    "pickle.loads": ("K1S05", "pickle.loads() can run arbitrary code"),
    "cPickle.load": ("K1S05", "cPickle.load() can run arbitrary code"),
    "cPickle.loads": ("K1S05", "cPickle.loads() can run arbitrary code"),
    "marshal.load": ("K1S05", "marshal.load() trusts its input"),
    "marshal.loads": ("K1S05", "marshal.loads() trusts its input"),
    "shelve.open": ("K1S05", "shelve.open() unpickles its content"),
}
OS_COMMAND_PREFIXES = ("os.exec", "os.spawn")
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


class _SecurityVisitor(ast.NodeVisitor):
    """Collects findings in one module; `aliases` maps local names to what they import."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.findings: list[tuple[int, str, str]] = []

    def _flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.findings.append((getattr(node, "lineno", 0), rule, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"

    def _qualified(self, node: ast.expr) -> str | None:
        """`os.system`, `sp.run` -> `subprocess.run`, ...; None for anything not a plain name."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualified(node.func)
        if name in DANGEROUS_CALLS:
            self._flag(node, *DANGEROUS_CALLS[name])
        elif name and name.startswith(OS_COMMAND_PREFIXES):
            self._flag(node, "K1S03", f"{name}() replaces or spawns a process")
        elif name and name.startswith("subprocess.") and _keyword_true(node, "shell"):
            self._flag(node, "K1S04", f"{name}(shell=True) runs its command through a shell")
        elif name == "yaml.load" and not _safe_yaml_loader(node):
            self._flag(node, "K1S05", "yaml.load() without a safe Loader can build any object")
        for keyword in node.keywords:
            if keyword.arg and SECRET_NAME.search(keyword.arg) and _nonempty_string(keyword.value):
                self._flag(keyword.value, "K1S07", f"hard-coded secret passed as {keyword.arg}=")
        self.generic_visit(node)

    def _check_secret(self, target: ast.expr, value: ast.expr | None) -> None:
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
        if name and SECRET_NAME.search(name) and value is not None and _nonempty_string(value):
            self._flag(target, "K1S07", f"hard-coded secret assigned to {name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_secret(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_secret(node.target, node.value)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and SECRET_NAME.search(key.value)
                and _nonempty_string(value)
            ):
                self._flag(value, "K1S07", f"hard-coded secret under key {key.value!r}")
        self.generic_visit(node)


def _nonempty_string(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(node.value)


def _keyword_true(node: ast.Call, name: str) -> bool:
    return any(
        keyword.arg == name
        and not (isinstance(keyword.value, ast.Constant) and not keyword.value.value)
        for keyword in node.keywords
    )


def _safe_yaml_loader(node: ast.Call) -> bool:
    loaders = [keyword.value for keyword in node.keywords if keyword.arg == "Loader"]
    loaders += node.args[1:2]
    return any(
        (isinstance(loader, ast.Attribute) and loader.attr in SAFE_YAML_LOADERS)
        or (isinstance(loader, ast.Name) and loader.id in SAFE_YAML_LOADERS)
        for loader in loaders
    )


def scan_source(source: str, filename: str = "<string>") -> list[dict[str, Any]]:
    """Security findings in one module's source, sorted by line."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        return [
            {
                "location": f"{filename}:{exc.lineno or 0}",
                "rule": "K1S00",
                "message": f"cannot parse: {exc.msg}",
            }
        ]
    visitor = _SecurityVisitor()
    visitor.visit(tree)
    return [
        {"location": f"{filename}:{line}", "rule": rule, "message": message}
        for line, rule, message in sorted(visitor.findings)
    ]


def run_security_scan(output_dir: Path) -> dict[str, Any]:
    """Scan every generated module for dangerous constructs; gates = clean modules / modules."""
    output_dir = Path(output_dir)
    files = _python_files(output_dir)
    findings = []
    flagged = set()
    for path in files:
        relative = path.relative_to(output_dir).as_posix()
        found = scan_source(path.read_text(encoding="utf-8"), relative)
        if found:
            flagged.add(relative)
            findings.extend(found)
    details = {
        "modules": len(files),
        "findings_total": len(findings),
        "flagged_modules": sorted(flagged)[:MAX_DETAILS],
        "findings": findings[:MAX_DETAILS],
    }
    return _result(len(files) - len(flagged), len(files), details)
