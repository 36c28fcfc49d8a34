"""Object-storage helpers: collision-free keys, atomic replacement, whole-object reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from k1n import storage


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("a:1", "a+1"),
        ("manual__2026-11-25T20:00:00+00:00", "manual__2026-11-25T20_00_00_00_00"),
        ("x/y", "x_y"),
    ],
)
def test_keys_of_different_ids_never_collide(a, b):
    assert storage.key_for(a) != storage.key_for(b)


@pytest.mark.parametrize("identifier", [".", "..", "../etc", "", "a" * 300, "\x00", "é/ü"])
def test_keys_are_one_safe_path_segment(identifier):
    key = storage.key_for(identifier)
    assert key not in {".", ".."} and not key.startswith(".")
    assert "/" not in key and "\x00" not in key
    assert len(key) <= storage.READABLE_PREFIX_LENGTH + 1 + storage.HASH_LENGTH


def test_run_prefixes_stay_inside_the_root(tmp_path: Path):
    root = storage.open_root(tmp_path)
    for run_id in (".", "..", "../../x"):
        prefix = Path(storage.run_prefix(root, "dag", run_id).path)
        assert prefix.is_relative_to(tmp_path / "runs")
        assert prefix.parent == tmp_path / "runs" / storage.key_for("dag")


def test_put_atomic_never_shows_a_partial_object(tmp_path: Path):
    path = storage.open_root(tmp_path) / "CURRENT"
    old, new = b"a" * 2_000_000, b"b" * 2_000_000
    storage.put_atomic(path, old)
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            data = storage.read_bytes(path)
            seen.add(data[:1] + data[-1:] + bytes([len(data) == len(old)]))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(20):
        storage.put_atomic(path, new)
        storage.put_atomic(path, old)
    done.set()
    reader.join()
    assert seen <= {b"aa\x01", b"bb\x01"}  # one whole version or the other, never a mix
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_objects_read_as_none_and_trees_are_removed(tmp_path: Path):
    root = storage.open_root(tmp_path)
    assert storage.read_bytes(root / "nope") is None
    assert storage.read_json(root / "nope.json") is None
    storage.write_json(root / "a" / "b" / "c.json", {"x": 1})
    assert storage.read_json(root / "a" / "b" / "c.json") == {"x": 1}
    assert [child.name for child in storage.children(root / "a")] == ["b"]
    storage.remove_tree(root / "a")
    assert storage.children(root / "a") == []
    storage.remove_tree(root / "a")  # a missing tree is fine
