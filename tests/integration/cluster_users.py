"""Run with a cluster's Airflow environment: creates FAB roles and users for the permission
test (`PROBE_USERS`: {username: [DAG resources]}, `PROBE_PASSWORD`), as an operator would."""

import json
import os

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

users = json.loads(os.environ["PROBE_USERS"])
with get_application_builder() as appbuilder:
    security = appbuilder.sm
    for username, resources in users.items():
        role = security.add_role(f"role-{username}")
        for resource in [*resources, "DAG Runs", "Task Instances", "Website"]:
            security.add_permission_to_role(role, security.create_permission("can_read", resource))
        if security.find_user(username=username) is None:
            email = f"{username}@localhost"
            security.add_user(
                username, username, "probe", email, role, password=os.environ["PROBE_PASSWORD"]
            )
