"""What the workflow spec adds to a K1N run's report: its declared-dependency what-if, the
independent tasks that ran one after the other, and the targets on the production scale.

Granularity is the spec task: Task 8's group in the optimized DAG is one node whose duration
is the span of its stages (first start -> last end), as the baseline's single Task 8 is.
`check_quality_gates`, which reads every task's result, is a final node after every sink.
"""

from __future__ import annotations

import networkx as nx
import pandas as pd

from airflow_bottleneck.analysis.graph import (
    SLACK_TOLERANCE,
    Schedule,
    cpm_schedule,
    independent_pairs,
)
from airflow_bottleneck.analysis.model import DeclaredWhatIf, ParallelPair, TargetCheck
from k1n.reporting.spec_graph import dependency_graph
from k1n.workflow.names import CODEGEN_SPEC_ID, QUALITY_GATES_TASK_ID
from k1n.workflow.spec import WorkflowSpec

FINAL_TASK_IDS: tuple[str, ...] = (QUALITY_GATES_TASK_ID,)


def spec_spans(ran: pd.DataFrame, spec: WorkflowSpec) -> pd.DataFrame:
    """Per spec-level node (spec task, or a final task): first start, last end (epoch s)."""
    node_of_spec = {task.id: task.airflow_task_id for task in spec.tasks}
    node = ran["spec_id"].map(node_of_spec).astype("object")
    is_final = ran["task_id"].isin(FINAL_TASK_IDS).to_numpy()
    node = node.where(node.notna().to_numpy() | ~is_final, ran["task_id"].astype("object"))
    keep = node.notna().to_numpy()
    grouped = ran[keep].groupby(node[keep].to_numpy())
    return pd.DataFrame({"start": grouped["t_start"].min(), "end": grouped["t_end"].max()})


def declared_what_if(
    ran: pd.DataFrame,
    spec: WorkflowSpec,
    *,
    per_hop: float,
    head: float,
    tail: float,
    wall: float,
    run_start: float,
) -> DeclaredWhatIf:
    """This run's spec-level durations scheduled on the declared dependencies, with this
    run's median hand-off per hop and its head and tail; and the missed parallelism."""
    spans = spec_spans(ran, spec)
    finals = [t for t in FINAL_TASK_IDS if t in spans.index]
    graph = dependency_graph(spec, finals)
    durations = (spans["end"] - spans["start"]).clip(lower=0).to_dict()
    schedule = cpm_schedule(graph, durations)
    hops = max(0, len(schedule.path) - 1)
    with_handoffs = schedule.length + per_hop * hops + head + tail
    return DeclaredWhatIf(
        seconds=round(schedule.length, 3),
        with_handoffs_seconds=round(with_handoffs, 3),
        speedup=round(wall / with_handoffs, 4) if with_handoffs > 0 else 0.0,
        path=list(schedule.path),
        pairs=_missed_parallelism(graph, schedule, spans, run_start),
    )


def _missed_parallelism(
    graph: nx.DiGraph, schedule: Schedule, spans: pd.DataFrame, run_start: float
) -> list[ParallelPair]:
    """Independent spec tasks that did not overlap although the later one was ready (every
    declared predecessor done) while the earlier one ran; the saving is that ready time."""
    order = [n for n in spans.sort_values("start").index if graph.nodes[n]["spec_id"]]
    pairs = []
    for a, b in independent_pairs(graph, order):
        first, then = (a, b) if spans.at[a, "start"] <= spans.at[b, "start"] else (b, a)
        first_start, first_end = spans.at[first, "start"], spans.at[first, "end"]
        if first_end > spans.at[then, "start"]:
            continue  # they overlapped
        ends = [spans.at[p, "end"] for p in graph.predecessors(then) if p in spans.index]
        ready = max(ends) if ends else run_start
        overlap = min(
            float(first_end - max(ready, first_start)),
            schedule.durations[first],
            schedule.durations[then],
        )
        if overlap > SLACK_TOLERANCE:
            pairs.append(ParallelPair(first=first, then=then, saving_max_seconds=round(overlap, 3)))
    pairs.sort(key=lambda pair: (-pair.saving_max_seconds, pair.first, pair.then))
    return pairs


def codegen_seconds(ran: pd.DataFrame) -> float | None:
    """Task 8's span (its group's first start -> last end), or None if it did not run."""
    rows = ran[(ran["spec_id"] == CODEGEN_SPEC_ID).fillna(False).to_numpy()]
    if rows.empty:
        return None
    return float(rows["t_end"].max() - rows["t_start"].min())


def build_targets(
    spec: WorkflowSpec,
    *,
    production_wall_seconds: float,
    production_task8_seconds: float | None,
    pass_rate: float | None,
) -> list[TargetCheck]:
    """The spec's targets for one run, judged on its production figures (the run replayed
    with its stand-ins scaled back, `airflow_bottleneck.analysis.production`)."""
    targets = spec.targets
    wall_minutes = production_wall_seconds / 60
    task8_minutes = None if production_task8_seconds is None else production_task8_seconds / 60
    entries = [
        ("workflow_minutes_max", f"whole workflow <= {targets.workflow_minutes_max:g} min",
         "<=", targets.workflow_minutes_max, wall_minutes, "min"),
        ("workflow_minutes_goal", f"whole workflow goal <= {targets.workflow_minutes_goal:g} min",
         "<=", targets.workflow_minutes_goal, wall_minutes, "min"),
        ("task8_minutes_max", f"Task 8 < {targets.task8_minutes_max:g} min",
         "<", targets.task8_minutes_max, task8_minutes, "min"),
        ("quality_gate_pass_rate_min",
         f"quality gates >= {targets.quality_gate_pass_rate_min:.0%}",
         ">=", targets.quality_gate_pass_rate_min, pass_rate, "ratio"),
    ]  # fmt: skip
    result = []
    for key, description, operator, limit, actual, unit in entries:
        met = None
        if actual is not None:
            met = {"<=": actual <= limit, "<": actual < limit, ">=": actual >= limit}[operator]
        result.append(
            TargetCheck(
                key=key,
                description=description,
                operator=operator,
                limit=float(limit),
                actual=None if actual is None else round(float(actual), 4),
                unit=unit,
                met=met,
            )
        )
    return result
