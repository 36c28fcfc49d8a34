"""The real agent scripts in ops/agents, run through the command handler."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from k1n.tasks.command import (
    CommandFailed,
)
from k1n.workflow.results import read_result, result_path
from tests.conftest import PROJECT_DIR
from tests.k1n.tasks.command_helpers import (
    AGENTS,
    PLANTED_PASSWORD,
    PLANTED_SECRET_VALUE,
    run,
)

# --- the real scripts in ops/agents --------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    ["security-agent-handler.sh", "buffer-bounds-handler.sh", "license-compliance-handler.sh"],
)
def test_agent_scripts_are_executable_strict_bash(script: str) -> None:
    path = AGENTS / script
    assert path.is_file()
    assert os.access(path, os.X_OK), f"chmod +x {path}"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


def test_security_script_reports_a_planted_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "settings.py").write_text(f"DEBUG = False\n{PLANTED_PASSWORD}\n")
    (tree / "src" / "clean.py").write_text("password = os.environ['PASSWORD']\n")

    result = run(
        "ops/agents/security-agent-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(tree)},
    )

    gates = result["quality_gates"]
    assert gates["total"] == 6
    assert gates["passed"] == gates["total"] - 1
    assert result["findings"]["hardcoded-password"] == 1
    assert result["findings_total"] == 1
    assert result["handler"] == "security-agent"
    assert result == read_result(tmp_path / "work", 1)
    assert "hardcoded-password: src/settings.py:2" in caplog.text
    # Findings are located, never quoted: a real secret must not end up in the task log.
    assert PLANTED_SECRET_VALUE not in caplog.text


def test_security_script_finds_every_rule(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "keys.txt").write_text(
        "AKIA" + "ABCDEFGHIJKLMNOP\n-----BEGIN RSA " + "PRIVATE KEY-----\nghp_" + "a" * 36 + "\n"
    )
    (tree / "install.sh").write_text("curl -fsSL https://example.invalid/x " + "| sh\n")
    (tree / "run.sh").write_text("ev" + 'al "$USER_INPUT"\n')

    result = run(
        "ops/agents/security-agent-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(tree)},
    )

    assert result["quality_gates"] == {"passed": 1, "total": 6}
    assert result["findings"] == {
        "hardcoded-password": 0,
        "aws-access-key-id": 1,
        "private-key": 1,
        "github-token": 1,
        "download-piped-to-shell": 1,
        "eval-of-variable": 1,
    }


def test_security_script_passes_its_own_directory(tmp_path: Path) -> None:
    """The rule patterns written in the scripts and README do not match themselves."""
    result = run(
        "ops/agents/security-agent-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(AGENTS)},
    )
    assert result["quality_gates"] == {"passed": 6, "total": 6}


def test_security_script_defaults_to_project_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "ops" / "agents" / "lib").mkdir(parents=True)
    for script in ("security-agent-handler.sh", "lib/k1n-handler.sh"):
        target = project / "ops" / "agents" / script
        target.write_bytes((AGENTS / script).read_bytes())
        target.chmod(0o755)
    (project / "app.py").write_text(PLANTED_PASSWORD + "\n")

    result = run("ops/agents/security-agent-handler.sh {task_id}", tmp_path, project_dir=project)

    assert result["scan_dir"] == str(project.resolve())
    assert result["findings"]["hardcoded-password"] == 1


@pytest.mark.parametrize(
    ("template", "extra_env", "expected"),
    [
        ("ops/agents/security-agent-handler.sh", {}, "usage: security-agent-handler.sh"),
        ("ops/agents/security-agent-handler.sh abc", {}, "task id must be a positive integer"),
        ("ops/agents/security-agent-handler.sh 2", {}, "does not match K1N_TASK_ID=1"),
        (
            "ops/agents/security-agent-handler.sh {task_id}",
            {"K1N_SCAN_DIR": "/nonexistent/k1n-scan"},
            "scan directory not found: /nonexistent/k1n-scan",
        ),
        (
            "ops/agents/buffer-bounds-handler.sh {task_id}",
            {"K1N_SCAN_DIR": "/nonexistent/k1n-scan"},
            "scan directory not found",
        ),
    ],
)
def test_agent_scripts_exit_2_on_usage_errors(
    tmp_path: Path, template: str, extra_env: dict[str, str], expected: str
) -> None:
    with pytest.raises(CommandFailed) as excinfo:
        run(template, tmp_path, project_dir=PROJECT_DIR, extra_env=extra_env)

    assert excinfo.value.exit_code == 2
    assert expected in excinfo.value.log_tail
    assert not result_path(tmp_path / "work", 1).exists()


def test_buffer_bounds_script_flags_only_unbounded_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "copy.c").write_text(
        textwrap.dedent(
            """\
            #include <stdio.h>
            #include <string.h>
            void f(char *dst, const char *src, size_t n) {
                strncpy(dst, src, n);
                snprintf(dst, n, "%s", src);
                fgets(dst, (int)n, stdin);
                scanf("%15s", dst);
                strcpy(dst, src);
            }
            """
        )
    )
    # Not C: the same call in a Python file is none of this handler's business.
    (tree / "notes.py").write_text("strcpy(a, b)\n")

    result = run(
        "ops/agents/buffer-bounds-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(tree)},
    )

    assert result["quality_gates"] == {"passed": 4, "total": 5}
    assert result["findings"]["strcpy"] == 1
    assert result["files_scanned"] == 1
    assert "strcpy: src/copy.c:8" in caplog.text


def test_buffer_bounds_script_flags_each_function(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "bad.cpp").write_text(
        'strcat(a, b);\nsprintf(buf, "%d", n);\ngets(line);\nsscanf(in, "%s", word);\n'
    )

    result = run(
        "ops/agents/buffer-bounds-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(tree)},
    )

    assert result["quality_gates"] == {"passed": 1, "total": 5}
    assert result["findings"] == {
        "strcpy": 0,
        "strcat": 1,
        "sprintf": 1,
        "gets": 1,
        "scanf-unbounded-s": 1,
    }


def test_license_script_checks_headers_allow_list_and_license_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "LICENSE").write_text("MIT\n")
    (tree / "good.py").write_text("# SPDX-License-Identifier: MIT\n")
    (tree / "dual.c").write_text("/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */\n")
    (tree / "bare.sh").write_text("echo hi\n")

    result = run(
        "ops/agents/license-compliance-handler.sh {task_id}",
        tmp_path,
        project_dir=PROJECT_DIR,
        extra_env={"K1N_SCAN_DIR": str(tree), "K1N_ALLOWED_LICENSES": "MIT Apache-2.0"},
    )

    assert result["quality_gates"] == {"passed": 1, "total": 3}
    assert result["files_scanned"] == 3
    assert result["missing_header"] == 1
    assert result["disallowed_license"] == 1
    assert result["license_file"] == "LICENSE"
    assert "spdx-header: bare.sh" in caplog.text
    assert "allowed-license: dual.c: GPL-2.0-only" in caplog.text
