"""Demo-shaped runs written straight into an Airflow metadata DB, with known answers.

The DAGs themselves are the real ones: `sync_dags()` parses `dags/` and the test DAG folder
(`tests/fixtures/dags`, a fan-out DAG with a mapped task that is not a K1N DAG) and writes their
serialized versions as the dag processor would, so the plugin reads each run's graph from the
DAG version it was created with. `seed_demo_runs()` then writes:

- a baseline run: the 22 tasks one after another, Task 8 a single task, then
  `check_quality_gates`;
- an optimized run: every task as soon as its declared dependencies ended, Task 8 as the group
  parse -> generate (mapped over 4 shards) -> compile -> validate -> write, one task retried
  (its first, failed try in `task_instance_history`), and the quality-gate XCom;
- a queued optimized run with no task instance yet, and a running one (partial);
- five runs of the fan-out test DAG (`FAN_OUT_DAG_ID`; `fan_out_slow`, the last, the
  slowest) and a running one two seconds in (the history and the run of its ETA).

Every K1N task instance records its code start `STARTUP` seconds after its start, as the
real tasks do (an XCom).

Durations are the spec's seconds x time scale, with a small per-task factor so that no two
chains tie; every hand-off takes `HANDOFF` seconds. `SeededRun.critical_path()` computes the
expected critical path independently of the analysis code. Used by the plugin tests and by
`bench/bench_plugin_endpoint.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from k1n.workflow.names import (
    BASELINE_DAG_ID,
    CODE_START_XCOM_KEY,
    CODEGEN_STAGES,
    OPTIMIZED_DAG_ID,
    QUALITY_GATES_TASK_ID,
)
from k1n.workflow.spec import HandlerKind, WorkflowSpec, load_spec

TIME_SCALE = 1 / 60
HANDOFF = 0.12
QUEUE_WAIT = 0.03
SHARDS = 4
RETRIED_SPEC_ID = 13
PASS_RATE = 0.97
STARTUP = 0.05
BUNDLE = "dags-folder"
TEST_BUNDLE = "k1n-test-dags"
REPO = Path(__file__).resolve().parents[3]
TEST_DAGS = REPO / "tests" / "fixtures" / "dags"
FAN_OUT_DAG_ID = "fan_out_etl"
# The fan-out DAG's edges and a run of it: task -> (start, seconds) per map index.
FAN_OUT_EDGES = [
    ("extract_rows", "transform_batch"),
    ("extract_rows", "audit_rows"),
    ("transform_batch", "load_rows"),
    ("audit_rows", "load_rows"),
    ("load_rows", "publish_summary"),
]


def jitter(spec_id: int) -> float:
    """A per-task factor in [1.00, 1.06]: distinct chains never have the same length."""
    return 1.0 + 0.01 * ((spec_id * 3) % 7)


@dataclass
class SeededRun:
    """One run as written: its ids, bounds and task-instance rows (tries included)."""

    dag_id: str
    run_id: str
    time_scale: float
    start: datetime
    end: datetime | None
    state: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    pass_rate: float | None = None

    @property
    def key(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    @property
    def wall_seconds(self) -> float:
        assert self.end is not None
        return (self.end - self.start).total_seconds()

    def spec_spans(self) -> dict[int, tuple[datetime, datetime]]:
        """Spec id -> (first start, last end) over its final tries (Task 8's group rolls up)."""
        spans: dict[int, tuple[datetime, datetime]] = {}
        for row in self.rows:
            if row["archived"] or row["spec_id"] is None:
                continue
            first, last = spans.get(row["spec_id"], (row["start"], row["end"]))
            spans[row["spec_id"]] = (min(first, row["start"]), max(last, row["end"]))
        return spans

    def critical_path(self, spec: WorkflowSpec) -> tuple[list[int], float]:
        """Longest chain over the spec's declared dependencies with these measured durations."""
        seconds = {n: (b - a).total_seconds() for n, (a, b) in self.spec_spans().items()}
        finish: dict[int, float] = {}
        best_before: dict[int, int | None] = {}
        for task_id in spec.topological_order:
            deps = spec.by_id[task_id].depends_on
            before = max(deps, key=lambda d: finish[d]) if deps else None
            best_before[task_id] = before
            finish[task_id] = (finish[before] if before else 0.0) + seconds.get(task_id, 0.0)
        last = max(finish, key=finish.get)  # type: ignore[arg-type]
        path = [last]
        while best_before[path[-1]] is not None:
            path.append(best_before[path[-1]])  # type: ignore[arg-type]
        return path[::-1], finish[last]


def _row(task_id: str, spec_id: int | None, start: datetime, seconds: float, **extra: Any):
    row = {
        "task_id": task_id,
        "spec_id": spec_id,
        "map_index": -1,
        "try_number": 1,
        "state": "success",
        "queued": start - timedelta(seconds=QUEUE_WAIT),
        "start": start,
        "code_start": start + timedelta(seconds=min(STARTUP, seconds)),
        "end": start + timedelta(seconds=seconds),
        "archived": False,
    }
    row.update(extra)
    return row


def optimized_rows(spec: WorkflowSpec, start: datetime, scale: float = TIME_SCALE) -> list[dict]:
    """The optimized DAG's task instances: declared dependencies only, Task 8 mapped."""
    rows: list[dict[str, Any]] = []
    ends: dict[int, datetime] = {}
    hop = timedelta(seconds=HANDOFF)
    for task_id in spec.topological_order:
        task = spec.by_id[task_id]
        ready = max((ends[d] for d in task.depends_on), default=start)
        clock = ready + hop
        seconds = task.seconds * scale * jitter(task_id)
        if task.handler is HandlerKind.CODEGEN:
            group = task.airflow_task_id
            for stage, stage_keys in CODEGEN_STAGES.items():
                stage_seconds = sum(task.stages_seconds[key] for key in stage_keys) * scale
                if stage == "generate_code":
                    shard_ends = []
                    for index in range(SHARDS):
                        shard = stage_seconds / SHARDS * (1.0 + 0.1 * index)
                        rows.append(
                            _row(f"{group}.{stage}", task_id, clock, shard, map_index=index)
                        )
                        shard_ends.append(rows[-1]["end"])
                    clock = max(shard_ends) + hop
                else:
                    rows.append(_row(f"{group}.{stage}", task_id, clock, stage_seconds))
                    clock = rows[-1]["end"] + hop
            ends[task_id] = clock - hop
            continue
        if task_id == RETRIED_SPEC_ID:
            failed = _row(task.airflow_task_id, task_id, clock, seconds / 3, state="failed")
            rows.append({**failed, "archived": True})
            clock = failed["end"] + timedelta(seconds=1.0)
            rows.append(_row(task.airflow_task_id, task_id, clock, seconds, try_number=2))
        else:
            rows.append(_row(task.airflow_task_id, task_id, clock, seconds))
        ends[task_id] = rows[-1]["end"]
    last = max(ends.values()) + hop
    rows.append(_row(QUALITY_GATES_TASK_ID, None, last, 0.2))
    return rows


def baseline_rows(spec: WorkflowSpec, start: datetime, scale: float = TIME_SCALE) -> list[dict]:
    """The baseline DAG's task instances: one after another in spec order."""
    rows: list[dict[str, Any]] = []
    clock = start
    for task in spec.tasks:
        clock += timedelta(seconds=HANDOFF)
        rows.append(
            _row(task.airflow_task_id, task.id, clock, task.seconds * scale * jitter(task.id))
        )
        clock = rows[-1]["end"]
    rows.append(_row(QUALITY_GATES_TASK_ID, None, clock + timedelta(seconds=HANDOFF), 0.2))
    return rows


def sync_dags() -> None:
    """Parse `dags/` and the test DAGs and store their serialized versions, as the dag
    processor does (the plugin reads a run's graph from its DAG version)."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for name in (BUNDLE, TEST_BUNDLE):
            if session.get(DagBundleModel, name) is None:
                session.add(DagBundleModel(name=name))
    for name, folder in ((BUNDLE, REPO / "dags"), (TEST_BUNDLE, TEST_DAGS)):
        bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name=name)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, name, None)


def write_run(session: Any, run: SeededRun) -> None:
    """The run's `dag_run`, its task instances (current and earlier tries) and its XCom."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.models.xcom import XComModel
    from sqlalchemy import insert

    version = DagVersion.get_latest_version(run.dag_id, session=session)
    dag_run_pk = session.execute(
        insert(DagRun.__table__)
        .values(
            dag_id=run.dag_id,
            run_id=run.run_id,
            run_type="manual",
            state=run.state,
            queued_at=run.start - timedelta(seconds=0.5),
            start_date=None if run.state == "queued" else run.start,
            end_date=run.end,
            run_after=run.start,
            conf={"time_scale": run.time_scale} if run.time_scale != 1 else {},
            created_dag_version_id=version.id if version else None,
        )
        .returning(DagRun.__table__.c.id)
    ).scalar_one()
    ti_ids: dict[tuple[str, int], uuid.UUID] = {}
    current = [r for r in run.rows if not r["archived"]]
    earlier = [r for r in run.rows if r["archived"]]
    for row in current:
        ti_ids[(row["task_id"], row["map_index"])] = uuid.uuid4()
    if current:
        session.execute(
            insert(TaskInstance.__table__),
            [
                {
                    "id": ti_ids[(r["task_id"], r["map_index"])],
                    **_ti_values(run, r),
                }
                for r in current
            ],
        )
    if earlier:
        session.execute(
            insert(TaskInstanceHistory.__table__),
            [
                {"task_instance_id": ti_ids[(r["task_id"], r["map_index"])], **_ti_values(run, r)}
                for r in earlier
            ],
        )
    starts = [r for r in current if r.get("code_start") is not None]
    if starts:
        session.execute(
            insert(XComModel.__table__),
            [
                {
                    "dag_run_id": dag_run_pk,
                    "task_id": r["task_id"],
                    "map_index": r["map_index"],
                    "key": CODE_START_XCOM_KEY,
                    "dag_id": run.dag_id,
                    "run_id": run.run_id,
                    "value": r["code_start"].timestamp(),
                    "timestamp": r["start"],
                }
                for r in starts
            ],
        )
    if run.pass_rate is not None:
        session.execute(
            insert(XComModel.__table__).values(
                dag_run_id=dag_run_pk,
                task_id=QUALITY_GATES_TASK_ID,
                map_index=-1,
                key="return_value",
                dag_id=run.dag_id,
                run_id=run.run_id,
                value={"ok": True, "pass_rate": run.pass_rate, "gates": 220, "failed": 7},
                timestamp=run.end or run.start,
            )
        )
    session.flush()


def _ti_values(run: SeededRun, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": row["task_id"],
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "map_index": row["map_index"],
        "try_number": row["try_number"],
        "state": row["state"],
        "pool": "default_pool",
        "pool_slots": 1,
        "queue": "default",
        "priority_weight": 1,
        "operator": "_PythonDecoratedOperator",
        "queued_dttm": row["queued"],
        "start_date": row["start"],
        "end_date": row["end"],
        "duration": None if row["end"] is None else (row["end"] - row["start"]).total_seconds(),
        "max_tries": 2,
        "hostname": "seed",
        "unixname": "seed",
    }


def fan_out_rows(start: datetime, stretch: float = 1.0) -> list[dict[str, Any]]:
    """A run of the fan-out DAG: extract, three mapped batches beside the audit, load,
    publish; 0.2 s hand-offs; no recorded code starts (it is not a K1N DAG)."""
    hop = 0.2

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    rows = [_row("extract_rows", None, at(0.1), 0.5 * stretch, code_start=None)]
    ready = 0.1 + 0.5 * stretch + hop
    ends = []
    for index, seconds in enumerate((1.0, 2.5, 1.5)):
        rows.append(
            _row(
                "transform_batch",
                None,
                at(ready),
                seconds * stretch,
                map_index=index,
                code_start=None,
            )
        )
        ends.append(ready + seconds * stretch)
    rows.append(_row("audit_rows", None, at(ready), 0.5 * stretch, code_start=None))
    load_start = max(ends) + hop
    rows.append(_row("load_rows", None, at(load_start), 0.5 * stretch, code_start=None))
    publish_start = load_start + 0.5 * stretch + hop
    rows.append(_row("publish_summary", None, at(publish_start), 0.2 * stretch, code_start=None))
    return rows


def _running(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The rows of a run observed at `now`: later ones not started, one still running."""
    seen = []
    for row in rows:
        if row["start"] >= now:
            continue
        if row["end"] > now:
            row = {**row, "end": None, "state": "running"}
        seen.append(row)
    return seen


def seed_demo_runs(
    spec: WorkflowSpec | None = None, *, now: datetime | None = None, tag: str | None = None
) -> dict[str, SeededRun]:
    """Write the runs the module docstring lists; return them by name."""
    from airflow.utils.session import create_session

    spec = spec or load_spec()
    now = now or datetime.now(UTC).replace(microsecond=0)
    tag = tag or uuid.uuid4().hex[:8]
    base_start = now - timedelta(hours=2)
    opt_start = now - timedelta(hours=1)
    runs: dict[str, SeededRun] = {}
    for name, dag_id, start, build in (
        ("baseline", BASELINE_DAG_ID, base_start, baseline_rows),
        ("optimized", OPTIMIZED_DAG_ID, opt_start, optimized_rows),
    ):
        rows = build(spec, start)
        end = max(r["end"] for r in rows) + timedelta(seconds=0.3)
        runs[name] = SeededRun(
            dag_id=dag_id,
            run_id=f"manual__seed_{name}_{tag}",
            time_scale=TIME_SCALE,
            start=start,
            end=end,
            state="success",
            rows=rows,
            pass_rate=PASS_RATE,
        )
    runs["queued"] = SeededRun(
        dag_id=OPTIMIZED_DAG_ID,
        run_id=f"manual__seed_queued_{tag}",
        time_scale=TIME_SCALE,
        start=now,
        end=None,
        state="queued",
    )
    running_start = now - timedelta(seconds=20)
    runs["running"] = SeededRun(
        dag_id=OPTIMIZED_DAG_ID,
        run_id=f"manual__seed_running_{tag}",
        time_scale=TIME_SCALE,
        start=running_start,
        end=None,
        state="running",
        rows=_running(optimized_rows(spec, running_start), now),
    )
    fan_outs = (
        ("fan_out_history_0", 1.0, 70),
        ("fan_out_history_1", 1.1, 60),
        ("fan_out_history_2", 1.2, 50),
        ("fan_out_fast", 1.0, 40),
        ("fan_out_slow", 1.5, 30),
    )
    for name, stretch, offset in fan_outs:
        start = now - timedelta(minutes=offset)
        rows = fan_out_rows(start, stretch)
        runs[name] = SeededRun(
            dag_id=FAN_OUT_DAG_ID,
            run_id=f"manual__seed_{name}_{tag}",
            time_scale=1.0,
            start=start,
            end=max(r["end"] for r in rows) + timedelta(seconds=0.1),
            state="success",
            rows=rows,
        )
    fan_out_start = now - timedelta(seconds=2)
    runs["fan_out_running"] = SeededRun(
        dag_id=FAN_OUT_DAG_ID,
        run_id=f"manual__seed_fan_out_running_{tag}",
        time_scale=1.0,
        start=fan_out_start,
        end=None,
        state="running",
        rows=_running(fan_out_rows(fan_out_start), now),
    )
    sync_dags()
    with create_session() as session:
        for run in runs.values():
            write_run(session, run)
    return runs
