"""RiskModel: endpoint-driven fitting, backend selection, risk output and warnings."""

from __future__ import annotations

import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import spinerisk as sr
from spinerisk.endpoints import ENDPOINTS, Endpoint, get_endpoint
from spinerisk.schema import SPINE_SCHEMA
from spinerisk.schema._spec import FOLLOW_UP_ROLES


@pytest.fixture(scope="module")
def cohort_2k() -> pd.DataFrame:
    return sr.make_spine_cohort(2000, seed=11)


@pytest.fixture(scope="module")
def nonunion_linear(cohort_2k: pd.DataFrame) -> sr.RiskModel:
    """The linear nonunion model of ``cohort_2k``, fitted once (tests only predict)."""
    return sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort_2k)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_endpoint_predictors_never_include_follow_up_fields(name):
    ep = get_endpoint(name)
    predictors = ep.predictors()
    assert predictors
    assert not [p for p in predictors if SPINE_SCHEMA[p].role in FOLLOW_UP_ROLES]
    assert not set(ep.outcome_columns) & set(predictors)


NOT_BASELINE = [f.name for f in SPINE_SCHEMA.fields if f.role in FOLLOW_UP_ROLES | {"admin"}]


def _cohort_for(name: str, ovf: pd.DataFrame) -> pd.DataFrame:
    """A SYNTHETIC cohort with the endpoint's outcome: the OVF cohort, a cervical trauma
    cohort (patients aged 65 or more, upper cervical fractures type II dens), or the OVF
    cohort with malignant fractures."""
    from spinerisk.datasets import TraumaParams

    if name in ("odontoid_nonunion", "cervical_mortality"):
        params = TraumaParams(
            cervical_share=1.0, cervical_older_share=1.0, odontoid_share=1.0, upper_share=1.0
        )
        if name == "cervical_mortality":
            params = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
        return sr.make_spine_cohort(2000, seed=11, mode="trauma", trauma=params)
    if name == "malignant_fracture":
        return sr.make_spine_cohort(2000, seed=11, malignant="clinic")
    return ovf


#: Training records of the leakage check (the first ones; the last 500 are scored). The
#: check compares predictions with and without the fields, so the models need only use
#: their predictors, which 800 records show as well as more (checked per endpoint).
N_LEAK_TRAIN = 800


@pytest.fixture(scope="module")
def leak_model(cohort_2k: pd.DataFrame):
    """``leak_model(name, backend)``: the model of the leakage check, fitted once on the
    first ``N_LEAK_TRAIN`` records of the endpoint's cohort (tests only predict with it)."""
    models: dict[tuple[str, str], sr.RiskModel] = {}

    def fit(name: str, backend: str) -> sr.RiskModel:
        if (name, backend) not in models:
            train = _cohort_for(name, cohort_2k).iloc[:N_LEAK_TRAIN]
            models[name, backend] = sr.RiskModel(endpoint=name, backend=backend, cv=3).fit(train)
        return models[name, backend]

    return fit


@pytest.mark.parametrize("name", list(ENDPOINTS))
@pytest.mark.parametrize("backend", ["linear", "xgboost"])
def test_no_outcome_or_follow_up_field_reaches_the_model(cohort_2k, leak_model, name, backend):
    """Behavioural leakage check: the predictions are the same without any outcome,
    follow-up or admin field at scoring time, and the model is the same when every such
    field but the endpoint's own outcome columns is blanked at training time."""
    ep = get_endpoint(name)
    cohort = _cohort_for(name, cohort_2k)
    not_baseline = [c for c in NOT_BASELINE if c in cohort.columns]
    train, test = cohort.iloc[:N_LEAK_TRAIN], cohort.iloc[1500:]
    model = leak_model(name, backend)
    risk = model.predict_risk(test)
    assert risk.drop(columns="warnings").nunique().min() > 10  # the model does use predictors
    pd.testing.assert_frame_equal(model.predict_risk(test.drop(columns=not_baseline)), risk)
    others = [c for c in not_baseline if c not in ep.outcome_columns]
    assert len(others) >= 5
    blanked = train.copy()
    if ep.kind == "competing":  # a death's time must equal fx_time_days (a row rule)
        others.remove("death_time_days")
        blanked.loc[blanked["fx_event"] != 2, "death_time_days"] = None
    blanked[others] = None
    refit = sr.RiskModel(endpoint=name, backend=backend, cv=3).fit(blanked)
    pd.testing.assert_frame_equal(refit.predict_risk(test), risk)


