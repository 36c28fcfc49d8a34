"""The plugin inside Airflow's real API server app: auth, permissions, errors, answers, queries.

The runs are seeded into the metadata DB (`seed.py`) for the real serialized DAGs: both K1N
DAGs and a fan-out test DAG that is not a K1N DAG. Critical paths are checked against an
independent networkx longest path over the DAG's task list as Airflow's REST API serves it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import quote

import pytest

from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.web.plugin_helpers import (
    assert_true_to_the_dag,
    compare_url,
    counted_queries,
    report_url,
)
from tests.airflow_bottleneck.web.seed import (
    FAN_OUT_DAG_ID,
    PASS_RATE,
    RETRIED_SPEC_ID,
    SHARDS,
    STARTUP,
)
from tests.conftest import PROJECT_DIR

# -- registration ---------------------------------------------------------------------------------


def test_plugin_registers_the_app_the_browse_entry_and_a_run_tab(api_app, admin):
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    (entry,) = [a for a in apps if a["url_prefix"] == "/bottlenecks"]
    assert entry["name"] == "Bottlenecks"
    plugins = admin.get("/api/v2/plugins").json()["plugins"]
    # Registered once: from the airflow-bottleneck distribution's entry point, not plugins/.
    (plugin,) = [p for p in plugins if p["name"] == "bottlenecks"]
    assert plugin["source"].startswith("airflow-bottleneck")
    views = {view["destination"]: view for view in plugin["external_views"]}
    assert views["nav"]["href"] == "bottlenecks/"  # relative: resolved against <base href>
    assert views["nav"]["category"] == "browse"
    # Every run's page gets a tab; the UI fills in the run's ids.
    assert views["dag_run"]["href"] == "bottlenecks/?dag_id={DAG_ID}&run_id={RUN_ID}"
    assert views["dag_run"]["name"] == "Bottleneck report"


def test_the_old_k1n_urls_redirect_with_path_and_query(admin, seeded):
    """Links to `/k1n/…` people kept (the page, the run tab, the API) still work."""
    optimized = seeded["optimized"]
    for old, new in [
        ("/k1n/", "/bottlenecks/"),
        (f"/k1n/?run={optimized.key}", f"/bottlenecks/?run={optimized.key}"),
        ("/k1n/api/runs?limit=2&offset=1", "/bottlenecks/api/runs?limit=2&offset=1"),
    ]:
        moved = admin.get(old, follow_redirects=False)
        assert moved.status_code == 307
        assert moved.headers["location"] == new
    report = admin.get(f"/k1n/{report_url(optimized, 'report')[len('/bottlenecks/') :]}")
    assert report.status_code == 200
    assert report.json()["run_id"] == optimized.run_id


def test_plugin_module_imports_nothing_heavy():
    """Airflow imports plugins in every task process: the app must be built lazily."""
    code = (
        "import json, sys\n"
        "import airflow_bottleneck.plugin as module\n"
        "heavy = ['pandas', 'networkx', 'airflow_bottleneck.analysis',\n"
        "         'airflow_bottleneck.web.app', 'airflow_bottleneck.deadline_watch',\n"
        "         'airflow.api_fastapi.core_api.security']\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules],\n"
        "    'built': module.BottleneckPlugin.fastapi_apps[0]['app'].built}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin"},  # installed packages only: no checkout on the path
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {"loaded": [], "built": False}


# -- authentication -------------------------------------------------------------------------------


@pytest.fixture
def every_route(seeded) -> list[str]:
    optimized, baseline = seeded["optimized"], seeded["baseline"]
    return [
        "/bottlenecks/api/dags",
        "/bottlenecks/api/runs",
        report_url(optimized),
        report_url(optimized) + "?format=markdown",
        report_url(optimized, "report.md"),
        compare_url(baseline, optimized),
        "/bottlenecks/openapi.json",
        # Authentication comes first: a bad or unknown id without a token is still a 401.
        "/bottlenecks/api/dags/not%20a%20dag/runs/x/report",
        f"/bottlenecks/api/dags/{OPTIMIZED_DAG_ID}/runs/nope/report",
    ]


def test_every_route_needs_an_airflow_user(anonymous, every_route):
    for path in every_route:
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "Not authenticated"}


def test_an_invalid_token_is_refused(client_for, api_app, every_route):
    from fastapi.testclient import TestClient

    forged = TestClient(api_app, headers={"Authorization": "Bearer not-a-jwt"})
    for path in every_route:
        assert forged.get(path).status_code == 403, path


def test_the_page_without_a_session_explains_how_to_sign_in(anonymous):
    response = anonymous.get("/bottlenecks/?run=x/y")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="login-required"' in response.text
    assert "/auth/login?next=%2Fbottlenecks%2F%3Frun%3Dx%2Fy" in response.text


def test_the_iframe_cookie_is_accepted(client_for, seeded):
    """Inside the Airflow UI the page is an iframe: the browser sends the `_token` cookie."""
    browser = client_for("admin", "admin", cookie=True)
    assert browser.get("/bottlenecks/").status_code == 200
    assert browser.get(report_url(seeded["optimized"])).status_code == 200


# -- permissions ----------------------------------------------------------------------------------


def test_a_user_without_a_role_reads_nothing(client_for, seeded):
    nobody = client_for("nobody", None)
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    assert nobody.get(report_url(optimized)).status_code == 403
    assert nobody.get(report_url(optimized, "report.md")).status_code == 403
    assert nobody.get(compare_url(baseline, optimized)).status_code == 403
    # Lists leave out what may not be read, as Airflow's own list endpoints do.
    assert nobody.get("/bottlenecks/api/runs").json() == {
        "runs": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }
    assert nobody.get("/bottlenecks/api/dags").json() == {"dag_ids": []}
    page = nobody.get("/bottlenecks/")
    assert page.status_code == 200 and 'id="no-runs"' in page.text
    assert nobody.get(f"/bottlenecks/?run={optimized.key}").status_code == 403


def test_a_viewer_reads_the_runs_of_every_dag(client_for, seeded):
    viewer = client_for("viewer", "viewer")
    assert viewer.get(report_url(seeded["baseline"])).status_code == 200
    assert viewer.get(report_url(seeded["fan_out_slow"])).status_code == 200
    keys = {
        (r["dag_id"], r["run_id"])
        for r in viewer.get("/bottlenecks/api/runs?limit=500").json()["runs"]
    }
    assert {(r.dag_id, r.run_id) for r in seeded.values()} <= keys
    assert {BASELINE_DAG_ID, OPTIMIZED_DAG_ID, FAN_OUT_DAG_ID} <= set(
        viewer.get("/bottlenecks/api/dags").json()["dag_ids"]
    )


def test_dag_level_permissions_apply_to_both_runs_of_a_comparison(no_baseline, seeded):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    assert no_baseline.get(report_url(optimized)).status_code == 200
    assert no_baseline.get(report_url(baseline)).status_code == 403
    # The second DAG of the path is checked too, not only `{dag_id}`.
    assert no_baseline.get(compare_url(optimized, baseline)).status_code == 403
    assert no_baseline.get(compare_url(baseline, optimized)).status_code == 403
    runs = no_baseline.get("/bottlenecks/api/runs?limit=500").json()["runs"]
    assert runs and BASELINE_DAG_ID not in {r["dag_id"] for r in runs}
    assert BASELINE_DAG_ID not in no_baseline.get("/bottlenecks/api/dags").json()["dag_ids"]
    page = no_baseline.get(f"/bottlenecks/?run={baseline.key}")
    assert page.status_code == 403
    assert "you may not read this run" in page.text


# -- malformed parameters, unknown ids ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/bottlenecks/api/dags/bad%20dag!/runs/x/report",
        "/bottlenecks/api/dags/{opt}/runs/{run}/report?format=xml",
        "/bottlenecks/api/dags/{opt}/runs/{run}/report?time_scale=-1",
        "/bottlenecks/api/dags/{opt}/runs/{run}/report?time_scale=abc",
        "/bottlenecks/api/dags/{opt}/runs/{run}/report?detail=maybe",
        "/bottlenecks/api/dags/{opt}/runs/{run}/report.md?time_scale=0",
        "/bottlenecks/api/dags/{opt}/runs/a%00b/report",
        "/bottlenecks/api/dags/{opt}/runs/{run}/compare/bad%24dag/x",
        "/bottlenecks/api/dags/{opt}/runs/{run}/compare/{opt}/a%01b",
        "/bottlenecks/api/dags/{opt}/runs/{run}/compare/{opt}/{run}?format=csv",
        "/bottlenecks/api/dags/{opt}/runs/" + "r" * 251 + "/report",
        "/bottlenecks/api/runs?limit=0",
        "/bottlenecks/api/runs?limit=501",
        "/bottlenecks/api/runs?offset=-1",
        "/bottlenecks/api/runs?offset=99999999999999999999",
        "/bottlenecks/api/runs?dag_id=bad%20dag",
        "/bottlenecks/api/runs?state=bogus",
        "/bottlenecks/?offset=-1",
        "/bottlenecks/?dag_id={opt}&run_id=a%00b",
    ],
)
def test_malformed_parameters_are_422(admin, seeded, path):
    optimized = seeded["optimized"]
    response = admin.get(path.format(opt=optimized.dag_id, run=optimized.run_id))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("run", ["no-slash-here", "bad%20dag/x", "dag/a%00b"])
def test_a_malformed_run_on_the_page_is_422_with_the_page(admin, run):
    response = admin.get(f"/bottlenecks/?run={run}")
    assert response.status_code == 422
    assert 'class="message error"' in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/bottlenecks/api/dags/{opt}/runs/no_such_run/report",
        "/bottlenecks/api/dags/{opt}/runs/no_such_run/report.md",
        "/bottlenecks/api/dags/example_dag/runs/{run}/report",
        "/bottlenecks/api/dags/{opt}/runs/{run}/compare/{opt}/no_such_run",
        "/bottlenecks/api/dags/{opt}/runs/{run}/compare/example_dag/{run}",
        "/bottlenecks/?run={opt}/no_such_run",
    ],
)
def test_unknown_dags_and_runs_are_404(admin, seeded, path):
    optimized = seeded["optimized"]
    response = admin.get(path.format(opt=optimized.dag_id, run=optimized.run_id))
    assert response.status_code == 404, response.text


def test_a_run_with_nothing_finished_is_409_not_500(admin, seeded):
    queued = seeded["queued"]
    response = admin.get(report_url(queued))
    assert response.status_code == 409
    assert "no task instance has both a start and an end" in response.json()["detail"]
    # The page shows it as a message rather than failing.
    page = admin.get(f"/bottlenecks/?run={queued.key}")
    assert page.status_code == 409 and "no task instance" in page.text


# -- answers --------------------------------------------------------------------------------------


def test_runs_list_newest_first_paginated_with_links(admin, seeded):
    body = admin.get("/bottlenecks/api/runs", params={"limit": 500}).json()
    assert body["total"] >= len(seeded)
    mine = [r for r in body["runs"] if r["run_id"] in {s.run_id for s in seeded.values()}]
    created = list(seeded)  # in the order they were written
    assert [r["run_id"] for r in mine] == [seeded[name].run_id for name in reversed(created)]
    optimized = next(r for r in mine if r["run_id"] == seeded["optimized"].run_id)
    assert optimized["label"] == "optimized"
    assert optimized["wall_seconds"] == pytest.approx(seeded["optimized"].wall_seconds)
    assert optimized["links"]["report"] == report_url(seeded["optimized"])
    assert optimized["links"]["airflow"] == (
        f"/dags/{OPTIMIZED_DAG_ID}/runs/{quote(seeded['optimized'].run_id, safe='')}"
    )
    assert admin.get(optimized["links"]["report"]).status_code == 200
    first, second = (
        admin.get("/bottlenecks/api/runs", params={"limit": 2, "offset": offset}).json()
        for offset in (0, 2)
    )
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == [
        r["run_id"] for r in body["runs"][:4]
    ]
    only_queued = admin.get(
        "/bottlenecks/api/runs", params={"state": "queued", "limit": 500}
    ).json()
    assert {r["state"] for r in only_queued["runs"]} == {"queued"}
    fan_out = admin.get("/bottlenecks/api/runs", params={"dag_id": FAN_OUT_DAG_ID}).json()
    assert {r["dag_id"] for r in fan_out["runs"]} == {FAN_OUT_DAG_ID}
    assert fan_out["total"] == sum(run.dag_id == FAN_OUT_DAG_ID for run in seeded.values())


def test_report_of_the_optimized_run_is_true_to_its_dag(admin, seeded):
    run = seeded["optimized"]
    report = admin.get(report_url(run)).json()
    assert_true_to_the_dag(admin, report)
    assert report["schema"] == "airflow-bottleneck.run-report/3"
    assert report["wall_seconds"] == pytest.approx(run.wall_seconds, abs=1e-3)
    assert report["time_scale"] == pytest.approx(1 / 60)
    # Production: the run replayed with only its stand-ins' work scaled back; the hand-offs,
    # start-ups and work along its production critical path and the tail add up to it.
    production = report["production"]
    steps = production["critical_path"]
    parts = sum(s["handoff_seconds"] + s["startup_seconds"] + s["work_seconds"] for s in steps)
    assert production["wall_seconds"] == pytest.approx(parts + production["tail_seconds"], abs=0.01)
    stand_ins = {t.airflow_task_id for t in load_spec().tasks if t.handler == "profile"}
    assert set(production["stand_in_tasks"]) == stand_ins
    assert production["wall_seconds"] < run.wall_seconds * 60  # real work is not inflated
    assert sum(task["share"] for task in report["tasks"]) == pytest.approx(1.0, abs=1e-4)
    assert report["critical_path"]["tasks"][-1] == "check_quality_gates"
    (generate,) = report["mapped"]
    assert generate["task"] == "task_08_code_generation.generate_code"
    assert generate["count"] == SHARDS
    retried = next(t for t in report["tasks"] if t["spec_id"] == RETRIED_SPEC_ID)
    assert retried["tries"] == 2 and retried["retry_seconds"] > 0
    # The tasks recorded their code start: start-up is not counted as their work.
    audit = next(t for t in report["tasks"] if t["spec_id"] == 1)
    assert audit["startup_seconds"] == pytest.approx(STARTUP, abs=1e-3)
    assert report["overhead"]["startup_seconds"] > 0
    assert report["what_if"]["speedup"] > 0
    quality = next(t for t in report["targets"] if t["key"] == "quality_gate_pass_rate_min")
    assert quality["actual"] == pytest.approx(PASS_RATE) and quality["met"] is True
    assert report["instances"] is None
    assert report["partial"] is False
    links = report["links"]
    assert links["run"] == f"/dags/{OPTIMIZED_DAG_ID}/runs/{quote(run.run_id, safe='')}"
    assert links["tasks"][generate["task"]].endswith(
        "/tasks/task_08_code_generation.generate_code/mapped"
    )


def test_the_baselines_critical_path_is_its_chain(admin, seeded):
    report = admin.get(report_url(seeded["baseline"])).json()
    assert_true_to_the_dag(admin, report)
    path = report["critical_path"]
    assert [t for t in path["tasks"] if t.startswith("task_")] == [
        t["task"] for t in sorted(report["tasks"], key=lambda t: t["start_offset"])
    ][:22]
    assert path["share_of_wall"] >= 0.95
    # What the declared dependencies alone would have allowed: a separate, labelled what-if.
    assert report["what_if"]["with_handoffs_seconds"] < report["wall_seconds"] / 1.5
    assert report["what_if"]["pairs"], "independent tasks ran one after the other"


def test_a_dag_outside_the_workflow_gets_a_report_and_a_comparison(admin, seeded):
    fast, slow = seeded["fan_out_fast"], seeded["fan_out_slow"]
    report = admin.get(report_url(slow)).json()
    assert_true_to_the_dag(admin, report)
    assert report["critical_path"]["tasks"] == [
        "extract_rows",
        "transform_batch",
        "load_rows",
        "publish_summary",
    ]
    assert report["what_if"] is None and report["targets"] == []
    assert report["time_scale"] == 1
    (transform,) = report["mapped"]
    assert transform["count"] == 3
    # The same DAG's last runs, per task: the sparkline's data.
    history = report["history"]
    assert [r["run_id"] for r in history["runs"]][-2:] == [fast.run_id, slow.run_id]
    assert history["tasks"]["load_rows"][-2:] == [pytest.approx(0.5), pytest.approx(0.75)]

    comparison = admin.get(compare_url(fast, slow)).json()
    assert comparison["verdict"] == "slower"
    assert comparison["factor"] == pytest.approx(slow.wall_seconds / fast.wall_seconds, rel=1e-3)
    assert comparison["factor"] >= 1
    assert fast.run_id in comparison["title"] and slow.run_id in comparison["title"]
    assert {t["key"] for t in comparison["tasks"]} >= {"extract_rows", "transform_batch"}


def test_a_running_run_is_partial(admin, seeded):
    report = admin.get(report_url(seeded["running"])).json()
    assert report["partial"] is True and report["state"] == "running"
    assert report["notes"][0].startswith("the run is running: a partial report")
    assert any(t["status"] == "running" for t in report["tasks"])
    markdown = admin.get(report_url(seeded["running"], "report.md")).text
    assert "**Partial**" in markdown


def test_report_options(admin, seeded):
    run = seeded["optimized"]
    production = admin.get(report_url(run), params={"time_scale": 1}).json()["production"]
    assert production["wall_seconds"] == pytest.approx(run.wall_seconds, abs=1e-3)
    columns = admin.get(report_url(run), params={"detail": "true"}).json()["instances"]
    detail = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    retried = next(r["task"] for r in detail if r["try_number"] == 2)
    tries = [row for row in detail if row["task"] == retried]
    assert sorted((row["try_number"], row["final"]) for row in tries) == [(1, False), (2, True)]


def test_markdown_variants(admin, seeded):
    run = seeded["optimized"]
    by_query = admin.get(report_url(run), params={"format": "markdown"})
    by_suffix = admin.get(report_url(run, "report.md"))
    for response in (by_query, by_suffix):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/markdown")
        assert response.text.startswith("# Bottleneck report: optimized")
    assert by_query.text == by_suffix.text
    compared = admin.get(compare_url(seeded["baseline"], run), params={"format": "markdown"})
    assert compared.text.startswith("# baseline manual")
    assert "faster" in compared.text


def test_comparison_baseline_against_optimized(admin, seeded):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    body = admin.get(compare_url(baseline, optimized)).json()
    assert (body["a"]["dag_id"], body["b"]["dag_id"]) == (BASELINE_DAG_ID, OPTIMIZED_DAG_ID)
    walls = [
        admin.get(report_url(run)).json()["production"]["wall_seconds"]
        for run in (baseline, optimized)
    ]
    ratio = walls[0] / walls[1]  # the production walls, each run replayed
    assert body["verdict"] == "faster"
    assert body["factor"] == pytest.approx(ratio, rel=1e-3)
    assert body["percent"] == pytest.approx((1 - 1 / ratio) * 100, abs=0.01)
    assert len(body["tasks"]) == 22  # per spec task: Task 8's stages as one
    task8 = next(t for t in body["tasks"] if t["key"] == "spec 8")
    assert task8["a_seconds"] > 0 and task8["b_seconds"] > 0
    assert body["work_delta_seconds"] + body["orchestration_delta_seconds"] == pytest.approx(
        body["b"]["wall_seconds"] - body["a"]["wall_seconds"], abs=0.01
    )


def test_queries_per_report_do_not_grow_with_the_run(admin, seeded):
    counts = {}
    for name in ("baseline", "optimized"):  # 23 and 32 task-instance rows
        admin.get(report_url(seeded[name]))  # warm Airflow's own caches (team names, DAGs)
        with counted_queries() as statements:
            assert admin.get(report_url(seeded[name])).status_code == 200
        tries = [s for s in statements if "task_instance_history" in s.lower()]
        assert len(tries) == 1, tries
        assert "union all" in tries[0].lower()
        counts[name] = len(statements)
    assert counts["baseline"] == counts["optimized"] <= 12, counts


def test_openapi_documents_the_routes_behind_auth(admin, anonymous):
    assert anonymous.get("/bottlenecks/openapi.json").status_code == 401
    document = admin.get("/bottlenecks/openapi.json").json()
    paths = document["paths"]
    assert {
        "/api/dags",
        "/api/runs",
        "/api/dags/{dag_id}/runs/{run_id}/report",
        "/api/dags/{dag_id}/runs/{run_id}/report.md",
        "/api/dags/{dag_id}/runs/{run_id}/compare/{other_dag_id}/{other_run_id}",
        "/",
    } <= set(paths)
    report = paths["/api/dags/{dag_id}/runs/{run_id}/report"]["get"]
    schema = report["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RunReport"}
    assert {"401", "403", "404", "409", "422"} <= set(report["responses"])
    assert report["security"]  # the Airflow JWT
    schemas = document["components"]["schemas"]
    assert {"RunReport", "Comparison", "RunList", "CriticalPath", "OverheadSplit"} <= set(schemas)
    # The analysis' own model, field descriptions included.
    assert "add up" in schemas["OverheadSplit"]["description"]
