"""Survival models: sklearn contract, lifelines/XGBoost agreement, curves and horizons."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from lifelines import CoxPHFitter, NelsonAalenFitter
from lifelines.utils import concordance_index
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import estimator_checks_generator
from sklearn_checks import run_check

import spinerisk as sr
from spinerisk.models import _survival as survival_module
from spinerisk.models._ridge import LAMBDAS
from spinerisk.models._survival import BoostedAFTSurvival, BoostedCoxSurvival, CoxPHSurvival
from spinerisk.targets import make_survival_target

FAST = {"n_estimators": 30, "early_stopping_rounds": None}
ESTIMATORS = [
    CoxPHSurvival(),
    CoxPHSurvival(penalizer="cv"),
    BoostedCoxSurvival(**FAST),
    BoostedAFTSurvival(distribution="extreme", **FAST),
]
IDS = ["cox", "cox_cv", "boosted_cox", "boosted_aft"]


def _ph_data(n=400, seed=0, beta=(0.8, -0.5, 0.0)):
    """Exponential proportional-hazards times (days) with uniform censoring."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(beta)))
    t_event = rng.exponential(1000.0 * np.exp(-(X @ np.asarray(beta))))
    t_censor = rng.uniform(200.0, 3000.0, n)
    y = make_survival_target(t_event <= t_censor, np.minimum(t_event, t_censor))
    return X, y


# -- scikit-learn common checks ---------------------------------------------------------------
def _y(where):
    return (
        "the check fits with a numeric classification/regression y; survival models take "
        "only the structured (event, time) target and refuse it with a TypeError; "
        f"checked on a survival target in {where}"
    )


EXPECTED_FAILED = {
    "check_fit_score_takes_y": _y("test_score_is_harrell_c_and_drives_model_selection"),
    "check_estimators_overwrite_params": _y("test_fit_returns_self_and_keeps_params"),
    "check_dont_overwrite_parameters": _y("test_fit_returns_self_and_keeps_params"),
    "check_estimators_fit_returns_self": _y("test_fit_returns_self_and_keeps_params"),
    "check_n_features_in_after_fitting": _y("test_fit_returns_self_and_keeps_params"),
    "check_n_features_in": _y("test_fit_returns_self_and_keeps_params"),
    "check_fit_check_is_fitted": _y("test_not_fitted_before_fit"),
    "check_readonly_memmap_input": _y("test_input_forms (read-only arrays)"),
    "check_estimators_dtypes": _y("test_input_forms (float32 and int input)"),
    "check_dtype_object": _y("test_input_forms (object arrays of numbers)"),
    "check_f_contiguous_array_estimator": _y("test_input_forms (Fortran order)"),
    "check_fit2d_1feature": _y("test_input_forms (one feature)"),
    "check_fit2d_predict1d": _y("test_input_forms (1-d X at predict)"),
    "check_estimators_nan_inf": _y("test_missing_values"),
    "check_positive_only_tag_during_fit": _y("test_input_forms (negative values are fine)"),
    "check_pipeline_consistency": _y("test_pickle_order_subset_and_idempotence"),
    "check_estimators_pickle": _y("test_pickle_order_subset_and_idempotence"),
    "check_methods_sample_order_invariance": _y("test_pickle_order_subset_and_idempotence"),
    "check_methods_subset_invariance": _y("test_pickle_order_subset_and_idempotence"),
    "check_fit_idempotent": _y("test_pickle_order_subset_and_idempotence"),
    "check_dict_unchanged": _y("test_pickle_order_subset_and_idempotence"),
    "check_fit2d_1sample": _y("test_bad_targets (one record has no risk set)"),
}


def _common_checks():
    for est in ESTIMATORS:
        for item in estimator_checks_generator(
            est, expected_failed_checks=EXPECTED_FAILED, mark="xfail"
        ):
            (e, check), marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            name = getattr(check, "func", check).__name__
            # needs SCIPY_ARRAY_API set before scipy is imported; no array-API support here
            if name != "check_array_api_input":
                yield pytest.param(e, check, marks=marks, id=f"{type(e).__name__}-{name}")


@pytest.mark.parametrize("estimator, check", list(_common_checks()))
def test_sklearn_contract(estimator, check):
    run_check(estimator, check, EXPECTED_FAILED)


