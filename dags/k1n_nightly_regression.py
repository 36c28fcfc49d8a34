"""
### K1N nightly regression

This Airflow DAG runs every night at 02:00 (time zone `K1N_NIGHTLY_TIMEZONE`, default UTC):
it triggers the optimized workflow (`k1n_22task_optimized`; the `target_dag_id` param or the
Variable `k1n_nightly_target_dag` switches it, e.g. back to `k1n_22task_baseline`), waits for it
in the triggerer, analyzes the run, judges it against the history of the same DAG stored in
PostgreSQL (connection `k1n_metrics`, Variables `k1n_regression_*`), checks the targets and the
quality gates, and ends with `verdict`: success, or a failure whose log holds the summary.

See `include/k1n/dag_builders/nightly.py` and the README's "Nightly regression" section.
"""

from k1n.dag_builders.nightly import build_nightly_regression_dag

dag = build_nightly_regression_dag(doc_md=__doc__)
