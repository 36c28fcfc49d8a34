"""The code generation engine: caching, incremental builds, determinism, safe publication."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from k1n import checks
from k1n.codegen import (
    DEFAULT_TEMPLATES_DIR,
    CodegenEngine,
    CodegenError,
    ValidationFailed,
    plan_shards,
    run_stages,
)
from k1n.codegen.contracts import CodegenSummary, GenerateResult, QualityGates
from k1n.codegen.kinds import KINDS
from k1n.codegen.library import PARSED_CACHE_DIR, parsed_cache_file
from k1n.codegen.snapshots import ARCHIVE, POINTER, SNAPSHOTS
from tests.conftest import PROJECT_DIR
from tests.k1n.conftest import SMALL_LIBRARY_NAMES, engine_for

MACRO_IMPORT = '{% import "_macros.py.j2" as m %}'
# Kinds whose module or test template imports the shared macros, read from the templates.
MACRO_KINDS = sorted(
    kind
    for kind in KINDS
    if any(MACRO_IMPORT in (DEFAULT_TEMPLATES_DIR / t).read_text() for t in KINDS[kind].templates)
)
GATES_12 = QualityGates(passed=12, total=12)
TEMPLATES = {t for kind in KINDS.values() for t in kind.templates} | {"_macros.py.j2"}


def names_of(kinds: list[str]) -> list[str]:
    return [name for name in SMALL_LIBRARY_NAMES if name.rsplit("_", 1)[0] in kinds]


def dirty_after_parse(engine: CodegenEngine, tmp_path: Path) -> list[str]:
    return engine.parse(tmp_path / "staging-parse").dirty


def current_files(engine: CodegenEngine) -> dict[str, bytes]:
    """The current snapshot's files, each checked against its manifest by the store."""
    return engine.store.files(engine.store.current_id())


def current_text(engine: CodegenEngine, relative: str) -> str:
    return current_files(engine)[relative].decode()


def forget_published(state: Path) -> None:
    """Remove the snapshots (and pointer) but keep the bytecode cache."""
    shutil.rmtree(state / "store")


# -- template caching ----------------------------------------------------------------------


def test_second_run_loads_compiled_templates_from_bytecode_cache(
    warm_state: tuple[Path, Path],
) -> None:
    library, state = warm_state
    forget_published(state)  # every pattern is rendered again, with the bytecode cache kept
    summary = run_stages(engine_for(state, library))

    assert summary.regenerated == len(SMALL_LIBRARY_NAMES)
    assert summary.templates_compiled == 0
    assert summary.templates_from_cache == len(TEMPLATES)


def test_first_optimized_run_compiles_each_template_once(
    small_library: Path, tmp_path: Path
) -> None:
    summary = run_stages(engine_for(tmp_path / "state", small_library))
    assert summary.templates_compiled == len(TEMPLATES)
    assert summary.templates_from_cache == 0


def test_baseline_compiles_templates_on_every_render(small_library: Path, tmp_path: Path) -> None:
    engine = engine_for(tmp_path / "state", small_library, mode="baseline")
    # Each pattern renders two templates; a template importing the macros compiles them too.
    expected = sum(4 if name in names_of(MACRO_KINDS) else 2 for name in SMALL_LIBRARY_NAMES)
    for _ in range(2):
        summary = run_stages(engine)
        assert summary.regenerated == len(SMALL_LIBRARY_NAMES)  # full rebuild every time
        assert summary.templates_compiled == expected
        assert summary.templates_from_cache == 0
    assert not engine.bytecode_dir.exists()


