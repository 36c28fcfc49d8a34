"""Reads runs from the Airflow metadata DB, in the API server's process, for any DAG.

Queries per request, whatever the number of task instances:

- `list_runs`: one `dag_run` query and one count (the auth manager filters the readable DAGs);
- `load_run`: one `dag_run` query; ONE query for every task instance try (`task_instance`
  UNION ALL `task_instance_history`); for a DAG a report extension describes, one `xcom`
  query for the code starts its tasks record and its quality verdict (when the caller may read
  XComs); the graph of the DAG version the run was
  created with (Airflow's own DAG bag, cached); one query for the history of the DAG's last
  runs (their task durations, for the sparklines).

Nothing runs at import time; the callers hand in the SQLAlchemy session of their request.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Collection
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.models.xcom import XComModel
from sqlalchemy import func, literal, select, union_all

from airflow_bottleneck.analysis import RunData, RunInfo, TaskGraph
from airflow_bottleneck.analysis.model import History, HistoryRun
from airflow_bottleneck.analysis.table import INSTANCE_COLUMNS, code_start_column
from airflow_bottleneck.extension import ReportExtension, extension_for, short_label
from airflow_bottleneck.runs import RunRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import Select

log = logging.getLogger(__name__)

XCOM_RETURN_KEY = "return_value"
SOURCE_PREFIX = "airflow-db"
HISTORY_RUNS = 20
FINISHED = ("success", "failed")


class RunNotFound(LookupError):
    """No such DAG run; the message says which."""


def list_runs(
    session: Session,
    *,
    readable_dag_ids: Collection[str],
    dag_id: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RunRow], int]:
    """Runs of the DAGs among `readable_dag_ids` (one DAG if given), newest first, and how many
    runs match in all (for pagination)."""
    dag_ids = sorted(d for d in readable_dag_ids if dag_id is None or d == dag_id)
    if not dag_ids:
        return [], 0
    where = [DagRun.dag_id.in_(dag_ids)]
    if state is not None:
        where.append(DagRun.state == state)
    total = session.scalar(select(func.count()).select_from(DagRun).where(*where)) or 0
    # The primary key follows creation order and is indexed; start_date is NULL while queued.
    stmt = _run_columns().where(*where).order_by(DagRun.id.desc()).limit(limit).offset(offset)
    return [_run_row(row) for row in session.execute(stmt)], int(total)


def dags_with_runs(session: Session, readable_dag_ids: Collection[str]) -> list[str]:
    """The readable DAG ids that have at least one run (for the page's DAG filter)."""
    if not readable_dag_ids:
        return []
    stmt = (
        select(DagRun.dag_id)
        .where(DagRun.dag_id.in_(sorted(readable_dag_ids)))
        .group_by(DagRun.dag_id)
        .order_by(DagRun.dag_id)
    )
    return list(session.scalars(stmt))


def run_rows(session: Session, keys: Collection[tuple[str, str]]) -> list[RunRow]:
    """The runs named by (dag_id, run_id), in no particular order (unknown ones left out)."""
    rows = []
    for dag_id, run_id in keys:
        stmt = _run_columns().where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        rows += [_run_row(row) for row in session.execute(stmt)]
    return rows


def _run_columns() -> Select:
    return select(
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.run_type,
        DagRun.queued_at,
        DagRun.start_date,
        DagRun.end_date,
        DagRun.conf,
    )


def _run_row(row: Any) -> RunRow:
    return RunRow(
        dag_id=row.dag_id,
        run_id=row.run_id,
        state=text(row.state),
        run_type=text(row.run_type),
        queued_at=row.queued_at,
        start=row.start_date,
        end=row.end_date,
        time_scale=run_time_scale(extension_for(row.dag_id), row.conf, []),
    )


def newest_runs(session: Session, dag_ids: Collection[str]) -> dict[str, str]:
    """The newest successful run id of each of `dag_ids` (for the page's defaults)."""
    newest = (
        select(DagRun.dag_id, func.max(DagRun.id).label("id"))
        .where(DagRun.dag_id.in_(list(dag_ids)), DagRun.state == "success")
        .group_by(DagRun.dag_id)
        .subquery()
    )
    stmt = select(DagRun.dag_id, DagRun.run_id).join(newest, DagRun.id == newest.c.id)
    return {row.dag_id: row.run_id for row in session.execute(stmt)}


def load_run(
    session: Session, dag_id: str, run_id: str, *, read_xcom: bool, history: bool = True
) -> RunData:
    """One run's info, task-instance table, graph and history, ready for the analysis.

    Raises `RunNotFound` for an unknown run.
    """
    run = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).one_or_none()
    if run is None:
        raise RunNotFound(f"DAG {dag_id} has no run {run_id!r}")
    extension = extension_for(dag_id)
    notes: list[str] = []
    time_scale = run_time_scale(extension, run.conf, notes)
    instances = runs_instances(session, dag_id, [run_id], earlier_tries=True)
    code_starts, quality, pass_rate = {}, None, None
    if extension is not None and read_xcom:
        code_starts, quality = _xcoms(session, run.id, extension)
        if extension.pass_rate_task_id:
            pass_rate = extension.pass_rate(quality, notes) if quality is not None else None
    elif extension is not None:
        notes.append("start-ups and quality pass rate not shown: no permission to read XComs")
    instances["code_start"] = code_start_column(instances, code_starts)
    info = RunInfo(
        dag_id=dag_id,
        run_id=run_id,
        state=text(run.state),
        start=_timestamp(run.start_date),
        end=_timestamp(run.end_date),
        time_scale=time_scale,
        pass_rate=pass_rate,
        source=f"{SOURCE_PREFIX}:{dag_id}/{run_id}",
        label=short_label(dag_id),
        notes=tuple(notes),
        # The end of a run still going; a finished run's report must not depend on it (cache).
        observed_at=None if text(run.state) in FINISHED else time.time(),
    )
    return RunData(
        info=info,
        instances=instances,
        graph=run_graph(session, run),
        history=_history(session, dag_id, run) if history else None,
    )


