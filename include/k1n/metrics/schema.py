"""The metrics database: its connection, its transactions and its versioned schema.

Every function takes `conn_or_hook`: a `PostgresHook` (its connection is opened and closed here),
an open DB-API connection (psycopg2 or psycopg 3; used as is and left open), or None for
`PostgresHook(postgres_conn_id="k1n_metrics")`. A connection passed in must not hold an open
transaction: these functions own their transaction boundaries (commit or rollback).

`ensure_schema` brings the database to the newest version in `MIGRATIONS`, in one transaction
under a transaction-level advisory lock, so two workers starting at once cannot both migrate
and a failed migration leaves the previous version intact. `k1n_schema_version` records each
applied version. The store and history modules call it first, so no manual SQL step exists; a
database newer than this code is refused rather than written to in an old shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

from k1n.settings import METRICS_CONN_ID

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
    Migration(
        2,
        "the deadline watch's prediction beside what happened",
        (f"ALTER TABLE {RUNS_TABLE} ADD COLUMN deadline_forecast jsonb",),
    ),
)


# -- connections and transactions ---------------------------------------------------------------


def metrics_hook(conn_id: str = METRICS_CONN_ID) -> PostgresHook:
    """`PostgresHook` on the metrics connection (imported here: the rest needs no Airflow)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id)


@contextlib.contextmanager
def connection(conn_or_hook: ConnOrHook) -> Iterator[Any]:
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
def transaction(conn: Any) -> Iterator[Any]:
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
    with connection(conn_or_hook) as conn, transaction(conn) as cursor:
        return _migrate(cursor, ordered)


def schema_version(conn_or_hook: ConnOrHook = None) -> int:
    """The database's schema version; 0 when the project's tables were never created."""
    with connection(conn_or_hook) as conn, transaction(conn) as cursor:
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
