"""`k1n <command> ...`: the project's command line.

Commands:
  demo        run the baseline and the optimized DAG on a local Airflow and compare them
  airflow     start this project's Airflow (UI on http://localhost:8080) until Ctrl-C
  cluster     the docker-compose topology (Celery, 2 workers, S3) as local processes
  codegen     run Task 8's code generation engine outside Airflow
  report      bottleneck report of one run (Airflow, old profile directory or Conductor JSON)
  compare     compare two runs, e.g. baseline vs optimized, against the spec's targets
  execution-report  baseline vs optimized as Markdown and SVG charts (docs/EXECUTION_REPORT.md)
  settings    load airflow_settings.yaml (connections, pools, variables) into an Airflow home
  check-spec  validate a workflow spec (default: K1N_WORKFLOW_SPEC or the project's own)
  check-secrets  refuse placeholder or short secrets in the environment (compose's airflow-init)
  metrics-role  the metrics database and its own role (compose's airflow-init)
  users       create or update the FAB auth manager's admin and service account (from the env)
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable

# The laptop tooling's package (tools/): a checkout has it, an image does not.
TOOLS_PACKAGE = "k1n_local"
# "module:function" taking argv and returning an exit code; imported only when its command
# runs, because some of them import Airflow.
MODULE_COMMANDS: dict[str, str] = {
    "demo": "k1n_local.demo:main",
    "airflow": "k1n_local.serve:main",
    "cluster": "k1n_local.cluster:main",
    "codegen": "k1n.codegen.cli:main",
    "report": "k1n.reporting.cli:report_main",
    "compare": "k1n.reporting.cli:compare_main",
    "execution-report": "k1n.reporting.execution_report:main",
    "settings": "k1n.airflow_settings.loader:main",
    "check-secrets": "k1n.airflow_settings.secrets:main",
    "users": "k1n.airflow_settings.users:main",
    "metrics-role": "k1n.airflow_settings.metrics_role:main",
}


def check_spec(argv: list[str]) -> int:
    from k1n.workflow.spec import SpecError, load_spec

    try:
        spec = load_spec(argv[0] if argv else None)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{spec.source}: {len(spec.tasks)} tasks, {spec.total_seconds:.0f} s back to back, "
        f"critical path {spec.critical_path_seconds:.0f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    commands = {"check-spec": check_spec, **MODULE_COMMANDS}
    if not args or args[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # httpx logs every request at INFO: the demo's run polling would flood the terminal.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    command, rest = args[0], args[1:]
    if command in MODULE_COMMANDS:
        module_name, function = MODULE_COMMANDS[command].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != TOOLS_PACKAGE:
                raise
            # An image or a team's Airflow has the runtime only: say where the tooling is.
            print(
                f"error: `k1n {command}` is laptop tooling; install it from a checkout with "
                "`pip install -e tools` (make venv does)",
                file=sys.stderr,
            )
            return 2
        entry: Callable[[list[str]], int] = getattr(module, function)
        return entry(rest)
    return check_spec(rest)


if __name__ == "__main__":
    sys.exit(main())
