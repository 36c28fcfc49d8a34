"""What is ahead of a run: a live ETA from the remaining critical path, with a band.

The expected end of a running run is *now + the remaining critical path*, not the run's
start + an average run (which a stuck, retried or slowed run makes meaningless):

- every task that finished keeps its measured end;
- a running task ends after what remains of its median span in the DAG's history (never
  before now); one running past its p90 is flagged as overrunning;
- a task that has not started starts after its last upstream's expected end plus the DAG's
  median hand-off (never before now) and takes its median span. A mapped task's span is
  scaled by the waves its map count needs under the DAG's concurrency limits
  (`max_active_tis_per_dag`, else the DAG's `max_active_tasks`) against the waves of its
  history; a task the history mostly skipped takes no time;
- a running mapped task's indexes share their code and usually their cause of slowness: when
  its indexes that finished, or ran past their own usual ceiling in history, took longer than
  that ceiling (the median of those ratios), the task's remaining span is scaled by it and the
  task is flagged as overrunning. An index's ceiling is its median + 3 sigmas, sigma measured
  below the median only (1.4826 x the median distance to it of the spans not above it), not
  its p90: slowdowns only ever lengthen spans, so slowed runs in the history (a quarter of
  them, say) would move a p90 or a two-sided spread up to their level and hide the next
  slowdown, while the spans below the median keep the noise of normal runs. Indexes running
  within their ceiling say nothing yet; one straggler among indexes that finished in time does
  not move the median;
- the run ends the median tail (last task end -> run end) after its last task.

The same walk with every unfinished task's p10 and p90 spans gives the band. Statistics come
from the DAG's recent *successful* runs (`DagHistory`); with fewer than `MIN_HISTORY_RUNS` the
forecast says so instead of guessing. The walk assumes the executor has a free slot for every
ready task (slots, pools and other DAGs' load are not modelled); the band and the
overrunning flags show how far to trust it.

Nothing here imports Airflow; `state_at` replays what was known at any moment of a finished
run, which is how the forecast is checked against what happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.analysis.model import Deadline, Forecast, ForecastTask
from airflow_bottleneck.analysis.table import normalize_instances
from airflow_bottleneck.analysis.timing import NOT_RUN_STATES

MIN_HISTORY_RUNS = 3
# A map index's usual ceiling: its median span + this many robust sigmas.
CEILING_SIGMAS = 3.0
# sigma / median absolute deviation for a normal distribution (either half's alike)
ROBUST_SIGMA_PER_MAD = 1.4826
# Quantiles of a task's span: the band's low edge, the expectation, the band's high edge.
QUANTILES = (0.10, 0.50, 0.90)
LOW, MEDIAN, HIGH = range(3)
# A task skipped in more than this share of its history is expected to be skipped again.
SKIPPED_MAJORITY = 0.5
# States of a try that will run again (or for the first time): not finished.
WILL_RUN_STATES = frozenset({"up_for_retry", "up_for_reschedule", "restarting"})
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class TaskHistory:
    """One task over the history's runs: its span's quantiles, map count, how often skipped."""

    runs: int
    spans: tuple[float, float, float]  # QUANTILES of its span (first start -> last end), s
    map_count: float | None  # median number of map indexes (None: not mapped)
    skipped_share: float
    # Each map index's usual ceiling (`_index_ceilings`; empty: not mapped).
    index_ceiling: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DagHistory:
    """A DAG's recent successful runs, reduced to what the forecast needs."""

    run_ids: tuple[str, ...]
    tasks: Mapping[str, TaskHistory]
    handoff: float  # median: an upstream's end -> a downstream's start
    head: float  # median: the run's start -> its first tasks' start
    tail: float  # median: the last task's end -> the run's end
    wall: float | None  # median wall time

    @property
    def runs(self) -> int:
        return len(self.run_ids)

    @classmethod
    def empty(cls) -> DagHistory:
        return cls((), {}, 0.0, 0.0, 0.0, None)


