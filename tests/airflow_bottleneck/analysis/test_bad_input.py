"""Bad input to the report CLI and the loaders: one line on stderr, exit 2, nothing written;
Markdown and CSV that a hostile task name cannot break. Each case failed before its fix."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_bottleneck.analysis import AnalysisInputError
from airflow_bottleneck.render import render_report
from k1n.readers import load_conductor, load_profiles
from k1n.reporting.cli import report_main
from k1n.reporting.extension import K1NExtension
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    analyze,
    dag_graph,
    diamond_spec,
    instance,
    reference_profiles,
)

GOOD = {
    "task_id": 1,
    "start_time": "2026-11-01T08:00:00",
    "end_time": "2026-11-01T08:05:00",
    "duration_ms": 300_000,
    "exit_code": 0,
}


def one_profile(directory: Path, **changes) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "task-1-profile.json").write_text(json.dumps({**GOOD, **changes}))
    return directory


def conductor(tmp_path: Path, time_text: str) -> Path:
    path = tmp_path / "execution.json"
    path.write_text(
        '{"workflowId": "w", "tasks": [{"referenceTaskName": "task1", "taskType": "SIMPLE", '
        f'"status": "COMPLETED", "startTime": {time_text}, "endTime": {time_text}}}]}}'
    )
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = report_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err and "Traceback" not in err
    assert len(err) < 400


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda d: one_profile(d, duration_ms=10**300), "duration_ms must be an integer from 0"),
        (lambda d: one_profile(d, task_id=10**200), "task_id <huge int> does not match"),
        (lambda d: one_profile(d, task_id=[1]), "task_id [1] does not match"),
        (
            lambda d: one_profile(d, start_time="0001-01-01T00:00:00"),
            "start_time: 0001-01-01T00:00:00+00:00 is outside 1970..2199",
        ),
        (
            lambda d: one_profile(d, end_time="9999-12-31T23:59:59"),
            "end_time: 9999-12-31T23:59:59+00:00 is outside 1970..2199",
        ),
        (lambda d: _raw(d, "[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (lambda d: _raw(d, '{"task_id": ' + "9" * 5000 + "}"), "Exceeds the limit"),
        (lambda d: _raw(d, b"\xff\xfe{}"), "not UTF-8 text"),
        (lambda d: _special(d, os.mkfifo), "not a regular file"),
        (lambda d: _special(d, lambda p: p.symlink_to("/dev/zero")), "not a regular file"),
    ],
)
def test_bad_profiles_are_one_line_and_exit_2(tmp_path, capsys, build, message) -> None:
    directory = build(tmp_path / "profiles")
    assert_one_line_error(*run_cli([f"profiles:{directory}"], capsys), message)


def _raw(directory: Path, content: str | bytes) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "task-1-profile.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return directory


def _special(directory: Path, make) -> Path:
    directory.mkdir(exist_ok=True)
    make(directory / "task-1-profile.json")
    return directory


@pytest.mark.parametrize("time_text", ["NaN", "Infinity", "-Infinity", "1e300", "9" * 400, "-5"])
def test_conductor_times_out_of_range_are_one_line(tmp_path, capsys, time_text) -> None:
    path = conductor(tmp_path, time_text)
    assert_one_line_error(
        *run_cli([f"conductor:{path}"], capsys), "startTime must be epoch milliseconds"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--time-scale", "1e400"], "--time-scale: time_scale: expected a number"),
        (["--time-scale", "nan"], "--time-scale: time_scale: expected a number"),
        (["--timeout", "-1"], "--timeout: -1 is outside [0.1, 3600]"),
        (["--timeout", "1e400"], "--timeout: 1e400 is outside"),
        (["--top", "0"], "--top: 0 is outside [1, 10000]"),
        (["--top", "9" * 30], "is outside [1, 10000]"),
    ],
)
def test_out_of_range_options_are_one_line(tmp_path, capsys, option, message) -> None:
    profiles = reference_profiles(tmp_path / "profiles", load_spec())
    assert_one_line_error(*run_cli([f"profiles:{profiles}", *option], capsys), message)


def test_a_failing_output_writes_no_summary_either(tmp_path, capsys) -> None:
    profiles = reference_profiles(tmp_path / "profiles", load_spec())
    before = sorted(p.name for p in profiles.iterdir())
    code, out, err = run_cli(
        [f"profiles:{profiles}", "--write-summary", "--output", "/nonexistent/dir/report.txt"],
        capsys,
    )
    assert_one_line_error(code, out, err, "nothing was written")
    assert sorted(p.name for p in profiles.iterdir()) == before  # no summary.json


def test_a_hostile_task_name_cannot_break_markdown_or_csv() -> None:
    hostile = "a | b\n# Heading `x`"
    report = analyze(
        [instance(hostile, 0, 5), instance("=HYPERLINK(1)", 5, 6)],
        diamond_spec(),
        dag_graph((hostile, "=HYPERLINK(1)")),
        uses_spec=False,
    )
    markdown = render_report(report, "markdown")
    assert not any(line.startswith("# Heading") for line in markdown.splitlines())
    lines = markdown.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| # | task |"))
    cells = re.compile(r"(?<!\\)\|")
    row = next(line for line in lines[header:] if "Heading" in line)
    assert len(cells.findall(row)) == len(cells.findall(lines[header]))  # no extra column
    assert r"a \| b" in markdown
    cells = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert {row["task"] for row in cells} == {hostile, "'=HYPERLINK(1)"}


# -- property-based: any file content is a report or one clean error --------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
PROFILE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "task_id": st.one_of(st.integers(), st.just(1), JSON_VALUES),
        "start_time": st.one_of(st.datetimes().map(lambda d: d.isoformat()), JSON_VALUES),
        "end_time": st.one_of(st.datetimes().map(lambda d: d.isoformat()), JSON_VALUES),
        "duration_ms": st.one_of(st.integers(), st.floats(), JSON_VALUES),
        "exit_code": st.one_of(st.integers(), JSON_VALUES),
    },
)
FUZZ = settings(
    max_examples=200,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(document=st.one_of(PROFILE_LIKE, JSON_VALUES))
def test_any_profile_document_is_a_report_or_one_error(tmp_path, document) -> None:
    directory = tmp_path / "fuzz-profiles"
    directory.mkdir(exist_ok=True)
    (directory / "task-1-profile.json").write_text(json.dumps(document))
    spec = load_spec()
    try:
        load_profiles(directory, spec).analyze(K1NExtension(spec))
    except AnalysisInputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 500


@FUZZ
@given(data=st.binary(max_size=512))
def test_any_bytes_as_a_profile_are_a_report_or_one_error(tmp_path, data) -> None:
    directory = tmp_path / "fuzz-bytes"
    directory.mkdir(exist_ok=True)
    (directory / "task-1-profile.json").write_bytes(data)
    spec = load_spec()
    try:
        load_profiles(directory, spec).analyze(K1NExtension(spec))
    except AnalysisInputError as exc:
        assert "\n" not in str(exc)


CONDUCTOR_TASK = st.fixed_dictionaries(
    {},
    optional={
        "referenceTaskName": st.one_of(
            st.sampled_from(["task1", "task_08_x", "fork"]), JSON_VALUES
        ),
        "taskType": st.one_of(st.sampled_from(["SIMPLE", "FORK", "JOIN"]), JSON_VALUES),
        "status": st.one_of(st.sampled_from(["COMPLETED", "FAILED"]), JSON_VALUES),
        "startTime": st.one_of(st.integers(), st.floats(), JSON_VALUES),
        "endTime": st.one_of(st.integers(), st.floats(), JSON_VALUES),
        "retryCount": st.one_of(st.integers(), JSON_VALUES),
    },
)


@FUZZ
@given(
    document=st.one_of(
        st.fixed_dictionaries(
            {"workflowId": st.text(max_size=5), "tasks": st.lists(CONDUCTOR_TASK, max_size=4)}
        ),
        JSON_VALUES,
    )
)
def test_any_conductor_execution_is_a_report_or_one_error(tmp_path, document) -> None:
    path = tmp_path / "execution.json"
    path.write_text(json.dumps(document))
    spec = load_spec()
    try:
        load_conductor(path, spec).analyze(K1NExtension(spec))
    except AnalysisInputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 500
