"""The task-instance table: typing, spec ids, final tries, interval unions, one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_bottleneck.analysis import AnalysisInputError, normalize_instances
from airflow_bottleneck.analysis.table import covered_seconds
from k1n.workflow.names import spec_id_from_task_id
from tests.airflow_bottleneck.analysis.helpers import instance, table


@pytest.mark.parametrize(
    ("task_id", "spec_id"),
    [
        ("task_08_code_generation", 8),
        ("task_08_code_generation.generate_code", 8),
        ("task_22_final_report", 22),
        ("task_3", 3),
        ("check_quality_gates", None),
        ("subtask_01", None),
    ],
)
def test_spec_id_from_the_airflow_task_id(task_id: str, spec_id: int | None) -> None:
    assert spec_id_from_task_id(task_id) == spec_id
    frame = table(instance(task_id, 0, 1))
    value = normalize_instances(frame, spec_id_from_task_id)["spec_id"].iloc[0]
    assert pd.isna(value) if spec_id is None else value == spec_id


def test_iso_strings_become_utc_and_seconds_come_from_duration_or_times() -> None:
    raw = pd.DataFrame(
        {
            "task_id": ["task_01_a", "task_02_b", "task_03_c"],
            "start": ["2026-11-25T20:00:00Z", "2026-11-25T21:00:00+01:00", None],
            "end": ["2026-11-25T20:00:05.5Z", "2026-11-25T20:00:10Z", None],
            "duration": [5.0, None, None],
            "state": ["success", "success", "upstream_failed"],
        }
    )
    normalized = normalize_instances(raw)
    assert str(normalized["start"].dt.tz) == "UTC"
    assert normalized["seconds"].tolist() == [5.0, 10.0, 0.0]
    assert normalized["map_index"].tolist() == [-1, -1, -1]
    assert normalized["try_number"].tolist() == [1, 1, 1]
    assert normalized["t_end"].iloc[0] - normalized["t_start"].iloc[0] == pytest.approx(5.5)
    assert normalize_instances(normalized) is normalized


def test_final_is_the_highest_try_of_each_instance() -> None:
    rows = table(
        instance("task_01_a", 0, 1, try_number=2),
        instance("task_01_a", 0, 1, try_number=1),
        instance("task_01_a", 0, 1, try_number=1, map_index=0),
        instance("task_01_a", 0, 1, try_number=1, run_id="other"),
    )
    assert normalize_instances(rows)["final"].tolist() == [True, False, True, True]


def test_spec_id_given_by_a_loader_wins() -> None:
    rows = table(instance("security_scan", 0, 1, spec_id=1), instance("task_02_b", 0, 1))
    assert normalize_instances(rows, spec_id_from_task_id)["spec_id"].tolist() == [1, 2]


def test_without_a_task_number_no_task_is_numbered() -> None:
    numbers = normalize_instances(table(instance("task_02_b", 0, 1)))["spec_id"]
    assert numbers.isna().all()


def test_end_before_start_is_one_line() -> None:
    with pytest.raises(AnalysisInputError, match=r"task_01_a .*ends before it starts") as caught:
        normalize_instances(table(instance("task_01_a", 10, 5)))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"start": ["2026-11-25T20:00:00Z"]}), "no 'task_id' column"),
        (pd.DataFrame({"task_id": ["t", None]}), "#2 has no task_id"),
        (pd.DataFrame({"task_id": ["t"], "start": ["yesterday"]}), "column 'start'"),
        (pd.DataFrame({"task_id": ["t"], "duration": ["long"]}), "column 'duration'"),
        (pd.DataFrame({"task_id": ["t"], "duration": [-1.0]}), "ends before it starts"),
    ],
)
def test_unusable_tables_raise_analysis_input_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        normalize_instances(frame)


def test_covered_seconds_is_the_union_per_group() -> None:
    starts = np.array([0.0, 2.0, 10.0, 0.0, 5.0, np.nan])
    ends = np.array([5.0, 4.0, 12.0, 1.0, 6.0, 3.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    # Group 0: [0,5] u [2,4] u [10,12] = 7; group 1: [0,1] u [5,6] = 2 (the NaN row ignored).
    assert covered_seconds(starts, ends, groups).tolist() == [7.0, 2.0]
    assert covered_seconds(starts[:3], ends[:3]).tolist() == [7.0]
