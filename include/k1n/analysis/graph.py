"""The declared dependency graph and the critical path method (CPM) on measured durations.

Nodes are named by their Airflow task id at the DAG's top level: a spec task is its
`TaskSpec.airflow_task_id` (`task_08_code_generation`, which is also Task 8's task-group id in the
optimized DAG), so one node stands for a whole group. Edges are the spec's `depends_on`, never
the order a run happened to use: in the baseline DAG every task waits for the previous one, and
taking that order as dependencies would make every task critical and hide every opportunity.

Final tasks outside the spec (`check_quality_gates`, which reads every task's result) can be
added as nodes that depend on every spec sink, so the critical path reaches the end of the run.

The forward and backward CPM passes are longest-path problems; they are solved with networkx
(Bellman-Ford on negated weights over the graph plus a virtual source and sink), not a
hand-written walk. `critical_path_lengths` is the vectorized variant for many runs at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from include.k1n.workflow.spec import WorkflowSpec

_SOURCE = "__source__"
_SINK = "__sink__"
# Measured durations are floats; slack below this (a microsecond) is rounding, not slack.
SLACK_TOLERANCE = 1e-6


def dependency_graph(spec: WorkflowSpec, final_tasks: Iterable[str] = ()) -> nx.DiGraph:
    """The spec's declared dependencies, nodes named by Airflow task id.

    Node attributes: `spec_id` (None for final tasks) and `name`. Each of `final_tasks` becomes a
    node depending on every task nothing else depends on.
    """
    graph = nx.DiGraph()
    for task in spec.tasks:
        graph.add_node(task.airflow_task_id, spec_id=task.id, name=task.name)
    for task in spec.tasks:
        for dependency in task.depends_on:
            graph.add_edge(spec.by_id[dependency].airflow_task_id, task.airflow_task_id)
    sinks = [node for node in graph if graph.out_degree(node) == 0]
    for final in final_tasks:
        graph.add_node(final, spec_id=None, name=final)
        graph.add_edges_from((sink, final) for sink in sinks)
    return graph


@dataclass(frozen=True)
class Schedule:
    """A CPM schedule: every node starts as early as its dependencies allow.

    Times are seconds from the schedule's start. `latest_start` is the latest a node may start
    without delaying the end; `slack = latest_start - earliest_start` is 0 on the critical path.
    """

    durations: Mapping[str, float]
    earliest_start: Mapping[str, float]
    latest_start: Mapping[str, float]
    length: float
    path: tuple[str, ...]

    def earliest_finish(self, node: str) -> float:
        return self.earliest_start[node] + self.durations[node]

    def slack(self, node: str) -> float:
        slack = self.latest_start[node] - self.earliest_start[node]
        return 0.0 if slack < SLACK_TOLERANCE else slack

    def is_critical(self, node: str) -> bool:
        return self.slack(node) == 0.0


def cpm_schedule(graph: nx.DiGraph, durations: Mapping[str, float]) -> Schedule:
    """Earliest/latest starts, slack and one critical path for the given node durations.

    Nodes missing from `durations` take 0 s. With several equally long paths, the one networkx's
    Bellman-Ford settles on is reported; all of their nodes have zero slack.
    """
    seconds = {node: float(durations.get(node, 0.0)) for node in graph}
    if not seconds:
        return Schedule({}, {}, {}, 0.0, ())
    # Longest paths = shortest paths on negated weights (the graph is acyclic: no negative cycle).
    # An edge u -> v costs -duration(u): reaching v means u has finished.
    weighted = nx.DiGraph()
    weighted.add_weighted_edges_from((u, v, -seconds[u]) for u, v in graph.edges)
    weighted.add_weighted_edges_from((_SOURCE, node, 0.0) for node in graph)
    weighted.add_weighted_edges_from((node, _SINK, -seconds[node]) for node in graph)

    from_source = nx.single_source_bellman_ford_path_length(weighted, _SOURCE)
    length = 0.0 - from_source[_SINK]
    to_sink = nx.single_source_bellman_ford_path_length(weighted.reverse(copy=False), _SINK)
    earliest = {node: 0.0 - from_source[node] for node in graph}  # not -x: no "-0.0" in JSON
    # -to_sink[node] is the longest chain from node's start to the end, node included.
    latest = {node: length + to_sink[node] for node in graph}
    path = nx.bellman_ford_path(weighted, _SOURCE, _SINK)[1:-1]
    return Schedule(seconds, earliest, latest, length, tuple(path))


def independent_pairs(graph: nx.DiGraph, nodes: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of `nodes` with no dependency path between them, in either direction."""
    closure = nx.transitive_closure_dag(graph)
    chosen = [node for node in nodes if node in graph]
    return [
        (a, b)
        for index, a in enumerate(chosen)
        for b in chosen[index + 1 :]
        if not closure.has_edge(a, b) and not closure.has_edge(b, a)
    ]


def critical_path_lengths(graph: nx.DiGraph, durations: pd.DataFrame) -> pd.Series:
    """CPM length of many runs at once: one row per run, one column per node (seconds).

    The loop runs over the graph's nodes in topological order (about 23), each step a numpy
    maximum over every run, so 45 000 runs cost the same 23 vector operations as one.
    Missing columns or NaN count as 0 s.
    """
    finish: dict[str, np.ndarray] = {}
    zeros = np.zeros(len(durations))
    for node in nx.topological_sort(graph):
        own = durations[node].fillna(0.0).to_numpy() if node in durations else zeros
        ready = zeros
        for predecessor in graph.predecessors(node):
            ready = np.maximum(ready, finish[predecessor])
        finish[node] = ready + own
    longest = np.max(np.vstack(list(finish.values())), axis=0) if finish else zeros
    return pd.Series(longest, index=durations.index, name="critical_path_seconds")
