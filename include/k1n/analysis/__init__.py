"""Bottleneck analysis of workflow runs: plain Python on pandas and networkx.

Airflow records every task instance's start, end, duration, queue time, try and map index; the
old system had one profile JSON per task. Both (and Conductor executions) are loaded into one
task-instance table (`table.py`) with the run's dependency graph (`graph.py`), from which
`analyze_run` computes a `RunReport` (`model.py`): every task's time, start-up and share,
mapped roll-ups, the critical path in the DAG's own graph with slack, the wall time split into
work and orchestration, and, for K1N runs, the declared-dependency what-if and the targets.
`compare_runs` sets two reports side by side; `summarize_runs` rolls many runs up at once.

Nothing here imports Airflow: the same code runs in the CLI, in tests and in the plugin.
"""

from include.k1n.analysis.analyze import RunData, RunInfo, analyze_run
from include.k1n.analysis.compare import compare_runs
from include.k1n.analysis.errors import AnalysisInputError
from include.k1n.analysis.graph import (
    Schedule,
    TaskGraph,
    cpm_schedule,
    critical_path_lengths,
    dependency_graph,
)
from include.k1n.analysis.history import summarize_runs
from include.k1n.analysis.model import Comparison, RunReport
from include.k1n.analysis.render import render_comparison, render_report
from include.k1n.analysis.sources import (
    fetch_airflow_run,
    legacy_summary,
    load_conductor,
    load_profiles,
    read_run,
    run_from_airflow_json,
    run_from_conductor,
    write_legacy_summary,
)
from include.k1n.analysis.table import INSTANCE_COLUMNS, normalize_instances

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
    "dependency_graph",
    "fetch_airflow_run",
    "legacy_summary",
    "load_conductor",
    "load_profiles",
    "normalize_instances",
    "read_run",
    "render_comparison",
    "render_report",
    "run_from_airflow_json",
    "run_from_conductor",
    "summarize_runs",
    "write_legacy_summary",
]
