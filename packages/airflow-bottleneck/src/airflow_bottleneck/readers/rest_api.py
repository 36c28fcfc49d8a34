"""Task instances of one DAG run from the Airflow REST API v2, or from JSON fetched from it.

Calls, all with the bearer token from `POST {url}/auth/token` (`{username, password}` ->
`access_token`):

- `GET /api/v2/dags/{dag_id}/dagRuns/{run_id}`: `start_date`, `end_date`, `state`, `conf`
  (a report extension may read the run's time scale from it);
- `GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset=N&order_by=id`:
  every task instance (mapped indexes are separate entries), page by page;
- for a task instance with `try_number` > 1, `GET .../taskInstances/{task_id}/tries?map_index=N`:
  its earlier tries too (the list above only holds the latest), kept as detail;
- `GET /api/v2/dags/{dag_id}/tasks`: the DAG's graph (each task's `downstream_task_ids`; the
  latest parsed version of the DAG);
- with a report extension that names them: its code-start XCom of each task that recorded one
  (listed with `task_id` `~`, then read one by one), when the task's own code started, for the
  start-up split; and its pass-rate task's `return_value` XCom. A 404 there means "unknown".

The calls go through `airflow_bottleneck.readers.rest_client`; every failure (unreachable URL,
refused login, unknown run, a non-JSON answer) raises one `AnalysisInputError` line. Airflow
itself is never
imported: this runs against any instance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pandas as pd

from airflow_bottleneck.analysis.analyze import RunData, RunInfo
from airflow_bottleneck.analysis.errors import AnalysisInputError
from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.analysis.table import code_start_column
from airflow_bottleneck.extension import ReportExtension, extension_for
from airflow_bottleneck.readers.rest_client import AirflowRestClient, AirflowRestError, run_path

# REST field -> task-instance table column.
TASK_INSTANCE_FIELDS: dict[str, str] = {
    "task_id": "task_id",
    "map_index": "map_index",
    "try_number": "try_number",
    "state": "state",
    "queued_when": "queued",
    "start_date": "start",
    "end_date": "end",
    "duration": "duration",
}


def run_from_airflow_json(
    dag_run: Mapping[str, Any],
    task_instances: Sequence[Mapping[str, Any]],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    quality: Any = None,
    source: str = "",
    tasks: Sequence[Mapping[str, Any]] | None = None,
    code_starts: Mapping[tuple[str, int], float] | None = None,
    extension: ReportExtension | None = None,
) -> RunData:
    """`RunData` from a dag-run object and its task-instance list, as the REST API returns them.

    `task_instances` may hold several tries of one task instance (from the `tries` endpoint);
    the highest `try_number` counts. `quality` is the `check_quality_gates` XCom entry
    (`{"value": {...}}`), its value, or None. `tasks` is the DAG's task list (its graph);
    `code_starts` maps (task id, map index) to when its latest try's code started; `extension`
    reads the time scale and the pass rate (None: the run's seconds are production seconds).
    """
    if not isinstance(dag_run, Mapping):
        raise AnalysisInputError(f"dag run must be a JSON object, got {type(dag_run).__name__}")
    if not isinstance(task_instances, Sequence) or isinstance(task_instances, str | bytes):
        raise AnalysisInputError("task instances must be a JSON list")
    dag_id = dag_id or str(dag_run.get("dag_id") or "")
    run_id = run_id or str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "")
    for index, item in enumerate(task_instances):
        if not isinstance(item, Mapping) or not isinstance(item.get("task_id"), str):
            raise AnalysisInputError(
                f"run {dag_id}/{run_id}: task instance #{index + 1} has no 'task_id'"
            )
    raw = pd.DataFrame.from_records(
        [{field: item.get(field) for field in TASK_INSTANCE_FIELDS} for item in task_instances],
        columns=list(TASK_INSTANCE_FIELDS),
    ).rename(columns=TASK_INSTANCE_FIELDS)
    raw.insert(0, "run_id", run_id)
    raw.insert(0, "dag_id", dag_id)
    raw["code_start"] = code_start_column(raw, code_starts or {})

    notes: list[str] = []
    conf = dag_run.get("conf") or {}
    time_scale = pass_rate = None
    if extension is not None:
        time_scale = extension.run_time_scale(conf, notes)
        pass_rate = extension.pass_rate(quality, notes) if quality is not None else None
    info = RunInfo(
        dag_id=dag_id,
        run_id=run_id,
        state=dag_run.get("state"),
        start=_timestamp(dag_run.get("start_date"), "start_date"),
        end=_timestamp(dag_run.get("end_date"), "end_date"),
        time_scale=time_scale,
        pass_rate=pass_rate,
        source=source or f"airflow:{dag_id}/{run_id}",
        notes=tuple(notes),
    )
    graph = None
    if tasks is not None:
        graph = TaskGraph.from_rest(tasks, "the DAG's task list (REST API, latest version)")
    return RunData(info=info, instances=raw, graph=graph)


def read_run(
    client: AirflowRestClient,
    dag_id: str,
    run_id: str,
    extension: ReportExtension | None = None,
) -> RunData:
    """The run's info, every task instance (and earlier tries), the DAG's graph and, with a
    report extension (default: the one registered for `dag_id`), the recorded code starts and
    the quality verdict."""
    extension = extension or extension_for(dag_id)
    quality, code_starts = None, {}
    try:
        dag_run = client.dag_run(dag_id, run_id)
        instances = client.task_instances(dag_id, run_id, earlier_tries=True)
        tasks = client.dag_tasks(dag_id)
        if extension is not None and extension.pass_rate_task_id:
            quality = client.xcom(dag_id, run_id, extension.pass_rate_task_id)
        if extension is not None and extension.code_start_xcom_key:
            code_starts = _code_starts(client, dag_id, run_id, extension.code_start_xcom_key)
    except AirflowRestError as exc:
        raise AnalysisInputError(str(exc)) from None
    return run_from_airflow_json(
        dag_run,
        instances,
        dag_id=dag_id,
        run_id=run_id,
        quality=quality,
        source=f"airflow:{dag_id}/{run_id}",
        tasks=tasks,
        code_starts=code_starts,
        extension=extension,
    )


def _code_starts(
    client: AirflowRestClient, dag_id: str, run_id: str, key: str
) -> dict[tuple[str, int], float]:
    """(task id, map index) -> epoch seconds its code started, for the tasks that said."""
    entries = client.pages(
        f"{run_path(dag_id, run_id)}/taskInstances/~/xcomEntries",
        "xcom_entries",
        xcom_key=key,
    )
    starts = {}
    for entry in entries:
        task, index = str(entry["task_id"]), int(entry.get("map_index", -1))
        found = client.xcom(dag_id, run_id, task, key, index)
        value = found.get("value") if isinstance(found, Mapping) else None
        try:
            start = float(value)
        except (TypeError, ValueError, OverflowError):
            continue  # not a number: no start-up for that task
        if math.isfinite(start):
            starts[(task, index)] = start
    return starts


def fetch_airflow_run(
    base_url: str,
    username: str,
    password: str,
    dag_id: str,
    run_id: str,
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    extension: ReportExtension | None = None,
) -> RunData:
    """Log in, read one run (`read_run`) and close the connection."""
    try:
        client = AirflowRestClient.login(
            base_url, username, password, timeout=timeout, transport=transport
        )
    except AirflowRestError as exc:
        raise AnalysisInputError(str(exc)) from None
    with client:
        return read_run(client, dag_id, run_id, extension)


def _timestamp(value: Any, field: str) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise AnalysisInputError(f"dag run {field}: {_first_line(exc)}") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
