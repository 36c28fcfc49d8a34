"""The project's layers, enforced on every import statement (module level or inside a
function) of `dags/`, `plugins/` and `include/k1n/`.

- DAG files import only the DAG builders; the plugin module only `include.k1n.ui`'s root.
- Code that runs inside Airflow (`tasks/`, `dag_builders/`, `workflow/`, `codegen/`,
  `analysis/`, `metrics/`, and the small shared modules) never imports laptop tooling
  (`local/`) or the UI; the task runtime and the analysis never import the DAG builders.
- The UI never imports tooling or DAG builders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

PACKAGE = "include.k1n"
TOOLING = f"{PACKAGE}.local"
UI = f"{PACKAGE}.ui"
BUILDERS = f"{PACKAGE}.dag_builders"
CLI = f"{PACKAGE}.cli"

# layer (a package or module under include.k1n) -> what it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "tasks": (TOOLING, UI, BUILDERS, CLI),
    "workflow": (TOOLING, UI, BUILDERS, CLI, f"{PACKAGE}.tasks"),
    "codegen": (TOOLING, UI, BUILDERS, CLI),
    "analysis": (TOOLING, UI, BUILDERS, CLI, f"{PACKAGE}.tasks"),
    "metrics": (TOOLING, UI, BUILDERS, CLI, f"{PACKAGE}.tasks"),
    "dag_builders": (TOOLING, UI, CLI),
    "ui": (TOOLING, BUILDERS, CLI, f"{PACKAGE}.tasks", f"{PACKAGE}.codegen"),
    "settings": (TOOLING, UI, BUILDERS, CLI),
    "io": (TOOLING, UI, BUILDERS, CLI),
    "errors": (TOOLING, UI, BUILDERS, CLI),
    "storage": (TOOLING, UI, BUILDERS, CLI),
    "airflow_rest": (TOOLING, UI, BUILDERS, CLI),
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


def violations(layer: str, source: str) -> list[str]:
    """The imports of `source` (a module of `layer`) that its layer forbids."""
    forbidden = FORBIDDEN.get(layer, ())
    return [
        name
        for name in imports_of(source)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    ]


def layer_of(path: Path) -> str:
    """`include/k1n/tasks/dispatch.py` -> `tasks`; `include/k1n/io.py` -> `io`."""
    parts = path.relative_to(PROJECT_DIR / "include" / "k1n").parts
    return parts[0].removesuffix(".py")


def project_modules(folder: str) -> list[Path]:
    return sorted((PROJECT_DIR / folder).rglob("*.py"))


def test_every_layer_of_include_keeps_its_imports() -> None:
    found = {
        str(path.relative_to(PROJECT_DIR)): bad
        for path in project_modules("include/k1n")
        if (bad := violations(layer_of(path), path.read_text()))
    }
    assert found == {}


def test_dag_files_import_only_the_builders() -> None:
    for path in project_modules("dags"):
        ours = [name for name in imports_of(path.read_text()) if name.startswith(PACKAGE)]
        assert ours, f"{path.name} builds its DAG elsewhere than the builders?"
        assert all(name.startswith(BUILDERS) for name in ours), (path.name, ours)


def test_the_plugin_module_imports_only_the_ui_root_and_the_priority_strategy() -> None:
    for path in project_modules("plugins"):
        ours = {name for name in imports_of(path.read_text()) if name.startswith(PACKAGE)}
        allowed = {UI, f"{UI}.external_views", f"{UI}.fastapi_app_entry"}
        priority = f"{BUILDERS}.priority"
        allowed |= {priority, f"{priority}.CriticalPathPriority"}
        assert ours <= allowed, ours


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("dag_builders", "from include.k1n.local.stack import AirflowStack"),
        ("tasks", "def f():\n    import include.k1n.ui.page\n"),
        ("analysis", "from include.k1n import local"),
        ("codegen", "from include.k1n.dag_builders.workflow import build_optimized_dag"),
    ],
)
def test_the_check_catches_a_broken_layer(layer: str, source: str) -> None:
    assert violations(layer, source)


def test_every_layer_under_include_is_known() -> None:
    layers = {layer_of(path) for path in project_modules("include/k1n")}
    assert layers - {"__init__", "__main__", "cli", "local"} <= set(FORBIDDEN)
