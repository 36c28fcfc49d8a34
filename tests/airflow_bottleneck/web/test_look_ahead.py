"""The look-ahead routes in Airflow's real API server app: a running run's ETA and deadline,
a DAG's criticality, the comparison's attribution, and the page's progress bar and box plots."""

from __future__ import annotations

import json
import time

import pytest
from airflow.sdk import BaseNotifier

from airflow_bottleneck.deadline_watch import OUTCOME_EVENT, PREDICTED_EVENT, DeadlineWatcher
from airflow_bottleneck.listener import deadline_listener
from airflow_bottleneck.web import reports
from tests.airflow_bottleneck.web.plugin_helpers import compare_url, report_url
from tests.airflow_bottleneck.web.seed import FAN_OUT_DAG_ID

FAN_OUT_HISTORY = 5  # successful fan-out runs seeded before the running one


def test_a_running_runs_forecast_is_the_remaining_critical_path(admin, seeded):
    running = seeded["fan_out_running"]
    response = admin.get(report_url(running, "forecast"))
    assert response.status_code == 200, response.text
    forecast = response.json()
    assert forecast["schema"] == "airflow-bottleneck.forecast/1"
    assert forecast["available"] and forecast["history_runs"] >= FAN_OUT_HISTORY
    assert forecast["low_end_offset"] <= forecast["expected_end_offset"]
    assert forecast["expected_end_offset"] <= forecast["high_end_offset"]
    assert forecast["expected_end_offset"] >= forecast["elapsed_seconds"]
    # Whatever ran so far, loading and publishing are still ahead, in that order.
    assert forecast["path"][-2:] == ["load_rows", "publish_summary"]
    statuses = {task["task"]: task["status"] for task in forecast["tasks"]}
    assert statuses["extract_rows"] == "done" and statuses["publish_summary"] == "pending"
    assert forecast["deadline"] is None  # no Deadline Alert, no setting, no extension


def test_a_finished_run_without_enough_history_says_so(admin, seeded):
    # The first optimized run seeded has one successful run before it at most per seeding.
    forecast = admin.get(report_url(seeded["running"], "forecast")).json()
    if forecast["history_runs"] < 3:
        assert not forecast["available"]
        assert "too little history" in forecast["reason"]
    else:  # another module seeded more runs of the DAG first
        assert forecast["available"]
    # The K1N extension's deadline: the spec's workflow_minutes_max at the run's time scale.
    assert forecast["deadline"]["source"].startswith("k1n")
    assert forecast["deadline"]["offset_seconds"] == pytest.approx(90 * 60 * (1 / 60), abs=1e-3)


def test_a_configured_deadline_predicts_a_miss_and_a_bad_setting_is_one_line(
    admin, seeded, monkeypatch
):
    url = report_url(seeded["fan_out_running"], "forecast")
    monkeypatch.setenv("AIRFLOW__BOTTLENECKS__DEADLINES", f'{{"{FAN_OUT_DAG_ID}": 0.001}}')
    deadline = admin.get(url).json()["deadline"]
    assert deadline["source"] == "[bottlenecks] deadlines"
    assert deadline["offset_seconds"] == pytest.approx(0.06)
    assert deadline["miss_predicted"] is True
    monkeypatch.setenv("AIRFLOW__BOTTLENECKS__DEADLINES", '{"fan_out_etl": "soon"}')
    refused = admin.get(url)
    assert refused.status_code == 503
    assert refused.json()["detail"] == (
        "[bottlenecks] deadlines: 'fan_out_etl' must be a positive number of minutes"
    )


