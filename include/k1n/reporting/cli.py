"""`k1n report SOURCE` and `k1n compare A B`.

A SOURCE is one of

    profiles:DIR              the old wrapper's profile directory (task-<id>-*.json)
    conductor:FILE.json       a Conductor execution (GET /api/workflow/{workflowId})
    airflow:DAG_ID/RUN_ID     a DAG run of a running Airflow (REST API v2)

For `airflow:` sources: --airflow-url (or K1N_AIRFLOW_URL, default http://localhost:8080),
--username (or K1N_AIRFLOW_USER, default admin); the password from K1N_AIRFLOW_PASSWORD, or one
line on stdin with --password-stdin, or a prompt on a terminal (never an argument: others
see a command line in `ps`).

Bad input (a missing directory, malformed JSON, a profile ending before it starts, an unknown
run, an unreachable URL, a bad option) prints one `error: ...` line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from airflow_bottleneck.analysis.analyze import RunData
from airflow_bottleneck.analysis.compare import compare_runs
from airflow_bottleneck.analysis.errors import AnalysisInputError
from airflow_bottleneck.analysis.model import RunReport
from airflow_bottleneck.render import DEFAULT_TOP, FORMATS, render_comparison, render_report
from k1n.io import stage_file
from k1n.readers import (
    fetch_airflow_run,
    legacy_summary,
    load_conductor,
    load_profiles,
)
from k1n.reporting.extension import K1NExtension, k1n_extension_for
from k1n.settings import (
    DEFAULT_AIRFLOW_URL,
    env_name,
    k1n_settings,
    parse_time_scale,
)
from k1n.workflow.spec import SpecError, WorkflowSpec, load_spec

EXIT_BAD_INPUT = 2
SOURCE_KINDS = ("profiles", "conductor", "airflow")
URL_ENV, USER_ENV, PASSWORD_ENV = (
    env_name("airflow_url"),
    env_name("airflow_user"),
    env_name("airflow_password"),
)
SUMMARY_NEXT_TO_PROFILES = "<profiles>/summary.json"
MAX_TIMEOUT_SECONDS = 3600.0
MAX_TOP = 10_000


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `AnalysisInputError` line, not usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise AnalysisInputError(f"{self.prog}: {message} (see --help)")


@dataclass(frozen=True)
class Source:
    """A parsed SOURCE argument."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class AirflowLogin:
    url: str
    username: str
    password: str | None
    timeout: float


def parse_source(text: str) -> Source:
    """`profiles:DIR` / `conductor:FILE` / `airflow:DAG/RUN` -> `Source`."""
    kind, separator, value = text.partition(":")
    if not separator or kind not in SOURCE_KINDS or not value:
        raise AnalysisInputError(
            f"unknown source {text!r}: use profiles:DIR, conductor:FILE.json or "
            "airflow:DAG_ID/RUN_ID"
        )
    if kind == "airflow":
        dag_id, slash, run_id = value.partition("/")
        if not slash or not dag_id or not run_id:
            raise AnalysisInputError(f"airflow source {text!r}: expected airflow:DAG_ID/RUN_ID")
    return Source(kind, value)


def load_source(source: Source, spec: WorkflowSpec, login: AirflowLogin) -> RunData:
    """Read one source into `RunData`."""
    if source.kind == "profiles":
        return load_profiles(Path(source.value), spec)
    if source.kind == "conductor":
        return load_conductor(Path(source.value), spec)
    if login.password is None:
        raise AnalysisInputError(
            f"no Airflow password: set {PASSWORD_ENV} or pass it on stdin with --password-stdin"
        )
    dag_id, _, run_id = source.value.partition("/")
    return fetch_airflow_run(
        login.url,
        login.username,
        login.password,
        dag_id,
        run_id,
        timeout=login.timeout,
        extension=k1n_extension_for(dag_id, spec),
    )


def _time_scale(text: str) -> float:
    try:
        return parse_time_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bounded(kind: type, low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a finite `kind` number within [low, high]."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text[:40]} is outside [{low:g}, {high:g}]")
        return value

    return parse


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--spec", type=Path, default=None, help="workflow spec (default: the project's own)"
    )
    parser.add_argument("--output", type=Path, default=None, help="write here, not to stdout")
    login = parser.add_argument_group("airflow: sources")
    login.add_argument(
        "--airflow-url", default=None, help=f"default ${URL_ENV} or {DEFAULT_AIRFLOW_URL}"
    )
    login.add_argument("--username", default=None, help=f"default ${USER_ENV} or admin")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from stdin (default ${PASSWORD_ENV}, else a prompt)",
    )
    login.add_argument(
        "--timeout",
        type=_bounded(float, 0.1, MAX_TIMEOUT_SECONDS),
        default=30.0,
        help="seconds per request",
    )


