"""`analyze_run` on hand-built runs with known answers: the DAG's own graph, the overhead
split that adds up to the wall time, start-ups, skipped and partial runs, the spec's what-if."""

from __future__ import annotations

import pytest

from airflow_bottleneck.analysis import AnalysisInputError
from airflow_bottleneck.analysis.analyze import NEAR_CRITICAL_SHARE
from airflow_bottleneck.analysis.model import InstanceColumns, MappedIndexColumns
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    A,
    B,
    C,
    D,
    analyze,
    at,
    back_to_back,
    chain_graph,
    dag_graph,
    diamond_spec,
    instance,
    table,
)

DIAMOND = dag_graph((A, B), (A, C), (B, D), (C, D))


@pytest.fixture(scope="module")
def diamond():
    return diamond_spec()


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def parts_sum(report) -> float:
    split = report.overhead
    return (
        split.work_seconds
        + split.startup_seconds
        + split.handoff_seconds
        + split.waiting_seconds
        + split.residual_seconds
    )


def test_critical_path_and_slack_in_the_dags_own_graph(diamond) -> None:
    # A 10 s, then B 30 s and C 20 s in parallel, then D 5 s.
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)]
    report = analyze(rows, diamond, DIAMOND)
    assert report.graph_source == "dag"
    assert report.critical_path.tasks == [A, B, D]
    assert report.critical_path.seconds == pytest.approx(45)
    slack = {task.task: task.slack_seconds for task in report.tasks}
    assert slack == pytest.approx({A: 0, B: 0, C: 10, D: 0})
    assert [t.task for t in report.tasks if t.critical] == [B, A, D]  # longest first
    assert report.near_critical_margin_seconds == pytest.approx(45 * NEAR_CRITICAL_SHARE)
    assert not report.task(C).near_critical


def test_a_task_within_the_margin_is_near_critical(diamond) -> None:
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 39), instance(D, 40, 45)]
    report = analyze(rows, diamond, DIAMOND)
    c = report.task(C)
    assert (c.critical, c.near_critical, c.slack_seconds) == (False, True, pytest.approx(1))


def test_the_sequential_baselines_path_is_its_chain(diamond) -> None:
    # The baseline DAG runs A, B, C, D one after another with 1 s hand-offs. Its own graph is
    # that chain, so the chain decides the wall time; the spec's declared diamond would say
    # A -> B -> D and leave C's 20 s and two hand-offs unexplained.
    rows = [instance(A, 0, 10), instance(B, 11, 41), instance(C, 42, 62), instance(D, 63, 68)]
    report = analyze(rows, diamond, chain_graph(A, B, C, D))
    path = report.critical_path
    assert path.tasks == [A, B, C, D]
    assert path.seconds == pytest.approx(65)
    assert path.span_seconds == pytest.approx(68)
    assert path.share_of_wall >= 0.95
    declared = analyze(rows, diamond)  # no graph: the spec's, labelled so
    assert declared.graph_source == "spec"
    assert declared.critical_path.tasks == [A, B, D]
    assert any("declared dependencies" in note for note in declared.notes)


def test_overhead_parts_add_up_to_the_wall_time(diamond) -> None:
    # Run 0..50. A starts 1 s late and its code 0.5 s after that; B and D start 1 s after
    # their predecessor; the run ends 2 s after D. Queued 0.2 s before each start.
    rows = [
        instance(A, 1, 11, queued=at(0.8), code_start=at(1.5)),
        instance(B, 12, 42, queued=at(11.8), code_start=at(13)),
        instance(C, 11.5, 31.5, queued=at(11.3)),
        instance(D, 43, 48, queued=at(42.8), code_start=at(43.2)),
    ]
    report = analyze(rows, diamond, DIAMOND, start=at(0), end=at(50), state="success")
    split = report.overhead
    assert report.wall_seconds == pytest.approx(50)
    assert split.work_seconds == pytest.approx(9.5 + 29 + 4.8)
    assert split.startup_seconds == pytest.approx(0.5 + 1 + 0.2)
    assert split.handoff_seconds == pytest.approx(1 + 1 + 1 + 2)  # three hops and the tail
    assert split.waiting_seconds == pytest.approx(0)
    assert split.residual_seconds == pytest.approx(0, abs=1e-3)
    assert parts_sum(report) == pytest.approx(50, rel=0.01)
    # Nothing at all ran during 0-1, 11-11.5, 42-43 and 48-50.
    assert split.idle_seconds == pytest.approx(4.5)
    assert split.queue_wait_seconds == pytest.approx(0.8)
    steps = [(s.task, s.handoff_seconds, s.startup_seconds) for s in report.critical_path.steps]
    assert steps == [(A, 1, 0.5), (B, 1, 1), (D, 1, 0.2)]
    assert report.critical_path.tail_seconds == pytest.approx(2)


