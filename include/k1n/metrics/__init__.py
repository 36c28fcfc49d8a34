"""Nightly regression tracking: a metrics history in PostgreSQL and a verdict per run.

- `schema.py`: the connection (`PostgresHook(postgres_conn_id="k1n_metrics")` or a DB-API
  connection), transactions and the versioned schema (`ensure_schema`);
- `store.py`: `store_report` (a run and its task rows in one transaction, UPSERT),
  `record_verdict`;
- `history.py`: `load_history` (per-task seconds of the last good runs), `load_runs`.
- `regression.py`: robust median/MAD comparison of every task and the wall time against that
  history (`detect_regressions`), and `judge_run` -> `Verdict` (regressions, run state, targets,
  quality pass rate) with a readable `summary()`. Pure pandas/numpy.

A nightly run: analyze it, load the history, judge, store report and verdict together::

    report = analyze_run(...).as_dict()
    policy = RegressionPolicy.from_variables(variables)          # k1n_regression_* Variables
    history = load_history(hook, dag_id, policy.history_runs,
                           time_scale=report["time_scale"], exclude_run_id=report["run_id"])
    verdict = judge_run(report, history, policy)
    store_report(hook, report, verdict)

Importing this package does not import Airflow; only a call without a connection does.
"""

from k1n.metrics.records import StoredRun, record_verdict, store_report
from k1n.metrics.regression import (
    FAILING_STATUSES,
    GOAL_TARGET_KEYS,
    MAD_TO_SIGMA,
    POLICY_VARIABLES,
    WALL_TIME,
    Regression,
    RegressionPolicy,
    Verdict,
    VerdictStatus,
    WallImpact,
    baseline,
    detect_regressions,
    detect_wall_movers,
    history_from_reports,
    judge_run,
    run_seconds,
    task_spans,
)
from k1n.metrics.schema import (
    METRICS_CONN_ID,
    MIGRATIONS,
    RUNS_TABLE,
    SCHEMA_VERSION_TABLE,
    TASKS_TABLE,
    MetricsStoreError,
    Migration,
    ensure_schema,
    metrics_hook,
    schema_version,
)
from k1n.readers.metrics_db import load_history, load_runs

__all__ = [
    "FAILING_STATUSES",
    "GOAL_TARGET_KEYS",
    "MAD_TO_SIGMA",
    "METRICS_CONN_ID",
    "MIGRATIONS",
    "POLICY_VARIABLES",
    "RUNS_TABLE",
    "SCHEMA_VERSION_TABLE",
    "TASKS_TABLE",
    "WALL_TIME",
    "MetricsStoreError",
    "Migration",
    "Regression",
    "RegressionPolicy",
    "StoredRun",
    "Verdict",
    "VerdictStatus",
    "WallImpact",
    "baseline",
    "detect_regressions",
    "detect_wall_movers",
    "ensure_schema",
    "history_from_reports",
    "judge_run",
    "load_history",
    "load_runs",
    "metrics_hook",
    "record_verdict",
    "run_seconds",
    "schema_version",
    "store_report",
    "task_spans",
]
