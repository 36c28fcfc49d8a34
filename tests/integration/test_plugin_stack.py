"""The bottleneck plugin in the integration stack's real api-server, over HTTP, on runs the
scheduler really ran: the report's critical path is checked against the spec's declared
dependencies and the durations the REST API reports."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import httpx
import pytest

from include.k1n.local.demo import RunRecord
from include.k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from include.k1n.workflow.spec import WorkflowSpec, load_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plugin(airflow_stack, airflow_client):
    """HTTP client on `/k1n` with the stack admin's bearer token."""
    client = httpx.Client(
        base_url=f"{airflow_stack.base_url}/k1n",
        headers={"Authorization": airflow_client.http.headers["Authorization"]},
        timeout=60,
    )
    yield client
    client.close()


def report_path(run: RunRecord, suffix: str = "report") -> str:
    return f"/api/dags/{run.dag_id}/runs/{quote(run.run_id, safe='')}/{suffix}"


def longest_chain_seconds(spec: WorkflowSpec, seconds: dict[int, float]) -> float:
    """CPM length over the declared dependencies, computed here without the analysis code."""
    finish: dict[int, float] = {}
    for task_id in spec.topological_order:
        ready = max((finish[d] for d in spec.by_id[task_id].depends_on), default=0.0)
        finish[task_id] = ready + seconds[task_id]
    return max(finish.values())


def check_critical_path(report: dict, run: RunRecord) -> list[int]:
    """The path is a chain of declared dependencies, through 6, 7, 8, ending at 22, as long
    as the longest chain of the run's measured durations."""
    spec = load_spec()
    path = report["critical_path"]
    assert path["tasks"][-1] == "check_quality_gates" and path["spec_ids"][-1] is None
    ids = path["spec_ids"][:-1]
    assert not spec.by_id[ids[0]].depends_on, f"{ids} does not start at a source task"
    assert {6, 7, 8} <= set(ids) and ids[-1] == 22, ids
    for before, after in itertools.pairwise(ids):
        assert before in spec.by_id[after].depends_on, f"{before} -> {after} is not declared"
    measured = run.seconds_by_spec_task()  # first start -> last end, from the REST API
    node_seconds = {n["spec_id"]: n["seconds"] for n in report["nodes"] if n["spec_id"]}
    for spec_id in ids:
        assert node_seconds[spec_id] == pytest.approx(measured[spec_id], abs=0.01)
    assert sum(node_seconds[i] for i in ids) == pytest.approx(
        longest_chain_seconds(spec, measured), abs=0.02
    )
    return ids


def test_the_plugin_is_mounted_and_listed(airflow_stack, airflow_client):
    anonymous = httpx.get(f"{airflow_stack.base_url}/k1n/api/runs", timeout=30)
    assert anonymous.status_code == 401
    page = httpx.get(f"{airflow_stack.base_url}/k1n/", timeout=30)
    assert page.status_code == 401 and 'id="login-required"' in page.text
    plugins = airflow_client.http.get("/api/v2/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "k1n_bottlenecks"]
    assert plugin["external_views"][0]["url_route"] == "k1n-bottlenecks"


def test_runs_recorded_by_the_scheduler_are_listed(plugin, optimized_run, baseline_run):
    runs = plugin.get("/api/runs", params={"limit": 500}).json()["runs"]
    listed = {(r["dag_id"], r["run_id"]): r for r in runs}
    for record in (optimized_run, baseline_run):
        row = listed[(record.dag_id, record.run_id)]
        assert row["state"] == "success"
        assert row["wall_seconds"] == pytest.approx(record.wall_seconds, abs=1e-3)


def test_report_of_a_real_optimized_run(plugin, optimized_run):
    response = plugin.get(report_path(optimized_run))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dag_id"] == OPTIMIZED_DAG_ID and report["state"] == "success"
    assert report["wall_seconds"] == pytest.approx(optimized_run.wall_seconds, abs=1e-3)
    check_critical_path(report, optimized_run)
    assert report["mapped"][0]["task"].endswith(".generate_code")
    assert report["mapped"][0]["count"] == len(optimized_run.map_indexes(".generate_code"))
    quality = next(t for t in report["targets"] if t["key"] == "quality_gate_pass_rate_min")
    assert quality["actual"] is not None  # read from check_quality_gates' XCom


def test_report_of_a_real_baseline_run_and_the_comparison(plugin, baseline_run, optimized_run):
    report = plugin.get(report_path(baseline_run)).json()
    assert report["dag_id"] == BASELINE_DAG_ID
    check_critical_path(report, baseline_run)
    # One task at a time: the what-if of overlapping the independent tasks is shorter.
    assert report["opportunities"]["what_if_seconds"] < report["wall_seconds"]
    compared = plugin.get(
        f"{report_path(baseline_run, 'compare')}/{OPTIMIZED_DAG_ID}/"
        f"{quote(optimized_run.run_id, safe='')}"
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert (body["a"]["run_id"], body["b"]["run_id"]) == (baseline_run.run_id, optimized_run.run_id)
    assert body["speedup_factor"] > 1
    markdown = plugin.get(report_path(optimized_run, "report.md"))
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "Critical path" in markdown.text
