"""Load `airflow_settings.yaml` (Astro CLI format) into an Airflow home.

The file declares the project's connections, pools and variables::

    airflow:
      connections: [{conn_id, conn_type, conn_host, conn_schema, conn_login, conn_password,
                     conn_port, conn_extra} or {conn_id, conn_uri}, ...]
      pools:       [{pool_name, pool_slot, pool_description}, ...]
      variables:   [{variable_name, variable_value}, ...]

`load_settings` validates the WHOLE file first (`k1n.airflow_settings.file`: pydantic
models, duplicate names, the overrides); any problem raises one `SettingsError` whose one-line
message names the file and the entry, and nothing has been imported. Only then are the sections
written to temporary JSON files in the formats `airflow connections import`, `airflow pools
import` and `airflow variables import` read, and those commands run as subprocesses with the
given environment (its `AIRFLOW_HOME` / database decide which Airflow is changed). Going
through the CLI rather than the ORM keeps this module free of Airflow imports and uses
Airflow's own import rules.

Loading is repeatable: connections and variables are overwritten, pools updated.
`connection_overrides` replaces declared connection fields (or a whole connection by URI)
without editing the file, e.g. to point `k1n_metrics` at an embedded PostgreSQL.

Command line (`k1n settings ...`)::

    settings load [FILE] [--connection CONN_ID=URI ...] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k1n.airflow_settings.file import (
    DEFAULT_SETTINGS_PATH,
    SettingsError,
    SettingsSummary,
    apply_overrides,
    parse_settings,
)

AIRFLOW_COMMAND: tuple[str, ...] = (sys.executable, "-m", "airflow")
IMPORT_TIMEOUT_SECONDS = 300


class SettingsImportError(RuntimeError):
    """An `airflow ... import` command failed; its message carries the command's output."""


# -- import -------------------------------------------------------------------------------------


def load_settings(
    path: Path | str = DEFAULT_SETTINGS_PATH,
    *,
    airflow_env: Mapping[str, str],
    connection_overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
    airflow_command: Sequence[str] = AIRFLOW_COMMAND,
) -> SettingsSummary:
    """Validate the whole file, then import pools, connections and variables into the Airflow
    that `airflow_env` (the complete environment of the commands) points at.

    Raises `SettingsError` before importing anything when the file or an override is invalid,
    `SettingsImportError` when an import command fails (sections imported before it stay).
    """
    path = Path(path)
    settings = parse_settings(path)
    connections = apply_overrides(path, settings.connections, connection_overrides or {})
    pools = {
        pool.pool_name: {
            "slots": pool.pool_slot,
            "description": pool.pool_description or "",
            "include_deferred": False,
        }
        for pool in settings.pools
    }
    variables = {v.variable_name: v.variable_value for v in settings.variables}
    env = dict(airflow_env)
    with tempfile.TemporaryDirectory(prefix="k1n-settings-") as tmp:
        # Pools first: a DAG parsed meanwhile may already name them.
        if pools:
            _import(airflow_command, env, ["pools", "import"], Path(tmp, "pools.json"), pools)
        if connections:
            output = _import(
                airflow_command,
                env,
                ["connections", "import", "--overwrite"],
                Path(tmp, "connections.json"),
                connections,
            )
            # The command reports a connection it skipped on stdout and still exits 0.
            skipped = [c for c in connections if f"Imported connection {c}" not in output]
            if skipped:
                raise SettingsImportError(
                    f"airflow connections import did not import {', '.join(skipped)}:\n"
                    + _tail(output)
                )
        if variables:
            output = _import(
                airflow_command,
                env,
                ["variables", "import", "--action-on-existing-key", "overwrite"],
                Path(tmp, "variables.json"),
                variables,
            )
            if f"{len(variables)} of {len(variables)} variables successfully" not in output:
                raise SettingsImportError(
                    "airflow variables import did not update every variable:\n" + _tail(output)
                )
    return SettingsSummary(
        path=path,
        connections=tuple(connections),
        pools=tuple(pools),
        variables=tuple(variables),
        overridden=tuple(connection_overrides or {}),
    )


def _import(
    airflow_command: Sequence[str],
    env: Mapping[str, str],
    command: list[str],
    file: Path,
    content: Mapping[str, Any],
) -> str:
    """Write `content` as JSON (owner-only: it may hold passwords), run the import command on
    it, and return its output; a non-zero exit raises `SettingsImportError`."""
    file.touch(mode=0o600)
    file.write_text(json.dumps(content, indent=2), encoding="utf-8")
    # The file name goes right after `import`, before any option.
    argv = [*airflow_command, *command[:2], str(file), *command[2:]]
    try:
        result = subprocess.run(
            argv,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SettingsImportError(
            f"airflow {' '.join(command[:2])} timed out after {IMPORT_TIMEOUT_SECONDS} s"
        ) from None
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SettingsImportError(
            f"airflow {' '.join(command[:2])} exited {result.returncode}:\n{_tail(output)}"
        )
    return output


def _tail(output: str, lines: int = 20) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


# -- command line -------------------------------------------------------------------------------


def _connection_override(text: str) -> tuple[str, str]:
    conn_id, separator, uri = text.partition("=")
    if not separator or not conn_id or not uri:
        raise argparse.ArgumentTypeError(f"expected CONN_ID=URI, got {text!r}")
    return conn_id, uri


def main(argv: Sequence[str] | None = None) -> int:
    """`settings load [FILE] [--connection CONN_ID=URI ...] [--check]`.

    Imports into the Airflow of the current environment (`AIRFLOW_HOME`, `AIRFLOW__*`).
    Exit codes: 0 loaded (or valid with --check), 2 invalid file or usage, 1 import failed.
    """
    parser = argparse.ArgumentParser(
        prog="k1n settings",
        description="Load airflow_settings.yaml (Astro format) into the current Airflow home.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="validate the file, then import it")
    load.add_argument("file", nargs="?", type=Path, default=DEFAULT_SETTINGS_PATH)
    load.add_argument(
        "--connection",
        action="append",
        type=_connection_override,
        default=[],
        metavar="CONN_ID=URI",
        help="replace (or add) a connection by URI, e.g. k1n_metrics=postgresql://...",
    )
    load.add_argument("--check", action="store_true", help="only validate; import nothing")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    try:
        if args.check:
            settings = parse_settings(args.file)
            apply_overrides(args.file, settings.connections, dict(args.connection))
            print(
                f"{args.file}: valid: {len(settings.connections)} connection(s), "
                f"{len(settings.pools)} pool(s), {len(settings.variables)} variable(s)"
            )
            return 0
        summary = load_settings(
            args.file, airflow_env=os.environ, connection_overrides=dict(args.connection)
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SettingsImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
