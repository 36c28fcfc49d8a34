"""Criticality across runs against an independent recomputation with networkx."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from airflow_bottleneck.analysis.criticality import criticality
from tests.airflow_bottleneck.analysis.helpers import at, dag_graph, instance, table


def random_runs(seed: int, tasks: int = 12, runs: int = 8):
    """A random layered DAG and `runs` runs of it: each task starts a random hand-off after
    its last upstream ends and takes a random, skewed time."""
    rng = random.Random(seed)
    names = [f"t{index:02d}" for index in range(tasks)]
    edges = [
        (names[up], names[down])
        for down in range(1, tasks)
        for up in rng.sample(range(down), k=min(down, rng.randint(1, 2)))
    ]
    graph = dag_graph(*edges, tasks=tuple(names))
    rows, bounds, durations = [], [], []
    for run in range(runs):
        run_id, origin, ends, seconds = f"r{run}", run * 10_000.0, {}, {}
        for name in names:
            ready = max((ends[up] for up, down in edges if down == name), default=origin)
            start = ready + rng.uniform(0.1, 2.0)
            seconds[name] = rng.lognormvariate(2.0, 0.8)
            ends[name] = start + seconds[name]
            rows.append(instance(name, start, ends[name], run_id=run_id))
        bounds.append({"run_id": run_id, "start": at(origin), "end": at(max(ends.values()) + 1)})
        durations.append(seconds)
    return graph, edges, table(*rows), pd.DataFrame(bounds), durations


def critical_by_networkx(edges, seconds: dict[str, float]) -> set[str]:
    """Tasks on some longest path: lengthening one by 1 s lengthens networkx's longest path
    by exactly 1 s (each task split into in -> out, weighted by its seconds)."""

    def longest(weights: dict[str, float]) -> float:
        graph = nx.DiGraph()
        for task, value in weights.items():
            graph.add_edge(("in", task), ("out", task), weight=value)
        graph.add_edges_from((("out", u), ("in", v), {"weight": 0.0}) for u, v in edges)
        return nx.dag_longest_path_length(graph, weight="weight")

    base = longest(seconds)
    return {
        task
        for task in seconds
        if abs(longest({**seconds, task: seconds[task] + 1.0}) - base - 1.0) < 1e-6
    }


@pytest.mark.parametrize("seed", range(6))
def test_criticality_equals_an_independent_recomputation_per_run(seed: int) -> None:
    graph, edges, instances, runs, durations = random_runs(seed)
    result = criticality(instances, runs, graph, dag_id="dag")
    expected = {task: 0 for task in durations[0]}
    for seconds in durations:
        for task in critical_by_networkx(edges, seconds):
            expected[task] += 1
    assert {task.task: task.critical_runs for task in result.tasks} == expected
    for task in result.tasks:
        spans = [seconds[task.task] for seconds in durations]
        assert task.durations.median == pytest.approx(np.median(spans), abs=1e-3)
        assert task.criticality == pytest.approx(expected[task.task] / len(durations), abs=1e-4)
    # The decided seconds follow one path per run: together never more than the mean wall.
    assert sum(task.decided_seconds for task in result.tasks) <= result.mean_wall_seconds
    # Ranked by what they decide.
    decided = [task.decided_seconds for task in result.tasks]
    assert decided == sorted(decided, reverse=True)


def test_a_task_that_always_has_slack_is_never_critical() -> None:
    graph = dag_graph(("a", "long"), ("a", "short"), ("long", "z"), ("short", "z"))
    rows, bounds = [], []
    for run in range(4):
        origin, run_id = run * 1000.0, f"r{run}"
        rows += [
            instance("a", origin, origin + 5, run_id=run_id),
            instance("long", origin + 6, origin + 36, run_id=run_id),
            instance("short", origin + 6, origin + 16, run_id=run_id),
            instance("z", origin + 37, origin + 40, run_id=run_id),
        ]
        bounds.append({"run_id": run_id, "start": at(origin), "end": at(origin + 40)})
    result = criticality(table(*rows), pd.DataFrame(bounds), graph, dag_id="dag")
    by_task = {task.task: task for task in result.tasks}
    assert by_task["short"].criticality == 0.0
    assert by_task["short"].median_slack_seconds == pytest.approx(20.0)
    assert by_task["long"].criticality == 1.0 and by_task["long"].decided_seconds == 30.0
    assert result.tasks[0].task == "long"
    assert by_task["long"].decided_share == pytest.approx(30 / 40)
