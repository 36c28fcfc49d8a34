"""What every route of the plugin app needs: who may read what, the run's report with its
links into the Airflow UI, and where the app and the UI are mounted."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.models.dag import DagModel
from fastapi import Depends, HTTPException, Request, status

from airflow_bottleneck.analysis.model import Links, RunReport
from airflow_bottleneck.extension import ExtensionUnavailable
from airflow_bottleneck.readers import metadata_db
from airflow_bottleneck.web import URL_PREFIX, reports

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Airflow's DAG id rule (letters, digits, `_`, `.`, `-`); run ids are free text up to 250,
# but never hold control characters (PostgreSQL refuses NUL in text).
DAG_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
RUN_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ID_MAX_LENGTH = 250


def valid_dag_id(dag_id: str) -> bool:
    return len(dag_id) <= ID_MAX_LENGTH and re.fullmatch(DAG_ID_PATTERN, dag_id) is not None


def valid_run_id(run_id: str) -> bool:
    return len(run_id) <= ID_MAX_LENGTH and re.fullmatch(RUN_ID_PATTERN, run_id) is not None


def team(dag_id: str) -> str | None:
    return DagModel.get_team_name(dag_id)  # cached by Airflow


def may_read(user: BaseUser, dag_id: str, entity: DagAccessEntity) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=entity,
        details=DagDetails(id=dag_id, team_name=team(dag_id)),
        user=user,
    )


# A report shows a run (its state, dates, wall time) and its task instances: a user needs read
# on both, as Airflow's own run list and grid do.
REPORT_ENTITIES = (DagAccessEntity.RUN, DagAccessEntity.TASK_INSTANCE)


def may_read_runs(user: BaseUser, dag_id: str) -> bool:
    """Whether `user` may see `dag_id`'s runs in a list: DAG read and DAG-run read."""
    return may_read(user, dag_id, DagAccessEntity.RUN)


def may_read_reports(user: BaseUser, dag_id: str) -> bool:
    """Whether `user` may read `dag_id`'s run reports (its runs and its task instances)."""
    return all(may_read(user, dag_id, entity) for entity in REPORT_ENTITIES)


def run_lists_of(user: BaseUser, dag_ids: set[str] | None) -> set[str]:
    """Of the DAGs `user` may read, those whose runs it may also read."""
    return {dag_id for dag_id in dag_ids or () if may_read_runs(user, dag_id)}


# Route dependencies: read on the runs and task instances of the path's `{dag_id}`.
REPORT_ACCESS = [Depends(requires_access_dag("GET", entity)) for entity in REPORT_ENTITIES]


def require_report_access(request: Request, user: BaseUser, dag_id: str) -> None:
    """`REPORT_ACCESS` for a DAG the path names otherwise (a comparison's second run)."""
    for entity in REPORT_ENTITIES:
        requires_access_dag("GET", entity, param_dag_id=dag_id)(request, user)


def load_report(
    request: Request,
    session: Session,
    user: BaseUser,
    dag_id: str,
    run_id: str,
    time_scale: float | None = None,
    *,
    detail: bool = False,
) -> RunReport:
    """Load and analyze one run, with its links into the Airflow UI; 404/409/503 as HTTP
    errors (never a 500 for bad input)."""
    try:
        data = metadata_db.load_run(
            session, dag_id, run_id, read_xcom=may_read(user, dag_id, DagAccessEntity.XCOM)
        )
        report = reports.analyze(data, time_scale=time_scale, detail=detail)
        return report.model_copy(update={"links": links(request, report)})
    except metadata_db.RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except reports.ReportUnavailable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except reports.ReportBusy as exc:
        retry = {"Retry-After": f"{reports.ANALYSIS_WAIT_SECONDS:g}"}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), retry) from None
    except ExtensionUnavailable as exc:
        log.error("report extension unavailable: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


def root(request: Request) -> str:
    """Where this app is mounted (`/bottlenecks`, behind any `[api] base_url` path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def ui_base(request: Request) -> str:
    """The Airflow UI's base path (where this app's prefix is mounted)."""
    return root(request).removesuffix(URL_PREFIX)


def run_ui_path(request: Request, dag_id: str, run_id: str) -> str:
    return f"{ui_base(request)}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def links(request: Request, report: RunReport) -> Links:
    """The run's page in the Airflow UI (grid, Gantt button) and each task's logs."""
    run = run_ui_path(request, report.dag_id, report.run_id)
    return Links(
        run=run,
        tasks={
            task.task: f"{run}/tasks/{quote(task.task, safe='')}"
            + ("/mapped" if task.mapped else "")
            for task in report.tasks
        },
    )
