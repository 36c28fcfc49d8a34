"""Benchmark: the bottleneck analysis over 1 000 000 task-instance rows.

"A report over 1 M rows" is measured in the two shapes such a table takes:

1. history (the realistic one): ~45 455 runs x 22 tasks = 1 000 010 rows, as a month of
   runs pulled from the REST API or the metadata DB (ISO-8601 timestamp strings). Timed:
   - load: `normalize_instances` (parse 3 M timestamps, categorize ids, spec ids, final tries);
   - group-by: `summarize_runs`, one row per run (wall, task time, busy time, overhead, queue
     waits, the CPM critical path on the declared dependencies, Task 8), all vectorized;
   - one report: `analyze_run` of one run picked out of the 1 M-row table, plus `as_dict`.
2. one run whose Task 8 `generate_code` is mapped over ~1 M indexes: `normalize_instances` +
   `analyze_run` + `as_dict` on a single run of 1 M rows; the detailed report (`detail=True`:
   every per-index and per-try row, by column) as the API serves it, JSON bytes included, is
   timed separately.

The budget is 5 s for load + group-by + one report in each scenario (2-core machine). Timings
vary a few percent run to run; `--repeat N` gives the median (min-max) of N. Nothing here
asserts a time.

    PYTHONPATH=. .venv/bin/python bench/bench_report.py [--runs 45455] [--mapped 1000000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis import RunData, RunInfo, analyze_run, normalize_instances
from bench.results import record, stats
from k1n.reporting.extension import K1NExtension
from k1n.reporting.history import summarize_runs
from k1n.workflow.names import CODEGEN_STAGE_TASK_IDS
from k1n.workflow.spec import WorkflowSpec, load_spec

START = np.datetime64("2026-11-01T00:00:00", "us")
BUDGET_SECONDS = 5.0


def iso(epoch_offsets: np.ndarray) -> np.ndarray:
    """Seconds after START -> ISO-8601 strings like the REST API's (`...T20:00:01.250000Z`)."""
    micros = np.round(epoch_offsets * 1e6).astype("int64").astype("timedelta64[us]")
    return np.datetime_as_string(START + micros, unit="us", timezone="UTC")


def history_table(spec: WorkflowSpec, runs: int, seed: int = 1) -> pd.DataFrame:
    """`runs` optimized-DAG runs at time scale 1/60: jittered durations, 0.05-0.5 s hand-offs,
    every task scheduled as soon as its declared dependencies end (one vector step per task)."""
    rng = np.random.default_rng(seed)
    run_start = np.arange(runs) * 600.0  # a run every 10 minutes
    ends: dict[int, np.ndarray] = {}
    columns: dict[str, list[np.ndarray]] = {"task": [], "run": [], "start": [], "end": []}
    for task_id in spec.topological_order:
        task = spec.by_id[task_id]
        ready = run_start.copy()
        for dependency in task.depends_on:
            ready = np.maximum(ready, ends[dependency])
        start = ready + rng.uniform(0.05, 0.5, runs)
        duration = task.seconds / 60 * rng.lognormal(0.0, 0.15, runs)
        ends[task_id] = start + duration
        columns["task"].append(np.full(runs, task.airflow_task_id, dtype=object))
        columns["run"].append(np.arange(runs))
        columns["start"].append(start)
        columns["end"].append(start + duration)
    start = np.concatenate(columns["start"])
    end = np.concatenate(columns["end"])
    run = np.concatenate(columns["run"])
    return pd.DataFrame(
        {
            "dag_id": "k1n_22task_optimized",
            "run_id": pd.Categorical.from_codes(
                run, [f"scheduled__2026-11-01T{i:07d}" for i in range(runs)]
            ),
            "task_id": np.concatenate(columns["task"]),
            "map_index": -1,
            "try_number": 1,
            "state": "success",
            "queued": iso(start - 0.03),
            "start": iso(start),
            "end": iso(end),
            "duration": end - start,
        }
    )


def mapped_indexes(spec: WorkflowSpec, rows: int) -> int:
    """`rows` less one row per unmapped task: the other spec tasks and Task 8's other stages."""
    return rows - (len(spec.tasks) - 1) - (len(CODEGEN_STAGE_TASK_IDS) - 1)


def mapped_table(spec: WorkflowSpec, rows: int, seed: int = 2) -> pd.DataFrame:
    """One run, tasks back to back, whose Task 8 `generate_code` has the rest of `rows` as map
    indexes (~50 ms each) running 8 at a time between parse_library and publish_code."""
    rng = np.random.default_rng(seed)
    group = spec.by_id[8].airflow_task_id
    parse_id, generate_id, publish_id = CODEGEN_STAGE_TASK_IDS
    singles: list[tuple[str, float, float]] = []  # (task id, start, seconds)
    mapped = pd.DataFrame()
    clock = 0.0
    for task in spec.tasks:
        if task.id != 8:
            singles.append((task.airflow_task_id, clock, task.seconds / 60))
            clock += task.seconds / 60 + 0.2
            continue
        singles.append((f"{group}.{parse_id}", clock, 2.0))
        clock += 2.2
        indexes = mapped_indexes(spec, rows)
        seconds = rng.lognormal(-3.0, 0.3, indexes)
        worker = np.arange(indexes) % 8
        start = np.zeros(indexes)
        for slot in range(8):  # each of 8 workers runs its share back to back
            mine = worker == slot
            start[mine] = clock + np.concatenate([[0.0], np.cumsum(seconds[mine])[:-1]])
        mapped = _frame(f"{group}.{generate_id}", np.arange(indexes), start, seconds)
        clock = float((start + seconds).max()) + 0.2
        singles.append((f"{group}.{publish_id}", clock, 8.0))
        clock += 8.2
    others = pd.concat(
        [
            _frame(name, np.array([-1]), np.array([begin]), np.array([duration]))
            for name, begin, duration in singles
        ]
    )
    return pd.concat([others, mapped], ignore_index=True)


