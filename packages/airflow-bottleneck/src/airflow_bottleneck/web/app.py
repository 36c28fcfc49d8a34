"""The FastAPI app Airflow's API server mounts at `/bottlenecks` (built by `create_app`).

Routes (all GET), for every DAG the user may read:

- `/bottlenecks/`: the HTML page (`?dag_id=&run=DAG/RUN&a=DAG/RUN&b=DAG/RUN&offset=`, or
  `?dag_id=DAG&run_id=RUN`, which is what the run page's "Bottleneck report" tab sends);
- `/bottlenecks/api/dags`: the DAGs you may read that have runs;
- `/bottlenecks/api/runs`: their runs, newest first, paginated (`dag_id`, `state`, `limit`,
  `offset`);
- `/bottlenecks/api/dags/{dag_id}/runs/{run_id}/report`: one run's report (`RunReport`;
  `?format=markdown`), and `.../report.md`;
- `/bottlenecks/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}`: run A
  (the reference) against run B (`Comparison`; `?format=markdown`);
- `/bottlenecks/openapi.json`: this app's OpenAPI document (the report models are the
  analysis' own).

Security. Airflow mounts plugin apps with no authentication of their own, so this app brings
it: an app-level `get_user` dependency (Airflow's own: an `Authorization: Bearer <JWT>` header,
or the UI's `_token` cookie, which is what the UI's iframe sends) answers 401 before any route
runs. Routes naming a DAG in the path check `requires_access_dag("GET", TASK_INSTANCE)`
through the configured auth manager; the comparison checks its second DAG the same way; the
lists are filtered with `permitted_dag_filter_factory`; XComs (recorded start-ups, the quality
verdict) are only read when the user may read that DAG's XComs. Unknown DAG or run: 404;
malformed parameters: 422; a run with nothing to analyze yet: 409. A browser without a
session asking for the page gets a 401 page with a sign-in link instead of JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import (
    GetUserDep,
    PermittedDagRunFilter,
    auth_manager_from_app,
    get_user,
    permitted_dag_filter_factory,
    requires_access_dag,
)
from fastapi import Depends, FastAPI, Path, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.analysis.time_scale import TIME_SCALE_MAX, TIME_SCALE_MIN
from airflow_bottleneck.readers import metadata_db
from airflow_bottleneck.render import render_comparison, render_report
from airflow_bottleneck.web import APP_NAME, page, reports
from airflow_bottleneck.web.access import (
    DAG_ID_PATTERN,
    ID_MAX_LENGTH,
    RUN_ID_PATTERN,
    load_report,
    root,
    run_ui_path,
)
from airflow_bottleneck.web.api_models import DagList, Problem, RunLinks, RunList, RunSummary
from airflow_bottleneck.web.page_model import PageRequest, build_page_model

MAX_OFFSET = 2**31 - 1
MARKDOWN = "text/markdown; charset=utf-8"

DagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="a DAG id")
]
RunIdPath = Annotated[
    str,
    Path(pattern=RUN_ID_PATTERN, min_length=1, max_length=ID_MAX_LENGTH, description="a run id"),
]
OtherDagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="run B's DAG id")
]
OtherRunIdPath = Annotated[
    str,
    Path(
        pattern=RUN_ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        description="run B's run id",
    ),
]
FormatQuery = Annotated[
    Literal["json", "markdown"], Query(description="`markdown` answers text/markdown")
]
TimeScaleQuery = Annotated[
    float | None,
    Query(
        ge=TIME_SCALE_MIN,
        le=TIME_SCALE_MAX,
        description="override the run's recorded time scale (production seconds x scale), "
        "between 1/3600 and 1",
    ),
]
ReadableRunsDep = Annotated[
    PermittedDagRunFilter,
    Depends(permitted_dag_filter_factory("GET", PermittedDagRunFilter)),
]
RunKeyQuery = Annotated[str | None, Query(max_length=2 * ID_MAX_LENGTH + 1)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no or expired Airflow token"},
    403: {"model": Problem, "description": "not allowed to read this DAG's runs"},
    404: {"model": Problem, "description": "no such DAG run"},
    409: {"model": Problem, "description": "the run has nothing to analyze yet"},
}
MARKDOWN_RESPONSE: dict[str, Any] = {
    "content": {"text/markdown": {"schema": {"type": "string"}}},
    "description": "the report (`format=json`) or its markdown rendering (`format=markdown`)",
}


def create_app() -> FastAPI:
    """The plugin app; built once per API server process, on its first request."""
    app = FastAPI(
        title=APP_NAME,
        version="2",
        description=(
            "Bottleneck reports of any DAG's runs, read from the Airflow metadata DB: the "
            "critical path in the DAG's own graph, the wall time split into work and "
            "orchestration, two runs side by side. Every route needs an Airflow JWT "
            "(`Authorization: Bearer`, from `POST /auth/token`, or the UI's `_token` cookie) "
            "and read access to the DAGs."
        ),
        # App-level: no route of this app answers without an authenticated Airflow user.
        dependencies=[Depends(get_user)],
        # The default docs routes would bypass the dependency above; the schema is served
        # below behind it, and Swagger UI would need a CDN anyway.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # Mounted, this app is `request.app`, not Airflow's root app that holds the auth manager in
    # its state; `permitted_dag_filter_factory` reads it from there.
    app.dependency_overrides[auth_manager_from_app] = get_auth_manager
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _add_routes(app)
    return app


# -- dependencies and helpers ---------------------------------------------------------------------


def _require_other_dag(request: Request, other_dag_id: OtherDagIdPath, user: GetUserDep) -> None:
    """The comparison's second DAG needs the same access as the one `requires_access_dag`
    checks from `{dag_id}`."""
    requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE, param_dag_id=other_dag_id)(
        request, user
    )


def _is_page(request: Request) -> bool:
    return request.scope.get("path", "").rstrip("/") == root(request)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON errors for the API; for the page, a readable HTML page with the same status."""
    if not _is_page(request):
        return await http_exception_handler(request, exc)
    if exc.status_code == status.HTTP_401_UNAUTHORIZED or (
        exc.status_code == status.HTTP_403_FORBIDDEN and "token" in str(exc.detail).lower()
    ):
        # A path, not the URL as this process sees it: behind a proxy the host differs.
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login_url = get_auth_manager().get_url_login(next_url=here)
        return HTMLResponse(
            page.render_login_hint(login_url, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )
    if exc.status_code == status.HTTP_403_FORBIDDEN:
        return HTMLResponse(page.render_forbidden(str(exc.detail)), status_code=403)
    return await http_exception_handler(request, exc)


# -- routes ---------------------------------------------------------------------------------------


def _add_routes(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(
        "/api/dags",
        response_model=DagList,
        summary="DAGs you may read that have runs",
        responses={401: ERROR_RESPONSES[401]},
    )
    def list_dags(session: SessionDep, readable: ReadableRunsDep) -> DagList:
        return DagList(dag_ids=metadata_db.dags_with_runs(session, readable.value or set()))

    @app.get(
        "/api/runs",
        response_model=RunList,
        summary="Runs of the DAGs you may read, newest first",
        responses={401: ERROR_RESPONSES[401]},
    )
    def list_runs(
        request: Request,
        session: SessionDep,
        readable: ReadableRunsDep,
        dag_id: Annotated[
            str | None, Query(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH)
        ] = None,
        state: Annotated[Literal["queued", "running", "success", "failed"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> RunList:
        """DAGs you may not read are left out, as Airflow's own lists do; `total` counts the
        matching runs in all pages."""
        rows, total = metadata_db.list_runs(
            session,
            readable_dag_ids=readable.value or set(),
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

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/report",
        response_model=RunReport,
        response_model_by_alias=True,
        summary="One run's bottleneck report",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
        responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
    )
    def run_report(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        dag_id: DagIdPath,
        run_id: RunIdPath,
        format: FormatQuery = "json",
        time_scale: TimeScaleQuery = None,
        detail: Annotated[
            bool, Query(description="include every try of every task instance")
        ] = False,
    ) -> Any:
        """Wall time; every task's seconds, share, start-up, work and slack; the critical path
        in the graph of the DAG version the run was created with; the wall time split along it
        into work, start-ups, hand-offs and waiting; mapped roll-ups; each task's seconds over
        the DAG's last runs; for a DAG a report extension describes, its what-if and its
        targets. A run that has not finished is `partial`."""
        report = load_report(request, session, user, dag_id, run_id, time_scale, detail=detail)
        if format == "markdown":
            return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)
        return report

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/report.md",
        response_class=PlainTextResponse,
        summary="One run's bottleneck report as Markdown",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
        responses={
            200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
            **ERROR_RESPONSES,
        },
    )
    def run_report_markdown(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        dag_id: DagIdPath,
        run_id: RunIdPath,
        time_scale: TimeScaleQuery = None,
    ) -> PlainTextResponse:
        report = load_report(request, session, user, dag_id, run_id, time_scale)
        return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}",
        response_model=Comparison,
        response_model_by_alias=True,
        summary="Run A (the path's first run, the reference) against run B",
        dependencies=[
            Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
            Depends(_require_other_dag),
        ],
        responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
    )
    def compare_runs(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        dag_id: DagIdPath,
        run_id: RunIdPath,
        other_dag_id: OtherDagIdPath,
        other_run_id: OtherRunIdPath,
        format: FormatQuery = "json",
    ) -> Any:
        """Production seconds (measured / each run's time scale), so runs at different scales
        compare: the verdict (faster/slower/same) with a factor >= 1, how much of the
        difference is work and how much orchestration, per-task deltas (per numbered task for
        an extension's DAGs), A's what-if against B's measured wall time, and both runs'
        targets."""
        a = load_report(request, session, user, dag_id, run_id)
        b = load_report(request, session, user, other_dag_id, other_run_id)
        comparison = reports.compare(a, b)
        if format == "markdown":
            return PlainTextResponse(render_comparison(comparison, "markdown"), media_type=MARKDOWN)
        return comparison

    @app.get(
        "/",
        response_class=HTMLResponse,
        summary="The bottleneck page (HTML)",
        responses={401: {"description": "no Airflow session: a page with a sign-in link"}},
    )
    def bottleneck_page(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        readable: ReadableRunsDep,
        dag_id: Annotated[
            str | None, Query(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH)
        ] = None,
        run_id: Annotated[
            str | None, Query(pattern=RUN_ID_PATTERN, max_length=ID_MAX_LENGTH)
        ] = None,
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
        return HTMLResponse(page.render_page(model), status_code=status_code)


def _run_summary(request: Request, row: metadata_db.RunRow) -> RunSummary:
    mounted = root(request)
    report = page.api_url(mounted, row.dag_id, row.run_id)
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
