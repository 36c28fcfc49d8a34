"""
### K1N 22-task workflow: optimized

This Airflow DAG runs the same tasks as the baseline, wired by their declared dependencies only
(the transitive reduction of `depends_on` in `include/k1n/workflow/workflow.yaml`): 1 ‖ 2, then
3 ‖ 4 ‖ 5, and after code generation 9 ‖ 10 ‖ 12 ‖ 13 ‖ 14, and so on.

Task 8 (code generation) is a task group: `parse_library` → `generate_code` (dynamically mapped
over shards of the pattern library) → `publish_code` (compile, validate, publish one snapshot).
It keeps a Jinja2 bytecode cache and a content-hash manifest, so unchanged patterns are not
regenerated, compiled or validated again.

Up to three runs may be active at once. The `time_scale` param sets how long the stand-in tasks
wait (profiled seconds × scale).
"""

from k1n.dag_builders.workflow import build_optimized_dag

dag = build_optimized_dag(doc_md=__doc__)
