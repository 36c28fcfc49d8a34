"""The plugin's routes and page states that could name a run, shared by the permission tests
(the patched auth manager in-process, FAB's real one in `fab_probe.py`)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from tests.airflow_bottleneck.web.plugin_helpers import compare_url, report_url
from tests.airflow_bottleneck.web.seed import SeededRun


def traces(run: SeededRun) -> list[str]:
    """What would give a run away: its id (raw and URL-quoted), its start and end."""
    found = [run.run_id, quote(run.run_id, safe=""), run.start.isoformat()[:19]]
    return found + ([run.end.isoformat()[:19]] if run.end else [])


def page(**params: str) -> str:
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return "/bottlenecks/" + (f"?{query}" if query else "")


# Every route and page state that could name a baseline run: (path maker, refused status).
CASES: dict[str, tuple[Callable[[SeededRun, SeededRun], str], int]] = {
    "report": (lambda base, opt: report_url(base), 403),
    "report markdown": (lambda base, opt: report_url(base) + "?format=markdown", 403),
    "report.md": (lambda base, opt: report_url(base, "report.md"), 403),
    "compare, baseline first": (lambda base, opt: compare_url(base, opt), 403),
    "compare, baseline second": (lambda base, opt: compare_url(opt, base), 403),
    "compare markdown": (lambda base, opt: compare_url(opt, base) + "?format=markdown", 403),
    "forecast": (lambda base, opt: report_url(base, "forecast"), 403),
    "criticality": (lambda base, opt: f"/bottlenecks/api/dags/{base.dag_id}/criticality", 403),
    "run list": (lambda base, opt: "/bottlenecks/api/runs?limit=500", 200),
    "run list of the DAG": (lambda base, opt: f"/bottlenecks/api/runs?dag_id={base.dag_id}", 200),
    "DAG list": (lambda base, opt: "/bottlenecks/api/dags", 200),
    "page": (lambda base, opt: page(), 200),
    "page filtered to the DAG": (lambda base, opt: page(dag_id=base.dag_id), 200),
    "page reporting the run": (lambda base, opt: page(run=base.key), 403),
    "run tab": (lambda base, opt: page(dag_id=base.dag_id, run_id=base.run_id), 403),
    "page comparing, run A": (lambda base, opt: page(a=base.key, b=opt.key), 403),
    "page comparing, run B": (lambda base, opt: page(a=opt.key, b=base.key), 403),
    "page, report and pair": (
        lambda base, opt: page(run=base.key, a=base.key, b=base.key),
        403,
    ),
    "schema": (lambda base, opt: "/bottlenecks/openapi.json", 200),
}
