"""Model updating (spinerisk.update): the methods, the closed test, lineage, the report,
and the synthetic shift scenarios of issue 15.

SYNTHETIC data only. Most models here use a small predictor list (eight fields) so that
the many updates stay cheap; the default predictor set is covered by the report and CLI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk import metrics
from spinerisk.cli import app
from spinerisk.endpoints import Endpoint, get_endpoint
from spinerisk.exceptions import DataQualityWarning
from spinerisk.update import METHODS, compare_models, update_report
from spinerisk.update._glm import Design, closed_test, fit_level

SMALL = (
    "age_years",
    "sex",
    "tscore_min",
    "of_class",
    "t2_pattern",
    "posterior_wall_injury",
    "intravertebral_cleft0",
    "level",
)
BASELINE_SHIFT = {"nonunion_prevalence": 0.28}  # the development cohorts have 0.16


@pytest.fixture(scope="module")
def dev() -> pd.DataFrame:
    return sr.make_spine_cohort(8000, seed=0)


@pytest.fixture(scope="module")
def linear(dev: pd.DataFrame) -> sr.RiskModel:
    ep = dataclasses.replace(
        get_endpoint("nonunion"), name="nonunion_small", predictor_fields=SMALL
    )
    return sr.RiskModel(ep, backend="linear").fit(dev)


@pytest.fixture(scope="module")
def site() -> pd.DataFrame:
    return sr.make_spine_cohort(3000, seed=11, **BASELINE_SHIFT)


def _outcomes(model: sr.RiskModel, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Eligible records' outcome and the frame of those records."""
    checked = sr.validate(frame, model.schema_)
    data = checked[model.endpoint_.eligible(checked, model.schema_).to_numpy()]
    return model.endpoint_.target(data), data


def _risk(model: sr.RiskModel, data: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return model.predict_risk(data).drop(columns="warnings").to_numpy(dtype=float)


# -- the methods do what they say ---------------------------------------------------------------
def test_each_method_changes_what_it_says_and_keeps_the_types(linear, site):
    y, data = _outcomes(linear, site)
    before = _risk(linear, data)[:, 0]
    lin0 = logit(before)
    out = {m: sr.update(linear, site, method=m) for m in METHODS[1:]}
    for name, model in out.items():
        assert model is not linear and model.lineage_["method"] == name
        assert model.lineage_["requested"] == name and model.lineage_["parts"][0]["tests"] == []
        assert type(model.estimator_[-1]) is type(linear.estimator_[-1])
    risk = {m: _risk(model, data)[:, 0] for m, model in out.items()}
    np.testing.assert_allclose(risk["keep"], before)
    # intercept: a constant shift of the log-odds, the ML estimate (sum of risks = events)
    shift = logit(risk["intercept"]) - lin0
    alpha = out["intercept"].lineage_["parts"][0]["parameters"]["intercept"]
    np.testing.assert_allclose(shift, alpha, atol=1e-9)
    assert risk["intercept"].sum() == pytest.approx(y.sum(), rel=1e-6)
    # recalibrate: a straight line in the old log-odds, fitted by maximum likelihood
    slope, intercept = np.polyfit(lin0, logit(risk["recalibrate"]), 1)
    params = out["recalibrate"].lineage_["parts"][0]["parameters"]
    assert (slope, intercept) == pytest.approx((params["slope"], params["intercept"]), abs=1e-9)
    assert risk["recalibrate"].sum() == pytest.approx(y.sum(), rel=1e-6)
    assert (risk["recalibrate"] * lin0).sum() == pytest.approx((y * lin0).sum(), rel=1e-5)
    # revise: the coefficients themselves move (no longer a line in the old log-odds)
    residual = logit(risk["revise"]) - np.polyval(np.polyfit(lin0, logit(risk["revise"]), 1), lin0)
    assert np.abs(residual).max() > 1e-4
    assert out["revise"].lineage_["parts"][0]["parameters"]["penalty"] > 0
    # refit: a new model of the same backend on the site alone
    assert out["refit"].backend_ == linear.backend_ and out["refit"].n_train_ == len(data)
    np.testing.assert_allclose(_risk(linear, data)[:, 0], before)  # the original is untouched


# -- the likelihoods and tests ----------------------------------------------------------------
def test_offset_likelihoods_match_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    n = 3000
    eta = rng.normal(size=n)
    Z = rng.normal(size=(n, 3))
    base = -1.0 + eta
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.4 + 1.6 * eta + 0.5 * Z[:, 0])))).astype(float)
    log_h = np.log(rng.uniform(0.05, 0.5, n)) + eta
    d = (rng.random(n) < 1 - np.exp(-np.exp(log_h + 0.3))).astype(float)
    for family, outcome, offset, glm_family in (
        ("binomial", y, base, sm.families.Binomial()),
        ("poisson", d, log_h, sm.families.Poisson()),
    ):
        design = Design(family, outcome, offset[:, None], eta[:, None], Z)
        for level, X in (
            ("intercept", np.ones((n, 1))),
            ("recalibrate", np.column_stack([np.ones(n), eta])),
            ("revise", np.column_stack([np.ones(n), eta, Z])),
        ):
            ours = fit_level(design, level)
            ref = sm.GLM(outcome, X, family=glm_family, offset=offset).fit()
            assert ours.loglik == pytest.approx(ref.llf, abs=1e-3), (family, level)
            np.testing.assert_allclose(ours.coef, ref.params, atol=2e-3)
    # the closed test sees the shift it was given: intercept and slope, not the two
    # revision terms that have no effect (the effect of Z[:, 0] is left out of the design)
    design = Design("binomial", y, base[:, None], eta[:, None], Z[:, 1:])
    level, tests, _ = closed_test(design, reference="chi2")
    assert level == "recalibrate" and [t.smaller for t in tests] == [
        "keep",
        "intercept",
        "recalibrate",
    ]
    assert tests[0].p_value < 0.05 and tests[-1].p_value >= 0.05


