"""Binary models: EarlyStoppingClassifier, the factories, calibration folds and quality."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from scipy.special import logit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_validate,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import estimator_checks_generator
from xgboost import XGBClassifier

import spinerisk as sr
from spinerisk.endpoints import get_endpoint
from spinerisk.models._binary import (
    EarlyStoppingClassifier,
    make_binary_model,
    make_booster,
    make_logistic,
    neg_log_loss,
)


# -- small, fast boosters and data ------------------------------------------------------
def _xgb(**params):
    base = {
        "n_estimators": 300,
        "max_depth": 2,
        "learning_rate": 0.1,
        "enable_categorical": True,
        "tree_method": "hist",
        "random_state": 0,
        "n_jobs": 1,
    }
    return XGBClassifier(**{**base, **params})


def _lgbm(**params):
    base = {
        "n_estimators": 300,
        "num_leaves": 7,
        "learning_rate": 0.1,
        "random_state": 0,
        "n_jobs": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    return LGBMClassifier(**{**base, **params})


SMALL = {"xgboost": _xgb, "lightgbm": _lgbm}


@pytest.fixture(scope="module")
def records():
    """Eligible records and outcome for collapse in a 900-record cohort (~35% events)."""
    cohort = sr.validate(sr.make_spine_cohort(900, seed=0))
    ep = get_endpoint("collapse")
    rows = cohort[ep.eligible(cohort)]
    return rows, ep.target(rows)


@pytest.fixture(scope="module")
def native(records):
    """The same records as a native-encoded feature frame (categories and NaN kept)."""
    rows, y = records
    return sr.make_feature_pipeline(encoding="native").fit_transform(rows), y


# -- scikit-learn common checks ---------------------------------------------------------
_TINY_CLASS = (
    "the check fits on about 20 records with a class that has a single record (or 10 "
    "records and 3 classes): the stratified validation split cannot put every class "
    "in both parts, and fit refuses with a ValueError saying so; the same properties "
    "are tested on records in this file"
)
EXPECTED_FAILED = dict.fromkeys(
    [
        "check_dont_overwrite_parameters",
        "check_f_contiguous_array_estimator",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    ],
    _TINY_CLASS,
)
CONTRACT_ESTIMATORS = [
    EarlyStoppingClassifier(_xgb(n_estimators=20, learning_rate=0.3), early_stopping_rounds=5),
    EarlyStoppingClassifier(_lgbm(n_estimators=20, learning_rate=0.3), early_stopping_rounds=5),
]


def _common_checks():
    # check_array_api_input needs SCIPY_ARRAY_API set before scipy is imported, and
    # the boosters do not take array-API namespaces anyway
    for estimator in CONTRACT_ESTIMATORS:
        backend = type(estimator.estimator).__name__
        for item in estimator_checks_generator(
            estimator, expected_failed_checks=EXPECTED_FAILED, mark="xfail"
        ):
            (est, check), marks = (
                (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            )
            name = getattr(check, "func", check).__name__
            if name != "check_array_api_input":
                yield pytest.param(est, check, marks=marks, id=f"{backend}-{name}")


@pytest.mark.parametrize("estimator, check", list(_common_checks()))
def test_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # boosters on degenerate toy data
        check(estimator)


def test_expected_failures_are_real_failures():
    """Each listed check still fails, for the stated reason (else drop it from the list)."""
    checks = {
        getattr(c, "func", c).__name__: (e, c)
        for e, c in estimator_checks_generator(CONTRACT_ESTIMATORS[0], mark="skip")
    }
    for name in EXPECTED_FAILED:
        est, check = checks[name]
        with pytest.raises((ValueError, AssertionError), match="per class|of every class"):
            check(est)


def test_tags_declare_nan_categorical_and_sparse_input():
    tags = EarlyStoppingClassifier().__sklearn_tags__()
    assert tags.input_tags.allow_nan
    assert tags.input_tags.categorical
    assert tags.input_tags.sparse
    assert tags.estimator_type == "classifier"


# -- the meta-estimator on records --------------------------------------------------------
@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_frames_reach_the_booster_unchanged(native, backend):
    X, y = native
    assert X.isna().any().any() and (X.dtypes == "category").any()  # the point of the test
    clf = EarlyStoppingClassifier(SMALL[backend](), early_stopping_rounds=10).fit(X, y)
    assert clf.n_features_in_ == X.shape[1]
    assert list(clf.feature_names_in_) == list(X.columns)
    assert list(clf.classes_) == [False, True]
    categorical = [c for c in X.columns if X[c].dtype == "category"]
    if backend == "xgboost":
        types = dict(zip(X.columns, clf.estimator_.get_booster().feature_types, strict=True))
        assert {c for c, t in types.items() if t == "c"} == set(categorical)
    else:
        assert len(clf.estimator_.booster_.pandas_categorical) == len(categorical)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict_proba(X[X.columns[::-1]])


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_early_stopping_stops_and_refit_uses_all_rows(native, backend):
    X, y = native
    noisy = np.where(np.random.default_rng(0).random(len(y)) < 0.3, ~y, y)  # 30% flipped
    base = SMALL[backend](n_estimators=500, learning_rate=0.3)
    clf = EarlyStoppingClassifier(base, early_stopping_rounds=20, random_state=1).fit(X, noisy)
    best = clf.best_n_estimators_
    assert 1 <= best < 500 - 20
    assert clf.backend_ == backend and np.isfinite(clf.best_score_)
    # the final model has exactly `best` rounds and equals a refit on all rows
    assert clf.estimator_.n_estimators == best
    if backend == "xgboost":
        assert clf.estimator_.get_booster().num_boosted_rounds() == best
    else:
        assert clf.estimator_.booster_.num_trees() == best
    ref = clone(base).set_params(n_estimators=best).fit(X, noisy.astype(int))
    np.testing.assert_array_equal(clf.predict_proba(X), ref.predict_proba(X))
    # refit=False keeps the model fitted on the training part, which differs
    part = clone(clf).set_params(refit=False).fit(X, noisy)
    assert part.best_n_estimators_ == best
    assert not np.array_equal(part.predict_proba(X), clf.predict_proba(X))


def test_prediction_is_row_wise_and_leaves_inputs_alone(native):
    X, y = native
    X_before, y_before = X.copy(), y.copy()
    clf = EarlyStoppingClassifier(_xgb(), early_stopping_rounds=10)
    params_before = clf.get_params(deep=True)
    clf.fit(X, y)
    pd.testing.assert_frame_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    params_after = clf.get_params(deep=True)
    assert params_after.keys() == params_before.keys()
    for key, value in params_before.items():
        if key != "estimator":
            assert params_after[key] == value or value is params_after[key], key
    proba = clf.predict_proba(X)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(clf.predict_proba(X.iloc[order]), proba[order])
    np.testing.assert_array_equal(clf.predict_proba(X.iloc[:7]), proba[:7])
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_labels_of_any_type_are_encoded(native):
    X, y = native
    labels = np.where(y, "collapse", "stable")
    clf = EarlyStoppingClassifier(_lgbm(), early_stopping_rounds=10).fit(X, labels)
    assert list(clf.classes_) == ["collapse", "stable"]
    assert set(clf.predict(X)) <= {"collapse", "stable"}


def test_default_estimator_is_the_small_cohort_xgboost(native):
    X, y = native
    clf = EarlyStoppingClassifier(random_state=3).fit(X.iloc[:300], y[:300])
    assert isinstance(clf.estimator_, XGBClassifier)
    params = clf.estimator_.get_params()
    assert params["max_depth"] == 3 and params["enable_categorical"]
    assert params["random_state"] == 3 and params["early_stopping_rounds"] is None


def test_predict_before_fit_raises_not_fitted(native):
    X, _ = native
    with pytest.raises(NotFittedError):
        EarlyStoppingClassifier(_xgb()).predict_proba(X)
    with pytest.raises(NotFittedError):
        EarlyStoppingClassifier(_xgb()).predict(X)


# -- factories ---------------------------------------------------------------------------
def test_make_booster_settings():
    xgb = make_booster("xgboost", random_state=4, n_jobs=2)
    p = xgb.estimator.get_params()
    assert isinstance(xgb, EarlyStoppingClassifier) and isinstance(xgb.estimator, XGBClassifier)
    expected = {
        "enable_categorical": True,
        "tree_method": "hist",
        "max_depth": 3,
        "learning_rate": 0.05,
        "n_estimators": 2000,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5,
        "reg_lambda": 1.0,
        "random_state": 4,
        "n_jobs": 2,
    }
    assert {k: p[k] for k in expected} == expected
    assert (xgb.random_state, xgb.validation_fraction, xgb.early_stopping_rounds) == (4, 0.2, 50)
    lgbm = make_booster("lightgbm", random_state=4)
    p = lgbm.estimator.get_params()
    expected = {
        "num_leaves": 15,
        "min_child_samples": 20,
        "learning_rate": 0.05,
        "n_estimators": 2000,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "max_cat_to_onehot": 16,
        "verbose": -1,
        "random_state": 4,
        "n_jobs": 1,
        "deterministic": True,
    }
    assert isinstance(lgbm.estimator, LGBMClassifier)
    assert {k: p[k] for k in expected} == expected


def test_make_logistic_is_l2_log_loss_and_warning_free(records):
    rows, y = records
    model = make_logistic(random_state=2)
    assert isinstance(model, LogisticRegressionCV)
    assert model.scoring is neg_log_loss and model.max_iter >= 1000
    assert isinstance(model.cv, StratifiedKFold) and model.cv.shuffle
    assert model.cv.random_state == 2
    assert len(model.Cs) >= 10 and min(model.Cs) <= 1e-2 and max(model.Cs) >= 1e2
    assert model.get_params().get("l1_ratios") in (None, (0.0,))  # pure L2
    pipe = make_binary_model("logistic", random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation or convergence warnings
        pipe.fit(rows, y)
    assert np.all(np.asarray(pipe[-1].l1_ratio_) == 0.0)
    # the penalty is chosen on scikit-learn's own log loss, bit for bit
    matrix = pipe[:-1].transform(rows)
    assert neg_log_loss(pipe[-1], matrix, y) == get_scorer("neg_log_loss")(pipe[-1], matrix, y)


@pytest.mark.parametrize(
    "backend, calibration, kind, method, encoding",
    [
        ("xgboost", "auto", CalibratedClassifierCV, "sigmoid", "native"),
        ("lightgbm", "isotonic", CalibratedClassifierCV, "isotonic", "native"),
        ("xgboost", None, Pipeline, None, "native"),
        ("logistic", "auto", Pipeline, None, "onehot"),
        ("logistic", "sigmoid", CalibratedClassifierCV, "sigmoid", "onehot"),
    ],
)
def test_make_binary_model_structure(records, backend, calibration, kind, method, encoding):
    rows, _ = records
    model = make_binary_model(backend, calibration=calibration, cv=4, random_state=7)
    assert type(model) is kind
    if kind is CalibratedClassifierCV:
        assert model.method == method and model.ensemble is True
        assert isinstance(model.cv, StratifiedKFold)
        assert (model.cv.n_splits, model.cv.shuffle, model.cv.random_state) == (4, True, 7)
        pipe = model.estimator
    else:
        pipe = model
    assert [name for name, _ in pipe.steps] == ["features", "model"]
    Xf = clone(pipe.named_steps["features"]).fit_transform(rows)
    has_categories = (Xf.dtypes == "category").any()
    assert has_categories == (encoding == "native")
    assert Xf.isna().any().any() == (encoding == "native")
    inner = pipe.named_steps["model"]
    if backend == "logistic":
        assert isinstance(inner, LogisticRegressionCV)
    else:
        assert isinstance(inner, EarlyStoppingClassifier) and inner.random_state == 7


def test_make_binary_model_can_leave_treatment_out(records):
    rows, _ = records
    pipe = make_binary_model("xgboost", calibration=None, include_treatment=False)
    Xf = clone(pipe.named_steps["features"]).fit_transform(rows)
    assert "treatment" not in Xf.columns
    pipe = make_binary_model("xgboost", calibration=None)
    assert "treatment" in clone(pipe.named_steps["features"]).fit_transform(rows).columns


# -- the sklearn toolbox around it --------------------------------------------------------
def test_clone_and_nested_params():
    for est in (
        EarlyStoppingClassifier(_xgb()),
        make_booster("lightgbm"),
        make_binary_model("xgboost"),
        make_binary_model("logistic"),
    ):
        twin = clone(est)
        assert twin is not est and twin.get_params().keys() == est.get_params().keys()
    model = make_binary_model("xgboost")
    model.set_params(estimator__model__estimator__max_depth=2, estimator__model__refit=False)
    params = model.get_params()
    assert params["estimator__model__estimator__max_depth"] == 2
    assert params["estimator__model__refit"] is False
    assert clone(model).get_params()["estimator__model__estimator__max_depth"] == 2


def test_clone_of_a_fitted_model_is_unfitted(native):
    X, y = native
    fitted = EarlyStoppingClassifier(_xgb(), early_stopping_rounds=10).fit(X, y)
    with pytest.raises(NotFittedError):
        clone(fitted).predict_proba(X)


def test_grid_search_over_a_pipeline(records):
    rows, y = records
    pipe = Pipeline(
        [
            ("features", sr.make_feature_pipeline(encoding="native")),
            ("model", EarlyStoppingClassifier(_xgb(), early_stopping_rounds=10)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"model__estimator__max_depth": [1, 3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring="neg_log_loss",
    ).fit(rows, y)
    assert search.best_params_["model__estimator__max_depth"] in (1, 3)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict_proba(rows.head(5)).shape == (5, 2)


def test_cross_validate_a_calibrated_booster(records):
    rows, y = records
    result = cross_validate(
        make_binary_model("lightgbm", cv=3),
        rows,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring=["roc_auc", "neg_log_loss"],
    )
    assert np.isfinite(result["test_neg_log_loss"]).all()
    # ~290 training records per booster here (3 x 3 folds): some signal, not the best model
    assert result["test_roc_auc"].mean() > 0.65


# -- determinism and calibration folds -----------------------------------------------------
@pytest.mark.parametrize("backend", ["xgboost", "lightgbm", "logistic"])
def test_same_seed_gives_bitwise_identical_risks(records, backend):
    rows, y = records
    first = make_binary_model(backend, cv=3, random_state=5).fit(rows, y).predict_proba(rows)
    again = make_binary_model(backend, cv=3, random_state=5).fit(rows, y).predict_proba(rows)
    np.testing.assert_array_equal(first, again)
    if backend != "logistic":  # the seed is really used (folds, split, subsampling)
        other = make_binary_model(backend, cv=3, random_state=6).fit(rows, y)
        assert not np.array_equal(other.predict_proba(rows), first)


def test_calibration_is_fitted_on_held_out_folds(records):
    rows, y = records
    model = make_binary_model("xgboost", cv=3, random_state=0).fit(rows, y)
    assert len(model.calibrated_classifiers_) == 3
    folds = list(model.cv.split(rows, y))
    for (train, test), fold in zip(folds, model.calibrated_classifiers_, strict=True):
        # the fold's features + booster saw exactly the fold's training rows ...
        alone = clone(model.estimator).fit(rows.iloc[train], y[train])
        np.testing.assert_array_equal(fold.estimator.predict_proba(rows), alone.predict_proba(rows))
        # ... and its calibrator exactly the held-out rows
        frozen = FrozenEstimator(fold.estimator)
        held_out = CalibratedClassifierCV(frozen, method="sigmoid").fit(rows.iloc[test], y[test])
        on_train = CalibratedClassifierCV(frozen, method="sigmoid").fit(rows.iloc[train], y[train])
        np.testing.assert_allclose(fold.predict_proba(rows), held_out.predict_proba(rows))
        assert not np.allclose(fold.predict_proba(rows), on_train.predict_proba(rows))
    assert not set(folds[0][0]) & set(folds[0][1])


# -- parameter and data errors --------------------------------------------------------------
@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"validation_fraction": 0.0}, ValueError, r"validation_fraction must be .* got .*=0.0"),
        ({"validation_fraction": 1}, ValueError, r"0 < validation_fraction < 1; got .*=1\."),
        ({"validation_fraction": "0.2"}, ValueError, r"validation_fraction='0.2'"),
        ({"early_stopping_rounds": 0}, ValueError, r"early_stopping_rounds must be an integer"),
        ({"early_stopping_rounds": 2.5}, ValueError, r"got early_stopping_rounds=2.5"),
        ({"refit": "yes"}, ValueError, r"refit must be True or False; got refit='yes'"),
        ({"random_state": "seed"}, ValueError, r"random_state must be .* got random_state='seed'"),
        ({"estimator": LogisticRegression()}, TypeError, r"XGBClassifier or LGBMClassifier"),
        ({"estimator": XGBClassifier}, TypeError, r"got estimator=the class XGBClassifier"),
    ],
)
def test_bad_parameters_are_named_in_fit(native, params, error, match):
    X, y = native
    clf = EarlyStoppingClassifier(**{"estimator": _xgb(), "validation_fraction": 0.2, **params})
    with pytest.raises(error, match=match):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "factory, kwargs, error, match",
    [
        (make_booster, {"backend": "catboost"}, ValueError, r"backend must be one of"),
        (make_booster, {"random_state": -1}, ValueError, r"got random_state=-1"),
        (make_booster, {"n_jobs": 0}, ValueError, r"n_jobs must be an integer >= 1; got n_jobs=0"),
        (make_logistic, {"random_state": 1.5}, ValueError, r"got random_state=1.5"),
        (make_binary_model, {"backend": "forest"}, ValueError, r"got backend='forest'"),
        (make_binary_model, {"calibration": "platt"}, ValueError, r"got calibration='platt'"),
        (make_binary_model, {"cv": 1}, ValueError, r"cv must be an integer >= 2; got cv=1"),
        (make_binary_model, {"include_treatment": "no"}, ValueError, r"include_treatment="),
        (make_binary_model, {"schema": "spine"}, TypeError, r"schema must be a spinerisk Schema"),
    ],
)
def test_bad_factory_arguments(factory, kwargs, error, match):
    with pytest.raises(error, match=match):
        factory(**kwargs)


def test_bad_data_is_reported(native):
    X, y = native
    clf = EarlyStoppingClassifier(_xgb())
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.zeros(len(y), dtype=bool))
    one = np.zeros(len(y), dtype=bool)
    one[0] = True
    with pytest.raises(ValueError, match=r"at least 2 records of every class; class .* has 1"):
        clf.fit(X, one)
    bad = X.copy()
    bad.iloc[3, bad.columns.get_loc("age_years")] = np.inf
    with pytest.raises(ValueError, match=r"infinity in column\(s\) \['age_years'\]"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])


# -- quality on synthetic cohorts with known true risks --------------------------------------
def _slope(y, risk):
    """Calibration slope: unpenalised logistic regression of y on logit(risk)."""
    z = logit(np.clip(risk, 1e-6, 1 - 1e-6))[:, None]
    return float(LogisticRegression(C=np.inf).fit(z, y).coef_[0, 0])


def _held_out(n, seed, test_size, **cohort_kw):
    cohort, oracle = sr.make_spine_cohort(n, seed=seed, return_oracle=True, **cohort_kw)
    cohort = sr.validate(cohort)
    train, test = train_test_split(np.arange(n), test_size=test_size, random_state=seed)
    return cohort, oracle, train, test


def _outcome(data, endpoint):
    cohort, oracle, train, test = data
    ep = get_endpoint(endpoint)
    eligible = ep.eligible(cohort).to_numpy()
    train, test = train[eligible[train]], test[eligible[test]]
    X_train, X_test = cohort.iloc[train], cohort.iloc[test]
    truth = oracle[f"p_{endpoint}"].to_numpy()[test]
    return X_train, ep.target(X_train), X_test, ep.target(X_test), truth


@pytest.fixture(scope="module")
def default_cohort():
    """Default generator (with missingness): 12,000 training and 4,000 test records."""
    return _held_out(16_000, 0, 0.25)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["nonunion", "collapse"])
def test_boosted_model_is_close_to_the_oracle(default_cohort, endpoint):
    X_train, y_train, X_test, y_test, truth = _outcome(default_cohort, endpoint)
    assert len(y_train) >= 4000 and y_test.sum() >= 250
    oracle_auc = roc_auc_score(y_test, truth)
    fitted = {
        backend: make_binary_model(backend, random_state=0).fit(X_train, y_train)
        for backend in ("xgboost", "lightgbm")
    }
    risks = {b: m.predict_proba(X_test)[:, 1] for b, m in fitted.items()}
    aucs = {b: roc_auc_score(y_test, r) for b, r in risks.items()}
    best = max(aucs, key=aucs.get)
    assert abs(aucs[best] - oracle_auc) <= 0.03, (endpoint, oracle_auc, aucs)
    slope = _slope(y_test, risks[best])
    assert 0.8 <= slope <= 1.2, (endpoint, best, slope)


@pytest.mark.slow
def test_boosted_beats_logistic_on_a_nonlinear_cohort():
    data = _held_out(12_000, 0, 0.3, nonlinear=True)
    gains = {}
    for endpoint in ("nonunion", "collapse"):
        X_train, y_train, X_test, y_test, _ = _outcome(data, endpoint)
        auc = {}
        for backend in ("xgboost", "lightgbm", "logistic"):
            model = make_binary_model(backend, random_state=0).fit(X_train, y_train)
            auc[backend] = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
        gains[endpoint] = max(auc["xgboost"], auc["lightgbm"]) - auc["logistic"]
    assert min(gains.values()) > 0 and max(gains.values()) > 0.01, gains  # on each endpoint