def test_damaged_bytecode_cache_entries_are_recompiled(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    cache = state / "cache" / "jinja-bytecode"
    for entry in cache.iterdir():
        entry.write_bytes(entry.read_bytes()[:12])  # cut short inside Jinja's checksum
    forget_published(state)
    summary = run_stages(engine_for(state, library))
    assert summary.templates_compiled == len(list(cache.iterdir())) == len(TEMPLATES)
    assert summary.quality_gates == GATES_12


# -- incremental builds --------------------------------------------------------------------


def test_unchanged_library_regenerates_nothing(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    before = engine.store.current_id()
    summary = run_stages(engine)
    assert summary.regenerated == 0
    assert summary.unchanged == len(SMALL_LIBRARY_NAMES)
    assert summary.templates_compiled == summary.files_compiled == 0
    assert summary.published_files == 0
    assert summary.quality_gates == GATES_12
    assert summary.snapshot == engine.store.current_id() == before
    assert engine.store.snapshot_ids() == [before]


def test_editing_one_pattern_rebuilds_only_that_pattern(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    before = engine.store.manifest(engine.store.current_id()).patterns
    spec = library / "crc" / "crc_001.yaml"
    spec.write_text(re.sub(r"messages: \d+", "messages: 7", spec.read_text()))

    summary = run_stages(engine)

    assert summary.regenerated == 1
    assert summary.dirty_reasons == {"changed": 1}
    assert summary.files_compiled == 2
    after = engine.store.manifest(summary.snapshot).patterns
    assert sorted(n for n in after if after[n] != before[n]) == ["crc_001"]
    assert "MESSAGES = 7" in current_text(engine, "crc/test_crc_001.py")


def test_editing_a_kind_template_invalidates_exactly_that_kind(
    warm_state: tuple[Path, Path], templates_copy: Path, tmp_path: Path
) -> None:
    library, state = warm_state
    engine = engine_for(state, library, templates_dir=templates_copy)
    # The copy has other file names, but the build keys hash contents: nothing is dirty yet.
    assert dirty_after_parse(engine, tmp_path) == []

    template = templates_copy / "fsm.py.j2"
    template.write_text(template.read_text().replace("table-driven.", "table driven."))
    assert dirty_after_parse(engine, tmp_path) == names_of(["fsm"])

    summary = run_stages(engine)
    assert summary.regenerated == 2
    assert "table driven." in current_text(engine, "fsm/fsm_000.py")


def test_editing_shared_macros_invalidates_exactly_the_kinds_importing_them(
    warm_state: tuple[Path, Path], templates_copy: Path, tmp_path: Path
) -> None:
    library, state = warm_state
    assert 1 < len(MACRO_KINDS) < len(KINDS)  # "some but not all" is what this test is about
    macros = templates_copy / "_macros.py.j2"
    macros.write_text(macros.read_text().replace("Do not edit:", "Never edit:"))
    engine = engine_for(state, library, templates_dir=templates_copy)

    assert dirty_after_parse(engine, tmp_path) == names_of(MACRO_KINDS)
    run_stages(engine)
    assert "Never edit:" in current_text(engine, "crc/crc_000.py")
    assert "Never edit:" not in current_text(engine, "fsm/fsm_000.py")


@pytest.mark.parametrize("damage", ["truncate the archive", "delete the archive"])
def test_a_damaged_current_snapshot_means_a_full_rebuild(
    warm_state: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    damaged = engine.store.current_id()
    path = state / "store" / SNAPSHOTS / damaged / ARCHIVE
    if damage == "delete the archive":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])

    plan = engine.parse(tmp_path / "staging")
    assert plan.base is None
    assert plan.dirty_reasons == {"new": 12}
    with pytest.raises(CodegenError, match=r"does not match the manifest|archive is missing"):
        engine.store.files(damaged)  # a reader of the damaged snapshot fails, never half-reads

    summary = run_stages(engine)
    assert summary.snapshot == damaged  # the same content, so the same id, now whole again
    assert len(current_files(engine)) == 12 * 4


def test_an_unreadable_pointer_means_a_full_rebuild(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    (state / "store" / POINTER).write_text('{"snapshot": "abc')
    summary = run_stages(engine_for(state, library))
    assert summary.regenerated == 12
    assert summary.dirty_reasons == {"new": 12}


def test_pattern_removed_from_library_is_unpublished(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    (library / "debouncer" / "debouncer_001.yaml").unlink()
    engine = engine_for(state, library)
    summary = run_stages(engine)
    assert summary.regenerated == 0
    assert summary.removed_patterns == 1
    assert summary.quality_gates == QualityGates(passed=11, total=11)
    assert "debouncer_001" not in engine.store.manifest(summary.snapshot).patterns
    assert not [name for name in current_files(engine) if "debouncer_001" in name]


# -- determinism ---------------------------------------------------------------------------


def test_serial_parallel_and_baseline_publish_the_same_snapshot(
    small_library: Path, tmp_path: Path
) -> None:
    runs = {
        "serial": run_stages(engine_for(tmp_path / "serial", small_library), workers=1),
        "parallel": run_stages(engine_for(tmp_path / "parallel", small_library), workers=4),
        "baseline": run_stages(engine_for(tmp_path / "baseline", small_library, mode="baseline")),
    }
    assert runs["parallel"].shards == 4
    # The snapshot id is a hash of every file and check result: equal ids, equal output.
    assert len({run.snapshot for run in runs.values()}) == 1
    archives = {
        name: (tmp_path / name / "store" / SNAPSHOTS / run.snapshot / ARCHIVE).read_bytes()
        for name, run in runs.items()
    }
    assert len(set(archives.values())) == 1


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_runs_on_one_store_stay_consistent(small_library: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "k1n.codegen", "--state-dir", str(state)]
    argv += ["--library-dir", str(small_library), "--json"]
    processes = [
        subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    snapshots = set()
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
        summary = CodegenSummary.model_validate_json(stdout)
        assert summary.quality_gates == GATES_12
        snapshots.add(summary.snapshot)

    engine = engine_for(state, small_library)
    assert snapshots == {engine.store.current_id()}  # same library, same snapshot
    assert not [p for p in state.rglob("*") if p.name.endswith(".tmp")]
    output = tmp_path / "output"
    engine.store.checkout(engine.store.current_id(), output)
    result = checks.run_unit_tests(output)["quality_gates"]
    assert result["passed"] == result["total"]
    # And the shared bytecode cache serves a later run without a single compilation.
    forget_published(state)
    assert run_stages(engine_for(state, small_library)).templates_compiled == 0


# -- failures publish nothing ----------------------------------------------------------------


def test_failing_generated_test_fails_validation_and_publishes_nothing(
    warm_state: tuple[Path, Path],
) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    before = engine.store.current_id()
    spec = library / "crc" / "crc_000.yaml"
    spec.write_text(re.sub(r"check: \d+", "check: 1", spec.read_text()))

    with pytest.raises(ValidationFailed, match=r"pattern crc_000 failed tests") as caught:
        run_stages(engine)

    assert caught.value.failures == {"crc_000": ["tests"]}
    assert "test_check_value" in str(caught.value)
    assert "nothing was published" in str(caught.value)
    assert engine.store.current_id() == before
    assert engine.store.snapshot_ids() == [before]


def test_template_emitting_a_syntax_error_fails_compile(
    small_library: Path, templates_copy: Path, tmp_path: Path
) -> None:
    template = templates_copy / "debouncer.py.j2"
    template.write_text(template.read_text().replace("class Debouncer:", "class Debouncer(:"))
    state = tmp_path / "state"
    engine = engine_for(state, small_library, templates_dir=templates_copy)

    with pytest.raises(ValidationFailed) as caught:
        run_stages(engine)

    message = str(caught.value)
    assert "compile failed: pattern debouncer_000 failed compiles" in message
    assert re.search(r"debouncer/debouncer_000\.py line \d+", message)
    assert sorted(caught.value.failures) == ["debouncer_000", "debouncer_001"]
    assert engine.store.current_id() is None
    assert engine.store.snapshot_ids() == []


@pytest.mark.parametrize(
    ("old", "new", "check"),
    [
        ("from enum import IntEnum", "import os\nfrom enum import IntEnum", "lint"),
        ("NO_TRANSITION = -1", "NO_TRANSITION=-1", "format"),
        ("def test_every_transition()", "def check_every_transition()", None),
    ],
)
def test_lint_and_format_findings_fail_validation(
    small_library: Path, templates_copy: Path, tmp_path: Path, old: str, new: str, check: str | None
) -> None:
    name = "fsm.py.j2" if check else "test_fsm.py.j2"
    template = templates_copy / name
    template.write_text(template.read_text().replace(old, new))
    engine = engine_for(tmp_path / "state", small_library, templates_dir=templates_copy)
    if check is None:  # one test fewer is fine: the tests that remain still pass
        assert run_stages(engine).quality_gates == GATES_12
        return
    with pytest.raises(ValidationFailed) as caught:
        run_stages(engine)
    assert caught.value.failures == {"fsm_000": [check], "fsm_001": [check]}
    assert engine.store.current_id() is None


def test_broken_template_syntax_is_reported_with_its_line(
    small_library: Path, templates_copy: Path, tmp_path: Path
) -> None:
    macros = templates_copy / "_macros.py.j2"
    macros.write_text(macros.read_text().replace("{% endmacro %}", "{% endmacr %}", 1))
    engine = engine_for(tmp_path / "state", small_library, templates_dir=templates_copy)
    with pytest.raises(CodegenError, match=r"template _macros\.py\.j2 line \d+: "):
        run_stages(engine)


def test_write_refuses_a_staging_dir_that_was_not_validated(
    small_library: Path, tmp_path: Path
) -> None:
    engine = engine_for(tmp_path / "state", small_library)
    staging = tmp_path / "staging"
    engine.generate(staging, engine.parse(staging).dirty)
    engine.compile(staging)
    with pytest.raises(CodegenError, match="nothing published"):
        engine.write(staging)
    assert engine.store.current_id() is None


def test_stages_reject_a_staging_dir_out_of_order(small_library: Path, tmp_path: Path) -> None:
    engine = engine_for(tmp_path / "state", small_library)
    staging = tmp_path / "staging"
    with pytest.raises(CodegenError, match="run parse first"):
        engine.compile(staging)
    plan = engine.parse(staging)
    with pytest.raises(CodegenError, match="not dirty in this run's plan"):
        engine.generate(staging, ["no_such_pattern"])
    engine.generate(staging, plan.dirty[:3])  # one shard only
    with pytest.raises(CodegenError, match="were not generated"):
        engine.compile(staging)
    with pytest.raises(CodegenError, match="run compile before validate"):
        engine.validate(staging)


# -- the stage API, as the Airflow task group uses it ---------------------------------------


def _generate_shard(state: str, library: str, staging: str, patterns: list[str]) -> GenerateResult:
    return engine_for(Path(state), Path(library)).generate(Path(staging), patterns)


def test_stages_run_in_separate_processes_with_json_results(
    small_library: Path, tmp_path: Path
) -> None:
    state, staging = tmp_path / "state", tmp_path / "staging"
    plan = engine_for(state, small_library).parse(staging)
    shards = plan_shards(plan.dirty, max_shards=3, min_per_shard=4)
    assert [len(shard.patterns) for shard in shards] == [4, 4, 4]
    context = multiprocessing.get_context("spawn")  # nothing inherited, like separate tasks
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        generated = list(
            pool.map(
                _generate_shard,
                [str(state)] * 3,
                [str(small_library)] * 3,
                [str(staging)] * 3,
                [shard.patterns for shard in shards],
            )
        )
    compiled = engine_for(state, small_library).compile(staging)
    validated = engine_for(state, small_library).validate(staging)
    written = engine_for(state, small_library).write(staging)

    # Each result crosses a task boundary as JSON (an XCom) and comes back equal.
    for result in (plan, *shards, *generated, compiled, validated, written):
        assert type(result).model_validate(json.loads(result.model_dump_json())) == result
    assert compiled.files == 24
    assert set(validated.patterns) == set(SMALL_LIBRARY_NAMES)
    assert validated.quality_gates == written.quality_gates == GATES_12
    assert written.templates_compiled == sum(g.templates_compiled for g in generated)
    assert written.snapshot == engine_for(state, small_library).store.current_id()


def test_nothing_dirty_gives_no_shards_and_empty_stages(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    staging = tmp_path / "staging"
    current = engine.store.current_id()
    plan = engine.parse(staging)
    assert plan_shards(plan.dirty) == []
    # The DAG skips generate, compile and validate on an empty shard list; write publishes
    # the current snapshot as it is, and the stages still work when called anyway.
    written = engine.write(staging)
    assert (written.snapshot, written.published_files) == (current, 0)
    assert written.quality_gates == GATES_12
    assert engine.compile(staging).files == 0
    validated = engine.validate(staging)
    assert validated.validated == 0
    assert validated.quality_gates == GATES_12
    assert engine.write(staging).snapshot == current


def test_a_removed_pattern_alone_is_unpublished_without_compile_or_validate(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    (library / "debouncer" / "debouncer_001.yaml").unlink()
    engine = engine_for(state, library)
    staging = tmp_path / "staging"
    before = engine.store.current_id()
    assert plan_shards(engine.parse(staging).dirty) == []
    written = engine.write(staging)
    assert written.snapshot != before and written.removed_patterns == 1
    assert written.quality_gates == QualityGates(passed=11, total=11)
    assert "debouncer_001" not in engine.store.manifest(written.snapshot).patterns


def test_plan_shards_cuts_contiguous_balanced_shards() -> None:
    names = [f"p_{index:03d}" for index in range(101)]
    shards = plan_shards(names[::-1], max_shards=4, min_per_shard=16)
    assert [len(shard.patterns) for shard in shards] == [26, 25, 25, 25]
    assert [name for shard in shards for name in shard.patterns] == names
    assert shards[0].name == "shard 1/4: p_000..p_025 (26 patterns)"
    assert [shard.index for shard in shards] == [0, 1, 2, 3]
    assert len(plan_shards(names[:40], max_shards=4, min_per_shard=16)) == 2
    assert len(plan_shards(names[:5], max_shards=4, min_per_shard=16)) == 1
    assert plan_shards([], max_shards=4) == []


def test_optimized_parse_keeps_the_parsed_library_and_the_baseline_does_not(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    optimized = engine_for(state, library)
    first = optimized.parse(tmp_path / "staging-1").model_dump(exclude={"seconds"})
    assert first["dirty"] == []
    cache_file = parsed_cache_file(optimized.cache_dir, library)
    assert len(json.loads(cache_file.read_text())["documents"]) == 12
    # The same plan from the kept documents as from the files.
    assert optimized.parse(tmp_path / "staging-2").model_dump(exclude={"seconds"}) == first
    baseline = engine_for(tmp_path / "baseline", library, mode="baseline")
    baseline.parse(tmp_path / "staging-3")
    assert not (baseline.cache_dir / PARSED_CACHE_DIR).exists()
    # One pattern edited: its new text is parsed and the plan rebuilds that pattern alone.
    edited = library / "crc" / "crc_001.yaml"
    edited.write_text(re.sub(r"messages: \d+", "messages: 7", edited.read_text()))
    assert list(optimized.parse(tmp_path / "staging-4").dirty) == ["crc_001"]
    optimized.clear_caches()
    assert not cache_file.exists()


def test_a_parsed_library_folder_others_can_write_is_refused(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    shared = engine.cache_dir / PARSED_CACHE_DIR
    shared.mkdir(parents=True, exist_ok=True)
    shared.chmod(0o777)
    before = {path.name: path.read_bytes() for path in shared.iterdir()}
    with pytest.raises(PermissionError, match="writable by others"):
        engine.parse(tmp_path / "staging")
    assert {path.name: path.read_bytes() for path in shared.iterdir()} == before  # untouched


def test_clear_caches_gives_a_cold_start(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    engine = engine_for(state, library)
    engine.clear_caches()
    assert engine.store.current_id() is None
    assert engine.store.snapshot_ids() == []
    assert not engine.bytecode_dir.exists()
    summary = run_stages(engine)
    assert summary.regenerated == 12
    assert summary.templates_from_cache == 0
