"""Tasks 9, 10 and 12 check only what changed: against full checks on random changes, a tool
change, two runs at once and a claim whose owner died."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from k1n import checks, storage
from k1n.checks import results as stored_results
from k1n.checks.results import ResultStore

CHECKS = (checks.run_unit_tests, checks.run_static_analysis, checks.run_security_scan)
# Planted findings are assembled at run time so this file does not trip the scanners itself.
EVAL_CALL = "ev" + 'al("6 * 7")'


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without the counts of reused and checked units."""
    details = {k: v for k, v in result["details"].items() if k not in ("reused", "checked")}
    return {**result, "details": details}


def store(tmp_path: Path, owner: str = "run-a") -> ResultStore:
    return ResultStore(storage.open_root(tmp_path / "results"), owner)


def change(rng: random.Random, output: Path) -> str:
    """One random edit of one generated file: what a pattern change does to Task 8's output."""
    files = sorted(output.glob("*/*.py"))
    path = rng.choice(files)
    edit = rng.choice(["comment", "unused import", "eval", "failing test", "new test", "syntax"])
    text = path.read_text()
    if edit == "comment":
        text += f"\n# revision {rng.randrange(10**6)}\n"
    elif edit == "unused import":
        text = "import os\n" + text
    elif edit == "eval":
        text += f"\nANSWER = {EVAL_CALL}\n"
    elif edit == "syntax":
        text += "\n\ndef broken(:\n    pass\n"  # a test file that cannot be collected, too
    elif path.name.startswith("test_"):
        verdict = "1" if edit == "new test" else "2"
        text += (
            f"\n\ndef test_planted_{rng.randrange(10**6)}() -> None:\n    assert 1 == {verdict}\n"
        )
    else:
        text += "\n\ndef helper() -> int:\n    return 1\n"
    path.write_text(text)
    return f"{edit} in {path.relative_to(output)}"


def test_random_changes_give_what_a_full_check_gives(published_output: Path, tmp_path) -> None:
    results = store(tmp_path)
    for check in CHECKS:
        check(published_output, results)  # every unit verified once
    rng = random.Random(21)
    for _ in range(20):
        what = change(rng, published_output)
        for check in CHECKS:
            incremental = check(published_output, results)
            full = check(published_output)
            assert comparable(incremental) == comparable(full), (what, check.__name__)
            # One file changed: at most the units reading it are checked again.
            assert incremental["details"]["checked"] <= 1, (what, check.__name__)


def test_no_change_reuses_every_unit(published_output: Path, tmp_path) -> None:
    results = store(tmp_path)
    for check in CHECKS:
        first = check(published_output, results)
        again = check(published_output, results)
        assert first["details"]["reused"] == 0
        assert again["details"]["checked"] == 0
        assert comparable(again) == comparable(first)


def test_a_new_tool_version_checks_everything_again(published_output: Path, tmp_path, monkeypatch):
    results = store(tmp_path)
    for check in CHECKS:
        check(published_output, results)
    monkeypatch.setattr(checks, "ruff_version", lambda: "ruff 99.0.0")
    monkeypatch.setattr(checks, "pytest_version", lambda: "99.0.0")
    for check in CHECKS:
        details = check(published_output, results)["details"]
        assert details["reused"] == 0 and details["checked"] > 0, check.__name__


def test_two_runs_at_once_check_a_changed_unit_once(published_output: Path, tmp_path, monkeypatch):
    for owner in ("run-a", "run-b"):
        checks.run_static_analysis(published_output, store(tmp_path, owner))
    target = sorted(published_output.glob("*/*.py"))[0]
    target.write_text("import os\n" + target.read_text())
    computed: list[str] = []
    real = checks._ruff_findings

    def counted(output_dir: Path, files: list[str]) -> dict[str, Any]:
        computed.extend(files)
        time.sleep(1.0)  # long enough for the other run to find the claim
        return real(output_dir, files)

    monkeypatch.setattr(checks, "_ruff_findings", counted)
    outcomes: dict[str, dict[str, Any]] = {}
    threads = [
        threading.Thread(
            target=lambda owner=owner: outcomes.__setitem__(
                owner, checks.run_static_analysis(published_output, store(tmp_path, owner))
            )
        )
        for owner in ("run-a", "run-b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert computed == [target.relative_to(published_output).as_posix()]
    assert comparable(outcomes["run-a"]) == comparable(outcomes["run-b"])
    assert (
        outcomes["run-a"]["quality_gates"]["passed"]
        == outcomes["run-a"]["quality_gates"]["total"] - 1
    )


def test_a_dead_owners_claim_is_taken_over(published_output: Path, tmp_path, monkeypatch) -> None:
    results = store(tmp_path)
    target = sorted(published_output.glob("*/*.py"))[0]
    target.write_text(target.read_text() + "\n# changed\n")
    files = [
        p.relative_to(published_output).as_posix() for p in sorted(published_output.glob("*/*.py"))
    ]
    fingerprint = checks.static_analysis_fingerprint(files)
    digest = stored_results.unit_digest(published_output, [files[0]], fingerprint)
    dead = {"owner": "run-that-died", "expires": time.time() - 1}
    storage.write_json(results.claim_path(digest), dead, atomic=True)
    result = checks.run_static_analysis(published_output, results)
    assert result["details"]["checked"] == len(files)  # nothing stored yet: all, that one too
    assert results.get(digest) == []  # its result is stored now, and the claim is gone
    assert storage.read_json(results.claim_path(digest)) is None
