"""The Jinja2 environments of the template-built formats: HTML and SVG (autoescaped) and
Markdown (not escaped by Jinja: every value from a run goes through the `md`/`code` filters).

Both are strict about undefined names and let block tags leave no lines; both know the same
number filters, so a figure reads the same on the page, in a report and in an extension's own
Markdown document (`markdown_environment(extra_dirs=...)`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from airflow_bottleneck.analysis.formatting import (
    factor,
    md_cell,
    md_code,
    minutes,
    percent,
    seconds,
    seconds_and_minutes,
    target_actual,
    time_scale_label,
    verdict_word,
)

TEMPLATES = Path(__file__).with_name("templates")

NUMBER_FILTERS: dict[str, Callable[..., str]] = {
    "seconds": seconds,
    "seconds_and_minutes": seconds_and_minutes,
    "minutes": minutes,
    "percent": percent,
    "factor": factor,
    "scale": time_scale_label,
    "verdict": verdict_word,
    "target_actual": target_actual,
    "minutes_cell": lambda value: "-" if value is None else f"{value / 60:.2f}",
    "change": lambda value: "" if value is None else f"{value * 100:+.1f} %",
    "signed_minutes": lambda value: f"{value / 60:+.1f} min",
    # A saving in words: "saved 12.3 min", or what it cost when negative.
    "saved_minutes": lambda value: f"{'saved' if value >= 0 else 'cost'} {abs(value) / 60:.1f} min",
    "fixed": lambda value, digits=2: "-" if value is None else f"{value:.{digits}f}",
}


def _environment(*, autoescape: bool, extra_dirs: tuple[Path, ...] = ()) -> Environment:
    env = Environment(
        loader=FileSystemLoader([*extra_dirs, TEMPLATES]),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=not autoescape,
    )
    env.filters |= NUMBER_FILTERS
    return env


@lru_cache(maxsize=1)
def html_environment() -> Environment:
    """The page and the charts: autoescaped."""
    env = _environment(autoescape=True)
    env.filters |= {"num": svg_number, "run_text": _run_text}
    return env


@lru_cache(maxsize=8)
def markdown_environment(extra_dirs: tuple[Path, ...] = ()) -> Environment:
    """Markdown documents: this package's templates after `extra_dirs` (an extension's own)."""
    env = _environment(autoescape=False, extra_dirs=extra_dirs)
    env.filters |= {"md": md_cell, "code": md_code}
    return env


def svg_number(value: float) -> str:
    """Coordinates with at most one decimal: smaller SVG, same picture."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _run_text(run: Any) -> str:
    wall = "running" if run.wall_seconds is None else seconds(run.wall_seconds)
    return f"{run.label} · {run.run_id} · {run.state or '-'} · {wall}"
