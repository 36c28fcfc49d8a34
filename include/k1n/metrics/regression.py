"""Regression detection for nightly runs: each task and the wall time against the DAG's history.

A run is judged against the last N *good* runs of the same DAG (default 14: two weeks of
nightlies). For every task and for the wall time the baseline is the median of that history and
its spread the MAD (median absolute deviation) scaled by 1.4826, which estimates the standard
deviation of normal noise. Both are robust: one slow night, a retry or a noisy neighbour in the
history moves neither, where a mean and a standard deviation would be dragged along.

A task regressed only when all three hold, so that no single one of them alarms on noise:

- **robust z** = (seconds - median) / scaled MAD above the threshold (default 4): the slowdown is
  large against the task's own noise;
- **relative slowdown** above a minimum (default 15 %): a very steady task whose MAD is tiny
  would otherwise alarm on a 2 % change nobody cares about;
- **absolute slowdown** above a minimum in seconds (default 0.5 s): a 0.3 s task that takes
  0.5 s is +67 % and many MADs, but it is scheduler jitter, not a regression.

Only slowdowns count; a faster run is never a regression. Below a minimum history (default 5
runs) nothing is judged: the verdict says "insufficient history", which is not a failure.

`Verdict` combines the regressions with the run's state, the spec's targets (from the analysis
report) and the quality-gate pass rate. Everything here is pandas/numpy: no Airflow, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from pydantic import ValidationError

from airflow_bottleneck.analysis.graph import critical_path_lengths
from airflow_bottleneck.analysis.model import RunReport, TargetCheck

# The pseudo-task a run's wall time is judged as, in history frames and in `Regression.task`.
WALL_TIME = "wall_seconds"
# MAD x 1.4826 estimates the standard deviation when the noise is normal.
MAD_TO_SIGMA = 1.4826
QUALITY_TARGET_KEY = "quality_gate_pass_rate_min"
# Targets that are goals, not limits: missing one is reported but does not fail the verdict.
GOAL_TARGET_KEYS: frozenset[str] = frozenset({"workflow_minutes_goal"})

# Airflow Variables that configure `RegressionPolicy` (see airflow_settings.yaml).
POLICY_VARIABLES: dict[str, str] = {
    "k1n_regression_history_runs": "history_runs",
    "k1n_regression_min_history": "min_history",
    "k1n_regression_z_threshold": "z_threshold",
    "k1n_regression_min_slowdown_pct": "min_slowdown_pct",
    "k1n_regression_min_slowdown_seconds": "min_slowdown_seconds",
}


@dataclass(frozen=True)
class RegressionPolicy:
    """When a slowdown counts as a regression; see the module docstring for the reasoning.

    `sigma_floor_pct` keeps z finite for a task whose history is (nearly) identical: its spread
    is taken as at least this percentage of its median.
    """

    history_runs: int = 14
    min_history: int = 5
    z_threshold: float = 4.0
    min_slowdown_pct: float = 15.0
    min_slowdown_seconds: float = 0.5
    sigma_floor_pct: float = 1.0
    # Judging by the wall (a graph given): the chance that an unchanged night alarms, all of
    # its tests together, and how much a task must move the wall (% of the median wall).
    family_alpha: float = 0.01
    min_wall_impact_pct: float = 1.0
    # ... and no task is taken as steadier than this % of its median: a spread measured over
    # 14 nights is itself noisy, and one lucky quiet fortnight must not make a task alarm.
    noise_floor_pct: float = 8.0

    def __post_init__(self) -> None:
        problems = []
        if self.min_history < 2:
            problems.append(f"min_history must be at least 2, got {self.min_history}")
        if self.history_runs < self.min_history:
            problems.append(
                f"history_runs ({self.history_runs}) must be at least "
                f"min_history ({self.min_history})"
            )
        if not 0 < self.family_alpha < 1:
            problems.append(f"family_alpha must be between 0 and 1, got {self.family_alpha}")
        for name in (
            "z_threshold",
            "min_slowdown_pct",
            "min_slowdown_seconds",
            "sigma_floor_pct",
            "min_wall_impact_pct",
            "noise_floor_pct",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a non-negative number, got {value}")
        if problems:
            raise ValueError("invalid regression policy: " + "; ".join(problems))

    @classmethod
    def from_variables(cls, values: Mapping[str, Any]) -> RegressionPolicy:
        """A policy from Airflow Variables (`POLICY_VARIABLES` names, values as strings).

        Missing or empty values keep the defaults; a value that is not a number raises
        ValueError naming the variable.
        """
        types = {f.name: f.type for f in fields(cls)}
        settings: dict[str, Any] = {}
        for variable, attribute in POLICY_VARIABLES.items():
            raw = values.get(variable)
            if raw is None or str(raw).strip() == "":
                continue
            whole = types[attribute] == "int"  # annotations are strings (PEP 563)
            try:
                number = float(str(raw).strip())
                if whole and not number.is_integer():
                    raise ValueError
            except ValueError:
                expected = "a whole number" if whole else "a number"
                raise ValueError(f"Variable {variable}: expected {expected}, got {raw!r}") from None
            settings[attribute] = int(number) if whole else number
        return cls(**settings)

    def describe(self) -> str:
        """`z >= 4, >= +15 %, >= +0.5 s`: what a slowdown must reach to count."""
        return (
            f"z >= {self.z_threshold:g}, >= +{self.min_slowdown_pct:g} %, "
            f">= +{self.min_slowdown_seconds:g} s"
        )


@dataclass(frozen=True)
class Regression:
    """One task (or `WALL_TIME`) that is significantly slower than its history."""

    task: str
    seconds: float
    baseline_median: float
    mad: float
    z: float
    slowdown_pct: float
    history_runs: int
    evidence: str
    wall_impact_seconds: float | None = None  # how far it alone moved the critical path

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_impact_seconds": None
            if self.wall_impact_seconds is None
            else round(self.wall_impact_seconds, 3),
            "task": self.task,
            "seconds": round(self.seconds, 3),
            "baseline_median": round(self.baseline_median, 3),
            "mad": round(self.mad, 3),
            "z": round(self.z, 2),
            "slowdown_pct": round(self.slowdown_pct, 1),
            "history_runs": self.history_runs,
            "evidence": self.evidence,
        }


ReportInput = RunReport | Mapping[str, Any]


def as_report(report: ReportInput) -> RunReport:
    """The typed report: a `RunReport`, or its JSON form (an XCom) validated into one;
    `ValueError` naming the first field in error otherwise."""
    if isinstance(report, RunReport):
        return report
    try:
        return RunReport.model_validate(report)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "report"
        raise ValueError(f"not a run report: {where}: {error['msg']}") from None


def run_seconds(report: ReportInput) -> pd.Series:
    """One run's seconds per task plus its wall time (`WALL_TIME`), from its report.

    The shape of one row of `load_history`'s frame; a task's seconds are its final tries summed
    over its map indexes, as in `RunReport.tasks`.
    """
    report = as_report(report)
    values = {WALL_TIME: report.wall_seconds}
    values.update({task.task: task.seconds for task in report.tasks})
    return pd.Series(values, dtype="float64", name=report.run_id)


def history_from_reports(reports: Iterable[ReportInput]) -> pd.DataFrame:
    """A history frame (runs oldest first, `WALL_TIME` and one column per task) from reports
    in run order: the same shape `load_history` reads from PostgreSQL."""
    rows = [run_seconds(report) for report in reports]
    if not rows:
        return pd.DataFrame(columns=[WALL_TIME], dtype="float64")
    frame = pd.DataFrame(rows)
    frame.index.name = "run_id"
    return frame


def baseline(history: pd.DataFrame, policy: RegressionPolicy = RegressionPolicy()) -> pd.DataFrame:
    """Per column of the last `policy.history_runs` runs: `median`, `mad` (scaled), `runs`.

    NaN cells (a task that did not run that night) are left out of that task's figures.
    """
    recent = history.tail(policy.history_runs).astype("float64")
    median = recent.median(skipna=True)
    mad = (recent - median).abs().median(skipna=True) * MAD_TO_SIGMA
    return pd.DataFrame({"median": median, "mad": mad, "runs": recent.count()})


def detect_regressions(
    history: pd.DataFrame,
    current: Mapping[str, float] | pd.Series,
    policy: RegressionPolicy = RegressionPolicy(),
    *,
    current_run_id: str | None = None,
) -> list[Regression]:
    """Every task of `current` (and its wall time) that regressed against `history`.

    `history` has one row per run, oldest first (`load_history` or `history_from_reports`);
    `current` maps task -> seconds and `WALL_TIME` -> wall seconds (`run_seconds`). A row of
    `history` labelled `current_run_id` is dropped first, so a run already stored is never its
    own baseline. Tasks with fewer than `policy.min_history` runs of history are not judged.
    Regressions are sorted by z, largest first.
    """
    if current_run_id is not None and current_run_id in history.index:
        history = history.drop(index=current_run_id)
    scores = _Scores.of(history, current, policy, policy.sigma_floor_pct)
    regressions = [
        scores.regression(index)
        for index in np.flatnonzero(scores.significant(policy, policy.z_threshold))
    ]
    regressions.sort(key=lambda regression: (-regression.z, regression.task))
    return regressions


@dataclass(frozen=True)
class _Scores:
    """Each column of a run against its history: robust z, slowdown in seconds and %."""

    now: pd.Series
    stats: pd.DataFrame
    judged: np.ndarray
    slowdown: np.ndarray
    z: np.ndarray
    slowdown_pct: np.ndarray

    @classmethod
    def of(
        cls,
        history: pd.DataFrame,
        current: Mapping[str, float] | pd.Series,
        policy: RegressionPolicy,
        floor_pct: float,
    ) -> _Scores:
        now = pd.Series(current, dtype="float64").dropna()
        stats = baseline(history, policy).reindex(now.index)
        median, mad = stats["median"].to_numpy(), stats["mad"].to_numpy()
        slowdown = now.to_numpy() - median
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.maximum(mad, np.abs(median) * floor_pct / 100)
            z = np.where(sigma > 0, slowdown / sigma, np.where(slowdown > 0, np.inf, 0.0))
            slowdown_pct = np.where(median > 0, slowdown / median * 100, np.inf)
        judged = stats["runs"].fillna(0).to_numpy() >= policy.min_history
        return cls(now, stats, judged, slowdown, z, slowdown_pct)

    def significant(self, policy: RegressionPolicy, z_threshold: float) -> np.ndarray:
        return (
            self.judged
            & (self.z >= z_threshold)
            & (self.slowdown_pct >= policy.min_slowdown_pct)
            & (self.slowdown >= policy.min_slowdown_seconds)
        )

    def regression(
        self, index: int, wall_impact: float | None = None, words: str = ""
    ) -> Regression:
        measured: dict[str, Any] = {
            "task": str(self.now.index[index]),
            "seconds": float(self.now.iloc[index]),
            "baseline_median": float(self.stats["median"].iloc[index]),
            "mad": float(self.stats["mad"].iloc[index]),
            "z": float(self.z[index]),
            "slowdown_pct": float(self.slowdown_pct[index]),
            "history_runs": int(self.stats["runs"].iloc[index]),
        }
        return Regression(
            **measured, evidence=_evidence(**measured) + words, wall_impact_seconds=wall_impact
        )


@dataclass(frozen=True)
class WallImpact:
    """Slowdowns judged by what they did to the wall.

    `moved`: tasks significantly slower than their history whose slowdown alone lengthens the
    critical path of the history's median durations by at least the policy's minimum (and the
    wall itself, when it is significantly slower); `inside_slack`: significantly slower tasks
    whose slowdown the wall absorbed. `z_threshold` is the per-test z that keeps the chance of
    any alarm on an unchanged night at `family_alpha` (Bonferroni over the tests made)."""

    moved: tuple[Regression, ...]
    inside_slack: tuple[Regression, ...]
    z_threshold: float
    min_impact_seconds: float


def family_z(tests: int, alpha: float) -> float:
    """The one-sided normal z of `tests` tests sharing a false-alarm chance `alpha`."""
    return NormalDist().inv_cdf(1 - alpha / max(tests, 1))


def task_spans(report: ReportInput) -> pd.Series:
    """One run's span per task (first start -> last end, a mapped task's indexes together:
    the time its downstream waited) plus its wall time (`WALL_TIME`)."""
    report = as_report(report)
    values = {WALL_TIME: report.wall_seconds}
    values.update(
        {
            task.task: task.end_offset - task.start_offset
            for task in report.tasks
            if task.status == "ran"
            and task.start_offset is not None
            and task.end_offset is not None
        }
    )
    return pd.Series(values, dtype="float64", name=report.run_id)


def detect_wall_movers(
    history: pd.DataFrame,
    current: Mapping[str, float] | pd.Series,
    graph: nx.DiGraph,
    policy: RegressionPolicy = RegressionPolicy(),
) -> WallImpact:
    """Which of `current`'s slowdowns moved the wall. `history` and `current` hold spans
    (`task_spans`; `load_history(..., measure="span")`), `graph` the DAG's dependencies."""
    recent = history.tail(policy.history_runs).astype("float64")
    scores = _Scores.of(
        recent, current, policy, max(policy.sigma_floor_pct, policy.noise_floor_pct)
    )
    z_star = family_z(int(scores.judged.sum()), policy.family_alpha)
    wall_median = float(scores.stats["median"].get(WALL_TIME, np.nan))
    min_impact = max(
        policy.min_slowdown_seconds,
        (policy.min_wall_impact_pct / 100 * wall_median) if math.isfinite(wall_median) else 0.0,
    )
    impact = _wall_impacts(scores.now, scores.stats["median"], graph)
    moved, inside = [], []
    for index in np.flatnonzero(scores.significant(policy, z_star)):
        task = str(scores.now.index[index])
        wall_move = scores.slowdown[index] if task == WALL_TIME else impact.get(task, 0.0)
        found = scores.regression(index, float(wall_move), _impact_words(task, wall_move))
        (moved if wall_move >= min_impact else inside).append(found)
    moved.sort(key=lambda r: (r.task == WALL_TIME, -(r.wall_impact_seconds or 0.0), r.task))
    inside.sort(key=lambda r: (-r.z, r.task))
    return WallImpact(tuple(moved), tuple(inside), z_star, min_impact)


