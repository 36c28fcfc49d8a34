#!/usr/bin/env bash
# docker-compose.yaml's airflow-init: everything the other services need before they start.
# Repeatable: every step leaves what is already there as it is (or brings it up to date).
set -euo pipefail
cd /opt/airflow

echo "== metadata database"
airflow db migrate

echo "== k1n_metrics database (the nightly DAGs' history)"
python - <<'PY'
import os
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql

target = urlsplit(os.environ["AIRFLOW_CONN_K1N_METRICS"])
name = target.path.lstrip("/")
admin = target._replace(path="/postgres").geturl()
with psycopg2.connect(admin) as conn:
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
PY

echo "== users' passwords (simple auth manager)"
python - <<'PY'
import json
import os
from pathlib import Path

path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
passwords = {
    "admin": os.environ["_AIRFLOW_WWW_USER_PASSWORD"],
    "k1n-service": os.environ["K1N_API_PASSWORD"],
}
path.write_text(json.dumps(passwords))
path.chmod(0o600)
PY

echo "== airflow_settings.yaml (variables; connections as the environment sets them)"
python -m k1n settings load airflow_settings.yaml \
  --connection "k1n_metrics=${AIRFLOW_CONN_K1N_METRICS}" \
  --connection "k1n_airflow_api=${AIRFLOW_CONN_K1N_AIRFLOW_API}"
