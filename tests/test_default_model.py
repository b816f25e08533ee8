"""The default model (backend="auto"): cross-validated stacking, its record, its parts
(bundle, explanations, fast-path fallback), its penalties, small-data honesty and
optimism correction. Synthetic data only."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import spinerisk as sr
from spinerisk.bundle import load_bundle, save_bundle
from spinerisk.endpoints import Endpoint
from spinerisk.models._ridge import LAMBDAS, stratified_folds
from spinerisk.models._stack import (
    StackedClassifier,
    StackedCoxSurvival,
    duplicate_groups,
)
from spinerisk.schema import FieldSpec, Schema
from spinerisk.targets import make_survival_target

TOY_SCHEMA = Schema(
    (
        FieldSpec("rid", "int", "Record id.", role="id", unique=True, nullable=False),
        FieldSpec("x1", "float", "A strong predictor."),
        FieldSpec("x2", "float", "A protective predictor."),
        FieldSpec("x3", "float", "A curved effect."),
        FieldSpec("x4", "float", "Noise."),
        FieldSpec("grp", "category", "A group.", categories=("a", "b", "c")),
        FieldSpec("outcome", "bool", "The outcome.", role="outcome", nullable=False),
    ),
    name="toy",
)
TOY_ENDPOINT = Endpoint(
    name="toy_outcome",
    kind="binary",
    description="A synthetic binary outcome.",
    event="outcome",
    time=None,
    horizons=(365.25,),
    eligible_treatments=None,
    include_treatment=False,
)


def toy_cohort(n: int, seed: int) -> pd.DataFrame:
    """SYNTHETIC: a logistic outcome of a few predictors, one curved."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    grp = rng.choice(["a", "b", "c"], size=n)
    eta = 1.0 * X[:, 0] - 0.7 * X[:, 1] + 0.4 * X[:, 2] ** 2 + 0.6 * (grp == "c") - 1.0
    y = rng.uniform(size=n) < expit(eta)
    return pd.DataFrame(
        {"rid": np.arange(n), "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "x4": X[:, 3]}
        | {"grp": grp, "outcome": y}
    )


def toy_model(backend: str = "auto", **kw) -> sr.RiskModel:
    return sr.RiskModel(TOY_ENDPOINT, backend=backend, schema=TOY_SCHEMA, **kw)


@pytest.fixture(scope="module")
def spine() -> pd.DataFrame:
    return sr.make_spine_cohort(700, seed=4)  # SYNTHETIC


@pytest.fixture(scope="module")
def fitted(spine: pd.DataFrame) -> dict[str, sr.RiskModel]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return {ep: sr.RiskModel(ep, cv=3).fit(spine) for ep in ("collapse", "future_fracture")}


# -- the combination ------------------------------------------------------------------------
def test_stack_is_never_worse_out_of_fold_than_its_best_candidate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = rng.uniform(size=600) < expit(X[:, 0] - 0.5 * X[:, 1] + 0.8 * np.sin(2 * X[:, 2]))
    model = StackedClassifier(cv=4).fit(X, y)
    table = model.candidates_
    assert set(table.index) == {"linear", "spline", "xgboost"}
    alone = table["loss"].dropna()
    assert model.oof_loss_ <= alone.min()  # each candidate alone was searched
    assert all(w >= 0 for w in model.weights_.values())
    assert model.weights_["spline"] > 0  # the curve is found
    # the prediction is the weighted sum of the components' log-odds
    from spinerisk.models._stack import component_score

    manual = model.intercept_ + sum(
        model.weights_[c["name"]] * component_score(c, X[:5]) for c in model.components_
    )
    np.testing.assert_allclose(model.decision_function(X[:5]), manual, rtol=1e-12)
    # the selection rule's choice is the candidate with the lowest loss alone
    assert model.best_ == alone.idxmin()


@pytest.fixture(scope="module")
def odontoid_default() -> sr.RiskModel:
    """The default on the SYNTHETIC odontoid cohort of the golden output
    odontoid_nonunion-auto (600 trauma records, seed 11)."""
    from spinerisk.datasets import TraumaParams

    trauma = TraumaParams(
        cervical_share=1.0, cervical_older_share=1.0, odontoid_share=1.0, upper_share=1.0
    )
    cohort = sr.make_spine_cohort(600, seed=11, mode="trauma", trauma=trauma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return sr.RiskModel("odontoid_nonunion").fit(cohort)


def test_stack_falls_back_to_its_best_candidate_where_the_weights_stop_short(odontoid_default):
    """The weights' optimiser stops within its tolerance: on this cohort (odontoid
    nonunion, 600 trauma records) it stopped a little above the best candidate alone
    (the selection reason then claimed "never worse" beside a worse loss). The stack
    takes that candidate alone there, so its out-of-fold loss is never above it."""
    model = odontoid_default
    stack = model.estimator_[-1]
    table = stack.candidates_
    best = table["loss"].idxmin()
    assert stack.oof_loss_ <= table["loss"].min()
    assert stack.oof_loss_ == table.loc[best, "loss"]  # the fallback: that candidate alone
    assert [c for c, w in stack.weights_.items() if w > 0] == [best]


def test_survival_stack_weights_fit_the_partial_likelihood():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    t = rng.exponential(np.exp(-(0.9 * X[:, 0] - 0.6 * X[:, 1])))
    c = rng.exponential(1.5, size=500)
    y = make_survival_target(t < c, np.minimum(t, c) * 365 + 1)
    model = StackedCoxSurvival(cv=3, n_jobs=1).fit(X, y)
    assert model.oof_loss_ <= model.candidates_["loss"].dropna().min() + 1e-6
    assert model.candidates_["discrimination"].dropna().between(0.6, 1).all()
    risk = model.predict_risk(X[:3], [100.0, 300.0])
    assert ((risk >= 0) & (risk <= 1)).all() and (risk[:, 1] >= risk[:, 0]).all()
    # same model whatever the number of threads
    again = StackedCoxSurvival(cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), again.predict(X))


def test_a_booster_that_cannot_win_stops_after_two_folds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    y = rng.uniform(size=600) < expit(X @ np.array([1.2, -0.8, 0.5, 0, 0, 0]) - 0.5)
    model = StackedClassifier().fit(X, y)  # straight-line effects only
    row = model.candidates_.loc["xgboost"]
    assert row["status"] == "stopped" and row["weight"] == 0
    assert row["reason"].startswith("stopped after 2 of 5 folds: no weight")
    assert "more than twice its standard error" in row["reason"]


def test_repeated_records_share_a_fold():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = rng.uniform(size=100) < 0.3
    rows = rng.integers(0, 100, size=100)  # a bootstrap resample
    groups = duplicate_groups(X[rows], y[rows])
    assert len(np.unique(groups)) == len(np.unique(rows))
    folds = stratified_folds(y[rows].astype(int), groups, 5, 0)
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


# -- RiskModel with the default -------------------------------------------------------------
def test_default_records_weights_reason_and_saves_explains_and_serves(fitted, spine, tmp_path):
    for name, model in fitted.items():
        assert model.backend_ == "stack"
        assert model.selection_reason_.startswith("cross-validated stacking")
        path = save_bundle(model, tmp_path / f"{name}.spinerisk")
        loaded = load_bundle(path)
        records = spine.head(40)
        before = model.predict_risk(records)
        pd.testing.assert_frame_equal(before, loaded.predict_risk(records))
        pd.testing.assert_frame_equal(model.selection_, loaded.selection_)
        assert loaded.weights_ == model.weights_
        # explanations: the weighted sum of each candidate's exact contributions
        ex = loaded.explain(records.head(5))
        gap = (ex.contributions.sum(axis=1) + ex.base_value - ex.output).abs().max()
        assert gap < 1e-5
        assert "weighted sum" in ex.method
        np.testing.assert_allclose(ex.risk, before.iloc[:5, 0].to_numpy(), rtol=1e-9)
        # the single-record path covers the combination (issue 18.4): dicts take it
        assert model._fast_predictor() is not None
        record = {k: v for k, v in records.iloc[0].to_dict().items() if k != "index_date"}
        one = model.predict_risk(record)
        np.testing.assert_allclose(
            one.drop(columns="warnings").to_numpy(),
            before.drop(columns="warnings").iloc[:1].to_numpy(),
            rtol=1e-12,
        )
        # the model card names each candidate of its table, and every library version
        card = sr.model_card(model)
        table = card.to_dict()["model"]["selection_table"]
        names = list(model.selection_.index.names)  # "backend" (and "cause" per cause)
        shown = [tuple(r[n] for n in names) for r in table]
        assert shown == [k if isinstance(k, tuple) else (k,) for k in model.selection_.index]
        assert {"xgboost", "lifelines", "scikit-learn"} <= set(card.to_dict()["software"])
        card.to_html(tmp_path / f"{name}_card.html")
        page = (tmp_path / f"{name}_card.html").read_text(encoding="utf-8")
        assert "Candidates of the default model" in page


def test_default_is_calibrated_on_held_out_records_penalties_chosen_by_cv():
    train, test = toy_cohort(1500, 0), toy_cohort(20000, 1)
    model = toy_model().fit(train)
    penalties = model.selection_["penalty"].dropna()
    assert set(penalties) <= set(LAMBDAS)  # chosen on the folds, not fixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(test).iloc[:, 0].to_numpy()
    from spinerisk.metrics import calibration_slope

    slope = calibration_slope(test["outcome"].to_numpy(bool), risk)
    assert 0.85 <= slope <= 1.15, slope


def test_a_rare_category_is_shrunk_more_than_a_common_one():
    """0/1 columns are divided by BINARY_SCALE, not their own SD: a category of 3 records
    that by chance holds the three earliest events gets a far smaller log hazard ratio
    than standardising it would give at the same penalty; a balanced one the same."""
    from spinerisk.models._ridge import ridge_cox_path
    from spinerisk.models._stack import BINARY_SCALE

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.3 * x)) * 365 + 1
    c = rng.uniform(0, 3 * 365, n)
    y = make_survival_target(t <= c, np.minimum(t, c))
    rare = np.zeros(n)
    events = np.flatnonzero(y["event"])
    rare[events[np.argsort(y["time"][events])[:3]]] = 1.0
    common = (rng.uniform(size=n) < 0.5).astype(float)
    X = np.column_stack([x, rare, common, rng.normal(size=(n, 5))])
    model = StackedCoxSurvival(candidates=("linear",), cv=3, n_jobs=1).fit(X, y)
    comp = model.components_[0]
    np.testing.assert_array_equal(comp["scale"][1:3], [BINARY_SCALE, BINARY_SCALE])
    assert comp["scale"][0] == pytest.approx(x.std())
    per_unit = comp["coef"] / comp["scale"]  # log hazard ratio per unit of each column
    sd = X.std(axis=0)
    lam = np.array([comp["penalty"]])
    standardised = ridge_cox_path((X - X.mean(axis=0)) / sd, y["time"], y["event"], lam)[0] / sd
    assert 0 < per_unit[1] < 0.1 * standardised[1]  # measured 0.13 against 2.8
    assert per_unit[2] == pytest.approx(standardised[2], abs=0.01)


