"""The plugin under Airflow's real FAB auth manager: per-DAG roles, two users, every route and
page state (`access_cases.CASES`). The user whose role may not read the baseline DAG gets 403
(or a list without it) and no trace of its run; the user who may read every DAG sees it.

It runs in a fresh interpreter (`fab_probe.py`): the auth manager is chosen once per process,
and the other plugin tests share one app with Airflow's simple auth manager.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.airflow_bottleneck.web.access_cases import CASES
from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("fab-home")
    probe = subprocess.run(
        [sys.executable, "-m", "tests.airflow_bottleneck.web.fab_probe", str(home)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert probe.returncode == 0, probe.stderr[-3000:] + probe.stdout[-3000:]
    result = json.loads((home / "result.json").read_text())
    assert result["auth_manager"] == "FabAuthManager"
    return result["users"]


@pytest.mark.parametrize("case", CASES)
def test_a_role_without_the_dag_sees_no_trace_of_its_runs(answers, case):
    refused = answers["reader-no-baseline"][case]
    assert refused["status"] == CASES[case][1]
    assert refused["traces"] == []


@pytest.mark.parametrize("case", CASES)
def test_a_role_with_every_dag_sees_them(answers, case):
    allowed = answers["reader-everything"][case]
    assert allowed["status"] == 200
    if case not in ("schema", "DAG list", "compare markdown"):  # these name no run id
        assert allowed["traces"], case


def test_each_role_lists_exactly_its_dags(answers):
    assert answers["reader-no-baseline"]["listed dags"] == ["fan_out_etl", "k1n_22task_optimized"]
    assert answers["reader-everything"]["listed dags"] == [
        "fan_out_etl",
        "k1n_22task_baseline",
        "k1n_22task_optimized",
    ]
