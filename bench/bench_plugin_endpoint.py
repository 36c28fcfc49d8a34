"""Benchmark: how fast the bottleneck plugin answers, on demo data. Budget: one run's report
endpoint under 200 ms.

Three ways to get the demo data (the same shape either way: a baseline run of 23 task
instances, an optimized run of ~30 with Task 8 mapped over shards):

- default, in-process: a throwaway Airflow home on SQLite, `initdb`, the demo-shaped runs of
  `tests/include/k1n/ui/seed.py` written into it, and Airflow's real API server app
  (`create_app()`, the plugin loaded from `plugins/`) called through FastAPI's TestClient:
  everything a request does except the network hop;
- `--stack`: a real local Airflow (`AirflowStack`: embedded PostgreSQL, api-server, scheduler,
  dag-processor) in a throwaway home; both K1N DAGs run through the scheduler at
  `--time-scale` (default 1/60, as `make demo`), then the endpoints are timed over HTTP;
- `--url URL` with `K1N_AIRFLOW_PASSWORD` set: a running api-server (e.g. `make airflow`
  after `make demo`), timed over HTTP on its newest successful baseline and optimized runs.

In-process, the runs list, the page and a report are then timed again with `--many` (10 000)
more runs in the metadata DB: how each grows with the history.

The very first request is timed on its own (it builds the lazy plugin app: imports pandas,
networkx, the analysis); then per endpoint a first request and `--repeat` more (median, p95,
max). The report is timed twice: with the plugin's report
memo cleared before each request (in-process only: every request analyzes the run afresh) and
as served (repeat views of a finished run hit the memo). Nothing here asserts a time.

    PYTHONPATH=. .venv/bin/python bench/bench_plugin_endpoint.py [--repeat 50]
    PYTHONPATH=. .venv/bin/python bench/bench_plugin_endpoint.py --stack [--time-scale 1/200]
    K1N_AIRFLOW_PASSWORD="$(jq -r .admin .airflow/simple_auth_manager_passwords.json)" \\
        PYTHONPATH=. .venv/bin/python bench/bench_plugin_endpoint.py --url http://localhost:8080
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.results import PROJECT_DIR, record, stats

BUDGET_MS = 200.0


@dataclass(frozen=True)
class Timing:
    name: str
    first_ms: float
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_calls(
    name: str, call: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None
) -> Timing:
    """First call, then `repeat` calls; `before` runs untimed before each call."""

    def once() -> float:
        if before:
            before()
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
        return elapsed

    first = once()
    return Timing(name, first, [once() for _ in range(repeat)])


def report_paths(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Newest successful run of each K1N DAG -> the plugin's paths to time."""
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run["state"] == "success":
            newest.setdefault(run["label"], run)
    if {"baseline", "optimized"} - newest.keys():
        raise SystemExit(f"need a successful baseline and optimized run; have {sorted(newest)}")
    base, opt = newest["baseline"], newest["optimized"]

    def run_path(run: dict[str, Any]) -> str:
        return f"/bottlenecks/api/dags/{run['dag_id']}/runs/{quote(run['run_id'], safe='')}"

    return {
        "report (optimized run)": f"{run_path(opt)}/report",
        "report (baseline run)": f"{run_path(base)}/report",
        "report.md (optimized run)": f"{run_path(opt)}/report.md",
        "compare (baseline vs optimized)": (
            f"{run_path(base)}/compare/{opt['dag_id']}/{quote(opt['run_id'], safe='')}"
        ),
        "runs list": "/bottlenecks/api/runs",
        "page (report + comparison, HTML)": "/bottlenecks/",
    }


def measure(get: Callable[[str], Any], repeat: int, clear: Callable[[], None] | None):
    started = time.perf_counter()
    listing = get("/bottlenecks/api/runs?limit=500")
    first_ms = (time.perf_counter() - started) * 1000
    print(f"first request to the plugin: {first_ms:.0f} ms (builds the app if nobody did yet)")
    paths = report_paths(listing.json()["runs"])
    timings = []
    if clear is not None:
        path = paths["report (optimized run)"]
        timings.append(
            time_calls("report (optimized), analyzed afresh", lambda: get(path), repeat, clear)
        )
    for name, path in paths.items():
        timings.append(time_calls(name, lambda p=path: get(p), repeat))
    return timings


def print_table(title: str, timings: list[Timing]) -> None:
    print(f"\n{title}")
    print(f"  {'endpoint':<40} {'first':>9} {'median':>9} {'p95':>9} {'max':>9}")
    for t in timings:
        print(
            f"  {t.name:<40} {t.first_ms:>7.1f}ms {t.median:>7.1f}ms {t.p95:>7.1f}ms "
            f"{max(t.samples_ms):>7.1f}ms"
        )
    reports = [t for t in timings if t.name.startswith("report (")]
    worst = max(t.p95 for t in reports)
    verdict = "within" if worst < BUDGET_MS else "OVER"
    print(f"  one run's report: p95 {worst:.1f} ms, {verdict} the {BUDGET_MS:.0f} ms budget")


