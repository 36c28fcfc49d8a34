"""The names other code refers the K1N DAGs and their fixed tasks by: one place for each.

DAG builders, the analysis, the UI, the local tooling and the tests all import these; nothing
else spells them out.
"""

from __future__ import annotations

import re

BASELINE_DAG_ID = "k1n_22task_baseline"
OPTIMIZED_DAG_ID = "k1n_22task_optimized"
# The workflow DAGs built from the spec, in the order reports list them (reference first).
WORKFLOW_DAG_IDS: tuple[str, ...] = (BASELINE_DAG_ID, OPTIMIZED_DAG_ID)

NIGHTLY_DAG_ID = "k1n_nightly_regression"
WEEKLY_BASELINE_DAG_ID = "k1n_weekly_baseline"

# The last task of each workflow DAG: the quality verdict over every spec task's result.
QUALITY_GATES_TASK_ID = "check_quality_gates"
# Task 8 in the optimized DAG: a task group of these tasks, in order, each with the spec's
# stages (`stages_seconds` keys) it runs. Compile, validate and write share one task: they run
# one after another on one worker, and as three tasks each cost a start-up and a hand-off, and
# with nothing regenerated three scheduler loops only to skip them.
CODEGEN_STAGES: dict[str, tuple[str, ...]] = {
    "parse_library": ("parse",),
    "generate_code": ("generate",),
    "publish_code": ("compile", "validate", "write"),
}
CODEGEN_STAGE_TASK_IDS: tuple[str, ...] = tuple(CODEGEN_STAGES)
# Spec id of the code generation task, whose own target (minutes) the reports judge.
CODEGEN_SPEC_ID = 8
# The workflow DAGs' teardown: records the run as finished and applies the storage retention.
CLEAN_UP_TASK_ID = "clean_up_storage"
# Variable: how many finished runs of a DAG keep their records in object storage.
RETENTION_VARIABLE = "k1n_retention_runs"
# XCom key under which a K1N task records when its own code started (epoch seconds); the
# reports split a task's time into start-up (task instance start -> this) and work.
CODE_START_XCOM_KEY = "k1n_code_start"

# Airflow task ids start with the spec id (`TaskSpec.airflow_task_id`); Task 8's group members
# are `task_08_code_generation.<stage>`, so the prefix maps them to spec task 8 as well.
AIRFLOW_SPEC_ID_PATTERN = re.compile(r"^task_(\d+)(?:[_.]|$)")


def spec_id_from_task_id(task_id: str) -> int | None:
    """`task_08_code_generation.generate_code` -> 8; `check_quality_gates` -> None."""
    found = AIRFLOW_SPEC_ID_PATTERN.match(task_id)
    return int(found.group(1)) if found else None
