"""Load `airflow_settings.yaml` (Astro CLI format) into an Airflow home.

The file declares the project's connections, pools and variables::

    airflow:
      connections: [{conn_id, conn_type, conn_host, conn_schema, conn_login, conn_password,
                     conn_port, conn_extra}, ...]
      pools:       [{pool_name, pool_slot, pool_description}, ...]
      variables:   [{variable_name, variable_value}, ...]

`load_settings` validates the WHOLE file first (pydantic models, duplicate names, the
overrides); any problem raises one `SettingsError` whose one-line message names the file and the
entry, and nothing has been imported. Only then are the sections written to temporary JSON files
in the formats `airflow connections import`, `airflow pools import` and `airflow variables
import` read, and those commands run as subprocesses with the given environment (its
`AIRFLOW_HOME` / database decide which Airflow is changed). Going through the CLI rather than
the ORM keeps this module free of Airflow imports and uses Airflow's own import rules.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from include.k1n.errors import FileProblem
from include.k1n.io import read_yaml
from include.k1n.settings import PROJECT_DIR

DEFAULT_SETTINGS_PATH = PROJECT_DIR / "airflow_settings.yaml"
AIRFLOW_COMMAND: tuple[str, ...] = (sys.executable, "-m", "airflow")
IMPORT_TIMEOUT_SECONDS = 300

# What Airflow accepts as a connection id, pool name or variable key (`validate_key`).
_AIRFLOW_KEY_PATTERN = r"^[\w.-]+$"
ConnectionId = Annotated[str, Field(min_length=1, max_length=200, pattern=_AIRFLOW_KEY_PATTERN)]
PoolName = Annotated[str, Field(min_length=1, max_length=256, pattern=_AIRFLOW_KEY_PATTERN)]
VariableKey = Annotated[str, Field(min_length=1, max_length=250, pattern=_AIRFLOW_KEY_PATTERN)]

# Airflow's names for the connection fields, by their Astro names.
_CONNECTION_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
    "conn_extra": "extra",
}


class SettingsError(FileProblem):
    """A settings file (or override) that cannot be loaded; nothing was imported."""

    def __init__(self, path: Path | str, problem: str, entry: str | None = None) -> None:
        self.entry = entry
        super().__init__(path, problem, entry)


class SettingsImportError(RuntimeError):
    """An `airflow ... import` command failed; its message carries the command's output."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionSetting(_Strict):
    """One Airflow connection, Astro field names."""

    conn_id: ConnectionId
    conn_type: str = Field(min_length=1)
    conn_host: str | None = None
    conn_schema: str | None = None
    conn_login: str | None = None
    conn_password: str | None = None
    conn_port: int | None = Field(default=None, ge=1, le=65535)
    conn_extra: dict[str, Any] | None = None

    @field_validator("conn_extra", mode="before")
    @classmethod
    def _extra_from_json_text(cls, value: Any) -> Any:
        # Astro accepts the extra as a mapping or as JSON text; both must be a JSON object.
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else None
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}") from None
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be a mapping (or a JSON object)")
        return value

    def airflow_fields(self) -> dict[str, Any]:
        """The connection as `airflow connections import` reads it from JSON."""
        fields: dict[str, Any] = {}
        for astro_name, airflow_name in _CONNECTION_FIELDS.items():
            value = getattr(self, astro_name)
            if value is None:
                continue
            fields[airflow_name] = json.dumps(value) if airflow_name == "extra" else value
        return fields


class PoolSetting(_Strict):
    """One pool; `pool_slot` -1 means unlimited, as in Airflow."""

    pool_name: PoolName
    pool_slot: int = Field(ge=-1)
    pool_description: str | None = None


class VariableSetting(_Strict):
    """One variable; a number or true/false is stored as its text, as Astro does."""

    variable_name: VariableKey
    variable_value: str

    @field_validator("variable_value", mode="before")
    @classmethod
    def _scalar_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            kind = "empty" if value is None else type(value).__name__
            raise ValueError(f"must be a string, a number or true/false, got {kind}")
        return value


