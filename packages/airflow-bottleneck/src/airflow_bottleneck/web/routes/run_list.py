"""`/api/dags` and `/api/runs`: the DAGs and runs the user may read, newest first, paginated."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from airflow.api_fastapi.common.db.common import SessionDep
from fastapi import APIRouter, Query, Request

from airflow_bottleneck.readers import metadata_db
from airflow_bottleneck.render import html
from airflow_bottleneck.web.access import DAG_ID_PATTERN, ID_MAX_LENGTH, root, run_ui_path
from airflow_bottleneck.web.api_models import DagList, RunLinks, RunList, RunSummary
from airflow_bottleneck.web.params import ERROR_RESPONSES, MAX_OFFSET, ReadableRunsDep

router = APIRouter()


@router.get(
    "/api/dags",
    response_model=DagList,
    summary="DAGs you may read that have runs",
    responses={401: ERROR_RESPONSES[401]},
)
def list_dags(session: SessionDep, readable: ReadableRunsDep) -> DagList:
    return DagList(dag_ids=metadata_db.dags_with_runs(session, readable))


@router.get(
    "/api/runs",
    response_model=RunList,
    summary="Runs of the DAGs you may read, newest first",
    responses={401: ERROR_RESPONSES[401]},
)
def list_runs(
    request: Request,
    session: SessionDep,
    readable: ReadableRunsDep,
    dag_id: Annotated[str | None, Query(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    state: Annotated[Literal["queued", "running", "success", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RunList:
    """DAGs you may not read are left out, as Airflow's own lists do; `total` counts the
    matching runs in all pages."""
    rows, total = metadata_db.list_runs(
        session,
        readable_dag_ids=readable,
        dag_id=dag_id,
        state=state,
        limit=limit,
        offset=offset,
    )
    return RunList(
        runs=[_run_summary(request, row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _run_summary(request: Request, row: metadata_db.RunRow) -> RunSummary:
    mounted = root(request)
    report = html.api_url(mounted, row.dag_id, row.run_id)
    return RunSummary(
        dag_id=row.dag_id,
        run_id=row.run_id,
        label=row.label,
        state=row.state,
        run_type=row.run_type,
        queued_at=row.queued_at,
        start_date=row.start,
        end_date=row.end,
        wall_seconds=row.wall_seconds,
        time_scale=row.time_scale,
        links=RunLinks(
            report=report,
            markdown=f"{report}.md",
            page=f"{mounted}/?run={quote(row.key, safe='/')}",
            airflow=run_ui_path(request, row.dag_id, row.run_id),
        ),
    )
