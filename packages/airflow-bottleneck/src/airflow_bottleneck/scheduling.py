"""What a DAG's wall would be under k slots and a priority rule, and the best any rule could do.

`list_schedule` replays how Airflow's scheduler fills slots: whenever a slot is free, the ready
task instance with the highest priority weight is queued first (ties in the DAG's topological
order, as the scheduler's query leaves them to the database). The scheduler sees a task's end a
hand-off later: only then is its slot free again and are its downstreams ready (both in the
same scheduler loop, so a freed slot goes to the best task then ready, its own downstream
included). `optimal_makespan` searches every schedule that starts tasks only
at 0 or at a completion (some such schedule is optimal) with branch and bound, within a node
budget: it says `None` where the search is out of reach, never a guess.

The weight rules are Airflow's (`downstream`, `upstream`: a count of tasks with weight 1), the
remaining path of durations (with or without ties broken by the work below a task), and the
one this plugin ships, `simulated_weights`: the order whose replay ends first. Pure: no Airflow
import, so the benchmark and the tests run it on thousands of DAGs.
"""

from __future__ import annotations

import graphlib
import heapq
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

# Weights are compared as Python ints here; `priority.py` fits them in the 32-bit column.
Downstream = Mapping[str, Iterable[str]]
WeightRule = Callable[[Downstream, Mapping[str, float]], dict[str, float]]


@dataclass(frozen=True)
class Schedule:
    """When each task started and ended; the makespan is the last end."""

    starts: dict[str, float]
    ends: dict[str, float]

    @property
    def makespan(self) -> float:
        return max(self.ends.values(), default=0.0)


def _children(downstream: Downstream) -> dict[str, tuple[str, ...]]:
    return {task: tuple(c for c in downstream[task] if c in downstream) for task in downstream}


