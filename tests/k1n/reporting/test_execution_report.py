"""The execution report from two runs built without a database (the seed's demo-shaped
rows analysed in the DAGs' own graphs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from airflow_bottleneck.analysis import RunData, RunInfo, TaskGraph, analyze_run
from k1n.dag_builders.workflow import build_baseline_dag, build_optimized_dag
from k1n.reporting.execution_report import REPORT_NAME, savings, write_execution_report
from k1n.reporting.extension import K1NExtension
from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.web.seed import TIME_SCALE, baseline_rows, optimized_rows

START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def report_of(dag_id: str, rows: list[dict], dag) -> object:
    frame = pd.DataFrame(
        [
            {
                "dag_id": dag_id,
                "run_id": f"{dag_id}_run",
                **{k: r[k] for k in ("task_id", "map_index", "try_number", "state")},
                "queued": r["queued"],
                "start": r["start"],
                "end": r["end"],
                "code_start": r["code_start"],
            }
            for r in rows
        ]
    )
    info = RunInfo(
        dag_id=dag_id,
        run_id=f"{dag_id}_run",
        state="success",
        start=pd.Timestamp(START),
        end=pd.Timestamp(max(r["end"] for r in rows)),
        time_scale=TIME_SCALE,
        pass_rate=0.97,
    )
    return analyze_run(RunData(info, frame, TaskGraph.from_dag(dag)), K1NExtension(load_spec()))


@pytest.fixture(scope="module")
def runs():
    spec = load_spec()
    return (
        report_of(BASELINE_DAG_ID, baseline_rows(spec, START), build_baseline_dag()),
        report_of(OPTIMIZED_DAG_ID, optimized_rows(spec, START), build_optimized_dag()),
    )


def test_the_report_and_its_charts_are_written(tmp_path: Path, runs) -> None:
    baseline, optimized = runs
    path = write_execution_report(baseline, optimized, tmp_path)
    assert path == tmp_path / REPORT_NAME
    text = path.read_text()
    assert "**The optimized workflow is" in text and "faster**" in text
    for chart in ("comparison", "baseline-gantt", "optimized-gantt", "optimized-durations"):
        svg = tmp_path / "img" / f"execution-{chart}.svg"
        assert svg.read_text().startswith("<svg")
    assert text.count("| met |") + text.count("| missed |") >= 4
    assert "## Rollback" in text and "k1n_nightly_target_dag" in text
    assert "Three concurrent workflows" not in text  # no benchmark figures given


def test_the_savings_add_up_to_the_total(runs) -> None:
    from airflow_bottleneck.analysis import compare_runs

    baseline, optimized = runs
    comparison = compare_runs(baseline, optimized)
    rows = savings(comparison)
    assert [row["what"].split(":")[0] for row in rows[:2]] == ["Parallel branches", "Task 8"]
    total = comparison.a.wall_seconds - comparison.b.wall_seconds
    assert sum(row["seconds"] for row in rows) == pytest.approx(total, abs=0.05)
    # Savings are positive; every row says how it is measured, none is a bare remainder.
    assert rows[0]["seconds"] > 0 and rows[1]["seconds"] > 0
    assert all(row["how"] for row in rows)
    assert not any("emainder" in row["what"] for row in rows)


def test_the_report_words_savings_as_savings(tmp_path: Path, runs) -> None:
    text = write_execution_report(*runs, tmp_path).read_text()
    table = text[text.index("## Optimizations and what each saved") :]
    table = table[: table.index("\n\n", table.index("| **total**"))]
    assert "| **saved " in table and "+" not in table.replace("+1", "")
    assert "Remainder" not in table


def test_benchmark_figures_appear_when_given(tmp_path: Path, runs) -> None:
    ratio = {"median": 1.1, "min": 1.0, "max": 1.2, "n": 3}
    bench = {
        "load": {
            "rounds": [{}, {}, {}],
            "time_scale": 1 / 60,
            "all_succeeded": True,
            "same_verdict": True,
            "slowest_over_single": ratio,
            "peak_pss_mb_three_runs": 1500.0,
        },
    }
    text = write_execution_report(*runs, tmp_path, bench=bench).read_text()
    assert "every run succeeded" in text and "1.10× (min 1.00, max 1.20)" in text


def test_the_command_builds_it_from_any_two_sources(tmp_path: Path, capsys) -> None:
    from k1n.reporting.execution_report import main
    from tests.airflow_bottleneck.analysis.helpers import reference_profiles

    profiles = reference_profiles(tmp_path / "profiles", load_spec())
    out = tmp_path / "docs"
    assert main([f"profiles:{profiles}", f"profiles:{profiles}", "--out", str(out)]) == 0
    assert (out / REPORT_NAME).exists() and "the same wall time" not in capsys.readouterr().err
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main([f"profiles:{profiles}", f"profiles:{profiles}", "--out", str(blocked)]) == 2
    assert capsys.readouterr().err.startswith("error: cannot write into")
