"""The bottleneck report inside Airflow: a FastAPI app for the API server plus a UI entry.

`airflow_bottleneck.plugin` registers what this package builds:

- `plugin_app()`: the ASGI app Airflow mounts at `URL_PREFIX` (`/bottlenecks`) in its API
  server. It serves a self-contained HTML page (`/bottlenecks/`) and JSON/markdown endpoints
  under `/bottlenecks/api/` (see `airflow_bottleneck.web.app`). Every route needs an
  authenticated Airflow user and DAG-level read access; Airflow itself mounts plugin apps
  without any authentication.
- `external_views()`: the entry in the Airflow UI's Browse menu that shows the page in an
  iframe, and a "Bottleneck report" tab on every DAG run's page (`destination="dag_run"`: the
  UI puts the run's `{DAG_ID}` and `{RUN_ID}`, URL-encoded, into the href). The iframe sends
  the UI's `_token` JWT cookie, which the app accepts.

Why lazy: Airflow imports every module of the plugins folder in *every* process that loads
plugins, including each task's process (for macros). The real app pulls in pandas, networkx and
Airflow's API security module (~1 s of imports); building it on the first request keeps task
start-up free of that cost. This module imports only the standard library.
"""

from __future__ import annotations

from typing import Any

from airflow_bottleneck.web.lazy import LazyASGIApp

URL_PREFIX = "/bottlenecks"
APP_NAME = "Bottlenecks"
# The UI shows an external view with a `url_route` at /plugin/<url_route>, in an iframe.
VIEW_URL_ROUTE = "bottlenecks"
RUN_VIEW_NAME = "Bottleneck report"
RUN_VIEW_URL_ROUTE = "bottleneck-report"

_app = LazyASGIApp("airflow_bottleneck.web.app:create_app")


def plugin_app() -> LazyASGIApp:
    """The app Airflow mounts at `URL_PREFIX`; one per process, built on its first request."""
    return _app


def fastapi_app_entry() -> dict[str, Any]:
    """The plugin's `fastapi_apps` entry."""
    return {"app": plugin_app(), "url_prefix": URL_PREFIX, "name": APP_NAME}


def external_views() -> list[dict[str, Any]]:
    """The plugin's `external_views`: a Browse menu item, and a tab on every run's page.

    The hrefs are relative: the Airflow UI resolves them against its `<base href>` (the API
    server's base URL), so they also work when Airflow is served under a path prefix.
    """
    page = URL_PREFIX.lstrip("/") + "/"
    return [
        {
            "name": APP_NAME,
            "href": page,
            "url_route": VIEW_URL_ROUTE,
            "category": "browse",
            "destination": "nav",
        },
        {
            "name": RUN_VIEW_NAME,
            "href": page + "?dag_id={DAG_ID}&run_id={RUN_ID}",
            "url_route": RUN_VIEW_URL_ROUTE,
            "destination": "dag_run",
        },
    ]


__all__ = [
    "APP_NAME",
    "RUN_VIEW_NAME",
    "RUN_VIEW_URL_ROUTE",
    "URL_PREFIX",
    "VIEW_URL_ROUTE",
    "LazyASGIApp",
    "external_views",
    "fastapi_app_entry",
    "plugin_app",
]
