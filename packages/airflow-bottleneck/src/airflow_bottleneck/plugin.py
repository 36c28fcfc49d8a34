"""The Airflow plugin: the bottleneck report in the API server and the UI, the
priority weight strategies from measured durations, and the listener that predicts deadline misses.

Airflow finds it through this distribution's `airflow.plugins` entry point. Airflow imports
this module in every process that loads plugins (each task's process too), so it imports
nothing heavy; the FastAPI app is built on its first request in the API server.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_bottleneck.listener import deadline_listener
from airflow_bottleneck.priority import CriticalPathPriority, SimulatedSchedulePriority
from airflow_bottleneck.web import external_views, fastapi_app_entry


class BottleneckPlugin(AirflowPlugin):
    """`/bottlenecks/`: runs of every readable DAG, one run's bottleneck report, two runs
    compared; a "Bottleneck report" tab on every run's page."""

    name = "bottlenecks"
    fastapi_apps = [fastapi_app_entry()]
    external_views = external_views()
    # Airflow serializes only registered strategies: DAGs may name these.
    priority_weight_strategies = [SimulatedSchedulePriority, CriticalPathPriority]
    # In the scheduler: a deadline miss predicted before it happens (`deadline_watch`).
    listeners = [deadline_listener]
