"""Reads K1N runs from the Airflow metadata DB, in the API server's process.

Queries per request, whatever the number of task instances:

- `list_runs`: one `dag_run` query (plus the auth manager's own query for readable DAG ids);
- `load_run`: one `dag_run` query (state, bounds, `conf` for the time scale), ONE query for
  every task instance try (`task_instance` UNION ALL `task_instance_history`: the current try
  and the earlier ones), and, when the caller may read XComs, one `xcom` query for
  `check_quality_gates`' verdict (its pass rate judges the quality target).

Nothing runs at import time; the callers hand in the SQLAlchemy session of their request.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

import pandas as pd
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.models.xcom import XComModel
from sqlalchemy import literal, select, union_all

from include.k1n import settings
from include.k1n.analysis import RunData, RunInfo
from include.k1n.analysis.report import QUALITY_GATES_TASK_ID
from include.k1n.analysis.sources.airflow_api import pass_rate_from_xcom
from include.k1n.analysis.table import INSTANCE_COLUMNS
from include.k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import Select

log = logging.getLogger(__name__)

# The DAGs this app reports on, in the order the UI lists them.
K1N_DAG_IDS: tuple[str, ...] = (BASELINE_DAG_ID, OPTIMIZED_DAG_ID)
# The same ids as a type, for request validation (a DAG id outside them is a 422).
K1NDagId = Literal["k1n_22task_baseline", "k1n_22task_optimized"]
if get_args(K1NDagId) != K1N_DAG_IDS:  # pragma: no cover - a renamed DAG must update both
    raise RuntimeError(f"K1NDagId {get_args(K1NDagId)} does not match {K1N_DAG_IDS}")
XCOM_RETURN_KEY = "return_value"
SOURCE_PREFIX = "airflow-db"


class RunNotFound(LookupError):
    """No such DAG run (or not a K1N DAG); the message says which."""


@dataclass(frozen=True)
class RunRow:
    """One DAG run as listed: enough to pick it and to read its wall time at a glance."""

    dag_id: str
    run_id: str
    state: str | None
    run_type: str | None
    queued_at: datetime | None
    start: datetime | None
    end: datetime | None
    time_scale: float | None

    @property
    def label(self) -> str:
        return dag_label(self.dag_id)

    @property
    def wall_seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    @property
    def production_wall_seconds(self) -> float | None:
        wall, scale = self.wall_seconds, self.time_scale
        return None if wall is None or not scale else wall / scale

    @property
    def key(self) -> str:
        """`dag_id/run_id`: how the page names a run in its query string (DAG ids have no `/`)."""
        return f"{self.dag_id}/{self.run_id}"


def dag_label(dag_id: str) -> str:
    """`k1n_22task_optimized` -> `optimized`; other ids unchanged."""
    return dag_id.rsplit("_", 1)[-1] if dag_id in K1N_DAG_IDS else dag_id


def is_k1n_dag(dag_id: str) -> bool:
    return dag_id in K1N_DAG_IDS


def list_runs(
    session: Session,
    *,
    readable_dag_ids: Collection[str],
    dag_id: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RunRow]:
    """Runs of the K1N DAGs among `readable_dag_ids`, newest first: one query."""
    dag_ids = [d for d in K1N_DAG_IDS if d in readable_dag_ids and (dag_id is None or d == dag_id)]
    if not dag_ids:
        return []
    stmt: Select = select(
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.run_type,
        DagRun.queued_at,
        DagRun.start_date,
        DagRun.end_date,
        DagRun.conf,
    ).where(DagRun.dag_id.in_(dag_ids))
    if state is not None:
        stmt = stmt.where(DagRun.state == state)
    # The primary key follows creation order and is indexed; start_date is NULL while queued.
    stmt = stmt.order_by(DagRun.id.desc()).limit(limit).offset(offset)
    return [
        RunRow(
            dag_id=row.dag_id,
            run_id=row.run_id,
            state=_text(row.state),
            run_type=_text(row.run_type),
            queued_at=row.queued_at,
            start=row.start_date,
            end=row.end_date,
            time_scale=conf_time_scale(row.conf, []),
        )
        for row in session.execute(stmt)
    ]


def load_run(session: Session, dag_id: str, run_id: str, *, read_xcom: bool) -> RunData:
    """One run's info and task-instance table, ready for `include.k1n.analysis.analyze_run`.

    Raises `RunNotFound` for a DAG outside the K1N DAGs or an unknown run.
    """
    if not is_k1n_dag(dag_id):
        raise RunNotFound(f"{dag_id} is not a K1N workflow DAG ({', '.join(K1N_DAG_IDS)})")
    run = session.execute(
        select(DagRun.id, DagRun.state, DagRun.start_date, DagRun.end_date, DagRun.conf).where(
            DagRun.dag_id == dag_id, DagRun.run_id == run_id
        )
    ).one_or_none()
    if run is None:
        raise RunNotFound(f"DAG {dag_id} has no run {run_id!r}")

    instances = _task_instance_table(session, dag_id, run_id)
    notes: list[str] = []
    time_scale = conf_time_scale(run.conf, notes)
    if time_scale is None:
        time_scale = settings.default_time_scale()
        notes.append(f"time_scale not in the run's conf: taken as the DAG default {time_scale:g}")
    pass_rate = None
    if read_xcom:
        pass_rate = pass_rate_from_xcom(_quality_xcom(session, run.id), notes)
    else:
        notes.append("quality pass rate not shown: no permission to read this DAG's XComs")
    info = RunInfo(
        dag_id=dag_id,
        run_id=run_id,
        state=_text(run.state),
        start=_timestamp(run.start_date),
        end=_timestamp(run.end_date),
        time_scale=time_scale,
        pass_rate=pass_rate,
        source=f"{SOURCE_PREFIX}:{dag_id}/{run_id}",
        label=dag_label(dag_id),
        notes=tuple(notes),
    )
    return RunData(info=info, instances=instances)


def _task_instance_table(session: Session, dag_id: str, run_id: str) -> pd.DataFrame:
    """Every try of every task instance of the run, in ONE query.

    `task_instance` holds each instance's current try, `task_instance_history` the earlier ones;
    during a retry wait the failed try is in both, so the current table's row wins.
    """

    def tries(model: Any, archived: int) -> Select:
        return select(
            model.task_id,
            model.map_index,
            model.try_number,
            model.state,
            model.queued_dttm,
            model.start_date,
            model.end_date,
            model.duration,
            literal(archived).label("archived"),
        ).where(model.dag_id == dag_id, model.run_id == run_id)

    rows = session.execute(union_all(tries(TaskInstance, 0), tries(TaskInstanceHistory, 1))).all()
    frame = pd.DataFrame.from_records(
        [
            (
                dag_id,
                run_id,
                row.task_id,
                row.map_index,
                row.try_number,
                _text(row.state),
                row.queued_dttm,
                row.start_date,
                row.end_date,
                row.duration,
                row.archived,
            )
            for row in rows
        ],
        columns=[*INSTANCE_COLUMNS, "archived"],
    )
    if frame.empty:
        return frame.drop(columns="archived")
    frame = frame.sort_values("archived", kind="stable").drop_duplicates(
        ["task_id", "map_index", "try_number"], keep="first"
    )
    return frame.drop(columns="archived").reset_index(drop=True)


def _quality_xcom(session: Session, dag_run_pk: int) -> Any:
    value = session.scalar(
        select(XComModel.value).where(
            XComModel.dag_run_id == dag_run_pk,
            XComModel.task_id == QUALITY_GATES_TASK_ID,
            XComModel.map_index == -1,
            XComModel.key == XCOM_RETURN_KEY,
        )
    )
    return value


def conf_time_scale(conf: Any, notes: list[str]) -> float | None:
    """The run's `time_scale` conf as a positive float; None (with a note) when unusable."""
    value = conf.get("time_scale") if isinstance(conf, Mapping) else None
    if value is None:
        return None
    try:
        return settings.parse_time_scale(value)
    except ValueError as exc:
        notes.append(f"run conf time_scale ignored: {exc}")
        return None


def _text(value: Any) -> str | None:
    """Airflow's state enums (str subclasses) and plain strings as plain `str`."""
    return None if value is None else str(getattr(value, "value", value))


def _timestamp(value: datetime | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)
