"""Property-based: any YAML a user could hand to `k1n check-spec` or `k1n settings load` is a
spec/settings object or one line of error, quickly (the suites run in CI with a fixed budget)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k1n.airflow_settings.file import DEFAULT_SETTINGS_PATH, SettingsError, parse_settings
from k1n.workflow.spec import DEFAULT_SPEC_PATH, SpecError, load_spec

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([".inf", "-.nan", "1e300", "*x", "&x", "{", "- -", "'"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
FUZZ = settings(
    max_examples=150,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SPEC = yaml.safe_load(DEFAULT_SPEC_PATH.read_text())
SETTINGS = yaml.safe_load(Path(DEFAULT_SETTINGS_PATH).read_text())


def mutated(document: dict, data: st.DataObject) -> dict:
    """The real file with one value somewhere replaced by an arbitrary one."""
    document = copy.deepcopy(document)
    node = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return document
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(VALUES)
        return document


def check_one_line(error: Exception) -> None:
    text = str(error)
    assert "\n" not in text and len(text) < 600, text


@FUZZ
@given(data=st.data())
def test_any_mutation_of_the_spec_is_a_spec_or_one_error(tmp_path, data) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(mutated(SPEC, data)))
    try:
        load_spec(path)
    except SpecError as error:
        check_one_line(error)


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text_as_a_spec_is_a_spec_or_one_error(tmp_path, text) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError as error:
        check_one_line(error)


@FUZZ
@given(data=st.data())
def test_any_mutation_of_the_settings_is_settings_or_one_error(tmp_path, data) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(yaml.safe_dump(mutated(SETTINGS, data)))
    try:
        parse_settings(path)
    except SettingsError as error:
        check_one_line(error)


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text_as_settings_is_settings_or_one_error(tmp_path, text) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    try:
        parse_settings(path)
    except SettingsError as error:
        check_one_line(error)
