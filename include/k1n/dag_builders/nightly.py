"""Nightly regression runs: trigger a K1N workflow, report on it, judge it, give a verdict.

`build_regression_dag` builds `k1n_nightly_regression` (02:00 daily, the optimized DAG) and
`k1n_weekly_baseline` (03:00 on Sundays, the baseline DAG, which keeps the baseline figures
fresh for the speedup). Both run:

    plan_run -> trigger_target -> report_and_judge -> verdict

- `plan_run`: which DAG to run (the `target_dag_id` param wins over the Variable
  `k1n_nightly_target_dag`, which wins over the default; set either to `k1n_22task_baseline` to
  roll the nightly back to the old DAG), its run id (`<nightly dag>__<nightly run id>`) and conf
  (`time_scale` plus the `target_conf` param: the test/chaos knobs `slow_tasks` and
  `failing_gates`, see `k1n.tasks.dispatch.RunContext`).
- `trigger_target`: `TriggerDagRunOperator`, deferrable (the wait runs in the triggerer, no
  worker slot), succeeding on a failed target run too: the verdict judges that.
- `report_and_judge`: reads the run over the REST API v2 (connection `k1n_airflow_api`; a task
  may not use the metadata DB in Airflow 3), analyzes it (`airflow_bottleneck.analysis`), judges it
  against the DAG's good-run history at the same time scale (`judge_run`, policy from the
  `k1n_regression_*` Variables; by the wall: a slowdown counts when it moved the critical
  path of the DAG's graph, the ones inside their slack are listed apart), stores report and
  verdict in one transaction (connection `k1n_metrics`) with the speedup = latest stored
  baseline production wall / this run's.
- `verdict`: fails with the verdict summary when the run failed, regressed, missed a target or
  failed its quality gates; the notifiers log it (and mail it when `K1N_NIGHTLY_EMAIL` is set).

The `check_targets` param (default true) judges the spec's targets on the run's production
figures (its stand-ins scaled back by the time scale, real work and hand-offs as measured);
turn it off to judge timing and quality only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, Variable, chain, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from k1n import settings
from k1n.dag_builders.alerts import VerdictNotifier
from k1n.dag_builders.defaults import START_DATE, TAGS, default_args, time_scale_param
from k1n.workflow.names import (
    BASELINE_DAG_ID,
    NIGHTLY_DAG_ID,
    OPTIMIZED_DAG_ID,
    WEEKLY_BASELINE_DAG_ID,
)

if TYPE_CHECKING:
    from airflow_bottleneck.analysis.model import RunReport

log = logging.getLogger(__name__)

NIGHTLY_CRON = "0 2 * * *"
WEEKLY_BASELINE_CRON = "0 3 * * 0"
TARGET_VARIABLE = "k1n_nightly_target_dag"
TIMEZONE_ENV = settings.env_name("nightly_timezone")
EMAIL_ENV = settings.env_name("nightly_email")
TARGET_DAG_IDS = (OPTIMIZED_DAG_ID, BASELINE_DAG_ID)
PLAN_TASK_ID = "plan_run"
TRIGGER_TASK_ID = "trigger_target"
REPORT_TASK_ID = "report_and_judge"
VERDICT_TASK_ID = "verdict"
POKE_INTERVAL_SECONDS = 2
TARGET_RUN_TIMEOUT = pendulum.duration(hours=4)


def nightly_timezone() -> str:
    """`K1N_NIGHTLY_TIMEZONE` when set, else UTC (the cron's time zone)."""
    return settings.k1n_settings().nightly_timezone


def _notifiers() -> list[Any]:
    """Always the log notifier; SMTP only when `K1N_NIGHTLY_EMAIL` is set (off by default)."""
    notifiers: list[Any] = [VerdictNotifier()]
    if email := settings.k1n_settings().nightly_email:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(
            SmtpNotifier(
                to=[address.strip() for address in email.split(",") if address.strip()],
                subject="K1N nightly {{ dag.dag_id }} {{ run_id }}: FAILED",
                # The exception echoes run input (a target DAG id, a run id): escaped.
                html_content="<pre>{{ exception | e }}</pre>",
            )
        )
    return notifiers


# -- tasks ---------------------------------------------------------------------------------


@task(task_id=PLAN_TASK_ID, retries=1, multiple_outputs=False)
def plan_run(default_target: str, target_variable: str | None) -> dict[str, Any]:
    """The target DAG, run id and conf of this night's run."""
    from airflow.sdk.exceptions import AirflowFailException

    require_connections()
    context = get_current_context()
    params = context["params"]
    from_variable = Variable.get(target_variable, default=None) if target_variable else None
    target = (params.get("target_dag_id") or from_variable or default_target).strip()
    if target not in TARGET_DAG_IDS:
        raise AirflowFailException(f"target DAG {target!r} is not one of {TARGET_DAG_IDS}")
    try:
        time_scale = settings.parse_time_scale(params["time_scale"])
    except ValueError as exc:
        raise AirflowFailException(f"param {exc}") from None
    conf = {**dict(params.get("target_conf") or {}), "time_scale": time_scale}
    plan = {
        "dag_id": target,
        "run_id": f"{context['dag'].dag_id}__{context['run_id']}",
        "conf": conf,
    }
    log.info("target: %s run %s, conf %s", plan["dag_id"], plan["run_id"], conf)
    return plan


# The connections the nightly DAGs need, and how to create each (docs/DEPLOY.md).
REQUIRED_CONNECTIONS: dict[str, str] = {
    settings.AIRFLOW_API_CONN_ID: (
        "an http connection to this Airflow's api-server for a user who may read the K1N "
        "DAGs, e.g. `airflow connections add k1n_airflow_api --conn-uri "
        "http://k1n-service:PASSWORD@airflow-apiserver:8080` or the environment variable "
        "AIRFLOW_CONN_K1N_AIRFLOW_API"
    ),
    settings.METRICS_CONN_ID: (
        "a postgres connection to the metrics database, e.g. `airflow connections add "
        "k1n_metrics --conn-uri postgresql://USER:PASSWORD@HOST:5432/k1n_metrics` or the "
        "environment variable AIRFLOW_CONN_K1N_METRICS"
    ),
}


def require_connections() -> None:
    """Fail at once, naming each missing connection and how to create it (no retries: it
    would be missing on the next try too)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    missing = []
    for conn_id, how in REQUIRED_CONNECTIONS.items():
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            missing.append(f"connection {conn_id!r} is not defined: create {how}")
    if missing:
        raise AirflowFailException("; ".join(missing) + " (see docs/DEPLOY.md)")


def fetch_report(dag_id: str, run_id: str) -> tuple[RunReport, Any]:
    """The analysis report of a run, read over the REST API v2, and its DAG's graph (a
    `networkx.DiGraph`; None when the API gave none)."""
    from airflow.sdk import BaseHook

    from airflow_bottleneck.readers.rest_api import fetch_airflow_run
    from k1n.reporting.extension import k1n_extension_for

    conn = BaseHook.get_connection(settings.AIRFLOW_API_CONN_ID)
    host = conn.host or ""
    url = host if "://" in host else f"{conn.schema or 'http'}://{host}:{conn.port or 8080}"
    extension = k1n_extension_for(dag_id)
    run = fetch_airflow_run(
        url, conn.login or "", conn.password or "", dag_id, run_id, extension=extension
    )
    graph = None if run.graph is None else run.graph.digraph
    return run.analyze(extension, detail=True), graph


# The plugin's deadline watch records these in Airflow's audit log (REST: event logs).
DEADLINE_EVENTS = ("bottleneck.deadline_outcome", "bottleneck.deadline_miss_predicted")


def fetch_deadline_record(report: RunReport) -> dict[str, Any] | None:
    """What the deadline watch predicted for the run beside what happened, from the audit log
    (None: no miss was predicted, or the caller may not read the audit log)."""
    from airflow.sdk import BaseHook

    from airflow_bottleneck.readers.rest_client import AirflowRestClient, AirflowRestError

    conn = BaseHook.get_connection(settings.AIRFLOW_API_CONN_ID)
    host = conn.host or ""
    url = host if "://" in host else f"{conn.schema or 'http'}://{host}:{conn.port or 8080}"
    try:
        with AirflowRestClient.login(url, conn.login or "", conn.password or "") as client:
            found = {}
            for event in DEADLINE_EVENTS:
                body = client.request(
                    "GET",
                    "/api/v2/eventLogs",
                    params={"dag_id": report.dag_id, "run_id": report.run_id, "event": event},
                )
                entries = body.get("event_logs", []) if isinstance(body, dict) else []
                if entries:
                    found[event] = json.loads(entries[-1].get("extra") or "{}")
    except (AirflowRestError, ValueError) as exc:
        log.warning("deadline watch record not read: %s", exc)
        return None
    if DEADLINE_EVENTS[0] in found:
        return found[DEADLINE_EVENTS[0]]
    predicted = found.get(DEADLINE_EVENTS[1])
    if predicted is None:
        return None
    # The run ended moments ago: its outcome may not be recorded yet.
    end = pendulum.parse(report.end)
    return {
        **predicted,
        "state": report.state,
        "actual_end": end.isoformat(),
        "missed": end.timestamp() > predicted["deadline_epoch"],
    }


def baseline_speedup(hook: Any, report: RunReport) -> float | None:
    """Latest stored successful baseline production wall / this run's production wall."""
    from k1n.metrics import load_runs

    if report.dag_id == BASELINE_DAG_ID:
        return None
    runs = load_runs(hook, BASELINE_DAG_ID, limit=20)
    good = runs[runs["state"] == "success"] if not runs.empty else runs
    wall = report.production.wall_seconds
    if good.empty or not wall:
        return None
    return round(float(good.iloc[0]["production_wall_seconds"]) / float(wall), 3)


