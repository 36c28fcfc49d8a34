"""What the K1N project adds to the bottleneck reports of its workflow DAGs.

Registered under the `airflow_bottleneck.extensions` entry point (pyproject.toml): the plugin
finds it at run time and the generic package never imports it. For the two workflow DAGs (and
the old system's records, which the CLI analyses with an explicit spec) it adds:

- the spec's names (`8 Code Generation · publish_code`) and numbers (`spec_id`);
- the run's time scale from its `time_scale` conf (stand-ins wait profiled seconds × scale),
  the DAG default when the conf has none;
- the start-up each K1N task records (`k1n_code_start` XCom) and the quality pass rate
  (`check_quality_gates`' return value);
- the declared-dependency what-if, the independent tasks that ran one after the other, and the
  spec's targets on the production scale (`what_if.py`);
- for sources with no DAG graph (old profiles, Conductor), the spec's declared dependencies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_bottleneck.analysis.graph import TaskGraph
from airflow_bottleneck.extension import (
    Enrichment,
    EnrichmentInput,
    ExtensionUnavailable,
    ReportExtension,
)
from k1n import settings
from k1n.reporting.spec_graph import spec_task_graph
from k1n.reporting.what_if import FINAL_TASK_IDS, build_targets, codegen_seconds, declared_what_if
from k1n.settings import SettingsError
from k1n.workflow.names import (
    CODE_START_XCOM_KEY,
    QUALITY_GATES_TASK_ID,
    WORKFLOW_DAG_IDS,
    spec_id_from_task_id,
)
from k1n.workflow.spec import (
    HandlerKind,
    SpecError,
    WorkflowSpec,
    load_spec,
    spec_path_from_env,
)

if TYPE_CHECKING:
    import pandas as pd

    from airflow_bottleneck.analysis.model import DeclaredWhatIf


class K1NExtension(ReportExtension):
    """The K1N workflow's reports. `spec`: a fixed spec (the CLI, tests); None: the spec in
    use (`K1N_WORKFLOW_SPEC` or the project's), read again when its file changes."""

    name = "k1n"
    featured_dag_ids = WORKFLOW_DAG_IDS
    code_start_xcom_key = CODE_START_XCOM_KEY
    pass_rate_task_id = QUALITY_GATES_TASK_ID

    def __init__(self, spec: WorkflowSpec | None = None) -> None:
        self._fixed = spec
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[str, int], WorkflowSpec] | None = None

    @property
    def spec(self) -> WorkflowSpec:
        return self._current()[1]

    def _current(self) -> tuple[tuple[str, int], WorkflowSpec]:
        """The spec in use and its file version (path, modification time)."""
        if self._fixed is not None:
            return ("fixed", id(self._fixed)), self._fixed
        try:
            path = spec_path_from_env()
            version = (str(path), path.stat().st_mtime_ns)
            with self._lock:
                if self._loaded is None or self._loaded[0] != version:
                    self._loaded = (version, load_spec(path))
                return self._loaded
        except (OSError, SpecError, SettingsError) as exc:
            raise ExtensionUnavailable(f"K1N workflow spec unusable: {exc}") from None

    def handles(self, dag_id: str) -> bool:
        return dag_id in WORKFLOW_DAG_IDS

    def cache_token(self) -> object:
        return self._current()[0]

    def short_label(self, dag_id: str) -> str:
        """`k1n_22task_optimized` -> `optimized`."""
        return dag_id.rsplit("_", 1)[-1] if dag_id in WORKFLOW_DAG_IDS else dag_id

    def run_time_scale(self, conf: Any, notes: list[str]) -> float | None:
        value = conf.get("time_scale") if isinstance(conf, Mapping) else None
        if value is not None:
            try:
                return settings.parse_time_scale(value)
            except ValueError as exc:
                notes.append(f"run conf {exc}: ignored")
        try:
            scale = settings.default_time_scale()
        except SettingsError as exc:  # the api-server's environment: report, don't fail
            notes.append(f"{exc}: taken as {settings.DEFAULT_TIME_SCALE:g}")
            return settings.DEFAULT_TIME_SCALE
        notes.append(f"time_scale not in the run's conf: taken as the DAG default {scale:g}")
        return scale

    def run_deadline_seconds(self, time_scale: float) -> float | None:
        """The spec's `workflow_minutes_max` at the run's time scale."""
        return self.spec.targets.workflow_minutes_max * 60 * time_scale

    def pass_rate(self, value: Any, notes: list[str]) -> float | None:
        """`pass_rate` from `check_quality_gates`' XCom (entry, value, or JSON text)."""
        if value is None:
            return None
        value = value.get("value", value) if isinstance(value, Mapping) else value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = None
        # Airflow's serializer may wrap a value as {"__classname__": ..., "__data__": ...}.
        if isinstance(value, Mapping) and "__data__" in value:
            value = value["__data__"]
        rate = value.get("pass_rate") if isinstance(value, Mapping) else None
        if isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1:
            return float(rate)
        notes.append(f"{QUALITY_GATES_TASK_ID} XCom has no usable pass_rate")
        return None

    def task_number(self, task_id: str) -> int | None:
        return spec_id_from_task_id(task_id)

    def stand_in(self, task_id: str, number: int | None) -> bool:
        """Spec tasks with no agent (`profile` handler) wait their profiled seconds × scale;
        Task 8 and the checks do real work, and so do the DAG's own helper tasks."""
        spec_task = None if number is None else self.spec.by_id.get(number)
        return spec_task is not None and spec_task.handler is HandlerKind.PROFILE

    def label(self, task_id: str, number: int | None, default: str) -> str:
        """`8 Code Generation · publish_code` for a spec task's member, `3 Architecture` for a
        spec task, else `default`."""
        spec_task = None if number is None else self.spec.by_id.get(number)
        if spec_task is None:
            return default
        label = f"{spec_task.id} {spec_task.name}"
        if task_id != spec_task.airflow_task_id:
            label += f" · {task_id.rsplit('.', 1)[-1]}"
        return label

    def declared_graph(self, numbers: Mapping[str, int | None]) -> TaskGraph:
        return spec_task_graph(self.spec, numbers, FINAL_TASK_IDS)

    def enrich(self, run: EnrichmentInput) -> Enrichment:
        spec = self.spec

        def what_if_of(ran: pd.DataFrame, wall: float) -> DeclaredWhatIf:
            return declared_what_if(
                ran,
                spec,
                per_hop=run.per_hop,
                head=run.head,
                tail=run.tail,
                wall=wall,
                run_start=run.run_start,
            )

        what_if = what_if_of(run.ran, run.wall_seconds)
        # The same on the production replay: what B's production wall is predicted against.
        production = what_if_of(run.production_ran, run.production_wall_seconds)
        what_if = what_if.model_copy(
            update={"production_with_handoffs_seconds": production.with_handoffs_seconds}
        )
        targets = build_targets(
            spec,
            production_wall_seconds=run.production_wall_seconds,
            production_task8_seconds=codegen_seconds(run.production_ran),
            pass_rate=run.pass_rate,
        )
        outside = [t for t, n in sorted(run.numbers.items()) if n is None]
        outside = [t for t in outside if t not in FINAL_TASK_IDS]
        notes = ()
        if outside:
            notes = ("not spec tasks (no spec targets or names): " + ", ".join(outside),)
        return Enrichment(what_if=what_if, targets=targets, notes=notes)


def k1n_extension_for(dag_id: str, spec: WorkflowSpec | None = None) -> K1NExtension | None:
    """The K1N extension (with `spec`, else the spec in use) for a workflow DAG; None for any
    other DAG, whose report is the plain one."""
    extension = K1NExtension(spec)
    return extension if extension.handles(dag_id) else None
