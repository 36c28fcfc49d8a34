"""The FastAPI app Airflow's API server mounts at `/k1n` (built by `create_app`).

Routes (all GET):

- `/k1n/`: the HTML page (`?run=DAG/RUN&a=DAG/RUN&b=DAG/RUN`);
- `/k1n/api/runs`: runs of the K1N DAGs the user may read;
- `/k1n/api/dags/{dag_id}/runs/{run_id}/report`: one run's report (JSON; `?format=markdown`);
- `/k1n/api/dags/{dag_id}/runs/{run_id}/report.md`: the same report as markdown;
- `/k1n/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}`: run A (the
  reference) against run B (JSON; `?format=markdown`);
- `/k1n/openapi.json`: this app's OpenAPI document.

Security. Airflow mounts plugin apps with no authentication of their own, so this app brings
it: an app-level `get_user` dependency (Airflow's own: an `Authorization: Bearer <JWT>` header,
or the UI's `_token` cookie, which is what the Browse-menu iframe sends) answers 401 before any
route runs. Routes naming a DAG in the path check `requires_access_dag("GET", TASK_INSTANCE)`
through the configured auth manager; the comparison checks its second DAG the same way; the
run list is filtered with `permitted_dag_filter_factory`; the quality pass rate (an XCom) is
only read when the user may read that DAG's XComs. Unknown DAG or run: 404; malformed
parameters: 422; a run with nothing to analyze yet: 409. A browser without a session asking for
the page gets a 401 page with a sign-in link instead of JSON.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import (
    GetUserDep,
    PermittedDagRunFilter,
    auth_manager_from_app,
    get_user,
    permitted_dag_filter_factory,
    requires_access_dag,
)
from airflow.models.dag import DagModel
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.k1n.analysis import render_comparison, render_report
from include.k1n.analysis.report import RunReport
from include.k1n.ui import models, page, reports, store
from include.k1n.workflow.spec import SpecError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Airflow's DAG id rule (letters, digits, `_`, `.`, `-`); run ids are free text up to 250.
DAG_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
ID_MAX_LENGTH = 250
PAGE_RUN_LIMIT = 100
MARKDOWN = "text/markdown; charset=utf-8"

DagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="a K1N DAG id")
]
RunIdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, description="a run id")]
OtherDagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="run B's DAG id")
]
OtherRunIdPath = Annotated[
    str, Path(min_length=1, max_length=ID_MAX_LENGTH, description="run B's run id")
]
FormatQuery = Annotated[
    Literal["json", "markdown"], Query(description="`markdown` answers text/markdown")
]
TimeScaleQuery = Annotated[
    float | None,
    Query(
        gt=0,
        le=1000,
        description="override the run's recorded time scale (production seconds x scale)",
    ),
]
ReadableRunsDep = Annotated[
    PermittedDagRunFilter,
    Depends(permitted_dag_filter_factory("GET", PermittedDagRunFilter)),
]
RunKeyQuery = Annotated[str | None, Query(max_length=2 * ID_MAX_LENGTH + 1)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": models.Problem, "description": "no or expired Airflow token"},
    403: {"model": models.Problem, "description": "not allowed to read this DAG's runs"},
    404: {"model": models.Problem, "description": "not a K1N DAG, or no such run"},
    409: {"model": models.Problem, "description": "the run has nothing to analyze yet"},
}
MARKDOWN_RESPONSE: dict[str, Any] = {
    "content": {"text/markdown": {"schema": {"type": "string"}}},
    "description": "the report (`format=json`) or its markdown rendering (`format=markdown`)",
}


def create_app() -> FastAPI:
    """The plugin app; built once per API server process, on its first request."""
    app = FastAPI(
        title="K1N bottlenecks",
        version="1",
        description=(
            "Bottleneck reports of the K1N workflow's DAG runs, read from the Airflow metadata "
            "DB. Every route needs an Airflow JWT (`Authorization: Bearer`, from "
            "`POST /auth/token`, or the UI's `_token` cookie) and read access to the DAGs."
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


def _team(dag_id: str) -> str | None:
    return DagModel.get_team_name(dag_id)  # cached by Airflow


def _may_read(user: BaseUser, dag_id: str, entity: DagAccessEntity) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=entity,
        details=DagDetails(id=dag_id, team_name=_team(dag_id)),
        user=user,
    )


def _require_other_dag(request: Request, other_dag_id: OtherDagIdPath, user: GetUserDep) -> None:
    """The comparison's second DAG needs the same access as the one `requires_access_dag`
    checks from `{dag_id}`."""
    requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE, param_dag_id=other_dag_id)(
        request, user
    )


def _report(
    session: Session, user: BaseUser, dag_id: str, run_id: str, time_scale: float | None
) -> RunReport:
    """Load and analyze one run; 404/409/503 as HTTP errors (never a 500 for bad input)."""
    try:
        data = store.load_run(
            session, dag_id, run_id, read_xcom=_may_read(user, dag_id, DagAccessEntity.XCOM)
        )
        return reports.analyze(data, time_scale=time_scale)
    except store.RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except reports.ReportUnavailable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except SpecError as exc:
        log.error("K1N workflow spec unusable: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: replace them with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _root(request: Request) -> str:
    """Where this app is mounted (`/k1n`, behind any `[api] base_url` path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _is_page(request: Request) -> bool:
    return request.scope.get("path", "").rstrip("/") == _root(request)


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
        "/api/runs",
        response_model=models.RunList,
        summary="Runs of the K1N DAGs you may read",
        responses={401: ERROR_RESPONSES[401]},
    )
    def list_runs(
        request: Request,
        session: SessionDep,
        readable: ReadableRunsDep,
        dag_id: Annotated[store.K1NDagId | None, Query()] = None,
        state: Annotated[Literal["queued", "running", "success", "failed"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Newest first. DAGs you may not read are left out, as Airflow's own lists do."""
        root = _root(request)
        rows = store.list_runs(
            session,
            readable_dag_ids=readable.value or set(),
            dag_id=dag_id,
            state=state,
            limit=limit,
            offset=offset,
        )
        return _finite(
            {
                "runs": [_run_summary(root, row) for row in rows],
                "count": len(rows),
                "limit": limit,
                "offset": offset,
            }
        )

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/report",
        response_model=models.RunReport,
        summary="One run's bottleneck report",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
        responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
    )
    def run_report(
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
        """Wall time, every task's seconds and share, the critical path (the spec's declared
        dependencies with the measured durations), orchestration overhead, mapped roll-ups,
        the what-if of running every independent task in parallel, and the spec's targets."""
        report = _report(session, user, dag_id, run_id, time_scale)
        if format == "markdown":
            return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)
        return _finite(report.as_dict(detail=detail))

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/report.md",
        response_class=PlainTextResponse,
        summary="One run's bottleneck report as markdown",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
        responses={
            200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
            **ERROR_RESPONSES,
        },
    )
    def run_report_markdown(
        session: SessionDep,
        user: GetUserDep,
        dag_id: DagIdPath,
        run_id: RunIdPath,
        time_scale: TimeScaleQuery = None,
    ) -> PlainTextResponse:
        report = _report(session, user, dag_id, run_id, time_scale)
        return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)

    @app.get(
        "/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}",
        response_model=models.Comparison,
        summary="Run A (the path's first run, the reference) against run B",
        dependencies=[
            Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
            Depends(_require_other_dag),
        ],
        responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
    )
    def compare_runs(
        session: SessionDep,
        user: GetUserDep,
        dag_id: DagIdPath,
        run_id: RunIdPath,
        other_dag_id: OtherDagIdPath,
        other_run_id: OtherRunIdPath,
        format: FormatQuery = "json",
    ) -> Any:
        """Production seconds (measured / each run's time scale), so runs at different scales
        compare: wall and task time, speedup, per-task deltas (Task 8's group as one task), A's
        what-if against B's measured wall time, and both runs' targets."""
        a = _report(session, user, dag_id, run_id, None)
        b = _report(session, user, other_dag_id, other_run_id, None)
        comparison = reports.compare(a, b)
        if format == "markdown":
            return PlainTextResponse(render_comparison(comparison, "markdown"), media_type=MARKDOWN)
        return _finite(comparison.as_dict())

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
        run: Annotated[RunKeyQuery, Query(description="`dag_id/run_id` to report on")] = None,
        a: Annotated[RunKeyQuery, Query(description="reference run of the comparison")] = None,
        b: Annotated[RunKeyQuery, Query(description="run compared with the reference")] = None,
    ) -> HTMLResponse:
        """Runs, one run's report with charts, and two runs on one time axis."""
        model, status_code = _page_model(request, session, user, readable, run, a, b)
        return HTMLResponse(page.render_page(model), status_code=status_code)