def _frame(
    task_id: str, map_index: np.ndarray, start: np.ndarray, seconds: np.ndarray
) -> pd.DataFrame:
    """Rows of one task id, timestamps as REST-style ISO strings."""
    return pd.DataFrame(
        {
            "dag_id": "k1n_22task_optimized",
            "run_id": "manual__mapped",
            "task_id": task_id,
            "map_index": map_index,
            "try_number": 1,
            "state": "success",
            "queued": iso(start - 0.01),
            "start": iso(start),
            "end": iso(start + seconds),
            "duration": seconds,
        }
    )


FIGURES: dict[str, dict[str, Any]] = {}


def timed(label: str, action: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """`repeat` timings of `action`: printed and recorded as median (min-max); the median."""
    samples, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - began)
    figures = FIGURES[label] = stats(samples)
    print(f"  {label:<58} {figures['median']:7.3f} s ({figures['min']:.3f}-{figures['max']:.3f})")
    return result, figures["median"]


def bench_history(spec: WorkflowSpec, runs: int, repeat: int) -> None:
    began = time.perf_counter()
    raw = history_table(spec, runs)
    print(
        f"\nhistory: {len(raw):,} task-instance rows ({runs:,} runs x 22 tasks), "
        f"synthesized in {time.perf_counter() - began:.1f} s (not timed)"
    )
    table, load = timed(
        "load: normalize_instances (parse ISO, categorize)",
        lambda: normalize_instances(raw.copy(), K1NExtension(spec).task_number),
        repeat,
    )
    summary, group = timed(
        "group-by: summarize_runs (per-run wall, overhead, CPM)",
        lambda: summarize_runs(table, spec),
        repeat,
    )
    slowest = summary["wall_seconds"].idxmax()
    info = RunInfo(dag_id=slowest[0], run_id=slowest[1], time_scale=1 / 60)

    def one_report() -> dict[str, Any]:
        return analyze_run(RunData(info, table), K1NExtension(spec)).as_dict()

    document, report = timed("one report: analyze_run + as_dict (slowest run)", one_report, repeat)
    total = load + group + report
    print(
        f"  {'total (load + group-by + one report)':<58} {total:7.3f} s  "
        f"{'within' if total < BUDGET_SECONDS else 'OVER'} the {BUDGET_SECONDS:.0f} s budget"
    )
    print(
        f"  runs: {len(summary):,}; wall {summary['wall_seconds'].median():.1f} s median, "
        f"critical path {summary['critical_path_seconds'].median():.1f} s median, "
        f"overhead {summary['overhead_seconds'].median():.2f} s median; slowest run "
        f"{document['wall_seconds']:.1f} s"
    )


def bench_mapped(spec: WorkflowSpec, rows: int, repeat: int) -> None:
    began = time.perf_counter()
    raw = mapped_table(spec, rows)
    print(
        f"\none run, mapped: {len(raw):,} task-instance rows (generate_code x "
        f"{mapped_indexes(spec, rows):,}), synthesized in {time.perf_counter() - began:.1f} s "
        "(not timed)"
    )
    table, load = timed(
        "load: normalize_instances",
        lambda: normalize_instances(raw.copy(), K1NExtension(spec).task_number),
        repeat,
    )
    data = RunData(RunInfo(time_scale=1 / 60), table)
    report, analysis = timed(
        "one report: analyze_run", lambda: analyze_run(data, K1NExtension(spec)), repeat
    )
    _, summary = timed("as_dict (without detail)", report.as_dict, repeat)
    total = load + analysis + summary
    print(
        f"  {'total (load + report + JSON summary)':<58} {total:7.3f} s  "
        f"{'within' if total < BUDGET_SECONDS else 'OVER'} the {BUDGET_SECONDS:.0f} s budget"
    )
    timed(
        "detailed report as the API serves it: analyze_run(detail) + JSON bytes",
        lambda: analyze_run(data, K1NExtension(spec), detail=True).model_dump_json(by_alias=True),
        repeat,
    )
    rollup = report.mapped[0]
    task8 = next(t for t in report.targets if t.key == "task8_minutes_max").actual
    print(
        f"  generate_code: {rollup.count:,} indexes, sum {rollup.sum_seconds:.0f} s, "
        f"max {rollup.max_seconds:.3f} s, skew {rollup.skew:.2f}; Task 8 span "
        f"{task8:.1f} production min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=45_455, help="history: runs of 22 tasks")
    parser.add_argument("--mapped", type=int, default=1_000_000, help="mapped run: total rows")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each step")
    parser.add_argument("--scenario", choices=("history", "mapped", "both"), default="both")
    args = parser.parse_args()
    spec = load_spec()
    print(f"pandas {pd.__version__}, numpy {np.__version__}")
    if args.scenario in ("history", "both"):
        bench_history(spec, args.runs, args.repeat)
    if args.scenario in ("mapped", "both"):
        bench_mapped(spec, args.mapped, args.repeat)
    record(
        "report",
        {"repeat": args.repeat, "runs": args.runs, "mapped_rows": args.mapped, "timings": FIGURES},
    )


if __name__ == "__main__":
    main()
