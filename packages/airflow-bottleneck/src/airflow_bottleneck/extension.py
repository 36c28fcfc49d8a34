"""The extension point: what a project adds to the reports of its own DAGs.

The analysis works on any DAG from Airflow's own records. A project that knows more about some
of its DAGs (targets, a declared-dependency what-if, a time scale its stand-in tasks run at,
start-ups its tasks record) subclasses `ReportExtension` and registers the subclass under the
entry-point group `airflow_bottleneck.extensions`:

    [project.entry-points."airflow_bottleneck.extensions"]
    myproject = "myproject.reporting:MyExtension"

Every hook has a default that adds nothing, so an extension overrides only what it knows.
The first registered extension whose `handles(dag_id)` is true serves that DAG's reports; a
DAG no extension handles gets the plain report. This package never imports an extension's
code: it is found at run time through the entry point.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from airflow_bottleneck.analysis.graph import TaskGraph
    from airflow_bottleneck.analysis.model import DeclaredWhatIf, TargetCheck

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "airflow_bottleneck.extensions"


class ExtensionUnavailable(Exception):
    """The extension cannot serve now (e.g. its own configuration is broken); the message says
    why. The web app answers 503 with it."""


@dataclass(frozen=True)
class EnrichmentInput:
    """What the analysis hands `ReportExtension.enrich` about one run.

    `ran`: the final tries that ran (normalized task-instance rows, epoch seconds in `t_*`);
    `numbers`: every task id in the report -> its `task_number` (None: not numbered);
    `per_hop`: the median seconds between an upstream's end and a downstream's start;
    `head`/`tail`: run start -> first task start, last task end -> run end;
    `production_wall_seconds`, `production_ran`: the run replayed at production durations
    (`analysis.production`), `ran` with its tasks' `t_start`/`t_end` moved to the replay's.
    """

    ran: pd.DataFrame
    numbers: Mapping[str, int | None]
    wall_seconds: float
    run_start: float
    per_hop: float
    head: float
    tail: float
    time_scale: float
    pass_rate: float | None
    production_wall_seconds: float
    production_ran: pd.DataFrame


@dataclass(frozen=True)
class Enrichment:
    """What an extension adds to a report: a what-if, targets, notes."""

    what_if: DeclaredWhatIf | None = None
    targets: list[TargetCheck] = field(default_factory=list)
    notes: tuple[str, ...] = ()


class ReportExtension:
    """Subclass to add what a project knows about its DAGs; every hook defaults to nothing."""

    #: Shown in logs and the API's `extension` field.
    name = "extension"
    #: DAGs the page opens on and compares by default (reference first).
    featured_dag_ids: tuple[str, ...] = ()
    #: XCom key under which a task records when its own code started (epoch seconds): splits
    #: each task's time into start-up and work. None: start-ups are not recorded.
    code_start_xcom_key: str | None = None
    #: Task whose return value holds the run's quality pass rate (see `pass_rate`).
    pass_rate_task_id: str | None = None

    def handles(self, dag_id: str) -> bool:
        """True for the DAGs this extension describes."""
        return False

    def cache_token(self) -> object:
        """Changes whenever what the extension adds would change (cached reports are keyed by
        it), e.g. the version of a configuration file it reads."""
        return None

    def short_label(self, dag_id: str) -> str:
        """What lists call a run of `dag_id`."""
        return dag_id

    def run_time_scale(self, conf: Any, notes: list[str]) -> float | None:
        """The run's time scale (its durations are production durations × this) from its conf;
        None: the run's seconds are production seconds."""
        return None

    def stand_in(self, task_id: str, number: int | None) -> bool:
        """True for a task whose work waits its production seconds × the run's time scale
        (scaled back in production figures); False for real work, which does not shrink.
        By default every task of a run with a time scale is a stand-in."""
        return True

    def run_deadline_seconds(self, time_scale: float) -> float | None:
        """Seconds from a run's start by which it must end, at the run's time scale; None:
        no deadline (a DAG's Deadline Alert and `[bottlenecks] deadlines` come first)."""
        return None

    def pass_rate(self, value: Any, notes: list[str]) -> float | None:
        """The pass rate (0..1) from `pass_rate_task_id`'s return value; None when unknown."""
        return None

    def task_number(self, task_id: str) -> int | None:
        """The project's own number of the task an Airflow task id belongs to (the report's
        `spec_id`); None when it has none."""
        return None

    def label(self, task_id: str, number: int | None, default: str) -> str:
        """What the report calls a task (`default`: the DAG's display name or the id)."""
        return default

    def declared_graph(self, numbers: Mapping[str, int | None]) -> TaskGraph | None:
        """The dependencies between the tasks that ran when the source has no DAG graph."""
        return None

    def enrich(self, run: EnrichmentInput) -> Enrichment:
        """What the project adds to the report of one of its runs."""
        return Enrichment()


@cache
def registered_extensions() -> tuple[ReportExtension, ...]:
    """The extensions installed in this environment (loaded once per process)."""
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            extension = loaded() if isinstance(loaded, type) else loaded
        except Exception:
            # One broken extension must not take the reports of every other DAG down.
            log.exception("report extension %s could not be loaded: ignored", entry.name)
            continue
        if not isinstance(extension, ReportExtension):
            log.error("report extension %s is not a ReportExtension: ignored", entry.name)
            continue
        found.append(extension)
    return tuple(found)


def extension_for(dag_id: str) -> ReportExtension | None:
    """The extension that describes `dag_id`, or None for a plain report."""
    return next((e for e in registered_extensions() if e.handles(dag_id)), None)


def featured_dag_ids() -> tuple[str, ...]:
    """Every extension's featured DAGs, in registration order."""
    return tuple(d for e in registered_extensions() for d in e.featured_dag_ids)


def short_label(dag_id: str) -> str:
    extension = extension_for(dag_id)
    return dag_id if extension is None else extension.short_label(dag_id)
