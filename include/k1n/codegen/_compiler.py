"""Byte-compile generated sources; the compile stage's worker process.

Run as a script, never imported: `python -I -B _compiler.py JOB RESULT`. JOB is a JSON file
`{"root": DIR, "files": ["kind/name.py", ...]}`; each file is compiled to a checked-hash pyc in
`DIR/kind/__pycache__/`. RESULT receives `{"hashes": {file: sha256 of the source},
"problems": {file: "line N: message"}}`.

A process of its own, started with `subprocess`, works where a multiprocessing pool cannot: a
Celery worker runs tasks in daemonic processes, which may not start pool workers. Standard
library only, so `-I` (isolated mode) is safe.
"""

from __future__ import annotations

import hashlib
import json
import py_compile
import sys
from pathlib import Path


def compile_file(root: Path, relative: str) -> tuple[str | None, str | None]:
    """(sha256 of the source, None) or (None, the problem)."""
    path = root / relative
    pyc = path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
    try:
        py_compile.compile(
            str(path),
            cfile=str(pyc),
            # The file name recorded in the code: relative, so the pyc does not depend on
            # where staging was (on import, Python swaps in the real path anyway).
            dfile=relative,
            doraise=True,
            optimize=0,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
    except py_compile.PyCompileError as exc:
        error = exc.exc_value
        message = getattr(error, "msg", None) or str(error)
        return None, f"line {getattr(error, 'lineno', None)}: {message}"
    return hashlib.sha256(path.read_bytes()).hexdigest(), None


def main(job_path: str, result_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    root = Path(job["root"])
    hashes, problems = {}, {}
    for relative in job["files"]:
        digest, problem = compile_file(root, relative)
        if digest is None:
            problems[relative] = problem
        else:
            hashes[relative] = digest
    Path(result_path).write_text(json.dumps({"hashes": hashes, "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
