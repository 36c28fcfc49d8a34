"""Reports and comparisons in every output format, from the one model (`analysis.model`).

`render_report(report, fmt)` and `render_comparison(comparison, fmt)` are the entry point for the
document formats (`FORMATS`); each format has its module:

- `text`: fixed-width text for a terminal;
- `markdown`: Jinja2 templates (`templates/*.md.j2`), every value from a run escaped;
- `csv_table`: one row per task, cells neutralised for spreadsheets;
- `json_document`: the model's own serialisation;
- `html`: the plugin's page (autoescaped Jinja2 templates around the charts);
- `svg`: the charts (`charts/` computes their view models, `templates/charts/` draws them).

`words` holds the sentences the human formats share.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.render import csv_table, json_document, markdown, text

FORMATS = ("text", "json", "markdown", "csv")
DEFAULT_TOP = text.DEFAULT_TOP


def render_report(report: RunReport, fmt: str, *, top: int = DEFAULT_TOP) -> str:
    """The report in one of `FORMATS`."""
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: text.report_text(report, top=top),
        "markdown": lambda: markdown.report_markdown(report, top=top),
        "csv": lambda: csv_table.report_csv(report),
        "json": lambda: json_document.to_json(report.as_dict()),
    }
    return renderers[fmt]()


def render_comparison(comparison: Comparison, fmt: str) -> str:
    """The comparison in one of `FORMATS`."""
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: text.comparison_text(comparison),
        "markdown": lambda: markdown.comparison_markdown(comparison),
        "csv": lambda: csv_table.comparison_csv(comparison),
        "json": lambda: json_document.to_json(comparison.as_dict()),
    }
    return renderers[fmt]()


__all__ = ["DEFAULT_TOP", "FORMATS", "render_comparison", "render_report"]