def _wall_impacts(now: pd.Series, medians: pd.Series, graph: nx.DiGraph) -> dict[str, float]:
    """Per task of `graph` in `now`: the critical path of the medians with that one task at
    its current span, minus the medians' own (one vectorised CPM pass for all of them)."""
    tasks = [task for task in now.index if task in graph]
    if not tasks:
        return {}
    typical = medians.reindex(list(graph.nodes)).fillna(0.0)
    rows = pd.DataFrame([typical.to_numpy()] * (len(tasks) + 1), columns=typical.index)
    for row, task in enumerate(tasks, start=1):
        rows.at[row, task] = float(now[task])
    lengths = critical_path_lengths(graph, rows).to_numpy()
    return {task: float(lengths[row] - lengths[0]) for row, task in enumerate(tasks, start=1)}


def _impact_words(task: str, wall_move: float) -> str:
    if task == WALL_TIME:
        return ""
    if wall_move <= 0.0:
        return "; inside its slack: the wall did not move"
    return f"; moved the wall {wall_move:+.1f} s"


def _evidence(
    *,
    task: str,
    seconds: float,
    baseline_median: float,
    mad: float,
    z: float,
    slowdown_pct: float,
    history_runs: int,
) -> str:
    """`task_13_x: 9.8 s vs median 8.0 s (MAD 0.20 s, z 6.1, +22 %) over 14 runs`."""
    name = "wall time" if task == WALL_TIME else task
    return (
        f"{name}: {_seconds(seconds)} vs median {_seconds(baseline_median)} "
        f"(MAD {_seconds(mad)}, z {z:.1f}, +{slowdown_pct:.0f} %) over {history_runs} runs"
    )


