"""Loaders: each turns one kind of record into `RunData` (run info + task-instance table).

- `airflow_api`: the Airflow REST API v2 of a running instance, or JSON already fetched from it;
- `profiles`: the old bash wrapper's per-task profile JSON files (and the old `summary.json`);
- `conductor`: a Conductor workflow execution (`GET /api/workflow/{workflowId}`).
"""

from airflow_bottleneck.readers.rest_api import (
    fetch_airflow_run,
    read_run,
    run_from_airflow_json,
)
from k1n.readers.conductor import (
    BOOKKEEPING_TASK_TYPES,
    load_conductor,
    run_from_conductor,
    spec_id_from_reference,
)
from k1n.readers.profiles import (
    legacy_summary,
    load_profiles,
    write_legacy_summary,
)

__all__ = [
    "BOOKKEEPING_TASK_TYPES",
    "fetch_airflow_run",
    "legacy_summary",
    "load_conductor",
    "load_profiles",
    "read_run",
    "run_from_airflow_json",
    "run_from_conductor",
    "spec_id_from_reference",
    "write_legacy_summary",
]
