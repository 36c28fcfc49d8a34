"""What is ahead: a run's live ETA (with its deadline) and a DAG's criticality across runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

from airflow.api_fastapi.common.db.common import SessionDep
from fastapi import APIRouter, HTTPException, Query, status

from airflow_bottleneck import look_ahead
from airflow_bottleneck.analysis.model import Criticality, Forecast
from airflow_bottleneck.readers import metadata_db
from airflow_bottleneck.web import reports
from airflow_bottleneck.web.access import REPORT_ACCESS
from airflow_bottleneck.web.params import ERROR_RESPONSES, DagIdPath, RunIdPath

router = APIRouter()
log = logging.getLogger(__name__)
Result = TypeVar("Result")
MAX_CRITICALITY_RUNS = 100


def _answer(compute: Callable[[], Result]) -> Result:
    """Run `compute` in an analysis slot; lookup and setting errors as HTTP errors."""
    try:
        return reports.in_slot(compute)
    except metadata_db.RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except reports.ReportBusy as exc:
        retry = {"Retry-After": f"{reports.ANALYSIS_WAIT_SECONDS:g}"}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), retry) from None
    except look_ahead.DeadlineSettingError as exc:
        log.error("%s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


@router.get(
    "/api/dags/{dag_id}/runs/{run_id}/forecast",
    response_model=Forecast,
    response_model_by_alias=True,
    summary="A run's live ETA: now + the remaining critical path, with a band and its deadline",
    dependencies=REPORT_ACCESS,
    responses=ERROR_RESPONSES,
)
def run_forecast(session: SessionDep, dag_id: DagIdPath, run_id: RunIdPath) -> Forecast:
    """Each unfinished task takes the median of its successful runs in the DAG's recent
    history (a running one what remains of it, a mapped one by its map count), each hop the
    DAG's median hand-off; p10/p90 durations give the band. Overrunning tasks (past their
    p90) are named; with too little history the forecast says so instead of guessing. The
    deadline (the DAG's Deadline Alert, `[bottlenecks] deadlines`, or a report extension's)
    says whether a miss is predicted."""
    return _answer(
        lambda: look_ahead.forecast_for(session, look_ahead.find_run(session, dag_id, run_id))
    )


@router.get(
    "/api/dags/{dag_id}/criticality",
    response_model=Criticality,
    response_model_by_alias=True,
    summary="Which tasks decide the DAG's wall time across its last successful runs",
    dependencies=REPORT_ACCESS,
    responses=ERROR_RESPONSES,
)
def dag_criticality(
    session: SessionDep,
    dag_id: DagIdPath,
    runs: Annotated[int, Query(ge=2, le=MAX_CRITICALITY_RUNS)] = look_ahead.CRITICALITY_RUNS,
) -> Criticality:
    """How often each task was on the critical path, how much wall time it decided, its
    duration's five numbers and p90, and its median slack; most deciding first."""
    return _answer(lambda: look_ahead.criticality_for(session, dag_id, runs))
