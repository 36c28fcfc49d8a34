"""The K1N code generation engine (Task 8) and its pattern library (Task 7); no Airflow here.

    from include.k1n.codegen import CodegenEngine, plan_shards

    engine = CodegenEngine(state_dir, mode="optimized")
    summary = engine.run(workers=4)          # or stage by stage: parse, generate, compile, ...

See `engine.py` for the stages and directory layout, `checks.py` for the downstream checks.
"""

from include.k1n.codegen.engine import (
    CHECKS,
    DEFAULT_TEMPLATES_DIR,
    ENGINE_VERSION,
    CodegenEngine,
    plan_shards,
)
from include.k1n.codegen.errors import CodegenError, LibraryError, ValidationFailed
from include.k1n.codegen.library import DEFAULT_LIBRARY_DIR, index_library, load_library

__all__ = [
    "CHECKS",
    "DEFAULT_LIBRARY_DIR",
    "DEFAULT_TEMPLATES_DIR",
    "ENGINE_VERSION",
    "CodegenEngine",
    "CodegenError",
    "LibraryError",
    "ValidationFailed",
    "index_library",
    "load_library",
    "plan_shards",
]
