"""The execution report the migration plan asked for: the baseline against the optimized
workflow, as Markdown with the charts as SVG files beside it.

`write_execution_report(baseline, optimized, out_dir, bench=...)` writes
`<out_dir>/EXECUTION_REPORT.md` and `<out_dir>/img/execution-*.svg`: before/after per task on
the production scale (stand-ins scaled back, real work as measured), the targets met or missed,
what each optimization saved, the orchestration overhead of both runs, the benchmark's
3-concurrent results (when given the figures of `bench/bench_workflow.py`), and how to roll
back. Everything is computed
from the two reports; every file is written atomically once all of it is rendered.

`k1n execution-report A B` (`k1n.reporting.cli`) builds it from any two runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_bottleneck.analysis.compare import compare_runs
from airflow_bottleneck.analysis.model import Comparison, RunReport
from airflow_bottleneck.render.svg import (
    comparison_view,
    durations_view,
    gantt_view,
    render_svg,
)
from airflow_bottleneck.render.templating import markdown_environment
from k1n.io import write_bytes_atomic
from k1n.workflow.names import CODEGEN_SPEC_ID

REPORT_NAME = "EXECUTION_REPORT.md"
TEMPLATES = Path(__file__).with_name("templates")


def savings(comparison: Comparison) -> list[dict[str, Any]]:
    """What the optimized run saved against the baseline, production seconds, every row a
    part of the two runs' production critical paths (`Comparison.attribution`), so the rows
    add up to the total: tasks that left the critical path (they now run beside it), Task 8,
    the other tasks on both paths, start-ups, hand-offs. `seconds` > 0 is a saving."""
    groups: dict[str, dict[str, Any]] = {
        "parallel": {
            "what": "Parallel branches: tasks off the critical path",
            "how": "work of the tasks on the baseline's critical path and not on the "
            "optimized one's (they ran beside it), minus those that joined it",
        },
        "codegen": {
            "what": "Task 8: template cache, incremental build, mapped shards",
            "how": "Task 8's work on both critical paths, baseline minus optimized",
        },
        "stayed": {
            "what": "Other tasks on both critical paths",
            "how": "their work, baseline minus optimized (the checks run side by side: slower)",
        },
        "startup": {
            "what": "Task start-ups on the critical path",
            "how": "task-instance start -> its own code, as measured, summed along each path",
        },
        "handoff": {
            "what": "Hand-offs on the critical path",
            "how": "each step's measured delay after its upstreams, the run's head and tail",
        },
        "other": {"what": "Rounding", "how": "what the parts above leave of the total"},
    }
    for group in groups.values():
        group["seconds"] = 0.0
    for part in comparison.attribution.parts:
        if part.kind == "orchestration":
            group = part.key
        elif part.key == f"spec {CODEGEN_SPEC_ID}" and part.path_change == "stayed":
            group = "codegen"
        else:
            group = "stayed" if part.path_change == "stayed" else "parallel"
        groups[group]["seconds"] -= part.delta_seconds
    return [row for key, row in groups.items() if key != "other" or abs(row["seconds"]) >= 0.05]


def write_execution_report(
    baseline: RunReport,
    optimized: RunReport,
    out_dir: Path | str,
    *,
    bench: dict[str, Any] | None = None,
) -> Path:
    """Write the report and its charts under `out_dir`; the Markdown file's path."""
    out_dir = Path(out_dir)
    comparison = compare_runs(baseline, optimized)
    charts = {
        "execution-comparison.svg": render_svg(
            "comparison", comparison_view(comparison, baseline, optimized)
        ),
        "execution-baseline-gantt.svg": render_svg("gantt", gantt_view(baseline)),
        "execution-optimized-gantt.svg": render_svg("gantt", gantt_view(optimized)),
        "execution-optimized-durations.svg": render_svg("durations", durations_view(optimized)),
    }
    markdown = (
        markdown_environment((TEMPLATES,))
        .get_template("execution_report.md.j2")
        .render(
            a=baseline,
            b=optimized,
            comparison=comparison,
            savings=savings(comparison),
            bench=bench or {},
            charts=sorted(charts),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    for name, svg in charts.items():
        write_bytes_atomic(out_dir / "img" / name, str(svg).encode())
    target = out_dir / REPORT_NAME
    write_bytes_atomic(target, markdown.encode())
    return target


def main(argv: list[str] | None = None) -> int:
    """`k1n execution-report A B [--out DIR]`: A the baseline run, B the optimized one, in
    the forms `k1n compare` takes; 0 on success, 2 on bad input (one line on stderr)."""
    from k1n.reporting import cli

    def command(args_list: list[str]) -> int:
        parser = cli.compare_parser()
        parser.prog = "k1n execution-report"
        parser.description = "Execution report: baseline (A) against optimized (B)."
        parser.add_argument("--out", type=Path, default=Path("docs"), help="report folder")
        args = parser.parse_args(args_list)
        baseline, optimized = cli.analyze_pair(args)
        try:
            print(write_execution_report(baseline, optimized, args.out))
        except OSError as exc:
            raise cli.AnalysisInputError(f"cannot write into {args.out}: {exc.strerror}") from None
        return 0

    return cli.run_command(command, argv)
