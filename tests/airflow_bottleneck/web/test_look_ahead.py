"""The look-ahead routes in Airflow's real API server app: a running run's ETA and deadline,
a DAG's criticality, the comparison's attribution, and the page's progress bar and box plots."""

from __future__ import annotations

import pytest

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
