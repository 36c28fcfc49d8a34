"""The metrics history in PostgreSQL: one row per run, one row per task-instance try.

Every function takes `conn_or_hook`: a `PostgresHook` (its connection is opened and closed here),
an open DB-API connection (psycopg2 or psycopg 3; used as is and left open), or None for
`PostgresHook(postgres_conn_id="k1n_metrics")`. A connection passed in must not hold an open
transaction: these functions own their transaction boundaries (commit or rollback).

Schema. `ensure_schema` brings the database to the newest version in `MIGRATIONS`, in one
transaction under a transaction-level advisory lock, so two workers starting at once cannot both
migrate and a failed migration leaves the previous version intact. `k1n_schema_version` records
each applied version. Every public function calls it, so no manual SQL step exists; a database
newer than this code is refused rather than written to in an old shape.

Writes. `store_report` writes a run and its task rows as UPSERTs (keys: `(dag_id, run_id)` and
`(dag_id, run_id, task, map_index, try_number)`) in ONE transaction: storing a run again
replaces it (task rows the new report no longer has are deleted), and any failure rolls the
whole store back, so a run is either stored completely or not at all.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from include.k1n.metrics.regression import QUALITY_TARGET_KEY, WALL_TIME, Verdict

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

METRICS_CONN_ID = "k1n_metrics"
SCHEMA_VERSION_TABLE = "k1n_schema_version"
RUNS_TABLE = "k1n_run_metrics"
TASKS_TABLE = "k1n_task_metrics"
# pg_advisory_xact_lock key: "k1nmetrc" as a big-endian 64-bit integer, unlikely to collide.
SCHEMA_LOCK_KEY = int.from_bytes(b"k1nmetrc", "big")

# A hook, an open DB-API connection, or None (the `k1n_metrics` connection).
ConnOrHook = Any


class MetricsStoreError(RuntimeError):
    """The metrics database refused a store or has a schema this code cannot use."""


@dataclass(frozen=True)
class Migration:
    """One schema version: its statements run in order inside the migrating transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "run summaries and per-task durations",
        (
            f"""
            CREATE TABLE {RUNS_TABLE} (
                dag_id text NOT NULL,
                run_id text NOT NULL,
                state text,
                run_start timestamptz,
                run_end timestamptz,
                time_scale double precision NOT NULL CHECK (time_scale > 0),
                wall_seconds double precision NOT NULL CHECK (wall_seconds >= 0),
                total_task_seconds double precision NOT NULL CHECK (total_task_seconds >= 0),
                production_wall_seconds double precision NOT NULL
                    CHECK (production_wall_seconds >= 0),
                speedup_vs_baseline double precision
                    CHECK (speedup_vs_baseline IS NULL OR speedup_vs_baseline > 0),
                targets_met jsonb NOT NULL DEFAULT '{{}}'::jsonb,
                quality_pass_rate double precision
                    CHECK (quality_pass_rate IS NULL OR quality_pass_rate BETWEEN 0 AND 1),
                verdict text,
                verdict_ok boolean,
                verdict_summary text,
                regression_count integer CHECK (regression_count IS NULL OR regression_count >= 0),
                regressions jsonb,
                recorded_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (dag_id, run_id)
            )
            """,
            f"""
            CREATE TABLE {TASKS_TABLE} (
                dag_id text NOT NULL,
                run_id text NOT NULL,
                task text NOT NULL,
                spec_id integer,
                map_index integer NOT NULL DEFAULT -1 CHECK (map_index >= -1),
                try_number integer NOT NULL CHECK (try_number >= 0),
                state text,
                seconds double precision CHECK (seconds IS NULL OR seconds >= 0),
                start_time timestamptz,
                end_time timestamptz,
                PRIMARY KEY (dag_id, run_id, task, map_index, try_number),
                FOREIGN KEY (dag_id, run_id) REFERENCES {RUNS_TABLE} (dag_id, run_id)
                    ON DELETE CASCADE,
                CHECK (start_time IS NULL OR end_time IS NULL OR end_time >= start_time)
            )
            """,
            # load_history: a DAG's newest runs first.
            f"CREATE INDEX {RUNS_TABLE}_dag_recent ON {RUNS_TABLE} "
            "(dag_id, (coalesce(run_start, recorded_at)) DESC)",
        ),
    ),
)


