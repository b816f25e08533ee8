"""spinerisk.evaluation: bootstrap CIs, optimism, subgroups, sample size, splits, CLI.

Every cohort here is synthetic (``make_spine_cohort``); the numbers show that the
software works, not that a model is clinically valid.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk import metrics as m
from spinerisk.endpoints import Endpoint
from spinerisk.evaluation import centre_split, evaluate, temporal_split
from spinerisk.evaluation._bootstrap import bootstrap_metrics
from spinerisk.evaluation._data import EvalData, metric_specs
from spinerisk.monitor import drift

FAST = {"subgroups": (), "explain": False}


@pytest.fixture(scope="module")
def binary():
    """A penalised logistic collapse model and the synthetic cohort it was fitted on."""
    cohort = sr.make_spine_cohort(1000, seed=0)
    model = sr.RiskModel("collapse", backend="linear").fit(cohort)
    return model, cohort


@pytest.fixture(scope="module")
def binary_report(binary):
    model, cohort = binary
    return evaluate(
        model,
        cohort,
        n_bootstrap=40,
        subgroups=("sex", "age_band", "region", "centre_id"),
        explain=False,
    )


@pytest.fixture(scope="module")
def competing():
    cohort = sr.make_spine_cohort(800, seed=2)
    model = sr.RiskModel("future_fracture", backend="linear").fit(cohort)
    return model, cohort


@pytest.fixture(scope="module")
def competing_report(competing):
    model, cohort = competing
    return evaluate(model, cohort, n_bootstrap=8, subgroups=("sex",), explain=False)


def _eligible(model, cohort):
    checked = sr.validate(cohort)
    return checked[model.endpoint_.eligible(checked).to_numpy()]


# -- intervals and reproducibility ---------------------------------------------------------
def test_report_counts_and_cis_contain_the_estimate(binary, binary_report):
    model, cohort = binary
    report = binary_report
    eligible = _eligible(model, cohort)
    assert report.n_records == len(cohort)
    assert report.n_evaluated == len(eligible)
    assert report.n_excluded == len(cohort) - len(eligible) > 0
    assert report.n_events == int(eligible["collapse_6m"].astype(bool).sum())
    table = report.to_frame()
    assert list(table.columns) == ["metric", "horizon", "estimate", "lower", "upper"]
    assert set(table["metric"]) == {
        "auroc",
        "auprc",
        "brier",
        "scaled_brier",
        "calibration_slope",
        "calibration_intercept",
        "oe_ratio",
        "ece",
    }
    assert table[["estimate", "lower", "upper"]].notna().all().all()
    assert (table["lower"] < table["upper"]).all()
    # the binned ECE is biased upwards in resamples (ties duplicate records into bins), so
    # its percentile interval may sit above the estimate; every other metric brackets it
    rest = table[table["metric"] != "ece"]
    assert ((rest["lower"] <= rest["estimate"]) & (rest["estimate"] <= rest["upper"])).all()
    assert report.synthetic and report.validation == "internal"


def test_the_synthetic_label_comes_from_the_records_or_the_training_reference(binary):
    model, cohort = binary
    unlabelled = cohort.copy()
    unlabelled.attrs.clear()  # e.g. the same records read back from a CSV file
    report = evaluate(model, unlabelled, n_bootstrap=5, **FAST)
    assert report.synthetic  # the model itself was trained on synthetic records
    plain = sr.RiskModel("collapse", backend="linear").fit(unlabelled)
    assert plain.reference_["synthetic"] is False
    assert not evaluate(plain, unlabelled, n_bootstrap=5, **FAST).synthetic
    assert drift(model, unlabelled).synthetic and not drift(plain, unlabelled).synthetic


def test_metrics_match_spinerisk_metrics_on_the_same_predictions(binary, binary_report):
    model, cohort = binary
    eligible = _eligible(model, cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        p = model.predict_risk(eligible)["risk_183d"].to_numpy()
    y = eligible["collapse_6m"].astype(bool).to_numpy()
    got = binary_report.to_frame().set_index("metric")["estimate"]
    expected = {
        "auroc": m.roc_auc(y, p),
        "auprc": m.pr_auc(y, p),
        "brier": m.brier_score(y, p),
        "scaled_brier": m.scaled_brier_score(y, p),
        "calibration_slope": m.calibration_slope(y, p),
        "calibration_intercept": m.calibration_intercept(y, p),
        "oe_ratio": m.observed_expected_ratio(y, p),
        "ece": m.expected_calibration_error(y, p),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    curve = binary_report.calibration[model.horizons_[0]]
    pd.testing.assert_frame_equal(curve, m.calibration_curve(y, p, n_bins=10))
    dca = binary_report.decision_curve[model.horizons_[0]]
    pd.testing.assert_frame_equal(dca, m.net_benefit(y, p))


def test_same_seed_same_report_other_seed_other_intervals(binary, binary_report):
    model, cohort = binary
    kwargs = {"n_bootstrap": 15, "subgroups": ("sex",), "explain": False}
    first = evaluate(model, cohort, random_state=7, **kwargs).to_dict()
    again = evaluate(model, cohort, random_state=7, **kwargs).to_dict()
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    other = evaluate(model, cohort, random_state=8, **kwargs).to_frame()
    seven = pd.DataFrame(first["metrics"])
    np.testing.assert_allclose(other["estimate"], seven["estimate"])  # same predictions
    assert not np.allclose(other["lower"], seven["lower"])
    assert not np.allclose(other["upper"], seven["upper"])


def _toy(n, seed=0):
    """Outcomes and informative predictions of ``n`` made-up records."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, n), 0.01, 0.99)
    return EvalData("binary", y, None, p[:, None], (182.62,))


