"""Task 7, the pattern library: load, validate and index the pattern specs.

The library is a directory of YAML files, one per pattern, at `<kind>/<name>.yaml`::

    name: crc_000
    kind: crc
    description: One sentence or a short paragraph saying what the pattern is for.
    params: {...}          # validated by the kind's model in `kinds.py`

The file name must be the pattern's name and its directory its kind. Names are unique across
the library because each becomes a Python module name in the generated output.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from k1n import settings
from k1n.codegen.errors import LibraryError
from k1n.codegen.kinds import KINDS, Params
from k1n.codegen.manifest import canonical_json, sha256_bytes
from k1n.errors import FileProblem
from k1n.io import ParsedYamlCache, private_dir, read_yaml

PATTERN_SUFFIX = ".yaml"
# A pattern's name is a module name: lower case, at most 63 characters.
PATTERN_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_ERRORS_SHOWN = 3
# Under a worker's cache folder: the parsed YAML of each library it read (optimized mode).
PARSED_CACHE_DIR = "parsed-library"


class PatternFile(BaseModel):
    """The top level of a pattern file; `params` is checked by the kind's own model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=PATTERN_NAME_PATTERN)
    kind: str
    description: str = Field(min_length=1, max_length=800)
    params: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _usable_module_name(cls, name: str) -> str:
        if name.startswith("test"):
            raise ValueError("must not start with 'test' (the generated tests are test_<name>)")
        if name in sys.stdlib_module_names:
            raise ValueError(f"{name!r} would shadow the standard library module")
        return name

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        return kind

    @field_validator("description")
    @classmethod
    def _docstring_safe(cls, description: str) -> str:
        # The description lands in generated docstrings verbatim.
        if '"""' in description or "\\" in description:
            raise ValueError('must not contain """ or backslashes')
        return description.strip()


