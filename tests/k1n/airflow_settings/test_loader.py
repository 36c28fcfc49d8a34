"""`airflow_settings.yaml` and its loader: validation without Airflow, then a real Airflow home
(SQLite, `airflow db migrate` once per module) that the real file is loaded into."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from k1n.airflow_settings import loader as settings_loader
from k1n.airflow_settings.file import DEFAULT_SETTINGS_PATH, SettingsError, parse_settings
from k1n.airflow_settings.loader import SettingsImportError, load_settings, main
from k1n.metrics import POLICY_VARIABLES, RegressionPolicy
from k1n.settings import AIRFLOW_API_CONN_ID
from tests.conftest import PROJECT_DIR

VALID = """\
airflow:
  connections:
    - {conn_id: k1n_metrics, conn_type: postgres, conn_host: localhost, conn_port: 5432}
  pools:
    - {pool_name: codegen, pool_slot: 4, pool_description: shards}
  variables:
    - {variable_name: k1n_regression_min_history, variable_value: 5}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    return path


# -- the project's file -------------------------------------------------------------------------


def test_the_project_settings_file_declares_what_the_project_needs():
    assert DEFAULT_SETTINGS_PATH == PROJECT_DIR / "airflow_settings.yaml"
    settings = parse_settings()
    metrics, api = settings.connections
    assert metrics.conn_id == "k1n_metrics"
    assert metrics.conn_uri.startswith("postgresql://")
    assert (api.conn_id, api.conn_type) == (AIRFLOW_API_CONN_ID, "http")
    assert api.conn_host and api.conn_login and api.conn_password is None  # no secret committed
    # The workflow DAGs need no pool: nothing may depend on one being loaded.
    assert settings.pools == []
    variables = {v.variable_name: v.variable_value for v in settings.variables}
    assert variables["k1n_nightly_target_dag"] == "k1n_22task_optimized"
    assert variables["k1n_regression_history_runs"] == "14"
    assert variables["k1n_regression_min_history"] == "5"
    # Every regression knob is declared, and together they make a valid policy.
    assert set(POLICY_VARIABLES) <= set(variables)
    assert RegressionPolicy.from_variables(variables) == RegressionPolicy()


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "airflow:\n  connections:\n    - {conn_id: db, conn_type: postgres, conn_port: x}\n",
            "airflow.connections[0] (db): conn_port: Input should be a valid integer",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: db}\n",
            "airflow.connections[0] (db): conn_type: required field is missing",
        ),
        (
            "airflow:\n  pools:\n    - {pool_name: codegen, pool_slots: 4}\n",
            "airflow.pools[0] (codegen): unknown field 'pool_slots'",
        ),
        (
            "airflow:\n  pools:\n    - {pool_name: a, pool_slot: 1}\n"
            "    - {pool_name: a, pool_slot: 2}\n",
            "airflow.pools[1] (a): duplicate name (also airflow.pools[0])",
        ),
        (
            "airflow:\n  pools:\n    - {pool_name: codegen, pool_slot: -5}\n",
            "airflow.pools[0] (codegen): pool_slot: Input should be greater than or equal to -1",
        ),
        (
            "airflow:\n  variables:\n    - {variable_name: k1n_x, variable_value: }\n",
            "airflow.variables[0] (k1n_x): variable_value: must be a string, a number or "
            "true/false, got empty",
        ),
        (
            "airflow:\n  variables:\n    - {variable_name: 'a b', variable_value: 1}\n",
            "airflow.variables[0] (a b): variable_name: may only hold letters, digits",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: h, conn_type: http, conn_extra: '{x'}\n",
            "airflow.connections[0] (h): conn_extra: not valid JSON",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: u, conn_uri: 'postgresql://h/db', "
            "conn_host: h}\n",
            "airflow.connections[0] (u): conn_uri replaces the other fields; drop conn_host",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: u, conn_uri: 'not a uri'}\n",
            "airflow.connections[0] (u): expected a URI such as postgresql://",
        ),
        ("airflow:\n  pools: {codegen: 4}\n", "airflow.pools: must be a list"),
        ("airflow:\n  pool: []\n", "unknown field 'airflow.pool'"),
        # A key holding a line break (found by Hypothesis): quoted, and the message stays one line.
        ('airflow:\n  "\\n": null\n', "unknown field 'airflow.\\n'"),
        ("connections: []\n", "expected a mapping with an 'airflow' section"),
        ("airflow:\n  pools: [\n", "invalid YAML: "),
    ],
)
def test_a_malformed_file_gets_one_line_naming_file_and_entry(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as error:
        parse_settings(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_connection_given_as_a_uri_is_imported_as_that_uri(tmp_path):
    """Astro's `conn_uri` form: Airflow's `connections import` reads a URI string as is."""
    uri = "http://k1n-service:secret@airflow-apiserver:8080"
    path = write(tmp_path, f"airflow:\n  connections:\n    - {{conn_id: api, conn_uri: '{uri}'}}\n")
    (connection,) = parse_settings(path).connections
    assert connection.airflow_fields() == uri


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=r"nothing\.yaml: file not found"):
        parse_settings(tmp_path / "nothing.yaml")


def test_empty_sections_and_scalar_variables_are_accepted(tmp_path):
    path = write(
        tmp_path,
        "airflow:\n  connections:\n  pools:\n  variables:\n"
        "    - {variable_name: flag, variable_value: true}\n"
        "    - {variable_name: ratio, variable_value: 0.5}\n",
    )
    settings = parse_settings(path)
    assert settings.connections == [] and settings.pools == []
    assert [v.variable_value for v in settings.variables] == ["true", "0.5"]


@pytest.fixture
def fake_airflow(monkeypatch):
    """Replace the import subprocesses: record each command and the JSON file it was given."""
    calls: list[tuple[list[str], Any]] = []

    def run(argv, **kwargs):
        file = next(arg for arg in argv if arg.endswith(".json"))
        content = json.loads(Path(file).read_text())
        calls.append((argv, content))
        if "connections" in argv:
            out = "".join(f"Imported connection {conn_id}\n" for conn_id in content)
        elif "variables" in argv:
            out = f"{len(content)} of {len(content)} variables successfully updated.\n"
        else:
            out = f"Uploaded {len(content)} pool(s)\n"
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(settings_loader.subprocess, "run", run)
    return calls


def test_a_malformed_file_runs_no_import_at_all(tmp_path, fake_airflow):
    # A valid pool and variable precede the bad connection: none of them may be imported.
    path = write(tmp_path, VALID.replace("conn_port: 5432", "conn_port: 99999"))
    with pytest.raises(SettingsError, match="conn_port"):
        load_settings(path, airflow_env={})
    assert fake_airflow == []


def test_imports_write_the_formats_the_airflow_commands_read(tmp_path, fake_airflow):
    summary = load_settings(write(tmp_path, VALID), airflow_env={"AIRFLOW_HOME": "/x"})
    commands = {tuple(argv[3:5]): (argv, content) for argv, content in fake_airflow}
    assert list(commands) == [
        ("pools", "import"),
        ("connections", "import"),
        ("variables", "import"),
    ]
    argv, pools = commands["pools", "import"]
    assert pools == {"codegen": {"slots": 4, "description": "shards", "include_deferred": False}}
    argv, connections = commands["connections", "import"]
    assert argv[-1] == "--overwrite"
    assert connections == {
        "k1n_metrics": {"conn_type": "postgres", "host": "localhost", "port": 5432}
    }
    argv, variables = commands["variables", "import"]
    assert argv[-2:] == ["--action-on-existing-key", "overwrite"]
    assert variables == {"k1n_regression_min_history": "5"}
    assert summary.describe() == (
        f"loaded {tmp_path / 'airflow_settings.yaml'}: 1 connection(s) (k1n_metrics), "
        "1 pool(s) (codegen), 1 variable(s) (k1n_regression_min_history)"
    )


def test_connection_overrides(tmp_path, fake_airflow):
    path = write(tmp_path, VALID)
    load_settings(
        path,
        airflow_env={},
        connection_overrides={
            "k1n_metrics": {"host": "/tmp/pg-socket", "conn_schema": "metrics"},
            "extra_db": "postgresql://me@db.example:5433/other",
        },
    )
    (_, connections) = next(call for call in fake_airflow if "connections" in call[0])
    assert connections["k1n_metrics"] == {
        "conn_type": "postgres",
        "host": "/tmp/pg-socket",
        "schema": "metrics",
        "port": 5432,
    }
    assert connections["extra_db"] == "postgresql://me@db.example:5433/other"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"nope": {"host": "x"}}, "connection override nope: not declared field by field"),
        ({"k1n_metrics": "not a uri"}, "connection override k1n_metrics: expected a URI"),
        ({"k1n_metrics": {"port": "high"}}, "connection override k1n_metrics: conn_port: "),
        ({"k1n_metrics": {"hots": "x"}}, "connection override k1n_metrics: hots: unknown field"),
    ],
)
def test_a_bad_override_is_refused_before_any_import(tmp_path, fake_airflow, override, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, VALID), airflow_env={}, connection_overrides=override)
    assert fake_airflow == []


