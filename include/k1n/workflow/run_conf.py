"""A workflow run's conf: its time scale and the test/chaos knobs, checked before any work.

The conf comes from whoever triggers a run (the UI's form, the REST API, the nightly DAG), so
it is input like any other: every value is checked against a range, and a bad one is one line
naming the key and the problem (`RunConfError`), raised before a task does anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from k1n.errors import brief
from k1n.settings import parse_time_scale

__all__ = ["RunConfError", "knob", "library_variant", "parse_time_scale"]

SLOW_FACTOR_MAX = 100.0
FAILING_GATES_MAX = 10_000
LIBRARY_VARIANT_MAX = 1_000_000


class RunConfError(ValueError):
    """A run conf value that cannot be used; one line naming the key and the problem."""


def knob(
    conf: Mapping[str, Any] | None,
    key: str,
    *,
    known_ids: set[int],
    integer: bool,
    maximum: float,
) -> dict[int, Any]:
    """A test/chaos knob `{"<task id>": amount}`, e.g. `slow_tasks {"13": 3.0}`, checked.

    Task ids must be ids of the spec; amounts must be finite, positive (gates: from 0) and at
    most `maximum`.
    """
    raw = conf.get(key) if isinstance(conf, Mapping) else None
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, Mapping):
        raise RunConfError(f"{key}: expected a mapping of task id to amount, got {brief(raw)}")
    result: dict[int, Any] = {}
    for task, amount in raw.items():
        try:
            task_id = int(str(task).strip())
        except ValueError:
            raise RunConfError(f"{key}: {brief(task)} is not a task id") from None
        if task_id not in known_ids:
            raise RunConfError(f"{key}: task {task_id} is not in the workflow spec")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise RunConfError(f"{key}.{task_id}: expected a number, got {brief(amount)}")
        if integer and not float(amount).is_integer():
            raise RunConfError(f"{key}.{task_id}: expected a whole number, got {brief(amount)}")
        low_ok = amount >= 0 if integer else amount > 0
        if not math.isfinite(amount) or not low_ok or amount > maximum:
            bounds = f"[0, {maximum:g}]" if integer else f"(0, {maximum:g}]"
            raise RunConfError(f"{key}.{task_id}: {brief(amount)} is outside {bounds}")
        result[task_id] = int(amount) if integer else float(amount)
    return result


def library_variant(conf: Mapping[str, Any] | None, *, library_configured: bool) -> int:
    """`library_variant`: 0 (or absent) for the run's usual pattern library; a whole number up
    to `LIBRARY_VARIANT_MAX` for the demo library with every pattern changed, e.g. three
    concurrent runs that each rebuild and check a library of their own. A configured library
    (`K1N_PATTERN_LIBRARY`) has no variants."""
    raw = conf.get("library_variant") if isinstance(conf, Mapping) else None
    if raw is None or raw == 0:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= LIBRARY_VARIANT_MAX:
        raise RunConfError(
            f"library_variant: expected a whole number in [0, {LIBRARY_VARIANT_MAX}], "
            f"got {brief(raw)}"
        )
    if library_configured:
        raise RunConfError(
            "library_variant: variants exist of the generated demo library only, and "
            "K1N_PATTERN_LIBRARY names a library of its own"
        )
    return raw
