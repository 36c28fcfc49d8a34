"""Fixtures for the code generation tests: small copies of the library, templates and state.

Most tests run the engine on a 12-pattern subset (two per kind) so the whole module stays
fast; a test that edits the library, the templates or the published snapshots works on its own
copy in `tmp_path`. A "state" folder holds `store/` (snapshots and pointer) and `cache/` (the
Jinja2 bytecode cache), as `k1n codegen --state-dir` lays them out.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from k1n.codegen import CodegenEngine, default_library_dir, run_stages
from k1n.codegen.kinds import KINDS

PER_KIND = 2
SMALL_LIBRARY_NAMES = sorted(f"{kind}_{index:03d}" for kind in KINDS for index in range(PER_KIND))


def copy_small_library(target: Path) -> Path:
    """The first PER_KIND patterns of every kind of the default library, copied to `target`."""
    source = default_library_dir()
    for name in SMALL_LIBRARY_NAMES:
        kind = name.rsplit("_", 1)[0]
        (target / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / kind / f"{name}.yaml", target / kind / f"{name}.yaml")
    return target


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root`."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def engine_for(state: Path, library: Path, **options) -> CodegenEngine:
    """An engine publishing to `state/store` with its bytecode cache in `state/cache`."""
    return CodegenEngine(state / "store", library_dir=library, cache_dir=state / "cache", **options)


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    return copy_small_library(tmp_path / "library")


@pytest.fixture
def templates_copy(tmp_path: Path) -> Path:
    from k1n.codegen import DEFAULT_TEMPLATES_DIR

    return Path(shutil.copytree(DEFAULT_TEMPLATES_DIR, tmp_path / "templates"))


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(library, state) after one optimized run; copy it before changing anything."""
    root = tmp_path_factory.mktemp("published")
    library = copy_small_library(root / "library")
    state = root / "state"
    run_stages(engine_for(state, library))
    return library, state


@pytest.fixture
def warm_state(published: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of `published`: (library, state), ready for an incremental run."""
    library, state = published
    return (
        Path(shutil.copytree(library, tmp_path / "library")),
        Path(shutil.copytree(state, tmp_path / "state")),
    )


@pytest.fixture
def published_output(published: tuple[Path, Path], tmp_path: Path) -> Path:
    """The published snapshot of `published`, checked out into a private folder."""
    library, state = published
    engine = engine_for(state, library)
    output = tmp_path / "output"
    engine.store.checkout(engine.store.current_id(), output)
    return output
