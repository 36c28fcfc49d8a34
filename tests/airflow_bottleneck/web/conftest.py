"""Airflow's real API server app (`create_app()`, the plugin loaded from `plugins/`) on the test
home's own SQLite metadata DB, migrated here and seeded with demo-shaped K1N runs.

Auth is SimpleAuthManager with `simple_auth_manager_all_admins` OFF (otherwise a middleware
would make every request an admin), so tokens decide: `token(user, role)` signs a JWT the way
`POST /auth/token` does. A role of None can read nothing; `viewer` can read every DAG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from k1n.workflow.names import BASELINE_DAG_ID
from tests.airflow_bottleneck.web.seed import SeededRun, seed_demo_runs

AUTH_ENV = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
    # Long enough for HS512 (a short generated one makes PyJWT warn on every token).
    "AIRFLOW__API_AUTH__JWT_SECRET": "k1n-plugin-tests-" + "0123456789abcdef" * 4,
}
# A user the patched auth manager refuses `k1n_22task_baseline` (SimpleAuthManager itself
# cannot express per-DAG rules).
NO_BASELINE_USER = "no-baseline"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The schema of the test home's SQLite DB (`airflow db migrate` equivalent)."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture(scope="session")
def seeded(airflow_db) -> dict[str, SeededRun]:
    """A baseline, an optimized (mapped Task 8, one retry, quality XCom) and a queued run."""
    return seed_demo_runs()


@pytest.fixture(scope="session")
def api_app(airflow_db) -> Iterator[Any]:
    """The API server app exactly as `airflow api-server` builds it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AUTH_ENV.items():
            patch.setenv(name, value)
        from airflow.api_fastapi.app import create_app, purge_cached_app

        app = create_app()
        yield app
        purge_cached_app()


@pytest.fixture(scope="session")
def token(api_app) -> Callable[[str, str | None], str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def make(username: str, role: str | None) -> str:
        user = SimpleAuthManagerUser(username=username, role=role)
        return get_auth_manager().generate_jwt(user)

    return make


@pytest.fixture(scope="session")
def client_for(api_app, token) -> Callable[..., Any]:
    """`client_for("admin", "admin")`: a TestClient sending that user's bearer token."""
    from fastapi.testclient import TestClient

    def make(username: str | None, role: str | None = None, *, cookie: bool = False):
        if username is None:
            return TestClient(api_app)
        jwt = token(username, role)
        if cookie:  # what the browser sends from inside the Airflow UI's iframe
            return TestClient(api_app, cookies={"_token": jwt})
        return TestClient(api_app, headers={"Authorization": f"Bearer {jwt}"})

    return make


@pytest.fixture(scope="session")
def admin(client_for):
    return client_for("admin", "admin")


@pytest.fixture(scope="session")
def anonymous(client_for):
    return client_for(None)


@pytest.fixture
def no_baseline(client_for, monkeypatch):
    """A user who may read every DAG but the baseline (the auth manager is patched)."""
    from airflow.api_fastapi.app import get_auth_manager

    auth_manager = get_auth_manager()
    original = auth_manager.is_authorized_dag

    def is_authorized_dag(*, method, user, access_entity=None, details=None):
        if user.get_name() == NO_BASELINE_USER and details and details.id == BASELINE_DAG_ID:
            return False
        return original(method=method, user=user, access_entity=access_entity, details=details)

    monkeypatch.setattr(auth_manager, "is_authorized_dag", is_authorized_dag)
    return client_for(NO_BASELINE_USER, "viewer")
