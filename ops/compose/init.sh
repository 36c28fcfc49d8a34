#!/usr/bin/env bash
# docker-compose.yaml's airflow-init: everything the other services need before they start.
# Repeatable: every step leaves what is already there as it is (or brings it up to date).
set -euo pipefail
cd /opt/airflow

echo "== secrets from .env (empty ones never get here: compose requires them)"
python -m k1n check-secrets

echo "== metadata database"
airflow db migrate

echo "== k1n_metrics role and database (the nightly DAGs' history)"
python - <<'PY'
import os
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import sql

# The metrics connection's role owns its database and nothing else: no superuser, no rights
# on the metadata database (CONNECT is revoked from PUBLIC on both).
target = urlsplit(os.environ["AIRFLOW_CONN_K1N_METRICS"])
name, role, password = target.path.lstrip("/"), unquote(target.username), unquote(target.password)
admin = urlsplit(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", ""))
metadata_db = admin.path.lstrip("/")
with psycopg2.connect(admin._replace(path="/postgres").geturl()) as conn:
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(
                sql.Identifier(role)
            ),
            (password,),
        )
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(role)
                )
            )
            print(f"created database {name} owned by {role}")
        for database in (name, metadata_db):
            cur.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
            )
        cur.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
PY

echo "== users (FAB auth manager: admin, and k1n-service for the nightly DAGs)"
python -m k1n users

echo "== airflow_settings.yaml (variables; connections as the environment sets them)"
python -m k1n settings load airflow_settings.yaml \
  --connection "k1n_metrics=${AIRFLOW_CONN_K1N_METRICS}" \
  --connection "k1n_airflow_api=${AIRFLOW_CONN_K1N_AIRFLOW_API}"
