"""`LazyASGIApp`: the real app is built once, on first use, and serves the requests."""

from __future__ import annotations

import threading

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from airflow_bottleneck.web.lazy import LazyASGIApp

BUILDS: list[int] = []


def make_app() -> Starlette:
    """The factory under test: counts its calls."""
    BUILDS.append(1)

    async def hello(request):
        return PlainTextResponse(f"hello {request.scope['root_path']}")

    return Starlette(routes=[Route("/", hello)])


@pytest.fixture(autouse=True)
def _reset():
    BUILDS.clear()


def test_builds_on_first_request_only():
    lazy = LazyASGIApp(f"{__name__}:make_app")
    assert not lazy.built and BUILDS == []
    with TestClient(lazy) as client:  # lifespan startup/shutdown are answered
        assert client.get("/").text == "hello "
        assert client.get("/").status_code == 200
    assert lazy.built and len(BUILDS) == 1


def test_concurrent_first_uses_build_one_app():
    lazy = LazyASGIApp(f"{__name__}:make_app")
    barrier = threading.Barrier(8)
    apps = []

    def use():
        barrier.wait()
        apps.append(lazy.app)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(BUILDS) == 1 and len({id(app) for app in apps}) == 1


def test_mounted_under_a_prefix():
    outer = Starlette()
    outer.mount("/bottlenecks", LazyASGIApp(f"{__name__}:make_app"))
    assert TestClient(outer).get("/bottlenecks/").text == "hello /bottlenecks"


@pytest.mark.parametrize("path", ["no_colon", ":make_app", "module:"])
def test_rejects_a_malformed_factory_path(path):
    with pytest.raises(ValueError, match=r"package\.module:function"):
        LazyASGIApp(path)
