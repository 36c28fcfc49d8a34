"""The code generation engine: caching, incremental builds, determinism, safe publication."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import re
import subprocess
import sys
from pathlib import Path

import pytest

from include.k1n.codegen import (
    DEFAULT_TEMPLATES_DIR,
    CodegenEngine,
    CodegenError,
    ValidationFailed,
    checks,
    plan_shards,
)
from include.k1n.codegen.kinds import KINDS
from include.k1n.codegen.storage import sha256_file

from .conftest import SMALL_LIBRARY_NAMES, tree_digest

PROJECT_DIR = Path(__file__).resolve().parents[4]
MACRO_IMPORT = '{% import "_macros.py.j2" as m %}'
# Kinds whose module or test template imports the shared macros, read from the templates.
MACRO_KINDS = sorted(
    kind
    for kind in KINDS
    if any(MACRO_IMPORT in (DEFAULT_TEMPLATES_DIR / t).read_text() for t in KINDS[kind].templates)
)


def names_of(kinds: list[str]) -> list[str]:
    return [name for name in SMALL_LIBRARY_NAMES if name.rsplit("_", 1)[0] in kinds]


def dirty_after_parse(engine: CodegenEngine, tmp_path: Path) -> list[str]:
    return engine.parse(tmp_path / "staging-parse")["dirty"]


def assert_consistent(state: Path) -> None:
    """Every manifest entry's files exist with the recorded hash, and nothing else is there."""
    manifest = json.loads((state / "manifest.json").read_text())
    recorded = {
        relative: digest
        for entry in manifest["patterns"].values()
        for relative, digest in entry["files"].items()
    }
    assert tree_digest(state / "output") == recorded


# -- template caching ----------------------------------------------------------------------


def test_second_run_loads_compiled_templates_from_bytecode_cache(
    warm_state: tuple[Path, Path],
) -> None:
    library, state = warm_state
    # Force every pattern to be rendered again, but keep the bytecode cache.
    (state / "manifest.json").unlink()
    summary = CodegenEngine(state, library_dir=library).run()

    templates = {t for kind in KINDS.values() for t in kind.templates} | {"_macros.py.j2"}
    assert summary["regenerated"] == len(SMALL_LIBRARY_NAMES)
    assert summary["templates_compiled"] == 0
    assert summary["templates_from_cache"] == len(templates)


def test_first_optimized_run_compiles_each_template_once(
    small_library: Path, tmp_path: Path
) -> None:
    summary = CodegenEngine(tmp_path / "state", library_dir=small_library).run()
    templates = {t for kind in KINDS.values() for t in kind.templates} | {"_macros.py.j2"}
    assert summary["templates_compiled"] == len(templates)
    assert summary["templates_from_cache"] == 0


def test_baseline_compiles_templates_on_every_render(small_library: Path, tmp_path: Path) -> None:
    engine = CodegenEngine(tmp_path / "state", mode="baseline", library_dir=small_library)
    # Each pattern renders two templates; a template importing the macros compiles them too.
    expected = sum(4 if name in names_of(MACRO_KINDS) else 2 for name in SMALL_LIBRARY_NAMES)
    for _ in range(2):
        summary = engine.run()
        assert summary["regenerated"] == len(SMALL_LIBRARY_NAMES)  # full rebuild every time
        assert summary["templates_compiled"] == expected
        assert summary["templates_from_cache"] == 0
    assert not engine.bytecode_dir.exists()


