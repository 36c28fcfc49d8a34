"""One real Airflow (embedded PostgreSQL, api-server, scheduler with LocalExecutor,
dag-processor) shared by the integration tests of a session."""

from __future__ import annotations

import pytest

from include.k1n.stack import AirflowStack


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory):
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-home"))
    with stack.running():
        yield stack


@pytest.fixture(scope="session")
def airflow_client(airflow_stack):
    client = airflow_stack.client()
    yield client
    client.close()
