"""The plugin app's routes, one module per concern; `airflow_bottleneck.web.app` assembles them.

- `run_list`: the DAGs and runs the user may read (JSON);
- `run_report`: one run's report, and two runs compared (JSON or Markdown);
- `html_page`: the page people open from the Browse menu and the run tab (HTML).
"""
