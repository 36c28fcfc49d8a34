"""Task 8, code generation: parse -> generate -> compile -> validate -> write.

Each stage is one method of `CodegenEngine`. Stages talk through a run-private *staging
directory* on disk and return small JSON-able dicts, so each can run in its own process (an
Airflow task, a pool worker) and only the dicts travel between them::

    staging/
      plan.json                   parse: the library, each pattern's build key, what is dirty
      generated/<kind>/<name>.py  generate: module and tests per dirty pattern
      generated/<kind>/__pycache__/...pyc   compile: checked-hash pycs
      stats/generate-*.json, compile.json, validate.json   per-stage records

State that outlives a run lives in the *state directory*, shared by every run of one DAG::

    state/
      .lock                       flock: exclusive to publish or clear, shared to read
      jinja-bytecode/             Jinja2 FileSystemBytecodeCache (optimized mode only)
      manifest.json               content-hash manifest (see manifest.py)
      output/<kind>/...           the published code, pycs included
      staging/                    staging dirs of `run()` calls that were not given one

`baseline` mode is the old system: no template cache, every pattern rebuilt every time.
`optimized` mode caches compiled templates on disk and rebuilds only patterns whose build key
(spec + transitive templates + engine version) or published files changed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import json
import logging
import multiprocessing
import py_compile
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, get_args

import jinja2

from include.k1n.codegen.errors import CodegenError, ValidationFailed
from include.k1n.codegen.kinds import KINDS
from include.k1n.codegen.library import DEFAULT_LIBRARY_DIR, Pattern, load_library
from include.k1n.codegen.manifest import Manifest, pattern_key, stale_reason
from include.k1n.codegen.rendering import (
    CountingEnvironment,
    Mode,
    TemplateGraph,
    bytecode_hits,
    make_environment,
)
from include.k1n.codegen.storage import (
    read_json,
    remove_temp_debris,
    sha256_bytes,
    sha256_file,
    state_lock,
    write_bytes_atomic,
    write_json_atomic,
)

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
RUNNER = Path(__file__).resolve().parent / "_runner.py"

# Bump when the engine changes its output for unchanged patterns and templates: every key moves.
ENGINE_VERSION = "k1n-codegen/1"
# The pycs are interpreter-specific and the rendering depends on Jinja2: both are in the key.
ENGINE_FINGERPRINT = (
    f"{ENGINE_VERSION} {sys.implementation.cache_tag} jinja2-{importlib.metadata.version('jinja2')}"
)

CHECKS = ("compiles", "imports", "tests", "lint", "format")
# The linter gate on generated code; `checks.run_static_analysis` applies a broader set later.
LINT_RULES = "E,F,W,B,I"
LINE_LENGTH = "100"
TARGET_VERSION = "py311"
RUNNER_TIMEOUT_SECONDS = 1800
DEFAULT_MIN_PER_SHARD = 16
MAX_PROBLEMS_SHOWN = 3

PLAN_FILE = "plan.json"
GENERATED_DIR = "generated"
STATS_DIR = "stats"
STAGING_ENTRIES = (PLAN_FILE, GENERATED_DIR, STATS_DIR)


def plan_shards(
    patterns: Sequence[str], max_shards: int = 4, min_per_shard: int = DEFAULT_MIN_PER_SHARD
) -> list[dict[str, Any]]:
    """Cut `patterns` into at most `max_shards` contiguous, sorted, near-equal shards.

    A shard gets at least `min_per_shard` patterns (unless there are fewer in total), because
    below that a separate task or process costs more than it saves. No patterns, no shards.
    Each shard is `{"index": i, "name": "shard 1/4: crc_000..crc_059 (60 patterns)",
    "patterns": [...]}`.
    """
    if max_shards < 1 or min_per_shard < 1:
        raise ValueError("max_shards and min_per_shard must be at least 1")
    names = sorted(set(patterns))
    if not names:
        return []
    count = max(1, min(max_shards, len(names) // min_per_shard))
    size, extra = divmod(len(names), count)
    shards = []
    start = 0
    for index in range(count):
        chunk = names[start : start + size + (1 if index < extra else 0)]
        start += len(chunk)
        shards.append(
            {
                "index": index,
                "name": f"shard {index + 1}/{count}: {chunk[0]}..{chunk[-1]} "
                f"({len(chunk)} patterns)",
                "patterns": chunk,
            }
        )
    return shards


def find_ruff() -> str:
    """The ruff executable: the one the `ruff` package ships, else the first on PATH."""
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found is None:
            raise CodegenError("ruff is not installed: validation needs it") from None
        return found


def _pattern_of(relative: str) -> str:
    """`crc/test_crc_000.py` or `crc/__pycache__/crc_000.cpython-311.pyc` -> `crc_000`."""
    stem = Path(relative).name.split(".", 1)[0]
    return stem.removeprefix("test_")


def _output_files(kind: str, name: str) -> list[str]:
    """What one pattern publishes, relative to the output dir, sorted."""
    tag = sys.implementation.cache_tag
    return sorted(
        [
            f"{kind}/{name}.py",
            f"{kind}/test_{name}.py",
            f"{kind}/__pycache__/{name}.{tag}.pyc",
            f"{kind}/__pycache__/test_{name}.{tag}.pyc",
        ]
    )


def _summarise(failures: dict[str, list[str]], problems: dict[str, list[str]]) -> str:
    shown = []
    for name in sorted(failures)[:MAX_PROBLEMS_SHOWN]:
        first = problems.get(name, [""])[0]
        shown.append(
            f"pattern {name} failed {', '.join(failures[name])}" + (f" ({first})" if first else "")
        )
    more = len(failures) - len(shown)
    return "; ".join(shown) + (f"; and {more} more pattern(s)" if more else "")


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` dealt round-robin into at most `parts` non-empty batches (similar work each)."""
    batches = [items[index :: max(1, parts)] for index in range(max(1, parts))]
    return [batch for batch in batches if batch]


