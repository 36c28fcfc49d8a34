"""Render `docs/BENCHMARKS.md` from `docs/bench/latest.json` (the last step of `make bench`):
every section with the command that produced it, and the goals of issue 15 judged from the
figures, missed ones listed as missed.

    PYTHONPATH=. .venv/bin/python bench/write_benchmarks.py
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench.results import LATEST, PROJECT_DIR

TARGET = PROJECT_DIR / "docs" / "BENCHMARKS.md"
TEMPLATE = "BENCHMARKS.md.j2"


def median(section: dict[str, Any] | None, *keys: str) -> float | None:
    node: Any = section
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, dict):
        return node.get("median")
    return node


def goal(name: str, value: float | None, limit: float, unit: str = "", *, at_least=False):
    """One goal row: met when `value` is within `limit` (or, `at_least`, beyond it)."""
    if value is None:
        return {"goal": name, "measured": "not measured", "met": None}
    met = value >= limit if at_least else value <= limit
    return {"goal": name, "measured": f"{value:.3g}{unit}", "met": met}


def goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    workflow = data.get("workflow", {})
    flow = workflow.get("workflow", {})
    long = workflow.get("workflow_long", {})
    shipped = workflow.get("handoff_shipped", {})
    load = workflow.get("load", {})
    production = median(flow, "baseline", "production_over_sum")
    rows = [
        goal(
            "baseline production wall within 3 % of stand-in seconds + real work + hand-offs",
            None if production is None else abs(production - 1) * 100,
            3.0,
            " %",
        ),
        goal(
            "optimized warm / baseline wall at 1/60 <= 0.45",
            median(flow, "optimized_warm_over_baseline"),
            0.45,
        ),
        goal(
            "wall / critical-path bound at 1/60 (optimized warm) <= 1.02",
            median(flow, "optimized_warm", "wall_over_bound"),
            1.02,
        ),
        goal(
            "wall / critical-path bound at 1/20 (optimized warm) <= 1.01",
            median(long, "optimized_warm", "wall_over_bound"),
            1.01,
        ),
        goal(
            "hand-off median <= 0.08 s (shipped settings)",
            median(shipped, "handoff_median_seconds"),
            0.08,
            " s",
        ),
        goal(
            "idle Airflow components < 0.30 of one core",
            (shipped.get("idle") or {}).get("airflow_cores"),
            0.30,
            " cores",
        ),
        goal(
            "task start-up median <= 0.15 s (1/60, optimized warm)",
            median(flow, "optimized_warm", "startup_median_seconds"),
            0.15,
            " s",
        ),
        goal(
            "first task's start-up <= 1 s (1/60, optimized warm)",
            median(flow, "optimized_warm", "first_task_startup_seconds"),
            1.0,
            " s",
        ),
    ]
    rows += [
        goal(
            "stack peak PSS <= 2048 MB with 3 concurrent runs",
            load.get("peak_pss_mb_three_runs"),
            2048,
            " MB",
        ),
        goal("3 concurrent <= 1.25 x one run", median(load, "slowest_over_single"), 1.25, "x"),
    ]
    duration = bench_duration(data)
    rows.append(goal("`make bench` <= 60 min", duration and duration["seconds"] / 60, 60, " min"))
    codegen = {s["scenario"]: s for s in data.get("codegen", {}).get("scenarios", [])}
    cold = [
        s["seconds"]["median"] for name, s in codegen.items() if name.startswith("optimized cold")
    ]
    warm = codegen.get("optimized warm (no change)")
    rows.append(
        goal(
            "Task 8 warm no-change rebuild >= 20x faster than cold (fastest cold)",
            min(cold) / warm["seconds"]["median"] if cold and warm else None,
            20,
            "x",
            at_least=True,
        )
    )
    timings = data.get("report", {}).get("timings", {})
    load_s = median(timings, "load: normalize_instances")
    analyze_s = median(timings, "one report: analyze_run")
    rows.append(
        goal(
            "report over 1 M task instances < 1 s (one mapped run: load + analysis)",
            None if load_s is None or analyze_s is None else load_s + analyze_s,
            1.0,
            " s",
        )
    )
    rows.append(
        goal(
            "detailed 1 M-row report (every per-index and per-try row, JSON bytes) <= 3 s",
            median(
                timings, "detailed report as the API serves it: analyze_run(detail) + JSON bytes"
            ),
            3.0,
            " s",
        )
    )
    rows += look_ahead_goals(data)
    rows += priority_goals(data.get("priority", {}))
    checked = data.get("checks", {})
    rows.append(
        goal(
            "Tasks 9 + 10 + 12, one pattern changed <= 20 % of a full check",
            checked.get("one pattern changed / full"),
            0.20,
        )
    )
    rows.append(
        goal(
            "Tasks 9 + 10 + 12, no change <= 5 % of a full check",
            checked.get("no change / full"),
            0.05,
        )
    )
    return rows


# The sections `make bench` writes, in its order (the workflow's `--long` part excluded).
MAKE_BENCH_SECTIONS = ("workflow", "priority", "codegen", "checks", "report", "plugin")


def bench_duration(data: dict[str, Any]) -> dict[str, Any] | None:
    """How long `make bench` took: its sections' process times, when all of them come from one
    invocation (each measured after the one before it); None otherwise."""
    kept = ((data.get("workflow") or {}).get("kept_from") or {}).get("make_bench")
    if kept:  # the workflow benchmark re-run alone: the duration of the last whole run
        return {**kept, "ended": datetime.fromisoformat(kept["ended"]), "kept": True}
    sections = [data.get(name) or {} for name in MAKE_BENCH_SECTIONS]
    if not all("process_seconds" in section for section in sections):
        return None
    ended = [datetime.fromisoformat(section["measured_at"]) for section in sections]
    began = [
        end - timedelta(seconds=section["process_seconds"])
        for end, section in zip(ended, sections, strict=True)
    ]
    # One invocation: each part began once the one before it ended, with no long pause between.
    pauses = [(start - end).total_seconds() for start, end in zip(began[1:], ended, strict=False)]
    if min(pauses) < -5 or sum(pauses) > 600:
        return None
    parts = {
        name: section["process_seconds"]
        - ((section.get("workflow_long") or {}).get("seconds") or 0.0)
        for name, section in zip(MAKE_BENCH_SECTIONS, sections, strict=True)
    }
    return {"seconds": round(sum(parts.values()), 1), "parts": parts, "ended": ended[-1]}


def priority_goals(priority: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 21's acceptance for the shipped priority rule."""
    rows = []
    for key, row in priority.get("k1n_profile", {}).items():
        rows.append(
            goal(
                f"shipped priority: K1N profile under {key[6:]} slots / best schedule <= 1",
                row["wall_seconds"]["simulated"] / row["optimum_seconds"]
                if row.get("optimum_seconds")
                else None,
                1.0,
            )
        )
    ratios = priority.get("random_dags", {}).get("over_downstream", {})
    if "simulated" in ratios:
        rows.append(
            goal(
                "shipped priority: random DAGs' median wall / downstream <= 1.01",
                ratios["simulated"]["median"],
                1.01,
            )
        )
    by_rule = priority.get("stack", {}).get("by_rule", {})
    if "simulated" in by_rule:
        rows.append(
            goal(
                "shipped priority on a real stack (showcase DAG): wall / downstream < 1",
                by_rule["simulated"]["over_downstream"],
                0.999,
            )
        )
    return rows


