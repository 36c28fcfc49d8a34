"""The spec's declared dependencies as graphs: the graph the old system's records are analysed
on (they have no DAG), and the spec-task graph of the declared-dependency what-if."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from airflow_bottleneck.analysis.graph import TaskGraph, TaskNode
from k1n.workflow.spec import WorkflowSpec


def spec_task_graph(
    spec: WorkflowSpec, spec_ids: Mapping[str, int | None], finals: Iterable[str] = ()
) -> TaskGraph:
    """The spec's declared dependencies between the task ids that ran (`spec_ids`: task id ->
    spec id); each of `finals` depends on every task no other task depends on."""
    by_spec: dict[int, list[str]] = {}
    for task_id, spec_id in spec_ids.items():
        if spec_id is not None:
            by_spec.setdefault(spec_id, []).append(task_id)
    nodes = {task_id: TaskNode(task_id, task_id) for task_id in spec_ids}
    edges = [
        (upstream, task_id)
        for task_id, spec_id in spec_ids.items()
        if spec_id is not None and spec_id in spec.by_id
        for dep in spec.by_id[spec_id].depends_on
        for upstream in by_spec.get(dep, ())
    ]
    has_downstream = {upstream for upstream, _ in edges}
    final_set = set(finals) & set(spec_ids)
    sinks = [t for t in spec_ids if t not in has_downstream and t not in final_set]
    edges += [(sink, final) for final in sorted(final_set) for sink in sinks]
    description = "the spec's declared dependencies (no DAG graph for this source)"
    return TaskGraph(nodes, tuple(edges), "spec", description)


def dependency_graph(spec: WorkflowSpec, final_tasks: Iterable[str] = ()) -> nx.DiGraph:
    """The spec's declared dependencies, nodes named by Airflow task id (spec granularity).

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
