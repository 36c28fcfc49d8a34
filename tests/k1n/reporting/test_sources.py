"""Loaders: Airflow REST JSON (and the API itself), old profile directories, Conductor."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from airflow_bottleneck.analysis import AnalysisInputError
from k1n.readers import (
    fetch_airflow_run,
    legacy_summary,
    load_conductor,
    load_profiles,
    run_from_airflow_json,
    run_from_conductor,
    write_legacy_summary,
)
from k1n.readers.conductor import spec_id_from_reference
from k1n.reporting.extension import K1NExtension
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    BASE,
    FIXTURES,
    FakeAirflow,
    fixture,
    reference_profiles,
    rest_tasks,
    write_profile,
)

OPTIMIZED = ("k1n_22task_optimized", "manual__2026-11-25T20:00:00+00:00")


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def optimized_tasks():
    from k1n.dag_builders.workflow import build_optimized_dag

    return rest_tasks(build_optimized_dag())


@pytest.fixture(scope="module")
def airflow_doc():
    return fixture("airflow_optimized_run.json")


# -- Airflow ------------------------------------------------------------------------------------


def test_airflow_json_rolls_up_mapped_and_retried_tasks(spec, airflow_doc) -> None:
    data = run_from_airflow_json(
        airflow_doc["dag_run"],
        airflow_doc["task_instances"],
        quality=airflow_doc["xcom"],
        extension=K1NExtension(spec),
    )
    assert (data.info.dag_id, data.info.run_id) == OPTIMIZED
    assert data.info.time_scale == pytest.approx(1 / 60)
    assert data.info.pass_rate == pytest.approx(0.968182)
    report = data.analyze(K1NExtension(spec), detail=True)

    (rollup,) = report.mapped
    assert rollup.task == "task_08_code_generation.generate_code"
    assert (rollup.count, rollup.sum_seconds, rollup.max_seconds) == (4, 6.0, 2.0)
    assert rollup.skew == pytest.approx(2.0 / 1.5, rel=1e-3)
    assert [index.map_index for index in rollup.indexes.rows()] == [0, 1, 2, 3]

    retried = next(t for t in report.tasks if t.task == "task_13_performance_benchmarks")
    assert (retried.seconds, retried.tries, retried.retry_seconds) == (8.0, 2, 2.0)
    detail = [r for r in report.instances.rows() if r.task == retried.task]
    assert [(r.try_number, r.state, r.final) for r in detail] == [
        (1, "failed", False),
        (2, "success", True),
    ]

    # Without the DAG's task list the graph is the spec's, and the report says so. Task 8's
    # five stages are one spec task spanning parse -> write: 13.02 s of real work, which
    # production figures keep as measured (not 13 min, as ÷ 1/60 would make it).
    assert report.graph_source == "spec"
    assert report.critical_path.tasks[-1] == "check_quality_gates"
    task8 = {t.key: t.actual for t in report.targets}["task8_minutes_max"]
    assert task8 == pytest.approx(13.02 / 60, abs=1e-3)
    wall = {t.key: t.actual for t in report.targets}["workflow_minutes_max"]
    assert wall == pytest.approx(report.production.wall_minutes, abs=1e-3)
    targets = {t.key: t.met for t in report.targets}
    assert targets == {
        "workflow_minutes_max": True,
        "workflow_minutes_goal": wall <= 60,
        "task8_minutes_max": True,
        "quality_gate_pass_rate_min": True,
    }


@pytest.mark.parametrize(
    ("entry", "rate"),
    [
        ({"value": {"pass_rate": 0.97}}, 0.97),
        ({"value": json.dumps({"pass_rate": 0.5})}, 0.5),
        ({"value": {"__classname__": "builtins.dict", "__data__": {"pass_rate": 1.0}}}, 1.0),
        ({"pass_rate": 0.96}, 0.96),
        ({"value": "not json"}, None),
        ({"value": {"pass_rate": 7}}, None),
        (None, None),
    ],
)
def test_pass_rate_from_the_quality_gates_xcom(entry, rate) -> None:
    assert K1NExtension().pass_rate(entry, []) == rate


def test_airflow_json_with_bad_shapes_is_an_input_error(airflow_doc) -> None:
    with pytest.raises(AnalysisInputError, match="no 'task_id'"):
        run_from_airflow_json(airflow_doc["dag_run"], [{"state": "success"}])
    with pytest.raises(AnalysisInputError, match="JSON object"):
        run_from_airflow_json([], [])
    with pytest.raises(AnalysisInputError, match="start_date"):
        run_from_airflow_json({"start_date": "soon"}, [])


def test_api_source_pages_fetches_tries_and_the_quality_xcom(spec, airflow_doc) -> None:
    document = copy.deepcopy(airflow_doc)
    template = next(ti for ti in document["task_instances"] if ti["map_index"] == 0)
    # 150 extra map indexes: more than one page of 100.
    document["task_instances"] += [{**template, "map_index": i} for i in range(4, 154)]
    first = document["task_instances"][0]
    started = pd.Timestamp(first["start_date"]).timestamp()
    document["code_starts"] = {f"{first['task_id']}|-1": started + 0.75}
    fake = FakeAirflow({OPTIMIZED: document}, dags={OPTIMIZED[0]: optimized_tasks()})
    data = fetch_airflow_run(
        "http://airflow.test", "admin", "secret", *OPTIMIZED, transport=fake.transport()
    )
    pages = [path for method, path in fake.requests if path.endswith("/taskInstances")]
    assert len(pages) == 2
    assert any(path.endswith("/task_13_performance_benchmarks/tries") for _, path in fake.requests)
    assert data.info.pass_rate == pytest.approx(0.968182)
    report = data.analyze(K1NExtension(spec), detail=True)
    assert report.graph_source == "dag"  # the DAG's own task list
    assert report.mapped[0].count == 154
    assert report.task("task_13_performance_benchmarks").tries == 2
    assert len(report.instances) == len(document["task_instances"])
    assert report.task(first["task_id"]).startup_seconds == pytest.approx(0.75, abs=1e-3)


def test_api_source_without_quality_xcom_leaves_pass_rate_unknown(airflow_doc) -> None:
    document = {**airflow_doc, "xcom": None}
    fake = FakeAirflow({OPTIMIZED: document}, dags={OPTIMIZED[0]: optimized_tasks()})
    data = fetch_airflow_run(
        "http://airflow.test", "a", "secret", *OPTIMIZED, transport=fake.transport()
    )
    assert data.info.pass_rate is None


@pytest.mark.parametrize(
    ("password", "run", "message"),
    [
        ("wrong", OPTIMIZED, "HTTP 401"),
        ("secret", ("k1n_22task_optimized", "nope"), "unknown run k1n_22task_optimized/nope"),
        ("secret", ("no_such_dag", "r"), "unknown run no_such_dag/r"),
    ],
)
def test_api_source_errors_are_one_line(airflow_doc, password, run, message) -> None:
    fake = FakeAirflow({OPTIMIZED: airflow_doc})
    with pytest.raises(AnalysisInputError, match=message) as caught:
        fetch_airflow_run(
            "http://airflow.test", "admin", password, *run, transport=fake.transport()
        )
    assert "\n" not in str(caught.value)


def test_api_source_unreachable_and_invalid_urls() -> None:
    with pytest.raises(AnalysisInputError, match="cannot reach Airflow"):
        fetch_airflow_run("http://127.0.0.1:9", "admin", "secret", "d", "r", timeout=2)
    with pytest.raises(AnalysisInputError, match="Airflow"):
        fetch_airflow_run("no-scheme", "admin", "secret", "d", "r")


# -- old profiles -------------------------------------------------------------------------------


def test_reference_profiles_load_back_to_back(tmp_path: Path, spec) -> None:
    data = load_profiles(reference_profiles(tmp_path / "profiles", spec), spec)
    assert data.info.time_scale == 1
    report = data.analyze(K1NExtension(spec))
    assert report.wall_seconds == report.total_task_seconds == 7800
    assert report.tasks[0].task == "task_08_code_generation"
    assert report.tasks[0].seconds == 900
    assert report.tasks[0].share == pytest.approx(900 / 7800, rel=1e-5)
    # The old runner ran the tasks one after another: that chain is the graph that ran.
    assert report.graph_source == "execution"
    assert report.critical_path.share_of_wall == pytest.approx(1)


def test_newest_timestamped_profile_wins(tmp_path: Path, spec) -> None:
    write_profile(tmp_path, 1, BASE, 300)
    write_profile(tmp_path, 1, BASE, 100, name="20261101_080000")
    write_profile(tmp_path, 1, BASE, 200, name="20261102_080000")
    write_profile(tmp_path, 2, BASE + timedelta(seconds=300), 240)
    (tmp_path / "summary.json").write_text("{}")  # other files are ignored
    report = load_profiles(tmp_path, spec).analyze(K1NExtension(spec))
    seconds = {t.spec_id: t.seconds for t in report.tasks}
    assert seconds == {1: 200, 2: 240}


def test_a_failed_exit_code_is_a_failed_task(tmp_path: Path, spec) -> None:
    write_profile(tmp_path, 1, BASE, 300, exit_code=3)
    data = load_profiles(tmp_path, spec)
    assert data.info.state == "failed"
    assert data.analyze(K1NExtension(spec)).tasks[0].state == "failed"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"task_id": 1}), "missing start_time, end_time, duration_ms, exit_code"),
        (
            json.dumps(
                {
                    "task_id": 2,
                    "start_time": "2026-11-01T08:00:00Z",
                    "end_time": "2026-11-01T08:05:00Z",
                    "duration_ms": 1,
                    "exit_code": 0,
                }
            ),
            "does not match the file name",
        ),
        (
            json.dumps(
                {
                    "task_id": 1,
                    "start_time": "2026-11-01T08:05:00Z",
                    "end_time": "2026-11-01T08:00:00Z",
                    "duration_ms": 1,
                    "exit_code": 0,
                }
            ),
            "is before start_time",
        ),
        (
            json.dumps(
                {
                    "task_id": 1,
                    "start_time": "yesterday",
                    "end_time": "2026-11-01T08:00:00Z",
                    "duration_ms": 1,
                    "exit_code": 0,
                }
            ),
            "not ISO-8601",
        ),
    ],
)
def test_bad_profiles_are_one_line_errors(tmp_path: Path, spec, content, message) -> None:
    (tmp_path / "task-1-profile.json").write_text(content)
    with pytest.raises(AnalysisInputError, match=message) as caught:
        load_profiles(tmp_path, spec)
    assert "\n" not in str(caught.value)
    assert "task-1-profile.json" in str(caught.value)


def test_missing_and_empty_profile_directories(tmp_path: Path, spec) -> None:
    with pytest.raises(AnalysisInputError, match="not found"):
        load_profiles(tmp_path / "missing", spec)
    with pytest.raises(AnalysisInputError, match=r"no task-<id>-profile\.json"):
        load_profiles(tmp_path, spec)


def test_legacy_summary_keeps_the_old_fields(tmp_path: Path, spec) -> None:
    report = load_profiles(reference_profiles(tmp_path / "p", spec), spec).analyze(
        K1NExtension(spec)
    )
    summary = legacy_summary(report)
    assert summary == {
        "total_duration_ms": 7_800_000,
        "total_duration_min": 130.0,
        "task_count": 22,
        "slowest_task": {"task_id": 8, "duration_ms": 900_000, "percentage": 11.5},
        "critical_path_tasks": [{"task_id": 8, "duration_ms": 900_000, "percentage": 11.5}],
    }
    path = write_legacy_summary(report, tmp_path / "summary.json")
    assert json.loads(path.read_text()) == summary


# -- Conductor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "spec_id"),
    [
        ("task_08_code_generation", 8),
        ("task8", 8),
        ("Task-3-architecture", 3),
        ("task05_security_review", 5),
        ("testing_setup_4", 4),
        ("phase2_fork", 2),
        ("notify_team", None),
        ("task_99_unknown", None),
    ],
)
def test_spec_id_from_a_reference_name(name: str, spec_id: int | None, spec) -> None:
    assert spec_id_from_reference(name, set(spec.by_id)) == spec_id


def test_conductor_execution_leaves_out_fork_join_and_other_bookkeeping(spec) -> None:
    data = load_conductor(FIXTURES / "conductor_execution.json", spec)
    report = data.analyze(K1NExtension(spec))
    names = {t.task for t in report.tasks}
    assert not names & {"phase1_fork", "phase1_join", "phase2_fork", "phase2_join", "adr_needed"}
    assert "done" not in names
    assert {t.task: t.spec_id for t in report.tasks} == {
        "task_01_security_audit": 1,
        "task2_buffer_bounds": 2,
        "Task-3-architecture": 3,
        "testing_setup_4": 4,
        "task05_security_review": 5,
        "task_06_design_adr": 6,
        "task_07_pattern_library": 7,
        "task8_code_generation": 8,
        "task_09_unit_tests": 9,
        "notify_team": None,
    }
    # The last try of task 9 (240 s) counts; the failed 60 s one is detail.
    unit_tests = next(t for t in report.tasks if t.spec_id == 9)
    assert (unit_tests.seconds, unit_tests.tries, unit_tests.retry_seconds) == (240, 2, 60)
    assert report.total_task_seconds == pytest.approx(300 + 240 + 3 * 300 + 600 + 720 + 900 + 241)
    assert report.wall_seconds == pytest.approx(3185)
    assert report.tasks[0].task == "task8_code_generation"
    assert any("6 Conductor control-flow task(s) left out" in n for n in report.notes)
    # Tasks 1 and 2 overlapped in the fork: no missed parallelism between them.
    assert not any(
        {p.first, p.then} == {"task_01_security_audit", "task_02_buffer_bounds"}
        for p in report.what_if.pairs
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"workflowId": "w"}, "no 'tasks' list"),
        ({"workflowId": "w", "tasks": [{"taskType": "SIMPLE"}]}, "no referenceTaskName"),
        ({"workflowId": "w", "tasks": [{"referenceTaskName": "f", "taskType": "FORK"}]}, "no work"),
        (
            {"tasks": [{"referenceTaskName": "task1", "startTime": "noon", "endTime": 5}]},
            "epoch milliseconds",
        ),
        (
            {"tasks": [{"referenceTaskName": "task1", "startTime": 10, "endTime": 5}]},
            "ends before it starts",
        ),
    ],
)
def test_bad_conductor_documents(document, message, spec) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        run_from_conductor(document, spec).analyze(K1NExtension(spec))


def test_conductor_file_errors(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError, match="file not found"):
        load_conductor(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AnalysisInputError, match="malformed JSON"):
        load_conductor(tmp_path / "bad.json")
