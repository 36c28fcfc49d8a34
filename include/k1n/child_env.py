"""The environment of the programs task code starts: agents, generated code's tests, ruff.

A worker's environment holds Airflow's secrets: the JWT secret (it mints admin tokens), the
Fernet key, the metadata DB URL, connections and variables as `AIRFLOW_CONN_*` and
`AIRFLOW_VAR_*`, the object store's credentials. None of that is the business of an agent or
of generated code, so a child process never inherits the environment: it gets an allow-list.
That is what finding programs, locale and temporary files need (`BASE_VARIABLES`), the
optional inputs of the agent contract (`AGENT_INPUTS`), the names a deployment lists in
`K1N_AGENT_ENV` (an agent's API key, say), and what the caller sets itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# Enough to find programs and run them as the worker's user, in its locale and time zone.
BASE_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
# What the agent scripts read when set (ops/agents/README.md); never a secret.
AGENT_INPUTS = ("K1N_SCAN_DIR", "K1N_ALLOWED_LICENSES")
# Never passed on, whatever `K1N_AGENT_ENV` names: Airflow's configuration, connections,
# variables and the CLI's own password.
NEVER_PASSED = ("AIRFLOW_", "_AIRFLOW", "K1N_AIRFLOW_PASSWORD")


def is_never_passed(name: str) -> bool:
    return name.upper().startswith(NEVER_PASSED)


def child_environment(
    extra: Mapping[str, str] | None = None,
    *,
    pass_through: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed part of `environ` (default: this process's environment) plus `extra`.

    `pass_through` names further variables to copy when set (e.g. from `K1N_AGENT_ENV`);
    names `is_never_passed` refuses are left out even then.
    """
    source = os.environ if environ is None else environ
    names = [*BASE_VARIABLES, *pass_through]
    allowed = {name: source[name] for name in names if name in source}
    return {
        **{name: value for name, value in allowed.items() if not is_never_passed(name)},
        **(extra or {}),
    }
