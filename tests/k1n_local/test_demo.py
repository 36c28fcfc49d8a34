"""The demo's reading of finished runs (no Airflow started: runs built from spans)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from k1n.workflow.names import CLEAN_UP_TASK_ID
from k1n_local.demo import RunRecord, TaskSpan, structure_checks

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def span(task_id: str, start: float, end: float, map_index: int = -1) -> TaskSpan:
    return TaskSpan(
        task_id, map_index, "success", T0 + timedelta(seconds=start), T0 + timedelta(seconds=end)
    )


def run(*spans: TaskSpan) -> RunRecord:
    return RunRecord("dag", "run", "success", T0, T0 + timedelta(seconds=60), spans)


SEQUENTIAL_WITH_TEARDOWN = run(
    span("task_01_security_audit", 0, 5),
    span("task_02_buffer_bounds", 5, 10),
    span("task_13_performance_benchmarks", 10, 20),
    span(CLEAN_UP_TASK_ID, 12, 13),  # beside the last task: by design
)


def test_the_teardown_beside_the_chain_is_not_an_overlap_of_the_workflow():
    assert SEQUENTIAL_WITH_TEARDOWN.overlapping_pairs() == [
        ("task_13_performance_benchmarks", CLEAN_UP_TASK_ID)
    ]
    assert SEQUENTIAL_WITH_TEARDOWN.overlapping_pairs(ignore=[CLEAN_UP_TASK_ID]) == []


def test_structure_checks_read_overlaps_and_map_indexes():
    optimized = run(
        span("task_01_security_audit", 0, 5),
        span("task_02_buffer_bounds", 1, 4),
        span("task_03_architecture", 5, 9),
        span("task_04_testing_setup", 5, 8),
        span("task_05_security_review", 6, 9),
        *(span("task_08_code_generation.generate_code", 10, 12, i) for i in (1, 0)),
    )
    checks = structure_checks(SEQUENTIAL_WITH_TEARDOWN, optimized)
    assert checks["baseline_overlapping_pairs"] == []
    assert checks["optimized_tasks_1_2_overlap"] and checks["optimized_tasks_3_4_5_overlap"]
    assert checks["optimized_generate_map_indexes"] == [0, 1]
