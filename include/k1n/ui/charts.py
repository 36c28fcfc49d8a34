"""Inline SVG charts of a run report and of a comparison: no JavaScript, no external assets.

- `durations_chart`: a horizontal bar per Airflow task id, longest first, with its share of the
  total task time; tasks on the critical path in red, tasks over 10 % flagged.
- `gantt_chart`: one row per task id on the run's time axis (t = 0 at the run start): queue
  waits, every try, a mapped task's indexes stacked in its row; the critical path's bars in red
  and its waits drawn as dashed links from one critical task's end to the next one's start.
- `comparison_chart`: two Gantt charts (spec-level rows, Task 8's group as one row) on ONE
  shared axis in production minutes, reference run above, both starting at t = 0, with each
  run's end and the time saved marked.

Every mark carries a `<title>` (the browser's tooltip) and `data-*` attributes that tests and
scripts can select on (`data-chart`, `data-task`, `data-critical`, `data-run`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from include.k1n.analysis import Comparison, RunReport
from include.k1n.analysis.render import time_scale_label

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
CRITICAL = "#e03131"
NORMAL = "#4c6ef5"
QUEUED = "#ced4da"
RETRY = "#f59f00"
SAVED = "#2f9e44"
TEXT = "#212529"
MUTED = "#868e96"
GRID = "#e9ecef"
WIDTH = 1120
SHARE_FLAG = 0.10
TIMES = "\u00d7"  # multiplication sign
MINUS = "\u2212"


# -- shared helpers -------------------------------------------------------------------------------


def nice_ticks(upper: float, count: int = 8) -> list[float]:
    """Round tick values 0, step, 2 step, ... covering [0, upper] with about `count` steps."""
    if not math.isfinite(upper) or upper <= 0:
        return [0.0]
    raw = upper / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(upper / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def _num(value: float) -> str:
    """Coordinates with at most one decimal: smaller SVG, same picture."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{escape(val)}"' for key, val in attrs.items())
    return f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(content)}</text>'


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _minutes(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1f} min"


def node_of(task_id: str) -> str:
    """The spec-level node a task id belongs to: a group member's group, else the id itself."""
    return task_id.split(".", 1)[0]


def task_label(task_id: str, spec_id: int | None, name: str | None) -> str:
    """`task_08_code_generation.generate_code` -> `8 Code Generation · generate_code`."""
    _, _, stage = task_id.partition(".")
    base = f"{spec_id} {name}" if spec_id is not None and name else task_id
    return f"{base} · {stage}" if stage else base


def _svg_open(chart: str, width: float, height: float, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{chart}" '
        f'id="chart-{chart}" viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" role="img" aria-label="{escape(label)}" '
        f'font-family="{escape(FONT)}" font-size="12" fill="{TEXT}">'
        f"<title>{escape(label)}</title>"
    )


def _legend(x: float, y: float, items: Iterable[tuple[str, str, str]]) -> list[str]:
    """Swatches with labels in one line; items are (color, label, extra rect attributes)."""
    parts = []
    for color, label, extra in items:
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="12" height="10" rx="2" '
            f'fill="{color}"{extra}/>'
        )
        parts.append(_text(x + 17, y, label, fill=MUTED))
        x += 30 + 6.6 * len(label)
    return parts


def _axis(
    x0: float, width: float, upper: float, top: float, bottom: float, unit: str, label_y: float
) -> list[str]:
    """Vertical grid lines with tick labels above `top`."""
    parts = []
    for tick in nice_ticks(upper):
        x = x0 + tick / upper * width if upper > 0 else x0
        parts.append(
            f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(bottom)}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_text(x, label_y, f"{tick:g}{unit}", text_anchor="middle", fill=MUTED))
    return parts


# -- durations bar chart --------------------------------------------------------------------------


