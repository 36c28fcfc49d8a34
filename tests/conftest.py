"""Test-wide setup: a throwaway Airflow home, set before anything imports Airflow."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]

_home = Path(tempfile.mkdtemp(prefix="k1n-test-airflow-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_DIR / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_DIR / "plugins")
os.environ["AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS"] = "False"
os.environ["K1N_STORAGE_URL"] = (_home / "k1n-storage").as_uri()
os.environ["K1N_CACHE_DIR"] = str(_home / "k1n-cache")
# Tests must not depend on the developer's shell.
for name in ("K1N_WORKFLOW_SPEC", "K1N_TIME_SCALE", "K1N_CODEGEN_SHARDS"):
    os.environ.pop(name, None)
