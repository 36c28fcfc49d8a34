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

from typing import TypeVar

from pydantic import BaseModel

from k1n import storage
from k1n.codegen import archive
from k1n.codegen.contracts import (
    CompileRecord,
    Plan,
    PlanClaim,
    PublishedRecord,
    ShardRecord,
    ValidationRecord,
    parse_document,
)
from k1n.codegen.errors import CodegenError
from k1n.codegen.manifest import sha256_bytes
from k1n.storage import StoragePath

PLAN = "plan.json"
SHARDS = "shards"
COMPILED = "compiled.tar.gz"
COMPILE_RECORD = "compile.json"
VALIDATE_RECORD = "validate.json"
PUBLISHED = "published.json"

ModelT = TypeVar("ModelT", bound=BaseModel)


class Staging:
    """The staging objects of one run, under `root`; each document typed by its contract."""

    def __init__(self, root: StoragePath) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Staging({str(self.root)!r})"

    def reset(self) -> None:
        storage.remove_tree(self.root)

    def _write(self, name: str, document: BaseModel) -> None:
        # Atomic: a task killed mid-write, or a reader (its retry) at that moment, must see
        # the old record or the new, never a truncated one.
        storage.write_json(self.root / name, document.model_dump(mode="json"), atomic=True)

    def _read(self, model: type[ModelT], name: str, missing: str) -> ModelT:
        path = self.root / name
        document = storage.read_json(path)
        if document is None:
            raise CodegenError(f"{missing} (no {name} in staging {self.root})")
        return parse_document(model, document, str(path))

    # -- plan ---------------------------------------------------------------------------

    def write_claim(self) -> None:
        """Parse is reading the pointer: until the plan names its base, keep every snapshot."""
        self._write(PLAN, PlanClaim())

    def write_plan(self, plan: Plan) -> None:
        self._write(PLAN, plan)

    def plan(self) -> Plan:
        document = storage.read_json(self.root / PLAN)
        if document is None:
            raise CodegenError(f"run parse first (no {PLAN} in staging {self.root})")
        if document == PlanClaim().model_dump():
            raise CodegenError(f"staging {self.root}: parse did not finish; run parse again")
        return parse_document(Plan, document, str(self.root / PLAN))

    # -- shards -------------------------------------------------------------------------

    def write_shard(self, files: dict[str, bytes], record: ShardRecord) -> None:
        shard = self.root / SHARDS
        storage.put_bytes(shard / f"{record.digest}.tar.gz", archive.pack(files))
        # The record last: a shard with a record is complete.
        self._write(f"{SHARDS}/{record.digest}.json", record)

    @staticmethod
    def shard_digest(names: list[str]) -> str:
        """A shard's name in staging: a hash of its patterns (a retry overwrites its own)."""
        return sha256_bytes("\n".join(names).encode("utf-8"))[:16]

    def shard_records(self) -> list[ShardRecord]:
        return [
            parse_document(ShardRecord, storage.read_json(child), str(child))
            for child in storage.children(self.root / SHARDS)
            if child.name.endswith(".json")
        ]

    def shard_files(self, record: ShardRecord) -> dict[str, bytes]:
        data = storage.read_bytes(self.root / SHARDS / f"{record.digest}.tar.gz")
        if data is None:
            raise CodegenError(f"shard {record.digest} has a record but no archive")
        return archive.unpack(data)

    # -- compiled -----------------------------------------------------------------------

    def write_compiled(self, files: dict[str, bytes], sources: dict[str, str]) -> None:
        data = archive.pack(files)
        storage.put_bytes(self.root / COMPILED, data)
        record = CompileRecord(
            sources=dict(sorted(sources.items())), archive_sha256=sha256_bytes(data)
        )
        self._write(COMPILE_RECORD, record)

    def compile_record(self, missing: str) -> CompileRecord:
        return self._read(CompileRecord, COMPILE_RECORD, missing)

    def compiled_files(self, record: CompileRecord) -> dict[str, bytes]:
        """The compiled archive's files; raises unless it is the one `record` describes."""
        data = storage.read_bytes(self.root / COMPILED)
        if data is None or sha256_bytes(data) != record.archive_sha256:
            raise CodegenError("staged files changed after compile: run compile again")
        return archive.unpack(data)

    # -- validation ---------------------------------------------------------------------

    def write_validation(self, record: ValidationRecord) -> None:
        self._write(VALIDATE_RECORD, record)

    def validation(self, missing: str) -> ValidationRecord:
        return self._read(ValidationRecord, VALIDATE_RECORD, missing)

    # -- what this run refers to ----------------------------------------------------------

    def write_published(self, snapshot_id: str) -> None:
        self._write(PUBLISHED, PublishedRecord(snapshot=snapshot_id))

    def references(self) -> tuple[set[str], bool]:
        """The snapshots this run builds on or publishes, and whether it is between reading
        the pointer and recording its base (then any snapshot may be the one it read).

        Retention reads every run's staging: a document that does not fit its contract
        counts as "reading the pointer", which keeps every snapshot rather than guess.
        """
        plan = storage.read_json(self.root / PLAN)
        published = storage.read_json(self.root / PUBLISHED)
        ids: set[str] = set()
        try:
            if plan is not None and plan != PlanClaim().model_dump():
                ids.add(parse_document(Plan, plan, PLAN).base or "")
            if published is not None:
                ids.add(parse_document(PublishedRecord, published, PUBLISHED).snapshot)
        except CodegenError:
            return set(), True
        return ids - {""}, plan == PlanClaim().model_dump()
