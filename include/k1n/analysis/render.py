"""Reports and comparisons as text, markdown, CSV and JSON.

The text layout follows the old analyzer's, so its readers find their way: a header, the total in
seconds and minutes, the slowest tasks with seconds and share, the tasks over 10 %; then what it
could not say: the critical path, the orchestration overhead, the parallelization opportunities
and the targets.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

from include.k1n.analysis.compare import Comparison
from include.k1n.analysis.report import OVER_SHARE_THRESHOLD, RunReport, TargetCheck

FORMATS = ("text", "json", "markdown", "csv")
DEFAULT_TOP = 10
RULE = "=" * 78


# -- shared formatting --------------------------------------------------------------------------


def seconds_and_minutes(seconds: float) -> str:
    """`7800.0 s (130.0 min)`."""
    return f"{seconds:.1f} s ({seconds / 60:.1f} min)"


def time_scale_label(scale: float) -> str:
    """`1/60` for a reciprocal of a whole number, else `0.5`."""
    inverse = 1 / scale
    if scale < 1 and abs(inverse - round(inverse)) < 1e-6:
        return f"1/{round(inverse)}"
    return f"{scale:g}"


def target_actual(target: TargetCheck) -> str:
    if target.actual is None:
        return "n/a"
    if target.unit == "ratio":
        return f"{target.actual:.1%}"
    return f"{target.actual:.1f} {target.unit}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f} %"


def _json_safe(value: Any) -> Any:
    """Non-finite floats become null: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n"


# -- run report ---------------------------------------------------------------------------------


def render_report(
    report: RunReport, fmt: str, *, top: int = DEFAULT_TOP, detail: bool = True
) -> str:
    """The report in one of `FORMATS`; `detail=False` keeps per-index/per-try rows out of JSON."""
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: report_text(report, top=top),
        "markdown": lambda: report_markdown(report, top=top),
        "csv": lambda: report_csv(report),
        "json": lambda: to_json(report.as_dict(detail=detail)),
    }
    return renderers[fmt]()


