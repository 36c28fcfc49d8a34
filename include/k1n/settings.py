"""Where things live and the knobs read from the environment (never from the metadata DB)."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_bottleneck.analysis.time_scale import (
    TIME_SCALE_MAX,
    TIME_SCALE_MIN,
    parse_time_scale,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]

TIME_SCALE_ENV = "K1N_TIME_SCALE"
# Airflow connection (type http: host = api-server base URL, login, password) through which
# tasks read a run over the REST API v2 (`k1n.dag_builders.nightly`); the stack sets it.
AIRFLOW_API_CONN_ID = "k1n_airflow_api"
# Where tasks leave what other tasks read (k1n.storage): a URL Airflow's
# ObjectStoragePath understands, e.g. s3://aws_default@bucket/k1n in a cluster.
STORAGE_URL_ENV = "K1N_STORAGE_URL"
# Worker-local caches that only save work (the Jinja2 bytecode cache).
CACHE_DIR_ENV = "K1N_CACHE_DIR"
CODEGEN_SHARDS_ENV = "K1N_CODEGEN_SHARDS"

# 1/60: one production minute becomes one demo second, so the 130-min baseline takes ~130 s.
DEFAULT_TIME_SCALE = 1 / 60
DEFAULT_CODEGEN_SHARDS = 4
MAX_CODEGEN_SHARDS = 64
TIME_SCALE_MEANING = (
    "stand-in tasks wait their profiled seconds x this: 1/60 turns a production minute into "
    f"a second; between 1/{round(1 / TIME_SCALE_MIN)} and {TIME_SCALE_MAX:g} (production speed)"
)


def default_time_scale() -> float:
    """`K1N_TIME_SCALE` when set, else 1/60."""
    value = os.environ.get(TIME_SCALE_ENV, "").strip()
    return parse_time_scale(value) if value else DEFAULT_TIME_SCALE


def codegen_shards() -> int:
    """Most mapped generate tasks per Task 8 run (`K1N_CODEGEN_SHARDS`, default 4)."""
    text = os.environ.get(CODEGEN_SHARDS_ENV, "").strip()
    if not text:
        return DEFAULT_CODEGEN_SHARDS
    if not text.isdigit() or not 1 <= int(text) <= MAX_CODEGEN_SHARDS:
        raise ValueError(
            f"{CODEGEN_SHARDS_ENV} must be a whole number from 1 to {MAX_CODEGEN_SHARDS}, "
            f"got {text[:40]!r}"
        )
    return int(text)


def airflow_home() -> Path:
    """`AIRFLOW_HOME`, else Airflow's own default `~/airflow`."""
    value = os.environ.get("AIRFLOW_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / "airflow"


def storage_url() -> str:
    """`K1N_STORAGE_URL`, else a folder under the Airflow home (one machine only)."""
    value = os.environ.get(STORAGE_URL_ENV, "").strip()
    return value or (airflow_home() / "k1n" / "storage").resolve().as_uri()


def cache_dir() -> Path:
    """`K1N_CACHE_DIR`, else a folder under the Airflow home; local to each worker."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else airflow_home() / "k1n" / "cache"
