"""Per-record input checks against a training reference (spinerisk.monitor)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.monitor import WARNING_CODES, input_warning_table, input_warnings


def _reference() -> dict:
    """A hand-written reference, so every expected flag is known without fitting."""
    return {
        "format": "spinerisk-reference",
        "version": 1,
        "fields": {
            "age_years": {"kind": "numeric", "min": 60.0, "max": 100.0, "missing_rate": 0.0},
            "hu_l1": {"kind": "numeric", "min": 10.0, "max": 300.0, "missing_rate": 0.40},
            "egfr": {"kind": "numeric", "min": 5.0, "max": 130.0, "missing_rate": 0.01},
            "treatment": {
                "kind": "categorical",
                "dtype": "category",
                "counts": {"conservative": 700, "vertebroplasty": 130, "fixation": 30},
                "missing_rate": 0.0,
            },
            "dementia": {
                "kind": "categorical",
                "dtype": "bool",
                "counts": {"False": 900},
                "missing_rate": 0.0,
            },
        },
    }


@pytest.fixture
def records(valid_cohort):
    rec = valid_cohort.head(6).copy()
    rec["age_years"] = 75.0
    rec["hu_l1"] = 120.0
    rec["egfr"] = 60.0
    rec["treatment"] = pd.Categorical(
        ["conservative"] * 6, categories=sr.SPINE_SCHEMA["treatment"].categories
    )
    rec["dementia"] = pd.array([False] * 6, dtype="boolean")
    return rec


def test_each_code_is_flagged_with_field_value_and_message(records):
    records.loc[records.index[1], "age_years"] = 104.0  # out of range
    records.loc[records.index[2], "treatment"] = "kyphoplasty"  # unseen code
    records.loc[records.index[3], "egfr"] = np.nan  # rarely missing (1% in training)
    records.loc[records.index[4], "hu_l1"] = np.nan  # often missing (40%): not flagged
    records.loc[records.index[5], "dementia"] = True  # unseen boolean value
    table = input_warning_table(_reference(), records)
    assert list(table.columns) == ["row", "code", "field", "value", "message"]
    got = set(table[["row", "code", "field", "value"]].itertuples(index=False, name=None))
    assert got == {
        (1, "out_of_range", "age_years", "104"),
        (2, "unseen_category", "treatment", "kyphoplasty"),
        (3, "rarely_missing", "egfr", "missing"),
        (5, "unseen_category", "dementia", "True"),
    }
    assert set(table["code"]) <= set(WARNING_CODES)
    msg = table.set_index("row")["message"]
    assert msg[1] == "age_years=104 is outside the training range 60 to 100."
    assert "1.0% of training records" in msg[3]

    strings = input_warnings(_reference(), records)
    assert strings.index.equals(records.index)
    assert strings.iloc[0] == "" and strings.iloc[4] == ""
    # the string style RiskModel._warnings used before stays a prefix of each entry
    assert strings.iloc[1] == "out_of_range:age_years=104 (training 60 to 100)"
    assert strings.iloc[2].startswith("unseen_category:treatment=kyphoplasty")
    assert strings.iloc[3] == "rarely_missing:egfr=missing (missing in 1.0% of training records)"


def test_several_warnings_of_one_record_are_joined_in_field_order(records):
    i = records.index[0]
    records.loc[i, ["age_years", "egfr"]] = [55.0, 200.0]
    records.loc[i, "treatment"] = "kyphoplasty"
    text = input_warnings(_reference(), records).iloc[0]
    assert text.split("; ") == [
        "out_of_range:age_years=55 (training 60 to 100)",
        "out_of_range:egfr=200 (training 5 to 130)",
        "unseen_category:treatment=kyphoplasty (not in the training data)",
    ]


def test_threshold_for_rarely_missing_is_a_parameter(records):
    records.loc[records.index[0], "hu_l1"] = np.nan
    assert input_warnings(_reference(), records).iloc[0] == ""
    flagged = input_warnings(_reference(), records, rarely_missing_below=0.5).iloc[0]
    assert flagged.startswith("rarely_missing:hu_l1=missing")
    with pytest.raises(ValueError, match="rarely_missing_below must be a share"):
        input_warnings(_reference(), records, rarely_missing_below=5)


def test_an_absent_column_counts_as_missing_in_every_record(records):
    table = input_warning_table(_reference(), records.drop(columns=["egfr"]))
    assert table["row"].tolist() == list(range(len(records)))
    assert set(table["code"]) == {"rarely_missing"} and set(table["field"]) == {"egfr"}


def test_index_is_kept_and_nothing_flagged_gives_an_empty_table(records):
    records.index = [f"r{i}" for i in range(len(records))]
    assert input_warnings(_reference(), records).index.tolist() == records.index.tolist()
    assert (input_warnings(_reference(), records) == "").all()
    assert input_warning_table(_reference(), records).empty


def test_a_foreign_object_is_refused_with_a_clear_error(records):
    with pytest.raises(ValueError, match="Not a spinerisk training reference"):
        input_warnings({"fields": {}}, records)
    with pytest.raises(ValueError, match="has no training reference"):
        input_warnings(object(), records)


def test_vectorised_on_a_large_batch(records):
    big = records.iloc[np.tile(np.arange(len(records)), 40_000)].reset_index(drop=True)
    big.loc[::1000, "age_years"] = 104.0
    start = time.perf_counter()
    out = input_warnings(_reference(), big)
    elapsed = time.perf_counter() - start
    assert int((out != "").sum()) == 240
    assert elapsed < 5.0, f"{elapsed:.2f} s for 240,000 records"
