"""`analyze_run` on hand-built task-instance tables with known answers."""

from __future__ import annotations

import pytest

from include.k1n.analysis import AnalysisInputError, RunInfo, analyze_run
from include.k1n.workflow.spec import load_spec
from tests.include.k1n.analysis.helpers import (
    A,
    B,
    C,
    D,
    at,
    back_to_back,
    diamond_spec,
    instance,
    table,
)


@pytest.fixture(scope="module")
def diamond():
    return diamond_spec()


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def test_critical_path_and_slack_on_a_diamond(diamond) -> None:
    # A 10 s, then B 30 s and C 20 s in parallel, then D 5 s.
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)),
        diamond,
    )
    assert report.critical_path.nodes == (A, B, D)
    assert report.critical_path.spec_ids == (1, 2, 4)
    assert report.critical_path.seconds == pytest.approx(45)
    slack = {node.node: node.slack for node in report.nodes}
    assert slack == pytest.approx({A: 0, B: 0, C: 30 - 20, D: 0})
    assert [node.node for node in report.nodes if node.critical] == [A, B, D]
    c = report.node(C)
    assert (c.earliest_start, c.latest_start) == pytest.approx((10, 20))


def test_measured_order_does_not_create_dependencies(diamond) -> None:
    # C ran after B (a sequential run); C still is not on the path and keeps its slack.
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 40, 60), instance(D, 60, 65)),
        diamond,
    )
    assert report.critical_path.nodes == (A, B, D)
    assert report.node(C).slack == pytest.approx(10)


def test_wall_total_and_shares_sorted_descending(diamond) -> None:
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)),
        diamond,
    )
    assert report.wall_seconds == pytest.approx(45)
    assert report.total_task_seconds == pytest.approx(65)
    assert [(t.task, t.spec_id) for t in report.tasks] == [(B, 2), (C, 3), (A, 1), (D, 4)]
    assert report.tasks[0].share == pytest.approx(30 / 65)
    assert sum(t.share for t in report.tasks) == pytest.approx(1)
    assert [t.task for t in report.over_10_percent] == [B, C, A]


def test_overhead_from_known_gaps(diamond) -> None:
    # Run 0..50; A starts 1 s late; B and D each start 1 s after their predecessor; C starts
    # 0.5 s after A; the run ends 2 s after D. Every task was queued 0.2 s before it started.
    rows = [
        instance(A, 1, 11, queued=at(0.8)),
        instance(B, 12, 42, queued=at(11.8)),
        instance(C, 11.5, 31.5, queued=at(11.3)),
        instance(D, 43, 48, queued=at(42.8)),
    ]
    info = RunInfo(dag_id="dag", run_id="run", start=at(0), end=at(50))
    report = analyze_run(table(*rows), diamond, info)
    overhead = report.overhead
    assert report.wall_seconds == pytest.approx(50)
    # Nothing ran during 0-1, 11-11.5, 42-43 and 48-50.
    assert overhead.busy_seconds == pytest.approx(45.5)
    assert overhead.idle_seconds == pytest.approx(4.5)
    assert report.as_dict()["overhead_seconds"] == pytest.approx(4.5)
    assert overhead.queue_wait_seconds == pytest.approx(0.8)
    assert overhead.run_start_gap_seconds == pytest.approx(1)
    assert overhead.run_end_gap_seconds == pytest.approx(2)
    # Along A -> B -> D: head 1 + 1 + 1 + tail 2, all hand-offs, nothing serialized.
    gaps = [(w.after, w.before, w.gap_seconds) for w in report.critical_path.waits]
    assert gaps == [(None, A, 1.0), (A, B, 1.0), (B, D, 1.0), (D, None, 2.0)]
    assert overhead.critical_path_seconds == pytest.approx(5)
    assert overhead.critical_path_serialized_seconds == 0
    # The path's durations plus its waits are the wall time.
    assert report.critical_path.seconds + overhead.critical_path_seconds == pytest.approx(50)


def test_waits_behind_independent_tasks_are_serialized_not_overhead(diamond) -> None:
    # Sequential: A, B, C, D with 1 s hand-offs. D waits for C, which ran wholly in B -> D's gap.
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 11, 41), instance(C, 42, 62), instance(D, 63, 68)),
        diamond,
    )
    b_to_d = report.critical_path.waits[2]
    assert (b_to_d.after, b_to_d.before) == (B, D)
    assert b_to_d.gap_seconds == pytest.approx(22)
    assert b_to_d.serialized_seconds == pytest.approx(20)
    assert b_to_d.handoff_seconds == pytest.approx(2)
    assert report.overhead.critical_path_seconds == pytest.approx(3)
    assert report.overhead.idle_seconds == pytest.approx(3)


