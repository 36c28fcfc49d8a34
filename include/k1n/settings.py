"""Where things live and the knobs read from the environment (never from the metadata DB).

Every `K1N_*` variable is a field of one model, `K1NSettings` (pydantic-settings): its name is
`K1N_` + the field's name in capitals, an empty value means "not set", and a bad value is one
`SettingsError` line naming the variable and the problem. The functions below read the
environment on each call (a test or a task may change it), never at import time; the model
built from the same `K1N_*` values is reused.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from airflow_bottleneck.time_scale import (
    TIME_SCALE_MAX,
    TIME_SCALE_MIN,
    parse_time_scale,
)
from k1n.child_env import is_never_passed

PROJECT_DIR = Path(__file__).resolve().parents[2]
ENV_PREFIX = "K1N_"

# Airflow connection (type http: host = api-server base URL, login, password) through which
# tasks read a run over the REST API v2 (`k1n.dag_builders.nightly`); the stack sets it.
AIRFLOW_API_CONN_ID = "k1n_airflow_api"
# Airflow connection (postgres) to the nightly DAGs' metrics database (`k1n.metrics`).
METRICS_CONN_ID = "k1n_metrics"

# 1/60: one production minute becomes one demo second, so the 130-min baseline takes ~130 s.
DEFAULT_TIME_SCALE = 1 / 60
DEFAULT_CODEGEN_SHARDS = 4
MAX_CODEGEN_SHARDS = 64
DEFAULT_AIRFLOW_URL = "http://localhost:8080"
DEFAULT_AIRFLOW_USER = "admin"
TIME_SCALE_MEANING = (
    "stand-in tasks wait their profiled seconds x this: 1/60 turns a production minute into "
    f"a second; between 1/{round(1 / TIME_SCALE_MIN)} and {TIME_SCALE_MAX:g} (production speed)"
)


class SettingsError(ValueError):
    """A `K1N_*` variable holds a value that cannot be used; the message is one line."""


class K1NSettings(BaseSettings):
    """Every `K1N_*` environment variable the project reads."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    time_scale: float = Field(
        DEFAULT_TIME_SCALE, description="the default time scale of the workflow DAGs' runs"
    )
    codegen_shards: int = Field(
        DEFAULT_CODEGEN_SHARDS, description="most mapped generate tasks per Task 8 run"
    )
    storage_url: str | None = Field(
        None, description="object-storage root every worker reaches (ObjectStoragePath URL)"
    )
    cache_dir: Path | None = Field(None, description="worker-local caches (Jinja2 bytecode)")
    workflow_spec: Path | None = Field(None, description="another workflow spec file")
    pattern_library: Path | None = Field(
        None, description="the pattern library folder (default: the generated demo library)"
    )
    nightly_timezone: str = Field("UTC", description="time zone of the nightly DAGs' crons")
    nightly_email: str | None = Field(None, description="comma-separated verdict recipients")
    airflow_url: str = Field(DEFAULT_AIRFLOW_URL, description="the k1n CLI's api-server")
    airflow_user: str = Field(DEFAULT_AIRFLOW_USER, description="the k1n CLI's user")
    airflow_password: str | None = Field(None, description="the k1n CLI's password")
    agent_env: str | None = Field(
        None,
        description="comma-separated names of worker variables agent commands also get "
        "(e.g. an agent's API key); never Airflow's own",
    )

    @field_validator(
        "storage_url",
        "cache_dir",
        "workflow_spec",
        "pattern_library",
        "nightly_email",
        "airflow_password",
        mode="before",
    )
    @classmethod
    def _optional(cls, value: Any) -> Any:
        return _blank(value)

    @field_validator("agent_env", mode="before")
    @classmethod
    def _agent_env(cls, value: Any) -> str | None:
        value = _blank(value)
        if value is None:
            return None
        names = [name.strip() for name in str(value).split(",") if name.strip()]
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
                raise ValueError(f"{env_name('agent_env')}: {name[:40]!r} is not a variable name")
            if is_never_passed(name):
                raise ValueError(
                    f"{env_name('agent_env')}: {name} is Airflow's or the CLI's own; "
                    "task code never gets it"
                )
        return ",".join(names) or None

    @field_validator("time_scale", mode="before")
    @classmethod
    def _time_scale(cls, value: Any) -> float:
        value = _blank(value)
        if value is None:
            return DEFAULT_TIME_SCALE
        return parse_time_scale(value, env_name("time_scale"))

    @field_validator("codegen_shards", mode="before")
    @classmethod
    def _codegen_shards(cls, value: Any) -> int:
        value = _blank(value)
        if value is None:
            return DEFAULT_CODEGEN_SHARDS
        text = str(value)
        if not text.isdigit() or not 1 <= int(text) <= MAX_CODEGEN_SHARDS:
            raise ValueError(
                f"{env_name('codegen_shards')} must be a whole number from 1 to "
                f"{MAX_CODEGEN_SHARDS}, got {text[:40]!r}"
            )
        return int(text)

    @field_validator("nightly_timezone", mode="before")
    @classmethod
    def _default_timezone(cls, value: Any) -> Any:
        value = _blank(value)
        return "UTC" if value is None else value

    @field_validator("airflow_url", "airflow_user", mode="before")
    @classmethod
    def _default_login(cls, value: Any, info: Any) -> Any:
        value = _blank(value)
        if value is not None:
            return value
        return DEFAULT_AIRFLOW_URL if info.field_name == "airflow_url" else DEFAULT_AIRFLOW_USER


