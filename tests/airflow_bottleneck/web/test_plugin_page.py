"""The plugin's HTML page inside Airflow's real API server app, bad input that is never a 5xx,
and the priority strategy reading the seeded history."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k1n.workflow.names import OPTIMIZED_DAG_ID
from tests.airflow_bottleneck.web.plugin_helpers import (
    report_url,
)
from tests.airflow_bottleneck.web.seed import (
    SeededRun,
)

# -- the page -------------------------------------------------------------------------------------


def test_page_defaults_to_the_newest_runs_with_all_charts(admin, seeded):
    response = admin.get("/bottlenecks/")
    assert response.status_code == 200
    html = response.text
    for chart in ("durations", "gantt", "comparison"):
        assert f'data-chart="{chart}"' in html
    assert 'data-critical="true"' in html and 'class="handoff"' in html
    assert 'id="critical-path"' in html and 'id="speedup"' in html and 'id="wall-split"' in html
    assert 'data-verdict="faster"' in html
    assert "<script src" not in html and "<link" not in html  # self-contained


def test_page_for_chosen_runs_and_the_run_tab(admin, seeded):
    baseline, optimized, slow = seeded["baseline"], seeded["optimized"], seeded["fan_out_slow"]
    response = admin.get(
        "/bottlenecks/", params={"run": baseline.key, "a": baseline.key, "b": optimized.key}
    )
    assert response.status_code == 200
    assert f'data-run="{baseline.run_id}"' in response.text
    no_pair = admin.get("/bottlenecks/", params={"run": optimized.key, "a": "", "b": ""})
    assert no_pair.status_code == 200 and 'data-chart="comparison"' not in no_pair.text
    # What a run page's "Bottleneck report" tab opens.
    tab = admin.get("/bottlenecks/", params={"dag_id": slow.dag_id, "run_id": slow.run_id})
    assert tab.status_code == 200
    assert f'data-dag="{slow.dag_id}" data-run="{slow.run_id}"' in tab.text
    assert f'<option value="{slow.dag_id}" selected>' in tab.text
    assert 'data-chart="comparison"' not in tab.text  # no default pair for another DAG


def test_a_running_runs_page_is_partial_and_refreshes(admin, seeded):
    html = admin.get("/bottlenecks/", params={"run": seeded["running"].key}).text
    assert 'id="partial-warning"' in html
    assert '<meta http-equiv="refresh"' in html
    finished = admin.get("/bottlenecks/", params={"run": seeded["optimized"].key, "a": "", "b": ""})
    assert '<meta http-equiv="refresh"' not in finished.text


def test_page_escapes_what_comes_from_the_db(admin, airflow_db):
    from airflow.utils.session import create_session

    from tests.airflow_bottleneck.web.seed import write_run

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
    html = admin.get("/bottlenecks/", params={"run": hostile.key}).text
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_a_finished_run_is_analyzed_once_a_running_one_every_time(admin, seeded, monkeypatch):
    from airflow_bottleneck.web import reports

    reports.clear_cache()
    calls: list[str] = []
    original = reports._analyze

    def counting(data, *args):
        calls.append(data.info.run_id)
        return original(data, *args)

    monkeypatch.setattr(reports, "_analyze", counting)
    for name in ("optimized", "optimized", "running", "running"):
        assert admin.get(report_url(seeded[name])).status_code == 200
    assert calls == [seeded["optimized"].run_id] + [seeded["running"].run_id] * 2


def test_time_scales_that_differ_only_in_noise_share_one_analysis(admin, seeded, monkeypatch):
    from airflow_bottleneck.web import reports

    reports.clear_cache()
    calls: list[float | None] = []
    original = reports._analyze

    def counting(data, extension, time_scale, detail):
        calls.append(time_scale)
        return original(data, extension, time_scale, detail)

    monkeypatch.setattr(reports, "_analyze", counting)
    url = report_url(seeded["optimized"])
    for typed in ("0.0166667", "0.01666670", "0.016666700001", "0.0166667000004"):
        assert admin.get(url, params={"time_scale": typed}).status_code == 200
    assert calls == [0.0166667]


def test_a_burst_of_analyses_waits_for_a_slot_then_gets_a_503(admin, seeded, monkeypatch):
    import threading

    from airflow_bottleneck.web import reports

    reports.clear_cache()
    monkeypatch.setattr(reports, "_analysis_slots", threading.BoundedSemaphore(1))
    monkeypatch.setattr(reports, "ANALYSIS_WAIT_SECONDS", 0.2)
    reports._analysis_slots.acquire()  # an analysis that takes its time
    try:
        busy = admin.get(report_url(seeded["optimized"]))
    finally:
        reports._analysis_slots.release()
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "0.2"
    assert "every analysis slot is busy" in busy.json()["detail"]
    assert admin.get(report_url(seeded["optimized"])).status_code == 200  # the slot is free


def test_dag_graphs_are_cached_by_version_and_bounded(admin, seeded):
    from airflow_bottleneck.readers import metadata_db
    from airflow_bottleneck.web import reports

    reports.clear_cache()
    metadata_db._version_graph.cache_clear()
    for name in ("optimized", "baseline", "optimized", "baseline"):
        assert admin.get(report_url(seeded[name]), params={"detail": "true"}).status_code == 200
    info = metadata_db._version_graph.cache_info()
    assert info.maxsize == metadata_db.GRAPH_CACHE_SIZE
    assert (info.misses, info.currsize) == (2, 2)  # one lookup per DAG version, then cached


# -- bad input: never a 5xx --------------------------------------------------------------------


def test_a_run_with_an_absurd_time_scale_does_not_take_the_page_down(admin, seeded):
    from airflow.utils.session import create_session

    from tests.airflow_bottleneck.web.seed import write_run

    absurd = SeededRun(
        dag_id=OPTIMIZED_DAG_ID,
        run_id="manual__absurd_time_scale",
        time_scale=1e-310,  # the Param refuses it; a run created another way may have it
        start=datetime.now(UTC),
        end=None,
        state="queued",
    )
    with create_session() as session:
        write_run(session, absurd)
    assert admin.get("/bottlenecks/").status_code == 200
    listed = admin.get("/bottlenecks/api/runs", params={"limit": 500}).json()["runs"]
    row = next(r for r in listed if r["run_id"] == absurd.run_id)
    # Out of range: ignored; the DAG's default applies, in the list as in the report.
    assert row["time_scale"] == pytest.approx(1 / 60)
    assert admin.get("/bottlenecks/", params={"run": absurd.key}).status_code == 409


@pytest.mark.parametrize("scale", ["5e-324", "1e-310", "1e400", "nan", "inf", "2"])
def test_an_out_of_range_time_scale_override_is_422(admin, seeded, scale):
    response = admin.get(report_url(seeded["optimized"], "report.md"), params={"time_scale": scale})
    assert response.status_code == 422


SEGMENTS = st.text(max_size=40) | st.sampled_from(["\x00", "..", ".", "%", "a/b", "é", " "])
QUERY_VALUES = (
    st.text(max_size=30)
    | st.integers().map(str)
    | st.floats().map(repr)
    | st.sampled_from(["5e-324", "1e400", "-1", "99999999999999999999", "\x00", ""])
)
QUERY_KEYS = st.sampled_from(
    [
        "time_scale",
        "detail",
        "format",
        "limit",
        "offset",
        "state",
        "dag_id",
        "run_id",
        "run",
        "a",
        "b",
    ]
)


@settings(
    max_examples=120,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(["report", "report.md", "compare", "runs", "page", "dags"]),
    dag=SEGMENTS,
    run=SEGMENTS,
    query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=4),
)
def test_no_path_or_query_string_answers_5xx(admin, seeded, route, dag, run, query):
    def segment(text: str) -> str:
        return quote(text, safe="") or "x"

    paths = {
        "report": f"/bottlenecks/api/dags/{segment(dag)}/runs/{segment(run)}/report",
        "report.md": f"/bottlenecks/api/dags/{segment(dag)}/runs/{segment(run)}/report.md",
        "compare": f"/bottlenecks/api/dags/{segment(dag)}/runs/{segment(run)}/compare/"
        f"{OPTIMIZED_DAG_ID}/{quote(seeded['optimized'].run_id, safe='')}",
        "runs": "/bottlenecks/api/runs",
        "page": "/bottlenecks/",
        "dags": "/bottlenecks/api/dags",
    }
    response = admin.get(paths[route], params=query)
    assert response.status_code < 500, (route, dag, run, query, response.text[:300])


def test_the_priority_strategy_reads_the_dags_good_runs(seeded):
    """Against a real metadata DB: the seeded optimized run is the history."""
    from airflow_bottleneck.priority import _read_history

    spans = _read_history(OPTIMIZED_DAG_ID)
    run = seeded["optimized"]
    audit = next(r for r in run.rows if r["task_id"] == "task_01_security_audit")
    assert spans["task_01_security_audit"] == pytest.approx(
        (audit["end"] - audit["start"]).total_seconds()
    )
    assert "task_08_code_generation.generate_code" in spans
    assert _read_history("no_such_dag") == {}


def test_reading_the_history_leaves_the_schedulers_session_alone(seeded):
    """The scheduler calls the strategy inside its own (scoped) session's work: closing that
    session detached the scheduler's DagRun and crashed it at the next mapped expansion."""
    from airflow import settings as airflow_settings
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    from airflow_bottleneck.priority import _read_history

    session = airflow_settings.Session()
    try:
        run = session.scalars(
            select(DagRun).where(DagRun.run_id == seeded["optimized"].run_id)
        ).one()
        _read_history(OPTIMIZED_DAG_ID)
        session.expire(run)
        assert run.state == "success"  # a detached instance would raise here
    finally:
        airflow_settings.Session.remove()


def test_every_answer_carries_the_security_headers_and_only_our_script_may_run(
    admin, anonymous, seeded
):
    import base64
    import hashlib
    import re

    page = admin.get("/bottlenecks/", params={"run": seeded["optimized"].key})
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    scripts = re.findall(r"<script>(.*?)</script>", page.text, flags=re.S)
    assert len(scripts) == 1  # the one script the policy allows, by its hash
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    for answer in (
        page,
        admin.get("/bottlenecks/api/runs"),
        admin.get("/bottlenecks/api/dags/x/runs/y/report"),  # an error too
        anonymous.get("/bottlenecks/"),  # and the sign-in hint
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" in anonymous.get("/bottlenecks/").headers