def test_waiting_on_a_branch_off_the_path_is_its_own_part(diamond) -> None:
    # By duration B (30 s) outweighs C (25 s), but C started late and ended after B: D waited
    # 1 s on C, then 1 s for its hand-off.
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 16, 41), instance(D, 42, 45)]
    report = analyze(rows, diamond, DIAMOND, start=at(0), end=at(45), state="success")
    assert report.critical_path.tasks == [A, B, D]
    (d_step,) = [s for s in report.critical_path.steps if s.task == D]
    assert (d_step.waiting_seconds, d_step.handoff_seconds) == (1, 1)
    assert report.overhead.waiting_seconds == pytest.approx(1)
    assert parts_sum(report) == pytest.approx(45, rel=0.01)
    assert report.critical_path.share_of_wall == pytest.approx(44 / 45, abs=1e-4)


def test_start_up_is_not_charged_to_the_task(diamond) -> None:
    # A 5 s task whose process took 6 s to start: 11 s in Airflow, 5 s of its own work.
    rows = [instance(A, 0, 11, code_start=at(6))]
    report = analyze(rows, diamond, dag_graph(tasks=(A,)), state="success")
    a = report.task(A)
    assert (a.seconds, a.startup_seconds, a.work_seconds) == (11, 6, 5)
    assert report.overhead.startup_seconds == pytest.approx(6)
    assert report.overhead.work_seconds == pytest.approx(5)


def test_a_task_that_records_no_code_start_counts_as_work_with_a_note(diamond) -> None:
    report = analyze([instance(A, 0, 11)], diamond, dag_graph(tasks=(A,)))
    assert report.task(A).startup_seconds is None
    assert report.task(A).work_seconds == 11
    assert any("start-up not recorded" in note for note in report.notes)


def test_mapped_task_rolls_up_count_sum_max_skew(diamond) -> None:
    mapped = [
        instance(B, 10, 10 + seconds, map_index=index)
        for index, seconds in enumerate([2.0, 4.0, 6.0, 8.0])
    ]
    rows = [instance(A, 0, 10), *mapped, instance(C, 10, 15), instance(D, 18, 20)]
    report = analyze(rows, diamond, DIAMOND, detail=True)
    (rollup,) = report.mapped
    assert (rollup.task, rollup.count) == (B, 4)
    assert (rollup.sum_seconds, rollup.max_seconds, rollup.mean_seconds) == (20, 8, 5)
    assert rollup.skew == pytest.approx(8 / 5)
    assert [(i.map_index, i.seconds, i.end_offset) for i in rollup.indexes.rows()] == [
        (0, 2, 12),
        (1, 4, 14),
        (2, 6, 16),
        (3, 8, 18),
    ]
    b = report.task(B)
    assert (b.seconds, b.instances, b.mapped) == (20, 4, True)
    # In the graph the mapped task is one node spanning its indexes: 10 -> 18.
    assert report.critical_path.tasks == [A, B, D]
    assert report.critical_path.seconds == pytest.approx(10 + 8 + 2)


def test_a_skipped_mapped_task_says_why(spec) -> None:
    group = "task_08_code_generation"
    rows = [
        instance(f"{group}.parse_library", 0, 2),
        instance(f"{group}.generate_code", 2.5, 2.5, state="skipped"),
        instance(f"{group}.compile_code", 3, 4),
    ]
    graph = dag_graph(
        (f"{group}.parse_library", f"{group}.generate_code"),
        (f"{group}.generate_code", f"{group}.compile_code"),
        mapped=(f"{group}.generate_code",),
    )
    report = analyze(rows, spec, graph)
    generate = report.task(f"{group}.generate_code")
    assert generate.status == "skipped"
    assert "empty list" in generate.reason
    assert generate.slack_seconds is None and not generate.near_critical
    steps = {s.task: s.status for s in report.critical_path.steps}
    assert steps[f"{group}.generate_code"] == "skipped"
    assert generate.label == "8 Code Generation · generate_code"


