"""Every `K1N_*` variable through one model: defaults, blanks, one-line errors naming the
variable, and a given environment read alone."""

from __future__ import annotations

import pytest

from k1n import settings
from k1n.settings import SettingsError, k1n_settings


def test_unset_and_blank_variables_take_their_defaults() -> None:
    configured = k1n_settings({"K1N_TIME_SCALE": "   ", "K1N_CODEGEN_SHARDS": ""})
    assert configured.time_scale == settings.DEFAULT_TIME_SCALE
    assert configured.codegen_shards == settings.DEFAULT_CODEGEN_SHARDS
    assert configured.nightly_timezone == "UTC"
    assert configured.airflow_url == settings.DEFAULT_AIRFLOW_URL
    assert configured.storage_url is None


def test_values_are_read_and_trimmed() -> None:
    configured = k1n_settings(
        {"K1N_TIME_SCALE": " 1/30 ", "K1N_CODEGEN_SHARDS": "8", "K1N_NIGHTLY_EMAIL": " a@b.c "}
    )
    assert configured.time_scale == pytest.approx(1 / 30)
    assert configured.codegen_shards == 8
    assert configured.nightly_email == "a@b.c"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"K1N_TIME_SCALE": "abc"}, "K1N_TIME_SCALE: expected a number"),
        ({"K1N_TIME_SCALE": "9" * 5000}, "K1N_TIME_SCALE: expected a number"),
        ({"K1N_TIME_SCALE": "2"}, "K1N_TIME_SCALE: 2 is outside"),
        ({"K1N_CODEGEN_SHARDS": "0"}, "K1N_CODEGEN_SHARDS must be a whole number from 1 to 64"),
        ({"K1N_CODEGEN_SHARDS": "1\n2"}, "K1N_CODEGEN_SHARDS must be a whole number"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ, message) -> None:
    with pytest.raises(SettingsError) as caught:
        k1n_settings(environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_a_given_environment_is_read_alone(monkeypatch) -> None:
    monkeypatch.setenv("K1N_CODEGEN_SHARDS", "9")
    assert k1n_settings({}).codegen_shards == settings.DEFAULT_CODEGEN_SHARDS
    assert k1n_settings().codegen_shards == 9  # the process environment, read afresh
    monkeypatch.setenv("K1N_CODEGEN_SHARDS", "3")
    assert settings.codegen_shards() == 3


def test_the_process_environment_is_read_on_each_call(monkeypatch) -> None:
    monkeypatch.setenv("K1N_CODEGEN_SHARDS", "8")
    first = k1n_settings()
    assert k1n_settings() is first  # the same variables: the model built once
    monkeypatch.setenv("K1N_CODEGEN_SHARDS", "16")
    assert settings.codegen_shards() == 16
    monkeypatch.setenv("k1n_codegen_shards", "32")  # pydantic-settings ignores the case
    monkeypatch.delenv("K1N_CODEGEN_SHARDS")
    assert settings.codegen_shards() == 32
    monkeypatch.setenv("k1n_codegen_shards", "0")
    with pytest.raises(SettingsError, match="K1N_CODEGEN_SHARDS must be a whole number"):
        k1n_settings()
    monkeypatch.delenv("k1n_codegen_shards")
    assert settings.codegen_shards() == settings.DEFAULT_CODEGEN_SHARDS
