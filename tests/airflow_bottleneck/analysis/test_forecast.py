"""The live ETA on synthetic histories with answers computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_bottleneck.analysis.forecast import (
    MIN_HISTORY_RUNS,
    DagHistory,
    dag_history,
    forecast_run,
    state_at,
)
from airflow_bottleneck.analysis.graph import TaskGraph, TaskNode
from tests.airflow_bottleneck.analysis.helpers import BASE, at, instance, table

CHAIN = TaskGraph.chain(["a", "b", "c"], "a -> b -> c")
# Each history run: a 10 s, b 20 s, c 30 s; 0.5 s head, 1 s per hop, 0.5 s tail (run i adds
# i/10 s to every task, so quantiles are not all equal: median run is i = 2).
SPANS = {"a": 10.0, "b": 20.0, "c": 30.0}


def chain_history(
    runs: int = 5, spans: dict[str, float] = SPANS
) -> tuple[pd.DataFrame, DagHistory]:
    rows, bounds = [], []
    for index in range(runs):
        run_id, clock = f"h{index}", index * 1000.0
        bounds.append({"run_id": run_id, "start": at(clock), "end": None})
        clock += 0.5
        for task, seconds in spans.items():
            took = seconds + index / 10
            rows.append(instance(task, clock, clock + took, run_id=run_id))
            clock += took + 1.0
        bounds[-1]["end"] = at(clock - 1.0 + 0.5)
    frame, runs_frame = table(*rows), pd.DataFrame(bounds)
    return runs_frame, dag_history(frame, runs_frame, CHAIN)


def epoch(seconds: float) -> float:
    return pd.Timestamp(at(seconds)).timestamp()


def forecast(rows, history, now, graph=CHAIN, **kwargs):
    return forecast_run(
        table(*rows),
        graph,
        history,
        dag_id="dag",
        run_id="run",
        state=kwargs.pop("state", "running"),
        run_start=epoch(0),
        now=epoch(now),
        **kwargs,
    )


def test_history_statistics_are_medians_of_successful_runs() -> None:
    _, history = chain_history()
    assert history.runs == 5
    assert history.tasks["b"].spans[1] == pytest.approx(20.2)
    assert history.tasks["b"].spans[0] < 20.2 < history.tasks["b"].spans[2]
    assert history.handoff == pytest.approx(1.0)
    assert history.head == pytest.approx(0.5)
    assert history.tail == pytest.approx(0.5)


def test_running_run_ends_after_the_remaining_critical_path() -> None:
    _, history = chain_history()
    # a ran 0.5 -> 10.5; b started at 11.5 and has run 10 s of its median 20.2 s.
    rows = [instance("a", 0.5, 10.5), instance("b", 11.5, None, state="running")]
    result = forecast(rows, history, now=21.5)
    expected = 21.5 + (20.2 - 10.0) + 1.0 + 30.2 + 0.5
    assert result.available
    assert result.expected_end_offset == pytest.approx(expected, abs=1e-3)
    assert result.remaining_seconds == pytest.approx(expected - 21.5, abs=1e-3)
    assert result.path == ["b", "c"]
    assert result.low_end_offset < result.expected_end_offset < result.high_end_offset
    assert result.progress == pytest.approx(21.5 / expected, abs=1e-3)
    assert result.naive_end_offset == pytest.approx(history.wall)
    by_task = {task.task: task for task in result.tasks}
    assert by_task["a"].status == "done" and by_task["a"].expected_end_offset == 10.5
    assert by_task["b"].elapsed_seconds == pytest.approx(10.0)
    assert by_task["c"].expected_start_offset == pytest.approx(21.5 + 10.2 + 1.0, abs=1e-3)


def test_a_task_past_its_p90_is_overrunning_and_never_ends_before_now() -> None:
    _, history = chain_history()
    rows = [instance("a", 0.5, 10.5), instance("b", 11.5, None, state="running")]
    result = forecast(rows, history, now=11.5 + 60)  # three times b's median
    assert result.overrunning == ["b"]
    b = next(task for task in result.tasks if task.task == "b")
    assert b.overrunning and b.expected_end_offset == pytest.approx(71.5)
    assert result.expected_end_offset == pytest.approx(71.5 + 1.0 + 30.2 + 0.5, abs=1e-3)
    assert any("overrunning" in note for note in result.notes)


@pytest.mark.parametrize("runs", range(MIN_HISTORY_RUNS))
def test_too_little_history_says_so_instead_of_guessing(runs: int) -> None:
    history = chain_history(runs)[1] if runs else DagHistory.empty()
    result = forecast([instance("a", 0.5, None, state="running")], history, now=5)
    assert not result.available
    assert result.expected_end_offset is None and result.tasks == []
    assert f"{runs} successful run(s)" in result.reason


def test_a_task_without_history_is_named_and_counted_as_no_time() -> None:
    _, history = chain_history()
    graph = TaskGraph.chain(["a", "b", "c", "new"], "a chain with a new task")
    rows = [instance("a", 0.5, 10.5), instance("b", 11.5, None, state="running")]
    result = forecast(rows, history, now=21.5, graph=graph)
    assert any(note.startswith("no history for new") for note in result.notes)
    new = next(task for task in result.tasks if task.task == "new")
    assert new.history_runs == 0 and new.expected_seconds is None


def mapped_graph(limit: int) -> TaskGraph:
    nodes = {
        "split": TaskNode("split"),
        "work": TaskNode("work", mapped=True, max_active=limit),
        "join": TaskNode("join"),
    }
    return TaskGraph(nodes, (("split", "work"), ("work", "join")), "dag", "mapped", 16)


def mapped_history(graph: TaskGraph) -> DagHistory:
    """Five runs: split 5 s, four 10 s indexes in two waves of two (20 s), join 5 s."""
    rows, bounds = [], []
    for run in range(5):
        run_id, clock = f"h{run}", run * 1000.0
        rows.append(instance("split", clock, clock + 5, run_id=run_id))
        for index in range(4):
            begin = clock + 6 + (index // 2) * 10
            rows.append(instance("work", begin, begin + 10, run_id=run_id, map_index=index))
        rows.append(instance("join", clock + 27, clock + 32, run_id=run_id))
        bounds.append({"run_id": run_id, "start": at(clock), "end": at(clock + 32)})
    return dag_history(table(*rows), pd.DataFrame(bounds), graph)


def test_a_mapped_task_scales_by_its_map_count_in_waves_of_its_limit() -> None:
    graph = mapped_graph(limit=2)
    history = mapped_history(graph)
    assert history.tasks["work"].map_count == 4
    # This run expanded 8 indexes: four waves of two instead of two, 40 s instead of 20 s.
    rows = [instance("split", 0, 5)] + [
        {**instance("work", 0, None, map_index=index, state="scheduled"), "start": None}
        for index in range(8)
    ]
    result = forecast(rows, history, now=5.5, graph=graph)
    work = next(task for task in result.tasks if task.task == "work")
    assert work.expected_seconds == pytest.approx(40.0)
    assert work.expected_end_offset == pytest.approx(5 + 1 + 40, abs=1e-3)
    assert result.path == ["work", "join"]


def test_a_retried_task_runs_again_from_now() -> None:
    _, history = chain_history()
    rows = [
        instance("a", 0.5, 10.5),
        instance("b", 11.5, 15.0, state="up_for_retry"),
    ]
    result = forecast(rows, history, now=20.0)
    b = next(task for task in result.tasks if task.task == "b")
    assert b.status == "pending"
    assert b.expected_start_offset == pytest.approx(20.0)
    assert b.expected_end_offset == pytest.approx(40.2, abs=1e-3)


def test_a_task_the_history_skips_takes_no_time() -> None:
    graph = TaskGraph.chain(["a", "branch", "c"], "a -> branch -> c")
    rows, bounds = [], []
    for run in range(4):
        run_id, clock = f"h{run}", run * 1000.0
        rows += [
            instance("a", clock, clock + 10, run_id=run_id),
            instance("branch", clock + 10, clock + 10, run_id=run_id, state="skipped"),
            instance("c", clock + 11, clock + 21, run_id=run_id),
        ]
        bounds.append({"run_id": run_id, "start": at(clock), "end": at(clock + 21)})
    history = dag_history(table(*rows), pd.DataFrame(bounds), graph)
    assert history.tasks["branch"].skipped_share == 1.0
    result = forecast([instance("a", 0, None, state="running")], history, now=4, graph=graph)
    assert result.expected_end_offset == pytest.approx(10 + 1 + 10, abs=1e-3)
    assert result.path == ["a", "c"]


def test_replaying_a_finished_run_and_a_predicted_deadline_miss() -> None:
    _, history = chain_history()
    # This run's c is three times as slow as usual: 90 s.
    rows = [instance("a", 0.5, 10.5), instance("b", 11.5, 31.5), instance("c", 32.5, 122.5)]
    replayed = state_at(table(*rows), epoch(80.0))
    c = replayed[replayed["task_id"] == "c"].iloc[0]
    assert pd.isna(c["t_end"]) and str(c["state"]) == "running"
    result = forecast_run(
        replayed,
        CHAIN,
        history,
        dag_id="dag",
        run_id="run",
        state="running",
        run_start=epoch(0),
        now=epoch(80.0),
        deadline=(70.0, "a per-DAG setting"),
    )
    assert result.overrunning == ["c"]
    assert result.deadline.miss_predicted is True
    assert result.deadline.at == pd.Timestamp(at(70.0)).isoformat()
    early = forecast([instance("a", 0.5, 10.5)], history, now=11.0, deadline=(200.0, "setting"))
    assert early.deadline.miss_predicted is False and early.deadline.missed is None


def test_a_finished_run_forecasts_its_own_end() -> None:
    _, history = chain_history()
    rows = [instance("a", 0.5, 10.5), instance("b", 11.5, 31.5), instance("c", 32.5, 62.5)]
    result = forecast(rows, history, now=63.0, state="success", deadline=(62.0, "setting"))
    assert result.expected_end_offset == pytest.approx(63.0)
    assert result.remaining_seconds == 0 and result.progress == 1.0 and result.path == []
    assert result.deadline.missed is True
    assert BASE.isoformat() == result.start


def test_a_mapped_task_whose_indexes_overrun_expects_the_rest_as_slow() -> None:
    graph = mapped_graph(limit=4)
    history = mapped_history(graph)
    # Every index took 10 s in every run: no spread, the ceiling is 10 s.
    assert history.tasks["work"].index_ceiling == {0: 10.0, 1: 10.0, 2: 10.0, 3: 10.0}
    # All four indexes started at 6; index 0 finished in 25 s (2.5x), index 1 has run 28 s
    # (2.8x), indexes 2 and 3 too: the median of the four ratios is 2.8.
    rows = [
        instance("split", 0, 5),
        instance("work", 6, 31, map_index=0),
        *(instance("work", 6, None, map_index=i, state="running") for i in (1, 2, 3)),
    ]
    result = forecast(rows, history, now=34.0, graph=graph)
    work = next(task for task in result.tasks if task.task == "work")
    # Its median span in history is 20 s (first start -> last end).
    assert work.expected_seconds == pytest.approx(20.0 * 2.8)
    assert work.expected_end_offset == pytest.approx(6 + 56.0, abs=1e-3)
    assert result.overrunning == ["work"]
    assert any(
        note.startswith("work: its map indexes take 2.80x their usual ceiling")
        for note in result.notes
    )
    # Earlier, index 0 has run 15 s (1.5x its ceiling), indexes 1 and 2 are within theirs, 3 waits.
    early = forecast(
        [instance("split", 0, 5)]
        + [instance("work", 6 + i * 6, None, map_index=i, state="running") for i in range(3)]
        + [{**instance("work", 0, None, map_index=3, state="scheduled"), "start": None}],
        history,
        now=21.0,
        graph=graph,
    )
    work = next(task for task in early.tasks if task.task == "work")
    assert work.overrunning and work.expected_seconds == pytest.approx(30.0)
    assert work.expected_end_offset == pytest.approx(6 + 30.0, abs=1e-3)


def test_one_straggling_index_does_not_slow_the_rest() -> None:
    graph = mapped_graph(limit=4)
    history = mapped_history(graph)
    rows = [
        instance("split", 0, 5),
        instance("work", 6, 15, map_index=0),
        instance("work", 6, 15.5, map_index=1),
        instance("work", 6, 16, map_index=2),
        instance("work", 6, None, map_index=3, state="running"),
    ]
    result = forecast(rows, history, now=26.0, graph=graph)  # index 3 at 2x its ceiling
    assert result.overrunning == [] and not any("map indexes" in n for n in result.notes)
    work = next(task for task in result.tasks if task.task == "work")
    assert work.expected_seconds == pytest.approx(20.0)
    assert work.expected_end_offset == pytest.approx(26.0, abs=1e-3)


def test_an_index_ceiling_is_not_raised_by_slowed_runs_in_the_history() -> None:
    graph = mapped_graph(limit=4)
    took = [10.0, 10.2, 9.8, 10.1, 9.9, 30.0, 30.0]  # two slowed runs among seven
    rows, bounds = [], []
    for run, seconds in enumerate(took):
        run_id, clock = f"h{run}", run * 1000.0
        rows += [
            instance("split", clock, clock + 5, run_id=run_id),
            instance("work", clock + 6, clock + 6 + seconds, run_id=run_id, map_index=0),
            instance("join", clock + 7 + seconds, clock + 12 + seconds, run_id=run_id),
        ]
        bounds.append({"run_id": run_id, "start": at(clock), "end": at(clock + 12 + seconds)})
    history = dag_history(table(*rows), pd.DataFrame(bounds), graph)
    # median 10.1; below it 10.0, 9.8, 9.9 and itself lie 0.1, 0.3, 0.2, 0 under it (median
    # 0.15): 10.1 + 3 x 1.4826 x 0.15. A p90 would be 30, the two-sided deviation 0.2.
    assert history.tasks["work"].index_ceiling[0] == pytest.approx(10.1 + 3 * 1.4826 * 0.15)
    slowed = [instance("split", 0, 5), instance("work", 6, None, map_index=0, state="running")]
    result = forecast(slowed, history, now=6 + 15.0, graph=graph)
    assert result.overrunning == ["work"]
