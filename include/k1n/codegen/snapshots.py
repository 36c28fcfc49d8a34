"""Published code generation output: immutable snapshots and one pointer, in object storage.

Under one DAG's codegen root (`<storage>/codegen/<dag key>/`)::

    snapshots/<id>/code.tar.gz     every published file (sources and pycs), one archive
    snapshots/<id>/manifest.json   what the archive holds (k1n.codegen.manifest)
    CURRENT                        {"snapshot": "<id>"}: the newest published snapshot

A snapshot is written whole under a fresh id (the hash of its manifest) before `CURRENT` is
switched to it, in one small atomic write. Readers never look at "whatever is there now": the
tasks that check generated code read the snapshot their own run's Task 8 published, by id,
and `checkout` verifies every file against the manifest, so a reader sees one complete
snapshot or fails. Concurrent runs publish their own snapshots; the last pointer write wins,
and each run keeps reading its own. No lock is needed, on a local disk or on S3.
"""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path
from typing import Any

from k1n import storage
from k1n.codegen import archive
from k1n.codegen.errors import CodegenError
from k1n.codegen.manifest import SNAPSHOT_ID_PATTERN, Manifest, sha256_bytes
from k1n.errors import brief
from k1n.storage import StoragePath

log = logging.getLogger(__name__)

POINTER = "CURRENT"
SNAPSHOTS = "snapshots"
ARCHIVE = "code.tar.gz"
MANIFEST = "manifest.json"


