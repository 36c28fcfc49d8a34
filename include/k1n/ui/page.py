"""The HTML page: one self-contained document (inline CSS, inline SVG, a few lines of JS).

No CDN and no external asset: the page must render in a browser without internet access, and
inside the Airflow UI's iframe. Charts come from `include.k1n.ui.charts`; the JS only submits
the run pickers when they change. Every text that comes from the DB is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

from include.k1n.analysis import Comparison, RunReport, TargetCheck
from include.k1n.analysis.render import time_scale_label
from include.k1n.ui.charts import TIMES, comparison_chart, durations_chart, gantt_chart
from include.k1n.ui.store import K1N_DAG_IDS, RunRow

TITLE = "K1N bottleneck analysis"


@dataclass
class PageModel:
    """Everything one rendering of the page shows."""

    root: str  # where the app is mounted, e.g. `/k1n`
    runs: Sequence[RunRow]
    run_key: str | None = None
    a_key: str | None = None
    b_key: str | None = None
    report: RunReport | None = None
    comparison: Comparison | None = None
    report_error: str | None = None
    compare_error: str | None = None
    messages: list[str] = field(default_factory=list)


def api_url(root: str, dag_id: str, run_id: str, suffix: str = "report") -> str:
    return f"{root}/api/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/{suffix}"


def compare_url(root: str, a: RunReport, b: RunReport, suffix: str = "") -> str:
    base = api_url(root, a.info.dag_id, a.info.run_id, "compare")
    return f"{base}/{quote(b.info.dag_id, safe='')}/{quote(b.info.run_id, safe='')}{suffix}"


def render_page(model: PageModel) -> str:
    body = [
        _header(model),
        *(f'<p class="message error">{escape(message)}</p>' for message in model.messages),
        _pickers(model),
        _report_section(model),
        _comparison_section(model),
        _runs_section(model),
    ]
    return _document("".join(body))


def render_login_hint(login_url: str, status_text: str) -> str:
    """What a browser without a valid Airflow session sees (with status 401)."""
    return _document(
        f"""<header><h1>{TITLE}</h1></header>
<section class="panel login" id="login-required">
  <h2>Sign in to Airflow first</h2>
  <p>This page shows DAG runs and needs an Airflow session ({escape(status_text)}).</p>
  <p><a class="button" href="{escape(login_url)}" target="_top">Sign in to Airflow</a></p>
  <p class="muted">Opened from the Airflow UI (Browse → K1N bottlenecks), the page uses your
  Airflow session automatically.</p>
</section>"""
    )


def render_forbidden(detail: str) -> str:
    return _document(
        f"""<header><h1>{TITLE}</h1></header>
<section class="panel" id="forbidden"><h2>Not allowed</h2><p>{escape(detail)}</p></section>"""
    )


# -- sections ------------------------------------------------------------------------------------


def _header(model: PageModel) -> str:
    dags = ", ".join(f"<code>{escape(d)}</code>" for d in K1N_DAG_IDS)
    return (
        f'<header><h1>{TITLE}</h1><p class="muted">Runs of {dags} recorded by this Airflow: '
        "where the time goes, which chain of tasks decides the wall time, and what overlapping "
        "the independent tasks saves.</p></header>"
    )


def _options(runs: Sequence[RunRow], selected: str | None, *, blank: str | None = None) -> str:
    options = [f'<option value="">{escape(blank)}</option>'] if blank is not None else []
    for run in runs:
        wall = "running" if run.wall_seconds is None else f"{run.wall_seconds:.1f} s"
        text = f"{run.label} · {run.run_id} · {run.state or '-'} · {wall}"
        chosen = " selected" if run.key == selected else ""
        options.append(f'<option value="{escape(run.key)}"{chosen}>{escape(text)}</option>')
    return "".join(options)


def _pickers(model: PageModel) -> str:
    if not model.runs:
        return (
            '<section class="panel" id="no-runs"><h2>No runs yet</h2><p>No run of the K1N DAGs '
            "that you may read is recorded. Trigger <code>k1n_22task_baseline</code> or "
            "<code>k1n_22task_optimized</code> (or run <code>make demo</code>).</p></section>"
        )
    a_options = _options(model.runs, model.a_key, blank="none")
    b_options = _options(model.runs, model.b_key, blank="none")
    return f"""<form class="panel pickers" method="get" id="pickers">
  <label>Report of run
    <select name="run" data-autosubmit>{_options(model.runs, model.run_key)}</select></label>
  <label>Compare: reference (top)
    <select name="a" data-autosubmit>{a_options}</select></label>
  <label>against (bottom)
    <select name="b" data-autosubmit>{b_options}</select></label>
  <button type="submit">Show</button>