class AirflowSettings(_Strict):
    """The `airflow:` section; an empty list may be written as nothing at all."""

    connections: list[ConnectionSetting] = Field(default_factory=list)
    pools: list[PoolSetting] = Field(default_factory=list)
    variables: list[VariableSetting] = Field(default_factory=list)

    @field_validator("connections", "pools", "variables", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class SettingsFile(_Strict):
    airflow: AirflowSettings


@dataclass(frozen=True)
class SettingsSummary:
    """What `load_settings` imported (names in file order)."""

    path: Path
    connections: tuple[str, ...]
    pools: tuple[str, ...]
    variables: tuple[str, ...]
    overridden: tuple[str, ...] = ()

    def describe(self) -> str:
        """`loaded airflow_settings.yaml: 1 connection(s) (k1n_metrics), ...`."""
        parts = [
            f"{len(names)} {kind}(s)" + (f" ({', '.join(names)})" if names else "")
            for kind, names in (
                ("connection", self.connections),
                ("pool", self.pools),
                ("variable", self.variables),
            )
        ]
        text = f"loaded {self.path}: " + ", ".join(parts)
        if self.overridden:
            text += f"; overridden: {', '.join(self.overridden)}"
        return text


# -- validation ---------------------------------------------------------------------------------


def parse_settings(path: Path | str = DEFAULT_SETTINGS_PATH) -> AirflowSettings:
    """Read and validate a settings file; any problem raises one `SettingsError`."""
    path = Path(path)
    raw = read_yaml(path, SettingsError)
    if not isinstance(raw, Mapping) or "airflow" not in raw:
        raise SettingsError(path, "expected a mapping with an 'airflow' section")
    if raw["airflow"] is None:
        raw = {**raw, "airflow": {}}
    try:
        settings = SettingsFile.model_validate(raw).airflow
    except ValidationError as exc:
        raise _settings_error(path, raw, exc) from None
    _check_unique(path, "connections", [c.conn_id for c in settings.connections])
    _check_unique(path, "pools", [p.pool_name for p in settings.pools])
    _check_unique(path, "variables", [v.variable_name for v in settings.variables])
    return settings


_NAME_FIELDS = {"connections": "conn_id", "pools": "pool_name", "variables": "variable_name"}
# pydantic's wording where it names its own types or a regex instead of what the file needs.
_ERROR_MESSAGES = {
    "missing": "required field is missing",
    "model_type": "must be a mapping of fields",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "string_pattern_mismatch": "may only hold letters, digits, '_', '.' and '-'",
}


def _entry_label(section: str, index: int, raw_entry: Any) -> str:
    """`airflow.pools[0] (codegen)`: where an entry is, and its name when it has one."""
    name = raw_entry.get(_NAME_FIELDS[section]) if isinstance(raw_entry, Mapping) else None
    return f"airflow.{section}[{index}]" + (f" ({name})" if name else "")


def _settings_error(path: Path, raw: Mapping[str, Any], exc: ValidationError) -> SettingsError:
    """pydantic's first error as one line naming the entry and the field."""
    error, message = _first_error(exc)
    loc = list(error["loc"])
    entry = None
    if len(loc) >= 3 and loc[0] == "airflow" and loc[1] in _NAME_FIELDS and isinstance(loc[2], int):
        section, index = str(loc[1]), int(loc[2])
        entry = _entry_label(section, index, raw["airflow"][section][index])
        loc = loc[3:4]  # the field; deeper parts name pydantic's internals, not the file's
    field = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        return SettingsError(path, f"unknown field '{field}'", entry)
    return SettingsError(path, f"{field}: {message}" if field else message, entry)


def _first_error(exc: ValidationError) -> tuple[Any, str]:
    """The error to report and its wording."""
    # An unknown field first: `pool_slots` also makes `pool_slot` missing; the typo is the news.
    error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    return error, _ERROR_MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))


def _check_unique(path: Path, section: str, names: list[str]) -> None:
    first_index: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first_index:
            raise SettingsError(
                path,
                f"duplicate name (also airflow.{section}[{first_index[name]}])",
                f"airflow.{section}[{index}] ({name})",
            )
        first_index[name] = index


def _apply_overrides(
    path: Path,
    connections: list[ConnectionSetting],
    overrides: Mapping[str, str | Mapping[str, Any]],
) -> dict[str, str | dict[str, Any]]:
    """The connections file's content: declared fields with overrides merged in.

    An override is a URI (replaces or adds the whole connection; Airflow parses it) or a
    mapping of fields, Astro (`conn_host`) or Airflow (`host`) names, merged into a declared
    connection and validated like the file.
    """
    result: dict[str, str | dict[str, Any]] = {c.conn_id: c.airflow_fields() for c in connections}
    declared = {c.conn_id: c for c in connections}
    airflow_to_astro = {airflow: astro for astro, airflow in _CONNECTION_FIELDS.items()}
    for conn_id, override in overrides.items():
        entry = f"connection override {conn_id}"
        if isinstance(override, str):
            parts = urlsplit(override)
            if not parts.scheme or "://" not in override:
                raise SettingsError(path, "expected a URI such as postgresql://host/db", entry)
            result[conn_id] = override
            continue
        if conn_id not in declared:
            raise SettingsError(path, "not declared in the file: give a URI to add it", entry)
        changes = {airflow_to_astro.get(name, name): value for name, value in override.items()}
        try:
            merged = ConnectionSetting.model_validate(
                {**declared[conn_id].model_dump(exclude_none=True), **changes}
            )
        except ValidationError as exc:
            error, problem = _first_error(exc)
            field = str(error["loc"][0]) if error["loc"] else ""
            if error["type"] == "extra_forbidden":
                problem = "unknown field"
            raise SettingsError(path, f"{field}: {problem}", entry) from None
        result[conn_id] = merged.airflow_fields()
    return result


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
    connections = _apply_overrides(path, settings.connections, connection_overrides or {})
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
            _apply_overrides(args.file, settings.connections, dict(args.connection))
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
