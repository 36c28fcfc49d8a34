"""Priority from measured durations: when slots are short, which ready task starts first.

Airflow computes a task instance's priority weight through its task's weight rule when the
scheduler creates the instance (all of a run's instances when the run starts). Its built-in
rules only add up static weights (`absolute`, `downstream`, `upstream`). Both strategies here
weigh each task by its median span (first start -> last end, mapped indexes together) over the
last `HISTORY_RUNS` successful runs of the same DAG, in the DAG's own graph:

- `SimulatedSchedulePriority` (the one to use): the order whose replay of the DAG under its
  slots (`min(parallelism, max_active_tasks)`) ends first (`scheduling`); on 1 000
  random DAGs and on the K1N profile it is never behind Airflow's `downstream` nor the
  remaining path (docs/BENCHMARKS.md).
- `CriticalPathPriority`: the longest remaining chain of measured durations.

Without such a run both fall back to the task's static `priority_weight`, which is what
`absolute` would give. They are registered by the plugin (`priority_weight_strategies`) and
named by a DAG's `weight_rule`.

Imported by the plugin module in every Airflow process, so nothing heavy at import; the
history query runs in the scheduler, once per DAG per `CACHE_SECONDS`.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.task.priority_strategy import PriorityWeightStrategy

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

log = logging.getLogger(__name__)

HISTORY_RUNS = 5
CACHE_SECONDS = 120.0
# A DAG with no good run yet is asked again sooner: its first run's history counts at once.
NO_HISTORY_CACHE_SECONDS = 5.0
# How DAGs name the strategy: by import path (an instance on a mapped task breaks Airflow
# 3.3.2's REST task list, which cannot name it), registered by the plugin.
CRITICAL_PATH_PRIORITY = "airflow_bottleneck.priority.CriticalPathPriority"
SIMULATED_SCHEDULE_PRIORITY = "airflow_bottleneck.priority.SimulatedSchedulePriority"
# Weights are milliseconds of remaining path; the metadata DB column is a 32-bit integer.
MAX_WEIGHT = 2**31 - 1


def remaining_path_weights(
    downstream: Mapping[str, Iterable[str]], seconds: Mapping[str, float]
) -> dict[str, int]:
    """Per task: the longest chain from it to a sink, itself included, in whole milliseconds
    (at least 1). Tasks missing from `seconds` weigh 0 s on the chain."""
    from airflow_bottleneck.scheduling import remaining_path

    remaining = remaining_path(downstream, seconds)
    return {task: min(MAX_WEIGHT, max(1, round(value * 1000))) for task, value in remaining.items()}


def simulated_schedule_weights(
    downstream: Mapping[str, Iterable[str]], seconds: Mapping[str, float], slots: int
) -> dict[str, int]:
    """Per task: its rank (1 = last) in the order whose replay under `slots` ends first."""
    from airflow_bottleneck.scheduling import simulated_weights

    return {
        task: round(rank) for task, rank in simulated_weights(downstream, seconds, slots).items()
    }


def median_spans(rows: Iterable[tuple[str, str, Any, Any]]) -> dict[str, float]:
    """(run_id, task_id, first start, last end) rows -> each task's median span in seconds."""
    spans: dict[str, list[float]] = {}
    for _run_id, task_id, start, end in rows:
        if start is not None and end is not None:
            spans.setdefault(task_id, []).append(max(0.0, (end - start).total_seconds()))
    return {task_id: statistics.median(values) for task_id, values in spans.items()}


class _HistoryCache:
    """dag_id -> when read, median spans, and the weights computed from them for the last DAG
    object asked about; shared by the scheduler's threads. The scheduler asks once per task
    instance (every map index too): the whole DAG's weights are computed once per read, not
    once per instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, float]]] = {}
        self._weights: dict[tuple[str, str], tuple[Any, dict[str, float], dict[str, int]]] = {}

    def spans(self, dag_id: str) -> dict[str, float]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(dag_id)
            if entry is not None and now - entry[0] < (
                CACHE_SECONDS if entry[1] else NO_HISTORY_CACHE_SECONDS
            ):
                return entry[1]
        spans = _read_history(dag_id)
        with self._lock:
            self._entries[dag_id] = (now, spans)
        return spans

    def weights(self, dag: Any, rule: str) -> dict[str, int]:
        """`rule`'s weights of `dag`'s tasks from its history; {} without history."""
        spans = self.spans(dag.dag_id)
        if not spans:
            return {}
        with self._lock:
            cached = self._weights.get((dag.dag_id, rule))
            # The same DAG object and the same read: the graph and the spans are unchanged.
            if cached is not None and cached[0] is dag and cached[1] is spans:
                return cached[2]
        downstream = {
            task_id: tuple(task.downstream_task_ids) for task_id, task in dag.task_dict.items()
        }
        if rule == SIMULATED_SCHEDULE_PRIORITY:
            weights = simulated_schedule_weights(downstream, spans, _slots(dag))
        else:
            weights = remaining_path_weights(downstream, spans)
        with self._lock:
            self._weights[(dag.dag_id, rule)] = (dag, spans, weights)
        return weights

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weights.clear()


def _read_history(dag_id: str) -> dict[str, float]:
    """Median spans over the DAG's last successful runs; {} when there is none or the DB
    cannot be read (then the static weights apply)."""
    try:
        from airflow import settings
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import func, select

        # A connection of its own: the scheduler calls this inside its session's work, and
        # Airflow's scoped session (`create_session`) would be that very session, closed here.
        with settings.engine.connect() as connection:
            runs = connection.scalars(
                select(DagRun.run_id)
                .where(DagRun.dag_id == dag_id, DagRun.state == "success")
                .order_by(DagRun.id.desc())
                .limit(HISTORY_RUNS)
            ).all()
            if not runs:
                return {}
            rows = connection.execute(
                select(
                    TaskInstance.run_id,
                    TaskInstance.task_id,
                    func.min(TaskInstance.start_date),
                    func.max(TaskInstance.end_date),
                )
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(runs))
                .group_by(TaskInstance.run_id, TaskInstance.task_id)
            ).all()
        return median_spans(rows)
    except Exception:  # priority must never stop a run from being scheduled
        log.warning("critical-path priority: no history for %s, static weights", dag_id)
        return {}


def _slots(dag: Any) -> int:
    """How many of the DAG's task instances can run at once: the executor's parallelism, at
    most the DAG's `max_active_tasks`."""
    from airflow.configuration import conf

    parallelism = conf.getint("core", "parallelism", fallback=32) or 32
    return max(1, min(parallelism, getattr(dag, "max_active_tasks", None) or parallelism))


history = _HistoryCache()


def _measured_weight(ti: TaskInstance, rule: str) -> int:
    task = ti.task
    if task is None:
        return 1
    dag = task.get_dag()
    weights = history.weights(dag, rule) if dag is not None else {}
    return weights.get(task.task_id, task.priority_weight)


class SimulatedSchedulePriority(PriorityWeightStrategy):
    """The order whose replay under the DAG's slots ends first (see the module docstring)."""

    def get_weight(self, ti: TaskInstance) -> int:
        return _measured_weight(ti, SIMULATED_SCHEDULE_PRIORITY)


class CriticalPathPriority(PriorityWeightStrategy):
    """Remaining critical path of measured durations (see the module docstring)."""

    def get_weight(self, ti: TaskInstance) -> int:
        return _measured_weight(ti, CRITICAL_PATH_PRIORITY)
