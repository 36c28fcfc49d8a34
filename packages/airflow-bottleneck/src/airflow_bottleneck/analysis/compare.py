"""Two runs side by side: run A (the reference, e.g. the baseline) against run B.

Every figure is a production figure (each run replayed with its stand-ins' work ÷ its own time
scale, everything else as measured: `analysis.production`), so a demo run compares with a
production profile and runs at different scales compare. The headline is
always a factor >= 1 with the direction in words: "1.18x slower", never "0.85x faster". The
difference is split into work and orchestration along each run's production critical path.

Per-task rows are per numbered task when both runs carry a report extension's what-if (a task
group's members together, like a single task elsewhere), else per Airflow task id.
"""

from __future__ import annotations

from airflow_bottleneck.analysis.model import (
    Attribution,
    AttributionPart,
    ComparedRun,
    Comparison,
    Prediction,
    RunReport,
    TaskDelta,
)

# Wall times within this share of each other are "the same".
SAME_WITHIN = 0.005
# The headline names at most this many parts, each at least this share of the difference.
HEADLINE_PARTS = 3
HEADLINE_MIN_SHARE = 0.05
ORCHESTRATION_PARTS = {
    "startup": "start-ups",
    "handoff": "hand-offs",
    "other": "other (rounding, clock skew)",
}


def compare_runs(a: RunReport, b: RunReport) -> Comparison:
    """Run A (the reference) against run B."""
    a_run, b_run = _compared(a, _name(a, b)), _compared(b, _name(b, a))
    slower, faster = (
        max(a_run.wall_seconds, b_run.wall_seconds),
        min(a_run.wall_seconds, b_run.wall_seconds),
    )
    factor = slower / faster if faster > 0 else 1.0
    if factor - 1 <= SAME_WITHIN:
        verdict = "same"
    else:
        verdict = "faster" if b_run.wall_seconds < a_run.wall_seconds else "slower"
    percent = (
        abs(a_run.wall_seconds - b_run.wall_seconds) / a_run.wall_seconds * 100
        if a_run.wall_seconds
        else 0.0
    )
    prediction = None
    predicted = None if a.what_if is None else a.what_if.production_with_handoffs_seconds
    if predicted is not None and b_run.wall_seconds:
        prediction = Prediction(
            predicted_b_wall_seconds=round(predicted, 3),
            measured_b_wall_seconds=b_run.wall_seconds,
            error_percent=round((predicted - b_run.wall_seconds) / b_run.wall_seconds * 100, 2),
        )
    return Comparison(
        title=f"{a_run.label} (A) against {b_run.label} (B)",
        a=a_run,
        b=b_run,
        verdict=verdict,
        factor=round(factor, 4),
        percent=round(percent, 2),
        work_delta_seconds=round(b_run.work_seconds - a_run.work_seconds, 3),
        orchestration_delta_seconds=round(
            b_run.orchestration_seconds - a_run.orchestration_seconds, 3
        ),
        prediction=prediction,
        attribution=attribute(a, b),
        tasks=_task_deltas(a, b),
        targets_a=a.targets,
        targets_b=b.targets,
    )


def _name(report: RunReport, other: RunReport) -> str:
    """The DAG and run id, or, when both runs are of one DAG, the DAG and the run's start."""
    who = report.label or report.dag_id
    if report.dag_id != other.dag_id:
        return f"{who} {report.run_id}"
    when = report.start[:19].replace("T", " ")
    if report.run_id == other.run_id:
        return f"{who} {report.run_id}"
    return f"{who} {report.run_id} ({when} UTC)"


def _compared(report: RunReport, label: str) -> ComparedRun:
    production = report.production
    path = production.critical_path
    work = production.work_seconds
    return ComparedRun(
        label=label,
        dag_id=report.dag_id,
        run_id=report.run_id,
        state=report.state,
        partial=report.partial,
        time_scale=report.time_scale,
        wall_seconds=round(production.wall_seconds, 3),
        critical_path_seconds=round(sum(s.startup_seconds + s.work_seconds for s in path), 3),
        work_seconds=round(work, 3),
        orchestration_seconds=round(production.wall_seconds - work, 3),
    )


def by_spec_task(a: RunReport, b: RunReport) -> bool:
    """Both runs carry an extension's what-if: compare per numbered task, not per task id."""
    return a.what_if is not None and b.what_if is not None


def task_spans(
    report: RunReport, by_spec: bool, production: bool = False
) -> dict[str, tuple[str, float, float]]:
    """key -> (label, start, end) in seconds from the run's start (`production`: in the run's
    production replay, else measured): each spec task's span (first start -> last end of its
    Airflow tasks), or each Airflow task's own."""
    spans: dict[str, tuple[str, float, float]] = {}
    for task in report.tasks:
        first, last = (
            (task.production_start_offset, task.production_end_offset)
            if production
            else (task.start_offset, task.end_offset)
        )
        if first is None or last is None:
            continue
        if not by_spec:
            spans[task.task] = (task.label, first, last)
            continue
        if task.spec_id is None:
            continue
        key, label = f"spec {task.spec_id}", task.label.split(" · ")[0]
        start, end = first, last
        if key in spans:
            _, known_start, known_end = spans[key]
            start, end = min(start, known_start), max(end, known_end)
        spans[key] = (label, start, end)
    if by_spec:
        spans = dict(sorted(spans.items(), key=lambda item: int(item[0].split()[1])))
    return spans