# -- small data -----------------------------------------------------------------------------
def test_fit_warns_with_riley_and_events_per_parameter():
    cohort = toy_cohort(120, 3)
    with pytest.warns(sr.DataQualityWarning) as caught:
        model = toy_model("linear").fit(cohort)
    text = " ".join(str(w.message) for w in caught)
    assert "events per parameter" in text and "Riley et al.'s minimum sample size" in text
    info = model.sample_size_
    assert info["n"] == 120 and info["required_n"] > 120
    assert f"{info['required_n']} records" in text
    big = toy_cohort(6000, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sr.DataQualityWarning)
        toy_model("linear").fit(big)  # enough data: no warning


@pytest.mark.parametrize("events", [80, 168])
def test_events_per_parameter_counts_the_smaller_outcome_class(events):
    """248 records, 6 parameters: 80 of one class limits whichever class has the event."""
    from spinerisk.models._small_data import warn_sample_size

    event = np.arange(248) < events
    with pytest.warns(sr.DataQualityWarning) as caught:
        info = warn_sample_size(endpoint="e", kind="binary", n=248, parameters=10,
                                event=event, time=None, horizon=0.0, what="model")  # fmt: skip
    assert info["events_per_parameter"] == pytest.approx(8.0)
    text = str(caught[0].message)
    assert f"248 records with {events} events" in text
    if events > 124:
        assert "8.0 records without the event (80) per parameter" in text
    else:
        assert "8.0 events per parameter" in text


