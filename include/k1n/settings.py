"""Where things live and the knobs read from the environment (never from the metadata DB)."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]

TIME_SCALE_ENV = "K1N_TIME_SCALE"
# Airflow connection (type http: host = api-server base URL, login, password) through which
# tasks read a run over the REST API v2 (`include.k1n.dag_builders.nightly`); the stack sets it.
AIRFLOW_API_CONN_ID = "k1n_airflow_api"
WORK_DIR_ENV = "K1N_WORK_DIR"
CODEGEN_SHARDS_ENV = "K1N_CODEGEN_SHARDS"

# 1/60: one production minute becomes one demo second, so the 130-min baseline takes ~130 s.
DEFAULT_TIME_SCALE = 1 / 60
DEFAULT_CODEGEN_SHARDS = 4


def parse_time_scale(value: str | float) -> float:
    """`"1/60"`, `"0.0167"` or `0.5` -> a positive float; anything else raises ValueError."""
    try:
        scale = float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"time scale must be a positive number or fraction, got {value!r}"
        ) from None
    if scale <= 0:
        raise ValueError(f"time scale must be positive, got {value!r}")
    return scale


def default_time_scale() -> float:
    """`K1N_TIME_SCALE` when set, else 1/60."""
    value = os.environ.get(TIME_SCALE_ENV, "").strip()
    return parse_time_scale(value) if value else DEFAULT_TIME_SCALE


def codegen_shards() -> int:
    """Most mapped generate tasks per Task 8 run (`K1N_CODEGEN_SHARDS`, default 4)."""
    value = int(os.environ.get(CODEGEN_SHARDS_ENV, DEFAULT_CODEGEN_SHARDS))
    if value < 1:
        raise ValueError(f"{CODEGEN_SHARDS_ENV} must be at least 1, got {value}")
    return value


def work_root() -> Path:
    """Root of run work dirs and codegen state: `K1N_WORK_DIR`, else `$AIRFLOW_HOME/k1n`."""
    if value := os.environ.get(WORK_DIR_ENV, "").strip():
        return Path(value).expanduser()
    airflow_home = os.environ.get("AIRFLOW_HOME", "").strip()
    base = Path(airflow_home).expanduser() if airflow_home else PROJECT_DIR / ".airflow"
    return base / "k1n"


def _safe_name(value: str) -> str:
    # Run ids hold ':' and '+' (manual__2026-11-25T20:00:00+00:00); keep paths portable.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value)


def run_work_dir(dag_id: str, run_id: str, root: Path | None = None) -> Path:
    """Per-run directory handed to handlers; holds `task-results/` and codegen staging."""
    return (root or work_root()) / "runs" / _safe_name(dag_id) / _safe_name(run_id)


def codegen_state_dir(dag_id: str, root: Path | None = None) -> Path:
    """Template cache, manifest and published output of one DAG's code generation."""
    return (root or work_root()) / "codegen" / _safe_name(dag_id)
