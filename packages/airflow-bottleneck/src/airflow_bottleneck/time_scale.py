"""A run's time scale: its durations are production durations × this scale.

A project whose test runs compress time (stand-in tasks that wait a fraction of their
production seconds) records the scale with each run; the reports divide by it to show
production figures. Runs of any other DAG have scale 1.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

# One production hour per second at the fastest; production speed at the slowest.
TIME_SCALE_MIN = 1 / 3600
TIME_SCALE_MAX = 1.0


def parse_time_scale(value: Any, where: str = "time_scale") -> float:
    """`"1/60"`, `"0.0167"` or `0.5` -> a float within [TIME_SCALE_MIN, TIME_SCALE_MAX]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where}: expected a number or a fraction such as 1/60, got {value!r}")
    text = str(value).strip()
    if len(text) > 40:
        raise ValueError(f"{where}: expected a number or a fraction such as 1/60")
    try:
        scale = float(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise ValueError(
            f"{where}: expected a number or a fraction such as 1/60, got {text!r}"
        ) from None
    if not math.isfinite(scale) or not TIME_SCALE_MIN <= scale <= TIME_SCALE_MAX:
        raise ValueError(
            f"{where}: {text} is outside [1/{round(1 / TIME_SCALE_MIN)}, {TIME_SCALE_MAX:g}]"
        )
    return scale
