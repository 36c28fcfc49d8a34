"""The plugin inside Airflow's real API server app: auth, permissions, errors, answers, queries."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import event

from include.k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from include.k1n.workflow.spec import load_spec
from tests.conftest import PROJECT_DIR
from tests.include.k1n.ui.seed import PASS_RATE, RETRIED_SPEC_ID, SHARDS, SeededRun

MARKDOWN_TITLE = "# K1N workflow performance report"


def report_url(run: SeededRun, suffix: str = "report") -> str:
    return f"/k1n/api/dags/{run.dag_id}/runs/{quote(run.run_id, safe='')}/{suffix}"


def compare_url(a: SeededRun, b: SeededRun) -> str:
    return f"{report_url(a, 'compare')}/{b.dag_id}/{quote(b.run_id, safe='')}"


@contextmanager
def counted_queries():
    """Every SQL statement the metadata DB engine runs inside the block."""
    from airflow import settings

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(settings.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(settings.engine, "before_cursor_execute", record)


# -- registration ---------------------------------------------------------------------------------


def test_plugin_registers_the_app_and_the_browse_entry(api_app, admin):
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    (entry,) = [a for a in apps if a["url_prefix"] == "/k1n"]
    assert entry["name"] == "K1N bottlenecks"
    plugins = admin.get("/api/v2/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "k1n_bottlenecks"]
    (view,) = plugin["external_views"]
    assert view["href"] == "k1n/"  # relative: the UI resolves it against its <base href>
    assert view["url_route"] == "k1n-bottlenecks"
    assert (view["category"], view["destination"]) == ("browse", "nav")


def test_plugin_module_imports_nothing_heavy():
    """Airflow imports plugins in every task process: the app must be built lazily."""
    plugin_file = str(PROJECT_DIR / "plugins" / "k1n_bottleneck_plugin.py")
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('p', {plugin_file!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = ['pandas', 'networkx', 'include.k1n.analysis', 'include.k1n.ui.app',\n"
        "         'airflow.api_fastapi.core_api.security']\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules],\n"
        "    'built': module.K1NBottleneckPlugin.fastapi_apps[0]['app'].built}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env={"PYTHONPATH": str(PROJECT_DIR), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {"loaded": [], "built": False}


# -- authentication -------------------------------------------------------------------------------


@pytest.fixture
def every_route(seeded) -> list[str]:
    optimized, baseline = seeded["optimized"], seeded["baseline"]
    return [
        "/k1n/api/runs",
        report_url(optimized),
        report_url(optimized) + "?format=markdown",
        report_url(optimized, "report.md"),
        compare_url(baseline, optimized),
        "/k1n/openapi.json",
        # Authentication comes first: a bad or unknown id without a token is still a 401.
        "/k1n/api/dags/not%20a%20dag/runs/x/report",
        f"/k1n/api/dags/{OPTIMIZED_DAG_ID}/runs/nope/report",
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
    response = anonymous.get("/k1n/?run=x/y")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="login-required"' in response.text
    assert "/auth/login?next=%2Fk1n%2F%3Frun%3Dx%2Fy" in response.text


def test_the_iframe_cookie_is_accepted(client_for, seeded):
    """Inside the Airflow UI the page is an iframe: the browser sends the `_token` cookie."""
    browser = client_for("admin", "admin", cookie=True)
    assert browser.get("/k1n/").status_code == 200
    assert browser.get(report_url(seeded["optimized"])).status_code == 200


# -- permissions ----------------------------------------------------------------------------------


def test_a_user_without_a_role_reads_nothing(client_for, seeded):
    nobody = client_for("nobody", None)
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    assert nobody.get(report_url(optimized)).status_code == 403
    assert nobody.get(report_url(optimized, "report.md")).status_code == 403
    assert nobody.get(compare_url(baseline, optimized)).status_code == 403
    # Lists leave out what may not be read, as Airflow's own list endpoints do.
    assert nobody.get("/k1n/api/runs").json()["runs"] == []
    page = nobody.get("/k1n/")
    assert page.status_code == 200 and 'id="no-runs"' in page.text
    assert nobody.get(f"/k1n/?run={optimized.key}").status_code == 403


def test_a_viewer_reads_every_k1n_run(client_for, seeded):
    viewer = client_for("viewer", "viewer")
    assert viewer.get(report_url(seeded["baseline"])).status_code == 200
    keys = {(r["dag_id"], r["run_id"]) for r in viewer.get("/k1n/api/runs").json()["runs"]}
    assert {(r.dag_id, r.run_id) for r in seeded.values()} <= keys


def test_dag_level_permissions_apply_to_both_runs_of_a_comparison(no_baseline, seeded):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    assert no_baseline.get(report_url(optimized)).status_code == 200
    assert no_baseline.get(report_url(baseline)).status_code == 403
    # The second DAG of the path is checked too, not only `{dag_id}`.
    assert no_baseline.get(compare_url(optimized, baseline)).status_code == 403
    assert no_baseline.get(compare_url(baseline, optimized)).status_code == 403
    runs = no_baseline.get("/k1n/api/runs").json()["runs"]
    assert runs and {r["dag_id"] for r in runs} == {OPTIMIZED_DAG_ID}
    page = no_baseline.get(f"/k1n/?run={baseline.key}")
    assert page.status_code == 403
    assert "you may not read the task instances of k1n_22task_baseline" in page.text


# -- malformed parameters, unknown ids ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/k1n/api/dags/bad%20dag!/runs/x/report",
        "/k1n/api/dags/{opt}/runs/{run}/report?format=xml",
        "/k1n/api/dags/{opt}/runs/{run}/report?time_scale=-1",
        "/k1n/api/dags/{opt}/runs/{run}/report?time_scale=abc",
        "/k1n/api/dags/{opt}/runs/{run}/report?detail=maybe",
        "/k1n/api/dags/{opt}/runs/{run}/report.md?time_scale=0",
        "/k1n/api/dags/{opt}/runs/{run}/compare/bad%24dag/x",
        "/k1n/api/dags/{opt}/runs/{run}/compare/{opt}/{run}?format=csv",
        "/k1n/api/dags/{opt}/runs/" + "r" * 251 + "/report",
        "/k1n/api/runs?limit=0",
        "/k1n/api/runs?limit=501",
        "/k1n/api/runs?offset=-1",
        "/k1n/api/runs?dag_id=some_other_dag",
        "/k1n/api/runs?state=bogus",
        "/k1n/?run=no-slash-here",
        "/k1n/?run=bad%20dag/x",
    ],
)
def test_malformed_parameters_are_422(admin, seeded, path):
    optimized = seeded["optimized"]
    response = admin.get(path.format(opt=optimized.dag_id, run=optimized.run_id))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/k1n/api/dags/{opt}/runs/no_such_run/report",
        "/k1n/api/dags/{opt}/runs/no_such_run/report.md",
        "/k1n/api/dags/example_dag/runs/{run}/report",
        "/k1n/api/dags/{opt}/runs/{run}/compare/{opt}/no_such_run",
        "/k1n/api/dags/{opt}/runs/{run}/compare/example_dag/{run}",
        "/k1n/?run={opt}/no_such_run",
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
    page = admin.get(f"/k1n/?run={queued.key}")
    assert page.status_code == 409 and "no task instance" in page.text


# -- answers --------------------------------------------------------------------------------------


def test_runs_list_newest_first_with_links(admin, seeded):
    body = admin.get("/k1n/api/runs", params={"limit": 500}).json()
    mine = [r for r in body["runs"] if r["run_id"] in {s.run_id for s in seeded.values()}]
    assert [r["run_id"] for r in mine] == [
        seeded[name].run_id for name in ("queued", "optimized", "baseline")
    ]
    optimized = next(r for r in mine if r["run_id"] == seeded["optimized"].run_id)
    assert optimized["label"] == "optimized"
    assert optimized["wall_seconds"] == pytest.approx(seeded["optimized"].wall_seconds)
    assert optimized["production_wall_seconds"] == pytest.approx(optimized["wall_seconds"] * 60)
    assert optimized["links"]["report"] == report_url(seeded["optimized"])
    assert admin.get(optimized["links"]["report"]).status_code == 200
    only_queued = admin.get("/k1n/api/runs", params={"state": "queued", "limit": 500}).json()
    assert {r["state"] for r in only_queued["runs"]} == {"queued"}
    baseline_only = admin.get("/k1n/api/runs", params={"dag_id": BASELINE_DAG_ID}).json()
    assert {r["dag_id"] for r in baseline_only["runs"]} == {BASELINE_DAG_ID}


def test_report_of_the_optimized_run(admin, seeded):
    run = seeded["optimized"]
    expected_path, expected_seconds = run.critical_path(load_spec())
    report = admin.get(report_url(run)).json()

    assert report["wall_seconds"] == pytest.approx(run.wall_seconds, abs=1e-3)
    assert report["time_scale"] == pytest.approx(1 / 60)
    assert report["production"]["wall_seconds"] == pytest.approx(run.wall_seconds * 60, abs=0.1)
    assert sum(task["share"] for task in report["tasks"]) == pytest.approx(1.0, abs=1e-4)
    seconds = [task["seconds"] for task in report["tasks"]]
    assert seconds == sorted(seconds, reverse=True)
    # The critical path: the spec's declared dependencies with the measured durations.
    path = report["critical_path"]
    assert path["spec_ids"] == [*expected_path, None]
    assert path["tasks"][-1] == "check_quality_gates"
    assert {6, 7, 8} <= set(path["spec_ids"]) and path["spec_ids"][-2] == 22
    # The spec-level path length excludes the final check's 0.2 s.
    assert path["seconds"] == pytest.approx(expected_seconds + 0.2, abs=1e-3)
    assert report["over_10_percent"] == [t for t in report["over_10_percent"] if t["share"] > 0.1]
    (generate,) = report["mapped"]
    assert generate["task"] == "task_08_code_generation.generate_code"
    assert generate["count"] == SHARDS
    retried = next(t for t in report["tasks"] if t["spec_id"] == RETRIED_SPEC_ID)
    assert retried["tries"] == 2 and retried["retry_seconds"] > 0
    assert report["overhead_seconds"] >= 0
    assert report["opportunities"]["what_if_seconds"] <= report["wall_seconds"]
    quality = next(t for t in report["targets"] if t["key"] == "quality_gate_pass_rate_min")
    assert quality["actual"] == pytest.approx(PASS_RATE) and quality["met"] is True
    assert "instances" not in report or report["instances"] is None


def test_report_of_the_baseline_run_predicts_the_parallel_schedule(admin, seeded):
    run = seeded["baseline"]
    report = admin.get(report_url(run)).json()
    expected_path, _ = run.critical_path(load_spec())
    assert report["critical_path"]["spec_ids"] == [*expected_path, None]
    chances = report["opportunities"]
    assert chances["what_if_with_overhead_seconds"] < report["wall_seconds"] / 1.5
    assert chances["pairs"], "independent tasks ran one after the other"


def test_report_options(admin, seeded):
    run = seeded["optimized"]
    production = admin.get(report_url(run), params={"time_scale": 1}).json()["production"]
    assert production["wall_seconds"] == pytest.approx(run.wall_seconds, abs=1e-3)
    detail = admin.get(report_url(run), params={"detail": "true"}).json()["instances"]
    tries = [row for row in detail if row["spec_id"] == RETRIED_SPEC_ID]
    assert sorted((row["try_number"], row["final"]) for row in tries) == [(1, False), (2, True)]


def test_markdown_variants(admin, seeded):
    run = seeded["optimized"]
    by_query = admin.get(report_url(run), params={"format": "markdown"})
    by_suffix = admin.get(report_url(run, "report.md"))
    for response in (by_query, by_suffix):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/markdown")
        assert response.text.startswith(MARKDOWN_TITLE)
    assert by_query.text == by_suffix.text
    compared = admin.get(compare_url(seeded["baseline"], run), params={"format": "markdown"})
    assert compared.text.startswith("# K1N run comparison")


def test_comparison_baseline_against_optimized(admin, seeded):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    body = admin.get(compare_url(baseline, optimized)).json()
    assert (body["a"]["dag_id"], body["b"]["dag_id"]) == (BASELINE_DAG_ID, OPTIMIZED_DAG_ID)
    ratio = baseline.wall_seconds / optimized.wall_seconds  # same time scale on both
    assert body["speedup_factor"] == pytest.approx(ratio, rel=1e-3)
    assert body["speedup_percent"] == pytest.approx((1 - 1 / ratio) * 100, abs=0.01)
    assert len(body["tasks"]) == len(load_spec().tasks) + 1  # + check_quality_gates
    task8 = next(t for t in body["tasks"] if t["spec_id"] == 8)
    assert task8["a_seconds"] > 0 and task8["b_seconds"] > 0


def test_one_task_instance_query_per_report_whatever_the_run_size(admin, seeded):
    counts = {}
    for name in ("baseline", "optimized"):  # 23 and 32 task-instance rows
        admin.get(report_url(seeded[name]))  # warm Airflow's own caches (team names)
        with counted_queries() as statements:
            assert admin.get(report_url(seeded[name])).status_code == 200
        on_instances = [s for s in statements if "task_instance" in s.lower()]
        assert len(on_instances) == 1, on_instances
        assert "union all" in on_instances[0].lower()
        counts[name] = len(statements)
    # Airflow's revoked-token check, then dag_run (with conf), task instances, the quality
    # XCom: nothing per task.
    assert counts["baseline"] == counts["optimized"] <= 4, counts


def test_openapi_documents_the_routes_behind_auth(admin, anonymous):
    assert anonymous.get("/k1n/openapi.json").status_code == 401
    document = admin.get("/k1n/openapi.json").json()
    paths = document["paths"]
    assert {
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
    assert {"RunReport", "Comparison", "RunList", "CriticalPath"} <= set(
        document["components"]["schemas"]
    )


# -- the page -------------------------------------------------------------------------------------


def test_page_defaults_to_the_newest_runs_with_all_charts(admin, seeded):
    response = admin.get("/k1n/")
    assert response.status_code == 200
    html = response.text
    for chart in ("durations", "gantt", "compare"):
        assert f'data-chart="{chart}"' in html
    assert 'class="bar critical"' in html and 'class="cp-link"' in html
    assert 'id="critical-path"' in html and 'id="speedup"' in html
    assert 'data-run="a" data-dag="k1n_22task_baseline"' in html
    assert 'data-run="b" data-dag="k1n_22task_optimized"' in html
    assert "<script src" not in html and "<link" not in html  # self-contained


def test_page_for_chosen_runs(admin, seeded):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    response = admin.get(
        "/k1n/", params={"run": baseline.key, "a": baseline.key, "b": optimized.key}
    )
    assert response.status_code == 200
    assert f'data-run="{baseline.run_id}"' in response.text
    no_pair = admin.get("/k1n/", params={"run": optimized.key, "a": "", "b": ""})
    assert no_pair.status_code == 200 and 'data-chart="compare"' not in no_pair.text


def test_page_escapes_what_comes_from_the_db(admin, airflow_db):
    from airflow.utils.session import create_session

    from tests.include.k1n.ui.seed import write_run

    hostile = SeededRun(
        dag_id=OPTIMIZED_DAG_ID,
        run_id='manual__<img src=x onerror="alert(1)">',
        time_scale=1 / 60,
        start=datetime.now(UTC),
        end=None,
        state="queued",
    )
    with create_session() as session:
        write_run(session, hostile)
    html = admin.get("/k1n/", params={"run": hostile.key}).text
    assert "<img src=x" not in html and "&lt;img src=x" in html
