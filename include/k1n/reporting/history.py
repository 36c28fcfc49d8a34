"""Many runs at once: one summary row per run, from a table of all their task instances.

This is what "a report over 1 000 000 task-instance rows" means in practice: a month of runs
(45 000 runs x 22 tasks) pulled from the metadata DB or the REST API into one table, and the
trend questions asked of it (is the wall time creeping up? how much is orchestration overhead?
how long is the critical path?). Per-run `analyze_run` calls would cost milliseconds each, so
this module computes the per-run figures with group-bys and numpy over the whole table:

- wall (first queued/start -> last end, or the `runs` table's own start/end), total task time,
  busy time (union of the running intervals), idle overhead (wall - busy), queue waits;
- each spec-level node's duration (one instance: its seconds; a group: its span), the CPM
  critical-path length on the declared dependencies (`graph.critical_path_lengths`: one vector
  step per graph node, not per run), and Task 8's duration;
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.graph import critical_path_lengths
from airflow_bottleneck.analysis.table import RUN_KEY, covered_seconds, normalize_instances
from k1n.reporting.spec_graph import dependency_graph
from k1n.reporting.what_if import FINAL_TASK_IDS
from k1n.workflow.names import CODEGEN_SPEC_ID, spec_id_from_task_id
from k1n.workflow.spec import WorkflowSpec


def summarize_runs(
    instances: pd.DataFrame, spec: WorkflowSpec, runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (dag_id, run_id) with the figures above, indexed by dag_id and run_id.

    `runs` (optional) has `dag_id`, `run_id` and any of `start`, `end` (the runs' own bounds)
    and `time_scale`.
    """
    table = normalize_instances(instances, spec_id_from_task_id)
    grouped = table.groupby(RUN_KEY, observed=True, sort=False)
    run_codes = grouped.ngroup().to_numpy()
    index = pd.MultiIndex.from_frame(grouped.size().reset_index()[RUN_KEY])
    count = len(index)

    final = table["final"].to_numpy()
    codes = run_codes[final]
    seconds = table["seconds"].to_numpy()[final]
    queued = table["t_queued"].to_numpy()[final]
    starts = table["t_start"].to_numpy()[final]
    ends = table["t_end"].to_numpy()[final]

    first_seen = _per_group(np.fmin, run_codes, table["t_queued"].to_numpy(), count, np.inf)
    first_seen = np.fmin(
        first_seen, _per_group(np.fmin, run_codes, table["t_start"].to_numpy(), count, np.inf)
    )
    last_end = _per_group(np.fmax, run_codes, table["t_end"].to_numpy(), count, -np.inf)
    summary = pd.DataFrame(index=index)
    summary["start"], summary["end"] = first_seen, last_end
    if runs is not None:
        summary = _apply_run_bounds(summary, runs)
    summary["wall_seconds"] = summary["end"] - summary["start"]
    summary["total_task_seconds"] = np.bincount(codes, weights=seconds, minlength=count)
    summary["instances"] = np.bincount(codes, minlength=count)
    summary["busy_seconds"] = covered_seconds(starts, ends, codes)
    summary["overhead_seconds"] = (summary["wall_seconds"] - summary["busy_seconds"]).clip(lower=0)
    waits = np.nan_to_num(np.clip(starts - queued, 0, None))
    summary["queue_wait_seconds"] = np.bincount(codes, weights=waits, minlength=count)

    durations = _node_durations(table[final], codes, count, spec)
    durations.index = index
    graph = dependency_graph(spec, [t for t in FINAL_TASK_IDS if t in durations.columns])
    summary["critical_path_seconds"] = critical_path_lengths(graph, durations).to_numpy()
    task8 = spec.by_id.get(CODEGEN_SPEC_ID)
    if task8 is not None and task8.airflow_task_id in durations:
        summary["task8_seconds"] = durations[task8.airflow_task_id].to_numpy()
    summary["start"] = _to_timestamps(summary["start"])
    summary["end"] = _to_timestamps(summary["end"])
    return summary


def _per_group(
    ufunc: np.ufunc, codes: np.ndarray, values: np.ndarray, count: int, fill: float
) -> np.ndarray:
    result = np.full(count, fill)
    ufunc.at(result, codes, values)
    return np.where(np.isfinite(result), result, np.nan)


def _apply_run_bounds(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Prefer the runs' own start/end (epoch seconds) where given; add their time scale."""
    extra = runs.set_index(RUN_KEY)
    for column in ("start", "end"):
        if column in extra:
            stamps = pd.to_datetime(extra[column], utc=True, format="ISO8601")
            own = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
            aligned = own.reindex(summary.index).to_numpy()
            summary[column] = np.where(np.isnan(aligned), summary[column], aligned)
    if "time_scale" in extra:
        summary["time_scale"] = extra["time_scale"].reindex(summary.index).fillna(1.0).to_numpy()
    return summary


def _node_durations(
    final: pd.DataFrame, run_codes: np.ndarray, count: int, spec: WorkflowSpec
) -> pd.DataFrame:
    """A runs x nodes matrix of spec-level node durations (NaN where a node did not run)."""
    node_of_spec = {task.id: task.airflow_task_id for task in spec.tasks}
    names = [task.airflow_task_id for task in spec.tasks]
    present_finals = [t for t in FINAL_TASK_IDS if (final["task_id"] == t).any()]
    names += present_finals
    position = {name: column for column, name in enumerate(names)}
    # A lookup array from spec id to node column, applied to every row at once.
    spec_ids = final["spec_id"].fillna(-1).to_numpy(dtype="int64")
    lookup = np.full(max(node_of_spec, default=0) + 1, -1)
    for spec_id, node in node_of_spec.items():
        lookup[spec_id] = position[node]
    in_range = (spec_ids >= 0) & (spec_ids < len(lookup))
    node_code = np.where(in_range, lookup[np.where(in_range, spec_ids, 0)], -1)
    for task_id in present_finals:
        node_code = np.where((final["task_id"] == task_id).to_numpy(), position[task_id], node_code)
    keep = node_code >= 0
    width = len(names)
    cell = run_codes[keep] * width + node_code[keep]
    size = count * width
    seconds = final["seconds"].to_numpy()[keep]
    starts = final["t_start"].to_numpy()[keep]
    ends = final["t_end"].to_numpy()[keep]
    instances = np.bincount(cell, minlength=size)
    work = np.bincount(cell, weights=seconds, minlength=size)
    first = np.full(size, np.inf)
    last = np.full(size, -np.inf)
    np.fmin.at(first, cell, starts)
    np.fmax.at(last, cell, ends)
    # One instance: its seconds. A group (Task 8's stages): first start -> last end.
    duration = np.where(instances == 1, work, last - first)
    duration = np.where(instances == 0, np.nan, duration)
    return pd.DataFrame(duration.reshape(count, width), columns=names)


def _to_timestamps(epoch_seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(epoch_seconds, unit="s", utc=True)