def run_graph(session: Session, run: DagRun) -> TaskGraph | None:
    """The graph of the DAG version `run` was created with (the latest if it has none)."""
    from airflow.models.dagbag import DBDagBag

    try:
        if run.created_dag_version_id:
            return _version_graph(run.created_dag_version_id)
        dag = DBDagBag(load_op_links=False).get_dag_for_run(run, session=session)
    except Exception:  # a version Airflow cannot deserialize: report without it, say why
        log.exception("cannot read the DAG version of %s/%s", run.dag_id, run.run_id)
        return None
    return None if dag is None else TaskGraph.from_dag(dag, GRAPH_SOURCE)


GRAPH_SOURCE = "the DAG version this run was created with"
# A DAG version never changes, so its graph is cached by version id: only the graph (task ids
# and edges), never the deserialized DAG, and at most this many (an unbounded DAG cache grows
# with every version any reader asks about). A failed lookup raises, so it is not cached.
GRAPH_CACHE_SIZE = 256


@lru_cache(maxsize=GRAPH_CACHE_SIZE)
def _version_graph(version_id: Any) -> TaskGraph | None:  # a UUID
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        # A fresh bag: it holds nothing once the graph is taken out.
        dag = DBDagBag(load_op_links=False).get_dag(version_id, session=session)
    return None if dag is None else TaskGraph.from_dag(dag, GRAPH_SOURCE)


def _xcoms(
    session: Session, dag_run_pk: int, extension: ReportExtension
) -> tuple[dict[tuple[str, int], float], Any]:
    """The code starts the run's tasks recorded, and the quality verdict (one query)."""
    start_key, verdict_task = extension.code_start_xcom_key, extension.pass_rate_task_id
    if not start_key and not verdict_task:
        return {}, None
    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
            XComModel.dag_run_id == dag_run_pk,
            (XComModel.key == (start_key or ""))
            | ((XComModel.key == XCOM_RETURN_KEY) & (XComModel.task_id == (verdict_task or ""))),
        )
    )
    starts: dict[tuple[str, int], float] = {}
    quality = None
    for row in rows:
        if row.key == start_key:
            value = _number(row.value)
            if value is not None:
                starts[(row.task_id, row.map_index)] = value
        elif row.map_index == -1:
            quality = row.value
    return starts, quality


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _history(session: Session, dag_id: str, run: DagRun) -> History | None:
    """The DAG's last finished runs up to this one: each task's seconds in each (one query)."""
    ids = session.scalars(
        select(DagRun.id)
        .where(DagRun.dag_id == dag_id, DagRun.id <= run.id, DagRun.state.in_(FINISHED))
        .order_by(DagRun.id.desc())
        .limit(HISTORY_RUNS)
    ).all()
    if run.id not in ids:
        ids = [run.id, *ids][:HISTORY_RUNS]
    if len(ids) < 2:
        return None
    runs = session.execute(
        select(DagRun.id, DagRun.run_id, DagRun.start_date, DagRun.end_date)
        .where(DagRun.id.in_(ids))
        .order_by(DagRun.id)
    ).all()
    durations = session.execute(
        select(DagRun.run_id, TaskInstance.task_id, func.sum(TaskInstance.duration))
        .join(
            DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id)
        )
        .where(DagRun.id.in_(ids))
        .group_by(DagRun.run_id, TaskInstance.task_id)
    ).all()
    order = [row.run_id for row in runs]
    tasks: dict[str, list[float | None]] = {}
    for run_id, task_id, seconds in durations:
        series = tasks.setdefault(task_id, [None] * len(order))
        series[order.index(run_id)] = None if seconds is None else round(float(seconds), 3)
    return History(
        runs=[
            HistoryRun(
                run_id=row.run_id,
                start=row.start_date.isoformat() if row.start_date else None,
                wall_seconds=(row.end_date - row.start_date).total_seconds()
                if row.start_date and row.end_date
                else None,
            )
            for row in runs
        ],
        tasks=dict(sorted(tasks.items())),
    )


