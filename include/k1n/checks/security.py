"""Task 12's security scan of generated code: ruff's flake8-bandit (`S`) rules, plus the few
constructs they do not cover.

From ruff (`RUFF_RULES`): `exec` (S102), `eval` (S307), a shell command through `subprocess`
(S602, S604), `os.system`/`os.popen` (S605), `os.exec*`/`os.spawn*` (S606), `pickle`/`shelve`
(S301) and `marshal` (S302) loads, `yaml.load` without a safe loader (S506), and hard-coded
secrets in assignments, keyword arguments and defaults (S105, S106, S107). Not selected: S101
(`assert`: generated tests use it), S311 (`random` is fine in tests), S603/S607 (argv lists).

Ruff has no rule for the rest, so an AST pass adds (`AST_RULES`):

====== ==============================================================================
K1S02  built-in `compile(...)`: turns a string into code
K1S06  `__import__(...)`: imports a computed module
K1S07  a non-empty string literal as the value of a dict key that names a secret
       (`{"api_key": "..."}`); ruff flags secrets in assignments and arguments only
K1S00  a file that cannot be parsed (unscannable: counted as not clean)
====== ==============================================================================
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from k1n.codegen.validation import ruff_json

RUFF_RULES = "S102,S105,S106,S107,S301,S302,S307,S506,S602,S604,S605,S606"
AST_RULES = {
    "K1S00": "a file that cannot be parsed",
    "K1S02": "compile() turns a string into code",
    "K1S06": "__import__() imports a computed module",
    "K1S07": "hard-coded secret as a dict value",
}
SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api_?key|private_?key|credential|auth_?key)", re.IGNORECASE
)


def _finding(location: str, rule: str, message: str) -> dict[str, Any]:
    return {"location": location, "rule": rule, "message": message}


class _Visitor(ast.NodeVisitor):
    """Calls of the builtins `compile`/`__import__` (not `re.compile`), secret dict values."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.findings: list[dict[str, Any]] = []

    def _flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.findings.append(_finding(f"{self.filename}:{node.lineno}", rule, message))

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "compile":
            self._flag(node, "K1S02", AST_RULES["K1S02"])
        elif isinstance(node.func, ast.Name) and node.func.id == "__import__":
            self._flag(node, "K1S06", AST_RULES["K1S06"])
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and SECRET_NAME.search(key.value)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and value.value
            ):
                self._flag(value, "K1S07", f"hard-coded secret under key {key.value!r}")
        self.generic_visit(node)


def scan_ast(source: str, filename: str) -> list[dict[str, Any]]:
    """The AST rules' findings in one module's source."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        return [_finding(f"{filename}:{exc.lineno or 0}", "K1S00", f"cannot parse: {exc.msg}")]
    visitor = _Visitor(filename)
    visitor.visit(tree)
    return visitor.findings


def scan_tree(root: Path, files: list[Path]) -> list[dict[str, Any]]:
    """Every finding in `files` (under `root`), ruff's and the AST rules', sorted by location."""
    relative = [path.relative_to(root).as_posix() for path in files]
    findings = [
        _finding(f"{f['file']}:{f['location']['row']}", f["code"], f["message"])
        for f in ruff_json(root, ["check", "--select", RUFF_RULES, "--exit-zero"], relative)
        if (f["code"] or "").startswith("S")  # not syntax errors: K1S00 reports those once
    ]
    for path, name in zip(files, relative, strict=True):
        findings.extend(scan_ast(path.read_text(encoding="utf-8"), name))
    return sorted(findings, key=lambda f: (f["location"].rsplit(":", 1)[0], _line(f), f["rule"]))


def scan_source(source: str, filename: str = "m.py") -> list[dict[str, Any]]:
    """The findings in one module's source (written to a scratch folder for ruff)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="k1n-scan-") as scratch:
        path = Path(scratch) / filename
        path.write_text(source, encoding="utf-8")
        return scan_tree(Path(scratch), [path])


def _line(finding: dict[str, Any]) -> int:
    return int(finding["location"].rsplit(":", 1)[1])