</form>"""


def _card(title: str, value: str, note: str = "", css: str = "") -> str:
    note_html = f'<div class="note">{escape(note)}</div>' if note else ""
    return (
        f'<div class="card {css}"><div class="card-title">{escape(title)}</div>'
        f'<div class="value">{escape(value)}</div>{note_html}</div>'
    )


def _report_section(model: PageModel) -> str:
    if model.report_error:
        return (
            f'<section class="panel" id="report"><h2>Report</h2>'
            f'<p class="message error">{escape(model.report_error)}</p></section>'
        )
    report = model.report
    if report is None:
        return ""
    info = report.info
    path = report.critical_path
    overhead = report.overhead
    chances = report.opportunities
    production_min = report.production_seconds(report.wall_seconds) / 60
    quality = next((t for t in report.targets if t.key == "quality_gate_pass_rate_min"), None)
    quality_value = "n/a" if quality is None or quality.actual is None else f"{quality.actual:.1%}"
    cards = [
        _card(
            "Wall time",
            f"{report.wall_seconds:.1f} s",
            f"{production_min:.1f} production min "
            f"(time scale {time_scale_label(report.time_scale)})",
        ),
        _card(
            "Critical path",
            f"{path.seconds:.1f} s",
            f"{_share(path.seconds, report.wall_seconds)} of the wall time, "
            f"{len(path.nodes)} tasks",
            "critical",
        ),
        _card(
            "Orchestration overhead",
            f"{overhead.idle_seconds:.1f} s",
            f"no task running ({_share(overhead.idle_seconds, report.wall_seconds)}); "
            f"median hand-off {overhead.per_hop_seconds:.2f} s",
        ),
        _card(
            "Task time",
            f"{report.total_task_seconds:.1f} s",
            f"{len(report.tasks)} tasks, {int(report.instances['final'].sum())} instances",
        ),
        _card(
            "Parallel what-if",
            f"{chances.what_if_with_overhead_seconds:.1f} s",
            f"speedup {_ratio(report.wall_seconds, chances.what_if_with_overhead_seconds)} "
            "with this run's hand-offs",
        ),
        _card(
            "Quality gates",
            quality_value,
            quality.description if quality else "",
            _verdict_css(quality.met if quality else None),
        ),
    ]
    chips = " <span class='arrow'>→</span> ".join(
        f'<span class="chip" data-node="{escape(name)}">{escape(_node_label(report, name))}</span>'
        for name in path.nodes
    )
    json_url = api_url(model.root, info.dag_id, info.run_id)
    markdown_url = api_url(model.root, info.dag_id, info.run_id, "report.md")
    links = f'<a href="{escape(json_url)}">JSON</a> · <a href="{escape(markdown_url)}">Markdown</a>'
    ids = f'data-dag="{escape(info.dag_id)}" data-run="{escape(info.run_id)}"'
    return f"""<section class="panel" id="report" {ids}>
  <h2>Report: {escape(info.label or info.dag_id)} · <code>{escape(info.run_id)}</code>
    {_state(info.state)}</h2>
  <p class="links">{links}</p>
  <div class="cards">{"".join(cards)}</div>
  <div class="critical-path" id="critical-path"><span class="cp-title">Critical path</span>
    (declared dependencies, measured durations): {chips}</div>
  <h3>Task durations</h3>
  <div class="chart-box">{durations_chart(report)}</div>
  <h3>Timeline with the critical path</h3>
  <div class="chart-box">{gantt_chart(report)}</div>
  {_report_details(report)}
