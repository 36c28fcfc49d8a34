"""`make cluster`: the topology of docker-compose.yaml as local processes, no Docker needed.

PostgreSQL (embedded), Redis (a `redis-server` of our own on a free loopback port, with a
password: never whatever else answers on 6379, where another user's Celery could read or
inject our tasks), an S3-compatible object store on loopback (moto's server), the api-server,
scheduler, dag-processor and triggerer, and two Celery workers, each with a local disk of
its own (temp and cache folders) and a name of its own, which the task instances record. Task
storage (`K1N_STORAGE_URL`) and task logs live in the object store, as they would in a
cluster of several machines: a task that relied on a file another task left on its worker's
disk fails here.

`compose_environment` is the environment docker-compose.yaml gives every Airflow container;
the cluster sets the same keys (with loopback hosts), and a test holds the two together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import RetryError

from k1n.airflow_settings.users import FAB_AUTH_MANAGER
from k1n.settings import PROJECT_DIR
from k1n_local.processes import Component
from k1n_local.serve import run_until_signal
from k1n_local.stack import (
    ADMIN_USER,
    AirflowStack,
    CeleryWorker,
    StackError,
    free_port,
    wait_until,
)

log = logging.getLogger(__name__)

DEFAULT_HOME = PROJECT_DIR / ".airflow-cluster"
BUCKET = "k1n"
STORAGE_CONN_ID = "k1n_storage"
WORKER_NAMES = ("worker-1", "worker-2")
# Services of docker-compose.yaml and what runs in their place here.
COMPOSE_SERVICES: dict[str, str] = {
    "postgres": "embedded PostgreSQL",
    "redis": "redis",
    "minio": "s3",
    "minio-init": "bucket creation (LocalCluster._create_bucket)",
    "airflow-init": "migrate + settings (AirflowStack.start)",
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "worker-1, worker-2",
}


def worker_hostname() -> str:
    """`[core] hostname_callable` of the local workers: each records its own name.

    On separate machines (or containers) the host name already differs; two workers on one
    machine would both record the same one.
    """
    return os.environ.get("K1N_WORKER_NAME") or socket.getfqdn()


def compose_environment(
    *,
    broker_url: str,
    result_backend: str,
    storage_endpoint: str,
    storage_key: str,
    storage_secret: str,
) -> dict[str, str]:
    """What docker-compose.yaml's x-airflow-common environment sets for the K1N topology,
    with the given endpoints; everything else an AirflowStack sets itself."""
    storage_conn = {
        "conn_type": "aws",
        "login": storage_key,
        "password": storage_secret,
        "extra": {"endpoint_url": storage_endpoint, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # Per-DAG permissions; the users come from `k1n users` after the migration.
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        # Task states go back through Redis: a worker needs no metadata DB credentials.
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "K1N_STORAGE_URL": f"s3://{STORAGE_CONN_ID}@{BUCKET}/storage",
        f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}": json.dumps(storage_conn),
        # Task logs go to the object store: the api-server reads them there, from any worker.
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "true",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": STORAGE_CONN_ID,
    }


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        return False

    try:
        wait_until(listening, timeout, 0.2)
    except RetryError:
        raise StackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s") from None


@dataclass
class LocalCluster:
    """The compose topology on this machine; `start`, then `stack` is a running Airflow."""

    home: Path
    port: int = 0
    services: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self.s3_port = free_port()
        self.redis_port = free_port()
        self.redis_password = secrets.token_urlsafe(24)
        env = compose_environment(
            broker_url=f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/0",
            result_backend=f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/1",
            storage_endpoint=f"http://127.0.0.1:{self.s3_port}",
            storage_key="k1n-local",
            storage_secret="k1n-local-secret",  # moto accepts any key; nothing to protect
        )
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = f"{__name__}.worker_hostname"
        self.stack = AirflowStack(
            self.home,
            port=self.port,
            executor="CeleryExecutor",
            celery_workers=tuple(
                CeleryWorker(name, self.home / "workers" / name) for name in WORKER_NAMES
            ),
            extra_env=env,
            metrics_role=True,
        )

    def _services(self) -> list[Component]:
        env = self.stack.airflow_env()
        logs = self.home / "logs"
        services = [
            Component(
                "s3",
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
                env,
                logs / "s3.out",
            ),
            Component(
                "redis",
                ["redis-server", "-"],  # the configuration on stdin: no password in `ps`
                env,
                logs / "redis.out",
                stdin=self._redis_config(),
            ),
        ]
        return services

    def _redis_config(self) -> bytes:
        lines = [
            "bind 127.0.0.1",
            f"port {self.redis_port}",
            f"requirepass {self.redis_password}",
            'save ""',
            "appendonly no",
        ]
        return ("\n".join(lines) + "\n").encode()

    def _create_bucket(self) -> None:
        import boto3

        wait_for_port(self.s3_port, "the S3 endpoint")
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            aws_access_key_id="k1n-local",
            aws_secret_access_key="k1n-local-secret",
            region_name="us-east-1",
        )
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)

    def _services_ready(self) -> None:
        self._create_bucket()
        wait_for_port(self.redis_port, "redis")

    def start(self) -> None:
        self.stack.start(services=self._services(), services_ready=self._services_ready)

    def stop(self) -> None:
        self.stack.stop()

    @contextlib.contextmanager
    def running(self) -> Any:
        try:
            self.start()
            yield self
        finally:
            self.stop()


def main(argv: list[str] | None = None) -> int:
    """`k1n cluster`: the compose topology on this machine until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="k1n cluster", description=__doc__)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="Airflow home")
    parser.add_argument("--port", type=int, default=8080, help="API server / UI port")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.home, port=args.port)
    return run_until_signal(
        cluster.start,
        cluster.stop,
        f"Cluster is up: http://localhost:{cluster.stack.port} (CeleryExecutor, workers "
        f"{', '.join(WORKER_NAMES)}, S3 on 127.0.0.1:{cluster.s3_port})\n"
        f"  user: {ADMIN_USER}, password in {cluster.stack.passwords_file}",
    )
