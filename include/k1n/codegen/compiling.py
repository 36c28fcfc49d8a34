"""Byte-compiling generated code, and the worker processes the stages share."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from k1n.child_env import child_environment
from k1n.codegen.errors import CodegenError

COMPILER = Path(__file__).resolve().parent / "_compiler.py"
SCRIPT_TIMEOUT_SECONDS = 1800


def pattern_of(relative: str) -> str:
    """`crc/test_crc_000.py` or `crc/__pycache__/crc_000.cpython-311.pyc` -> `crc_000`."""
    stem = Path(relative).name.split(".", 1)[0]
    return stem.removeprefix("test_")


def pyc_of(relative: str) -> str:
    """`crc/crc_000.py` -> `crc/__pycache__/crc_000.cpython-311.pyc` (this interpreter's tag)."""
    path = Path(relative)
    tag = sys.implementation.cache_tag
    return (path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc").as_posix()


def output_files(kind: str, name: str) -> list[str]:
    """What one pattern publishes, relative to the output root, sorted."""
    sources = [f"{kind}/{name}.py", f"{kind}/test_{name}.py"]
    return sorted([*sources, *(pyc_of(source) for source in sources)])


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` dealt round-robin into at most `parts` non-empty batches (similar work each)."""
    batches = [items[index :: max(1, parts)] for index in range(max(1, parts))]
    return [batch for batch in batches if batch]


def run_scripts(script: Path, jobs: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """Run `python -I -B script JOB RESULT` once per job, all at once; their results.

    Plain subprocesses rather than a multiprocessing pool: they work in a Celery worker's
    daemonic task processes, inherit no threads or locks, and keep generated code out of
    this process. Generated code runs in them, so they get the allow-listed environment.
    Output goes to files, not pipes: a chatty child cannot block on a pipe.
    """
    with tempfile.TemporaryDirectory(prefix="k1n-batch-") as scratch:
        started = []
        for index, job in enumerate(jobs):
            job_file, result, errors = (
                Path(scratch) / f"{kind}-{index}" for kind in ("job", "result", "stderr")
            )
            job_file.write_text(json.dumps(job), encoding="utf-8")
            argv = [sys.executable, "-I", "-B", str(script), str(job_file), str(result)]
            with errors.open("w") as stderr:
                process = subprocess.Popen(
                    argv, stdout=subprocess.DEVNULL, stderr=stderr, env=child_environment()
                )
            started.append((process, result, errors))
        results = []
        try:
            for process, result, errors in started:
                try:
                    process.wait(timeout=SCRIPT_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    raise CodegenError(
                        f"{what} did not finish within {SCRIPT_TIMEOUT_SECONDS} s"
                    ) from None
                if process.returncode != 0:
                    tail = " | ".join(errors.read_text().strip().splitlines()[-3:])
                    raise CodegenError(f"{what} exited with {process.returncode}: {tail}")
                results.append(json.loads(result.read_text(encoding="utf-8")))
        finally:
            for process, _, _ in started:  # nothing outlives the stage, whatever happened
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return results


def compile_tree(
    root: Path, sources: list[str], workers: int
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Compile `sources` under `root` to checked-hash pycs beside them, in `workers` processes.

    Returns (sha256 of each source, problems per pattern). Checked-hash pycs hold no mtime, so
    the same source always gives the same bytes.
    """
    jobs = [{"root": str(root), "files": batch} for batch in split(sources, workers)]
    hashes: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for outcome in run_scripts(COMPILER, jobs, "the byte compiler") if jobs else []:
        hashes.update(outcome["hashes"])
        for relative, problem in outcome["problems"].items():
            problems.setdefault(pattern_of(relative), []).append(f"{relative} {problem}")
    return hashes, problems