@contextlib.contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of the `with` block as `seconds[stage]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = round(time.perf_counter() - started, 3)


def _recorded_pass(recorded: dict[str, Any] | None) -> bool:
    """Whether a clean pattern passed every check when it was last validated."""
    return bool(recorded) and all(recorded["checks"].values())


def _compile_sources(
    generated: str, relatives: list[str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Compile staged files to pycs; return (sha256 per source file, problems per pattern)."""
    hashes: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for relative in relatives:
        path = Path(generated) / relative
        try:
            py_compile.compile(
                str(path),
                # The file name recorded in the code: relative, so the pyc does not depend on
                # where staging was (on import, Python swaps in the real path anyway).
                dfile=relative,
                doraise=True,
                optimize=0,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        except py_compile.PyCompileError as exc:
            error = exc.exc_value
            line = getattr(error, "lineno", None)
            message = getattr(error, "msg", None) or str(error)
            problems.setdefault(_pattern_of(relative), []).append(
                f"{relative} line {line}: {message}"
            )
            continue
        hashes[relative] = sha256_file(path)
    return hashes, problems


def _process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool that starts fast where that is safe.

    Forking copies the parent's imports, so workers start in milliseconds; but forking a
    process with other threads (an Airflow worker, say) can copy a lock some thread holds and
    deadlock the child. So: fork when this process has one thread, spawn otherwise.
    """
    method = "fork" if threading.active_count() == 1 else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method)
    )


def _generate_in_worker(
    engine_args: dict[str, Any], staging_dir: str, patterns: list[str]
) -> dict[str, Any]:
    """Pool entry point: a fresh engine in the worker process renders one shard."""
    engine = CodegenEngine(**engine_args)
    return engine.generate(Path(staging_dir), patterns)


class CodegenEngine:
    """The five stages of Task 8 over one state directory; see the module docstring."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        mode: Mode = "optimized",
        library_dir: Path | str = DEFAULT_LIBRARY_DIR,
        templates_dir: Path | str = DEFAULT_TEMPLATES_DIR,
    ) -> None:
        if mode not in get_args(Mode):
            raise CodegenError(f"unknown mode {mode!r}: expected baseline or optimized")
        self.state_dir = Path(state_dir)
        self.mode: Mode = mode
        self.library_dir = Path(library_dir)
        self.templates_dir = Path(templates_dir)
        self._env: CountingEnvironment | None = None

    # -- where things are --------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        return self.state_dir / "output"

    @property
    def manifest_path(self) -> Path:
        return self.state_dir / "manifest.json"

    @property
    def bytecode_dir(self) -> Path:
        return self.state_dir / "jinja-bytecode"

    def _engine_args(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "mode": self.mode,
            "library_dir": str(self.library_dir),
            "templates_dir": str(self.templates_dir),
        }

    def _prepare_state_dir(self) -> None:
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise CodegenError(f"state dir {self.state_dir} exists and is not a directory")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CodegenError(f"cannot create state dir {self.state_dir}: {exc.strerror}") from exc

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

    # -- staging ---------------------------------------------------------------------------------

    @staticmethod
    def _read_plan(staging_dir: Path) -> dict[str, Any]:
        try:
            return read_json(staging_dir / PLAN_FILE)
        except FileNotFoundError:
            raise CodegenError(
                f"no {PLAN_FILE} in staging dir {staging_dir}: run parse first"
            ) from None

    @staticmethod
    def _read_stats(staging_dir: Path, name: str, missing: str) -> dict[str, Any]:
        try:
            return read_json(staging_dir / STATS_DIR / name)
        except FileNotFoundError:
            raise CodegenError(
                f"{missing} (no {STATS_DIR}/{name} in staging dir {staging_dir})"
            ) from None

    @staticmethod
    def _staged_patterns(staging_dir: Path) -> dict[str, str]:
        """Pattern name -> kind, for every module in the staging dir."""
        generated = staging_dir / GENERATED_DIR
        if not generated.is_dir():
            return {}
        return {
            path.stem: path.parent.name
            for path in sorted(generated.glob("*/*.py"))
            if not path.name.startswith("test_")
        }

    # -- stage 1: parse ------------------------------------------------------------------------

    def parse(self, staging_dir: Path | str) -> dict[str, Any]:
        """Load and validate the library, key every pattern and decide what must be rebuilt.

        Resets the engine's entries in `staging_dir` and writes `plan.json` there. Returns
        `{"library_size", "dirty": [names], "clean", "dirty_reasons": {reason: count}, ...}`.
        """
        started = time.perf_counter()
        staging_dir = Path(staging_dir)
        self._prepare_state_dir()
        patterns = load_library(self.library_dir)
        template_hashes = self._template_hashes({p.kind for p in patterns.values()})
        keys = {
            name: pattern_key(pattern.spec(), template_hashes[pattern.kind], ENGINE_FINGERPRINT)
            for name, pattern in patterns.items()
        }
        reasons: dict[str, str] = {}
        recorded: dict[str, dict[str, Any]] = {}
        # Shared lock: a consistent manifest-and-outputs view while no writer is publishing.
        with state_lock(self.state_dir, shared=True):
            manifest = Manifest.load(self.manifest_path)
            for name in patterns:
                entry = manifest.patterns.get(name)
                if self.mode == "baseline":
                    reasons[name] = "full rebuild"
                elif reason := stale_reason(entry, keys[name], self.output_dir):
                    reasons[name] = reason
                else:
                    assert entry is not None  # stale_reason returns "new" for a missing entry
                    recorded[name] = {"checks": entry["checks"], "tests": entry.get("tests")}

        for entry_name in STAGING_ENTRIES:  # only our own entries: the dir may hold other things
            path = staging_dir / entry_name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        staging_dir.mkdir(parents=True, exist_ok=True)
        dirty = sorted(reasons)
        plan = {
            "engine": ENGINE_FINGERPRINT,
            "mode": self.mode,
            "library": {name: {"kind": p.kind, "key": keys[name]} for name, p in patterns.items()},
            "templates": template_hashes,
            "dirty": {
                name: {"reason": reasons[name], "spec": patterns[name].spec()} for name in dirty
            },
            "recorded": recorded,
        }
        write_json_atomic(staging_dir / PLAN_FILE, plan, readable=False)
        kinds = Counter(p.kind for p in patterns.values())
        result = {
            "library_size": len(patterns),
            "kinds": dict(sorted(kinds.items())),
            "dirty": dirty,
            "clean": len(patterns) - len(dirty),
            "dirty_reasons": dict(sorted(Counter(reasons.values()).items())),
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info(
            "parse (%s): %d patterns, %d to rebuild %s, %d unchanged, %.2f s",
            self.mode,
            len(patterns),
            len(dirty),
            result["dirty_reasons"],
            result["clean"],
            result["seconds"],
        )
        return result

    # -- stage 2: generate ---------------------------------------------------------------------

    def generate(self, staging_dir: Path | str, patterns: Sequence[str]) -> dict[str, Any]:
        """Render module and tests of each of `patterns` (all dirty in the plan) into staging.

        Returns counters, among them `templates_compiled` (real Jinja compilations) and
        `templates_from_cache` (compiled templates loaded from the on-disk bytecode cache).
        """
        started = time.perf_counter()
        staging_dir = Path(staging_dir)
        plan = self._read_plan(staging_dir)
        names = sorted(set(patterns))
        unplanned = [name for name in names if name not in plan["dirty"]]
        if unplanned:
            raise CodegenError(
                f"pattern(s) not dirty in this run's plan: {', '.join(unplanned[:5])}"
            )
        env = self._environment()
        kinds = sorted({plan["library"][name]["kind"] for name in names})
        current = self._template_hashes(kinds)
        for kind in kinds:
            if current[kind] != plan["templates"][kind]:
                raise CodegenError(
                    f"templates of kind {kind} changed after parse: run the stages again from parse"
                )
        compiled_before, hits_before = env.templates_compiled, bytecode_hits(env)
        generated = staging_dir / GENERATED_DIR
        rendered = 0
        for name in names:
            pattern = Pattern.from_spec(plan["dirty"][name]["spec"])
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
                # A plain write: staging is private to this run, and a generate task that dies
                # half way fails the run or is retried, rewriting every file of its shard.
                target = generated / pattern.kind / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                rendered += 1
        stats = {
            "patterns": len(names),
            "files": rendered,
            "templates_compiled": env.templates_compiled - compiled_before,
            "templates_from_cache": bytecode_hits(env) - hits_before,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if names:
            # One record per shard (named by its content, so a retried shard overwrites its own).
            digest = sha256_bytes("\n".join(names).encode("utf-8"))[:16]
            write_json_atomic(staging_dir / STATS_DIR / f"generate-{digest}.json", stats)
        log.info(
            "generate: %d patterns, %d files; templates compiled %d, from cache %d; %.2f s",
            stats["patterns"],
            stats["files"],
            stats["templates_compiled"],
            stats["templates_from_cache"],
            stats["seconds"],
        )
        return stats

    # -- stage 3: compile ----------------------------------------------------------------------

    def compile(self, staging_dir: Path | str, workers: int = 1) -> dict[str, Any]:
        """Byte-compile every staged `.py` into a checked-hash pyc (reproducible, mtime-free).

        `workers > 1` compiles in that many processes. A syntax error fails the stage with
        `ValidationFailed` naming pattern, file and line.
        """
        started = time.perf_counter()
        staging_dir = Path(staging_dir)
        self._read_plan(staging_dir)  # fail early outside a parsed staging dir
        generated = staging_dir / GENERATED_DIR
        sources = (
            [path.relative_to(generated).as_posix() for path in sorted(generated.glob("*/*.py"))]
            if generated.is_dir()
            else []
        )
        batches = _split(sources, workers)
        if len(batches) > 1:
            with _process_pool(len(batches)) as pool:
                outcomes = list(
                    pool.map(_compile_sources, [str(generated)] * len(batches), batches)
                )
        else:
            outcomes = [_compile_sources(str(generated), batch) for batch in batches]
        hashes: dict[str, str] = {}
        problems: dict[str, list[str]] = {}
        for batch_hashes, batch_problems in outcomes:
            hashes.update(batch_hashes)
            for name, found in batch_problems.items():
                problems.setdefault(name, []).extend(found)
        if problems:
            failures = {name: ["compiles"] for name in problems}
            raise ValidationFailed(
                f"compile failed: {_summarise(failures, problems)}; nothing was published", failures
            )
        write_json_atomic(
            staging_dir / STATS_DIR / "compile.json", {"sources": dict(sorted(hashes.items()))}
        )
        result = {
            "files": len(hashes),
            "patterns": len({_pattern_of(relative) for relative in hashes}),
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info("compile: %d files, %.2f s", result["files"], result["seconds"])
        return result

    # -- stage 4: validate ---------------------------------------------------------------------

    def validate(self, staging_dir: Path | str, workers: int = 1) -> dict[str, Any]:
        """Check every staged pattern: it compiled, it imports, its tests pass, ruff is silent.

        Runs the generated tests in `workers` separate interpreters. On any failure, records
        the details in `stats/validate.json` and raises `ValidationFailed` naming the patterns
        and checks. Quality gates cover the whole library: a clean pattern counts with the
        results recorded when it was published.
        """
        started = time.perf_counter()
        staging_dir = Path(staging_dir)
        plan = self._read_plan(staging_dir)
        compiled = self._read_stats(staging_dir, "compile.json", "run compile before validate")
        staged = self._staged_patterns(staging_dir)
        self._check_staging_complete(staging_dir, plan, staged, compiled["sources"])
        generated = staging_dir / GENERATED_DIR
        names = sorted(plan["dirty"])
        runs = self._run_tests(generated, [(name, staged[name]) for name in names], workers)
        lint = self._ruff_findings(generated) if names else {}
        unformatted = self._ruff_unformatted(generated) if names else {}

        results: dict[str, dict[str, Any]] = {}
        failures: dict[str, list[str]] = {}
        problems: dict[str, list[str]] = {}
        for name in names:
            run = runs[name]
            tests_pass = 0 < run["tests_passed"] == run["tests_total"]
            checks = {
                "compiles": True,  # compile raised otherwise
                "imports": run["imports"],
                "tests": run["imports"] and tests_pass,
                "lint": name not in lint,
                "format": name not in unformatted,
            }
            results[name] = {
                "checks": checks,
                "tests": {"passed": run["tests_passed"], "total": run["tests_total"]},
            }
            found = run["problems"] + lint.get(name, []) + unformatted.get(name, [])
            if found:
                results[name]["problems"] = found
            failed = [check for check in CHECKS if not checks[check]]
            if failed:
                failures[name] = failed
                problems[name] = found
        passed = sum(
            all(results[name]["checks"].values())
            if name in results
            else _recorded_pass(plan["recorded"].get(name))
            for name in plan["library"]
        )
        record = {"passed": not failures, "patterns": results}
        write_json_atomic(staging_dir / STATS_DIR / "validate.json", record)
        if failures:
            raise ValidationFailed(
                f"validation failed: {_summarise(failures, problems)}; nothing was published",
                failures,
            )
        gates = {"passed": passed, "total": len(plan["library"])}
        tests_run = sum(run["tests_total"] for run in runs.values())
        log.info(
            "validate: %d patterns, %d tests passed, lint and format clean; gates %d/%d; %.2f s",
            len(names),
            tests_run,
            gates["passed"],
            gates["total"],
            time.perf_counter() - started,
        )
        return {
            "validated": len(names),
            "tests_run": tests_run,
            "tests_passed": sum(run["tests_passed"] for run in runs.values()),
            "patterns": {
                name: {
                    **result["checks"],
                    "tests": f"{result['tests']['passed']}/{result['tests']['total']}",
                }
                for name, result in results.items()
            },
            "quality_gates": gates,
            "seconds": round(time.perf_counter() - started, 3),
        }

    @staticmethod
    def _check_staging_complete(
        staging_dir: Path, plan: dict[str, Any], staged: dict[str, str], compiled: dict[str, str]
    ) -> None:
        """Raise unless staging holds exactly the plan's dirty patterns, compiled as they are.

        In Airflow the stages are separate tasks: this catches a shard that never ran and a
        file changed after compile, which would otherwise be validated or published unseen.
        """
        missing = sorted(set(plan["dirty"]) - set(staged))
        if missing:
            raise CodegenError(
                f"{len(missing)} planned pattern(s) were not generated, "
                f"e.g. {', '.join(missing[:3])}: every shard must run generate"
            )
        unplanned = sorted(set(staged) - set(plan["dirty"]))
        if unplanned:
            raise CodegenError(
                f"staging holds pattern(s) not in its plan: {', '.join(unplanned[:3])}"
            )
        generated = staging_dir / GENERATED_DIR
        sources = {path.relative_to(generated).as_posix() for path in generated.glob("*/*.py")}
        if sources != set(compiled) or any(
            sha256_file(generated / relative) != digest for relative, digest in compiled.items()
        ):
            raise CodegenError("staged files changed after compile: run compile again")

    def _run_tests(
        self, generated: Path, patterns: list[tuple[str, str]], workers: int
    ) -> dict[str, dict[str, Any]]:
        """Import each pattern's module and run its tests in `workers` runner processes."""
        batches = _split(patterns, workers)
        if not batches:
            return {}
        with tempfile.TemporaryDirectory(prefix="k1n-validate-") as scratch:
            started = []
            for index, batch in enumerate(batches):
                job, result, errors = (
                    Path(scratch) / f"{what}-{index}" for what in ("job", "result", "stderr")
                )
                job.write_text(json.dumps({"root": str(generated), "patterns": batch}))
                argv = [sys.executable, "-I", "-B", str(RUNNER), str(job), str(result)]
                # Output goes to files, not pipes: a chatty module cannot block on a full pipe.
                with errors.open("w") as stderr:
                    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
                started.append((process, result, errors))
            results: dict[str, dict[str, Any]] = {}
            for process, result, errors in started:
                try:
                    process.wait(timeout=RUNNER_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    for other, _, _ in started:
                        other.kill()
                        other.wait()
                    raise CodegenError(
                        f"generated tests did not finish within {RUNNER_TIMEOUT_SECONDS} s"
                    ) from None
                if process.returncode != 0:
                    tail = " | ".join(errors.read_text().strip().splitlines()[-3:])
                    raise CodegenError(f"test runner exited with {process.returncode}: {tail}")
                results.update(read_json(result))
        return results

    def _ruff(self, generated: Path, arguments: list[str]) -> subprocess.CompletedProcess[str]:
        # --isolated: the project's own ruff settings must not decide what generated code is;
        # --no-cache: no .ruff_cache in staging (it would end up looking like output).
        argv = [
            find_ruff(),
            *arguments,
            "--isolated",
            "--no-cache",
            "--line-length",
            LINE_LENGTH,
            "--target-version",
            TARGET_VERSION,
            ".",
        ]
        completed = subprocess.run(argv, cwd=generated, capture_output=True, text=True, check=False)
        if completed.returncode not in (0, 1):
            tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
            raise CodegenError(
                f"ruff {arguments[0]} failed with exit code {completed.returncode}: {tail}"
            )
        return completed

    def _ruff_findings(self, generated: Path) -> dict[str, list[str]]:
        """Lint findings per pattern, as `file:line: CODE message`."""
        return self._ruff_json(generated, ["check", "--select", LINT_RULES, "--exit-zero"])

    def _ruff_unformatted(self, generated: Path) -> dict[str, list[str]]:
        """Files `ruff format` would change, per pattern."""
        return self._ruff_json(generated, ["format", "--check"])

    def _ruff_json(self, generated: Path, arguments: list[str]) -> dict[str, list[str]]:
        completed = self._ruff(generated, [*arguments, "--output-format", "json"])
        findings: dict[str, list[str]] = {}
        for finding in json.loads(completed.stdout or "[]"):
            path = Path(finding["filename"]).resolve().relative_to(generated.resolve())
            findings.setdefault(_pattern_of(path.as_posix()), []).append(
                f"{path.as_posix()}:{finding['location']['row']}: "
                f"{finding['code'] or 'syntax'} {finding['message']}"
            )
        return findings

    # -- stage 5: write ------------------------------------------------------------------------

    def write(self, staging_dir: Path | str) -> dict[str, Any]:
        """Publish the validated patterns into `output/` and update the manifest, under the lock.

        Each file is written to a temporary name and renamed over its target, so a reader never
        sees a partial file (while a write is under way it may see some patterns new and some
        still old; the manifest changes last). The exclusive lock keeps concurrent runs from
        interleaving their updates. Patterns that left the library are removed.

        Files are not fsynced one by one: after a crash, a lost write shows up as a hash that
        does not match the manifest, which makes the pattern dirty and the next run rebuilds it.
        """
        started = time.perf_counter()
        staging_dir = Path(staging_dir)
        plan = self._read_plan(staging_dir)
        validation = self._read_stats(
            staging_dir,
            "validate.json",
            "validation has not run for this staging dir: nothing published",
        )
        dirty = plan["dirty"]
        if not validation["passed"] or set(validation["patterns"]) != set(dirty):
            raise CodegenError(
                f"staging dir {staging_dir} did not pass validation: nothing published"
            )
        generated = staging_dir / GENERATED_DIR
        staged = {}
        for name in sorted(dirty):
            kind = plan["library"][name]["kind"]
            files = {}
            for relative in _output_files(kind, name):
                try:
                    files[relative] = (generated / relative).read_bytes()
                except FileNotFoundError:
                    raise CodegenError(f"pattern {name}: {relative} missing from staging") from None
            staged[name] = files

        published = unchanged = removed = 0
        self._prepare_state_dir()
        with state_lock(self.state_dir):
            if self.output_dir.is_dir():
                remove_temp_debris(self.output_dir)
            manifest = Manifest.load(self.manifest_path)
            for name, files in staged.items():
                digests = {relative: sha256_bytes(data) for relative, data in files.items()}
                for relative, data in files.items():
                    target = self.output_dir / relative
                    if target.is_file() and sha256_file(target) == digests[relative]:
                        unchanged += 1
                        continue
                    write_bytes_atomic(target, data)
                    published += 1
                old = manifest.patterns.get(name, {})
                for relative in sorted(set(old.get("files", {})) - set(files)):
                    (self.output_dir / relative).unlink(missing_ok=True)
                    removed += 1
                result = validation["patterns"][name]
                manifest.patterns[name] = {
                    "kind": plan["library"][name]["kind"],
                    "key": plan["library"][name]["key"],
                    "files": digests,
                    "checks": result["checks"],
                    "tests": result["tests"],
                }
            for name in sorted(set(manifest.patterns) - set(plan["library"])):
                for relative in manifest.patterns.pop(name).get("files", {}):
                    (self.output_dir / relative).unlink(missing_ok=True)
                    removed += 1
            manifest.engine = ENGINE_FINGERPRINT
            manifest.patterns = dict(sorted(manifest.patterns.items()))
            manifest.save(self.manifest_path)
            # Gates from what is published now: a clean pattern whose entry another run replaced
            # (a different library version) no longer counts as this run's output.
            passed = sum(
                1
                for name, info in plan["library"].items()
                if (entry := manifest.patterns.get(name))
                and entry["key"] == info["key"]
                and all(entry["checks"].values())
            )
        log.info(
            "write: %d files published, %d identical, %d removed; gates %d/%d; %.2f s",
            published,
            unchanged,
            removed,
            passed,
            len(plan["library"]),
            time.perf_counter() - started,
        )
        generate_stats = [
            read_json(path) for path in sorted((staging_dir / STATS_DIR).glob("generate-*.json"))
        ]
        return {
            "library_size": len(plan["library"]),
            "regenerated": len(dirty),
            "unchanged": len(plan["library"]) - len(dirty),
            "published_files": published,
            "identical_files": unchanged,
            "removed_files": removed,
            "templates_compiled": sum(stats["templates_compiled"] for stats in generate_stats),
            "templates_from_cache": sum(stats["templates_from_cache"] for stats in generate_stats),
            "output_dir": str(self.output_dir),
            "quality_gates": {"passed": passed, "total": len(plan["library"])},
            "seconds": round(time.perf_counter() - started, 3),
        }

    # -- all five ----------------------------------------------------------------------------

    def run(self, staging_dir: Path | str | None = None, workers: int = 1) -> dict[str, Any]:
        """Parse, generate, compile, validate and write in one call; return a summary.

        `workers > 1` renders the shards in a process pool and runs the generated tests in that
        many interpreters. Without `staging_dir`, a private one under the state dir is used and
        removed afterwards.
        """
        if workers < 1:
            raise CodegenError(f"workers must be at least 1, got {workers}")
        started = time.perf_counter()
        self._prepare_state_dir()
        own_staging = staging_dir is None
        if own_staging:
            (self.state_dir / "staging").mkdir(exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="run-", dir=self.state_dir / "staging"))
        else:
            staging = Path(staging_dir)
        seconds: dict[str, float] = {}
        try:
            with _timed(seconds, "parse"):
                plan = self.parse(staging)
            with _timed(seconds, "generate"):
                shards = plan_shards(plan["dirty"], max_shards=workers, min_per_shard=1)
                generated = self._generate_shards(staging, shards, workers)
            with _timed(seconds, "compile"):
                compiled = self.compile(staging, workers=workers)
            with _timed(seconds, "validate"):
                validated = self.validate(staging, workers=workers)
            with _timed(seconds, "write"):
                written = self.write(staging)
        finally:
            if own_staging:
                shutil.rmtree(staging, ignore_errors=True)
        return {
            "mode": self.mode,
            "workers": workers,
            "library_size": plan["library_size"],
            "regenerated": len(plan["dirty"]),
            "unchanged": plan["clean"],
            "dirty_reasons": plan["dirty_reasons"],
            "shards": len(shards),
            "templates_compiled": sum(stats["templates_compiled"] for stats in generated),
            "templates_from_cache": sum(stats["templates_from_cache"] for stats in generated),
            "files_compiled": compiled["files"],
            "tests_run": validated["tests_run"],
            "published_files": written["published_files"],
            "removed_files": written["removed_files"],
            "stages": seconds,
            "seconds": round(time.perf_counter() - started, 3),
            "quality_gates": written["quality_gates"],
            "output_dir": str(self.output_dir),
        }

    def _generate_shards(
        self, staging: Path, shards: list[dict[str, Any]], workers: int
    ) -> list[dict[str, Any]]:
        if not shards:
            return []
        if workers == 1 or len(shards) == 1:
            return [self.generate(staging, shard["patterns"]) for shard in shards]
        with _process_pool(len(shards)) as pool:
            futures = [
                pool.submit(
                    _generate_in_worker, self._engine_args(), str(staging), shard["patterns"]
                )
                for shard in shards
            ]
            return [future.result() for future in futures]

    # -- maintenance ---------------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Remove the bytecode cache, the manifest and the published output: a cold start."""
        if not self.state_dir.is_dir():
            return
        with state_lock(self.state_dir):
            shutil.rmtree(self.bytecode_dir, ignore_errors=True)
            shutil.rmtree(self.output_dir, ignore_errors=True)
            self.manifest_path.unlink(missing_ok=True)
        self._env = None