def test_endpoint_definitions():
    nu, co, ff = (get_endpoint(n) for n in ("nonunion", "collapse", "future_fracture"))
    assert nu.kind == co.kind == "binary" and ff.kind == "competing"
    assert nu.eligible_treatments == ("conservative", "fixation")
    assert ff.horizons == (365.25, 730.5, 1826.25)
    with pytest.raises(ValueError, match="needs `time`"):
        Endpoint("x", "survival", "x", "nonunion", None, (1.0,), None, True)


def test_eligibility_and_targets(cohort_2k):
    checked = sr.validate(cohort_2k)
    nu = get_endpoint("nonunion")
    mask = nu.eligible(checked)
    expected = checked["nonunion"].notna() & checked["treatment"].isin(["conservative", "fixation"])
    assert mask.equals(expected.astype(bool))
    ff = get_endpoint("future_fracture")
    y = ff.target(checked[ff.eligible(checked)])
    assert y.dtype.names == ("event", "time") and set(np.unique(y["event"])) <= {0, 1, 2}
    with pytest.raises(ValueError, match="select eligible records first"):
        nu.target(checked)


def test_binary_linear_model_end_to_end(cohort_2k, nonunion_linear):
    model = nonunion_linear
    assert model.backend_ == "linear" and model.selection_ is None
    checked = sr.validate(cohort_2k)
    assert model.n_train_ == int(get_endpoint("nonunion").eligible(checked).sum())
    assert model.n_train_ + model.n_excluded_ == len(cohort_2k)
    risk = model.predict_risk(cohort_2k.head(50))
    assert list(risk.columns) == ["risk_183d", "warnings"]
    assert risk.index.name == "patient_id"
    assert list(risk.index) == cohort_2k["patient_id"].head(50).tolist()
    assert risk["risk_183d"].between(0, 1).all()
    # outcomes of the records to score are ignored
    no_outcomes = cohort_2k.head(50).drop(columns=["nonunion", "collapse_6m", "fx_event"])
    pd.testing.assert_frame_equal(model.predict_risk(no_outcomes), risk)


def test_deterministic_and_cloneable(cohort_2k, leak_model):
    a = leak_model("collapse", "xgboost")  # fitted on the first N_LEAK_TRAIN records
    b = clone(a).fit(cohort_2k.iloc[:N_LEAK_TRAIN])
    np.testing.assert_array_equal(
        a.predict_risk(cohort_2k)["risk_183d"], b.predict_risk(cohort_2k)["risk_183d"]
    )


def _stacks(model):
    """The fitted stacks of a default model: {cause or None: stack}."""
    est = model.estimator_
    if hasattr(est, "steps"):
        return {None: est[-1]}
    if hasattr(est, "estimators_"):
        return {int(c): e for c, e in zip(est.causes_, est.estimators_, strict=True)}
    return {None: est}


def _check_selection(model) -> None:
    """The default combines its candidates and records the weights, losses and reason;
    out of fold the combination is never worse than its best candidate alone."""
    table, reason = model.selection_, model.selection_reason_
    assert model.backend_ == "stack"
    assert reason.startswith("cross-validated stacking (super learner)")
    assert (table["weight"] >= 0).all()
    for cause, stack in _stacks(model).items():
        weights = model.weights_ if cause is None else model.weights_[cause]
        assert weights == stack.weights_
        rows = table if cause is None else table[table["cause"] == cause]
        for name, w in weights.items():
            label = name if cause is None else f"{name} (cause {cause})"
            assert rows.loc[label, "weight"] == pytest.approx(w)
            if w > 0:
                assert f"{name} {w:.3f}" in reason
        alone = stack.candidates_["loss"].dropna()
        assert stack.oof_loss_ <= alone.min() + 1e-6  # each candidate alone was searched
        assert f"{stack.oof_loss_:.4f}" in reason


