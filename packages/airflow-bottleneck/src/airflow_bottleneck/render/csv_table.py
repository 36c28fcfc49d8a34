"""A report or a comparison as CSV: one row per task, every cell neutralised for spreadsheets
(`formatting.csv_cell`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from airflow_bottleneck.analysis.formatting import csv_cell
from airflow_bottleneck.analysis.model import Comparison, RunReport

REPORT_CSV_COLUMNS = (
    "task",
    "label",
    "spec_id",
    "status",
    "reason",
    "seconds",
    "share",
    "instances",
    "mapped",
    "tries",
    "retry_seconds",
    "queue_wait_seconds",
    "startup_seconds",
    "work_seconds",
    "state",
    "start_offset",
    "end_offset",
    "critical",
    "slack_seconds",
    "near_critical",
)


def report_csv(report: RunReport) -> str:
    """One row per Airflow task id."""
    return _csv(REPORT_CSV_COLUMNS, (task.model_dump() for task in report.tasks))


def comparison_csv(comparison: Comparison) -> str:
    return _csv(
        ("key", "label", "a_seconds", "b_seconds", "delta_seconds", "change"),
        (task.model_dump() for task in comparison.tasks),
    )


def _csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return out.getvalue()
