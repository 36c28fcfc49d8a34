"""Benchmark: Tasks 9, 10 and 12 (pytest, ruff, the security scan) on Task 8's output of the
whole default library, full against incremental, measured side by side in one invocation.

Task 8 runs once on a private copy of the library (the real engine, `k1n.codegen`), its
snapshot is checked out, and each repetition times the three checks as the DAG's tasks run
them (`k1n.checks`, a `ResultStore` on a local object-store root):

    full                 an empty result store: every unit checked (what every run did before)
    no change            the same output again: every unit's stored result reused
    one pattern changed  one pattern edited in the library, Task 8 run again incrementally,
                         its new snapshot checked: only the units it changed are checked

Each figure is the median (min-max) of `--repeat` repetitions; the ratios are medians over
full. Nothing here asserts a time.

    PYTHONPATH=. .venv/bin/python bench/bench_checks.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_codegen import change_one_pattern
from bench.results import record, stats
from k1n import checks, storage
from k1n.checks.results import ResultStore
from k1n.codegen import CodegenEngine, default_library_dir, run_stages

CHECKS: dict[str, Callable[..., dict[str, Any]]] = {
    "task_09_unit_tests": checks.run_unit_tests,
    "task_10_static_analysis": checks.run_static_analysis,
    "task_12_code_security": checks.run_security_scan,
}


def generate(library: Path, state: Path, into: Path) -> Path:
    """Task 8 on `library` (incremental against `state`), its snapshot checked out in `into`."""
    engine = CodegenEngine(state / "store", library_dir=library, cache_dir=state / "cache")
    run_stages(engine)
    shutil.rmtree(into, ignore_errors=True)
    engine.store.checkout(engine.store.current_id(), into)
    return into


def timed_checks(output: Path, results: ResultStore) -> dict[str, Any]:
    """Each check's seconds and units checked/reused, and the three together."""
    figures: dict[str, Any] = {}
    for name, check in CHECKS.items():
        began = time.perf_counter()
        details = check(output, results)["details"]
        figures[name] = {
            "seconds": time.perf_counter() - began,
            "checked": details["checked"],
            "reused": details["reused"],
        }
    figures["total_seconds"] = sum(figures[name]["seconds"] for name in CHECKS)
    return figures


def one_repetition(root: Path) -> dict[str, Any]:
    library = Path(shutil.copytree(default_library_dir(), root / "library"))
    state = root / "state"
    output = generate(library, state, root / "output")
    results = ResultStore(storage.open_root(root / "results"), owner="bench")
    full = timed_checks(output, results)
    unchanged = timed_checks(output, results)
    changed_pattern = change_one_pattern(library)
    output = generate(library, state, root / "output")
    changed = timed_checks(output, results)
    return {
        "full": full,
        "no change": unchanged,
        "one pattern changed": changed,
        "changed_pattern": changed_pattern,
        "modules": len(list(output.glob("*/*.py"))),
    }


def summarize(repetitions: list[dict[str, Any]]) -> dict[str, Any]:
    scenarios = ("full", "no change", "one pattern changed")
    summary: dict[str, Any] = {"modules": repetitions[0]["modules"], "scenarios": {}}
    for scenario in scenarios:
        runs = [rep[scenario] for rep in repetitions]
        summary["scenarios"][scenario] = {
            "total_seconds": stats(run["total_seconds"] for run in runs),
            **{
                name: {
                    "seconds": stats(run[name]["seconds"] for run in runs),
                    "checked": runs[0][name]["checked"],
                    "reused": runs[0][name]["reused"],
                }
                for name in CHECKS
            },
        }
    full = summary["scenarios"]["full"]["total_seconds"]["median"]
    for scenario in ("no change", "one pattern changed"):
        summary[f"{scenario} / full"] = round(
            summary["scenarios"][scenario]["total_seconds"]["median"] / full, 4
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repetitions = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="k1n-bench-checks-") as scratch:
            repetitions.append(one_repetition(Path(scratch)))
    summary = summarize(repetitions)
    record("checks", summary)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
