"""The old bash wrapper's profile directory, and the old analyzer's `summary.json`.

The wrapper left one JSON file per task run:

    task-<id>-profile.json            (the wrapper's fixed name)
    task-<id>-<YYYYmmdd_HHMMSS>.json  (the timestamped name of later wrapper versions)

each `{"task_id": int, "start_time": ISO-8601, "end_time": ISO-8601, "duration_ms": int,
"exit_code": int, "log_file": str}`. When a task has both kinds, the newest timestamped file
wins: its name says when it was written, while `-profile.json` is whatever an older wrapper left
behind. Other files in the directory (`summary.json`, logs) are ignored.

`duration_ms` is the task's duration; `start_time`/`end_time` place it on the timeline. Times
without a UTC offset are taken as UTC. Exit code 0 is state `success`, anything else `failed`.
The run is the directory: no run start/end is recorded, so the wall time is first start -> last
end, at time scale 1 (profiles are production seconds).

`legacy_summary` writes the old analyzer's `summary.json` so its consumers keep working:
`total_duration_ms` (sum of task durations), `total_duration_min`, `task_count`, `slowest_task`
and `critical_path_tasks` (the tasks over 10 % of the total: the old meaning, not the CPM path),
each task as `{"task_id": <spec id>, "duration_ms", "percentage"}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis.analyze import RunData, RunInfo
from airflow_bottleneck.analysis.errors import AnalysisInputError
from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.analysis.model import RunReport, TaskTiming
from k1n.errors import brief
from k1n.io import write_bytes_atomic
from k1n.readers.common import (
    MAX_DURATION_SECONDS,
    checked_time,
    read_json_file,
)
from k1n.workflow.spec import WorkflowSpec

PROFILE_FILE = re.compile(r"^task-(?P<id>\d+)-(?P<stamp>profile|\d{8}_\d{6})\.json$")
PROFILE_FIELDS = ("task_id", "start_time", "end_time", "duration_ms", "exit_code")
PROFILES_DAG_ID = "profiles"


def profile_files(directory: Path | str) -> dict[int, Path]:
    """The file to read for each task id in `directory` (newest timestamped, else profile)."""
    directory = Path(directory)
    if not directory.exists():
        raise AnalysisInputError(f"profile directory {directory}: not found")
    if not directory.is_dir():
        raise AnalysisInputError(f"profile directory {directory}: not a directory")
    chosen: dict[int, tuple[str, Path]] = {}
    for path in directory.iterdir():
        match = PROFILE_FILE.match(path.name)
        if not match:
            continue
        task_id, stamp = int(match["id"]), match["stamp"]
        # "" ranks below every YYYYmmdd_HHMMSS string: a timestamped file always wins.
        rank = "" if stamp == "profile" else stamp
        if task_id not in chosen or rank > chosen[task_id][0]:
            chosen[task_id] = (rank, path)
    if not chosen:
        raise AnalysisInputError(
            f"profile directory {directory}: no task-<id>-profile.json or "
            "task-<id>-<YYYYmmdd_HHMMSS>.json files"
        )
    return {task_id: path for task_id, (_, path) in sorted(chosen.items())}


def load_profiles(directory: Path | str, spec: WorkflowSpec | None = None) -> RunData:
    """`RunData` of a profile directory; task ids become the spec's Airflow task ids."""
    directory = Path(directory)
    rows = []
    for task_id, path in profile_files(directory).items():
        profile = _read_profile(path, task_id)
        spec_task = spec.by_id.get(task_id) if spec is not None else None
        rows.append(
            {
                "task_id": spec_task.airflow_task_id if spec_task else f"task_{task_id:02d}",
                "spec_id": task_id,
                "state": "success" if profile["exit_code"] == 0 else "failed",
                "start": profile["start"],
                "end": profile["end"],
                "duration": profile["duration_ms"] / 1000,
            }
        )
    instances = pd.DataFrame(rows)
    instances.insert(0, "run_id", directory.resolve().name)
    instances.insert(0, "dag_id", PROFILES_DAG_ID)
    failed = [row["task_id"] for row in rows if row["state"] == "failed"]
    info = RunInfo(
        dag_id=PROFILES_DAG_ID,
        run_id=directory.resolve().name,
        state="failed" if failed else "success",
        time_scale=1.0,
        source=f"profiles:{directory}",
        notes=(f"non-zero exit code: {', '.join(failed)}",) if failed else (),
    )
    # The old bash runner ran the tasks one after another: that order is the graph that
    # decided its wall time (the spec's declared graph stays the what-if).
    order = instances.sort_values("start", kind="stable")["task_id"].tolist()
    graph = TaskGraph.chain(order, "the old runner's order (one task after another)")
    return RunData(info=info, instances=instances, graph=graph)


