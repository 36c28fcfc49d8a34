"""Verified check results by what decides them, in the object store every worker reaches.

A check (Tasks 9, 10, 12) splits Task 8's output into *units* (a test file and the module it
imports; one module) and stores each unit's result under the SHA-256 of everything that
decides it: the unit's files, the check's tool and version, its rules, Python's version (the
check's `fingerprint`). A later run, of any DAG, reuses a stored result whose digest matches
and computes only the rest; the gates are then computed from every unit's result, as a full
check would.

Results are written whole (`storage.put_atomic`): a reader sees a result or none. Two runs
needing the same unit at the same moment do not both compute it: each writes a claim (owner,
expiry), waits `CLAIM_SETTLE_SECONDS` for a concurrent claim to land, and reads the claim
back; the last writer owns it (S3 and the local file system both read back the latest
write). The others wait for the owner's result, and compute it themselves only if the claim
expires first (its owner died).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from k1n import storage
from k1n.storage import StoragePath

CLAIM_SECONDS = 600.0
CLAIM_SETTLE_SECONDS = 0.3
WAIT_POLL_SECONDS = 0.5


def unit_digest(output_dir: Path, inputs: Iterable[str], fingerprint: str) -> str:
    """SHA-256 of the fingerprint and each input file's path and content."""
    digest = hashlib.sha256(fingerprint.encode())
    for relative in sorted(inputs):
        digest.update(b"\0" + relative.encode() + b"\0")
        digest.update(hashlib.sha256((output_dir / relative).read_bytes()).digest())
    return digest.hexdigest()


class ResultStore:
    """One check's stored unit results (`<root>/<digest>.json`) and claims."""

    def __init__(self, root: StoragePath, owner: str) -> None:
        self.root = root
        self.owner = owner

    def get(self, digest: str) -> Any:
        return storage.read_json(self.root / f"{digest}.json")

    def put(self, digest: str, result: Any) -> None:
        storage.write_json(self.root / f"{digest}.json", result, atomic=True)
        storage.remove(self.claim_path(digest))

    def claim(self, digests: Iterable[str]) -> set[str]:
        """Of `digests`, those this owner computes now (claimed by nobody alive, or by it)."""
        wanted = []
        for digest in digests:
            current = storage.read_json(self.claim_path(digest))
            if current is None or current["expires"] < time.time():
                expires = time.time() + CLAIM_SECONDS
                storage.write_json(
                    self.claim_path(digest), {"owner": self.owner, "expires": expires}, atomic=True
                )
                wanted.append(digest)
            elif current["owner"] == self.owner:
                wanted.append(digest)
        if not wanted:
            return set()
        time.sleep(CLAIM_SETTLE_SECONDS)  # a concurrent claim lands; the last one wins
        return {
            digest
            for digest in wanted
            if (storage.read_json(self.claim_path(digest)) or {}).get("owner") == self.owner
        }

    def wait_for(self, digests: Iterable[str]) -> dict[str, Any]:
        """The results others are computing, as they land; a digest whose claim expired (or
        vanished without a result) is left out: the caller computes it."""
        pending = set(digests)
        found: dict[str, Any] = {}
        while pending:
            for digest in list(pending):
                result = self.get(digest)
                if result is not None:
                    found[digest] = result
                    pending.discard(digest)
                    continue
                current = storage.read_json(self.claim_path(digest))
                if current is None or current["expires"] < time.time():
                    pending.discard(digest)
            if pending:
                time.sleep(WAIT_POLL_SECONDS)
        return found

    def claim_path(self, digest: str) -> StoragePath:
        return self.root / "claims" / f"{digest}.json"


def reuse_or_compute(
    store: ResultStore,
    digests: Mapping[str, str],
    compute: Any,
) -> tuple[dict[str, Any], int]:
    """Every unit's result (unit key -> result) and how many were reused: stored ones as they
    are, the rest from `compute(unit keys) -> {unit key: result}`, then stored."""
    results: dict[str, Any] = {}
    for key, digest in digests.items():
        stored = store.get(digest)
        if stored is not None:
            results[key] = stored
    reused = len(results)
    missing = {key: digest for key, digest in digests.items() if key not in results}
    while missing:
        mine = store.claim(set(missing.values()))
        computing = [key for key, digest in missing.items() if digest in mine]
        if computing:
            try:
                fresh = compute(computing)
            except BaseException:
                for key in computing:  # nobody should wait out the claims of a failed check
                    storage.remove(store.claim_path(missing[key]))
                raise
            for key in computing:
                store.put(missing[key], fresh[key])
                results[key] = fresh[key]
        theirs = {digest for key, digest in missing.items() if key not in results}
        landed = store.wait_for(theirs)
        for key, digest in missing.items():
            if digest in landed:
                results[key] = landed[digest]
                reused += 1
        missing = {key: digest for key, digest in missing.items() if key not in results}
    return results, reused
