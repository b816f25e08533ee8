"""The feature pipeline: derived features, encodings, no leakage, training-only fitting."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import estimator_checks_generator

import spinerisk as sr
from spinerisk.features import ClinicalFeatures, field_of_feature
from spinerisk.schema import SPINE_SCHEMA
from spinerisk.schema._spec import FOLLOW_UP_ROLES

OUTCOMES = [f.name for f in SPINE_SCHEMA if f.role in FOLLOW_UP_ROLES]
_NEEDS_FRAME = (
    "ClinicalFeatures reads fields by their schema names; the common checks pass "
    "anonymous numpy arrays, which it refuses with a TypeError"
)
EXPECTED_FAILED = dict.fromkeys(
    [
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_complex_data",
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_preserve_dtypes",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit1d",
        "check_fit2d_predict1d",
    ],
    _NEEDS_FRAME,
)  # fmt: skip


def _common_checks():
    # check_array_api_input needs SCIPY_ARRAY_API set in the environment before scipy is
    # imported, and array-API namespaces do not apply to a DataFrame-only transformer
    for item in estimator_checks_generator(
        ClinicalFeatures(), expected_failed_checks=EXPECTED_FAILED, mark="xfail"
    ):
        # expected failures come as pytest.param(est, check, marks=xfail(reason))
        (est, check), marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
        name = getattr(check, "func", check).__name__
        if name != "check_array_api_input":
            yield pytest.param(est, check, marks=marks, id=name)


@pytest.mark.parametrize("estimator, check", list(_common_checks()))
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_clinical_features_follow_the_contract_on_records(valid_cohort):
    """The checks sklearn cannot run on arrays, run here on real records."""
    est = ClinicalFeatures()
    assert est.fit(valid_cohort) is est
    assert est.n_features_in_ == valid_cohort.shape[1]
    out = est.transform(valid_cohort)
    assert list(out.columns) == list(est.get_feature_names_out())
    shuffled = valid_cohort.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(est.transform(shuffled), out.loc[shuffled.index])
    pd.testing.assert_frame_equal(clone(est).fit(valid_cohort).transform(valid_cohort), out)
    pd.testing.assert_frame_equal(est.transform(valid_cohort.iloc[:7]), out.iloc[:7])
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(est)).transform(valid_cohort), out)
    assert est.set_params(include_treatment=False).get_params()["include_treatment"] is False
    with pytest.raises(ValueError, match="0 sample"):
        ClinicalFeatures().fit(valid_cohort.iloc[:0])


@pytest.mark.parametrize("encoding", ["onehot", "native"])
def test_outcomes_never_enter_the_features(valid_cohort, encoding):
    pipe = sr.make_feature_pipeline(encoding=encoding).fit(valid_cohort)
    names = set(pipe.get_feature_names_out())
    assert not {field_of_feature(n) for n in names} & set(OUTCOMES)
    base = pipe.transform(valid_cohort)
    # scrambling, dropping or corrupting every outcome column changes nothing
    rng = np.random.default_rng(0)
    scrambled = valid_cohort.copy()
    present = [c for c in OUTCOMES if c in valid_cohort.columns]  # the OVF cohort's outcomes
    assert len(present) >= 5
    for col in present:
        scrambled[col] = scrambled[col].to_numpy()[rng.permutation(len(scrambled))]
    pd.testing.assert_frame_equal(pipe.transform(scrambled), base)
    pd.testing.assert_frame_equal(pipe.transform(valid_cohort.drop(columns=present)), base)
    refit = sr.make_feature_pipeline(encoding=encoding).fit(scrambled)
    pd.testing.assert_frame_equal(refit.transform(valid_cohort), base)


def test_onehot_output_is_finite_readable_and_stable(valid_cohort):
    pipe = sr.make_feature_pipeline().fit(valid_cohort)
    X = pipe.transform(valid_cohort)
    assert np.isfinite(X.to_numpy(dtype=float)).all()
    cols = list(X.columns)
    assert {"age_years", "tlj", "tscore_min_missing", "t2_pattern=confined_high",
            "t2_pattern=missing", "region=tlj", "age_band=80-89"} <= set(cols)  # fmt: skip
    assert not [c for c in cols if "__" in c or c.startswith("missingindicator")]
    one = pipe.transform(valid_cohort.head(1))
    assert list(one.columns) == cols


def test_onehot_scales_numbers_and_imputes_training_medians(valid_cohort):
    train, test = valid_cohort.iloc[:200], valid_cohort.iloc[200:]
    pipe = sr.make_feature_pipeline(scale=False).fit(train)
    imputer = pipe.named_steps["encode"].named_transformers_["num"][0]
    tscore_at = list(imputer.feature_names_in_).index("tscore_min")
    assert imputer.statistics_[tscore_at] == pytest.approx(train["tscore_min"].median())
    out = pipe.transform(test)
    was_missing = test["tscore_min"].isna().to_numpy()
    assert was_missing.any()
    assert np.allclose(out["tscore_min"].to_numpy()[was_missing], train["tscore_min"].median())
    assert out["tscore_min_missing"].to_numpy()[was_missing].all()
    scaled = sr.make_feature_pipeline().fit(train).transform(train)
    assert scaled["age_years"].mean() == pytest.approx(0.0, abs=1e-9)
    assert scaled["age_years"].std(ddof=0) == pytest.approx(1.0, rel=1e-6)


def test_native_keeps_nan_and_schema_categories(valid_cohort):
    X = sr.make_feature_pipeline(encoding="native").fit_transform(valid_cohort)
    assert X["tscore_min"].isna().sum() == valid_cohort["tscore_min"].isna().sum()
    assert isinstance(X["t2_pattern"].dtype, pd.CategoricalDtype)
    assert list(X["t2_pattern"].cat.categories) == list(SPINE_SCHEMA["t2_pattern"].categories)
    assert "tscore_min_missing" in X.columns


def test_unseen_category_at_transform(valid_cohort):
    train = valid_cohort[valid_cohort["ao_morphology"] != "A1"]
    test = valid_cohort[valid_cohort["ao_morphology"] == "A1"].head(5)
    assert len(test) and len(train)
    X = sr.make_feature_pipeline().fit(train).transform(test)
    ao = [c for c in X.columns if c.startswith("ao_morphology=")]
    assert "ao_morphology=A1" not in ao
    assert (X[ao].to_numpy() == 0).all()


def test_derived_clinical_features():
    records = pd.DataFrame({
        "patient_id": ["a", "b", "c", "d", "e"],
        "age_years": [59.0, 65.0, 79.9, 85.0, 95.0],
        "sex": ["F", "M", "F", "F", "M"],
        "level": ["T10", "T11", "L2", "L3", None],
        "height_loss0_pct": [10.0, 20.0, 25.0, 40.1, np.nan],
        "tscore_min": [-2.5, -2.4, np.nan, np.nan, np.nan],
        "hu_l1": [200.0, 80.0, 100.0, 111.0, np.nan],
        "height_cm": [150.0, 170.0, 160.0, 155.0, 165.0],
        "weight_kg": [45.0, 70.0, 64.0, 50.0, 60.0],
        "bmi": [20.0, np.nan, 25.0, np.nan, np.nan],
    })  # fmt: skip
    out = ClinicalFeatures().fit_transform(sr.validate(records))
    assert out["tlj"].tolist()[:4] == [0.0, 1.0, 1.0, 0.0] and np.isnan(out["tlj"].iloc[4])
    assert out["region"].astype(object).tolist()[:4] == ["thoracic", "tlj", "tlj", "lumbar"]
    with_region = records.assign(region=[None, None, None, None, "tlj"])  # level unknown
    derived = ClinicalFeatures().fit_transform(sr.validate(with_region))
    assert derived["region"].iloc[4] == "tlj" and derived["tlj"].iloc[4] == 1.0
    assert out["genant_grade0"].tolist()[:4] == [0.0, 1.0, 2.0, 3.0]
    # DXA first (T <= -2.5), CT attenuation <= 110 HU when no T-score
    assert out["osteoporosis"].tolist()[:4] == [1.0, 0.0, 1.0, 0.0]
    assert np.isnan(out["osteoporosis"].iloc[4])
    assert out["age_band"].astype(str).tolist() == ["<60", "60-69", "70-79", "80-89", "90+"]
    assert out["bmi"].iloc[1] == pytest.approx(70 / 1.7**2)
    assert out["bmi"].iloc[0] == 20.0  # a recorded BMI is kept
    assert not {"level", "height_cm", "weight_kg"} & set(out.columns)


def test_without_treatment(valid_cohort):
    names = sr.make_feature_pipeline(include_treatment=False).fit(valid_cohort)
    fields = {field_of_feature(n) for n in names.get_feature_names_out()}
    assert not fields & {"treatment", "brace_type", "anti_op_drug"}


def test_an_absent_optional_field_is_missing_data(valid_cohort):
    """Issue 13.1: a column absent at prediction time is missing, not an error."""
    pipe = sr.make_feature_pipeline().fit(valid_cohort)
    dropped = pipe.transform(valid_cohort.drop(columns="hu_l1"))
    blank = pipe.transform(valid_cohort.assign(hu_l1=np.nan))
    pd.testing.assert_frame_equal(dropped, blank)
    with pytest.raises(ValueError, match=r"lacks required field\(s\) \['age_years'\]"):
        pipe.transform(valid_cohort.drop(columns="age_years"))
    with pytest.raises(ValueError, match="None of the baseline fields"):
        ClinicalFeatures().fit(pd.DataFrame({"patient_id": ["a"]}))


def test_deterministic(valid_cohort):
    a = sr.make_feature_pipeline().fit_transform(valid_cohort)
    b = sr.make_feature_pipeline().fit_transform(valid_cohort.copy())
    pd.testing.assert_frame_equal(a, b)


def test_pipeline_feeds_linear_and_boosted_models(valid_cohort):
    import lightgbm as lgb
    import xgboost as xgb

    data = valid_cohort[valid_cohort["collapse_6m"].notna()]
    y = data["collapse_6m"].astype(bool).to_numpy()
    linear = make_pipeline(sr.make_feature_pipeline(), LogisticRegression(max_iter=2000))
    p = linear.fit(data, y).predict_proba(data)[:, 1]
    assert p.shape == (len(data),) and np.isfinite(p).all()
    for booster in (
        xgb.XGBClassifier(n_estimators=20, enable_categorical=True, tree_method="hist",
                          n_jobs=1, random_state=0),
        lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1, random_state=0),
    ):  # fmt: skip
        model = make_pipeline(sr.make_feature_pipeline(encoding="native"), booster)
        q = model.fit(data, y).predict_proba(data)[:, 1]
        assert np.isfinite(q).all() and 0 < q.mean() < 1


def test_field_of_feature_round_trip(valid_cohort):
    names = sr.make_feature_pipeline().fit(valid_cohort).get_feature_names_out()
    fields = {field_of_feature(n) for n in names}
    assert fields <= set(SPINE_SCHEMA.names)
    assert {"t2_pattern", "level", "tscore_min", "age_years"} <= fields


def test_bad_encoding():
    with pytest.raises(ValueError, match="encoding must be"):
        sr.make_feature_pipeline(encoding="ordinal")


def test_custom_schema_without_derived_targets_keeps_its_fields():
    """A schema derives only what it declares: same-named spine fields get no spine
    derivations, and height and weight stay features."""
    from spinerisk.schema import FieldSpec, Schema

    schema = Schema(
        (
            FieldSpec("rid", "string", "id", role="id", nullable=False, required=True),
            FieldSpec("age_years", "float", "age", min=18, max=105),
            FieldSpec("height_cm", "float", "height", min=120, max=210),
            FieldSpec("weight_kg", "float", "weight", min=25, max=200),
        )
    )
    records = pd.DataFrame(
        {"rid": ["a", "b"], "age_years": [70.0, 80.0], "height_cm": [150.0, 160.0],
         "weight_kg": [50.0, 60.0]}
    )  # fmt: skip
    out = ClinicalFeatures(schema).fit_transform(sr.validate(records, schema))
    assert list(out.columns) == ["age_years", "height_cm", "weight_kg"]


def test_custom_schema_derives_what_it_declares():
    from spinerisk.schema import DerivedFeature, FieldSpec, Schema

    schema = Schema(
        (
            FieldSpec("rid", "string", "id", role="id", nullable=False, required=True),
            FieldSpec("height_m", "float", "height", min=1, max=2.2),
            FieldSpec("weight", "float", "weight", min=25, max=200),
        ),
        derived=(
            DerivedFeature(
                "bmi", "weight / height_m ^ 2", "Body-mass index.", replaces=("height_m",)
            ),
            DerivedFeature("obese", "bmi >= 30"),
        ),
    )
    records = pd.DataFrame({"rid": ["a", "b", "c"], "height_m": [1.5, 1.6, None],
                            "weight": [50.0, 90.0, 70.0]})  # fmt: skip
    out = ClinicalFeatures(schema).fit_transform(sr.validate(records, schema))
    assert list(out.columns) == ["weight", "bmi", "obese"]
    np.testing.assert_allclose(out["bmi"], [50 / 1.5**2, 90 / 1.6**2, np.nan])
    np.testing.assert_array_equal(out["obese"], [0.0, 1.0, np.nan])
    assert schema.field_of("obese") == "weight"  # first field read, through bmi


def test_spline_terms_bend_continuous_numbers_only(valid_cohort):
    pipe = sr.make_feature_pipeline(spline_knots=4).fit(valid_cohort)
    X = pipe.transform(valid_cohort)
    names = list(X.columns)
    # a continuous number becomes n_knots + degree - 2 = 5 basis columns, nothing left over
    assert [n for n in names if n.startswith("age_years")] == [
        f"age_years_sp_{i}" for i in range(5)
    ]
    # flags and small counts keep one straight-line term
    assert "current_smoking" in names and not any(n.startswith("current_smoking_sp") for n in names)
    assert "prevalent_vf_count" in names
    # every column maps back to a clinical field; missing values are imputed
    assert {field_of_feature(n) for n in names if "_sp_" in n} >= {"age_years", "hu_l1", "bmi"}
    assert X.notna().all().all()
    assert "tscore_min_missing" in names
    # beyond the training range the basis continues as straight lines: finite values
    far = valid_cohort.head(2).copy()
    far["age_years"] = [18.0, 105.0]
    assert np.isfinite(pipe.transform(far).to_numpy()).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spline_knots": 2},
        {"spline_knots": -1},
        {"spline_knots": True},
        {"spline_knots": 4, "encoding": "native"},
        {"spline_knots": 4, "impute": False},
    ],
)
def test_spline_settings_that_cannot_work_are_refused(kwargs):
    with pytest.raises(ValueError, match="spline_knots"):
        sr.make_feature_pipeline(**kwargs)
