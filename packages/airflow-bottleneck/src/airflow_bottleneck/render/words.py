"""The sentences the human formats (text, Markdown, HTML) share."""

from __future__ import annotations

from airflow_bottleneck.analysis.formatting import factor, percent, seconds, seconds_and_minutes
from airflow_bottleneck.analysis.model import Comparison, RunReport

GRAPH_WORDS = {
    "dag": "the DAG's own graph",
    "execution": "the order the run executed in",
    "spec": "the declared dependencies",
    "none": "no known dependencies",
}


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


def path_sentence(report: RunReport) -> str:
    """`Critical path (the DAG's own graph): its tasks ran 70.3 s; with their start-ups and
    hand-offs it accounts for 123.8 s, 100.0 % of the wall time`."""
    path = report.critical_path
    return (
        f"Critical path ({GRAPH_WORDS[report.graph_source]}): {len(path.tasks)} tasks that "
        f"ran {seconds(path.seconds)}; with their start-ups and hand-offs it accounts for "
        f"{seconds(path.span_seconds)}, {percent(path.share_of_wall)} of the wall time"
    )


def what_if_lines(report: RunReport, top: int) -> list[str]:
    """The declared-dependency what-if: a title, then one line per figure or task pair."""
    w = report.what_if
    assert w is not None
    lines = [
        "What if only the declared dependencies applied (this run's durations)",
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
