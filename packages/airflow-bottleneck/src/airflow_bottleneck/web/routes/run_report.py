"""One run's report and two runs compared, as JSON (the analysis' own models) or Markdown."""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse

from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.render import render_comparison, render_report
from airflow_bottleneck.web import reports
from airflow_bottleneck.web.access import REPORT_ACCESS, load_report, require_report_access
from airflow_bottleneck.web.params import (
    ERROR_RESPONSES,
    MARKDOWN,
    MARKDOWN_RESPONSE,
    DagIdPath,
    FormatQuery,
    OtherDagIdPath,
    OtherRunIdPath,
    RunIdPath,
    TimeScaleQuery,
)

router = APIRouter()


def _require_other_dag(request: Request, other_dag_id: OtherDagIdPath, user: GetUserDep) -> None:
    """The comparison's second DAG needs the same access as `{dag_id}`."""
    require_report_access(request, user, other_dag_id)


@router.get(
    "/api/dags/{dag_id}/runs/{run_id}/report",
    response_model=RunReport,
    response_model_by_alias=True,
    summary="One run's bottleneck report",
    dependencies=REPORT_ACCESS,
    responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
)
def run_report(
    request: Request,
    session: SessionDep,
    user: GetUserDep,
    dag_id: DagIdPath,
    run_id: RunIdPath,
    format: FormatQuery = "json",
    time_scale: TimeScaleQuery = None,
    detail: Annotated[bool, Query(description="include every try of every task instance")] = False,
) -> Any:
    """Wall time; every task's seconds, share, start-up, work and slack; the critical path
    in the graph of the DAG version the run was created with; the wall time split along it
    into work, start-ups, hand-offs and waiting; mapped roll-ups; each task's seconds over
    the DAG's last runs; for a DAG a report extension describes, its what-if and its
    targets. A run that has not finished is `partial`."""
    report = load_report(request, session, user, dag_id, run_id, time_scale, detail=detail)
    if format == "markdown":
        return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)
    # Straight to JSON bytes (pydantic-core): a detailed report of a million task instances
    # would take seconds more through Python dicts and `json.dumps`.
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")


@router.get(
    "/api/dags/{dag_id}/runs/{run_id}/report.md",
    response_class=PlainTextResponse,
    summary="One run's bottleneck report as Markdown",
    dependencies=REPORT_ACCESS,
    responses={
        200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
        **ERROR_RESPONSES,
    },
)
def run_report_markdown(
    request: Request,
    session: SessionDep,
    user: GetUserDep,
    dag_id: DagIdPath,
    run_id: RunIdPath,
    time_scale: TimeScaleQuery = None,
) -> PlainTextResponse:
    report = load_report(request, session, user, dag_id, run_id, time_scale)
    return PlainTextResponse(render_report(report, "markdown"), media_type=MARKDOWN)


@router.get(
    "/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}",
    response_model=Comparison,
    response_model_by_alias=True,
    summary="Run A (the path's first run, the reference) against run B",
    dependencies=[*REPORT_ACCESS, Depends(_require_other_dag)],
    responses={200: MARKDOWN_RESPONSE, **ERROR_RESPONSES},
)
def compare_runs(
    request: Request,
    session: SessionDep,
    user: GetUserDep,
    dag_id: DagIdPath,
    run_id: RunIdPath,
    other_dag_id: OtherDagIdPath,
    other_run_id: OtherRunIdPath,
    format: FormatQuery = "json",
) -> Any:
    """Production seconds (measured / each run's time scale), so runs at different scales
    compare: the verdict (faster/slower/same) with a factor >= 1, how much of the
    difference is work and how much orchestration, per-task deltas (per numbered task for
    an extension's DAGs), A's what-if against B's measured wall time, and both runs'
    targets."""
    a = load_report(request, session, user, dag_id, run_id)
    b = load_report(request, session, user, other_dag_id, other_run_id)
    comparison = reports.compare(a, b)
    if format == "markdown":
        return PlainTextResponse(render_comparison(comparison, "markdown"), media_type=MARKDOWN)
    return comparison