def _seconds(report: RunReport, by_spec: bool) -> dict[str, tuple[str, float]]:
    """key -> (label, production seconds): a spec task's span, or a task's own seconds."""
    if by_spec:
        return {
            key: (label, end - start)
            for key, (label, start, end) in task_spans(report, by_spec, production=True).items()
        }
    return {
        task.task: (task.label, task.production_seconds)
        for task in report.tasks
        if task.status != "not run" and task.production_seconds is not None
    }


def _task_deltas(a: RunReport, b: RunReport) -> list[TaskDelta]:
    by_spec = by_spec_task(a, b)
    a_spans, b_spans = _seconds(a, by_spec), _seconds(b, by_spec)
    keys = list(a_spans) + [key for key in b_spans if key not in a_spans]
    if by_spec:
        keys.sort(key=lambda key: int(key.split()[1]))
    deltas = []
    for key in keys:
        a_seconds = a_spans.get(key, (None, None))[1]
        b_seconds = b_spans.get(key, (None, None))[1]
        label = (a_spans.get(key) or b_spans[key])[0]
        delta = None if a_seconds is None or b_seconds is None else b_seconds - a_seconds
        deltas.append(
            TaskDelta(
                key=key,
                label=label,
                a_seconds=None if a_seconds is None else round(a_seconds, 3),
                b_seconds=None if b_seconds is None else round(b_seconds, 3),
                delta_seconds=None if delta is None else round(delta, 3),
                change=round(delta / a_seconds, 6) if delta is not None and a_seconds else None,
            )
        )
    return deltas


def attribute(a: RunReport, b: RunReport) -> Attribution:
    """B's production wall minus A's, split along each run's production critical path: each
    task's work on the path (a task on one path only counts in full), start-ups, hand-offs
    (each step's measured delay after its upstreams, the head and the tail), and what rounding
    leaves. The parts add up to the difference because each run's parts add up to its wall."""
    by_spec = by_spec_task(a, b)
    a_parts, a_labels = _path_parts(a, by_spec)
    b_parts, b_labels = _path_parts(b, by_spec)
    labels = {**b_labels, **a_labels}
    on_a, on_b = set(a_labels), set(b_labels)
    parts = []
    for key in dict.fromkeys([*a_parts, *b_parts]):
        a_seconds, b_seconds = a_parts.get(key, 0.0), b_parts.get(key, 0.0)
        kind = "orchestration" if key in ORCHESTRATION_PARTS else "task"
        if kind == "task":
            change = {
                (True, True): "stayed",
                (False, True): "joined",
                (True, False): "left",
            }[(key in on_a, key in on_b)]
        else:
            change = "none"
        parts.append(
            AttributionPart(
                key=key,
                label=ORCHESTRATION_PARTS.get(key) or labels[key],
                kind=kind,  # type: ignore[arg-type]
                delta_seconds=round(b_seconds - a_seconds, 3),
                a_seconds=round(a_seconds, 3),
                b_seconds=round(b_seconds, 3),
                path_change=change,  # type: ignore[arg-type]
            )
        )
    parts.sort(key=lambda part: (-abs(part.delta_seconds), part.key))
    delta = round(b.production.wall_seconds - a.production.wall_seconds, 3)
    return Attribution(delta_seconds=round(delta, 3), headline=_headline(delta, parts), parts=parts)


def _path_parts(report: RunReport, by_spec: bool) -> tuple[dict[str, float], dict[str, str]]:
    """Production seconds per part of one run's production wall (task keys: work on its
    production critical path), and the labels of the task keys on the path."""
    numbers = {task.task: task.spec_id for task in report.tasks}
    names = {task.task: task.label for task in report.tasks}
    parts = dict.fromkeys(ORCHESTRATION_PARTS, 0.0)
    labels: dict[str, str] = {}
    production = report.production
    for step in production.critical_path:
        number = numbers.get(step.task)
        if by_spec and number is not None:
            key, label = f"spec {number}", names.get(step.task, step.label).split(" · ")[0]
        else:
            key, label = step.task, step.label
        labels[key] = label
        parts[key] = parts.get(key, 0.0) + step.work_seconds
        parts["startup"] += step.startup_seconds
        parts["handoff"] += step.handoff_seconds
    parts["handoff"] += production.tail_seconds
    parts["other"] = production.wall_seconds - sum(parts.values())
    return parts, labels


def _headline(delta: float, parts: list[AttributionPart]) -> str:
    """ "+14.0 min: Task 13 +11.2 min (now on the critical path), hand-offs +2.1 min"."""
    unit = 60.0 if abs(delta) >= 120 else 1.0
    named = [
        part
        for part in parts
        if abs(part.delta_seconds) >= max(HEADLINE_MIN_SHARE * abs(delta), 0.05)
        and part.key != "other"
    ][:HEADLINE_PARTS]
    if abs(delta) < 0.05 or not named:
        return f"{_signed(delta, unit)}: no part of the critical path changed noticeably"
    words = []
    for part in named:
        text = f"{part.label} {_signed(part.delta_seconds, unit)}"
        if part.path_change == "joined":
            text += " (now on the critical path)"
        elif part.path_change == "left":
            text += " (no longer on the critical path)"
        words.append(text)
    return f"{_signed(delta, unit)}: " + ", ".join(words)


def _signed(seconds: float, unit: float) -> str:
    return f"{seconds / unit:+.1f} {'min' if unit == 60.0 else 's'}"
