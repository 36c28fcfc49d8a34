"""Retention: what a finished run leaves in object storage, and what is removed.

Every workflow run ends with `finish_run` (the DAGs' teardown task, which runs whatever
happened to the other tasks). It records the run as finished (`run.json`: ids, time, the
snapshot its Task 8 published), removes the run's codegen staging, keeps the newest
`keep_runs` finished runs of the DAG (older run prefixes are removed), and removes the
snapshots that neither the DAG's pointer, nor a kept run, nor a still-running run refers to.

A running run's files are never touched: a run prefix without `run.json` is running, and its
staging names the snapshots it reads (`Staging.references`). While any running run is between
reading the pointer and recording its base, no snapshot is removed that time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from k1n import storage
from k1n.codegen import Staging
from k1n.tasks.context import RunContext

log = logging.getLogger(__name__)

RUN_RECORD = "run.json"
DEFAULT_KEEP_RUNS = 10


def finish_run(ctx: RunContext, keep_runs: int = DEFAULT_KEEP_RUNS) -> dict[str, Any]:
    """Record this run as finished and apply the retention; a summary of what was removed."""
    if keep_runs < 1:
        raise ValueError(f"keep_runs must be at least 1, got {keep_runs}")
    snapshot = ctx.codegen_snapshot
    storage.remove_tree(ctx.codegen_staging)
    record = {
        "dag_id": ctx.dag_id,
        "run_id": ctx.run_id,
        "finished_at": time.time(),
        "snapshot": snapshot,
    }
    storage.write_json(ctx.run_prefix / RUN_RECORD, record, atomic=True)

    store = ctx.codegen_store
    current = store.current_id()  # read before the runs: see `Staging.references`
    finished: list[tuple[float, Any, dict[str, Any]]] = []
    referenced: set[str] = set()
    reading = False
    for prefix in storage.children(storage.runs_of(ctx.storage, ctx.dag_id)):
        done = _record(prefix)
        if done is None:  # still running
            ids, between = Staging(prefix / "codegen").references()
            referenced |= ids
            reading = reading or between
        else:
            finished.append((float(done.get("finished_at") or 0), prefix, done))
    finished.sort(key=lambda item: item[0], reverse=True)
    removed_runs = []
    for _, prefix, done in finished[keep_runs:]:
        storage.remove_tree(prefix)
        removed_runs.append(done.get("run_id"))
    referenced |= {done["snapshot"] for _, _, done in finished[:keep_runs] if done.get("snapshot")}
    removed_snapshots = [] if reading else store.prune(referenced | {current or ""})
    summary = {
        "kept_runs": min(len(finished), keep_runs),
        "removed_runs": removed_runs,
        "removed_snapshots": removed_snapshots,
        "snapshot_pruning": "skipped: a run is reading the pointer" if reading else "done",
    }
    log.info(
        "retention: kept %d finished run(s), removed %d run(s) and %d snapshot(s)%s",
        summary["kept_runs"],
        len(removed_runs),
        len(removed_snapshots),
        "; snapshot pruning skipped (a run is reading the pointer)" if reading else "",
    )
    return summary


def _record(prefix: Any) -> dict[str, Any] | None:
    try:
        document = storage.read_json(prefix / RUN_RECORD)
    except ValueError:
        return {"finished_at": 0}  # unreadable: an old, broken record; first to go
    return document if isinstance(document, dict) else None
