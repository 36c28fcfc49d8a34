"""The deadline callback, the verdict notifier and the nightly's set-up (no Airflow run)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from k1n.dag_builders import nightly
from k1n.dag_builders.alerts import VerdictNotifier, workflow_deadline_missed


def test_deadline_callback_logs_a_clear_message(caplog):
    with caplog.at_level(logging.ERROR, logger="k1n.dag_builders.alerts"):
        message = asyncio.run(workflow_deadline_missed(limit_minutes=1.5, target=90))
    assert "deadline missed" in message and "1.5 min" in message and "90" in message
    assert message in caplog.text


def test_verdict_notifier_logs_the_summary(caplog):
    with caplog.at_level(logging.ERROR, logger="k1n.dag_builders.alerts"):
        VerdictNotifier(title="nightly failed").notify({"exception": RuntimeError("run failed")})
    assert "nightly failed" in caplog.text and "run failed" in caplog.text


def test_mail_is_off_unless_configured(monkeypatch):
    monkeypatch.delenv(nightly.EMAIL_ENV, raising=False)
    assert [type(n).__name__ for n in nightly._notifiers()] == ["VerdictNotifier"]
    monkeypatch.setenv(nightly.EMAIL_ENV, "ops@example.org")
    assert [type(n).__name__ for n in nightly._notifiers()] == ["VerdictNotifier", "SmtpNotifier"]


def test_the_failure_mail_escapes_what_the_exception_echoes(monkeypatch):
    monkeypatch.setenv(nightly.EMAIL_ENV, "ops@example.org")
    (mail,) = [n for n in nightly._notifiers() if type(n).__name__ == "SmtpNotifier"]
    hostile = '<img src=x onerror="alert(1)">&'
    from airflow.sdk import DAG

    context = {
        "dag": DAG(dag_id="k1n_nightly_test", schedule=None),
        "exception": ValueError(f"target_dag_id {hostile}: no such DAG"),
        "run_id": "r1",
    }
    mail.render_template_fields(context)
    assert hostile not in mail.html_content
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;" in mail.html_content
    assert mail.html_content.startswith("<pre>") and mail.html_content.endswith("</pre>")


def test_timezone_defaults_to_utc(monkeypatch):
    monkeypatch.delenv(nightly.TIMEZONE_ENV, raising=False)
    assert nightly.nightly_timezone() == "UTC"
    monkeypatch.setenv(nightly.TIMEZONE_ENV, "Europe/Berlin")
    assert nightly.nightly_timezone() == "Europe/Berlin"


def test_missing_connections_fail_at_once_saying_how_to_create_them(monkeypatch):
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    def undefined(conn_id):
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    monkeypatch.setattr(BaseHook, "get_connection", undefined)
    with pytest.raises(AirflowFailException) as caught:
        nightly.require_connections()
    message = str(caught.value)
    assert "\n" not in message
    for conn_id in ("k1n_airflow_api", "k1n_metrics"):
        assert f"connection '{conn_id}' is not defined: create" in message
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in message
    assert "airflow connections add" in message and "docs/DEPLOY.md" in message

    monkeypatch.setattr(BaseHook, "get_connection", lambda conn_id: object())
    nightly.require_connections()  # both defined: nothing raised
