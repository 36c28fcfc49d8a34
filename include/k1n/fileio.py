"""Atomic file replacement, shared by the result files and the codegen engine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` so a concurrent reader sees the old file or the new one.

    The temporary file is hidden (leading dot) and ends in `.tmp`, so a writer that died half
    way leaves debris that globs skip and `remove_temp_debris` recognises. `durable` adds an
    fsync before the rename, for files whose loss after a crash would go unnoticed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o644)  # mkstemp makes 0600; outputs are not secret
            tmp.write(data)
            if durable:
                tmp.flush()
                os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
