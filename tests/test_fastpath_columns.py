"""The fast path's record checks column by column (batches) equal those record by record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from json_records import json_records, same_records

import spinerisk as sr
from spinerisk.fastpath import _records
from spinerisk.fastpath._records import RecordChecker
from spinerisk.schema import SPINE_SCHEMA

N = 2 * _records._BY_COLUMN_FROM


@pytest.fixture(scope="module")
def valid() -> list[dict]:
    cohort = sr.make_spine_cohort(4 * N, seed=7)
    rows = json_records(cohort)
    split = sr.validate(pd.DataFrame.from_records(rows), on_invalid="split")
    out = [rows[i] for i in split.valid.index[:N]]
    assert len(out) == N
    return out


def _both(records, monkeypatch):
    checker = RecordChecker(SPINE_SCHEMA)
    by_column = checker.check(records)
    with monkeypatch.context() as m:
        m.setattr(_records, "_BY_COLUMN_FROM", 10**9)
        by_record = RecordChecker(SPINE_SCHEMA).check(records)
    return by_column, by_record


CHANGES = [
    {},
    {"age_years": 70},
    {"age_years": None},
    {"age_years": float("nan")},
    {"age_years": -0.0, "bmi": -0.0},
    {"age_years": float("inf")},
    {"age_years": 200.0},
    {"age_years": " 71.5 "},
    {"age_years": True},
    {"age_years": 2**63},
    {"age_years": -(2**63) - 1},
    {"prior_fx_count": 2.0},
    {"prior_fx_count": 2.5},
    {"prior_fx_count": 2**53 + 1},
    {"prior_fx_count": None},
    {"sex": "X"},
    {"sex": None},
    {"sex": ""},
    {"sex": " F"},
    {"sex": 1},
    {"mri_done": 1},
    {"mri_done": "true"},
    {"mri_done": None},
    {"mri_done": False, "t1_pattern": "hypointense"},
    {"patient_id": ""},
    {"patient_id": "  "},
    {"patient_id": 123},
    {"patient_id": None},
    {"index_date": "2024-02-30"},
]


@pytest.mark.parametrize("change", CHANGES, ids=repr)
@pytest.mark.parametrize("where", [0, N - 1])
def test_one_unusual_value_in_a_batch(change, where, valid, monkeypatch):
    """One record changed: both ways accept with the same typed values, or both defer."""
    records = [dict(r) for r in valid]
    records[where].update(change)
    by_column, by_record = _both(records, monkeypatch)
    assert same_records(by_column, by_record)


def test_values_typed_and_rules_checked_column_by_column(valid, monkeypatch):
    """Valid records are accepted either way; a rule broken in one record of many sharing
    its values (checked on the batch's columns) is found either way."""
    by_column, by_record = _both(valid, monkeypatch)
    assert by_column is not None and same_records(by_column, by_record)
    assert all(isinstance(t["age_years"], float) for t in by_column)
    records = [dict(r, mri_done=False, t1_pattern=None, t2_pattern=None) for r in valid]
    assert _both(records, monkeypatch)[0] is not None
    records[3]["t2_pattern"] = records[3]["t1_pattern"] = SPINE_SCHEMA["t1_pattern"].categories[0]
    assert _both(records, monkeypatch) == (None, None)


def test_ragged_and_non_dict_records(valid, monkeypatch):
    """Records with different keys, or mappings that are not dicts, as record by record."""
    records = [dict(r) for r in valid]
    del records[2]["bmi"]
    by_column, by_record = _both(records, monkeypatch)
    assert same_records(by_column, by_record)
    records = [pd.Series(r) for r in valid]
    by_column, by_record = _both(records, monkeypatch)
    assert same_records(by_column, by_record)


REFERENCE = {
    "fields": {
        "age_years": {"kind": "numeric", "min": 60.0, "max": 95.0, "missing_rate": 0.0},
        "bmi": {"kind": "numeric", "min": 15.0, "max": 40.0, "missing_rate": 0.2},
        "sex": {"kind": "categorical", "counts": {"F": 9, "M": 3}, "missing_rate": 0.0},
        "level": {"kind": "categorical", "counts": {"T12": 9, "L1": 3}, "missing_rate": 0.3},
        "mri_done": {"kind": "categorical", "counts": {"True": 4}, "missing_rate": 0.3},
        "hu_l1": {"kind": "numeric", "min": None, "max": None, "missing_rate": 0.001},
        "egfr": {"kind": "numeric", "min": None, "max": None, "missing_rate": 0.5},
    }
}
POOLS = {
    "age_years": [70.0, 60.0, 95.0, 59.5, 95.5, float("nan"), -0.0, None],
    "bmi": [20.0, 15.0, 40.5, float("nan"), None],
    "sex": ["F", "M", "X", None, float("nan"), 1],
    "level": ["T12", "L1", "C2", None],
    "mri_done": [True, False, 1, None, "True", "False"],
    "hu_l1": [100.0, float("nan"), None],
    "egfr": [60.0, float("nan")],
}


@pytest.mark.parametrize("seed", range(40))
def test_warnings_of_a_batch_equal_per_record(seed):
    """RecordWarnings.many gives each record the notes the per-record call gives: with
    mostly clean batches (one odd value), mixed ones, absent and ragged fields."""
    from spinerisk.reference._checks import RecordWarnings

    rng = np.random.default_rng(seed)
    notes = RecordWarnings(REFERENCE, 0.01)
    n = int(rng.integers(1, 3 * N))
    clean = {name: values[0] for name, values in POOLS.items()}
    typed = [dict(clean) for _ in range(n)]
    odd = rng.random() < 0.5  # a few odd values, or every value drawn at random
    for t in typed if not odd else [typed[int(rng.integers(n))]]:
        for name, values in POOLS.items():
            t[name] = values[int(rng.integers(len(values)))]
    if seed % 5 == 1:  # a field absent from every record
        for t in typed:
            del t["hu_l1"]
    if seed % 5 == 2:  # ragged: a field absent from some records only
        for t in typed[:: int(rng.integers(2, 5))]:
            del t["bmi"]
    if seed % 5 == 3:
        typed[0].pop("sex")
    expected = [notes(t) for t in typed]
    assert notes.many(typed) == expected
    batch = [dict(clean) for _ in range(N)]
    batch[5]["age_years"] = 99.0
    got = notes.many(batch)
    assert got[5] == ("out_of_range:age_years=99 (training 60 to 95)",)
    assert got[:5] == got[6:6] + [()] * 5


@pytest.mark.parametrize(
    ("name", "value"), [(k, v) for k, values in POOLS.items() for v in values[1:]], ids=repr
)
def test_one_odd_value_gets_its_warnings_in_a_batch(name, value):
    """A batch of clean records with one value changed: that record's notes (if any) are
    the per-record ones, the others have none."""
    from spinerisk.reference._checks import RecordWarnings

    notes = RecordWarnings(REFERENCE, 0.01)
    typed = [{k: values[0] for k, values in POOLS.items()} for _ in range(N)]
    typed[7][name] = value
    got = notes.many(typed)
    assert got == [notes(t) for t in typed]
    assert got[:7] + got[8:] == [()] * (N - 1)


def test_clinical_rows_of_a_batch_equal_per_record(valid, monkeypatch):
    """The ClinicalFeatures rows of a batch, built column by column, are bit for bit the
    rows built record by record (derived values, codes, flags, missing values)."""
    from spinerisk.fastpath import _features
    from spinerisk.features._clinical import ClinicalFeatures

    frame = sr.validate(pd.DataFrame.from_records(valid))
    program = _features._ClinicalProgram(ClinicalFeatures().fit(frame), SPINE_SCHEMA)
    assert program._derivations  # derived features are part of the rows
    rng = np.random.default_rng(3)
    records = [dict(r) for r in valid]
    ruled = {c for rule in SPINE_SCHEMA.rules for c in rule.columns}
    nullable = [
        f.name for f in SPINE_SCHEMA if f.nullable and f.name in records[0] and f.name not in ruled
    ]
    for r in records:  # missing values
        for name in rng.choice(nullable, size=4, replace=False):
            r[name] = None
    typed = RecordChecker(SPINE_SCHEMA).check(records)
    assert typed is not None
    by_column = program.rows(typed)
    with monkeypatch.context() as m:
        m.setattr(_features, "_BY_COLUMN_FROM", 10**9)
        by_record = program.rows(typed)
    assert by_column.flags.c_contiguous and by_column.dtype == by_record.dtype
    assert by_column.shape == by_record.shape == (len(typed), len(program.columns))
    assert (
        np.isnan(by_record).any() and (by_column.view(np.uint64) == by_record.view(np.uint64)).all()
    )


def test_rule_checked_once_per_value_combination_tells_zero_signs_apart(monkeypatch):
    """Records sharing a rule's values are checked once, except where a number is -0.0
    (equal to 0.0, yet 1 / -0.0 < 0)."""
    from spinerisk.schema import FieldSpec, RowRule, Schema

    schema = Schema(
        [
            FieldSpec("pid", "string", "Record id.", role="id"),
            FieldSpec("x", "int", "A count.", min=-5, max=5),
            FieldSpec("flag", "bool", "A flag."),
        ],
        rules=[RowRule("positive", expr="if flag then 1 / x > 0", message="not positive")],
    )
    records = [{"pid": f"P{i}", "x": 0.0, "flag": True} for i in range(N)]
    assert RecordChecker(schema).check(records) is not None
    records[0]["x"] = -0.0  # the last record of a key is the one checked
    assert RecordChecker(schema).check(records) is None
    records[0]["x"] = -1
    assert RecordChecker(schema).check(records) is None
    with monkeypatch.context() as m:
        m.setattr(_records, "_BY_COLUMN_FROM", 10**9)
        assert RecordChecker(schema).check(records) is None


@pytest.mark.parametrize("seed", range(6))
def test_derived_values_of_a_batch_equal_per_record(seed, valid, monkeypatch):
    """The derived features of a batch (``Expression.evaluate_columns``) are bit for bit
    the per-record ones when what they read is missing, zero or on a band's edge, in any
    combination (typed values set directly: the rows do not check rules)."""
    from spinerisk.fastpath import _features
    from spinerisk.features._clinical import ClinicalFeatures

    frame = sr.validate(pd.DataFrame.from_records(valid))
    program = _features._ClinicalProgram(ClinicalFeatures().fit(frame), SPINE_SCHEMA)
    typed = RecordChecker(SPINE_SCHEMA).check(valid)
    assert typed is not None
    inputs = sorted({c for d in SPINE_SCHEMA.derived for c in d.inputs if c in typed[0]})
    assert {"level", "bmi", "height_loss0_pct", "hu_l1", "age_years"} <= set(inputs)
    rng = np.random.default_rng(seed)
    nan = float("nan")
    pools = {
        "height_loss0_pct": [nan, 0.0, -0.0, 20.0, 25.0, 40.0, 19.99],
        "genant_grade0": [nan, 0.0, 0.5, 3.0],
        "height_cm": [nan, 150.0, 0.0],
        "weight_kg": [nan, 60.0, 0.0, -0.0],
        "tscore_min": [nan, -2.5, -2.4],
        "age_years": [nan, 60.0, 69.99, 70.0, 80.0],
    }
    for t in typed:
        for name in rng.choice(inputs, size=len(inputs) // 2, replace=False):
            spec = SPINE_SCHEMA[name]
            if name in pools:
                t[name] = pools[name][int(rng.integers(len(pools[name])))]
            else:
                t[name] = nan if spec.is_numeric else None
    by_column = program.rows(typed)
    with monkeypatch.context() as m:
        m.setattr(_features, "_BY_COLUMN_FROM", 10**9)
        by_record = program.rows(typed)
    assert np.isnan(by_record).any()
    diff = by_column.view(np.uint64) != by_record.view(np.uint64)  # NaN signs too
    i, j = np.argwhere(diff)[0] if diff.any() else (0, 0)
    assert not diff.any(), (program.columns[j], by_column[i, j], by_record[i, j], typed[i])


@pytest.mark.parametrize(
    "names",
    [
        ["hu_l1", "egfr"],  # numbers
        ["prior_fx_count", "falls_12m_count"],  # counts
        ["genant_grade0"],  # numeric codes
        ["diabetes_type", "brace_type"],  # codes
        ["dementia", "current_smoking"],  # flags
        ["centre_id"],  # text
        ["age_years"],  # required: refused either way
        ["patient_id"],
    ],
    ids=repr,
)
def test_a_field_missing_from_every_record(names, valid, monkeypatch):
    """A column of None only: typed as each conversion types None, record by record."""
    records = [dict(r, **dict.fromkeys(names)) for r in valid]
    by_column, by_record = _both(records, monkeypatch)
    assert same_records(by_column, by_record)
    assert (by_column is None) == bool({"age_years", "patient_id"} & set(names))


def test_a_rule_reading_a_date_on_a_batch(valid, monkeypatch):
    """A declared rule that reads a date (typed as ISO text, read as days) on a batch:
    a batch that keeps it is accepted, one record that breaks it sends the batch to the
    full validator, column by column and record by record alike."""
    from spinerisk.schema import RowRule

    rule = RowRule(
        "recent_enough", expr="index_date is missing or index_date >= 10957", message="1999"
    )  # 10957: 2000-01-01 in days since 1970-01-01
    schema = SPINE_SCHEMA.extend(rules=[rule])

    def both(records):
        by_column = RecordChecker(schema).check(records)
        with monkeypatch.context() as m:
            m.setattr(_records, "_BY_COLUMN_FROM", 10**9)
            return by_column, RecordChecker(schema).check(records)

    records = [dict(r, index_date="2024-01-15") for r in valid]
    by_column, by_record = both(records)
    assert by_column is not None and same_records(by_column, by_record)
    records[5]["index_date"] = "1999-06-01"
    assert both(records) == (None, None)


def test_a_derived_feature_reading_a_date_single_and_batch():
    """A derived feature and a rule that read a date give the fast path (one record, and
    a batch column by column) the risks of the frame path; the fast path used to fail
    on such a schema with "could not convert string to float: '2024-01-15'"."""
    import warnings

    from spinerisk.schema import DerivedFeature, RowRule

    schema = SPINE_SCHEMA.replace("index_date", role="feature").extend(
        derived=[
            DerivedFeature(
                "years_since_2020",
                expr="(index_date - 18262) / 365.25",  # 18262: 2020-01-01 in days since 1970
                description="Years from 2020 to the index date.",
                replaces=("index_date",),
            )
        ],
        rules=[RowRule("recent", expr="index_date >= 10957", message="before 2000")],
    )
    cohort = sr.make_spine_cohort(500, seed=2)
    rng = np.random.default_rng(0)
    days = rng.integers(0, 3650, len(cohort))
    cohort["index_date"] = (pd.Timestamp("2012-01-01") + pd.to_timedelta(days, "D")).strftime(
        "%Y-%m-%d"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel("nonunion", backend="linear", schema=schema).fit(cohort)
    typed = sr.validate(cohort.head(40), schema)
    records = json_records(typed)
    frame = model.predict_risk(typed).filter(like="risk").to_numpy(float)
    batch = model.predict_risk(records).filter(like="risk").to_numpy(float)
    one = model.predict_risk(records[0]).filter(like="risk").to_numpy(float)
    np.testing.assert_allclose(batch, frame, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one, frame[:1], rtol=0, atol=1e-12)
    with pytest.raises(sr.SchemaValidationError, match="before 2000"):
        model.predict_risk(dict(records[0], index_date="1999-05-01"))
