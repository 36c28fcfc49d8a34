"""DAG integrity: every DAG file imports cleanly, fast, without DB or connections, and both
DAGs have exactly the structure the workflow spec declares."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseHook
from airflow.sdk.definitions.mappedoperator import MappedOperator

from airflow_bottleneck import scheduling
from k1n.dag_builders.nightly import (
    PLAN_TASK_ID,
    REPORT_TASK_ID,
    TRIGGER_TASK_ID,
    VERDICT_TASK_ID,
)
from k1n.dag_builders.workflow import _profile_ranks
from k1n.workflow.names import (
    BASELINE_DAG_ID,
    CLEAN_UP_TASK_ID,
    CODEGEN_STAGE_TASK_IDS,
    NIGHTLY_DAG_ID,
    OPTIMIZED_DAG_ID,
    QUALITY_GATES_TASK_ID,
    WEEKLY_BASELINE_DAG_ID,
)
from k1n.workflow.spec import CODEGEN_READERS, DEFAULT_SPEC_PATH, load_spec
from tests.conftest import PROJECT_DIR

DAG_FILES = sorted((PROJECT_DIR / "dags").glob("*.py"))
# What a DAG file must not import at parse time: the dag processor parses every file every
# 30 s, and these cost seconds (the analysis, pandas, networkx) or belong to task code.
HEAVY_AT_PARSE = ("pandas", "networkx", "airflow_bottleneck.analysis", "k1n.metrics.records")


def _no_network(*args, **kwargs):
    raise AssertionError("a DAG file opened a network connection at parse time")


def _no_connection(*args, **kwargs):
    raise AssertionError("a DAG file looked up an Airflow connection at parse time")


def parse(path: Path) -> DagBag:
    return DagBag(dag_folder=str(path), safe_mode=True)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(PROJECT_DIR / "dags"))


@pytest.fixture(scope="module")
def spec():
    return load_spec()


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[f.name for f in DAG_FILES])
def test_dag_file_imports_without_db_network_or_connections(dag_file):
    from airflow import settings
    from sqlalchemy import event

    queries: list[str] = []

    def record(conn, cursor, statement, *args):
        queries.append(statement)

    engine = settings.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with (
            mock.patch.object(socket.socket, "connect", _no_network),
            mock.patch.object(BaseHook, "get_connection", _no_connection),
        ):
            bag = parse(dag_file)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not bag.import_errors, bag.import_errors
    assert bag.dags, f"{dag_file.name} defines no DAG"
    assert queries == [], f"{dag_file.name} queried the metadata DB at parse time"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[f.name for f in DAG_FILES])
def test_dag_file_imports_nothing_heavy_at_parse_time(dag_file):
    """In a fresh interpreter with what a dag processor has loaded: parsing the file leaves
    none of `HEAVY_AT_PARSE` imported (the nightly DAG used to pull pandas in: +2.8 s)."""
    probe = (
        "import sys, airflow.sdk, airflow.models, airflow.serialization.serialized_objects\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(dag_file)!r})\n"
        "assert bag.dags and not bag.import_errors, bag.import_errors\n"
        f"print(sorted(m for m in {HEAVY_AT_PARSE!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", f"{dag_file.name}: {result.stdout}"


ALL_DAG_IDS = [BASELINE_DAG_ID, OPTIMIZED_DAG_ID, NIGHTLY_DAG_ID, WEEKLY_BASELINE_DAG_ID]


def test_every_dag_and_nothing_else(dagbag):
    assert not dagbag.import_errors
    assert sorted(dagbag.dag_ids) == sorted(ALL_DAG_IDS)


@pytest.mark.parametrize("dag_id", ALL_DAG_IDS)
def test_dag_conventions(dagbag, dag_id):
    """What every K1N DAG follows, workflow or nightly."""
    dag = dagbag.dags[dag_id]
    assert dag.catchup is False
    assert dag.start_date.tzinfo is not None
    assert "k1n" in dag.tags
    assert dag.doc_md and dag.doc_md.lstrip().startswith("###")
    assert "time_scale" in dag.params
    for task in dag.tasks:
        assert task.owner == "k1n-platform"
        assert task.doc_md, f"{task.task_id} has no doc"
        assert task.retries is not None
        # No task runs unbounded: a stuck one fails, retries and says so.
        assert task.execution_timeout is not None, f"{task.task_id} has no execution_timeout"
        assert task.execution_timeout.total_seconds() > 0


@pytest.mark.parametrize("dag_id", [BASELINE_DAG_ID, OPTIMIZED_DAG_ID])
def test_workflow_dag_conventions(dagbag, spec, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.schedule is None or dag.timetable.summary == "None"
    assert dag.max_active_runs >= spec.targets.concurrent_workflows >= 3
    for spec_task in spec.tasks:
        task = next(t for t in dag.tasks if t.task_id.startswith(spec_task.airflow_task_id))
        assert task.retries == spec_task.retries
        assert task.execution_timeout == timedelta(seconds=spec_task.timeout_seconds)
        assert task.retry_exponential_backoff


def test_baseline_is_the_old_sequential_order(dagbag, spec):
    dag = dagbag.dags[BASELINE_DAG_ID]
    order = [t.airflow_task_id for t in spec.tasks] + [QUALITY_GATES_TASK_ID]
    assert sorted(dag.task_ids) == sorted([*order, CLEAN_UP_TASK_ID])
    codegen = spec.task(8).airflow_task_id
    for upstream, downstream in itertools.pairwise(order):
        # The checks of Task 8's output also read its result (the snapshot id) directly.
        reads = {codegen} if spec.by_id.get(_spec_id(downstream)) in _readers(spec) else set()
        assert dag.get_task(downstream).upstream_task_ids == {upstream} | reads
    assert dag.get_task(order[0]).upstream_task_ids == set()


def _readers(spec):
    return [t for t in spec.tasks if t.handler in CODEGEN_READERS]


@pytest.mark.parametrize("dag_id", [BASELINE_DAG_ID, OPTIMIZED_DAG_ID])
def test_the_teardown_follows_everything_that_reads_the_run_storage(dagbag, spec, dag_id):
    dag = dagbag.dags[dag_id]
    teardown = dag.get_task(CLEAN_UP_TASK_ID)
    assert teardown.is_teardown
    assert teardown.downstream_task_ids == set()
    codegen = spec.task(8).airflow_task_id
    if dag_id == OPTIMIZED_DAG_ID:
        codegen = f"{codegen}.{CODEGEN_STAGE_TASK_IDS[-1]}"
    assert teardown.upstream_task_ids == {codegen} | {t.airflow_task_id for t in _readers(spec)}


@pytest.mark.parametrize("dag_id", [BASELINE_DAG_ID, OPTIMIZED_DAG_ID])
def test_workflow_dags_need_no_pool_and_push_one_xcom_per_task(dagbag, dag_id):
    """Zero setup: a pool that does not exist would hang a task silently (anchors §10)."""
    for task in dagbag.dags[dag_id].tasks:
        assert task.pool == "default_pool", task.task_id
        assert getattr(task, "multiple_outputs", False) is False, task.task_id


@pytest.mark.parametrize("dag_id", [BASELINE_DAG_ID, OPTIMIZED_DAG_ID])
def test_retries_wait_the_spec_delay_times_the_run_time_scale(dagbag, spec, dag_id):
    from k1n.dag_builders.defaults import ScaledRetryPolicy

    task = dagbag.dags[dag_id].get_task(spec.task(3).airflow_task_id)
    policy = task.retry_policy
    assert isinstance(policy, ScaledRetryPolicy)
    flaky = policy.evaluate(OSError("agent unreachable"), 2, 3, {"params": {"time_scale": 0.5}})
    assert flaky.retry_delay == timedelta(seconds=spec.task(3).retry_delay_seconds * 0.5 * 2)
    production = policy.evaluate(OSError("x"), 1, 3, {"params": {"time_scale": 1}})
    assert production.retry_delay == timedelta(seconds=spec.task(3).retry_delay_seconds)
    from k1n.codegen import ValidationFailed

    assert policy.evaluate(ValidationFailed("bad", {}), 1, 3, None).action.value == "fail"


def _spec_id(task_id: str) -> int | None:
    head = task_id.split(".", 1)[0]
    return int(head.split("_")[1]) if head.startswith("task_") else None


def test_optimized_edges_are_the_reduced_dependencies(dagbag, spec):
    dag = dagbag.dags[OPTIMIZED_DAG_ID]
    group = spec.task(8).airflow_task_id
    entry, exit_ = f"{group}.{CODEGEN_STAGE_TASK_IDS[0]}", f"{group}.{CODEGEN_STAGE_TASK_IDS[-1]}"
    edges = set()
    for task in dag.tasks:
        if task.task_id.startswith(f"{group}.") and task.task_id != entry:
            continue  # inside the group: checked by the next test
        if task.task_id == CLEAN_UP_TASK_ID:
            continue  # the teardown: checked above
        target = _spec_id(task.task_id)
        for upstream in task.upstream_task_ids:
            edges.add((_spec_id(upstream), target))
    expected = {(dep, tid) for tid, deps in spec.reduced_dependencies.items() for dep in deps}
    sinks = {t.id for t in spec.tasks} - {dep for dep, _ in expected}
    expected |= {(sink, None) for sink in sinks}  # sinks feed check_quality_gates
    assert edges == expected
    assert dag.get_task(exit_).downstream_task_ids == {
        spec.task(t).airflow_task_id for t, deps in spec.reduced_dependencies.items() if 8 in deps
    } | {CLEAN_UP_TASK_ID}
    assert dag.get_task("task_03_architecture").upstream_task_ids == {
        "task_01_security_audit",
        "task_02_buffer_bounds",
    }


def test_task_8_is_a_group_with_a_mapped_generate_stage(dagbag, spec):
    dag = dagbag.dags[OPTIMIZED_DAG_ID]
    group = spec.task(8).airflow_task_id
    stage_ids = [f"{group}.{stage}" for stage in CODEGEN_STAGE_TASK_IDS]
    for upstream, downstream in itertools.pairwise(stage_ids):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    generate = dag.get_task(stage_ids[1])
    assert isinstance(generate, MappedOperator)
    assert generate.map_index_template
    # Nothing changed: the empty shard list skips generate; publish still runs.
    assert [dag.get_task(stage).trigger_rule for stage in stage_ids] == [
        "all_success",
        "all_success",
        "none_failed",
    ]


def test_priority_is_the_profiles_best_simulated_order(dagbag, spec):
    dag = dagbag.dags[OPTIMIZED_DAG_ID]
    weight = {
        t.id: dag.get_task(t.airflow_task_id).priority_weight for t in spec.tasks if t.id != 8
    }
    assert weight[1] > weight[2]  # 1 -> 3 -> ... is longer than 2 -> 3 -> ... by 60 s
    # Replayed under 2 and 3 slots, the profile's order ends when the best schedule does.
    graph, seconds = spec.scheduling_graph, spec.profile_seconds
    ranks = {str(t): rank for t, rank in _profile_ranks(spec).items()}
    assert {str(t): w for t, w in weight.items()} == {t: r for t, r in ranks.items() if t != "8"}
    for slots in (2, 3):
        replayed = scheduling.list_schedule(graph, seconds, slots, ranks).makespan
        assert replayed == scheduling.optimal_makespan(graph, seconds, slots)


def test_broken_spec_is_a_one_line_import_error(tmp_path, monkeypatch):
    document = yaml.safe_load(DEFAULT_SPEC_PATH.read_text())
    document["tasks"][8]["depends_on"] = [8, 99]
    broken = tmp_path / "team-spec.yaml"
    broken.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("K1N_WORKFLOW_SPEC", str(broken))
    bag = parse(PROJECT_DIR / "dags" / "k1n_22task_optimized.py")
    (message,) = bag.import_errors.values()
    assert message == f"{broken}: task 9 (Unit Tests): depends on unknown task id(s) [99]"


@pytest.mark.parametrize(
    ("dag_id", "cron"), [(NIGHTLY_DAG_ID, "0 2 * * *"), (WEEKLY_BASELINE_DAG_ID, "0 3 * * 0")]
)
def test_regression_dag_structure(dagbag, dag_id, cron):
    """plan -> trigger (deferrable, waits, a failed target run is judged) -> report -> verdict."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    dag = dagbag.dags[dag_id]
    assert dag.timetable.summary == cron
    assert dag.max_active_runs == 1
    order = [PLAN_TASK_ID, TRIGGER_TASK_ID, REPORT_TASK_ID, VERDICT_TASK_ID]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in itertools.pairwise(order):
        # report_and_judge also reads plan_run's XCom
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.get_task(VERDICT_TASK_ID).upstream_task_ids == {REPORT_TASK_ID}
    trigger = dag.get_task(TRIGGER_TASK_ID)
    assert isinstance(trigger, TriggerDagRunOperator)
    assert trigger.deferrable and trigger.wait_for_completion
    assert trigger.poke_interval <= 5
    assert set(trigger.allowed_states) == {"success", "failed"} and trigger.failed_states == []
    assert dag.get_task(VERDICT_TASK_ID).on_failure_callback
    assert {"target_dag_id", "target_conf", "check_targets"} <= set(dag.params)


