"""`k1n check-secrets`: the compose deployment refuses to start on placeholder secrets.

docker-compose.yaml requires every secret (`${VAR:?}`), so an empty one stops `docker compose`
before anything starts. A value copied from an example or typed for a test ("change-me",
"secret", a few characters) passes that check; airflow-init runs this one first and stops the
deployment with one line naming the variable. Values are never printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

# The secrets airflow-init sees (docker-compose.yaml passes the .env values it needs).
DEPLOYMENT_SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "K1N_API_PASSWORD",
    "K1N_METRICS_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "FLOWER_PASSWORD",
)
PLACEHOLDER_PREFIXES = ("change-me", "changeme", "change_me", "secret", "password", "admin")
MIN_LENGTH = 16


def weak_secret(
    environ: Mapping[str, str], names: Sequence[str] = DEPLOYMENT_SECRETS
) -> str | None:
    """The first of `names` that is unset, a placeholder or shorter than `MIN_LENGTH`."""
    for name in names:
        value = environ.get(name, "").strip()
        if len(value) < MIN_LENGTH or value.lower().startswith(PLACEHOLDER_PREFIXES):
            return name
    return None


def main(argv: list[str]) -> int:
    if argv:
        print("usage: k1n check-secrets (reads the environment)", file=sys.stderr)
        return 2
    name = weak_secret(os.environ)
    if name is not None:
        print(
            f"error: {name} is unset, a placeholder or shorter than {MIN_LENGTH} characters; "
            "set a value of your own in .env",
            file=sys.stderr,
        )
        return 2
    print(f"check-secrets: {len(DEPLOYMENT_SECRETS)} secrets set")
    return 0
