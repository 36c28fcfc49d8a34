"""
### K1N weekly baseline

This Airflow DAG runs the old sequential workflow (`k1n_22task_baseline`) every Sunday at 03:00
(time zone `K1N_NIGHTLY_TIMEZONE`, default UTC) with the same steps as the nightly regression
DAG: trigger, wait, analyze, judge against the baseline's own history, store. Its stored
production wall time is what the nightly runs' speedup is measured against.
"""

from k1n.dag_builders.nightly import build_weekly_baseline_dag

dag = build_weekly_baseline_dag(doc_md=__doc__)
