"""A run's conf is input: its time scale and test knobs are checked, with one-line errors."""

from __future__ import annotations

import math

import pytest

from k1n.settings import parse_time_scale
from k1n.workflow.run_conf import (
    FAILING_GATES_MAX,
    LIBRARY_VARIANT_MAX,
    SLOW_FACTOR_MAX,
    RunConfError,
    knob,
    library_variant,
)

IDS = set(range(1, 23))


def slow(conf):
    return knob(conf, "slow_tasks", known_ids=IDS, integer=False, maximum=SLOW_FACTOR_MAX)


def failing(conf):
    return knob(conf, "failing_gates", known_ids=IDS, integer=True, maximum=FAILING_GATES_MAX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1/60", 1 / 60), (0.5, 0.5), (1, 1.0), ("1/3600", 1 / 3600), (" 0.25 ", 0.25)],
)
def test_time_scales_in_range(value, expected):
    assert parse_time_scale(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [1e-310, 5e-324, 0, -1, 1e300, 2, math.inf, math.nan, "1/0", "abc", True, None, [1], "1" * 50],
)
def test_time_scales_out_of_range_or_not_numbers_are_refused_in_one_line(value):
    with pytest.raises(ValueError, match=r"^time_scale: ") as caught:
        parse_time_scale(value)
    assert "\n" not in str(caught.value)


def test_knobs_are_read_with_their_types():
    assert slow({}) == {} and slow(None) == {} and slow({"slow_tasks": {}}) == {}
    assert slow({"slow_tasks": {"13": 3}}) == {13: 3.0}
    assert failing({"failing_gates": {"5": 10}}) == {5: 10}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"slow_tasks": {"13": 1e308}}, r"slow_tasks\.13: 1e\+308 is outside \(0, 100\]"),
        ({"slow_tasks": {"13": 0}}, r"slow_tasks\.13: 0 is outside"),
        ({"slow_tasks": {"13": "3"}}, r"slow_tasks\.13: expected a number"),
        ({"slow_tasks": {"99": 2}}, "slow_tasks: task 99 is not in the workflow spec"),
        ({"slow_tasks": {"x": 2}}, "slow_tasks: 'x' is not a task id"),
        ({"slow_tasks": [13]}, "slow_tasks: expected a mapping"),
        ({"failing_gates": {"5": 2.5}}, r"failing_gates\.5: expected a whole number"),
        ({"failing_gates": {"5": -1}}, r"failing_gates\.5: -1 is outside \[0, 10000\]"),
        ({"failing_gates": {"5": math.nan}}, r"failing_gates\.5: "),
    ],
)
def test_bad_knobs_are_refused_naming_the_key(conf, message):
    read = slow if "slow_tasks" in conf else failing
    with pytest.raises(RunConfError, match=message):
        read(conf)


@pytest.mark.parametrize(
    ("conf", "expected"),
    [(None, 0), ({}, 0), ({"library_variant": 0}, 0), ({"library_variant": 7}, 7)],
)
def test_library_variants_in_range(conf, expected):
    assert library_variant(conf, library_configured=False) == expected


@pytest.mark.parametrize("value", [-1, 1.5, "2", True, [1], LIBRARY_VARIANT_MAX + 1])
def test_library_variants_out_of_range_or_not_whole_numbers_are_refused(value):
    with pytest.raises(RunConfError, match=r"^library_variant: expected a whole number") as caught:
        library_variant({"library_variant": value}, library_configured=False)
    assert "\n" not in str(caught.value)


def test_a_configured_library_refuses_a_variant_but_not_the_usual_one():
    assert library_variant({"library_variant": 0}, library_configured=True) == 0
    with pytest.raises(RunConfError, match="K1N_PATTERN_LIBRARY names a library of its own"):
        library_variant({"library_variant": 1}, library_configured=True)
