"""Import generated modules and run their generated tests; the validate stage's worker process.

Run as a script, never imported by the engine: `python -I -B _runner.py JOB RESULT`. JOB is a
JSON file `{"root": DIR, "patterns": [[name, kind], ...]}` where `DIR/<kind>/<name>.py` and
`DIR/<kind>/test_<name>.py` exist (with their compiled `__pycache__` files, which the imports
use); RESULT receives `{name: {"imports": bool, "tests_total": n, "tests_passed": n,
"problems": [...]}}`.

A separate interpreter keeps generated code out of the engine's process: its module names,
`sys.path` changes and any crash stay here. It uses the standard library only, so `-I`
(isolated mode: no environment variables, no user site) is safe.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any


def describe(exc: BaseException, root: Path) -> str:
    """`Type: message at kind/file.py:line: source line` for the innermost generated frame."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if path.is_relative_to(root):
            return f"{text} at {path.relative_to(root)}:{frame.lineno}: {frame.line}"
    return text


def test_functions(module: ModuleType) -> list[tuple[str, Any]]:
    """The module's own `test_*` functions in definition order, as pytest would collect them."""
    return [
        (name, value)
        for name, value in vars(module).items()
        if name.startswith("test_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    ]


def run_pattern(name: str, root: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"imports": False, "tests_total": 0, "tests_passed": 0, "problems": []}
    try:
        importlib.import_module(name)
        tests = importlib.import_module(f"test_{name}")
    except (Exception, SystemExit) as exc:  # generated code may raise anything on import
        result["problems"].append(f"import failed: {describe(exc, root)}")
        return result
    result["imports"] = True
    functions = test_functions(tests)
    result["tests_total"] = len(functions)
    if not functions:
        result["problems"].append(f"test_{name} defines no test functions")
    for test_name, function in functions:
        try:
            function()
        except (Exception, SystemExit) as exc:
            result["problems"].append(f"{test_name} failed: {describe(exc, root)}")
        else:
            result["tests_passed"] += 1
    return result


def main(job_path: str, result_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    root = Path(job["root"]).resolve()
    for kind in sorted({kind for _, kind in job["patterns"]}):
        sys.path.insert(0, str(root / kind))
    results = {name: run_pattern(name, root) for name, _ in job["patterns"]}
    Path(result_path).write_text(json.dumps(results, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
