"""A report or a comparison as text, JSON, Markdown or CSV (HTML: `airflow_bottleneck.web`).

Every renderer reads the one model (`model.py`); JSON is its own serialisation. Values from a
run are escaped for Markdown and neutralised for spreadsheets (`formatting.py`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from airflow_bottleneck.analysis.formatting import (
    csv_cell,
    factor,
    md_cell,
    md_code,
    percent,
    seconds,
    seconds_and_minutes,
    target_actual,
    time_scale_label,
    verdict_word,
)
from airflow_bottleneck.analysis.model import (
    OVER_SHARE_THRESHOLD,
    Comparison,
    RunReport,
    TargetCheck,
)

FORMATS = ("text", "json", "markdown", "csv")
DEFAULT_TOP = 10
RULE = "=" * 78


def render_report(report: RunReport, fmt: str, *, top: int = DEFAULT_TOP) -> str:
    """The report in one of `FORMATS`."""
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: report_text(report, top=top),
        "markdown": lambda: report_markdown(report, top=top),
        "csv": lambda: report_csv(report),
        "json": lambda: to_json(report.as_dict()),
    }
    return renderers[fmt]()


def render_comparison(comparison: Comparison, fmt: str) -> str:
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: comparison_text(comparison),
        "markdown": lambda: comparison_markdown(comparison),
        "csv": lambda: comparison_csv(comparison),
        "json": lambda: to_json(comparison.as_dict()),
    }
    return renderers[fmt]()


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def headline(comparison: Comparison) -> str:
    """`B took 63.0 min against A's 74.1 min: 1.18× faster, 15.0 % less wall time`."""
    a, b = comparison.a, comparison.b
    if comparison.verdict == "same":
        how = "the same wall time"
    else:
        more = "less" if comparison.verdict == "faster" else "more"
        how = (
            f"{factor(comparison.factor)} {comparison.verdict}, "
            f"{comparison.percent:.1f} % {more} wall time"
        )
    return f"B took {a_min(b.wall_seconds)} against A's {a_min(a.wall_seconds)}: {how}"


def a_min(production_seconds: float) -> str:
    return f"{production_seconds / 60:.1f} min"


def split_sentence(comparison: Comparison) -> str:
    """How much of the difference is work and how much is orchestration."""
    work, orchestration = comparison.work_delta_seconds, comparison.orchestration_delta_seconds
    return (
        f"Along each run's critical path, B's work differs by {work / 60:+.1f} min and its "
        f"orchestration (start-ups, hand-offs, waiting) by {orchestration / 60:+.1f} min."
    )


# -- one run: text ------------------------------------------------------------------------------


def report_text(report: RunReport, *, top: int = DEFAULT_TOP) -> str:
    lines = [
        RULE,
        "Bottleneck report" + (f": {report.label}" if report.label else ""),
        RULE,
        f"Source:          {report.source or '-'}",
        f"Run:             {report.dag_id} / {report.run_id}  ({report.state or 'state unknown'})"
        + ("  PARTIAL: the run has not finished" if report.partial else ""),
        f"Time scale:      {time_scale_label(report.time_scale)}",
        f"Wall time:       {seconds_and_minutes(report.wall_seconds)}",
        f"Task time:       {seconds_and_minutes(report.total_task_seconds)}, "
        f"{report.task_count} tasks, {report.instance_count} task instances",
        f"Graph:           {report.graph_source}",
        "",
        f"Top {min(top, len(report.tasks))} slowest tasks",
        f"  {'#':>2}  {'task':<44} {'seconds':>10} {'share':>8} {'start-up':>9} {'slack':>8}",
    ]
    for rank, task in enumerate(report.tasks[:top], start=1):
        flag = "*" if task.critical else ("~" if task.near_critical else " ")
        lines.append(
            f"  {rank:>2}{flag} {_short(task.label, 44):<44} {seconds(task.seconds):>10} "
            f"{percent(task.share):>8} {seconds(task.startup_seconds):>9} "
            f"{seconds(task.slack_seconds):>8}"
        )
    margin = seconds(report.near_critical_margin_seconds)
    lines.append(f"  (* on the critical path, ~ near-critical: slack within {margin})")
    lines += ["", f"Tasks over {OVER_SHARE_THRESHOLD:.0%} of the total task time"]
    lines += [
        f"  {_short(t.label, 50):<50} {seconds(t.seconds):>10} {percent(t.share):>8}"
        for t in report.over_10_percent
    ] or ["  none"]
    if report.mapped:
        lines += ["", "Mapped tasks (indexes: count, sum, max, skew = max / mean)"]
        lines += [
            f"  {m.task:<50} {m.count:>5} x  sum {seconds(m.sum_seconds)}  "
            f"max {seconds(m.max_seconds)}  skew {m.skew:.2f}"
            for m in report.mapped
        ]
    lines += ["", *_path_text(report), "", *_overhead_text(report)]
    if report.what_if is not None:
        lines += ["", *_what_if_text(report, top)]
    if report.targets:
        lines += ["", *_targets_text(report.targets, report.time_scale)]
    if report.notes:
        lines += ["", "Notes", *(f"  - {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


GRAPH_WORDS = {
    "dag": "the DAG's own graph",
    "execution": "the order the run executed in",
    "spec": "the spec's declared dependencies",
    "none": "no known dependencies",
}


def path_sentence(report: RunReport) -> str:
    """`Critical path (the DAG's own graph): its tasks ran 70.3 s; with their start-ups and
    hand-offs it accounts for 123.8 s, 100.0 % of the wall time`."""
    path = report.critical_path
    return (
        f"Critical path ({GRAPH_WORDS[report.graph_source]}): {len(path.tasks)} tasks that "
        f"ran {seconds(path.seconds)}; with their start-ups and hand-offs it accounts for "
        f"{seconds(path.span_seconds)}, {percent(path.share_of_wall)} of the wall time"
    )


def _step_label(label: str, status: str, limit: int) -> str:
    return _short(label if status == "ran" else f"{label} ({status})", limit)


def _path_text(report: RunReport) -> list[str]:
    path = report.critical_path
    lines = [
        path_sentence(report),
        f"  {'task':<40} {'starts':>9} {'waiting':>8} {'hand-off':>9} {'start-up':>9} {'work':>9}",
    ]
    for step in path.steps:
        lines.append(
            f"  {_step_label(step.label, step.status, 40):<40} "
            f"{'+' + seconds(step.start_offset):>9} "
            f"{seconds(step.waiting_seconds):>8} {seconds(step.handoff_seconds):>9} "
            f"{seconds(step.startup_seconds):>9} {seconds(step.work_seconds):>9}"
        )
    lines.append(f"  then to the run's end: {seconds(path.tail_seconds)}")
    return lines


def _overhead_text(report: RunReport) -> list[str]:
    o = report.overhead
    return [
        "Where the wall time went (along the critical path; the parts add up to the wall)",
        f"  work {seconds(o.work_seconds)} + start-up {seconds(o.startup_seconds)} + "
        f"hand-offs {seconds(o.handoff_seconds)} + waiting {seconds(o.waiting_seconds)} "
        f"= {seconds(o.wall_seconds - o.residual_seconds)} of {seconds(o.wall_seconds)}",
        f"  orchestration (start-up + hand-offs + waiting): {seconds(o.orchestration_seconds)} "
        f"({percent(o.orchestration_seconds / o.wall_seconds if o.wall_seconds else 0)})",
        f"  no task running at all: {seconds(o.idle_seconds)}; queue waits (all tasks): "
        f"{seconds(o.queue_wait_seconds)}; median hand-off {o.per_hop_seconds:.3f} s over "
        f"{o.hops} hops; earlier tries {seconds(o.retry_seconds)}",
    ]


def _what_if_text(report: RunReport, top: int) -> list[str]:
    w = report.what_if
    assert w is not None
    lines = [
        "What if only the spec's declared dependencies applied (this run's durations)",
        f"  {seconds_and_minutes(w.seconds)}; with this run's hand-offs and head/tail "
        f"{seconds_and_minutes(w.with_handoffs_seconds)}: {factor(w.speedup)} the speed",
    ]
    if w.pairs:
        lines.append(f"  Independent tasks that ran one after another ({len(w.pairs)} pairs):")
        lines += [
            f"    {p.first:<36} then {p.then:<36} up to {seconds(p.saving_max_seconds)}"
            for p in w.pairs[:top]
        ]
    else:
        lines.append("  Every pair of independent tasks overlapped.")
    return lines


def _targets_text(targets: list[TargetCheck], scale: float) -> list[str]:
    lines = [f"Targets (production scale: seconds / {time_scale_label(scale)})"]
    lines += [
        f"  {t.description:<36} {target_actual(t.actual, t.unit):>12}  "
        f"{verdict_word(t.met).upper()}"
        for t in targets
    ]
    return lines


# -- one run: Markdown and CSV ------------------------------------------------------------------


def report_markdown(report: RunReport, *, top: int = DEFAULT_TOP) -> str:
    o, path = report.overhead, report.critical_path
    lines = [
        "# Bottleneck report" + (f": {md_cell(report.label)}" if report.label else ""),
        "",
    ]
    if report.partial:
        lines += [f"> **Partial**: the run is {md_cell(report.state)}; figures may change.", ""]
    lines += [
        f"- **Run**: {md_code(report.dag_id)} / {md_code(report.run_id)} "
        f"({md_cell(report.state or 'state unknown')})",
        f"- **Source**: {md_code(report.source or '-')}",
        f"- **Time scale**: {time_scale_label(report.time_scale)}",
        f"- **Wall time**: {seconds_and_minutes(report.wall_seconds)}",
        f"- **{md_cell(path_sentence(report))}**",
        f"- **Wall split**: work {seconds(o.work_seconds)}, start-up "
        f"{seconds(o.startup_seconds)}, hand-offs {seconds(o.handoff_seconds)}, waiting "
        f"{seconds(o.waiting_seconds)}",
        "",
        f"## Top {min(top, len(report.tasks))} slowest tasks",
        "",
        *_md_table(
            ["#", "task", "status", "seconds", "share", "start-up", "slack", "path"],
            (
                [
                    rank,
                    md_cell(t.label),
                    md_cell(t.status if t.reason is None else f"{t.status}: {t.reason}"),
                    seconds(t.seconds),
                    percent(t.share),
                    seconds(t.startup_seconds),
                    seconds(t.slack_seconds),
                    "critical" if t.critical else ("near" if t.near_critical else ""),
                ]
                for rank, t in enumerate(report.tasks[:top], start=1)
            ),
        ),
        "",
        "## Critical path",
        "",
        *_md_table(
            ["task", "starts", "waiting", "hand-off", "start-up", "work"],
            (
                [
                    md_cell(s.label if s.status == "ran" else f"{s.label} ({s.status})"),
                    f"+{seconds(s.start_offset)}",
                    seconds(s.waiting_seconds),
                    seconds(s.handoff_seconds),
                    seconds(s.startup_seconds),
                    seconds(s.work_seconds),
                ]
                for s in path.steps
            ),
        ),
    ]
    if report.mapped:
        lines += ["", "## Mapped tasks", ""]
        lines += _md_table(
            ["task", "count", "sum", "max", "skew"],
            (
                [
                    md_cell(m.task),
                    m.count,
                    seconds(m.sum_seconds),
                    seconds(m.max_seconds),
                    f"{m.skew:.2f}",
                ]
                for m in report.mapped
            ),
        )
    if report.what_if is not None:
        lines += ["", "## What if only the declared dependencies applied", ""]
        lines += [f"- {md_cell(line.strip())}" for line in _what_if_text(report, top)[1:]]
    if report.targets:
        lines += ["", "## Targets (production scale)", ""]
        lines += _md_table(
            ["target", "actual", "verdict"],
            (
                [md_cell(t.description), target_actual(t.actual, t.unit), verdict_word(t.met)]
                for t in report.targets
            ),
        )
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {md_cell(note)}" for note in report.notes)]
    return "\n".join(lines) + "\n"


REPORT_CSV_COLUMNS = (
    "task",
    "label",
    "spec_id",
    "status",
    "reason",
    "seconds",
    "share",
    "instances",
    "mapped",
    "tries",
    "retry_seconds",
    "queue_wait_seconds",
    "startup_seconds",
    "work_seconds",
    "state",
    "start_offset",
    "end_offset",
    "critical",
    "slack_seconds",
    "near_critical",
)


def report_csv(report: RunReport) -> str:
    """One row per Airflow task id."""
    return _csv(REPORT_CSV_COLUMNS, (task.model_dump() for task in report.tasks))


# -- two runs -----------------------------------------------------------------------------------


def comparison_text(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    lines = [
        RULE,
        comparison.title,
        RULE,
        headline(comparison),
        split_sentence(comparison),
    ]
    if comparison.prediction is not None:
        p = comparison.prediction
        lines.append(
            f"A's declared-dependency what-if predicted {a_min(p.predicted_b_wall_seconds)} "
            f"for B ({p.error_percent:+.1f} % against B's measured wall time)."
        )
    lines += ["", f"  {'task':<44} {'A':>10} {'B':>10} {'change':>9}"]
    for task in comparison.tasks:
        lines.append(
            f"  {_short(task.label, 44):<44} {_min_cell(task.a_seconds):>10} "
            f"{_min_cell(task.b_seconds):>10} {_change(task.change):>9}"
        )
    lines += ["", "(production minutes: each run's seconds / its own time scale)"]
    for tag, run in (("A", a), ("B", b)):
        if run.partial:
            lines.append(f"{tag} had not finished: its figures may still change.")
    return "\n".join(lines) + "\n"


def _min_cell(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.2f}"


def _change(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f} %"


def comparison_markdown(comparison: Comparison) -> str:
    lines = [f"# {md_cell(comparison.title)}", ""]
    for tag, run in (("A", comparison.a), ("B", comparison.b)):
        if run.partial:
            lines += [f"> **Partial**: {tag} is {md_cell(run.state)}; figures may change.", ""]
    lines += [
        f"**{md_cell(headline(comparison))}**",
        "",
        md_cell(split_sentence(comparison)),
        "",
        *_md_table(
            ["task", "A (min)", "B (min)", "change"],
            (
                [
                    md_cell(t.label),
                    _min_cell(t.a_seconds),
                    _min_cell(t.b_seconds),
                    _change(t.change),
                ]
                for t in comparison.tasks
            ),
        ),
    ]
    for tag, targets in (("A", comparison.targets_a), ("B", comparison.targets_b)):
        if targets:
            lines += ["", f"## Targets of {tag} (production scale)", ""]
            lines += _md_table(
                ["target", "actual", "verdict"],
                (
                    [md_cell(t.description), target_actual(t.actual, t.unit), verdict_word(t.met)]
                    for t in targets
                ),
            )
    return "\n".join(lines) + "\n"


def comparison_csv(comparison: Comparison) -> str:
    return _csv(
        ("key", "label", "a_seconds", "b_seconds", "delta_seconds", "change"),
        (task.model_dump() for task in comparison.tasks),
    )


# -- tables -------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return out.getvalue()
