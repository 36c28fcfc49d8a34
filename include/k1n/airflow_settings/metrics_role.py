"""`k1n metrics-role`: the nightly DAGs' metrics database and the role that owns only it.

The metrics connection (`AIRFLOW_CONN_K1N_METRICS`) logs in as a role of its own: owner of
its database, no superuser, and `CONNECT` on no other database (revoked from `PUBLIC` on
every database, granted back to this role on its own). compose's airflow-init runs this with
the metadata DB's administrator URL; `make cluster` calls `ensure_owner_role` on its embedded
server. Repeatable: an existing role gets the password given here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from urllib.parse import unquote, urlsplit


def ensure_owner_role(admin_dsn: str, role: str, password: str, database: str) -> None:
    """Create (or update) `role` with `password`, and `database` owned by it, through the
    administrator connection `admin_dsn` (any database of the server)."""
    import psycopg2
    from psycopg2 import sql

    with contextlib.closing(psycopg2.connect(admin_dsn)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            statement = verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s"
            cur.execute(sql.SQL(statement).format(sql.Identifier(role)), (password,))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
            else:
                cur.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
            cur.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            for (name,) in cur.fetchall():
                cur.execute(
                    sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(name)
                    )
                )
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )


def main(argv: list[str]) -> int:
    """From the environment: the metrics connection's URL (role, password, database) and the
    metadata DB's administrator URL."""
    if argv:
        print("usage: k1n metrics-role (reads the environment)", file=sys.stderr)
        return 2
    target = urlsplit(os.environ["AIRFLOW_CONN_K1N_METRICS"])
    admin = urlsplit(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", ""))
    role, password = unquote(target.username or ""), unquote(target.password or "")
    database = target.path.lstrip("/")
    ensure_owner_role(admin._replace(path="/postgres").geturl(), role, password, database)
    print(f"metrics-role: {role} owns {database} and may connect to nothing else")
    return 0