def _seconds(value: float) -> str:
    # Two decimals below a second so that a 0.04 s MAD does not read as 0.0 s.
    return f"{value:.2f} s" if abs(value) < 1 else f"{value:.1f} s"


# -- verdict ------------------------------------------------------------------------------------


class VerdictStatus(StrEnum):
    """The verdict's headline, worst first: `Verdict.status` is the first that applies."""

    RUN_FAILED = "run failed"
    REGRESSION = "regression"
    QUALITY_FAILED = "quality gate failed"
    TARGETS_MISSED = "targets missed"
    INSUFFICIENT_HISTORY = "insufficient history"
    OK = "ok"


# Statuses that make `Verdict.ok` False; "insufficient history" only means "not judged".
FAILING_STATUSES: frozenset[VerdictStatus] = frozenset(
    {
        VerdictStatus.RUN_FAILED,
        VerdictStatus.REGRESSION,
        VerdictStatus.QUALITY_FAILED,
        VerdictStatus.TARGETS_MISSED,
    }
)


def describe_target(target: TargetCheck) -> str:
    """`whole workflow <= 90 min: 95.2 min`: a target as the analysis report judged it."""
    if target.actual is None:
        return f"{target.description}: not measured"
    if target.unit == "ratio":
        return f"{target.description}: {target.actual:.1%}"
    return f"{target.description}: {target.actual:.1f} {target.unit}".rstrip()


