"""The charts' view models and the page's templates, from reports built without a database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from airflow_bottleneck.analysis import compare_runs
from airflow_bottleneck.analysis.model import History, HistoryRun
from airflow_bottleneck.render.charts import comparison_view, durations_view, gantt_view
from airflow_bottleneck.render.charts.axis import CRITICAL, FASTER, MUTED, NEAR, SLOWER, nice_ticks
from airflow_bottleneck.render.html import PageModel, render_login_hint, render_page
from tests.airflow_bottleneck.analysis.helpers import (
    A,
    B,
    C,
    D,
    analyze,
    at,
    dag_graph,
    diamond_spec,
    instance,
)

SVG = "{http://www.w3.org/2000/svg}"
DIAMOND = dag_graph((A, B), (A, C), (B, D), (C, D))


def diamond_run(run_id: str, stretch: float = 1.0, **info):
    s = stretch
    rows = [
        instance(A, 0, 10 * s, queued=at(-0.5), code_start=at(1)),
        instance(B, 10 * s, 40 * s, code_start=at(10 * s + 2)),
        instance(C, 10 * s, 39 * s),  # near-critical: 1 s of slack
        instance(D, 40 * s, 45 * s),
        instance("skipped_step", 45 * s, 45 * s, state="skipped"),
    ]
    graph = dag_graph((A, B), (A, C), (B, D), (C, D), (D, "skipped_step"))
    defaults = {"dag_id": "dag", "run_id": run_id, "state": "success", "start": at(0)}
    return analyze(rows, diamond_spec(), graph, uses_spec=False, **{**defaults, **info})


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(45) == [0, 10, 20, 30, 40, 50]
    assert nice_ticks(0) == [0.0]
    assert nice_ticks(float("nan")) == [0.0]


def test_durations_mark_critical_near_critical_and_skipped() -> None:
    report = diamond_run("r")
    view = durations_view(report)
    bars = {bar.task: bar for bar in view.bars}
    assert [bar.task for bar in view.bars][:2] == [B, C]  # longest first
    assert (bars[B].color, bars[B].bold) == (CRITICAL, True)
    assert (bars[C].color, bars[C].bold, bars[C].near_critical) == (NEAR, False, True)
    assert bars["skipped_step"].color == MUTED
    assert "skipped" in bars["skipped_step"].value
    assert "slack 1.00 s (near-critical)" in bars[C].title


def test_durations_draw_each_tasks_history_as_a_sparkline() -> None:
    history = History(
        runs=[HistoryRun(run_id=f"r{i}", start=None, wall_seconds=45.0) for i in range(3)],
        tasks={B: [20.0, 25.0, 30.0]},
    )
    report = diamond_run("r").model_copy(update={"history": history})
    bars = {bar.task: bar for bar in durations_view(report).bars}
    assert bars[B].spark.split() == ["0.0,5.3", "45.0,2.7", "90.0,0.0"]
    assert bars[A].spark == ""  # no history for it


def test_gantt_splits_start_up_from_work_and_links_the_path() -> None:
    report = diamond_run("r", detail=True)
    view = gantt_view(report)
    rows = {row.task: row for row in view.rows}
    kinds = [segment.kind for segment in rows[A].segments]
    assert kinds == ["queued", "startup", "work"]
    startup = rows[A].segments[1]
    assert "start-up 1.00 s" in startup.title
    assert len(view.links) == len(report.critical_path.steps) - 1
    # A was queued 0.5 s before the run's recorded start: the bounds enclose it.
    assert view.end_label == "run end 45.5 s"


def test_a_partial_runs_gantt_ends_where_it_was_observed() -> None:
    rows = [instance(A, 0, 10), instance(B, 10, None, state="running")]
    report = analyze(
        rows,
        diamond_spec(),
        DIAMOND,
        uses_spec=False,
        state="running",
        start=at(0),
        observed_at=at(12).timestamp(),
    )
    assert gantt_view(report).end_label == "observed 12.0 s (running)"


@pytest.mark.parametrize(
    ("stretch", "verdict", "color"), [(1.5, "slower", SLOWER), (0.5, "faster", FASTER)]
)
def test_comparison_colours_and_words_follow_the_direction(stretch, verdict, color) -> None:
    a, b = diamond_run("first"), diamond_run("second", stretch)
    comparison = compare_runs(a, b)
    view = comparison_view(comparison, a, b)
    assert comparison.verdict == verdict and comparison.factor >= 1
    assert view.delta_color == color
    assert view.delta_label == f"{comparison.factor:.2f}\u00d7 {verdict}"
    assert [block.tag for block in view.blocks] == ["A", "B"]
    assert view.blocks[0].bars[0].y < view.blocks[1].bars[0].y  # reference above


def render(report, comparison=None, a=None, b=None) -> str:
    model = PageModel(
        root="/bottlenecks",
        dag_ids=["dag"],
        runs=[],
        total=0,
        limit=25,
        run_key=f"{report.dag_id}/{report.run_id}",
        report=report,
        comparison=comparison,
        a_report=a,
        b_report=b,
    )
    return render_page(model)


def test_every_chart_is_well_formed_svg_with_escaped_names() -> None:
    hostile = '<script>alert("x")</script> & co'
    rows = [instance(hostile, 0, 5), instance(A, 5, 10)]
    report = analyze(rows, diamond_spec(), dag_graph((hostile, A)), uses_spec=False, detail=True)
    a, b = diamond_run("first"), diamond_run("second", 1.2)
    html = render(report, compare_runs(a, b), a, b)
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    for chart in ("durations", "gantt", "comparison"):
        start = html.index(f'<svg class="chart" data-chart="{chart}"')
        svg = html[start : html.index("</svg>", start) + len("</svg>")]
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg"
        assert root.findall(f".//{SVG}title"), chart


def test_the_page_states_the_legend_slack_and_the_split() -> None:
    report = diamond_run("r", detail=True)
    html = render(report)
    assert "bold red: on the critical path" in html
    assert "near-critical: slack ≤ 2.25 s" in html
    assert 'data-part="start-up"' in html and 'data-part="waiting"' in html
    assert "skipped by Airflow" in html
    assert 'href="/bottlenecks/api/dags/dag/runs/r/report" target="_blank"' in html
    assert 'href="/bottlenecks/api/dags/dag/runs/r/report.md" target="_blank"' in html
    assert 'href="/bottlenecks/?run=dag%2Fr" target="_blank" rel="noopener" id="share-link"' in html
    assert "<meta http-equiv" not in html


def test_the_login_hint_links_to_the_sign_in_page() -> None:
    html = render_login_hint("/auth/login?next=%2Fbottlenecks%2F", "Not authenticated")
    assert 'href="/auth/login?next=%2Fbottlenecks%2F" target="_top"' in html