# -- in-process ---------------------------------------------------------------------------------


def in_process(repeat: int, many: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="k1n-bench-plugin-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API_AUTH__JWT_SECRET": "k1n-bench-" + "0123456789abcdef" * 4,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    import logging

    logging.disable(logging.INFO)
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.utils.db import initdb
    from fastapi.testclient import TestClient

    from tests.airflow_bottleneck.web.seed import seed_demo_runs

    initdb()
    seeded = seed_demo_runs()
    app = create_app()
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def clear() -> None:
        from airflow_bottleneck.web import reports

        reports.clear_cache()

    sizes = {name: len(run.rows) for name, run in seeded.items() if run.rows}
    timings = measure(client.get, repeat, clear)
    print_table(
        f"In-process: Airflow API server app on SQLite, demo-shaped runs "
        f"(task-instance rows: {sizes}), {repeat} requests each",
        timings,
    )
    paths = report_paths(client.get("/bottlenecks/api/runs?limit=500").json()["runs"])
    add_runs(many)
    growth = [
        time_calls(f"{name}, {many:,} more runs", lambda p=path: client.get(p), repeat)
        for name, path in paths.items()
        if name.startswith(("runs list", "page", "report (optimized"))
    ]
    print_table(f"The same with {many:,} more runs of the optimized DAG in the DB", growth)
    record(
        "plugin",
        {
            "repeat": repeat,
            "demo_runs": [timing_figures(t) for t in timings],
            "with_many_runs": {"runs": many, "timings": [timing_figures(t) for t in growth]},
        },
    )


def add_runs(count: int) -> None:
    """`count` finished runs of the optimized DAG (no task instances), in one insert."""
    from datetime import UTC, datetime, timedelta

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    from k1n.workflow.names import OPTIMIZED_DAG_ID

    start = datetime(2026, 1, 1, tzinfo=UTC)
    with create_session() as session:
        session.execute(
            insert(DagRun.__table__),
            [
                {
                    "dag_id": OPTIMIZED_DAG_ID,
                    "run_id": f"manual__bench_{index:06d}",
                    "run_type": "manual",
                    "state": "success",
                    "queued_at": start + timedelta(minutes=index),
                    "start_date": start + timedelta(minutes=index),
                    "end_date": start + timedelta(minutes=index, seconds=63),
                    "run_after": start + timedelta(minutes=index),
                    "conf": {"time_scale": 1 / 60},
                }
                for index in range(count)
            ],
        )


def timing_figures(timing: Timing) -> dict[str, Any]:
    return {
        "endpoint": timing.name,
        "first_ms": round(timing.first_ms, 1),
        "ms": stats(timing.samples_ms),
        "p95_ms": round(timing.p95, 1),
    }


# -- over HTTP ----------------------------------------------------------------------------------


def over_http(base_url: str, username: str, password: str, repeat: int, label: str) -> None:
    import httpx

    token = httpx.post(
        f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        timings = measure(client.get, repeat, None)
    print_table(f"{label}: {base_url}, {repeat} requests each", timings)


@contextmanager
def demo_stack(time_scale: float) -> Iterator[tuple[str, str]]:
    """A real Airflow with one baseline and one optimized run, recorded by the scheduler."""
    from k1n.workflow.names import BASELINE_DAG_ID, OPTIMIZED_DAG_ID
    from k1n_local.demo import run_dag
    from k1n_local.stack import AirflowStack

    stack = AirflowStack(Path(tempfile.mkdtemp(prefix="k1n-bench-stack-")))
    with stack.running():
        client = stack.client()
        for dag_id in (BASELINE_DAG_ID, OPTIMIZED_DAG_ID):
            client.wait_for_dag(dag_id)
            client.unpause(dag_id)
        for dag_id, label in ((BASELINE_DAG_ID, "baseline"), (OPTIMIZED_DAG_ID, "optimized")):
            record = run_dag(client, dag_id, time_scale, label)
            print(f"{label}: {record.state} in {record.wall_seconds:.1f} s", file=sys.stderr)
        client.close()
        yield stack.base_url, stack.admin_password()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="timed requests per endpoint")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", action="store_true", help="start a real local Airflow")
    where.add_argument("--url", help="a running api-server, e.g. http://localhost:8080")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--time-scale", default="1/60", help="with --stack (default 1/60)")
    parser.add_argument("--many", type=int, default=10_000, help="in-process: more runs")
    args = parser.parse_args(argv)
    if args.url:
        password = os.environ.get("K1N_AIRFLOW_PASSWORD", "")  # never an argument (`ps`)
        over_http(args.url.rstrip("/"), args.username, password, args.repeat, "Running")
    elif args.stack:
        from k1n.settings import parse_time_scale

        with demo_stack(parse_time_scale(args.time_scale)) as (url, password):
            over_http(url, args.username, password, args.repeat, "Local stack (PostgreSQL)")
    else:
        in_process(args.repeat, args.many)
    return 0


if __name__ == "__main__":
    sys.exit(main())
