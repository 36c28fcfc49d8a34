"""The redirect from the K1N project's old report URLs to the airflow-bottleneck plugin."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from airflow_bottleneck.web import URL_PREFIX

LEGACY_URL_PREFIX = "/k1n"


async def _redirect(request: Request) -> RedirectResponse:
    # root_path ends with the legacy prefix (behind any `[api] base_url` path): swap it.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    base = root.removesuffix(LEGACY_URL_PREFIX)
    path = request.path_params.get("path", "")
    query = request.url.query
    target = f"{base}{URL_PREFIX}/{path}" + (f"?{query}" if query else "")
    return RedirectResponse(target, status_code=307)


def legacy_redirect_app() -> Starlette:
    """An app that answers every method on every path with a 307 to the new prefix."""
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", _redirect, methods=methods)])