# -- the contract on a survival target ----------------------------------------------------------
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_fit_returns_self_and_keeps_params(est):
    X, y = _ph_data()
    est = clone(est)
    before = est.get_params()
    assert est.fit(X, y) is est
    assert est.get_params() == before
    assert est.n_features_in_ == 3 and not hasattr(est, "feature_names_in_")
    np.testing.assert_array_equal(est.unique_times_, np.unique(y["time"][y["event"]]))
    if hasattr(est, "baseline_cumulative_hazard_"):
        h0 = est.baseline_cumulative_hazard_
        assert h0.shape == est.unique_times_.shape and (np.diff(h0) > 0).all()
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        est.predict(X[:, :2])


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_clone_get_and_set_params(est):
    params = est.get_params()
    copy = clone(est)
    assert copy is not est and copy.get_params() == params
    key = "penalizer" if isinstance(est, CoxPHSurvival) else "learning_rate"
    value = np.float64(0.25)
    assert copy.set_params(**{key: value}) is copy
    assert copy.get_params()[key] is value  # stored unchanged, no validation in set_params


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_not_fitted_before_fit(est):
    X, _ = _ph_data(20)
    for method, args in [
        ("predict", ()),
        ("predict_survival_function", ()),
        ("predict_cumulative_hazard", ()),
        ("predict_risk", ([365.25],)),
    ]:
        with pytest.raises(NotFittedError):
            getattr(clone(est), method)(X, *args)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_curves_are_valid_and_risk_is_one_minus_survival(est):
    X, y = _ph_data()
    est = clone(est).fit(X, y)
    S = est.predict_survival_function(X)
    H = est.predict_cumulative_hazard(X)
    assert S.shape == H.shape == (len(X), len(est.unique_times_))
    assert np.isfinite(S).all() and (S >= 0).all() and (S <= 1).all()
    assert (np.diff(S, axis=1) <= 0).all() and (np.diff(H, axis=1) >= 0).all()
    np.testing.assert_allclose(S, np.exp(-H), rtol=1e-12)
    horizons = [365.25, 730.5, float(est.unique_times_[-1])]
    risk = est.predict_risk(X, horizons)
    np.testing.assert_allclose(risk, 1.0 - est.predict_survival_function(X, horizons), atol=1e-12)
    # a single horizon as a scalar; a time between grid points takes the value before it
    np.testing.assert_array_equal(est.predict_risk(X, 365.25), risk[:, :1])
    # higher score, higher risk
    score = est.predict(X)
    assert np.corrcoef(score, risk[:, 1])[0, 1] > 0.9


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_score_is_harrell_c_and_drives_model_selection(est):
    X, y = _ph_data(seed=3)
    fitted = clone(est).fit(X[:300], y[:300])
    expected = concordance_index(y["time"][300:], -fitted.predict(X[300:]), y["event"][300:])
    assert fitted.score(X[300:], y[300:]) == pytest.approx(expected, abs=1e-12)
    assert fitted.score(X[300:], y[300:]) > 0.6
    # GridSearchCV and cross_validate need no scoring argument
    grid = {"penalizer": [0.01, 1.0]} if isinstance(est, CoxPHSurvival) else {"max_depth": [1, 3]}
    search = GridSearchCV(clone(est), grid, cv=3).fit(X, y)
    assert search.best_score_ == pytest.approx(search.cv_results_["mean_test_score"].max())
    assert 0.5 < search.best_score_ <= 1
    scores = cross_validate(clone(est), X, y, cv=3)["test_score"]
    assert scores.shape == (3,) and (scores > 0.5).all()
    with pytest.raises(TypeError, match="structured array"):
        fitted.score(X, y["time"])
    with pytest.raises(NotFittedError):
        clone(est).score(X, y)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_horizon_rules(est):
    X, y = _ph_data()
    est = clone(est).fit(X, y)
    last = float(est.unique_times_[-1])
    with pytest.raises(
        ValueError, match=rf"horizon {last + 1!r} days .* last training event time, {last!r}"
    ):
        est.predict_risk(X, [365.25, last + 1])
    with pytest.raises(ValueError, match=r"\(in times\) is beyond the last training event time"):
        est.predict_survival_function(X, [last * 2])
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match=r"horizons must be finite and > 0"):
            est.predict_risk(X, [bad])
    with pytest.raises(ValueError, match="horizons must be given"):
        est.predict_risk(X, None)
    with pytest.raises(ValueError, match="non-empty 1-d"):
        est.predict_cumulative_hazard(X, [[1.0, 2.0]])
    assert est.predict_risk(X, [last]).shape == (len(X), 1)  # the last event time itself is fine


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_pickle_order_subset_and_idempotence(est):
    X, y = _ph_data(300, seed=1)
    est = clone(est).fit(X, y)
    S = est.predict_survival_function(X, [365.25, 1000.0])
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_survival_function(X, [365.25, 1000.0]), S)
    perm = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(est.predict_survival_function(X[perm], [365.25, 1000.0]), S[perm])
    np.testing.assert_allclose(est.predict_survival_function(X[:7], [365.25, 1000.0]), S[:7])
    state = {k: v for k, v in vars(est).items() if k != "booster_"}
    est.predict(X)
    assert set(vars(est)) == set(state) | ({"booster_"} & set(vars(est)))
    np.testing.assert_array_equal(clone(est).fit(X, y).predict(X), est.predict(X))
    pipe = make_pipeline(clone(est)).fit(X, y)
    np.testing.assert_allclose(pipe.predict(X), est.predict(X))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_input_forms(est):
    X, y = _ph_data(300, seed=2)
    ref = clone(est).fit(X, y).predict(X)
    for form in (np.asfortranarray(X), X.astype(object), X.copy()):
        np.testing.assert_allclose(clone(est).fit(form, y).predict(form), ref, rtol=1e-5)
    readonly = X.copy()
    readonly.setflags(write=False)
    np.testing.assert_allclose(clone(est).fit(readonly, y).predict(readonly), ref, rtol=1e-5)
    as32 = clone(est).fit(X.astype(np.float32), y).predict(X.astype(np.float32))
    assert as32.shape == ref.shape and np.corrcoef(as32, ref)[0, 1] > 0.99
    ints = np.rint(X * 3).astype(int)
    assert np.isfinite(clone(est).fit(ints, y).predict(ints)).all()
    one = clone(est).fit(X[:, :1], y)
    assert one.n_features_in_ == 1
    with pytest.raises(ValueError, match="2D array"):
        one.predict(X[:, 0])
    named = pd.DataFrame(X, columns=["age_years", "tscore_min", "bmi"])
    fitted = clone(est).fit(named, y)
    assert list(fitted.feature_names_in_) == ["age_years", "tscore_min", "bmi"]
    np.testing.assert_allclose(fitted.predict(named), ref, rtol=1e-5)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_missing_values(est):
    X, y = _ph_data(300, seed=3)
    X[::7, 0] = np.nan
    if isinstance(est, CoxPHSurvival):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            clone(est).fit(X, y)
    else:  # the booster's own missing-value handling
        fitted = clone(est).fit(X, y)
        assert np.isfinite(fitted.predict_risk(X, [365.25])).all()
    X = np.nan_to_num(X)
    X[0, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clone(est).fit(X, y)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_bad_targets(est):
    X, y = _ph_data(50)
    with pytest.raises(TypeError, match="structured array with fields 'event' and 'time'"):
        clone(est).fit(X, y["time"])
    with pytest.raises(ValueError, match="requires y to be passed"):
        clone(est).fit(X, None)
    with pytest.raises(ValueError, match="X has 49 records but y has 50"):
        clone(est).fit(X[:49], y)
    censored = make_survival_target(np.zeros(50, bool), y["time"])
    with pytest.raises(ValueError, match="no events"):
        clone(est).fit(X, censored)
    with pytest.raises(ValueError, match="time must be finite and > 0"):
        clone(est).fit(X, np.array([(True, 0.0)] * 50, dtype=y.dtype))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_censoring_is_not_an_event(est):
    """x1 drives censoring only: a model that read censored records as events would use it."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(1500, 2))
    t_event = rng.exponential(1000.0 * np.exp(-0.8 * X[:, 0]))
    t_censor = rng.exponential(800.0 * np.exp(-1.5 * X[:, 1]))
    y = make_survival_target(t_event <= t_censor, np.minimum(t_event, t_censor))
    params = {"n_estimators": 200} if "n_estimators" in est.get_params() else {}
    score = clone(est).set_params(**params).fit(X, y).predict(X)
    assert np.corrcoef(score, X[:, 0])[0, 1] > 0.6
    assert abs(np.corrcoef(score, X[:, 1])[0, 1]) < 0.2


@pytest.mark.parametrize(
    "est, match",
    [
        (CoxPHSurvival(penalizer=-1), r"penalizer must be a number >= 0; got penalizer=-1"),
        (CoxPHSurvival(l1_ratio=1.5), r"l1_ratio must be a number >= 0 and <= 1"),
        (CoxPHSurvival(penalizer="high"), r"number >= 0 or 'cv'; got penalizer='high'"),
        (BoostedCoxSurvival(n_estimators=0), r"n_estimators must be an integer >= 1"),
        (BoostedCoxSurvival(n_estimators=10.5), r"n_estimators must be an integer"),
        (BoostedCoxSurvival(learning_rate=0), r"learning_rate must be a number > 0"),
        (BoostedCoxSurvival(subsample=1.5), r"subsample must be a number > 0 and <= 1"),
        (BoostedCoxSurvival(validation_fraction=1.0), r"validation_fraction must be .* < 1"),
        (BoostedCoxSurvival(early_stopping_rounds=0), r"early_stopping_rounds must be an integer"),
        (BoostedCoxSurvival(n_jobs=0), r"n_jobs must be None, -1 or an integer >= 1"),
        (BoostedAFTSurvival(distribution="weibull"), r"distribution must be one of"),
        (BoostedAFTSurvival(scale=0.0), r"scale must be a number > 0"),
        (BoostedAFTSurvival(estimate_scale="yes"), r"estimate_scale must be True or False"),
    ],
)
def test_bad_parameters_fail_in_fit(est, match):
    X, y = _ph_data(50)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_early_stopping_split_without_events_is_an_error():
    X, y = _ph_data(30)
    event = np.zeros(30, bool)
    event[0] = True  # one event: it cannot be on both sides of the split
    with pytest.raises(ValueError, match="left no events on one side"):
        BoostedCoxSurvival().fit(X, make_survival_target(event, y["time"]))


@pytest.mark.parametrize(
    "est, encoding",
    [(CoxPHSurvival(), "onehot"), (CoxPHSurvival(penalizer="cv"), "onehot"),
     (BoostedCoxSurvival(**FAST), "native"), (BoostedAFTSurvival(**FAST), "native")],
    ids=IDS,
)  # fmt: skip
def test_pipeline_with_the_feature_pipeline(valid_cohort, est, encoding):
    y = make_survival_target(valid_cohort["fx_event"] == 1, valid_cohort["fx_time_days"])
    pipe = make_pipeline(sr.make_feature_pipeline(encoding=encoding), est)
    assert pipe.fit(valid_cohort, y) is pipe
    Xf = pipe[:-1].transform(valid_cohort)
    alone = clone(est).fit(Xf, y)
    np.testing.assert_allclose(pipe.predict(valid_cohort), alone.predict(Xf), rtol=1e-10)
    assert list(pipe[-1].feature_names_in_) == list(Xf.columns)
    risk = pipe[-1].predict_risk(Xf, [365.25, 730.5])
    assert risk.shape == (len(valid_cohort), 2) and ((risk >= 0) & (risk <= 1)).all()
    np.testing.assert_allclose(clone(pipe).fit(valid_cohort, y).predict(valid_cohort),
                               pipe.predict(valid_cohort))  # fmt: skip


@pytest.mark.parametrize("cls", [BoostedCoxSurvival, BoostedAFTSurvival])
def test_boosted_models_are_seeded(cls):
    X, y = _ph_data(400, seed=4)
    a = cls(n_estimators=60, random_state=1).fit(X, y).predict(X)
    b = cls(n_estimators=60, random_state=1).fit(X, y).predict(X)
    c = cls(n_estimators=60, random_state=2).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the split and row/column sampling


# -- Cox: agreement with lifelines ------------------------------------------------------------
@pytest.mark.parametrize("penalizer, l1_ratio", [(0.1, 0.0), (0.02, 0.5)])
def test_cox_matches_lifelines(valid_cohort, penalizer, l1_ratio):
    X = sr.make_feature_pipeline().fit_transform(valid_cohort)
    X = X.loc[:, X.nunique() > 1]
    y = make_survival_target(valid_cohort["fx_event"] == 1, valid_cohort["fx_time_days"])
    model = CoxPHSurvival(penalizer=penalizer, l1_ratio=l1_ratio).fit(X, y)
    df = X.assign(T=y["time"], E=y["event"].astype(int))
    ref = CoxPHFitter(penalizer=penalizer, l1_ratio=l1_ratio).fit(df, "T", "E")
    assert list(model.summary_.index) == list(X.columns) == list(ref.params_.index)
    np.testing.assert_allclose(model.coef_, ref.params_.to_numpy(), atol=1e-8)
    times = model.unique_times_
    expected = ref.predict_survival_function(X, times=times).to_numpy().T
    np.testing.assert_allclose(model.predict_survival_function(X, times), expected, atol=1e-6)
    np.testing.assert_allclose(
        model.predict(X), ref.predict_log_partial_hazard(X).to_numpy(), atol=1e-8
    )


# -- Cox: the penalty chosen by cross-validation ---------------------------------------------
def _oof_deviance_by_lifelines(X, y, folds, penalizer):
    """Pooled out-of-fold deviance (risk sets within each fold) of lifelines fits."""
    from spinerisk.models._ridge import cox_partial_deviance

    score = np.empty(len(y))
    for k in np.unique(folds):
        test = folds == k
        df = pd.DataFrame(X[~test]).assign(T=y["time"][~test], E=y["event"][~test].astype(int))
        ref = CoxPHFitter(penalizer=penalizer).fit(df, "T", "E")
        score[test] = X[test] @ ref.params_.to_numpy()
    return cox_partial_deviance(y["time"], y["event"], score, folds)


def test_cox_cv_chooses_the_penalty_lifelines_fits_would_choose():
    from sklearn.model_selection import StratifiedKFold

    X, y = _ph_data(300, seed=11, beta=(0.8, -0.5, *([0.0] * 10)))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = CoxPHSurvival(penalizer="cv", random_state=3).fit(X, y)
    folds = np.empty(len(y), dtype=int)
    split = StratifiedKFold(5, shuffle=True, random_state=3).split(X, y["event"])
    for k, (_, test) in enumerate(split):
        folds[test] = k
    deviance = [_oof_deviance_by_lifelines(X, y, folds, lam) for lam in LAMBDAS]
    assert model.penalizer_ == LAMBDAS[int(np.argmin(deviance))]
    # and the final fit is lifelines' at that penalty (started at the exact path's
    # solution, it stops within its convergence tolerance of where it stops from zero)
    ref = CoxPHSurvival(penalizer=model.penalizer_).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-4)
    assert CoxPHSurvival(penalizer="cv", random_state=3).fit(X, y).penalizer_ == model.penalizer_


def test_cox_cv_converges_on_real_data_where_lifelines_alone_did_not():
    """flchain (real, tests/data/real/flchain): from zero, lifelines stopped far from the
    optimum at the penalty cross-validation chooses here; started at the exact ridge
    solution it converges, to the minimum of the penalised partial likelihood."""
    import warnings
    from pathlib import Path

    from spinerisk.models._ridge import ridge_cox_path

    path = Path(__file__).parent / "data" / "real" / "flchain" / "flchain_1000.csv"
    df = pd.read_csv(path)
    numbers = ["num_age", "num_kappa", "num_lambda", "num_flc_grp", "num_creatinine"]
    X = df[[*numbers, "num_sample_yr", "fac_mgus"]].astype(float)
    X["creatinine_missing"] = X["num_creatinine"].isna().astype(float)
    X["num_creatinine"] = X["num_creatinine"].fillna(X["num_creatinine"].median())
    X = (X - X.mean()) / X.std(ddof=0)
    X["sex_male"] = (df["fac_sex"] == "M").astype(float)
    y = make_survival_target(df["event"] == 1, df["time"].astype(float))
    from lifelines.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # fails the test
        model = CoxPHSurvival(penalizer="cv", random_state=0).fit(X, y)
    D = ((X - X.mean()) / X.std(ddof=0)).to_numpy()
    lam = model.penalizer_
    exact = ridge_cox_path(D, y["time"], y["event"], LAMBDAS[LAMBDAS >= lam])[-1]
    # lifelines breaks ties by Efron, the exact path by Breslow: close, not equal
    np.testing.assert_allclose(model.coef_, exact / X.std(ddof=0).to_numpy(), atol=0.02)


def test_cox_cv_shrinks_more_when_there_is_less_to_learn():
    def chosen(n, beta, seed):
        X, y = _ph_data(n, seed=seed, beta=beta)
        return CoxPHSurvival(penalizer="cv").fit(X, y).penalizer_

    noise = [chosen(120, (0.0,) * 8, seed) for seed in range(3)]
    signal = [chosen(1500, (1.0, -0.8, 0.6), seed) for seed in range(3)]
    assert min(noise) > max(signal), (noise, signal)


def test_cox_cv_falls_back_and_refuses_clearly():
    X, y = _ph_data(40, seed=2)
    one_event = y.copy()
    one_event["event"] = False
    one_event["event"][0] = True
    assert CoxPHSurvival(penalizer="cv").fit(X, one_event).penalizer_ == 0.1
    with pytest.raises(ValueError, match=r"penalizer='cv' chooses a ridge penalty, so l1_ratio"):
        CoxPHSurvival(penalizer="cv", l1_ratio=0.5).fit(X, y)
    with pytest.raises(ValueError, match=r"number >= 0 or 'cv'; got penalizer='CV'"):
        CoxPHSurvival(penalizer="CV").fit(X, y)


def test_cox_saved_before_random_state_loads_as_fitted_then():
    X, y = _ph_data(100, seed=1)
    model = CoxPHSurvival(penalizer=0.2).fit(X, y)
    state = model.__getstate__()
    del state["random_state"], state["penalizer_"]  # as saved by an earlier version
    old = CoxPHSurvival.__new__(CoxPHSurvival)
    old.__setstate__(state)  # what skops and pickle do when loading
    assert old.get_params() == {"penalizer": 0.2, "l1_ratio": 0.0, "random_state": 0}
    assert old.penalizer_ == 0.2
    np.testing.assert_array_equal(old.predict(X), model.predict(X))
    np.testing.assert_allclose(clone(old).fit(X, y).predict(X), model.predict(X))


def test_cox_cv_keeps_copies_of_a_record_in_one_fold(monkeypatch):
    from spinerisk.models import _ridge

    X, y = _ph_data(150, seed=6)
    rows = np.random.default_rng(0).integers(0, 150, 150)  # a bootstrap resample
    seen = {}

    def spy(D, time, event, folds):
        seen["folds"] = folds
        return real(D, time, event, folds)

    real = _ridge.cox_penalty_cv
    monkeypatch.setattr(_ridge, "cox_penalty_cv", spy)
    CoxPHSurvival(penalizer="cv").fit(X[rows], y[rows], groups=rows)
    per_record = pd.Series(seen["folds"]).groupby(rows).nunique()
    assert (per_record == 1).all() and len(np.unique(seen["folds"])) == 5
    CoxPHSurvival(penalizer="cv").fit(X[rows], y[rows])  # without groups they split
    assert (pd.Series(seen["folds"]).groupby(rows).nunique() > 1).any()


def test_cox_cv_without_censoring_still_cross_validates(monkeypatch):
    from spinerisk.models import _ridge

    calls = []
    real = _ridge.cox_penalty_cv
    monkeypatch.setattr(_ridge, "cox_penalty_cv", lambda *a: calls.append(a[3]) or real(*a))
    X, y = _ph_data(200, seed=8)
    y["event"] = True
    assert CoxPHSurvival(penalizer="cv").fit(X, y).penalizer_ in LAMBDAS
    assert len(calls) == 1 and len(np.unique(calls[0])) == 5  # five folds, not the fallback
    y["event"][3:] = False  # 3 events: 3 folds
    CoxPHSurvival(penalizer="cv").fit(X, y)
    assert len(calls) == 2 and len(np.unique(calls[1])) == 3


@pytest.mark.parametrize("seed", [None, -1, 1.5, True, "0"])
def test_cox_refuses_a_seed_that_is_not_a_non_negative_integer(seed):
    X, y = _ph_data(50)
    with pytest.raises(ValueError, match=r"random_state must be an integer >= 0; got"):
        CoxPHSurvival(penalizer="cv", random_state=seed).fit(X, y)


def test_linear_backend_chooses_its_cox_penalty_by_cv():
    cohort = sr.validate(sr.make_spine_cohort(600, seed=4))
    model = sr.RiskModel(endpoint="future_fracture", backend="linear", random_state=2)
    with pytest.warns(sr.DataQualityWarning, match="Small cohort"):
        model.fit(cohort)
    assert len(model.estimator_.estimators_) == 2  # one Cox model per cause
    for est in model.estimator_.estimators_:
        assert est.penalizer == "cv" and est.random_state == 2
        assert est.penalizer_ in LAMBDAS


def test_cox_refuses_categories_with_a_hint(valid_cohort):
    y = make_survival_target(valid_cohort["fx_event"] == 1, valid_cohort["fx_time_days"])
    X = sr.make_feature_pipeline(encoding="native").fit_transform(valid_cohort)
    with pytest.raises(TypeError, match=r'column\(s\) \[.*\] are not numeric .*encoding="onehot"'):
        CoxPHSurvival().fit(X, y)


def test_cox_constant_column_gets_zero_coefficient():
    X, y = _ph_data(300, seed=5)
    with_constant = np.column_stack([X[:, :1], np.full(300, 7.0), X[:, 1:]])
    model = CoxPHSurvival().fit(with_constant, y)
    ref = CoxPHSurvival().fit(X, y)
    assert model.coef_[1] == 0.0 and list(model.summary_.index) == ["x0", "x2", "x3"]
    np.testing.assert_allclose(np.delete(model.coef_, 1), ref.coef_, atol=1e-10)
    np.testing.assert_allclose(model.predict_risk(with_constant, [500.0]),
                               ref.predict_risk(X, [500.0]), atol=1e-10)  # fmt: skip


@pytest.mark.parametrize(
    "est", [CoxPHSurvival(), BoostedCoxSurvival(n_estimators=20)], ids=["cox", "boosted_cox"]
)
def test_breslow_with_a_constant_score_is_nelson_aalen(est):
    _, y = _ph_data(500, seed=6)
    X = np.zeros((500, 1))
    model = clone(est).fit(X, y)
    score = model.predict(X)
    np.testing.assert_allclose(score, 0.0, atol=1e-12)
    naf = NelsonAalenFitter().fit(y["time"], y["event"])
    times = model.unique_times_
    expected = naf.cumulative_hazard_at_times(times).to_numpy()
    np.testing.assert_allclose(model.baseline_cumulative_hazard_, expected, rtol=1e-10)
    np.testing.assert_allclose(model.predict_cumulative_hazard(X[:1])[0], expected, rtol=1e-10)


def test_boosted_cox_breslow_matches_the_formula():
    X, y = _ph_data(60, seed=7)
    model = BoostedCoxSurvival(n_estimators=15, early_stopping_rounds=None).fit(X, y)
    eta = model.predict(X)
    assert eta.std() > 0.05 and abs(eta.mean()) < 1e-6  # centred, not constant
    expected = [
        sum(y["event"][y["time"] == t]) / np.exp(eta[y["time"] >= t]).sum()
        for t in model.unique_times_
    ]
    np.testing.assert_allclose(model.baseline_cumulative_hazard_, np.cumsum(expected), rtol=1e-10)


def test_boosted_cox_learns_stops_early_and_saves_as_json(tmp_path):
    X, y = _ph_data(1500, seed=8)
    model = BoostedCoxSurvival().fit(X, y)
    assert isinstance(model.booster_, xgb.Booster)
    assert 1 <= model.n_estimators_ < model.n_estimators and np.isfinite(model.best_score_)
    c = concordance_index(y["time"], -model.predict(X), y["event"])
    c_true = concordance_index(y["time"], -(X @ [0.8, -0.5, 0.0]), y["event"])
    assert c > 0.68 and c > c_true - 0.05
    # censored records carry negative labels; flipping the convention would wreck this
    assert np.corrcoef(model.predict(X), X[:, 0])[0, 1] > 0.6
    path = tmp_path / "booster.json"
    model.booster_.save_model(path)
    loaded = xgb.Booster(model_file=str(path))
    dm = xgb.DMatrix(X)
    np.testing.assert_array_equal(
        loaded.predict(dm, output_margin=True), model.booster_.predict(dm, output_margin=True)
    )


@pytest.mark.parametrize("cls", [BoostedCoxSurvival, BoostedAFTSurvival])
def test_refit_grown_beside_the_probe_is_what_xgboost_train_gives(cls):
    """The early-stopping probe and the refit run side by side; the probe stops where
    xgboost.train's early stopping stops, and the refit is byte for byte the booster of
    xgboost.train with the best number of rounds (so risks are unchanged)."""
    X, y = _ph_data(1200, seed=13)
    est = cls(random_state=3)
    est.check_boosting_params()
    params = est.booster_params(1234)
    if cls is BoostedAFTSurvival:
        params.update(aft_loss_distribution="normal", aft_loss_distribution_scale=1.0)
    dall = xgb.DMatrix(X)
    dfit, dval = dall.slice(np.arange(900)), dall.slice(np.arange(900, 1200))
    est._set_label(dfit, y[:900])
    est._set_label(dval, y[900:])
    est._set_label(dall, y)
    probe = xgb.train(
        params, dfit, 2000, evals=[(dval, "validation")], early_stopping_rounds=20,
        verbose_eval=False,
    )  # fmt: skip
    want = xgb.train(params, dall, probe.best_iteration + 1)
    _, rounds, score, refit = survival_module._probe_and_refit(params, dfit, dval, dall, 2000, 20)
    assert 5 < rounds == probe.best_iteration + 1 < probe.num_boosted_rounds()
    assert score == probe.best_score
    assert refit.num_boosted_rounds() == rounds
    assert bytes(refit.save_raw("json")) == bytes(want.save_raw("json"))
    pickle.dumps(refit)  # the once-only feature check is undone after training


def test_threads_shared_by_probe_and_refit_leave_the_booster_unchanged(monkeypatch):
    """With n_jobs > 1 the Cox probe and refit split the threads while both train; the
    result is byte for byte the single-threaded one, and the refit keeps n_jobs threads."""
    X, y = _ph_data(900, seed=15)
    X[::7, 1] = np.nan  # missing values: both split directions are enumerated
    kwargs = {"n_estimators": 300, "early_stopping_rounds": 15, "random_state": 4}
    one = BoostedCoxSurvival(**kwargs).fit(X, y)
    real = xgb.Booster.__init__
    started: list[int] = []

    def recording(self, params=None, cache=None, model_file=None):
        started.append(int((params or {}).get("nthread", 0)))
        real(self, params, cache, model_file)

    monkeypatch.setattr(xgb.Booster, "__init__", recording)
    for n_jobs, split in ((2, [1, 1]), (3, [2, 1])):
        started.clear()
        many = BoostedCoxSurvival(**kwargs, n_jobs=n_jobs).fit(X, y)
        assert started == split  # probe, refit
        assert many.n_estimators_ == one.n_estimators_ and many.best_score_ == one.best_score_
        assert bytes(many.booster_.save_raw("json")) == bytes(one.booster_.save_raw("json"))
        config = json.loads(many.booster_.save_config())
        assert config["learner"]["generic_param"]["nthread"] == str(n_jobs)
        np.testing.assert_array_equal(many.predict(X), one.predict(X))


def test_an_error_while_growing_the_refit_reaches_the_caller(monkeypatch):
    X, y = _ph_data(400, seed=14)

    def broken(self, dtrain, iteration, fobj=None):
        if getattr(dtrain, "is_refit", False):
            raise RuntimeError("refit failed")
        return real(self, dtrain, iteration, fobj)

    real = xgb.Booster.update
    dall = xgb.DMatrix(X)
    dall.is_refit = True
    dfit, dval = dall.slice(np.arange(300)), dall.slice(np.arange(300, 400))
    est = BoostedCoxSurvival()
    for dm, part in ((dfit, y[:300]), (dval, y[300:]), (dall, y)):
        est._set_label(dm, part)
    monkeypatch.setattr(xgb.Booster, "update", broken)
    with pytest.raises(RuntimeError, match="refit failed"):
        survival_module._probe_and_refit(est.booster_params(1), dfit, dval, dall, 200, 10)


# -- AFT -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "distribution, dist",
    [("normal", stats.norm), ("logistic", stats.logistic), ("extreme", stats.gumbel_l)],
)
def test_aft_survival_is_the_closed_form(distribution, dist):
    X, y = _ph_data(300, seed=9)
    model = BoostedAFTSurvival(distribution=distribution, scale=0.8, **FAST).fit(X, y)
    mu = model.booster_.predict(xgb.DMatrix(X), output_margin=True).astype(float)
    times = np.array([30.0, 365.25, 1000.0])
    expected = dist.sf((np.log(times)[None, :] - mu[:, None]) / 0.8)
    np.testing.assert_allclose(model.predict_survival_function(X, times), expected, rtol=1e-9)
    np.testing.assert_allclose(model.predict(X), -mu)


def test_aft_intercept_is_the_maximum_likelihood_estimate():
    _, y = _ph_data(400, seed=10)
    # extreme errors with scale 1 make exponential times: the MLE is log(total time / events)
    model = BoostedAFTSurvival(distribution="extreme", scale=1.0, **FAST).fit(np.zeros((400, 1)), y)
    assert model.intercept_ == pytest.approx(np.log(y["time"].sum() / y["event"].sum()), abs=1e-4)
    # the intercept is XGBoost's starting margin (passed on the time scale)
    start = BoostedAFTSurvival(
        distribution="extreme", n_estimators=1, learning_rate=1e-9, early_stopping_rounds=None
    ).fit(np.zeros((400, 1)), y)
    np.testing.assert_allclose(start.predict(np.zeros((2, 1))), -start.intercept_, atol=1e-5)


#: Draws of Z for each AFT distribution: standard normal, standard logistic, and the
#: minimum extreme value distribution (log of a unit exponential).
_Z = {
    "normal": lambda rng, n: rng.normal(size=n),
    "logistic": lambda rng, n: rng.logistic(size=n),
    "extreme": lambda rng, n: np.log(rng.exponential(size=n)),
}


@pytest.mark.parametrize("distribution", ["normal", "logistic", "extreme"])
def test_aft_scale_is_estimated_on_the_held_out_records(distribution, monkeypatch):
    """Times with spread 1.7 around a linear mu(x), drawn from the model's own
    distribution: with estimate_scale, whatever the loss scale, the prediction scale is
    re-estimated near the true spread from the early-stopping hold-out alone; by default
    (or without a hold-out) it is the loss scale."""
    rng = np.random.default_rng(12)
    n = 3000
    X = rng.normal(size=(n, 2))
    log_t = 6.0 + 0.8 * X[:, 0] + 1.7 * _Z[distribution](rng, n)
    t_censor = np.exp(rng.uniform(5.0, 11.0, n))
    y = make_survival_target(np.exp(log_t) <= t_censor, np.minimum(np.exp(log_t), t_censor))
    seen: list[int] = []
    real = survival_module._aft_scale
    monkeypatch.setattr(
        survival_module, "_aft_scale", lambda t, *a: seen.append(len(t)) or real(t, *a)
    )
    fitted = {
        s: BoostedAFTSurvival(
            distribution=distribution, scale=s, estimate_scale=True, n_estimators=300
        ).fit(X, y)
        for s in (0.5, 1.0, 3.0)
    }
    assert seen == [n // 5] * 3  # the held-out records only (validation_fraction=0.2)
    spreads = {s: m.scale_ for s, m in fitted.items()}
    assert all(abs(v - 1.7) < 0.2 for v in spreads.values()), spreads
    fixed = BoostedAFTSurvival(distribution=distribution, n_estimators=300)  # the default
    assert fixed.fit(X, y).scale_ == 1.0
    no_holdout = BoostedAFTSurvival(
        scale=0.7, estimate_scale=True, n_estimators=50, early_stopping_rounds=None
    )
    assert no_holdout.fit(X, y).scale_ == 0.7
    # predictions use scale_: S(t | x) = 1 - F((log t - mu(x)) / scale_)
    model = fitted[1.0]
    t = np.array([200.0, 2000.0])
    z = (np.log(t)[None, :] + model.predict(X[:5])[:, None]) / model.scale_
    expected = {
        "normal": stats.norm.sf(z),
        "logistic": stats.logistic.sf(z),
        "extreme": np.exp(-np.exp(z)),
    }
    np.testing.assert_allclose(
        model.predict_survival_function(X[:5], t), expected[distribution], rtol=1e-9
    )


def test_aft_scale_from_too_few_held_out_events_is_not_used():
    X, y = _ph_data(60, seed=2)  # a 12-record hold-out, with fewer than 10 events
    model = BoostedAFTSurvival(scale=0.8, estimate_scale=True, n_estimators=30)
    with pytest.warns(UserWarning, match=r"no reliable scale from the 12 held-out records"):
        model.fit(X, y)
    assert model.scale_ == 0.8


def test_aft_learns_the_ranking():
    X, y = _ph_data(1500, seed=11)
    model = BoostedAFTSurvival(distribution="extreme").fit(X, y)
    c = concordance_index(y["time"], -model.predict(X), y["event"])
    assert c > 0.68 and model.n_estimators_ < model.n_estimators
