"""`k1n users`: the deployment's people and service account in Airflow's FAB auth manager.

docker-compose.yaml and `make cluster` run the FAB auth manager (per-DAG permissions). After
`airflow db migrate`, this creates or updates, from the environment (never arguments, which
`ps` shows):

- `admin` (role Admin) with `_AIRFLOW_WWW_USER_PASSWORD`;
- `k1n-service` (role Viewer: read-only) with `K1N_API_PASSWORD`, when set: the nightly DAGs
  read their target run through the REST API as this user. A team that wants it narrower gives
  it a role with `can_read` on `DAG:k1n_22task_*`, `DAG Runs` and `Task Instances` only.

Repeatable: an existing user keeps its id and gets the password and role given here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
ADMIN_USER = "admin"
SERVICE_USER = "k1n-service"
# user -> (role, environment variable holding the password, required)
USERS: dict[str, tuple[str, str, bool]] = {
    ADMIN_USER: ("Admin", "_AIRFLOW_WWW_USER_PASSWORD", True),
    SERVICE_USER: ("Viewer", "K1N_API_PASSWORD", False),
}


class UsersError(RuntimeError):
    """A user cannot be created; one line."""


def ensure_users(environ: Mapping[str, str]) -> list[str]:
    """Create or update every user of `USERS` whose password is set; the lines to print."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    wanted = []
    for username, (role_name, variable, required) in USERS.items():
        password = environ.get(variable, "")
        if not password:
            if required:
                raise UsersError(f"{variable} is not set: the {username} user needs a password")
            continue
        wanted.append((username, role_name, password))
    done = []
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        security.sync_roles()  # Admin, Viewer, ... with Airflow's permissions
        for username, role_name, password in wanted:
            role = security.find_role(role_name)
            user = security.find_user(username=username)
            if user is None:
                email = f"{username}@localhost"
                if not security.add_user(username, username, "K1N", email, role, password):
                    raise UsersError(f"could not create user {username}")
                done.append(f"created {username} ({role_name})")
            else:
                user.roles = [role]
                security.update_user(user)
                security.reset_password(user.id, password)
                done.append(f"updated {username} ({role_name})")
    return done


def main(argv: list[str]) -> int:
    if argv:
        print("usage: k1n users (passwords from the environment)", file=sys.stderr)
        return 2
    try:
        for line in ensure_users(os.environ):
            print(f"users: {line}")
    except UsersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
