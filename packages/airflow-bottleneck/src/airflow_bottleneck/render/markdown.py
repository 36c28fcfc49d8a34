"""A report or a comparison as Markdown, from Jinja2 templates (`templates/*.md.j2`).

Jinja does not escape Markdown: every value that comes from a run (labels, ids, states, notes)
goes through the `md` or `code` filter (`formatting.md_cell`, `formatting.md_code`). An
extension builds its own Markdown documents on the same environment
(`templating.markdown_environment`), so figures read the same everywhere.
"""

from __future__ import annotations

from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.render.templating import markdown_environment
from airflow_bottleneck.render.text import DEFAULT_TOP
from airflow_bottleneck.render.words import (
    headline,
    path_sentence,
    split_sentence,
    what_if_lines,
)


def report_markdown(report: RunReport, *, top: int = DEFAULT_TOP) -> str:
    what_if = [] if report.what_if is None else what_if_lines(report, top)[1:]
    return (
        markdown_environment()
        .get_template("report.md.j2")
        .render(
            r=report,
            top_tasks=report.tasks[:top],
            path_sentence=path_sentence(report),
            what_if=[line.strip() for line in what_if],
        )
    )


def comparison_markdown(comparison: Comparison) -> str:
    return (
        markdown_environment()
        .get_template("comparison.md.j2")
        .render(
            c=comparison,
            headline=headline(comparison),
            split_sentence=split_sentence(comparison),
        )
    )
