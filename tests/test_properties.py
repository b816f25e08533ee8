"""Property tests of validation and the feature pipeline, with strategies built from the schema.

The record strategy reads ``SPINE_SCHEMA``: numbers within [min, max], codes from the code
lists, identifiers matching the id pattern (unique), missing values where a field is
nullable. Only baseline fields are drawn (roles id, group, admin, feature, treatment); the
fields that take part in a cross-field rule are made consistent after drawing (BMI from
height and weight, region from level, Genant grade from height loss, ...), using the
rules' documented meaning rather than spinerisk's own helpers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinerisk import (
    SPINE_SCHEMA,
    FieldSpec,
    SchemaValidationError,
    make_feature_pipeline,
    make_spine_cohort,
    validate,
)
from spinerisk.schema.default import OVF_BASELINE_FIELDS

FAST = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

pytestmark = [
    # pandera's own concat of failure cases emits this; it is not about the data under test
    pytest.mark.filterwarnings(
        "ignore:The behavior of DataFrame concatenation with empty or all-NA:FutureWarning"
    ),
]

BASELINE_ROLES = ("id", "group", "admin", "feature", "treatment")
# the osteoporotic-fracture record (the cervical and pathological-fracture fields of the
# schema belong to other endpoints and have their own tests)
_OVF = {"patient_id", "centre_id", "country", "index_date", *OVF_BASELINE_FIELDS}
BASELINE = [f for f in SPINE_SCHEMA.by_role(*BASELINE_ROLES) if f.name in _OVF]
REQUIRED = set(SPINE_SCHEMA.required)
ID_FIELD = SPINE_SCHEMA.id_field


# ---------------------------------------------------------------------------------------
# the record strategy
# ---------------------------------------------------------------------------------------
def _value_strategy(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Valid, non-missing values of one field, read from its FieldSpec."""
    if spec.categories is not None:
        return st.sampled_from(spec.categories)
    if spec.dtype == "float":
        return st.floats(spec.min, spec.max, allow_nan=False, allow_infinity=False)
    if spec.dtype == "int":
        return st.integers(int(spec.min), int(spec.max))
    if spec.dtype == "bool":
        return st.booleans()
    if spec.dtype == "date":
        return st.dates(dt.date(1990, 1, 1), dt.date(2035, 12, 31)).map(pd.Timestamp)
    if spec.dtype == "string":
        return st.from_regex(spec.pattern, fullmatch=True) if spec.pattern else st.text()
    raise AssertionError(f"no strategy for dtype {spec.dtype!r}")  # pragma: no cover


def _field_strategy(spec: FieldSpec) -> st.SearchStrategy[Any]:
    values = _value_strategy(spec)
    return st.none() | values if spec.nullable else values


# Regions by level as the schema documents them (C1-C2 upper cervical, C3-C6 subaxial,
# C7-T1 cervicothoracic, T2-T10 thoracic, T11-L2 thoracolumbar junction, L3-L5 lumbar, S1).
_REGION = {
    **dict.fromkeys(["C1", "C2"], "upper_cervical"),
    **dict.fromkeys([f"C{i}" for i in range(3, 7)], "subaxial"),
    **dict.fromkeys(["C7", "T1"], "cervicothoracic"),
    **dict.fromkeys([f"T{i}" for i in range(2, 11)], "thoracic"),
    **dict.fromkeys(["T11", "T12", "L1", "L2"], "tlj"),
    **dict.fromkeys(["L3", "L4", "L5"], "lumbar"),
    "S1": "sacral",
}


def _genant(height_loss_pct: float) -> float:
    """Genant grade from height loss: < 20% grade 0, 20-25% 1, 25-40% 2, >= 40% 3."""
    if height_loss_pct < 20:
        return 0.0
    if height_loss_pct < 25:
        return 1.0
    if height_loss_pct < 40:
        return 2.0
    return 3.0


def _make_consistent(record: dict[str, Any]) -> dict[str, Any]:
    """Adjust the fields read by the schema's cross-field rules so that every rule holds."""
    r = dict(record)
    h, w = r["height_cm"], r["weight_kg"]
    if h is not None and w is not None:
        bmi = w / (h / 100.0) ** 2
        r["bmi"] = bmi if 12 <= bmi <= 60 else None
    if r["level"] is not None and r["region"] is not None:
        r["region"] = _REGION[r["level"]]
    if r["height_loss0_pct"] is not None and r["genant_grade0"] is not None:
        grade = _genant(r["height_loss0_pct"])
        if not (grade == 0.0 and r["genant_grade0"] == 0.5):  # 0.5 (deformity) is allowed
            r["genant_grade0"] = grade
    if r["mri_done"] is False:
        r["t1_pattern"] = r["t2_pattern"] = None
    if r["glucocorticoid_current"] is False and r["glucocorticoid_dose_mg"] is not None:
        r["glucocorticoid_dose_mg"] = 0.0
    if r["prior_fx_count"] is not None and r["prior_fragility_fx"] is not None:
        r["prior_fragility_fx"] = r["prior_fx_count"] > 0
    return r


