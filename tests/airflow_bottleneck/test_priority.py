"""The priority strategies' rankings on synthetic histories (no timing asserted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow._shared.module_loading import qualname

from airflow_bottleneck import priority, scheduling
from airflow_bottleneck.priority import (
    CRITICAL_PATH_PRIORITY,
    SIMULATED_SCHEDULE_PRIORITY,
    CriticalPathPriority,
    SimulatedSchedulePriority,
    median_spans,
    remaining_path_weights,
)
from k1n.dag_builders.workflow import build_optimized_dag
from k1n.workflow.spec import load_spec

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_dags_name_the_registered_class() -> None:
    assert qualname(CriticalPathPriority) == CRITICAL_PATH_PRIORITY


def test_remaining_path_on_a_diamond() -> None:
    downstream = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    weights = remaining_path_weights(downstream, {"a": 1, "b": 30, "c": 20, "d": 5})
    assert weights == {"a": 36_000, "b": 35_000, "c": 25_000, "d": 5_000}


def test_unknown_tasks_weigh_nothing_and_every_weight_is_positive() -> None:
    weights = remaining_path_weights({"a": ["b"], "b": []}, {"a": 2.5})
    assert weights == {"a": 2_500, "b": 1}


def test_a_long_chain_needs_no_recursion() -> None:
    chain = {f"t{i}": [f"t{i + 1}"] for i in range(5000)} | {"t5000": []}
    weights = remaining_path_weights(chain, dict.fromkeys(chain, 0.001))
    assert weights["t0"] == 5001 and weights["t5000"] == 1


def test_median_span_over_runs_of_first_start_to_last_end() -> None:
    rows = [
        ("r1", "a", T0, T0 + timedelta(seconds=10)),
        ("r2", "a", T0, T0 + timedelta(seconds=30)),
        ("r3", "a", T0, T0 + timedelta(seconds=20)),
        ("r1", "b", T0, None),  # never ended: no span
    ]
    assert median_spans(rows) == {"a": 20.0}


@pytest.fixture
def optimized():
    return build_optimized_dag()


@pytest.fixture
def spec():
    return load_spec()


def weight(dag, task_id: str) -> int:
    ti = SimpleNamespace(task=dag.task_dict[task_id])
    return CriticalPathPriority().get_weight(ti)


@pytest.mark.parametrize("strategy", [CriticalPathPriority, SimulatedSchedulePriority])
def test_without_history_the_static_profile_applies(optimized, monkeypatch, strategy) -> None:
    monkeypatch.setattr(priority, "_read_history", lambda dag_id: {})
    priority.history.clear()
    for task_id in ("task_01_security_audit", "task_13_performance_benchmarks"):
        task = optimized.task_dict[task_id]
        assert strategy().get_weight(SimpleNamespace(task=task)) == task.priority_weight


def test_measured_durations_reorder_what_the_profile_ranked(optimized, monkeypatch) -> None:
    # After Task 8 the profile ranks Task 10's remaining chain above Task 13's; measured,
    # Task 13 takes 40 s and Task 10 8 s: the ranking follows what the runs took.
    static_10 = optimized.task_dict["task_10_static_analysis"].priority_weight
    static_13 = optimized.task_dict["task_13_performance_benchmarks"].priority_weight
    assert static_10 > static_13
    measured = {task_id: 1.0 for task_id in optimized.task_dict}
    measured |= {"task_10_static_analysis": 8.0, "task_13_performance_benchmarks": 40.0}
    monkeypatch.setattr(priority, "_read_history", lambda dag_id: measured)
    priority.history.clear()
    assert weight(optimized, "task_13_performance_benchmarks") > weight(
        optimized, "task_10_static_analysis"
    )
    # Upstream tasks carry the longest chain below them.
    assert weight(optimized, "task_01_security_audit") > weight(
        optimized, "task_10_static_analysis"
    )


def test_history_is_read_once_per_dag_within_the_cache_time(optimized, monkeypatch) -> None:
    reads: list[str] = []
    monkeypatch.setattr(priority, "_read_history", lambda dag_id: reads.append(dag_id) or {"x": 1})
    priority.history.clear()
    for task_id in list(optimized.task_dict)[:5]:
        weight(optimized, task_id)
    assert reads == [optimized.dag_id]


def test_the_dag_weights_are_computed_once_per_history_read(optimized, monkeypatch) -> None:
    # The scheduler asks once per task instance (every map index too).
    monkeypatch.setattr(priority, "_read_history", lambda dag_id: {"task_01_security_audit": 2.0})
    computed = []
    real = priority.remaining_path_weights
    monkeypatch.setattr(
        priority, "remaining_path_weights", lambda *args: computed.append(1) or real(*args)
    )
    priority.history.clear()
    weights = {task_id: weight(optimized, task_id) for task_id in optimized.task_dict}
    assert len(computed) == 1
    assert weights["task_01_security_audit"] == 2000


def test_the_dags_name_the_shipped_class(optimized, spec) -> None:
    assert qualname(SimulatedSchedulePriority) == SIMULATED_SCHEDULE_PRIORITY
    task_ids = [t.airflow_task_id for t in spec.tasks if t.id != 8]
    rules = {optimized.task_dict[task_id].weight_rule for task_id in task_ids}
    assert rules == {SIMULATED_SCHEDULE_PRIORITY}


def test_the_slots_are_the_parallelism_at_most_the_dags_limit(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "3")
    assert priority._slots(SimpleNamespace(max_active_tasks=16)) == 3
    assert priority._slots(SimpleNamespace(max_active_tasks=2)) == 2


def test_the_shipped_rule_finds_the_k1n_profiles_best_schedule_where_the_path_does_not(
    optimized, spec, monkeypatch
) -> None:
    # Measured spans equal to the profile (Task 8's group as its first step), two slots: the
    # remaining path loses 60 s to the best schedule, which the shipped rule reaches.
    measured = {t.airflow_task_id: t.seconds for t in spec.tasks if t.id != 8}
    parse_id = next(task_id for task_id in optimized.task_dict if "parse_library" in task_id)
    measured[parse_id] = spec.by_id[8].seconds
    monkeypatch.setattr(priority, "_read_history", lambda dag_id: measured)
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "2")
    priority.history.clear()
    downstream = {t: list(task.downstream_task_ids) for t, task in optimized.task_dict.items()}

    def wall(strategy) -> float:
        weights = {
            task_id: strategy.get_weight(SimpleNamespace(task=task))
            for task_id, task in optimized.task_dict.items()
        }
        return scheduling.list_schedule(downstream, measured, 2, weights).makespan

    optimum = scheduling.optimal_makespan(downstream, measured, 2, max_nodes=2_000_000)
    assert wall(CriticalPathPriority()) == optimum + 60
    assert wall(SimulatedSchedulePriority()) == optimum == 5400
