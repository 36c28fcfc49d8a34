"""What is ahead, from the metadata DB: a run's live ETA and deadline, a DAG's criticality.

Glue between the metadata DB (`readers.metadata_db`) and the pure analyses
(`analysis.forecast`, `analysis.criticality`), shared by the plugin's routes (API server) and
the deadline watcher (scheduler). Queries per call, whatever the number of runs: the run, its
task instances, its graph (cached per DAG version), the history's runs and ONE query for all
their task instances, and the run's Deadline Alert rows.

A run's deadline, first found wins:

1. the `[bottlenecks] deadlines` option: a JSON object of DAG id -> minutes from the run's
   start, e.g. `AIRFLOW__BOTTLENECKS__DEADLINES='{"etl_daily": 45}'` (the operator's own
   choice for the watch, so it wins over the DAG's);
2. the DAG's own Deadline Alert (Airflow's `deadline` rows of the run);
3. what a report extension sets for its DAGs (`ReportExtension.run_deadline_seconds`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from airflow.models.dagrun import DagRun
from sqlalchemy import select

from airflow_bottleneck.analysis.criticality import criticality
from airflow_bottleneck.analysis.forecast import DagHistory, dag_history, forecast_run
from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.analysis.model import Criticality, Forecast
from airflow_bottleneck.extension import extension_for
from airflow_bottleneck.readers import metadata_db

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CONFIG_SECTION = "bottlenecks"
DEADLINES_OPTION = "deadlines"
CRITICALITY_RUNS = 20
FINISHED = ("success", "failed")


class DeadlineSettingError(ValueError):
    """`[bottlenecks] deadlines` is not a JSON object of DAG id -> positive minutes."""


def configured_deadlines() -> dict[str, float]:
    """`[bottlenecks] deadlines` as DAG id -> seconds (empty when unset)."""
    from airflow.configuration import conf

    return _parse_deadlines(conf.get(CONFIG_SECTION, DEADLINES_OPTION, fallback="") or "")


@lru_cache(maxsize=8)
def _parse_deadlines(text: str) -> dict[str, float]:
    if not text.strip():
        return {}
    where = f"[{CONFIG_SECTION}] {DEADLINES_OPTION}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DeadlineSettingError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise DeadlineSettingError(f"{where}: must be a JSON object of DAG id -> minutes")
    deadlines = {}
    for dag_id, minutes in value.items():
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise DeadlineSettingError(f"{where}: {dag_id!r} must be a positive number of minutes")
        deadlines[str(dag_id)] = float(minutes) * 60
    return deadlines


def run_deadline(session: Session, run: DagRun, time_scale: float) -> tuple[float, str] | None:
    """(seconds from the run's start, where from) or None; see the module docstring."""
    if run.start_date is None:
        return None
    start = run.start_date.timestamp()
    configured = configured_deadlines().get(run.dag_id)
    if configured is not None:
        return configured, f"[{CONFIG_SECTION}] {DEADLINES_OPTION}"
    alert = metadata_db.deadline_of(session, run.id)
    if alert is not None:
        return alert.timestamp() - start, "the DAG's Deadline Alert"
    extension = extension_for(run.dag_id)
    seconds = None if extension is None else extension.run_deadline_seconds(time_scale)
    if seconds is not None and extension is not None:
        return seconds, f"{extension.name}: the DAG's target at the run's time scale"
    return None


def find_run(session: Session, dag_id: str, run_id: str) -> DagRun:
    run = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).one_or_none()
    if run is None:
        raise metadata_db.RunNotFound(f"DAG {dag_id} has no run {run_id!r}")
    return run


@dataclass(frozen=True)
class RunContext:
    """What a run's forecasts share while it runs: its graph, its DAG's history before it,
    its deadline and the tasks' names (the watcher computes it once per run)."""

    graph: TaskGraph
    history: DagHistory
    deadline: tuple[float, str] | None
    labels: dict[str, str]


def run_context(session: Session, run: DagRun) -> RunContext:
    graph = metadata_db.run_graph(session, run) or TaskGraph.unknown(())
    history_runs = metadata_db.recent_runs(session, run.dag_id, before=run.id)
    history = dag_history(
        metadata_db.runs_instances(session, run.dag_id, history_runs["run_id"].tolist()),
        history_runs,
        graph,
    )
    extension = extension_for(run.dag_id)
    scale = metadata_db.run_time_scale(extension, run.conf, [])
    labels = {task: node.label or task for task, node in graph.nodes.items()}
    if extension is not None:
        labels = {
            task: extension.label(task, extension.task_number(task), label)
            for task, label in labels.items()
        }
    return RunContext(graph, history, run_deadline(session, run, scale), labels)


def forecast_for(
    session: Session,
    run: DagRun,
    *,
    now: float | None = None,
    context: RunContext | None = None,
) -> Forecast:
    """`run`'s ETA from the DAG's last successful runs before it, and its deadline."""
    context = context or run_context(session, run)
    instances = metadata_db.runs_instances(session, run.dag_id, [run.run_id])
    state = metadata_db.text(run.state)
    start = (run.start_date or run.queued_at).timestamp()
    if state in FINISHED and run.end_date is not None:
        observed = run.end_date.timestamp()
    else:
        observed = time.time() if now is None else now
    return forecast_run(
        instances,
        context.graph,
        context.history,
        dag_id=run.dag_id,
        run_id=run.run_id,
        state=state,
        run_start=start,
        now=observed,
        deadline=context.deadline,
        labels=context.labels,
    )


def criticality_for(session: Session, dag_id: str, runs: int = CRITICALITY_RUNS) -> Criticality:
    """Criticality over the DAG's last `runs` successful runs, in the newest run's graph."""
    recent = metadata_db.recent_runs(session, dag_id, limit=runs)
    if recent.empty:
        raise metadata_db.RunNotFound(f"DAG {dag_id} has no successful run yet")
    newest = find_run(session, dag_id, str(recent["run_id"].iloc[-1]))
    graph = metadata_db.run_graph(session, newest) or TaskGraph.unknown(())
    labels = {task: node.label or task for task, node in graph.nodes.items()}
    instances = metadata_db.runs_instances(session, dag_id, recent["run_id"].tolist())
    return criticality(instances, recent, graph, dag_id=dag_id, labels=labels)
