"""`airflow_settings.yaml` (Astro CLI format): its typed model and its validation.

The file declares the project's connections, pools and variables::

    airflow:
      connections: [{conn_id, conn_type, conn_host, conn_schema, conn_login, conn_password,
                     conn_port, conn_extra} or {conn_id, conn_uri}, ...]
      pools:       [{pool_name, pool_slot, pool_description}, ...]
      variables:   [{variable_name, variable_value}, ...]

`parse_settings` validates the WHOLE file (pydantic models, duplicate names); any problem raises
one `SettingsError` whose one-line message names the file and the entry. `connections_payload`
merges overrides in, validated the same way. Importing the result is `settings_loader`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from k1n.errors import FileProblem, brief
from k1n.io import read_yaml
from k1n.settings import PROJECT_DIR

DEFAULT_SETTINGS_PATH = PROJECT_DIR / "airflow_settings.yaml"

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionSetting(_Strict):
    """One Airflow connection, Astro field names: the fields, or the whole connection as a URI
    (`conn_uri`, which the Astro CLI also accepts; Airflow parses it)."""

    conn_id: ConnectionId
    conn_uri: str | None = Field(default=None, min_length=1)
    conn_type: str | None = Field(default=None, min_length=1)
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

    @model_validator(mode="after")
    def _uri_or_fields(self) -> ConnectionSetting:
        fields = [name for name in _CONNECTION_FIELDS if getattr(self, name) is not None]
        if self.conn_uri is None:
            if self.conn_type is None:
                raise ValueError("conn_type: required field is missing (or give conn_uri)")
            return self
        if fields:
            raise ValueError(f"conn_uri replaces the other fields; drop {', '.join(fields)}")
        check_uri(self.conn_uri)
        return self

    def airflow_fields(self) -> dict[str, Any] | str:
        """The connection as `airflow connections import` reads it from JSON: its fields, or
        its URI as a string."""
        if self.conn_uri is not None:
            return self.conn_uri
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
    if not name:
        return f"airflow.{section}[{index}]"
    # The name is the file's text, maybe not even a string: shown short, never the whole entry.
    shown = name if isinstance(name, str) and len(name) <= 60 else brief(name)
    return f"airflow.{section}[{index}] ({shown})"


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
        return SettingsError(path, f"unknown field {brief(field)}", entry)
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


def check_uri(uri: str) -> None:
    """Raise `ValueError` unless `uri` looks like a connection URI (`scheme://...`)."""
    if not urlsplit(uri).scheme or "://" not in uri:
        raise ValueError("expected a URI such as postgresql://user:password@host:5432/db")


def apply_overrides(
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
            try:
                check_uri(override)
            except ValueError as exc:
                raise SettingsError(path, str(exc), entry) from None
            result[conn_id] = override
            continue
        if conn_id not in declared or declared[conn_id].conn_uri is not None:
            raise SettingsError(
                path, "not declared field by field in the file: give a URI instead", entry
            )
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
