"""
### K1N optimized workflow, three priority rules (benchmark only)

The optimized DAG three times, differing only in how a ready task is ranked when slots are
short: `critical_path` (shipped: the remaining path of measured durations), `static` (the
spec's profiled remaining path) and `downstream` (Airflow's default rule). `bench/bench_workflow.py`
loads this folder as an extra DAG bundle and runs each variant under 2 and 3 slots.
"""

from k1n.dag_builders.workflow import build_optimized_dag

PRIORITY_RULES = ("critical_path", "static", "downstream")

for rule in PRIORITY_RULES:
    globals()[f"dag_{rule}"] = build_optimized_dag(
        doc_md=__doc__, dag_id=f"k1n_bench_priority_{rule}", priority=rule
    )
