"""Jinja2 for code generation: the environment, its counters and the template dependency graph.

Two environments differ only in caching, never in output:

- `baseline`: `cache_size=0` and no bytecode cache, so every `get_template` (and every
  `{% import %}` inside a template) compiles the template source again, like the old system;
- `optimized`: Jinja's in-memory cache plus a `FileSystemBytecodeCache` in the state directory,
  so a template is compiled once and later processes load the compiled code from disk.

Counting happens where the work happens: `CountingEnvironment.compile` is Jinja's one path from
template source to Python code, and `CountingBytecodeCache.load_bytecode` sees every disk hit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta
from jinja2.bccache import Bucket

from k1n.io import private_dir

Mode = Literal["baseline", "optimized"]

log = logging.getLogger(__name__)


class CountingEnvironment(jinja2.Environment):
    """A Jinja2 environment that counts how many times it compiles template source."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.templates_compiled = 0

    def compile(  # type: ignore[override]  # Jinja declares overloads; one signature suffices
        self,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        self.templates_compiled += 1
        return super().compile(source, name, filename, raw, defer_init)


class CountingBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's on-disk bytecode cache, counting the templates it supplies ready-compiled.

    Safe to share between processes: Jinja 3.1 writes each entry to a temporary file in the
    cache directory and renames it into place (`os.replace`), so a reader never sees a partial
    entry; an entry for an older template source fails its checksum and is recompiled; and an
    entry damaged some other way (a crash before the data reached the disk) counts as a miss.
    """

    def __init__(self, directory: Path) -> None:
        private_dir(directory)  # it loads marshalled code back: nobody else may write there
        super().__init__(str(directory), pattern="%s.jinja-bytecode")
        self.hits = 0

    def dump_bytecode(self, bucket: Bucket) -> None:
        # The cache only saves work: if the directory vanished (another process cleared the
        # caches) or the disk is full, the template was compiled anyway and rendering goes on.
        try:
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.warning("cannot write Jinja bytecode cache entry in %s: %s", self.directory, exc)

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (EOFError, ValueError, pickle.UnpicklingError):
            bucket.reset()  # Jinja catches these only around the code, not the checksum
        # A bucket whose source checksum does not match is reset to code=None: a miss.
        if bucket.code is not None:
            self.hits += 1


def hexlit(value: int, digits: int = 2) -> str:
    """`0x` and at least `digits` upper-case hex digits: `hexlit(33, 4)` -> `0x0021`."""
    return f"0x{value:0{digits}X}"


def make_environment(
    templates_dir: Path, mode: Mode, bytecode_dir: Path | None = None
) -> CountingEnvironment:
    """The Jinja2 environment for `mode`; `bytecode_dir` is required for `optimized`."""
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(str(templates_dir)),
        "undefined": jinja2.StrictUndefined,  # a typo in a template fails instead of vanishing
        "autoescape": False,  # the output is Python source, not HTML
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    if mode == "baseline":
        options["cache_size"] = 0
    else:
        if bytecode_dir is None:
            raise ValueError("the optimized mode needs a bytecode cache directory")
        options["bytecode_cache"] = CountingBytecodeCache(bytecode_dir)
    env = CountingEnvironment(**options)
    env.filters["hexlit"] = hexlit
    return env


def bytecode_hits(env: jinja2.Environment) -> int:
    """Templates that `env` loaded from its on-disk bytecode cache so far."""
    cache = env.bytecode_cache
    return cache.hits if isinstance(cache, CountingBytecodeCache) else 0


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TemplateGraph:
    """Which templates each template uses, found with `jinja2.meta.find_referenced_templates`.

    Parsing (unlike compiling) is cheap and never touches the caches, so the graph is rebuilt
    from the sources on every run; the hashes are what the incremental build keys on.
    """

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env
        self._sources: dict[str, str] = {}
        self._references: dict[str, tuple[str, ...]] = {}

    def _load(self, name: str) -> None:
        if name in self._sources:
            return
        loader = self._env.loader
        assert loader is not None  # make_environment always sets one
        source, _, _ = loader.get_source(self._env, name)
        self._sources[name] = source
        references = []
        for reference in meta.find_referenced_templates(self._env.parse(source, name)):
            if reference is None:
                # A name computed at render time hides a dependency from the incremental build.
                raise jinja2.TemplateError(f"{name}: templates may only import or include literals")
            references.append(reference)
        self._references[name] = tuple(sorted(set(references)))

    def closure(self, roots: Iterable[str]) -> dict[str, str]:
        """Every template reachable from `roots` (the roots included) -> sha256 of its source."""
        seen: dict[str, str] = {}
        pending = list(roots)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            self._load(name)
            seen[name] = sha256_text(self._sources[name])
            pending.extend(self._references[name])
        return dict(sorted(seen.items()))