def test_criticality_ranks_the_tasks_that_decide_the_wall(admin, seeded):
    response = admin.get(f"/bottlenecks/api/dags/{FAN_OUT_DAG_ID}/criticality")
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["runs"]) >= FAN_OUT_HISTORY
    tasks = {task["task"]: task for task in result["tasks"]}
    # The mapped transform is the long branch in every run; the audit beside it never is.
    assert tasks["transform_batch"]["criticality"] == 1.0
    assert tasks["audit_rows"]["criticality"] == 0.0
    assert tasks["audit_rows"]["median_slack_seconds"] > 0
    assert result["tasks"][0]["task"] == "transform_batch"
    limited = admin.get(f"/bottlenecks/api/dags/{FAN_OUT_DAG_ID}/criticality?runs=2").json()
    assert len(limited["runs"]) == 2
    assert (
        admin.get(f"/bottlenecks/api/dags/{FAN_OUT_DAG_ID}/criticality?runs=1").status_code == 422
    )
    assert admin.get("/bottlenecks/api/dags/no_such_dag/criticality").status_code == 404


def test_the_comparison_explains_the_difference(admin, seeded):
    fast, slow = seeded["fan_out_fast"], seeded["fan_out_slow"]
    attribution = admin.get(compare_url(fast, slow)).json()["attribution"]
    assert sum(part["delta_seconds"] for part in attribution["parts"]) == pytest.approx(
        attribution["delta_seconds"], abs=0.1
    )
    assert attribution["headline"].startswith(f"{attribution['delta_seconds']:+.1f} s: ")
    assert attribution["parts"][0]["key"] == "transform_batch"
    markdown = admin.get(compare_url(fast, slow) + "?format=markdown").text
    assert "## The difference explained" in markdown
    assert f"| {attribution['parts'][0]['delta_seconds']:+.3f} |" in markdown


def test_the_page_shows_the_progress_bar_and_the_criticality_view(admin, seeded):
    running = seeded["fan_out_running"]
    html = admin.get(
        "/bottlenecks/", params={"dag_id": running.dag_id, "run_id": running.run_id}
    ).text
    assert 'id="forecast" data-available="true"' in html
    assert 'role="progressbar"' in html and 'id="remaining-path"' in html
    assert 'id="criticality"' in html and 'class="box"' in html
    finished = admin.get("/bottlenecks/", params={"run": seeded["fan_out_slow"].key}).text
    assert 'id="forecast"' not in finished  # only while a run goes


def test_the_look_ahead_routes_share_the_analysis_slots(admin, seeded, monkeypatch):
    monkeypatch.setattr(reports, "ANALYSIS_WAIT_SECONDS", 0.01)
    taken = [reports._analysis_slots.acquire() for _ in range(reports.ANALYSIS_SLOTS)]
    try:
        response = admin.get(f"/bottlenecks/api/dags/{FAN_OUT_DAG_ID}/criticality")
    finally:
        for _ in taken:
            reports._analysis_slots.release()
    assert response.status_code == 503 and response.headers["Retry-After"]


# -- the deadline watcher (the scheduler's side, on the same metadata DB) ---------------------

ALERTS: list[dict] = []


class RecordingNotifier(BaseNotifier):
    """A real notifier whose template field sees the alert's context."""

    template_fields = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def notify(self, context) -> None:
        ALERTS.append({"text": self.text, "task": context["task"]})


def audit_log(dag_id: str, run_id: str) -> list[tuple[str, dict]]:
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(Log.event, Log.extra)
            .where(Log.dag_id == dag_id, Log.run_id == run_id, Log.event.like("bottleneck.%"))
            .order_by(Log.id)
        ).all()
    return [(event, json.loads(extra)) for event, extra in rows]


def test_the_plugin_registers_its_listener():
    from airflow import plugins_manager
    from airflow.listeners.listener import get_listener_manager

    plugins_manager.integrate_listener_plugins(get_listener_manager())
    registered = get_listener_manager().pm.get_plugins()
    assert deadline_listener in registered


