"""airflow-bottleneck installed the way a team installs it: `make dist`, then one `pip install`
of the wheel into a new virtualenv that holds only apache-airflow 3.3.2 (at the versions the
project's constraints lock), with an empty plugins folder and no checkout on `PYTHONPATH`.

A real api-server, scheduler (LocalExecutor) and dag-processor run a DAG the package has never
seen, written here: a fan-out with a mapped task and a slow branch. The plugin's report of that
run must name the slow branch as the critical path, and refuse an anonymous request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_bottleneck.readers.rest_client import AirflowRestClient
from k1n_local.stack import free_port
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.integration

DAG_ID = "team_fan_out"
FAN_OUT_DAG = textwrap.dedent(
    f'''
    """A team's DAG the plugin has never seen: a mapped fan-out beside one slow branch."""
    import time

    import pendulum
    from airflow.sdk import dag, task


    @dag(
        dag_id="{DAG_ID}",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        schedule=None,
        catchup=False,
        tags=["test"],
    )
    def team_fan_out():
        @task
        def list_files():
            return [1, 2, 3]

        @task
        def load_file(item):
            time.sleep(0.5)
            return item

        @task
        def build_index():
            time.sleep(12)

        @task
        def publish(loaded, index):
            return None

        files = list_files()
        publish(load_file.expand(item=files), build_index())


    team_fan_out()
    '''
)
# The slow branch decides the wall time: list_files runs beside it and the map is short. It
# sleeps long enough that the map's start-ups and hand-offs under Airflow's default scheduler
# settings (~1 s each on a busy 2-core machine) leave the map several seconds of slack.
TRUE_CRITICAL_PATH = ["build_index", "publish"]


def _uv() -> str:
    return str(Path(sys.executable).with_name("uv"))


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The distributions `make dist` builds (a wheel and an sdist)."""
    subprocess.run(["make", "-s", "dist"], cwd=PROJECT_DIR, check=True, timeout=600)
    dist = PROJECT_DIR / "dist"
    assert len(list(dist.glob("airflow_bottleneck-*.tar.gz"))) == 1
    (built,) = dist.glob("airflow_bottleneck-*-py3-none-any.whl")
    return built


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory, wheel) -> Path:
    """A new virtualenv: apache-airflow 3.3.2 and the wheel, nothing else of this project."""
    venv = tmp_path_factory.mktemp("plain-airflow") / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, venv], check=True)
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "apache-airflow==3.3.2",
            str(wheel),
            "-c",
            str(PROJECT_DIR / "constraints.txt"),
        ],
        check=True,
        timeout=900,
    )
    return venv


@pytest.fixture(scope="module")
def plain_airflow(tmp_path_factory, clean_venv) -> Iterator[dict]:
    """api-server, scheduler and dag-processor of the clean venv on a home of their own."""
    home = tmp_path_factory.mktemp("plain-home")
    (home / "dags").mkdir()
    (home / "plugins").mkdir()  # empty: the plugin comes from its entry point
    (home / "dags" / f"{DAG_ID}.py").write_text(FAN_OUT_DAG)
    port = free_port()
    env = {
        "PATH": f"{clean_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
    }
    airflow = str(clean_venv / "bin" / "airflow")

    def run(*args: str) -> str:
        result = subprocess.run(
            [airflow, *args], env=env, cwd=home, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run("db", "migrate")
    processes = [
        subprocess.Popen(
            [airflow, component],
            env=env,
            cwd=home,
            stdout=(home / f"{component}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for component in ("api-server", "scheduler", "dag-processor")
    ]
    try:
        yield {"home": home, "env": env, "run": run, "url": f"http://127.0.0.1:{port}"}
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


def _admin_password(home: Path) -> str:
    deadline = time.monotonic() + 120
    path = home / "simple_auth_manager_passwords.json.generated"
    while not path.exists():
        assert time.monotonic() < deadline, "the api-server wrote no admin password"
        time.sleep(1)
    return json.loads(path.read_text())["admin"]


def test_nothing_named_include_is_installed(clean_venv) -> None:
    for python in (clean_venv / "bin" / "python", PROJECT_DIR / ".venv" / "bin" / "python"):
        found = subprocess.run(
            [str(python), "-c", "import importlib.util as u; print(u.find_spec('include'))"],
            cwd="/",  # not the checkout: what the interpreter itself installs
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert found.stdout.strip() == "None", (python, found.stdout)


def test_airflow_lists_the_plugin_from_its_entry_point(plain_airflow) -> None:
    listed = json.loads(plain_airflow["run"]("plugins", "--output", "json"))
    names = [plugin["name"] for plugin in listed]
    assert names.count("bottlenecks") == 1, names
    (plugin,) = [p for p in listed if p["name"] == "bottlenecks"]
    assert "airflow-bottleneck" in str(plugin.get("source"))


def test_a_foreign_dag_run_gets_its_true_critical_path(plain_airflow) -> None:
    url = plain_airflow["url"]
    password = _admin_password(plain_airflow["home"])
    deadline = time.monotonic() + 180
    while True:
        try:
            client = AirflowRestClient.login(url, "admin", password)
            break
        except Exception:
            assert time.monotonic() < deadline, "the api-server never answered"
            time.sleep(2)
    with client:
        client.wait_for_dag(DAG_ID, timeout=180)
        client.unpause(DAG_ID)
        run_id = client.trigger(DAG_ID)
        assert client.wait_for_run(DAG_ID, run_id, timeout=300)["state"] == "success"
        report_path = f"/bottlenecks/api/dags/{DAG_ID}/runs/{run_id}/report"
        headers = {"Authorization": f"Bearer {client.token}"}
        report = httpx.get(url + report_path, headers=headers, timeout=60)
    assert report.status_code == 200, report.text[:500]
    body = report.json()
    assert body["graph_source"] == "dag"
    assert [t for t in body["critical_path"]["tasks"] if t != "list_files"] == TRUE_CRITICAL_PATH
    mapped = {m["task"]: m["count"] for m in body["mapped"]}
    assert mapped == {"load_file": 3}
    slack = {t["task"]: t["slack_seconds"] for t in body["tasks"]}
    assert slack["load_file"] > 3  # the short map waits on the slow branch
    anonymous = httpx.get(url + report_path, timeout=60)
    assert anonymous.status_code == 401
    assert run_id not in anonymous.text
