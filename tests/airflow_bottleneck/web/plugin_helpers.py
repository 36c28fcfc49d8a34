"""What the plugin-app tests share: API URLs, query counting, the DAG's true critical path."""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import event

from tests.airflow_bottleneck.analysis.helpers import longest_path_by_networkx
from tests.airflow_bottleneck.web.seed import (
    SeededRun,
)


def report_url(run: SeededRun, suffix: str = "report") -> str:
    return f"/bottlenecks/api/dags/{run.dag_id}/runs/{quote(run.run_id, safe='')}/{suffix}"


def compare_url(a: SeededRun, b: SeededRun) -> str:
    return f"{report_url(a, 'compare')}/{b.dag_id}/{quote(b.run_id, safe='')}"


@contextmanager
def counted_queries():
    """Every SQL statement the metadata DB engine runs inside the block."""
    from airflow import settings

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(settings.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(settings.engine, "before_cursor_execute", record)


def dag_edges(client, dag_id: str) -> list[tuple[str, str]]:
    """The DAG's edges as Airflow's own REST API lists them (not the plugin's graph code)."""
    tasks = client.get(f"/api/v2/dags/{dag_id}/tasks").json()["tasks"]
    return [(t["task_id"], down) for t in tasks for down in t["downstream_task_ids"]]


def spans(report: dict) -> dict[str, float]:
    """Each task's first start -> last end in the report (a mapped task's indexes together)."""
    return {
        t["task"]: t["end_offset"] - t["start_offset"]
        for t in report["tasks"]
        if t["start_offset"] is not None and t["end_offset"] is not None
    }


def assert_true_to_the_dag(client, report: dict) -> None:
    """The critical path is the networkx longest path through the DAG's real graph, and the
    overhead parts add up to the wall time within 1 %."""
    seconds = spans(report)
    length, _ = longest_path_by_networkx(dag_edges(client, report["dag_id"]), seconds)
    path = report["critical_path"]
    assert report["graph_source"] == "dag"
    assert path["seconds"] == pytest.approx(length, abs=5e-3)
    assert sum(seconds[t] for t in path["tasks"]) == pytest.approx(length, abs=5e-3)
    split = report["overhead"]
    parts = sum(
        split[key]
        for key in (
            "work_seconds",
            "startup_seconds",
            "handoff_seconds",
            "waiting_seconds",
            "residual_seconds",
        )
    )
    assert parts == pytest.approx(report["wall_seconds"], rel=0.01)
    assert abs(split["residual_seconds"]) <= 0.01 * report["wall_seconds"]
