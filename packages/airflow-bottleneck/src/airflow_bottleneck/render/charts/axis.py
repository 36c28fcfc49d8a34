"""Shared geometry of the charts: a linear axis with round tick values, and the palette."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH = 1120
LABEL_WIDTH = 300.0
CRITICAL = "#e03131"
NEAR = "#f08c00"
NORMAL = "#4c6ef5"
QUEUED = "#ced4da"
STARTUP = "#91a7ff"
RETRY = "#f59f00"
FASTER = "#2f9e44"
SLOWER = "#e8590c"
TEXT = "#212529"
MUTED = "#868e96"
GRID = "#e9ecef"


def nice_ticks(upper: float, count: int = 8) -> list[float]:
    """Round tick values 0, step, 2 step, ... covering [0, upper] with about `count` steps."""
    if not math.isfinite(upper) or upper <= 0:
        return [0.0]
    raw = upper / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(upper / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


@dataclass(frozen=True)
class Axis:
    """Values 0..`upper` drawn from x0 to x0 + width; `unit` follows each tick label."""

    x0: float
    width: float
    upper: float
    unit: str

    @classmethod
    def covering(cls, value: float, x0: float, width: float, unit: str) -> Axis:
        return cls(x0, width, nice_ticks(value)[-1] or 1.0, unit)

    def x(self, value: float) -> float:
        return self.x0 + max(0.0, min(value, self.upper)) / self.upper * self.width

    def ticks(self) -> list[tuple[float, str]]:
        return [(self.x(tick), f"{tick:g}{self.unit}") for tick in nice_ticks(self.upper)]


def short(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sparkline(values: list[float | None], width: float = 90.0, height: float = 16.0) -> str:
    """SVG polyline points of a series (gaps skipped); the last point is this run."""
    known = [(index, value) for index, value in enumerate(values) if value is not None]
    if len(known) < 2:
        return ""
    top = max(value for _, value in known) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{index * step:.1f},{height - value / top * height:.1f}" for index, value in known
    )
