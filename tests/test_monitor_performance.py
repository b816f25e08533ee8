"""Performance over time: calibration decay on shifted cohorts, censoring (spinerisk.monitor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import spinerisk as sr
from spinerisk.endpoints import get_endpoint
from spinerisk.monitor import performance_over_time
from spinerisk.monitor._performance import PERFORMANCE_COLUMNS, calibration_metrics


@pytest.fixture(scope="module")
def dev():
    return sr.make_spine_cohort(1500, seed=0)  # SYNTHETIC development cohort


@pytest.fixture(scope="module")
def model(dev):
    return sr.RiskModel(endpoint="nonunion", backend="linear").fit(dev)


def _overall(perf, horizon=None):
    rows = perf[perf["period"] == "all"]
    if horizon is not None:
        rows = rows[rows["horizon_days"] == horizon]
    return rows.iloc[0]


# -- calibration decay on the generator's shift scenarios ------------------------------------
def test_calibration_holds_unshifted_and_decays_under_centre_effects(model, dev):
    """Intercepts carried over from development, so shifted cohorts keep their own rates."""
    kept = dev.attrs["intercepts"]
    same = sr.make_spine_cohort(2000, seed=11, intercepts=kept)
    centres = sr.make_spine_cohort(
        2000, seed=11, intercepts=kept, centre_effect_sd=1.0, n_centres=30
    )
    western = sr.make_spine_cohort(2000, seed=11, intercepts=kept, profile="western")
    figures = {}
    for name, cohort in (("unshifted", same), ("centre effects", centres), ("western", western)):
        row = _overall(performance_over_time(model, cohort, n_bootstrap=100))
        figures[name] = row
        print(
            f"{name}: O/E {row['oe']:.2f} ({row['oe_low']:.2f}-{row['oe_high']:.2f}), "
            f"slope {row['slope']:.2f} ({row['slope_low']:.2f}-{row['slope_high']:.2f}), "
            f"AUROC {row['discrimination']:.3f}"
        )
    ok = figures["unshifted"]
    assert ok["oe_low"] < 1 < ok["oe_high"] and abs(ok["oe"] - 1) < 0.12
    bad = figures["centre effects"]
    # unmodelled centre intercepts: more nonunion than predicted, predictions too extreme
    assert bad["oe_low"] > 1 and bad["oe"] > 1.1
    assert bad["slope"] < ok["slope"] - 0.05 and bad["discrimination"] < ok["discrimination"]
    assert np.isfinite(figures["western"][["oe", "slope", "discrimination"]].astype(float)).all()


def test_rows_per_period_add_up_to_the_overall_row(model, dev):
    new = sr.make_spine_cohort(800, seed=12, intercepts=dev.attrs["intercepts"])
    perf = performance_over_time(model, new, period="month", n_bootstrap=0)
    assert list(perf.columns) == PERFORMANCE_COLUMNS
    months = perf[perf["period"] != "all"]
    assert months["period"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert months["n"].sum() == _overall(perf)["n"]
    eligible = get_endpoint("nonunion").eligible(sr.validate(new)).sum()
    assert _overall(perf)["n"] == eligible
    # small months get no metrics rather than noise; no bootstrap means no intervals
    small = months[months["n"] < 10]
    assert small["oe"].isna().all()
    assert perf["oe_low"].isna().all()
    quarters = performance_over_time(model, new, n_bootstrap=0)
    assert quarters["period"].iloc[0] == "2016Q1"


def test_a_missing_date_is_reported_with_the_callers_row_and_id(model, dev):
    new = sr.make_spine_cohort(200, seed=13, intercepts=dev.attrs["intercepts"])
    eligible = np.flatnonzero(get_endpoint("nonunion").eligible(sr.validate(new)).to_numpy())
    row = int(eligible[eligible > 20][0])  # not the first eligible record
    new.loc[new.index[row], "index_date"] = pd.NaT
    pid = new["patient_id"].iloc[row]
    with pytest.raises(ValueError, match=rf"row {row} \(patient_id='{pid}', index_date=NaT\)"):
        performance_over_time(model, new, n_bootstrap=0)


def test_overall_metrics_match_scikit_learn(model, dev):
    new = sr.make_spine_cohort(1000, seed=13, intercepts=dev.attrs["intercepts"])
    perf = performance_over_time(model, new, n_bootstrap=0)
    checked = sr.validate(new)
    data = checked[get_endpoint("nonunion").eligible(checked)]
    with pytest.warns(sr.DataQualityWarning):  # a few values outside the training range
        p = model.predict_risk(data)["risk_183d"].to_numpy()
    y = data["nonunion"].astype(bool).to_numpy()
    row = _overall(perf)
    assert row["discrimination"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert row["oe"] == pytest.approx(y.mean() / p.mean())
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit(p)[:, None], y)
    assert row["slope"] == pytest.approx(lr.coef_[0, 0], abs=1e-4)
    # and with the project's unweighted metric functions
    from spinerisk import metrics

    assert row["slope"] == pytest.approx(metrics.calibration_slope(y, p), abs=1e-5)
    assert row["citl"] == pytest.approx(metrics.calibration_intercept(y, p), abs=1e-5)
    assert row["oe"] == pytest.approx(metrics.observed_expected_ratio(y, p))
    assert row["discrimination"] == pytest.approx(metrics.roc_auc(y, p))


def test_weighted_metrics_match_scikit_learn_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")  # dev dependency: a cross-check only
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.6, 400).round(2)  # rounded: ties in the AUROC
    y = (rng.random(400) < np.clip(1.3 * p, 0, 1)).astype(float)
    w = rng.uniform(0.5, 2.0, 400)
    got = {k: v[0] for k, v in calibration_metrics(p, y, np.vstack([w, w])).items()}
    assert got["discrimination"] == pytest.approx(roc_auc_score(y, p, sample_weight=w))
    assert got["oe"] == pytest.approx((w * y).sum() / (w * p).sum())
    offset = sm.GLM(y, np.ones((400, 1)), family=sm.families.Binomial(), offset=logit(p),
                    freq_weights=w).fit()  # fmt: skip
    assert got["citl"] == pytest.approx(offset.params[0], abs=1e-6)
    slope = sm.GLM(y, sm.add_constant(logit(p)), family=sm.families.Binomial(),
                   freq_weights=w).fit()  # fmt: skip
    assert got["slope"] == pytest.approx(slope.params[1], abs=1e-6)


# -- time-to-event: censoring -----------------------------------------------------------------
class OracleModel(BaseEstimator):
    """Test double predicting the generator's true fracture cumulative incidence by id.

    With the true risks as predictions, O/E must be 1 up to sampling error; any bias comes
    from how censoring is handled, which is what the test measures.
    """

    endpoint_ = get_endpoint("future_fracture")
    horizons_ = (365.25, 730.5)
    schema = None
    schema_ = sr.SPINE_SCHEMA
    estimator_ = "oracle"

    def __init__(self, oracle: pd.DataFrame) -> None:
        self.oracle = oracle
        self.risk = oracle.set_index("patient_id")[["cif_fx_365", "cif_fx_730"]]

    def fit(self, X=None, y=None):  # pragma: no cover - sklearn's check_is_fitted wants it
        return self

    def predict_risk(self, records: pd.DataFrame) -> pd.DataFrame:
        out = self.risk.loc[records["patient_id"].to_numpy()]
        return out.set_axis(["risk_365d", "risk_730d"], axis=1)


@pytest.fixture(scope="module")
def censored():
    """A batch where ~40% are censored before 1 year and ~80% before 2 (SYNTHETIC)."""
    cohort, oracle = sr.make_spine_cohort(4000, seed=31, return_oracle=True)
    rng = np.random.default_rng(7)
    c = rng.uniform(0.0, 2.5 * 365.25, len(cohort))  # independent of the outcome
    t, e = cohort["fx_time_days"].to_numpy(), cohort["fx_event"].to_numpy(dtype=int)
    lost = c < t
    cohort["fx_time_days"] = np.where(lost, c, t)
    cohort["fx_event"] = pd.array(np.where(lost, 0, e), dtype="Int64")
    death = cohort["death_time_days"].to_numpy()
    cohort["death_time_days"] = np.where(death <= cohort["fx_time_days"].to_numpy() + 1e-9,
                                         death, np.nan)  # fmt: skip
    cohort.loc[cohort["fx_event"] == 2, "death_time_days"] = cohort["fx_time_days"]
    return cohort, OracleModel(oracle)


def test_censoring_before_the_horizon_does_not_bias_observed_over_expected(censored):
    cohort, oracle_model = censored
    ipcw = performance_over_time(oracle_model, cohort, n_bootstrap=100)
    naive = performance_over_time(oracle_model, cohort, n_bootstrap=0, censoring="exclude")
    for h in oracle_model.horizons_:
        good, bad = _overall(ipcw, h), _overall(naive, h)
        n_all = good["n"] + good["n_excluded"]
        print(
            f"{h:g} days: O/E IPCW {good['oe']:.3f} ({good['oe_low']:.3f}-{good['oe_high']:.3f})"
            f", excluding censored {bad['oe']:.3f}; {good['n_excluded']} of {n_all} censored"
        )
        assert good["n_excluded"] > 0.3 * len(cohort)  # heavy censoring really happened
        assert good["oe_low"] < 1 < good["oe_high"] and abs(good["oe"] - 1) < 0.08
        assert bad["oe"] > 1.15  # dropping the censored over-estimates the risk
        assert good["n"] == bad["n"] and good["events"] == bad["events"]
        # agrees with the Aalen-Johansen estimate over the whole batch (another estimator;
        # IPCW here is per quarter, so the two differ slightly)
        from spinerisk import metrics

        risk = oracle_model.predict_risk(cohort)[f"risk_{round(h):d}d"]
        aj = metrics.observed_expected_at_horizon(
            cohort["fx_time_days"], cohort["fx_event"].astype(int), risk, h, cause=1
        )
        assert good["oe"] == pytest.approx(aj, abs=0.03)


def test_competing_death_before_the_horizon_counts_as_no_fracture(censored):
    cohort, oracle_model = censored
    early_death = (cohort["fx_event"] == 2) & (cohort["fx_time_days"] < 365.25)
    assert early_death.sum() > 20
    perf = performance_over_time(oracle_model, cohort, n_bootstrap=0)
    row = _overall(perf, 365.25)
    still = (cohort["fx_time_days"] >= 365.25) | (
        (cohort["fx_event"] != 0) & (cohort["fx_time_days"] <= 365.25)
    )
    assert row["n"] == still.sum()  # early deaths are in, as non-events
    assert row["events"] == ((cohort["fx_event"] == 1) & (cohort["fx_time_days"] <= 365.25)).sum()


def test_patients_not_yet_followed_to_the_horizon_do_not_count(censored):
    cohort, oracle_model = censored
    recent = cohort.copy()
    last = pd.to_datetime(recent["index_date"]).dt.to_period("Q").astype(str) == "2023Q4"
    recent.loc[last, "fx_time_days"] = 100.0  # followed 100 days, no event yet
    recent.loc[last, "fx_event"] = 0
    recent.loc[last, "death_time_days"] = np.nan
    perf = performance_over_time(oracle_model, recent, n_bootstrap=0)
    row = perf[(perf["period"] == "2023Q4") & (perf["horizon_days"] == 365.25)].iloc[0]
    assert row["n"] == 0 and row["n_excluded"] == last.sum() and np.isnan(row["oe"])


def test_a_period_followed_short_of_the_horizon_observes_no_risk_by_it(censored):
    """A quarter whose patients are all followed 100 days or less: its early fractures
    and deaths are not its risk by one year (counting them alone gave the share of events
    that were fractures). Its metrics are missing there, as evaluate gives n/a, and its
    patients are not in the "all" row; patients censored exactly at the horizon are not
    followed beyond it and do not count either (as in the evaluation's weights)."""
    cohort, oracle_model = censored
    recent = cohort.copy()
    last = pd.to_datetime(recent["index_date"]).dt.to_period("Q").astype(str) == "2023Q4"
    short = last & (recent["fx_time_days"] > 100)
    recent.loc[short, "fx_time_days"] = 100.0
    recent.loc[short, "fx_event"] = 0
    recent.loc[short, "death_time_days"] = np.nan
    assert (last & (recent["fx_event"] != 0)).sum() >= 3  # early events are still there
    perf = performance_over_time(oracle_model, recent, n_bootstrap=0)
    row = perf[(perf["period"] == "2023Q4") & (perf["horizon_days"] == 365.25)].iloc[0]
    assert row["n"] == 0 and row["n_excluded"] == last.sum() and np.isnan(row["oe"])
    without = performance_over_time(oracle_model, recent[~last], n_bootstrap=0)
    for h in oracle_model.horizons_:
        got, expected = _overall(perf, h), _overall(without, h)
        assert (got["n"], got["events"]) == (expected["n"], expected["events"])
        assert got["oe"] == pytest.approx(expected["oe"], rel=1e-12)
    at_horizon = recent.assign(fx_time_days=recent["fx_time_days"].where(~last, 365.25))
    at_horizon.loc[last, ["fx_event", "death_time_days"]] = [0, np.nan]
    perf = performance_over_time(oracle_model, at_horizon, n_bootstrap=0)
    row = perf[(perf["period"] == "2023Q4") & (perf["horizon_days"] == 365.25)].iloc[0]
    assert row["n"] == 0 and np.isnan(row["oe"])


def test_bad_input_is_named(model, dev):
    new = sr.make_spine_cohort(100, seed=14)
    with pytest.raises(ValueError, match="period must be 'quarter' or 'month'"):
        performance_over_time(model, new, period="week")
    with pytest.raises(ValueError, match="no date_field='visit_date' column") as raised:
        performance_over_time(model, new, date_field="visit_date")
    assert "The schema's date fields: index_date" in str(raised.value)  # the fix, named
    with pytest.raises(ValueError, match="Give the labelled records their index_date column"):
        performance_over_time(model, new.drop(columns="index_date"))
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 0"):
        performance_over_time(model, new, n_bootstrap=-1)


def test_calibration_reasons_name_the_horizon_in_the_endpoints_unit():
    from spinerisk.monitor._report import _performance_level

    perf = pd.DataFrame(
        {"period": ["all"], "horizon_days": [5 * 365.25], "oe": [1.3], "oe_low": [1.1],
         "oe_high": [1.5], "slope": [1.0], "slope_low": [0.8], "slope_high": [1.2]}
    )  # fmt: skip
    level, reasons = _performance_level(perf, 0.8, 1.25, "years")
    assert level == 2 and reasons == [
        "alert: observed/expected 1.30 (95% CI 1.10 to 1.50) at 5y"
    ], reasons
    _, in_days = _performance_level(perf, 0.8, 1.25)
    assert in_days[0].endswith("at 1826d")
