"""The columnar evaluator of declared expressions (``Expression.evaluate_columns``) against
its reference, the per-record compiler (``Expression.compile_record``): bit for bit on
generated batches with missing values, absent fields, signed zeros, overflow, negative
logarithms and powers, for test expressions and for every row rule and derived feature
of the built-in schema."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinerisk.schema import SPINE_SCHEMA
from spinerisk.schema._expr import ExpressionError, parse, typed_columns

KINDS = {"a": "number", "b": "number", "f": "logical", "g": "logical", "t": "text"}
TABLES = {"grade": {"x": 1.0, "y": 2.0}, "label": {"x": "low", "y": "high"}}
SOURCES = [
    "a + b * 2 - a / b >= 1",
    "a / b",
    "(a - a) / (b - b) + a * 0",
    "abs(a - b) <= 0.5 and f",
    "if f then a > b else g",
    "not (f or g) or a is missing",
    "(a > 0) == f",
    "band(a, [0, 20, 40], [0, 1, 2, 3]) == coalesce(b, 1)",
    'band(a, [0, 20], ["low", "mid", "high"])',
    't in ["x", "y"] or grade[t] > 1',
    "a in [0, 1, 2]",
    "min(a, b)",
    "max(a, b, 1)",
    "min(a, b) < max(a, 1) and log(abs(a) + 1) > 0.1",
    "log(a)",
    "a ^ b",
    "a ** 0.5 + b ^ 3",
    "a ^ 2 - b * b",
    'coalesce(label[t], "none") != "high"',
    'if t == "x" then label[t] else "other"',
    'if t == "x" then a ^ 2 > 3 else b ^ 2 < 3',
    "if f then a else b",
    "coalesce(a, b, 2)",
    "-a < b and a != b",
    "grade[t] * a",
]

numbers = st.one_of(
    st.just(float("nan")),
    st.floats(min_value=-50, max_value=50, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 20.0, 40.0, -1.0, 0.5, 1e308, -1e308, 5e-324]),
)
flags = st.sampled_from([True, False, None])
texts = st.sampled_from(["x", "y", "z", None])
ABSENT = object()


def _same(one, many) -> bool:
    """Equal bit for bit (NaNs too: their sign; None is a missing text)."""
    if one is None or isinstance(one, str):
        return type(many) is type(one) and one == many
    return struct.pack("<d", one) == struct.pack("<d", float(many))


def _agree(expression, records: list[dict]) -> None:
    names = expression.fields
    columns = typed_columns(records, names, expression.kinds)
    many = expression.evaluate_columns(columns, len(records))
    assert many.shape == (len(records),)
    assert many.dtype == (object if expression.kind == "text" else np.float64)
    one = expression.compile_record()
    for i, record in enumerate(records):
        assert _same(one(record), many[i]), (expression.source, record, one(record), many[i])


def _records(rows, names):
    return [{k: v for k, v in zip(names, row, strict=True) if v is not ABSENT} for row in rows]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            numbers | st.just(ABSENT),
            numbers,
            flags | st.just(ABSENT),
            flags,
            texts | st.just(ABSENT),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_columns_match_the_per_record_compiler(rows):
    """Every test expression: the same value for every record of a random batch."""
    records = _records(rows, ["a", "b", "f", "g", "t"])
    for source in SOURCES:
        e = parse(source)
        e.check(KINDS, TABLES)
        _agree(e, records)


SPECIAL = [float("nan"), 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.7, 41.3, 1e308, -1e308, 5e-324]


def test_columns_match_on_every_pair_of_special_values():
    """Signed zeros (Python's min / max keep the first of equal values, numpy's the
    last), fractional powers and logarithms (numpy's loops differ from the C library's
    in the last bit for some inputs), overflow and division by zero: every pair."""
    rng = np.random.default_rng(0)
    values = [*SPECIAL, *rng.uniform(0.001, 100.0, 40).tolist()]
    records = [
        {"a": a, "b": b, "f": bool(i % 2), "g": None, "t": "x"}
        for i, (a, b) in enumerate((a, b) for a in values for b in values)
    ]
    for source in SOURCES:
        e = parse(source)
        e.check(KINDS, TABLES)
        _agree(e, records)


def _field_values(name: str, kind: str):
    """Typed values of one field (or derived feature) of the built-in schema."""
    if kind == "logical":
        return st.sampled_from([True, False, None])
    spec = SPINE_SCHEMA[name] if name in SPINE_SCHEMA else None
    if kind == "text":
        codes = list(spec.categories) if spec is not None and spec.categories else []
        extra = ["tlj", "thoracic", "C2", "II", "none", "metastatic", "vertebroplasty"]
        return st.sampled_from([*codes, *extra, None])
    lo = -100.0 if spec is None or spec.min is None else float(spec.min)
    hi = 100.0 if spec is None or spec.max is None else float(spec.max)
    return st.one_of(
        st.floats(min_value=lo, max_value=hi, allow_nan=False),
        st.sampled_from([float("nan"), 0.0, -0.0, lo, hi, 1.0, 2.0, 20.0, 25.0, 40.0]),
    )


def _schema_expressions():
    out = [(f"rule {r.name}", r.expression) for r in SPINE_SCHEMA.rules if r.declarative]
    out += [(f"derived {d.name}", d.expression) for d in SPINE_SCHEMA.derived]
    return out


@pytest.mark.parametrize(("label", "expression"), _schema_expressions(), ids=lambda x: str(x))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_schema_rules_and_derived_features_match(label, expression, data):
    """Every rule and derived feature of the built-in schema, on random typed batches."""
    names = sorted(expression.fields)
    n = data.draw(st.integers(min_value=1, max_value=40))
    strategies = [_field_values(c, expression.kinds[c]) | st.just(ABSENT) for c in names]
    rows = data.draw(st.lists(st.tuples(*strategies), min_size=n, max_size=n))
    _agree(expression, _records(rows, names))


def test_unchecked_expression_is_refused():
    with pytest.raises(ExpressionError, match="before evaluating"):
        parse("a > 1").evaluate_columns({}, 1)


def test_absent_columns_are_missing():
    e = parse("a > 1 or t == 'x'")
    e.check(KINDS, TABLES)
    out = e.evaluate_columns({"a": np.array([2.0, 0.0])}, 2)
    np.testing.assert_array_equal(out, [1.0, np.nan])
