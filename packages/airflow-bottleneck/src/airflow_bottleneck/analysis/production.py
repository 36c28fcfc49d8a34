"""What a run at a time scale would have taken in production.

A project that compresses time runs *stand-in* tasks that wait their production seconds ×
the run's time scale; the rest of its work is real and does not shrink. So only a stand-in's
work (its own code start -> end) is scaled back (÷ scale); real work, start-ups, hand-offs,
queueing and the run's head and tail stay at their measured seconds. The production wall is
the run's own schedule replayed with those durations, in the DAG's graph: each task starts
its measured delay after the last of its upstreams ends (a root: its measured offset from
the run's start), so the order, the hand-offs and the waits the run saw are kept, then the
measured tail. The chain of binding upstreams that ends last is the production critical path;
its hand-offs, start-ups and work, the head and the tail add up to the production wall.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import networkx as nx
import pandas as pd

from airflow_bottleneck.analysis.graph import TaskGraph


@dataclass(frozen=True)
class ProductionTask:
    """One task in the replay: offsets from the run's start, production seconds."""

    start: float
    end: float
    handoff: float  # its measured delay after its binding upstream ended (a root: the head)
    startup: float
    work: float
    stand_in: bool
    binding: str | None  # the upstream whose end it waited for last


@dataclass(frozen=True)
class ProductionReplay:
    tasks: Mapping[str, ProductionTask]
    wall_seconds: float
    tail_seconds: float
    path: tuple[str, ...]  # first to last

    @property
    def total_task_seconds(self) -> float:
        return sum(task.startup + task.work for task in self.tasks.values())


def replay_production(
    graph: TaskGraph,
    spans: pd.DataFrame,
    stand_ins: Collection[str],
    scale: float,
    run_start: float,
    run_end: float,
) -> ProductionReplay:
    """`spans`: per task id, `start`, `code_start` (NaN: not recorded) and `end` in epoch
    seconds; tasks without both a start and an end did not run and are left out."""
    ran = spans[spans["start"].notna() & spans["end"].notna()]
    measured = {
        str(task_id): (float(row.start), _or_none(row.code_start), float(row.end))
        for task_id, row in ran.iterrows()
    }
    digraph: nx.DiGraph = graph.digraph.copy()
    digraph.add_nodes_from(measured)
    # Start order breaks the graph's ties: the replay is deterministic.
    order = nx.lexicographical_topological_sort(
        digraph, key=lambda task: (measured.get(task, (float("inf"),))[0], task)
    )
    tasks: dict[str, ProductionTask] = {}
    # A task that did not run (a mapped task over nothing is skipped) passes its upstreams'
    # ends on, measured and replayed, so its downstreams still wait for them.
    passed: dict[str, tuple[float, float, str | None]] = {}  # measured end, replay end, binding

    def ends_of(task_id: str) -> tuple[float, float, str | None]:
        if task_id in tasks:
            return measured[task_id][2] - run_start, tasks[task_id].end, task_id
        return passed[task_id]

    for task_id in order:
        upstream_ends = [ends_of(up) for up in digraph.predecessors(task_id)]
        anchor = max((end for end, _, _ in upstream_ends), default=0.0)
        replay_anchor, binding = max(
            ((replay, source) for _, replay, source in upstream_ends),
            key=lambda item: (item[0], item[1] or ""),
            default=(0.0, None),
        )
        if task_id not in measured:
            passed[task_id] = (anchor, replay_anchor, binding)
            continue
        start, code_start, end = measured[task_id]
        handoff = max(0.0, start - run_start - anchor)
        stand_in = task_id in stand_ins
        startup = 0.0 if code_start is None else max(0.0, code_start - start)
        work = max(0.0, end - start - startup)
        if stand_in:
            work /= scale
        replay_start = replay_anchor + handoff
        tasks[task_id] = ProductionTask(
            start=replay_start,
            end=replay_start + startup + work,
            handoff=handoff,
            startup=startup,
            work=work,
            stand_in=stand_in,
            binding=binding,
        )
    tail = max(0.0, run_end - max(end for _, _, end in measured.values())) if measured else 0.0
    if not tasks:
        return ProductionReplay({}, run_end - run_start, tail, ())
    last = max(tasks, key=lambda task_id: (tasks[task_id].end, task_id))
    path = [last]
    while (binding := tasks[path[-1]].binding) is not None:
        path.append(binding)
    return ProductionReplay(
        tasks=tasks,
        wall_seconds=tasks[last].end + tail,
        tail_seconds=tail,
        path=tuple(reversed(path)),
    )


def _or_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
