"""Builders for hand-made task-instance tables, specs and profile directories with known answers."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis import RunData, RunInfo, RunReport, TaskGraph, analyze_run
from airflow_bottleneck.analysis.graph import TaskNode
from k1n.reporting.extension import K1NExtension
from k1n.workflow.spec import WorkflowSpec, parse_spec

BASE = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)
FIXTURES = Path(__file__).with_name("fixtures")
TARGETS = {
    "workflow_minutes_max": 90,
    "workflow_minutes_goal": 60,
    "task8_minutes_max": 8,
    "concurrent_workflows": 3,
    "quality_gate_pass_rate_min": 0.95,
}

# Diamond A -> B, A -> C, B -> D, C -> D: Airflow ids task_01_a, task_02_b, task_03_c, task_04_d.
A, B, C, D = "task_01_a", "task_02_b", "task_03_c", "task_04_d"


def at(seconds: float) -> datetime:
    """BASE + seconds."""
    return BASE + timedelta(seconds=seconds)


def make_spec(tasks: list[tuple[int, str, list[int]]], **targets: float) -> WorkflowSpec:
    """A spec from (id, name, depends_on) triples; every task a 10 s profile stand-in."""
    return parse_spec(
        {
            "name": "test workflow",
            "targets": {**TARGETS, **targets},
            "tasks": [
                {
                    "id": task_id,
                    "name": name,
                    "phase": 1,
                    "handler": "profile",
                    "seconds": 10,
                    "depends_on": depends_on,
                    "timeout_seconds": 100,
                }
                for task_id, name, depends_on in tasks
            ],
        }
    )


def diamond_spec() -> WorkflowSpec:
    return make_spec([(1, "A", []), (2, "B", [1]), (3, "C", [1]), (4, "D", [2, 3])])


def instance(task_id: str, start: float, end: float | None, **fields: Any) -> dict[str, Any]:
    """One task-instance row, times in seconds after BASE."""
    row = {
        "dag_id": "dag",
        "run_id": "run",
        "task_id": task_id,
        "map_index": -1,
        "try_number": 1,
        "state": "success",
        "start": at(start),
        "end": None if end is None else at(end),
    }
    row.update(fields)
    return row


def table(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def dag_graph(*edges: tuple[str, str], tasks: tuple[str, ...] = (), mapped=()) -> TaskGraph:
    """A DAG's own graph (as the plugin reads it from the serialized DAG) from its edges."""
    names = dict.fromkeys([*tasks, *(task for edge in edges for task in edge)])
    nodes = {name: TaskNode(name, name, mapped=name in mapped) for name in names}
    return TaskGraph(nodes, tuple(edges), "dag", "test DAG")


def longest_path_by_networkx(
    edges: list[tuple[str, str]], seconds: dict[str, float]
) -> tuple[float, list[str]]:
    """An independent longest path: each task split into `in -> out` weighted by its seconds,
    then networkx's `dag_longest_path` (nothing of the analysis' own CPM code)."""
    import networkx as nx

    graph = nx.DiGraph()
    for task, value in seconds.items():
        graph.add_edge(("in", task), ("out", task), weight=value)
    for upstream, downstream in edges:
        if upstream in seconds and downstream in seconds:
            graph.add_edge(("out", upstream), ("in", downstream), weight=0.0)
    path = nx.dag_longest_path(graph, weight="weight")
    length = nx.dag_longest_path_length(graph, weight="weight")
    return float(length), [task for side, task in path if side == "in"]


def chain_graph(*tasks: str) -> TaskGraph:
    return dag_graph(*itertools.pairwise(tasks), tasks=tasks)


def analyze(
    rows: pd.DataFrame | list[dict[str, Any]],
    spec: WorkflowSpec,
    graph: TaskGraph | None = None,
    **info: Any,
) -> RunReport:
    """`analyze_run` of a hand-built run; `info` fields go to `RunInfo`."""
    frame = rows if isinstance(rows, pd.DataFrame) else table(*rows)
    time_scale = info.pop("override_time_scale", None)
    detail = info.pop("detail", False)
    # `uses_spec=False`: a DAG no report extension describes (the plain report).
    extension = K1NExtension(spec) if info.pop("uses_spec", True) else None
    return analyze_run(
        RunData(RunInfo(**info), frame, graph), extension, time_scale=time_scale, detail=detail
    )


def back_to_back(spec: WorkflowSpec, gap: float = 0.0) -> pd.DataFrame:
    """Every spec task once, in spec order, with the spec's seconds and `gap` between tasks."""
    rows, clock = [], 0.0
    for task in spec.tasks:
        rows.append(instance(task.airflow_task_id, clock, clock + task.seconds))
        clock += task.seconds + gap
    return table(*rows)


def write_profile(directory: Path, task_id: int, start: datetime, seconds: float, **extra: Any):
    """One old-wrapper profile file; `name` overrides the file name's suffix (default profile)."""
    name = extra.pop("name", "profile")
    document = {
        "task_id": task_id,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(seconds=seconds)).isoformat(),
        "duration_ms": round(seconds * 1000),
        "exit_code": 0,
        "log_file": f"/var/log/k1n/task-{task_id}.log",
    }
    document.update(extra)
    path = directory / f"task-{task_id}-{name}.json"
    path.write_text(json.dumps(document))
    return path


