"""Fault injection on a real local stack; every test asserts the final state.

- a task process, a task's supervisor and Task 8's `publish_code` killed with SIGKILL in one
  run: each is noticed within seconds, retried, and the run succeeds with one consistent snapshot;
- the scheduler killed with SIGKILL: the stack restarts it, the run succeeds, and no task
  instance ran twice at the same time;
- the metadata database stopped for 20 s: the stack recovers by itself, the run succeeds;
- three optimized runs at once: all succeed, each checks the snapshot its own Task 8 published;
- the stack stopped in the middle of a run: no process it started is left, agents included.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from k1n import storage
from k1n.codegen import CodegenStore
from k1n.workflow.names import CODEGEN_STAGE_TASK_IDS, OPTIMIZED_DAG_ID
from k1n.workflow.spec import CODEGEN_READERS, DEFAULT_SPEC_PATH, load_spec
from k1n_local import processes
from k1n_local.stack import AirflowStack

pytestmark = pytest.mark.integration

TIME_SCALE = 1 / 300
PUBLISH_TASK = f"task_08_code_generation.{CODEGEN_STAGE_TASK_IDS[-1]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = AirflowStack(tmp_path_factory.mktemp("faults"))
    with stack.running():
        with stack.client() as client:
            client.wait_for_dag(OPTIMIZED_DAG_ID)
            client.unpause(OPTIMIZED_DAG_ID)
        yield stack


# -- helpers ----------------------------------------------------------------------------------


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def trigger(stack: AirflowStack, **conf: Any) -> str:
    with stack.client() as client:
        return client.trigger(OPTIMIZED_DAG_ID, conf={"time_scale": TIME_SCALE, **conf})


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def running_instance(stack: AirflowStack, run_id: str, task_id: str) -> dict[str, Any] | None:
    with stack.client() as client:
        for ti in client.task_instances(OPTIMIZED_DAG_ID, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running":
                return ti
    return None


def task_process(ti_id: str) -> psutil.Process | None:
    """The process running a task instance's code (Airflow names it after the TI id)."""
    for process in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(process.info["cmdline"] or []):
            return process
    return None


def kill_when(process: psutil.Process, condition: Callable[[], Any], timeout: float) -> None:
    """SIGKILL `process` at the first moment `condition` holds, however fast it runs.

    The process runs in 2 ms slices and is stopped (SIGSTOP) while `condition` is checked, so
    it cannot get past the moment the condition marks before the kill lands.
    """
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            process.send_signal(signal.SIGSTOP)
            while process.status() != psutil.STATUS_STOPPED:
                time.sleep(0.0001)
            if condition():
                process.send_signal(signal.SIGKILL)
                return
            process.send_signal(signal.SIGCONT)
            time.sleep(0.002)
    except psutil.NoSuchProcess:
        raise AssertionError("the process ended before the condition held") from None
    process.send_signal(signal.SIGCONT)
    raise AssertionError(f"the condition did not hold within {timeout} s")


