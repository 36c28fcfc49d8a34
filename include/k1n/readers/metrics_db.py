"""Reads of the metrics history: the last good runs of a DAG, and its stored runs."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from k1n.metrics.regression import WALL_TIME
from k1n.metrics.schema import (
    RUNS_TABLE,
    TASKS_TABLE,
    ConnOrHook,
    connection,
    ensure_schema,
    transaction,
)

# -- reads --------------------------------------------------------------------------------------


# A task's figure over its final tries (`load_history`'s `measure`).
_MEASURES = {
    "seconds": "sum(seconds)",
    "span": "extract(epoch FROM max(end_time) - min(start_time))",
}


def load_history(
    conn_or_hook: ConnOrHook,
    dag_id: str,
    limit: int = 14,
    only_good: bool = True,
    *,
    time_scale: float | None = None,
    exclude_run_id: str | None = None,
    measure: Literal["seconds", "span"] = "seconds",
) -> pd.DataFrame:
    """Per-task seconds of the last `limit` runs of a DAG, one row per run, oldest first.

    Columns: `WALL_TIME` (the run's wall seconds), then one per task: its final tries' seconds
    summed over map indexes (what `RunReport.tasks` reports); NaN where a task did not run.
    The index is the run id. `only_good` keeps runs that succeeded and had no regression
    recorded, so a slow night never becomes part of the baseline it is judged against.
    `time_scale` keeps only runs at that scale (durations at another scale do not compare);
    `exclude_run_id` leaves one run out (the run being judged). `measure="span"`: each task's
    span instead (first start -> last end of its final tries: what its downstream waited for,
    a mapped task's indexes together), the durations a verdict judged by the wall compares.
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
    with connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with transaction(conn) as cursor:
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
                SELECT run_id, task, {_MEASURES[measure]} FROM (
                    SELECT DISTINCT ON (run_id, task, map_index)
                        run_id, task, seconds, start_time, end_time
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
    with connection(conn_or_hook) as conn:
        ensure_schema(conn)
        with transaction(conn) as cursor:
            cursor.execute(
                f"SELECT * FROM {RUNS_TABLE} WHERE dag_id = %s "
                "ORDER BY coalesce(run_start, recorded_at) DESC, run_id DESC LIMIT %s",
                (dag_id, int(limit)),
            )
            columns = [column[0] for column in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
