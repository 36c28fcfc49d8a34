"""What the command-handler tests share: scripts written on the fly, one handler run, waits."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from k1n.tasks.command import (
    run_command,
)
from tests.conftest import PROJECT_DIR

AGENTS = PROJECT_DIR / "ops" / "agents"
LOGGER = "k1n.tasks.command"

# Planted findings are assembled at run time so this file does not trip the scanners itself.
PLANTED_PASSWORD = "pass" + 'word = "hunter22"'
PLANTED_SECRET_VALUE = "hunter22"

WRITE_RESULT = """printf '{"quality_gates": {"passed": 1, "total": 1}}' > "$K1N_RESULT_FILE" """


def write_script(directory: Path, name: str, body: str) -> Path:
    """An executable bash script `directory/name` running `body`."""
    path = directory / name
    path.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n" + textwrap.dedent(body), encoding="utf-8"
    )
    path.chmod(0o755)
    return path


def run(template: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """run_command with test defaults: project_dir = tmp_path, work_dir = tmp_path/work."""
    kwargs: dict[str, Any] = {
        "task_id": 1,
        "run_id": "manual__2025-01-01",
        "work_dir": tmp_path / "work",
        "project_dir": tmp_path,
        "timeout": 10,
    }
    kwargs.update(overrides)
    return run_command(template, **kwargs)


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # The state follows the parenthesised command name, which may itself contain spaces.
    return stat_line.rpartition(")")[2].split()[0] in {"Z", "X"}


def wait_until_gone(pids: list[int], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(process_gone(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return all(process_gone(pid) for pid in pids)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]
