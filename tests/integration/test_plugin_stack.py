"""The bottleneck plugin in the integration stack's real api-server, over HTTP, on runs the
scheduler really ran: each report's critical path is checked against an independent networkx
longest path over the DAG's task list (Airflow's REST API) and the task instances' own times
(Airflow's REST API), for both K1N DAGs and a fan-out test DAG that is not a K1N DAG."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from k1n_local.demo import RunRecord
from tests.airflow_bottleneck.analysis.helpers import longest_path_by_networkx
from tests.integration.conftest import FAN_OUT_DAG_ID

pytestmark = pytest.mark.integration

PARTS = ("work_seconds", "startup_seconds", "handoff_seconds", "waiting_seconds")


@pytest.fixture(scope="module")
def plugin(airflow_stack, airflow_client):
    """HTTP client on `/bottlenecks` with the stack admin's bearer token."""
    client = httpx.Client(
        base_url=f"{airflow_stack.base_url}/bottlenecks",
        headers={"Authorization": airflow_client.http.headers["Authorization"]},
        timeout=60,
    )
    yield client
    client.close()


def report_path(run: RunRecord, suffix: str = "report") -> str:
    return f"/api/dags/{run.dag_id}/runs/{quote(run.run_id, safe='')}/{suffix}"


def compare_path(a: RunRecord, b: RunRecord) -> str:
    return f"{report_path(a, 'compare')}/{b.dag_id}/{quote(b.run_id, safe='')}"


def task_spans(run: RunRecord) -> dict[str, float]:
    """Each task's first start -> last end over its task instances, as the REST API listed
    them when the run ended (`RunRecord.fetch`)."""
    bounds: dict[str, tuple] = {}
    for span in run.spans:
        if span.start is None or span.end is None:
            continue
        start, end = bounds.get(span.task_id, (span.start, span.end))
        bounds[span.task_id] = (min(start, span.start), max(end, span.end))
    return {task: (end - start).total_seconds() for task, (start, end) in bounds.items()}


def check_true_to_the_dag(airflow_client, report: dict, run: RunRecord) -> None:
    """The path equals the longest path networkx finds through the DAG's real graph with the
    REST API's durations, and the overhead parts add up to the wall time within 1 %."""
    tasks = airflow_client.dag_tasks(run.dag_id)
    edges = [(t["task_id"], down) for t in tasks for down in t["downstream_task_ids"]]
    seconds = task_spans(run)
    length, nx_path = longest_path_by_networkx(edges, seconds)
    path = report["critical_path"]
    assert report["graph_source"] == "dag"
    assert path["seconds"] == pytest.approx(length, abs=0.01)
    assert sum(seconds[task] for task in path["tasks"]) == pytest.approx(length, abs=0.01)
    # Ties aside, the same tasks: any difference must be as long as networkx's path.
    if path["tasks"] != nx_path:
        assert sum(seconds[t] for t in nx_path) == pytest.approx(length, abs=0.01)
    split = report["overhead"]
    parts = sum(split[key] for key in PARTS) + split["residual_seconds"]
    assert parts == pytest.approx(report["wall_seconds"], rel=0.01)
    assert abs(split["residual_seconds"]) <= 0.01 * report["wall_seconds"]


