"""The `profile` handler: a stand-in for an external agent when none is configured.

It waits the task's profiled duration (scaled) and reports the gates the spec asks for. It does
no agent work, and says so in the task log and in its result (`stand_in: true`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from k1n.workflow.results import validated_result

logger = logging.getLogger(__name__)


def run_profile(
    *,
    task_id: int,
    name: str,
    seconds: float,
    time_scale: float,
    gates_total: int,
    gates_failed: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Stand in for a task's agent: wait `seconds` x `time_scale`, then report fixed gates.

    This does no agent work at all; it keeps the workflow's timing realistic until a real
    handler is configured, and says so in the log. The result file records `stand_in: true`
    so reports can tell stand-in gates from real ones. `sleep` is injectable for tests.

    Raises `ValueError` for a negative duration, a non-positive time scale, or gate counts
    outside `0 <= gates_failed <= gates_total`, `gates_total >= 1`.
    """
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"task {task_id}: seconds must be a finite number >= 0, got {seconds!r}")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(
            f"task {task_id}: time_scale must be a finite number > 0, got {time_scale!r}"
        )
    if gates_total < 1:
        raise ValueError(f"task {task_id}: gates_total must be >= 1, got {gates_total}")
    if not 0 <= gates_failed <= gates_total:
        raise ValueError(
            f"task {task_id}: gates_failed must be between 0 and gates_total ({gates_total}), "
            f"got {gates_failed}"
        )

    label = f"task {task_id} {name}"
    wait = seconds * time_scale
    logger.info(
        "%s: stand-in handler (no agent configured): waiting %g s x %g = %.1f s; "
        "no agent work is done",
        label,
        seconds,
        time_scale,
        wait,
    )
    sleep(wait)

    result = {
        "quality_gates": {"passed": gates_total - gates_failed, "total": gates_total},
        "handler": "profile",
        "stand_in": True,
        "profiled_seconds": seconds,
        "time_scale": time_scale,
        "waited_seconds": round(wait, 3),
    }
    logger.info(
        "%s: stand-in reports %d/%d quality gates passed (configured values, nothing was checked)",
        label,
        gates_total - gates_failed,
        gates_total,
    )
    return validated_result(result, label)