def _parents(children: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {task: [] for task in children}
    for task, kids in children.items():
        for kid in kids:
            parents[kid].append(task)
    return parents


def topological_order(downstream: Downstream) -> tuple[str, ...]:
    """Upstream before downstream; among tasks free at once, in the mapping's order."""
    children = _children(downstream)
    sorter = graphlib.TopologicalSorter({task: () for task in children})
    for task, kids in children.items():
        for kid in kids:
            sorter.add(kid, task)
    return tuple(sorter.static_order())


def _descendants(downstream: Downstream) -> dict[str, frozenset[str]]:
    children = _children(downstream)
    below: dict[str, frozenset[str]] = {}
    for task in reversed(topological_order(downstream)):
        below[task] = frozenset(children[task]).union(*(below[c] for c in children[task]))
    return below


def downstream_weights(downstream: Downstream, seconds: Mapping[str, float]) -> dict[str, float]:
    """Airflow's `downstream` rule with every weight 1: the task and all below it."""
    return {task: 1.0 + len(below) for task, below in _descendants(downstream).items()}


def upstream_weights(downstream: Downstream, seconds: Mapping[str, float]) -> dict[str, float]:
    """Airflow's `upstream` rule with every weight 1: the task and all above it."""
    above: dict[str, int] = {task: 0 for task in downstream}
    for below in _descendants(downstream).values():
        for task in below:
            above[task] += 1
    return {task: 1.0 + count for task, count in above.items()}


def remaining_path(downstream: Downstream, seconds: Mapping[str, float]) -> dict[str, float]:
    """Per task: the longest chain of durations from it to a sink, itself included."""
    children = _children(downstream)
    remaining: dict[str, float] = {}
    for task in reversed(topological_order(downstream)):
        tail = max((remaining[c] for c in children[task]), default=0.0)
        remaining[task] = max(0.0, float(seconds.get(task, 0.0))) + tail
    return remaining


def downstream_work(downstream: Downstream, seconds: Mapping[str, float]) -> dict[str, float]:
    """Per task: its duration plus every task's below it (the work it unlocks)."""
    return {
        task: max(0.0, float(seconds.get(task, 0.0)))
        + sum(max(0.0, float(seconds.get(t, 0.0))) for t in below)
        for task, below in _descendants(downstream).items()
    }


def remaining_path_then_work(
    downstream: Downstream, seconds: Mapping[str, float]
) -> dict[str, float]:
    """The remaining path; among tasks whose paths are equal, the one unlocking more work
    first. A float rank: equal paths differ only below the path's own resolution."""
    path = remaining_path(downstream, seconds)
    work = downstream_work(downstream, seconds)
    ranked = sorted(downstream, key=lambda task: (path[task], work[task]))
    return {task: float(rank) for rank, task in enumerate(ranked)}


RULES: dict[str, WeightRule] = {
    "downstream": downstream_weights,
    "upstream": upstream_weights,
    "remaining_path": remaining_path,
    "remaining_path_then_work": remaining_path_then_work,
}
# Where `simulated_weights` starts from: the remaining path first, so it wins every tie.
SIMULATED = "simulated"
CANDIDATE_RULES = ("remaining_path", "remaining_path_then_work", "downstream", "upstream")


class Simulator:
    """One DAG and its durations, prepared once for many `list_schedule` replays."""

    def __init__(self, downstream: Downstream, seconds: Mapping[str, float]) -> None:
        self.order = topological_order(downstream)
        self.position = {task: index for index, task in enumerate(self.order)}
        self.children = _children(downstream)
        self.parent_count = {task: len(p) for task, p in _parents(self.children).items()}
        self.seconds = {task: max(0.0, float(seconds.get(task, 0.0))) for task in self.order}

    def run(
        self,
        slots: int,
        weights: Mapping[str, float],
        handoff_seconds: float = 0.0,
        give_up_after: float = float("inf"),
    ) -> Schedule | None:
        """Airflow's queueing under `slots`; None once the wall passes `give_up_after`."""
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        waiting_on = dict(self.parent_count)
        ready_at: dict[str, float] = {}
        # Tasks whose upstreams ended, by when they become ready; ready ones by -weight then
        # topological position; running ones by end.
        pending = [(0.0, self.position[t], t) for t in self.order if waiting_on[t] == 0]
        ready: list[tuple[float, int, str]] = []
        running: list[tuple[float, int, str]] = []
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        now = 0.0
        while pending or ready or running:
            while pending and pending[0][0] <= now:
                _, index, task = heapq.heappop(pending)
                heapq.heappush(ready, (-weights.get(task, 0.0), index, task))
            while ready and len(running) < slots:
                _, index, task = heapq.heappop(ready)
                starts[task] = now
                ends[task] = now + self.seconds[task]
                # The scheduler sees the end a hand-off later: only then is the slot free
                # again and are the task's downstreams ready, in the same loop.
                heapq.heappush(running, (ends[task] + handoff_seconds, index, task))
            now = min(queue[0][0] for queue in (running, pending) if queue)
            if now > give_up_after:
                return None
            while running and running[0][0] <= now:
                seen_at, _, task = heapq.heappop(running)
                for child in self.children[task]:
                    waiting_on[child] -= 1
                    ready_at[child] = max(ready_at.get(child, 0.0), seen_at)
                    if waiting_on[child] == 0:
                        heapq.heappush(pending, (ready_at[child], self.position[child], child))
        return Schedule(starts=starts, ends=ends)


def list_schedule(
    downstream: Downstream,
    seconds: Mapping[str, float],
    slots: int,
    weights: Mapping[str, float],
    handoff_seconds: float = 0.0,
) -> Schedule:
    """Airflow's queueing under `slots` (see the module docstring)."""
    schedule = Simulator(downstream, seconds).run(slots, weights, handoff_seconds)
    assert schedule is not None  # no give-up wall was set
    return schedule


def simulated_weights(
    downstream: Downstream,
    seconds: Mapping[str, float],
    slots: int,
    handoff_seconds: float = 0.0,
    swaps: int | None = None,
) -> dict[str, float]:
    """The shipped rule: the order whose replay under `slots` ends first, starting from the
    best of the other rules and improved by swapping tasks a few places apart in it.

    Weights are ranks (the first task weighs the number of tasks). Deterministic: the swaps
    come from a fixed seed; their number falls with the DAG's size (`swaps` overrides), so a
    200-task DAG costs about 50 replays."""
    simulator = Simulator(downstream, seconds)
    count = len(simulator.order)
    if count == 0:
        return {}

    def ranked(order: list[str]) -> dict[str, float]:
        return {task: float(count - place) for place, task in enumerate(order)}

    best_wall = float("inf")
    best_order: list[str] = []
    for rule in CANDIDATE_RULES:
        weights = RULES[rule](downstream, seconds)
        order = sorted(simulator.order, key=lambda task: -weights[task])  # stable: ties keep
        schedule = simulator.run(slots, ranked(order), handoff_seconds)
        assert schedule is not None
        if schedule.makespan < best_wall - 1e-9:
            best_wall, best_order = schedule.makespan, order
    budget = swaps if swaps is not None else max(10, min(100, 10_000 // count))
    rng = random.Random(count)
    for _ in range(budget if count > 1 else 0):
        first = rng.randrange(count - 1)
        second = min(count - 1, first + rng.randint(1, 3))
        order = list(best_order)
        order[first], order[second] = order[second], order[first]
        schedule = simulator.run(slots, ranked(order), handoff_seconds, give_up_after=best_wall)
        if schedule is not None and schedule.makespan < best_wall - 1e-9:
            best_wall, best_order = schedule.makespan, order
    return ranked(best_order)


def rule_makespan(
    rule: str,
    downstream: Downstream,
    seconds: Mapping[str, float],
    slots: int,
    handoff_seconds: float = 0.0,
) -> float:
    """The makespan `list_schedule` gives under one of `RULES` or `simulated`."""
    if rule == SIMULATED:
        weights = simulated_weights(downstream, seconds, slots, handoff_seconds)
    else:
        weights = RULES[rule](downstream, seconds)
    return list_schedule(downstream, seconds, slots, weights, handoff_seconds).makespan


def lower_bound(downstream: Downstream, seconds: Mapping[str, float], slots: int) -> float:
    """No schedule under `slots` ends before the critical path nor before work / slots."""
    work = sum(max(0.0, float(s)) for task, s in seconds.items() if task in downstream)
    return max(max(remaining_path(downstream, seconds).values(), default=0.0), work / slots)


class SearchBudgetExceeded(Exception):
    """The exhaustive search needed more nodes than it was allowed."""


def optimal_makespan(
    downstream: Downstream,
    seconds: Mapping[str, float],
    slots: int,
    max_nodes: int = 200_000,
) -> float | None:
    """The shortest makespan of any schedule under `slots` (no hand-offs), or None when
    proving it takes more than `max_nodes` search nodes."""
    order = topological_order(downstream)
    count = len(order)
    if count == 0:
        return 0.0
    index_of = {task: index for index, task in enumerate(order)}
    parent_mask = [0] * count
    for task, kids in _children(downstream).items():
        for kid in kids:
            parent_mask[index_of[kid]] |= 1 << index_of[task]
    duration = [max(0.0, float(seconds.get(task, 0.0))) for task in order]
    path = remaining_path(downstream, seconds)
    tail = [path[task] for task in order]
    all_done = (1 << count) - 1
    # The best rule's schedule is the first incumbent: the search only has to prove or beat it.
    incumbent = min(rule_makespan(rule, downstream, seconds, slots) for rule in (*RULES, SIMULATED))
    earliest_at: dict[tuple[int, tuple[tuple[float, int], ...]], float] = {}
    nodes = 0

    def search(now: float, done: int, running: tuple[tuple[float, int], ...]) -> None:
        """Every way on from `now`, given what is done and what runs (end, task index)."""
        nonlocal nodes, incumbent
        nodes += 1
        if nodes > max_nodes:
            raise SearchBudgetExceeded
        # The same tasks done and the same work left running, reached no earlier: no better.
        state = (done, tuple((round(end - now, 9), index) for end, index in running))
        if earliest_at.get(state, float("inf")) <= now:
            return
        earliest_at[state] = now
        started = done
        for _, index in running:
            started |= 1 << index
        ready = [
            index
            for index in range(count)
            if not started >> index & 1 and parent_mask[index] & done == parent_mask[index]
        ]
        for size in range(min(slots - len(running), len(ready)), -1, -1):
            for chosen in combinations(ready, size):
                if not running and not chosen:
                    continue  # idling with nothing running never helps
                now_running = running + tuple((now + duration[i], i) for i in chosen)
                step_to = min(end for end, _ in now_running)
                new_done = done
                for end, index in now_running:
                    if end <= step_to:
                        new_done |= 1 << index
                still = tuple(sorted(item for item in now_running if item[0] > step_to))
                if new_done == all_done and not still:
                    incumbent = min(incumbent, step_to)
                    continue
                if _bound(step_to, new_done, still) < incumbent - 1e-9:
                    search(step_to, new_done, still)

    def _bound(now: float, done: int, running: tuple[tuple[float, int], ...]) -> float:
        """No schedule from here ends before this (critical paths, then work / slots)."""
        busy = {index for _, index in running}
        not_started = [i for i in range(count) if not done >> i & 1 and i not in busy]
        return max(
            max((end + tail[i] - duration[i] for end, i in running), default=now),
            now + max((tail[i] for i in not_started), default=0.0),
            now
            + (sum(end - now for end, _ in running) + sum(duration[i] for i in not_started))
            / slots,
        )

    try:
        search(0.0, 0, ())
    except SearchBudgetExceeded:
        return None
    return incumbent
