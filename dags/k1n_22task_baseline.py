"""
### K1N 22-task workflow: baseline

This Airflow DAG runs the workflow the way the old bash + Conductor system did: the tasks of
the workflow spec (`include/k1n/workflow/workflow.yaml`) one after another (1 → 2 → … → 22),
Task 8 (code generation) as a single task that rebuilds everything serially with no template
cache.

Use it as the reference for the optimized DAG: trigger both, then compare their Gantt views.
The `time_scale` param sets how long the stand-in tasks wait (profiled seconds × scale).
"""

from k1n.dag_builders.workflow import build_baseline_dag

dag = build_baseline_dag(doc_md=__doc__)
