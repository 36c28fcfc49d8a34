"""The command handler's contract: argv, environment, exit codes, timeouts, result files."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from k1n.tasks.command import (
    CommandFailed,
    HandlerError,
    HandlerTimeout,
    ResultFileError,
    build_argv,
)
from k1n.workflow.results import result_path, write_result
from tests.conftest import PROJECT_DIR
from tests.k1n.tasks.command_helpers import (
    WRITE_RESULT,
    messages,
    process_gone,
    run,
    wait_until_gone,
    write_script,
)

# --- run_command: the contract -------------------------------------------------------------------


def test_nonzero_exit_raises_with_exit_code_and_last_lines(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "noisy.sh",
        """\
        for i in $(seq 1 100); do echo "line $i"; done
        echo "giving up" >&2
        exit 3
        """,
    )

    with pytest.raises(CommandFailed) as excinfo:
        run("./noisy.sh", tmp_path)

    error = excinfo.value
    assert error.exit_code == 3
    assert "exited with code 3" in str(error)
    # The tail is the last 40 lines (stderr merged in order), not the first ones.
    expected_tail = [f"line {i}" for i in range(62, 101)] + ["giving up"]
    assert error.log_tail.splitlines() == expected_tail
    assert error.log_tail in str(error)
    assert "line 61\n" not in str(error)
    assert "line 1\n" not in str(error)


def test_death_by_signal_is_reported(tmp_path: Path) -> None:
    write_script(tmp_path, "killed.sh", "echo bye\nkill -KILL $$\n")

    with pytest.raises(CommandFailed) as excinfo:
        run("./killed.sh", tmp_path)

    assert excinfo.value.exit_code == -9
    assert "exited with code -9 (killed by SIGKILL)" in str(excinfo.value)
    assert excinfo.value.log_tail == "bye"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    write_script(
        tmp_path,
        "slow.sh",
        f"""\
        sleep 30 &
        echo "$$ $!" > {pid_file}
        echo "started"
        wait
        """,
    )

    started = time.monotonic()
    with pytest.raises(HandlerTimeout) as excinfo:
        run("./slow.sh", tmp_path, timeout=1)
    elapsed = time.monotonic() - started

    assert elapsed < 5, "SIGTERM should have stopped the script well before the SIGKILL grace"
    assert "timed out after 1 s" in str(excinfo.value)
    assert excinfo.value.timeout == 1
    assert "started" in excinfo.value.log_tail
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert len(pids) == 2  # the script and its background child
    assert wait_until_gone(pids), f"processes still running: {pids}"


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    write_script(
        tmp_path,
        "stubborn.sh",
        f"""\
        trap '' TERM
        echo "$$" > {pid_file}
        while true; do sleep 0.1; done
        """,
    )

    started = time.monotonic()
    with pytest.raises(HandlerTimeout):
        run("./stubborn.sh", tmp_path, timeout=1, kill_grace=0.5)

    assert time.monotonic() - started < 5
    assert wait_until_gone([int(pid_file.read_text())])


def test_background_child_holding_output_does_not_hang(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    write_script(
        tmp_path,
        "leaves-child.sh",
        f"""\
        sleep 30 &
        echo "$!" > {pid_file}
        {WRITE_RESULT}
        """,
    )

    started = time.monotonic()
    result = run("./leaves-child.sh", tmp_path)

    assert result["quality_gates"] == {"passed": 1, "total": 1}
    assert time.monotonic() - started < 8
    assert wait_until_gone([int(pid_file.read_text())])


def test_exit_0_without_result_file_raises_naming_the_path(tmp_path: Path) -> None:
    write_script(tmp_path, "silent.sh", "echo done\n")
    # A result left by an earlier try must not be mistaken for this try's result.
    work_dir = tmp_path / "work"
    write_result(work_dir, 1, {"quality_gates": {"passed": 1, "total": 1}})

    with pytest.raises(ResultFileError) as excinfo:
        run("./silent.sh", tmp_path)

    assert str(result_path(work_dir.resolve(), 1)) in str(excinfo.value)
    assert "not found" in str(excinfo.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ('{"quality_gates": {"passed": 3, "total": 2}}', "exceeds total"),
        ('{"result": "ok"}', "quality_gates"),
    ],
)
def test_malformed_result_file_raises_naming_the_path(
    tmp_path: Path, content: str, fragment: str
) -> None:
    write_script(tmp_path, "bad-result.sh", f"""printf '%s' '{content}' > "$K1N_RESULT_FILE"\n""")

    with pytest.raises(ResultFileError) as excinfo:
        run("./bad-result.sh", tmp_path)

    assert str(result_path((tmp_path / "work").resolve(), 1)) in str(excinfo.value)
    assert fragment in str(excinfo.value)


@pytest.mark.parametrize(
    "run_id_template",
    [
        "x; touch {marker}",
        "x && touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        'it\'s a "quoted" run | touch {marker}',
        "{{task_id}} {{oops}}\ntouch {marker}",
    ],
)
def test_run_id_is_one_argument_and_never_reaches_a_shell(
    tmp_path: Path, run_id_template: str
) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    run_id = run_id_template.format(marker=marker)
    argv_file = tmp_path / "argv.json"
    write_script(
        tmp_path,
        "args.sh",
        f"""\
        python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" > {argv_file}
        {WRITE_RESULT}
        """,
    )

    run("./args.sh {run_id} --task={task_id} 'two words' --run={run_id}", tmp_path, run_id=run_id)

    assert json.loads(argv_file.read_text()) == [run_id, "--task=1", "two words", f"--run={run_id}"]
    assert not marker.exists()


def test_placeholders_fill_all_fields_and_format_specs(tmp_path: Path) -> None:
    fields = {"task_id": 7, "run_id": "r", "work_dir": "/w", "project_dir": "/p"}
    argv = build_argv("prog {task_id:03d} {run_id}@{work_dir}:{project_dir} {{literal}}", fields)
    assert argv == ["prog", "007", "r@/w:/p", "{literal}"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("./args.sh {oops}", "unknown placeholder {oops}"),
        ("./args.sh --x={task_id}{nope}", "unknown placeholder {nope}"),
        ("./args.sh {run_id.__class__}", "unknown placeholder {run_id.__class__}"),
        ("./args.sh {run_id[0]}", "unknown placeholder {run_id[0]}"),
        ("./args.sh {}", "unknown placeholder {}"),
        ("./args.sh {run_id", "bad placeholder"),
        ("./args.sh {run_id:d}", "cannot fill"),
        ("./args.sh 'unterminated", "cannot split"),
        ("   ", "empty"),
    ],
)
def test_bad_templates_raise_before_running_anything(
    tmp_path: Path, template: str, fragment: str
) -> None:
    ran = tmp_path / "ran"
    write_script(tmp_path, "args.sh", f"touch {ran}\n")

    with pytest.raises(HandlerError) as excinfo:
        run(template, tmp_path)

    assert fragment in str(excinfo.value)
    assert not ran.exists()


def test_missing_program_raises(tmp_path: Path) -> None:
    with pytest.raises(HandlerError, match="program not found") as excinfo:
        run("ops/agents/no-such-handler.sh {task_id}", tmp_path)
    assert str(tmp_path.resolve() / "ops/agents/no-such-handler.sh") in str(excinfo.value)

    with pytest.raises(HandlerError, match="not found on PATH"):
        run("no-such-program-k1n {task_id}", tmp_path)


def test_non_executable_program_raises(tmp_path: Path) -> None:
    script = write_script(tmp_path, "plain.sh", "exit 0\n")
    script.chmod(0o644)
    with pytest.raises(HandlerError, match="not executable"):
        run("./plain.sh", tmp_path)

    (tmp_path / "a-dir").mkdir()
    with pytest.raises(HandlerError, match="not a file"):
        run("./a-dir", tmp_path)


def test_bare_program_name_is_looked_up_on_path(tmp_path: Path) -> None:
    # Also shows `{{`/`}}` for literal braces in a template.
    result = run(
        'bash -c \'printf %s "$1" > "$K1N_RESULT_FILE"\' bash '
        '\'{{"quality_gates": {{"passed": 2, "total": 2}}}}\'',
        tmp_path,
    )
    assert result == {"quality_gates": {"passed": 2, "total": 2}}


def test_environment_and_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K1N_TEST_PARENT_VAR", "inherited")
    monkeypatch.setenv("K1N_TEST_UNNAMED_VAR", "not passed on")
    monkeypatch.setenv("K1N_AGENT_ENV", "K1N_TEST_PARENT_VAR")
    write_script(
        tmp_path,
        "env.sh",
        f"""\
        {{ env | grep -E '^K1N_' | sort; echo "PWD_P=$(pwd -P)"; }} > {tmp_path}/env.txt
        {WRITE_RESULT}
        """,
    )
    work_dir = tmp_path / "runs" / "not-yet-created"

    run(
        "./env.sh",
        tmp_path,
        task_id=7,
        run_id="scheduled__2025-01-01T00:00:00+00:00",
        work_dir=work_dir,
        extra_env={"K1N_SCAN_DIR": "/src", "OTHER": "x"},
    )

    env = dict(
        line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if line
    )
    work_dir = work_dir.resolve()
    assert env["K1N_RUN_ID"] == "scheduled__2025-01-01T00:00:00+00:00"
    assert env["K1N_TASK_ID"] == "7"
    assert env["K1N_WORK_DIR"] == str(work_dir)
    assert env["K1N_RESULT_FILE"] == str(work_dir / "task-results" / "task-7.json")
    assert env["K1N_PROJECT_DIR"] == str(tmp_path.resolve())
    assert env["K1N_SCAN_DIR"] == "/src"
    assert env["K1N_TEST_PARENT_VAR"] == "inherited"  # named in K1N_AGENT_ENV
    assert "K1N_TEST_UNNAMED_VAR" not in env
    assert "K1N_AGENT_ENV" not in env
    assert env["PWD_P"] == str(work_dir)


def test_extra_env_cannot_override_contract_variables(tmp_path: Path) -> None:
    write_script(tmp_path, "ok.sh", WRITE_RESULT + "\n")
    with pytest.raises(HandlerError, match="K1N_RESULT_FILE"):
        run("./ok.sh", tmp_path, extra_env={"K1N_RESULT_FILE": "/tmp/elsewhere.json"})


def test_output_is_streamed_while_the_command_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_script(
        tmp_path,
        "slow-output.sh",
        f"""\
        echo "first line"
        sleep 1
        echo "second line" >&2
        {WRITE_RESULT}
        """,
    )

    run("./slow-output.sh", tmp_path)

    records = {
        record.getMessage(): record
        for record in caplog.records
        if record.getMessage().endswith(" line")
    }
    first = records["task 1 | first line"]
    second = records["task 1 | second line"]
    assert second.created - first.created >= 0.5


def test_undecodable_output_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_script(tmp_path, "bytes.sh", f"printf 'bad \\377 byte\\n'\n{WRITE_RESULT}\n")

    run("./bytes.sh", tmp_path)

    assert "task 1 | bad \ufffd byte" in messages(caplog)


def test_success_logs_command_and_gates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_script(tmp_path, "ok.sh", WRITE_RESULT + "\n")

    result = run("./ok.sh", tmp_path, run_id="r1")

    assert result == {"quality_gates": {"passed": 1, "total": 1}}
    logged = "\n".join(messages(caplog))
    assert f"running {tmp_path.resolve() / 'ok.sh'}" in logged
    assert "1/1 quality gates passed" in logged


def test_non_positive_timeout_is_rejected(tmp_path: Path) -> None:
    write_script(tmp_path, "ok.sh", WRITE_RESULT + "\n")
    with pytest.raises(ValueError, match="timeout"):
        run("./ok.sh", tmp_path, timeout=0)


def test_handler_errors_are_runtime_errors() -> None:
    for error in (CommandFailed, HandlerTimeout, ResultFileError):
        assert issubclass(error, HandlerError)
    assert issubclass(HandlerError, RuntimeError)


def test_the_agent_dies_with_its_task_process_killed_outright(tmp_path: Path) -> None:
    """SIGKILL of the task process runs no cleanup code: the kernel must end the agent."""
    import signal
    import subprocess
    import sys

    pid_file = tmp_path / "agent.pid"
    write_script(tmp_path, "agent.sh", f'echo $$ > "{pid_file}"\nexec sleep 300\n')
    task = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from k1n.tasks.command import run_command; "
            f"run_command('./agent.sh', task_id=1, run_id='r', work_dir=Path({str(tmp_path)!r}), "
            f"project_dir=Path({str(tmp_path)!r}), timeout=300)",
        ],
        cwd=PROJECT_DIR,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    agent = int(pid_file.read_text())
    assert not process_gone(agent)
    task.send_signal(signal.SIGKILL)
    task.wait()
    assert wait_until_gone([agent]), "the agent outlived its task process"


@pytest.mark.parametrize("run_id", ["-rf", "--output=/etc/passwd", "-"])
def test_a_run_id_cannot_become_an_option_of_the_agent(tmp_path: Path, run_id: str) -> None:
    marker = tmp_path / "ran"
    write_script(tmp_path, "agent.sh", f"touch {marker}\n{WRITE_RESULT}")
    with pytest.raises(HandlerError, match="would start with '-'"):
        run("./agent.sh {run_id}", tmp_path, run_id=run_id)
    assert not marker.exists()  # refused before the program started
    # Inside a token that is already an option, the value stays that option's value.
    assert build_argv("./agent.sh --run={run_id}", {"run_id": run_id}) == [
        "./agent.sh",
        f"--run={run_id}",
    ]
