"""`make airflow`: this project's Airflow, standalone-style, until Ctrl-C.

The same stack as the demo (embedded PostgreSQL in `.airflow/`, api-server, scheduler,
dag-processor, triggerer; airflow_settings.yaml loaded) on http://localhost:8080, with this
project's dags/ and plugins/. A component that exits is restarted (with backoff); Ctrl-C or
SIGTERM stops every process started here, task processes included.
Log in as `admin`; the password is in `.airflow/simple_auth_manager_passwords.json`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from k1n_local.demo import DEFAULT_HOME
from k1n_local.stack import ADMIN_USER, AirflowStack

log = logging.getLogger(__name__)


def run_until_signal(start: Callable[[], None], stop: Callable[[], None], banner: str) -> int:
    """Start, print `banner`, wait for SIGINT/SIGTERM, stop. Components that exit meanwhile
    are restarted by the stack's supervisor: only a signal ends this."""
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        start()
        print(f"\n{banner}\nPress Ctrl-C to stop every process started here.\n", flush=True)
        stopped.wait()
    finally:
        stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`k1n airflow`: Airflow on this machine until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="k1n airflow", description=__doc__)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="Airflow home")
    parser.add_argument("--port", type=int, default=8080, help="API server / UI port")
    args = parser.parse_args(argv)
    stack = AirflowStack(args.home, port=args.port)
    return run_until_signal(
        stack.start,
        stack.stop,
        f"Airflow is up: http://localhost:{stack.port}\n"
        f"  user:     {ADMIN_USER}\n"
        f"  password: in {stack.passwords_file}\n"
        f"  logs:     {stack.home / 'logs'}",
    )