def _run_summary(root: str, row: store.RunRow) -> dict[str, Any]:
    report = page.api_url(root, row.dag_id, row.run_id)
    return {
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "label": row.label,
        "state": row.state,
        "run_type": row.run_type,
        "queued_at": row.queued_at,
        "start_date": row.start,
        "end_date": row.end,
        "wall_seconds": row.wall_seconds,
        "time_scale": row.time_scale,
        "production_wall_seconds": row.production_wall_seconds,
        "links": {
            "report": report,
            "markdown": f"{report}.md",
            "page": f"{root}/?run={quote(row.key, safe='/')}",
        },
    }


# -- the page's model -----------------------------------------------------------------------------


class _PageError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _split_key(key: str) -> tuple[str, str]:
    """`dag_id/run_id` -> its parts (DAG ids have no `/`; run ids may)."""
    dag_id, _, run_id = key.partition("/")
    if not dag_id or not run_id:
        raise _PageError(422, f"run {key!r}: expected DAG_ID/RUN_ID")
    if len(run_id) > ID_MAX_LENGTH or not _valid_dag_id(dag_id):
        raise _PageError(422, f"run {key!r}: not a valid DAG id / run id")
    return dag_id, run_id


def _valid_dag_id(dag_id: str) -> bool:
    return len(dag_id) <= ID_MAX_LENGTH and re.fullmatch(DAG_ID_PATTERN, dag_id) is not None