</section>"""


def _report_details(report: RunReport) -> str:
    targets = "".join(
        f"<tr><td>{escape(t.description)}</td><td>{escape(_target_actual(t))}</td>"
        f'<td class="{_verdict_css(t.met)}">{escape(t.verdict)}</td></tr>'
        for t in report.targets
    )
    over = (
        ", ".join(f"<code>{escape(t.task)}</code> {t.share:.1%}" for t in report.over_10_percent)
        or "none"
    )
    pairs = "".join(
        f"<tr><td><code>{escape(p.first)}</code></td><td><code>{escape(p.then)}</code></td>"
        f"<td>{p.saving_max_seconds:.2f} s</td></tr>"
        for p in report.opportunities.pairs[:10]
    )
    pairs_html = (
        f"<table><tr><th>ran first</th><th>then (was already ready)</th><th>up to</th></tr>"
        f"{pairs}</table>"
        if pairs
        else "<p>Every pair of independent tasks overlapped.</p>"
    )
    mapped = "".join(
        f"<tr><td><code>{escape(m.task)}</code></td><td>{m.count}</td>"
        f"<td>{m.sum_seconds:.2f} s</td><td>{m.max_seconds:.2f} s</td><td>{m.skew:.2f}</td></tr>"
        for m in report.mapped
    )
    mapped_html = (
        f"<h4>Mapped tasks</h4><table><tr><th>task</th><th>indexes</th><th>sum</th><th>max</th>"
        f"<th>skew (max / mean)</th></tr>{mapped}</table>"
        if mapped
        else ""
    )
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    notes_html = f"<h4>Notes</h4><ul>{notes}</ul>" if notes else ""
    return f"""<details><summary>Targets, tasks over 10 %, mapped tasks, opportunities</summary>
  <h4>Targets (production scale)</h4>
  <table><tr><th>target</th><th>actual</th><th></th></tr>{targets}</table>
  <h4>Over 10 % of the task time</h4><p>{over}</p>
  {mapped_html}
  <h4>Independent tasks that ran one after the other</h4>{pairs_html}
  {notes_html}
