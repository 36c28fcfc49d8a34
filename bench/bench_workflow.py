"""Benchmark: the K1N workflow on a real local Airflow, every figure measured side by side in
one invocation on one stack (embedded PostgreSQL, api-server, scheduler with LocalExecutor,
dag-processor, triggerer: what `make demo` starts), each a median with min and max of
`--repeat` runs:

1. workflow at `--scale` (1/60): baseline, optimized cold (codegen caches cleared), optimized
   warm; optimized / baseline; each run's critical-path bound (its own task spans along the
   DAG's longest path) and wall / bound; hand-off median (ready -> start between dependent
   tasks) and max along the path; start-up per task (task-instance start -> its own code
   start, which each task records) and that of the run's first task.
2. hand-off tuning: the shipped scheduler settings against Airflow's defaults
   (`scheduler_idle_sleep_time` 1 s, `scheduler_heartbeat_sec` 5 s), the optimized DAG at
   `--fast-scale`; the idle CPU of the Airflow processes under each.
3. memory: the stack's PSS (every process of it, `smaps_rollup`) idle, at the peak of one run
   and of 3 concurrent runs.
4. load: 3 concurrent optimized runs against one: slowest wall / single wall; all must succeed
   with the same quality verdict; the machine's busy CPU seconds of one run and of the three,
   and the CPU floor (the three runs' measured CPU work spread over every core). The nightly's
   case (the same library) and three different libraries changed everywhere, against one run
   with a library changed everywhere.
5. `--long` (what `make bench-long` adds): warm optimized runs and the load at 1/20, where the
   stand-ins last three times longer against the same orchestration; and the load at 1/60 under
   other LocalExecutor parallelisms (fewer and more slots than the shipped 12), one warm run
   and one round of 3 each; timed apart from the rest.

Then the execution report (`docs/EXECUTION_REPORT.md`) of the median baseline and warm
optimized runs. Figures go to `docs/bench/latest.json` (section `workflow`); nothing here asserts
a time.

    PYTHONPATH=. .venv/bin/python bench/bench_workflow.py [--repeat 3] [--long]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from airflow_bottleneck.analysis.model import RunReport
from airflow_bottleneck.readers.rest_api import fetch_airflow_run
from bench.results import LATEST, PROJECT_DIR, record, stats
from bench.write_benchmarks import bench_duration
from k1n.reporting.extension import K1NExtension
from k1n.settings import parse_time_scale
from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from k1n.workflow.spec import WorkflowSpec, load_spec
from k1n_local import processes
from k1n_local.demo import clear_codegen_caches
from k1n_local.stack import ADMIN_USER, AirflowStack

log = logging.getLogger("bench_workflow")

HOME = PROJECT_DIR / ".airflow" / "bench"
BENCH_DAGS = PROJECT_DIR / "bench" / "dags"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
AIRFLOW_SCHEDULER_DEFAULTS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "5",
}
IDLE_WINDOW_SECONDS = 20.0
LONG_SCALE = 1 / 20
SWEPT_PARALLELISMS = (8, 16)  # fewer and more than the shipped 12


# -- the stack and its processes -----------------------------------------------------------------


def bench_stack() -> AirflowStack:
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "k1n-bench-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(BENCH_DAGS)}},
    ]
    _stop_previous_database()
    shutil.rmtree(HOME, ignore_errors=True)  # a fresh history: the priority reads it
    return AirflowStack(
        HOME, extra_env={"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}
    )


def _stop_previous_database() -> None:
    """A PostgreSQL an interrupted earlier benchmark left running in HOME."""
    pid_file = HOME / "pgdata" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        postmaster.terminate()
        postmaster.wait(30)


def stack_processes(stack: AirflowStack) -> list[psutil.Process]:
    """Every process of the stack: the tagged Airflow ones and the embedded PostgreSQL's."""
    found = {p.pid: p for p in processes.tagged(stack.stack_id)}
    data_dir = str(stack.home / "pgdata")
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if (
                process.name().startswith("postgres")
                and any(data_dir in part for part in process.cmdline())
            ) or (process.pid not in found and process.ppid() in found):
                found[process.pid] = process
    return list(found.values())


def pss_mb(procs: list[psutil.Process]) -> float:
    total_kb = 0
    for process in procs:
        with contextlib.suppress(OSError, psutil.Error):
            for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


