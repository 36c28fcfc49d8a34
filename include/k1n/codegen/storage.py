"""Files the engine shares between processes: atomic writes, hashing and the state-dir lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from include.k1n.io import TEMP_SUFFIX, write_bytes_atomic

__all__ = ["TEMP_SUFFIX", "write_bytes_atomic"]  # re-exported: the engine's one I/O module


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical_json(data: Any) -> str:
    """Compact JSON with sorted keys: the same data always gives the same text (for hashing)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def dump_json(data: Any, *, readable: bool = True) -> str:
    """JSON file content, byte-reproducible; `readable` indents it (slower: pure-Python encoder)."""
    if not readable:
        return canonical_json(data) + "\n"
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(
    path: Path, data: Any, *, durable: bool = False, readable: bool = True
) -> None:
    write_bytes_atomic(path, dump_json(data, readable=readable).encode("utf-8"), durable=durable)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def remove_temp_debris(root: Path) -> int:
    """Delete temporary files that crashed writers left under `root`; call it under the lock."""
    removed = 0
    for debris in root.rglob(f".*{TEMP_SUFFIX}"):
        debris.unlink(missing_ok=True)
        removed += 1
    return removed


@contextlib.contextmanager
def state_lock(state_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold `<state_dir>/.lock`: exclusive to change the state, shared to read a consistent view.

    `flock` locks belong to the open file description, so they work between processes and are
    released by the kernel when a holder dies; no stale lock files to clean up.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
