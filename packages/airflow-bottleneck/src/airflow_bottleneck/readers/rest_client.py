"""The one client of Airflow's REST API v2 in this project (httpx; Airflow itself not imported).

Used by the analysis (reading a run: `airflow_bottleneck.readers.rest_api`), by a project's
own tooling (trigger, unpause, wait) and by the tests. It logs in with
`POST {url}/auth/token` (`{username, password}` -> `access_token`) and sends the token as
`Authorization: Bearer`.

Every failure (unreachable URL, refused login, an error status, an answer that is not JSON)
raises one `AirflowRestError` whose message is a single line naming the call and the problem;
`status` carries the HTTP status when there was one. Waiting goes through tenacity; list
endpoints are followed for at most `MAX_PAGES` pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

PAGE_SIZE = 100
# 100 000 items at most from one list: far more than any run has task instances, and a bound
# on what an api-server that keeps answering full pages can make this client read.
MAX_PAGES = 1000
FINISHED_RUN_STATES = frozenset({"success", "failed"})


class AirflowRestError(RuntimeError):
    """A REST call that failed; one line naming the call and the problem."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def quoted(value: str) -> str:
    """A path segment: DAG ids are plain, but run ids hold `:` and `+` (and may hold `/`)."""
    return quote(str(value), safe="")


def run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{quoted(dag_id)}/dagRuns/{quoted(run_id)}"


