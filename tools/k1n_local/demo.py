"""`make demo`: run the baseline, then the optimized DAG, on a real local Airflow, and compare.

Starts an `AirflowStack` in `.airflow/` (embedded PostgreSQL, api-server, scheduler with
LocalExecutor, dag-processor), triggers `k1n_22task_baseline`, then `k1n_22task_optimized` with
its codegen caches cleared (a fair, cold comparison), then the optimized DAG once more (warm:
template cache and manifest kept), prints wall times, per-task durations and the speedup, writes
them to `.airflow/demo/summary.json`, and stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_bottleneck.readers.rest_client import AirflowRestClient
from k1n import settings, storage
from k1n.workflow.names import BASELINE_DAG_ID, CLEAN_UP_TASK_ID, OPTIMIZED_DAG_ID
from k1n_local.stack import AirflowStack

log = logging.getLogger(__name__)

DEFAULT_HOME = settings.PROJECT_DIR / ".airflow"
OPTIMIZED_WALL_RATIO_MAX = 0.65  # the acceptance bar: optimized wall <= 0.65 x baseline wall


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class TaskSpan:
    """One task instance as the metadata DB recorded it."""

    task_id: str
    map_index: int
    state: str | None
    start: datetime | None
    end: datetime | None
    hostname: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds() if self.start and self.end else 0.0

    @property
    def spec_id(self) -> int | None:
        """`task_08_code_generation.generate_code` -> 8; `check_quality_gates` -> None."""
        head = self.task_id.split(".", 1)[0]
        number = head.removeprefix("task_").split("_", 1)[0]
        return int(number) if head.startswith("task_") and number.isdigit() else None

    def overlaps(self, other: TaskSpan) -> bool:
        if not (self.start and self.end and other.start and other.end):
            return False
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class RunRecord:
    """A finished DAG run with its task instances."""

    dag_id: str
    run_id: str
    state: str
    start: datetime
    end: datetime
    spans: tuple[TaskSpan, ...]
    label: str = ""
    # The plugin's production wall (the run replayed with its stand-ins scaled back).
    production_minutes: float | None = None

    @classmethod
    def fetch(cls, client: AirflowRestClient, dag_id: str, run_id: str, label: str) -> RunRecord:
        run = client.dag_run(dag_id, run_id)
        spans = tuple(
            TaskSpan(
                task_id=ti["task_id"],
                map_index=ti["map_index"],
                state=ti["state"],
                start=_when(ti["start_date"]),
                end=_when(ti["end_date"]),
                hostname=ti.get("hostname") or "",
            )
            for ti in client.task_instances(dag_id, run_id)
        )
        return cls(
            dag_id=dag_id,
            run_id=run_id,
            state=run["state"],
            start=_when(run["start_date"]),
            end=_when(run["end_date"]),
            spans=spans,
            label=label,
            production_minutes=client.request(
                "GET", f"/bottlenecks/api/dags/{dag_id}/runs/{quote(run_id, safe='')}/report"
            )["production"]["wall_minutes"],
        )

    @property
    def wall_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def seconds_by_spec_task(self) -> dict[int, float]:
        """Span of each spec task, first start to last end (Task 8's group rolls up)."""
        starts: dict[int, datetime] = {}
        ends: dict[int, datetime] = {}
        for span in self.spans:
            if span.spec_id is None or not (span.start and span.end):
                continue
            starts[span.spec_id] = min(starts.get(span.spec_id, span.start), span.start)
            ends[span.spec_id] = max(ends.get(span.spec_id, span.end), span.end)
        return {num: (ends[num] - starts[num]).total_seconds() for num in sorted(starts)}

    def spans_of(self, spec_id: int) -> list[TaskSpan]:
        return [span for span in self.spans if span.spec_id == spec_id]

    def map_indexes(self, task_id_suffix: str) -> list[int]:
        return sorted(
            span.map_index
            for span in self.spans
            if span.task_id.endswith(task_id_suffix) and span.map_index >= 0
        )

    def overlapping_pairs(self, ignore: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Task pairs that ran at the same time, leaving out the tasks named in `ignore`."""
        ignored = set(ignore)
        spans = [s for s in self.spans if s.start and s.end and s.task_id not in ignored]
        return [
            (a.task_id, b.task_id)
            for i, a in enumerate(spans)
            for b in spans[i + 1 :]
            if a.overlaps(b)
        ]

    def all_overlap(self, spec_ids: Iterable[int]) -> bool:
        """Every pair of the given spec tasks ran at the same time at some point."""
        spans = [self.spans_of(num)[0] for num in spec_ids]
        return all(a.overlaps(b) for i, a in enumerate(spans) for b in spans[i + 1 :])

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "wall_seconds": round(self.wall_seconds, 3),
            "production_minutes": self.production_minutes,
            "task_seconds": {
                str(num): round(sec, 3) for num, sec in self.seconds_by_spec_task().items()
            },
        }


def run_dag(client: AirflowRestClient, dag_id: str, time_scale: float, label: str) -> RunRecord:
    run_id = client.trigger(dag_id, conf={"time_scale": time_scale})
    log.info("%s: triggered %s %s", label, dag_id, run_id)
    client.wait_for_run(dag_id, run_id)
    record = RunRecord.fetch(client, dag_id, run_id, label)
    log.info("%s: %s in %.1f s", label, record.state, record.wall_seconds)
    return record


def clear_codegen_caches(stack: AirflowStack, dag_id: str) -> None:
    """A cold start for `dag_id`: its published snapshots and the stack's template cache."""
    from k1n.codegen import CodegenEngine, CodegenStore

    env = stack.airflow_env()
    root = storage.open_root(env["K1N_STORAGE_URL"])
    store = CodegenStore(root / "codegen" / storage.key_for(dag_id))
    CodegenEngine(store, cache_dir=env["K1N_CACHE_DIR"]).clear_caches()


def format_comparison(baseline: RunRecord, cold: RunRecord, warm: RunRecord | None) -> str:
    from k1n.workflow.spec import load_spec

    spec = load_spec()
    runs = [baseline, cold] + ([warm] if warm else [])
    per_run = [run.seconds_by_spec_task() for run in runs]
    header = f"{'task':<34}" + "".join(f"{run.label:>16}" for run in runs)
    lines = [header, "-" * len(header)]
    for spec_task in spec.tasks:
        cells = "".join(f"{seconds.get(spec_task.id, 0.0):>15.1f}s" for seconds in per_run)
        lines.append(f"{spec_task.id:>2} {spec_task.name:<31}" + cells)
    lines.append("-" * len(header))
    lines.append(f"{'wall time':<34}" + "".join(f"{run.wall_seconds:>15.1f}s" for run in runs))
    lines.append(
        f"{'production wall (stand-ins x 1/scale)':<34}"
        + "".join(
            f"{run.production_minutes:>13.1f}min" if run.production_minutes else f"{'-':>16}"
            for run in runs
        )
    )
    ratio = cold.wall_seconds / baseline.wall_seconds
    lines.append(
        f"optimized (cold) / baseline wall: {ratio:.3f}  "
        f"(speedup {baseline.wall_seconds / cold.wall_seconds:.2f}x, "
        f"{(1 - ratio):.0%} less; bar <= {OPTIMIZED_WALL_RATIO_MAX})  "
        f"{'MET' if ratio <= OPTIMIZED_WALL_RATIO_MAX else 'MISSED'}"
    )
    if warm:
        lines.append(
            f"optimized (warm) / baseline wall: {warm.wall_seconds / baseline.wall_seconds:.3f}"
        )
    return "\n".join(lines)


def structure_checks(baseline: RunRecord, cold: RunRecord) -> dict[str, Any]:
    """What the acceptance asks of the metadata DB, read back from it."""
    generate_maps = cold.map_indexes(".generate_code")
    return {
        # The teardown runs once the storage readers are done, beside the last tasks by design.
        "baseline_overlapping_pairs": baseline.overlapping_pairs(ignore=[CLEAN_UP_TASK_ID]),
        "optimized_tasks_3_4_5_overlap": cold.all_overlap([3, 4, 5]),
        "optimized_tasks_1_2_overlap": cold.all_overlap([1, 2]),
        "optimized_generate_map_indexes": generate_maps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k1n demo", description=__doc__)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="Airflow home")
    parser.add_argument(
        "--time-scale",
        type=settings.parse_time_scale,
        default=None,
        help="profiled seconds x this (default: K1N_TIME_SCALE or 1/60)",
    )
    parser.add_argument("--no-warm", action="store_true", help="skip the warm optimized rerun")
    args = parser.parse_args(argv)
    time_scale = args.time_scale or settings.default_time_scale()

    stack = AirflowStack(args.home)
    log.info("Airflow home %s, UI while the demo runs: %s", stack.home, stack.base_url)
    try:
        stack.start()
        client = stack.client()
        for dag_id in (BASELINE_DAG_ID, OPTIMIZED_DAG_ID):
            client.wait_for_dag(dag_id)
            client.unpause(dag_id)
        baseline = run_dag(client, BASELINE_DAG_ID, time_scale, "baseline")
        clear_codegen_caches(stack, OPTIMIZED_DAG_ID)
        cold = run_dag(client, OPTIMIZED_DAG_ID, time_scale, "optimized cold")
        warm = None if args.no_warm else run_dag(client, OPTIMIZED_DAG_ID, time_scale, "warm")
    finally:
        stack.stop()

    print(
        f"\nK1N demo at time scale {time_scale:.4g} (a stand-in's production minute = "
        f"{60 * time_scale:.2f} s; real work and orchestration take what they take)\n"
    )
    print(format_comparison(baseline, cold, warm))
    checks = structure_checks(baseline, cold)
    print(
        f"\nbaseline: overlapping workflow task pairs: {len(checks['baseline_overlapping_pairs'])}"
        f"\noptimized: tasks 3, 4, 5 overlap: {checks['optimized_tasks_3_4_5_overlap']}; "
        f"tasks 1, 2 overlap: {checks['optimized_tasks_1_2_overlap']}; "
        f"generate_code map indexes: {checks['optimized_generate_map_indexes']}"
    )
    summary = {
        "time_scale": time_scale,
        "runs": [run.as_dict() for run in (baseline, cold, warm) if run],
        "optimized_cold_wall_ratio": round(cold.wall_seconds / baseline.wall_seconds, 4),
        "checks": checks,
    }
    out = stack.home / "demo" / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"\nsummary: {out}\nAirflow UI with these runs: make airflow")
    failed = [run.label for run in (baseline, cold, warm) if run and run.state != "success"]
    if failed:
        print(f"FAILED runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
