"""`compare_runs`: production-scale figures, a factor >= 1 with its direction in words,
work against orchestration, per-task deltas, the prediction, titles that name the runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_bottleneck.analysis import compare_runs
from airflow_bottleneck.render import render_comparison
from tests.airflow_bottleneck.analysis.helpers import (
    A,
    B,
    C,
    D,
    analyze,
    at,
    chain_graph,
    dag_graph,
    diamond_spec,
    instance,
)

SCALE = 1 / 60
# Walls keep microseconds; offsets in a report keep milliseconds, which at 1/60 is up to
# 0.06 production seconds per offset.
ABS = 1e-3
OFFSET_ABS = 0.12


def sequential():
    """The baseline: A, B, C, D one after another, at production scale (65 s)."""
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 40, 60), instance(D, 60, 65)]
    return analyze(
        rows,
        diamond_spec(),
        chain_graph(A, B, C, D),
        time_scale=1,
        dag_id="k1n_22task_baseline",
        run_id="base",
        label="baseline",
        state="success",
    )


def parallel(run_id: str = "opt", stretch: float = 1.0):
    """The optimized DAG at 1/60: 45 production s (times `stretch`)."""
    s = SCALE * stretch
    rows = [
        instance(A, 0, 10 * s),
        instance(B, 10 * s, 40 * s),
        instance(C, 10 * s, 30 * s),
        instance(D, 40 * s, 45 * s),
    ]
    return analyze(
        rows,
        diamond_spec(),
        dag_graph((A, B), (A, C), (B, D), (C, D)),
        time_scale=SCALE,
        dag_id="k1n_22task_optimized",
        run_id=run_id,
        label="optimized",
        state="success",
        start=at(0),
    )


@pytest.fixture(scope="module")
def comparison():
    return compare_runs(sequential(), parallel())


def test_walls_are_compared_on_the_production_scale(comparison) -> None:
    assert comparison.a.wall_seconds == pytest.approx(65)
    assert comparison.b.wall_seconds == pytest.approx(45, abs=ABS)
    assert comparison.verdict == "faster"
    assert comparison.factor == pytest.approx(65 / 45, rel=1e-3)
    assert comparison.percent == pytest.approx(20 / 65 * 100, rel=1e-3)


def test_a_slower_run_is_slower_with_a_factor_above_one() -> None:
    # 63.0 min against 74.1 min: 1.18x slower, never "0.85x slower".
    first, second = parallel("fast", 63.0 / 45 * 60 / 60), parallel("slow", 74.1 / 45)
    comparison = compare_runs(first, second)
    assert comparison.verdict == "slower"
    assert comparison.factor == pytest.approx(74.1 / 63.0, rel=1e-3)
    assert comparison.factor >= 1
    text = render_comparison(comparison, "markdown")
    assert "slower" in text and "faster" not in text.split("\n\n", 2)[1]


def test_titles_name_the_runs_of_one_dag_by_run_id_and_start() -> None:
    comparison = compare_runs(parallel("first"), parallel("second"))
    assert "first" in comparison.title and "second" in comparison.title
    assert comparison.a.label != comparison.b.label
    assert comparison.verdict == "same"


def test_the_difference_splits_into_work_and_orchestration(comparison) -> None:
    a, b = comparison.a, comparison.b
    assert comparison.work_delta_seconds == pytest.approx(b.work_seconds - a.work_seconds)
    assert comparison.orchestration_delta_seconds == pytest.approx(
        b.orchestration_seconds - a.orchestration_seconds
    )
    # Neither run has hand-offs: the whole difference is work (C no longer on the path).
    assert comparison.work_delta_seconds == pytest.approx(-20, abs=ABS)
    assert comparison.orchestration_delta_seconds == pytest.approx(0, abs=ABS)


def test_per_task_deltas_by_spec_task(comparison) -> None:
    deltas = {task.key: task for task in comparison.tasks}
    assert list(deltas) == ["spec 1", "spec 2", "spec 3", "spec 4"]
    assert deltas["spec 3"].a_seconds == pytest.approx(20)
    assert deltas["spec 3"].b_seconds == pytest.approx(20, abs=OFFSET_ABS)
    assert deltas["spec 3"].delta_seconds == pytest.approx(0, abs=OFFSET_ABS)


def test_prediction_sits_next_to_the_measured_run(comparison) -> None:
    prediction = comparison.prediction
    assert prediction.predicted_b_wall_seconds == pytest.approx(45)
    assert prediction.measured_b_wall_seconds == pytest.approx(45, abs=ABS)
    assert prediction.error_percent == pytest.approx(0, abs=0.01)


def test_targets_of_both_runs_and_renderings(comparison) -> None:
    document = comparison.as_dict()
    assert [t["key"] for t in document["targets_a"]] == [
        "workflow_minutes_max",
        "workflow_minutes_goal",
        "task8_minutes_max",
        "quality_gate_pass_rate_min",
    ]
    text = render_comparison(comparison, "text")
    assert "1.44\u00d7 faster" in text
    assert render_comparison(comparison, "json").startswith("{")


# -- the difference explained -----------------------------------------------------------------


def test_the_difference_is_attributed_to_parts_that_sum_to_it(comparison) -> None:
    attribution = comparison.attribution
    total = sum(part.delta_seconds for part in attribution.parts)
    assert total == pytest.approx(attribution.delta_seconds, abs=0.1)
    assert attribution.delta_seconds == pytest.approx(
        comparison.b.wall_seconds - comparison.a.wall_seconds, abs=ABS
    )
    assert attribution.headline.startswith("-20.0 s:")


def test_a_task_that_joined_the_critical_path_is_named_in_the_headline() -> None:
    slow_c = [instance(A, 0, 10), instance(B, 11, 41), instance(C, 11, 71), instance(D, 72, 77)]
    fast_c = [instance(A, 0, 10), instance(B, 11, 41), instance(C, 11, 31), instance(D, 42, 47)]
    graph = dag_graph((A, B), (A, C), (B, D), (C, D))
    kwargs = {"time_scale": 1, "dag_id": "dag", "state": "success", "start": at(0)}
    before = analyze(fast_c, diamond_spec(), graph, run_id="before", uses_spec=False, **kwargs)
    after = analyze(slow_c, diamond_spec(), graph, run_id="after", uses_spec=False, **kwargs)
    attribution = compare_runs(before, after).attribution
    c = next(part for part in attribution.parts if part.key == C)
    assert c.path_change == "joined" and c.delta_seconds == pytest.approx(60.0)
    b = next(part for part in attribution.parts if part.key == B)
    assert b.path_change == "left" and b.delta_seconds == pytest.approx(-30.0)
    assert attribution.headline == (
        f"+30.0 s: {C} +60.0 s (now on the critical path), "
        f"{B} -30.0 s (no longer on the critical path)"
    )
    assert attribution.parts[0].key == C


@st.composite
def run_pair(draw):
    def run(run_id: str):
        seconds = [draw(st.floats(0.0, 5000.0)) for _ in range(4)]
        gaps = [draw(st.floats(0.0, 300.0)) for _ in range(5)]
        a_end = gaps[0] + seconds[0]
        b_start, c_start = a_end + gaps[1], a_end + gaps[2]
        b_end, c_end = b_start + seconds[1], c_start + seconds[2]
        d_start = max(b_end, c_end) + gaps[3]
        rows = [
            instance(A, gaps[0], a_end),
            instance(B, b_start, b_end),
            instance(C, c_start, c_end),
            instance(D, d_start, d_start + seconds[3]),
        ]
        scale = draw(st.sampled_from([1.0, 1 / 60, 1 / 3600]))
        return analyze(
            rows,
            diamond_spec(),
            dag_graph((A, B), (A, C), (B, D), (C, D)),
            time_scale=scale,
            dag_id="dag",
            run_id=run_id,
            state="success",
            start=at(0),
            end=at(d_start + seconds[3] + gaps[4]),
            uses_spec=draw(st.booleans()),
        )

    return run("a"), run("b")


@settings(max_examples=200, deadline=None)
@given(run_pair())
def test_attribution_parts_always_sum_to_the_difference(pair) -> None:
    a, b = pair
    attribution = compare_runs(a, b).attribution
    assert sum(p.delta_seconds for p in attribution.parts) == pytest.approx(
        attribution.delta_seconds, abs=0.1
    )
    assert attribution.headline.split(":")[0] in {
        f"{attribution.delta_seconds / unit:+.1f} {name}" for unit, name in ((1, "s"), (60, "min"))
    }