def test_damaged_bytecode_cache_entries_are_recompiled(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    for entry in (state / "jinja-bytecode").iterdir():
        entry.write_bytes(entry.read_bytes()[:12])  # cut short inside Jinja's checksum
    (state / "manifest.json").unlink()
    summary = CodegenEngine(state, library_dir=library).run()
    assert summary["templates_compiled"] == len(list((state / "jinja-bytecode").iterdir())) == 13
    assert summary["quality_gates"] == {"passed": 12, "total": 12}


# -- incremental builds --------------------------------------------------------------------


def test_unchanged_library_regenerates_nothing(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    before = tree_digest(state / "output")
    summary = CodegenEngine(state, library_dir=library).run()
    assert summary["regenerated"] == 0
    assert summary["unchanged"] == len(SMALL_LIBRARY_NAMES)
    assert summary["templates_compiled"] == summary["files_compiled"] == 0
    assert summary["published_files"] == 0
    assert summary["quality_gates"] == {"passed": 12, "total": 12}
    assert tree_digest(state / "output") == before


def test_editing_one_pattern_rebuilds_only_that_pattern(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    manifest_before = json.loads((state / "manifest.json").read_text())["patterns"]
    spec = library / "crc" / "crc_001.yaml"
    spec.write_text(re.sub(r"messages: \d+", "messages: 7", spec.read_text()))

    summary = CodegenEngine(state, library_dir=library).run()

    assert summary["regenerated"] == 1
    assert summary["dirty_reasons"] == {"changed": 1}
    assert summary["files_compiled"] == 2
    manifest_after = json.loads((state / "manifest.json").read_text())["patterns"]
    changed = sorted(n for n in manifest_after if manifest_after[n] != manifest_before[n])
    assert changed == ["crc_001"]
    assert "MESSAGES = 7" in (state / "output" / "crc" / "test_crc_001.py").read_text()


def test_editing_a_kind_template_invalidates_exactly_that_kind(
    warm_state: tuple[Path, Path], templates_copy: Path, tmp_path: Path
) -> None:
    library, state = warm_state
    engine = CodegenEngine(state, library_dir=library, templates_dir=templates_copy)
    # The copy has other file names, but the build keys hash contents: nothing is dirty yet.
    assert dirty_after_parse(engine, tmp_path) == []

    template = templates_copy / "fsm.py.j2"
    template.write_text(template.read_text().replace("table-driven.", "table driven."))
    assert dirty_after_parse(engine, tmp_path) == names_of(["fsm"])

    summary = engine.run()
    assert summary["regenerated"] == 2
    assert "table driven." in (state / "output" / "fsm" / "fsm_000.py").read_text()


def test_editing_shared_macros_invalidates_exactly_the_kinds_importing_them(
    warm_state: tuple[Path, Path], templates_copy: Path, tmp_path: Path
) -> None:
    library, state = warm_state
    assert 1 < len(MACRO_KINDS) < len(KINDS)  # "some but not all" is what this test is about
    macros = templates_copy / "_macros.py.j2"
    macros.write_text(macros.read_text().replace("Do not edit:", "Never edit:"))
    engine = CodegenEngine(state, library_dir=library, templates_dir=templates_copy)

    assert dirty_after_parse(engine, tmp_path) == names_of(MACRO_KINDS)
    engine.run()
    assert "Never edit:" in (state / "output" / "crc" / "crc_000.py").read_text()
    assert "Never edit:" not in (state / "output" / "fsm" / "fsm_000.py").read_text()


def test_missing_or_modified_output_makes_its_pattern_dirty(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    engine = CodegenEngine(state, library_dir=library)
    (state / "output" / "crc" / "crc_000.py").unlink()
    tampered = (
        state / "output" / "fsm" / "__pycache__" / f"fsm_001.{sys.implementation.cache_tag}.pyc"
    )
    tampered.write_bytes(tampered.read_bytes() + b"\0")

    plan = engine.parse(tmp_path / "staging")
    assert plan["dirty"] == ["crc_000", "fsm_001"]
    assert plan["dirty_reasons"] == {"output missing": 1, "output modified": 1}

    engine.run()
    assert_consistent(state)
    assert dirty_after_parse(engine, tmp_path) == []


def test_unreadable_manifest_means_a_full_rebuild(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    (state / "manifest.json").write_text('{"format": 1, "patterns": {"crc_0')
    summary = CodegenEngine(state, library_dir=library).run()
    assert summary["regenerated"] == 12
    assert summary["dirty_reasons"] == {"new": 12}
    assert_consistent(state)


def test_pattern_removed_from_library_is_unpublished(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    (library / "debouncer" / "debouncer_001.yaml").unlink()
    summary = CodegenEngine(state, library_dir=library).run()
    assert summary["removed_files"] == 4
    assert summary["quality_gates"] == {"passed": 11, "total": 11}
    assert "debouncer_001" not in json.loads((state / "manifest.json").read_text())["patterns"]
    assert not list((state / "output").rglob("*debouncer_001*"))
    assert_consistent(state)


# -- determinism ---------------------------------------------------------------------------


def test_serial_parallel_and_baseline_outputs_are_byte_identical(
    small_library: Path, tmp_path: Path
) -> None:
    runs = {
        "serial": CodegenEngine(tmp_path / "serial", library_dir=small_library).run(workers=1),
        "parallel": CodegenEngine(tmp_path / "parallel", library_dir=small_library).run(workers=4),
        "baseline": CodegenEngine(
            tmp_path / "baseline", mode="baseline", library_dir=small_library
        ).run(),
    }
    assert runs["parallel"]["shards"] == 4
    trees = {}
    for name in runs:
        state = tmp_path / name
        trees[name] = tree_digest(state / "output")
        trees[name]["manifest.json"] = sha256_file(state / "manifest.json")
    assert len(trees["serial"]) == 12 * 4 + 1  # .py, test .py and their pycs, plus the manifest
    assert trees["serial"] == trees["parallel"] == trees["baseline"]


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_runs_on_one_state_dir_stay_consistent(
    small_library: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "include.k1n.codegen", "--state-dir", str(state)]
    argv += ["--library-dir", str(small_library), "--json"]
    processes = [
        subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
        assert json.loads(stdout)["quality_gates"] == {"passed": 12, "total": 12}

    assert_consistent(state)
    assert not [p for p in state.rglob("*") if p.name.endswith(".tmp")]
    result = checks.run_unit_tests(state / "output")["quality_gates"]
    assert result["passed"] == result["total"]
    # And the shared bytecode cache serves a later run without a single compilation.
    (state / "manifest.json").unlink()
    summary = CodegenEngine(state, library_dir=small_library).run()
    assert summary["templates_compiled"] == 0


# -- failures publish nothing ----------------------------------------------------------------


def test_failing_generated_test_fails_validation_and_publishes_nothing(
    warm_state: tuple[Path, Path],
) -> None:
    library, state = warm_state
    before = tree_digest(state)
    spec = library / "crc" / "crc_000.yaml"
    spec.write_text(re.sub(r"check: \d+", "check: 1", spec.read_text()))

    with pytest.raises(ValidationFailed, match=r"pattern crc_000 failed tests") as caught:
        CodegenEngine(state, library_dir=library).run()

    assert caught.value.failures == {"crc_000": ["tests"]}
    assert "test_check_value" in str(caught.value)
    assert "nothing was published" in str(caught.value)
    assert tree_digest(state) == before


def test_template_emitting_a_syntax_error_fails_compile(
    small_library: Path, templates_copy: Path, tmp_path: Path
) -> None:
    template = templates_copy / "debouncer.py.j2"
    template.write_text(template.read_text().replace("class Debouncer:", "class Debouncer(:"))
    state = tmp_path / "state"
    engine = CodegenEngine(state, library_dir=small_library, templates_dir=templates_copy)

    with pytest.raises(ValidationFailed) as caught:
        engine.run()

    message = str(caught.value)
    assert "compile failed: pattern debouncer_000 failed compiles" in message
    assert re.search(r"debouncer/debouncer_000\.py line \d+", message)
    assert sorted(caught.value.failures) == ["debouncer_000", "debouncer_001"]
    assert not engine.output_dir.exists()
    assert not engine.manifest_path.exists()


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
    engine = CodegenEngine(
        tmp_path / "state", library_dir=small_library, templates_dir=templates_copy
    )
    if check is None:  # one test fewer is fine: the tests that remain still pass
        assert engine.run()["quality_gates"] == {"passed": 12, "total": 12}
        return
    with pytest.raises(ValidationFailed) as caught:
        engine.run()
    assert caught.value.failures == {"fsm_000": [check], "fsm_001": [check]}
    assert not engine.output_dir.exists()


def test_broken_template_syntax_is_reported_with_its_line(
    small_library: Path, templates_copy: Path, tmp_path: Path
) -> None:
    macros = templates_copy / "_macros.py.j2"
    macros.write_text(macros.read_text().replace("{% endmacro %}", "{% endmacr %}", 1))
    engine = CodegenEngine(
        tmp_path / "state", library_dir=small_library, templates_dir=templates_copy
    )
    with pytest.raises(CodegenError, match=r"template _macros\.py\.j2 line \d+: "):
        engine.run()


def test_write_refuses_a_staging_dir_that_was_not_validated(
    small_library: Path, tmp_path: Path
) -> None:
    engine = CodegenEngine(tmp_path / "state", library_dir=small_library)
    staging = tmp_path / "staging"
    engine.generate(staging, engine.parse(staging)["dirty"])
    engine.compile(staging)
    with pytest.raises(CodegenError, match="nothing published"):
        engine.write(staging)
    assert not engine.output_dir.exists()


def test_stages_reject_a_staging_dir_out_of_order(small_library: Path, tmp_path: Path) -> None:
    engine = CodegenEngine(tmp_path / "state", library_dir=small_library)
    staging = tmp_path / "staging"
    with pytest.raises(CodegenError, match="run parse first"):
        engine.compile(staging)
    plan = engine.parse(staging)
    with pytest.raises(CodegenError, match="not dirty in this run's plan"):
        engine.generate(staging, ["no_such_pattern"])
    engine.generate(staging, plan["dirty"][:3])  # one shard only
    engine.compile(staging)
    with pytest.raises(CodegenError, match="were not generated"):
        engine.validate(staging)


# -- the stage API, as the Airflow task group uses it ---------------------------------------


def _generate_shard(state: str, library: str, staging: str, patterns: list[str]) -> dict:
    return CodegenEngine(state, library_dir=library).generate(Path(staging), patterns)


def test_stages_run_in_separate_processes_with_json_results(
    small_library: Path, tmp_path: Path
) -> None:
    state, staging = tmp_path / "state", tmp_path / "staging"
    plan = CodegenEngine(state, library_dir=small_library).parse(staging)
    shards = plan_shards(plan["dirty"], max_shards=3, min_per_shard=4)
    assert [len(shard["patterns"]) for shard in shards] == [4, 4, 4]
    context = multiprocessing.get_context("spawn")  # nothing inherited, like separate tasks
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        generated = list(
            pool.map(
                _generate_shard,
                [str(state)] * 3,
                [str(small_library)] * 3,
                [str(staging)] * 3,
                [shard["patterns"] for shard in shards],
            )
        )
    compiled = CodegenEngine(state, library_dir=small_library).compile(staging)
    validated = CodegenEngine(state, library_dir=small_library).validate(staging)
    written = CodegenEngine(state, library_dir=small_library).write(staging)

    for result in (plan, *shards, *generated, compiled, validated, written):
        assert json.loads(json.dumps(result)) == result
    assert compiled["files"] == 24
    assert set(validated["patterns"]) == set(SMALL_LIBRARY_NAMES)
    assert validated["quality_gates"] == written["quality_gates"] == {"passed": 12, "total": 12}
    assert written["templates_compiled"] == sum(g["templates_compiled"] for g in generated)
    assert_consistent(state)


def test_nothing_dirty_gives_no_shards_and_empty_stages(
    warm_state: tuple[Path, Path], tmp_path: Path
) -> None:
    library, state = warm_state
    engine = CodegenEngine(state, library_dir=library)
    staging = tmp_path / "staging"
    plan = engine.parse(staging)
    assert plan_shards(plan["dirty"]) == []
    # Airflow skips generate on an empty shard list; the later stages still run.
    assert engine.compile(staging)["files"] == 0
    validated = engine.validate(staging)
    assert validated["validated"] == 0
    assert validated["quality_gates"] == {"passed": 12, "total": 12}
    assert engine.write(staging)["quality_gates"] == {"passed": 12, "total": 12}


def test_plan_shards_cuts_contiguous_balanced_shards() -> None:
    names = [f"p_{index:03d}" for index in range(101)]
    shards = plan_shards(names[::-1], max_shards=4, min_per_shard=16)
    assert [len(shard["patterns"]) for shard in shards] == [26, 25, 25, 25]
    assert [name for shard in shards for name in shard["patterns"]] == names
    assert shards[0]["name"] == "shard 1/4: p_000..p_025 (26 patterns)"
    assert [shard["index"] for shard in shards] == [0, 1, 2, 3]
    assert len(plan_shards(names[:40], max_shards=4, min_per_shard=16)) == 2
    assert len(plan_shards(names[:5], max_shards=4, min_per_shard=16)) == 1
    assert plan_shards([], max_shards=4) == []


def test_clear_caches_gives_a_cold_start(warm_state: tuple[Path, Path]) -> None:
    library, state = warm_state
    engine = CodegenEngine(state, library_dir=library)
    engine.clear_caches()
    assert not engine.output_dir.exists()
    assert not engine.manifest_path.exists()
    assert not engine.bytecode_dir.exists()
    summary = engine.run()
    assert summary["regenerated"] == 12
    assert summary["templates_from_cache"] == 0
