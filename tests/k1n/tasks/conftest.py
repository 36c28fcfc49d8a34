"""Fixtures of the task-runtime tests."""

from __future__ import annotations

import logging

import pytest

from tests.k1n.tasks.command_helpers import LOGGER


@pytest.fixture(autouse=True)
def _capture_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
