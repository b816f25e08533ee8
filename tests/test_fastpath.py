"""The compiled fast path gives the batch path's risks, warnings and errors.

Every model here is fitted on a small synthetic cohort (no clinical validity). Records are
JSON-like dicts (str/int/float/bool/None): synthetic cohort rows plus seeded perturbations
(missing values, schema boundaries, codes unseen in training, numbers outside the training
range, numbers and flags as text).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from json_records import json_records
from sklearn.preprocessing import FunctionTransformer

import spinerisk as sr
from spinerisk.endpoints import Endpoint
from spinerisk.exceptions import DataQualityWarning, SchemaValidationError
from spinerisk.fastpath import FastPredictor, UnsupportedModelError
from spinerisk.models import BACKENDS
from spinerisk.schema import SPINE_SCHEMA, RowRule

N_RECORDS = 2000
N_SINGLE = 100

#: No built-in endpoint is a plain survival outcome; this one (first event of any kind,
#: fracture or death) exercises the survival backends (``xgboost_aft`` among them).
ANY_EVENT = Endpoint(
    name="any_event",
    kind="survival",
    description="First subsequent fracture or death (test endpoint).",
    event="fx_event",
    time="fx_time_days",
    horizons=(365.25, 730.5),
    eligible_treatments=None,
    include_treatment=True,
)
CASES = (
    [("nonunion", b) for b in BACKENDS["binary"]]
    + [("collapse", b) for b in BACKENDS["binary"]]
    + [("future_fracture", b) for b in BACKENDS["competing"]]
    + [("any_event", b) for b in BACKENDS["survival"]]
)


def _perturb(rec: dict, rng: np.random.Generator) -> dict:
    rec = dict(rec)
    fields = [f for f in SPINE_SCHEMA.by_role("feature", "treatment") if f.name in rec]
    numeric = [f for f in fields if f.is_numeric and f.categories is None]
    codes = [f for f in fields if f.dtype == "category"]
    flags = [f for f in fields if f.dtype == "bool"]
    u = rng.random(6)
    if u[0] < 0.35:  # missing values
        for f in rng.choice([f for f in fields if f.nullable], size=3, replace=False):
            rec[f.name] = None
    if u[1] < 0.3:  # schema boundaries, usually outside the training range
        f = numeric[rng.integers(len(numeric))]
        rec[f.name] = float(f.min if rng.random() < 0.5 else f.max)
        if f.dtype == "int":
            rec[f.name] = int(rec[f.name])
    if u[2] < 0.3:  # any valid code, often unseen in training
        f = codes[rng.integers(len(codes))]
        allowed = list(f.categories)
        if f.name == "level":  # a cervical level is outside the OVF endpoints' scope
            allowed = [c for c in allowed if not c.startswith("C")]
        rec[f.name] = str(rng.choice(allowed))
    if u[3] < 0.25:  # numbers as text, integral floats for counts, flags as text or 0/1
        f = numeric[rng.integers(len(numeric))]
        if rec[f.name] is not None:
            rec[f.name] = f" {rec[f.name]} "
        g = flags[rng.integers(len(flags))]
        if rec[g.name] is not None:
            rec[g.name] = ["true", "FALSE", 1, 0, "1"][rng.integers(5)]
    if u[4] < 0.2:  # integral floats in count fields
        for f in numeric:
            if f.dtype == "int" and isinstance(rec[f.name], int):
                rec[f.name] = float(rec[f.name])
    if u[5] < 0.2:  # no follow-up fields at all (what an app sends)
        for f in SPINE_SCHEMA:
            if not f.is_baseline:
                rec.pop(f.name, None)
    return rec


@pytest.fixture(scope="module")
def records() -> tuple[list[dict], list[dict]]:
    """(valid, invalid) JSON-like records: cohort rows, most of them perturbed."""
    cohort = sr.make_spine_cohort(N_RECORDS + 400, seed=11)
    rng = np.random.default_rng(5)
    candidates = [_perturb(r, rng) for r in json_records(cohort)]
    # ragged keys: make every record carry every key, as the batch frame does
    keys = list(dict.fromkeys(k for r in candidates for k in r))
    candidates = [{k: r.get(k) for k in keys} for r in candidates]
    split = sr.validate(pd.DataFrame.from_records(candidates), on_invalid="split")
    valid = [candidates[i] for i in split.valid.index[:N_RECORDS]]
    invalid = [candidates[i] for i in split.rejects.index]
    assert len(valid) == N_RECORDS and len(invalid) > 20
    return valid, invalid


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], sr.RiskModel]:
    cohort = sr.make_spine_cohort(400, seed=0)
    endpoints = {"any_event": ANY_EVENT}
    return {
        case: sr.RiskModel(endpoints.get(case[0], case[0]), backend=case[1]).fit(cohort)
        for case in CASES
    }


@pytest.fixture(scope="module")
def fast(models) -> dict[tuple[str, str], FastPredictor]:
    return {case: FastPredictor.from_model(m) for case, m in models.items()}


def _batch(model: sr.RiskModel, records: list[dict], **kw) -> pd.DataFrame:
    # a DataFrame always takes the batch path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return model.predict_risk(pd.DataFrame.from_records(records), **kw)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_same_risks_and_warnings_as_batch(case, models, fast, records):
    valid, _ = records
    model, fp = models[case], fast[case]
    expected = _batch(model, valid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = pd.DataFrame(fp.predict_risk(valid)).set_index(model.id_field_)
        singles = [fp.predict_risk(r) for r in valid[:N_SINGLE]]
    assert fp.n_fallbacks_ == 0  # every record went through the compiled path
    risk = [c for c in expected.columns if c.startswith("risk_")]
    assert list(got.columns) == list(expected.columns)
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got[risk], expected[risk], rtol=1e-9, atol=0)
    assert (got["warnings"] == expected["warnings"]).all()
    assert (expected["warnings"] != "").sum() > 100  # the perturbations reach the warnings
    one = pd.DataFrame(singles).set_index(model.id_field_)
    np.testing.assert_allclose(one[risk], expected[risk].iloc[:N_SINGLE], rtol=1e-9, atol=0)
    assert (one["warnings"] == expected["warnings"].iloc[:N_SINGLE]).all()
    if case[1] in ("xgboost", "lightgbm"):  # boosters: bit for bit, one row or many
        assert np.array_equal(got[risk].to_numpy(), expected[risk].to_numpy())
        assert np.array_equal(one[risk].to_numpy(), expected[risk].iloc[:N_SINGLE].to_numpy())


def test_aft_with_an_estimated_scale_is_compiled_and_saved_exactly(records, tmp_path):
    valid, _ = records
    model = sr.RiskModel(
        ANY_EVENT, backend="xgboost_aft", booster_params={"estimate_scale": True}
    ).fit(sr.make_spine_cohort(400, seed=0))
    assert abs(model.estimator_.scale_ - 1.0) > 0.05  # predictions do not use `scale`
    expected = _batch(model, valid[:300])
    risk = [c for c in expected.columns if c.startswith("risk_")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = FastPredictor.from_model(model).predict_risk(valid[:300], as_frame=True)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=0)
    loaded = sr.load(model.save(tmp_path / "aft.spinerisk"))
    assert loaded.estimator_.scale_ == model.estimator_.scale_
    np.testing.assert_array_equal(_batch(loaded, valid[:300])[risk], expected[risk])


def test_dataframe_in_dataframe_out(models, fast, records):
    valid, _ = records
    case = ("future_fracture", "xgboost")
    frame = pd.DataFrame.from_records(valid[:300])
    expected = _batch(models[case], valid[:300])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = fast[case].predict_risk(frame)
        from_dicts = fast[case].predict_risk(valid[:300], as_frame=True)
        from_dict = fast[case].predict_risk(valid[0], as_frame=True)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=0)
    pd.testing.assert_frame_equal(from_dicts, expected, rtol=1e-9, atol=0)
    pd.testing.assert_frame_equal(from_dict, expected.iloc[:1], rtol=1e-9, atol=0)


def _failures(call) -> SchemaValidationError:
    with pytest.raises(SchemaValidationError) as info:
        call()
    return info.value


def _assert_same_error(model, fp, payload):
    frame = pd.DataFrame.from_records([payload] if isinstance(payload, dict) else payload)
    expected = _failures(lambda: model.predict_risk(frame))
    got = _failures(lambda: fp.predict_risk(payload))
    assert str(got) == str(expected)
    pd.testing.assert_frame_equal(got.failures, expected.failures)
    return got.failures


@pytest.mark.parametrize(
    "change, column, check",
    [
        ({"age_years": 300}, "age_years", "in_range"),
        ({"hu_l1": "abc"}, "hu_l1", "dtype"),
        ({"prior_fx_count": 2.5}, "prior_fx_count", "integer"),
        ({"mri_done": "Y"}, "mri_done", "dtype"),
        ({"sex": "X"}, "sex", "isin"),
        ({"hu_l1": float("inf")}, "hu_l1", "finite"),
        ({"age_years": None}, "age_years", "not_nullable"),
        ({"patient_id": None}, "patient_id", "not_nullable"),
        ({"patient_id": "bad id!"}, "patient_id", None),
        ({"favourite_colour": "blue"}, "favourite_colour", "unknown_column"),
        ({"bmi": 40.0, "height_cm": 160.0, "weight_kg": 60.0}, "bmi", "rule:"),
        ({"mri_done": False, "t2_pattern": "confined_high"}, "mri_done", "rule:"),
        ({"glucocorticoid_current": False, "glucocorticoid_dose_mg": 5.0}, None, "rule:"),
        ({"prior_fragility_fx": False, "prior_fx_count": 2}, None, "rule:"),
    ],
)
def test_invalid_record_raises_as_batch(change, column, check, models, fast, records):
    valid, _ = records
    case = ("nonunion", "linear")
    record = {**valid[0], **change}
    failures = _assert_same_error(models[case], fast[case], record)
    if column is not None:
        assert column in set(failures["column"])
    if check is not None:
        assert failures["check"].astype(str).str.startswith(check).any()


def test_missing_id_field_raises_as_batch(models, fast, records):
    valid, _ = records
    case = ("nonunion", "xgboost")
    record = {k: v for k, v in valid[1].items() if k != "patient_id"}
    failures = _assert_same_error(models[case], fast[case], record)
    assert failures["check"].tolist() == ["missing_column"]


def test_random_invalid_records_raise_as_batch(models, fast, records):
    valid, invalid = records
    case = ("collapse", "lightgbm")
    for record in invalid[:8]:
        _assert_same_error(models[case], fast[case], record)
    # one bad record among good ones: the whole list is refused, as in the batch path
    _assert_same_error(models[case], fast[case], [*valid[:5], invalid[0], *valid[5:9]])
    assert fast[case].n_fallbacks_ > 0


def _random_values(rng, spec, n):
    if spec.categories is not None:
        pool = [*spec.categories, None]
        return [pool[i] for i in rng.integers(len(pool), size=n)]
    if spec.dtype == "bool":
        return [[True, False, None][i] for i in rng.integers(3, size=n)]
    x = rng.uniform(spec.min, spec.max, size=n)
    x = np.where(rng.random(n) < 0.3, np.round(x), x)
    x = np.where(rng.random(n) < 0.15, np.nan, x)
    return list(x.round(0) if spec.dtype == "int" else x)


def _typed_rows(data):
    return [
        {c: (np.nan if (SPINE_SCHEMA[c].is_numeric and v is None) else v) for c, v in row.items()}
        for row in (dict(zip(data, vals, strict=True)) for vals in zip(*data.values(), strict=True))
    ]


def test_derived_features_compiled_per_record_match_the_frame():
    """One declaration, two evaluators: the per-record twin of every derived feature gives
    what the vectorised one gives on frames, on random and boundary values."""
    from spinerisk.features._clinical import ClinicalFeatures

    rng = np.random.default_rng(1)
    n = 3000
    fields = sorted({i for d in SPINE_SCHEMA.derived for i in d.inputs if i in SPINE_SCHEMA})
    data = {c: _random_values(rng, SPINE_SCHEMA[c], n) for c in fields}
    data["age_years"] = list(rng.choice([59.999, 60.0, 70.0, 89.9, 90.0, np.nan, 75.5], n))
    data["height_loss0_pct"] = list(rng.choice([19.99, 20.0, 25.0, 39.9, 40.0, np.nan], n))
    frame = pd.DataFrame(
        {c: pd.Series(v, dtype=SPINE_SCHEMA[c].pandas_dtype()) for c, v in data.items()}
    )
    feats = ClinicalFeatures(derive=False).fit(frame).transform(frame)
    typed = _typed_rows(data)
    for d in SPINE_SCHEMA.derived:
        expected = d.evaluate(feats).astype(object).to_numpy()
        fn = d.compile_record()
        got = []
        for t in typed:
            v = fn(t)
            feats_row = t  # the previous derived values are inputs of later ones
            feats_row[d.name] = v
            got.append(v)
        feats[d.name] = d.evaluate(feats)
        for e, g in zip(expected, got, strict=True):
            same = (pd.isna(e) and (g is None or g != g)) or e == g
            assert same, (d.name, e, g)


def test_rule_twins_match_the_rules():
    """Each rule's per-record twin (compiled from the same declaration) gives the
    vectorised verdict on random and boundary values."""
    rng = np.random.default_rng(0)
    n = 3000
    for rule in SPINE_SCHEMA.rules:
        twin = rule.compile_record()
        data = {}
        for name in rule.columns:
            spec = SPINE_SCHEMA[name]
            if spec.categories is not None:
                pool = [*spec.categories, None]
                values = [pool[i] for i in rng.integers(len(pool), size=n)]
            elif spec.dtype == "bool":
                values = [[True, False, None][i] for i in rng.integers(3, size=n)]
            else:
                lo, hi = spec.min, spec.max
                x = rng.uniform(lo, hi, size=n)
                x = np.where(rng.random(n) < 0.3, np.round(x), x)
                x = np.where(rng.random(n) < 0.15, np.nan, x)
                values = list(x.round(0) if spec.dtype == "int" else x)
            data[name] = values
        # near-boundary combinations where the rules compare numbers
        if rule.name == "bmi_matches_height_weight":
            h = np.array(data["height_cm"], dtype=float)
            w = np.array(data["weight_kg"], dtype=float)
            data["bmi"] = list(w / (h / 100) ** 2 + rng.choice([-1.0, 1.0, -0.5, 1.5], n))
        if rule.name == "height_loss_6m_adds_up":
            data["height_loss_6m_pct"] = list(
                np.array(data["height_loss0_pct"])
                + np.array(data["delta_height_6m"])
                + rng.choice([0.5, -0.5, 0.25, 0.75], n)
            )
        if rule.name in ("death_before_fracture_time", "death_event_time_mismatch"):
            data["death_time_days"] = list(
                np.array(data["fx_time_days"]) + rng.choice([0.0, 1e-7, -1e-9, 1.0, -1.0], n)
            )
        if rule.name == "collapse_matches_height_change":
            data["delta_height_6m"] = list(rng.choice([14.9, 15.0, 15.1, np.nan, 30.0], n))
        frame = pd.DataFrame(
            {c: pd.Series(v, dtype=SPINE_SCHEMA[c].pandas_dtype()) for c, v in data.items()}
        )
        expected = rule.evaluate(frame).to_numpy()
        typed = [
            {
                c: (np.nan if (SPINE_SCHEMA[c].is_numeric and v is None) else v)
                for c, v in row.items()
            }
            for row in (
                dict(zip(data, vals, strict=True)) for vals in zip(*data.values(), strict=True)
            )
        ]
        got = np.array([twin(t) for t in typed])
        assert (got == expected).all(), rule.name
        assert 0 < expected.sum() < n or rule.name in ("fx_time_positive", "death_time_positive")


def test_custom_rule_without_twin_runs_on_a_frame():
    rule = RowRule(
        "young_smoker",
        ("age_years", "current_smoking"),
        lambda df: ~((df["age_years"] < 65) & df["current_smoking"].fillna(False).astype(bool)),
        "smokers under 65 are out of scope",
    )
    schema = SPINE_SCHEMA.extend(rules=[rule], name="spine+rule")
    cohort = sr.make_spine_cohort(300, seed=3)
    ok = ~((cohort["age_years"] < 65) & cohort["current_smoking"].fillna(False).astype(bool))
    model = sr.RiskModel("nonunion", backend="linear", schema=schema).fit(cohort[ok])
    fp = FastPredictor.from_model(model)
    fresh = sr.make_spine_cohort(200, seed=4)
    keep = ~((fresh["age_years"] < 65) & fresh["current_smoking"].fillna(False).astype(bool))
    good = json_records(fresh[keep])
    expected = _batch(model, good)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = pd.DataFrame(fp.predict_risk(good)).set_index("patient_id")
    np.testing.assert_allclose(got["risk_183d"], expected["risk_183d"], rtol=1e-9)
    bad = {**good[0], "age_years": 60.0, "current_smoking": True}
    failures = _assert_same_error(model, fp, bad)
    assert failures["check"].tolist() == ["rule:young_smoker"]


def test_horizons_as_batch(models, fast, records):
    valid, _ = records
    case = ("future_fracture", "linear")
    expected = _batch(models[case], valid[:50], horizons=[100.0, 500.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = pd.DataFrame(fast[case].predict_risk(valid[:50], horizons=[100.0, 500.0]))
    assert list(got.columns) == ["patient_id", "risk_100d", "risk_500d", "warnings"]
    cols = ["risk_100d", "risk_500d"]
    np.testing.assert_allclose(got[cols], expected[cols], rtol=1e-9)
    for case, bad in [(("future_fracture", "linear"), [1e6]), (("nonunion", "linear"), [365.0])]:
        with pytest.raises(ValueError) as batch_error:
            _batch(models[case], valid[:1], horizons=bad)
        with pytest.raises(ValueError) as fast_error:
            fast[case].predict_risk(valid[0], horizons=bad)
        assert str(fast_error.value) == str(batch_error.value)


def test_output_types_and_warning(fast, records):
    valid, _ = records
    fp = fast[("nonunion", "xgboost")]
    record = {**valid[2], "age_years": 104.5}  # far beyond the synthetic training ages
    with pytest.warns(DataQualityWarning, match="1 of 1 records"):
        out = fp.predict_risk(record)
    assert set(out) == {"patient_id", "risk_183d", "warnings"}
    assert type(out["risk_183d"]) is float and 0.0 < out["risk_183d"] < 1.0
    assert "out_of_range:age_years=104.5 (training " in out["warnings"]
    with pytest.warns(DataQualityWarning, match="of 2 records"):
        assert isinstance(fp.predict_risk([record, valid[3]]), list)


def test_bundle_round_trip(models, records, tmp_path):
    valid, _ = records
    for case in [("nonunion", "xgboost")]:
        path = models[case].save(tmp_path / f"{case[0]}.srb")
        fp = FastPredictor.from_model(sr.load(path))
        expected = _batch(models[case], valid[:300])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            got = pd.DataFrame([fp.predict_risk(r) for r in valid[:300]]).set_index("patient_id")
        risk = [c for c in expected.columns if c.startswith("risk_")]
        assert np.array_equal(got[risk].to_numpy(), expected[risk].to_numpy())


def test_public_paths_match_c_entry_points(models, records):
    valid, _ = records
    for case in [("nonunion", "xgboost"), ("collapse", "lightgbm")]:
        with_c = FastPredictor.from_model(models[case], check=False)
        without = FastPredictor.from_model(models[case], check=False, c_api=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            a = [with_c.predict_risk(r)["risk_183d"] for r in valid[:100]]
            b = [without.predict_risk(r)["risk_183d"] for r in valid[:100]]
        assert a == b


def test_unsupported_model_is_refused(models):
    model = copy.deepcopy(models[("nonunion", "linear")])
    features = model.estimator_.named_steps["features"]
    features.steps.append(("log", FunctionTransformer(np.log1p).fit(np.ones((2, 2)))))
    with pytest.raises(UnsupportedModelError, match="FunctionTransformer"):
        FastPredictor.from_model(model)


def test_a_replaced_training_reference_reaches_the_fast_path(models, records):
    """Warnings of dict records follow model.reference_ after it is replaced."""
    from spinerisk.monitor import build_reference

    model = copy.deepcopy(models[("nonunion", "linear")])
    record = dict(records[0][0])
    record["age_years"] = 70.0
    assert model.predict_risk(record)["warnings"].iloc[0] == ""
    narrow = sr.make_spine_cohort(400, seed=0)
    narrow = narrow[narrow["age_years"].between(75, 80)]
    model.reference_ = build_reference(model, narrow)
    with pytest.warns(DataQualityWarning):
        batch = _batch_warn(model, [record])
    with pytest.warns(DataQualityWarning):
        fast = model.predict_risk(record)
    assert fast["warnings"].iloc[0].startswith("out_of_range:age_years=70")
    assert fast["warnings"].iloc[0] == batch["warnings"].iloc[0]


def _batch_warn(model, records):
    return model.predict_risk(pd.DataFrame.from_records(records))


def test_schema_without_conversions_falls_back_to_the_batch_path(records):
    """A coerce=False field cannot be checked record by record: the batch path answers."""
    strict = SPINE_SCHEMA.replace("age_years", coerce=False)
    model = sr.RiskModel("nonunion", backend="linear", schema=strict)
    model.fit(sr.validate(sr.make_spine_cohort(400, seed=0), strict))
    with pytest.raises(UnsupportedModelError, match="coerce=False"):
        FastPredictor.from_model(model)
    valid = records[0][:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        as_dicts = model.predict_risk(valid)
    pd.testing.assert_frame_equal(as_dicts, _batch(model, valid))


@pytest.mark.parametrize(
    "change",
    [
        {"patient_id": 12345},
        {"patient_id": 12345.0},
        {"hu_l1": " "},
        {"hu_l1": "nan"},
        {"hu_l1": True},
        {"hu_l1": "1_000"},
        {"mri_done": 2},
        {"mri_done": " TRUE "},
        {"mri_done": 1.0},
        {"prior_fx_count": "2"},
        {"prior_fx_count": 2**62},
        {"sex": " F"},
        {"sex": 1},
        {"index_date": "2024-02-30"},
        {"index_date": "2024-01-05T10:00:00"},
        {"index_date": "1500-01-01"},
        {"index_date": 20240105},
        {"age_years": "9e1"},
        {"age_years": [70]},
        {3: "x"},
    ],
    ids=repr,
)
def test_tricky_values_as_batch(change, models, fast, records):
    """Unusual values: both paths accept with the same risks, or raise the same error."""
    valid, _ = records
    case = ("nonunion", "lightgbm")
    record = {**valid[4], **change}
    try:
        expected = _batch(models[case], [record])
    except SchemaValidationError:
        _assert_same_error(models[case], fast[case], record)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = fast[case].predict_risk(record)
    assert got["patient_id"] == expected.index[0]
    assert got["risk_183d"] == expected["risk_183d"].iloc[0]
    assert got["warnings"] == expected["warnings"].iloc[0]


@pytest.mark.filterwarnings("ignore::spinerisk.exceptions.DataQualityWarning")
def test_threads_share_one_predictor(fast, records):
    """The C entry points keep their call state per thread."""
    from concurrent.futures import ThreadPoolExecutor

    valid, _ = records
    fp = fast[("collapse", "xgboost")]

    def run(chunk):
        return [fp.predict_risk(r)["risk_183d"] for r in chunk]

    chunks = [valid[i : i + 60] for i in range(0, 240, 60)]
    expected = [run(c) for c in chunks]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, chunks))
    assert got == expected


def test_derived_features_read_only_the_models_own_fields():
    """A record may carry fields the model does not use (hu_l1 here); the derived
    osteoporosis flag must come from the model's fields only, as in the batch path."""
    from spinerisk.endpoints import Endpoint

    cohort = sr.make_spine_cohort(600, seed=0)
    ep = Endpoint(
        "nonunion_t", "binary", "SYNTHETIC test endpoint", "nonunion", None, (182.62,),
        eligible_treatments=("conservative", "fixation"),
        predictor_fields=("age_years", "sex", "tscore_min"),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(ep, backend="linear").fit(cohort)
        rows = cohort.head(40).drop(columns="index_date").to_dict("records")
        rows = [{k: (None if v is None or v != v else v) for k, v in r.items()} for r in rows]
        for r in rows:
            r["tscore_min"] = None  # osteoporosis then comes from hu_l1 only if it is read
        single = [model.predict_risk(r)["risk_183d"].iloc[0] for r in rows]
        batch = model.predict_risk(pd.DataFrame(rows))["risk_183d"].to_numpy()
    np.testing.assert_allclose(single, batch, rtol=1e-12)
