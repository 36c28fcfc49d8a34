"""Glue between the metadata DB rows and the analysis core: extensions, reports, comparisons.

The analysis (`airflow_bottleneck.analysis`) is pure pandas/networkx; this module only

- analyses each run with the report extension of its DAG, if one is registered;
- memoizes reports by their *input* (the run's info, every task-instance row, the graph and
  the history), so a page that shows a run and a comparison with it analyzes each run once,
  and a finished run viewed again costs only its queries. A run that changed (a new try, a
  later end) has other input, so it is analyzed afresh: the cache never serves a stale report;
- turns "nothing to analyze yet" into `ReportUnavailable`;
- runs at most `ANALYSIS_SLOTS` analyses at once: the routes share the API server's thread
  pool with Airflow's own, so a burst of report requests waits here (and gets a 503 after
  `ANALYSIS_WAIT_SECONDS`) rather than taking every thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from airflow_bottleneck.analysis import (
    AnalysisInputError,
    Comparison,
    RunData,
    RunReport,
    compare_runs,
)
from airflow_bottleneck.extension import ReportExtension, extension_for

REPORT_CACHE_SIZE = 32
ANALYSIS_SLOTS = 2
ANALYSIS_WAIT_SECONDS = 20.0
# Time scales are compared at this many significant digits (1/60 typed as 0.0166667 or
# 0.016666667 is one cache entry and one analysis).
TIME_SCALE_DIGITS = 6


class ReportUnavailable(Exception):
    """The run exists but cannot be analyzed (yet): e.g. no task instance has finished."""


class ReportBusy(Exception):
    """Every analysis slot stayed taken for `ANALYSIS_WAIT_SECONDS`: try again shortly."""


Result = TypeVar("Result")
_analysis_slots = threading.BoundedSemaphore(ANALYSIS_SLOTS)


class _ReportCache:
    """A small thread-safe LRU of reports keyed by a digest of their complete input."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, RunReport] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> RunReport | None:
        with self._lock:
            report = self._items.get(key)
            if report is not None:
                self._items.move_to_end(key)
            return report

    def put(self, key: str, report: RunReport) -> None:
        with self._lock:
            self._items[key] = report
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_reports = _ReportCache(REPORT_CACHE_SIZE)


def _input_key(
    data: RunData, extension: ReportExtension | None, time_scale: float | None, detail: bool
) -> str:
    digest = hashlib.blake2b(digest_size=20)
    token = None if extension is None else (extension.name, extension.cache_token())
    # Only finished runs are cached: their info (observed_at included) is stable.
    digest.update(repr((data.info, time_scale, token, detail, data.history)).encode())
    if data.graph is not None:
        digest.update(repr((data.graph.source, data.graph.edges)).encode())
    # Hash the rows' values (a few dozen rows; vectorized), not their object identities.
    hashed = pd.util.hash_pandas_object(data.instances.astype("string"), index=False)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def analyze(data: RunData, *, time_scale: float | None = None, detail: bool = False) -> RunReport:
    """The run's report, with what its DAG's extension adds; `time_scale` overrides the one
    recorded with the run. Raises `ExtensionUnavailable` when the extension cannot serve."""
    extension = extension_for(data.info.dag_id)
    if time_scale is not None:
        time_scale = float(f"{time_scale:.{TIME_SCALE_DIGITS}g}")
    if data.info.state not in ("success", "failed"):
        # A run still going changes from one request to the next: never cached.
        return _analyze(data, extension, time_scale, detail)
    key = _input_key(data, extension, time_scale, detail)
    report = _reports.get(key)
    if report is None:
        report = _analyze(data, extension, time_scale, detail)
        _reports.put(key, report)
    return report


def in_slot(compute: Callable[[], Result]) -> Result:
    """`compute()` in one of the `ANALYSIS_SLOTS`; `ReportBusy` when none frees up in time."""
    if not _analysis_slots.acquire(timeout=ANALYSIS_WAIT_SECONDS):
        raise ReportBusy(f"every analysis slot is busy; try again in {ANALYSIS_WAIT_SECONDS:g} s")
    try:
        return compute()
    finally:
        _analysis_slots.release()


def _analyze(
    data: RunData, extension: ReportExtension | None, time_scale: float | None, detail: bool
) -> RunReport:
    try:
        return in_slot(lambda: data.analyze(extension, time_scale=time_scale, detail=detail))
    except AnalysisInputError as exc:
        raise ReportUnavailable(str(exc)) from None


def compare(a: RunReport, b: RunReport) -> Comparison:
    """Run A (the reference, e.g. the baseline) against run B."""
    return compare_runs(a, b)


def clear_cache() -> None:
    """Forget memoized reports (tests, benchmarks)."""
    _reports.clear()
