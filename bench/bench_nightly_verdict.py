"""Benchmark: the nightly verdict's false alarms and its catch rate, on noise resampled from
the project's own recorded runs of the optimized DAG (a real stack's runs at 1/60, recorded
by `bench/bench_look_ahead.py` in `docs/bench/look_ahead_runs.json.gz`), not a synthetic
model.

A synthetic night takes, for every task independently, its span and its hand-off from one
of the recorded unperturbed runs (drawn at random), its wall the critical path of hand-off +
span in the DAG's graph plus a recorded tail. Each trial judges one night against 14 earlier
ones, twice:

- unchanged: the night is drawn like its history: any alarm is a false alarm;
- slowed: one task on that night's critical path (drawn at random) takes 1.3x its span.

Both policies see the same nights: today's (`detect_regressions`: every task and the wall,
robust z >= 4, >= +15 %, >= +0.5 s) and the wall's (`detect_wall_movers`: a slowdown counts
when it moved the critical path by >= 1 % of the median wall, with a 1 % false-alarm chance
per night over every test). Beside them, the most any one-night policy could catch: per task,
the chance that a test of that task's span alone, knowing it is the slowed one and allowed
1 % false alarms on it alone (more than a night's 1 % over every test), sees a 1.3x slowdown,
its span log-normal with the spread of its recorded runs; averaged over the slowed tasks the
replay drew. The first recorded run (cold caches, a cold scheduler) is left
out of the pool; `--leave-out` replays again without the runs it names, beside the replay of
every run. Figures go to `docs/bench/latest.json` (section `nightly_verdict`).

    PYTHONPATH=.:tools .venv/bin/python bench/bench_nightly_verdict.py [--nights 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from statistics import NormalDist
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from airflow_bottleneck.analysis.forecast import run_spans
from airflow_bottleneck.analysis.graph import cpm_schedule, critical_path_lengths
from airflow_bottleneck.analysis.table import normalize_instances
from bench.bench_look_ahead import RECORDED, epoch, graph_of
from bench.results import record, stats
from k1n.metrics.regression import (
    WALL_TIME,
    RegressionPolicy,
    detect_regressions,
    detect_wall_movers,
)
from k1n.workflow.names import OPTIMIZED_DAG_ID

HISTORY_NIGHTS = 14
SLOWDOWN = 1.3
FALSE_ALARMS = 0.01


def pools(
    document: dict[str, Any], leave_out: tuple[str, ...] = ()
) -> tuple[nx.DiGraph, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The graph, and per recorded unperturbed run: each task's span and hand-off, its tail."""
    runs = [
        r
        for r in document["runs"]
        if r["dag_id"] == OPTIMIZED_DAG_ID
        # Not the warm-up run: the first after the scheduler's restart waits for its warm-up.
        and r["kind"] in ("history", "in_time")
        and r["run_id"] not in leave_out
    ][1:]
    graph = graph_of(next(r["graph"] for r in runs if r["graph"])).digraph
    spans, hops, tails = [], [], []
    for run in runs:
        table = normalize_instances(
            pd.DataFrame(run["instances"]).assign(dag_id=run["dag_id"], run_id=run["run_id"])
        )
        own = run_spans(table).droplevel("run_id")
        # Skipped upstream tasks (a mapped task over nothing) end too: hops count from them.
        ended = run_spans(table, with_skipped=True).droplevel("run_id")["end"]
        start, end = epoch(run["start"]), epoch(run["end"])
        span = own["span"].to_dict()
        hop = {
            task: own.at[task, "start"] - ready_at(graph, task, ended.to_dict(), start)
            for task in own.index
        }
        spans.append(span)
        hops.append(hop)
        tails.append(end - own["end"].max())
    return graph, pd.DataFrame(spans), pd.DataFrame(hops).clip(lower=0), np.array(tails)


def best_catch(spread: pd.Series) -> dict[str, float]:
    """Per task: the share of SLOWDOWN-slowed nights the best test of its span alone catches at
    FALSE_ALARMS, its span log-normal with `spread` (the recorded runs' standard deviation of
    log span; Neyman-Pearson: with the task known, nothing else on the night tells a slowed
    night from an unchanged one)."""
    normal = NormalDist()
    return {
        task: normal.cdf(np.log(SLOWDOWN) / sigma - normal.inv_cdf(1 - FALSE_ALARMS))
        for task, sigma in spread.clip(lower=1e-9).items()
    }


def ready_at(graph: nx.DiGraph, task: str, ended: dict[str, float], start: float) -> float:
    """When `task`'s upstream had ended, through skipped ones that have no times (the run's
    start for a task with no upstream)."""
    ends = [
        ended[up] if up in ended else ready_at(graph, up, ended, start)
        for up in graph.predecessors(task)
    ]
    return max(ends, default=start)


