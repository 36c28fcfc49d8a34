"""Run by `test_fab_permissions.py` in a fresh interpreter: Airflow's real API server app with
the FAB auth manager (per-DAG roles) on a SQLite metadata DB of its own, the demo runs seeded,
two users with roles, and every route and page state of `access_cases.CASES` asked by each.
Writes HOME/result.json: per user and case, the status and which traces of the baseline's
run were in the body.

    python -m tests.airflow_bottleneck.web.fab_probe HOME
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[3]
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
PASSWORD = "probe-password-4f8a1c"
# The optimized run and the fan-out DAG, not the baseline; and everything.
USERS = {
    "reader-no-baseline": ["DAG:k1n_22task_optimized", "DAG:fan_out_etl"],
    "reader-everything": ["DAGs"],
}


def configure(home: Path) -> None:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "fab-probe-" + "0123456789abcdef" * 4,
            "AIRFLOW__API__SECRET_KEY": "fab-probe-secret-key-0123456789",
            "K1N_STORAGE_URL": (home / "k1n-storage").as_uri(),
            "K1N_CACHE_DIR": str(home / "k1n-cache"),
        }
    )


def create_users() -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        for username, dag_resources in USERS.items():
            role = security.add_role(f"role-{username}")
            for resource in [*dag_resources, "DAG Runs", "Task Instances", "Website"]:
                permission = security.create_permission("can_read", resource)
                security.add_permission_to_role(role, permission)
            security.add_user(
                username, "Probe", username, f"{username}@example.org", role, password=PASSWORD
            )


def main(home: Path) -> dict:
    configure(home)
    from airflow.utils.db import initdb

    initdb()  # with FAB configured, its tables too
    from tests.airflow_bottleneck.web.access_cases import CASES, traces
    from tests.airflow_bottleneck.web.seed import seed_demo_runs

    runs = seed_demo_runs()
    create_users()

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    baseline, optimized = runs["baseline"], runs["optimized"]
    result: dict = {"auth_manager": None, "users": {}}
    for username in USERS:
        login = client.post("/auth/token", json={"username": username, "password": PASSWORD})
        assert login.status_code in (200, 201), (username, login.status_code, login.text[:200])
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        answers = {}
        for case, (make_path, _) in CASES.items():
            answer = client.get(make_path(baseline, optimized), headers=headers)
            found = [trace for trace in traces(baseline) if trace in answer.text]
            answers[case] = {"status": answer.status_code, "traces": found}
        listed = client.get("/bottlenecks/api/runs?limit=500", headers=headers).json()["runs"]
        answers["listed dags"] = sorted({run["dag_id"] for run in listed})
        result["users"][username] = answers
    from airflow.api_fastapi.app import get_auth_manager

    result["auth_manager"] = type(get_auth_manager()).__name__
    return result


if __name__ == "__main__":
    target = Path(sys.argv[1])
    (target / "result.json").write_text(json.dumps(main(target)))