@dataclass(frozen=True)
class Verdict:
    """Is a run good? Regressions, run state, blocking targets and the quality pass rate.

    `ok` is False when the run did not succeed, any task or the wall time regressed, a target
    (not a goal, see `GOAL_TARGET_KEYS`) was missed, or the quality pass rate is unknown or
    below `pass_rate_min`. Too little history is *not* a failure: timing is simply not judged.
    """

    dag_id: str
    run_id: str
    run_state: str | None
    regressions: tuple[Regression, ...]
    history_runs: int
    policy: RegressionPolicy
    targets_missed: tuple[TargetCheck, ...]
    goals_missed: tuple[TargetCheck, ...]
    pass_rate: float | None
    pass_rate_min: float
    not_judged: tuple[str, ...] = field(default=())
    # Judged by the wall (`judge_run(..., graph=...)`): slower tasks the wall absorbed.
    inside_slack: tuple[Regression, ...] = field(default=())
    by_wall: bool = False

    @property
    def insufficient_history(self) -> bool:
        return self.history_runs < self.policy.min_history

    @property
    def run_succeeded(self) -> bool:
        # A source without run states (old profiles) cannot fail on state.
        return self.run_state is None or self.run_state == "success"

    @property
    def quality_ok(self) -> bool:
        return self.pass_rate is not None and self.pass_rate >= self.pass_rate_min

    @property
    def statuses(self) -> tuple[VerdictStatus, ...]:
        """Every status that applies, worst first; `(OK,)` for a clean run."""
        found = []
        if not self.run_succeeded:
            found.append(VerdictStatus.RUN_FAILED)
        if self.regressions:
            found.append(VerdictStatus.REGRESSION)
        if not self.quality_ok:
            found.append(VerdictStatus.QUALITY_FAILED)
        if self.targets_missed:
            found.append(VerdictStatus.TARGETS_MISSED)
        if self.insufficient_history:
            found.append(VerdictStatus.INSUFFICIENT_HISTORY)
        return tuple(found) or (VerdictStatus.OK,)

    @property
    def status(self) -> VerdictStatus:
        return self.statuses[0]

    @property
    def ok(self) -> bool:
        return not FAILING_STATUSES.intersection(self.statuses)

    def summary(self) -> str:
        """A few lines a person reads in a log or an alert."""
        problems = [s.value for s in self.statuses if s is not VerdictStatus.OK]
        headline = "OK" if self.ok else "FAILED"
        detail = f" ({', '.join(problems)})" if problems else ""
        lines = [f"{self.dag_id} {self.run_id}: {headline}{detail}"]
        if not self.run_succeeded:
            lines.append(f"run state: {self.run_state}")
        if self.insufficient_history:
            lines.append(
                f"timing not judged: {self.history_runs} good run(s) of history, "
                f"{self.policy.min_history} needed"
            )
        elif self.regressions:
            what = "moved the wall" if self.by_wall else "regression(s)"
            lines.append(
                f"{len(self.regressions)} {what} against the last {self.history_runs} "
                f"good runs ({self.describe_policy()}):"
            )
            lines.extend(f"  - {regression.evidence}" for regression in self.regressions)
        else:
            lines.append(
                f"no regression against the last {self.history_runs} good runs "
                f"({self.describe_policy()})"
            )
        if self.inside_slack:
            lines.append("slower, but inside their slack (the wall did not move):")
            lines.extend(f"  - {regression.evidence}" for regression in self.inside_slack)
        if self.not_judged and not self.insufficient_history:
            lines.append("too little history to judge: " + ", ".join(self.not_judged))
        if self.targets_missed:
            lines.append("targets missed:")
            lines.extend(f"  - {describe_target(target)}" for target in self.targets_missed)
        if self.pass_rate is None:
            lines.append(f"quality gates: pass rate unknown (needs >= {self.pass_rate_min:.0%})")
        else:
            relation = ">=" if self.quality_ok else "<"
            lines.append(
                f"quality gates: pass rate {self.pass_rate:.1%} {relation} {self.pass_rate_min:.0%}"
            )
        if self.goals_missed:
            lines.append(
                "goals missed (not blocking): "
                + "; ".join(describe_target(target) for target in self.goals_missed)
            )
        return "\n".join(lines)

    def describe_policy(self) -> str:
        if not self.by_wall:
            return self.policy.describe()
        return (
            f"by the wall: {self.policy.family_alpha:.0%} false-alarm chance per night over "
            f"every task, >= +{self.policy.min_slowdown_pct:g} %, moving the wall "
            f">= {self.policy.min_wall_impact_pct:g} % of its median, noise floor "
            f"{self.policy.noise_floor_pct:g} %"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_wall": self.by_wall,
            "inside_slack": [regression.as_dict() for regression in self.inside_slack],
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "ok": self.ok,
            "status": self.status.value,
            "statuses": [status.value for status in self.statuses],
            "run_state": self.run_state,
            "history_runs": self.history_runs,
            "regressions": [regression.as_dict() for regression in self.regressions],
            "targets_missed": [target.key for target in self.targets_missed],
            "goals_missed": [target.key for target in self.goals_missed],
            "pass_rate": self.pass_rate,
            "pass_rate_min": self.pass_rate_min,
            "not_judged": list(self.not_judged),
            "summary": self.summary(),
        }