def dag_history(instances: pd.DataFrame, runs: pd.DataFrame, graph: TaskGraph) -> DagHistory:
    """Statistics of the runs in `runs` (columns run_id, start, end: the runs' own bounds, as
    timestamps) from their task instances (a task-instance table of those runs)."""
    if runs.empty or instances.empty:
        return DagHistory.empty()
    table = normalize_instances(instances)
    final = table[table["final"].to_numpy()]
    bounds = pd.DataFrame(
        {
            "start": epoch_seconds(runs["start"]).to_numpy(),
            "end": epoch_seconds(runs["end"]).to_numpy(),
        },
        index=runs["run_id"].astype(str).to_numpy(),
    )
    state = final["state"].astype("object")
    skipped = final[state.isin(NOT_RUN_STATES).to_numpy()]
    spans = run_spans(table)
    # Skipped tasks end too (when Airflow skipped them): their downstream's hand-off counts.
    timed = run_spans(table, with_skipped=True)
    skipped_runs = skipped.groupby("task_id", observed=True)["run_id"].nunique()
    index_ceilings = _index_ceilings(final)
    tasks: dict[str, TaskHistory] = {}
    for task_id, rows in spans.groupby(level="task_id", observed=True):
        durations = rows["span"].to_numpy()
        counts = rows["indexes"].to_numpy()
        skips = int(skipped_runs.get(task_id, 0))
        tasks[str(task_id)] = TaskHistory(
            runs=len(durations),
            spans=tuple(float(np.quantile(durations, q)) for q in QUANTILES),  # type: ignore[arg-type]
            map_count=float(np.median(counts)) if counts.max() > 0 else None,
            skipped_share=skips / (skips + len(durations)),
            index_ceiling=index_ceilings.get(str(task_id), {}),
        )
    for task_id in skipped_runs.index:
        tasks.setdefault(str(task_id), TaskHistory(0, (0.0, 0.0, 0.0), None, 1.0))
    hops, heads, tails = _gaps(spans, timed, bounds, graph)
    walls = (bounds["end"] - bounds["start"]).dropna()
    return DagHistory(
        run_ids=tuple(bounds.index),
        tasks=tasks,
        handoff=_median(hops),
        head=_median(heads),
        tail=_median(tails),
        wall=float(walls.median()) if len(walls) else None,
    )


def run_spans(table: pd.DataFrame, *, with_skipped: bool = False) -> pd.DataFrame:
    """Per (run_id, task_id) that ran: first start, last end, span and map indexes, from the
    final tries of a normalized task-instance table (skipped tasks left out unless asked)."""
    ran = _timed(table[table["final"].to_numpy()], with_skipped=with_skipped)
    spans = ran.groupby(["run_id", "task_id"], observed=True).agg(
        start=("t_start", "min"),
        end=("t_end", "max"),
        indexes=("map_index", lambda index: int((index >= 0).sum())),
    )
    spans["span"] = spans["end"] - spans["start"]
    return spans


def _timed(final: pd.DataFrame, *, with_skipped: bool = False) -> pd.DataFrame:
    """The final tries with a start and an end (skipped ones left out unless asked)."""
    timed = final["t_start"].notna().to_numpy() & final["t_end"].notna().to_numpy()
    if not with_skipped:
        timed &= ~final["state"].astype("object").isin(NOT_RUN_STATES).to_numpy()
    return final[timed]


def _index_ceilings(final: pd.DataFrame) -> dict[str, dict[int, float]]:
    """Per mapped task, each map index's usual ceiling: median + CEILING_SIGMAS sigmas of its
    span over the final tries that ran, sigma from the spans at or below the median (indexes
    with MIN_HISTORY_RUNS runs or more)."""
    ran = _timed(final)
    ran = ran[ran["map_index"].to_numpy() >= 0]
    if ran.empty:
        return {}
    keys = pd.MultiIndex.from_arrays([ran["task_id"].astype(str), ran["map_index"]])
    took = pd.Series((ran["t_end"] - ran["t_start"]).to_numpy(), index=keys)
    # One pass per statistic over every index at once (a mapped task may have thousands).
    by_index = took.groupby(level=[0, 1])
    median = by_index.transform("median")
    under = (median - took)[(took <= median).to_numpy()]
    sigma = ROBUST_SIGMA_PER_MAD * under.groupby(level=[0, 1]).median()
    ceiling = (by_index.median() + CEILING_SIGMAS * sigma)[by_index.count() >= MIN_HISTORY_RUNS]
    per_task: dict[str, dict[int, float]] = {}
    for (task_id, map_index), seconds in ceiling.items():
        per_task.setdefault(str(task_id), {})[int(map_index)] = float(seconds)
    return per_task


