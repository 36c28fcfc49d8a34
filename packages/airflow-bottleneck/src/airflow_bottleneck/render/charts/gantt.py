"""The Gantt chart of one run: a row per task on the run's own time axis (t = 0 at its start).

Each row shows the task's queue wait, its start-up (started -> its own code started) and its
work; earlier failed tries in amber; a mapped task's indexes as thin bars inside its row (up to
`MAX_INDEX_MARKS`). The critical path's hand-offs are dashed links from one step's end to the
next one's start."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from airflow_bottleneck.analysis.formatting import seconds
from airflow_bottleneck.analysis.model import RunReport, TaskTiming
from airflow_bottleneck.render.charts.axis import (
    CRITICAL,
    LABEL_WIDTH,
    MUTED,
    NEAR,
    NORMAL,
    QUEUED,
    RETRY,
    STARTUP,
    WIDTH,
    Axis,
    short,
)

ROW = 20
TOP = 30
BAR = 12
MAX_INDEX_MARKS = 64


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    y: float
    height: float
    color: str
    kind: str  # queued / startup / work / retry / index
    title: str


@dataclass(frozen=True)
class GanttRow:
    task: str
    label: str
    y: float
    critical: bool
    status: str
    segments: list[Segment]


@dataclass(frozen=True)
class Link:
    x1: float
    y1: float
    x2: float
    y2: float
    title: str


@dataclass(frozen=True)
class GanttView:
    width: int
    height: int
    ticks: list[tuple[float, str]]
    rows: list[GanttRow]
    links: list[Link]
    end_x: float
    end_label: str
    axis_bottom: float


def gantt_view(report: RunReport) -> GanttView:
    axis = Axis.covering(report.wall_seconds, LABEL_WIDTH, WIDTH - LABEL_WIDTH - 40, " s")
    ordered = sorted(
        report.tasks,
        key=lambda t: (t.start_offset is None, t.start_offset or 0.0, t.task),
    )
    row_y = {task.task: TOP + index * ROW for index, task in enumerate(ordered)}
    indexes = {m.task: list(m.indexes.rows()) if m.indexes else [] for m in report.mapped}
    retries: dict[str, list] = {}
    for row in report.instances.rows() if report.instances else ():
        if not row.final and row.start_offset is not None and row.end_offset is not None:
            retries.setdefault(row.task, []).append(row)
    rows = [
        GanttRow(
            task=task.task,
            label=short(task.label),
            y=row_y[task.task],
            critical=task.critical,
            status=task.status,
            segments=_segments(axis, task, row_y[task.task], indexes, retries),
        )
        for task in ordered
    ]
    steps = report.critical_path.steps
    links = [
        Link(
            x1=axis.x(before.end_offset),
            y1=row_y[before.task] + BAR / 2,
            x2=axis.x(after.start_offset),
            y2=row_y[after.task] + BAR / 2,
            title=(
                f"{before.label} -> {after.label}: waiting {seconds(after.waiting_seconds)}, "
                f"hand-off {seconds(after.handoff_seconds)}"
            ),
        )
        for before, after in itertools.pairwise(steps)
        if before.task in row_y and after.task in row_y
    ]
    bottom = TOP + len(rows) * ROW
    end_label = (
        f"observed {seconds(report.wall_seconds)} (running)"
        if report.partial
        else f"run end {seconds(report.wall_seconds)}"
    )
    return GanttView(
        width=WIDTH,
        height=int(bottom + 24),
        ticks=axis.ticks(),
        rows=rows,
        links=links,
        end_x=axis.x(report.wall_seconds),
        end_label=end_label,
        axis_bottom=bottom,
    )


def _segments(
    axis: Axis,
    task: TaskTiming,
    y: float,
    indexes: dict[str, list],
    retries: dict[str, list],
) -> list[Segment]:
    if task.start_offset is None:
        return []
    start = task.start_offset
    end = task.end_offset if task.end_offset is not None else start
    color = CRITICAL if task.critical else NEAR if task.near_critical else NORMAL
    if task.status in ("skipped", "not run"):
        color = MUTED
    segments = [
        Segment(
            axis.x(r.start_offset),
            _width(axis, r.start_offset, r.end_offset),
            y,
            BAR,
            RETRY,
            "retry",
            f"{task.label} try {r.try_number}: {r.state}, {seconds(r.seconds)}",
        )
        for r in retries.get(task.task, ())
    ]
    if task.queue_wait_seconds > 0 and not task.mapped:
        queued = max(0.0, start - task.queue_wait_seconds)
        segments.append(
            Segment(
                axis.x(queued),
                _width(axis, queued, start),
                y + BAR / 3,
                BAR / 3,
                QUEUED,
                "queued",
                f"{task.label}: queued {seconds(task.queue_wait_seconds)}",
            )
        )
    startup = task.startup_seconds or 0.0
    if startup > 0 and not task.mapped:
        segments.append(
            Segment(
                axis.x(start),
                _width(axis, start, start + startup),
                y,
                BAR,
                STARTUP,
                "startup",
                f"{task.label}: start-up {seconds(startup)} (process start -> its own code)",
            )
        )
    else:
        startup = 0.0
    title = f"{task.label}: {seconds(task.seconds)}"
    if task.reason:
        title += f"; {task.reason}"
    segments.append(
        Segment(
            axis.x(start + startup),
            _width(axis, start + startup, end),
            y,
            BAR,
            color,
            "work",
            title,
        )
    )
    marks = indexes.get(task.task, [])
    if 1 < len(marks) <= MAX_INDEX_MARKS:
        height = max(1.0, BAR / len(marks))
        for position, index in enumerate(marks):
            if index.start_offset is None or index.end_offset is None:
                continue
            segments.append(
                Segment(
                    axis.x(index.start_offset),
                    _width(axis, index.start_offset, index.end_offset),
                    y + position * height,
                    height,
                    "#1c3faa",
                    "index",
                    f"{task.label}[{index.map_index}]: {seconds(index.seconds)}",
                )
            )
    return segments


def _width(axis: Axis, start: float, end: float) -> float:
    return max(axis.x(end) - axis.x(start), 1.0)
