"""Task code gets an allow-listed environment: no Airflow secret, DB URL or connection URI
reaches an agent command, the generated code's tests or the codegen runner."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from k1n import checks, settings, storage
from k1n.codegen.compiling import run_scripts
from k1n.tasks import dispatch
from k1n.tasks.context import RunContext
from k1n.workflow.spec import TaskSpec
from tests.k1n.tasks.command_helpers import WRITE_RESULT, write_script

# What a worker of the compose deployment holds (values made up, each one unique).
SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-5f1c",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key-77ab",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:db-pass-19ce@db/airflow",
    "AIRFLOW__CELERY__BROKER_URL": "redis://:broker-pass-0d2e@redis:6379/0",
    "AIRFLOW_CONN_K1N_METRICS": "postgresql://k1n:metrics-pass-3a9b@db/k1n_metrics",
    "AIRFLOW_VAR_SOME_SETTING": "variable-value-c4d1",
    "AWS_SECRET_ACCESS_KEY": "s3-secret-8e2f",
    "K1N_AIRFLOW_PASSWORD": "cli-pass-6b70",
    "UNRELATED_TOKEN": "unrelated-token-91aa",
}


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENT_API_KEY", "agent-key-passed-on")
    monkeypatch.setenv("K1N_AGENT_ENV", "AGENT_API_KEY")


def assert_no_secret(text: str) -> None:
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert leaked == [], f"leaked: {leaked}"


def test_a_spec_task_printing_its_environment_shows_no_secret(
    worker_env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = write_script(tmp_path, "print-env.sh", f"env\n{WRITE_RESULT}\n")
    task = TaskSpec.model_validate(
        {
            "id": 1,
            "name": "Security Audit",
            "phase": 1,
            "handler": "command",
            "command": f"{script} {{task_id}}",
            "seconds": 30,
            "timeout_seconds": 60,
        }
    )
    ctx = RunContext(
        dag_id="k1n_test",
        run_id="manual__1",
        time_scale=1 / 1000,
        storage=storage.open_root(tmp_path / "storage"),
        cache_dir=tmp_path / "cache",
    )
    with caplog.at_level(logging.INFO, logger="k1n.tasks.command"):
        dispatch.run_task(task, ctx)
    printed = caplog.text
    assert "K1N_RESULT_FILE=" in printed and "PATH=" in printed  # it did print its environment
    assert "AGENT_API_KEY=agent-key-passed-on" in printed  # named in K1N_AGENT_ENV
    assert_no_secret(printed)


def test_generated_tests_see_no_secret(worker_env, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "test_env.py").write_text(
        "import json, os\n\n\ndef test_env():\n"
        f"    open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
    )
    result = checks.run_unit_tests(tmp_path / "out")
    assert result["quality_gates"] == {"passed": 1, "total": 1}
    environment = json.loads(seen.read_text())
    assert "PATH" in environment
    assert "AGENT_API_KEY" not in environment  # the agents' pass-through is for agents only
    assert_no_secret(json.dumps(environment))


def test_the_codegen_runner_sees_no_secret(worker_env, tmp_path: Path) -> None:
    script = tmp_path / "dump.py"
    script.write_text(
        "import json, os, sys\nopen(sys.argv[2], 'w').write(json.dumps(dict(os.environ)))\n"
    )
    (environment,) = run_scripts(script, [{}], "the environment dump")
    assert "PATH" in environment
    assert_no_secret(json.dumps(environment))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__CORE__FERNET_KEY is Airflow's or the CLI's own"),
        ("AIRFLOW_CONN_X", "AIRFLOW_CONN_X is Airflow's or the CLI's own"),
        ("K1N_AIRFLOW_PASSWORD", "K1N_AIRFLOW_PASSWORD is Airflow's or the CLI's own"),
        ("OK, bad name", "'bad name' is not a variable name"),
    ],
)
def test_k1n_agent_env_refuses_airflows_own_variables(value: str, message: str) -> None:
    with pytest.raises(settings.SettingsError, match=f"^K1N_AGENT_ENV: {message}") as caught:
        settings.k1n_settings({"K1N_AGENT_ENV": value})
    assert "\n" not in str(caught.value)


def test_agent_env_names_are_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("K1N_AGENT_ENV", " A_KEY , B_KEY ,")
    assert settings.agent_env_names() == ["A_KEY", "B_KEY"]
