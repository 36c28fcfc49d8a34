"""The K1N code generation engine (Task 8) and its pattern library (Task 7); no Airflow here.

    from k1n.codegen import CodegenEngine, CodegenStore, plan_shards, run_stages

    engine = CodegenEngine(CodegenStore(storage_root / "codegen" / dag_key), mode="optimized")
    summary = run_stages(engine, workers=4)  # or stage by stage: parse, generate, compile, ...

`engine.py` has the stages, `contracts.py` the typed documents they hand each other,
`staging.py` where those live during a run, `snapshots.py` the published snapshots. The
downstream checks of Tasks 9, 10 and 12 are in `k1n.checks`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k1n.codegen.engine import DEFAULT_TEMPLATES_DIR, ENGINE_VERSION, CodegenEngine
    from k1n.codegen.errors import CodegenError, LibraryError, ValidationFailed
    from k1n.codegen.library import default_library_dir, index_library, load_library
    from k1n.codegen.pipeline import run_stages
    from k1n.codegen.planning import plan_shards
    from k1n.codegen.snapshots import CodegenStore
    from k1n.codegen.staging import Staging
    from k1n.codegen.validation import CHECKS

# Loaded on first use: the DAGs' retry rules name `k1n.codegen.errors.ValidationFailed` and
# Airflow imports it when it parses a DAG file, before every task; the engine must not come
# with it.
_HOMES = {
    "CHECKS": "validation",
    "DEFAULT_TEMPLATES_DIR": "engine",
    "ENGINE_VERSION": "engine",
    "CodegenEngine": "engine",
    "CodegenError": "errors",
    "CodegenStore": "snapshots",
    "LibraryError": "errors",
    "Staging": "staging",
    "ValidationFailed": "errors",
    "default_library_dir": "library",
    "index_library": "library",
    "load_library": "library",
    "plan_shards": "planning",
    "run_stages": "pipeline",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKS",
    "DEFAULT_TEMPLATES_DIR",
    "ENGINE_VERSION",
    "CodegenEngine",
    "CodegenError",
    "CodegenStore",
    "LibraryError",
    "Staging",
    "ValidationFailed",
    "default_library_dir",
    "index_library",
    "load_library",
    "plan_shards",
    "run_stages",
]
