"""The plugin's listener: hands the deadline watcher every DAG run the scheduler starts and
ends (`deadline_watch`). Airflow imports it in every process that loads plugins; it imports
nothing heavy until a run starts."""

from __future__ import annotations

from typing import Any

from airflow.listeners import hookimpl


class DeadlineListener:
    """`on_dag_run_*` hooks: runs start and end under the deadline watch."""

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        from airflow_bottleneck.deadline_watch import watcher

        watcher().watch(dag_run.dag_id, dag_run.run_id)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        _finish(dag_run, "success")

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        _finish(dag_run, "failed")


def _finish(dag_run: Any, state: str) -> None:
    from airflow_bottleneck.deadline_watch import watcher

    end = dag_run.end_date.timestamp() if dag_run.end_date is not None else None
    watcher().finish(dag_run.dag_id, dag_run.run_id, state, end)


deadline_listener = DeadlineListener()
