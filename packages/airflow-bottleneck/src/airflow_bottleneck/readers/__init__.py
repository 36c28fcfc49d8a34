"""Readers of DAG runs: each returns the `RunData` the analysis takes.

- `rest_api`: any Airflow 3 over its REST API v2 (`rest_client` is the HTTP client);
- `metadata_db`: Airflow's metadata DB, inside the API server (the plugin); imports Airflow.
"""