class CodegenStore:
    """The snapshots and the pointer of one DAG's code generation."""

    def __init__(self, root: StoragePath | str | Path) -> None:
        self.root: StoragePath = storage.open_root(root) if isinstance(root, str | Path) else root

    def __repr__(self) -> str:
        return f"CodegenStore({str(self.root)!r})"

    def _snapshot(self, snapshot_id: str) -> StoragePath:
        # Ids arrive from documents (the pointer, XComs, staging): never a path of their own.
        if not isinstance(snapshot_id, str) or not re.fullmatch(SNAPSHOT_ID_PATTERN, snapshot_id):
            raise CodegenError(f"not a snapshot id: {brief(snapshot_id)}")
        return self.root / SNAPSHOTS / snapshot_id

    # -- reading --------------------------------------------------------------------------

    def current_id(self) -> str | None:
        """The id `CURRENT` points at; None before the first publication (or if unreadable)."""
        try:
            pointer = storage.read_json(self.root / POINTER)
        except ValueError as exc:
            log.warning("ignoring unreadable %s in %s (%s): full rebuild", POINTER, self, exc)
            return None
        snapshot = pointer.get("snapshot") if isinstance(pointer, dict) else None
        if not isinstance(snapshot, str) or not re.fullmatch(SNAPSHOT_ID_PATTERN, snapshot):
            if snapshot is not None:
                log.warning("ignoring %s in %s: not a snapshot id: full rebuild", POINTER, self)
            return None
        return snapshot

    def manifest(self, snapshot_id: str) -> Manifest:
        """A snapshot's manifest; a missing or unreadable one raises `CodegenError`."""
        path = self._snapshot(snapshot_id) / MANIFEST
        try:
            document = storage.read_json(path)
        except ValueError as exc:
            raise CodegenError(f"snapshot {snapshot_id}: unreadable manifest: {exc}") from None
        if document is None:
            raise CodegenError(
                f"snapshot {snapshot_id} not found in {self.root}: it was never published "
                "there or was removed; is K1N_STORAGE_URL the same on every worker?"
            )
        manifest = Manifest.from_document(document)
        if manifest is None:
            raise CodegenError(f"snapshot {snapshot_id}: manifest in an unknown format")
        return manifest

    def current(self) -> tuple[str | None, Manifest]:
        """The current snapshot's id and manifest; (None, empty) when there is none usable.

        The archive is checked against the manifest (one read, one hash), so a damaged or
        missing archive is found here rather than by a reader later. An unusable snapshot only
        costs a full rebuild, so it is logged, not raised.
        """
        snapshot_id = self.current_id()
        if snapshot_id is None:
            return None, Manifest()
        try:
            manifest = self.manifest(snapshot_id)
            data = storage.read_bytes(self._snapshot(snapshot_id) / ARCHIVE)
            if data is None or sha256_bytes(data) != manifest.archive_sha256:
                raise CodegenError(f"snapshot {snapshot_id}: archive missing or damaged")
        except CodegenError as exc:
            log.warning("ignoring the current snapshot (%s): full rebuild", exc)
            return None, Manifest()
        return snapshot_id, manifest

    def files(self, snapshot_id: str, manifest: Manifest | None = None) -> dict[str, bytes]:
        """Every file of a snapshot, each checked against its manifest."""
        manifest = manifest or self.manifest(snapshot_id)
        data = storage.read_bytes(self._snapshot(snapshot_id) / ARCHIVE)
        if data is None:
            raise CodegenError(f"snapshot {snapshot_id}: its archive is missing")
        if sha256_bytes(data) != manifest.archive_sha256:
            raise CodegenError(f"snapshot {snapshot_id}: its archive does not match the manifest")
        files = archive.unpack(data)
        expected = manifest.files
        if set(files) != set(expected):
            raise CodegenError(
                f"snapshot {snapshot_id}: archive holds {len(files)} files, manifest lists "
                f"{len(expected)}"
            )
        damaged = sorted(
            name for name, content in files.items() if sha256_bytes(content) != expected[name]
        )
        if damaged:
            raise CodegenError(f"snapshot {snapshot_id}: damaged files, e.g. {damaged[0]}")
        return files

    def checkout(self, snapshot_id: str, into: Path) -> Manifest:
        """Write a snapshot's files under the local folder `into`; its manifest."""
        manifest = self.manifest(snapshot_id)
        archive.write_tree(self.files(snapshot_id, manifest), into)
        return manifest

    def snapshot_ids(self) -> list[str]:
        return [child.name for child in storage.children(self.root / SNAPSHOTS)]

    # -- writing --------------------------------------------------------------------------

    @staticmethod
    def prepare(files: dict[str, bytes], manifest: Manifest) -> tuple[str, bytes]:
        """The snapshot id and archive of `files` (completing `manifest` with its hash)."""
        if set(files) != set(manifest.files):
            raise CodegenError("publish: the files do not match the manifest")
        data = archive.pack(files)
        manifest.archive_sha256 = sha256_bytes(data)
        return manifest.snapshot_id, data

    def publish(self, snapshot_id: str, data: bytes, manifest: Manifest) -> None:
        """Store a prepared snapshot, then point `CURRENT` at it.

        The archive and the manifest are complete before the pointer moves. An identical
        snapshot that already exists is reused; its archive is written again with the same
        bytes, which also repairs a damaged copy.
        """
        if manifest.snapshot_id != snapshot_id or sha256_bytes(data) != manifest.archive_sha256:
            raise CodegenError(f"publish: snapshot {snapshot_id} is not what was prepared")
        folder = self._snapshot(snapshot_id)
        storage.put_atomic(folder / ARCHIVE, data)  # atomic: readers may be reading it
        if not (folder / MANIFEST).exists():
            # The manifest last: a snapshot with a manifest is complete.
            storage.write_json(folder / MANIFEST, manifest.document(), atomic=True)
        self.point_at(snapshot_id)

    def point_at(self, snapshot_id: str) -> None:
        self._snapshot(snapshot_id)  # checks the id
        pointer = {"snapshot": snapshot_id, "published_by": socket.gethostname()}
        storage.write_json(self.root / POINTER, pointer, atomic=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Delete every snapshot except `keep` and the current one; the ids deleted."""
        keep = keep | {self.current_id() or ""}
        removed = []
        for snapshot_id in self.snapshot_ids():
            if snapshot_id not in keep:
                storage.remove_tree(self._snapshot(snapshot_id))
                removed.append(snapshot_id)
        return removed

    def clear(self) -> None:
        """Remove the pointer and every snapshot: the next build starts cold."""
        storage.remove_tree(self.root)

    def describe(self) -> dict[str, Any]:
        return {"root": str(self.root), "current": self.current_id()}
