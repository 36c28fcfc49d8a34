"""The declared dependency graph and CPM, single-run and vectorized over many runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.k1n.analysis import (
    cpm_schedule,
    critical_path_lengths,
    dependency_graph,
    independent_pairs,
)
from include.k1n.workflow.spec import load_spec
from tests.include.k1n.analysis.helpers import A, B, C, D, diamond_spec


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
    assert [n for n in (A, B, C, D) if schedule.is_critical(n)] == [A, B, D]


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
