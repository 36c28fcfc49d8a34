"""Airflow plugin: the K1N bottleneck report in the API server and the UI, and the
critical-path priority weight strategy of the workflow DAGs.

Thin on purpose: the app and the view live in `include.k1n.ui`. Airflow imports this module
in every process that loads plugins (each task's process too), so it imports nothing heavy;
the FastAPI app is built on its first request in the API server.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.k1n.dag_builders.priority import CriticalPathPriority
from include.k1n.ui import external_views, fastapi_app_entry


class K1NBottleneckPlugin(AirflowPlugin):
    """`/k1n/`: runs of every readable DAG, one run's bottleneck report, two runs compared;
    a "Bottleneck report" tab on every run's page."""

    name = "k1n_bottlenecks"
    fastapi_apps = [fastapi_app_entry()]
    external_views = external_views()
    # The workflow DAGs' weight rule: Airflow serializes only registered strategies.
    priority_weight_strategies = [CriticalPathPriority]