# -- lineage, bundles, CLI, fast path, explanations ------------------------------------------------
def test_lineage_survives_bundle_and_cli_and_the_model_is_ordinary(tmp_path, linear, site):
    old = linear.save(tmp_path / "old.srb")
    site.to_csv(tmp_path / "site.csv", index=False)
    result = CliRunner().invoke(
        app,
        ["update", "--model", str(old), "--input", str(tmp_path / "site.csv"), "--output",
         str(tmp_path / "new.srb"), "--json", str(tmp_path / "lineage.json"), "--synthetic"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Tests behind the choice" in result.output and "SYNTHETIC" in result.output
    new = sr.load(tmp_path / "new.srb")
    lineage = new.lineage_
    assert lineage == json.loads((tmp_path / "lineage.json").read_text())
    assert lineage["parent"]["sha256"] == hashlib.sha256(old.read_bytes()).hexdigest()
    assert lineage["requested"] == "auto" and lineage["method"] in METHODS
    tests = lineage["parts"][0]["tests"]
    assert tests and all({"statistic", "df", "p_value"} <= set(t) for t in tests)
    datetime.strptime(lineage["created_utc"], "%Y-%m-%dT%H:%M:%SZ")
    assert len(lineage["update_data"]["fingerprint"]["sha256"]) == 64
    # the same update in Python gives the same model; a second update chains the lineage
    again = sr.update(tmp_path / "old.srb", site)
    _, data = _outcomes(new, site)
    np.testing.assert_allclose(_risk(again, data), _risk(new, data))
    twice = sr.update(new, site, method="intercept")
    assert twice.lineage_["parent"]["lineage"]["method"] == lineage["method"]
    # ordinary model: the fast path (dict records) agrees with the batch path wherever it
    # does for the original (a record without its T-score differs for a model whose
    # predictor list lacks hu_l1, updated or not: a fast-path matter outside updating)
    records = data.head(20)
    fast = new.predict_risk(records.to_dict("records")).iloc[:, 0].to_numpy()
    same = np.isclose(
        linear.predict_risk(records.to_dict("records")).iloc[:, 0], _risk(linear, records)[:, 0]
    )
    assert same.sum() >= 10
    np.testing.assert_allclose(fast[same], _risk(new, records)[same, 0], rtol=1e-9)
    assert len(new.explain(records.head(5)).sentences()) == 5
    # a bad method or a bundle that is not there exits with code 2
    bad = CliRunner().invoke(
        app,
        ["update", "--model", str(old), "--input", str(tmp_path / "site.csv"), "--output",
         str(tmp_path / "x.srb"), "--method", "retrain"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "method must be one of" in bad.output


def test_bad_arguments_are_refused(linear, site):
    with pytest.raises(ValueError, match="method must be one of"):
        sr.update(linear, site, method="retrain")
    with pytest.raises(ValueError, match="alpha must be"):
        sr.update(linear, site, alpha=5)
    with pytest.raises(ValueError, match="one entry per cause"):
        sr.update(linear, site, method={1: "intercept"})
    with pytest.raises(TypeError, match="RiskModel or the path"):
        sr.update("not a model".split(), site)
    no_events = site.assign(nonunion=site["nonunion"].where(site["nonunion"].isna(), False))
    with pytest.raises(ValueError, match="needs both events and non-events"):
        sr.update(linear, no_events)
    with pytest.raises(sr.SchemaValidationError):
        sr.update(linear, site.assign(age_years=-3.0))


# -- issue 15.3: synthetic shift scenarios ------------------------------------------------------
@pytest.mark.parametrize("scenario", ["baseline risk", "centre effect"])
def test_shifted_site_is_recalibrated_without_losing_discrimination(linear, dev, scenario):
    if scenario == "baseline risk":
        site = sr.make_spine_cohort(15000, seed=21, **BASELINE_SHIFT)
        held = sr.make_spine_cohort(20000, seed=22, **BASELINE_SHIFT)
    else:  # one centre, its random intercept shared by update and held-out records
        whole = sr.make_spine_cohort(
            35000, seed=8, centre_effect_sd=0.6, n_centres=1, intercepts=dev.attrs["intercepts"]
        )
        site, held = whole.iloc[:15000], whole.iloc[15000:]
    updated = sr.update(linear, site)
    y, data = _outcomes(linear, held)
    old, new = _risk(linear, data)[:, 0], _risk(updated, data)[:, 0]
    oe_old, oe_new = (
        metrics.observed_expected_ratio(y, old),
        metrics.observed_expected_ratio(y, new),
    )
    assert not 0.95 <= oe_old <= 1.05, oe_old  # the scenario really shifted the site
    assert 0.95 <= oe_new <= 1.05, (updated.lineage_["method"], oe_new)
    assert metrics.roc_auc(y, new) >= metrics.roc_auc(y, old)


def test_competing_risks_site_is_updated_per_cause(dev):
    ep = dataclasses.replace(
        get_endpoint("future_fracture"), name="future_fracture_small", predictor_fields=SMALL
    )
    model = sr.RiskModel(ep, backend="linear").fit(dev)
    shift = {"outcome_definition": "clinical_any_fragility"}  # fracture incidence 8.5% not 12.5%
    updated = sr.update(model, sr.make_spine_cohort(15000, seed=31, **shift))
    parts = updated.lineage_["parts"]
    assert [p["cause"] for p in parts] == [1, 2] and all(p["tests"] for p in parts)
    assert parts[0]["method"] != "keep"
    # the training ranges (what the input checks read) widen only where a part was revised
    if not any(p["method"] == "revise" for p in parts):
        assert updated.training_ranges_ == model.training_ranges_
    site = sr.make_spine_cohort(3000, seed=33, **shift)
    assert model.training_ranges_["age_years"][1] < 104.5
    site.loc[site.index[0], "age_years"] = 104.5  # a range only the site has
    mixed = sr.update(model, site, method={1: "recalibrate", 2: "intercept"})
    assert mixed.lineage_["method"] == "per cause"
    assert mixed.training_ranges_ == model.training_ranges_  # nothing was revised
    y, data = _outcomes(model, sr.make_spine_cohort(15000, seed=32, **shift))
    old, new = _risk(model, data), _risk(updated, data)
    for j, h in enumerate(model.horizons_):
        args = (y["time"], y["event"])
        oe_old = metrics.observed_expected_at_horizon(*args, old[:, j], h, cause=1)
        oe_new = metrics.observed_expected_at_horizon(*args, new[:, j], h, cause=1)
        assert not 0.95 <= oe_old <= 1.05 and 0.95 <= oe_new <= 1.05, (h, oe_old, oe_new)
        # the CIF ranks by both causes, so updating death moves the fracture C a little
        c_old = metrics.competing_c(*args, old[:, j], cause=1, horizon=h)
        c_new = metrics.competing_c(*args, new[:, j], cause=1, horizon=h)
        assert c_new >= c_old - 0.002, (h, c_old, c_new)
    # the paired table reports each horizon's own value, not the first horizon's again
    table = compare_models(model, updated, data.iloc[:3000], n_bootstrap=2).to_frame()
    y3, old3, new3 = y[:3000], old[:3000], new[:3000]
    oe = table[table["metric"] == "oe_ratio"].set_index("horizon")
    assert len(oe) == len(model.horizons_) >= 2
    for j, h in enumerate(model.horizons_):
        args = (y3["time"], y3["event"])
        for side, risk in (("original", old3), ("updated", new3)):
            direct = metrics.observed_expected_at_horizon(*args, risk[:, j], h, cause=1)
            assert oe.loc[h, side] == pytest.approx(direct, rel=1e-9), (h, side)


def test_boosted_model_is_recalibrated_and_stays_a_booster(dev, tmp_path):
    model = sr.RiskModel("nonunion", backend="xgboost").fit(dev.iloc[:4000])
    updated = sr.update(model, sr.make_spine_cohort(8000, seed=41, **BASELINE_SHIFT))
    assert updated.lineage_["method"] != "keep"
    y, data = _outcomes(model, sr.make_spine_cohort(15000, seed=42, **BASELINE_SHIFT))
    old, new = _risk(model, data)[:, 0], _risk(updated, data)[:, 0]
    oe_old, oe_new = (
        metrics.observed_expected_ratio(y, old),
        metrics.observed_expected_ratio(y, new),
    )
    assert oe_old > 1.3 and 0.95 <= oe_new <= 1.05, (updated.lineage_["method"], oe_new)
    assert metrics.roc_auc(y, new) >= metrics.roc_auc(y, old) - 0.005
    loaded = sr.load(updated.save(tmp_path / "boosted.srb"))
    np.testing.assert_allclose(_risk(loaded, data.head(50)), _risk(updated, data.head(50)))
    records = data.head(3).to_dict("records")
    np.testing.assert_allclose(
        loaded.predict_risk(records).iloc[:, 0], new[:3], rtol=1e-6
    )  # compiled fast path
    assert len(loaded.explain(data.head(3)).sentences()) == 3


def test_the_stacked_default_is_updated_in_its_own_form(dev, tmp_path):
    model = sr.RiskModel("nonunion").fit(dev.iloc[:2000])  # backend="auto": the stack
    assert model.backend_ == "stack"
    site = sr.make_spine_cohort(3000, seed=61, **BASELINE_SHIFT)
    y, data = _outcomes(model, sr.make_spine_cohort(5000, seed=62, **BASELINE_SHIFT))
    old = _risk(model, data)[:, 0]
    oe_old = metrics.observed_expected_ratio(y, old)
    for method in ("intercept", "revise"):
        updated = sr.update(model, site, method=method)
        stack = updated.estimator_[-1]
        assert type(stack) is type(model.estimator_[-1]) and min(stack.weights_.values()) >= 0
        new = _risk(updated, data)[:, 0]
        oe_new = metrics.observed_expected_ratio(y, new)
        assert abs(oe_new - 1) < 0.1 < abs(oe_old - 1), (method, oe_old, oe_new)
        assert metrics.roc_auc(y, new) >= metrics.roc_auc(y, old) - 0.005
    assert set(updated.lineage_["parts"][0]["parameters"]["weights"]) == set(stack.weights_)
    # the closed test's revision is the re-weighting applied: an intercept, a slope and
    # the candidates' scores, not the shared matrix's dozens of columns
    chosen = sr.update(model, site, method="auto").lineage_
    assert chosen["parts"][0]["tests"][0]["df"] <= len(stack.components_) + 2
    assert "candidate's weight" in updated.lineage_["description"]
    assert "shrunk" not in updated.lineage_["description"]
    loaded = sr.load(updated.save(tmp_path / "stack.srb"))
    np.testing.assert_allclose(_risk(loaded, data.head(20))[:, 0], new[:20])


def test_unshifted_sites_keep_the_model_in_at_least_90_percent(linear, dev):
    # the shared model (8000 records of the same generator) kept 47 to 49 of 50 sites on
    # five blocks of 50 seeds, as a model of its own fitted on 20000 records did
    chosen = [
        sr.update(
            linear, sr.make_spine_cohort(300, seed=1000 + s, intercepts=dev.attrs["intercepts"])
        ).lineage_["method"]
        for s in range(50)
    ]
    assert chosen.count("keep") >= 45, pd.Series(chosen).value_counts().to_dict()


def test_small_site_update_is_never_worse_than_the_original_beyond_the_interval(linear):
    for seed in range(4):
        site = sr.make_spine_cohort(300, seed=500 + seed, **BASELINE_SHIFT)
        updated = sr.update(linear, site)
        later = sr.make_spine_cohort(3000, seed=600 + seed, **BASELINE_SHIFT)
        # 20 resamples: on seeds 0-9 the bounds moved by at most 0.006 from 60 resamples;
        # where an update was made, the Brier bound stayed <= -0.012, net benefit's >= 0.017
        table = compare_models(linear, updated, later, n_bootstrap=20).to_frame()
        diff = table.set_index("metric")
        assert diff.loc["auroc", "difference_upper"] >= 0, (seed, diff.loc["auroc"])
        assert diff.loc["brier", "difference_lower"] <= 0, (seed, diff.loc["brier"])
        for t in (0.1, 0.2, 0.3):
            assert diff.loc[f"net_benefit@{t:g}", "difference_upper"] >= 0


# -- issue 15.2: the report ------------------------------------------------------------------
def test_update_report_held_out_and_optimism_corrected(linear, site):
    # 20 resamples: on bootstrap seeds 0-9 the estimate stayed at least 37% of the
    # interval's width from either bound (40 resamples: 34%)
    held = update_report(linear, site, n_bootstrap=20, random_state=1)
    assert held.validation == "held-out" and held.n_update + held.n_evaluated == len(
        _outcomes(linear, site)[1]
    )
    table = held.to_frame().set_index("metric")
    assert {"original", "updated", "difference", "difference_lower", "difference_upper"} <= set(
        table.columns
    )
    row = table.loc["oe_ratio"]
    assert abs(row["updated"] - 1) < abs(row["original"] - 1)
    assert row["difference"] == pytest.approx(row["updated"] - row["original"])
    assert row["difference_lower"] <= row["difference"] <= row["difference_upper"]
    page = held.to_html()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert page.count("data:image/png;base64,") == 2 and "SYNTHETIC DATA" in page
    json.dumps(held.to_dict())
    assert "| metric |" in held.to_markdown()

    # only the estimates are compared below, and the bootstrap leaves them unchanged; the
    # optimism identity holds whatever the number of optimism resamples
    small = sr.make_spine_cohort(300, seed=12, **BASELINE_SHIFT)
    corrected = update_report(linear, small, n_bootstrap=5, n_optimism=2)
    apparent = compare_models(linear, corrected.updated_model, small, n_bootstrap=5)
    assert corrected.validation == "optimism-corrected"
    c, a = corrected.to_frame(), apparent.to_frame()
    assert np.isfinite(c["optimism"]).all()
    np.testing.assert_allclose(c["updated"], a["updated"] - c["optimism"])
    np.testing.assert_allclose(c["original"], a["original"])  # the original needs none
    if corrected.method == "intercept":  # a shift of the log-odds keeps the ranking
        assert c.set_index("metric").loc["auroc", "optimism"] == pytest.approx(0, abs=1e-12)


def test_cli_update_report_takes_the_number_of_optimism_resamples(tmp_path, linear):
    """``spinerisk update --report --optimism N``: a small site's report is corrected with
    N resamples, and says so; N below 1 is refused with exit code 2."""
    old = linear.save(tmp_path / "old.srb")
    sr.make_spine_cohort(300, seed=12, **BASELINE_SHIFT).to_csv(tmp_path / "s.csv", index=False)
    base = ["update", "--model", str(old), "--input", str(tmp_path / "s.csv"), "--output",
            str(tmp_path / "new.srb"), "--method", "intercept", "--report",
            str(tmp_path / "r.html"), "--bootstrap", "2"]  # fmt: skip
    result = CliRunner().invoke(app, [*base, "--optimism", "3"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "optimism" in page and "(3 resamples, each repeating" in page
    bad = CliRunner().invoke(app, [*base, "--optimism", "0"])
    assert bad.exit_code == 2 and "--optimism" in bad.output


# -- time-to-event boosters: baseline hazard and slope on the booster's margin ------------------
def test_survival_boosters_are_recalibrated_in_their_own_form(dev):
    ep = Endpoint(
        name="any_fracture",
        kind="survival",
        description="SYNTHETIC test endpoint: subsequent fracture, death censored",
        event="fx_event",
        time="fx_time_days",
        horizons=(365.25, 730.5),
    )
    site = sr.make_spine_cohort(2500, seed=51, outcome_definition="clinical_any_fragility")
    later = sr.make_spine_cohort(4000, seed=52, outcome_definition="clinical_any_fragility")
    linear = sr.RiskModel(ep, backend="linear").fit(dev.iloc[:400])
    y, data = _outcomes(linear, later)

    def miscalibration(risk: np.ndarray) -> float:
        """Mean |log O/E| over the horizons (a location-and-scale update aims at all)."""
        oe = [
            metrics.observed_expected_at_horizon(y["time"], y["event"], risk[:, j], h)
            for j, h in enumerate(ep.horizons)
        ]
        return float(np.mean(np.abs(np.log(oe))))

    for backend in ("xgboost", "xgboost_aft"):
        model = sr.RiskModel(ep, backend=backend).fit(dev.iloc[:2500])
        before = miscalibration(_risk(model, data))
        for method in ("intercept", "recalibrate"):
            updated = sr.update(model, site, method=method)
            assert type(updated.estimator_) is type(model.estimator_)
            risk = _risk(updated, data)
            assert np.all((risk >= 0) & (risk <= 1)) and np.all(np.diff(risk, axis=1) >= 0)
            assert miscalibration(risk) < before, (backend, method, before, miscalibration(risk))
            records = data.head(3).to_dict("records")
            fast = updated.predict_risk(records).iloc[:, :2].to_numpy()
            np.testing.assert_allclose(fast, risk[:3], rtol=1e-6)


def test_updated_model_drops_the_parents_bootstrap_refits(linear, dev, site):
    """Refits describe the parent: an updated model must not keep or save them."""
    import copy

    parent = copy.deepcopy(linear).fit_intervals(dev, n_resamples=2, random_state=0)
    updated = sr.update(parent, site, method="intercept")
    assert len(parent.interval_models_) == 2  # the parent itself is untouched
    assert not hasattr(updated, "interval_models_")
    with pytest.raises(ValueError, match="fit_intervals"):
        updated.predict_risk(site.head(3), interval=0.9)


def test_codes_and_ranges_of_the_original_training_are_not_unusual_after_an_update(
    linear, site, tmp_path
):
    """The updated model's reference describes the site (drift is measured against it),
    but its per-record input checks know what its parameters were estimated on: a code
    or value the original training had and the site lacks is not "unseen" nor "outside
    the training range", on the batch path, the fast path and a loaded bundle alike; a
    value neither had still is."""
    from spinerisk.reference import input_warning_table

    thoracolumbar = site[site["level"].astype(str).isin(["T11", "T12", "L1", "L2"])]
    younger = thoracolumbar[thoracolumbar["age_years"] < 80]
    assert set(linear.training_ranges_["level"]) - set(younger["level"].astype(str))
    for method in ("recalibrate", "revise"):
        updated = sr.update(linear, younger, method=method)
        assert set(updated.reference_["fields"]["level"]["counts"]) < set(
            linear.training_ranges_["level"]
        )  # the site's codes
        probe = site[~site["level"].astype(str).isin(["T11", "T12", "L1", "L2"])].head(5)
        lo, hi = linear.training_ranges_["age_years"]
        assert younger["age_years"].max() < 80 <= hi < 105  # the schema allows up to 105
        beyond = (hi + 105) / 2
        probe = probe.assign(age_years=[85.0, hi, 70.0, 75.0, beyond])
        checked = sr.validate(probe, schema=updated.schema_)
        table = input_warning_table(updated, checked)
        assert not (table["code"] == "unseen_category").any(), table
        assert list(table.loc[table["code"] == "out_of_range", "row"]) == [4], table
        batch = updated.predict_risk(probe)["warnings"]
        fast = updated.predict_risk(probe.to_dict("records"))["warnings"]
        loaded = sr.load(updated.save(tmp_path / f"{method}.srb"))
        again = loaded.predict_risk(probe.to_dict("records"))["warnings"]
        for got in (batch, fast, again):
            assert list(got.to_numpy()) == list(batch.to_numpy())
        assert batch.iloc[:4].eq("").all()
        assert f"out_of_range:age_years={beyond:g}" in batch.iloc[4]
        # drift still compares the site's records with the site's reference
        assert updated.reference_["fields"]["age_years"]["max"] < 80


def test_a_revision_shrunk_to_the_top_penalty_is_applied_as_a_recalibration(
    linear, site, monkeypatch
):
    """When the closed test favours a revision but cross-validation puts its penalty at
    the largest tried (the site supports no coefficient change), ``auto`` recalibrates
    and says why, instead of reporting a revision that is a recalibration in all but
    name (as on flchain: penalty 1e+05 and risks within 0.004 of the recalibrated).
    An explicitly requested revision stays a revision."""
    import spinerisk.update._parts as parts_module
    import spinerisk.update._update as update_module
    from spinerisk.update._glm import PENALTY_GRID

    def revise_chosen(design, alpha, **kwargs):
        return "revise", [], None

    monkeypatch.setattr(update_module, "closed_test", revise_chosen)
    monkeypatch.setattr(
        parts_module, "choose_penalty", lambda design, splits: (PENALTY_GRID[-1], {})
    )
    auto = sr.update(linear, site)
    part = auto.lineage_["parts"][0]
    assert auto.lineage_["method"] == part["method"] == "recalibrate"
    assert "penalty is the largest tried" in part["reason"]
    recal = sr.update(linear, site, method="recalibrate")
    _, data = _outcomes(linear, site)
    np.testing.assert_allclose(_risk(auto, data), _risk(recal, data), rtol=1e-12)
    asked = sr.update(linear, site, method="revise")
    assert asked.lineage_["method"] == "revise" and "reason" not in asked.lineage_["parts"][0]
    monkeypatch.setattr(parts_module, "choose_penalty", lambda design, splits: (1.0, {}))
    assert sr.update(linear, site).lineage_["method"] == "revise"
