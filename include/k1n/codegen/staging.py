"""A run's private staging area: how Task 8's stages hand their work to each other.

In Airflow the stages are separate tasks, possibly on different hosts, so staging lives in
object storage under the run's prefix (`<storage>/runs/<dag>/<run>/codegen/`); the baseline's
one-process Task 8 and the command line use a local folder. Each stage leaves whole objects::

    plan.json                 parse: the library, each pattern's build key, what is dirty
    shards/<digest>.tar.gz    generate: one archive per shard (module and tests per pattern)
    shards/<digest>.json      generate: that shard's patterns and counters, written last
    compiled.tar.gz           compile: every staged source with its checked-hash pyc
    compile.json              compile: sha256 of each staged file and of the archive
    validate.json             validate: per-pattern checks; `passed`
    published.json            write: the snapshot it publishes, recorded before the upload

A retried stage overwrites its own objects (a shard is named by its content), and `reset`
clears everything when parse runs again.
"""

from __future__ import annotations

from typing import Any

from k1n import storage
from k1n.codegen import archive
from k1n.codegen.errors import CodegenError
from k1n.codegen.manifest import sha256_bytes
from k1n.storage import StoragePath

PLAN = "plan.json"
SHARDS = "shards"
COMPILED = "compiled.tar.gz"
COMPILE_RECORD = "compile.json"
VALIDATE_RECORD = "validate.json"
PUBLISHED = "published.json"


class Staging:
    """The staging objects of one run, under `root`."""

    def __init__(self, root: StoragePath) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Staging({str(self.root)!r})"

    def reset(self) -> None:
        storage.remove_tree(self.root)

    def _json(self, name: str, missing: str) -> Any:
        document = storage.read_json(self.root / name)
        if document is None:
            raise CodegenError(f"{missing} (no {name} in staging {self.root})")
        return document

    # -- plan ---------------------------------------------------------------------------

    def write_plan(self, plan: dict[str, Any]) -> None:
        storage.write_json(self.root / PLAN, plan)

    def plan(self) -> dict[str, Any]:
        plan = self._json(PLAN, "run parse first")
        if "library" not in plan:
            raise CodegenError(f"staging {self.root}: parse did not finish; run parse again")
        return plan

    # -- shards -------------------------------------------------------------------------

    def write_shard(self, names: list[str], files: dict[str, bytes], stats: dict[str, Any]) -> None:
        digest = sha256_bytes("\n".join(names).encode("utf-8"))[:16]
        shard = self.root / SHARDS
        storage.put_bytes(shard / f"{digest}.tar.gz", archive.pack(files))
        # The record last: a shard with a record is complete.
        storage.write_json(shard / f"{digest}.json", {**stats, "names": names, "digest": digest})

    def shard_stats(self) -> list[dict[str, Any]]:
        return [
            storage.read_json(child)
            for child in storage.children(self.root / SHARDS)
            if child.name.endswith(".json")
        ]

    def shard_files(self, stats: dict[str, Any]) -> dict[str, bytes]:
        data = storage.read_bytes(self.root / SHARDS / f"{stats['digest']}.tar.gz")
        if data is None:
            raise CodegenError(f"shard {stats['digest']} has a record but no archive")
        return archive.unpack(data)

    # -- compiled -----------------------------------------------------------------------

    def write_compiled(self, files: dict[str, bytes], sources: dict[str, str]) -> None:
        data = archive.pack(files)
        storage.put_bytes(self.root / COMPILED, data)
        record = {"sources": dict(sorted(sources.items())), "archive_sha256": sha256_bytes(data)}
        storage.write_json(self.root / COMPILE_RECORD, record)

    def compile_record(self, missing: str) -> dict[str, Any]:
        return self._json(COMPILE_RECORD, missing)

    def compiled_files(self, record: dict[str, Any]) -> dict[str, bytes]:
        """The compiled archive's files; raises unless it is the one `record` describes."""
        data = storage.read_bytes(self.root / COMPILED)
        if data is None or sha256_bytes(data) != record["archive_sha256"]:
            raise CodegenError("staged files changed after compile: run compile again")
        return archive.unpack(data)

    # -- validation ---------------------------------------------------------------------

    def write_validation(self, record: dict[str, Any]) -> None:
        storage.write_json(self.root / VALIDATE_RECORD, record)

    def validation(self, missing: str) -> dict[str, Any]:
        return self._json(VALIDATE_RECORD, missing)

    # -- what this run refers to ----------------------------------------------------------

    def write_published(self, snapshot_id: str) -> None:
        storage.write_json(self.root / PUBLISHED, {"snapshot": snapshot_id})

    def references(self) -> tuple[set[str], bool]:
        """The snapshots this run builds on or publishes, and whether it is between reading
        the pointer and recording its base (then any snapshot may be the one it read)."""
        plan = storage.read_json(self.root / PLAN) or {}
        published = storage.read_json(self.root / PUBLISHED) or {}
        ids = {plan.get("base"), published.get("snapshot")} - {None}
        return {str(i) for i in ids}, "state" in plan