def nights(rng, count: int, spans: pd.DataFrame, hops: pd.DataFrame, tails: np.ndarray):
    """`count` synthetic nights: spans and hops drawn per task from the recorded runs."""
    return (
        draw(rng, count, spans),
        draw(rng, count, hops),
        tails[rng.integers(0, len(tails), count)],
    )


def draw(rng, count: int, pool: pd.DataFrame) -> pd.DataFrame:
    """`count` rows, each cell of column c one of `pool[c]`'s recorded values."""
    pick = rng.integers(0, len(pool), size=(count, pool.shape[1]))
    return pd.DataFrame(pool.to_numpy()[pick, np.arange(pool.shape[1])], columns=pool.columns)


def walls(graph: nx.DiGraph, spans: pd.DataFrame, hops: pd.DataFrame, tails: np.ndarray):
    return critical_path_lengths(graph, spans.add(hops, fill_value=0.0)).to_numpy() + tails


def replay(
    document: dict[str, Any], trials: int, seed: int, leave_out: tuple[str, ...] = ()
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    graph, span_pool, hop_pool, tail_pool = pools(document, leave_out)
    policy = RegressionPolicy()
    per_trial = HISTORY_NIGHTS + 1
    spans, hops, tails = nights(rng, trials * per_trial, span_pool, hop_pool, tail_pool)
    wall = walls(graph, spans, hops, tails)
    frame = spans.assign(**{WALL_TIME: wall})
    alarms = {"today": {"unchanged": 0, "slowed": 0}, "by_wall": {"unchanged": 0, "slowed": 0}}
    caught_by_task: dict[str, list[int]] = {}
    spread = np.log(span_pool).std(ddof=1)
    best = best_catch(spread)
    best_caught = []
    for trial in range(trials):
        block = frame.iloc[trial * per_trial : (trial + 1) * per_trial]
        history, current = block.iloc[:-1].reset_index(drop=True), block.iloc[-1]
        for case in ("unchanged", "slowed"):
            night = current.copy()
            if case == "slowed":
                row = trial * per_trial + HISTORY_NIGHTS
                durations = (spans.iloc[row] + hops.iloc[row]).to_dict()
                # Tasks that ran: a mapped task over nothing (all cached) has no span.
                path = [t for t in cpm_schedule(graph, durations).path if t in spans.columns]
                task = str(rng.choice(path))
                slowed_spans = spans.iloc[[row]].copy()
                slowed_spans[task] *= SLOWDOWN
                night[task] = slowed_spans.iloc[0][task]
                night[WALL_TIME] = walls(graph, slowed_spans, hops.iloc[[row]], tails[[row]])[0]
            today = bool(detect_regressions(history, night, policy))
            by_wall = bool(detect_wall_movers(history, night, graph, policy).moved)
            alarms["today"][case] += today
            alarms["by_wall"][case] += by_wall
            if case == "slowed":
                caught_by_task.setdefault(task, []).append(int(by_wall))
                best_caught.append(best[task])
    rates = {
        name: {
            "false_alarm_percent": round(counts["unchanged"] / trials * 100, 2),
            "caught_percent": round(counts["slowed"] / trials * 100, 2),
        }
        for name, counts in alarms.items()
    }
    return {
        "recorded_runs_in_pool": len(span_pool),
        "nights": trials,
        "history_nights": HISTORY_NIGHTS,
        "slowdown": SLOWDOWN,
        "policies": rates,
        "best_one_night_policy_caught_percent": round(float(np.mean(best_caught)) * 100, 1),
        "best_caught_percent_per_task": {
            task: round(best[task] * 100, 1) for task in sorted(caught_by_task)
        },
        "span_log_spread_per_task": {
            task: round(float(spread[task]), 4) for task in sorted(caught_by_task)
        },
        "by_wall_caught_percent_per_task": {
            task: round(float(np.mean(hits)) * 100, 1)
            for task, hits in sorted(caught_by_task.items())
        },
        "wall_seconds_of_the_pool": stats(wall[: per_trial * 10]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument(
        "--leave-out",
        default="",
        help="comma-separated run ids replayed apart (e.g. a run that shared the cores with "
        "another job); the figures with every run stay beside them",
    )
    args = parser.parse_args()
    began = time.monotonic()
    with gzip.open(RECORDED, "rt") as stream:
        document = json.load(stream)
    figures = {"all_recorded_runs": replay(document, args.nights, args.seed)}
    if args.leave_out:
        figures["left_out"] = args.leave_out
        figures["without_left_out"] = replay(
            document, args.nights, args.seed, tuple(args.leave_out.split(","))
        )
    figures["seconds"] = round(time.monotonic() - began, 1)
    record("nightly_verdict", figures)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
