"""The plugin's HTML page: Jinja2 templates (`templates/`, autoescaped) around the charts.

One self-contained document (inline CSS, inline SVG, a few lines of JS that submit the pickers
when they change): no CDN, so it renders without internet access and inside the Airflow UI's
iframe. The page's state is its query string (`dag_id`, `run`, `a`, `b`, `offset`), so every
view has a link that opens the same view elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from airflow_bottleneck.analysis.analyze import NEAR_CRITICAL_SHARE
from airflow_bottleneck.analysis.model import Comparison, Criticality, Forecast, RunReport
from airflow_bottleneck.render.svg import (
    comparison_view,
    durations_view,
    gantt_view,
    palette,
    render_svg,
)
from airflow_bottleneck.render.templating import html_environment
from airflow_bottleneck.render.words import GRAPH_WORDS, split_sentence
from airflow_bottleneck.runs import RunRow

TITLE = "Bottleneck analysis"
# A partial run's page reloads itself this often until the run ends.
REFRESH_SECONDS = 10

# The page's only script: a picker submits its form when changed. Static, so its hash is what
# the Content-Security-Policy allows: no other script runs, whatever a rendered value holds.
PAGE_SCRIPT = """
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(PAGE_SCRIPT.encode("utf-8")).digest()).decode()
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'sha256-{_SCRIPT_HASH}'",
        # Bar widths and swatch colours are style attributes; every value in them is escaped.
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "form-action 'self'",
        # The Airflow UI shows the page in an iframe of its own origin.
        "frame-ancestors 'self'",
        "base-uri 'none'",
    ]
)


@dataclass
class PageModel:
    """Everything one rendering of the page shows."""

    root: str  # where the app is mounted, e.g. `/bottlenecks`
    dag_ids: Sequence[str]
    runs: Sequence[RunRow]
    total: int
    limit: int
    offset: int = 0
    dag_filter: str | None = None
    choices: Sequence[RunRow] = ()
    run_key: str | None = None
    a_key: str | None = None
    b_key: str | None = None
    report: RunReport | None = None
    a_report: RunReport | None = None
    b_report: RunReport | None = None
    comparison: Comparison | None = None
    report_error: str | None = None
    compare_error: str | None = None
    forecast: Forecast | None = None  # the reported run's ETA, while it runs
    criticality: Criticality | None = None  # of the filtered DAG, over its last runs
    messages: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_filter,
            "run": self.run_key,
            "a": self.a_key,
            "b": self.b_key,
            "offset": self.offset or None,
        }

    def link(self, **changes: Any) -> str:
        """This page's query string with `changes` applied (a shareable view)."""
        state = {**self.state(), **changes}
        return "?" + urlencode({key: value for key, value in state.items() if value})

    @property
    def share_url(self) -> str:
        return f"{self.root}/{self.link()}"

    @property
    def report_json(self) -> str:
        return report_url(self.root, self.report) if self.report else ""

    @property
    def report_markdown(self) -> str:
        return report_url(self.root, self.report, "report.md") if self.report else ""

    @property
    def compare_json(self) -> str:
        return compare_url(self.root, self.a_report, self.b_report) if self.comparison else ""

    @property
    def compare_markdown(self) -> str:
        if not self.comparison:
            return ""
        return compare_url(self.root, self.a_report, self.b_report) + "?format=markdown"


def api_url(root: str, dag_id: str, run_id: str, suffix: str = "report") -> str:
    return f"{root}/api/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/{suffix}"


def report_url(root: str, report: RunReport, suffix: str = "report") -> str:
    return api_url(root, report.dag_id, report.run_id, suffix)


def compare_url(root: str, a: RunReport | None, b: RunReport | None) -> str:
    assert a is not None and b is not None
    base = api_url(root, a.dag_id, a.run_id, "compare")
    return f"{base}/{quote(b.dag_id, safe='')}/{quote(b.run_id, safe='')}"


def render_page(model: PageModel) -> str:
    report, comparison = model.report, model.comparison
    partial = any(r is not None and r.partial for r in (report, model.a_report, model.b_report))
    context: dict[str, Any] = {
        "m": model,
        "report": report,
        "comparison": comparison,
        "refresh_seconds": REFRESH_SECONDS if partial else None,
        "graph_words": GRAPH_WORDS,
        "near_share": NEAR_CRITICAL_SHARE,
    }
    if report is not None:
        split = report.overhead
        context |= {
            "durations_svg": render_svg("durations", durations_view(report)),
            "gantt_svg": render_svg("gantt", gantt_view(report)),
            "split_parts": [
                ("work", split.work_seconds, palette.NORMAL),
                ("start-up", split.startup_seconds, palette.STARTUP),
                ("hand-offs", split.handoff_seconds, palette.QUEUED),
                ("waiting", split.waiting_seconds, palette.NEAR),
            ],
        }
    if comparison is not None and model.a_report is not None and model.b_report is not None:
        view = comparison_view(comparison, model.a_report, model.b_report)
        context |= {
            "comparison_svg": render_svg("comparison", view),
            "split_sentence": split_sentence(comparison),
        }
    return _render("page.html.j2", **context)


def render_login_hint(login_url: str, status_text: str) -> str:
    """What a browser without a valid Airflow session sees (with status 401)."""
    return _render("login.html.j2", login_url=login_url, status_text=status_text)


def render_forbidden(detail: str) -> str:
    return _render("forbidden.html.j2", detail=detail)


def _render(name: str, **context: Any) -> str:
    context.setdefault("refresh_seconds", None)
    template = html_environment().get_template(name)
    return template.render(title=TITLE, palette=palette, page_script=Markup(PAGE_SCRIPT), **context)