def test_mapped_task_rolls_up_count_sum_max_skew(diamond) -> None:
    mapped = [
        instance(B, 10, 10 + seconds, map_index=index)
        for index, seconds in enumerate([2.0, 4.0, 6.0, 8.0])
    ]
    report = analyze_run(
        table(instance(A, 0, 10), *mapped, instance(C, 10, 15), instance(D, 18, 20)),
        diamond,
    )
    (rollup,) = report.mapped
    assert (rollup.task, rollup.spec_id, rollup.count) == (B, 2, 4)
    assert (rollup.sum_seconds, rollup.max_seconds, rollup.mean_seconds) == (20, 8, 5)
    assert rollup.skew == pytest.approx(8 / 5)
    assert rollup.indexes["map_index"].tolist() == [0, 1, 2, 3]
    assert rollup.indexes["seconds"].tolist() == [2, 4, 6, 8]
    b = next(t for t in report.tasks if t.task == B)
    assert (b.seconds, b.instances, b.mapped) == (20, 4, True)
    # On the spec level the mapped task is one node spanning its indexes: 10 -> 18.
    assert report.node(B).duration == pytest.approx(8)
    assert report.as_dict()["mapped"][0]["indexes"][3] == {
        "map_index": 3,
        "try_number": 1,
        "state": "success",
        "seconds": 8.0,
        "start_offset": 10.0,
        "end_offset": 18.0,
    }


def test_a_group_of_stages_is_one_spec_node(spec) -> None:
    group = "task_08_code_generation"
    rows = [
        instance("task_07_pattern_library", 0, 10),
        instance(f"{group}.parse_library", 11, 13),
        instance(f"{group}.generate_code", 14, 16, map_index=0),
        instance(f"{group}.generate_code", 14, 17, map_index=1),
        instance(f"{group}.compile_code", 18, 20),
        instance(f"{group}.write_outputs", 21, 22),
    ]
    report = analyze_run(table(*rows), spec)
    node = report.node_for_spec(8)
    assert node is not None and node.node == group
    assert (node.duration, node.work_seconds, node.instances) == (11, 10, 5)
    # Inside the group: 13-14, 17-18 and 20-21 with nothing running.
    assert node.internal_gap == pytest.approx(3)
    assert {t.task: t.spec_id for t in report.tasks}[f"{group}.compile_code"] == 8


def test_final_try_counts_and_earlier_tries_stay_in_detail(diamond) -> None:
    rows = [
        instance(A, 0, 10),
        instance(B, 10, 15, try_number=1, state="failed"),
        instance(B, 20, 50, try_number=2),
        instance(C, 10, 20),
        instance(D, 50, 55),
    ]
    report = analyze_run(table(*rows), diamond)
    b = next(t for t in report.tasks if t.task == B)
    assert (b.seconds, b.tries, b.retry_seconds, b.state) == (30, 2, 5, "success")
    assert report.total_task_seconds == pytest.approx(10 + 30 + 10 + 5)
    assert report.overhead.retry_seconds == pytest.approx(5)
    tries = [row for row in report.as_dict()["instances"] if row["task"] == B]
    assert [(r["try_number"], r["final"], r["state"]) for r in tries] == [
        (1, False, "failed"),
        (2, True, "success"),
    ]


def test_what_if_of_a_sequential_diamond_is_a_plus_max_b_c_plus_d(diamond) -> None:
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 40, 60), instance(D, 60, 65)),
        diamond,
    )
    chances = report.opportunities
    assert report.wall_seconds == pytest.approx(65)
    assert chances.what_if_seconds == pytest.approx(10 + max(30, 20) + 5)
    assert chances.what_if_with_overhead_seconds == pytest.approx(45)
    assert chances.saving_seconds(report.wall_seconds) == pytest.approx(20)
    assert [(p.first, p.then, p.saving_max_seconds) for p in chances.pairs] == [(B, C, 20)]


def test_what_if_adds_the_measured_hand_off_per_hop(diamond) -> None:
    # 1 s between every task: two hops on A -> B -> D add 2 s.
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 11, 41), instance(C, 42, 62), instance(D, 63, 68)),
        diamond,
    )
    assert report.overhead.per_hop_seconds == pytest.approx(1)
    assert report.opportunities.hops == 2
    assert report.opportunities.what_if_with_overhead_seconds == pytest.approx(47)


def test_no_opportunity_when_independent_tasks_overlapped(diamond) -> None:
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)),
        diamond,
    )
    assert report.opportunities.pairs == ()