def test_optimized_dag_has_a_deadline_and_bounds_codegen_shards_per_run(dagbag, spec):
    from k1n import settings

    dag = dagbag.dags[OPTIMIZED_DAG_ID]
    (alert,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    minutes = spec.targets.workflow_minutes_max * settings.default_time_scale()
    assert alert.interval == timedelta(minutes=minutes)
    assert "workflow_deadline_missed" in str(alert.callback.path)
    group = spec.task(8).airflow_task_id
    generate = dag.get_task(f"{group}.generate_code")
    assert generate.max_active_tis_per_dagrun == settings.codegen_shards()


@pytest.mark.parametrize("dag_id", ALL_DAG_IDS)
def test_time_scale_params_refuse_absurd_values_at_trigger(dagbag, dag_id):
    """`time_scale: 1e300` or `1e-310` once killed every try before task code ran; the Param
    refuses them when the run is triggered (the REST API answers 400)."""
    import copy

    dag = dagbag.dags[dag_id]
    if "time_scale" not in dag.params:
        return
    for absurd in (1e300, 1e-310, 0, -1, float("inf")):
        params = copy.deepcopy(dag.params)
        with pytest.raises(Exception, match="time_scale"):
            params["time_scale"] = absurd
            params.validate()
    params = copy.deepcopy(dag.params)
    params["time_scale"] = 1 / 60
    assert params.validate()["time_scale"] == pytest.approx(1 / 60)
