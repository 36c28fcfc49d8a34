"""Reading and writing files: YAML documents, and atomic replacement for results and codegen."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from include.k1n.errors import FileProblem

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


def read_yaml(path: Path, error: type[FileProblem]) -> Any:
    """Load a YAML file; a missing, unreadable or malformed file raises `error(path, problem)`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(path, f"invalid YAML: {_describe_yaml_error(exc)}") from None


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
