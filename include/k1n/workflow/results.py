"""The result-file contract between a task's handler and the workflow.

Every handler, whether in-process Python or an external program, reports its outcome by writing
`task-results/task-<id>.json` inside the run's work directory. The file holds at least::

    {"quality_gates": {"passed": P, "total": T}}

and may carry any further keys, which are kept as they are. The workflow reads the file back
with `read_result`, and the validated dict becomes the task's XCom.

Writers go through `write_result`, which validates first and then replaces the file atomically,
so a reader never sees a half-written file. Readers get every problem as one `ResultFileError`
whose one-line message names the file and what is wrong with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from k1n.io import write_bytes_atomic

RESULTS_DIRNAME = "task-results"


class HandlerError(RuntimeError):
    """A task's handler could not produce a usable result."""


class ResultFileError(HandlerError):
    """A result file that is missing, unreadable or breaks the contract."""


class QualityGates(BaseModel):
    """How many of a task's quality gates passed."""

    # Extra keys (say, a handler's per-gate names) are kept, like at the top level: the two
    # counts are the contract, anything beside them is the handler's business.
    model_config = ConfigDict(extra="allow", frozen=True)

    # StrictInt: a gate count of 2.5, "3" or true is a bug in the handler, not something to coerce.
    passed: StrictInt = Field(ge=0)
    total: StrictInt = Field(ge=1)

    @model_validator(mode="after")
    def _passed_within_total(self) -> QualityGates:
        if self.passed > self.total:
            raise ValueError(f"passed ({self.passed}) exceeds total ({self.total})")
        return self


class TaskResult(BaseModel):
    """The content of a result file: quality gates plus whatever else the handler reports."""

    model_config = ConfigDict(extra="allow")

    quality_gates: QualityGates


def result_path(work_dir: Path, task_id: int) -> Path:
    """Where task `task_id` of the run in `work_dir` writes its result."""
    return Path(work_dir) / RESULTS_DIRNAME / f"task-{task_id}.json"


def write_result(work_dir: Path, task_id: int, result: Mapping[str, Any]) -> Path:
    """Validate `result` and write it as task `task_id`'s result file; return the file's path.

    The JSON is written to a temporary file in the same directory and moved into place with
    `os.replace`, which is atomic within one file system: a concurrent reader sees either the
    previous file or the complete new one, never a partial write.

    Raises `ResultFileError` if `result` breaks the contract or is not JSON-serialisable.
    """
    path = result_path(work_dir, task_id)
    data = dict(result)
    _validate(path, data)
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ResultFileError(f"{path}: result is not JSON-serialisable: {exc}") from exc

    # durable: a result that vanished after a crash would read as "task never ran".
    write_bytes_atomic(path, text.encode("utf-8"), durable=True)
    return path


def read_result(work_dir: Path, task_id: int) -> dict[str, Any]:
    """Read and validate task `task_id`'s result file; return its content as a dict.

    Extra keys are returned unchanged. Raises `ResultFileError` naming the file and the problem
    when it is missing, unreadable, not JSON, not an object, or its quality gates are invalid.
    """
    path = result_path(work_dir, task_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ResultFileError(f"{path}: result file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read result file: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path}: invalid JSON: {exc}") from exc
    _validate(path, data)
    return data


def validated_result(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`data` as a plain dict, if it is a valid result; `ResultFileError` naming `where` if not.

    The contract every handler's result meets, whether it came from a file or from Python.
    """
    result = dict(data)
    _validate(where, result)
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ResultFileError(f"{where}: result is not JSON-serialisable: {exc}") from None
    return result


def _validate(path: Path | str, data: object) -> None:
    """Raise `ResultFileError` unless `data` is a valid result for the file at `path`."""
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: result must be a JSON object, not {type(data).__name__}")
    try:
        TaskResult.model_validate(data)
    except ValidationError as exc:
        raise ResultFileError(f"{path}: {_one_line(exc)}") from exc


def _one_line(exc: ValidationError) -> str:
    """Pydantic's errors as `quality_gates.passed: <problem>; ...` on a single line."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)
