"""`summarize_runs`: many runs at once agree with one `analyze_run` per run."""

from __future__ import annotations

import pandas as pd
import pytest

from k1n.reporting.history import summarize_runs
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    A,
    B,
    C,
    D,
    analyze,
    at,
    back_to_back,
    diamond_spec,
    instance,
)


def diamond_runs() -> pd.DataFrame:
    rows = [
        # r1: parallel with hand-offs; r2: sequential; r3: B mapped and C retried.
        instance(A, 0, 10, run_id="r1"),
        instance(B, 11, 41, run_id="r1"),
        instance(C, 11, 31, run_id="r1"),
        instance(D, 42, 47, run_id="r1"),
        instance(A, 0, 10, run_id="r2"),
        instance(B, 10, 40, run_id="r2"),
        instance(C, 40, 60, run_id="r2"),
        instance(D, 60, 65, run_id="r2"),
        instance(A, 0, 5, run_id="r3", queued=at(-1)),
        instance(B, 5, 9, run_id="r3", map_index=0),
        instance(B, 5, 12, run_id="r3", map_index=1),
        instance(C, 5, 6, run_id="r3", try_number=1, state="failed"),
        instance(C, 7, 10, run_id="r3", try_number=2),
        instance(D, 12, 13, run_id="r3"),
    ]
    return pd.DataFrame(rows)


def test_summary_matches_one_report_per_run() -> None:
    spec = diamond_spec()
    runs = diamond_runs().iloc[::-1]  # rows in any order
    summary = summarize_runs(runs, spec)
    assert sorted(summary.index.get_level_values("run_id")) == ["r1", "r2", "r3"]
    for run_id in ("r1", "r2", "r3"):
        report = analyze(runs, spec, dag_id="dag", run_id=run_id)
        row = summary.loc[("dag", run_id)]
        assert row["wall_seconds"] == pytest.approx(report.wall_seconds)
        assert row["total_task_seconds"] == pytest.approx(report.total_task_seconds)
        assert row["busy_seconds"] == pytest.approx(
            report.wall_seconds - report.overhead.idle_seconds
        )
        assert row["overhead_seconds"] == pytest.approx(report.overhead.idle_seconds)
        assert row["queue_wait_seconds"] == pytest.approx(report.overhead.queue_wait_seconds)
        assert row["critical_path_seconds"] == pytest.approx(report.critical_path.seconds)
    assert summary.loc[("dag", "r2"), "critical_path_seconds"] == pytest.approx(45)
    assert summary.loc[("dag", "r3"), "instances"] == 5


def test_runs_table_supplies_bounds_and_time_scale() -> None:
    spec = load_spec()
    instances = back_to_back(spec)
    runs = pd.DataFrame(
        {
            "dag_id": ["dag"],
            "run_id": ["run"],
            "start": [at(-10)],
            "time_scale": [1 / 60],
        }
    )
    row = summarize_runs(instances, spec, runs).iloc[0]
    assert row["wall_seconds"] == pytest.approx(7810)
    # Production minutes need the run replayed (stand-ins only scaled back): not in the summary.
    assert "production_wall_minutes" not in row
    assert row["task8_seconds"] == pytest.approx(900)
    assert row["critical_path_seconds"] == pytest.approx(spec.critical_path_seconds)