</details>"""


def _comparison_section(model: PageModel) -> str:
    if model.compare_error:
        return (
            f'<section class="panel" id="compare"><h2>Comparison</h2>'
            f'<p class="message error">{escape(model.compare_error)}</p></section>'
        )
    comparison = model.comparison
    if comparison is None:
        if model.runs:
            return (
                '<section class="panel" id="compare"><h2>Comparison</h2><p class="muted">Pick a '
                "reference run and a run to compare it with above.</p></section>"
            )
        return ""
    a, b = comparison.a, comparison.b
    faster = comparison.speedup_factor
    verb = "faster" if faster >= 1 else "slower"
    headline = (
        f"{escape(b.info.label)} took <strong>{comparison.b_wall / 60:.1f} min</strong> against "
        f"{escape(a.info.label)}'s <strong>{comparison.a_wall / 60:.1f} min</strong>: "
        f'<strong class="speedup">{_factor(faster)} {verb}</strong>, '
        f"{abs(comparison.speedup_percent):.1f} % {'less' if faster >= 1 else 'more'} wall time"
    )
    prediction = (
        f"{escape(a.info.label)}'s what-if (its durations on the declared dependencies, with its "
        f"hand-offs) predicted {comparison.predicted_b_wall / 60:.1f} min for a parallel run "
        f"({comparison.prediction_error_percent:+.1f} % against {escape(b.info.label)}'s measured "
        "wall time)."
    )
    rows = "".join(
        f"<tr><td>{escape(str(t.spec_id) if t.spec_id is not None else '')}</td>"
        f"<td>{escape(t.name)}</td><td>{_min(t.a_seconds)}</td><td>{_min(t.b_seconds)}</td>"
        f"<td>{_change(t.change)}</td></tr>"
        for t in comparison.tasks
    )
    links = (
        f'<a href="{escape(compare_url(model.root, a, b))}">JSON</a> · '
        f'<a href="{escape(compare_url(model.root, a, b, ".md"))}">Markdown</a>'
    )
    return f"""<section class="panel" id="compare">
  <h2>Comparison: {escape(a.info.label)} (top) and {escape(b.info.label)} (bottom)</h2>
  <p class="links">{links}</p>
  <p class="headline" id="speedup">{headline}</p>
  <p class="muted">{prediction} Both charts start at t = 0 and share one axis in production
    minutes (measured seconds ÷ each run's time scale), so runs at different scales compare.</p>
  <div class="chart-box">{comparison_chart(comparison)}</div>
  <details><summary>Per task (production minutes)</summary>
    <table><tr><th>#</th><th>task</th><th>A</th><th>B</th><th>change</th></tr>{rows}</table>
  </details>
</section>"""


def _runs_section(model: PageModel) -> str:
    if not model.runs:
        return ""
    rows = []
    for run in model.runs:
        query = f"?run={quote(run.key, safe='/')}"
        if model.a_key:
            query += f"&a={quote(model.a_key, safe='/')}"
        if model.b_key:
            query += f"&b={quote(model.b_key, safe='/')}"
        wall = "-" if run.wall_seconds is None else f"{run.wall_seconds:.1f} s"
        production = (
            "-"
            if run.production_wall_seconds is None
            else f"{run.production_wall_seconds / 60:.1f}"
        )
        scale = "-" if run.time_scale is None else time_scale_label(run.time_scale)
        started = "-" if run.start is None else run.start.strftime("%Y-%m-%d %H:%M:%S")
        current = ' class="current"' if run.key == model.run_key else ""
        rows.append(
            f"<tr{current}><td>{escape(run.label)}</td>"
            f'<td><a href="{escape(query)}">{escape(run.run_id)}</a></td>'
            f"<td>{_state(run.state)}</td><td>{escape(started)}</td><td>{wall}</td>"
            f"<td>{scale}</td><td>{production}</td></tr>"
        )
    return f"""<section class="panel" id="runs"><h2>Runs</h2>
<table class="runs"><tr><th>DAG</th><th>run</th><th>state</th><th>started (UTC)</th><th>wall</th>
<th>time scale</th><th>production min</th></tr>{"".join(rows)}</table></section>"""


# -- small formatting helpers --------------------------------------------------------------------


def _state(state: str | None) -> str:
    text = state or "unknown"
    return f'<span class="state state-{escape(text)}">{escape(text)}</span>'


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _ratio(a: float, b: float) -> str:
    return _factor(a / b) if b else "-"


def _factor(value: float) -> str:
    return f"{value:.2f}{TIMES}" if math.isfinite(value) else "infinitely"


def _min(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.2f}"


def _change(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f} %"


def _verdict_css(met: bool | None) -> str:
    return {True: "met", False: "missed", None: "unknown"}[met]


def _target_actual(target: TargetCheck) -> str:
    if target.actual is None:
        return "n/a"
    return (
        f"{target.actual:.1%}" if target.unit == "ratio" else f"{target.actual:.1f} {target.unit}"
    )


def _node_label(report: RunReport, name: str) -> str:
    node = next((n for n in report.nodes if n.node == name), None)
    if node is None or node.spec_id is None:
        return name
    return f"{node.spec_id} {node.name}"


def _document(body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>{_CSS}</style></head>
<body>{body}
<script>{_JS}</script>
</body></html>"""


_CSS = """
:root { color-scheme: light; --text: #212529; --muted: #868e96; --line: #dee2e6;
  --critical: #e03131; --accent: #4c6ef5; --ok: #2f9e44; --bg: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 40px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--text); background: var(--bg); }
header h1 { margin: 0 0 2px; font-size: 22px; }
h2 { font-size: 17px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 13px; margin: 14px 0 4px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted, .note { color: var(--muted); }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin: 14px 0; }
.pickers { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: flex-end; }
.pickers label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.pickers select { margin-top: 3px; max-width: 380px; font-size: 13px; padding: 4px; }
button, .button { background: var(--accent); color: #fff; border: 0; border-radius: 5px;
  padding: 6px 14px; font-size: 13px; text-decoration: none; cursor: pointer; }
.links { margin: 0 0 10px; font-size: 13px; }
.links a { color: var(--accent); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card-title { font-size: 12px; color: var(--muted); }
.card .value { font-size: 20px; font-weight: 650; }
.card.critical .value { color: var(--critical); }
.card.met .value { color: var(--ok); }
.card.missed .value { color: var(--critical); }
.critical-path { margin: 12px 0 4px; line-height: 2; }
.cp-title { font-weight: 650; color: var(--critical); }
.chip { display: inline-block; border: 1px solid var(--critical); color: var(--critical);
  border-radius: 10px; padding: 0 8px; line-height: 1.6; font-size: 12px; white-space: nowrap; }
.arrow { color: var(--muted); }
.chart-box { overflow-x: auto; }
svg.chart { display: block; max-width: 100%; height: auto; }
.headline { font-size: 16px; margin: 6px 0; }
.speedup { color: var(--ok); }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #f1f3f5; }
th { color: var(--muted); font-weight: 600; }
tr.current td { background: #edf2ff; }
td.met { color: var(--ok); } td.missed { color: var(--critical); }
.state { font-size: 12px; padding: 1px 7px; border-radius: 9px; background: #e9ecef;
  font-weight: 500; vertical-align: middle; }
.state-success { background: #d3f9d8; color: #2b8a3e; }
.state-failed { background: #ffe3e3; color: #c92a2a; }
.state-running, .state-queued { background: #d0ebff; color: #1864ab; }
.message.error { color: #c92a2a; background: #fff5f5; border: 1px solid #ffc9c9;
  border-radius: 6px; padding: 8px 10px; }
details { margin-top: 14px; }
summary { cursor: pointer; color: var(--accent); }
"""

# Submit the pickers on change; without JS the Show button does the same.
_JS = """
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
"""
