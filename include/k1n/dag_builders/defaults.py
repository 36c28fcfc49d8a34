"""What every K1N DAG shares: owner, start date, tags, the time-scale param, retry behaviour.

The workflow DAGs and the nightly DAGs are built from these, so a convention changes in one
place (`include/dag_defaults.py` in Astronomer's reference projects plays the same part).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param
from airflow.sdk.definitions.retry_policy import (
    ExceptionRetryPolicy,
    RetryAction,
    RetryDecision,
    RetryRule,
)

from k1n import settings

OWNER = "k1n-platform"
START_DATE = pendulum.datetime(2026, 11, 1, tz="UTC")
TAGS = ("k1n",)
MAX_RETRY_DELAY = timedelta(minutes=10)
RETRY_BACKOFF = 2.0
# Failures a retry cannot fix: the same generated code fails validation the same way, a bad
# run conf stays bad. By import path, so nothing heavy is imported when a DAG file is parsed.
NO_RETRY_EXCEPTIONS = [
    "k1n.codegen.errors.ValidationFailed",
    "k1n.workflow.run_conf.RunConfError",
]


# The bookkeeping tasks (planning, quality gates, storage clean-up, judging a run) take seconds;
# one still running after this is stuck, not slow.
HELPER_TASK_TIMEOUT = timedelta(minutes=30)


def default_args(**extra: Any) -> dict[str, Any]:
    """`default_args` of every K1N DAG: no task runs unbounded (spec tasks set their own)."""
    return {"owner": OWNER, "execution_timeout": HELPER_TASK_TIMEOUT, **extra}


def time_scale_param(description: str) -> Param:
    """The `time_scale` param, with its range and meaning in the trigger form."""
    return Param(
        settings.default_time_scale(),
        type="number",
        minimum=settings.TIME_SCALE_MIN,
        maximum=settings.TIME_SCALE_MAX,
        title="Time scale",
        description=f"{description} ({settings.TIME_SCALE_MEANING}).",
    )


class ScaledRetryPolicy(ExceptionRetryPolicy):
    """Retries after the spec's delay times the run's time scale, with exponential backoff.

    At the demo's 1/60 a 30 s production delay becomes 0.5 s; at scale 1 the production values
    apply unchanged. Failures no retry can fix (`NO_RETRY_EXCEPTIONS`) fail at once. The
    worker evaluates this (Airflow 3.3 retry policies); a task whose process died is retried by
    the scheduler after the task's own `retry_delay`, which `retry_arguments` sets from the
    default time scale.
    """

    def __init__(self, base_delay_seconds: float) -> None:
        super().__init__(
            rules=[
                RetryRule(
                    exception=list(NO_RETRY_EXCEPTIONS),
                    action=RetryAction.FAIL,
                    reason="a retry cannot fix this",
                )
            ],
            default=RetryAction.RETRY,
        )
        self.base_delay_seconds = base_delay_seconds

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Mapping[str, Any] | None = None,
    ) -> RetryDecision:
        decision = super().evaluate(exception, try_number, max_tries, context)
        if decision.action is not RetryAction.RETRY:
            return decision
        scale = _run_time_scale(context)
        seconds = self.base_delay_seconds * scale * RETRY_BACKOFF ** max(0, try_number - 1)
        delay = min(timedelta(seconds=seconds), MAX_RETRY_DELAY)
        return RetryDecision.retry(
            delay=delay,
            reason=f"retry in {delay.total_seconds():.2f} s "
            f"({self.base_delay_seconds:g} s x time scale {scale:.4g}, try {try_number})",
        )


def _run_time_scale(context: Mapping[str, Any] | None) -> float:
    params = (context or {}).get("params") or {}
    try:
        return settings.parse_time_scale(params.get("time_scale", settings.DEFAULT_TIME_SCALE))
    except ValueError:
        return settings.default_time_scale()


def retry_arguments(retries: int, delay_seconds: float) -> dict[str, Any]:
    """Task arguments for `retries` retries after `delay_seconds` (production seconds)."""
    return {
        "retries": retries,
        # What the scheduler uses when the task could not report (its process died).
        "retry_delay": timedelta(seconds=delay_seconds * settings.default_time_scale()),
        "retry_exponential_backoff": RETRY_BACKOFF,
        "max_retry_delay": MAX_RETRY_DELAY,
        "retry_policy": ScaledRetryPolicy(delay_seconds),
    }
