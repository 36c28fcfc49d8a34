"""The quality-gate verdict over the workflow's task results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class QualityGateError(RuntimeError):
    """The workflow's gate pass rate is below the spec's threshold, or a result is missing."""


@dataclass(frozen=True)
class QualityVerdict:
    passed: int
    total: int
    threshold: float
    per_task: dict[int, tuple[int, int]]

    @property
    def pass_rate(self) -> float:
        """Mean of the tasks' own pass rates: each task weighs the same, whatever its gate count.

        Task 9 alone reports thousands of gates (one per generated test) against a stand-in's
        ten; pooling the gates would let it drown out every other task.
        """
        if not self.per_task:
            return 0.0
        return sum(p / t for p, t in self.per_task.values()) / len(self.per_task)

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.pass_rate >= self.threshold

    @property
    def failing_tasks(self) -> list[int]:
        return [task for task, (passed, total) in self.per_task.items() if passed < total]

    def summary(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        line = (
            f"quality gates {verdict}: pass rate {self.pass_rate:.1%} over {len(self.per_task)} "
            f"tasks (threshold {self.threshold:.0%}; {self.passed}/{self.total} gates passed)"
        )
        if self.failing_tasks:
            detail = ", ".join(
                f"task {task} {self.per_task[task][0]}/{self.per_task[task][1]}"
                for task in self.failing_tasks
            )
            line += f"; below 100 %: {detail}"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "pass_rate": round(self.pass_rate, 6),
            "threshold": self.threshold,
            "ok": self.ok,
            "failing_tasks": self.failing_tasks,
            "per_task": {str(task): list(gates) for task, gates in self.per_task.items()},
        }


def evaluate_quality_gates(
    results: Mapping[int, Mapping[str, Any] | None], threshold: float
) -> QualityVerdict:
    """The verdict over every task's `quality_gates`.

    A task whose result is missing cannot be judged, so it is an error rather than a pass.
    """
    missing = sorted(task for task, result in results.items() if not result)
    if missing:
        raise QualityGateError(f"no result for task(s) {missing}: cannot judge the quality gates")
    per_task = {}
    for task, result in sorted(results.items()):
        gates = result["quality_gates"]
        per_task[task] = (int(gates["passed"]), int(gates["total"]))
    return QualityVerdict(
        passed=sum(passed for passed, _ in per_task.values()),
        total=sum(total for _, total in per_task.values()),
        threshold=threshold,
        per_task=per_task,
    )