def test_constant_booster_is_excluded_from_the_default_and_warned_about_when_explicit():
    cohort = sr.make_spine_cohort(80, seed=0)  # 51 eligible records: boosters cannot split
    with pytest.warns(sr.DataQualityWarning, match="predicts \\(nearly\\) the same risk"):
        sr.RiskModel("collapse", backend="xgboost", cv=3).fit(cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel("collapse", cv=3).fit(cohort)
    row = model.selection_.loc["xgboost"]
    assert row["status"] == "excluded" and row["weight"] == 0
    assert "(nearly) constant" in row["reason"]
    assert "xgboost excluded" in model.selection_reason_


def test_a_stack_of_one_candidate_says_so(odontoid_default):
    """The default is still called a stack when only one candidate carries weight; its
    reason says which candidate it really is (SYNTHETIC odontoid cohort, as the golden
    output odontoid_nonunion-auto, where only one candidate has weight)."""
    model = odontoid_default
    used = model.selection_[model.selection_["weight"] > 0].index.tolist()
    assert len(used) == 1
    assert f"(only {used[0]} carries weight: the default is {used[0]} with its scores" in (
        model.selection_reason_
    )


# -- optimism correction --------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["auto", "linear"])
def test_optimism_correction_agrees_with_nested_cross_validation(backend, caplog):
    cohort = toy_cohort(400, 0)
    model = toy_model(backend).fit(cohort)
    with caplog.at_level(logging.INFO, logger="spinerisk.evaluation._evaluate"):
        report = sr.evaluate(
            model,
            cohort,
            n_bootstrap=2,
            optimism=True,
            n_optimism=10,
            cv=5,
            explain=False,
            subgroups=(),
        )
    assert "Optimism correction: 10 bootstrap refits" in caplog.text
    assert "so the other 9 will take about" in caplog.text
    corrected = report.optimism.set_index("metric").loc["auroc", "corrected"]
    nested = report.cross_validation.set_index("metric").loc["auroc", "estimate"]
    assert abs(corrected - nested) <= 0.02, (corrected, nested)
