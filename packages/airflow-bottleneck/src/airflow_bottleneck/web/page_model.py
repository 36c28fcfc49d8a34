"""What the page shows for one request: its query string (`PageRequest`) turned into a
`html.PageModel` with the chosen (or default) runs' reports and their comparison."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import HTTPException, Request

from airflow_bottleneck import look_ahead
from airflow_bottleneck.analysis.model import RunReport
from airflow_bottleneck.extension import featured_dag_ids
from airflow_bottleneck.readers import metadata_db
from airflow_bottleneck.render import html
from airflow_bottleneck.web import reports
from airflow_bottleneck.web.access import (
    load_report,
    may_read_reports,
    root,
    valid_dag_id,
    valid_run_id,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

PAGE_RUN_LIMIT = 25


@dataclass(frozen=True)
class PageRequest:
    """What the page's query string asks for."""

    dag_filter: str | None
    run: str | None
    a: str | None
    b: str | None
    offset: int


class PageError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _split_key(key: str) -> tuple[str, str]:
    """`dag_id/run_id` -> its parts (DAG ids have no `/`; run ids may)."""
    dag_id, _, run_id = key.partition("/")
    if not dag_id or not run_id:
        raise PageError(422, f"run {key!r}: expected DAG_ID/RUN_ID")
    if not valid_run_id(run_id) or not valid_dag_id(dag_id):
        raise PageError(422, f"run {key!r}: not a valid DAG id / run id")
    return dag_id, run_id


REFUSED = "you may not read this run"


def _page_report(
    request: Request, session: Session, user: BaseUser, readable: set[str], key: str
) -> RunReport:
    dag_id, run_id = _split_key(key)
    if dag_id not in readable or not may_read_reports(user, dag_id):
        # Before any lookup, and the same words for a DAG or run that does not exist.
        raise PageError(403, REFUSED)
    try:
        # The page draws every try and every map index: the detailed report.
        return load_report(request, session, user, dag_id, run_id, detail=True)
    except HTTPException as exc:
        raise PageError(exc.status_code, f"{key}: {exc.detail}") from None


def _default_keys(
    session: Session, runs: list[metadata_db.RunRow], readable: set[str], dag_filter: str | None
) -> tuple[str | None, str | None, str | None]:
    """The newest finished run to report on; to compare, the newest successful baseline
    against the newest successful optimized run when both are readable (and no other DAG is
    filtered for)."""
    done = [r for r in runs if r.state in ("success", "failed")] or runs
    run_key = done[0].key if done else None
    pair = [d for d in featured_dag_ids() if d in readable and dag_filter in (None, d)]
    if len(pair) < 2 or dag_filter is not None:
        return run_key, None, None
    newest = metadata_db.newest_runs(session, pair)
    if not all(d in newest for d in pair):
        return run_key, None, None
    a_dag, b_dag = pair
    return run_key, f"{a_dag}/{newest[a_dag]}", f"{b_dag}/{newest[b_dag]}"


def build_page_model(
    request: Request,
    session: Session,
    user: BaseUser,
    readable: set[str],
    asked: PageRequest,
) -> tuple[html.PageModel, int]:
    """Defaults for what is not asked for; errors of what is asked for shown in the page.

    `readable`: the DAGs whose runs the user may list. A run of any other DAG is refused
    without a trace: no report, no picker entry, no link, not even its id echoed back.
    """
    dag_filter = asked.dag_filter if asked.dag_filter in readable else None
    messages = []
    if asked.dag_filter and dag_filter is None:
        messages.append(f"DAG {asked.dag_filter!r}: no such DAG you may read; showing every DAG")
    runs, total = metadata_db.list_runs(
        session,
        readable_dag_ids=readable,
        dag_id=dag_filter,
        limit=PAGE_RUN_LIMIT,
        offset=asked.offset,
    )
    default_run, default_a, default_b = _default_keys(session, runs, readable, dag_filter)
    explicit_pair = asked.a is not None or asked.b is not None
    model = html.PageModel(
        root=root(request),
        dag_ids=metadata_db.dags_with_runs(session, readable),
        runs=runs,
        total=total,
        limit=PAGE_RUN_LIMIT,
        offset=asked.offset,
        dag_filter=dag_filter,
        run_key=asked.run or default_run,
        a_key=(asked.a or None) if explicit_pair else default_a,
        b_key=(asked.b or None) if explicit_pair else default_b,
        messages=messages,
    )
    # The page answers with the status of the first problem in what was explicitly asked for;
    # a default that cannot be shown (e.g. a run still queued) is only a message.
    statuses: list[int] = []
    loaded: dict[str, RunReport] = {}  # the reported run is often one of the pair

    def load(key: str) -> RunReport:
        if key not in loaded:
            loaded[key] = _page_report(request, session, user, readable, key)
        return loaded[key]

    if model.run_key:
        try:
            model.report = load(model.run_key)
        except PageError as exc:
            model.report_error = str(exc)
            if asked.run:
                statuses.append(exc.status_code)
    if model.a_key and model.b_key:
        try:
            model.a_report, model.b_report = load(model.a_key), load(model.b_key)
            model.comparison = reports.compare(model.a_report, model.b_report)
        except PageError as exc:
            model.compare_error = str(exc)
            if explicit_pair:
                statuses.append(exc.status_code)
    elif model.a_key or model.b_key:
        model.compare_error = "pick both runs to compare"
    # A refused run leaves no trace: its key is not echoed in the pickers or the share link.
    for field in ("run_key", "a_key", "b_key"):
        if (key := getattr(model, field)) and not _may_show(key, readable):
            setattr(model, field, None)
    model.choices = _choices(session, runs, model)
    _look_ahead(session, user, model)
    return model, statuses[0] if statuses else 200


def _look_ahead(session: Session, user: BaseUser, model: html.PageModel) -> None:
    """The reported run's ETA while it runs, the filtered DAG's criticality; what cannot be
    shown is a message, never the page's status."""
    try:
        if model.report is not None and model.report.partial:
            run = look_ahead.find_run(session, model.report.dag_id, model.report.run_id)
            model.forecast = reports.in_slot(lambda: look_ahead.forecast_for(session, run))
        if model.dag_filter and may_read_reports(user, model.dag_filter):
            dag_id = model.dag_filter
            model.criticality = reports.in_slot(lambda: look_ahead.criticality_for(session, dag_id))
    except metadata_db.RunNotFound:
        return  # no successful run of the DAG yet: nothing to rank
    except (reports.ReportBusy, look_ahead.DeadlineSettingError) as exc:
        model.messages.append(str(exc))


def _may_show(key: str, readable: set[str]) -> bool:
    try:
        return _split_key(key)[0] in readable
    except PageError:
        return True  # the user's own malformed input, echoed in its 422 message anyway


def _choices(session: Session, runs: list[metadata_db.RunRow], model: html.PageModel) -> list:
    """The pickers' runs: this page of the list, plus the chosen runs when not on it (the
    chosen keys are all of readable DAGs by now)."""
    listed = {row.key for row in runs}
    chosen = []
    for key in dict.fromkeys((model.run_key, model.a_key, model.b_key)):
        if not key or key in listed:
            continue
        try:
            chosen.append(_split_key(key))
        except PageError:
            continue  # already reported; never sent to the database (PostgreSQL refuses NUL)
    return [*runs, *metadata_db.run_rows(session, chosen)]
