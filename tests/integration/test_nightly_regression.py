"""The nightly regression DAG end to end on the shared real stack: a seeded history in the
embedded `k1n_metrics` database, then three nightly runs of the optimized DAG through the
scheduler and the triggerer: a clean one (passes), one with Task 6 six times slower (the
verdict names it as having moved the wall, and fails) and one with failing quality gates (fails
with the pass rate)."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from datetime import datetime, timedelta
from typing import Any

import psycopg2
import pytest

from airflow_bottleneck.readers.rest_api import fetch_airflow_run
from airflow_bottleneck.readers.rest_client import quoted
from k1n.dag_builders.nightly import REPORT_TASK_ID, VERDICT_TASK_ID
from k1n.metrics import load_runs, store_report
from k1n.reporting.extension import K1NExtension
from k1n.workflow.names import NIGHTLY_DAG_ID, OPTIMIZED_DAG_ID
from k1n.workflow.spec import load_spec
from k1n_local.stack import ADMIN_USER, METRICS_DB
from tests.integration.conftest import OPTIMIZED_TIME_SCALE

pytestmark = pytest.mark.integration

HISTORY_RUNS = 4
# Small history, and thresholds wide enough that a clean run's noise on a busy 2-core machine
# never counts (the ruff checks, tasks 10 and 12, took up to +3.6 s, +154 % when they happened
# to overlap), while Task 6 x 6 (3 s -> 18 s at 1/200, its span with start-up +250 % or more)
# does.
TEST_POLICY = {
    "k1n_regression_min_history": "3",
    "k1n_regression_min_slowdown_pct": "200",
    "k1n_regression_min_slowdown_seconds": "6",
}
# Task 6 is on the critical path (1 -> 3 -> 6 -> 7 -> 8 ...): slowed, it moves the wall by its
# whole slowdown, which the verdict judged by the wall fails (a task with slack would not).
SLOW_TASK = 6
CASES = {
    "clean": {},
    "slow": {"slow_tasks": {str(SLOW_TASK): 6.0}},
    # Two of 22 tasks at 0 %: pass rate 20/22 = 90.9 % < 95 %.
    "gates": {"failing_gates": {"1": 1000, "2": 1000}},
}


@pytest.fixture(scope="module")
def metrics_conn(airflow_stack):
    conn = psycopg2.connect(airflow_stack.database.uri(METRICS_DB, driver=None))
    conn.autocommit = True
    yield conn
    conn.close()


def _seed_history(report: dict[str, Any], conn: Any) -> list[str]:
    """HISTORY_RUNS copies of a real run's report, a day apart, with +-3 % jitter."""
    rng = random.Random(7)
    start = datetime.fromisoformat(report["start"])
    end = datetime.fromisoformat(report["end"])
    run_ids = []
    for day in range(HISTORY_RUNS, 0, -1):
        copy_ = copy.deepcopy(report)
        factor = 1 + rng.uniform(-0.03, 0.03)
        copy_["run_id"] = f"seeded__{day}"
        copy_["start"] = (start - timedelta(days=day)).isoformat()
        copy_["end"] = (end - timedelta(days=day)).isoformat()
        copy_["wall_seconds"] = report["wall_seconds"] * factor
        for task in copy_["tasks"]:
            if task.get("seconds") is not None:
                task["seconds"] *= 1 + rng.uniform(-0.03, 0.03)
        store_report(conn, copy_)
        run_ids.append(copy_["run_id"])
    return run_ids


def _variable(client, key: str) -> str | None:
    entry = client.request("GET", f"/api/v2/variables/{quoted(key)}", not_found=None)
    return None if entry is None else entry.get("value")


def _set_variables(client, values: dict[str, str]) -> None:
    for key, value in values.items():
        body = {"key": key, "value": value}
        if _variable(client, key) is None:
            client.request("POST", "/api/v2/variables", json=body)
        else:
            client.request("PATCH", f"/api/v2/variables/{quoted(key)}", json=body)


