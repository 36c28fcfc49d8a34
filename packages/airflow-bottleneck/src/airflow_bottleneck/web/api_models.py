"""Response models of the plugin's own listings; reports and comparisons are the analysis'
models (`airflow_bottleneck.analysis.model`), served as they are."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from airflow_bottleneck.analysis.model import StrictModel as _Closed


class RunLinks(_Closed):
    report: str = Field(description="this run's report (JSON)")
    markdown: str = Field(description="this run's report as Markdown")
    page: str = Field(description="the HTML page showing this run")
    airflow: str = Field(description="the run's page in the Airflow UI")


class RunSummary(_Closed):
    """One DAG run as listed."""

    dag_id: str
    run_id: str
    label: str = Field(description="what a report extension calls the DAG's runs, else the DAG id")
    state: str | None
    run_type: str | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    wall_seconds: float | None = Field(description="end - start, measured (None while running)")
    time_scale: float | None = Field(description="the run's `time_scale` conf, if any")
    links: RunLinks


class RunList(_Closed):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    total: int = Field(description="runs matching the filter, in all pages")
    limit: int
    offset: int


class DagList(_Closed):
    dag_ids: list[str] = Field(description="DAGs you may read that have at least one run")


class Problem(_Closed):
    """FastAPI's error body."""

    detail: str | list | dict
