"""spinerisk.validate: declared conversions, raise vs split, failures table, accounting."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.schema import SPINE_SCHEMA
from spinerisk.schema._validate import FAILURE_COLUMNS


def test_valid_cohort_gets_schema_dtypes_and_keeps_index(cohort):
    cohort.index = pd.RangeIndex(1000, 1000 + len(cohort))
    out = sr.validate(cohort)
    assert out.index.equals(cohort.index)
    for col in out.columns:
        assert out[col].dtype == SPINE_SCHEMA[col].pandas_dtype(), col


def test_values_are_never_changed(cohort):
    out = sr.validate(cohort)
    for col in ("age_years", "bmi", "hu_l1", "fx_time_days"):
        np.testing.assert_array_equal(out[col].to_numpy(float), cohort[col].to_numpy(float))
    assert (out["level"].astype(object) == cohort["level"].astype(object)).all()


def test_declared_conversions_from_text(cohort):
    """What a CSV gives (all text) validates to the same typed frame."""
    as_text = cohort.astype(object).where(cohort.notna(), None)
    as_text = as_text.map(lambda v: v if v is None else str(v))
    as_text["index_date"] = cohort["index_date"].dt.strftime("%Y-%m-%d")
    typed = sr.validate(cohort)
    from_text = sr.validate(as_text)
    pd.testing.assert_frame_equal(from_text, typed, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize(
    "field, values, expected",
    [
        ("current_smoking", [1, 0, None], [True, False, None]),
        ("current_smoking", ["true", "FALSE", "1"], [True, False, True]),
        ("falls_12m_count", [2.0, 0.0, None], [2, 0, None]),
        ("falls_12m_count", ["3", "0", ""], [3, 0, None]),
        ("patient_id", [101, 102, 103], ["101", "102", "103"]),
    ],
)
def test_each_declared_conversion(cohort, field, values, expected):
    part = cohort.head(3).copy()
    part[field] = pd.Series(values, index=part.index, dtype=object)
    out = sr.validate(part)[field]
    assert [None if pd.isna(v) else v for v in out] == expected


def test_raise_lists_every_problem_with_record_row_column_value_expected(cohort):
    cohort["sex"] = cohort["sex"].astype(object)
    cohort.loc[4, "age_years"] = 300.0
    cohort.loc[9, "sex"] = "X"
    cohort.loc[9, "hu_l1"] = 5000.0
    with pytest.raises(sr.SchemaValidationError) as info:
        sr.validate(cohort, source="site7.csv")
    msg = str(info.value)
    assert msg.startswith("3 problems in 2 of 300 records from 'site7.csv'.")
    pid4, pid9 = cohort.loc[4, "patient_id"], cohort.loc[9, "patient_id"]
    assert f"record {pid4} (row 4): age_years=300.0 is out of range; expected 18 <=" in msg
    assert f"record {pid9} (row 9): sex='X' is not an allowed code; expected one of F, M" in msg
    assert f"record {pid9} (row 9): hu_l1=5000.0 is out of range" in msg
    failures = info.value.failures
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures[["row", "column"]].values.tolist() == [
        [4, "age_years"],
        [9, "hu_l1"],
        [9, "sex"],
    ]
    assert failures.loc[failures["column"] == "sex", "record_id"].item() == pid9


def test_split_accounts_for_every_record(cohort):
    bad_rows = [3, 50, 51, 299]
    cohort.loc[3, "bmi"] = -2.0
    cohort["level"] = cohort["level"].astype(object)
    cohort.loc[50, "level"] = "L7"
    cohort.loc[51, "patient_id"] = cohort.loc[52, "patient_id"]  # duplicate: 51 and 52
    cohort.loc[299, "fx_time_days"] = 0.0
    valid, rejects = sr.validate(cohort, on_invalid="split")
    assert len(valid) + len(rejects) == len(cohort)
    assert sorted(rejects["row"]) == sorted(bad_rows + [52])
    assert not set(valid.index) & set(rejects.index)
    reasons = dict(zip(rejects["row"], rejects["reasons"], strict=True))
    assert "bmi=-2.0 is out of range" in reasons[3]
    assert "level='L7'" in reasons[50]
    assert "is a duplicate" in reasons[51] and "is a duplicate" in reasons[52]
    assert "fx_time_days must be greater than 0" in reasons[299]
    # rejects keep the values as given, for correction at the source
    assert rejects.loc[rejects["row"] == 50, "level"].item() == "L7"


def test_split_with_no_problem_returns_empty_rejects(cohort):
    valid, rejects = sr.validate(cohort, on_invalid="split")
    assert len(valid) == len(cohort) and len(rejects) == 0
    assert list(rejects.columns[:2]) == ["row", "reasons"]


def test_frame_level_problems_raise_even_in_split_mode(cohort):
    with pytest.raises(sr.SchemaValidationError, match="column 'shoe_size' is not a field"):
        sr.validate(cohort.assign(shoe_size=42), on_invalid="split")
    with pytest.raises(sr.SchemaValidationError, match="column 'sex' is required"):
        sr.validate(cohort.drop(columns="sex"), on_invalid="split")
    with pytest.raises(sr.SchemaValidationError, match="has no records"):
        sr.validate(cohort.iloc[:0], on_invalid="split")


def test_message_is_capped_but_failures_are_complete(cohort):
    cohort["age_years"] = 500.0
    with pytest.raises(sr.SchemaValidationError) as info:
        sr.validate(cohort)
    msg = str(info.value)
    assert "... and 280 more" in msg
    assert msg.count("is out of range") == 20
    assert len(info.value.failures) == 300


def test_all_missing_optional_column_warns(cohort):
    cohort["hu_l1"] = np.nan
    with pytest.warns(sr.DataQualityWarning, match="'hu_l1' is entirely missing"):
        sr.validate(cohort)


def test_no_warning_for_a_normal_cohort(cohort):
    with warnings.catch_warnings():
        warnings.simplefilter("error", sr.DataQualityWarning)
        sr.validate(cohort)


def test_coercion_off_requires_the_exact_dtype(cohort):
    schema = SPINE_SCHEMA.replace("age_years", coerce=False)
    cohort["age_years"] = cohort["age_years"].astype(str)
    with pytest.raises(sr.SchemaValidationError, match="coerce is off"):
        sr.validate(cohort, schema)


def test_argument_errors(cohort):
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        sr.validate(cohort.to_dict("records"))
    with pytest.raises(ValueError, match="on_invalid must be"):
        sr.validate(cohort, on_invalid="drop")
    with pytest.raises(TypeError, match="must be a spinerisk Schema"):
        sr.validate(cohort, schema={"age_years": float})


def test_input_frame_is_not_modified(cohort):
    cohort["sex"] = cohort["sex"].astype(object)
    before = cohort.copy()
    cohort.loc[0, "sex"] = "X"
    before.loc[0, "sex"] = "X"
    sr.validate(cohort, on_invalid="split")
    pd.testing.assert_frame_equal(cohort, before)


def test_validated_records_keep_the_synthetic_label():
    cohort = sr.make_spine_cohort(200, seed=0)
    assert sr.validate(cohort).attrs["synthetic"] is True
    broken = cohort.copy()
    broken.loc[broken.index[0], "age_years"] = 300.0
    valid, rejects = sr.validate(broken, on_invalid="split")
    assert len(rejects) == 1
    assert valid.attrs["synthetic"] is True and rejects.attrs["synthetic"] is True
    model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(valid)
    assert model.reference_["synthetic"] is True  # fitted on the validated split


def test_time_zone_aware_dates_and_decimals_are_read():
    import decimal

    cohort = sr.make_spine_cohort(6, seed=0)
    text = cohort.copy()
    text["index_date"] = text["index_date"].astype(str)
    text.loc[1, "index_date"] = "2020-01-02T23:30+09:00"  # local calendar date kept
    text.loc[2, "index_date"] = "2020-01-03T00:00-05:00"  # a second time zone
    text.loc[3, "index_date"] = "2020-13-40"
    valid, rejects = sr.validate(text, on_invalid="split")
    assert list(valid["index_date"].iloc[1:3]) == [
        pd.Timestamp("2020-01-02 23:30"),
        pd.Timestamp("2020-01-03"),
    ]
    assert list(rejects["row"]) == [3]
    assert rejects["reasons"].iloc[0] == (
        "index_date='2020-13-40' is not a date; expected a date (YYYY-MM-DD)"
    )
    aware = cohort.copy()
    aware["index_date"] = pd.to_datetime(aware["index_date"]).dt.tz_localize("Europe/Paris")
    assert sr.validate(aware)["index_date"].dtype == "datetime64[ns]"
    numeric = cohort.copy()
    numeric["age_years"] = [decimal.Decimal("67.5")] * len(numeric)  # SQL NUMERIC via Parquet
    assert sr.validate(numeric)["age_years"].tolist() == [67.5] * len(numeric)


def test_schema_validation_errors_survive_pickling():
    """They travel from Dask workers to the client with their failures table."""
    import pickle

    with pytest.raises(sr.SchemaValidationError) as raised:
        sr.validate(sr.make_spine_cohort(5, seed=0).assign(age_years=300.0))
    copy = pickle.loads(pickle.dumps(raised.value))
    assert str(copy) == str(raised.value)
    pd.testing.assert_frame_equal(copy.failures, raised.value.failures)


def test_the_mri_rule_runs_when_only_one_pattern_column_is_present():
    cohort = sr.make_spine_cohort(3, seed=0).drop(columns=["t2_pattern"])
    cohort["mri_done"] = False
    cohort["t1_pattern"] = "diffuse_low"
    valid, rejects = sr.validate(cohort, on_invalid="split")
    assert len(valid) == 0 and len(rejects) == 3
    assert rejects["reasons"].str.startswith("an MRI pattern is recorded but mri_done").all()


def test_the_genant_rule_message_gives_its_real_boundaries():
    cohort = sr.make_spine_cohort(2, seed=0)
    cohort["height_loss0_pct"] = [40.0, 25.0]
    cohort["genant_grade0"] = [2, 1]  # the bins are half-open: 40 is grade 3, 25 grade 2
    _, rejects = sr.validate(cohort, on_invalid="split")
    assert len(rejects) == 2
    assert "2: 25 to <40%, 3: >=40%" in rejects["reasons"].iloc[0]


def test_equal_schemas_that_differ_in_detail_do_not_share_their_checks():
    """The pandera schema is built once per Schema object, not per equal schema: codes
    (1, 2) and (1.0, 2.0) compare equal but give the column different dtypes."""
    from spinerisk.schema import FieldSpec, Schema

    def schema(codes):
        return Schema(
            (
                FieldSpec("pid", "string", "Patient.", role="id"),
                FieldSpec("code", "category", "A code.", categories=codes),
            ),
            name="codes",
        )

    ints, floats = schema((1, 2)), schema((1.0, 2.0))
    assert ints == floats
    frame = pd.DataFrame({"pid": ["a", "b"], "code": [1.0, 2.0]})
    alone = sr.validate(frame, floats, on_invalid="split")
    sr.validate(pd.DataFrame({"pid": ["a", "b"], "code": [1, 2]}), ints, on_invalid="split")
    after = sr.validate(frame, floats, on_invalid="split")
    pd.testing.assert_frame_equal(after[1], alone[1])  # the same rejects, with reasons
    pd.testing.assert_frame_equal(after[0], alone[0])