@dataclass(frozen=True)
class StoredRun:
    """What `store_report` wrote."""

    dag_id: str
    run_id: str
    task_rows: int
    schema_version: int


# -- connections and transactions ---------------------------------------------------------------


def metrics_hook(conn_id: str = METRICS_CONN_ID) -> PostgresHook:
    """`PostgresHook` on the metrics connection (imported here: the rest needs no Airflow)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id)


@contextlib.contextmanager
def _connection(conn_or_hook: ConnOrHook) -> Iterator[Any]:
    """A DB-API connection: the one given, or a hook's (closed afterwards)."""
    if conn_or_hook is None:
        conn_or_hook = metrics_hook()
    if not hasattr(conn_or_hook, "get_conn"):
        yield conn_or_hook
        return
    conn = conn_or_hook.get_conn()
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _transaction(conn: Any) -> Iterator[Any]:
    """A cursor inside one transaction: commit on success, rollback on any exception.

    Autocommit is switched off for the duration, because it would commit each statement alone
    and a failure halfway would leave half a run behind.
    """
    autocommit = bool(getattr(conn, "autocommit", False))
    if autocommit:
        conn.autocommit = False
    try:
        with conn.cursor() as cursor:
            yield cursor
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if autocommit:
            conn.autocommit = True


# -- schema -------------------------------------------------------------------------------------


