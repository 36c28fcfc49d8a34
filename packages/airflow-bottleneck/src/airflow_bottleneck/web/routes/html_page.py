"""`/`: the bottleneck page (HTML): runs, one run's report with charts, two runs compared."""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from airflow_bottleneck.render import html
from airflow_bottleneck.web.access import DAG_ID_PATTERN, ID_MAX_LENGTH, RUN_ID_PATTERN
from airflow_bottleneck.web.page_model import PageRequest, build_page_model
from airflow_bottleneck.web.params import MAX_OFFSET, ReadableRunsDep, RunKeyQuery

router = APIRouter()


@router.get(
    "/",
    response_class=HTMLResponse,
    summary="The bottleneck page (HTML)",
    responses={
        401: {"description": "no Airflow session: a page with a sign-in link"},
        # The page answers with the status of the first problem in what was asked for, and
        # still shows everything else.
        403: {"description": "a run asked for is not one you may read (or does not exist)"},
        404: {"description": "a run asked for does not exist"},
        409: {"description": "a run asked for has nothing to analyze yet"},
        503: {"description": "every analysis slot is busy, or a report extension is unavailable"},
    },
)
def bottleneck_page(
    request: Request,
    session: SessionDep,
    user: GetUserDep,
    readable: ReadableRunsDep,
    dag_id: Annotated[str | None, Query(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    run_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    run: Annotated[RunKeyQuery, Query(description="`dag_id/run_id` to report on")] = None,
    a: Annotated[RunKeyQuery, Query(description="reference run of the comparison")] = None,
    b: Annotated[RunKeyQuery, Query(description="run compared with the reference")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Runs, one run's report with charts, and two runs on one time axis."""
    asked = PageRequest(
        dag_filter=dag_id or None,
        run=run or (f"{dag_id}/{run_id}" if dag_id and run_id else None),
        a=a,
        b=b,
        offset=offset,
    )
    model, status_code = build_page_model(request, session, user, readable, asked)
    return HTMLResponse(html.render_page(model), status_code=status_code)