@pytest.fixture(scope="module")
def nightly_runs(settings_loaded, airflow_stack, airflow_client, optimized_run, metrics_conn):
    """Seed the history, run the three cases (queued together; the DAG runs one at a time)."""
    report = (
        fetch_airflow_run(
            airflow_stack.base_url,
            ADMIN_USER,
            airflow_stack.admin_password(),
            OPTIMIZED_DAG_ID,
            optimized_run.run_id,
        )
        .analyze(K1NExtension(load_spec()))
        .as_dict()
    )
    assert report["state"] == "success"
    _seed_history(report, metrics_conn)
    defaults = {key: _variable(airflow_client, key) for key in TEST_POLICY}
    _set_variables(airflow_client, TEST_POLICY)
    try:
        airflow_client.wait_for_dag(NIGHTLY_DAG_ID)
        airflow_client.unpause(NIGHTLY_DAG_ID)
        run_ids = {
            name: airflow_client.trigger(
                NIGHTLY_DAG_ID,
                conf={
                    "time_scale": OPTIMIZED_TIME_SCALE,
                    # Production-scaled targets do not apply at 1/200 (see nightly.py).
                    "check_targets": False,
                    "target_conf": target_conf,
                },
            )
            for name, target_conf in CASES.items()
        }
        runs = {
            name: airflow_client.wait_for_run(NIGHTLY_DAG_ID, run_id, timeout=300)
            for name, run_id in run_ids.items()
        }
    finally:
        with contextlib.suppress(Exception):
            airflow_client.set_paused(NIGHTLY_DAG_ID, True)
        _set_variables(airflow_client, defaults)
    stored = load_runs(metrics_conn, OPTIMIZED_DAG_ID, limit=50).set_index("run_id")
    results = {}
    for name, run in runs.items():
        target_run_id = f"{NIGHTLY_DAG_ID}__{run['dag_run_id']}"
        states = {
            ti["task_id"]: ti["state"]
            for ti in airflow_client.task_instances(NIGHTLY_DAG_ID, run["dag_run_id"])
        }
        results[name] = {
            "state": run["state"],
            "tasks": states,
            "stored": stored.loc[target_run_id].to_dict() if target_run_id in stored.index else {},
        }
    return results


def test_a_clean_nightly_run_passes(nightly_runs):
    clean = nightly_runs["clean"]
    assert clean["state"] == "success", clean
    assert clean["tasks"][VERDICT_TASK_ID] == "success"
    stored = clean["stored"]
    assert stored["verdict_ok"] is True, stored["verdict_summary"]
    assert stored["regression_count"] == 0
    assert "no regression against the last" in stored["verdict_summary"]


def test_a_slowed_task_fails_the_verdict_and_is_named(nightly_runs):
    slow = nightly_runs["slow"]
    assert slow["state"] == "failed"
    assert slow["tasks"][REPORT_TASK_ID] == "success"
    assert slow["tasks"][VERDICT_TASK_ID] == "failed"
    stored = slow["stored"]
    assert stored["verdict"] == "regression"
    assert stored["verdict_ok"] is False
    slow_task = load_spec().task(SLOW_TASK).airflow_task_id
    regressions = stored["regressions"]
    regressions = json.loads(regressions) if isinstance(regressions, str) else regressions
    assert slow_task in {regression["task"] for regression in regressions}
    assert slow_task in stored["verdict_summary"]
    moved = next(r for r in regressions if r["task"] == slow_task)
    assert moved["wall_impact_seconds"] >= 6  # the test policy's minimum
    assert "moved the wall" in stored["verdict_summary"]


def test_failing_quality_gates_fail_the_verdict_with_the_pass_rate(nightly_runs):
    gates = nightly_runs["gates"]
    assert gates["state"] == "failed"
    assert gates["tasks"][VERDICT_TASK_ID] == "failed"
    stored = gates["stored"]
    assert stored["verdict_ok"] is False
    assert "quality gate failed" in stored["verdict_summary"]
    assert "pass rate 90.9% < 95%" in stored["verdict_summary"]
    assert stored["quality_pass_rate"] == pytest.approx(20 / 22, abs=1e-3)
