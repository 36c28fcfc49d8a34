"""Which run a task belongs to: everything a handler needs beyond its spec entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from k1n import storage
from k1n.storage import StoragePath

if TYPE_CHECKING:  # imported when used: every task process parses the DAG file importing this
    from k1n.codegen import CodegenEngine, CodegenStore

# How the DAG's tasks work: "baseline" as the old bash handlers did (Task 8 with no cache and a
# full rebuild, Tasks 9, 10 and 12 checking everything), "optimized" with every cache.
WorkflowMode = Literal["baseline", "optimized"]


@dataclass(frozen=True)
class RunContext:
    """Which run a task belongs to, and where it may read and write.

    `storage` is the object-storage root every task of the run shares (an Airflow
    `ObjectStoragePath` in a DAG, a `UPath` in tests); `cache_dir` is local to this worker and
    only ever holds caches. `codegen_result` is Task 8's result (its `snapshot` id), handed to
    the tasks that check the generated code.
    """

    dag_id: str
    run_id: str
    time_scale: float
    storage: StoragePath
    cache_dir: Path
    workflow_mode: WorkflowMode = "optimized"
    codegen_result: Mapping[str, Any] | None = None
    # Test/chaos knobs from the run conf, honoured by the stand-in (profile) handler only:
    # `slow_tasks` {task id: factor} multiplies a task's profiled seconds, `failing_gates`
    # {task id: count} makes that many of its gates fail (capped at its gate count).
    slow_tasks: Mapping[int, float] = field(default_factory=dict)
    failing_gates: Mapping[int, int] = field(default_factory=dict)
    # `library_variant` > 0: the demo pattern library with every pattern changed (Tasks 7, 8).
    library_variant: int = 0

    @property
    def codegen_snapshot(self) -> str | None:
        """The snapshot this run's Task 8 published; None without its result (it failed)."""
        if self.codegen_result is None:
            return None
        from k1n.codegen.contracts import SnapshotReference, parse_document

        return parse_document(SnapshotReference, self.codegen_result, "Task 8's result").snapshot

    @property
    def run_prefix(self) -> StoragePath:
        """This run's records and staging in object storage."""
        return storage.run_prefix(self.storage, self.dag_id, self.run_id)

    @property
    def codegen_staging(self) -> StoragePath:
        return self.run_prefix / "codegen"

    @property
    def codegen_store(self) -> CodegenStore:
        """The DAG's published code generation snapshots (shared by all its runs)."""
        from k1n.codegen import CodegenStore

        return CodegenStore(self.storage / "codegen" / storage.key_for(self.dag_id))

    def library_dir(self) -> Path | None:
        """The run's pattern library; None for the default one (resolved where it is read)."""
        if not self.library_variant:
            return None
        from k1n.codegen import default_library_dir

        return default_library_dir(self.library_variant)

    def codegen_engine(self) -> CodegenEngine:
        from k1n.codegen import CodegenEngine

        return CodegenEngine(
            self.codegen_store,
            mode=self.workflow_mode,
            cache_dir=self.cache_dir,
            library_dir=self.library_dir(),
        )
