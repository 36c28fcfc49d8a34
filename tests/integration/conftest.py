"""One real Airflow (embedded PostgreSQL, api-server, scheduler with LocalExecutor,
dag-processor) shared by the integration tests of a session.

Besides the project's `dags/` it reads a second DAG bundle, `tests/fixtures/dags`: a fan-out
DAG with a mapped task that is not a K1N DAG, for the reports of "any DAG"."""

from __future__ import annotations

import json

import pytest

from k1n.settings import PROJECT_DIR
from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
from k1n_local.demo import RunRecord
from k1n_local.stack import AirflowStack

FAN_OUT_DAG_ID = "fan_out_etl"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
# Airflow's default bundle (the dags folder) plus the test DAGs.
DAG_BUNDLES = json.dumps(
    [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {
            "name": "k1n-test-dags",
            "classpath": LOCAL_BUNDLE,
            "kwargs": {"path": str(PROJECT_DIR / "tests" / "fixtures" / "dags")},
        },
    ]
)


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory):
    """A plain Airflow: the project's dags/, plugins/ and include/ and nothing else (no pool,
    Variable, connection or K1N_* setting); the workflow DAGs must run on it as they are.
    Tests that need airflow_settings.yaml load it (`settings_loaded`)."""
    stack = AirflowStack(
        tmp_path_factory.mktemp("airflow-home"),
        plain=True,
        extra_env={"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": DAG_BUNDLES},
    )
    with stack.running():
        yield stack


@pytest.fixture(scope="session")
def settings_loaded(airflow_stack):
    airflow_stack.load_settings()
    return airflow_stack


@pytest.fixture(scope="session")
def airflow_client(airflow_stack):
    client = airflow_stack.client()
    yield client
    client.close()


# Tasks 3, 4, 5 last 300 s x 1/200 = 1.5 s: long enough to overlap only if they really start
# together, short enough to keep the run under a minute.
OPTIMIZED_TIME_SCALE = 1 / 200
BASELINE_TIME_SCALE = 1 / 600


def run(client, dag_id: str, time_scale: float | None = None, **conf) -> RunRecord:
    client.wait_for_dag(dag_id)
    client.unpause(dag_id)
    if time_scale is not None:
        conf["time_scale"] = time_scale
    run_id = client.trigger(dag_id, conf=conf)
    client.wait_for_run(dag_id, run_id, timeout=600)
    return RunRecord.fetch(client, dag_id, run_id, label=dag_id)


@pytest.fixture(scope="session")
def optimized_run(airflow_client) -> RunRecord:
    return run(airflow_client, OPTIMIZED_DAG_ID, OPTIMIZED_TIME_SCALE)


@pytest.fixture(scope="session")
def baseline_run(airflow_client) -> RunRecord:
    return run(airflow_client, BASELINE_DAG_ID, BASELINE_TIME_SCALE)


@pytest.fixture(scope="session")
def fan_out_runs(airflow_client) -> tuple[RunRecord, RunRecord]:
    """Two runs of the fan-out test DAG, the second one with every sleep 1.6 x longer."""
    return (
        run(airflow_client, FAN_OUT_DAG_ID, stretch=1.0),
        run(airflow_client, FAN_OUT_DAG_ID, stretch=1.6),
    )