def _some_specs():
    keep = ("auroc", "brier", "oe_ratio", "calibration_intercept")
    return [s for s in metric_specs("binary", (182.62,)) if s.name in keep]


def test_n_jobs_does_not_change_the_numbers():
    data, specs = _toy(500), _some_specs()
    kwargs = {"n_bootstrap": 16, "ci": 0.95, "random_state": 3}
    one = bootstrap_metrics(specs, data, n_jobs=1, **kwargs)
    two = bootstrap_metrics(specs, data, n_jobs=2, **kwargs)
    for key in ("estimate", "lower", "upper", "n_resamples"):
        np.testing.assert_array_equal(one[key], two[key])


def test_intervals_narrow_with_more_patients_and_lower_coverage():
    full, specs = _toy(4000), _some_specs()

    def widths(data, ci=0.95):
        res = bootstrap_metrics(specs, data, n_bootstrap=40, ci=ci, random_state=0)
        assert (res["n_resamples"] == 40).all()
        return res["upper"] - res["lower"]

    large = widths(full)
    assert (large < widths(full.take(np.arange(400)))).all()
    # on the same resamples an 80% interval lies inside the 95% one
    assert (widths(full, ci=0.8) < large).all()


# -- optimism, cross-validation ------------------------------------------------------------
def test_optimism_and_cv_lower_the_apparent_auroc_of_an_overfitted_booster():
    cohort = sr.make_spine_cohort(300, seed=4)
    model = sr.RiskModel("collapse", backend="xgboost").fit(cohort)
    report = evaluate(model, cohort, n_bootstrap=3, optimism=True, n_optimism=2, cv=2, **FAST)
    opt = report.optimism.set_index("metric")
    assert report.optimism.attrs["n_refits"] == 2
    assert opt.loc["auroc", "optimism"] > 0
    assert opt.loc["auroc", "corrected"] < opt.loc["auroc", "apparent"]
    assert opt.loc["auroc", "apparent"] == pytest.approx(
        report.to_frame().set_index("metric").loc["auroc", "estimate"]
    )
    # cross-validation: refit per fold, metrics of the pooled out-of-fold predictions
    cvt = report.cross_validation.set_index("metric")["estimate"]
    assert cvt.notna().all()
    assert 0.5 < cvt["auroc"] < opt.loc["auroc", "apparent"]
    table = report.metric_table()
    assert {"optimism-corrected", "cross-validated"} <= set(table.columns)


