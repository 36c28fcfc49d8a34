"""Benchmark Task 8's code generation engine: the old way against the cached, incremental way.

    python bench/bench_codegen.py [--library-dir DIR] [--workers 2,4] [--repeat N] [--json]

Every scenario runs the real CLI (`k1n.codegen`) in a fresh process, all five
stages, on a private copy of the library in a temporary directory:

    baseline             serial, no template cache, full rebuild (the old system)
    optimized cold       caches and outputs cleared; 1 worker, then each of --workers
    optimized warm       the same state again, nothing changed
    one pattern changed  one pattern file edited, then an incremental run

The table shows the engine's own seconds (interpreter start-up excluded) and the speed-up
against the baseline; a second table splits each scenario into its stages. With `--repeat N`
the whole sequence runs N times and each figure is the median run of its scenario (by total
seconds), which steadies the numbers on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.results import PROJECT_DIR, stats
from bench.results import record as record_section
from k1n.codegen.library import default_library_dir

STAGES = ("parse", "generate", "compile", "validate", "write")


def run_cli(state: Path, library: Path, *extra: str) -> dict[str, Any]:
    """One engine run in a fresh interpreter; its JSON summary."""
    argv = [sys.executable, "-m", "k1n.codegen", "--state-dir", str(state)]
    argv += ["--library-dir", str(library), "--json", *extra]
    # Flush the previous scenario's writes now, so their writeback does not slow this one.
    os.sync()
    completed = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"codegen failed: {completed.stderr.strip()}")
    return json.loads(completed.stdout)


def change_one_pattern(library: Path) -> str:
    """Edit the first CRC pattern's test workload; return the pattern's name."""
    path = sorted((library / "crc").glob("*.yaml"))[0]
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"messages: (\d+)", r"messages: 1\1", text, count=1), encoding="utf-8")
    return path.stem


def run_scenarios(library_dir: Path, workers: list[int], root: Path) -> list[dict[str, Any]]:
    library = Path(shutil.copytree(library_dir, root / "library"))
    results = []

    def record(name: str, summary: dict[str, Any]) -> None:
        results.append({"scenario": name, **summary})
        print(f"  {name}: {summary['seconds']:.2f} s", file=sys.stderr, flush=True)

    record("baseline (serial, no cache)", run_cli(root / "baseline", library, "--mode", "baseline"))
    optimized = root / "optimized"
    for count in [1, *workers]:
        summary = run_cli(optimized, library, "--clean", "--workers", str(count))
        record(f"optimized cold, {count} worker(s)", summary)
    # The state now holds the last cold run's output; a warm run must find nothing to do.
    record("optimized warm (no change)", run_cli(optimized, library))
    changed = change_one_pattern(library)
    record(f"optimized, one pattern changed ({changed})", run_cli(optimized, library))
    return results


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median total time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    median = statistics.median_low(run["seconds"] for run in ordered)
    return next(run for run in ordered if run["seconds"] == median)


def format_tables(results: list[dict[str, Any]], library_size: int) -> str:
    baseline = results[0]["seconds"]
    lines = [
        f"K1N codegen benchmark: {library_size} patterns, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "",
        f"{'scenario':<44} {'seconds':>8} {'speed-up':>9} {'rebuilt':>8} "
        f"{'compiled':>9} {'cached':>7}",
    ]
    for result in results:
        lines.append(
            f"{result['scenario']:<44} {result['seconds']:>8.2f} "
            f"{baseline / result['seconds']:>8.1f}x {result['regenerated']:>8} "
            f"{result['templates_compiled']:>9} {result['templates_from_cache']:>7}"
        )
    lines += ["", "(compiled: Jinja2 template compilations; cached: loaded from bytecode cache)"]
    lines += ["", f"{'seconds per stage':<44}" + "".join(f"{stage:>9}" for stage in STAGES)]
    for result in results:
        stages = result["stages"]
        lines.append(
            f"{result['scenario']:<44}" + "".join(f"{stages[stage]:>9.2f}" for stage in STAGES)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library-dir", type=Path, default=None)
    parser.add_argument(
        "--workers", default="2,4", help="comma-separated worker counts for the cold runs"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the whole sequence")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args(argv)
    workers = [int(count) for count in args.workers.split(",") if count.strip()]
    rounds = []
    for number in range(1, max(1, args.repeat) + 1):
        with tempfile.TemporaryDirectory(prefix="k1n-bench-codegen-") as scratch:
            print(f"round {number} ...", file=sys.stderr, flush=True)
            library = args.library_dir or default_library_dir()
            rounds.append(run_scenarios(library, workers, Path(scratch)))
    results = [median_run(list(runs)) for runs in zip(*rounds, strict=True)]
    by_scenario = list(zip(*rounds, strict=True))
    baseline_median = stats(run["seconds"] for run in by_scenario[0])["median"]
    record_section(
        "codegen",
        {
            "repeat": len(rounds),
            "library_size": results[0]["library_size"],
            "scenarios": [
                {
                    "scenario": runs[0]["scenario"],
                    "seconds": stats(run["seconds"] for run in runs),
                    "speedup_vs_baseline": round(
                        baseline_median / stats(run["seconds"] for run in runs)["median"], 2
                    ),
                    "stages_of_median_run": median_run(list(runs))["stages"],
                }
                for runs in by_scenario
            ],
        },
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_tables(results, results[0]["library_size"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
