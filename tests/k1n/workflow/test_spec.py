"""The workflow spec: the shipped one is right, and every broken one says file, task and problem."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
import yaml

from k1n.workflow.names import CODEGEN_STAGE_TASK_IDS
from k1n.workflow.spec import (
    DEFAULT_SPEC_PATH,
    HandlerKind,
    SpecError,
    load_spec,
    spec_path_from_env,
)
from tests.conftest import PROJECT_DIR

# The old system's measured profile and targets, kept inside the project (see its header).
REFERENCE_PROFILE = PROJECT_DIR / "tests" / "fixtures" / "reference_profile.yaml"


@pytest.fixture(scope="module")
def spec():
    return load_spec(DEFAULT_SPEC_PATH)


def raw_spec() -> dict:
    return yaml.safe_load(DEFAULT_SPEC_PATH.read_text())


def write(tmp_path: Path, document) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def task_entry(document: dict, task_id: int) -> dict:
    return next(t for t in document["tasks"] if t["id"] == task_id)


class TestShippedSpec:
    def test_twenty_two_tasks_totalling_the_measured_baseline(self, spec):
        assert [t.id for t in spec.tasks] == list(range(1, 23))
        assert spec.total_seconds == 7800

    def test_profile_matches_the_reference_profile(self, spec):
        reference = yaml.safe_load(REFERENCE_PROFILE.read_text())
        assert spec.total_seconds == reference["total_seconds"]
        for ref in reference["tasks"]:
            ours = spec.task(ref["id"])
            assert (ours.name, ours.phase, ours.seconds) == (
                ref["name"],
                ref["phase"],
                ref["seconds"],
            )
            assert list(ours.depends_on) == ref["depends_on"]
        assert spec.targets.model_dump() == reference["targets"]
        assert spec.task(8).stages_seconds == reference["task8_breakdown_seconds"]

    def test_tasks_7_and_8_do_real_work(self, spec):
        assert spec.task(7).handler is HandlerKind.PATTERN_LIBRARY
        assert spec.task(8).handler is HandlerKind.CODEGEN
        assert {t.id for t in spec.tasks_with(HandlerKind.PROFILE)}.isdisjoint({7, 8, 9, 10, 12})

    def test_reduction_matches_networkx(self, spec):
        graph = nx.DiGraph((dep, t.id) for t in spec.tasks for dep in t.depends_on)
        expected = nx.transitive_reduction(graph)
        ours = {(dep, tid) for tid, deps in spec.reduced_dependencies.items() for dep in deps}
        assert ours == set(expected.edges)

    def test_reduction_drops_implied_edges(self, tmp_path):
        document = raw_spec()
        task_entry(document, 6)["depends_on"] = [1, 3, 4, 5]  # 1 is implied through 3
        spec = load_spec(write(tmp_path, document))
        assert spec.task(6).depends_on == (1, 3, 4, 5)
        assert spec.reduced_dependencies[6] == (3, 4, 5)

    def test_critical_path_is_the_longest_profiled_chain(self, spec):
        # Node weights as edge weights: every edge carries the seconds of the task it enters.
        graph = nx.DiGraph()
        for t in spec.tasks:
            graph.add_edge("start", t.id, seconds=t.seconds)
            graph.add_edges_from((dep, t.id, {"seconds": t.seconds}) for dep in t.depends_on)
        expected = nx.dag_longest_path_length(graph, weight="seconds")
        assert spec.critical_path_seconds == expected == 4620
        assert spec.remaining_path_seconds[22] == 360
        assert spec.remaining_path_seconds[1] == 4620

    def test_airflow_task_ids_start_with_the_spec_id(self, spec):
        assert spec.task(8).airflow_task_id == "task_08_code_generation"
        assert spec.task(15).airflow_task_id == "task_15_phase_3_review"

    def test_env_variable_selects_another_spec(self, tmp_path):
        other = write(tmp_path, raw_spec())
        assert spec_path_from_env({"K1N_WORKFLOW_SPEC": str(other)}) == other
        assert spec_path_from_env({}) == DEFAULT_SPEC_PATH


def break_task(task_id: int, **changes):
    def mutate(document):
        entry = task_entry(document, task_id)
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        return document

    return mutate


def duplicate_id(document):
    task_entry(document, 12)["id"] = 11
    return document


def add_task(**fields):
    def mutate(document):
        document["tasks"].append(fields)
        return document

    return mutate


BROKEN_SPECS = {
    "cycle": (
        break_task(3, depends_on=[1, 2, 6]),
        "task 3 (Architecture): dependency cycle: 3 (Architecture) -> 6 (Design ADR) -> 3",
    ),
    "unknown dependency": (
        break_task(9, depends_on=[8, 42]),
        "task 9 (Unit Tests): depends on unknown task id(s) [42]",
    ),
    "duplicate id": (duplicate_id, "task 11 (Generated Code Security): duplicate id 11"),
    "missing handler": (break_task(5, handler=None), "task 5 (Security Review): missing 'handler'"),
    "unknown handler": (
        break_task(5, handler="carrier_pigeon"),
        "task 5 (Security Review): field 'handler': Input should be",
    ),
    "negative seconds": (
        break_task(13, seconds=-5),
        "task 13 (Performance Benchmarks): field 'seconds': Input should be greater than or equal",
    ),
    "self dependency": (break_task(4, depends_on=[4]), "task 4 (Testing Setup): depends on itself"),
    "command without command": (
        break_task(1, handler="command"),
        "task 1 (Security Audit): handler 'command' needs a non-empty 'command'",
    ),
    "unknown field": (
        break_task(2, secconds=3),
        "task 2 (Buffer Bounds): unknown field 'secconds'",
    ),
    "missing name": (
        add_task(id=23, phase=4, handler="profile", seconds=1, timeout_seconds=5),
        "task 23: field 'name': Field required",
    ),
    "failing gates above total": (
        break_task(20, failing_gates=11),
        "task 20 (Staging Deploy): failing_gates cannot exceed quality_gates",
    ),
    "pass rate above one": (
        lambda d: {**d, "targets": {**d["targets"], "quality_gate_pass_rate_min": 95}},
        "field 'targets.quality_gate_pass_rate_min': Input should be less than or equal to 1",
    ),
    "empty task list": (lambda d: {**d, "tasks": []}, "'tasks' must be a non-empty list"),
    # Numbers that passed the check but broke the DAG build (OverflowError at parse).
    "infinite seconds": (
        break_task(1, seconds=float("inf")),
        "task 1 (Security Audit): field 'seconds': Input should be a finite number",
    ),
    "astronomic timeout": (
        break_task(1, timeout_seconds=1e300),
        "task 1 (Security Audit): field 'timeout_seconds': Input should be less than or equal",
    ),
    "a list as id": (
        break_task(1, id=[1]),
        "task #1 (Security Audit): field 'id': expected an integer, got a list",
    ),
    "a mapping as id": (
        break_task(1, id={"a": 1}),
        "task #1 (Security Audit): field 'id': expected an integer, got a dict",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SPECS))
def test_broken_spec_names_file_task_and_problem(tmp_path, case):
    mutate, expected = BROKEN_SPECS[case]
    path = write(tmp_path, mutate(raw_spec()))
    with pytest.raises(SpecError) as excinfo:
        load_spec(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "version: 1\ntasks:\n  - {id: 1, name: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: invalid YAML: .*\(line 4, column 1\)"):
        load_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nowhere\.yaml: file not found"):
        load_spec(tmp_path / "nowhere.yaml")


def test_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match="expected a mapping with 'tasks', got list"):
        load_spec(write(tmp_path, "- 1\n- 2\n"))


def test_every_spec_that_passes_the_check_builds_both_dags(tmp_path):
    """The largest numbers the model accepts still build DAGs (no overflow at parse)."""
    from k1n.dag_builders.workflow import build_baseline_dag, build_optimized_dag
    from k1n.workflow.spec import MAX_SECONDS

    document = raw_spec()
    for entry in document["tasks"]:
        entry["seconds"] = MAX_SECONDS
        entry["timeout_seconds"] = MAX_SECONDS
    spec = load_spec(write(tmp_path, document))
    # The same tasks, but Task 8 a group of stages in the optimized DAG.
    stages = len(CODEGEN_STAGE_TASK_IDS)
    baseline, optimized = build_baseline_dag(spec=spec), build_optimized_dag(spec=spec)
    assert len(baseline.tasks) == len(optimized.tasks) - (stages - 1)