def _password(from_stdin: bool, configured: str | None) -> str | None:
    """--password-stdin's line, else the configured one, else a prompt on a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if configured is None and sys.stdin.isatty():
        return getpass.getpass("Airflow password: ") or None
    return configured


def _login(args: argparse.Namespace) -> AirflowLogin:
    configured = k1n_settings()
    return AirflowLogin(
        url=args.airflow_url or configured.airflow_url,
        username=args.username or configured.airflow_user,
        password=_password(args.password_stdin, configured.airflow_password),
        timeout=args.timeout,
    )


def report_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="k1n report",
        description="Bottleneck report of one workflow run.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", nargs="?", help="profiles:DIR | conductor:FILE | airflow:DAG/RUN")
    parser.add_argument("--profiles", metavar="DIR", help="same as profiles:DIR")
    parser.add_argument("--conductor", metavar="FILE", help="same as conductor:FILE")
    parser.add_argument("--airflow", metavar="DAG/RUN", help="same as airflow:DAG/RUN")
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=None,
        help="override the run's time scale (e.g. 1/60)",
    )
    parser.add_argument(
        "--top", type=_bounded(int, 1, MAX_TOP), default=DEFAULT_TOP, help="slowest tasks to list"
    )
    parser.add_argument("--label", default="", help="a name for the run in the report")
    parser.add_argument(
        "--no-detail", action="store_true", help="json: leave out per-index and per-try rows"
    )
    parser.add_argument(
        "--write-summary",
        nargs="?",
        const=SUMMARY_NEXT_TO_PROFILES,
        default=None,
        metavar="PATH",
        help="also write the old summary.json (default path: in the profiles directory)",
    )
    _common_options(parser)
    return parser


def compare_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="k1n compare",
        description="Compare two runs (A: the reference, e.g. the baseline; B: e.g. optimized).",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("a", help="run A: profiles:DIR | conductor:FILE | airflow:DAG/RUN")
    parser.add_argument("b", help="run B, same forms")
    parser.add_argument(
        "--time-scale", type=_time_scale, default=None, help="override both runs' time scale"
    )
    parser.add_argument("--time-scale-a", type=_time_scale, default=None)
    parser.add_argument("--time-scale-b", type=_time_scale, default=None)
    parser.add_argument("--label-a", default="", help="a name for run A (default: its DAG)")
    parser.add_argument("--label-b", default="", help="a name for run B (default: its DAG)")
    _common_options(parser)
    return parser


def _report_source(args: argparse.Namespace) -> Source:
    given = [
        text
        for text in (
            args.source,
            args.profiles and f"profiles:{args.profiles}",
            args.conductor and f"conductor:{args.conductor}",
            args.airflow and f"airflow:{args.airflow}",
        )
        if text
    ]
    if len(given) != 1:
        raise AnalysisInputError(
            "name exactly one source: SOURCE, --profiles, --conductor or --airflow"
        )
    return parse_source(given[0])


def _analyze(
    source: Source,
    spec: WorkflowSpec,
    login: AirflowLogin,
    label: str,
    scale: float | None,
    detail: bool = False,
) -> RunReport:
    data: RunData = load_source(source, spec, login)
    data = replace(data, info=replace(data.info, label=label or data.info.label))
    # The old system's records are K1N's whatever their id; an Airflow run only for its DAGs.
    extension = K1NExtension(spec) if source.kind != "airflow" else None
    extension = extension or k1n_extension_for(data.info.dag_id, spec)
    return data.analyze(extension, time_scale=scale, detail=detail)


def _emit(text: str, output: Path | None, also: dict[Path, str] | None = None) -> None:
    """Write every output, or none: each goes to a fresh temporary file beside its target
    first (never a fixed name a planted link could redirect), and only when all of them are
    written are they renamed into place."""
    files = {**(also or {}), **({output: text} if output is not None else {})}
    staged: list[tuple[Path, Path]] = []
    try:
        for target, content in files.items():
            try:
                temporary = stage_file(target, content.encode("utf-8"), make_parents=False)
            except OSError as exc:
                raise AnalysisInputError(
                    f"cannot write {target}: {exc.strerror or exc}; nothing was written"
                ) from None
            staged.append((temporary, target))
        for temporary, target in staged:
            os.replace(temporary, target)
        staged.clear()
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
    if output is None:
        sys.stdout.write(text)


def run_command(main: Callable[[list[str]], int], argv: Sequence[str] | None) -> int:
    """Run a command body; bad input becomes one stderr line and exit code 2."""
    # `k1n` logs at INFO; httpx would add a line per request to stderr.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return main(list(sys.argv[1:] if argv is None else argv))
    except (AnalysisInputError, SpecError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0


def _report(argv: list[str]) -> int:
    args = report_parser().parse_args(argv)
    source = _report_source(args)
    spec = load_spec(args.spec)
    detail = args.format == "json" and not args.no_detail
    report = _analyze(source, spec, _login(args), args.label, args.time_scale, detail)
    text = render_report(report, args.format, top=args.top)
    extra: dict[Path, str] = {}
    if args.write_summary is not None:
        target = args.write_summary
        if target == SUMMARY_NEXT_TO_PROFILES:
            if source.kind != "profiles":
                raise AnalysisInputError("--write-summary needs a PATH for a non-profiles source")
            target = str(Path(source.value) / "summary.json")
        extra[Path(target)] = json.dumps(legacy_summary(report), indent=2) + "\n"
    _emit(text, args.output, extra)
    return 0


def analyze_pair(args: argparse.Namespace) -> tuple[RunReport, RunReport]:
    """Runs A and B of `compare_parser()`'s arguments, analysed."""
    a_source, b_source = parse_source(args.a), parse_source(args.b)
    spec = load_spec(args.spec)
    login = _login(args)
    a_scale = args.time_scale_a or args.time_scale
    b_scale = args.time_scale_b or args.time_scale
    a = _analyze(a_source, spec, login, args.label_a, a_scale)
    b = _analyze(b_source, spec, login, args.label_b, b_scale)
    return a, b


def _compare(argv: list[str]) -> int:
    args = compare_parser().parse_args(argv)
    a, b = analyze_pair(args)
    _emit(render_comparison(compare_runs(a, b), args.format), args.output)
    return 0


def report_main(argv: Sequence[str] | None = None) -> int:
    """`report SOURCE [options]`: 0 on success, 2 on bad input (one line on stderr)."""
    return run_command(_report, argv)


def compare_main(argv: Sequence[str] | None = None) -> int:
    """`compare A B [options]`: 0 on success, 2 on bad input (one line on stderr)."""
    return run_command(_compare, argv)


if __name__ == "__main__":
    sys.exit(report_main())