@dataclass(frozen=True)
class Pattern:
    """A validated pattern: what the templates render."""

    name: str
    kind: str
    description: str
    params: Params

    def spec(self) -> dict[str, Any]:
        """The normalised spec as JSON-able data (comments and key order in the file vanish)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "params": self.params.model_dump(mode="json"),
        }

    def spec_hash(self) -> str:
        return sha256_bytes(canonical_json(self.spec()).encode("utf-8"))

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Pattern:
        """Validate a spec (a pattern file's content, or `spec()` output read back)."""
        return cls.from_file(PatternFile.model_validate(spec))

    @classmethod
    def from_file(cls, raw: PatternFile) -> Pattern:
        """Validate the params of a pattern file whose top level is already valid."""
        return cls(
            name=raw.name,
            kind=raw.kind,
            description=raw.description,
            params=KINDS[raw.kind].params_model.model_validate(raw.params),
        )


def _error_text(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """Pydantic's errors on one line: `params.width: Input should be 8, 16 or 32; ...`."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in (*prefix, *error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def load_pattern(path: Path, library_dir: Path, parsed: ParsedYamlCache | None = None) -> Pattern:
    """Read and validate one pattern file; raise `LibraryError` naming the file and the problem.
    `parsed`: YAML texts parsed before (the model still validates every file)."""
    relative = path.relative_to(library_dir).as_posix()
    try:
        # Bounded like every YAML the project reads: size, aliases, one line per problem.
        data = read_yaml(path, FileProblem, parsed)
    except FileProblem as exc:
        raise LibraryError(f"{relative}: cannot read: {exc.problem}") from None
    if not isinstance(data, dict):
        raise LibraryError(f"{relative}: a pattern file must be a mapping")
    try:
        raw = PatternFile.model_validate(data)
    except ValidationError as exc:
        raise LibraryError(f"{relative}: {_error_text(exc)}") from exc
    expected = f"{raw.kind}/{raw.name}{PATTERN_SUFFIX}"
    if relative != expected:
        raise LibraryError(
            f"{relative}: pattern {raw.name} of kind {raw.kind} belongs in {expected}"
        )
    try:
        return Pattern.from_file(raw)
    except ValidationError as exc:
        raise LibraryError(f"{relative}: {_error_text(exc, ('params',))}") from exc


def pattern_files(library_dir: Path) -> list[Path]:
    """The library's pattern files in sorted order; raise if the directory is not there."""
    if not library_dir.is_dir():
        raise LibraryError(f"pattern library {library_dir} is not a directory")
    return sorted(
        path
        for path in library_dir.rglob(f"*{PATTERN_SUFFIX}")
        if not any(part.startswith(".") for part in path.relative_to(library_dir).parts)
    )


def parsed_cache_file(cache_dir: Path, library_dir: Path) -> Path:
    """Where a worker keeps the parsed YAML of one library (`ParsedYamlCache`), in a folder
    only this user can write: what is read back from it decides the generated code."""
    key = sha256_bytes(str(library_dir.resolve()).encode("utf-8"))[:16]
    return private_dir(cache_dir / PARSED_CACHE_DIR) / f"{key}.json"


def scan_library(
    library_dir: Path, cache_dir: Path | None = None
) -> tuple[dict[str, Pattern], dict[str, str]]:
    """Every valid pattern by name, and every invalid file (relative path) with its problem.
    `cache_dir`: keep the files' parsed YAML there and parse only the texts that changed."""
    patterns: dict[str, Pattern] = {}
    problems: dict[str, str] = {}
    files = pattern_files(library_dir)
    parsed = ParsedYamlCache(parsed_cache_file(cache_dir, library_dir)) if cache_dir else None
    for path in files:
        try:
            pattern = load_pattern(path, library_dir, parsed)
        except LibraryError as exc:
            problems[path.relative_to(library_dir).as_posix()] = str(exc)
            continue
        if pattern.name in patterns:  # cannot happen with name == file stem, kept as a guard
            problems[path.relative_to(library_dir).as_posix()] = f"duplicate name {pattern.name}"
            continue
        patterns[pattern.name] = pattern
    if parsed is not None:
        parsed.save()
    return patterns, problems


def default_library_dir(variant: int = 0) -> Path:
    """`K1N_PATTERN_LIBRARY` when set; else the demo library, generated into this worker's
    cache on first use (`demo_library`). `variant` > 0: the demo library with every pattern
    changed (a run conf's `library_variant`); a configured library has no variants."""
    configured = settings.k1n_settings().pattern_library
    if configured is not None:
        if variant:  # the run conf refuses this before any task works (`run_conf`)
            raise LibraryError(f"K1N_PATTERN_LIBRARY has no variant {variant}")
        return configured.expanduser()
    from k1n.codegen import demo_library  # it imports this module

    return demo_library.materialized(settings.cache_dir(), variant=variant)


def load_library(library_dir: Path, cache_dir: Path | None = None) -> dict[str, Pattern]:
    """All patterns by name, sorted; raise `LibraryError` if any file is invalid or none exist.
    `cache_dir`: as in `scan_library`."""
    patterns, problems = scan_library(library_dir, cache_dir)
    if problems:
        shown = "; ".join(list(problems.values())[:MAX_ERRORS_SHOWN])
        more = (
            f" (and {len(problems) - MAX_ERRORS_SHOWN} more)"
            if len(problems) > MAX_ERRORS_SHOWN
            else ""
        )
        raise LibraryError(
            f"pattern library {library_dir}: {len(problems)} invalid file(s): {shown}{more}"
        )
    if not patterns:
        raise LibraryError(f"pattern library {library_dir} holds no {PATTERN_SUFFIX} pattern files")
    return dict(sorted(patterns.items()))


def index_library(
    library_dir: Path | None = None, cache_dir: Path | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Task 7: validate every pattern file; the task result and the library's index.

    Quality gates: valid pattern files / pattern files. The index lists each valid pattern with
    its kind, file and spec hash, and each invalid file with its problem. Default library:
    `default_library_dir()`. `cache_dir`: as in `scan_library`.
    """
    library_dir = library_dir if library_dir is not None else default_library_dir()
    patterns, problems = scan_library(library_dir, cache_dir)
    total = len(patterns) + len(problems)
    if not total:
        raise LibraryError(f"pattern library {library_dir} holds no {PATTERN_SUFFIX} pattern files")
    kinds: dict[str, int] = {}
    for pattern in patterns.values():
        kinds[pattern.kind] = kinds.get(pattern.kind, 0) + 1
    index = {
        "patterns": [
            {
                "name": pattern.name,
                "kind": pattern.kind,
                "file": f"{pattern.kind}/{pattern.name}{PATTERN_SUFFIX}",
                "spec_sha256": pattern.spec_hash(),
            }
            for pattern in sorted(patterns.values(), key=lambda p: p.name)
        ],
        "kinds": dict(sorted(kinds.items())),
        "invalid": dict(sorted(problems.items())),
    }
    result = {
        "quality_gates": {"passed": len(patterns), "total": total},
        "library_size": len(patterns),
        "kinds": index["kinds"],
        "invalid": index["invalid"],
    }
    return result, index
