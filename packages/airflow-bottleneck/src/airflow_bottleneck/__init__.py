"""Where a DAG run's time went, for any Airflow 3 DAG: the critical path in the DAG that ran,
each task's slack, the wall time split into work, start-up, hand-offs and waiting, and two runs
compared, as an Airflow plugin (a page, a run tab, a JSON API) and a Python API.

Public API: `airflow_bottleneck.analysis` (analyze and compare runs), `airflow_bottleneck.render`
(text, Markdown, CSV, JSON), `airflow_bottleneck.readers` (the metadata DB, the REST API),
`airflow_bottleneck.extension` (what a project adds for its own DAGs) and
`airflow_bottleneck.priority` (a priority weight strategy ranked by measured history).
"""

__version__ = "1.0.0"
