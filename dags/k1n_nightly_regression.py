"""
### K1N nightly regression

This Airflow DAG runs every night at 02:00 (time zone `K1N_NIGHTLY_TIMEZONE`, default UTC):
it triggers the optimized workflow (`k1n_22task_optimized`; the `target_dag_id` param or the
Variable `k1n_nightly_target_dag` switches it, e.g. back to `k1n_22task_baseline`), waits for it
in the triggerer, analyzes the run, judges it against the history of the same DAG stored in
PostgreSQL (connection `k1n_metrics`, Variables `k1n_regression_*`), checks the targets and the
quality gates, and ends with `verdict`: success, or a failure whose log holds the summary.

See `include/k1n/nightly.py` and the README's "Nightly regression" section.
"""

from include.k1n.dags import OPTIMIZED_DAG_ID
from include.k1n.nightly import NIGHTLY_CRON, NIGHTLY_DAG_ID, TARGET_VARIABLE, build_regression_dag

dag = build_regression_dag(
    NIGHTLY_DAG_ID,
    cron=NIGHTLY_CRON,
    default_target=OPTIMIZED_DAG_ID,
    target_variable=TARGET_VARIABLE,
    doc_md=__doc__,
    description="K1N nightly run of the workflow with a regression verdict",
)
