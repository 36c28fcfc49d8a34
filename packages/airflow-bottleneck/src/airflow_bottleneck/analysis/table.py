"""The task-instance table: the one shape every loader produces and every analysis reads.

One row per task-instance *try*, with the columns Airflow records (`INSTANCE_COLUMNS`):

| column     | type            | meaning                                                 |
|------------|-----------------|---------------------------------------------------------|
| dag_id     | category        | DAG (or `profiles`, or the Conductor workflow name)     |
| run_id     | category        | run within the DAG                                      |
| task_id    | category        | Airflow task id, e.g. `task_08_code_generation.publish_code` |
| map_index  | int64           | -1 for an unmapped task                                 |
| try_number | int64           | 1 for the first try                                     |
| state      | category        | final state of that try (`success`, `failed`, ...)      |
| queued     | datetime64[UTC] | when the executor got it (NaT if unknown)               |
| start, end | datetime64[UTC] | when the try ran (NaT if it never ran / still runs)     |
| code_start | datetime64[UTC] | its own code's start, as the task recorded it (NaT: unknown) |
| duration   | float64 seconds | as recorded; end - start when not recorded              |

`normalize_instances` checks and types a raw frame and adds the derived columns the analyses
use, so that none of them has to loop over rows:

- `spec_id` (Int64): the project's own number of the task the row belongs to. Loaders may set
  it; otherwise the report extension's `task_number` derives it from the task id; missing for
  tasks the project does not number (and for every task of a DAG no extension describes);
- `seconds`: the try's duration, 0 for a try that never ran;
- `t_queued`, `t_start`, `t_end`, `t_code_start`: the timestamps as float seconds since the
  Unix epoch (microsecond precision is kept at today's epoch): interval arithmetic is numpy;
- `final`: True for the last try of each (dag, run, task, map index). Durations count the final
  try only; earlier tries stay in the table as detail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.errors import AnalysisInputError

INSTANCE_COLUMNS: tuple[str, ...] = (
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "state",
    "queued",
    "start",
    "end",
    "duration",
    "code_start",
)
INSTANCE_KEY: tuple[str, ...] = ("dag_id", "run_id", "task_id", "map_index")
RUN_KEY: list[str] = ["dag_id", "run_id"]
TIME_COLUMNS: tuple[str, ...] = ("queued", "start", "end", "code_start")

_EPOCH = pd.Timestamp(0, tz="UTC")
_ONE_SECOND = pd.Timedelta(seconds=1)


def normalize_instances(
    frame: pd.DataFrame, task_number: Callable[[str], int | None] | None = None
) -> pd.DataFrame:
    """Check and type a raw task-instance table; add `spec_id`, `seconds`, `t_*` and `final`.

    Only `task_id` is required; missing columns get their defaults (one unnamed run, unmapped,
    first try). Timestamps may be ISO-8601 strings, datetimes or pandas timestamps; naive ones
    are taken as UTC. A table that is already normalized is returned unchanged.

    Raises `AnalysisInputError` for a missing `task_id` column, unparsable timestamps or
    durations, and a try that ends before it starts.
    """
    if frame.attrs.get("bottleneck_normalized"):
        return frame
    if "task_id" not in frame.columns:
        raise AnalysisInputError(
            f"task-instance table has no 'task_id' column (columns: {', '.join(map(str, frame))})"
        )
    unnamed = frame["task_id"].isna().to_numpy()
    if unnamed.any():
        raise AnalysisInputError(f"task instance #{np.flatnonzero(unnamed)[0] + 1} has no task_id")
    rows = len(frame)
    table = pd.DataFrame(index=pd.RangeIndex(rows))
    for column in ("dag_id", "run_id"):
        values = frame[column] if column in frame else pd.Series([""] * rows)
        table[column] = _category(values)
    table["task_id"] = _category(frame["task_id"])
    table["map_index"] = _integers(frame, "map_index", default=-1)
    table["try_number"] = _integers(frame, "try_number", default=1)
    table["state"] = _category(frame["state"] if "state" in frame else pd.Series([None] * rows))
    for column in TIME_COLUMNS:
        table[column] = _timestamps(frame, column)
    table["duration"] = _durations(frame)

    _check_order(table)
    recorded = table["duration"]
    measured = (table["end"] - table["start"]) / _ONE_SECOND
    table["seconds"] = recorded.fillna(measured).fillna(0.0).astype("float64")
    for column in TIME_COLUMNS:
        table[f"t_{column}"] = (table[column] - _EPOCH) / _ONE_SECOND
    table["spec_id"] = _spec_ids(frame, table["task_id"], task_number)
    table["final"] = _final_tries(table)
    table.attrs["bottleneck_normalized"] = True
    return table


def _category(values: pd.Series) -> pd.Series:
    # Categories keep 1 M rows of repeated ids cheap to group on and to compare.
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.reset_index(drop=True)
    return pd.Series(values.to_numpy()).astype("category")


def _integers(frame: pd.DataFrame, column: str, default: int) -> pd.Series:
    if column not in frame:
        return pd.Series(np.full(len(frame), default, dtype="int64"))
    try:
        numbers = pd.to_numeric(frame[column].reset_index(drop=True), errors="raise")
    except (ValueError, TypeError) as exc:
        raise AnalysisInputError(f"column '{column}': {_first_line(exc)}") from None
    return numbers.fillna(default).astype("int64")


def _timestamps(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NaT, index=pd.RangeIndex(len(frame)), dtype="datetime64[us, UTC]")
    values = frame[column].reset_index(drop=True)
    try:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            parsed = values.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            parsed = values.dt.tz_localize("UTC")
        else:
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        raise AnalysisInputError(f"column '{column}': {_first_line(exc)}") from None
    return parsed.astype("datetime64[us, UTC]")


def _durations(frame: pd.DataFrame) -> pd.Series:
    if "duration" not in frame:
        return pd.Series(np.nan, index=pd.RangeIndex(len(frame)), dtype="float64")
    try:
        seconds = pd.to_numeric(frame["duration"].reset_index(drop=True), errors="raise")
    except (ValueError, TypeError) as exc:
        raise AnalysisInputError(f"column 'duration': {_first_line(exc)}") from None
    return seconds.astype("float64")


def _check_order(table: pd.DataFrame) -> None:
    backwards = (table["end"] < table["start"]).to_numpy() | (table["duration"] < 0).to_numpy()
    if backwards.any():
        row = table.loc[np.flatnonzero(backwards)[0]]
        raise AnalysisInputError(
            f"task {row['task_id']} (map index {row['map_index']}, try {row['try_number']}): "
            f"ends before it starts (start {row['start']}, end {row['end']}, "
            f"duration {row['duration']})"
        )


def _spec_ids(
    frame: pd.DataFrame, task_ids: pd.Series, task_number: Callable[[str], int | None] | None
) -> pd.Series:
    # Ask once per distinct task id (tens of them), not once per row.
    categories = task_ids.cat.categories.astype("str")
    per_category = np.array(
        [
            np.nan if task_number is None or (n := task_number(c)) is None else float(n)
            for c in categories
        ],
        dtype="float64",
    )
    codes = task_ids.cat.codes.to_numpy()
    derived = pd.Series(
        np.where(codes >= 0, per_category[np.maximum(codes, 0)], np.nan) if len(codes) else [],
        dtype="Float64",
    ).astype("Int64")
    if "spec_id" not in frame:
        return derived
    given = pd.to_numeric(frame["spec_id"].reset_index(drop=True), errors="coerce").astype("Int64")
    return given.fillna(derived)


def _final_tries(table: pd.DataFrame) -> pd.Series:
    """True on the highest try of each task instance (ties: the last row)."""
    if table["try_number"].le(1).all() and not table.duplicated(list(INSTANCE_KEY)).any():
        return pd.Series(True, index=table.index)
    order = np.argsort(table["try_number"].to_numpy(), kind="stable")
    ordered = table.iloc[order]
    superseded = ordered.duplicated(list(INSTANCE_KEY), keep="last")
    return ~superseded.reindex(table.index)


def covered_seconds(
    starts: np.ndarray, ends: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """Per group, the seconds during which at least one of its intervals was running.

    `starts`/`ends` are float seconds (NaN rows are ignored); `groups` are integer group codes
    0..n-1 (default: one group). Sort by (group, start), take the running maximum of the ends
    within each group, and subtract every gap where the next start lies beyond that maximum:
    the length of a union of intervals without a per-row Python loop.
    """
    groups = np.zeros(len(starts), dtype="int64") if groups is None else groups
    size = int(groups.max()) + 1 if len(groups) else 0
    keep = ~(np.isnan(starts) | np.isnan(ends))
    starts, ends, groups = starts[keep], ends[keep], groups[keep]
    if not len(starts):
        return np.zeros(size)
    order = np.lexsort((starts, groups))
    starts, ends, groups = starts[order], ends[order], groups[order]
    running_end = pd.Series(ends).groupby(groups).cummax().to_numpy()
    same_group = np.r_[False, groups[1:] == groups[:-1]]
    previous_end = np.r_[np.nan, running_end[:-1]]
    gaps = np.where(same_group, np.clip(starts - previous_end, 0.0, None), 0.0)
    first = np.full(size, np.inf)
    last = np.full(size, -np.inf)
    np.minimum.at(first, groups, starts)
    np.maximum.at(last, groups, ends)
    spans = np.where(np.isfinite(first), last - first, 0.0)
    return spans - np.bincount(groups, weights=gaps, minlength=size)


def code_start_column(frame: pd.DataFrame, starts: Mapping[tuple[str, int], float]) -> pd.Series:
    """Each try's recorded code start (epoch seconds in `starts`, by task id and map index):
    only an instance's latest try has one; NaT elsewhere. For a reader's raw frame."""
    if frame.empty or not starts:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    latest = frame.groupby(["task_id", "map_index"])["try_number"].transform("max")
    values = [
        starts.get((task, int(index))) if tried == top else None
        for task, index, tried, top in zip(
            frame["task_id"],
            frame["map_index"].fillna(-1),
            frame["try_number"],
            latest,
            strict=True,
        )
    ]
    return pd.to_datetime(pd.Series(values, dtype="float64", index=frame.index), unit="s", utc=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def select_run(table: pd.DataFrame, dag_id: str | None, run_id: str | None) -> pd.DataFrame:
    """The rows of one run; with no ids given the table must hold exactly one run."""
    runs = table[RUN_KEY].drop_duplicates()
    if dag_id is None and run_id is None:
        if len(runs) > 1:
            raise AnalysisInputError(
                f"the table holds {len(runs)} runs; name the one to analyze (dag_id and run_id)"
            )
        return table
    mask = np.ones(len(table), dtype=bool)
    if dag_id is not None:
        mask &= (table["dag_id"] == dag_id).to_numpy()
    if run_id is not None:
        mask &= (table["run_id"] == run_id).to_numpy()
    if not mask.any():
        raise AnalysisInputError(f"no task instances for run {dag_id}/{run_id}")
    return table.loc[mask]
