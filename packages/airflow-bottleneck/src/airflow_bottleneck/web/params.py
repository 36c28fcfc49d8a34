"""What the routes of the plugin app share: typed path and query parameters, documented
error responses, media types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from airflow.api_fastapi.core_api.security import (
    GetUserDep,
    PermittedDagRunFilter,
    permitted_dag_filter_factory,
)
from fastapi import Depends, Path, Query

from airflow_bottleneck.time_scale import TIME_SCALE_MAX, TIME_SCALE_MIN
from airflow_bottleneck.web.access import (
    DAG_ID_PATTERN,
    ID_MAX_LENGTH,
    RUN_ID_PATTERN,
    run_lists_of,
)
from airflow_bottleneck.web.api_models import Problem

MAX_OFFSET = 2**31 - 1
MARKDOWN = "text/markdown; charset=utf-8"

DagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="a DAG id")
]
RunIdPath = Annotated[
    str,
    Path(pattern=RUN_ID_PATTERN, min_length=1, max_length=ID_MAX_LENGTH, description="a run id"),
]
OtherDagIdPath = Annotated[
    str, Path(pattern=DAG_ID_PATTERN, max_length=ID_MAX_LENGTH, description="run B's DAG id")
]
OtherRunIdPath = Annotated[
    str,
    Path(
        pattern=RUN_ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        description="run B's run id",
    ),
]
FormatQuery = Annotated[
    Literal["json", "markdown"], Query(description="`markdown` answers text/markdown")
]
TimeScaleQuery = Annotated[
    float | None,
    Query(
        ge=TIME_SCALE_MIN,
        le=TIME_SCALE_MAX,
        description="override the run's recorded time scale (production seconds x scale), "
        "between 1/3600 and 1",
    ),
]
ReadableDagsDep = Annotated[
    PermittedDagRunFilter,
    Depends(permitted_dag_filter_factory("GET", PermittedDagRunFilter)),
]


def _readable_run_dags(readable: ReadableDagsDep, user: GetUserDep) -> set[str]:
    return run_lists_of(user, readable.value)


# The DAGs whose runs the user may list: DAG read and DAG-run read, as Airflow's run list.
ReadableRunsDep = Annotated[set[str], Depends(_readable_run_dags)]
RunKeyQuery = Annotated[str | None, Query(max_length=2 * ID_MAX_LENGTH + 1)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no or expired Airflow token"},
    403: {"model": Problem, "description": "not allowed to read this DAG's runs"},
    404: {"model": Problem, "description": "no such DAG run"},
    409: {"model": Problem, "description": "the run has nothing to analyze yet"},
    503: {
        "model": Problem,
        "description": "every analysis slot is busy (see Retry-After), or a report extension "
        "is unavailable",
    },
}
MARKDOWN_RESPONSE: dict[str, Any] = {
    "content": {"text/markdown": {"schema": {"type": "string"}}},
    "description": "the report (`format=json`) or its markdown rendering (`format=markdown`)",
}
