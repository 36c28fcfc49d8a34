"""Regression detection and the verdict on seeded synthetic histories (no database)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from k1n.metrics import (
    WALL_TIME,
    RegressionPolicy,
    VerdictStatus,
    baseline,
    detect_regressions,
    history_from_reports,
    judge_run,
    run_seconds,
)
from k1n.metrics.regression import as_report, detect_wall_movers, family_z, task_spans
from tests.k1n.metrics.synthetic import (
    QUALITY_GATES,
    base_seconds,
    noisy_reports,
    report,
    scaled,
    with_seconds,
)

BENCHMARKS = "task_13_performance_benchmarks"
DEFAULTS = RegressionPolicy()


@pytest.mark.parametrize("seed", [20261101, 7, 42])
def test_no_false_alarm_on_thirty_runs_of_pure_noise(seed):
    reports = noisy_reports(seed, 30)
    history = history_from_reports(reports)
    judged_runs = 0
    for night in range(DEFAULTS.min_history, len(reports)):
        before = history.iloc[:night]
        regressions = detect_regressions(before, run_seconds(reports[night]))
        assert regressions == [], f"night {night}: " + "; ".join(r.evidence for r in regressions)
        verdict = judge_run(reports[night], before)
        assert not verdict.insufficient_history
        assert VerdictStatus.REGRESSION not in verdict.statuses
        judged_runs += 1
    assert judged_runs == 30 - DEFAULTS.min_history


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_25_percent_slowdown_of_one_task_is_caught_and_named(seed):
    reports = noisy_reports(seed, 15, slower={14: {BENCHMARKS: 1.25}})
    history = history_from_reports(reports[:14])

    regressions = detect_regressions(history, run_seconds(reports[14]))

    assert [r.task for r in regressions] == [BENCHMARKS]
    found = regressions[0]
    assert found.slowdown_pct == pytest.approx(25, abs=8)
    assert found.z >= DEFAULTS.z_threshold
    assert found.history_runs == 14
    assert found.evidence.startswith(f"{BENCHMARKS}: {found.seconds:.1f} s vs median ")
    assert "(MAD " in found.evidence and ", z " in found.evidence
    assert found.evidence.endswith(f"+{found.slowdown_pct:.0f} %) over 14 runs")


def test_only_the_last_history_runs_form_the_baseline():
    reports = noisy_reports(3, 20)
    history = history_from_reports(reports)
    # The oldest six nights were twice as slow: outside the last 14 they must not count.
    history.iloc[:6] *= 2
    stats = baseline(history)
    assert stats.loc[BENCHMARKS, "runs"] == 14
    assert stats.loc[BENCHMARKS, "median"] == pytest.approx(history[BENCHMARKS].iloc[-14:].median())


def test_minimum_history_is_respected():
    reports = noisy_reports(5, 6, slower={5: {BENCHMARKS: 2.0}})
    twice_as_slow = reports[5]

    short = history_from_reports(reports[:4])
    assert detect_regressions(short, run_seconds(twice_as_slow)) == []
    verdict = judge_run(twice_as_slow, short)
    assert verdict.insufficient_history
    assert verdict.ok, verdict.summary()
    assert verdict.status is VerdictStatus.INSUFFICIENT_HISTORY
    assert "timing not judged: 4 good run(s) of history, 5 needed" in verdict.summary()

    enough = history_from_reports(reports[:5])
    assert [r.task for r in detect_regressions(enough, run_seconds(twice_as_slow))] == [BENCHMARKS]


def test_a_task_with_too_little_history_of_its_own_is_not_judged():
    reports = noisy_reports(8, 15, slower={14: {BENCHMARKS: 2.0}})
    history = history_from_reports(reports[:14])
    history.loc[history.index[:12], BENCHMARKS] = np.nan  # the task is new: two runs only
    slow = reports[14]

    assert detect_regressions(history, run_seconds(slow)) == []
    verdict = judge_run(slow, history)
    assert verdict.not_judged == (BENCHMARKS,)
    assert f"too little history to judge: {BENCHMARKS}" in verdict.summary()


def test_wall_time_regression_is_flagged():
    # Every task as usual, but the run took 30 % longer: hand-offs, slots, a slow scheduler.
    reports = noisy_reports(13, 15, slower={14: {WALL_TIME: 1.3}})
    history = history_from_reports(reports[:14])
    slow = reports[14]

    regressions = detect_regressions(history, run_seconds(slow))

    assert [r.task for r in regressions] == [WALL_TIME]
    assert regressions[0].evidence.startswith("wall time: ")
    verdict = judge_run(slow, history)
    assert verdict.status is VerdictStatus.REGRESSION
    assert not verdict.ok


def test_tiny_task_jitter_never_alarms():
    reports = noisy_reports(17, 15)
    history = history_from_reports(reports[:14])
    # 0.3 s -> 0.7 s is +130 % and many MADs, but 0.4 s is below the absolute minimum.
    jittery = with_seconds(reports[14], **{QUALITY_GATES: 0.7})
    assert detect_regressions(history, run_seconds(jittery)) == []
    # A whole second more is a real change, even for a tiny task.
    stuck = with_seconds(reports[14], **{QUALITY_GATES: 1.5})
    assert [r.task for r in detect_regressions(history, run_seconds(stuck))] == [QUALITY_GATES]


def test_a_faster_run_is_never_a_regression():
    reports = noisy_reports(19, 15)
    history = history_from_reports(reports[:14])
    fast = with_seconds(reports[14], **{BENCHMARKS: 0.5, WALL_TIME: 20.0})
    assert detect_regressions(history, run_seconds(fast)) == []


def test_identical_history_keeps_z_finite_and_still_needs_the_relative_minimum():
    steady = [report({WALL_TIME: 60.0, BENCHMARKS: 8.0}, night) for night in range(10)]
    history = history_from_reports(steady)
    slightly = with_seconds(steady[-1], **{BENCHMARKS: 8.8})  # +10 %: below 15 %
    assert detect_regressions(history, run_seconds(slightly)) == []

    clearly = with_seconds(steady[-1], **{BENCHMARKS: 10.0})
    (found,) = detect_regressions(history, run_seconds(clearly))
    assert found.mad == 0
    assert np.isfinite(found.z) and found.z == pytest.approx(2.0 / 0.08)


def test_the_judged_run_is_never_its_own_baseline():
    reports = noisy_reports(23, 14, slower={13: {BENCHMARKS: 1.6}})
    slow = reports[13]
    # The run was stored before it was judged, so the history holds it: it must be left out.
    history = history_from_reports(reports)
    found = detect_regressions(history, run_seconds(slow), current_run_id=slow["run_id"])
    assert [r.task for r in found] == [BENCHMARKS]
    assert found[0].history_runs == 13
    assert found[0].baseline_median == pytest.approx(history[BENCHMARKS].iloc[:13].median())
    assert judge_run(slow, history).history_runs == 13


def test_stricter_policy_catches_a_smaller_slowdown():
    reports = noisy_reports(29, 15)
    history = history_from_reports(reports[:14])
    # Exactly 10 % above the median: below the default 15 %, about 2.5 MADs for this task.
    median = history[BENCHMARKS].median()
    current = run_seconds(with_seconds(reports[14], **{BENCHMARKS: median * 1.10}))
    assert detect_regressions(history, current) == []
    strict = RegressionPolicy(z_threshold=2, min_slowdown_pct=5, min_slowdown_seconds=0.2)
    assert [r.task for r in detect_regressions(history, current, strict)] == [BENCHMARKS]


# -- policy -------------------------------------------------------------------------------------


def test_policy_from_airflow_variables():
    policy = RegressionPolicy.from_variables(
        {
            "k1n_regression_history_runs": "21",
            "k1n_regression_min_history": "7",
            "k1n_regression_z_threshold": "3.5",
            "k1n_regression_min_slowdown_pct": "10",
            "k1n_regression_min_slowdown_seconds": "",  # empty: keep the default
            "unrelated": "x",
        }
    )
    assert policy == RegressionPolicy(
        history_runs=21, min_history=7, z_threshold=3.5, min_slowdown_pct=10
    )
    assert RegressionPolicy.from_variables({}) == DEFAULTS


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"k1n_regression_history_runs": "two weeks"}, "k1n_regression_history_runs: expected a"),
        ({"k1n_regression_min_history": "4.5"}, "expected a whole number, got '4.5'"),
        ({"k1n_regression_z_threshold": "-1"}, "z_threshold must be a non-negative number"),
        ({"k1n_regression_min_history": "20"}, "history_runs (14) must be at least min_history"),
    ],
)
def test_bad_policy_variables_name_the_problem(variables, message):
    with pytest.raises(ValueError) as error:
        RegressionPolicy.from_variables(variables)
    assert message in str(error.value)


# -- verdict ------------------------------------------------------------------------------------


def _history_and_run(seed: int = 31, **report_options):
    reports = noisy_reports(seed, 15, **report_options)
    return history_from_reports(reports[:14]), reports[14]


def test_clean_run_is_ok():
    history, run = _history_and_run()
    verdict = judge_run(run, history)
    assert verdict.ok and verdict.status is VerdictStatus.OK
    lines = verdict.summary().splitlines()
    assert lines[0] == f"{run['dag_id']} {run['run_id']}: OK"
    assert "no regression against the last 14 good runs (z >= 4, >= +15 %, >= +0.5 s)" in lines
    assert "quality gates: pass rate 97.0% >= 95%" in lines
    # 49.5 production minutes (the stand-ins along the critical path scaled back, the real
    # work as measured): every target and goal met.
    assert not any(line.startswith("goals missed") for line in lines)
    json.dumps(verdict.as_dict())


def test_a_missed_goal_does_not_fail_the_verdict():
    history, run = _history_and_run()
    slower = with_seconds(run, task_06_design_adr=28.0)  # a stand-in: +18 production minutes
    verdict = judge_run(slower, history, RegressionPolicy(min_slowdown_pct=1000))
    assert verdict.ok
    lines = verdict.summary().splitlines()
    assert lines[-1].startswith("goals missed (not blocking): whole workflow goal <= 60 min: ")


def test_quality_below_threshold_fails_the_verdict():
    history, run = _history_and_run(pass_rate=0.9)
    verdict = judge_run(run, history)
    assert not verdict.ok
    assert verdict.statuses == (VerdictStatus.QUALITY_FAILED,)
    assert "quality gates: pass rate 90.0% < 95%" in verdict.summary()


def test_unknown_quality_fails_the_verdict():
    history, run = _history_and_run(pass_rate=None)
    verdict = judge_run(run, history)
    assert not verdict.ok and verdict.status is VerdictStatus.QUALITY_FAILED
    assert "pass rate unknown" in verdict.summary()


def test_missed_target_fails_the_verdict():
    history, run = _history_and_run()
    # Task 6, a stand-in on the critical path, 41 s longer at 1/60: about 49.5 + 41 minutes.
    late = with_seconds(run, task_06_design_adr=51.0)
    verdict = judge_run(late, history, RegressionPolicy(min_slowdown_pct=1000))
    assert verdict.statuses == (VerdictStatus.TARGETS_MISSED,)
    (missed,) = verdict.targets_missed
    assert missed.key == "workflow_minutes_max" and 90 < missed.actual < 91
    assert (
        f"  - whole workflow <= 90 min: {missed.actual:.1f} min" in verdict.summary().splitlines()
    )


def test_failed_run_with_regression_lists_every_problem_worst_first():
    history, run = _history_and_run(seed=37)
    slow = scaled(run, BENCHMARKS, 1.5)
    slow["state"] = "failed"  # e.g. a later task failed after its retries
    verdict = judge_run(slow, history)
    assert verdict.statuses == (VerdictStatus.RUN_FAILED, VerdictStatus.REGRESSION)
    summary = verdict.summary()
    assert summary.splitlines()[0].endswith(": FAILED (run failed, regression)")
    assert "run state: failed" in summary
    assert f"  - {verdict.regressions[0].evidence}" in summary.splitlines()


def test_history_and_report_shapes_line_up():
    reports = noisy_reports(41, 3)
    history = history_from_reports(reports)
    assert list(history.index) == [r["run_id"] for r in reports]
    assert history.columns[0] == WALL_TIME
    assert set(history.columns) == set(base_seconds())
    current = run_seconds(reports[-1])
    pd.testing.assert_series_equal(
        history.iloc[-1][current.index], current, check_names=False, check_dtype=False
    )


# -- judged by the wall -------------------------------------------------------------------------

# Diamond: start -> long (20 s) and start -> short (5 s) -> end. `short` has 15 s of slack.
DIAMOND = nx.DiGraph([("start", "long"), ("start", "short"), ("long", "end"), ("short", "end")])
TYPICAL = {"start": 5.0, "long": 20.0, "short": 5.0, "end": 5.0}


def span_history(seed: int, nights: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {task: seconds * (1 + rng.normal(0, 0.02)) for task, seconds in TYPICAL.items()}
        for _ in range(nights)
    ]
    frame = pd.DataFrame(rows)
    frame[WALL_TIME] = frame["start"] + frame[["long", "short"]].max(axis=1) + frame["end"]
    return frame


def night(**slower: float) -> pd.Series:
    spans = {task: seconds * slower.get(task, 1.0) for task, seconds in TYPICAL.items()}
    spans[WALL_TIME] = spans["start"] + max(spans["long"], spans["short"]) + spans["end"]
    return pd.Series(spans)


def test_a_slowdown_on_the_critical_path_moved_the_wall_by_its_own_seconds():
    impact = detect_wall_movers(span_history(1), night(long=1.3), DIAMOND)
    # The wall's +17 % is within 8 % noise floor x the family's z: the task names the cause.
    assert [r.task for r in impact.moved] == ["long"]
    assert impact.moved[0].wall_impact_seconds == pytest.approx(6.0, abs=0.5)
    assert "moved the wall +6" in impact.moved[0].evidence
    assert impact.inside_slack == ()


def test_a_slowdown_inside_the_slack_is_named_but_does_not_alarm():
    impact = detect_wall_movers(span_history(2), night(short=2.0), DIAMOND)
    assert impact.moved == ()
    assert [r.task for r in impact.inside_slack] == ["short"]
    assert impact.inside_slack[0].wall_impact_seconds == 0.0
    assert impact.inside_slack[0].evidence.endswith("inside its slack: the wall did not move")


def test_no_task_is_taken_as_steadier_than_the_noise_floor():
    # Fourteen identical nights: without the floor any +9 % would be infinitely significant.
    history = pd.DataFrame([night()] * 14)
    assert detect_wall_movers(history, night(long=1.09), DIAMOND).moved == ()
    assert [r.task for r in detect_wall_movers(history, night(long=1.3), DIAMOND).moved] == ["long"]


def test_the_family_threshold_grows_with_the_number_of_tests():
    assert family_z(1, 0.01) == pytest.approx(2.326, abs=1e-3)
    assert family_z(30, 0.01) > family_z(5, 0.01) > family_z(1, 0.01)
    impact = detect_wall_movers(span_history(3), night(), DIAMOND)
    assert impact.z_threshold == pytest.approx(family_z(5, 0.01))  # four tasks and the wall


def test_a_verdict_judged_by_the_wall_lists_what_the_wall_absorbed():
    reports = noisy_reports(21, 15, slower={14: {BENCHMARKS: 1.5}})
    graph = nx.DiGraph([(t.task, "sink") for t in as_report(reports[0]).tasks])
    history = pd.DataFrame([task_spans(r) for r in reports[:14]]).reset_index(drop=True)
    verdict = judge_run(reports[14], history, graph=graph)
    assert verdict.by_wall and verdict.as_dict()["by_wall"] is True
    moved = {r.task for r in verdict.regressions} | {r.task for r in verdict.inside_slack}
    assert BENCHMARKS in moved
    assert "by the wall" in verdict.summary()