def test_auto_records_its_choice_and_reason(cohort_2k):
    model = sr.RiskModel(endpoint="nonunion", backend="auto", cv=3).fit(cohort_2k)
    assert list(model.selection_.index) == ["linear", "spline", "xgboost", "lightgbm"]
    assert "3 shared folds" in model.selection_reason_
    assert model.selection_.loc["lightgbm", "status"] == "not combined"
    _check_selection(model)


@pytest.mark.slow
def test_auto_uses_flexible_candidates_when_effects_are_not_straight_lines():
    cohort = sr.make_spine_cohort(6000, seed=3, nonlinear=True)
    model = sr.RiskModel(endpoint="collapse", backend="auto", cv=3).fit(cohort)
    _check_selection(model)
    flexible = model.weights_["spline"] + model.weights_["xgboost"]
    assert flexible > 0.2, model.selection_reason_
    stack = model.estimator_[-1]
    assert stack.oof_loss_ < stack.candidates_.loc["linear", "loss"] - 1e-3


def test_auto_combines_per_cause_for_the_competing_endpoint(cohort_2k):
    # 1000 records: every candidate's out-of-fold C was 0.60-0.75 on 11 cohort seeds
    model = sr.RiskModel(endpoint="future_fracture", backend="auto", cv=3)
    model.fit(cohort_2k.head(1000))
    table = model.selection_
    assert set(table["cause"]) == {1, 2}
    assert "linear (cause 1)" in table.index and "xgboost (cause 2)" in table.index
    assert table["metric"].iloc[0].endswith("Harrell's C")
    assert table["discrimination"].dropna().between(0.5, 1).all()
    assert set(model.weights_) == {1, 2}
    _check_selection(model)


def test_competing_endpoint_gives_cif_per_horizon(cohort_2k, leak_model):
    model = leak_model("future_fracture", "linear")
    risk = model.predict_risk(cohort_2k.head(20))
    assert list(risk.columns) == ["risk_365d", "risk_730d", "risk_1826d", "warnings"]
    values = risk[["risk_365d", "risk_730d", "risk_1826d"]].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert (np.diff(values, axis=1) >= -1e-12).all()  # cumulative incidence grows


def test_out_of_range_records_are_flagged(cohort_2k, nonunion_linear):
    model = nonunion_linear
    rec = cohort_2k.head(3).copy()
    rec.loc[rec.index[1], "age_years"] = 104.0
    with pytest.warns(sr.DataQualityWarning, match="1 of 3 records"):
        risk = model.predict_risk(rec)
    assert risk["warnings"].iloc[0] == ""
    assert risk["warnings"].iloc[1].startswith("out_of_range:age_years=104")


def test_parameter_errors(cohort_2k, nonunion_linear):
    with pytest.raises(ValueError, match="backend='lightgbm' is not available"):
        sr.RiskModel(endpoint="future_fracture", backend="lightgbm").fit(cohort_2k)
    with pytest.raises(ValueError, match="not a built-in endpoint"):
        sr.RiskModel(endpoint="fusion").fit(cohort_2k)
    with pytest.raises(ValueError, match="cv must be"):
        sr.RiskModel(cv=1).fit(cohort_2k)
    model = nonunion_linear
    with pytest.raises(ValueError, match="binary outcome"):
        model.predict_risk(cohort_2k.head(2), horizons=[365.25])
    small = cohort_2k.head(500)
    # a horizon past follow-up is refused before anything is fitted
    late = sr.RiskModel(endpoint="future_fracture", backend="linear", horizons=[40_000])
    with mock.patch.object(sr.RiskModel, "_fit_candidate", side_effect=AssertionError("fitted")):
        with pytest.raises(ValueError, match="beyond the last observed event"):
            late.fit(small)
    with pytest.raises(ValueError, match="binary outcome at 182.62 days; it cannot be fitted"):
        sr.RiskModel(endpoint="nonunion", backend="linear", horizons=[730]).fit(cohort_2k)
    same = sr.RiskModel(endpoint="nonunion", backend="linear", horizons=[182.62]).fit(small)
    assert same.horizons_ == model.horizons_
    knots = sr.RiskModel(endpoint="nonunion", backend="spline", spline_knots=np.int64(4))
    assert knots.fit(small).backend_ == "spline"  # numpy integers are integers


