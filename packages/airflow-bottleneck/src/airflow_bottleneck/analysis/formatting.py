"""How numbers, labels and table cells are written, once for every renderer and the page.

Values that come from a run (task ids, names, notes) are untrusted text: `md_cell` escapes
what would break a Markdown table or start a heading, and `csv_cell` neutralises what a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import math
import re

TIMES = "\u00d7"  # multiplication sign
# A spreadsheet treats a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def seconds(value: float | None) -> str:
    """`0.42 s`, `3.1 s`, `-`: two decimals below 10 s, one above."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f} s" if abs(value) < 10 else f"{value:.1f} s"


def minutes(value_seconds: float | None) -> str:
    """Seconds as `63.0 min`."""
    if value_seconds is None or not math.isfinite(value_seconds):
        return "-"
    return f"{value_seconds / 60:.1f} min"


def seconds_and_minutes(value: float) -> str:
    """`7800.0 s (130.0 min)`."""
    return f"{value:.1f} s ({value / 60:.1f} min)"


def percent(share: float | None, digits: int = 1) -> str:
    """A share 0..1 as `12.5 %`."""
    if share is None or not math.isfinite(share):
        return "-"
    return f"{share * 100:.{digits}f} %"


def factor(value: float | None) -> str:
    """`1.94×`."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}{TIMES}"


def time_scale_label(scale: float) -> str:
    """`1/60` for a reciprocal of a whole number, else `0.5`."""
    if not math.isfinite(scale) or scale <= 0:
        return str(scale)
    inverse = 1 / scale
    if not math.isfinite(inverse) or inverse > 1e9:  # a subnormal scale: no fraction to show
        return f"{scale:g}"
    if scale < 1 and abs(inverse - round(inverse)) < 1e-6:
        return f"1/{round(inverse)}"
    return f"{scale:g}"


def target_actual(actual: float | None, unit: str) -> str:
    if actual is None:
        return "n/a"
    return f"{actual:.1%}" if unit == "ratio" else f"{actual:.1f} {unit}"


def verdict_word(met: bool | None) -> str:
    return {True: "met", False: "missed", None: "unknown"}[met]


def md_cell(value: object) -> str:
    """Text that stays one cell of a Markdown table: `|`, line breaks and backticks escaped,
    so a task named `a | b` or `x\\n# Heading` cannot add columns or a heading."""
    text = " ".join(str(value).split())  # newlines and tabs -> one space
    for char in ("\\", "|", "`", "*", "_", "<", ">", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def md_code(value: object) -> str:
    """Untrusted text as inline code: no run of backticks inside can close the span (a span
    closes only at a run as long as its fence, so the fence is one longer than any inside)."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def csv_cell(value: object) -> object:
    """A CSV value a spreadsheet shows as text: a formula-like string gets a leading `'`, also
    when spaces or line breaks stand before the formula (spreadsheets skip them)."""
    if isinstance(value, str) and (
        value.startswith(FORMULA_STARTS) or value.lstrip(" \n\r\t").startswith(FORMULA_STARTS)
    ):
        return "'" + value
    return value
