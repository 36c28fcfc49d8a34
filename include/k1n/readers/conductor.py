"""A Conductor workflow execution, as `GET /api/workflow/{workflowId}` returns it.

Used fields: `workflowId`, `workflowName`, `startTime`, `endTime`, `status` and `tasks[]` with
`referenceTaskName`, `taskType`, `status`, `scheduledTime`, `startTime`, `endTime`, `retryCount`
(times in epoch milliseconds; 0 means "not yet").

- Control-flow tasks (`BOOKKEEPING_TASK_TYPES`: FORK, JOIN, DECISION/SWITCH, TERMINATE, ...)
  are Conductor's own bookkeeping, not work, and are left out. WAIT, HUMAN, SUB_WORKFLOW and
  every worker task stay: their time is time the workflow spent.
- Each task keeps its `referenceTaskName` as task id; its spec id comes from the name
  (`spec_id_from_reference`): the number after `task` (`task_08_codegen`, `task8`, `Task-8`)
  or else the first number standing alone in the name (`codegen_8`), when the spec has that id;
  otherwise the task is outside the spec (counted in totals, not in the dependency graph).
- A retried task appears once per try; try number = `retryCount` + 1, so the last try counts.
- `scheduledTime` is the queued time; status COMPLETED is `success`, FAILED/TIMED_OUT
  `failed`, other statuses are kept in lower case.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis.analyze import RunData, RunInfo
from airflow_bottleneck.analysis.errors import AnalysisInputError
from k1n.readers.common import epoch_ms_time, read_json_file
from k1n.workflow.spec import WorkflowSpec

BOOKKEEPING_TASK_TYPES = frozenset(
    {
        "FORK",
        "FORK_JOIN",
        "FORK_JOIN_DYNAMIC",
        "JOIN",
        "EXCLUSIVE_JOIN",
        "DECISION",
        "SWITCH",
        "TERMINATE",
        "SET_VARIABLE",
        "DO_WHILE",
    }
)
STATUS_STATES = {
    "COMPLETED": "success",
    "COMPLETED_WITH_ERRORS": "success",
    "FAILED": "failed",
    "FAILED_WITH_TERMINAL_ERROR": "failed",
    "TIMED_OUT": "failed",
    "CANCELED": "removed",
    "SKIPPED": "skipped",
    "IN_PROGRESS": "running",
    "SCHEDULED": "scheduled",
    "RUNNING": "running",
    "TERMINATED": "failed",
    "PAUSED": "running",
}
# A retry count or a task number beyond these is not a real record.
MAX_RETRY_COUNT = 10_000
MAX_ID_DIGITS = 6
_TASK_NUMBER = re.compile(r"(?<![a-z])task[_\-\s]?0*(\d+)(?!\d)", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"(?<!\d)0*(\d+)(?!\d)")


def spec_id_from_reference(name: str, known_ids: Collection[int] | None = None) -> int | None:
    """`task_08_codegen`/`task8`/`Task-8`/`codegen_8` -> 8; None when no (known) id is found."""
    match = _TASK_NUMBER.search(name) or _ANY_NUMBER.search(name)
    if not match:
        return None
    digits = match.group(1)
    if len(digits) > MAX_ID_DIGITS:  # no spec has such an id; int() of it could be refused
        return None
    number = int(digits)
    return number if known_ids is None or number in known_ids else None


def run_from_conductor(
    execution: Mapping[str, Any], spec: WorkflowSpec | None = None, *, source: str = ""
) -> RunData:
    """`RunData` of one Conductor workflow execution (bookkeeping tasks left out)."""
    if not isinstance(execution, Mapping):
        raise AnalysisInputError(
            f"Conductor execution must be a JSON object, got {type(execution).__name__}"
        )
    tasks = execution.get("tasks")
    if not isinstance(tasks, list):
        raise AnalysisInputError("Conductor execution has no 'tasks' list")
    workflow_id = str(execution.get("workflowId") or "")
    known = set(spec.by_id) if spec is not None else None
    rows = []
    skipped = 0
    for index, task in enumerate(tasks):
        if not isinstance(task, Mapping) or not isinstance(task.get("referenceTaskName"), str):
            raise AnalysisInputError(
                f"Conductor task #{index + 1} of {workflow_id or 'the execution'} "
                "has no referenceTaskName"
            )
        if str(task.get("taskType", "")).upper() in BOOKKEEPING_TASK_TYPES:
            skipped += 1
            continue
        name = task["referenceTaskName"]
        status = str(task.get("status") or "").upper()
        rows.append(
            {
                "task_id": name,
                "spec_id": spec_id_from_reference(name, known),
                "try_number": _integer(task.get("retryCount", 0), name, "retryCount") + 1,
                "state": STATUS_STATES.get(status, status.lower() or None),
                "queued": _epoch_ms(task.get("scheduledTime"), name, "scheduledTime"),
                "start": _epoch_ms(task.get("startTime"), name, "startTime"),
                "end": _epoch_ms(task.get("endTime"), name, "endTime"),
            }
        )
    if not rows:
        raise AnalysisInputError(
            f"Conductor execution {workflow_id}: no work tasks (only control-flow tasks)"
        )
    instances = pd.DataFrame(rows)
    dag_id = str(execution.get("workflowName") or "conductor")
    instances.insert(0, "run_id", workflow_id)
    instances.insert(0, "dag_id", dag_id)
    status = str(execution.get("status") or "").upper()
    info = RunInfo(
        dag_id=dag_id,
        run_id=workflow_id,
        state=STATUS_STATES.get(status, status.lower() or None),
        start=_epoch_ms(execution.get("startTime"), "workflow", "startTime"),
        end=_epoch_ms(execution.get("endTime"), "workflow", "endTime"),
        time_scale=1.0,
        source=source or f"conductor:{workflow_id}",
        notes=(f"{skipped} Conductor control-flow task(s) left out",) if skipped else (),
    )
    return RunData(info=info, instances=instances)


def load_conductor(path: Path | str, spec: WorkflowSpec | None = None) -> RunData:
    """`run_from_conductor` of a JSON file."""
    document = read_json_file(path, "Conductor execution")
    return run_from_conductor(document, spec, source=f"conductor:{path}")


def _integer(value: Any, task: str, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnalysisInputError(f"Conductor task {task}: {field} must be an integer")
    if not 0 <= value <= MAX_RETRY_COUNT:
        shown = str(value) if abs(value) < 10**12 else "a number of that size"
        raise AnalysisInputError(
            f"Conductor task {task}: {field} {shown} is outside [0, {MAX_RETRY_COUNT}]"
        )
    return value


def _epoch_ms(value: Any, task: str, field: str) -> pd.Timestamp | None:
    """Epoch milliseconds -> UTC timestamp; 0 or missing -> None (Conductor's "not yet")."""
    if value in (None, 0):
        return None
    return epoch_ms_time(value, f"Conductor {task}: {field}")
