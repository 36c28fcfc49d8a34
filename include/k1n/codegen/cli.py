"""`codegen`: run Task 8's engine from the command line.

    k1n codegen --state-dir DIR [--storage-url URL] [--mode baseline|optimized] [--workers N]
                [--clean] [--checkout DIR] [--json] [--library-dir DIR] [--templates-dir DIR]

Publishes snapshots under DIR/store (or --storage-url, e.g. s3://bucket/prefix), keeps the
template cache in DIR/cache, and with --checkout writes the published code to a folder. Prints
a table of stage seconds and counters, or with `--json` the engine's summary. Errors are one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from k1n.codegen.contracts import CodegenSummary
from k1n.codegen.engine import DEFAULT_TEMPLATES_DIR, CodegenEngine
from k1n.codegen.errors import CodegenError
from k1n.codegen.pipeline import run_stages

STAGES = ("parse", "generate", "compile", "validate", "write")


class UsageError(Exception):
    """A command-line mistake; reported as one line like every other error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="codegen", description="Run Task 8, the code generation engine.")
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="snapshots (DIR/store) and cache (DIR/cache)"
    )
    parser.add_argument("--storage-url", help="publish snapshots here instead of DIR/store")
    parser.add_argument("--checkout", type=Path, help="write the published code to this folder")
    parser.add_argument(
        "--mode",
        choices=("baseline", "optimized"),
        default="optimized",
        help="baseline: no template cache, full rebuild; optimized (default): cached, incremental",
    )
    parser.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")
    parser.add_argument("--clean", action="store_true", help="clear caches and outputs first")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--library-dir",
        type=Path,
        default=None,
        help="the pattern library (default: K1N_PATTERN_LIBRARY, else the generated demo library)",
    )
    parser.add_argument(
        "--templates-dir", type=Path, default=DEFAULT_TEMPLATES_DIR, help="the Jinja2 templates"
    )
    return parser


def format_summary(summary: CodegenSummary) -> str:
    """The summary as a short human-readable table."""
    lines = [
        f"codegen {summary.mode}, {summary.workers} worker(s): "
        f"{summary.library_size} patterns, {summary.regenerated} regenerated, "
        f"{summary.unchanged} unchanged",
        "",
        f"{'stage':<10} {'seconds':>8}",
    ]
    lines += [f"{stage:<10} {summary.stages.get(stage, 0.0):>8.3f}" for stage in STAGES]
    lines.append(f"{'total':<10} {summary.seconds:>8.3f}")
    gates = summary.quality_gates
    lines += [
        "",
        f"templates compiled {summary.templates_compiled}, "
        f"loaded from cache {summary.templates_from_cache}; "
        f"files compiled {summary.files_compiled}; tests run {summary.tests_run}; "
        f"files published {summary.published_files}",
        f"quality gates {gates.passed}/{gates.total}; snapshot {summary.snapshot} "
        f"in {summary.store}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        if args.state_dir.exists() and not args.state_dir.is_dir():
            raise CodegenError(f"state dir {args.state_dir} exists and is not a directory")
        engine = CodegenEngine(
            args.storage_url or args.state_dir / "store",
            mode=args.mode,
            library_dir=args.library_dir,
            templates_dir=args.templates_dir,
            cache_dir=args.state_dir / "cache",
        )
        if args.clean:
            engine.clear_caches()
        summary = run_stages(engine, workers=args.workers)
        if args.checkout:
            engine.store.checkout(summary.snapshot, args.checkout)
    except UsageError as exc:
        print(f"codegen: {exc} (see --help)", file=sys.stderr)
        return 2
    except (CodegenError, OSError) as exc:
        print(f"codegen: error: {exc}", file=sys.stderr)
        return 2
    print(summary.model_dump_json(indent=2) if args.json else format_summary(summary))
    return 0
