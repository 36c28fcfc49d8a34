"""Alerts of the K1N DAGs: the optimized DAG's deadline callback and the nightly notifier.

Imported at parse time by the DAG files (the deadline alert names the callback by import
path; the notifier is an `on_failure_callback`), so it imports nothing heavy.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


async def workflow_deadline_missed(
    limit_minutes: float = 0.0, target: float = 0.0, **kwargs: Any
) -> str:
    """Deadline alert callback (runs in the triggerer): a workflow run is over its time."""
    context = kwargs.get("context") or {}
    dag_run = context.get("dag_run") if isinstance(context, dict) else None
    run = getattr(dag_run, "run_id", None) or (dag_run or {}).get("run_id", "?")
    message = (
        f"K1N deadline missed: run {run} is still running {limit_minutes:g} min after it was "
        f"queued (target: whole workflow <= {target:g} production minutes x time scale)"
    )
    log.error(message)
    return message


class VerdictNotifier(BaseNotifier):
    """Logs a failed nightly task's summary as one ERROR record, so an alert never depends on
    mail. The verdict itself is already in the metrics DB (`record_verdict` via
    `store_report`); this is the channel for "the nightly failed and why"."""

    template_fields = ("title",)

    def __init__(self, title: str = "K1N nightly {{ dag.dag_id }} {{ run_id }} failed") -> None:
        super().__init__()
        self.title = title

    def notify(self, context: Any) -> None:
        exception = context.get("exception")
        task_id = getattr(context.get("ti"), "task_id", "?")
        detail = str(exception) if exception else "no detail"
        log.error("%s (task %s):\n%s", self.title, task_id, detail)
