"""Writes to the metrics history: one row per run, one row per task-instance try.

`store_report` writes a run and its task rows as UPSERTs (keys: `(dag_id, run_id)` and
`(dag_id, run_id, task, map_index, try_number)`) in ONE transaction: storing a run again
replaces it (task rows the new report no longer has are deleted), and any failure rolls the
whole store back, so a run is either stored completely or not at all. Connections and the
schema: `k1n.metrics.schema`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis.model import RunReport
from k1n.metrics.regression import QUALITY_TARGET_KEY, ReportInput, Verdict, as_report
from k1n.metrics.schema import (
    RUNS_TABLE,
    TASKS_TABLE,
    ConnOrHook,
    MetricsStoreError,
    connection,
    ensure_schema,
    transaction,
)


@dataclass(frozen=True)
class StoredRun:
    """What `store_report` wrote."""

    dag_id: str
    run_id: str
    task_rows: int
    schema_version: int


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
    "deadline_forecast",
)
_JSON_COLUMNS = frozenset({"targets_met", "regressions", "deadline_forecast"})
# Re-storing a run without a verdict keeps the verdict recorded earlier.
_KEEP_WHEN_NULL = frozenset(
    {
        "verdict",
        "verdict_ok",
        "verdict_summary",
        "regression_count",
        "regressions",
        "deadline_forecast",
    }
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
    report: ReportInput,
    verdict: Verdict | None = None,
    *,
    speedup_vs_baseline: float | None = None,
    deadline_forecast: Mapping[str, Any] | None = None,
) -> StoredRun:
    """Store one run's analysis report (a `RunReport`, or its JSON form) and, if given, its
    verdict and what the deadline watch predicted beside what happened (`deadline_forecast`:
    the plugin's `bottleneck.deadline_*` audit-log record of the run).

    Task rows come from the report's `instances` (every try of every map index); a report
    without detail stores one row per Airflow task instead. Storing the same run again
    replaces it. Everything happens in one transaction: on any error nothing of this run
    changes and `MetricsStoreError` is raised.
    """
    try:
        report = as_report(report)
    except ValueError as exc:
        raise MetricsStoreError(f"report cannot be stored: {exc}") from None
    run_row = _run_row(report, verdict, speedup_vs_baseline)
    run_row["deadline_forecast"] = (
        None if deadline_forecast is None else json.dumps(dict(deadline_forecast))
    )
    task_rows = _task_rows(report)
    dag_id, run_id = run_row["dag_id"], run_row["run_id"]
    with connection(conn_or_hook) as conn:
        version = ensure_schema(conn)
        try:
            with transaction(conn) as cursor:
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
    with connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with transaction(conn) as cursor:
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
    report: RunReport, verdict: Verdict | None, speedup_vs_baseline: float | None
) -> dict[str, Any]:
    """The run row; a report the table cannot hold raises here, before any database work."""
    if not report.dag_id or not report.run_id:
        raise MetricsStoreError("report cannot be stored: missing dag_id or run_id")
    if not report.time_scale > 0:
        raise MetricsStoreError(
            f"report cannot be stored: time_scale must be > 0, got {report.time_scale}"
        )
    quality = next((t for t in report.targets if t.key == QUALITY_TARGET_KEY), None)
    row: dict[str, Any] = {
        "dag_id": report.dag_id,
        "run_id": report.run_id,
        "state": report.state,
        "run_start": _timestamp(report.start),
        "run_end": _timestamp(report.end),
        "time_scale": report.time_scale,
        "wall_seconds": report.wall_seconds,
        "total_task_seconds": report.total_task_seconds,
        "production_wall_seconds": report.production.wall_seconds,
        "speedup_vs_baseline": _float_or_none(speedup_vs_baseline),
        "targets_met": json.dumps({t.key: t.met for t in report.targets}),
        "quality_pass_rate": quality.actual if quality else None,
        **dict.fromkeys(_KEEP_WHEN_NULL),
    }
    if verdict is not None:
        _check_verdict_matches(verdict, report.dag_id, report.run_id)
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


def _task_rows(report: RunReport) -> list[dict[str, Any]]:
    """Every try of every map index (a detailed report), else one row per Airflow task."""
    run_start = _timestamp(report.start)
    spec_ids = {task.task: task.spec_id for task in report.tasks}
    if report.instances is not None:
        instances = [
            (i.task, i.map_index, i.try_number, i.state, i.seconds, i.start_offset, i.end_offset)
            for i in report.instances.rows()
        ]
    else:
        instances = [
            (t.task, -1, t.tries, t.state, t.seconds, t.start_offset, t.end_offset)
            for t in report.tasks
        ]
    return [
        {
            "dag_id": report.dag_id,
            "run_id": report.run_id,
            "task": task,
            "spec_id": spec_ids.get(task),
            "map_index": map_index,
            # 0 is kept: Airflow's try number of an instance that never ran (upstream failed).
            "try_number": try_number,
            "state": state,
            "seconds": _float_or_none(seconds),
            "start_time": _offset(run_start, start),
            "end_time": _offset(run_start, end),
        }
        for task, map_index, try_number, state, seconds, start, end in instances
    ]


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
