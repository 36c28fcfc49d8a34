"""Production figures: the run replayed with only its stand-ins' work scaled back, against a
hand-computed schedule and against the sum the K1N baseline's figures must equal."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from airflow_bottleneck.analysis import RunData, RunInfo, TaskGraph, analyze_run
from airflow_bottleneck.analysis.production import replay_production
from airflow_bottleneck.extension import ReportExtension
from k1n.dag_builders.workflow import build_baseline_dag
from k1n.reporting.extension import K1NExtension
from k1n.workflow.names import BASELINE_DAG_ID
from k1n.workflow.spec import HandlerKind, load_spec
from tests.airflow_bottleneck.analysis.helpers import at, dag_graph, instance, table
from tests.airflow_bottleneck.web.seed import TIME_SCALE, baseline_rows

DIAMOND = dag_graph(("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"))
# Offsets: start, its own code start, end. b is real work; a, c, d are stand-ins at 1/10.
MEASURED = {
    "a": (1.0, 1.5, 3.5),
    "b": (3.7, 4.0, 9.0),
    "c": (3.8, 4.0, 6.0),
    "d": (9.4, 9.5, 10.5),
}
RUN_END = 11.0


def spans() -> pd.DataFrame:
    return pd.DataFrame(
        {name: {"start": s, "code_start": c, "end": e} for name, (s, c, e) in MEASURED.items()}
    ).T


def test_the_replay_equals_a_hand_computed_schedule() -> None:
    replay = replay_production(DIAMOND, spans(), {"a", "c", "d"}, 0.1, 0.0, RUN_END)
    # a: head 1.0, start-up 0.5, work 2.0 / 0.1 = 20       -> 1.0 .. 21.5
    # b: 0.2 after a (measured 3.5 -> 3.7), 0.3 + 5.0 real  -> 21.7 .. 27.0
    # c: 0.3 after a, 0.2 + 2.0 / 0.1                        -> 21.8 .. 42.0
    # d: 0.4 after its last upstream (measured 9.0 -> 9.4), now c: 42.4 .. 52.5
    # wall: 52.5 + the measured tail 0.5.
    expected = {"a": (1.0, 21.5), "b": (21.7, 27.0), "c": (21.8, 42.0), "d": (42.4, 52.5)}
    got = {name: (task.start, task.end) for name, task in replay.tasks.items()}
    assert got.keys() == expected.keys()
    for name, bounds in expected.items():
        assert got[name] == pytest.approx(bounds), name
    assert replay.wall_seconds == pytest.approx(53.0)
    # Measured, a -> b -> d decided the wall; in production the stand-in c does.
    assert replay.path == ("a", "c", "d")
    parts = sum(
        replay.tasks[t].handoff + replay.tasks[t].startup + replay.tasks[t].work
        for t in replay.path
    )
    assert parts + replay.tail_seconds == pytest.approx(replay.wall_seconds)


def test_at_time_scale_one_the_replay_is_the_run() -> None:
    replay = replay_production(DIAMOND, spans(), {"a", "b", "c", "d"}, 1.0, 0.0, RUN_END)
    for name, (start, _, end) in MEASURED.items():
        assert (replay.tasks[name].start, replay.tasks[name].end) == pytest.approx((start, end))
    assert replay.wall_seconds == pytest.approx(RUN_END)


class RealB(ReportExtension):
    """Every task but `b` is a stand-in."""

    def stand_in(self, task_id: str, number: int | None) -> bool:
        return task_id != "b"


def test_the_report_carries_the_replay() -> None:
    rows = [
        instance(name, start, end, code_start=at(code))
        for name, (start, code, end) in MEASURED.items()
    ]
    info = RunInfo(
        dag_id="dag", run_id="run", state="success", start=at(0), end=at(RUN_END), time_scale=0.1
    )
    report = analyze_run(RunData(info, table(*rows), DIAMOND), RealB())
    production = report.production
    assert production.wall_seconds == pytest.approx(53.0)
    assert production.stand_in_tasks == ["a", "c", "d"]
    assert [step.task for step in production.critical_path] == ["a", "c", "d"]
    b = report.task("b")
    assert (b.stand_in, b.production_seconds) == (False, pytest.approx(5.3))
    assert report.task("c").production_seconds == pytest.approx(20.2)
    # Every task's start-up plus its (scaled) work: 20.5 + 5.3 + 20.2 + 10.1.
    assert production.total_task_seconds == pytest.approx(56.1)


def test_the_k1n_baselines_production_wall_is_its_stand_ins_real_work_and_hand_offs() -> None:
    spec = load_spec()
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    rows = baseline_rows(spec, start)
    frame = pd.DataFrame(
        [
            {"dag_id": BASELINE_DAG_ID, "run_id": "r", **row}
            for row in (
                {k: r[k] for k in ("task_id", "map_index", "try_number", "state", "queued")}
                | {"start": r["start"], "end": r["end"], "code_start": r["code_start"]}
                for r in rows
            )
        ]
    )
    info = RunInfo(
        dag_id=BASELINE_DAG_ID,
        run_id="r",
        state="success",
        start=pd.Timestamp(start),
        end=pd.Timestamp(rows[-1]["end"]),
        time_scale=TIME_SCALE,
    )
    report = analyze_run(
        RunData(info, frame, TaskGraph.from_dag(build_baseline_dag())), K1NExtension(spec)
    )
    stand_ins = {t.airflow_task_id for t in spec.tasks if t.handler is HandlerKind.PROFILE}
    # What the issue asks the figure to be: each stand-in's work scaled back, every real
    # task's seconds and every start-up and hand-off as measured (one after another).
    expected = 0.0
    clock = start
    for row in rows:
        seconds = (row["end"] - row["start"]).total_seconds()
        startup = (row["code_start"] - row["start"]).total_seconds()
        work = seconds - startup
        expected += (row["start"] - clock).total_seconds() + startup
        expected += work / TIME_SCALE if row["task_id"] in stand_ins else work
        clock = row["end"]
    assert set(report.production.stand_in_tasks) == stand_ins
    assert report.production.wall_seconds == pytest.approx(expected, abs=0.01)
    # And it is not the measured wall ÷ scale, which inflates the real work sixty-fold.
    assert report.production.wall_seconds < report.wall_seconds / TIME_SCALE


def test_a_task_that_did_not_run_passes_its_upstreams_ends_on() -> None:
    # a -> skipped -> b: a warm run's mapped task over nothing is skipped; b still waits for a.
    graph = dag_graph(("a", "skipped"), ("skipped", "b"))
    spans = pd.DataFrame(
        {
            "a": {"start": 0.5, "code_start": 0.5, "end": 2.5},
            "b": {"start": 2.8, "code_start": 2.8, "end": 3.8},
        }
    ).T
    replay = replay_production(graph, spans, {"a"}, 0.1, 0.0, 4.0)
    # a: 0.5 + 20; b: 0.3 after a's end (measured 2.5 -> 2.8), 1 s of real work; tail 0.2.
    assert (replay.tasks["b"].start, replay.tasks["b"].end) == pytest.approx((20.8, 21.8))
    assert replay.wall_seconds == pytest.approx(22.0)
    assert replay.path == ("a", "b")
