"""Snapshots: whole or nothing, verified on every read, pruned without touching the current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k1n.codegen import CodegenError, CodegenStore
from k1n.codegen.archive import pack, unpack
from k1n.codegen.manifest import Manifest, sha256_bytes
from k1n.codegen.snapshots import ARCHIVE, MANIFEST, SNAPSHOTS


def manifest_of(files: dict[str, bytes]) -> Manifest:
    return Manifest(
        engine="test",
        patterns={
            "p": {
                "kind": "k",
                "key": "1",
                "files": {name: sha256_bytes(data) for name, data in files.items()},
                "checks": {"compiles": True},
            }
        },
    )


def publish(store: CodegenStore, files: dict[str, bytes]) -> str:
    manifest = manifest_of(files)
    snapshot_id, data = store.prepare(files, manifest)
    store.publish(snapshot_id, data, manifest)
    return snapshot_id


def test_a_published_snapshot_reads_back_whole_and_becomes_current(tmp_path: Path):
    store = CodegenStore(tmp_path)
    files = {"k/p.py": b"x = 1\n", "k/test_p.py": b"def test(): pass\n"}
    snapshot = publish(store, files)
    assert store.current_id() == snapshot
    assert store.files(snapshot) == files
    store.checkout(snapshot, tmp_path / "out")
    assert (tmp_path / "out" / "k" / "p.py").read_bytes() == files["k/p.py"]


def test_the_same_content_is_the_same_snapshot(tmp_path: Path):
    store = CodegenStore(tmp_path)
    assert publish(store, {"a.py": b"1"}) == publish(store, {"a.py": b"1"})
    assert len(store.snapshot_ids()) == 1


def test_a_damaged_archive_is_never_half_read(tmp_path: Path):
    store = CodegenStore(tmp_path)
    snapshot = publish(store, {"a.py": b"1", "b.py": b"2"})
    archive = tmp_path / SNAPSHOTS / snapshot / ARCHIVE
    archive.write_bytes(pack({"a.py": b"1"}))  # a valid archive, but not the manifest's
    with pytest.raises(CodegenError, match="does not match the manifest"):
        store.files(snapshot)
    assert store.current() == (None, Manifest())  # the builder rebuilds instead


def test_a_snapshot_without_its_manifest_does_not_exist(tmp_path: Path):
    store = CodegenStore(tmp_path)
    snapshot = publish(store, {"a.py": b"1"})
    (tmp_path / SNAPSHOTS / snapshot / MANIFEST).unlink()
    with pytest.raises(CodegenError, match="is K1N_STORAGE_URL the same on every worker"):
        store.files(snapshot)


def test_prune_keeps_the_current_and_the_kept_snapshots(tmp_path: Path):
    store = CodegenStore(tmp_path)
    first, second, third = (publish(store, {"a.py": bytes([n])}) for n in range(3))
    removed = store.prune(keep={first})
    assert removed == [second]
    assert sorted(store.snapshot_ids()) == sorted([first, third])
    assert store.current_id() == third


@pytest.mark.parametrize("value", ["../../etc", "0" * 19, "G" * 20, "0" * 20 + "/x", 7])
def test_anything_but_a_snapshot_id_is_refused_before_it_becomes_a_path(tmp_path: Path, value):
    store = CodegenStore(tmp_path / "store")
    publish(store, {"a.py": b"1"})
    (tmp_path / "store" / "CURRENT").write_text(json.dumps({"snapshot": value}))
    assert store.current_id() is None  # a full rebuild, never a read elsewhere
    with pytest.raises(CodegenError, match="not a snapshot id"):
        store.files(value)
    with pytest.raises(CodegenError, match="not a snapshot id"):
        store.point_at(value)
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", ""])
def test_archives_refuse_names_outside_their_folder(name):
    with pytest.raises(CodegenError, match="unsafe file name"):
        pack({name: b"x"})


def test_archives_are_byte_reproducible_and_round_trip():
    files = {"b.py": b"2", "a/c.py": b"3"}
    assert pack(files) == pack(dict(reversed(list(files.items()))))
    assert unpack(pack(files)) == files
    with pytest.raises(CodegenError, match="not a readable code archive"):
        unpack(b"not gzip")