def test_tune_is_seeded_and_its_params_plug_into_riskmodel(cohort_2k):
    from spinerisk.models import tune

    model = sr.RiskModel(endpoint="collapse", backend="xgboost", cv=2)
    a = tune(model, cohort_2k.head(500), n_trials=2)
    b = tune(model, cohort_2k.head(500), n_trials=2)
    assert a.best_params == b.best_params and a.best_value == b.best_value
    assert len(a.trials) == 2
    tuned = sr.RiskModel(endpoint="collapse", backend="xgboost", booster_params=a.best_params)
    tuned.fit(cohort_2k.head(500))
    assert tuned.predict_risk(cohort_2k.head(5))["risk_183d"].between(0, 1).all()
    with pytest.raises(ValueError, match="explicit boosted backend"):
        sr.RiskModel(endpoint="collapse", booster_params={"max_depth": 3}).fit(cohort_2k)
    with pytest.raises(ValueError, match="not parameters of"):
        sr.RiskModel(endpoint="collapse", backend="xgboost",
                     booster_params={"num_leaves": 3}).fit(cohort_2k)  # fmt: skip


@pytest.mark.slow
def test_tune_is_reproducible_past_the_random_start_up_trials(cohort_2k):
    """Optuna's TPE sampler draws its first ``n_startup_trials`` at random; the trials
    after come from a model of the earlier ones, and must be the same for the same seed."""
    from spinerisk.models import tune

    model = sr.RiskModel(endpoint="collapse", backend="lightgbm", cv=2, random_state=4)
    # two random start-up trials, then two drawn from the sampler's model of them
    runs = [tune(model, cohort_2k.head(300), n_trials=4, n_startup_trials=2) for _ in range(2)]
    assert len(runs[0].trials) == 4
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert [t.value for t in runs[0].trials] == [t.value for t in runs[1].trials]
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_startup_trials must be a positive integer"):
            tune(model, cohort_2k.head(300), n_trials=1, n_startup_trials=bad)


def test_spline_backend_fits_curved_effects_a_straight_line_misses():
    cohort = sr.make_spine_cohort(8000, seed=5, nonlinear=True)
    train, test = cohort.iloc[:6000], cohort.iloc[6000:]
    ep = get_endpoint("nonunion")
    rows = sr.validate(test)
    rows = rows[ep.eligible(rows)]
    y = ep.target(rows)
    loss, models = {}, {}
    for backend in ("linear", "spline"):
        model = models[backend] = sr.RiskModel(endpoint="nonunion", backend=backend).fit(train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            risk = model.predict_risk(rows)["risk_183d"].to_numpy()
        loss[backend] = -np.mean(y * np.log(risk) + (1 - y) * np.log(1 - risk))
    assert loss["spline"] < loss["linear"], loss
    features = models["spline"].estimator_.named_steps["features"]
    assert any("_sp_" in n for n in features.get_feature_names_out())


@pytest.mark.parametrize("knots", [0, 2, 3.5, True])
def test_bad_spline_knots_are_refused(cohort_2k, knots):
    with pytest.raises(ValueError, match="spline_knots must be an integer >= 3"):
        sr.RiskModel(endpoint="nonunion", backend="spline", spline_knots=knots).fit(cohort_2k)
