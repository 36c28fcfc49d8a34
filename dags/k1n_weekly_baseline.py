"""
### K1N weekly baseline

This Airflow DAG runs the old sequential workflow (`k1n_22task_baseline`) every Sunday at 03:00
(time zone `K1N_NIGHTLY_TIMEZONE`, default UTC) with the same steps as the nightly regression
DAG: trigger, wait, analyze, judge against the baseline's own history, store. Its stored
production wall time is what the nightly runs' speedup is measured against.
"""

from include.k1n.dags import BASELINE_DAG_ID
from include.k1n.nightly import WEEKLY_BASELINE_CRON, WEEKLY_BASELINE_DAG_ID, build_regression_dag

dag = build_regression_dag(
    WEEKLY_BASELINE_DAG_ID,
    cron=WEEKLY_BASELINE_CRON,
    default_target=BASELINE_DAG_ID,
    target_variable=None,
    doc_md=__doc__,
    description="K1N weekly baseline run: keeps the speedup's reference fresh",
)