class _GivenSettings(K1NSettings):
    """K1NSettings from given values only: the process environment must not fill in what a
    given environment leaves out."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _blank(value: Any) -> Any:
    """Whitespace around a value is a typo, not part of it; whitespace alone means unset."""
    return (value.strip() or None) if isinstance(value, str) else value


def env_name(field: str) -> str:
    """`time_scale` -> `K1N_TIME_SCALE`."""
    return ENV_PREFIX + field.upper()


TIME_SCALE_ENV = env_name("time_scale")
STORAGE_URL_ENV = env_name("storage_url")
CACHE_DIR_ENV = env_name("cache_dir")
CODEGEN_SHARDS_ENV = env_name("codegen_shards")
SPEC_PATH_ENV = env_name("workflow_spec")


def k1n_settings(environ: Mapping[str, str] | None = None) -> K1NSettings:
    """The settings from the environment (or from `environ` alone); a bad value raises one
    `SettingsError` line naming the variable."""
    try:
        if environ is None:
            return _settings_for(_our_variables())
        ours = {
            name: environ[env_name(name)]
            for name in K1NSettings.model_fields
            if env_name(name) in environ
        }
        return _GivenSettings(**ours)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _our_variables() -> tuple[tuple[str, str], ...]:
    """The process environment's `K1N_*` variables (any case: pydantic-settings ignores it)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))


# Building the model walks every source and field (~2.5 ms) and one DAG parse asks for it
# about 25 times; the same variables give the same (frozen) model.
@functools.lru_cache(maxsize=16)
def _settings_for(variables: tuple[tuple[str, str], ...]) -> K1NSettings:
    """`K1NSettings()` for the environment whose `K1N_*` variables are `variables`."""
    return K1NSettings()


def _one_line(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    message = str(error["msg"]).removeprefix("Value error, ")
    text = message if message.startswith(ENV_PREFIX) else f"{env_name(field)}: {message}"
    return " ".join(text.split())


def default_time_scale() -> float:
    """`K1N_TIME_SCALE` when set, else 1/60."""
    return k1n_settings().time_scale


def codegen_shards() -> int:
    """Most mapped generate tasks per Task 8 run (`K1N_CODEGEN_SHARDS`, default 4)."""
    return k1n_settings().codegen_shards


def airflow_home() -> Path:
    """`AIRFLOW_HOME`, else Airflow's own default `~/airflow`."""
    value = os.environ.get("AIRFLOW_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / "airflow"


def storage_url() -> str:
    """`K1N_STORAGE_URL`, else a folder under the Airflow home (one machine only)."""
    value = k1n_settings().storage_url
    return value or (airflow_home() / "k1n" / "storage").resolve().as_uri()


def agent_env_names() -> list[str]:
    """The worker variables `K1N_AGENT_ENV` passes on to agent commands."""
    value = k1n_settings().agent_env
    return value.split(",") if value else []


def cache_dir() -> Path:
    """`K1N_CACHE_DIR`, else a folder under the Airflow home; local to each worker."""
    value = k1n_settings().cache_dir
    return value.expanduser() if value else airflow_home() / "k1n" / "cache"
