"""The charts as SVG: view models from `charts/`, drawn by `templates/charts/*.svg.j2`."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from airflow_bottleneck.render.charts import axis as palette
from airflow_bottleneck.render.charts import comparison_view, durations_view, gantt_view
from airflow_bottleneck.render.templating import html_environment


def render_svg(name: str, view: Any) -> Markup:
    """Chart `name` (`durations`, `gantt`, `comparison`) of its view model."""
    # Rendered by the autoescaping environment: every text in it is escaped already.
    template = html_environment().get_template(f"charts/{name}.svg.j2")
    return Markup(template.render(view=view, palette=palette))


__all__ = ["comparison_view", "durations_view", "gantt_view", "palette", "render_svg"]
