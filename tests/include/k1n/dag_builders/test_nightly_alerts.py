"""The deadline callback, the verdict notifier and the nightly's set-up (no Airflow run)."""

from __future__ import annotations

import asyncio
import logging

from include.k1n.dag_builders import nightly
from include.k1n.dag_builders.alerts import VerdictNotifier, workflow_deadline_missed


def test_deadline_callback_logs_a_clear_message(caplog):
    with caplog.at_level(logging.ERROR, logger="include.k1n.dag_builders.alerts"):
        message = asyncio.run(workflow_deadline_missed(limit_minutes=1.5, target=90))
    assert "deadline missed" in message and "1.5 min" in message and "90" in message
    assert message in caplog.text


def test_verdict_notifier_logs_the_summary(caplog):
    with caplog.at_level(logging.ERROR, logger="include.k1n.dag_builders.alerts"):
        VerdictNotifier(title="nightly failed").notify({"exception": RuntimeError("run failed")})
    assert "nightly failed" in caplog.text and "run failed" in caplog.text


def test_mail_is_off_unless_configured(monkeypatch):
    monkeypatch.delenv(nightly.EMAIL_ENV, raising=False)
    assert [type(n).__name__ for n in nightly._notifiers()] == ["VerdictNotifier"]
    monkeypatch.setenv(nightly.EMAIL_ENV, "ops@example.org")
    assert [type(n).__name__ for n in nightly._notifiers()] == ["VerdictNotifier", "SmtpNotifier"]


def test_timezone_defaults_to_utc(monkeypatch):
    monkeypatch.delenv(nightly.TIMEZONE_ENV, raising=False)
    assert nightly.nightly_timezone() == "UTC"
    monkeypatch.setenv(nightly.TIMEZONE_ENV, "Europe/Berlin")
    assert nightly.nightly_timezone() == "Europe/Berlin"