class PeakPss:
    """Samples the stack's PSS every `interval` seconds in a thread; `peak` in MB."""

    def __init__(self, stack: AirflowStack, interval: float = 0.5) -> None:
        self.stack, self.interval = stack, interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, pss_mb(stack_processes(self.stack)))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def idle_cpu(stack: AirflowStack, seconds: float = IDLE_WINDOW_SECONDS) -> dict[str, Any]:
    """Cores the stack uses with no run going (CPU seconds / wall seconds), per component."""
    procs = stack_processes(stack)

    def cpu_by_component() -> dict[str, float]:
        totals: dict[str, float] = {}
        for process in procs:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                name = process.environ().get(processes.COMPONENT_ENV, "postgres").split("#")[0]
                totals[name] = totals.get(name, 0.0) + times.user + times.system
        return totals

    before, started = cpu_by_component(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = cpu_by_component(), time.monotonic() - started
    per = {name: round((after[name] - before.get(name, 0.0)) / elapsed, 4) for name in after}
    airflow = sum(value for name, value in per.items() if name != "postgres")
    return {
        "airflow_cores": round(airflow, 4),
        "all_cores": round(sum(per.values()), 4),
        "per_component": per,
    }


def restart_scheduler(stack: AirflowStack, env: dict[str, str]) -> None:
    """The scheduler again with `env` on top of its own (the supervisor restarts it)."""
    component = stack.components["scheduler"]
    component.env.update(env)
    old = component.pid
    if old is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while component.pid in (None, old) or component.exit_code() is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("the scheduler did not come back")
        time.sleep(0.5)
    time.sleep(10)  # its first loops: heartbeat, adoption of nothing


def busy_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent not idle since boot (all processes: the
    stack's, its tasks' and PostgreSQL's; nothing else runs during a benchmark)."""
    times = psutil.cpu_times()
    # Linux counts guest time inside user time already; idle and iowait are not busy.
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return sum(getattr(times, name) for name in times._fields if name not in not_busy)


# -- runs -----------------------------------------------------------------------------------------


class Bench:
    def __init__(self, stack: AirflowStack) -> None:
        self.stack = stack
        self.client = stack.client()
        self.spec = load_spec()

    def ready(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.client.wait_for_dag(dag_id, timeout=300)
            self.client.unpause(dag_id)

    def run(self, dag_id: str, scale: float, **conf: Any) -> dict[str, Any]:
        busy = busy_cpu_seconds()
        run_id = self.client.trigger(dag_id, conf={"time_scale": scale, **conf})
        self.client.wait_for_run(dag_id, run_id, timeout=1800)
        busy = busy_cpu_seconds() - busy
        return {**self.measure(dag_id, run_id), "machine_cpu_seconds": round(busy, 2)}

    def concurrent(
        self, dag_id: str, scale: float, confs: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], float]:
        """One run per conf in `confs`, triggered together, and the machine's busy CPU seconds
        until all ended."""
        busy = busy_cpu_seconds()
        run_ids = [
            self.client.trigger(dag_id, conf={"time_scale": scale, **conf}) for conf in confs
        ]
        for run_id in run_ids:
            self.client.wait_for_run(dag_id, run_id, timeout=1800)
        busy = busy_cpu_seconds() - busy
        return [self.measure(dag_id, run_id) for run_id in run_ids], round(busy, 2)

    def report(self, dag_id: str, run_id: str) -> RunReport:
        data = fetch_airflow_run(
            self.stack.base_url,
            ADMIN_USER,
            self.stack.admin_password(),
            dag_id,
            run_id,
            extension=K1NExtension(self.spec),
        )
        return data.analyze(K1NExtension(self.spec))

    def measure(self, dag_id: str, run_id: str) -> dict[str, Any]:
        report = self.report(dag_id, run_id)
        ran = [t for t in report.tasks if t.status == "ran" and t.start_offset is not None]
        startups = [t.startup_seconds for t in ran if t.startup_seconds is not None]
        first = min(ran, key=lambda t: t.start_offset or 0.0) if ran else None
        path = report.critical_path
        hops = [step.handoff_seconds for step in path.steps[1:]]
        figures = {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": report.state,
            "wall_seconds": report.wall_seconds,
            "production_wall_minutes": report.production.wall_minutes,
            "bound_seconds": path.seconds,
            "wall_over_bound": round(report.wall_seconds / path.seconds, 4)
            if path.seconds
            else None,
            "work_seconds": report.total_task_seconds,
            "handoff_median_seconds": report.overhead.per_hop_seconds,
            "handoff_max_seconds": max(hops, default=None),
            "startup_median_seconds": statistics.median(startups) if startups else None,
            "first_task_startup_seconds": first.startup_seconds if first else None,
            "first_task": first.task if first else None,
            "pass_rate": next(
                (t.actual for t in report.targets if t.key == "quality_gate_pass_rate_min"), None
            ),
        }
        if dag_id == BASELINE_DAG_ID:  # one task after another: the sum is its schedule
            figures["production_check"] = production_over_sum(report, self.spec)
        log.info(
            "%s %s: %s %.1f s (bound %.1f s, hand-off %.3f s, start-up %s s)",
            dag_id,
            run_id,
            report.state,
            report.wall_seconds,
            path.seconds,
            report.overhead.per_hop_seconds,
            figures["startup_median_seconds"],
        )
        return figures


def production_over_sum(report: RunReport, spec: WorkflowSpec) -> dict[str, float]:
    """The serial baseline's production wall against what it must equal: the spec's seconds
    of its stand-ins plus everything else as measured (real tasks' spans, start-ups,
    hand-offs, head and tail), i.e. its measured wall with each stand-in's measured work
    replaced by its profiled seconds."""
    profiled = {task.airflow_task_id: task.seconds for task in spec.tasks}
    stand_ins = [t for t in report.tasks if t.stand_in and t.status == "ran"]
    expected = (
        report.wall_seconds
        - sum(t.work_seconds for t in stand_ins)
        + sum(profiled[t.task] for t in stand_ins)
    )
    return {
        "production_seconds": report.production.wall_seconds,
        "sum_seconds": round(expected, 2),
        "ratio": round(report.production.wall_seconds / expected, 5),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The statistics of every figure over `runs`, and the runs themselves."""
    keys = (
        "wall_seconds",
        "production_wall_minutes",
        "bound_seconds",
        "wall_over_bound",
        "handoff_median_seconds",
        "handoff_max_seconds",
        "startup_median_seconds",
        "first_task_startup_seconds",
        "machine_cpu_seconds",
    )
    return {
        **{key: stats(run[key] for run in runs) for key in keys},
        "states": sorted({run["state"] for run in runs}),
        "runs": runs,
    }


# -- sections -------------------------------------------------------------------------------------


def workflow(bench: Bench, scale: float, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {"time_scale": scale}
    results["baseline"] = summary([bench.run(BASELINE_DAG_ID, scale) for _ in range(repeat)])
    results["baseline"]["production_over_sum"] = stats(
        run["production_check"]["ratio"] for run in results["baseline"]["runs"]
    )
    cold = []
    for _ in range(repeat):
        clear_codegen_caches(bench.stack, OPTIMIZED_DAG_ID)
        cold.append(bench.run(OPTIMIZED_DAG_ID, scale))
    results["optimized_cold"] = summary(cold)
    with PeakPss(bench.stack) as peak:
        results["optimized_warm"] = summary(
            [bench.run(OPTIMIZED_DAG_ID, scale) for _ in range(repeat)]
        )
    results["peak_pss_mb_one_run"] = round(peak.peak, 1)
    base = results["baseline"]["wall_seconds"]["median"]
    for name in ("optimized_cold", "optimized_warm"):
        results[f"{name}_over_baseline"] = round(results[name]["wall_seconds"]["median"] / base, 4)
    return results


def handoffs(bench: Bench, scale: float, repeat: int) -> dict[str, Any]:
    runs = [bench.run(OPTIMIZED_DAG_ID, scale) for _ in range(repeat)]
    return {
        "time_scale": scale,
        "handoff_median_seconds": stats(r["handoff_median_seconds"] for r in runs),
        "startup_median_seconds": stats(r["startup_median_seconds"] for r in runs),
        "wall_seconds": stats(r["wall_seconds"] for r in runs),
        "idle": idle_cpu(bench.stack),
    }


def concurrent_rounds(
    bench: Bench, scale: float, confs: list[list[dict[str, Any]]], single_wall: float
) -> dict[str, Any]:
    """One round of concurrent optimized runs per entry of `confs` (a conf per run), against
    `single_wall`, and the CPU floor: the wall the rounds' measured CPU work needs at the
    least, spread over every core."""
    cores = psutil.cpu_count() or 1
    rounds = []
    for round_confs in confs:
        runs, busy = bench.concurrent(OPTIMIZED_DAG_ID, scale, round_confs)
        rounds.append(
            {
                "slowest_wall_seconds": max(r["wall_seconds"] for r in runs),
                "machine_cpu_seconds": busy,
                "states": sorted({r["state"] for r in runs}),
                "pass_rates": sorted({r["pass_rate"] for r in runs}),
                "runs": runs,
            }
        )
    return {
        "time_scale": scale,
        "slowest_over_single": stats(r["slowest_wall_seconds"] / single_wall for r in rounds),
        "machine_cpu_seconds_three_runs": stats(r["machine_cpu_seconds"] for r in rounds),
        "cores": cores,
        "cpu_floor_three_runs_measured_over_single": stats(
            r["machine_cpu_seconds"] / cores / single_wall for r in rounds
        ),
        "all_succeeded": all(r["states"] == ["success"] for r in rounds),
        "rounds": rounds,
    }


def load(bench: Bench, scale: float, repeat: int, single: dict[str, Any]) -> dict[str, Any]:
    """3 concurrent runs on the usual library (the nightly's case) against `single` (the warm
    optimized runs' summary), with the same verdict in each round and the peak PSS."""
    single_wall = single["wall_seconds"]["median"]
    with PeakPss(bench.stack) as peak:
        rounds = concurrent_rounds(bench, scale, [[{}] * 3] * repeat, single_wall)
    return {
        **rounds,
        "single_wall_seconds": single_wall,
        "machine_cpu_seconds_one_run": single["machine_cpu_seconds"]["median"],
        "same_verdict": all(len(r["pass_rates"]) == 1 for r in rounds["rounds"]),
        "peak_pss_mb_three_runs": round(peak.peak, 1),
    }


def load_different_libraries(bench: Bench, scale: float, repeat: int) -> dict[str, Any]:
    """3 concurrent runs, each on a library of its own changed everywhere (`library_variant`:
    every pattern regenerated, compiled, validated and checked), against one such run alone;
    the CPU floor says whether the cores are the cause. Then a run on the usual library, so
    the runs after these start warm again."""
    variants = itertools.count(1)
    alone = summary(
        [bench.run(OPTIMIZED_DAG_ID, scale, library_variant=next(variants)) for _ in range(repeat)]
    )
    confs = [[{"library_variant": next(variants)} for _ in range(3)] for _ in range(repeat)]
    rounds = concurrent_rounds(bench, scale, confs, alone["wall_seconds"]["median"])
    bench.run(OPTIMIZED_DAG_ID, scale)  # the usual library again: later runs start warm
    return {**rounds, "single": alone}


def long_scale(bench: Bench, scale: float, repeat: int, sweep_scale: float) -> dict[str, Any]:
    """Warm optimized runs and 3 concurrent ones at `scale`; the load at `sweep_scale` under
    other parallelisms; with how long they took."""
    began = time.monotonic()
    warm = summary([bench.run(OPTIMIZED_DAG_ID, scale) for _ in range(repeat)])
    figures = {"time_scale": scale, "optimized_warm": warm}
    figures["load"] = load(bench, scale, repeat, warm)
    figures["parallelism_sweep"] = parallelism_sweep(bench, sweep_scale)
    figures["seconds"] = round(time.monotonic() - began, 1)
    return figures


def parallelism_sweep(bench: Bench, scale: float) -> dict[str, Any]:
    """One warm run and one round of 3 concurrent runs under each of SWEPT_PARALLELISMS (the
    scheduler restarted with it), then the shipped parallelism again."""
    swept = {}
    for parallelism in SWEPT_PARALLELISMS:
        restart_scheduler(bench.stack, {"AIRFLOW__CORE__PARALLELISM": str(parallelism)})
        bench.run(OPTIMIZED_DAG_ID, scale)  # a restarted executor's first tasks start slower
        single = summary([bench.run(OPTIMIZED_DAG_ID, scale)])
        swept[str(parallelism)] = load(bench, scale, 1, single)
    restart_scheduler(bench.stack, {"AIRFLOW__CORE__PARALLELISM": str(bench.stack.parallelism)})
    return swept


def median_run(section: dict[str, Any]) -> dict[str, Any]:
    runs = sorted(section["runs"], key=lambda r: r["wall_seconds"])
    return runs[len(runs) // 2]


def execution_report(bench: Bench, figures: dict[str, Any], out_dir: Path) -> str:
    """The execution report of the median baseline and warm optimized runs."""
    from k1n.reporting.execution_report import write_execution_report

    baseline = median_run(figures["workflow"]["baseline"])
    optimized = median_run(figures["workflow"]["optimized_warm"])
    if "load" not in figures:  # not measured now: the last recording's, as the page keeps it
        earlier = json.loads(LATEST.read_text()).get("workflow", {}) if LATEST.exists() else {}
        figures = {**figures, **({"load": earlier["load"]} if "load" in earlier else {})}
    path = write_execution_report(
        bench.report(BASELINE_DAG_ID, baseline["run_id"]),
        bench.report(OPTIMIZED_DAG_ID, optimized["run_id"]),
        out_dir,
        bench=figures,
    )
    return str(path)


@contextlib.contextmanager
def running(stack: AirflowStack) -> Iterator[Bench]:
    stack.start()
    try:
        bench = Bench(stack)
        bench.ready(BASELINE_DAG_ID, OPTIMIZED_DAG_ID)
        yield bench
    finally:
        stack.stop()


# Parts a run with fewer `--sections` (or without `--long`) keeps from the last recording.
KEEPABLE_PARTS = (
    "handoff_shipped",
    "handoff_airflow_defaults",
    "load",
    "load_different_libraries",
    "workflow_long",
)


def keep_earlier_parts(figures: dict[str, Any]) -> None:
    """The parts this run did not measure stay as the last recording measured them, with the
    command and time they came from, and so does `make bench`'s duration then."""
    earlier_document = json.loads(LATEST.read_text()) if LATEST.exists() else {}
    earlier = earlier_document.get("workflow") or {}
    kept = [part for part in KEEPABLE_PARTS if part not in figures and part in earlier]
    if not kept:
        return
    for part in kept:
        figures[part] = earlier[part]
    source = earlier.get("kept_from") or {
        "command": earlier.get("command"),
        "measured_at": earlier.get("measured_at"),
    }
    duration = bench_duration(earlier_document)
    figures["kept_from"] = {
        **source,
        "parts": kept,
        "make_bench": source.get("make_bench")
        or (duration and {**duration, "ended": duration["ended"].isoformat()}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=parse_time_scale, default=1 / 60)
    parser.add_argument(
        "--long", action="store_true", help="also warm optimized runs and the load at 1/20"
    )
    parser.add_argument(
        "--fast-scale",
        type=parse_time_scale,
        default=1 / 3600,
        help="hand-off runs (stand-ins nearly instant: orchestration shows)",
    )
    parser.add_argument("--report", type=Path, default=PROJECT_DIR / "docs")
    parser.add_argument(
        "--sections",
        default="handoff,workflow,load",
        help="comma-separated: handoff, workflow, load (needs workflow)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # SIGTERM (a CI timeout, `kill`) stops the stack like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    stack = bench_stack()
    figures: dict[str, Any] = {"repeat": args.repeat, "parallelism": stack.parallelism}
    wanted = set(args.sections.split(","))
    with running(stack) as bench:
        time.sleep(15)  # let the first parses and heartbeats settle
        figures["memory_idle"] = {"pss_mb": round(pss_mb(stack_processes(stack)), 1)}
        if "handoff" in wanted:
            figures["handoff_shipped"] = handoffs(bench, args.fast_scale, args.repeat)
        if "workflow" in wanted:
            figures["workflow"] = workflow(bench, args.scale, args.repeat)
        if "load" in wanted and "workflow" in figures:
            figures["load"] = load(
                bench, args.scale, args.repeat, figures["workflow"]["optimized_warm"]
            )
            figures["load_different_libraries"] = load_different_libraries(
                bench, args.scale, args.repeat
            )
        if args.long:
            figures["workflow_long"] = long_scale(bench, LONG_SCALE, args.repeat, args.scale)
        if "workflow" in figures:
            figures["execution_report"] = execution_report(bench, figures, args.report)
        if "handoff" in wanted:
            restart_scheduler(stack, AIRFLOW_SCHEDULER_DEFAULTS)
            figures["handoff_airflow_defaults"] = handoffs(bench, args.fast_scale, args.repeat)
    figures["seconds"] = round(time.monotonic() - began, 1)
    keep_earlier_parts(figures)
    record("workflow", figures)
    print(
        json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=1, default=str)[:4000]
    )


if __name__ == "__main__":
    main()
