"""Both DAGs run on a real scheduler (LocalExecutor), and the metadata DB shows the shape:
the optimized run overlaps independent tasks and maps code generation, the baseline does not."""

from __future__ import annotations

import pytest

from k1n.workflow.names import CLEAN_UP_TASK_ID, QUALITY_GATES_TASK_ID
from k1n.workflow.spec import load_spec

pytestmark = pytest.mark.integration


def test_optimized_run_succeeds_with_every_task(optimized_run):
    assert optimized_run.state == "success", [
        (s.task_id, s.state) for s in optimized_run.spans if s.state != "success"
    ]
    assert set(optimized_run.seconds_by_spec_task()) == {t.id for t in load_spec().tasks}


def test_independent_tasks_overlapped(optimized_run):
    assert optimized_run.all_overlap([3, 4, 5])
    assert optimized_run.all_overlap([1, 2])


def test_dependencies_were_respected(optimized_run):
    spec = load_spec()
    spans = {num: optimized_run.spans_of(num) for num in optimized_run.seconds_by_spec_task()}
    for task_id, deps in spec.reduced_dependencies.items():
        start = min(s.start for s in spans[task_id])
        for dep in deps:
            assert max(s.end for s in spans[dep]) <= start, f"{task_id} started before {dep} ended"


def test_code_generation_was_mapped_over_several_shards(optimized_run):
    indexes = optimized_run.map_indexes(".generate_code")
    assert len(indexes) > 1
    assert indexes == list(range(len(indexes)))


def test_quality_gates_ran_last(optimized_run):
    (gates,) = [s for s in optimized_run.spans if s.task_id == QUALITY_GATES_TASK_ID]
    assert gates.state == "success"
    workflow = [s for s in optimized_run.spans if s is not gates and s.task_id != CLEAN_UP_TASK_ID]
    assert gates.start >= max(s.end for s in workflow)


def test_baseline_runs_one_task_at_a_time(baseline_run):
    """The workflow's tasks run one after another; only the storage teardown (housekeeping,
    once Task 8's readers are done) may run beside them."""
    assert baseline_run.state == "success"
    workflow = baseline_run.overlapping_pairs(ignore=[CLEAN_UP_TASK_ID])
    assert workflow == []
    assert len(baseline_run.spans) == len(load_spec().tasks) + 2
