"""Bottleneck analysis of DAG runs: plain Python on pandas and networkx.

Airflow records every task instance's start, end, duration, queue time, try and map index.
A reader (`airflow_bottleneck.readers`) loads them into one task-instance table (`table.py`)
with the run's dependency graph (`graph.py`), from which `analyze_run` computes a `RunReport`
(`model.py`): every task's time, start-up and share, mapped roll-ups, the critical path in the
DAG's own graph with slack, the wall time split into work and orchestration, and what a report
extension adds for its DAGs (`airflow_bottleneck.extension`). `compare_runs` sets two reports
side by side.

Nothing here imports Airflow: the same code runs in a CLI, in tests and in the plugin.
"""

from airflow_bottleneck.analysis.analyze import RunData, RunInfo, analyze_run
from airflow_bottleneck.analysis.compare import compare_runs
from airflow_bottleneck.analysis.errors import AnalysisInputError
from airflow_bottleneck.analysis.graph import (
    Schedule,
    TaskGraph,
    cpm_schedule,
    critical_path_lengths,
)
from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.analysis.table import INSTANCE_COLUMNS, normalize_instances

__all__ = [
    "INSTANCE_COLUMNS",
    "AnalysisInputError",
    "Comparison",
    "RunData",
    "RunInfo",
    "RunReport",
    "Schedule",
    "TaskGraph",
    "analyze_run",
    "compare_runs",
    "cpm_schedule",
    "critical_path_lengths",
    "normalize_instances",
]
