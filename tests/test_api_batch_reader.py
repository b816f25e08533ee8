"""The records reader of the HTTP API (``records_reader``) against the request models it
stands in for: on any body, it accepts exactly what the models accept, and gives the
records the models give (same values, types and field order); the API's answers and
error messages stay those of the models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_records import same_records
from pydantic import TypeAdapter, ValidationError

from spinerisk.api._models import batch_model, record_model, records_reader, request_body_type
from spinerisk.schema import SPINE_SCHEMA

FIELDS = [
    "patient_id",
    "age_years",
    "sex",
    "bmi",
    "prior_fx_count",
    "mri_done",
    "genant_grade0",
    "level",
    "hu_l1",
]
MAX_RECORDS = 5
RECORD = record_model(SPINE_SCHEMA, FIELDS)
MODELS = TypeAdapter(request_body_type(RECORD, batch_model(RECORD, MAX_RECORDS)))
READ = records_reader(SPINE_SCHEMA, FIELDS, MAX_RECORDS)

ODD = [None, True, False, 0, 1, -1, 2.5, 0.0, -0.0, 2**63, 2**70, "", " ", "80", "x"]
ODD += [float("nan"), float("inf"), [], {}, [1.0]]
VALUES = {
    "patient_id": ["P-1", "P-2", "p 3", "\u00e9t\u00e9", "a" * 1001, 12],
    "age_years": [18, 18.0, 70.5, 105, 105.0001, 17.9, 80],
    "sex": ["F", "M", "f", "X"],
    "bmi": [12, 12.0, 30.5, 60, 61, 11.99],
    "prior_fx_count": [0, 3, 20, 21, 2.0, -1],
    "mri_done": [True, False, 1, "true"],
    "genant_grade0": [0.0, 0.5, 1.0, 3.0, 0, 1, 2, 4.0, "1"],
    "level": ["T12", "L1", "C2", "t12", "X1"],
    "hu_l1": [-50, 0.0, 450.0, 451, 100],
}
ABSENT = object()


def _value(name):
    return st.sampled_from([*VALUES[name], *ODD, ABSENT])


def _record():
    return st.fixed_dictionaries({name: _value(name) for name in FIELDS}).map(
        lambda r: {k: v for k, v in r.items() if v is not ABSENT}
    )


def _models(body):
    """What the API's handler gets from the models: ``dict(record.__dict__)`` per
    record, or None where the models refuse the body."""
    try:
        parsed = MODELS.validate_python(body)
    except ValidationError:
        return None
    items = parsed.records if "records" in type(parsed).model_fields else [parsed]
    return [dict(item.__dict__) for item in items]


def _check(body) -> None:
    expected, got = _models(body), READ(body)
    assert same_records(got, expected, field_order=True), (body, got, expected)


@settings(max_examples=300, deadline=None)
@given(record=_record())
def test_single_records(record):
    _check(record)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(_record(), min_size=0, max_size=MAX_RECORDS + 1),
    extra=st.sampled_from([None, "extra", "records_only"]),
)
def test_batches(records, extra):
    body = {"records": records}
    if extra == "extra":
        body["other"] = 1
    _check(body)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        1,
        {},
        {"records": None},
        {"records": {}},
        {"records": [None]},
        {"records": ["x"]},
        {"records": [{"patient_id": "P-1", "age_years": 70.0, "sex": "F", "extra": 1}]},
        {"patient_id": "P-1", "age_years": 70.0, "sex": "F", "records": []},
        {"patient_id": "P-1", "age_years": 70, "sex": "F"},
        {"patient_id": "P-1", "age_years": 70.0, "sex": "F", "bmi": None, "level": "L1"},
        {"patient_id": "P-1", "sex": "F"},
    ],
    ids=repr,
)
def test_odd_bodies(body):
    _check(body)


def test_valid_batch_read_in_field_order_with_missing_fields_as_none():
    body = {"records": [{"sex": "M", "age_years": 71, "patient_id": "P-9", "level": "L1"}]}
    (record,) = READ(body)
    assert list(record) == FIELDS
    assert record["age_years"] == 71 and record["bmi"] is None and record["level"] == "L1"
    assert same_records([record], _models(body), field_order=True)
