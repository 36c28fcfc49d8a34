"""Object storage: where tasks leave what another task (maybe on another host) reads.

Everything that passes between tasks and is too big for an XCom lives under one root URL
(`K1N_STORAGE_URL`): `file://` under the Airflow home by default, `s3://conn_id@bucket/prefix`
(or any fsspec URL Airflow's `ObjectStoragePath` supports) in a cluster. The DAG builders hand
the task code an `airflow.sdk.ObjectStoragePath`; the CLI and the tests hand it a
`upath.UPath`. This module only uses the API both share (a `pathlib`-like path over fsspec),
so nothing here imports Airflow.

Layout under the root::

    codegen/<dag_id>/...               Task 8's published snapshots (k1n.codegen.snapshots)
    runs/<dag key>/<run key>/...       one run's staging and records (run_prefix)

Writes are whole objects. `put_atomic` makes a replacement atomic on a local file system too
(temporary name, then rename); on object stores a single PUT already is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Protocol

from upath import UPath

from k1n.io import write_bytes_atomic

LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
# Long enough to be readable, short enough to stay well inside path and key limits.
READABLE_PREFIX_LENGTH = 60
HASH_LENGTH = 12


class StoragePath(Protocol):
    """What this project uses of `UPath` / `ObjectStoragePath`."""

    protocol: str
    path: str
    name: str

    def __truediv__(self, other: str) -> StoragePath: ...
    @property
    def parent(self) -> StoragePath: ...
    def exists(self) -> bool: ...
    def is_dir(self) -> bool: ...
    def iterdir(self) -> Any: ...
    def mkdir(self, parents: bool = ..., exist_ok: bool = ...) -> None: ...
    def read_bytes(self) -> bytes: ...
    def write_bytes(self, data: bytes) -> Any: ...
    def unlink(self, missing_ok: bool = ...) -> None: ...
    @property
    def fs(self) -> Any: ...


def open_root(url: str | os.PathLike[str]) -> StoragePath:
    """A storage root from a URL or a local path (no Airflow: for the CLI and the tests)."""
    return UPath(str(url) if "://" in str(url) else Path(url).resolve())


def is_local(path: StoragePath) -> bool:
    return getattr(path, "protocol", "") in LOCAL_PROTOCOLS


def _local_path(path: StoragePath) -> Path:
    return Path(path.path)


def key_for(identifier: str) -> str:
    """A path segment for an id (DAG id, run id): collision-free and never `.` or `..`.

    A readable prefix (characters outside `[A-Za-z0-9._-]` become `_`) plus a short hash of
    the exact id, so `a:1` and `a+1`, or `...+00:00` and `..._00_00`, get different keys.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", identifier)[:READABLE_PREFIX_LENGTH]
    readable = readable.lstrip(".") or "id"
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable}-{digest[:HASH_LENGTH]}"


def run_prefix(root: StoragePath, dag_id: str, run_id: str) -> StoragePath:
    """Where one run keeps its staging and records."""
    return root / "runs" / key_for(dag_id) / key_for(run_id)


def runs_of(root: StoragePath, dag_id: str) -> StoragePath:
    return root / "runs" / key_for(dag_id)


def put_bytes(path: StoragePath, data: bytes) -> None:
    """Write one object (creating the parent folder on a local file system)."""
    if is_local(path):
        _local_path(path).parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def put_atomic(path: StoragePath, data: bytes) -> None:
    """Replace `path` so a concurrent reader sees the old content or the new, never a part."""
    if not is_local(path):
        path.write_bytes(data)  # one PUT: object stores never show a partial object
        return
    write_bytes_atomic(_local_path(path), data, durable=True)


def read_bytes(path: StoragePath) -> bytes | None:
    """The object's content, or None when there is none."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_json(path: StoragePath) -> Any:
    """The parsed JSON object, or None when there is none."""
    data = read_bytes(path)
    return None if data is None else json.loads(data)


def write_json(path: StoragePath, document: Any, *, atomic: bool = False) -> None:
    data = (json.dumps(document, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    (put_atomic if atomic else put_bytes)(path, data)


def children(path: StoragePath) -> list[StoragePath]:
    """The entries directly under `path` (none when it does not exist)."""
    try:
        return sorted(path.iterdir(), key=lambda child: child.name)
    except (FileNotFoundError, NotADirectoryError):  # an object store: no such prefix
        return []


def remove(path: StoragePath) -> None:
    """Delete one object; a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_tree(path: StoragePath) -> None:
    """Delete `path` and everything under it; a missing path is fine."""
    if is_local(path):
        shutil.rmtree(_local_path(path), ignore_errors=True)
        return
    # Object stores have no folders, only keys under a prefix: remove the keys.
    with contextlib.suppress(FileNotFoundError):
        path.fs.rm(path.path, recursive=True)
