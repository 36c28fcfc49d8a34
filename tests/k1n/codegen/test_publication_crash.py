"""Publication survives being killed at any moment: SIGKILL the write stage at random points
of a publication, many times; after every kill the current snapshot is the previous one or
the new one, whole (each file checked against its manifest), never a mix; a retry publishes.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from k1n.codegen import CodegenStore
from tests.conftest import PROJECT_DIR
from tests.k1n.conftest import engine_for

KILLS = 12

WRITE = """
import sys
from pathlib import Path
from tests.k1n.conftest import engine_for
engine_for(Path(sys.argv[1]), Path(sys.argv[2])).write(Path(sys.argv[3]))
"""


def staged_change(state: Path, library: Path, staging: Path) -> None:
    """A validated staging area whose write would publish a changed library."""
    spec = library / "crc" / "crc_001.yaml"
    spec.write_text(re.sub(r"messages: \d+", "messages: 9", spec.read_text()))
    engine = engine_for(state, library)
    plan = engine.parse(staging)
    engine.generate(staging, plan.dirty)
    engine.compile(staging)
    engine.validate(staging)


def test_a_publication_killed_at_any_moment_never_shows_a_mix(warm_state, tmp_path):
    library, state = warm_state
    store = CodegenStore(state / "store")
    previous = store.current_id()
    staging = tmp_path / "staging"
    staged_change(state, library, staging)
    rng = random.Random(8)
    outcomes = set()
    published = staging / "published.json"
    for round_ in range(KILLS):
        store.point_at(previous)  # every round starts from the previous snapshot
        published.unlink(missing_ok=True)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE, str(state), str(library), str(staging)],
            cwd=PROJECT_DIR,
        )
        if round_ % 2:  # at a random moment: start-up, reading, packing, uploading, after
            time.sleep(rng.uniform(0.2, 0.9))
        else:  # the moment the upload starts (the snapshot id is recorded just before)
            deadline = time.monotonic() + 30
            while not published.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        current = store.current_id()
        outcomes.add("new" if current != previous else "previous")
        files = store.files(current)  # raises unless every file matches the manifest
        assert set(files) == set(store.manifest(current).files)
        for snapshot in store.snapshot_ids():  # a snapshot is either absent, or whole
            if (state / "store" / "snapshots" / snapshot / "manifest.json").exists():
                store.files(snapshot)
    # The retry publishes, and the result is the new library's snapshot.
    written = engine_for(state, library).write(staging)
    assert store.current_id() == written.snapshot != previous
    assert b"MESSAGES = 9" in store.files(written.snapshot)["crc/test_crc_001.py"]
    assert "previous" in outcomes  # killed mid-upload: the pointer had not moved
