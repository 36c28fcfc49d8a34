"""Every third-party package the code imports is declared: what `dags/`, `plugins/` and
`include/` import in `requirements.txt` (the image installs only that), what the tests, the
benchmarks and the local tooling import in `requirements.txt` or `requirements-dev.txt`, and
what the airflow-bottleneck package imports in its own `pyproject.toml` (it installs alone)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

FIRST_PARTY = {"k1n", "k1n_local", "airflow_bottleneck", "tests", "bench", "dags", "plugins"}
GENERIC_DIR = "packages/airflow-bottleneck"
# Modules that are part of a declared distribution under another top-level name.
AIRFLOW_DISTRIBUTION = "apache-airflow"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*files: str) -> set[str]:
    names: set[str] = set()
    for file in files:
        for line in (PROJECT_DIR / file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(normalize(re.split(r"[\[=<>!~ ;]", line, maxsplit=1)[0]))
    return names


def imported_modules(paths: list[Path]) -> dict[str, set[str]]:
    """Dotted module name -> files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module, set()).add(str(path.relative_to(PROJECT_DIR)))
    return found


def distribution_of(module: str, index: dict[str, list[str]]) -> str | None:
    """The distribution that must be declared for `module`; None for stdlib/first party."""
    parts = module.split(".")
    top = parts[0]
    if top in sys.stdlib_module_names or top in FIRST_PARTY or top == "__future__":
        return None
    if top == "airflow":
        if len(parts) > 2 and parts[1] == "providers":
            return f"apache-airflow-providers-{parts[2]}"
        return AIRFLOW_DISTRIBUTION
    owners = index.get(top)
    return normalize(owners[0]) if owners else top


def undeclared(folders: list[str], allowed: set[str]) -> dict[str, set[str]]:
    index = packages_distributions()
    paths = [path for folder in folders for path in sorted((PROJECT_DIR / folder).rglob("*.py"))]
    missing: dict[str, set[str]] = {}
    for module, files in imported_modules(paths).items():
        distribution = distribution_of(module, index)
        if distribution is not None and distribution not in allowed:
            missing.setdefault(distribution, set()).update(files)
    return missing


@pytest.fixture(scope="module")
def runtime() -> set[str]:
    return declared("requirements.txt")


def test_what_airflow_loads_is_in_the_runtime_requirements(runtime) -> None:
    folders = [
        "dags",
        "plugins",
        *(
            str(path.relative_to(PROJECT_DIR))
            for path in (PROJECT_DIR / "include" / "k1n").iterdir()
            if path.is_dir() or path.suffix == ".py"
        ),
    ]
    assert undeclared(folders, runtime) == {}


def test_tests_benchmarks_and_tooling_import_only_declared_packages(runtime) -> None:
    allowed = runtime | declared("requirements-dev.txt")
    assert undeclared(["tests", "bench", "tools"], allowed) == {}


def test_the_bottleneck_package_declares_what_it_imports() -> None:
    project = tomllib.loads((PROJECT_DIR / GENERIC_DIR / "pyproject.toml").read_text())
    names = {
        normalize(re.split(r"[\[=<>!~ ;]", line, maxsplit=1)[0])
        for line in project["project"]["dependencies"]
    }
    assert undeclared([f"{GENERIC_DIR}/src"], names) == {}


def test_the_check_sees_an_undeclared_import(tmp_path) -> None:
    index = packages_distributions()
    assert distribution_of("yaml", index) == "pyyaml"
    assert distribution_of("airflow.providers.postgres.hooks", index) == (
        "apache-airflow-providers-postgres"
    )
    assert distribution_of("json", index) is None
    assert distribution_of("some_package_nobody_declared", index) not in declared(
        "requirements.txt", "requirements-dev.txt"
    )
