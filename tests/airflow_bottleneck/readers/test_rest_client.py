"""The REST client's bounds and waits, against an in-process transport (no server)."""

from __future__ import annotations

import httpx
import pytest

from airflow_bottleneck.readers import rest_client
from airflow_bottleneck.readers.rest_client import AirflowRestClient, AirflowRestError


def client_for(handler) -> AirflowRestClient:
    return AirflowRestClient("http://airflow.test", "token", transport=httpx.MockTransport(handler))


def test_a_list_that_never_ends_stops_at_the_page_bound(monkeypatch) -> None:
    monkeypatch.setattr(rest_client, "MAX_PAGES", 5)
    asked = []

    def always_full(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["offset"])
        items = [{"id": i} for i in range(rest_client.PAGE_SIZE)]
        return httpx.Response(200, json={"items": items})  # no total_entries, never short

    with pytest.raises(AirflowRestError, match="more than 500 items") as caught:
        list(client_for(always_full).pages("/api/v2/things", "items"))
    assert len(asked) == 5
    assert "\n" not in str(caught.value)


def test_a_list_ends_at_its_total() -> None:
    def two_pages(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        items = [{"id": offset + i} for i in range(rest_client.PAGE_SIZE)]
        return httpx.Response(200, json={"items": items, "total_entries": 200})

    items = list(client_for(two_pages).pages("/api/v2/things", "items"))
    assert [item["id"] for item in items] == list(range(200))


def test_waiting_for_a_run_asks_again_through_5xx_and_returns_the_finished_run() -> None:
    answers = iter([503, 200, 200])
    states = iter(["running", "success"])

    def flaky(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status != 200:
            return httpx.Response(status, text="restarting")
        return httpx.Response(200, json={"dag_run_id": "r", "state": next(states)})

    run = client_for(flaky).wait_for_run("dag", "r", timeout=30, poll=0.01)
    assert run["state"] == "success"


def test_waiting_for_a_run_gives_up_with_its_last_state() -> None:
    def forever_running(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"dag_run_id": "r", "state": "running"})

    with pytest.raises(AirflowRestError, match=r"dag r still running after 0\.2 s"):
        client_for(forever_running).wait_for_run("dag", "r", timeout=0.2, poll=0.05)


def test_waiting_for_a_run_stops_at_once_on_a_client_error() -> None:
    calls = []

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(403, json={"detail": "no"})

    with pytest.raises(AirflowRestError, match="HTTP 403"):
        client_for(refused).wait_for_run("dag", "r", timeout=30, poll=0.01)
    assert len(calls) == 1


def test_waiting_for_a_dag_names_the_import_errors() -> None:
    def not_parsed(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/importErrors"):
            return httpx.Response(200, json={"import_errors": [{"stack_trace": "bad.py: boom"}]})
        return httpx.Response(404, json={"detail": "not found"})

    with pytest.raises(AirflowRestError, match=r"not loaded after 0\.1 s.*bad\.py: boom"):
        client_for(not_parsed).wait_for_dag("dag", timeout=0.1)