def test_targets_on_the_production_scale(spec) -> None:
    # At 1/60 a demo second is a production minute: 80 s wall -> 80 min, Task 8 9 s -> 9 min.
    rows = [instance("task_01_security_audit", 0, 71), instance("task_08_code_generation", 71, 80)]
    info = RunInfo(time_scale=1 / 60, pass_rate=0.96)
    targets = {t.key: t for t in analyze_run(table(*rows), spec, info).targets}
    assert targets["workflow_minutes_max"].actual == pytest.approx(80)
    assert targets["workflow_minutes_max"].met is True
    assert targets["workflow_minutes_goal"].met is False
    assert targets["task8_minutes_max"].actual == pytest.approx(9)
    assert targets["task8_minutes_max"].met is False
    assert targets["quality_gate_pass_rate_min"].met is True


def test_time_scale_override_and_unknown_pass_rate(spec) -> None:
    rows = [instance("task_01_security_audit", 0, 71), instance("task_08_code_generation", 71, 78)]
    report = analyze_run(table(*rows), spec, RunInfo(time_scale=1.0), time_scale=1 / 60)
    targets = {t.key: t for t in report.targets}
    assert report.time_scale == pytest.approx(1 / 60)
    assert targets["task8_minutes_max"].met is True  # 7 min < 8
    assert targets["quality_gate_pass_rate_min"].met is None
    assert targets["quality_gate_pass_rate_min"].verdict == "unknown"


def test_unknown_time_scale_is_one_with_a_note(diamond) -> None:
    report = analyze_run(table(instance(A, 0, 10)), diamond)
    assert report.time_scale == 1
    assert any("time scale unknown" in note for note in report.notes)
    assert any("never finished" in note for note in report.notes)


def test_task_8_missing_makes_its_target_unknown(diamond) -> None:
    report = analyze_run(table(instance(A, 0, 10)), diamond, RunInfo(time_scale=1))
    assert {t.key: t.met for t in report.targets}["task8_minutes_max"] is None


def test_back_to_back_reference_run(spec) -> None:
    report = analyze_run(back_to_back(spec), spec, RunInfo(time_scale=1))
    assert report.wall_seconds == report.total_task_seconds == 7800
    assert report.critical_path.seconds == pytest.approx(spec.critical_path_seconds)
    assert [t.spec_id for t in report.over_10_percent] == [8]
    # Every second of wall time the parallel schedule saves was serialization on the path.
    assert report.overhead.critical_path_serialized_seconds == pytest.approx(7800 - 4620)
    assert report.opportunities.what_if_with_overhead_seconds == pytest.approx(4620)


def test_quality_gates_task_ends_the_critical_path(diamond) -> None:
    rows = [
        instance(A, 0, 10),
        instance(B, 10, 40),
        instance(C, 10, 30),
        instance(D, 40, 45),
        instance("check_quality_gates", 46, 47),
    ]
    report = analyze_run(table(*rows), diamond)
    assert report.critical_path.nodes == (A, B, D, "check_quality_gates")
    assert next(t for t in report.tasks if t.task == "check_quality_gates").spec_id is None


def test_tasks_outside_the_spec_count_in_totals_only(diamond) -> None:
    report = analyze_run(table(instance(A, 0, 10), instance("cleanup", 10, 12)), diamond)
    assert report.total_task_seconds == 12
    assert "cleanup" not in report.critical_path.nodes
    assert any("cleanup" in note for note in report.notes)


def test_run_bounds_from_the_run_and_from_the_instances(diamond) -> None:
    rows = [instance(A, 2, 10, queued=at(1)), instance(B, 10, 20)]
    assert analyze_run(table(*rows), diamond).wall_seconds == pytest.approx(19)
    info = RunInfo(start=at(0), end=at(25))
    assert analyze_run(table(*rows), diamond, info).wall_seconds == pytest.approx(25)


def test_a_table_of_several_runs_needs_the_run_named(diamond) -> None:
    rows = table(instance(A, 0, 10, run_id="r1"), instance(A, 0, 12, run_id="r2"))
    with pytest.raises(AnalysisInputError, match="2 runs"):
        analyze_run(rows, diamond)
    report = analyze_run(rows, diamond, RunInfo(dag_id="dag", run_id="r2"))
    assert report.total_task_seconds == 12


def test_no_finished_instance_is_an_input_error(diamond) -> None:
    rows = table({"task_id": A, "state": "scheduled", "start": None, "end": None})
    with pytest.raises(AnalysisInputError, match="no task instance"):
        analyze_run(rows, diamond)


def test_as_dict_has_the_documented_keys(diamond) -> None:
    report = analyze_run(
        table(instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)),
        diamond,
    )
    document = report.as_dict()
    for key in (
        "wall_seconds",
        "total_task_seconds",
        "tasks",
        "critical_path",
        "over_10_percent",
        "overhead_seconds",
        "overhead",
        "opportunities",
        "targets",
        "nodes",
        "mapped",
        "instances",
    ):
        assert key in document
    assert set(document["tasks"][0]) >= {"task", "seconds", "share", "spec_id"}
    assert document["critical_path"]["tasks"] == [A, B, D]
    assert "instances" not in report.as_dict(detail=False)