def recent_runs(
    session: Session, dag_id: str, *, before: int | None = None, limit: int = HISTORY_RUNS
) -> pd.DataFrame:
    """The DAG's last `limit` successful runs (before the run with primary key `before`, if
    given), oldest first: columns id, run_id, start, end."""
    where = [DagRun.dag_id == dag_id, DagRun.state == "success", DagRun.start_date.isnot(None)]
    if before is not None:
        where.append(DagRun.id < before)
    rows = session.execute(
        select(DagRun.id, DagRun.run_id, DagRun.start_date, DagRun.end_date)
        .where(*where)
        .order_by(DagRun.id.desc())
        .limit(limit)
    ).all()
    frame = pd.DataFrame.from_records(
        [(row.id, row.run_id, row.start_date, row.end_date) for row in reversed(rows)],
        columns=["id", "run_id", "start", "end"],
    )
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def runs_instances(
    session: Session, dag_id: str, run_ids: Collection[str], *, earlier_tries: bool = False
) -> pd.DataFrame:
    """The tries of every task instance of `run_ids`, in ONE query: each instance's current
    try, and with `earlier_tries` the earlier ones too.

    `task_instance` holds each instance's current try, `task_instance_history` the earlier ones;
    during a retry wait the failed try is in both, so the current table's row wins.
    """
    columns = [c for c in INSTANCE_COLUMNS if c != "code_start"]
    if not run_ids:
        return pd.DataFrame(columns=columns)

    def tries(model: Any, archived: int) -> Select:
        return select(
            model.run_id,
            model.task_id,
            model.map_index,
            model.try_number,
            model.state,
            model.queued_dttm,
            model.start_date,
            model.end_date,
            model.duration,
            literal(archived).label("archived"),
        ).where(model.dag_id == dag_id, model.run_id.in_(list(run_ids)))

    query = tries(TaskInstance, 0)
    if earlier_tries:
        query = union_all(query, tries(TaskInstanceHistory, 1))
    frame = pd.DataFrame.from_records(
        [
            (
                dag_id,
                row.run_id,
                row.task_id,
                row.map_index,
                row.try_number,
                text(row.state),
                row.queued_dttm,
                row.start_date,
                row.end_date,
                row.duration,
                row.archived,
            )
            for row in session.execute(query)
        ],
        columns=[*columns, "archived"],
    )
    frame = frame.sort_values("archived", kind="stable").drop_duplicates(
        ["run_id", "task_id", "map_index", "try_number"], keep="first"
    )
    return frame.drop(columns="archived").reset_index(drop=True)


def deadline_of(session: Session, dag_run_pk: int) -> datetime | None:
    """The earliest deadline Airflow's Deadline Alerts set on the run, if any."""
    from airflow.models.deadline import Deadline

    return session.scalar(
        select(func.min(Deadline.deadline_time)).where(Deadline.dagrun_id == dag_run_pk)
    )


def run_time_scale(extension: ReportExtension | None, conf: Any, notes: list[str]) -> float:
    """The run's time scale as its DAG's extension reads it; 1 for a DAG of someone else's
    (its seconds are its seconds)."""
    scale = None if extension is None else extension.run_time_scale(conf, notes)
    return 1.0 if scale is None else scale


def text(value: Any) -> str | None:
    """Airflow's state enums (str subclasses) and plain strings as plain `str`."""
    return None if value is None else str(getattr(value, "value", value))


def _timestamp(value: datetime | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)
