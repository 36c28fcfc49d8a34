"""The SVG charts and the page, from reports built without any database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pandas as pd
import pytest

from include.k1n.analysis import RunInfo, RunReport, analyze_run, compare_runs
from include.k1n.ui.charts import (
    comparison_chart,
    durations_chart,
    gantt_chart,
    nice_ticks,
    node_of,
    task_label,
)
from include.k1n.ui.page import PageModel, render_login_hint, render_page
from include.k1n.ui.store import RunRow
from include.k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from include.k1n.workflow.spec import load_spec
from tests.include.k1n.ui.seed import (
    RETRIED_SPEC_ID,
    SHARDS,
    TIME_SCALE,
    baseline_rows,
    optimized_rows,
)

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def report_of(dag_id: str, rows: list[dict]) -> RunReport:
    frame = pd.DataFrame(
        [
            {
                "dag_id": dag_id,
                "run_id": "run",
                "task_id": r["task_id"],
                "map_index": r["map_index"],
                "try_number": r["try_number"],
                "state": r["state"],
                "queued": r["queued"],
                "start": r["start"],
                "end": r["end"],
            }
            for r in rows
        ]
    )
    info = RunInfo(
        dag_id=dag_id,
        run_id="run",
        state="success",
        start=pd.Timestamp(START),
        end=pd.Timestamp(max(r["end"] for r in rows)),
        time_scale=TIME_SCALE,
        label=dag_id.rsplit("_", 1)[-1],
    )
    return analyze_run(frame, load_spec(), info)


@pytest.fixture(scope="module")
def optimized() -> RunReport:
    return report_of(OPTIMIZED_DAG_ID, optimized_rows(load_spec(), START))


@pytest.fixture(scope="module")
def baseline() -> RunReport:
    return report_of(BASELINE_DAG_ID, baseline_rows(load_spec(), START))


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def rects(root: ET.Element, css: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if css in r.get("class", "").split()]


@pytest.mark.parametrize(
    ("upper", "ticks"),
    [
        (78.3, [0, 10, 20, 30, 40, 50, 60, 70, 80]),
        (137.1, [0, 20, 40, 60, 80, 100, 120, 140]),
        (1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.0, [0.0]),
        (float("nan"), [0.0]),
    ],
)
def test_nice_ticks(upper, ticks):
    assert nice_ticks(upper) == pytest.approx(ticks)


def test_labels_and_nodes():
    assert node_of("task_08_code_generation.generate_code") == "task_08_code_generation"
    assert node_of("check_quality_gates") == "check_quality_gates"
    label = task_label("task_08_code_generation.compile_code", 8, "Code Generation")
    assert label == "8 Code Generation · compile_code"
    assert task_label("check_quality_gates", None, None) == "check_quality_gates"


def test_durations_chart_marks_the_critical_tasks(optimized):
    root = parse(durations_chart(optimized))
    assert root.get("data-chart") == "durations"
    bars = rects(root, "bar")
    assert len(bars) == len(optimized.tasks)
    critical_nodes = set(optimized.critical_path.nodes)
    rows = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar-row"]
    marked = {g.get("data-task") for g in rows if g.get("data-critical") == "true"}
    assert marked == {t.task for t in optimized.tasks if node_of(t.task) in critical_nodes}
    assert len(rects(root, "critical")) == len(marked)
    # Longest first, bar widths proportional to seconds.
    widths = [float(b.get("width")) for b in bars]
    assert widths == sorted(widths, reverse=True)


def test_gantt_chart_shows_tries_lanes_and_the_path(optimized):
    root = parse(gantt_chart(optimized))
    critical = rects(root, "critical")
    critical_nodes = set(optimized.critical_path.nodes)
    assert {r.get("data-task") for r in critical} == {
        t.task for t in optimized.tasks if node_of(t.task) in critical_nodes
    }
    retry = rects(root, "retry")
    assert [r.get("data-task") for r in retry] == [
        next(t.task for t in optimized.tasks if t.spec_id == RETRIED_SPEC_ID)
    ]
    generate = [r for r in rects(root, "bar") if r.get("data-task", "").endswith("generate_code")]
    assert len(generate) == SHARDS
    assert len({r.get("y") for r in generate}) == SHARDS  # one lane per map index
    links = [p for p in root.iter(f"{SVG}path") if "cp-link" in p.get("class", "")]
    assert len(links) == len(optimized.critical_path.nodes)  # every hop, plus the tail
    # Nothing is drawn beyond the plot.
    assert all(float(r.get("x")) + float(r.get("width")) <= 1120 for r in rects(root, "bar"))


def test_comparison_chart_puts_both_runs_on_one_axis(baseline, optimized):
    comparison = compare_runs(baseline, optimized)
    root = parse(comparison_chart(comparison))
    panels = [g for g in root.iter(f"{SVG}g") if g.get("class") == "run-panel"]
    assert [p.get("data-dag") for p in panels] == [BASELINE_DAG_ID, OPTIMIZED_DAG_ID]
    assert [p.get("data-run") for p in panels] == ["a", "b"]
    # Same rows in both panels, starting at t = 0 on the same x origin.
    first_bars = [min(float(r.get("x")) for r in rects(panel, "bar")) for panel in panels]
    assert first_bars[0] == pytest.approx(first_bars[1], abs=15)
    assert len(rects(panels[0], "bar")) == len(rects(panels[1], "bar")) == 23
    (saved,) = rects(root, "saved")
    assert float(saved.get("width")) > 100
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert f"{comparison.speedup_factor:.2f}\u00d7 faster" in texts


def test_what_comes_from_the_db_is_escaped():
    rows = optimized_rows(load_spec(), START)
    rows.append({**rows[-1], "task_id": 'evil<script>alert("x")</script>'})
    report = report_of(OPTIMIZED_DAG_ID, rows)
    for svg in (durations_chart(report), gantt_chart(report)):
        parse(svg)
        assert "<script>" not in svg


def test_page_without_runs_and_the_login_hint():
    html = render_page(PageModel(root="/k1n", runs=[]))
    assert 'id="no-runs"' in html and "<svg" not in html
    hint = render_login_hint('/auth/login?next=/k1n/&x="y"', "Not authenticated")
    assert 'href="/auth/login?next=/k1n/&amp;x=&quot;y&quot;"' in hint


def test_page_with_a_report_and_a_comparison(baseline, optimized):
    runs = [
        RunRow(OPTIMIZED_DAG_ID, "run", "success", "manual", None, START, START, TIME_SCALE),
        RunRow(BASELINE_DAG_ID, "run", "success", "manual", None, START, START, TIME_SCALE),
    ]
    model = PageModel(
        root="/k1n",
        runs=runs,
        run_key=runs[0].key,
        a_key=runs[1].key,
        b_key=runs[0].key,
        report=optimized,
        comparison=compare_runs(baseline, optimized),
    )
    html = render_page(model)
    for chart in ("durations", "gantt", "compare"):
        assert f'data-chart="{chart}"' in html
    assert '/k1n/api/dags/k1n_22task_optimized/runs/run/report"' in html
    assert "/compare/k1n_22task_optimized/run" in html
    chips = html.count('class="chip"')
    assert chips == len(optimized.critical_path.nodes)