def ensure_schema(
    conn_or_hook: ConnOrHook = None, *, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Apply every migration newer than the database's version; return the version after.

    Idempotent: a second call applies nothing and returns the same version. All pending
    migrations run in one transaction under an advisory lock (released at commit), so
    concurrent callers wait for each other and a failing migration changes nothing.
    """
    ordered = _check_migrations(migrations)
    with _connection(conn_or_hook) as conn, _transaction(conn) as cursor:
        return _migrate(cursor, ordered)


def schema_version(conn_or_hook: ConnOrHook = None) -> int:
    """The database's schema version; 0 when the project's tables were never created."""
    with _connection(conn_or_hook) as conn, _transaction(conn) as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_VERSION_TABLE,))
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_VERSION_TABLE}")
        return int(cursor.fetchone()[0])


def _check_migrations(migrations: Sequence[Migration]) -> list[Migration]:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, ... in order, got {versions}")
    return list(migrations)


def _migrate(cursor: Any, migrations: list[Migration]) -> int:
    # The lock comes first: concurrent CREATE TABLE IF NOT EXISTS can still collide otherwise.
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
    cursor.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION_TABLE} (
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    cursor.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_VERSION_TABLE}")
    current = int(cursor.fetchone()[0])
    newest = migrations[-1].version if migrations else 0
    if current > newest:
        raise MetricsStoreError(
            f"metrics database schema is version {current}, newer than this code's {newest}: "
            "upgrade the project before writing to it"
        )
    for migration in migrations[current:]:
        try:
            for statement in migration.statements:
                cursor.execute(statement)
        except Exception as exc:
            # Raised inside the transaction: every migration of this call is rolled back.
            raise MetricsStoreError(
                f"schema migration {migration.version} ({migration.description}) failed; "
                f"the schema stays at version {current}: {exc}"
            ) from exc
        cursor.execute(
            f"INSERT INTO {SCHEMA_VERSION_TABLE} (version, description) VALUES (%s, %s)",
            (migration.version, migration.description),
        )
    return max(current, newest)


# -- writes -------------------------------------------------------------------------------------


_RUN_COLUMNS = (
    "dag_id",
    "run_id",
    "state",
    "run_start",
    "run_end",
    "time_scale",
    "wall_seconds",
    "total_task_seconds",
    "production_wall_seconds",
    "speedup_vs_baseline",
    "targets_met",
    "quality_pass_rate",
    "verdict",
    "verdict_ok",
    "verdict_summary",
    "regression_count",
    "regressions",
)
_JSON_COLUMNS = frozenset({"targets_met", "regressions"})
# Re-storing a run without a verdict keeps the verdict recorded earlier.
_KEEP_WHEN_NULL = frozenset(
    {"verdict", "verdict_ok", "verdict_summary", "regression_count", "regressions"}
)
_TASK_COLUMNS = (
    "dag_id",
    "run_id",
    "task",
    "spec_id",
    "map_index",
    "try_number",
    "state",
    "seconds",
    "start_time",
    "end_time",
)
_TASK_KEY = ("dag_id", "run_id", "task", "map_index", "try_number")


def store_report(
    conn_or_hook: ConnOrHook,
    report: Mapping[str, Any],
    verdict: Verdict | None = None,
    *,
    speedup_vs_baseline: float | None = None,
) -> StoredRun:
    """Store one run's analysis report (`RunReport.as_dict()`) and, if given, its verdict.

    Task rows come from the report's `instances` (every try of every map index); a report
    without detail (`as_dict(detail=False)`) stores one row per Airflow task instead. Storing
    the same run again replaces it. Everything happens in one transaction: on any error
    nothing of this run changes and `MetricsStoreError` is raised.
    """
    run_row = _run_row(report, verdict, speedup_vs_baseline)
    task_rows = _task_rows(report)
    dag_id, run_id = run_row["dag_id"], run_row["run_id"]
    with _connection(conn_or_hook) as conn:
        version = ensure_schema(conn)
        try:
            with _transaction(conn) as cursor:
                _upsert_run(cursor, run_row)
                _write_task_rows(cursor, dag_id, run_id, task_rows)
        except Exception as exc:
            raise MetricsStoreError(
                f"storing run {dag_id}/{run_id} failed and was rolled back: {exc}"
            ) from exc
    return StoredRun(dag_id, run_id, len(task_rows), version)


def record_verdict(conn_or_hook: ConnOrHook, verdict: Verdict) -> None:
    """Record (or replace) the verdict of a run stored earlier (the run `verdict` names);
    raises `MetricsStoreError` when that run is not stored."""
    values = _verdict_values(verdict)
    assignments = ", ".join(f"{name} = {_placeholder(name)}" for name in values)
    with _connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with _transaction(conn) as cursor:
            cursor.execute(
                f"UPDATE {RUNS_TABLE} SET {assignments} WHERE dag_id = %s AND run_id = %s",
                (*values.values(), verdict.dag_id, verdict.run_id),
            )
            if cursor.rowcount != 1:
                raise MetricsStoreError(
                    f"run {verdict.dag_id}/{verdict.run_id} is not stored: no verdict recorded"
                )


def _upsert_run(cursor: Any, row: Mapping[str, Any]) -> None:
    placeholders = ", ".join(_placeholder(name) for name in _RUN_COLUMNS)
    updates = ", ".join(
        f"{name} = coalesce(EXCLUDED.{name}, {RUNS_TABLE}.{name})"
        if name in _KEEP_WHEN_NULL
        else f"{name} = EXCLUDED.{name}"
        for name in _RUN_COLUMNS
        if name not in ("dag_id", "run_id")
    )
    cursor.execute(
        f"INSERT INTO {RUNS_TABLE} ({', '.join(_RUN_COLUMNS)}) VALUES ({placeholders}) "
        f"ON CONFLICT (dag_id, run_id) DO UPDATE SET {updates}, recorded_at = now()",
        tuple(row[name] for name in _RUN_COLUMNS),
    )


def _write_task_rows(
    cursor: Any, dag_id: str, run_id: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Upsert the run's task rows, then delete the ones this report no longer has."""
    if rows:
        updates = ", ".join(
            f"{name} = EXCLUDED.{name}" for name in _TASK_COLUMNS if name not in _TASK_KEY
        )
        cursor.executemany(
            f"INSERT INTO {TASKS_TABLE} ({', '.join(_TASK_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(_TASK_COLUMNS))}) "
            f"ON CONFLICT ({', '.join(_TASK_KEY)}) DO UPDATE SET {updates}",
            [tuple(row[name] for name in _TASK_COLUMNS) for row in rows],
        )
    cursor.execute(
        f"""
        DELETE FROM {TASKS_TABLE}
        WHERE dag_id = %s AND run_id = %s
          AND (task, map_index, try_number) NOT IN (
              SELECT * FROM unnest(%s::text[], %s::integer[], %s::integer[])
          )
        """,
        (
            dag_id,
            run_id,
            [row["task"] for row in rows],
            [row["map_index"] for row in rows],
            [row["try_number"] for row in rows],
        ),
    )


def _placeholder(column: str) -> str:
    # JSON goes over the wire as text and is cast: the same SQL works for psycopg2 and psycopg 3.
    return "%s::jsonb" if column in _JSON_COLUMNS else "%s"


def _run_row(
    report: Mapping[str, Any], verdict: Verdict | None, speedup_vs_baseline: float | None
) -> dict[str, Any]:
    """The run row from a report dict; a report missing what the table needs raises here,
    before any database work."""
    missing = [
        key
        for key in ("dag_id", "run_id", "time_scale", "wall_seconds", "total_task_seconds")
        if report.get(key) in (None, "")
    ]
    if missing:
        raise MetricsStoreError(f"report cannot be stored: missing {', '.join(missing)}")
    dag_id, run_id = str(report["dag_id"]), str(report["run_id"])
    time_scale = float(report["time_scale"])
    if not time_scale > 0:
        raise MetricsStoreError(
            f"report cannot be stored: time_scale must be > 0, got {time_scale}"
        )
    wall = float(report["wall_seconds"])
    production_wall = (report.get("production") or {}).get("wall_seconds")
    targets = {str(t["key"]): t.get("met") for t in report.get("targets", ())}
    quality = next(
        (t for t in report.get("targets", ()) if t.get("key") == QUALITY_TARGET_KEY),
        None,
    )
    row: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": report.get("state"),
        "run_start": _timestamp(report.get("start")),
        "run_end": _timestamp(report.get("end")),
        "time_scale": time_scale,
        "wall_seconds": wall,
        "total_task_seconds": float(report["total_task_seconds"]),
        "production_wall_seconds": float(
            production_wall if production_wall is not None else wall / time_scale
        ),
        "speedup_vs_baseline": _float_or_none(speedup_vs_baseline),
        "targets_met": json.dumps(targets),
        "quality_pass_rate": _float_or_none(quality.get("actual") if quality else None),
        **dict.fromkeys(_KEEP_WHEN_NULL),
    }
    if verdict is not None:
        _check_verdict_matches(verdict, dag_id, run_id)
        row.update(_verdict_values(verdict))
    return row


