"""The declared dependency graph and CPM, single-run and vectorized over many runs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_bottleneck.analysis import TaskGraph, cpm_schedule, critical_path_lengths
from airflow_bottleneck.analysis.graph import independent_pairs
from k1n.reporting.spec_graph import dependency_graph
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    A,
    B,
    C,
    D,
    analyze,
    dag_graph,
    diamond_spec,
    instance,
    longest_path_by_networkx,
)


def test_graph_uses_declared_dependencies_and_airflow_names() -> None:
    graph = dependency_graph(diamond_spec(), ["check_quality_gates"])
    assert set(graph.edges) == {
        (A, B),
        (A, C),
        (B, D),
        (C, D),
        (D, "check_quality_gates"),
    }
    assert graph.nodes[B]["spec_id"] == 2
    assert graph.nodes["check_quality_gates"]["spec_id"] is None


def test_cpm_on_a_diamond() -> None:
    schedule = cpm_schedule(dependency_graph(diamond_spec()), {A: 10, B: 30, C: 20, D: 5})
    assert schedule.path == (A, B, D)
    assert schedule.length == 45
    assert schedule.earliest_start == {A: 0, B: 10, C: 10, D: 40}
    assert schedule.latest_start == {A: 0, B: 10, C: 20, D: 40}
    assert schedule.slack(C) == 10
    assert [n for n in (A, B, C, D) if schedule.slack(n) == 0.0] == [A, B, D]


def test_cpm_of_the_project_spec_matches_its_profiled_critical_path() -> None:
    spec = load_spec()
    graph = dependency_graph(spec)
    schedule = cpm_schedule(graph, {t.airflow_task_id: t.seconds for t in spec.tasks})
    assert schedule.length == pytest.approx(spec.critical_path_seconds)
    assert all(schedule.slack(node) == 0 for node in schedule.path)
    for node in graph:  # slack >= 0 everywhere, and the path is a chain of declared edges
        assert schedule.slack(node) >= 0
    assert all(graph.has_edge(u, v) for u, v in zip(schedule.path, schedule.path[1:], strict=False))


def test_independent_pairs_of_a_diamond() -> None:
    assert independent_pairs(dependency_graph(diamond_spec()), [A, B, C, D]) == [(B, C)]


def test_vectorized_lengths_equal_one_cpm_per_run() -> None:
    spec = load_spec()
    graph = dependency_graph(spec, ["check_quality_gates"])
    rng = np.random.default_rng(7)
    durations = pd.DataFrame(rng.uniform(0, 100, size=(50, len(graph))), columns=list(graph))
    durations.iloc[0, 3] = np.nan  # a node that did not run counts as 0 s
    lengths = critical_path_lengths(graph, durations)
    for row in range(len(durations)):
        expected = cpm_schedule(graph, durations.iloc[row].fillna(0).to_dict()).length
        assert lengths.iloc[row] == pytest.approx(expected)


@st.composite
def random_runs(draw):
    """A random DAG (edges only from lower to higher index) and a run of it: each task starts
    when its last upstream ended plus a random hand-off."""
    size = draw(st.integers(1, 12))
    names = [f"t{index:02d}" for index in range(size)]
    edges = [
        (names[i], names[j])
        for j in range(size)
        for i in range(j)
        if draw(st.booleans()) and draw(st.booleans())
    ]
    seconds = {name: draw(st.floats(0.1, 100)) for name in names}
    ends: dict[str, float] = {}
    rows = []
    for name in names:
        ready = max([ends[u] for u, v in edges if v == name], default=0.0)
        start = ready + draw(st.floats(0, 3))
        ends[name] = start + seconds[name]
        rows.append(instance(name, start, ends[name]))
    return edges, names, seconds, rows


@settings(max_examples=60, deadline=None)
@given(random_runs())
def test_critical_path_is_the_longest_path_networkx_finds(run) -> None:
    edges, names, seconds, rows = run
    report = analyze(rows, diamond_spec(), dag_graph(*edges, tasks=tuple(names)), uses_spec=False)
    length, _ = longest_path_by_networkx(edges, seconds)
    assert report.critical_path.seconds == pytest.approx(length, abs=2e-3)
    on_path = sum(seconds[task] for task in report.critical_path.tasks)
    assert on_path == pytest.approx(length, abs=2e-3)
    path = report.critical_path.tasks
    assert all((u, v) in set(edges) for u, v in itertools.pairwise(path))
    split = report.overhead
    parts = (
        split.work_seconds
        + split.startup_seconds
        + split.handoff_seconds
        + split.waiting_seconds
        + split.residual_seconds
    )
    assert parts == pytest.approx(report.wall_seconds, rel=0.01)
    assert abs(split.residual_seconds) <= 0.01 * report.wall_seconds


def test_a_graph_from_the_rest_task_list() -> None:
    graph = TaskGraph.from_rest(
        [
            {"task_id": "extract", "downstream_task_ids": ["group.load"]},
            {"task_id": "group.load", "downstream_task_ids": [], "is_mapped": True},
        ]
    )
    assert graph.edges == (("extract", "group.load"),)
    assert graph.nodes["group.load"].group == "group"
    assert graph.nodes["group.load"].mapped
