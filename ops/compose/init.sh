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
python -m k1n metrics-role

echo "== users (FAB auth manager: admin, and k1n-service for the nightly DAGs)"
python -m k1n users

echo "== airflow_settings.yaml (variables; connections as the environment sets them)"
python -m k1n settings load airflow_settings.yaml \
  --connection "k1n_metrics=${AIRFLOW_CONN_K1N_METRICS}" \
  --connection "k1n_airflow_api=${AIRFLOW_CONN_K1N_AIRFLOW_API}"