def durations_chart(report: RunReport) -> str:
    """Every task id's seconds (final tries, mapped indexes summed), longest first."""
    critical = set(report.critical_path.nodes)
    tasks = report.tasks
    label_w, value_w, row_h, bar_h = 300.0, 150.0, 22.0, 14.0
    plot_w = WIDTH - label_w - value_w - 20
    top = 58.0
    height = top + row_h * len(tasks) + 16
    upper = max((t.seconds for t in tasks), default=0.0) or 1.0
    ticks_upper = nice_ticks(upper)[-1]
    parts = [
        _svg_open(
            "durations",
            WIDTH,
            height,
            f"Task durations of {report.info.label or report.info.dag_id} {report.info.run_id}",
        ),
        *_legend(
            label_w,
            16,
            [
                (CRITICAL, "on the critical path", ""),
                (NORMAL, "other task", ""),
            ],
        ),
        _text(
            WIDTH - 10,
            16,
            f"bold share: over {SHARE_FLAG:.0%} of the total task time",
            text_anchor="end",
            fill=MUTED,
        ),
        *_axis(label_w, plot_w, ticks_upper, top - 8, height - 12, " s", top - 14),
    ]
    for index, task in enumerate(tasks):
        y = top + index * row_h
        on_path = node_of(task.task) in critical
        color = CRITICAL if on_path else NORMAL
        width = task.seconds / ticks_upper * plot_w if ticks_upper else 0.0
        label = task_label(task.task, task.spec_id, task.name)
        if task.mapped:
            label += f" {TIMES}{task.instances}"
        flagged = task.share > SHARE_FLAG
        tip = (
            f"{task.task}: {_seconds(task.seconds)}, {task.share:.1%} of the task time"
            + (f", {task.instances} mapped instances" if task.mapped else "")
            + (", on the critical path" if on_path else "")
        )
        parts.append(
            f'<g class="bar-row" data-task="{escape(task.task)}" '
            f'data-critical="{str(on_path).lower()}"><title>{escape(tip)}</title>'
        )
        parts.append(
            _text(
                label_w - 8,
                y + bar_h - 3,
                _shorten(label, 44),
                text_anchor="end",
                font_weight="600" if on_path else "400",
            )
        )
        parts.append(
            f'<rect class="bar{" critical" if on_path else ""}" x="{_num(label_w)}" '
            f'y="{_num(y)}" width="{_num(max(width, 1.0))}" height="{_num(bar_h)}" rx="2" '
            f'fill="{color}"/>'
        )
        parts.append(
            _text(
                label_w + width + 6,
                y + bar_h - 3,
                f"{_seconds(task.seconds)} · {task.share:.1%}",
                font_weight="700" if flagged else "400",
                fill=TEXT if flagged else MUTED,
            )
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- one run's Gantt chart ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    task: str
    label: str
    critical: bool


def _gantt_rows(report: RunReport, critical: set[str]) -> list[_Row]:
    """Task ids in spec order (group stages by start), tasks outside the spec last."""
    ordered = sorted(
        report.tasks,
        key=lambda t: (
            t.spec_id if t.spec_id is not None else math.inf,
            t.start_offset if t.start_offset is not None else math.inf,
            t.task,
        ),
    )
    rows = []
    for task in ordered:
        label = task_label(task.task, task.spec_id, task.name)
        if task.mapped:
            label += f" {TIMES}{task.instances}"
        rows.append(_Row(task.task, label, node_of(task.task) in critical))
    return rows


def _instance_offsets(report: RunReport) -> pd.DataFrame:
    """Every try with offsets from the run start (seconds)."""
    table = report.instances
    origin = report.start.timestamp()
    return pd.DataFrame(
        {
            "task": table["task_id"].astype("object").to_numpy(),
            "map_index": table["map_index"].to_numpy(),
            "try_number": table["try_number"].to_numpy(),
            "final": table["final"].to_numpy(),
            "state": table["state"].astype("object").to_numpy(),
            "queued": (table["t_queued"] - origin).to_numpy(),
            "start": (table["t_start"] - origin).to_numpy(),
            "end": (table["t_end"] - origin).to_numpy(),
        }
    )


def gantt_chart(report: RunReport) -> str:
    """The run on its own time axis, critical path highlighted."""
    critical = set(report.critical_path.nodes)
    rows = _gantt_rows(report, critical)
    row_of = {row.task: index for index, row in enumerate(rows)}
    label_w, row_h, bar_h = 300.0, 20.0, 12.0
    plot_w = WIDTH - label_w - 30
    top = 58.0
    height = top + row_h * len(rows) + 30
    upper = nice_ticks(report.wall_seconds)[-1] or 1.0

    def x(offset: float) -> float:
        return label_w + max(0.0, offset) / upper * plot_w

    def row_mid(task: str) -> float:
        return top + row_of[task] * row_h + bar_h / 2

    parts = [
        _svg_open(
            "gantt",
            WIDTH,
            height,
            f"Gantt chart of {report.info.label or report.info.dag_id} {report.info.run_id}, "
            f"critical path highlighted",
        ),
        *_legend(
            label_w,
            16,
            [
                (CRITICAL, "critical path", ""),
                (NORMAL, "other task", ""),
                (QUEUED, "queued", ""),
                (RETRY, "earlier try", ""),
                (
                    "none",
                    "wait on the critical path",
                    f' stroke="{CRITICAL}" stroke-dasharray="3 2"',
                ),
            ],
        ),
        *_axis(label_w, plot_w, upper, top - 8, height - 24, " s", top - 14),
        _text(
            label_w + plot_w,
            height - 6,
            "seconds since the run started (measured)",
            text_anchor="end",
            fill=MUTED,
        ),
    ]
    # Row labels and a faint band on critical rows.
    for index, row in enumerate(rows):
        y = top + index * row_h
        if row.critical:
            parts.append(
                f'<rect x="0" y="{_num(y - 4)}" width="{_num(WIDTH)}" height="{_num(row_h)}" '
                f'fill="{CRITICAL}" fill-opacity="0.05"/>'
            )
        parts.append(
            _text(
                label_w - 8,
                y + bar_h - 2,
                _shorten(row.label, 44),
                text_anchor="end",
                font_weight="600" if row.critical else "400",
                fill=CRITICAL if row.critical else TEXT,
            )
        )
    # Bars: queue waits first (underneath), then tries.
    instances = _instance_offsets(report)
    lanes = instances[instances["final"]].groupby("task")["map_index"].nunique()
    for item in instances.itertuples(index=False):
        if item.task not in row_of or np.isnan(item.start):
            continue
        row = rows[row_of[item.task]]
        lane_count = max(1, int(lanes.get(item.task, 1)))
        lane = max(0, int(item.map_index)) if lane_count > 1 else 0
        lane_h = bar_h / lane_count
        y = top + row_of[item.task] * row_h + lane * lane_h
        end = item.end if not np.isnan(item.end) else report.wall_seconds
        if item.final and not np.isnan(item.queued) and item.queued < item.start:
            parts.append(
                f'<rect class="queued" x="{_num(x(item.queued))}" y="{_num(y)}" '
                f'width="{_num(max(x(item.start) - x(item.queued), 0.5))}" '
                f'height="{_num(max(lane_h - 1, 1))}" fill="{QUEUED}"/>'
            )
        color = (CRITICAL if row.critical else NORMAL) if item.final else RETRY
        css = "bar" + (" critical" if row.critical and item.final else "")
        css += "" if item.final else " retry"
        index_note = f" [{int(item.map_index)}]" if item.map_index >= 0 else ""
        tip = (
            f"{item.task}{index_note}, try {int(item.try_number)} ({item.state or 'no state'}): "
            f"{_seconds(item.start)} → {_seconds(end)} ({_seconds(end - item.start)})"
            + ("" if np.isnan(item.queued) else f", queued at {_seconds(item.queued)}")
        )
        parts.append(
            f'<rect class="{css}" data-task="{escape(item.task)}" '
            f'data-critical="{str(row.critical).lower()}" x="{_num(x(item.start))}" '
            f'y="{_num(y)}" width="{_num(max(x(end) - x(item.start), 1.0))}" '
            f'height="{_num(max(lane_h - (1 if lane_count > 1 else 0), 1))}" rx="1.5" '
            f'fill="{color}"><title>{escape(tip)}</title></rect>'
        )
    parts += _critical_links(report, instances, row_of, x, row_mid)
    wall_x = x(report.wall_seconds)
    parts.append(
        f'<line class="run-end" x1="{_num(wall_x)}" y1="{_num(top - 8)}" x2="{_num(wall_x)}" '
        f'y2="{_num(height - 24)}" stroke="{TEXT}" stroke-width="1.5"/>'
    )
    parts.append(
        _text(
            min(wall_x + 4, WIDTH - 4),
            top - 26,
            f"run end {_seconds(report.wall_seconds)}",
            text_anchor="end" if wall_x + 120 > WIDTH else "start",
            font_weight="600",
        )
    )
    parts.append("</svg>")
    return "".join(parts)


def _critical_links(
    report: RunReport,
    instances: pd.DataFrame,
    row_of: dict[str, int],
    x: Callable[[float], float],
    row_mid: Callable[[str], float],
) -> list[str]:
    """Dashed elbows from each critical node's end to the next one's start (its wait)."""
    measured = {node.node: node for node in report.nodes if node.measured}
    path = [name for name in report.critical_path.nodes if name in measured]
    ran = instances[~np.isnan(instances["start"].to_numpy())].copy()
    ran["node"] = ran["task"].map(node_of)

    def first_row(node: str) -> str | None:
        rows = ran[(ran["node"] == node) & ran["task"].isin(row_of)]
        return None if rows.empty else str(rows.loc[rows["start"].idxmin(), "task"])

    def last_row(node: str) -> str | None:
        rows = ran[(ran["node"] == node) & ran["task"].isin(row_of)]
        return None if rows.empty else str(rows.loc[rows["end"].idxmax(), "task"])

    parts = []
    stroke = f'stroke="{CRITICAL}" stroke-width="1.5" stroke-dasharray="3 2" fill="none"'
    for before, after in itertools.pairwise(path):
        source, target = last_row(before), first_row(after)
        if source is None or target is None:
            continue
        x1, x2 = x(measured[before].end_offset or 0.0), x(measured[after].start_offset or 0.0)
        y1, y2 = row_mid(source), row_mid(target)
        waited = (measured[after].start_offset or 0.0) - (measured[before].end_offset or 0.0)
        tip = f"critical path: {after} waited {_seconds(waited)} after {before} ended"
        parts.append(
            f'<path class="cp-link" data-from="{escape(before)}" data-to="{escape(after)}" '
            f'd="M{_num(x1)},{_num(y1)} V{_num(y2)} H{_num(max(x2, x1))}" {stroke}>'
            f"<title>{escape(tip)}</title></path>"
        )
    if path:
        last = measured[path[-1]]
        source = last_row(path[-1])
        if source is not None and last.end_offset is not None:
            y = row_mid(source)
            parts.append(
                f'<path class="cp-link cp-tail" d="M{_num(x(last.end_offset))},{_num(y)} '
                f'H{_num(x(report.wall_seconds))}" {stroke}/>'
            )
    return parts


# -- two runs on one axis -------------------------------------------------------------------------


def comparison_chart(comparison: Comparison) -> str:
    """Reference run A above run B, spec-level rows, one axis in production minutes."""
    a, b = comparison.a, comparison.b
    rows = _comparison_rows(a, b)
    a_wall, b_wall = comparison.a_wall / 60, comparison.b_wall / 60
    label_w, row_h, bar_h = 300.0, 15.0, 10.0
    plot_w = WIDTH - label_w - 30
    upper = nice_ticks(max(a_wall, b_wall))[-1] or 1.0
    panel_h = row_h * len(rows)
    a_top = 86.0
    b_top = a_top + panel_h + 56
    height = b_top + panel_h + 40

    def x(minutes: float) -> float:
        return label_w + max(0.0, minutes) / upper * plot_w

    saved = a_wall - b_wall
    parts = [
        _svg_open(
            "compare",
            WIDTH,
            height,
            f"{a.info.label} {a.info.run_id} (top) and {b.info.label} {b.info.run_id} (bottom) "
            f"on one time axis: {comparison.speedup_factor:.2f}x",
        ),
        *_legend(
            label_w,
            16,
            [
                (CRITICAL, "critical path", ""),
                (NORMAL, "other task", ""),
                (SAVED, "time saved by the lower run", ' fill-opacity="0.25"'),
            ],
        ),
        *_axis(label_w, plot_w, upper, a_top - 30, height - 24, " min", a_top - 48),
        _text(
            label_w + plot_w,
            height - 6,
            "production minutes since each run started (measured seconds ÷ the run's time scale)",
            text_anchor="end",
            fill=MUTED,
        ),
    ]
    for tag, report, wall, other_wall, top in (
        ("a", a, a_wall, b_wall, a_top),
        ("b", b, b_wall, a_wall, b_top),
    ):
        title = (
            f"{tag.upper()} · {report.info.label or report.info.dag_id} · {report.info.run_id} · "
            f"{_minutes(wall)} (time scale {time_scale_label(report.time_scale)})"
        )
        parts.append(
            f'<g class="run-panel" data-run="{tag}" data-dag="{escape(report.info.dag_id)}">'
        )
        parts.append(_text(label_w, top - 14, title, font_weight="700", font_size="13"))
        if tag == "b" and saved > 0:
            parts.append(
                f'<rect class="saved" x="{_num(x(wall))}" y="{_num(top - 4)}" '
                f'width="{_num(x(other_wall) - x(wall))}" height="{_num(panel_h + 4)}" '
                f'fill="{SAVED}" fill-opacity="0.12"><title>'
                f"{escape(f'{_minutes(saved)} less than A')}</title></rect>"
            )
            parts.append(
                _text(
                    (x(wall) + x(other_wall)) / 2,
                    top + panel_h / 2,
                    f"{MINUS}{_minutes(saved)} ({comparison.speedup_factor:.2f}{TIMES} faster)",
                    text_anchor="middle",
                    font_weight="700",
                    font_size="14",
                    fill=SAVED,
                )
            )
        nodes = {node.node: node for node in report.nodes}
        scale = report.time_scale
        for index, (node_name, label) in enumerate(rows):
            y = top + index * row_h
            node = nodes.get(node_name)
            on_path = bool(node and node.critical and node.measured)
            parts.append(
                _text(
                    label_w - 8,
                    y + bar_h - 1,
                    _shorten(label, 44),
                    text_anchor="end",
                    font_size="11",
                    fill=CRITICAL if on_path else TEXT,
                )
            )
            if node is None or not node.measured or node.start_offset is None:
                continue
            start = node.start_offset / scale / 60
            end = (node.end_offset or node.start_offset) / scale / 60
            tip = (
                f"{tag.upper()} {node_name}: {_minutes(start)} → {_minutes(end)} "
                f"({_minutes(end - start)} production, {_seconds(node.duration)} measured)"
                + (", critical" if on_path else "")
            )
            css = "bar critical" if on_path else "bar"
            parts.append(
                f'<rect class="{css}" data-task="{escape(node_name)}" '
                f'data-critical="{str(on_path).lower()}" x="{_num(x(start))}" y="{_num(y)}" '
                f'width="{_num(max(x(end) - x(start), 1.0))}" height="{_num(bar_h)}" rx="1.5" '
                f'fill="{CRITICAL if on_path else NORMAL}"><title>{escape(tip)}</title></rect>'
            )
        end_x = x(wall)
        parts.append(
            f'<line class="run-end" x1="{_num(end_x)}" y1="{_num(top - 4)}" x2="{_num(end_x)}" '
            f'y2="{_num(top + panel_h)}" stroke="{TEXT}" stroke-width="1.5"/>'
        )
        parts.append(
            _text(
                min(end_x + 4, WIDTH - 4),
                top + panel_h + 13,
                f"end {_minutes(wall)}",
                text_anchor="end" if end_x + 90 > WIDTH else "start",
                font_weight="600",
            )
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _comparison_rows(a: RunReport, b: RunReport) -> list[tuple[str, str]]:
    """Spec-level nodes of both runs, in A's order then B's extra ones, with labels."""
    rows: dict[str, str] = {}
    for report in (a, b):
        for node in report.nodes:
            if node.node not in rows:
                label = f"{node.spec_id} {node.name}" if node.spec_id is not None else node.node
                rows[node.node] = label
    return list(rows.items())