def _page_report(session: Session, user: BaseUser, key: str) -> RunReport:
    dag_id, run_id = _split_key(key)
    if not _may_read(user, dag_id, DagAccessEntity.TASK_INSTANCE):
        raise _PageError(403, f"you may not read the task instances of {dag_id}")
    try:
        return _report(session, user, dag_id, run_id, None)
    except HTTPException as exc:
        raise _PageError(exc.status_code, f"{key}: {exc.detail}") from None


def _default_keys(runs: list[store.RunRow]) -> tuple[str | None, str | None, str | None]:
    """Newest successful run to report on; newest successful baseline vs optimized to compare."""
    done = [r for r in runs if r.state == "success"] or runs
    run_key = done[0].key if done else None
    newest = {
        dag: next((r.key for r in done if r.dag_id == dag), None) for dag in store.K1N_DAG_IDS
    }
    a_key, b_key = (newest[d] for d in store.K1N_DAG_IDS)
    if a_key is None or b_key is None:
        a_key = b_key = None
    return run_key, a_key, b_key


def _page_model(
    request: Request,
    session: Session,
    user: BaseUser,
    readable: PermittedDagRunFilter,
    run: str | None,
    a: str | None,
    b: str | None,
) -> tuple[page.PageModel, int]:
    """Defaults for what is not asked for; errors of what is asked for shown in the page."""
    runs = store.list_runs(session, readable_dag_ids=readable.value or set(), limit=PAGE_RUN_LIMIT)
    default_run, default_a, default_b = _default_keys(runs)
    explicit_pair = a is not None or b is not None
    model = page.PageModel(
        root=_root(request),
        runs=runs,
        run_key=run or default_run,
        a_key=(a or None) if explicit_pair else default_a,
        b_key=(b or None) if explicit_pair else default_b,
    )
    # The page answers with the status of the first problem in what was explicitly asked for;
    # a default that cannot be shown (e.g. a run still queued) is only a message.
    statuses: list[int] = []
    loaded: dict[str, RunReport] = {}  # the reported run is often one of the pair

    def load(key: str) -> RunReport:
        if key not in loaded:
            loaded[key] = _page_report(session, user, key)
        return loaded[key]

    if model.run_key:
        try:
            model.report = load(model.run_key)
        except _PageError as exc:
            model.report_error = str(exc)
            if run:
                statuses.append(exc.status_code)
    if model.a_key and model.b_key:
        try:
            pair = [load(key) for key in (model.a_key, model.b_key)]
            model.comparison = reports.compare(*pair)
        except _PageError as exc:
            model.compare_error = str(exc)
            if explicit_pair:
                statuses.append(exc.status_code)
    elif model.a_key or model.b_key:
        model.compare_error = "pick both runs to compare"
    return model, statuses[0] if statuses else 200