def _verdict_values(verdict: Verdict) -> dict[str, Any]:
    return {
        "verdict": verdict.status.value,
        "verdict_ok": verdict.ok,
        "verdict_summary": verdict.summary(),
        "regression_count": len(verdict.regressions),
        "regressions": json.dumps([regression.as_dict() for regression in verdict.regressions]),
    }


def _check_verdict_matches(verdict: Verdict, dag_id: str, run_id: str) -> None:
    if (verdict.dag_id, verdict.run_id) != (dag_id, run_id):
        raise MetricsStoreError(
            f"verdict is for {verdict.dag_id}/{verdict.run_id}, not {dag_id}/{run_id}"
        )


def _task_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    dag_id, run_id = str(report["dag_id"]), str(report["run_id"])
    run_start = _timestamp(report.get("start"))
    instances = report.get("instances")
    if instances is None:
        # A report without detail: one row per Airflow task, its final tries rolled up.
        instances = [
            {**task, "map_index": -1, "try_number": task.get("tries") or 1}
            for task in report.get("tasks", ())
        ]
    rows = []
    for instance in instances:
        # 0 is kept: Airflow's try number of an instance that never ran (upstream failed).
        try_number = _int_or_none(instance.get("try_number"))
        map_index = _int_or_none(instance.get("map_index"))
        rows.append(
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "task": str(instance["task"]),
                "spec_id": _int_or_none(instance.get("spec_id")),
                "map_index": -1 if map_index is None else map_index,
                "try_number": 1 if try_number is None else try_number,
                "state": instance.get("state"),
                "seconds": _float_or_none(instance.get("seconds")),
                "start_time": _offset(run_start, instance.get("start_offset")),
                "end_time": _offset(run_start, instance.get("end_offset")),
            }
        )
    return rows


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    # A plain datetime: both drivers adapt it, neither knows pandas.Timestamp for sure.
    return pd.Timestamp(value).to_pydatetime()