def test_the_plugin_is_mounted_and_listed(airflow_stack, airflow_client):
    anonymous = httpx.get(f"{airflow_stack.base_url}/bottlenecks/api/runs", timeout=30)
    assert anonymous.status_code == 401
    page = httpx.get(f"{airflow_stack.base_url}/bottlenecks/", timeout=30)
    assert page.status_code == 401 and 'id="login-required"' in page.text
    plugins = airflow_client.http.get("/api/v2/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "bottlenecks"]
    assert {v["destination"] for v in plugin["external_views"]} == {"nav", "dag_run"}


def test_runs_recorded_by_the_scheduler_are_listed(plugin, optimized_run, baseline_run):
    body = plugin.get("/api/runs", params={"limit": 500}).json()
    listed = {(r["dag_id"], r["run_id"]): r for r in body["runs"]}
    for record in (optimized_run, baseline_run):
        row = listed[(record.dag_id, record.run_id)]
        assert row["state"] == "success"
        assert row["wall_seconds"] == pytest.approx(record.wall_seconds, abs=1e-3)


def test_report_of_a_real_optimized_run(plugin, airflow_client, optimized_run):
    response = plugin.get(report_path(optimized_run))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dag_id"] == OPTIMIZED_DAG_ID and report["state"] == "success"
    assert report["wall_seconds"] == pytest.approx(optimized_run.wall_seconds, abs=1e-3)
    check_true_to_the_dag(airflow_client, report, optimized_run)
    assert report["mapped"][0]["task"].endswith(".generate_code")
    assert report["mapped"][0]["count"] == len(optimized_run.map_indexes(".generate_code"))
    # Every K1N task recorded when its own code started: start-up is not its work.
    ran = [t for t in report["tasks"] if t["status"] == "ran"]
    assert all(t["startup_seconds"] is not None for t in ran), [
        t["task"] for t in ran if t["startup_seconds"] is None
    ]
    assert report["overhead"]["startup_seconds"] > 0
    quality = next(t for t in report["targets"] if t["key"] == "quality_gate_pass_rate_min")
    assert quality["actual"] is not None  # read from check_quality_gates' XCom


def test_the_baselines_critical_path_is_its_chain(plugin, airflow_client, baseline_run):
    report = plugin.get(report_path(baseline_run)).json()
    assert report["dag_id"] == BASELINE_DAG_ID
    check_true_to_the_dag(airflow_client, report, baseline_run)
    path = report["critical_path"]
    assert path["share_of_wall"] >= 0.95, path
    assert [t for t in path["tasks"] if t.startswith("task_")] == sorted(
        t for t in path["tasks"] if t.startswith("task_")
    )
    assert len([t for t in path["tasks"] if t.startswith("task_")]) == 22
    # What the declared dependencies would allow is a separate, labelled what-if.
    assert report["what_if"]["with_handoffs_seconds"] < report["wall_seconds"]


def test_the_comparison_says_faster_and_slower(plugin, baseline_run, optimized_run):
    faster = plugin.get(compare_path(baseline_run, optimized_run)).json()
    assert faster["verdict"] == "faster" and faster["factor"] > 1
    slower = plugin.get(compare_path(optimized_run, baseline_run)).json()
    assert slower["verdict"] == "slower"
    assert slower["factor"] == pytest.approx(faster["factor"], rel=1e-6)
    markdown = plugin.get(report_path(optimized_run, "report.md"))
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "Critical path" in markdown.text


def test_a_dag_that_is_not_k1n_gets_a_report_and_a_comparison(plugin, airflow_client, fan_out_runs):
    fast, slow = fan_out_runs
    report = plugin.get(report_path(slow)).json()
    assert report["dag_id"] == FAN_OUT_DAG_ID and report["what_if"] is None
    check_true_to_the_dag(airflow_client, report, slow)
    assert report["critical_path"]["tasks"] == [
        "extract_rows",
        "transform_batch",
        "load_rows",
        "publish_summary",
    ]
    assert report["mapped"][0]["count"] == 3
    assert [r["run_id"] for r in report["history"]["runs"]][-2:] == [fast.run_id, slow.run_id]
    comparison = plugin.get(compare_path(fast, slow)).json()
    assert comparison["verdict"] == "slower" and comparison["factor"] >= 1
    assert fast.run_id in comparison["title"] and slow.run_id in comparison["title"]
    assert FAN_OUT_DAG_ID in plugin.get("/api/dags").json()["dag_ids"]
    listed = plugin.get("/api/runs", params={"dag_id": FAN_OUT_DAG_ID}).json()
    assert {r["run_id"] for r in listed["runs"]} >= {fast.run_id, slow.run_id}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/dags/{OPTIMIZED_DAG_ID}/runs/a%00b/report",
        f"/api/dags/{OPTIMIZED_DAG_ID}/runs/a%00b/report.md",
        f"/api/dags/{OPTIMIZED_DAG_ID}/runs/x/compare/{OPTIMIZED_DAG_ID}/a%00b",
        "/?run=k1n_22task_optimized/a%00b",
        "/?dag_id=k1n_22task_optimized&run_id=a%00b",
        "/api/runs?offset=99999999999999999999",
        "/api/runs?offset=9223372036854775808",
        f"/api/dags/{OPTIMIZED_DAG_ID}/runs/x/report.md?time_scale=5e-324",
    ],
)
def test_bad_input_is_4xx_on_postgresql(plugin, path):
    response = plugin.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])


def test_the_stack_registers_each_plugin_once(airflow_stack):
    """`make demo` and `make airflow` run this stack: the report plugin comes from its
    distribution's entry point, the K1N redirect from plugins/, each exactly once."""
    listed = json.loads(airflow_stack.airflow("plugins", "--output", "json").stdout)
    names = [plugin["name"] for plugin in listed]
    assert names.count("bottlenecks") == 1, names
    assert names.count("k1n_legacy_urls") == 1, names
    (report,) = [plugin for plugin in listed if plugin["name"] == "bottlenecks"]
    assert "airflow-bottleneck" in str(report.get("source"))
