"""Byte-compiling generated code, and the process pools the stages share."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import py_compile
import sys
import threading
from pathlib import Path
from typing import Any

from include.k1n.codegen.manifest import sha256_bytes


def pattern_of(relative: str) -> str:
    """`crc/test_crc_000.py` or `crc/__pycache__/crc_000.cpython-311.pyc` -> `crc_000`."""
    stem = Path(relative).name.split(".", 1)[0]
    return stem.removeprefix("test_")


def pyc_of(relative: str) -> str:
    """`crc/crc_000.py` -> `crc/__pycache__/crc_000.cpython-311.pyc` (this interpreter's tag)."""
    path = Path(relative)
    return (
        path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
    ).as_posix()


def output_files(kind: str, name: str) -> list[str]:
    """What one pattern publishes, relative to the output root, sorted."""
    sources = [f"{kind}/{name}.py", f"{kind}/test_{name}.py"]
    return sorted([*sources, *(pyc_of(source) for source in sources)])


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` dealt round-robin into at most `parts` non-empty batches (similar work each)."""
    batches = [items[index :: max(1, parts)] for index in range(max(1, parts))]
    return [batch for batch in batches if batch]


def process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool that starts fast where that is safe.

    Forking copies the parent's imports, so workers start in milliseconds; but forking a
    process with other threads (an Airflow task, say) can copy a lock some thread holds and
    deadlock the child. So: fork when this process has one thread, spawn otherwise.
    """
    method = "fork" if threading.active_count() == 1 else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method)
    )


def compile_sources(root: str, relatives: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Compile sources under `root` to checked-hash pycs beside them.

    Returns (sha256 of each source, problems per pattern). Checked-hash pycs hold no mtime, so
    the same source always gives the same bytes.
    """
    hashes: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for relative in relatives:
        path = Path(root) / relative
        try:
            py_compile.compile(
                str(path),
                cfile=str(Path(root) / pyc_of(relative)),
                # The file name recorded in the code: relative, so the pyc does not depend on
                # where staging was (on import, Python swaps in the real path anyway).
                dfile=relative,
                doraise=True,
                optimize=0,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        except py_compile.PyCompileError as exc:
            error = exc.exc_value
            line = getattr(error, "lineno", None)
            message = getattr(error, "msg", None) or str(error)
            problems.setdefault(pattern_of(relative), []).append(
                f"{relative} line {line}: {message}"
            )
            continue
        hashes[relative] = sha256_bytes(path.read_bytes())
    return hashes, problems
