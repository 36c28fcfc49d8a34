"""Small helpers the loaders share: reading JSON files and epoch/ISO timestamps."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_bottleneck.analysis.errors import AnalysisInputError
from k1n.errors import FileProblem
from k1n.io import read_text_file


class _Unusable(FileProblem):
    pass


def read_json_file(path: Path | str, what: str) -> Any:
    """The parsed JSON of `path`; a missing, unreadable, oversized, non-regular, non-UTF-8 or
    malformed file raises one line (`AnalysisInputError`)."""
    path = Path(path)
    try:
        text = read_text_file(path, _Unusable)
    except FileProblem as exc:
        raise AnalysisInputError(f"{what} {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisInputError(
            f"{what} {path}: malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise AnalysisInputError(f"{what} {path}: malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise AnalysisInputError(f"{what} {path}: malformed JSON: {exc}") from None


# Task records of this century: a timestamp outside is a broken record (and pandas' nanosecond
# timestamps end in 2262).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# No task of a workflow runs for a month; a longer duration is a broken record.
MAX_DURATION_SECONDS = 30 * 86_400


def checked_time(stamp: datetime, where: str) -> datetime:
    """`stamp` in UTC when it lies in [EARLIEST, LATEST); one-line error otherwise."""
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    if not EARLIEST <= stamp < LATEST:
        raise AnalysisInputError(
            f"{where}: {stamp.isoformat()} is outside {EARLIEST.year}..{LATEST.year - 1}"
        )
    return stamp


def epoch_ms_time(value: Any, where: str) -> pd.Timestamp:
    """Epoch milliseconds (int or float) -> UTC timestamp, within the bounds above."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnalysisInputError(f"{where} must be epoch milliseconds")
    try:
        seconds = value / 1000
    except OverflowError:  # an integer beyond any float
        seconds = math.inf
    if not math.isfinite(seconds) or not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
        raise AnalysisInputError(
            f"{where} must be epoch milliseconds between {EARLIEST.year} and {LATEST.year - 1}"
        )
    return pd.Timestamp(round(value), unit="ms", tz="UTC")