def look_ahead_goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 22's acceptance, from the look-ahead and nightly-verdict sections."""
    rows = []
    for dag_id, figures in data.get("look_ahead", {}).items():
        errors = figures.get("eta_error_percent_of_wall") if isinstance(figures, dict) else None
        if not errors:
            continue
        worst = max(errors.get(f"in_time at {p}%", {}).get("eta_median", 0) for p in (25, 50, 75))
        rows.append(
            goal(f"{dag_id}: ETA median error <= 5 % of the wall (in time)", worst, 5, " %")
        )
        slowed = errors.get("slowed at 75%", {})
        if slowed:
            rows.append(
                goal(
                    f"{dag_id}: ETA error at 75 % <= half the naive one (one task 3x slower)",
                    slowed["eta_median"] / slowed["naive_median"]
                    if slowed["naive_median"]
                    else None,
                    0.5,
                )
            )
        deadline = figures.get("deadline", {})
        lead = median(deadline, "live_lead_percent_of_deadline")
        if deadline.get("runs_missing"):
            rows.append(
                goal(
                    f"{dag_id}: predicted miss >= 30 % of the deadline ahead (live)",
                    lead,
                    30,
                    " %",
                    at_least=True,
                )
            )
        if deadline.get("runs_in_time"):
            rows.append(
                goal(
                    f"{dag_id}: no alert for {deadline['runs_in_time']} runs in time (live)",
                    len(deadline.get("live_alerts_on_runs_in_time", [])),
                    0,
                )
            )
    verdict = data.get("nightly_verdict", {})
    pool = verdict.get("without_left_out") or verdict.get("all_recorded_runs") or {}
    policies = pool.get("policies", {})
    if "by_wall" in policies:
        rows.append(
            goal(
                "nightly verdict: <= 1 % of unchanged nights alarm",
                policies["by_wall"]["false_alarm_percent"],
                1.0,
                " %",
            )
        )
        rows.append(
            goal(
                "nightly verdict: >= 95 % of nights with a critical task 1.3x slower caught",
                policies["by_wall"]["caught_percent"],
                95,
                " %",
                at_least=True,
            )
        )
    if pool.get("best_one_night_policy_caught_percent") is not None:
        rows.append(
            goal(
                "... the most any one-night policy could catch on this noise (>= 95 % possible?)",
                pool["best_one_night_policy_caught_percent"],
                95,
                " %",
                at_least=True,
            )
        )
    return rows


def render(data: dict[str, Any]) -> str:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fig"] = _figure
    env.filters["num"] = lambda value, digits=2: "-" if value is None else f"{value:.{digits}f}"
    return env.get_template(TEMPLATE).render(
        data=data, goals=goals(data), bench_duration=bench_duration(data)
    )


def _figure(stat: dict[str, Any] | None, digits: int = 2, unit: str = "") -> str:
    """`63.2 s (61.0–65.1)` from a `stats()` dict."""
    if not stat or stat.get("median") is None:
        return "-"
    text = f"{stat['median']:.{digits}f}{unit}"
    if stat.get("n", 0) > 1:
        text += f" ({stat['min']:.{digits}f}–{stat['max']:.{digits}f})"
    return text


def main() -> None:
    data = json.loads(LATEST.read_text()) if LATEST.exists() else {}
    TARGET.write_text(render(data))
    print(TARGET)


if __name__ == "__main__":
    main()
