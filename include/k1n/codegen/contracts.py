"""What Task 8's stages hand each other: typed models of the plan, shards, records and results.

The stages run as separate Airflow tasks, possibly on different hosts, so everything between
them is a document: staging objects in object storage (the plan, each shard's record, the
compile and validation records, the publication) and XComs (the shards parse hands to the
mapped generate tasks, each stage's result). Each has one model here; writers dump it to JSON,
readers validate it, and a document that does not fit is a `CodegenError` of one line, never a
`KeyError` three stages later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
)

from k1n.codegen.errors import CodegenError
from k1n.codegen.library import PATTERN_NAME_PATTERN
from k1n.codegen.manifest import SNAPSHOT_ID_PATTERN
from k1n.workflow.results import QualityGates

__all__ = [
    "CodegenSummary",
    "CompileRecord",
    "CompileResult",
    "DirtyPattern",
    "GenerateResult",
    "LibraryEntry",
    "ParseResult",
    "PatternChecks",
    "PatternValidation",
    "Plan",
    "PlanClaim",
    "PublishedRecord",
    "QualityGates",
    "Shard",
    "ShardRecord",
    "SnapshotId",
    "SnapshotReference",
    "TestCounts",
    "TestRun",
    "ValidateResult",
    "ValidationRecord",
    "WriteResult",
    "parse_document",
]

# Anything but a snapshot id's shape is refused before it becomes part of a storage path.
SnapshotId = Annotated[str, StringConstraints(pattern=SNAPSHOT_ID_PATTERN, strict=True)]
PatternName = Annotated[str, StringConstraints(pattern=PATTERN_NAME_PATTERN)]
DirtyReason = Literal["new", "changed", "failed checks", "full rebuild"]
CLAIM_STATE = "reading the current snapshot"


class Contract(BaseModel):
    """A document one stage writes and another reads: unknown keys are a bug, not data."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the plan (parse writes it; every later stage reads it) -----------------------------------


class LibraryEntry(Contract):
    """A pattern of the library: its kind and its build key (see `pattern_key`)."""

    kind: str
    key: str


class DirtyPattern(Contract):
    """A pattern this run rebuilds, why, and the spec to render it from."""

    reason: DirtyReason
    spec: dict[str, Any]


class TestCounts(Contract):
    passed: NonNegativeInt
    total: NonNegativeInt


class PatternChecks(Contract):
    """A pattern's check results (`CHECKS` -> passed) and its test counts."""

    checks: dict[str, bool]
    # None for a pattern recorded before test counts were kept.
    tests: TestCounts | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


class Plan(Contract):
    """What a run rebuilds against which snapshot.

    `library`: every pattern; `templates`: per kind, each template it uses -> sha256;
    `dirty`: the patterns to rebuild; `recorded`: the checks of each clean pattern as `base`
    recorded them; `removed`: patterns `base` has that left the library.
    """

    engine: str
    mode: Literal["baseline", "optimized"]
    library: dict[str, LibraryEntry]
    templates: dict[str, dict[str, str]]
    dirty: dict[str, DirtyPattern]
    recorded: dict[str, PatternChecks]
    removed: list[str]
    base: SnapshotId | None


class PlanClaim(Contract):
    """Written before parse reads the pointer: retention keeps every snapshot meanwhile."""

    state: Literal["reading the current snapshot"] = CLAIM_STATE


# -- shards (parse -> the mapped generate tasks, as XCom) -------------------------------------


class Shard(Contract):
    """One generate task's share of the dirty patterns; `name` labels its mapped instance."""

    index: NonNegativeInt
    name: str
    patterns: list[PatternName] = Field(min_length=1)


class GenerateResult(Contract):
    """What one shard's generate did; `templates_from_cache` are bytecode-cache hits."""

    patterns: NonNegativeInt
    files: NonNegativeInt
    templates_compiled: NonNegativeInt
    templates_from_cache: NonNegativeInt
    seconds: NonNegativeFloat


