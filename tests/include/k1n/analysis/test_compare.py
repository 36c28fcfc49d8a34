"""`compare_runs`: production-scale figures, speedup, per-task deltas, prediction, targets."""

from __future__ import annotations

import pytest

from include.k1n.analysis import RunInfo, analyze_run, compare_runs, render_comparison
from tests.include.k1n.analysis.helpers import A, B, C, D, diamond_spec, instance, table


@pytest.fixture(scope="module")
def comparison():
    spec = diamond_spec()
    # A: sequential at production scale (65 s). B: parallel at 1/60 (0.75 s = 45 production s).
    sequential = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 40, 60), instance(D, 60, 65)),
        spec,
        RunInfo(time_scale=1, label="baseline"),
    )
    scale = 1 / 60
    parallel = analyze_run(
        table(
            instance(A, 0, 10 * scale),
            instance(B, 10 * scale, 40 * scale),
            instance(C, 10 * scale, 30 * scale),
            instance(D, 40 * scale, 45 * scale),
        ),
        spec,
        RunInfo(time_scale=scale, label="optimized"),
    )
    return compare_runs(sequential, parallel)


# Timestamps keep microseconds: 1/6 s at 1/60 comes back within 1e-4 production seconds.
ABS = 1e-3


def test_walls_are_compared_on_the_production_scale(comparison) -> None:
    assert comparison.a_wall == pytest.approx(65)
    assert comparison.b_wall == pytest.approx(45)
    assert comparison.a_total == pytest.approx(65)
    assert comparison.b_total == pytest.approx(65, abs=ABS)
    assert comparison.speedup_factor == pytest.approx(65 / 45)
    assert comparison.speedup_percent == pytest.approx(20 / 65 * 100)


def test_per_task_deltas(comparison) -> None:
    deltas = {task.node: task for task in comparison.tasks}
    assert list(deltas) == [A, B, C, D]
    assert deltas[C].a_seconds == pytest.approx(20)
    assert deltas[C].b_seconds == pytest.approx(20)
    assert deltas[C].delta_seconds == pytest.approx(0, abs=ABS)


def test_prediction_sits_next_to_the_measured_run(comparison) -> None:
    assert comparison.predicted_b_wall == pytest.approx(45)
    assert comparison.prediction_error_percent == pytest.approx(0, abs=ABS)
    prediction = comparison.as_dict()["prediction"]
    assert prediction["predicted_b_wall_seconds"] == pytest.approx(45)
    assert prediction["measured_b_wall_seconds"] == pytest.approx(45)


def test_targets_of_both_runs_and_renderings(comparison) -> None:
    document = comparison.as_dict()
    assert [t["key"] for t in document["targets"]["a"]] == [
        "workflow_minutes_max",
        "workflow_minutes_goal",
        "task8_minutes_max",
        "quality_gate_pass_rate_min",
    ]
    text = render_comparison(comparison, "text")
    assert "B took 30.8 % less wall time than A (1.44x)" in text
    assert render_comparison(comparison, "json").startswith("{")
