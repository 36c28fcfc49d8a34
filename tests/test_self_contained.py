"""The repository is self-contained: nothing in it reads a file outside the checkout.

A user's clone has only this tree. A test or module that reaches for a sibling folder of the
checkout passes on a developer's machine and fails for everybody else, so this looks for the
two ways that happens: a path literal that climbs out of the repository, and a
`Path(__file__).parents[N]` / `.parent` chain that ends above the repository root.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

# Built from parts so that this file does not match its own search.
SIBLING_FOLDER = re.compile(r"\.\./" + "shared" + r"\b|" + "shared" + r"/reference\b")
RELATIVE_PATH = re.compile(r"""(?<![\w.])((?:\.\./)+)[\w.-]+""")


def tracked_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True
    ).stdout.decode()
    return [PROJECT_DIR / name for name in listing.split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None


def test_no_file_refers_to_the_folders_beside_the_checkout():
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in tracked_files()
        if (text := text_of(path)) is not None
        for match in SIBLING_FOLDER.finditer(text)
    ]
    assert offenders == []


def test_no_relative_path_climbs_out_of_the_repository():
    offenders = []
    for path in tracked_files():
        text = text_of(path)
        if text is None or path.suffix in {".png", ".svg"}:
            continue
        for match in RELATIVE_PATH.finditer(text):
            ups = match.group(1).count("../")
            depth = len(path.relative_to(PROJECT_DIR).parent.parts)
            if ups > depth:
                line = text[: match.start()].count("\n") + 1
                offenders.append(f"{path.relative_to(PROJECT_DIR)}:{line}: {match.group(0)}")
    assert offenders == []


def _climb(node: ast.AST) -> int | None:
    """How many folders `node` climbs from `__file__`: `Path(__file__).resolve().parents[2]`
    -> 3 (the file itself, then two parents up), `.parent.parent` -> 2; None if unrelated."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = node.value
        if isinstance(base, ast.Attribute) and base.attr == "parents":
            inner = _climb(base.value)
            if inner is not None and isinstance(node.slice.value, int):
                return inner + node.slice.value + 1
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _climb(node.value)
        return None if inner is None else inner + 1
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in {"resolve", "absolute"}:
            return _climb(func.value)
        if isinstance(func, ast.Name) and func.id == "Path" and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Name) and argument.id == "__file__":
                return 0
    return None


@pytest.mark.parametrize(
    "source",
    [p for p in tracked_files() if p.suffix == ".py"],
    ids=lambda p: str(p.relative_to(PROJECT_DIR)),
)
def test_paths_built_from_dunder_file_stay_inside_the_repository(source: Path):
    depth = len(source.relative_to(PROJECT_DIR).parent.parts)
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        climbed = _climb(node)
        if climbed is not None and climbed > depth + 1:
            raise AssertionError(
                f"{source.relative_to(PROJECT_DIR)}:{node.lineno}: climbs {climbed - 1} "
                f"folder(s) up from a file {depth} folder(s) deep: outside the checkout"
            )


def test_the_guard_catches_what_it_is_for():
    """The checks above would flag the path the old spec test used."""
    bad = ast.parse('Path(__file__).resolve().parents[4] / "x"').body[0].value.left
    assert _climb(bad) == 5  # from tests/include/k1n/test_spec.py: 3 deep, 5 > 4
    assert SIBLING_FOLDER.search("../" + "shared" + "/reference/x.yaml")
    climbing = "../" * 2
    assert RELATIVE_PATH.search(f"open('{climbing}x')").group(1) == climbing