def test_final_try_counts_and_earlier_tries_stay_in_detail(diamond) -> None:
    rows = [
        instance(A, 0, 10),
        instance(B, 10, 15, try_number=1, state="failed"),
        instance(B, 20, 50, try_number=2),
        instance(C, 10, 20),
        instance(D, 50, 55),
    ]
    report = analyze(rows, diamond, DIAMOND, detail=True)
    b = report.task(B)
    assert (b.seconds, b.tries, b.retry_seconds, b.state) == (30, 2, 5, "success")
    assert report.total_task_seconds == pytest.approx(10 + 30 + 10 + 5)
    assert report.overhead.retry_seconds == pytest.approx(5)
    tries = [row for row in report.instances.rows() if row.task == B]
    assert [(r.try_number, r.final, r.state) for r in tries] == [
        (1, False, "failed"),
        (2, True, "success"),
    ]
    # The JSON form is one list per column, every list as long as the rows; read back equal.
    columns = report.as_dict()["instances"]
    assert {len(column) for column in columns.values()} == {len(report.instances)} == {5}
    assert InstanceColumns.model_validate(columns) == report.instances


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="columns of different lengths"):
        MappedIndexColumns(
            map_index=[0, 1],
            try_number=[1],
            state=[None, None],
            seconds=[1.0, 2.0],
            start_offset=[0.0, 0.0],
            end_offset=[1.0, 2.0],
        )


def test_a_running_run_is_partial_up_to_when_it_was_observed(diamond) -> None:
    rows = [
        instance(A, 0, 10),
        instance(B, 10, None, state="running"),
        instance(C, 10, 30),
        {**instance(D, 0, None, state=None), "start": None},  # not scheduled yet
    ]
    observed = at(35).timestamp()
    report = analyze(rows, diamond, DIAMOND, state="running", start=at(0), observed_at=observed)
    assert report.partial
    assert report.wall_seconds == pytest.approx(35)
    assert report.task(B).status == "running"
    assert "still running" in report.task(B).reason
    assert (report.task(D).status, report.task(D).state) == ("not run", None)
    assert report.notes[0].startswith("the run is running: a partial report")
    assert report.as_dict()["partial"] is True


def test_declared_what_if_of_a_sequential_diamond(diamond) -> None:
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 40, 60), instance(D, 60, 65)]
    report = analyze(rows, diamond, chain_graph(A, B, C, D))
    what_if = report.what_if
    assert report.wall_seconds == pytest.approx(65)
    assert report.critical_path.seconds == pytest.approx(65)  # what ran: the chain
    assert what_if.seconds == pytest.approx(10 + max(30, 20) + 5)  # what could have
    assert what_if.path == [A, B, D]
    assert what_if.speedup == pytest.approx(65 / 45, rel=1e-3)
    assert [(p.first, p.then, p.saving_max_seconds) for p in what_if.pairs] == [(B, C, 20)]


def test_what_if_adds_the_measured_hand_off_per_hop(diamond) -> None:
    rows = [instance(A, 0, 10), instance(B, 11, 41), instance(C, 42, 62), instance(D, 63, 68)]
    report = analyze(rows, diamond, chain_graph(A, B, C, D))
    assert report.overhead.per_hop_seconds == pytest.approx(1)
    assert report.what_if.with_handoffs_seconds == pytest.approx(45 + 2)


def test_a_dag_outside_the_spec_has_no_what_if_and_no_targets(diamond) -> None:
    rows = [instance("extract", 0, 5), instance("load", 6, 9)]
    graph = dag_graph(("extract", "load"))
    report = analyze(rows, diamond, graph, uses_spec=False, dag_id="etl", run_id="r")
    assert report.what_if is None and report.targets == []
    assert report.critical_path.tasks == ["extract", "load"]
    assert {t.task: (t.label, t.spec_id) for t in report.tasks} == {
        "extract": ("extract", None),
        "load": ("load", None),
    }
    assert report.time_scale == 1
    assert not any("not spec tasks" in note for note in report.notes)


