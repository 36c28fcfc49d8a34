"""The schedule simulator against hand-computed schedules, Airflow's own weight rules and an
independent brute force; the shipped rule against every rule it starts from."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pendulum
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.task.priority_strategy import validate_and_load_priority_weight_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_bottleneck import scheduling

DIAMOND = {"a": ["b", "c", "d"], "b": ["e"], "c": ["e"], "d": [], "e": []}


def test_a_hand_computed_schedule_under_two_slots() -> None:
    seconds = {"a": 1, "b": 4, "c": 2, "d": 3, "e": 1}
    weights = {"a": 5, "b": 4, "c": 3, "d": 1, "e": 2}
    schedule = scheduling.list_schedule(DIAMOND, seconds, 2, weights, handoff_seconds=0.5)
    # a 0-1, seen at 1.5: b and c start (both beat d); c ends 3.5, seen at 4.0: d takes its
    # slot until 7.0; b ends 5.5, seen at 6.0: e (now ready) starts on b's slot, ends 7.0.
    assert schedule.starts == {"a": 0.0, "b": 1.5, "c": 1.5, "d": 4.0, "e": 6.0}
    assert schedule.ends == {"a": 1.0, "b": 5.5, "c": 3.5, "d": 7.0, "e": 7.0}
    assert schedule.makespan == 7.0


def test_a_freed_slot_goes_to_the_downstream_it_made_ready() -> None:
    # Airflow sees x's end and y's readiness in one loop: y (weight 3) beats z (weight 1),
    # although z was ready first.
    graph = {"x": ["y"], "y": [], "z": []}
    schedule = scheduling.list_schedule(
        graph, {"x": 1, "y": 1, "z": 1}, 1, {"x": 4, "y": 3, "z": 1}, handoff_seconds=0.2
    )
    assert schedule.starts == pytest.approx({"x": 0.0, "y": 1.2, "z": 2.4})


def test_equal_weights_start_in_topological_order() -> None:
    schedule = scheduling.list_schedule(
        {"x": [], "y": [], "z": []}, {"x": 1, "y": 1, "z": 1}, 1, {}
    )
    assert schedule.starts == {"x": 0.0, "y": 1.0, "z": 2.0}


def test_slots_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1, got 0"):
        scheduling.list_schedule(DIAMOND, {}, 0, {})


@pytest.mark.parametrize("rule", ["downstream", "upstream"])
def test_the_count_rules_equal_airflows_own(rule: str) -> None:
    with DAG("weights", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC")) as dag:
        tasks = {name: EmptyOperator(task_id=name, weight_rule=rule) for name in DIAMOND}
        for name, children in DIAMOND.items():
            for child in children:
                tasks[name] >> tasks[child]
    strategy = validate_and_load_priority_weight_strategy(rule)
    airflow = {
        name: strategy.get_weight(SimpleNamespace(task=dag.task_dict[name])) for name in DIAMOND
    }
    assert scheduling.RULES[rule](DIAMOND, {}) == airflow


def test_the_remaining_path_and_the_work_below() -> None:
    seconds = {"a": 1, "b": 4, "c": 2, "d": 3, "e": 1}
    assert scheduling.remaining_path(DIAMOND, seconds) == {
        "a": 6.0,
        "b": 5.0,
        "c": 3.0,
        "d": 3.0,
        "e": 1.0,
    }
    assert scheduling.downstream_work(DIAMOND, seconds)["a"] == 11.0


def brute_force_optimum(downstream, seconds, slots) -> float:
    """Every precedence-respecting order, each task put at the earliest time its upstreams
    have ended and fewer than `slots` tasks run throughout it (the serial schedule generation
    scheme: the best of these schedules is optimal)."""
    parents = {task: [p for p, kids in downstream.items() if task in kids] for task in downstream}
    best = float("inf")
    for order in itertools.permutations(downstream):
        position = {task: index for index, task in enumerate(order)}
        if any(position[p] > position[t] for t in order for p in parents[t]):
            continue
        placed: dict[str, tuple[float, float]] = {}
        for task in order:
            ready = max((placed[p][1] for p in parents[task]), default=0.0)
            for start in sorted({ready, *(end for _, end in placed.values() if end > ready)}):
                end = start + seconds[task]
                points = {start, *(s for s, _ in placed.values() if start < s < end)}
                if all(sum(s <= p < e for s, e in placed.values()) < slots for p in points):
                    placed[task] = (start, end)
                    break
        best = min(best, max(end for _, end in placed.values()))
    return best


@st.composite
def small_dags(draw):
    count = draw(st.integers(2, 6))
    names = [f"t{index}" for index in range(count)]
    downstream = {
        name: [
            names[later]
            for later in range(index + 1, count)
            if draw(st.booleans()) and draw(st.booleans())
        ]
        for index, name in enumerate(names)
    }
    seconds = {name: float(draw(st.integers(1, 9))) for name in names}
    return downstream, seconds, draw(st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(small_dags())
def test_the_search_finds_the_brute_force_optimum(dag) -> None:
    downstream, seconds, slots = dag
    optimum = scheduling.optimal_makespan(downstream, seconds, slots)
    assert optimum == pytest.approx(brute_force_optimum(downstream, seconds, slots))
    assert optimum >= scheduling.lower_bound(downstream, seconds, slots) - 1e-9


@st.composite
def larger_dags(draw):
    count = draw(st.integers(8, 30))
    names = [f"t{index}" for index in range(count)]
    downstream = {
        name: [names[later] for later in range(index + 1, count) if draw(st.integers(0, 9)) < 2]
        for index, name in enumerate(names)
    }
    seconds = {name: draw(st.floats(0.1, 100.0)) for name in names}
    return downstream, seconds, draw(st.integers(1, 8)), draw(st.floats(0.0, 2.0))


@settings(max_examples=40, deadline=None)
@given(larger_dags())
def test_the_shipped_rule_is_never_behind_the_rules_it_starts_from(dag) -> None:
    downstream, seconds, slots, handoff = dag
    shipped = scheduling.rule_makespan(scheduling.SIMULATED, downstream, seconds, slots, handoff)
    for rule in scheduling.CANDIDATE_RULES:
        assert shipped <= scheduling.rule_makespan(rule, downstream, seconds, slots, handoff) + 1e-9
    assert shipped >= scheduling.lower_bound(downstream, seconds, slots) - 1e-9


def test_a_search_out_of_reach_says_so() -> None:
    wide = {f"t{index}": [] for index in range(12)}
    seconds = {task: 1.0 + index / 7 for index, task in enumerate(wide)}
    assert scheduling.optimal_makespan(wide, seconds, 5, max_nodes=10) is None


def test_the_weights_rank_every_task_once() -> None:
    weights = scheduling.simulated_weights(DIAMOND, {"a": 1, "b": 4, "c": 2, "d": 3}, 2)
    assert sorted(weights.values()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert weights["a"] == 5.0  # the only root starts first
