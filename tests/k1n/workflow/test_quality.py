"""The quality-gate verdict: each task weighs the same, and missing results are errors."""

from __future__ import annotations

import pytest

from k1n.workflow.quality import QualityGateError, evaluate_quality_gates


def gates(passed: int, total: int) -> dict:
    return {"quality_gates": {"passed": passed, "total": total}}


def test_all_passed():
    verdict = evaluate_quality_gates({1: gates(10, 10), 2: gates(3165, 3165)}, threshold=0.95)
    assert verdict.ok
    assert verdict.pass_rate == 1.0
    assert verdict.failing_tasks == []
    assert "PASS" in verdict.summary()


def test_each_task_weighs_the_same_whatever_its_gate_count():
    # Pooled gates would give (0 + 3165) / 3175 = 99.7 %; per task it is (0 + 1) / 2 = 50 %.
    verdict = evaluate_quality_gates({1: gates(0, 10), 9: gates(3165, 3165)}, threshold=0.95)
    assert verdict.pass_rate == pytest.approx(0.5)
    assert not verdict.ok
    assert verdict.failing_tasks == [1]
    assert "FAIL" in verdict.summary() and "50.0%" in verdict.summary()


def test_threshold_is_inclusive():
    results = {n: gates(10, 10) for n in range(1, 20)} | {20: gates(0, 10)}
    assert evaluate_quality_gates(results, threshold=0.95).ok  # 19/20 = 95 %
    results[19] = gates(9, 10)
    assert not evaluate_quality_gates(results, threshold=0.95).ok  # 94.5 %


def test_a_missing_result_is_an_error_not_a_pass():
    with pytest.raises(QualityGateError, match=r"no result for task\(s\) \[2\]"):
        evaluate_quality_gates({1: gates(10, 10), 2: None}, threshold=0.95)


def test_as_dict_is_json_ready():
    verdict = evaluate_quality_gates({1: gates(9, 10)}, threshold=0.95).as_dict()
    assert verdict["pass_rate"] == 0.9
    assert verdict["per_task"] == {"1": [9, 10]}
    assert verdict["ok"] is False