# -- subgroups and sample size -------------------------------------------------------------
def test_subgroup_table_covers_every_level_and_adds_up(binary, binary_report):
    model, cohort = binary
    eligible = _eligible(model, cohort)
    sg = binary_report.subgroups
    for name in ("sex", "age_band", "region", "centre_id"):
        part = sg[sg["subgroup"] == name]
        assert part["n"].sum() == binary_report.n_evaluated, name
        assert part["events"].sum() == binary_report.n_events, name
    assert set(sg.loc[sg["subgroup"] == "sex", "level"]) == set(eligible["sex"].astype(str))
    assert set(sg.loc[sg["subgroup"] == "centre_id", "level"]) == set(
        eligible["centre_id"].astype(str)
    )
    scored = sg[sg["note"] == ""]
    skipped = sg[sg["note"] != ""]
    assert (
        len(scored) and scored[["auroc", "oe_ratio", "calibration_intercept"]].notna().all().all()
    )
    assert (scored["auroc_lower"] <= scored["auroc_upper"]).all()
    small = (sg["events"] < 10) | (sg["n"] - sg["events"] < 10)
    assert set(skipped.index) == set(sg.index[small])
    assert skipped["auroc"].isna().all()
    assert all(
        any(f"{r.subgroup}={r.level}" in n for n in binary_report.notes)
        for r in skipped.itertuples()
    )


def test_sample_size_uses_model_matrix_columns_and_pmsampsize(binary, binary_report):
    from pmsampsize.pmsampsize import pmsampsize

    model, cohort = binary
    ss = binary_report.sample_size
    eligible = _eligible(model, cohort)
    pipe = model.estimator_.named_steps["features"]
    assert ss["parameters"] == pipe.transform(eligible).shape[1]
    assert ss["available_n"] == model.n_train_
    direct = pmsampsize(
        type="b",
        cstatistic=ss["inputs"]["cstatistic"],
        parameters=ss["parameters"],
        prevalence=ss["inputs"]["prevalence"],
        noprint=True,
    )
    assert ss["required_n"] == direct["sample_size"]
    assert ss["adequate"] is (model.n_train_ >= direct["sample_size"])


