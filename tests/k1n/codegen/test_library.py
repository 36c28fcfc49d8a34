"""The pattern library (Task 7): the committed files, their generator, validation, index."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from k1n.codegen import DEFAULT_LIBRARY_DIR, LibraryError, index_library, load_library
from k1n.codegen.kinds import KINDS
from tests.k1n.conftest import tree_digest

PROJECT_DIR = Path(__file__).resolve().parents[3]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_pattern_library", PROJECT_DIR / "scripts" / "make_pattern_library.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_library_is_valid_and_indexed(tmp_path: Path) -> None:
    result, index = index_library(DEFAULT_LIBRARY_DIR)
    size = result["library_size"]
    assert result["quality_gates"] == {"passed": size, "total": size}
    assert set(result["kinds"]) == set(KINDS)
    assert len(index["patterns"]) == size
    assert index["invalid"] == {}


def test_committed_library_matches_its_generator(tmp_path: Path) -> None:
    generator = _generator()
    committed = tree_digest(DEFAULT_LIBRARY_DIR)
    generator.write_library(tmp_path, generator.DEFAULT_COUNT)
    assert tree_digest(tmp_path) == committed


def test_generator_is_deterministic_and_resizable(tmp_path: Path) -> None:
    generator = _generator()
    generator.write_library(tmp_path / "a", 30)
    generator.write_library(tmp_path / "b", 18)
    generator.write_library(tmp_path / "b", 30)  # grow: the first 18 stay as they were
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    generator.write_library(tmp_path / "a", 12)  # shrink: stale files go
    assert len(load_library(tmp_path / "a")) == 12


def test_invalid_pattern_is_named_with_its_problem(small_library: Path, tmp_path: Path) -> None:
    bad = small_library / "crc" / "crc_000.yaml"
    bad.write_text(re.sub(r"width: \d+", "width: 12", bad.read_text()))
    with pytest.raises(LibraryError, match=r"crc/crc_000\.yaml: params\.width: "):
        load_library(small_library)
    result, _ = index_library(small_library)
    assert result["quality_gates"] == {"passed": 11, "total": 12}
    assert list(result["invalid"]) == ["crc/crc_000.yaml"]


@pytest.mark.parametrize(
    ("path", "text", "problem"),
    [
        ("fsm/random.yaml", "name: random\nkind: fsm\ndescription: d\nparams: {}\n", "shadow"),
        ("fsm/x.yaml", "name: y\nkind: fsm\ndescription: d\nparams: {}\n", "belongs in"),
        ("fsm/x.yaml", "name: x\nkind: gpio\ndescription: d\nparams: {}\n", "unknown kind"),
        ("fsm/x.yaml", "[1, 2]\n", "must be a mapping"),
        ("fsm/x.yaml", 'name: x\nkind: fsm\ndescription: \'"""\'\nparams: {}\n', '"""'),
    ],
)
def test_pattern_file_rules(small_library: Path, path: str, text: str, problem: str) -> None:
    (small_library / path).write_text(text)
    with pytest.raises(LibraryError, match=problem):
        load_library(small_library)


def test_missing_library_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="is not a directory"):
        load_library(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="holds no"):
        index_library(tmp_path / "empty")
