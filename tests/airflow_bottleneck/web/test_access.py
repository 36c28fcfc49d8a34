"""No route or page state of the plugin shows a run of a DAG the user may not read.

Two refused users, each with its own rule in the auth manager: `no-baseline` may not read the
baseline DAG at all; `no-baseline-runs` may read the DAG but not its runs or task instances
(Airflow's own run list refuses that user too). For each route and each page state the
refused user gets 403 (or the page without that DAG) and no trace of the baseline's runs in the
body: run ids, start and end dates. A refusal is the same for a run that exists and one that
does not, so it says nothing about what it refused. The admin sees the same runs.
"""

from __future__ import annotations

import pytest

from k1n.workflow.names import BASELINE_DAG_ID
from tests.airflow_bottleneck.web.access_cases import CASES, page, traces
from tests.airflow_bottleneck.web.conftest import NO_BASELINE_USER
from tests.airflow_bottleneck.web.plugin_helpers import report_url

NO_BASELINE_RUNS_USER = "no-baseline-runs"
# Both users may read every other DAG, like a viewer.
REFUSED_USERS = (NO_BASELINE_USER, NO_BASELINE_RUNS_USER)


@pytest.fixture
def refusing_auth_manager(monkeypatch):
    """The real auth manager with a per-DAG rule for each refused user."""
    from airflow.api_fastapi.app import get_auth_manager

    auth_manager = get_auth_manager()
    original = auth_manager.is_authorized_dag

    def is_authorized_dag(*, method, user, access_entity=None, details=None):
        about_baseline = details is not None and details.id == BASELINE_DAG_ID
        if about_baseline and user.get_name() == NO_BASELINE_USER:
            return False
        if about_baseline and user.get_name() == NO_BASELINE_RUNS_USER and access_entity:
            return False  # the DAG itself, yes; its runs, task instances, XComs: no
        return original(method=method, user=user, access_entity=access_entity, details=details)

    monkeypatch.setattr(auth_manager, "is_authorized_dag", is_authorized_dag)


@pytest.fixture(params=REFUSED_USERS)
def refused(request, refusing_auth_manager, client_for):
    return client_for(request.param, "viewer")


@pytest.mark.parametrize("case", CASES)
def test_a_refused_user_sees_no_trace_of_the_dags_runs(refused, admin, seeded, case):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    make_path, refused_status = CASES[case]
    path = make_path(baseline, optimized)

    answer = refused.get(path)
    assert answer.status_code == refused_status, answer.text[:300]
    for trace in traces(baseline):
        assert trace not in answer.text, f"{case}: {trace!r} in the refused answer"
    # The admin's answer to the same request does show the run (the check could fail).
    if case not in ("schema", "DAG list"):
        assert admin.get(path).status_code == 200
        if case != "compare markdown":  # which names runs by their labels, not their ids
            assert any(trace in admin.get(path).text for trace in traces(baseline)), case


@pytest.mark.parametrize(
    "make_path",
    [
        lambda base, opt, run_id: page(run=f"{base.dag_id}/{run_id}"),
        lambda base, opt, run_id: page(a=f"{base.dag_id}/{run_id}", b=opt.key),
        lambda base, opt, run_id: f"/bottlenecks/api/dags/{base.dag_id}/runs/{run_id}/report",
    ],
    ids=["page reporting it", "page comparing it", "its report"],
)
def test_a_refusal_is_the_same_for_a_run_that_exists_and_one_that_does_not(
    refused, seeded, make_path
):
    baseline, optimized = seeded["baseline"], seeded["optimized"]
    real = refused.get(make_path(baseline, optimized, baseline.run_id))
    made_up = refused.get(make_path(baseline, optimized, "scheduled__2026-01-01T00:00:00+00:00"))
    assert real.status_code == made_up.status_code == 403
    assert real.text == made_up.text


def test_the_refused_users_still_see_every_other_dags_runs(refused, admin, seeded):
    optimized = seeded["optimized"]
    assert refused.get(report_url(optimized)).status_code == 200
    listed = {r["run_id"] for r in refused.get("/bottlenecks/api/runs?limit=500").json()["runs"]}
    everything = admin.get("/bottlenecks/api/runs?limit=500").json()["runs"]
    assert listed == {r["run_id"] for r in everything if r["dag_id"] != BASELINE_DAG_ID}
    assert optimized.run_id in listed
