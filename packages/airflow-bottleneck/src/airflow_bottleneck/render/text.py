"""A report or a comparison as fixed-width text, for a terminal."""

from __future__ import annotations

from airflow_bottleneck.analysis.formatting import (
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
from airflow_bottleneck.render.words import (
    a_min,
    headline,
    path_sentence,
    split_sentence,
    what_if_lines,
)

DEFAULT_TOP = 10
RULE = "=" * 78


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
        lines += ["", *what_if_lines(report, top)]
    if report.targets:
        lines += ["", *_targets_text(report.targets, report.time_scale)]
    if report.notes:
        lines += ["", "Notes", *(f"  - {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _targets_text(targets: list[TargetCheck], scale: float) -> list[str]:
    lines = [f"Targets (production scale: stand-ins' work / {time_scale_label(scale)})"]
    lines += [
        f"  {t.description:<36} {target_actual(t.actual, t.unit):>12}  "
        f"{verdict_word(t.met).upper()}"
        for t in targets
    ]
    return lines


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
    lines += ["", "(production minutes: each run replayed with its stand-ins scaled back)"]
    for tag, run in (("A", a), ("B", b)):
        if run.partial:
            lines.append(f"{tag} had not finished: its figures may still change.")
    return "\n".join(lines) + "\n"


def _min_cell(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.2f}"


def _change(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f} %"