def finish(stack: AirflowStack, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with stack.client() as client:
        run = client.wait_for_run(OPTIMIZED_DAG_ID, run_id, timeout=600)
        return run, client.task_instances(OPTIMIZED_DAG_ID, run_id, earlier_tries=True)


def tries_of(instances: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    return sorted(
        (ti for ti in instances if ti["task_id"] == task_id), key=lambda ti: ti["try_number"]
    )


def assert_no_instance_ran_twice_at_once(instances: list[dict[str, Any]]) -> None:
    by_instance: dict[tuple[str, int], list[tuple[datetime, datetime]]] = {}
    for ti in instances:
        if ti["start_date"] and ti["end_date"]:
            key = (ti["task_id"], ti["map_index"])
            by_instance.setdefault(key, []).append((when(ti["start_date"]), when(ti["end_date"])))
    for key, spans in by_instance.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{key}: a try started before the previous one ended"


def snapshot_of(stack: AirflowStack, run_id: str, task_id: str) -> str:
    with stack.client() as client:
        return client.xcom(OPTIMIZED_DAG_ID, run_id, task_id)["value"]["snapshot"]


def assert_checkers_read_their_own_snapshot(stack: AirflowStack, run_id: str) -> str:
    snapshot = snapshot_of(stack, run_id, PUBLISH_TASK)
    for task in load_spec().tasks:
        if task.handler in CODEGEN_READERS:
            assert snapshot_of(stack, run_id, task.airflow_task_id) == snapshot, task.label
    store = CodegenStore(
        storage.open_root(stack.airflow_env()["K1N_STORAGE_URL"])
        / "codegen"
        / storage.key_for(OPTIMIZED_DAG_ID)
    )
    assert len(store.files(snapshot)) > 0  # complete and verified against its manifest
    return snapshot


# -- tests ------------------------------------------------------------------------------------


def test_killed_task_process_supervisor_and_publication_are_retried(stack):
    # Tasks 3 and 5 run 10 s here (the stand-in's chaos knob), long enough to be killed.
    run_id = trigger(stack, slow_tasks={"3": 10, "5": 10})

    ti_3 = wait_for(lambda: running_instance(stack, run_id, "task_03_architecture"), 60, "3")
    worker_3 = wait_for(lambda: task_process(ti_3["id"]), 30, "task 3's process")
    ti_5 = wait_for(lambda: running_instance(stack, run_id, "task_05_security_review"), 60, "5")
    worker_5 = wait_for(lambda: task_process(ti_5["id"]), 30, "task 5's process")
    supervisor_5 = worker_5.parent()  # LocalExecutor: the worker supervising this instance
    assert ti_5["id"] in " ".join(supervisor_5.cmdline())
    time.sleep(1)
    killed_task_at = time.time()
    worker_3.send_signal(signal.SIGKILL)
    killed_supervisor_at = time.time()
    supervisor_5.send_signal(signal.SIGKILL)

    # publish_code: killed as soon as it records the snapshot it is about to publish.
    staging = (
        storage.run_prefix(
            storage.open_root(stack.airflow_env()["K1N_STORAGE_URL"]), OPTIMIZED_DAG_ID, run_id
        )
        / "codegen"
    )
    writer = wait_for(lambda: running_instance(stack, run_id, PUBLISH_TASK), 180, "publish_code")
    writer_process = wait_for(lambda: task_process(writer["id"]), 30, "its process")
    kill_when(writer_process, lambda: storage.read_json(staging / "published.json"), 120)

    run, instances = finish(stack, run_id)
    assert run["state"] == "success"
    task_3, task_5, write = (
        tries_of(instances, task)
        for task in ("task_03_architecture", "task_05_security_review", PUBLISH_TASK)
    )
    assert [t["state"] for t in task_3][-1] == "success" and len(task_3) >= 2
    assert when(task_3[0]["end_date"]).timestamp() - killed_task_at < 10
    assert [t["state"] for t in task_5][-1] == "success" and len(task_5) >= 2
    assert when(task_5[0]["end_date"]).timestamp() - killed_supervisor_at < 60
    assert [t["state"] for t in write][-1] == "success" and len(write) >= 2
    assert_no_instance_ran_twice_at_once(instances)
    assert_checkers_read_their_own_snapshot(stack, run_id)


def test_a_killed_scheduler_is_restarted_and_nothing_runs_twice_at_once(stack):
    scheduler = stack.components["scheduler"]
    restarts = scheduler.restarts
    run_id = trigger(stack, slow_tasks={"6": 5})
    wait_for(lambda: running_instance(stack, run_id, "task_06_design_adr"), 120, "task 6")
    os.kill(scheduler.pid, signal.SIGKILL)
    wait_for(lambda: scheduler.restarts > restarts, 30, "the scheduler's restart")
    run, instances = finish(stack, run_id)
    assert run["state"] == "success"
    assert_no_instance_ran_twice_at_once(instances)
    assert stack.supervisor.processes_of(f"scheduler#{restarts}") == []
    assert_checkers_read_their_own_snapshot(stack, run_id)


def test_the_stack_recovers_from_a_database_outage_by_itself(stack):
    run_id = trigger(stack, slow_tasks={"4": 5})
    wait_for(lambda: running_instance(stack, run_id, "task_04_testing_setup"), 120, "task 4")
    restarts = sum(c.restarts for c in stack.components.values())
    stack.database.stop()
    time.sleep(20)
    stack.database.start()
    run, _ = finish(stack, run_id)
    assert run["state"] == "success"
    assert sum(c.restarts for c in stack.components.values()) > restarts
    assert all(c.exit_code() is None for c in stack.components.values())
    assert_checkers_read_their_own_snapshot(stack, run_id)


def test_three_concurrent_runs_succeed_and_read_their_own_snapshots(stack):
    # Two on the usual library, one on a library with every pattern changed.
    variants = (0, 0, 1)
    run_ids = [trigger(stack, library_variant=variant) for variant in variants]
    snapshots = []
    for run_id in run_ids:
        run, instances = finish(stack, run_id)
        assert run["state"] == "success", run_id
        assert_no_instance_ran_twice_at_once(instances)
        snapshots.append(assert_checkers_read_their_own_snapshot(stack, run_id))
    # The same library: the same content, the same snapshot; the changed one: its own.
    assert snapshots[0] == snapshots[1] != snapshots[2]


def test_stopping_the_stack_mid_run_leaves_no_process(tmp_path):
    """Task 2 runs an agent that leaves a child behind; the stack is stopped while they run."""
    spec = yaml.safe_load(DEFAULT_SPEC_PATH.read_text())
    marker = f"k1n-orphan-check-{os.getpid()}"
    task_2 = next(task for task in spec["tasks"] if task["id"] == 2)
    task_2.update(
        handler="command",
        command=f"tests/fixtures/agents/lingering-agent.sh {{task_id}} {marker}",
    )
    spec_file = tmp_path / "workflow.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    stack = AirflowStack(tmp_path / "home", extra_env={"K1N_WORKFLOW_SPEC": str(spec_file)})

    def marked() -> list[psutil.Process]:
        return [
            process
            for process in psutil.process_iter(["cmdline"])
            if marker in " ".join(process.info["cmdline"] or [])
        ]

    def runs_airflow(cmdline: list[str]) -> bool:
        # `.../bin/airflow scheduler`, `python -m airflow ...`, or a process title such as
        # `airflow task supervisor`; not any path that merely contains the word.
        return any(Path(part).name == "airflow" or part.startswith("airflow ") for part in cmdline)

    def airflow_processes() -> set[int]:
        """Every process on this machine that runs Airflow (walking the whole table)."""
        return {
            process.pid
            for process in psutil.process_iter(["cmdline"])
            if runs_airflow(process.info["cmdline"] or [])
        }

    before = airflow_processes()
    try:
        stack.start()
        with stack.client() as client:
            client.wait_for_dag(OPTIMIZED_DAG_ID)
            client.unpause(OPTIMIZED_DAG_ID)
            client.trigger(OPTIMIZED_DAG_ID, conf={"time_scale": TIME_SCALE})
        wait_for(lambda: len(marked()) >= 2, 120, "the agent and its child")
        assert processes.tagged(stack.stack_id)
    finally:
        stopper = threading.Thread(target=stack.stop)
        stopper.start()
        stopper.join(120)
    assert not stopper.is_alive()
    assert marked() == []
    assert airflow_processes() - before == set()
    assert processes.tagged(stack.stack_id) == []
    assert not list(Path(tmp_path / "home").glob("pgdata/postmaster.pid"))
