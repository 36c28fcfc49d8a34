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

from collections.abc import Awaitable, Callable

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import auth_manager_from_app, get_user
from fastapi import Depends, FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_bottleneck.render import html
from airflow_bottleneck.web import APP_NAME
from airflow_bottleneck.web.access import root
from airflow_bottleneck.web.routes import html_page, look_ahead, run_list, run_report


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
    app.middleware("http")(_security_headers)
    for routes in (run_list, run_report, look_ahead, html_page):
        app.include_router(routes.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """No content sniffing, no referrer beyond this origin, and the page's script policy."""
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", html.CONTENT_SECURITY_POLICY)
    return response


# -- errors ----------------------------------------------------------------------------------------


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
            html.render_login_hint(login_url, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )
    if exc.status_code == status.HTTP_403_FORBIDDEN:
        return HTMLResponse(html.render_forbidden(str(exc.detail)), status_code=403)
    return await http_exception_handler(request, exc)
