"""A real, local Airflow 3.3 deployment for the demo, `make airflow`, `make cluster` and tests.

`AirflowStack` owns an Airflow home and everything it starts there: an embedded PostgreSQL
(`postgres.py`) with the `airflow` and `k1n_metrics` databases, the metadata schema, the
project's `airflow_settings.yaml` (its `k1n_metrics` connection pointed at the embedded
server), and the Airflow components as separate, supervised processes (`processes.py`): a
component that exits is restarted with backoff; the database is never stopped because a
component died; stopping the stack ends every process it started, task processes and the
agents they run included.

With `executor="LocalExecutor"` (the default) the scheduler runs the tasks; with
`executor="CeleryExecutor"` the stack also runs `celery_workers`, each with a local disk of
its own (`k1n_local.cluster` builds that topology, the one docker-compose.yaml runs).

Settings are passed as `AIRFLOW__*` environment variables rather than written to airflow.cfg:
the home stays disposable and the settings are visible in one place (`airflow_env`). Every
listener binds to 127.0.0.1; no component serves logs on a port (they share the log folder,
or, on Celery, write them to the object store).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from airflow_bottleneck.readers.rest_client import AirflowRestClient
from k1n.airflow_settings.users import FAB_AUTH_MANAGER
from k1n.io import write_bytes_atomic
from k1n.settings import AIRFLOW_API_CONN_ID, PROJECT_DIR
from k1n_local import processes
from k1n_local.postgres import EmbeddedPostgres
from k1n_local.processes import Component, Supervisor

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
METADATA_DB = "airflow"
METRICS_DB = "k1n_metrics"
# Component -> arguments after `airflow`: nothing serves logs on a port of its own.
COMPONENT_ARGS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
}


def wait_until(condition: Callable[[], bool], timeout: float, interval: float) -> None:
    """Ask `condition()` every `interval` seconds until it is true; tenacity's `RetryError`
    after `timeout` seconds."""
    Retrying(
        retry=retry_if_result(lambda met: not met),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
    )(condition)


def withheld_from_workers(key: str) -> bool:
    """What a Celery worker does without: tasks reach the metadata DB, connections and
    variables through the API server's Execution API, so a worker holds no database URL,
    no signing or encryption key and no connection (docker-compose.yaml does the same)."""
    return key in WORKER_WITHHELD or key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))


WORKER_WITHHELD = frozenset(
    {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    }
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackError(RuntimeError):
    """A component did not start or did not answer; the message carries its log tail."""


@dataclass(frozen=True)
class CeleryWorker:
    """One Celery worker of the stack: its name, and the local disk only it uses."""

    name: str
    local_dir: Path
    concurrency: int = 4


@dataclass
class AirflowStack:
    """An Airflow home plus the processes running on it."""

    home: Path
    port: int = 0
    # LocalExecutor workers. One run needs at most 5 at once, three concurrent runs up to 15,
    # and a worker can stay busy a second after its task ends (see MIN_HEARTBEAT_INTERVAL
    # below). Measured side by side, 3 concurrent runs / one: 8 -> 1.24x, 12 -> 1.14x,
    # 16 -> 1.21x (more task starts at once on 2 cores); PSS 1.2 / 1.5 / 1.8 GB.
    parallelism: int = 12
    executor: str = "LocalExecutor"
    celery_workers: tuple[CeleryWorker, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # A plain Airflow, as a user's team server would be: no K1N_* environment, nothing of
    # airflow_settings.yaml loaded (`load_settings` can still do that later).
    plain: bool = False
    # The metrics connection logs in as a role of its own that owns only its database, as
    # docker-compose.yaml's airflow-init sets it up (the cluster); else as the superuser.
    metrics_role: bool = False

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self.port = self.port or free_port()
        self.database = EmbeddedPostgres(self.home / "pgdata")
        self.supervisor = Supervisor()
        # Tags every process started here (see processes.py); one id per Airflow home.
        self.stack_id = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]

    # -- configuration -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    @property
    def k1n_dir(self) -> Path:
        """Object storage (a local folder here) and caches of the tasks this stack runs."""
        return self.home / "k1n"

    def _persistent_secret(self, name: str) -> str:
        # Persisted so that tokens and sessions survive a restart of the same home.
        path = self.home / name
        if not path.exists():  # owner-only from its first byte
            write_bytes_atomic(path, secrets.token_urlsafe(32).encode(), mode=0o600)
        return path.read_text().strip()

    def admin_password(self) -> str:
        if not self.passwords_file.exists():
            document = json.dumps({ADMIN_USER: secrets.token_urlsafe(12)})
            write_bytes_atomic(self.passwords_file, document.encode(), mode=0o600)
        return json.loads(self.passwords_file.read_text())[ADMIN_USER]

    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow command of this stack runs with."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            processes.STACK_ID_ENV: self.stack_id,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
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
            # A LocalExecutor worker stays busy after its task process exits until its supervisor
            # notices the exit: when the task's last socket closes before the process can be
            # reaped (over a quarter of the tasks here), the supervisor waits in select() with no
            # socket left for one heartbeat interval (default 5 s). With three runs' tasks
            # queued for 8 workers, that held tasks in QUEUED for up to 9 s (3 concurrent runs:
            # 1.44x one run, 1.29x at 1 s; single runs unchanged). The cost: one heartbeat a
            # second per running task. The interval is a whole number of seconds: 1 is the least.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A task whose supervisor died is failed over (and retried) in seconds, not the
            # production default of 300 s: demo runs last about a minute.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # A restarted scheduler takes over the dead one's task instances within seconds
            # (production defaults: 30 s to call a scheduler dead, a check every 300 s).
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        }
        # As in a deployment, Airflow's processes keep bytecode caches: inherited, this would
        # have every task process compile the project's modules from source at each start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not self.plain:
            env["K1N_STORAGE_URL"] = (self.k1n_dir / "storage").as_uri()
            env["K1N_CACHE_DIR"] = str(self.k1n_dir / "cache")
        if self.database.pid is not None:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.database.uri(METADATA_DB)
            if self.executor == "CeleryExecutor":
                env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.database.uri(METADATA_DB)
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------------------

    def start_database(self) -> None:
        self.database.start()
        self.database.ensure_database(METADATA_DB)
        self.database.ensure_database(METRICS_DB)

    def load_settings(self) -> None:
        """Import airflow_settings.yaml with its connections pointed at this stack: the
        `k1n_metrics` database on the embedded server, and this api-server (as admin) for
        `k1n_airflow_api`, through which the nightly DAGs read their target run."""
        from k1n.airflow_settings.loader import load_settings

        api = f"http://{ADMIN_USER}:{self.admin_password()}@127.0.0.1:{self.port}"
        metrics = (
            self.database.ensure_owner_role(
                METRICS_DB, self._persistent_secret("metrics_password"), METRICS_DB
            )
            if self.metrics_role
            else self.database.uri(METRICS_DB, driver=None)
        )
        load_settings(
            airflow_env=self.airflow_env(),
            connection_overrides={
                "k1n_metrics": metrics,
                AIRFLOW_API_CONN_ID: api,
            },
        )

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one `airflow ...` CLI command to completion; a failure raises with its output."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.airflow_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise StackError(f"airflow {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result

    def migrate(self) -> None:
        self.airflow("db", "migrate")
        env = self.airflow_env()
        if env.get("AIRFLOW__CORE__AUTH_MANAGER") == FAB_AUTH_MANAGER:
            # The FAB auth manager keeps its users in the database: create them as the
            # compose file's airflow-init does (`k1n users`), the password from the env.
            env["_AIRFLOW_WWW_USER_PASSWORD"] = self.admin_password()
            users = subprocess.run(
                [sys.executable, "-m", "k1n", "users"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if users.returncode != 0:
                raise StackError(f"k1n users exited {users.returncode}: {users.stderr[-2000:]}")

    def _component(self, name: str) -> Component:
        env = self.airflow_env()
        worker = next((w for w in self.celery_workers if w.name == name), None)
        if worker is None:
            argv = [sys.executable, "-m", "airflow", *COMPONENT_ARGS[name]]
        else:
            # A worker of its own: its own temp and cache folders, its own name (the task
            # instances record it, see `k1n_local.cluster.worker_hostname`).
            worker.local_dir.mkdir(parents=True, exist_ok=True)
            env.update(
                TMPDIR=str(worker.local_dir / "tmp"),
                K1N_CACHE_DIR=str(worker.local_dir / "cache"),
                K1N_WORKER_NAME=worker.name,
            )
            (worker.local_dir / "tmp").mkdir(exist_ok=True)
            for key in [key for key in env if withheld_from_workers(key)]:
                del env[key]
            argv = [
                sys.executable,
                "-m",
                "airflow",
                "celery",
                "worker",
                "--skip-serve-logs",
                "--concurrency",
                str(worker.concurrency),
                "--celery-hostname",
                f"{worker.name}@%h",
            ]
        return Component(name, argv, env, self.home / "logs" / f"{name}.out")

    def component_names(self) -> tuple[str, ...]:
        return (*COMPONENTS, *(worker.name for worker in self.celery_workers))

    def start(
        self,
        components: Iterable[str] | None = None,
        *,
        migrate: bool = True,
        services: Iterable[Component] = (),
        services_ready: Callable[[], None] | None = None,
    ) -> None:
        """Database, `services` (a broker, an object store; `services_ready` waits for them),
        schema, settings, then each component under supervision; waits for the API."""
        self.stop_leftovers()
        self.start_database()
        # After the database: its server daemonizes and must not become ours to stop.
        processes.become_subreaper()
        for service in services:
            self.supervisor.add(service)
        if services_ready is not None:
            services_ready()
        if migrate:
            self.migrate()
            if not self.plain:
                self.load_settings()
        for name in components or self.component_names():
            self.supervisor.add(self._component(name))
        self.supervisor.start()
        if "api-server" in self.supervisor.components:
            self.wait_for_api()

    @property
    def components(self) -> dict[str, Component]:
        return self.supervisor.components

    def log_tail(self, name: str, lines: int = 30) -> str:
        component = self.components.get(name)
        return component.log_tail(lines) if component else ""

    def wait_for_api(self, timeout: float = 180) -> None:
        import httpx

        def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).is_success
            return False

        try:
            wait_until(healthy, timeout, 0.5)
        except RetryError:
            raise StackError(
                f"api-server not healthy after {timeout} s:\n{self.log_tail('api-server')}"
            ) from None

    def stop(self, grace: float = 5.0) -> None:
        """Stop every process this stack started (tasks and agents too), then the database.

        The components first, with SIGTERM and `grace` seconds to shut down; then whatever
        they left (found as recorded descendants and by their tag, never by name); the
        database last, so nothing dies of a lost connection on the way down.
        """
        self.supervisor.stop_watching()
        self.supervisor.track()
        tops = [p for c in self.components.values() for p in processes.tree(c.pid)[:1]]
        processes.stop_all(tops, grace=grace)
        found = {p.pid: p for p in self.supervisor.processes_of()}
        found.update({p.pid: p for p in processes.tagged(self.stack_id)})
        stopped = processes.stop_all(found.values(), grace=2.0)
        log.info("stopped %d component(s) and %d process(es) they left", len(tops), stopped)
        self.components.clear()
        self.database.stop()

    def stop_leftovers(self) -> None:
        """Stop processes a crashed earlier run of this home left behind (by their tag)."""
        leftovers = processes.tagged(self.stack_id)
        if leftovers:
            log.warning("stopping %d process(es) an earlier run left behind", len(leftovers))
            processes.stop_all(leftovers)

    @contextlib.contextmanager
    def running(self, components: Iterable[str] | None = None) -> Iterator[AirflowStack]:
        try:
            self.start(components)
            yield self
        finally:
            self.stop()

    def client(self) -> AirflowRestClient:
        return AirflowRestClient.login(self.base_url, ADMIN_USER, self.admin_password())
