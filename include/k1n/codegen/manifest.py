"""The content-hash manifest: what is published, built from which inputs, and how it checked out.

`<state_dir>/manifest.json` holds, per pattern, its build key (see `pattern_key`), the sha256 of
every published file and the results of its last validation. It holds nothing time-based or
machine-specific, so two runs that publish the same outputs write byte-identical manifests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.k1n.codegen.storage import (
    canonical_json,
    dump_json,
    read_json,
    sha256_bytes,
    sha256_file,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1


def pattern_key(spec: dict[str, Any], template_hashes: dict[str, str], engine: str) -> str:
    """What a pattern's outputs depend on, hashed: its spec, its templates, the engine.

    `template_hashes` must cover every template the pattern's kind uses, directly or through
    imports and includes, so editing a shared macro file changes exactly its users' keys.
    """
    material = {"engine": engine, "spec": spec, "templates": template_hashes}
    return sha256_bytes(canonical_json(material).encode("utf-8"))


@dataclass
class Manifest:
    """The published state of one state directory; load it, change it, save it under the lock."""

    engine: str = ""
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at `path`; empty when there is none or it cannot be trusted.

        An unreadable manifest only costs a full rebuild (every pattern looks new), so it is
        logged and ignored rather than failing the run.
        """
        try:
            data = read_json(path)
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("ignoring unreadable manifest %s (%s): full rebuild", path, exc)
            return cls()
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            log.warning("ignoring manifest %s in an unknown format: full rebuild", path)
            return cls()
        return cls(engine=str(data.get("engine", "")), patterns=dict(data.get("patterns", {})))

    def save(self, path: Path) -> bool:
        """Write the manifest unless the file already says the same; return whether it wrote."""
        data = {"format": MANIFEST_FORMAT, "engine": self.engine, "patterns": self.patterns}
        text = dump_json(data).encode("utf-8")
        try:
            if path.read_bytes() == text:
                return False
        except FileNotFoundError:
            pass
        # Durable: after a crash, the manifest must describe files that really are on disk.
        write_bytes_atomic(path, text, durable=True)
        return True

    def recorded_checks(self, name: str) -> dict[str, bool] | None:
        entry = self.patterns.get(name)
        return dict(entry["checks"]) if entry else None


def stale_reason(entry: dict[str, Any] | None, key: str, output_dir: Path) -> str | None:
    """Why a pattern must be rebuilt, or None when its published outputs are current."""
    if entry is None:
        return "new"
    if entry.get("key") != key:
        return "changed"
    if not all(entry.get("checks", {}).values()):
        return "failed checks"
    for relative, digest in entry.get("files", {}).items():
        path = output_dir / relative
        if not path.is_file():
            return "output missing"
        if sha256_file(path) != digest:
            return "output modified"
    return None
