"""Task 8, code generation: parse -> generate -> compile -> validate -> write.

Each stage is one method of `CodegenEngine`. The stages talk through a run-private staging
area (`staging.py`) and return small typed results (`contracts.py`), so each can run as its
own Airflow task on any host: what one stage leaves, the next reads from object storage.
`write` publishes an immutable snapshot and switches the DAG's pointer to it (`snapshots.py`).

`baseline` mode is the old system: no template cache, every pattern rebuilt every time.
`optimized` mode keeps compiled templates in a worker-local bytecode cache (a cache only: a
cold worker compiles them again) and rebuilds only patterns whose build key (spec +
transitive templates + engine version) changed since the snapshot it builds on.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import jinja2

from k1n import settings, storage
from k1n.codegen import archive
from k1n.codegen.compiling import compile_tree, pattern_of
from k1n.codegen.contracts import (
    CompileResult,
    GenerateResult,
    ParseResult,
    Plan,
    QualityGates,
    ShardRecord,
    ValidateResult,
    ValidationRecord,
    WriteResult,
)
from k1n.codegen.errors import CodegenError, ValidationFailed
from k1n.codegen.kinds import KINDS
from k1n.codegen.library import PARSED_CACHE_DIR, Pattern, default_library_dir, load_library
from k1n.codegen.manifest import Manifest, compose_snapshot, pattern_key
from k1n.codegen.planning import build_plan
from k1n.codegen.rendering import (
    CountingEnvironment,
    Mode,
    TemplateGraph,
    bytecode_hits,
    make_environment,
)
from k1n.codegen.snapshots import CodegenStore
from k1n.codegen.staging import Staging
from k1n.codegen.validation import (
    judge_patterns,
    lint_findings,
    run_tests,
    summarise,
    unformatted,
)
from k1n.storage import StoragePath

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Bump when the engine changes its output for unchanged patterns and templates: every key moves.
ENGINE_VERSION = "k1n-codegen/2"
# The pycs are interpreter-specific and the rendering depends on Jinja2: both are in the key.
ENGINE_FINGERPRINT = (
    f"{ENGINE_VERSION} {sys.implementation.cache_tag} jinja2-{importlib.metadata.version('jinja2')}"
)
# A stage's staging area: a `Staging`, a storage path, a URL or a local folder.
StagingLike = Staging | StoragePath | str | Path


class CodegenEngine:
    """The five stages of Task 8 for one DAG's snapshot store; see the module docstring.

    `store` is the DAG's `CodegenStore` (or its root: a storage path, URL or local folder).
    `cache_dir` holds the worker-local Jinja2 bytecode cache of the optimized mode.
    """

    def __init__(
        self,
        store: CodegenStore | StoragePath | str | Path,
        *,
        mode: Mode = "optimized",
        library_dir: Path | str | None = None,
        templates_dir: Path | str = DEFAULT_TEMPLATES_DIR,
        cache_dir: Path | str | None = None,
    ) -> None:
        if mode not in get_args(Mode):
            raise CodegenError(f"unknown mode {mode!r}: expected baseline or optimized")
        self.store = store if isinstance(store, CodegenStore) else CodegenStore(store)
        self.mode: Mode = mode
        self._library_dir = Path(library_dir) if library_dir is not None else None
        self.templates_dir = Path(templates_dir)
        # No shared /tmp default: the cache holds code that is loaded back (see `private_dir`).
        self.cache_dir = Path(cache_dir) if cache_dir else settings.cache_dir()
        self._env: CountingEnvironment | None = None

    @property
    def library_dir(self) -> Path:
        """The pattern library; the default one is resolved (generated) on first use."""
        if self._library_dir is None:
            self._library_dir = default_library_dir()
        return self._library_dir

    @property
    def bytecode_dir(self) -> Path:
        return self.cache_dir / "jinja-bytecode"

    @property
    def parsed_cache_dir(self) -> Path | None:
        """Where parse keeps the library's parsed YAML: optimized mode only (the baseline
        reproduces the old system, which kept no caches)."""
        return self.cache_dir if self.mode == "optimized" else None

    def _engine_args(self) -> dict[str, Any]:
        return {
            "store": str(self.store.root),
            "mode": self.mode,
            "library_dir": str(self.library_dir),
            "templates_dir": str(self.templates_dir),
            "cache_dir": str(self.cache_dir),
        }

    def _environment(self) -> CountingEnvironment:
        """This engine's Jinja2 environment, created on first use (one per engine object)."""
        if self._env is None:
            if not self.templates_dir.is_dir():
                raise CodegenError(f"templates dir {self.templates_dir} is not a directory")
            self._env = make_environment(self.templates_dir, self.mode, self.bytecode_dir)
        return self._env

    def _template_hashes(self, kinds: Sequence[str]) -> dict[str, dict[str, str]]:
        """Per kind, every template it uses (transitively) -> sha256 of the template's source."""
        graph = TemplateGraph(self._environment())
        hashes = {}
        for kind in sorted(kinds):
            try:
                hashes[kind] = graph.closure(KINDS[kind].templates)
            except jinja2.TemplateNotFound as exc:
                raise CodegenError(
                    f"kind {kind}: template {exc.name} not found in {self.templates_dir}"
                ) from exc
            except jinja2.TemplateSyntaxError as exc:
                raise CodegenError(f"template {exc.name} line {exc.lineno}: {exc.message}") from exc
            except jinja2.TemplateError as exc:
                raise CodegenError(f"kind {kind}: {exc}") from exc
        return hashes

    @staticmethod
    def _staging(staging: StagingLike) -> Staging:
        if isinstance(staging, Staging):
            return staging
        return Staging(storage.open_root(staging) if isinstance(staging, str | Path) else staging)

    # -- stage 1: parse ------------------------------------------------------------------------

    def parse(self, staging: StagingLike) -> ParseResult:
        """Load and validate the library, key every pattern and decide what must be rebuilt.

        Resets `staging` and writes the plan there: which snapshot it builds on (the current
        one), and which patterns are dirty.
        """
        started = time.perf_counter()
        stage = self._staging(staging)
        stage.reset()
        # A claim before the pointer is read: retention keeps every snapshot while a run is
        # between reading the pointer and recording which snapshot it builds on.
        stage.write_claim()
        patterns = load_library(self.library_dir, self.parsed_cache_dir)
        template_hashes = self._template_hashes({p.kind for p in patterns.values()})
        keys = {
            name: pattern_key(pattern.spec(), template_hashes[pattern.kind], ENGINE_FINGERPRINT)
            for name, pattern in patterns.items()
        }
        base, manifest = self.store.current()
        plan = build_plan(
            patterns, keys, template_hashes, ENGINE_FINGERPRINT, self.mode, manifest, base
        )
        stage.write_plan(plan)
        dirty = sorted(plan.dirty)
        reasons = Counter(entry.reason for entry in plan.dirty.values())
        result = ParseResult(
            library_size=len(patterns),
            kinds=dict(sorted(Counter(p.kind for p in patterns.values()).items())),
            dirty=dirty,
            clean=len(patterns) - len(dirty),
            removed=plan.removed,
            dirty_reasons=dict(sorted(reasons.items())),
            base=base,
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info(
            "parse (%s): %d patterns, %d to rebuild %s, %d unchanged, %d removed; base %s; %.2f s",
            self.mode,
            len(patterns),
            len(dirty),
            result.dirty_reasons,
            result.clean,
            len(plan.removed),
            base or "none",
            result.seconds,
        )
        return result

    # -- stage 2: generate ---------------------------------------------------------------------

    def generate(self, staging: StagingLike, patterns: Sequence[str]) -> GenerateResult:
        """Render module and tests of each of `patterns` (all dirty in the plan) as one shard.

        Returns counters, among them `templates_compiled` (real Jinja compilations) and
        `templates_from_cache` (compiled templates loaded from the bytecode cache).
        """
        started = time.perf_counter()
        stage = self._staging(staging)
        plan = stage.plan()
        names = sorted(set(patterns))
        unplanned = [name for name in names if name not in plan.dirty]
        if unplanned:
            raise CodegenError(
                f"pattern(s) not dirty in this run's plan: {', '.join(unplanned[:5])}"
            )
        env = self._environment()
        kinds = sorted({plan.library[name].kind for name in names})
        current = self._template_hashes(kinds)
        for kind in kinds:
            if current[kind] != plan.templates[kind]:
                raise CodegenError(
                    f"templates of kind {kind} changed after parse: run the stages again from parse"
                )
        compiled_before, hits_before = env.templates_compiled, bytecode_hits(env)
        files: dict[str, bytes] = {}
        for name in names:
            pattern = Pattern.from_spec(plan.dirty[name].spec)
            kind = KINDS[pattern.kind]
            context = {
                "pattern": pattern,
                "p": pattern.params,
                **kind.build_context(pattern.params),
            }
            outputs = (
                (kind.module_template, f"{name}.py"),
                (kind.test_template, f"test_{name}.py"),
            )
            for template_name, filename in outputs:
                try:
                    text = env.get_template(template_name).render(context)
                except jinja2.TemplateSyntaxError as exc:
                    raise CodegenError(
                        f"pattern {name}: template {exc.name} line {exc.lineno}: {exc.message}"
                    ) from exc
                except jinja2.TemplateError as exc:
                    raise CodegenError(f"pattern {name}: template {template_name}: {exc}") from exc
                files[f"{pattern.kind}/{filename}"] = text.encode("utf-8")
        stats = GenerateResult(
            patterns=len(names),
            files=len(files),
            templates_compiled=env.templates_compiled - compiled_before,
            templates_from_cache=bytecode_hits(env) - hits_before,
            seconds=round(time.perf_counter() - started, 3),
        )
        if names:
            record = ShardRecord(
                **stats.model_dump(), names=names, digest=Staging.shard_digest(names)
            )
            stage.write_shard(files, record)
        log.info(
            "generate: %d patterns, %d files; templates compiled %d, from cache %d; %.2f s",
            stats.patterns,
            stats.files,
            stats.templates_compiled,
            stats.templates_from_cache,
            stats.seconds,
        )
        return stats

    def planned(self, staging: StagingLike) -> Plan:
        """The plan parse left in `staging`: which patterns it regenerates (maybe none)."""
        return self._staging(staging).plan()

    # -- stage 3: compile ----------------------------------------------------------------------

    def compile(self, staging: StagingLike, workers: int = 1) -> CompileResult:
        """Byte-compile every generated source into a checked-hash pyc (reproducible).

        Checks first that every shard of the plan ran generate. `workers > 1` compiles in that
        many processes. A syntax error fails the stage with `ValidationFailed` naming pattern,
        file and line.
        """
        started = time.perf_counter()
        stage = self._staging(staging)
        plan = stage.plan()
        shards = stage.shard_records()
        generated = {name for shard in shards for name in shard.names}
        missing = sorted(set(plan.dirty) - generated)
        if missing:
            raise CodegenError(
                f"{len(missing)} planned pattern(s) were not generated, "
                f"e.g. {', '.join(missing[:3])}: every shard must run generate"
            )
        with tempfile.TemporaryDirectory(prefix="k1n-compile-") as scratch:
            root = Path(scratch)
            for shard in shards:
                archive.write_tree(stage.shard_files(shard), root)
            sources = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.py"))
            hashes, problems = compile_tree(root, sources, workers)
            if problems:
                failures = {name: ["compiles"] for name in problems}
                raise ValidationFailed(
                    f"compile failed: {summarise(failures, problems)}; nothing was published",
                    failures,
                )
            names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            stage.write_compiled(archive.read_tree(root, names), hashes)
        result = CompileResult(
            files=len(hashes),
            patterns=len({pattern_of(relative) for relative in hashes}),
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info("compile: %d files, %.2f s", result.files, result.seconds)
        return result

    # -- stage 4: validate ---------------------------------------------------------------------

    def validate(self, staging: StagingLike, workers: int = 1) -> ValidateResult:
        """Check every dirty pattern: it compiled, it imports, its tests pass, ruff is silent.

        Runs the generated tests in `workers` separate interpreters. On any failure, records
        the details and raises `ValidationFailed` naming the patterns and checks. Quality gates
        cover the whole library: a clean pattern counts with its recorded results.
        """
        started = time.perf_counter()
        stage = self._staging(staging)
        plan = stage.plan()
        record = stage.compile_record("run compile before validate")
        files = stage.compiled_files(record)
        names = sorted(plan.dirty)
        compiled_patterns = {pattern_of(relative) for relative in record.sources}
        if compiled_patterns != set(names):
            raise CodegenError("the compiled patterns are not this plan's: run compile again")
        with tempfile.TemporaryDirectory(prefix="k1n-validate-") as scratch:
            root = Path(scratch)
            archive.write_tree(files, root)
            kinds = {name: plan.library[name].kind for name in names}
            runs = run_tests(root, [(name, kinds[name]) for name in names], workers)
            lint = lint_findings(root) if names else {}
            unformatted_files = unformatted(root) if names else {}

        results, failures, problems = judge_patterns(names, runs, lint, unformatted_files)
        stage.write_validation(ValidationRecord(passed=not failures, patterns=results))
        if failures:
            raise ValidationFailed(
                f"validation failed: {summarise(failures, problems)}; nothing was published",
                failures,
            )
        checked = {**plan.recorded, **results}  # a clean pattern as its base recorded it
        passed = sum(name in checked and checked[name].passed for name in plan.library)
        gates = QualityGates(passed=passed, total=len(plan.library))
        tests_run = sum(run.tests_total for run in runs.values())
        log.info(
            "validate: %d patterns, %d tests passed, lint and format clean; gates %d/%d; %.2f s",
            len(names),
            tests_run,
            gates.passed,
            gates.total,
            time.perf_counter() - started,
        )
        return ValidateResult(
            validated=len(names),
            tests_run=tests_run,
            tests_passed=sum(run.tests_passed for run in runs.values()),
            patterns={
                name: {**result.checks, "tests": f"{result.tests.passed}/{result.tests.total}"}
                for name, result in results.items()
                if result.tests is not None
            },
            quality_gates=gates,
            seconds=round(time.perf_counter() - started, 3),
        )

    # -- stage 5: write ------------------------------------------------------------------------

    def write(self, staging: StagingLike) -> WriteResult:
        """Publish the library's code as one snapshot and point the DAG's store at it.

        The snapshot is the plan's base with the validated patterns replaced and the patterns
        that left the library removed; when nothing changed, the base itself is the result and
        nothing is written. With no pattern to rebuild it needs no compile or validate first.
        Either the whole snapshot is published or nothing is (see `CodegenStore.publish`).
        """
        started = time.perf_counter()
        stage = self._staging(staging)
        plan = stage.plan()
        dirty = sorted(plan.dirty)
        # With nothing to rebuild there is nothing to validate (the optimized DAG's publish
        # task then runs neither compile nor validate).
        validation = (
            stage.validation("validation has not run for this staging: nothing published")
            if dirty
            else ValidationRecord(passed=True, patterns={})
        )
        if not validation.passed or set(validation.patterns) != set(dirty):
            raise CodegenError(f"staging {stage.root} did not pass validation: nothing published")
        base = self.store.manifest(plan.base) if plan.base else Manifest()
        if plan.base and not dirty and not plan.removed:
            snapshot_id, manifest, changed_files = plan.base, base, 0
        else:
            manifest, files, changed_files = self._next_snapshot(stage, plan, validation, base)
            snapshot_id, data = self.store.prepare(files, manifest)
            # Recorded before it is uploaded: retention keeps what a running run refers to.
            stage.write_published(snapshot_id)
            self.store.publish(snapshot_id, data, manifest)
        shards = stage.shard_records()
        result = WriteResult(
            library_size=len(plan.library),
            regenerated=len(dirty),
            unchanged=len(plan.library) - len(dirty),
            removed_patterns=len(plan.removed),
            published_files=changed_files,
            templates_compiled=sum(shard.templates_compiled for shard in shards),
            templates_from_cache=sum(shard.templates_from_cache for shard in shards),
            snapshot=snapshot_id,
            base_snapshot=plan.base,
            store=str(self.store.root),
            quality_gates=QualityGates(
                passed=manifest.passing(plan.library), total=len(plan.library)
            ),
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info(
            "write: snapshot %s (%s), %d files changed; gates %d/%d; %.2f s",
            snapshot_id,
            "unchanged" if snapshot_id == plan.base else f"new, base {plan.base or 'none'}",
            changed_files,
            result.quality_gates.passed,
            result.quality_gates.total,
            result.seconds,
        )
        return result

    def _next_snapshot(
        self,
        stage: Staging,
        plan: Plan,
        validation: ValidationRecord,
        base: Manifest,
    ) -> tuple[Manifest, dict[str, bytes], int]:
        """The manifest and files of the snapshot this run publishes, and how many changed."""
        compiled = (
            stage.compiled_files(stage.compile_record("run compile before write"))
            if plan.dirty
            else {}
        )
        clean = [name for name in plan.library if name not in plan.dirty]
        base_files = self.store.files(plan.base, base) if clean and plan.base else {}
        manifest, files = compose_snapshot(
            plan, validation, ENGINE_FINGERPRINT, base, {**base_files, **compiled}
        )
        previous = base.files
        changed = sum(1 for name, digest in manifest.files.items() if previous.get(name) != digest)
        return manifest, files, changed

    # -- maintenance ---------------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Remove the published snapshots, the bytecode cache and the parsed library: the next
        run starts cold."""
        self.store.clear()
        shutil.rmtree(self.bytecode_dir, ignore_errors=True)
        shutil.rmtree(self.cache_dir / PARSED_CACHE_DIR, ignore_errors=True)
        self._env = None