@task(
    task_id=REPORT_TASK_ID,
    retries=2,
    retry_delay=pendulum.duration(seconds=10),
    multiple_outputs=False,
)
def report_and_judge(plan: dict[str, Any]) -> dict[str, Any]:
    """Report on the target run, judge it against its history, store report and verdict."""
    from k1n.metrics import (
        POLICY_VARIABLES,
        RegressionPolicy,
        judge_run,
        load_history,
        metrics_hook,
        store_report,
    )

    params = get_current_context()["params"]
    report, graph = fetch_report(plan["dag_id"], plan["run_id"])
    policy = RegressionPolicy.from_variables(
        {name: Variable.get(name, default=None) for name in POLICY_VARIABLES}
    )
    hook = metrics_hook()
    history = load_history(
        hook,
        report.dag_id,
        policy.history_runs,
        time_scale=report.time_scale,
        exclude_run_id=report.run_id,
        # Judged by the wall when the DAG's graph is known: spans, not summed seconds.
        measure="seconds" if graph is None else "span",
    )
    verdict = judge_run(report, history, policy, graph=graph)
    if not params.get("check_targets", True):
        log.info("check_targets is off: the spec's targets are not judged")
        verdict = dataclasses.replace(verdict, targets_missed=(), goals_missed=())
    speedup = baseline_speedup(hook, report)
    deadline = fetch_deadline_record(report)
    store_report(hook, report, verdict, speedup_vs_baseline=speedup, deadline_forecast=deadline)
    log.info("verdict stored in the metrics DB:\n%s", verdict.summary())
    return {
        **verdict.as_dict(),
        "time_scale": report.time_scale,
        "wall_seconds": report.wall_seconds,
        "production_wall_minutes": report.production.wall_minutes,
        "speedup_vs_baseline": speedup,
        "deadline_forecast": deadline,
    }


