"""The FastAPI app Airflow's API server mounts at `/k1n` (built by `create_app`).

Routes (all GET), for every DAG the user may read:

- `/k1n/`: the HTML page (`?dag_id=&run=DAG/RUN&a=DAG/RUN&b=DAG/RUN&offset=`, or
  `?dag_id=DAG&run_id=RUN`, which is what the run page's "Bottleneck report" tab sends);
- `/k1n/api/dags`: the DAGs you may read that have runs;
- `/k1n/api/runs`: their runs, newest first, paginated (`dag_id`, `state`, `limit`, `offset`);
- `/k1n/api/dags/{dag_id}/runs/{run_id}/report`: one run's report (`RunReport`;
  `?format=markdown`), and `.../report.md`;
- `/k1n/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}`: run A (the
  reference) against run B (`Comparison`; `?format=markdown`);
- `/k1n/openapi.json`: this app's OpenAPI document (the report models are the analysis' own).

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

import logging
import re
from dataclasses import dataclass
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
from include.k1n.analysis.model import Comparison, Links, RunReport
from include.k1n.ui import URL_PREFIX, page, reports, store
from include.k1n.ui.api_models import DagList, Problem, RunLinks, RunList, RunSummary
from include.k1n.workflow.names import WORKFLOW_DAG_IDS
from include.k1n.workflow.spec import SpecError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Airflow's DAG id rule (letters, digits, `_`, `.`, `-`); run ids are free text up to 250.
DAG_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
ID_MAX_LENGTH = 250
PAGE_RUN_LIMIT = 25
MAX_OFFSET = 2**31 - 1
MARKDOWN = "text/markdown; charset=utf-8"

DagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="a DAG id")
]
# Run ids are free text, but never hold control characters (PostgreSQL refuses NUL in text).
RUN_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
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
        title="K1N bottlenecks",
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
        data = store.load_run(
            session, dag_id, run_id, read_xcom=_may_read(user, dag_id, DagAccessEntity.XCOM)
        )
        report = reports.analyze(data, time_scale=time_scale, detail=detail)
        return report.model_copy(update={"links": _links(request, report)})
    except store.RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except reports.ReportUnavailable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except SpecError as exc:
        log.error("K1N workflow spec unusable: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


def _root(request: Request) -> str:
    """Where this app is mounted (`/k1n`, behind any `[api] base_url` path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _ui_base(request: Request) -> str:
    """The Airflow UI's base path (where this app's prefix is mounted)."""
    return _root(request).removesuffix(URL_PREFIX)


def _run_ui_path(request: Request, dag_id: str, run_id: str) -> str:
    return f"{_ui_base(request)}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _links(request: Request, report: RunReport) -> Links:
    """The run's page in the Airflow UI (grid, Gantt button) and each task's logs."""
    run = _run_ui_path(request, report.dag_id, report.run_id)
    return Links(
        run=run,
        tasks={
            task.task: f"{run}/tasks/{quote(task.task, safe='')}"
            + ("/mapped" if task.mapped else "")
            for task in report.tasks
        },
    )


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
        "/api/dags",
        response_model=DagList,
        summary="DAGs you may read that have runs",
        responses={401: ERROR_RESPONSES[401]},
    )
    def list_dags(session: SessionDep, readable: ReadableRunsDep) -> DagList:
        return DagList(dag_ids=store.dags_with_runs(session, readable.value or set()))

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
        rows, total = store.list_runs(
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
        the DAG's last runs; for the K1N workflow, the declared-dependency what-if and the
        targets. A run that has not finished is `partial`."""
        report = _report(request, session, user, dag_id, run_id, time_scale, detail=detail)
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
        report = _report(request, session, user, dag_id, run_id, time_scale)
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
        difference is work and how much orchestration, per-task deltas (per spec task for the
        K1N workflow), A's what-if against B's measured wall time, and both runs' targets."""
        a = _report(request, session, user, dag_id, run_id)
        b = _report(request, session, user, other_dag_id, other_run_id)
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
        model, status_code = _page_model(request, session, user, readable, asked)
        return HTMLResponse(page.render_page(model), status_code=status_code)


def _run_summary(request: Request, row: store.RunRow) -> RunSummary:
    root = _root(request)
    report = page.api_url(root, row.dag_id, row.run_id)
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
            page=f"{root}/?run={quote(row.key, safe='/')}",
            airflow=_run_ui_path(request, row.dag_id, row.run_id),
        ),
    )


# -- the page's model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """What the page's query string asks for."""

    dag_filter: str | None
    run: str | None
    a: str | None
    b: str | None
    offset: int


class _PageError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _split_key(key: str) -> tuple[str, str]:
    """`dag_id/run_id` -> its parts (DAG ids have no `/`; run ids may)."""
    dag_id, _, run_id = key.partition("/")
    if not dag_id or not run_id:
        raise _PageError(422, f"run {key!r}: expected DAG_ID/RUN_ID")
    if not _valid_run_id(run_id) or not _valid_dag_id(dag_id):
        raise _PageError(422, f"run {key!r}: not a valid DAG id / run id")
    return dag_id, run_id


