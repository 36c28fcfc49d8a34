"""Untrusted text (task names, run ids, notes) cannot break out of Markdown code spans or turn
into spreadsheet formulas."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from airflow_bottleneck.analysis.formatting import csv_cell, md_code


def _inside(span: str) -> str:
    fence = re.match(r"`+", span).group(0)
    assert span.endswith(fence)
    return span[len(fence) : -len(fence)]


def test_a_double_backtick_cannot_close_the_span() -> None:
    span = md_code("a``<img src=x onerror=alert(1)>``b")
    fence = re.match(r"`+", span).group(0)
    assert len(fence) == 3
    assert "``" in _inside(span) and "```" not in _inside(span)


@given(st.text(alphabet="`ab <>|\n", max_size=40))
def test_no_run_of_backticks_inside_matches_the_fence(text: str) -> None:
    span = md_code(text)
    fence = re.match(r"`+", span).group(0)
    runs = re.findall(r"`+", _inside(span))
    assert all(len(run) != len(fence) for run in runs)
    assert "\n" not in span


def test_formulas_behind_spaces_or_line_breaks_are_neutralised() -> None:
    for value in (' =HYPERLINK("http://x")', "\n=1+1", "\t@SUM(A1)", "  +cmd", "=1"):
        assert csv_cell(value) == "'" + value
    assert csv_cell("plain text") == "plain text"
    assert csv_cell(3.5) == 3.5
