"""Demo-shaped K1N runs written straight into an Airflow metadata DB, with known answers.

`seed_demo_runs()` writes, for both K1N DAGs (their `dag`/`dag_bundle` rows when missing):

- a baseline run: the 22 tasks one after another, Task 8 a single task, then
  `check_quality_gates`;
- an optimized run: every task as soon as its declared dependencies ended, Task 8 as the group
  parse -> generate (mapped over 4 shards) -> compile -> validate -> write, one task retried
  (its first, failed try in `task_instance_history`), and the quality-gate XCom;
- a queued optimized run with no task instance yet.

Durations are the spec's seconds x time scale, with a small per-task factor so that no two
chains tie; every hand-off takes `HANDOFF` seconds. `SeededRun.critical_path()` computes the
expected critical path independently of the analysis code. Used by the plugin tests and by
`bench/bench_plugin_endpoint.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.k1n.workflow.names import (
    BASELINE_DAG_ID,
    CODEGEN_STAGE_TASK_IDS,
    OPTIMIZED_DAG_ID,
    QUALITY_GATES_TASK_ID,
)
from include.k1n.workflow.spec import HandlerKind, WorkflowSpec, load_spec

TIME_SCALE = 1 / 60
HANDOFF = 0.12
QUEUE_WAIT = 0.03
SHARDS = 4
RETRIED_SPEC_ID = 13
PASS_RATE = 0.97
BUNDLE = "dags-folder"
# Task 8's stages: spec `stages_seconds` key per task id of the optimized DAG's group.
STAGE_KEYS = dict(
    zip(CODEGEN_STAGE_TASK_IDS, ("parse", "generate", "compile", "validate", "write"), strict=True)
)


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
            for stage in CODEGEN_STAGE_TASK_IDS:
                stage_seconds = task.stages_seconds[STAGE_KEYS[stage]] * scale
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


def ensure_dags(session: Any) -> None:
    """`dag_bundle` and `dag` rows for both K1N DAGs (run lists join them for permissions)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel

    if session.get(DagBundleModel, BUNDLE) is None:
        session.add(DagBundleModel(name=BUNDLE))
        session.flush()
    for dag_id in (BASELINE_DAG_ID, OPTIMIZED_DAG_ID):
        if session.get(DagModel, dag_id) is None:
            session.add(DagModel(dag_id=dag_id, bundle_name=BUNDLE, is_paused=False))
    session.flush()


def write_run(session: Any, run: SeededRun) -> None:
    """The run's `dag_run`, its task instances (current and earlier tries) and its XCom."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.models.xcom import XComModel
    from sqlalchemy import insert

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
            conf={"time_scale": run.time_scale},
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
        "duration": (row["end"] - row["start"]).total_seconds(),
        "max_tries": 2,
        "hostname": "seed",
        "unixname": "seed",
    }


def seed_demo_runs(
    spec: WorkflowSpec | None = None, *, now: datetime | None = None, tag: str | None = None
) -> dict[str, SeededRun]:
    """Write a baseline, an optimized and a queued run; return them by name."""
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
    with create_session() as session:
        ensure_dags(session)
        for run in runs.values():
            write_run(session, run)
    return runs