def test_a_predicted_miss_alerts_once_through_the_notifier_and_is_recorded(seeded, monkeypatch):
    running = seeded["fan_out_running"]
    monkeypatch.setenv("AIRFLOW__BOTTLENECKS__DEADLINES", f'{{"{FAN_OUT_DAG_ID}": 0.001}}')
    monkeypatch.setenv(
        "AIRFLOW__BOTTLENECKS__DEADLINE_NOTIFIER",
        "tests.airflow_bottleneck.web.test_look_ahead.RecordingNotifier",
    )
    monkeypatch.setenv(
        "AIRFLOW__BOTTLENECKS__DEADLINE_NOTIFIER_KWARGS", '{"text": "{{ message }}"}'
    )
    ALERTS.clear()
    watch = DeadlineWatcher(background=False)  # polled by hand here, no thread
    watch.watch(running.dag_id, running.run_id)
    first = watch.check()
    assert len(first) == 1 and watch.check() == []  # once per run
    assert len(ALERTS) == 1
    assert ALERTS[0]["text"].startswith(f"DAG {FAN_OUT_DAG_ID} run {running.run_id} is predicted")
    end = time.time()
    watch.finish(running.dag_id, running.run_id, "success", end)
    assert audit_log(running.dag_id, running.run_id)[-1][0] == PREDICTED_EVENT  # not yet:
    assert watch.check() == []  # the watch thread records the outcome, never the listener
    events = audit_log(running.dag_id, running.run_id)
    assert [event for event, _ in events][-2:] == [PREDICTED_EVENT, OUTCOME_EVENT]
    outcome = events[-1][1]
    assert outcome["missed"] is True and outcome["predicted_end"] == first[0]["predicted_end"]


def test_no_alert_for_a_run_within_its_deadline(seeded, monkeypatch):
    running = seeded["fan_out_running"]
    monkeypatch.setenv("AIRFLOW__BOTTLENECKS__DEADLINES", f'{{"{FAN_OUT_DAG_ID}": 600}}')
    watch = DeadlineWatcher(background=False)
    watch.watch(running.dag_id, running.run_id)
    assert watch.check() == []
    before = audit_log(running.dag_id, running.run_id)
    watch.finish(running.dag_id, running.run_id, "success", time.time())
    assert watch.check() == []
    assert audit_log(running.dag_id, running.run_id) == before  # nothing predicted: no record


def test_a_run_without_a_deadline_leaves_the_watch(seeded):
    running = seeded["fan_out_running"]
    watch = DeadlineWatcher(background=False)
    watch.watch(running.dag_id, running.run_id)
    assert watch.check() == [] and not watch._runs


def test_the_listener_never_touches_the_database_in_the_schedulers_loop(monkeypatch):
    """The scheduler forbids commits in its loop (HA locks) and shares its session with the
    thread: the hooks only note the run for the watch thread."""
    from types import SimpleNamespace

    from airflow.utils import session as airflow_session

    from airflow_bottleneck import deadline_watch

    def refuse(*args, **kwargs):
        raise AssertionError("the listener opened a session")

    monkeypatch.setattr(airflow_session, "create_session", refuse)
    watch = DeadlineWatcher(background=False)
    monkeypatch.setattr(deadline_watch, "_watcher", watch)
    run = SimpleNamespace(dag_id="any_dag", run_id="r1", end_date=None)
    deadline_listener.on_dag_run_running(dag_run=run, msg="started")
    deadline_listener.on_dag_run_failed(dag_run=run, msg="task_failure")
    assert ("any_dag", "r1") in watch._runs
    assert watch._ended == [("any_dag", "r1", "failed", None)]


def test_the_watch_thread_polls_by_itself_and_ends_when_no_run_is_left(seeded, monkeypatch):
    running = seeded["fan_out_running"]
    monkeypatch.setenv("AIRFLOW__BOTTLENECKS__DEADLINES", f'{{"{FAN_OUT_DAG_ID}": 0.001}}')
    before = len(audit_log(running.dag_id, running.run_id))
    watch = DeadlineWatcher(poll_seconds=0.1)
    watch.watch(running.dag_id, running.run_id)
    deadline = time.monotonic() + 30
    while len(audit_log(running.dag_id, running.run_id)) == before:
        assert time.monotonic() < deadline, "the thread raised no alert"
        time.sleep(0.1)
    thread = watch._thread
    assert thread is not None
    watch.finish(running.dag_id, running.run_id, "failed", time.time())
    thread.join(timeout=30)
    assert not thread.is_alive() and not watch._runs  # nothing left to watch: it ended
    assert audit_log(running.dag_id, running.run_id)[-1][0] == OUTCOME_EVENT
