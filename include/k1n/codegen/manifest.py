"""The content-hash manifest of a published snapshot: what it holds, built from which inputs.

Per pattern: its build key (see `pattern_key`), the sha256 of every file it publishes and the
results of its validation. Nothing in it is time-based or machine-specific, so two runs that
publish the same outputs write byte-identical manifests, and the manifest's own hash is the
snapshot's id (`Manifest.snapshot_id`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the contracts import this module's constants
    from k1n.codegen.contracts import LibraryEntry, Plan, ValidationRecord

MANIFEST_FORMAT = 2
SNAPSHOT_ID_LENGTH = 20
# A snapshot id is a prefix of a sha256 (see `Manifest.snapshot_id`).
SNAPSHOT_ID_PATTERN = rf"^[0-9a-f]{{{SNAPSHOT_ID_LENGTH}}}$"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(data: Any) -> str:
    """Compact JSON with sorted keys: the same data always gives the same text (for hashing)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def pattern_key(spec: dict[str, Any], template_hashes: dict[str, str], engine: str) -> str:
    """What a pattern's outputs depend on, hashed: its spec, its templates, the engine.

    `template_hashes` must cover every template the pattern's kind uses, directly or through
    imports and includes, so editing a shared macro file changes exactly its users' keys.
    """
    material = {"engine": engine, "spec": spec, "templates": template_hashes}
    return sha256_bytes(canonical_json(material).encode("utf-8"))


@dataclass
class Manifest:
    """One snapshot's content: `patterns[name] = {kind, key, files: {path: sha256}, checks,
    tests}`; `archive_sha256` is the hash of the archive holding every listed file."""

    engine: str = ""
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)
    archive_sha256: str = ""

    @classmethod
    def from_document(cls, data: Any) -> Manifest | None:
        """The manifest in a parsed JSON document; None if it is not one in this format."""
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            return None
        patterns = data.get("patterns")
        if not isinstance(patterns, dict):
            return None
        return cls(
            engine=str(data.get("engine", "")),
            patterns=dict(patterns),
            archive_sha256=str(data.get("archive_sha256", "")),
        )

    def document(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "engine": self.engine,
            "patterns": dict(sorted(self.patterns.items())),
            "archive_sha256": self.archive_sha256,
        }

    @property
    def files(self) -> dict[str, str]:
        """Every published file -> its sha256."""
        return {
            relative: digest
            for entry in self.patterns.values()
            for relative, digest in entry.get("files", {}).items()
        }

    @property
    def snapshot_id(self) -> str:
        """The snapshot's id: a hash of everything it holds (same content, same id)."""
        return sha256_bytes(canonical_json(self.document()).encode("utf-8"))[:SNAPSHOT_ID_LENGTH]

    def passing(self, library: dict[str, LibraryEntry]) -> int:
        """Patterns of `library` whose entry here has their build key and passed."""
        return sum(
            1
            for name, info in library.items()
            if (entry := self.patterns.get(name))
            and entry.get("key") == info.key
            and all(entry.get("checks", {}).values())
        )


def compose_snapshot(
    plan: Plan,
    validation: ValidationRecord,
    engine: str,
    base: Manifest,
    available: dict[str, bytes],
) -> tuple[Manifest, dict[str, bytes]]:
    """The next snapshot of a library: every pattern of the plan's library, the dirty ones as
    validated now, the clean ones as in `base`; `available` holds every file either needs."""
    from k1n.codegen.compiling import output_files

    manifest = Manifest(engine=engine)
    for name in sorted(plan.library):
        info = plan.library[name]
        if name in plan.dirty:
            result = validation.patterns[name]
            manifest.patterns[name] = {
                "kind": info.kind,
                "key": info.key,
                "files": {
                    relative: sha256_bytes(available[relative])
                    for relative in output_files(info.kind, name)
                },
                "checks": result.checks,
                "tests": result.tests.model_dump() if result.tests else None,
            }
        else:
            manifest.patterns[name] = base.patterns[name]
    return manifest, {relative: available[relative] for relative in manifest.files}


def stale_reason(entry: dict[str, Any] | None, key: str) -> str | None:
    """Why a pattern must be rebuilt, or None when the published outputs are current."""
    if entry is None:
        return "new"
    if entry.get("key") != key:
        return "changed"
    if not entry.get("checks") or not all(entry["checks"].values()):
        return "failed checks"
    return None