class AirflowRestClient:
    """A logged-in session with one Airflow api-server."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self.http = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise AirflowRestError(f"invalid Airflow URL {base_url!r}: {exc}") from None

    @classmethod
    def login(
        cls,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> AirflowRestClient:
        """Log in with user name and password; the token lives as long as Airflow allows."""
        client = cls(base_url, None, timeout=timeout, transport=transport)
        token = client.request(
            "POST",
            "/auth/token",
            json={"username": username, "password": password},
            not_found=f"{client.base_url} has no /auth/token: is it an Airflow 3 api-server?",
        )
        if not isinstance(token, Mapping) or not isinstance(token.get("access_token"), str):
            client.close()
            raise AirflowRestError(f"{client.base_url}/auth/token answered without access_token")
        client.http.headers["Authorization"] = f"Bearer {token['access_token']}"
        return client

    def __enter__(self) -> AirflowRestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def token(self) -> str:
        return self.http.headers["Authorization"].removeprefix("Bearer ")

    # -- the one request path ----------------------------------------------------------------

    def request(self, method: str, path: str, *, not_found: str | None = "", **kwargs: Any) -> Any:
        """The JSON of one call.

        A 404 raises `not_found` as the message (the default names the call), or returns None
        when `not_found` is None. Other errors raise `AirflowRestError`.
        """
        where = f"{method} {self.base_url}{path}"
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise AirflowRestError(f"{where}: Airflow did not answer in time") from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise AirflowRestError(
                f"cannot reach Airflow at {self.base_url}: {_first_line(exc)}"
            ) from None
        if response.status_code == 404:
            if not_found is None:
                return None
            raise AirflowRestError(not_found or f"{where}: HTTP 404", status=404)
        if response.status_code in (401, 403):
            raise AirflowRestError(
                f"{where}: HTTP {response.status_code} (check the user name and password, "
                "and that the user may read this DAG)",
                status=response.status_code,
            )
        if response.is_error:
            raise AirflowRestError(
                f"{where}: HTTP {response.status_code}: {_first_line(response.text)[:200]}",
                status=response.status_code,
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AirflowRestError(f"{where}: answer is not JSON") from None

    def pages(self, path: str, key: str, **params: Any) -> Iterator[Mapping[str, Any]]:
        """Every item of a paginated list endpoint (`limit`/`offset`, `total_entries`), at most
        `MAX_PAGES` pages of it."""
        offset = 0
        for _ in range(MAX_PAGES):
            page = self.request(
                "GET", path, params={**params, "limit": PAGE_SIZE, "offset": offset}
            )
            batch = page.get(key) if isinstance(page, Mapping) else None
            if not isinstance(batch, list):
                raise AirflowRestError(f"GET {self.base_url}{path}: no {key!r} list in the answer")
            yield from batch
            offset += len(batch)
            total = page.get("total_entries")
            if len(batch) < PAGE_SIZE or (isinstance(total, int) and offset >= total):
                return
        raise AirflowRestError(
            f"GET {self.base_url}{path}: more than {MAX_PAGES * PAGE_SIZE} items, not read further"
        )

    # -- DAGs and runs ------------------------------------------------------------------------

    def dag(self, dag_id: str) -> Mapping[str, Any] | None:
        return self.request("GET", f"/api/v2/dags/{quoted(dag_id)}", not_found=None)

    def dag_tasks(self, dag_id: str) -> list[Mapping[str, Any]]:
        """The DAG's tasks with their `downstream_task_ids` (the latest parsed version)."""
        answer = self.request(
            "GET",
            f"/api/v2/dags/{quoted(dag_id)}/tasks",
            not_found=f"unknown DAG {dag_id} at {self.base_url} (HTTP 404)",
        )
        tasks = answer.get("tasks") if isinstance(answer, Mapping) else None
        if not isinstance(tasks, list):
            raise AirflowRestError(f"/api/v2/dags/{dag_id}/tasks: no 'tasks' list in the answer")
        return tasks

    def import_errors(self) -> list[Mapping[str, Any]]:
        return list(self.pages("/api/v2/importErrors", "import_errors"))

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> Mapping[str, Any]:
        """Wait until the dag-processor has parsed and stored `dag_id`."""
        try:
            return _poll(lambda: self.dag(dag_id), timeout, 0.5)
        except RetryError:
            errors = [error.get("stack_trace") for error in self.import_errors()]
            raise AirflowRestError(
                f"DAG {dag_id} not loaded after {timeout} s; import errors: {errors}"
            ) from None

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{quoted(dag_id)}", json={"is_paused": paused})

    def unpause(self, dag_id: str) -> None:
        self.set_paused(dag_id, False)

    def trigger(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None
    ) -> str:
        """Trigger a run now; its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        created = self.request("POST", f"/api/v2/dags/{quoted(dag_id)}/dagRuns", json=body)
        return str(created["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> Mapping[str, Any]:
        answer = self.request(
            "GET",
            run_path(dag_id, run_id),
            not_found=f"unknown run {dag_id}/{run_id} at {self.base_url} (HTTP 404)",
        )
        if not isinstance(answer, Mapping):
            raise AirflowRestError(f"{run_path(dag_id, run_id)}: expected a JSON object")
        return answer

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 900, poll: float = 0.5
    ) -> Mapping[str, Any]:
        """Wait until the run succeeded or failed; its final dag-run object.

        While waiting, an api-server that is briefly unreachable or answers 5xx (it is
        restarting, its database is away) is asked again, until `timeout`.
        """
        last_state = ["unknown"]

        def finished_run() -> Mapping[str, Any] | None:
            try:
                run = self.dag_run(dag_id, run_id)
            except AirflowRestError as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                return None  # unreachable or 5xx: ask again
            last_state[0] = run["state"]
            return run if run["state"] in FINISHED_RUN_STATES else None

        try:
            return _poll(finished_run, timeout, poll)
        except RetryError:
            raise AirflowRestError(
                f"{dag_id} {run_id} still {last_state[0]} after {timeout} s"
            ) from None

    def task_instances(
        self, dag_id: str, run_id: str, *, earlier_tries: bool = False
    ) -> list[Mapping[str, Any]]:
        """Every task instance of a run, mapped indexes included; with `earlier_tries`, also
        each retried instance's earlier tries (from its `/tries` list), before its latest."""
        path = run_path(dag_id, run_id)
        latest = list(self.pages(f"{path}/taskInstances", "task_instances", order_by="id"))
        if not earlier_tries:
            return latest
        result: list[Mapping[str, Any]] = []
        for item in latest:
            final_try = int(item.get("try_number") or 0)
            if final_try > 1:
                tries = self.request(
                    "GET",
                    f"{path}/taskInstances/{quoted(item['task_id'])}/tries",
                    params={"map_index": item.get("map_index", -1)},
                    not_found=None,
                )
                history = tries.get("task_instances") if isinstance(tries, Mapping) else None
                result.extend(
                    t
                    for t in history or []
                    if isinstance(t, Mapping) and int(t.get("try_number") or 0) < final_try
                )
            result.append(item)
        return result

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """An XCom entry (`{"value": ...}`), or None when there is none."""
        return self.request(
            "GET",
            f"{run_path(dag_id, run_id)}/taskInstances/{quoted(task_id)}/xcomEntries/{quoted(key)}",
            params={"map_index": map_index},
            not_found=None,
        )


def _poll(ask: Any, timeout: float, interval: float) -> Any:
    """`ask()` every `interval` seconds until it returns something other than None; raises
    tenacity's `RetryError` after `timeout` seconds. Exceptions of `ask` propagate."""
    retrying = Retrying(
        retry=retry_if_result(lambda answer: answer is None),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
    )
    return retrying(ask)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