class ShardRecord(GenerateResult):
    """A generated shard in staging: its counters, its patterns and its archive's name."""

    names: list[PatternName]
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


# -- compile and validate --------------------------------------------------------------------


class CompileRecord(Contract):
    """Every staged file -> sha256, and the hash of the compiled archive."""

    sources: dict[str, str]
    archive_sha256: str


class CompileResult(Contract):
    files: NonNegativeInt
    patterns: NonNegativeInt
    seconds: NonNegativeFloat


class TestRun(Contract):
    """One pattern's import and tests, as the runner interpreter reports them."""

    imports: bool
    tests_total: NonNegativeInt
    tests_passed: NonNegativeInt
    problems: list[str]


class PatternValidation(PatternChecks):
    """A dirty pattern's validation: its checks, test counts and the problems found."""

    problems: list[str] = Field(default_factory=list)


class ValidationRecord(Contract):
    """The validate stage's verdict on every dirty pattern; write publishes only on `passed`."""

    passed: bool
    patterns: dict[str, PatternValidation]


class ValidateResult(Contract):
    """Per dirty pattern its checks and `tests` as "passed/total"; gates over the library."""

    validated: NonNegativeInt
    tests_run: NonNegativeInt
    tests_passed: NonNegativeInt
    patterns: dict[str, dict[str, bool | str]]
    quality_gates: QualityGates
    seconds: NonNegativeFloat


# -- parse's and write's results, the publication, the whole run ------------------------------


class ParseResult(Contract):
    library_size: NonNegativeInt
    kinds: dict[str, NonNegativeInt]
    dirty: list[str]
    clean: NonNegativeInt
    removed: list[str]
    dirty_reasons: dict[DirtyReason, NonNegativeInt]
    base: SnapshotId | None
    seconds: NonNegativeFloat


class SnapshotReference(BaseModel):
    """What the tasks that check generated code read from Task 8's result: its snapshot."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    snapshot: SnapshotId


class PublishedRecord(Contract):
    """The snapshot a run publishes, recorded before the upload (retention keeps it)."""

    snapshot: SnapshotId


class WriteResult(Contract):
    """Task 8's result: the snapshot published (or kept) and the library's quality gates."""

    library_size: NonNegativeInt
    regenerated: NonNegativeInt
    unchanged: NonNegativeInt
    removed_patterns: NonNegativeInt
    published_files: NonNegativeInt
    templates_compiled: NonNegativeInt
    templates_from_cache: NonNegativeInt
    snapshot: SnapshotId
    base_snapshot: SnapshotId | None
    store: str
    quality_gates: QualityGates
    seconds: NonNegativeFloat


class CodegenSummary(Contract):
    """All five stages run in one call (`run_stages`): the baseline's Task 8 and the CLI."""

    mode: Literal["baseline", "optimized"]
    workers: int = Field(ge=1)
    library_size: NonNegativeInt
    regenerated: NonNegativeInt
    unchanged: NonNegativeInt
    removed_patterns: NonNegativeInt
    dirty_reasons: dict[DirtyReason, NonNegativeInt]
    shards: NonNegativeInt
    templates_compiled: NonNegativeInt
    templates_from_cache: NonNegativeInt
    files_compiled: NonNegativeInt
    tests_run: NonNegativeInt
    published_files: NonNegativeInt
    snapshot: SnapshotId
    store: str
    stages: dict[str, NonNegativeFloat]
    seconds: NonNegativeFloat
    quality_gates: QualityGates


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_document(model: type[ModelT], document: Any, where: str) -> ModelT:
    """`document` as a `model`; `CodegenError` naming `where` and the first problem if not."""
    if isinstance(document, model):
        return document
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in error["loc"]) or "document"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CodegenError(f"{where}: {location}: {error['msg']}{more}") from None


def as_mapping(model: BaseModel) -> Mapping[str, Any]:
    """A model as the JSON-native dict an XCom or a staging object holds."""
    return model.model_dump(mode="json")