def _read_profile(path: Path, task_id: int) -> dict[str, Any]:
    document = read_json_file(path, "profile")
    if not isinstance(document, Mapping):
        raise AnalysisInputError(f"profile {path}: expected a JSON object")
    missing = [name for name in PROFILE_FIELDS if name not in document]
    if missing:
        raise AnalysisInputError(f"profile {path}: missing {', '.join(missing)}")
    if not _is_int(document["task_id"]) or document["task_id"] != task_id:
        raise AnalysisInputError(
            f"profile {path}: task_id {brief(document['task_id'])} does not match the file name"
        )
    duration = document["duration_ms"]
    if not _is_int(duration) or not 0 <= duration <= MAX_DURATION_SECONDS * 1000:
        raise AnalysisInputError(
            f"profile {path}: duration_ms must be an integer from 0 to "
            f"{MAX_DURATION_SECONDS * 1000} (30 days)"
        )
    if not _is_int(document["exit_code"]):
        raise AnalysisInputError(f"profile {path}: exit_code must be an integer")
    start = _when(document["start_time"], path, "start_time")
    end = _when(document["end_time"], path, "end_time")
    if end < start:
        raise AnalysisInputError(
            f"profile {path}: end_time {document['end_time']} is before "
            f"start_time {document['start_time']}"
        )
    return {"start": start, "end": end, "duration_ms": duration, "exit_code": document["exit_code"]}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _when(value: Any, path: Path, field: str) -> datetime:
    if not isinstance(value, str):
        raise AnalysisInputError(f"profile {path}: {field} must be an ISO-8601 string")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise AnalysisInputError(
            f"profile {path}: {field} {brief(value)} is not ISO-8601"
        ) from None
    return checked_time(stamp, f"profile {path}: {field}")


def legacy_summary(report: RunReport) -> dict[str, Any]:
    """The old analyzer's `summary.json` content for a report."""
    total = report.total_task_seconds
    slowest = report.tasks[0] if report.tasks else None
    return {
        "total_duration_ms": round(total * 1000),
        "total_duration_min": round(total / 60, 2),
        "task_count": len(report.tasks),
        "slowest_task": _legacy_task(slowest) if slowest else None,
        "critical_path_tasks": [_legacy_task(task) for task in report.over_10_percent],
    }


def _legacy_task(task: TaskTiming) -> dict[str, Any]:
    return {
        "task_id": task.spec_id if task.spec_id is not None else task.task,
        "duration_ms": round(task.seconds * 1000),
        "percentage": round(task.share * 100, 1),
    }


def write_legacy_summary(report: RunReport, path: Path | str) -> Path:
    """Write `legacy_summary(report)` to `path` atomically (fresh temp file, then rename)."""
    path = Path(path)
    text = json.dumps(legacy_summary(report), indent=2) + "\n"
    try:
        write_bytes_atomic(path, text.encode("utf-8"), make_parents=False)
    except OSError as exc:
        raise AnalysisInputError(f"cannot write summary {path}: {exc.strerror or exc}") from None
    return path
