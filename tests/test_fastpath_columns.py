"""The fast path's record checks column by column (batches) equal those record by record."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.fastpath import _records
from spinerisk.fastpath._records import RecordChecker
from spinerisk.schema import SPINE_SCHEMA

N = 2 * _records._BY_COLUMN_FROM


def _json(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


@pytest.fixture(scope="module")
def valid() -> list[dict]:
    cohort = sr.make_spine_cohort(4 * N, seed=7)
    rows = [{k: _json(v) for k, v in r.items()} for r in cohort.to_dict("records")]
    split = sr.validate(pd.DataFrame.from_records(rows), on_invalid="split")
    out = [rows[i] for i in split.valid.index[:N]]
    assert len(out) == N
    return out


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if set(x) != set(y):
            return False
        for k, v in x.items():
            w = y[k]
            if type(v) is not type(w):
                return False
            if isinstance(v, float) and (math.isnan(v) or math.isnan(w)):
                if not (math.isnan(v) and math.isnan(w)):
                    return False
            elif v != w or (isinstance(v, float) and math.copysign(1, v) != math.copysign(1, w)):
                return False
    return True


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
    assert _same(by_column, by_record)


def test_values_typed_and_rules_checked_column_by_column(valid, monkeypatch):
    """Valid records are accepted either way; a rule broken in one record of many sharing
    its values (checked once per distinct combination) is found either way."""
    by_column, by_record = _both(valid, monkeypatch)
    assert by_column is not None and _same(by_column, by_record)
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
    assert _same(by_column, by_record)
    records = [pd.Series(r) for r in valid]
    by_column, by_record = _both(records, monkeypatch)
    assert _same(by_column, by_record)
