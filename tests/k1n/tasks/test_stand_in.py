"""The profile stand-in: waits the scaled profiled seconds and says it did no agent work."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest

from k1n.tasks.stand_in import run_profile

LOGGER = "k1n.tasks.stand_in"


@pytest.fixture(autouse=True)
def _capture_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_profile_waits_scaled_seconds_and_returns_a_stand_in_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []

    result = run_profile(
        task_id=3,
        name="Architecture",
        seconds=300,
        time_scale=0.0167,
        gates_total=10,
        gates_failed=2,
        sleep=waits.append,
    )

    assert waits == [pytest.approx(5.01)]
    assert result == {
        "quality_gates": {"passed": 8, "total": 10},
        "handler": "profile",
        "stand_in": True,
        "profiled_seconds": 300,
        "time_scale": 0.0167,
        "waited_seconds": pytest.approx(5.01),
    }
    first = messages(caplog)[0]
    assert first.startswith("task 3 Architecture: stand-in handler (no agent configured)")
    assert "waiting 300 s x 0.0167 = 5.0 s" in first


def test_profile_logs_before_it_waits(caplog: pytest.LogCaptureFixture) -> None:
    logged_before_sleep: list[str] = []

    def sleep(seconds: float) -> None:
        logged_before_sleep.extend(messages(caplog))

    result = run_profile(
        task_id=1,
        name="Security Audit",
        seconds=0,
        time_scale=1,
        gates_total=1,
        sleep=sleep,
    )

    assert any("stand-in" in message for message in logged_before_sleep)
    assert result["quality_gates"] == {"passed": 1, "total": 1}


def test_profile_really_sleeps_by_default() -> None:
    started = time.monotonic()
    run_profile(task_id=1, name="T", seconds=2, time_scale=0.1, gates_total=1)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"seconds": -1}, "seconds"),
        ({"seconds": math.nan}, "seconds"),
        ({"time_scale": 0}, "time_scale"),
        ({"time_scale": -0.5}, "time_scale"),
        ({"time_scale": math.inf}, "time_scale"),
        ({"gates_total": 0}, "gates_total"),
        ({"gates_failed": -1}, "gates_failed"),
        ({"gates_failed": 11}, "gates_failed"),
    ],
)
def test_profile_rejects_bad_arguments_before_waiting(
    overrides: dict[str, Any], fragment: str
) -> None:
    waits: list[float] = []
    kwargs: dict[str, Any] = {
        "task_id": 4,
        "name": "Testing Setup",
        "seconds": 300,
        "time_scale": 1.0,
        "gates_total": 10,
        "gates_failed": 0,
        "sleep": waits.append,
    }
    kwargs.update(overrides)

    with pytest.raises(ValueError, match=fragment):
        run_profile(**kwargs)

    assert waits == []
