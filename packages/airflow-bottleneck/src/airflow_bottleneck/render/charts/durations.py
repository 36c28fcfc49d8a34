"""The durations chart: a bar per task, longest first, with its share, its status and a
sparkline of its seconds over the DAG's last runs."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_bottleneck.analysis.formatting import percent, seconds
from airflow_bottleneck.analysis.model import RunReport
from airflow_bottleneck.render.charts.axis import (
    CRITICAL,
    LABEL_WIDTH,
    MUTED,
    NEAR,
    NORMAL,
    WIDTH,
    Axis,
    short,
    sparkline,
)

ROW = 22
TOP = 28
SPARK_WIDTH = 90.0
RIGHT = 250.0


@dataclass(frozen=True)
class DurationBar:
    task: str
    label: str
    y: float
    x: float
    width: float
    color: str
    bold: bool
    critical: bool
    near_critical: bool
    value: str
    title: str
    spark: str  # polyline points, "" when the DAG has fewer than two runs with this task


@dataclass(frozen=True)
class DurationsView:
    width: int
    height: int
    axis: Axis
    ticks: list[tuple[float, str]]
    bars: list[DurationBar]
    spark_x: float
    has_history: bool
    history_runs: int


def durations_view(report: RunReport) -> DurationsView:
    """Bars on an axis covering the longest task; critical red and bold, near-critical amber."""
    longest = max((task.seconds for task in report.tasks), default=0.0)
    axis = Axis.covering(longest, LABEL_WIDTH, WIDTH - LABEL_WIDTH - RIGHT, " s")
    history = report.history
    bars = []
    for index, task in enumerate(report.tasks):
        color = CRITICAL if task.critical else NEAR if task.near_critical else NORMAL
        if task.status in ("skipped", "not run"):
            color = MUTED
        value = f"{seconds(task.seconds)} · {percent(task.share)}"
        if task.status != "ran":
            value += f" · {task.status}"
        series = history.tasks.get(task.task, []) if history is not None else []
        bars.append(
            DurationBar(
                task=task.task,
                label=short(task.label),
                y=TOP + index * ROW,
                x=axis.x0,
                width=max(axis.x(task.seconds) - axis.x0, 1.0),
                color=color,
                bold=task.critical,
                critical=task.critical,
                near_critical=task.near_critical,
                value=value,
                title=_title(report, task),
                spark=sparkline(series, SPARK_WIDTH),
            )
        )
    return DurationsView(
        width=WIDTH,
        height=int(TOP + len(bars) * ROW + 10),
        axis=axis,
        ticks=axis.ticks(),
        bars=bars,
        spark_x=WIDTH - SPARK_WIDTH - 10,
        has_history=history is not None,
        history_runs=len(history.runs) if history is not None else 0,
    )


def _title(report: RunReport, task) -> str:
    parts = [
        f"{task.label}: {seconds(task.seconds)}, {percent(task.share)} of the task time",
        f"start-up {seconds(task.startup_seconds)}, work {seconds(task.work_seconds)}",
        f"queue wait {seconds(task.queue_wait_seconds)}",
    ]
    if task.critical:
        parts.append("on the critical path")
    elif task.slack_seconds is not None:
        near = " (near-critical)" if task.near_critical else ""
        parts.append(f"slack {seconds(task.slack_seconds)}{near}")
    if task.instances > 1:
        parts.append(f"{task.instances} map indexes")
    if task.tries > 1:
        parts.append(f"{task.tries} tries")
    if task.reason:
        parts.append(task.reason)
    return "; ".join(parts)
