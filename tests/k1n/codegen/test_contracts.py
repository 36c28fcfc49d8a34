"""Task 8's typed contracts: a document that does not fit is one line naming it, never a
KeyError in a later stage, and nothing is written on the strength of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k1n import storage
from k1n.codegen import CodegenError, Staging
from k1n.codegen.contracts import Shard, parse_document
from k1n.tasks import dispatch
from k1n.tasks.context import RunContext
from tests.k1n.conftest import engine_for


def run_context(tmp_path: Path, **fields) -> RunContext:
    return RunContext(
        dag_id="k1n_test",
        run_id="run",
        time_scale=1,
        storage=storage.open_root(tmp_path / "storage"),
        cache_dir=tmp_path / "cache",
        **fields,
    )


def staged_plan(engine, staging: Path) -> dict:
    engine.parse(staging)
    return json.loads((staging / "plan.json").read_text())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda plan: plan.pop("dirty"), r"plan\.json: dirty: Field required"),
        (
            lambda plan: plan.update(base="../../elsewhere"),
            r"plan\.json: base: String should match pattern",
        ),
        (
            lambda plan: next(iter(plan["dirty"].values())).update(reason="felt like it"),
            r"plan\.json: dirty\.\w+\.reason: Input should be 'new', 'changed'",
        ),
        (lambda plan: plan.update(surprise=1), r"plan\.json: surprise: Extra inputs"),
    ],
)
def test_a_damaged_plan_stops_the_next_stage_with_one_line(
    small_library: Path, tmp_path: Path, damage, message: str
) -> None:
    engine = engine_for(tmp_path / "state", small_library)
    staging = tmp_path / "staging"
    plan = staged_plan(engine, staging)
    damage(plan)
    (staging / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(CodegenError, match=message) as caught:
        engine.generate(staging, sorted(plan.get("dirty", {"crc_000": None}))[:1])
    assert "\n" not in str(caught.value)
    assert not (staging / "shards").exists()  # nothing generated on a bad plan


def test_a_plan_still_being_claimed_is_named_as_such(tmp_path: Path) -> None:
    staging = Staging(storage.open_root(tmp_path / "staging"))
    staging.write_claim()
    with pytest.raises(CodegenError, match="parse did not finish; run parse again"):
        staging.plan()
    assert staging.references() == (set(), True)  # retention keeps every snapshot meanwhile


def test_a_damaged_publication_record_keeps_every_snapshot(tmp_path: Path) -> None:
    staging = Staging(storage.open_root(tmp_path / "staging"))
    storage.write_json(staging.root / "published.json", {"snapshot": "../../x"})
    assert staging.references() == (set(), True)


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ({"index": 0, "name": "s", "patterns": []}, "patterns: List should have at least 1"),
        ({"index": 0, "name": "s", "patterns": ["../etc"]}, r"patterns\.0: String should match"),
        ({"index": -1, "name": "s", "patterns": ["crc_000"]}, "index: Input should be greater"),
        ({"name": "s", "patterns": ["crc_000"]}, "index: Field required"),
        ("crc_000", "Input should be a valid dictionary"),
    ],
)
def test_a_malformed_shard_xcom_fails_generate_before_any_work(
    tmp_path: Path, shard, message: str
) -> None:
    ctx = run_context(tmp_path)
    with pytest.raises(CodegenError, match=f"the shard from parse_library: .*{message}"):
        dispatch.codegen_generate(ctx, shard)
    assert storage.children(ctx.codegen_staging) == []


def test_a_task_8_result_naming_no_valid_snapshot_is_refused(tmp_path: Path) -> None:
    result = {"snapshot": "../../../etc", "quality_gates": {"passed": 1, "total": 1}}
    ctx = run_context(tmp_path, codegen_result=result)
    with pytest.raises(CodegenError, match=r"Task 8's result: snapshot: String should match"):
        ctx.codegen_snapshot  # noqa: B018 (the property is what is tested)


def test_a_model_passes_through_parse_document_unchanged() -> None:
    shard = Shard(index=0, name="shard 1/1", patterns=["crc_000"])
    assert parse_document(Shard, shard, "x") is shard
    assert parse_document(Shard, shard.model_dump(mode="json"), "x") == shard
