"""The pattern library (Task 7): the generated demo library, its cache, validation, index."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from k1n.codegen import LibraryError, default_library_dir, demo_library, index_library, load_library
from k1n.codegen.kinds import KINDS
from tests.k1n.conftest import tree_digest


def test_the_default_library_is_generated_valid_and_indexed() -> None:
    result, index = index_library()
    size = result["library_size"]
    assert size == demo_library.DEFAULT_COUNT
    assert result["quality_gates"] == {"passed": size, "total": size}
    assert set(result["kinds"]) == set(KINDS)
    assert len(index["patterns"]) == size
    assert index["invalid"] == {}


def test_the_generated_library_is_written_once_per_cache(tmp_path: Path) -> None:
    first = demo_library.materialized(tmp_path, count=24)
    marker = first / demo_library.COMPLETE_MARKER
    written = marker.stat().st_mtime_ns
    assert demo_library.materialized(tmp_path, count=24) == first
    assert marker.stat().st_mtime_ns == written  # reused, not rebuilt
    assert len(load_library(first)) == 24
    assert [p.name for p in (tmp_path / "pattern-library").iterdir()] == [first.name]


def test_concurrent_first_uses_all_get_the_complete_library(tmp_path: Path) -> None:
    found: list[Path] = []
    workers = [
        threading.Thread(target=lambda: found.append(demo_library.materialized(tmp_path, 30)))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(found)) == 1 and len(load_library(found[0])) == 30
    # Whoever lost the rename left nothing behind.
    assert [p.name for p in (tmp_path / "pattern-library").iterdir()] == [found[0].name]


def test_a_configured_library_wins(monkeypatch, small_library: Path) -> None:
    monkeypatch.setenv("K1N_PATTERN_LIBRARY", str(small_library))
    assert default_library_dir() == small_library
    assert index_library()[0]["library_size"] == 12


def test_generator_is_deterministic_and_resizable(tmp_path: Path) -> None:
    demo_library.write_library(tmp_path / "a", 30)
    demo_library.write_library(tmp_path / "b", 18)
    demo_library.write_library(tmp_path / "b", 30)  # grow: the first 18 stay as they were
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    demo_library.write_library(tmp_path / "a", 12)  # shrink: stale files go
    assert len(load_library(tmp_path / "a")) == 12


def test_a_variant_changes_every_pattern_under_the_same_names(tmp_path: Path) -> None:
    usual = load_library(demo_library.materialized(tmp_path, count=30))
    variant = load_library(demo_library.materialized(tmp_path, count=30, variant=3))
    again = load_library(demo_library.materialized(tmp_path / "elsewhere", count=30, variant=3))
    assert set(variant) == set(usual)
    assert all(variant[name].spec() != usual[name].spec() for name in usual)
    assert {name: p.spec() for name, p in again.items()} == {
        name: p.spec() for name, p in variant.items()
    }


def test_a_configured_library_has_no_variants(monkeypatch, small_library: Path) -> None:
    monkeypatch.setenv("K1N_PATTERN_LIBRARY", str(small_library))
    with pytest.raises(LibraryError, match="has no variant 2"):
        default_library_dir(variant=2)


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
        # Billion laughs: nine levels of ten aliases each would be 10^9 nodes.
        (
            "fsm/x.yaml",
            "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 9)),
            r"fsm/x\.yaml: cannot read: invalid YAML: its aliases expand to more than",
        ),
        ("fsm/x.yaml", "key: [unclosed\n", r"fsm/x\.yaml: cannot read: invalid YAML: .*line 2"),
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
