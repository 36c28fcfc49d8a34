"""Bottleneck analysis of K1N workflow runs: plain Python on pandas and networkx.

Airflow records every task instance's start, end, duration, queue time, try and map index; the
old system had one profile JSON per task. Both (and Conductor executions) are loaded into one
task-instance table (`table.py`), from which `analyze_run` computes a `RunReport`: wall and task
time, every task's share, mapped roll-ups, the old "over 10 %" list, the real critical path with
slack (CPM on the spec's declared dependencies), orchestration overhead, parallelization
opportunities with a what-if wall time, and the spec's targets on the production time scale.
`compare_runs` sets two reports side by side; `summarize_runs` rolls many runs up at once.

Nothing here imports Airflow: the same code runs in the CLI, in tests and in a UI plugin.
"""

from include.k1n.analysis.compare import Comparison, TaskDelta, compare_runs
from include.k1n.analysis.errors import AnalysisInputError
from include.k1n.analysis.graph import (
    Schedule,
    cpm_schedule,
    critical_path_lengths,
    dependency_graph,
    independent_pairs,
)
from include.k1n.analysis.history import summarize_runs
from include.k1n.analysis.render import render_comparison, render_report
from include.k1n.analysis.report import (
    CriticalPath,
    MappedRollup,
    NodeStat,
    Opportunities,
    Overhead,
    ParallelPair,
    RunData,
    RunInfo,
    RunReport,
    TargetCheck,
    TaskStat,
    Wait,
    analyze_run,
    build_targets,
)
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
    "CriticalPath",
    "MappedRollup",
    "NodeStat",
    "Opportunities",
    "Overhead",
    "ParallelPair",
    "RunData",
    "RunInfo",
    "RunReport",
    "Schedule",
    "TargetCheck",
    "TaskDelta",
    "TaskStat",
    "Wait",
    "analyze_run",
    "build_targets",
    "compare_runs",
    "cpm_schedule",
    "critical_path_lengths",
    "dependency_graph",
    "fetch_airflow_run",
    "independent_pairs",
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
