"""The two products' layers, enforced on every import statement (module level or inside a
function) of `dags/`, `plugins/`, `include/k1n/` and the airflow-bottleneck package.

- airflow-bottleneck (`packages/airflow-bottleneck/src/airflow_bottleneck`) never imports the
  K1N project; inside it, the analysis and the renderers (every output format) never import
  Airflow, the readers or the web app, and the plugin module imports only the web package's
  root and the strategy.
- The K1N project imports only airflow-bottleneck's public API (`PUBLIC_API`), never its web
  app internals, its metadata-DB reader or its plugin module.
- DAG files import only the DAG builders; `plugins/` only what registers the K1N redirect.
- Code that runs inside Airflow (`tasks/`, `dag_builders/`, `workflow/`, `codegen/`,
  `reporting/`, `readers/`, `metrics/`, and the small shared modules) never imports laptop
  tooling (`tools/k1n_local`); the task runtime and the reports never import the DAG builders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

PACKAGE = "k1n"
TOOLING = "k1n_local"
BUILDERS = f"{PACKAGE}.dag_builders"
CLI = f"{PACKAGE}.cli"
TASKS = f"{PACKAGE}.tasks"

GENERIC = "airflow_bottleneck"
GENERIC_SOURCE = "packages/airflow-bottleneck/src/airflow_bottleneck"
# What other code may import of airflow-bottleneck (the rest is the plugin's own).
PUBLIC_API = (
    f"{GENERIC}.analysis",
    f"{GENERIC}.render",
    f"{GENERIC}.extension",
    f"{GENERIC}.priority",
    f"{GENERIC}.readers.rest_api",
    f"{GENERIC}.readers.rest_client",
    f"{GENERIC}.runs",
    f"{GENERIC}.scheduling",
    f"{GENERIC}.time_scale",
)
PUBLIC_WEB_ROOT = {f"{GENERIC}.web", f"{GENERIC}.web.URL_PREFIX"}

# K1N layer (a package or module under include/k1n) -> what it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "tasks": (TOOLING, BUILDERS, CLI),
    "workflow": (TOOLING, BUILDERS, CLI, TASKS),
    "codegen": (TOOLING, BUILDERS, CLI),
    "checks": (TOOLING, BUILDERS, CLI),
    "reporting": (TOOLING, BUILDERS, CLI, TASKS),
    "readers": (TOOLING, BUILDERS, CLI, TASKS),
    "metrics": (TOOLING, BUILDERS, CLI, TASKS),
    "dag_builders": (TOOLING, CLI),
    "settings": (TOOLING, BUILDERS, CLI),
    "airflow_settings": (TOOLING, BUILDERS, CLI, TASKS),
    "io": (TOOLING, BUILDERS, CLI),
    "errors": (TOOLING, BUILDERS, CLI),
    "storage": (TOOLING, BUILDERS, CLI),
    "child_env": (TOOLING, BUILDERS, CLI, TASKS),
}
# airflow-bottleneck layer -> what it must never import
GENERIC_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "analysis": (
        "airflow",
        f"{GENERIC}.readers",
        f"{GENERIC}.web",
        f"{GENERIC}.render",
        f"{GENERIC}.plugin",
    ),
    "render": ("airflow", f"{GENERIC}.readers", f"{GENERIC}.web", f"{GENERIC}.plugin"),
    "extension": ("airflow", f"{GENERIC}.readers", f"{GENERIC}.web", f"{GENERIC}.plugin"),
    "runs": ("airflow", f"{GENERIC}.readers", f"{GENERIC}.web", f"{GENERIC}.render"),
    "time_scale": (f"{GENERIC}.analysis", "airflow", "pandas", "networkx"),
    # Pure and light: the scheduler and DAG files import it.
    "scheduling": (f"{GENERIC}.analysis", "airflow", "pandas", "networkx", f"{GENERIC}.readers"),
    "readers": (f"{GENERIC}.web", f"{GENERIC}.plugin", f"{GENERIC}.render"),
    "priority": (f"{GENERIC}.web", f"{GENERIC}.plugin", f"{GENERIC}.readers"),
    "web": (f"{GENERIC}.plugin", f"{GENERIC}.priority"),
    # What is ahead: the metadata DB and the analyses, for the routes and the scheduler.
    "look_ahead": (f"{GENERIC}.web", f"{GENERIC}.plugin", f"{GENERIC}.render"),
    "deadline_watch": (f"{GENERIC}.web", f"{GENERIC}.plugin", f"{GENERIC}.render"),
    "listener": (f"{GENERIC}.web", f"{GENERIC}.plugin", f"{GENERIC}.render", "pandas"),
}


def imports_of(source: str) -> list[str]:
    """Every module an import statement in `source` names (`from a import b` -> `a.b` too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _under(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(layer: str, source: str) -> list[str]:
    """The imports of `source` (a K1N module of `layer`) that the layers forbid."""
    forbidden = FORBIDDEN.get(layer, ())
    return [
        name for name in imports_of(source) if _under(name, forbidden) or _private_generic(name)
    ]


def _private_generic(name: str) -> bool:
    """An airflow-bottleneck module (or name) outside its public API."""
    public = _under(name, PUBLIC_API) or name in PUBLIC_WEB_ROOT or name == GENERIC
    return _under(name, (GENERIC,)) and not public


def generic_violations(layer: str, source: str) -> list[str]:
    """The imports of `source` (an airflow-bottleneck module of `layer`) that it must not make."""
    forbidden = (PACKAGE, "include", *GENERIC_FORBIDDEN.get(layer, ()))
    return [name for name in imports_of(source) if _under(name, forbidden)]


def layer_of(path: Path, root: str) -> str:
    """`include/k1n/tasks/dispatch.py` -> `tasks`; `include/k1n/io.py` -> `io`."""
    return path.relative_to(PROJECT_DIR / root).parts[0].removesuffix(".py")


def project_modules(folder: str) -> list[Path]:
    return sorted((PROJECT_DIR / folder).rglob("*.py"))


def test_every_layer_of_include_keeps_its_imports() -> None:
    found = {
        str(path.relative_to(PROJECT_DIR)): bad
        for path in project_modules("include/k1n")
        if (bad := violations(layer_of(path, "include/k1n"), path.read_text()))
    }
    assert found == {}


def test_the_generic_package_never_imports_k1n_and_keeps_its_layers() -> None:
    found = {
        str(path.relative_to(PROJECT_DIR)): bad
        for path in project_modules(GENERIC_SOURCE)
        if (bad := generic_violations(layer_of(path, GENERIC_SOURCE), path.read_text()))
    }
    assert found == {}


def test_the_generic_plugin_module_imports_only_the_web_root_and_the_strategy() -> None:
    source = (PROJECT_DIR / GENERIC_SOURCE / "plugin.py").read_text()
    ours = {name for name in imports_of(source) if name.startswith(GENERIC)}
    allowed = {
        f"{GENERIC}.web",
        f"{GENERIC}.web.external_views",
        f"{GENERIC}.web.fastapi_app_entry",
    }
    allowed |= {
        f"{GENERIC}.priority",
        f"{GENERIC}.priority.CriticalPathPriority",
        f"{GENERIC}.priority.SimulatedSchedulePriority",
    }
    allowed |= {f"{GENERIC}.listener", f"{GENERIC}.listener.deadline_listener"}
    assert ours <= allowed, ours


def test_dag_files_import_only_the_builders() -> None:
    for path in project_modules("dags"):
        ours = [name for name in imports_of(path.read_text()) if name.startswith(PACKAGE)]
        assert ours, f"{path.name} builds its DAG elsewhere than the builders?"
        assert all(name.startswith(BUILDERS) for name in ours), (path.name, ours)


def test_the_plugins_folder_registers_only_the_k1n_redirect() -> None:
    (path,) = project_modules("plugins")
    ours = {n for n in imports_of(path.read_text()) if n.startswith((PACKAGE, GENERIC))}
    legacy = f"{PACKAGE}.reporting.legacy_urls"
    assert ours <= {legacy, f"{legacy}.LEGACY_URL_PREFIX", f"{legacy}.legacy_redirect_app"}


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("dag_builders", "from k1n_local.stack import AirflowStack"),
        ("tasks", "def f():\n    import airflow_bottleneck.web.app\n"),
        ("reporting", "from airflow_bottleneck.readers.metadata_db import load_run"),
        ("reporting", "import k1n_local.demo"),
        ("codegen", "from k1n.dag_builders.workflow import build_optimized_dag"),
    ],
)
def test_the_check_catches_a_broken_layer(layer: str, source: str) -> None:
    assert violations(layer, source)


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("analysis", "from k1n.workflow.spec import WorkflowSpec"),
        ("web", "def f():\n    import include.k1n.settings\n"),
        ("analysis", "from airflow.models import DagRun"),
        ("render", "from airflow_bottleneck.web.reports import analyze"),
    ],
)
def test_the_check_catches_a_generic_module_reaching_out(layer: str, source: str) -> None:
    assert generic_violations(layer, source)


def test_include_holds_no_laptop_tooling() -> None:
    """`include/` is what DAGs and tasks import at run time: the tooling lives in tools/."""
    assert not (PROJECT_DIR / "include" / "k1n" / "local").exists()
    tooling = {path.stem for path in project_modules("tools/k1n_local")}
    assert {"stack", "demo", "cluster", "serve"} <= tooling


def test_every_layer_is_known() -> None:
    layers = {layer_of(path, "include/k1n") for path in project_modules("include/k1n")}
    assert layers - {"__init__", "__main__", "cli"} <= set(FORBIDDEN)
    generic = {layer_of(path, GENERIC_SOURCE) for path in project_modules(GENERIC_SOURCE)}
    assert generic - {"__init__", "plugin"} <= set(GENERIC_FORBIDDEN)
