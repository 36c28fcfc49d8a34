"""Two runs side by side, typically the baseline and the optimized DAG.

Every figure is on the production scale (seconds / each run's time scale), so a demo run at
1/60 compares with a production profile and with a run at another scale. Per-task deltas are
per spec-level node (Task 8's group is one node, as the baseline's single Task 8 is), because
the two DAGs name Task 8's pieces differently. The comparison also puts run A's what-if
prediction (its measured durations scheduled on the declared dependencies) next to run B's
measured wall time: for A = baseline, B = optimized, that checks the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.k1n.analysis.report import RunReport

COMPARISON_SCHEMA = "k1n.analysis.comparison/1"


@dataclass(frozen=True)
class TaskDelta:
    """One spec-level node in both runs, production seconds (None: not in that run)."""

    node: str
    spec_id: int | None
    name: str
    a_seconds: float | None
    b_seconds: float | None

    @property
    def delta_seconds(self) -> float | None:
        if self.a_seconds is None or self.b_seconds is None:
            return None
        return self.b_seconds - self.a_seconds

    @property
    def change(self) -> float | None:
        """(b - a) / a: -0.4 means B took 40 % less."""
        delta = self.delta_seconds
        return None if delta is None or not self.a_seconds else delta / self.a_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "spec_id": self.spec_id,
            "name": self.name,
            "a_seconds": _round(self.a_seconds),
            "b_seconds": _round(self.b_seconds),
            "delta_seconds": _round(self.delta_seconds),
            "change": _round(self.change, 6),
        }


@dataclass(frozen=True)
class Comparison:
    """Run A against run B; `as_dict()` is the JSON form."""

    a: RunReport
    b: RunReport
    tasks: tuple[TaskDelta, ...]

    @property
    def a_wall(self) -> float:
        return self.a.production_seconds(self.a.wall_seconds)

    @property
    def b_wall(self) -> float:
        return self.b.production_seconds(self.b.wall_seconds)

    @property
    def a_total(self) -> float:
        return self.a.production_seconds(self.a.total_task_seconds)

    @property
    def b_total(self) -> float:
        return self.b.production_seconds(self.b.total_task_seconds)

    @property
    def speedup_percent(self) -> float:
        """How much less wall time B took than A, in % of A (negative: B was slower)."""
        return (self.a_wall - self.b_wall) / self.a_wall * 100 if self.a_wall else 0.0

    @property
    def speedup_factor(self) -> float:
        """A's wall / B's wall: 2.0 means B ran twice as fast."""
        return self.a_wall / self.b_wall if self.b_wall else float("inf")

    @property
    def predicted_b_wall(self) -> float:
        """A's what-if wall time (with A's measured hand-offs), production seconds."""
        return self.a.production_seconds(self.a.opportunities.what_if_with_overhead_seconds)

    @property
    def predicted_b_wall_without_overhead(self) -> float:
        return self.a.production_seconds(self.a.opportunities.what_if_seconds)

    @property
    def prediction_error_percent(self) -> float:
        """(predicted - measured) / measured: positive means B beat the prediction."""
        return (self.predicted_b_wall - self.b_wall) / self.b_wall * 100 if self.b_wall else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": COMPARISON_SCHEMA,
            "scale": "production seconds (measured seconds / time scale)",
            "a": _run_summary(self.a),
            "b": _run_summary(self.b),
            "wall_seconds": {"a": _round(self.a_wall), "b": _round(self.b_wall)},
            "total_task_seconds": {"a": _round(self.a_total), "b": _round(self.b_total)},
            "speedup_percent": _round(self.speedup_percent, 2),
            "speedup_factor": _round(self.speedup_factor, 4),
            "prediction": {
                "predicted_b_wall_seconds": _round(self.predicted_b_wall),
                "predicted_b_wall_without_overhead_seconds": _round(
                    self.predicted_b_wall_without_overhead
                ),
                "measured_b_wall_seconds": _round(self.b_wall),
                "error_percent": _round(self.prediction_error_percent, 2),
            },
            "tasks": [task.as_dict() for task in self.tasks],
            "targets": {
                "a": [target.as_dict() for target in self.a.targets],
                "b": [target.as_dict() for target in self.b.targets],
            },
        }


def compare_runs(a: RunReport, b: RunReport) -> Comparison:
    """Compare run A (the reference, e.g. the baseline) with run B."""
    a_nodes = {node.node: node for node in a.nodes if node.measured}
    b_nodes = {node.node: node for node in b.nodes if node.measured}
    order = [node.node for node in a.nodes] + [
        node.node for node in b.nodes if node.node not in {n.node for n in a.nodes}
    ]
    tasks = []
    for name in order:
        if name not in a_nodes and name not in b_nodes:
            continue
        any_node = a_nodes.get(name) or b_nodes[name]
        tasks.append(
            TaskDelta(
                node=name,
                spec_id=any_node.spec_id,
                name=any_node.name,
                a_seconds=a.production_seconds(a_nodes[name].duration) if name in a_nodes else None,
                b_seconds=b.production_seconds(b_nodes[name].duration) if name in b_nodes else None,
            )
        )
    return Comparison(a=a, b=b, tasks=tuple(tasks))


def _run_summary(report: RunReport) -> dict[str, Any]:
    return {
        "label": report.info.label,
        "source": report.info.source,
        "dag_id": report.info.dag_id,
        "run_id": report.info.run_id,
        "state": report.info.state,
        "time_scale": report.time_scale,
        "measured_wall_seconds": _round(report.wall_seconds),
        "measured_total_task_seconds": _round(report.total_task_seconds),
        "critical_path_seconds": _round(report.production_seconds(report.critical_path.seconds)),
        "overhead_seconds": _round(report.production_seconds(report.overhead.idle_seconds)),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)
