"""`k1n check-secrets`, which compose's airflow-init runs first: placeholders stop the
deployment with one line naming the variable, and no value is ever printed."""

from __future__ import annotations

import secrets

import pytest

from k1n.airflow_settings.secrets import DEPLOYMENT_SECRETS, main


@pytest.fixture
def real_secrets(monkeypatch) -> dict[str, str]:
    values = {name: secrets.token_urlsafe(24) for name in DEPLOYMENT_SECRETS}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_real_values_pass(real_secrets, capsys) -> None:
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert err == "" and not any(value in out for value in real_secrets.values())


@pytest.mark.parametrize(
    "value", ["change-me-postgres", "CHANGE-ME-jwt-secret-please", "secret-secret-secret", "x7Qp"]
)
@pytest.mark.parametrize("name", ["POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET"])
def test_a_placeholder_stops_the_deployment_in_one_line(
    real_secrets, monkeypatch, capsys, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: {name} is unset, a placeholder") and err.count("\n") == 1
    assert value not in err


def test_an_unset_secret_is_named(real_secrets, monkeypatch, capsys) -> None:
    monkeypatch.delenv("FLOWER_PASSWORD")
    assert main([]) == 2
    assert "FLOWER_PASSWORD" in capsys.readouterr().err
