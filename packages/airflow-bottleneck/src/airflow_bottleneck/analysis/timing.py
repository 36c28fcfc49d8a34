"""Per-task figures from the task-instance table: durations, start-up, queue waits, tries.

All of it is group-bys over the normalized table (`table.py`): a run with a million map
indexes costs a few vector operations, not a Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.model import MappedIndexColumns, MappedRollup

# Airflow states that mean "this instance did not run, on purpose or because of another".
NOT_RUN_STATES = frozenset({"skipped", "upstream_failed", "removed"})
FAILED_STATES = frozenset({"failed", "upstream_failed"})


@dataclass(frozen=True)
class TaskFigures:
    """Per Airflow task id, over the final tries of its instances (indexed by task id)."""

    frame: pd.DataFrame  # columns below; one row per task id

    COLUMNS = (
        "seconds",
        "instances",
        "mapped",
        "tries",
        "retry_seconds",
        "queue_wait",
        "startup",
        "startup_known",
        "start",
        "code_start",
        "end",
        "running",
        "state",
        "spec_id",
    )


def task_figures(table: pd.DataFrame) -> TaskFigures:
    """Every task id's figures; see `TaskFigures`."""
    final = table[table["final"].to_numpy()]
    by_task = final.groupby("task_id", observed=True, sort=False)
    start, end, code = final["t_start"], final["t_end"], final["t_code_start"]
    duration = (end - start).clip(lower=0)
    # Start-up: the task's start -> its own code's start, within the try's own bounds.
    startup = (code - start).clip(lower=0)
    startup = startup.where(startup.isna() | (startup <= duration), duration)
    frame = pd.DataFrame(
        {
            "seconds": by_task["seconds"].sum(),
            "instances": by_task["seconds"].size(),
            "mapped": by_task["map_index"].max() >= 0,
            "start": by_task["t_start"].min(),
            "code_start": by_task["t_code_start"].min(),
            "end": by_task["t_end"].max(),
            "spec_id": by_task["spec_id"].first(),
        }
    )
    frame["queue_wait"] = (
        (start - final["t_queued"]).clip(lower=0).groupby(final["task_id"], observed=True).sum()
    )
    frame["startup"] = startup.groupby(final["task_id"], observed=True).sum(min_count=1)
    frame["startup_known"] = code.notna().groupby(final["task_id"], observed=True).any()
    frame["running"] = (start.notna() & end.isna()).groupby(final["task_id"], observed=True).any()
    states = final["state"].astype("object")
    frame["state"] = states.groupby(final["task_id"], observed=True).agg(_one_state)
    everything = table.groupby("task_id", observed=True, sort=False)
    frame["tries"] = everything["try_number"].max()
    earlier = table[~table["final"].to_numpy()]
    frame["retry_seconds"] = earlier.groupby("task_id", observed=True)["seconds"].sum()
    frame = frame.fillna({"retry_seconds": 0.0, "queue_wait": 0.0})
    frame.index = frame.index.astype("object")
    return TaskFigures(frame)


def _one_state(values: pd.Series) -> str | None:
    distinct = values.dropna().unique()
    if len(distinct) == 0:
        return None
    return str(distinct[0]) if len(distinct) == 1 else "mixed"


def status_of(row: pd.Series) -> str:
    """ran / running / skipped / failed / not run, from a `TaskFigures` row.

    A task Airflow skipped is "skipped" even when it has a start and an end (a task that
    raised a skip, or a mapped task expanded over nothing, starts and ends at once)."""
    if row["running"]:
        return "running"
    state = row["state"]
    if state in FAILED_STATES:
        return "failed"
    if state in NOT_RUN_STATES:
        return "skipped"
    if pd.isna(row["start"]) or pd.isna(row["end"]):
        return "not run"
    return "ran"


def status_reason(status: str, state: str | None, mapped_in_dag: bool) -> str | None:
    """Why a task that did not simply run shows the figures it shows."""
    if status == "skipped" and state == "upstream_failed":
        return "did not run: an upstream task failed"
    if status == "skipped" and mapped_in_dag:
        return "skipped: mapped over an empty list, nothing to do (e.g. everything was cached)"
    if status == "skipped":
        return "skipped by Airflow (a branch not taken, a short-circuit, or a skipped upstream)"
    if status == "running":
        return "still running: its figures are as far as it got"
    if status == "not run":
        return "has not run (yet)"
    return None


def mapped_rollups(table: pd.DataFrame, run_start: float, *, detail: bool) -> list[MappedRollup]:
    """Each mapped task's indexes: count, sum, max, mean, skew (and, with detail, each)."""
    final = table[table["final"].to_numpy()]
    mapped = final[final["map_index"].to_numpy() >= 0]
    if mapped.empty:
        return []
    stats = mapped.groupby("task_id", observed=True).agg(
        count=("seconds", "size"),
        total=("seconds", "sum"),
        longest=("seconds", "max"),
        mean=("seconds", "mean"),
    )
    by_task = dict(tuple(mapped.groupby("task_id", observed=True, sort=False))) if detail else {}
    result = []
    for row in stats.sort_values("total", ascending=False).itertuples():
        indexes = None
        if detail:
            rows = by_task[row.Index].sort_values("map_index", kind="stable")
            indexes = MappedIndexColumns.model_construct(
                map_index=rows["map_index"].to_numpy().tolist(),
                try_number=rows["try_number"].to_numpy().tolist(),
                state=optional_strings(rows["state"]),
                seconds=rows["seconds"].to_numpy().round(3).tolist(),
                start_offset=offsets(rows["t_start"], run_start),
                end_offset=offsets(rows["t_end"], run_start),
            )
        mean = float(row.mean)
        result.append(
            MappedRollup(
                task=str(row.Index),
                count=int(row.count),
                sum_seconds=round(float(row.total), 3),
                max_seconds=round(float(row.longest), 3),
                mean_seconds=round(mean, 3),
                skew=round(float(row.longest) / mean, 4) if mean > 0 else 1.0,
                indexes=indexes,
            )
        )
    return result


def offsets(column: pd.Series, origin: float) -> list[float | None]:
    """`value - origin` of each value, rounded to the millisecond; None for a missing one."""
    values = (column - origin).to_numpy(dtype="float64").round(3)
    return np.where(np.isnan(values), None, values).tolist()


def optional_strings(column: pd.Series) -> list[str | None]:
    """Each value as a string; None for a missing one (vectorized: a million rows)."""
    values = column.astype("string").to_numpy(dtype="object", na_value=None)
    return values.tolist()


def offset(value: float | None, origin: float) -> float | None:
    """`value - origin` rounded to the millisecond; None for a missing value."""
    if value is None or pd.isna(value):
        return None
    return round(float(value) - origin, 3)


def per_hop(ran: pd.DataFrame) -> tuple[float, int]:
    """Median hand-off: each task's first start minus the last end of anything before it."""
    first_starts = ran.groupby("task_id", observed=True)["t_start"].min().to_numpy()
    ends = np.sort(ran["t_end"].to_numpy())
    before = np.searchsorted(ends, first_starts, side="right") - 1
    valid = before >= 0
    if not valid.any():
        return 0.0, 0
    hops = first_starts[valid] - ends[before[valid]]
    return float(np.median(hops)), int(valid.sum())
