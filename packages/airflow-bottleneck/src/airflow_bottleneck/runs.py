"""A DAG run as lists show it: enough to pick it and to read its wall time at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from airflow_bottleneck.extension import short_label


@dataclass(frozen=True)
class RunRow:
    """One DAG run as listed: enough to pick it and to read its wall time at a glance."""

    dag_id: str
    run_id: str
    state: str | None
    run_type: str | None
    queued_at: datetime | None
    start: datetime | None
    end: datetime | None
    time_scale: float | None

    @property
    def label(self) -> str:
        return short_label(self.dag_id)

    @property
    def wall_seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    @property
    def key(self) -> str:
        """`dag_id/run_id`: how the page names a run in its query string (DAG ids have no `/`)."""
        return f"{self.dag_id}/{self.run_id}"