def test_consistency_fixups_cover_every_baseline_rule():
    """If the schema gains a rule on baseline fields, _make_consistent must learn it."""
    baseline = {f.name for f in BASELINE}
    handled = {
        "bmi_matches_height_weight",
        "region_matches_level",
        "genant_matches_height_loss",
        "mri_pattern_without_mri",
        "glucocorticoid_dose_without_use",
        "prior_fracture_count_matches_flag",
    }
    on_baseline = {r.name for r in SPINE_SCHEMA.rules if set(r.columns) <= baseline}
    assert on_baseline == handled


RECORDS = st.fixed_dictionaries(
    {f.name: _field_strategy(f) for f in BASELINE if f.name != ID_FIELD}
).map(_make_consistent)
IDS = _value_strategy(SPINE_SCHEMA[ID_FIELD])


@st.composite
def valid_frames(draw: st.DrawFn, *, all_columns: bool = False, max_rows: int = 6) -> pd.DataFrame:
    """A frame of valid baseline records, some optional columns possibly left out."""
    records = draw(st.lists(RECORDS, min_size=1, max_size=max_rows))
    ids = draw(st.lists(IDS, min_size=len(records), max_size=len(records), unique=True))
    frame = pd.DataFrame(records)
    frame.insert(0, ID_FIELD, ids)
    if not all_columns:
        optional = [c for c in frame.columns if c not in REQUIRED]
        dropped = draw(st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)))
        frame = frame.drop(columns=dropped)
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a CSV extract would give it: every value text, missing as blank."""

    def text(v: Any) -> str:
        if pd.isna(v):
            return ""
        if isinstance(v, pd.Timestamp):
            return v.date().isoformat()
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if not isinstance(v, float) else repr(v)

    return frame.astype(object).apply(lambda col: col.map(text))


# ---------------------------------------------------------------------------------------
# Property A: valid records validate, unchanged, with schema dtypes
# ---------------------------------------------------------------------------------------
def _values(col: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in col.astype(object)]


@FAST
@given(frame=valid_frames())
def test_valid_records_always_validate(frame):
    checked = validate(frame)
    assert list(checked.columns) == list(frame.columns)
    assert checked.index.equals(frame.index)
    for spec in SPINE_SCHEMA:
        if spec.name not in checked.columns:
            continue
        col = checked[spec.name]
        assert col.dtype == spec.pandas_dtype(), spec.name
        # values are never changed, only their representation
        if spec.is_numeric:
            got = col.astype(float).to_numpy()
            want = pd.to_numeric(frame[spec.name]).astype(float).to_numpy()
            np.testing.assert_array_equal(got, want, err_msg=spec.name)
        else:
            assert _values(col) == _values(frame[spec.name]), spec.name
    valid, rejects = validate(frame, on_invalid="split")
    assert len(valid) == len(frame) and rejects.empty


@FAST
@given(frame=valid_frames(max_rows=4))
def test_valid_records_as_text_always_validate(frame):
    text = _as_text(frame)
    checked = validate(text)
    for spec in SPINE_SCHEMA:
        if spec.name in checked.columns:
            assert checked[spec.name].dtype == spec.pandas_dtype(), spec.name
            if spec.is_numeric:
                got = checked[spec.name].astype(float).to_numpy()
                want = pd.to_numeric(frame[spec.name]).astype(float).to_numpy()
                # within an ulp or two: see the exact round-trip test below
                np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, err_msg=spec.name)


@pytest.mark.parametrize(
    "field, text", [("vas_back0", "1.9999999999999996"), ("age_years", "105.00000000000001")]
)
def test_numeric_text_is_read_exactly(field, text):
    frame = pd.DataFrame({ID_FIELD: ["A1"], "age_years": ["71"], "sex": ["F"], "vas_back0": [""]})
    frame[field] = text
    spec = SPINE_SCHEMA[field]
    inside = spec.min <= float(text) <= spec.max
    if inside:
        assert validate(frame)[field].iloc[0] == float(text)  # not rounded on the way in
    else:
        with pytest.raises(SchemaValidationError, match=rf"{field}={re.escape(text)} is out"):
            validate(frame)


# ---------------------------------------------------------------------------------------
# Property B: the fitted feature pipeline gives a stable matrix for any valid frame
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return validate(make_spine_cohort(500, seed=0))


@pytest.fixture(scope="module")
def onehot(training):
    pipe = make_feature_pipeline().fit(training)
    return pipe, list(pipe.transform(training.head(5)).columns)


@pytest.fixture(scope="module")
def native(training):
    pipe = make_feature_pipeline(encoding="native").fit(training)
    return pipe, pipe.transform(training.head(5)).dtypes


@FAST
@given(frame=valid_frames(all_columns=True))
def test_onehot_matrix_is_finite_with_the_fitted_columns(onehot, frame):
    pipe, names = onehot
    X = pipe.transform(validate(frame))
    assert list(X.columns) == names
    assert X.shape == (len(frame), len(names))
    values = X.to_numpy(dtype=float)
    assert np.isfinite(values).all(), X.columns[~np.isfinite(values).all(axis=0)].tolist()
    assert X.index.equals(frame.index)


def test_native_transform_accepts_a_missing_value_unseen_in_fit(native, training):
    pipe, dtypes = native
    assert training["height_loss0_pct"].notna().all()
    new = training.head(3).copy()
    new.iloc[0, new.columns.get_loc("height_loss0_pct")] = np.nan
    X = pipe.transform(new)
    assert list(X.columns) == list(dtypes.index)


@FAST
@given(frame=valid_frames(all_columns=True))
def test_native_matrix_keeps_the_fitted_columns_and_dtypes(native, frame):
    pipe, dtypes = native
    X = pipe.transform(validate(frame))
    assert list(X.columns) == list(dtypes.index)
    assert X.shape == (len(frame), len(dtypes))
    pd.testing.assert_series_equal(X.dtypes, dtypes)
    numeric = X.select_dtypes(exclude="category").to_numpy(dtype=float)
    assert not np.isinf(numeric).any()  # NaN is allowed here, infinities are not


# ---------------------------------------------------------------------------------------
# Properties C and D: one bad value is reported at its field and row, and nowhere else
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    cohort = make_spine_cohort(30, seed=1)
    validate(cohort)
    return cohort


RANGED = [
    f
    for f in SPINE_SCHEMA
    if f.is_numeric and f.categories is None and (f.min is not None or f.max is not None)
]
CATEGORICAL = [f for f in SPINE_SCHEMA if f.dtype == "category"]


def _outside(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Finite values just or far outside [min, max], of the field's own type."""
    sides = []
    if spec.dtype == "int":
        # kept within int64: a larger integral value hits a separate, reported package bug
        if spec.min is not None:
            sides.append(st.integers(int(spec.min) - 10**6, int(spec.min) - 1))
        if spec.max is not None:
            sides.append(st.integers(int(spec.max) + 1, int(spec.max) + 10**6))
    else:
        finite = {"allow_nan": False, "allow_infinity": False}
        if spec.min is not None:
            below = st.floats(max_value=spec.min, exclude_max=True, **finite)
            sides.append(below.filter(lambda v, lo=spec.min: v < lo))  # not -0.0 for min=0
        if spec.max is not None:
            sides.append(st.floats(min_value=spec.max, exclude_min=True, **finite))
    return st.one_of(sides)