def test_a_connection_airflow_skipped_is_an_error(tmp_path, monkeypatch):
    def run(argv, **kwargs):
        out = "Could not import connection k1n_metrics: connection already exists.\n"
        return subprocess.CompletedProcess(argv, 0, out if "connections" in argv else "", "")

    monkeypatch.setattr(settings_loader.subprocess, "run", run)
    text = "airflow:\n  connections:\n    - {conn_id: k1n_metrics, conn_type: postgres}\n"
    with pytest.raises(SettingsImportError, match="did not import k1n_metrics"):
        load_settings(write(tmp_path, text), airflow_env={})


def test_command_line_check_and_errors(tmp_path, capsys, fake_airflow):
    assert main(["load", str(write(tmp_path, VALID)), "--check"]) == 0
    assert "valid: 1 connection(s), 1 pool(s), 1 variable(s)" in capsys.readouterr().out

    bad = write(tmp_path, "airflow:\n  pools:\n    - {pool_name: codegen}\n")
    assert main(["load", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "airflow.pools[0] (codegen): pool_slot: required field is missing" in err

    assert main(["load", str(write(tmp_path, VALID)), "--connection", "no-equals"]) == 2
    assert fake_airflow == []


# -- a real Airflow home ------------------------------------------------------------------------

_SNAPSHOT_SCRIPT = """
import json
from sqlalchemy import select
from airflow.models import Connection, Pool, Variable
from airflow.utils.session import create_session

with create_session() as session:
    print(json.dumps({
        "connections": {
            c.conn_id: {"conn_type": c.conn_type, "host": c.host, "port": c.port,
                        "login": c.login, "schema": c.schema, "extra": c.extra_dejson}
            for c in session.scalars(select(Connection))
        },
        "pools": {
            p.pool: {"slots": p.slots, "description": p.description}
            for p in session.scalars(select(Pool))
        },
        "variables": {v.key: v.val for v in session.scalars(select(Variable))},
    }))
"""


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=True
    )


def _snapshot(env: dict[str, str]) -> dict[str, Any]:
    """Connections, pools and variables of the home, read from its metadata database."""
    return json.loads(_airflow(env, "-c", _SNAPSHOT_SCRIPT).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def airflow_home_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a fresh Airflow home on SQLite, migrated once for this module."""
    home = tmp_path_factory.mktemp("settings-airflow-home")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__DATABASE__"))
    }
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    _airflow(env, "-m", "airflow", "db", "migrate")
    return env


@pytest.mark.integration
def test_a_malformed_file_changes_nothing_in_a_real_home(tmp_path, airflow_home_env):
    before = _snapshot(airflow_home_env)
    text = (
        "airflow:\n"
        "  pools:\n    - {pool_name: should_not_exist, pool_slot: 2}\n"
        "  variables:\n    - {variable_name: should_not_exist, variable_value: x}\n"
        "  connections:\n    - {conn_id: should_not_exist, conn_type: postgres, conn_port: 0}\n"
    )
    with pytest.raises(SettingsError, match=r"connections\[0\] \(should_not_exist\): conn_port"):
        load_settings(write(tmp_path, text), airflow_env=airflow_home_env)
    assert _snapshot(airflow_home_env) == before


@pytest.mark.integration
def test_the_project_settings_load_into_a_real_home_and_reload(airflow_home_env):
    metrics_uri = "postgresql://k1n:secret@127.0.0.1:5433/metrics"
    summary = load_settings(
        DEFAULT_SETTINGS_PATH,
        airflow_env=airflow_home_env,
        connection_overrides={
            "k1n_metrics": metrics_uri,  # declared by URI: replaced whole
            AIRFLOW_API_CONN_ID: {"host": "http://127.0.0.1:8080", "password": "pw"},
        },
    )
    expected = parse_settings()
    assert summary.connections == ("k1n_metrics", AIRFLOW_API_CONN_ID) and summary.pools == ()

    state = _snapshot(airflow_home_env)
    metrics = state["connections"]["k1n_metrics"]
    assert (metrics["conn_type"], metrics["host"], metrics["port"]) == (
        "postgres",
        "127.0.0.1",
        5433,
    )
    assert (metrics["login"], metrics["schema"]) == ("k1n", "metrics")
    api = state["connections"][AIRFLOW_API_CONN_ID]
    declared_api = expected.connections[1]
    assert (api["conn_type"], api["host"]) == ("http", "http://127.0.0.1:8080")  # the override
    assert api["login"] == declared_api.conn_login  # merged with the declared fields
    assert state["pools"].keys() <= {"default_pool"}
    assert state["variables"] == {v.variable_name: v.variable_value for v in expected.variables}

    # Loading again (here: without the overrides) overwrites instead of failing or skipping.
    load_settings(DEFAULT_SETTINGS_PATH, airflow_env=airflow_home_env)
    reloaded = _snapshot(airflow_home_env)["connections"]
    assert reloaded["k1n_metrics"]["host"] == "postgres" and reloaded["k1n_metrics"]["port"] == 5432
    assert reloaded[AIRFLOW_API_CONN_ID]["host"] == declared_api.conn_host


def test_an_entry_whose_name_is_not_text_is_named_briefly(tmp_path: Path) -> None:
    """The entry's label never carries the whole entry (Hypothesis found a 600-char line)."""
    big_name = {f"key{i}": ["value"] * 20 for i in range(20)}
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(yaml.safe_dump({"airflow": {"connections": [{"conn_id": big_name}]}}))
    with pytest.raises(SettingsError) as caught:
        parse_settings(path)
    message = str(caught.value)
    assert "airflow.connections[0]" in message and "conn_id" in message
    assert "\n" not in message and len(message) < 300