def reference_profiles(directory: Path, spec: WorkflowSpec) -> Path:
    """The reference profile: one file per task, run back to back from the spec's seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    clock = BASE
    for task in spec.tasks:
        write_profile(directory, task.id, clock, task.seconds)
        clock += timedelta(seconds=task.seconds)
    return directory


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeAirflow:
    """The few REST API v2 routes the Airflow loader calls, answered from fixture documents.

    `runs` maps (dag_id, run_id) to a fixture document (`dag_run`, `task_instances` with every
    try, optional `xcom` (the quality verdict) and `code_starts` ({"task|map_index": epoch})).
    `dags` maps a DAG id to its task list (`GET /dags/{dag_id}/tasks`). Like Airflow, the
    task-instance list holds only each instance's latest try; earlier ones come from the
    `tries` route. Every request is recorded.
    """

    TOKEN = "test-token"

    def __init__(
        self,
        runs: dict[tuple[str, str], dict[str, Any]],
        password: str = "secret",
        dags: dict[str, list[dict[str, Any]]] | None = None,
    ):
        self.runs = runs
        self.password = password
        self.dags = dags or {}
        self.requests: list[tuple[str, str]] = []

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, token: str | None
    ) -> tuple[int, Any]:
        """(status, JSON body) for one request."""
        self.requests.append((method, path))
        if path == "/auth/token" and method == "POST":
            credentials = json.loads(body or b"{}")
            if credentials.get("password") != self.password:
                return 401, {"detail": "Invalid credentials"}
            return 201, {"access_token": self.TOKEN}
        if token != self.TOKEN:
            return 401, {"detail": "Not authenticated"}
        parts = path.removeprefix("/api/v2/").split("/")
        if len(parts) == 3 and parts[0] == "dags" and parts[2] == "tasks":
            if parts[1] not in self.dags:
                return 404, {"detail": f"Dag with id {parts[1]} was not found"}
            return 200, {"tasks": self.dags[parts[1]], "total_entries": len(self.dags[parts[1]])}
        if len(parts) < 4 or parts[0] != "dags" or parts[2] != "dagRuns":
            return 404, {"detail": "Not Found"}
        document = self.runs.get((parts[1], parts[3]))
        if document is None:
            return 404, {"detail": f"The DagRun with dag_id: `{parts[1]}` was not found"}
        rest = parts[4:]
        if not rest:
            return 200, document["dag_run"]
        if rest == ["taskInstances"]:
            latest = self._latest(document["task_instances"])
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            return 200, {
                "task_instances": latest[offset : offset + limit],
                "total_entries": len(latest),
            }
        if len(rest) == 3 and rest[0] == "taskInstances" and rest[2] == "tries":
            map_index = int(query.get("map_index", -1))
            tries = [
                ti
                for ti in document["task_instances"]
                if ti["task_id"] == rest[1] and ti.get("map_index", -1) == map_index
            ]
            return 200, {"task_instances": tries, "total_entries": len(tries)}
        if rest == ["taskInstances", "~", "xcomEntries"]:
            entries = [
                {
                    "task_id": key.split("|")[0],
                    "map_index": int(key.split("|")[1]),
                    "key": query.get("xcom_key"),
                }
                for key in document.get("code_starts", {})
            ]
            return 200, {"xcom_entries": entries, "total_entries": len(entries)}
        if rest[0] == "taskInstances" and len(rest) == 4 and rest[2] == "xcomEntries":
            if rest[3] != "return_value":
                found = document.get("code_starts", {}).get(
                    f"{rest[1]}|{query.get('map_index', -1)}"
                )
                if found is None:
                    return 404, {"detail": "XCom entry not found"}
                return 200, {"value": found}

            if rest[1] == "check_quality_gates" and document.get("xcom"):
                return 200, document["xcom"]
            return 404, {"detail": "XCom entry with key: `return_value` not found"}
        return 404, {"detail": "Not Found"}

    @staticmethod
    def _latest(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        latest: dict[tuple[str, int], dict[str, Any]] = {}
        for ti in instances:
            key = (ti["task_id"], ti.get("map_index", -1))
            if key not in latest or ti["try_number"] > latest[key]["try_number"]:
                latest[key] = ti
        return list(latest.values())

    def transport(self):
        """An httpx.MockTransport serving this fake."""
        import httpx

        def handler(request: httpx.Request) -> httpx.Response:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ") or None
            status, payload = self.handle(
                request.method,
                request.url.path,
                dict(request.url.params),
                request.content,
                token,
            )
            return httpx.Response(status, json=payload)

        return httpx.MockTransport(handler)


def rest_tasks(dag: Any) -> list[dict[str, Any]]:
    """A DAG's task list as `GET /api/v2/dags/{dag_id}/tasks` answers it."""
    return [
        {
            "task_id": task.task_id,
            "task_display_name": task.task_display_name,
            "downstream_task_ids": sorted(task.downstream_task_ids),
            "is_mapped": bool(getattr(task, "is_mapped", False)),
        }
        for task in dag.tasks
    ]