def test_targets_on_the_production_scale(spec) -> None:
    # At 1/60 a stand-in's demo second is a production minute; real work stays seconds.
    # Task 6 (stand-in) 50 s -> 50 min; Task 7 (real) 5 s after a 0.5 s hand-off; Task 8
    # (real) 9 s right after: 50 min + 14.5 s.
    rows = [
        instance("task_06_design_adr", 0, 50),
        instance("task_07_pattern_library", 50.5, 55.5),
        instance("task_08_code_generation", 55.5, 64.5),
    ]
    report = analyze(rows, spec, time_scale=1 / 60, pass_rate=0.96)
    targets = {t.key: t for t in report.targets}
    assert report.production.wall_seconds == pytest.approx(50 * 60 + 14.5)
    assert report.production.stand_in_tasks == ["task_06_design_adr"]
    assert targets["workflow_minutes_max"].actual == pytest.approx(50 + 14.5 / 60, abs=1e-4)
    assert targets["workflow_minutes_max"].met is True
    assert targets["workflow_minutes_goal"].met is True
    assert targets["task8_minutes_max"].actual == pytest.approx(9 / 60, abs=1e-4)
    assert targets["quality_gate_pass_rate_min"].met is True
    # A longer stand-in misses the goal: its minutes, not the real work's, grow with the scale.
    rows[0] = instance("task_06_design_adr", 0, 61)
    late = {t.key: t for t in analyze(rows, spec, time_scale=1 / 60).targets}
    assert late["workflow_minutes_goal"].met is False


def test_time_scale_override_and_unknown_pass_rate(spec) -> None:
    rows = [instance("task_01_security_audit", 0, 71), instance("task_08_code_generation", 71, 78)]
    report = analyze(rows, spec, time_scale=1.0, override_time_scale=1 / 60)
    targets = {t.key: t for t in report.targets}
    assert report.time_scale == pytest.approx(1 / 60)
    assert targets["workflow_minutes_max"].actual == pytest.approx(71)  # the stand-in's
    assert targets["task8_minutes_max"].met is True  # 7 s of real work
    assert targets["quality_gate_pass_rate_min"].met is None


def test_unknown_time_scale_is_one_with_a_note(diamond) -> None:
    report = analyze([instance(A, 0, 10)], diamond)
    assert report.time_scale == 1
    assert any("time scale unknown" in note for note in report.notes)


def test_back_to_back_reference_run(spec) -> None:
    report = analyze(back_to_back(spec), spec, time_scale=1)
    assert report.wall_seconds == report.total_task_seconds == 7800
    assert report.what_if.seconds == pytest.approx(spec.critical_path_seconds)
    assert [t.spec_id for t in report.over_10_percent] == [8]


def test_quality_gates_task_ends_the_declared_path(diamond) -> None:
    rows = [
        instance(A, 0, 10),
        instance(B, 10, 40),
        instance(C, 10, 30),
        instance(D, 40, 45),
        instance("check_quality_gates", 46, 47),
    ]
    report = analyze(rows, diamond)
    assert report.critical_path.tasks == [A, B, D, "check_quality_gates"]
    assert report.task("check_quality_gates").spec_id is None


def test_tasks_the_graph_does_not_know_stand_alone_with_a_note(diamond) -> None:
    report = analyze([instance(A, 0, 10), instance("cleanup", 10, 12)], diamond, DIAMOND)
    assert report.total_task_seconds == 12
    assert "cleanup" not in report.critical_path.tasks
    assert any("not in the DAG's graph" in note and "cleanup" in note for note in report.notes)


def test_run_bounds_from_the_run_and_from_the_instances(diamond) -> None:
    rows = [instance(A, 2, 10, queued=at(1)), instance(B, 10, 20)]
    assert analyze(rows, diamond).wall_seconds == pytest.approx(19)
    assert analyze(rows, diamond, start=at(0), end=at(25)).wall_seconds == pytest.approx(25)


def test_a_table_of_several_runs_needs_the_run_named(diamond) -> None:
    rows = table(instance(A, 0, 10, run_id="r1"), instance(A, 0, 12, run_id="r2"))
    with pytest.raises(AnalysisInputError, match="2 runs"):
        analyze(rows, diamond)
    assert analyze(rows, diamond, dag_id="dag", run_id="r2").total_task_seconds == 12


def test_no_finished_instance_is_an_input_error(diamond) -> None:
    rows = table({"task_id": A, "state": "scheduled", "start": None, "end": None})
    with pytest.raises(AnalysisInputError, match="no task instance"):
        analyze(rows, diamond)


def test_the_json_form_is_the_models(diamond) -> None:
    rows = [instance(A, 0, 10), instance(B, 10, 40), instance(C, 10, 30), instance(D, 40, 45)]
    report = analyze(rows, diamond, DIAMOND)
    document = report.as_dict()
    assert document["schema"] == "airflow-bottleneck.run-report/3"
    assert document["critical_path"]["tasks"] == [A, B, D]
    assert set(document["overhead"]) >= {"work_seconds", "startup_seconds", "handoff_seconds"}
    assert document["instances"] is None  # only with detail
    assert type(report).model_validate(document) == report
