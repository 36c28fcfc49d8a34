"""Two runs on ONE axis in production minutes (each run replayed with its stand-ins scaled back):
reference run A above, run B below, both from t = 0, each run's end marked and the time
gained or lost drawn in the colour of its direction."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_bottleneck.analysis.compare import by_spec_task, task_spans
from airflow_bottleneck.analysis.formatting import factor
from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.render.charts.axis import (
    FASTER,
    LABEL_WIDTH,
    NORMAL,
    SLOWER,
    WIDTH,
    Axis,
    short,
)

ROW = 16
BAR = 10
HEADER = 22
GAP = 26
REFERENCE = "#868e96"


@dataclass(frozen=True)
class CompareBar:
    key: str
    label: str
    y: float
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class RunBlock:
    tag: str  # A or B
    title: str
    top: float
    color: str
    bars: list[CompareBar]
    end_x: float
    end_label: str


@dataclass(frozen=True)
class ComparisonView:
    width: int
    height: int
    ticks: list[tuple[float, str]]
    blocks: list[RunBlock]
    delta_x1: float
    delta_x2: float
    delta_y: float
    delta_color: str
    delta_label: str
    axis_bottom: float


def comparison_view(comparison: Comparison, a: RunReport, b: RunReport) -> ComparisonView:
    by_spec = by_spec_task(a, b)
    a_spans = task_spans(a, by_spec, production=True)
    b_spans = task_spans(b, by_spec, production=True)
    keys = list(dict.fromkeys([*a_spans, *b_spans]))
    longest = max(comparison.a.wall_seconds, comparison.b.wall_seconds) / 60
    axis = Axis.covering(longest, LABEL_WIDTH, WIDTH - LABEL_WIDTH - 40, " min")
    blocks = []
    top = 8.0
    for tag, spans, run, color in (
        ("A", a_spans, comparison.a, REFERENCE),
        ("B", b_spans, comparison.b, NORMAL),
    ):
        bars = []
        for index, key in enumerate(keys):
            if key not in spans:
                continue
            label, start, end = spans[key]
            start_min, end_min = start / 60, end / 60
            bars.append(
                CompareBar(
                    key=key,
                    label=short(label),
                    y=top + HEADER + index * ROW,
                    x=axis.x(start_min),
                    width=max(axis.x(end_min) - axis.x(start_min), 1.0),
                    title=f"{tag} {label}: {start_min:.1f} -> {end_min:.1f} min "
                    f"({end_min - start_min:.2f} min)",
                )
            )
        wall_min = run.wall_seconds / 60
        state = " (partial)" if run.partial else ""
        blocks.append(
            RunBlock(
                tag=tag,
                title=f"{tag}: {run.label}{state}",
                top=top,
                color=color,
                bars=bars,
                end_x=axis.x(wall_min),
                end_label=f"{wall_min:.1f} min",
            )
        )
        top += HEADER + len(keys) * ROW + GAP
    a_end, b_end = blocks[0].end_x, blocks[1].end_x
    verdict = comparison.verdict
    color = {"faster": FASTER, "slower": SLOWER}.get(verdict, REFERENCE)
    label = "the same wall time" if verdict == "same" else f"{factor(comparison.factor)} {verdict}"
    return ComparisonView(
        width=WIDTH,
        height=int(top + 10),
        ticks=axis.ticks(),
        blocks=blocks,
        delta_x1=min(a_end, b_end),
        delta_x2=max(a_end, b_end),
        delta_y=blocks[1].top + 8,
        delta_color=color,
        delta_label=label,
        axis_bottom=top - GAP,
    )