def _valid_run_id(run_id: str) -> bool:
    return len(run_id) <= ID_MAX_LENGTH and re.fullmatch(RUN_ID_PATTERN, run_id) is not None


def _valid_dag_id(dag_id: str) -> bool:
    return len(dag_id) <= ID_MAX_LENGTH and re.fullmatch(DAG_ID_PATTERN, dag_id) is not None


def _page_report(request: Request, session: Session, user: BaseUser, key: str) -> RunReport:
    dag_id, run_id = _split_key(key)
    if not _may_read(user, dag_id, DagAccessEntity.TASK_INSTANCE):
        raise _PageError(403, f"you may not read the task instances of {dag_id}")
    try:
        # The page draws every try and every map index: the detailed report.
        return _report(request, session, user, dag_id, run_id, detail=True)
    except HTTPException as exc:
        raise _PageError(exc.status_code, f"{key}: {exc.detail}") from None


def _default_keys(
    session: Session, runs: list[store.RunRow], readable: set[str], dag_filter: str | None
) -> tuple[str | None, str | None, str | None]:
    """The newest finished run to report on; to compare, the newest successful baseline
    against the newest successful optimized run when both are readable (and no other DAG is
    filtered for)."""
    done = [r for r in runs if r.state in ("success", "failed")] or runs
    run_key = done[0].key if done else None
    pair = [d for d in WORKFLOW_DAG_IDS if d in readable and dag_filter in (None, d)]
    if len(pair) < 2 or dag_filter is not None:
        return run_key, None, None
    newest = store.newest_runs(session, pair)
    if not all(d in newest for d in pair):
        return run_key, None, None
    a_dag, b_dag = pair
    return run_key, f"{a_dag}/{newest[a_dag]}", f"{b_dag}/{newest[b_dag]}"


def _page_model(
    request: Request,
    session: Session,
    user: BaseUser,
    readable_filter: PermittedDagRunFilter,
    asked: PageRequest,
) -> tuple[page.PageModel, int]:
    """Defaults for what is not asked for; errors of what is asked for shown in the page."""
    readable = set(readable_filter.value or ())
    dag_filter = asked.dag_filter if asked.dag_filter in readable else None
    messages = []
    if asked.dag_filter and dag_filter is None:
        messages.append(f"DAG {asked.dag_filter!r}: no such DAG you may read; showing every DAG")
    runs, total = store.list_runs(
        session,
        readable_dag_ids=readable,
        dag_id=dag_filter,
        limit=PAGE_RUN_LIMIT,
        offset=asked.offset,
    )
    default_run, default_a, default_b = _default_keys(session, runs, readable, dag_filter)
    explicit_pair = asked.a is not None or asked.b is not None
    model = page.PageModel(
        root=_root(request),
        dag_ids=store.dags_with_runs(session, readable),
        runs=runs,
        total=total,
        limit=PAGE_RUN_LIMIT,
        offset=asked.offset,
        dag_filter=dag_filter,
        run_key=asked.run or default_run,
        a_key=(asked.a or None) if explicit_pair else default_a,
        b_key=(asked.b or None) if explicit_pair else default_b,
        messages=messages,
    )
    # The page answers with the status of the first problem in what was explicitly asked for;
    # a default that cannot be shown (e.g. a run still queued) is only a message.
    statuses: list[int] = []
    loaded: dict[str, RunReport] = {}  # the reported run is often one of the pair

    def load(key: str) -> RunReport:
        if key not in loaded:
            loaded[key] = _page_report(request, session, user, key)
        return loaded[key]

    if model.run_key:
        try:
            model.report = load(model.run_key)
        except _PageError as exc:
            model.report_error = str(exc)
            if asked.run:
                statuses.append(exc.status_code)
    if model.a_key and model.b_key:
        try:
            model.a_report, model.b_report = load(model.a_key), load(model.b_key)
            model.comparison = reports.compare(model.a_report, model.b_report)
        except _PageError as exc:
            model.compare_error = str(exc)
            if explicit_pair:
                statuses.append(exc.status_code)
    elif model.a_key or model.b_key:
        model.compare_error = "pick both runs to compare"
    model.choices = _choices(session, runs, model)
    return model, statuses[0] if statuses else 200


def _choices(session: Session, runs: list[store.RunRow], model: page.PageModel) -> list:
    """The pickers' runs: this page of the list, plus the chosen runs when not on it."""
    listed = {row.key for row in runs}
    chosen = [
        key
        for key in dict.fromkeys((model.run_key, model.a_key, model.b_key))
        if key and key not in listed and "/" in key
    ]
    extra = store.run_rows(session, [tuple(key.split("/", 1)) for key in chosen])
    return [*runs, *extra]