def _inject(frame: pd.DataFrame, row: int, column: str, value: Any) -> pd.DataFrame:
    bad = frame.copy()
    if column not in bad.columns:
        bad[column] = pd.Series([None] * len(bad), index=bad.index, dtype=object)
    bad[column] = bad[column].astype(object)
    bad.iat[row, bad.columns.get_loc(column)] = value
    return bad


def _rules_reading(column: str) -> set[str]:
    return {f"rule:{r.name}" for r in SPINE_SCHEMA.rules if column in r.columns}


@FAST
@given(data=st.data(), spec=st.sampled_from(RANGED))
def test_any_out_of_range_value_is_reported_at_its_field_and_row(base, data, spec):
    row = data.draw(st.integers(0, len(base) - 1), label="row")
    value = data.draw(_outside(spec), label="value")
    bad = _inject(base, row, spec.name, value)

    with pytest.raises(SchemaValidationError) as excinfo:
        validate(bad)
    failures = excinfo.value.failures
    message = str(excinfo.value)

    assert set(failures["row"]) == {row}
    own = failures[~failures["check"].str.startswith("rule:")]
    assert own[["row", "column"]].values.tolist() == [[row, spec.name]]
    assert own["check"].iloc[0].startswith("in_range")
    # a cross-field rule may also fail, but only one that reads this field
    assert set(failures.loc[failures["check"].str.startswith("rule:"), "check"]) <= (
        _rules_reading(spec.name)
    )
    assert re.search(re.escape(f"(row {row}): {spec.name}={value!r} is out of range"), message)
    assert set(re.findall(r"\(row (\d+)\)", message)) == {str(row)}


@FAST
@given(data=st.data(), spec=st.sampled_from(CATEGORICAL))
def test_any_unknown_code_is_reported_at_its_field_and_row(base, data, spec):
    row = data.draw(st.integers(0, len(base) - 1), label="row")
    code = data.draw(
        st.text(min_size=1, max_size=12).filter(
            lambda s: s.strip() != "" and s not in spec.categories
        ),
        label="code",
    )
    bad = _inject(base, row, spec.name, code)

    with pytest.raises(SchemaValidationError) as excinfo:
        validate(bad)
    failures = excinfo.value.failures
    message = str(excinfo.value)

    assert failures[["row", "column", "check"]].values.tolist() == [[row, spec.name, "isin"]]
    assert failures["value"].iloc[0] == code
    assert re.search(
        re.escape(f"(row {row}): {spec.name}={code!r} is not an allowed code"), message
    )
    assert set(re.findall(r"\(row (\d+)\)", message)) == {str(row)}
