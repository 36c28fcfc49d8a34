"""Where every benchmark records its figures: one JSON document, `docs/bench/latest.json`,
one section per benchmark, each with the command that produced it and when; and the
statistics every figure is given as (median, min, max over the repetitions)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

PROJECT_DIR = Path(__file__).resolve().parents[1]
LATEST = PROJECT_DIR / "docs" / "bench" / "latest.json"


def stats(values: Iterable[float | None]) -> dict[str, Any]:
    """Median, min and max of the known values, and how many there were."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(statistics.median(known), 4),
        "min": round(min(known), 4),
        "max": round(max(known), 4),
        "n": len(known),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def record(section: str, figures: dict[str, Any], path: Path = LATEST) -> None:
    """Replace `section` of the JSON document with `figures` (written atomically)."""
    document = json.loads(path.read_text()) if path.exists() else {}
    document[section] = {
        "command": " ".join(["python", *sys.argv]).replace(str(PROJECT_DIR) + "/", ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        # How long this benchmark's process has run: `make bench` takes the sum of its parts'.
        "process_seconds": round(time.time() - psutil.Process().create_time(), 1),
        **figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(path)
