"""The `command` handler: run an external agent program and read the result file it wrote.

`run_command` runs the program named by the task's `command` template (no shell), streams its
output into the task log and returns the validated result file (`k1n.workflow.results`).
Output goes through `logging`, which Airflow's task log captures.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import string
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from k1n import settings
from k1n.child_env import AGENT_INPUTS, child_environment
from k1n.workflow.results import (
    HandlerError,
    ResultFileError,
    read_result,
    result_path,
)

__all__ = [
    "COMMAND_FIELDS",
    "CONTRACT_ENV_VARS",
    "CommandFailed",
    "HandlerError",
    "HandlerTimeout",
    "ResultFileError",
    "build_argv",
    "run_command",
]

logger = logging.getLogger(__name__)

#: Placeholders a command template may use, e.g. `ops/agents/x.sh {task_id} --run {run_id}`.
COMMAND_FIELDS = frozenset({"task_id", "run_id", "work_dir", "project_dir"})
#: Environment variables every command gets; `extra_env` may not override them.
CONTRACT_ENV_VARS = frozenset(
    {"K1N_RUN_ID", "K1N_TASK_ID", "K1N_WORK_DIR", "K1N_RESULT_FILE", "K1N_PROJECT_DIR"}
)
#: Lines of output kept for the error message of a failed or timed-out command.
LOG_TAIL_LINES = 40
#: Seconds between SIGTERM and SIGKILL when a command has to be stopped.
KILL_GRACE_SECONDS = 5.0
#: Seconds to wait for the output pipe to close after the command exited (see `_finish_output`).
OUTPUT_DRAIN_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
#: Longest line read at once; a longer line is logged in pieces instead of held in memory whole.
MAX_LINE_BYTES = 64 * 1024


class CommandFailed(HandlerError):
    """The command exited non-zero; `exit_code` and the last lines of output are attached."""

    def __init__(self, message: str, *, exit_code: int, log_tail: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = log_tail


class HandlerTimeout(HandlerError):
    """The command ran past its timeout and its process group was killed."""

    def __init__(self, message: str, *, timeout: float, log_tail: str) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.log_tail = log_tail


def run_command(
    template: str,
    *,
    task_id: int,
    run_id: str,
    work_dir: Path,
    project_dir: Path,
    timeout: float,
    extra_env: Mapping[str, str] | None = None,
    kill_grace: float = KILL_GRACE_SECONDS,
) -> dict[str, Any]:
    """Run the command of task `task_id` and return the result file it wrote.

    `template` is split like a shell would split it (`shlex.split`), and only then are the
    placeholders `{task_id}`, `{run_id}`, `{work_dir}` and `{project_dir}` filled in, token by
    token. No shell is involved, so a value with spaces, quotes or `;` stays one argument. Write
    `{{` and `}}` for literal braces. A program path containing `/` is relative to `project_dir`;
    a bare name is looked up on `PATH`.

    The command runs in `work_dir` (created if missing). It does not inherit the worker's
    environment, which holds Airflow's secrets: it gets the allow-list of `k1n.child_env`
    (with `K1N_AGENT_ENV`'s names), `extra_env`, and `K1N_RUN_ID`, `K1N_TASK_ID`,
    `K1N_WORK_DIR`, `K1N_RESULT_FILE` and `K1N_PROJECT_DIR`. Its stdout and stderr are logged
    line by line as they arrive.

    Raises:
        HandlerError: the template or program is unusable, or `extra_env` overrides a contract
            variable.
        HandlerTimeout: the command ran longer than `timeout` seconds; its whole process group
            was sent SIGTERM and, after `kill_grace` seconds, SIGKILL.
        CommandFailed: the command exited non-zero.
        ResultFileError: the command exited 0 but its result file is missing or invalid.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    # Absolute paths: the child runs in work_dir, where a relative path would point elsewhere.
    work_dir = Path(work_dir).resolve()
    project_dir = Path(project_dir).resolve()
    result_file = result_path(work_dir, task_id)

    env = _command_env(
        task_id=task_id,
        run_id=run_id,
        work_dir=work_dir,
        project_dir=project_dir,
        result_file=result_file,
        extra_env=extra_env,
    )
    fields = {
        "task_id": task_id,
        "run_id": run_id,
        "work_dir": str(work_dir),
        "project_dir": str(project_dir),
    }
    argv = build_argv(template, fields)
    argv[0] = _resolve_program(argv[0], project_dir=project_dir, search_path=env.get("PATH"))

    result_file.parent.mkdir(parents=True, exist_ok=True)
    # A result left by an earlier try of this task would otherwise pass for this try's result
    # if the command exits 0 without writing one.
    result_file.unlink(missing_ok=True)

    label = f"task {task_id}"
    logger.info("%s: running %s (timeout %g s, cwd %s)", label, shlex.join(argv), timeout, work_dir)
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    try:
        process = subprocess.Popen(
            argv,
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session and process group, so a timeout can kill the command together
            # with everything it started, and the worker's signals do not reach it directly.
            start_new_session=True,
            # ...but if this task process is killed outright (SIGKILL, a lost worker), the
            # command must not live on: the kernel kills it when its parent dies.
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        raise HandlerError(f"{label}: cannot start {argv[0]}: {exc}") from exc

    assert process.stdout is not None  # stdout=PIPE
    pump = threading.Thread(
        target=_pump_output,
        args=(process.stdout, tail, label),
        name=f"k1n-output-task-{task_id}",
        daemon=True,
    )
    pump.start()
    try:
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.error("%s: timed out after %g s; stopping its process group", label, timeout)
            _stop_process_group(process, grace=kill_grace)
            _finish_output(pump, process, label)
            log_tail = "\n".join(tail)
            raise HandlerTimeout(
                f"{label}: command timed out after {timeout:g} s and was killed: "
                f"{shlex.join(argv)}\n{_format_tail(log_tail)}",
                timeout=timeout,
                log_tail=log_tail,
            ) from None
        _finish_output(pump, process, label)
    finally:
        # Reached with the command still running only when this thread is interrupted (e.g.
        # Airflow stopping the task). The command's own session would let it outlive the task.
        if process.poll() is None:
            _stop_process_group(process, grace=kill_grace)

    elapsed = time.monotonic() - started
    if exit_code != 0:
        log_tail = "\n".join(tail)
        how = f"exited with code {exit_code}"
        if exit_code < 0:  # Popen's way of saying the command died of a signal
            how += f" (killed by {_signal_name(-exit_code)})"
        logger.error("%s: command %s after %.1f s", label, how, elapsed)
        raise CommandFailed(
            f"{label}: command {how}: {shlex.join(argv)}\n{_format_tail(log_tail)}",
            exit_code=exit_code,
            log_tail=log_tail,
        )

    logger.info("%s: command exited 0 after %.1f s; reading %s", label, elapsed, result_file)
    result = read_result(work_dir, task_id)
    gates = result["quality_gates"]
    logger.info("%s: %d/%d quality gates passed", label, gates["passed"], gates["total"])
    return result


def build_argv(template: str, fields: Mapping[str, object]) -> list[str]:
    """Split `template` into argv, then fill placeholders from `fields` in each token.

    Splitting first is what keeps substituted values, whatever they contain, inside the token
    they were written in. Only plain `{name}` placeholders for names in `fields` are allowed,
    optionally with a format spec (`{task_id:03d}`); attribute and index access are refused so
    a template cannot reach into the values' internals.
    """
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise HandlerError(f"cannot split command template {template!r}: {exc}") from exc
    if not tokens:
        raise HandlerError("command template is empty")

    formatter = string.Formatter()
    argv = []
    for token in tokens:
        try:
            names = [name for _, name, _, _ in formatter.parse(token) if name is not None]
        except ValueError as exc:  # e.g. a lone "{" or "}"
            raise HandlerError(f"bad placeholder in command token {token!r}: {exc}") from exc
        unknown = sorted({name for name in names if name not in fields})
        if unknown:
            raise HandlerError(
                f"unknown placeholder {', '.join('{' + n + '}' for n in unknown)} in command "
                f"{template!r}; known: {', '.join(sorted(fields))} (write {{{{ }}}} for a "
                "literal brace)"
            )
        try:
            filled = token.format_map(fields)
        except (ValueError, TypeError) as exc:  # a format spec that does not fit the value
            raise HandlerError(f"cannot fill command token {token!r}: {exc}") from exc
        if filled.startswith("-") and not token.startswith("-"):
            # A value (a run id is anyone's text) must not become an option of the program.
            raise HandlerError(
                f"command token {token!r} would start with '-' once filled: a value such as a "
                "run id cannot be passed where the program reads options"
            )
        argv.append(filled)
    return argv


# --- internals ---------------------------------------------------------------------------------


def _command_env(
    *,
    task_id: int,
    run_id: str,
    work_dir: Path,
    project_dir: Path,
    result_file: Path,
    extra_env: Mapping[str, str] | None,
) -> dict[str, str]:
    """The allow-listed environment (`k1n.child_env`), `extra_env` and the contract variables."""
    extra = dict(extra_env or {})
    clashing = sorted(CONTRACT_ENV_VARS.intersection(extra))
    if clashing:
        # Overriding e.g. K1N_RESULT_FILE would make the command write where nobody reads.
        raise HandlerError(f"extra_env may not override contract variables: {', '.join(clashing)}")
    not_strings = sorted(key for key, value in extra.items() if not isinstance(value, str))
    if not_strings:
        raise HandlerError(f"extra_env values must be strings: {', '.join(not_strings)}")
    return child_environment(
        {
            **extra,
            "K1N_RUN_ID": run_id,
            "K1N_TASK_ID": str(task_id),
            "K1N_WORK_DIR": str(work_dir),
            "K1N_RESULT_FILE": str(result_file),
            "K1N_PROJECT_DIR": str(project_dir),
        },
        pass_through=[*AGENT_INPUTS, *settings.agent_env_names()],
    )


def _resolve_program(program: str, *, project_dir: Path, search_path: str | None) -> str:
    """The absolute path of an executable `program`, or a `HandlerError` saying why not."""
    if "/" in program:
        path = Path(program)
        if not path.is_absolute():
            path = project_dir / path
    else:
        found = shutil.which(program, path=search_path)
        if found is None:
            raise HandlerError(f"program {program!r} not found on PATH")
        path = Path(found)
    if not path.exists():
        raise HandlerError(f"program not found: {path}")
    if not path.is_file():
        raise HandlerError(f"program is not a file: {path}")
    if not os.access(path, os.X_OK):
        raise HandlerError(f"program is not executable (try chmod +x): {path}")
    return str(path)


def _pump_output(stream: IO[bytes], tail: deque[str], label: str) -> None:
    """Log each line of `stream` as it arrives and keep the last ones in `tail`."""
    with stream:
        lines: Iterable[bytes] = iter(lambda: stream.readline(MAX_LINE_BYTES), b"")
        for raw in lines:
            # Agents print whatever they like; a stray non-UTF-8 byte must not kill the log.
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            logger.info("%s | %s", label, line)


def _finish_output(pump: threading.Thread, process: subprocess.Popen[bytes], label: str) -> None:
    """Wait for the output pump to reach end of file after the command has exited.

    A background child the command left behind still holds the pipe open, so end of file may
    never come: after a short wait such leftovers are killed with the rest of the group.
    """
    pump.join(OUTPUT_DRAIN_SECONDS)
    if pump.is_alive():
        logger.warning("%s: processes left behind still hold the output open; killing them", label)
        _signal_group(process.pid, signal.SIGKILL)
        pump.join(OUTPUT_DRAIN_SECONDS)


def _stop_process_group(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM the command's process group, SIGKILL it after `grace` s, and reap the command."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        logger.warning("command did not stop within %g s of SIGTERM; sending SIGKILL", grace)
    # Also after a clean exit of the leader: children that ignored SIGTERM may still be running.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the task process dies (Linux `PR_SET_PDEATHSIG`;
    only a prctl call, which is safe between fork and exec)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send `signum` to process group `pgid`; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _format_tail(log_tail: str) -> str:
    """The output tail as it appears in an exception message."""
    if not log_tail:
        return "(no output)"
    return f"last {len(log_tail.splitlines())} lines of output:\n{log_tail}"