# -- time-to-event endpoints ---------------------------------------------------------------
def test_competing_endpoint_metrics_match_direct_computation(competing, competing_report, tmp_path):
    model, cohort = competing
    report = competing_report
    table = report.to_frame()
    horizons = set(model.horizons_)
    for name in ("competing_c", "td_auc", "oe_ratio"):
        assert set(table.loc[table["metric"] == name, "horizon"]) == horizons, name
    eligible = _eligible(model, cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(eligible)
    time = eligible["fx_time_days"].to_numpy(float)
    event = eligible["fx_event"].to_numpy(int)
    one_year = risk["risk_365d"].to_numpy()
    got = table.set_index(["metric", "horizon"])["estimate"]
    assert got[("competing_c", 365.25)] == pytest.approx(
        m.competing_c(time, event, one_year, cause=1, horizon=365.25)
    )
    assert got[("oe_ratio", 365.25)] == pytest.approx(
        m.observed_expected_at_horizon(time, event, one_year, 365.25, cause=1)
    )
    assert got[("td_auc", 365.25)] == pytest.approx(
        m.time_dependent_auc(time, event == 1, time, event == 1, one_year, [365.25])[0]
    )
    assert report.settings["censoring_reference"] == "evaluation cohort"
    assert set(report.calibration) == horizons and set(report.decision_curve) == horizons
    assert report.sample_size["inputs"]["type"] == "s"
    json.dumps(report.to_dict())
    assert report.to_html(tmp_path / "competing.html").stat().st_size > 10_000


def test_time_to_event_report_has_full_calibration_at_every_horizon(competing, competing_report):
    """Issue 14.6: Brier, integrated Brier, calibration slope and intercept, O/E and a
    smoothed curve against Aalen-Johansen at each horizon, each with bootstrap CIs, equal
    to the public metric functions on the same predictions."""
    model, cohort = competing
    report = competing_report
    table = report.to_frame()
    horizons = set(model.horizons_)
    shown = ("brier", "calibration_slope", "calibration_intercept", "oe_ratio")
    for name in shown:
        rows = table[table["metric"] == name]
        assert set(rows["horizon"]) == horizons, name
        assert rows[["estimate", "lower", "upper"]].notna().all().all(), name
        assert ((rows["lower"] <= rows["estimate"]) & (rows["estimate"] <= rows["upper"])).all()
    assert table.loc[table["metric"] == "ibs", ["estimate", "lower", "upper"]].notna().all().all()
    eligible = _eligible(model, cohort)
    time = eligible["fx_time_days"].to_numpy(float)
    event = eligible["fx_event"].to_numpy(int)
    grid = report.settings["ibs_times"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(eligible)
        on_grid = model.predict_risk(eligible, horizons=grid).drop(columns="warnings")
    got = table.set_index(["metric", "horizon"])["estimate"]
    for h in model.horizons_:
        p = risk[model.endpoint_.risk_column(h)].to_numpy()
        assert got[("brier", h)] == pytest.approx(
            m.brier_score_at_horizon(time, event, p, h, cause=1), rel=1e-12
        )
        assert got[("calibration_slope", h)] == pytest.approx(
            m.calibration_slope_at_horizon(time, event, p, h, cause=1), rel=1e-9
        )
        assert got[("calibration_intercept", h)] == pytest.approx(
            m.calibration_intercept_at_horizon(time, event, p, h, cause=1), rel=1e-9, abs=1e-12
        )
        curve = report.smoothed_calibration[h]
        assert list(curve.columns) == ["predicted", "observed", "lower", "upper"]
        expected = m.smoothed_calibration_at_horizon(time, event, p, h, cause=1)
        np.testing.assert_allclose(curve["observed"], expected["observed"])
        inside = (curve["lower"] <= curve["observed"]) & (curve["observed"] <= curve["upper"])
        assert inside.mean() >= 0.8 and (curve["lower"] < curve["upper"]).all()
    assert got[("ibs", max(horizons))] == pytest.approx(
        m.integrated_brier_score_cif(time, event, on_grid.to_numpy(float), grid, cause=1)
    )
    assert "Brier score" in report.metric_table()["metric"].tolist()


def test_competing_metrics_follow_the_endpoints_event_of_interest(competing):
    """An endpoint whose event of interest is code 2 (death here, fracture competing) is
    scored on code 2, not on code 1."""
    _, cohort = competing
    ep = Endpoint(
        name="death_before_fracture",
        kind="competing",
        description="SYNTHETIC test endpoint: death with fracture competing.",
        event="fx_event",
        time="fx_time_days",
        horizons=(365.25, 730.5),
        eligible_treatments=None,
        include_treatment=True,
        event_of_interest=2,
    )
    model = sr.RiskModel(ep, backend="linear").fit(cohort)
    report = evaluate(model, cohort, n_bootstrap=5, **FAST)
    got = report.to_frame().set_index(["metric", "horizon"])["estimate"]
    eligible = _eligible(model, cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(eligible)["risk_365d"].to_numpy()
    time = eligible["fx_time_days"].to_numpy(float)
    event = eligible["fx_event"].to_numpy(int)
    assert got[("competing_c", 365.25)] == pytest.approx(
        m.competing_c(time, event, risk, cause=2, horizon=365.25)
    )
    assert got[("competing_c", 365.25)] != pytest.approx(
        m.competing_c(time, event, risk, cause=1, horizon=365.25)
    )
    assert got[("oe_ratio", 365.25)] == pytest.approx(
        m.observed_expected_at_horizon(time, event, risk, 365.25, cause=2)
    )
    assert got[("td_auc", 365.25)] == pytest.approx(
        m.time_dependent_auc(time, event == 2, time, event == 2, risk, [365.25])[0]
    )


def test_horizons_beyond_the_evaluated_follow_up_are_not_estimable(competing, tmp_path):
    """Records followed for at most 400 days cannot show risk by 2 or 5 years: those
    metrics are n/a (not 0.000 to 0.001, not an O/E of the Kaplan-Meier carried flat),
    with a note naming the horizons and the last follow-up time."""
    model, cohort = competing
    short = cohort.copy()
    cut = 400.0
    late = short["fx_time_days"] > cut
    short.loc[late, "fx_time_days"] = cut
    short.loc[late, "fx_event"] = 0
    report = evaluate(model, short, n_bootstrap=4, explain=False, optimism=True, n_optimism=2)
    m = report.metrics
    beyond = m["horizon"] >= cut
    assert set(m.loc[beyond, "horizon"]) == {h for h in model.horizons_ if h >= cut} != set()
    assert m.loc[beyond, ["estimate", "lower", "upper"]].isna().all().all()
    assert (m.loc[beyond, "n_resamples"] == 0).all()
    within = (m["horizon"] < cut) & (m["metric"] == "brier")
    assert m.loc[within, "estimate"].notna().all() and within.any()
    assert report.optimism.loc[report.optimism["horizon"] >= cut, "corrected"].isna().all()
    note = next(n for n in report.notes if "not estimable" in n)
    assert "730.5 days" in note and "400 days" in note
    assert set(report.calibration) == set(report.decision_curve) == {365.25}
    page = report.to_html(tmp_path / "short.html").read_text(encoding="utf-8")
    assert "not estimable" in page and "Binned calibration at 365d" in page
    json.dumps(report.to_dict())
    assert "n/a" in report.to_markdown()
    # with a comparator too: its rows and curves stop where the records' follow-up does
    compared = evaluate(model, short, n_bootstrap=2, explain=False,
                        comparators=["garvan_tscore_min"])  # fmt: skip
    table = compared.comparators["table"]
    assert len(table) and (table["horizon"].dropna() < cut).all()
    assert all(h < cut for h in compared.comparators["decision_curves"]["garvan_tscore_min"])


def test_survival_endpoint_reports_harrell_uno_and_ibs(competing):
    _, cohort = competing
    ep = Endpoint(
        name="fracture_or_death",
        kind="survival",
        description="SYNTHETIC test endpoint: first fracture or death.",
        event="fx_event",
        time="fx_time_days",
        horizons=(365.25, 730.5),
        eligible_treatments=None,
        include_treatment=True,
    )
    model = sr.RiskModel(ep, backend="linear").fit(cohort)
    train, test = cohort.iloc[:500], cohort.iloc[500:]
    report = evaluate(model, test, n_bootstrap=5, train=train, validation="temporal", **FAST)
    got = report.to_frame().set_index("metric")
    for name in ("harrell_c", "uno_c", "ibs"):
        assert 0 < got.loc[name, "estimate"] < 1, name
    assert 0.55 < got.loc["harrell_c", "estimate"]
    # cross-checked against scikit-survival, censoring from the training cohort
    from sksurv.metrics import brier_score, integrated_brier_score
    from sksurv.util import Surv

    def surv(frame):
        y = model.endpoint_.target(_eligible(model, frame))  # death is censoring here
        return Surv.from_arrays(y["event"], y["time"])

    eligible = _eligible(model, test)
    grid = report.settings["ibs_times"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(eligible)["risk_365d"].to_numpy()
        on_grid = model.predict_risk(eligible, horizons=grid).drop(columns="warnings")
    y_train, y_test = surv(train), surv(test)
    brier = report.to_frame().set_index(["metric", "horizon"]).loc[("brier", 365.25), "estimate"]
    assert brier == pytest.approx(brier_score(y_train, y_test, 1 - risk, 365.25)[1][0])
    assert got.loc["ibs", "estimate"] == pytest.approx(
        integrated_brier_score(y_train, y_test, 1 - on_grid.to_numpy(float), grid)
    )
    assert report.settings["censoring_reference"] == "training cohort"
    assert report.validation == "temporal"


# -- validation designs --------------------------------------------------------------------
def test_temporal_split_puts_every_earlier_record_in_development():
    cohort = sr.make_spine_cohort(400, seed=0)
    dev, val = temporal_split(cohort, cutoff="2020-06-01")
    assert (dev["index_date"] < pd.Timestamp("2020-06-01")).all()
    assert (val["index_date"] >= pd.Timestamp("2020-06-01")).all()
    assert len(dev) + len(val) == len(cohort)
    assert dev.attrs["synthetic"] and val.attrs["split"] == "validation"
    with pytest.raises(ValueError, match="cutoff=.*is not a date"):
        temporal_split(cohort, cutoff="soon")


def test_centre_split_holds_out_whole_centres():
    cohort = sr.make_spine_cohort(400, seed=0)
    dev, val = centre_split(cohort, centres=["C03", "C07"])
    assert set(val["centre_id"]) == {"C03", "C07"}
    assert not set(dev["centre_id"]) & {"C03", "C07"}
    assert len(dev) + len(val) == len(cohort)
    numbered = pd.DataFrame({"site": [1, 1, 2, 2, 3], "x": range(5)})  # integer centre ids
    dev, val = centre_split(numbered, centres=[2], centre_field="site")
    assert list(val["x"]) == [2, 3] and list(dev["x"]) == [0, 1, 4]
    dev, val = centre_split(numbered, centres=["3"], centre_field="site")
    assert list(val["x"]) == [4]


def test_external_cohort_with_another_outcome_rate_shows_calibration_drift(binary):
    model, dev = binary
    kwargs = {"n_bootstrap": 20, "validation": "external", **FAST}
    # same generator and intercepts, new patients: O/E close to 1
    same = sr.make_spine_cohort(1000, seed=11, intercepts=dev.attrs["intercepts"])
    oe_same = evaluate(model, same, **kwargs).to_frame().set_index("metric").loc["oe_ratio"]
    assert oe_same["lower"] < 1 < oe_same["upper"]
    # a site where progressive collapse is much rarer: the model over-predicts
    shifted = sr.make_spine_cohort(1000, seed=11, collapse_prevalence=0.2)
    report = evaluate(model, shifted, **kwargs)
    oe = report.to_frame().set_index("metric").loc["oe_ratio"]
    assert oe["upper"] < 0.8
    assert report.to_frame().set_index("metric").loc["calibration_intercept", "upper"] < 0
    assert report.validation == "external"


# -- bad input -----------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(binary):
    model, cohort = binary
    with pytest.raises(NotFittedError, match="not fitted"):
        evaluate(sr.RiskModel("collapse"), cohort)
    with pytest.raises(TypeError, match="fitted spinerisk.RiskModel; got str"):
        evaluate("model.srb", cohort)
    for bad in (0, -5, 2.5):
        with pytest.raises(
            ValueError, match=rf"n_bootstrap must be an integer >= 1; got n_bootstrap={bad}"
        ):
            evaluate(model, cohort, n_bootstrap=bad)
    for bad in (0, 1, 1.5, 95):
        with pytest.raises(ValueError, match=rf"ci must be .* between 0 and 1.*got ci={bad}"):
            evaluate(model, cohort, ci=bad)
    with pytest.raises(ValueError, match="optimism=True.*internal validation"):
        evaluate(model, cohort, optimism=True, validation="external")
    with pytest.raises(ValueError, match="validation must be one of"):
        evaluate(model, cohort, validation="prospective")
    with pytest.raises(ValueError, match="subgroup 'shoe_size'"):
        evaluate(model, cohort, n_bootstrap=1, subgroups=("shoe_size",), explain=False)
    no_outcome = cohort.copy()
    no_outcome["collapse_6m"] = pd.NA
    with pytest.raises(
        ValueError,
        match=r"No records .* eligible .*\(collapse_6m\) observed; 1000 records were excluded",
    ):
        evaluate(model, no_outcome)
    with pytest.raises(sr.SchemaValidationError):
        evaluate(model, cohort.assign(age_years=-4.0))


# -- command line --------------------------------------------------------------------------
def test_cli_evaluate_prints_metrics_and_writes_json_and_markdown(tmp_path, binary):
    from spinerisk.cli import app

    model, cohort = binary
    model.save(tmp_path / "m.srb")
    # every record, as binary_report evaluated: the same C-statistic, so the same
    # pmsampsize inputs, whose answer (a second of simulation) is remembered in-process
    cohort.to_csv(tmp_path / "c.csv", index=False)
    args = ["evaluate", "--model", str(tmp_path / "m.srb"), "--input", str(tmp_path / "c.csv")]
    unstated = CliRunner().invoke(app, [*args, "--bootstrap", "5"])
    assert unstated.exit_code == 2 and "--validation" in unstated.output
    args += ["--validation", "internal"]  # the model was fitted on these records
    out = [
        "--bootstrap",
        "5",
        "--json",
        str(tmp_path / "r.json"),
        "--markdown",
        str(tmp_path / "r.md"),
    ]
    result = CliRunner().invoke(app, [*args, *out, "--synthetic"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC DATA" in result.output and "AUROC (C-statistic)" in result.output
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["synthetic"] is True and saved["settings"]["n_bootstrap"] == 5
    assert saved["validation"] == "internal"
    assert {r["metric"] for r in saved["metrics"]} >= {"auroc", "oe_ratio"}
    assert "| AUROC (C-statistic) |" in (tmp_path / "r.md").read_text()

    missing = CliRunner().invoke(app, [*args[:3], "--input", "no.csv", "--validation", "external"])
    assert missing.exit_code == 2 and "No records file" in missing.output
    (tmp_path / "junk.srb").write_bytes(b"not a zip")
    junk = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "junk.srb"), *args[3:]])
    assert junk.exit_code == 2 and "cannot load model" in junk.output


def test_sample_size_leaves_the_global_random_stream_alone():
    from spinerisk.evaluation import sample_size_adequacy

    np.random.seed(1)
    expected = np.random.random(3)
    np.random.seed(1)
    out = sample_size_adequacy(
        kind="binary",
        n_available=1000,
        parameters=10,
        event=np.r_[np.ones(150), np.zeros(850)].astype(bool),
        cstatistic=0.75,
    )
    assert out["required_n"] > 0  # pmsampsize ran (it reseeds numpy internally)
    np.testing.assert_array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("days", [30.0, 300.0])
def test_survival_sample_size_says_why_when_events_are_too_frequent(days):
    """Riley's maximum R-squared (exponential null, years) is not positive from e events
    per person-year: a note says so instead of a meaningless pmsampsize answer."""
    from spinerisk.evaluation import sample_size_adequacy

    event = np.r_[np.ones(90), np.zeros(10)].astype(bool)  # 90 events in 100 records
    time = np.full(100, days)  # 30 days each: 11 events per person-year; 300 days: 1.1
    out = sample_size_adequacy(
        kind="survival", n_available=100, parameters=5, event=event, time=time, horizon=20.0
    )
    if days == 30.0:
        assert out.get("required_n") is None
        assert "fewer than e (2.72) events per person-year" in out["note"]
        assert "10.96 events per person-year" in out["note"]
    else:
        assert out["required_n"] > 0 and "note" not in out


def test_region_subgroup_uses_the_level_then_the_recorded_region():
    from spinerisk.evaluation._evaluate import _subgroup_values

    data = pd.DataFrame(
        {"level": ["T12", "L4", None, "T12"], "region": [None, None, "thoracic", "tlj"]}
    )
    assert _subgroup_values(data, "region", sr.SPINE_SCHEMA).tolist() == [
        "tlj",
        "lumbar",
        "thoracic",
        "tlj",
    ]


# -- decision thresholds (issue 15.6) --------------------------------------------------------
def test_operating_characteristics_match_counts_and_net_benefit():
    from spinerisk.evaluation._threshold import operating_characteristics

    data = _toy(3000, seed=2)
    y, p = data.event, data.risk[:, 0]
    cutoffs = np.array([0.2, 0.3, 0.45])
    table = operating_characteristics(data, 182.62, cutoffs)
    for c, row in zip(cutoffs, table.itertuples(), strict=True):
        treated = p >= c
        tp, fp = (treated & y).sum(), (treated & ~y).sum()
        tn, fn = (~treated & ~y).sum(), (~treated & y).sum()
        assert row.sensitivity == pytest.approx(tp / (tp + fn))
        assert row.specificity == pytest.approx(tn / (tn + fp))
        assert row.ppv == pytest.approx(tp / (tp + fp))
        assert row.npv == pytest.approx(tn / (tn + fn))
    expected = m.net_benefit(y, p, cutoffs)["model"].to_numpy()
    np.testing.assert_allclose(table["net_benefit"], expected)
    # without censoring before the horizon, the Aalen-Johansen version is the same table
    codes = np.where(y, 1, 2)
    time = np.where(y, 100.0, 50.0 + 400.0 * (codes == 2))
    tte = EvalData("competing", codes, time, p[:, None], (182.62,))
    pd.testing.assert_frame_equal(operating_characteristics(tte, 182.62, cutoffs), table)


def test_net_benefit_picks_the_exchange_rate_for_calibrated_risks():
    from spinerisk.evaluation._threshold import _choose

    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.8, 20_000)
    data = EvalData("binary", rng.random(20_000) < p, None, p[:, None], (182.62,))
    assert _choose(data, 182.62, "net_benefit", 0.2) == pytest.approx(0.2, abs=0.03)
    # risks twice too high: treating above 0.2 on the model's scale is treating above 0.1
    doubled = EvalData("binary", data.event, None, np.clip(2 * p, 0, 1)[:, None], (182.62,))
    assert _choose(doubled, 182.62, "net_benefit", 0.2) == pytest.approx(0.4, abs=0.06)


def test_choose_threshold_reaches_the_target_with_cis(binary):
    from spinerisk.evaluation import choose_threshold
    from spinerisk.evaluation._threshold import operating_characteristics

    model, cohort = binary
    choice = choose_threshold(model, cohort, method="sensitivity", target=0.85, n_bootstrap=30)
    table = choice.table.set_index("metric")
    assert table.loc["sensitivity", "estimate"] >= 0.85
    assert table.loc["threshold", "estimate"] == choice.threshold
    assert table.loc["threshold", "lower"] <= choice.threshold <= table.loc["threshold", "upper"]
    assert (table["lower"] <= table["upper"]).all()
    # the most specific cut-off that reaches the target: a little higher falls short
    eligible = _eligible(model, cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risk = model.predict_risk(eligible).drop(columns="warnings").to_numpy(float)
    y = eligible["collapse_6m"].astype(bool).to_numpy()
    evd = EvalData("binary", y, None, risk, tuple(model.horizons_))
    above = operating_characteristics(evd, model.horizons_[0], np.array([choice.threshold + 0.01]))
    assert above["sensitivity"].iloc[0] < 0.85
    spec = choose_threshold(model, cohort, method="specificity", target=0.8, n_bootstrap=5)
    assert spec.table.set_index("metric").loc["specificity", "estimate"] >= 0.8
    nb = choose_threshold(model, cohort, target=0.3, n_bootstrap=5)
    assert {"net_benefit_at_target", "net_benefit_treat_all"} <= set(nb.table["metric"])
    json.dumps(nb.to_dict())
    assert "ThresholdChoice(method='net_benefit'" in repr(nb)
    with pytest.raises(ValueError, match="target must be a number strictly between 0 and 1"):
        choose_threshold(model, cohort, method="sensitivity", target=90)