def _gaps(
    spans: pd.DataFrame, timed: pd.DataFrame, bounds: pd.DataFrame, graph: TaskGraph
) -> tuple[list[float], list[float], list[float]]:
    """Per run: each dependent task's hand-off (its last upstream's end -> its start), each
    root task's head (run start -> its start) and the tail (last end -> run end); of the tasks
    that ran (`spans`), with the ends of skipped upstream tasks too (`timed`)."""
    hops, heads, tails = [], [], []
    predecessors = {node: list(graph.digraph.predecessors(node)) for node in graph.digraph}
    for run_id, rows in spans.groupby(level="run_id", observed=True):
        start_of = rows["start"].droplevel("run_id").to_dict()
        end_of = timed.loc[run_id, "end"].to_dict()
        run_start, run_end = bounds.loc[str(run_id), ["start", "end"]]
        for task, started in start_of.items():
            ends = [end_of[up] for up in predecessors.get(task, ()) if up in end_of]
            if ends:
                hops.append(max(0.0, started - max(ends)))
            elif not predecessors.get(task) and not math.isnan(run_start):
                heads.append(max(0.0, started - run_start))
        if end_of and not math.isnan(run_end):
            tails.append(max(0.0, run_end - max(end_of.values())))
    return hops, heads, tails


def forecast_run(
    instances: pd.DataFrame,
    graph: TaskGraph,
    history: DagHistory,
    *,
    dag_id: str,
    run_id: str,
    state: str | None,
    run_start: float,
    now: float,
    deadline: tuple[float, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Forecast:
    """The ETA of one run as known at `now` (epoch seconds; the run's end if it finished).

    `instances`: the run's task-instance table; `deadline`: (seconds from the run's start,
    where it comes from)."""
    table = normalize_instances(instances)
    final = table[table["final"].to_numpy()]
    observed = _status(final, now)
    nodes = list(dict.fromkeys([*graph.digraph.nodes, *observed]))
    digraph = graph.with_tasks(nodes).digraph
    labels = labels or {}
    notes: list[str] = []
    elapsed = max(0.0, now - run_start)
    base = {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": state,
        "start": _iso(run_start),
        "observed_at": _iso(now),
        "elapsed_seconds": round(elapsed, 3),
        "history_runs": history.runs,
        "handoff_seconds": round(history.handoff, 3),
        "naive_end_offset": None if history.wall is None else round(history.wall, 3),
    }
    if history.runs < MIN_HISTORY_RUNS:
        return Forecast(
            **base,
            available=False,
            reason=(
                f"too little history to forecast: {history.runs} successful run(s) of this "
                f"DAG, {MIN_HISTORY_RUNS} needed"
            ),
            expected_end=None,
            expected_end_offset=None,
            low_end_offset=None,
            high_end_offset=None,
            remaining_seconds=None,
            progress=None,
            path=[],
            overrunning=[],
            deadline=_deadline(deadline, run_start, None, state, now),
            tasks=[],
            notes=notes,
        )
    walk = _Walk(digraph, graph, history, observed, run_start, now)
    ends = walk.ends
    finished = state in ("success", "failed")
    run_end = [now if finished else max(now, max(level.values()) + history.tail) for level in ends]
    if finished:
        run_end = [max(now, max(ends[MEDIAN].values(), default=now))] * 3
    unknown = sorted(
        task
        for task, seen in observed.items()
        if seen.status in ("running", "pending") and task not in history.tasks
    )
    unknown += [t for t in nodes if t not in observed and t not in history.tasks]
    if unknown:
        notes.append(
            "no history for "
            + ", ".join(sorted(set(unknown)))
            + ": counted as taking no time, so the ETA is a lower bound"
        )
    path = [] if finished else walk.remaining_path()
    overrunning = sorted(walk.overrunning)
    tasks = [
        ForecastTask(
            task=task,
            label=labels.get(task, task),
            status=walk.status(task),
            expected_seconds=walk.expected_span(task),
            elapsed_seconds=walk.elapsed(task),
            expected_start_offset=_offset(walk.starts.get(task), run_start),
            expected_end_offset=_offset(ends[MEDIAN].get(task), run_start),
            low_end_offset=_offset(ends[LOW].get(task), run_start),
            high_end_offset=_offset(ends[HIGH].get(task), run_start),
            on_path=task in path,
            overrunning=task in walk.overrunning,
            history_runs=history.tasks[task].runs if task in history.tasks else 0,
        )
        for task in nx.topological_sort(digraph)
    ]
    expected_wall = run_end[MEDIAN] - run_start
    past_p90 = [task for task in overrunning if task not in walk.slowdown]
    if past_p90:
        notes.append(
            "overrunning (past their p90 in history): "
            + ", ".join(past_p90)
            + "; the band assumes they end soon"
        )
    notes.extend(
        f"{task}: its map indexes take {factor:.2f}x their usual ceiling so far; "
        "the rest of it is expected as slow"
        for task, factor in sorted(walk.slowdown.items())
    )
    return Forecast(
        **base,
        available=True,
        reason=None,
        expected_end=_iso(run_end[MEDIAN]),
        expected_end_offset=round(expected_wall, 3),
        low_end_offset=round(run_end[LOW] - run_start, 3),
        high_end_offset=round(run_end[HIGH] - run_start, 3),
        remaining_seconds=round(max(0.0, run_end[MEDIAN] - now), 3),
        progress=round(min(1.0, elapsed / expected_wall), 4) if expected_wall > 0 else 1.0,
        path=path,
        overrunning=overrunning,
        deadline=_deadline(deadline, run_start, run_end[LOW], state, now),
        tasks=tasks,
        notes=notes,
    )


@dataclass(frozen=True)
class _Seen:
    """What the run's records say about one task at `now`."""

    status: str  # done / running / pending / skipped
    start: float | None
    end: float | None
    indexes: int  # map indexes known so far (0: not expanded, or not mapped)
    # Map indexes that started: (index, seconds taken or run so far, finished)
    index_times: tuple[tuple[int, float, bool], ...] = ()


def _status(final: pd.DataFrame, now: float) -> dict[str, _Seen]:
    seen: dict[str, _Seen] = {}
    for task_id, rows in final.groupby("task_id", observed=True, sort=False):
        states = rows["state"].astype("object")
        starts, ends = rows["t_start"].to_numpy(), rows["t_end"].to_numpy()
        will_run = states.isin(WILL_RUN_STATES).to_numpy()
        started = ~np.isnan(starts) & ~will_run
        ended = started & ~np.isnan(ends)
        skipped = states.isin(NOT_RUN_STATES).to_numpy()
        indexes = int((rows["map_index"].to_numpy() >= 0).sum())
        first = float(np.nanmin(starts[started])) if started.any() else None
        last = float(np.nanmax(ends[ended])) if ended.any() else None
        map_indexes = rows["map_index"].to_numpy()
        index_times = tuple(
            (int(map_index), float((end if done else now) - start), bool(done))
            for map_index, start, end, done in zip(
                map_indexes[started], starts[started], ends[started], ended[started], strict=True
            )
            if map_index >= 0
        )
        if skipped.all():
            status = "skipped"
        elif (ended | skipped).all():
            status = "done"
        elif started.any():
            status = "running"
        else:
            status = "pending"
        seen[str(task_id)] = _Seen(status, first, last, indexes, index_times)
    return seen


class _Walk:
    """The three forward passes (p10, median, p90) over the graph in topological order."""

    def __init__(
        self,
        digraph: nx.DiGraph,
        graph: TaskGraph,
        history: DagHistory,
        observed: Mapping[str, _Seen],
        run_start: float,
        now: float,
    ) -> None:
        self.digraph, self.graph, self.history = digraph, graph, history
        self.observed, self.now = observed, now
        self.ends: list[dict[str, float]] = [{}, {}, {}]
        self.starts: dict[str, float] = {}
        self.driver: dict[str, str | None] = {}  # the upstream that decided a task's start
        self.overrunning: set[str] = set()
        self.passed_through: set[str] = set()  # expected to be skipped
        # Running mapped tasks whose indexes run slower than their history: the factor.
        self.slowdown = {
            task: factor
            for task, seen in observed.items()
            if seen.status == "running" and (factor := self._slowdown(task, seen)) > 1.0
        }
        self.overrunning.update(self.slowdown)
        for task in nx.topological_sort(digraph):
            for level in (LOW, MEDIAN, HIGH):
                self._place(task, level, run_start)

    def status(self, task: str) -> str:
        seen = self.observed.get(task)
        return "pending" if seen is None else seen.status

    def elapsed(self, task: str) -> float | None:
        seen = self.observed.get(task)
        if seen is None or seen.status != "running" or seen.start is None:
            return None
        return round(max(0.0, self.now - seen.start), 3)

    def expected_span(self, task: str) -> float | None:
        if task not in self.history.tasks:
            return None
        return round(self._span(task, MEDIAN), 3)

    def _span(self, task: str, level: int) -> float:
        known = self.history.tasks.get(task)
        if known is None or known.runs == 0:
            return 0.0
        span = known.spans[level]
        seen = self.observed.get(task)
        if known.map_count is not None and seen is not None and seen.indexes:
            limit = self._limit(task)
            span *= _waves(seen.indexes, limit) / _waves(known.map_count, limit)
        return span * self.slowdown.get(task, 1.0)

    def _slowdown(self, task: str, seen: _Seen) -> float:
        """The median of time / ceiling over the task's indexes that finished or ran past
        their ceiling (1 when none did, or the history does not know them)."""
        known = self.history.tasks.get(task)
        if known is None or not known.index_ceiling:
            return 1.0
        ratios = [
            took / ceiling
            for map_index, took, finished in seen.index_times
            if (ceiling := known.index_ceiling.get(map_index)) and (finished or took > ceiling)
        ]
        return max(1.0, float(np.median(ratios))) if ratios else 1.0

    def _limit(self, task: str) -> int | None:
        node = self.graph.nodes.get(task)
        limits = [n for n in (node and node.max_active, self.graph.max_active_tasks) if n]
        return min(limits) if limits else None

    def _place(self, task: str, level: int, run_start: float) -> None:
        seen = self.observed.get(task)
        upstream = list(self.digraph.predecessors(task))
        ready, driver = run_start, None
        for up in upstream:
            if self.ends[level][up] > ready:
                ready, driver = self.ends[level][up], up
        known = self.history.tasks.get(task)
        if seen is not None and seen.status in ("done", "skipped"):
            self.ends[level][task] = seen.end if seen.end is not None else ready
            return
        if seen is not None and seen.status == "running" and seen.start is not None:
            ran = self.now - seen.start
            span = self._span(task, level)
            self.ends[level][task] = self.now + max(0.0, span - ran)
            if level == MEDIAN:
                self.starts[task], self.driver[task] = seen.start, driver
                if known is not None and known.runs and ran > known.spans[HIGH]:
                    self.overrunning.add(task)
            return
        if known is not None and known.skipped_share > SKIPPED_MAJORITY:
            self.ends[level][task] = ready  # expected to be skipped: no time
            self.passed_through.add(task)
            self.driver[task] = driver
            return
        gap = self.history.handoff if upstream else self.history.head
        start = max(ready + gap, self.now)
        self.ends[level][task] = start + self._span(task, level)
        if level == MEDIAN:
            self.starts[task] = start
            self.driver[task] = driver if ready + gap >= self.now else None

    def remaining_path(self) -> list[str]:
        """The chain of unfinished tasks that decides the expected end, first task first."""
        ends = self.ends[MEDIAN]
        unfinished = [t for t in ends if self.status(t) in ("running", "pending")]
        if not unfinished:
            return []
        task: str | None = max(unfinished, key=lambda t: (ends[t], t))
        path = []
        while task is not None and self.status(task) in ("running", "pending"):
            if task not in self.passed_through:
                path.append(task)
            task = self.driver.get(task)
        return path[::-1]


def _waves(count: float, limit: int | None) -> float:
    """How many rounds `count` indexes take when at most `limit` run at once."""
    if count <= 0:
        return 1.0
    return float(math.ceil(count / limit)) if limit else 1.0


def _deadline(
    deadline: tuple[float, str] | None,
    run_start: float,
    low_end: float | None,
    state: str | None,
    now: float,
) -> Deadline | None:
    if deadline is None:
        return None
    offset, source = deadline
    finished = state in ("success", "failed")
    return Deadline(
        offset_seconds=round(offset, 3),
        at=_iso(run_start + offset),
        source=source,
        miss_predicted=None if low_end is None else low_end - run_start > offset,
        missed=(now - run_start > offset) if finished else None,
    )


def state_at(instances: pd.DataFrame, moment: float) -> pd.DataFrame:
    """The run's task-instance table as it stood at `moment` (epoch seconds): tries that had
    not started are pending, those that had not ended are running."""
    table = normalize_instances(instances).copy()
    not_started = ~(table["t_start"] <= moment).to_numpy()
    not_ended = ~(table["t_end"] <= moment).to_numpy()
    running = not_ended & ~not_started
    table.loc[not_started | not_ended, ["end", "duration"]] = [pd.NaT, np.nan]
    table.loc[not_started | not_ended, "t_end"] = np.nan
    table.loc[not_started, ["start", "code_start"]] = pd.NaT
    table.loc[not_started, ["t_start", "t_code_start"]] = np.nan
    states = table["state"].astype("object")
    states[running] = "running"
    states[not_started] = None
    table["state"] = states.astype("category")
    table["seconds"] = np.where(
        running, moment - table["t_start"], np.where(not_started, 0.0, table["seconds"])
    )
    return table


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def epoch_seconds(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return (stamps - _EPOCH) / pd.Timedelta(seconds=1)


def _offset(value: float | None, origin: float) -> float | None:
    return None if value is None else round(value - origin, 3)


def _iso(epoch_seconds: float) -> str:
    return (_EPOCH + pd.Timedelta(microseconds=round(epoch_seconds * 1e6))).isoformat()