def judge_run(
    report: ReportInput,
    history: pd.DataFrame,
    policy: RegressionPolicy = RegressionPolicy(),
    *,
    pass_rate_min: float | None = None,
    graph: nx.DiGraph | None = None,
) -> Verdict:
    """The verdict on one run (its `RunReport`, or that report's JSON form) against its DAG's
    good-run history.

    `history` is `load_history(...)` (or `history_from_reports`); the run itself is dropped
    from it when present. `pass_rate_min` defaults to the limit of the report's quality target,
    which is the spec's `quality_gate_pass_rate_min`.

    With the DAG's `graph`, timing is judged by the wall (`detect_wall_movers`): `history`
    then holds spans (`load_history(..., measure="span")`), a slowdown counts when it moved
    the critical path, and the ones the wall absorbed are listed apart.
    """
    report = as_report(report)
    run_id = report.run_id
    if run_id in history.index:
        history = history.drop(index=run_id)
    recent = history.tail(policy.history_runs)
    current = run_seconds(report) if graph is None else task_spans(report)
    inside: tuple[Regression, ...] = ()
    if graph is None:
        regressions = tuple(detect_regressions(recent, current, policy))
    else:
        impact = detect_wall_movers(recent, current, graph, policy)
        regressions, inside = impact.moved, impact.inside_slack
    targets = report.targets
    quality = next((t for t in targets if t.key == QUALITY_TARGET_KEY), None)
    if pass_rate_min is None:
        pass_rate_min = quality.limit if quality is not None else _spec_pass_rate_min()
    missed = [t for t in targets if t.met is False and t.key != QUALITY_TARGET_KEY]
    counts = baseline(recent, policy)["runs"].reindex(current.index).fillna(0)
    return Verdict(
        dag_id=report.dag_id,
        run_id=run_id,
        run_state=report.state,
        regressions=regressions,
        history_runs=len(recent),
        policy=policy,
        targets_missed=tuple(t for t in missed if t.key not in GOAL_TARGET_KEYS),
        goals_missed=tuple(t for t in missed if t.key in GOAL_TARGET_KEYS),
        pass_rate=quality.actual if quality is not None else None,
        pass_rate_min=float(pass_rate_min),
        not_judged=tuple(sorted(str(task) for task in counts.index[counts < policy.min_history])),
        inside_slack=inside,
        by_wall=graph is not None,
    )


def _spec_pass_rate_min() -> float:
    from k1n.workflow.spec import load_spec

    return load_spec().targets.quality_gate_pass_rate_min
