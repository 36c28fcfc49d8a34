"""Dependency graphs and the critical path method (CPM) on measured durations.

Two graphs are analysed:

- `TaskGraph`: the graph of the DAG that ran, one node per Airflow task id (a mapped task is
  one node; a task group's tasks are separate nodes that know their group). It comes from the
  run's own serialized DAG version (the plugin), the REST API's task list (the CLI), or, for
  records without a DAG, from a report extension's declared dependencies. The critical path is
  computed on it: for a sequential DAG that is its chain, as it should be.
- any `networkx.DiGraph` of declared dependencies (a report extension's what-if), and
  `critical_path_lengths` over many runs on such a graph.

The forward and backward CPM passes are longest-path problems; they are solved with networkx
(Bellman-Ford on negated weights over the graph plus a virtual source and sink), not a
hand-written walk. Nothing here imports Airflow: a serialized DAG is read through the few
attributes every Airflow operator has (`task_id`, `downstream_task_ids`, `task_group`, ...).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

_SOURCE = "__source__"
_SINK = "__sink__"
# Measured durations are floats; slack below this (a microsecond) is rounding, not slack.
SLACK_TOLERANCE = 1e-6


# -- the DAG's own graph --------------------------------------------------------------------


@dataclass(frozen=True)
class TaskNode:
    """One task of a DAG as its graph knows it."""

    task_id: str
    label: str = ""
    group: str | None = None
    mapped: bool = False
    teardown: bool = False
    max_active: int | None = None  # max_active_tis_per_dag(run): how many indexes run at once


@dataclass(frozen=True)
class TaskGraph:
    """The tasks of a DAG and its edges (upstream, downstream); `source` says where from."""

    nodes: Mapping[str, TaskNode]
    edges: tuple[tuple[str, str], ...]
    source: str
    description: str = ""
    max_active_tasks: int | None = None  # the DAG's limit on task instances running at once
    _digraph: nx.DiGraph = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def digraph(self) -> nx.DiGraph:
        if self._digraph is None:
            graph = nx.DiGraph()
            graph.add_nodes_from(self.nodes)
            graph.add_edges_from(self.edges)
            object.__setattr__(self, "_digraph", graph)
        return self._digraph

    @classmethod
    def from_dag(cls, dag: Any, description: str = "") -> TaskGraph:
        """The graph of an Airflow DAG object (a serialized one in the API server)."""
        nodes: dict[str, TaskNode] = {}
        edges: list[tuple[str, str]] = []
        for task in dag.tasks:
            group = getattr(getattr(task, "task_group", None), "group_id", None)
            label = getattr(task, "task_display_name", None) or task.task_id
            nodes[task.task_id] = TaskNode(
                task_id=task.task_id,
                label=label,
                group=group or None,
                mapped=bool(getattr(task, "is_mapped", False)),
                teardown=bool(getattr(task, "is_teardown", False)),
                max_active=_smallest(
                    getattr(task, "max_active_tis_per_dag", None),
                    getattr(task, "max_active_tis_per_dagrun", None),
                ),
            )
            edges.extend((task.task_id, down) for down in sorted(task.downstream_task_ids))
        limit = _positive(getattr(dag, "max_active_tasks", None))
        return cls(nodes, tuple(edges), "dag", description, limit)

    @classmethod
    def from_rest(cls, tasks: Iterable[Mapping[str, Any]], description: str = "") -> TaskGraph:
        """The graph from the REST API v2's `GET /dags/{dag_id}/tasks` list."""
        nodes: dict[str, TaskNode] = {}
        edges: list[tuple[str, str]] = []
        for task in tasks:
            task_id = str(task["task_id"])
            group, _, _ = task_id.rpartition(".")
            nodes[task_id] = TaskNode(
                task_id=task_id,
                label=str(task.get("task_display_name") or task_id),
                group=group or None,
                mapped=bool(task.get("is_mapped")),
                max_active=_smallest(
                    task.get("max_active_tis_per_dag"), task.get("max_active_tis_per_dagrun")
                ),
            )
            edges.extend((task_id, str(down)) for down in task.get("downstream_task_ids") or ())
        return cls(nodes, tuple(edges), "dag", description)

    @classmethod
    def chain(cls, task_ids: Iterable[str], description: str) -> TaskGraph:
        """Tasks that ran strictly one after another, in that order (the old bash runner)."""
        ordered = list(dict.fromkeys(task_ids))
        nodes = {task_id: TaskNode(task_id, task_id) for task_id in ordered}
        edges = tuple(itertools.pairwise(ordered))
        return cls(nodes, edges, "execution", description)

    @classmethod
    def unknown(cls, task_ids: Iterable[str]) -> TaskGraph:
        """No dependency known: every task stands alone."""
        nodes = {task_id: TaskNode(task_id, task_id) for task_id in task_ids}
        return cls(nodes, (), "none", "no dependency graph known: every task stands alone")

    def with_tasks(self, task_ids: Iterable[str]) -> TaskGraph:
        """This graph plus, as unconnected nodes, tasks that ran but it does not know."""
        missing = [task_id for task_id in task_ids if task_id not in self.nodes]
        if not missing:
            return self
        nodes = {**self.nodes, **{t: TaskNode(t, t) for t in missing}}
        return TaskGraph(nodes, self.edges, self.source, self.description, self.max_active_tasks)


def _smallest(*values: Any) -> int | None:
    limits = [limit for value in values if (limit := _positive(value)) is not None]
    return min(limits) if limits else None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# -- CPM ----------------------------------------------------------------------------------------


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

    def slack(self, node: str) -> float:
        slack = self.latest_start[node] - self.earliest_start[node]
        return 0.0 if slack < SLACK_TOLERANCE else slack


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
