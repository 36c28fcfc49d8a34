"""The bounded file readers every spec, settings file and profile goes through."""

from __future__ import annotations

import itertools
import os
import resource
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k1n import io
from k1n.errors import FileProblem
from k1n.io import MAX_YAML_NODES, ParsedYamlCache, load_yaml_text, read_text_file, read_yaml


class Problem(FileProblem):
    pass


def billion_laughs(levels: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to 9**levels strings."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in itertools.pairwise("abcdefghijklmnop"[: levels + 1]):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_is_refused_at_once_without_expanding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        read_yaml(path, Problem)
    assert time.monotonic() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    assert f"aliases expand to more than {MAX_YAML_NODES} nodes" in str(caught.value)
    assert "lol" not in str(caught.value)


def test_ordinary_aliases_still_load() -> None:
    assert load_yaml_text("base: &b {x: 1}\nother: *b\n") == {"base": {"x": 1}, "other": {"x": 1}}
    assert load_yaml_text("") is None


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="aliases expand"):
        load_yaml_text("a: &a [*a]\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"name: caf\xe9\n"), "not UTF-8 text (byte 9"),
        (lambda p: p.write_bytes(b"x" * 2048), "larger than 1024 bytes"),
        (lambda p: None, "file not found"),
    ],
)
def test_files_that_are_not_small_utf8_files_are_one_line_problems(tmp_path, make, message):
    path = tmp_path / "input.yaml"
    make(path)
    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        read_text_file(path, Problem, max_bytes=1024)
    assert time.monotonic() - started < 2  # a FIFO is never opened, /dev/zero never read
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_deep_nesting_is_a_yaml_problem(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(Problem, match="invalid YAML"):
        read_yaml(path, Problem)


@settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_any_bytes_are_data_or_one_problem(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.yaml"
    path.write_bytes(data)
    try:
        read_yaml(path, Problem)
    except Problem as problem:
        assert "\n" not in str(problem)


def test_a_cache_folder_others_can_write_is_refused_before_code_is_loaded(tmp_path) -> None:
    from k1n.codegen.rendering import CountingBytecodeCache
    from k1n.io import private_dir

    mine = private_dir(tmp_path / "new" / "cache")
    assert mine.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # like /tmp/k1n made by another user
    with pytest.raises(PermissionError, match="writable by others"):
        CountingBytecodeCache(shared)
    linked = tmp_path / "linked"
    linked.symlink_to(mine)
    with pytest.raises(PermissionError, match="is a link or not a folder"):
        private_dir(linked)
    if os.getuid() == 0:  # root can hand a folder to another user
        theirs = private_dir(tmp_path / "theirs")
        os.chown(theirs, 4321, 4321)
        with pytest.raises(PermissionError, match="someone else's"):
            private_dir(theirs)


def test_a_parsed_yaml_cache_parses_each_text_once_and_follows_changes(
    tmp_path: Path, monkeypatch
) -> None:
    first, second, dated = (tmp_path / name for name in ("first.yaml", "second.yaml", "d.yaml"))
    first.write_text("name: a\nparams: {width: 8, taps: [1, 2]}\n")
    second.write_text("name: b\n")
    dated.write_text("when: 2026-12-06\n")  # a date: JSON cannot hold it exactly
    cache_file = tmp_path / "cache" / "library.json"
    cache = ParsedYamlCache(cache_file)
    expected = {path: read_yaml(path, Problem) for path in (first, second, dated)}
    assert {path: read_yaml(path, Problem, cache) for path in expected} == expected
    cache.save()
    assert sorted(ParsedYamlCache(cache_file)._known.values(), key=str) == [
        expected[first],
        expected[second],
    ]

    parsed: list[str] = []
    monkeypatch.setattr(io, "load_yaml_text", lambda text: parsed.append(text) or {"of": text})
    second.write_text("name: c\n")
    cache = ParsedYamlCache(cache_file)
    assert read_yaml(first, Problem, cache) == expected[first]  # from the file: not parsed
    assert read_yaml(second, Problem, cache) == {"of": "name: c\n"}  # changed: parsed
    read_yaml(dated, Problem, cache)
    assert parsed == ["name: c\n", "when: 2026-12-06\n"]
    cache.save()
    # The file keeps what was read since it was opened: "name: b" is gone, nothing piles up.
    kept = ParsedYamlCache(cache_file)._known
    assert sorted(kept.values(), key=str) == [
        expected[first],
        {"of": "name: c\n"},
        {"of": "when: 2026-12-06\n"},
    ]


@pytest.mark.parametrize(
    "damage", [b"{not json", b'{"version": "0", "documents": {}}', b"[]", b"\xff"]
)
def test_a_damaged_or_foreign_cache_file_is_ignored_and_replaced(tmp_path, damage) -> None:
    pattern = tmp_path / "p.yaml"
    pattern.write_text("name: a\n")
    cache_file = tmp_path / "library.json"
    cache_file.write_bytes(damage)
    cache = ParsedYamlCache(cache_file)
    assert read_yaml(pattern, Problem, cache) == {"name": "a"}
    cache.save()
    assert list(ParsedYamlCache(cache_file)._known.values()) == [{"name": "a"}]