def _offset(start: datetime | None, seconds: Any) -> datetime | None:
    if start is None or seconds is None:
        return None
    return start + timedelta(seconds=float(seconds))


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


# -- reads --------------------------------------------------------------------------------------


def load_history(
    conn_or_hook: ConnOrHook,
    dag_id: str,
    limit: int = 14,
    only_good: bool = True,
    *,
    time_scale: float | None = None,
    exclude_run_id: str | None = None,
) -> pd.DataFrame:
    """Per-task seconds of the last `limit` runs of a DAG, one row per run, oldest first.

    Columns: `WALL_TIME` (the run's wall seconds), then one per task: its final tries' seconds
    summed over map indexes (what `RunReport.tasks` reports); NaN where a task did not run.
    The index is the run id. `only_good` keeps runs that succeeded and had no regression
    recorded, so a slow night never becomes part of the baseline it is judged against.
    `time_scale` keeps only runs at that scale (durations at another scale do not compare);
    `exclude_run_id` leaves one run out (the run being judged).
    """
    conditions = ["dag_id = %s"]
    params: list[Any] = [dag_id]
    if only_good:
        conditions.append("state = 'success' AND coalesce(regression_count, 0) = 0")
    if time_scale is not None:
        # Relative tolerance: the same fraction may come back through JSON or float text.
        conditions.append("abs(time_scale - %s) <= 1e-9 * %s")
        params += [float(time_scale), float(time_scale)]
    if exclude_run_id is not None:
        conditions.append("run_id <> %s")
        params.append(exclude_run_id)
    with _connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with _transaction(conn) as cursor:
            cursor.execute(
                f"""
                SELECT run_id, wall_seconds FROM {RUNS_TABLE}
                WHERE {" AND ".join(conditions)}
                ORDER BY coalesce(run_start, recorded_at) DESC, run_id DESC
                LIMIT %s
                """,
                (*params, int(limit)),
            )
            runs = cursor.fetchall()
            run_ids = [run_id for run_id, _ in reversed(runs)]
            # DISTINCT ON keeps each (run, task, map index)'s highest try: the final one.
            cursor.execute(
                f"""
                SELECT run_id, task, sum(seconds) FROM (
                    SELECT DISTINCT ON (run_id, task, map_index) run_id, task, seconds
                    FROM {TASKS_TABLE}
                    WHERE dag_id = %s AND run_id = ANY(%s::text[])
                    ORDER BY run_id, task, map_index, try_number DESC
                ) AS final_tries
                GROUP BY run_id, task
                """,
                (dag_id, run_ids),
            )
            task_seconds = cursor.fetchall()
    index = pd.Index(run_ids, name="run_id", dtype="object")
    walls = pd.Series([float(wall) for _, wall in reversed(runs)], index=index, dtype="float64")
    if task_seconds:
        long = pd.DataFrame(task_seconds, columns=["run_id", "task", "seconds"])
        wide = long.pivot(index="run_id", columns="task", values="seconds").astype("float64")
        wide = wide.reindex(index=index, columns=sorted(wide.columns))
    else:
        wide = pd.DataFrame(index=index, dtype="float64")
    wide.columns.name = None
    wide.insert(0, WALL_TIME, walls)
    return wide


def load_runs(conn_or_hook: ConnOrHook, dag_id: str, limit: int = 30) -> pd.DataFrame:
    """The stored run summaries of a DAG, newest first (every column of the runs table)."""
    with _connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with _transaction(conn) as cursor:
            cursor.execute(
                f"SELECT * FROM {RUNS_TABLE} WHERE dag_id = %s "
                "ORDER BY coalesce(run_start, recorded_at) DESC, run_id DESC LIMIT %s",
                (dag_id, int(limit)),
            )
            columns = [column[0] for column in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