@task(task_id=VERDICT_TASK_ID, retries=0, multiple_outputs=False)
def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Succeed when the run holds up; fail with the readable summary otherwise."""
    from airflow.sdk.exceptions import AirflowFailException

    summary = result["summary"]
    if result.get("speedup_vs_baseline"):
        summary += f"\nspeedup vs the latest baseline: {result['speedup_vs_baseline']:.2f}x"
    if not result["ok"]:
        raise AirflowFailException(summary)
    log.info("%s", summary)
    return result


# -- DAG -------------------------------------------------------------------------------------


def build_regression_dag(
    dag_id: str,
    *,
    cron: str,
    default_target: str,
    target_variable: str | None,
    doc_md: str | None = None,
    description: str = "",
) -> DAG:
    """plan_run -> trigger_target (deferrable) -> report_and_judge -> verdict."""
    plan_xcom = f"ti.xcom_pull(task_ids='{PLAN_TASK_ID}')"
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=CronTriggerTimetable(cron, timezone=nightly_timezone()),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, "regression"],
        default_args=default_args(retries=0, on_failure_callback=_notifiers()),
        params={
            "time_scale": time_scale_param("The target run's time scale"),
            "target_dag_id": Param(
                None,
                type=["null", "string"],
                description=f"Run this DAG instead (wins over the Variable {TARGET_VARIABLE}).",
            ),
            "target_conf": Param(
                {},
                type="object",
                description="Extra conf for the target run (test/chaos knobs: slow_tasks "
                '{"13": 3.0}, failing_gates {"5": 10}, library_variant 1).',
            ),
            "check_targets": Param(
                True,
                type="boolean",
                description="Judge the spec's targets on the run's production figures.",
            ),
        },
    ) as dag:
        plan = plan_run.override(doc_md="Which DAG, run id and conf.")(
            default_target=default_target, target_variable=target_variable
        )
        trigger = TriggerDagRunOperator(
            task_id=TRIGGER_TASK_ID,
            doc_md="Trigger the target run and wait in the triggerer (no worker slot).",
            trigger_dag_id="{{ " + plan_xcom + "['dag_id'] }}",
            trigger_run_id="{{ " + plan_xcom + "['run_id'] }}",
            conf="{{ " + plan_xcom + "['conf'] | tojson }}",  # type: ignore[arg-type]
            wait_for_completion=True,
            deferrable=True,
            poke_interval=POKE_INTERVAL_SECONDS,
            # A failed target run is judged by the verdict, not here.
            allowed_states=["success", "failed"],
            failed_states=[],
            fail_when_dag_is_paused=True,
            # It waits for a whole target run: at production speed the baseline took 140 min.
            execution_timeout=TARGET_RUN_TIMEOUT,
        )
        judged = report_and_judge.override(doc_md="Analyze, judge against history, store.")(
            plan=plan
        )
        final = verdict.override(doc_md="Fail with the summary unless the run holds up.")(
            result=judged
        )
        chain(plan, trigger, judged, final)
    return dag


def build_nightly_regression_dag(doc_md: str | None = None) -> DAG:
    """`k1n_nightly_regression`: the optimized workflow every night at 02:00."""
    return build_regression_dag(
        NIGHTLY_DAG_ID,
        cron=NIGHTLY_CRON,
        default_target=OPTIMIZED_DAG_ID,
        target_variable=TARGET_VARIABLE,
        doc_md=doc_md,
        description="K1N nightly run of the workflow with a regression verdict",
    )


def build_weekly_baseline_dag(doc_md: str | None = None) -> DAG:
    """`k1n_weekly_baseline`: the baseline workflow on Sundays at 03:00."""
    return build_regression_dag(
        WEEKLY_BASELINE_DAG_ID,
        cron=WEEKLY_BASELINE_CRON,
        default_target=BASELINE_DAG_ID,
        target_variable=None,
        doc_md=doc_md,
        description="K1N weekly baseline run: keeps the speedup's reference fresh",
    )
