"""The page's charts: view models computed here, SVG drawn by Jinja2 templates (`templates/`).

- `durations`: a bar per task, longest first, with its share, its status and a sparkline of
  its seconds over the DAG's last runs; critical tasks red, near-critical ones marked;
- `gantt`: one row per task on the run's own time axis: queue wait, start-up and work of every
  try, a mapped task's indexes stacked, the critical path's hand-offs drawn as dashed links;
- `comparison`: two runs on ONE axis in production minutes, reference above, with the time
  gained or lost marked in the colour of its direction.

Every mark carries a `<title>` (the browser's tooltip) and `data-*` attributes that tests and
scripts select on (`data-chart`, `data-task`, `data-critical`, `data-run`).
"""

from airflow_bottleneck.render.charts.comparison import comparison_view
from airflow_bottleneck.render.charts.durations import durations_view
from airflow_bottleneck.render.charts.gantt import gantt_view

__all__ = ["comparison_view", "durations_view", "gantt_view"]