def report_text(report: RunReport, *, top: int = DEFAULT_TOP) -> str:
    info = report.info
    lines = [
        RULE,
        "K1N workflow performance report" + (f": {info.label}" if info.label else ""),
        RULE,
        f"Source:          {info.source or '-'}",
        f"Run:             {info.dag_id} / {info.run_id}  ({info.state or 'state unknown'})",
        f"Time scale:      {time_scale_label(report.time_scale)}"
        + ("" if report.time_scale == 1 else " (targets are judged on seconds / time scale)"),
        f"Wall time:       {seconds_and_minutes(report.wall_seconds)}",
        f"Total duration:  {seconds_and_minutes(report.total_task_seconds)} of task time, "
        f"{len(report.tasks)} tasks, {int(report.instances['final'].sum())} task instances",
        "",
        f"Top {min(top, len(report.tasks))} slowest tasks",
        f"  {'#':>2}  {'task':<44} {'spec':>4} {'seconds':>11} {'share':>8}",
    ]
    for rank, task in enumerate(report.tasks[:top], start=1):
        spec = "" if task.spec_id is None else str(task.spec_id)
        lines.append(
            f"  {rank:>2}  {_task_label(task.task, task.instances, task.mapped):<44} {spec:>4} "
            f"{task.seconds:>9.1f} s {_percent(task.share):>8}"
        )
    lines += [
        "",
        f"Tasks over {OVER_SHARE_THRESHOLD:.0%} of the total (the old critical-path list)",
    ]
    lines += [
        f"  {task.task:<50} {task.seconds:>9.1f} s {_percent(task.share):>8}"
        for task in report.over_10_percent
    ] or ["  none"]
    if report.mapped:
        lines += ["", "Mapped tasks (per index: count, sum, max, skew = max / mean)"]
        lines += [
            f"  {rollup.task:<50} {rollup.count:>5} x  sum {rollup.sum_seconds:.1f} s  "
            f"max {rollup.max_seconds:.1f} s  skew {rollup.skew:.2f}"
            for rollup in report.mapped
        ]
    lines += ["", *_critical_path_text(report), "", *_overhead_text(report)]
    lines += ["", *_opportunities_text(report, top), "", *_targets_text(report)]
    if report.notes:
        lines += ["", "Notes", *(f"  - {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _task_label(task: str, instances: int, mapped: bool) -> str:
    return f"{task} [{instances}]" if mapped else task


def _critical_path_text(report: RunReport) -> list[str]:
    path = report.critical_path
    lines = [
        "Critical path (declared dependencies, measured durations): "
        f"{seconds_and_minutes(path.seconds)}",
        f"  {'task':<40} {'seconds':>11} {'starts at':>11} {'wait':>9} {'hand-off':>9}",
    ]
    waits = {wait.before: wait for wait in path.waits}
    for name in path.nodes:
        node = report.node(name)
        wait = waits.get(name)
        start = "-" if node.start_offset is None else f"+{node.start_offset:.1f} s"
        gap = "-" if wait is None else f"{wait.gap_seconds:.1f} s"
        handoff = "-" if wait is None else f"{wait.handoff_seconds:.1f} s"
        lines.append(f"  {name:<40} {node.duration:>9.1f} s {start:>11} {gap:>9} {handoff:>9}")
    lines.append(
        "  (wait: since the previous critical task ended; hand-off: the part no task that ran"
        " wholly inside it explains)"
    )
    slack = sorted(
        (node for node in report.nodes if not node.critical), key=lambda n: (n.slack, n.node)
    )
    if slack:
        lines.append("  Slack of the other tasks (how late each could start without delaying):")
        lines += [f"    {node.node:<44} {node.slack:>9.1f} s" for node in slack]
    return lines


def _overhead_text(report: RunReport) -> list[str]:
    overhead = report.overhead
    wall = report.wall_seconds
    share = overhead.idle_seconds / wall if wall else 0.0
    return [
        "Orchestration overhead",
        f"  Wall time with no task running:          {overhead.idle_seconds:.1f} s "
        f"({_percent(share)} of wall)",
        f"  Along the critical path (hand-offs):     {overhead.critical_path_seconds:.1f} s "
        f"(head {overhead.run_start_gap_seconds:.1f} s, tail {overhead.run_end_gap_seconds:.1f} s,"
        f" inside groups {overhead.critical_path_internal_seconds:.1f} s)",
        f"  Critical path queued behind other tasks: "
        f"{overhead.critical_path_serialized_seconds:.1f} s",
        f"  Queue waits (start - queued), all tasks: {overhead.queue_wait_seconds:.1f} s",
        f"  Median hand-off per hop:                 {overhead.per_hop_seconds:.3f} s "
        f"({overhead.hops_measured} hops)",
        f"  Earlier (retried) tries:                 {overhead.retry_seconds:.1f} s",
    ]


def _opportunities_text(report: RunReport, top: int) -> list[str]:
    chances = report.opportunities
    wall = report.wall_seconds
    saving = chances.saving_seconds(wall)
    speedup = (
        wall / chances.what_if_with_overhead_seconds if chances.what_if_with_overhead_seconds else 0
    )
    lines = [
        "Parallelization opportunities",
        f"  What-if wall, every independent task in parallel: "
        f"{seconds_and_minutes(chances.what_if_seconds)}",
        f"  ... plus measured hand-offs ({chances.hops} hops) and head/tail: "
        f"{seconds_and_minutes(chances.what_if_with_overhead_seconds)}",
        f"  Possible saving: {saving:.1f} s ({_percent(saving / wall if wall else 0)} of wall), "
        f"speedup {speedup:.2f}x",
    ]
    if chances.pairs:
        lines.append(
            f"  Independent tasks that ran one after another ({len(chances.pairs)} pairs; "
            f"top {min(top, len(chances.pairs))} by possible saving):"
        )
        lines += [
            f"    {pair.first:<36} then {pair.then:<36} up to {pair.saving_max_seconds:.1f} s"
            for pair in chances.pairs[:top]
        ]
    else:
        lines.append("  Every pair of independent tasks overlapped.")
    return lines


def _targets_text(report: RunReport) -> list[str]:
    lines = [f"Targets (production scale: seconds / {time_scale_label(report.time_scale)})"]
    lines += [
        f"  {target.description:<36} {target_actual(target):>12}  {target.verdict.upper()}"
        for target in report.targets
    ]
    return lines


def report_markdown(report: RunReport, *, top: int = DEFAULT_TOP) -> str:
    info = report.info
    lines = [
        "# K1N workflow performance report" + (f": {info.label}" if info.label else ""),
        "",
        f"- **Source**: `{info.source or '-'}`",
        f"- **Run**: `{info.dag_id}` / `{info.run_id}` ({info.state or 'state unknown'})",
        f"- **Time scale**: {time_scale_label(report.time_scale)}",
        f"- **Wall time**: {seconds_and_minutes(report.wall_seconds)}",
        f"- **Total task time**: {seconds_and_minutes(report.total_task_seconds)}",
        f"- **Critical path**: {seconds_and_minutes(report.critical_path.seconds)}",
        f"- **Overhead** (no task running): {report.overhead.idle_seconds:.1f} s",
        "",
        f"## Top {min(top, len(report.tasks))} slowest tasks",
        "",
        *_table(
            ["#", "task", "spec", "seconds", "share"],
            (
                [rank, f"`{t.task}`", t.spec_id or "", f"{t.seconds:.1f}", _percent(t.share)]
                for rank, t in enumerate(report.tasks[:top], start=1)
            ),
        ),
        "",
        f"## Over {OVER_SHARE_THRESHOLD:.0%} of the total",
        "",
        *(
            [
                f"- `{t.task}`: {t.seconds:.1f} s ({_percent(t.share)})"
                for t in report.over_10_percent
            ]
            or ["- none"]
        ),
    ]
    if report.mapped:
        lines += ["", "## Mapped tasks", ""]
        lines += _table(
            ["task", "count", "sum s", "max s", "skew"],
            (
                [
                    f"`{m.task}`",
                    m.count,
                    f"{m.sum_seconds:.1f}",
                    f"{m.max_seconds:.1f}",
                    f"{m.skew:.2f}",
                ]
                for m in report.mapped
            ),
        )
    lines += ["", "## Critical path and slack", ""]
    lines += _table(
        ["task", "seconds", "start", "slack s", "critical"],
        (
            [
                f"`{n.node}`",
                f"{n.duration:.1f}",
                "" if n.start_offset is None else f"+{n.start_offset:.1f}",
                f"{n.slack:.1f}",
                "yes" if n.critical else "",
            ]
            for n in report.nodes
        ),
    )
    lines += ["", "## Orchestration overhead", ""]
    lines += [f"- {line.strip()}" for line in _overhead_text(report)[1:]]
    lines += ["", "## Parallelization opportunities", ""]
    lines += [f"- {line.strip()}" for line in _opportunities_text(report, top)[1:4]]
    if report.opportunities.pairs:
        pairs = _table(
            ["first", "then", "saves up to s"],
            (
                [f"`{p.first}`", f"`{p.then}`", f"{p.saving_max_seconds:.1f}"]
                for p in report.opportunities.pairs[:top]
            ),
        )
        lines += ["", *pairs]
    lines += ["", "## Targets (production scale)", ""]
    lines += _table(
        ["target", "actual", "verdict"],
        ([t.description, target_actual(t), t.verdict] for t in report.targets),
    )
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


REPORT_CSV_COLUMNS = (
    "task",
    "spec_id",
    "name",
    "seconds",
    "share",
    "instances",
    "mapped",
    "tries",
    "retry_seconds",
    "queue_wait_seconds",
    "state",
    "start_offset",
    "end_offset",
    "critical",
    "slack_seconds",
)


def report_csv(report: RunReport) -> str:
    """One row per Airflow task id; `critical`/`slack_seconds` are its spec-level node's."""
    by_spec = {node.spec_id: node for node in report.nodes if node.spec_id is not None}
    by_name = {node.node: node for node in report.nodes}
    rows = []
    for task in report.tasks:
        node = by_spec.get(task.spec_id) if task.spec_id is not None else by_name.get(task.task)
        row = task.as_dict()
        row["critical"] = None if node is None else node.critical
        row["slack_seconds"] = None if node is None else round(node.slack, 3)
        rows.append(row)
    return _csv(REPORT_CSV_COLUMNS, rows)


# -- comparison ---------------------------------------------------------------------------------


def render_comparison(comparison: Comparison, fmt: str) -> str:
    """The comparison in one of `FORMATS`."""
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: comparison_text(comparison),
        "markdown": lambda: comparison_markdown(comparison),
        "csv": lambda: comparison_csv(comparison),
        "json": lambda: to_json(comparison.as_dict()),
    }
    return renderers[fmt]()


def _run_line(tag: str, report: RunReport) -> str:
    name = report.info.label or report.info.dag_id
    return (
        f"{tag}: {name:<24} {report.info.source}  (time scale "
        f"{time_scale_label(report.time_scale)}, {report.info.state or 'state unknown'})"
    )


def _change(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    return f"{(b - a) / a * 100:+.1f} %" if a else ""


def comparison_text(comparison: Comparison) -> str:
    c = comparison
    lines = [
        RULE,
        "K1N run comparison (production scale: measured seconds / time scale)",
        RULE,
        _run_line("A", c.a),
        _run_line("B", c.b),
        "",
        f"  {'':<22} {'A':>14} {'B':>14} {'delta':>14} {'change':>9}",
        _compare_row("Wall time", c.a_wall, c.b_wall),
        _compare_row("Total task time", c.a_total, c.b_total),
        _compare_row(
            "Critical path",
            c.a.production_seconds(c.a.critical_path.seconds),
            c.b.production_seconds(c.b.critical_path.seconds),
        ),
        _compare_row(
            "Overhead (idle)",
            c.a.production_seconds(c.a.overhead.idle_seconds),
            c.b.production_seconds(c.b.overhead.idle_seconds),
        ),
        "",
        f"Speedup: B took {c.speedup_percent:.1f} % less wall time than A "
        f"({c.speedup_factor:.2f}x)",
        f"Prediction from A's what-if: {seconds_and_minutes(c.predicted_b_wall)} "
        f"(without hand-offs {c.predicted_b_wall_without_overhead:.1f} s); "
        f"B measured {seconds_and_minutes(c.b_wall)}; error {c.prediction_error_percent:+.1f} %",
        "",
        "Per task (spec level; Task 8's group is one task)",
        f"  {'task':<36} {'A s':>10} {'B s':>10} {'delta s':>10} {'change':>9}",
    ]
    for task in c.tasks:
        lines.append(
            f"  {task.node:<36} {_cell(task.a_seconds):>10} {_cell(task.b_seconds):>10} "
            f"{_cell(task.delta_seconds, signed=True):>10} "
            f"{_change(task.a_seconds, task.b_seconds):>9}"
        )
    lines += ["", "Targets", f"  {'':<36} {'A':>20} {'B':>20}"]
    for a_target, b_target in zip(c.a.targets, c.b.targets, strict=True):
        lines.append(
            f"  {a_target.description:<36} {_verdict(a_target):>20} {_verdict(b_target):>20}"
        )
    return "\n".join(lines) + "\n"


def _compare_row(label: str, a: float, b: float) -> str:
    return f"  {label:<22} {a:>12.1f} s {b:>12.1f} s {b - a:>+12.1f} s {_change(a, b):>9}"


def _cell(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _verdict(target: TargetCheck) -> str:
    return f"{target_actual(target)} {target.verdict}"


def comparison_markdown(comparison: Comparison) -> str:
    c = comparison
    lines = [
        "# K1N run comparison",
        "",
        "Production scale: measured seconds / each run's time scale.",
        "",
        f"- **A**: `{c.a.info.source}` (time scale {time_scale_label(c.a.time_scale)})",
        f"- **B**: `{c.b.info.source}` (time scale {time_scale_label(c.b.time_scale)})",
        f"- **Speedup**: {c.speedup_percent:.1f} % less wall time ({c.speedup_factor:.2f}x)",
        f"- **Prediction** from A's what-if: {c.predicted_b_wall:.1f} s; B measured "
        f"{c.b_wall:.1f} s ({c.prediction_error_percent:+.1f} %)",
        "",
        *_table(
            ["", "A s", "B s", "change"],
            [
                ["wall", f"{c.a_wall:.1f}", f"{c.b_wall:.1f}", _change(c.a_wall, c.b_wall)],
                [
                    "total task time",
                    f"{c.a_total:.1f}",
                    f"{c.b_total:.1f}",
                    _change(c.a_total, c.b_total),
                ],
            ],
        ),
        "",
        "## Per task",
        "",
        *_table(
            ["task", "A s", "B s", "delta s", "change"],
            (
                [
                    f"`{t.node}`",
                    _cell(t.a_seconds),
                    _cell(t.b_seconds),
                    _cell(t.delta_seconds, signed=True),
                    _change(t.a_seconds, t.b_seconds),
                ]
                for t in c.tasks
            ),
        ),
        "",
        "## Targets",
        "",
        *_table(
            ["target", "A", "B"],
            (
                [a.description, _verdict(a), _verdict(b)]
                for a, b in zip(c.a.targets, c.b.targets, strict=True)
            ),
        ),
    ]
    return "\n".join(lines) + "\n"


COMPARISON_CSV_COLUMNS = (
    "node",
    "spec_id",
    "name",
    "a_seconds",
    "b_seconds",
    "delta_seconds",
    "change",
)


def comparison_csv(comparison: Comparison) -> str:
    """One row per spec-level task, production seconds."""
    return _csv(COMPARISON_CSV_COLUMNS, [task.as_dict() for task in comparison.tasks])


# -- tables -------------------------------------------------------------------------------------


def _table(header: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
