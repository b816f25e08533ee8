"""spinerisk.metrics: cross-checks against sklearn, scikit-survival, lifelines and statsmodels,
known-answer properties on simulated data, and every bad-input path."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from spinerisk import metrics as m
from spinerisk.exceptions import DataQualityWarning

Z = 1.959963984540054


# ---------------------------------------------------------------------------- data helpers
def _binary(n: int = 400, seed: int = 0, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.9, n)
    if ties:
        p = np.round(p, 1).clip(0.05, 0.95)
    return (rng.random(n) < p).astype(int), p


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from the predicted probabilities themselves (perfect calibration)."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-1.0, 1.0, n))
    return (rng.random(n) < p).astype(int), p


def _survival(
    n: int = 300, seed: int = 0, censor: bool = True, ties: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential event times whose hazard rises with the risk score, uniform censoring."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    t_event = rng.exponential(700.0 * np.exp(-0.8 * score))
    t_cens = rng.uniform(200.0, 2500.0, n) if censor else np.full(n, np.inf)
    time = np.minimum(t_event, t_cens)
    event = t_event <= t_cens
    if ties:
        time = np.ceil(time / 30.0) * 30.0
    return time, event, score


def _competing(
    n: int = 300, seed: int = 0, censor: bool = True, ties: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fracture (1) and death (2) competing; the score raises both hazards."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    t1 = rng.exponential(900.0 * np.exp(-0.9 * score))
    t2 = rng.exponential(1500.0 * np.exp(-0.4 * score))
    tc = rng.uniform(200.0, 2500.0, n) if censor else np.full(n, np.inf)
    time = np.minimum.reduce([t1, t2, tc])
    event = np.select([time == t1, time == t2], [1, 2], 0)
    if ties:
        time = np.ceil(time / 30.0) * 30.0
    return time, event, score


def _aj_sksurv(time: np.ndarray, event: np.ndarray, horizon: float, cause: int = 1) -> float:
    """Aalen-Johansen cumulative incidence at ``horizon`` from scikit-survival (no jitter)."""
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    times, cif = cumulative_incidence_competing_risks(event, time)
    return float(cif[cause][np.searchsorted(times, horizon, side="right") - 1])


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = (k + Z**2 / 2) / (n + Z**2)
    half = Z / (n + Z**2) * np.sqrt(k * (n - k) / n + Z**2 / 4)
    return centre - half, centre + half


# ---------------------------------------------------------------------------- binary
def test_binary_scores_match_sklearn() -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y, p = _binary(ties=True)
    assert m.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    prev = y.mean()
    expected = 1 - brier_score_loss(y, p) / (prev * (1 - prev))
    assert m.scaled_brier_score(y, p) == pytest.approx(expected, abs=1e-12)
    # bool outcomes and pandas input are accepted, and scalars are Python floats
    value = m.roc_auc(pd.Series(y.astype(bool)), pd.Series(p))
    assert type(value) is float and value == pytest.approx(roc_auc_score(y, p))


def test_calibration_slope_and_intercept_solve_their_logistic_models() -> None:
    from sklearn.linear_model import LogisticRegression

    y, p = _binary(n=500, seed=3)
    lp = logit(p)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(lp[:, None], y)
    assert m.calibration_slope(y, p) == pytest.approx(ref.coef_[0, 0], abs=1e-4)
    a = m.calibration_intercept(y, p)
    # the maximum-likelihood intercept with logit(p) as offset solves sum(y) = sum(expit(a + lp))
    assert np.sum(expit(a + lp)) == pytest.approx(y.sum(), rel=1e-6)
    assert a != pytest.approx(0.0, abs=1e-3)  # the fixture is not calibrated-in-the-large


def test_perfectly_calibrated_predictions_score_as_calibrated() -> None:
    y, p = _calibrated(20_000, seed=1)
    assert m.calibration_slope(y, p) == pytest.approx(1.0, abs=0.06)
    assert m.calibration_intercept(y, p) == pytest.approx(0.0, abs=0.04)
    assert m.observed_expected_ratio(y, p) == pytest.approx(1.0, abs=0.04)
    assert m.expected_calibration_error(y, p) < 0.015


@pytest.mark.parametrize(
    ("transform", "check"),
    [
        (lambda p: p**2, lambda s: s < 0.8),  # squared probabilities: too extreme
        (lambda p: expit(2 * logit(p)), lambda s: abs(s - 0.5) < 0.05),  # over-confident
        (lambda p: expit(0.5 * logit(p)), lambda s: abs(s - 2.0) < 0.2),  # under-confident
    ],
)
def test_miscalibration_moves_the_slope(transform, check) -> None:
    y, p = _calibrated(20_000, seed=2)
    q = transform(p)
    assert check(m.calibration_slope(y, q))
    assert m.expected_calibration_error(y, q) > m.expected_calibration_error(y, p)


def test_systematic_under_prediction_shows_in_the_large() -> None:
    y, p = _calibrated(20_000, seed=4)
    assert m.calibration_intercept(y, p / 2) > 0.5
    assert m.observed_expected_ratio(y, p / 2) == pytest.approx(2.0, rel=0.05)


def test_expected_calibration_error_by_hand() -> None:
    # bins {0.1, 0.3} and {0.6, 0.8}: |0 - 0.2| and |1 - 0.7|, each weighing one half
    assert m.expected_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], n_bins=2) == (
        pytest.approx(0.25)
    )


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_calibration_curve_matches_sklearn_with_wilson_intervals(strategy, ties) -> None:
    from sklearn.calibration import calibration_curve

    y, p = _binary(n=500, seed=5, ties=ties)  # ties: predictions on the bin edges
    table = m.calibration_curve(y, p, n_bins=8, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
    assert list(table.columns) == ["bin", "n", "mean_predicted", "observed", "lower", "upper"]
    np.testing.assert_allclose(table["observed"], prob_true)
    np.testing.assert_allclose(table["mean_predicted"], prob_pred)
    assert table["n"].sum() == len(y)
    lower, upper = _wilson(table["observed"] * table["n"], table["n"].astype(float))
    np.testing.assert_allclose(table["lower"], lower, atol=1e-10)
    np.testing.assert_allclose(table["upper"], upper, atol=1e-10)
    # ECE is the size-weighted gap of the quantile curve
    if strategy == "quantile":
        gap = np.abs(table["observed"] - table["mean_predicted"])
        ece = float(np.sum(table["n"] * gap) / len(y))
        assert m.expected_calibration_error(y, p, n_bins=8) == pytest.approx(ece)


def test_smoothed_calibration_tracks_the_truth() -> None:
    y, p = _calibrated(5_000, seed=6)
    curve = m.smoothed_calibration(y, p)
    assert list(curve.columns) == ["predicted", "observed"]
    assert len(curve) == 101 and curve["observed"].between(0, 1).all()
    inner = curve["predicted"].between(0.1, 0.5)
    np.testing.assert_allclose(
        curve.loc[inner, "observed"], curve.loc[inner, "predicted"], atol=0.05
    )
    outside = m.smoothed_calibration(y, p, grid=[p.min() / 2, p.max() + 0.01])
    assert outside["observed"].isna().all()  # no extrapolation beyond the predictions
    halved = m.smoothed_calibration(y, np.clip(2 * p, 0, 1), grid=[0.2, 0.4, 0.6])
    np.testing.assert_allclose(halved["observed"], [0.1, 0.2, 0.3], atol=0.05)


def test_net_benefit_treat_all_treat_none_and_brute_force() -> None:
    y, p = _binary(n=300, seed=7, ties=True)
    thresholds = np.array([0.05, 0.1, 0.3, 0.5, 0.7, 0.95])  # several equal some p exactly
    curve = m.net_benefit(y, p, thresholds)
    prev = y.mean()
    odds = thresholds / (1 - thresholds)
    np.testing.assert_allclose(curve["treat_all"], prev - (1 - prev) * odds)
    assert (curve["treat_none"] == 0).all()
    treated = p[None, :] >= thresholds[:, None]
    tp = (treated & (y == 1)).sum(axis=1) / len(y)
    fp = (treated & (y == 0)).sum(axis=1) / len(y)
    np.testing.assert_allclose(curve["model"], tp - fp * odds)
    default = m.net_benefit(y, p)
    np.testing.assert_allclose(default["threshold"], np.arange(1, 100) / 100)


def test_perfect_predictions_have_net_benefit_equal_to_prevalence() -> None:
    y, _ = _binary(n=300, seed=8)
    p = np.where(y == 1, 0.99, 0.01)
    curve = m.net_benefit(y, p, np.arange(2, 99) / 100)
    np.testing.assert_allclose(curve["model"], y.mean())


# ---------------------------------------------------------------------------- discrimination
@pytest.mark.parametrize("ties", [False, True])
def test_harrell_c_matches_sksurv_and_lifelines(ties) -> None:
    from lifelines.utils import concordance_index
    from sksurv.metrics import concordance_index_censored

    time, event, score = _survival(seed=9, ties=ties)
    risk = np.round(score, 1) if ties else score
    c = m.harrell_c(time, event, risk)
    assert type(c) is float
    assert c == pytest.approx(concordance_index_censored(event, time, risk)[0], abs=1e-12)
    assert c == pytest.approx(concordance_index(time, -risk, event), abs=1e-12)
    assert c > 0.6  # the score drives the hazard
    assert m.harrell_c(time, event, -risk) == pytest.approx(1 - c, abs=1e-12)


def test_uno_c_uses_the_training_censoring_and_equals_harrell_without_censoring() -> None:
    from sksurv.metrics import concordance_index_ipcw
    from sksurv.util import Surv

    tr_time, tr_event, _ = _survival(n=400, seed=10)
    time, event, score = _survival(n=200, seed=11)
    time = np.minimum(time, tr_time.max() - 1)
    expected = concordance_index_ipcw(
        Surv.from_arrays(tr_event, tr_time), Surv.from_arrays(event, time), score, tau=1500.0
    )[0]
    assert m.uno_c(tr_time, tr_event, time, event, score, tau=1500.0) == pytest.approx(expected)
    u_time, u_event, u_score = _survival(n=200, seed=12, censor=False)
    assert m.uno_c(u_time, u_event, u_time, u_event, u_score) == pytest.approx(
        m.harrell_c(u_time, u_event, u_score)
    )


def test_time_dependent_auc_without_censoring_is_the_auc_of_event_by_horizon() -> None:
    from sklearn.metrics import roc_auc_score

    time, event, score = _survival(n=300, seed=13, censor=False)
    horizons = np.array([200.0, 500.0, 900.0])
    auc = m.time_dependent_auc(time, event, time, event, score, horizons)
    expected = [roc_auc_score(time <= h, score) for h in horizons]
    np.testing.assert_allclose(auc, expected, atol=1e-10)
    per_horizon = np.column_stack([score, -score, score])
    auc2 = m.time_dependent_auc(time, event, time, event, per_horizon, horizons)
    np.testing.assert_allclose(auc2, [expected[0], 1 - expected[1], expected[2]], atol=1e-10)


def test_ipcw_metrics_take_censoring_from_the_training_cohort() -> None:
    from sksurv.metrics import cumulative_dynamic_auc, integrated_brier_score
    from sksurv.util import Surv

    tr_time, tr_event, _ = _survival(n=400, seed=24)
    time, event, score = _survival(n=200, seed=25)
    time = np.minimum(time, tr_time.max() - 1)
    train, test = Surv.from_arrays(tr_event, tr_time), Surv.from_arrays(event, time)
    horizons = np.array([300.0, 700.0, 1200.0])
    auc = m.time_dependent_auc(tr_time, tr_event, time, event, score, horizons)
    np.testing.assert_allclose(auc, cumulative_dynamic_auc(train, test, score, horizons)[0])
    surv = np.exp(-np.outer(np.exp(0.8 * score), horizons) / 700.0)
    ibs = m.integrated_brier_score(tr_time, tr_event, time, event, surv, horizons)
    assert ibs == pytest.approx(integrated_brier_score(train, test, surv, horizons))
    swapped = cumulative_dynamic_auc(test, train[:200], score, horizons)[0]
    assert not np.allclose(auc, swapped)  # the argument order matters on these data


def test_integrated_brier_score_without_censoring_by_hand() -> None:
    time, event, _ = _survival(n=300, seed=14, censor=False)
    times = np.array([100.0, 300.0, 600.0, 1000.0])
    surv = np.tile([0.9, 0.7, 0.5, 0.3], (len(time), 1))
    brier = ((time[:, None] > times[None, :]) - surv) ** 2
    expected = np.trapezoid(brier.mean(axis=0), times) / (times[-1] - times[0])
    ibs = m.integrated_brier_score(time, event, time, event, surv, times)
    assert ibs == pytest.approx(expected, rel=1e-10)


def _wolbers_brute_force(time, event, risk, cause=1, horizon=np.inf) -> float:
    conc = pairs = 0.0
    for i in range(len(time)):
        if event[i] != cause or time[i] > horizon:
            continue
        for j in range(len(time)):
            if j == i:
                continue
            later = time[j] > time[i] or (time[j] == time[i] and event[j] == 0)
            competing = event[j] not in (0, cause)
            if later or competing:
                pairs += 1
                conc += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return conc / pairs


@pytest.mark.parametrize("horizon", [None, 400.0])
def test_competing_c_matches_a_brute_force_wolbers_index(horizon) -> None:
    time, event, score = _competing(n=120, seed=15, ties=True)
    risk = np.round(score, 1)
    c = m.competing_c(time, event, risk, cause=1, horizon=horizon)
    assert type(c) is float
    kwargs = {} if horizon is None else {"horizon": horizon}
    assert c == pytest.approx(_wolbers_brute_force(time, event, risk, **kwargs), abs=1e-12)
    c2 = m.competing_c(time, event, risk, cause=2, horizon=horizon)
    assert c2 == pytest.approx(_wolbers_brute_force(time, event, risk, cause=2, **kwargs))


def test_competing_c_equals_cause_specific_c_without_competing_events() -> None:
    from sksurv.metrics import concordance_index_censored

    time, event, score = _survival(seed=16, ties=True)
    codes = event.astype(int)
    risk = np.round(score, 1)
    cs = m.cause_specific_c(time, codes, risk)
    assert m.competing_c(time, codes, risk) == pytest.approx(cs, abs=1e-12)
    assert cs == pytest.approx(concordance_index_censored(event, time, risk)[0], abs=1e-12)


def test_cause_specific_c_censors_other_causes_and_competing_c_differs() -> None:
    time, event, score = _competing(seed=17)
    cs = m.cause_specific_c(time, event, score, cause=1)
    assert cs == pytest.approx(m.harrell_c(time, event == 1, score))
    # the score also raises death: under Wolbers' C those who died early are controls
    # with high risk, so it is lower than the cause-specific C here
    assert m.competing_c(time, event, score, cause=1) < cs


# ---------------------------------------------------------------------------- horizon
def test_survival_calibration_without_censoring_is_the_binary_calibration_curve() -> None:
    time, event, score = _survival(n=400, seed=18, censor=False)
    horizon = 365.25
    risk = expit(score - 1.0)
    table = m.survival_calibration(time, event, risk, horizon, n_bins=5)
    binary = m.calibration_curve(event & (time <= horizon), risk, n_bins=5)
    pd.testing.assert_frame_equal(
        table[["bin", "n", "mean_predicted", "observed"]],
        binary[["bin", "n", "mean_predicted", "observed"]],
        check_dtype=False,
    )
    assert ((table["lower"] <= table["observed"]) & (table["observed"] <= table["upper"])).all()


def test_survival_calibration_matches_sksurv_kaplan_meier_and_its_interval() -> None:
    from sksurv.nonparametric import kaplan_meier_estimator

    time, event, score = _survival(n=400, seed=19)
    risk, horizon = expit(score - 1.0), 500.0
    table = m.survival_calibration(time, event, risk, horizon, n_bins=4)
    edges = np.percentile(risk, [25, 50, 75])
    bins = np.searchsorted(edges, risk)
    for b, row in table.iterrows():
        inside = bins == b
        t, s, ci = kaplan_meier_estimator(event[inside], time[inside], conf_type="log-log")
        k = np.searchsorted(t, horizon, side="right") - 1
        assert row["n"] == inside.sum()
        assert row["observed"] == pytest.approx(1 - s[k], abs=1e-10)
        assert row["lower"] == pytest.approx(1 - ci[1, k], abs=1e-6)
        assert row["upper"] == pytest.approx(1 - ci[0, k], abs=1e-6)


def test_cif_calibration_of_a_constant_prediction_is_the_aalen_johansen_estimate() -> None:
    from lifelines import AalenJohansenFitter

    time, event, _ = _competing(n=300, seed=20)
    horizon = 730.5
    table = m.cif_calibration(time, event, np.full(len(time), 0.2), horizon, cause=1)
    assert len(table) == 1 and table.loc[0, "n"] == len(time)
    assert table.loc[0, "mean_predicted"] == pytest.approx(0.2)
    expected = _aj_sksurv(time, event, horizon)
    assert table.loc[0, "observed"] == pytest.approx(expected, abs=1e-10)
    aj = AalenJohansenFitter().fit(time, event, event_of_interest=1)
    assert table.loc[0, "observed"] == pytest.approx(
        aj.cumulative_density_.loc[:horizon].iloc[-1, 0], abs=1e-10
    )
    assert table.loc[0, "lower"] < expected < table.loc[0, "upper"]
    for cause in (1, 2):  # the other cause is competing, not ignored
        cause_table = m.cif_calibration(time, event, np.full(len(time), 0.2), horizon, cause=cause)
        assert cause_table.loc[0, "observed"] == pytest.approx(
            _aj_sksurv(time, event, horizon, cause), abs=1e-10
        )


def test_cif_calibration_with_tied_times_is_deterministic_and_leaves_numpy_alone() -> None:
    time, event, score = _competing(n=300, seed=21, ties=True)
    cif = expit(score - 1.5)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # lifelines' tie warning is handled, not passed on
        first = m.cif_calibration(time, event, cif, 365.25, n_bins=3)
    assert np.array_equal(np.random.get_state()[1], before)
    pd.testing.assert_frame_equal(first, m.cif_calibration(time, event, cif, 365.25, n_bins=3))
    # jittering tied event times does not move the estimate at a horizon between them
    bins = np.searchsorted(np.percentile(cif, [100 / 3, 200 / 3]), cif)
    for b, row in first.iterrows():
        inside = bins == b
        assert row["observed"] == pytest.approx(
            _aj_sksurv(time[inside], event[inside], 365.25), abs=1e-3
        )


def test_horizon_beyond_follow_up_is_flagged() -> None:
    time = np.array([100.0, 200.0, 300.0, 400.0, 150.0, 250.0, 900.0, 1000.0])
    event = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    risk = np.array([0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6])
    with pytest.warns(DataQualityWarning, match=r"not estimable in bin\(s\) \[1\]"):
        table = m.survival_calibration(time, event, risk, 600.0, n_bins=2)
    assert np.isnan(table.loc[0, "observed"]) and np.isfinite(table.loc[1, "observed"])
    with pytest.raises(ValueError, match=r"horizon=2000.0 is beyond the longest follow-up"):
        m.observed_expected_at_horizon(time, event, risk, 2000.0)
    with pytest.raises(ValueError, match=r"horizon=2000.0 is beyond the longest follow-up"):
        m.net_benefit_survival(time, event, risk, 2000.0)
    # an event at the last time ends follow-up with nobody left: the estimate is final
    done = m.observed_expected_at_horizon([100, 200], [1, 1], [0.5, 0.5], 5000.0)
    assert done == pytest.approx(2.0)
    # the step at the horizon counts (right-continuous estimates), with and without causes
    at_100 = m.observed_expected_at_horizon(time, event, risk, 100.0)
    assert at_100 == pytest.approx((1 / 8) / risk.mean())
    at_100_aj = m.observed_expected_at_horizon(time, event, risk, 100.0, cause=1)
    assert at_100_aj == pytest.approx((1 / 8) / risk.mean())
    # before any event the estimate is 0 and its interval is the Wilson one on the bin size
    early = m.survival_calibration(time, event, risk, 50.0, n_bins=1)
    lower, upper = _wilson(np.array([0.0]), np.array([8.0]))
    assert early.loc[0, "observed"] == 0.0 and early.loc[0, "lower"] == pytest.approx(lower[0])
    assert early.loc[0, "upper"] == pytest.approx(upper[0])
    # a horizon before the first time has observed risk 0
    assert m.observed_expected_at_horizon(time, event, risk, 50.0) == 0.0


@pytest.mark.parametrize("cause", [None, 1])
def test_horizon_metrics_without_censoring_reduce_to_binary_ones(cause) -> None:
    if cause is None:
        time, event, score = _survival(n=300, seed=22, censor=False)
        by_horizon = event & (time <= 500.0)
    else:
        time, event, score = _competing(n=300, seed=22, censor=False)
        by_horizon = (event == 1) & (time <= 500.0)
    risk = expit(score - 1.0)
    oe = m.observed_expected_at_horizon(time, event, risk, 500.0, cause=cause)
    assert oe == pytest.approx(m.observed_expected_ratio(by_horizon, risk), rel=1e-10)
    thresholds = np.arange(5, 96, 5) / 100
    survival = m.net_benefit_survival(time, event, risk, 500.0, thresholds, cause=cause)
    binary = m.net_benefit(by_horizon, risk, thresholds)
    pd.testing.assert_frame_equal(survival, binary, atol=1e-10)


def test_net_benefit_survival_treat_all_uses_the_whole_cohort() -> None:
    from lifelines import KaplanMeierFitter

    time, event, score = _survival(n=300, seed=23)
    risk = expit(score - 1.0)
    curve = m.net_benefit_survival(time, event, risk, 500.0, np.arange(5, 100, 5) / 100)
    observed = 1 - KaplanMeierFitter().fit(time, event).survival_function_at_times(500.0).iloc[0]
    t = curve["threshold"].to_numpy()
    np.testing.assert_allclose(curve["treat_all"], observed - (1 - observed) * t / (1 - t))
    assert (curve["treat_none"] == 0).all()
    assert (curve.loc[risk.max() < t, "model"] == 0).all()  # nobody treated
    top = risk >= 0.3
    km_top = KaplanMeierFitter().fit(time[top], event[top]).survival_function_at_times(500.0)
    r, pi = 1 - km_top.iloc[0], top.mean()
    row = curve.loc[np.isclose(t, 0.3)].iloc[0]
    assert row["model"] == pytest.approx(r * pi - (1 - r) * pi * 0.3 / 0.7)


def test_oracle_risks_of_the_synthetic_cohort_are_calibrated() -> None:
    """Synthetic data: the generator's true cumulative incidences should calibrate."""
    import spinerisk as sr

    cohort, oracle = sr.make_spine_cohort(2000, seed=3, return_oracle=True)
    time = cohort["fx_time_days"].to_numpy(float)
    event = cohort["fx_event"].to_numpy(int)
    cif = oracle["cif_fx_730"].to_numpy(float)
    assert m.observed_expected_at_horizon(time, event, cif, 730.5, cause=1) == pytest.approx(
        1.0, abs=0.2
    )
    assert m.competing_c(time, event, cif, horizon=730.5) > 0.6
    table = m.cif_calibration(time, event, cif, 730.5, n_bins=5, ci=False)
    assert table["lower"].isna().all()
    assert np.corrcoef(table["mean_predicted"], table["observed"])[0, 1] > 0.9


# ---------------------------------------------------------------------------- bad inputs
_Y, _P = [0, 1, 0, 1], [0.2, 0.8, 0.3, 0.6]
_T, _E, _R = [100.0, 200.0, 300.0, 400.0], [1, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]
_C = [1, 2, 0, 1]
_BINARY = [m.roc_auc, m.pr_auc, m.brier_score, m.scaled_brier_score, m.calibration_slope,
           m.calibration_intercept, m.observed_expected_ratio, m.expected_calibration_error,
           m.calibration_curve, m.smoothed_calibration, m.net_benefit]  # fmt: skip


@pytest.mark.parametrize("fn", _BINARY, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 0, 2], _P, r"y\[3\]=2 is not 0/1"),
        ([0, 1, 0, np.nan], _P, r"y\[3\]=nan is not 0/1"),
        (pd.array([False, pd.NA, True, False], dtype="boolean"), _P, r"y\[1\] is missing"),
        (_Y, pd.array([0.2, 0.8, pd.NA, 0.6], dtype="Float64"), r"p\[2\]=nan is not finite"),
        (_Y, [0.2, 0.8, 1.5, 0.6], r"p\[2\]=1.5 is outside \[0, 1\]"),
        (_Y, [0.2, -0.1, 0.3, 0.6], r"p\[1\]=-0.1 is outside \[0, 1\]"),
        (_Y, [0.2, np.nan, 0.3, 0.6], r"p\[1\]=nan is not finite"),
        (_Y, [0.2, 0.8, 0.3], r"y has 4 values but p has 3"),
        ([], [], r"y is empty"),
        (_Y, np.ones((4, 2)) / 2, r"p must be 1-dimensional"),
    ],
)
def test_binary_bad_inputs_name_argument_position_and_value(fn, y, p, match) -> None:
    with pytest.raises(ValueError, match=match):
        fn(y, p)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: m.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), r"roc_auc needs records with and"),
        (lambda: m.calibration_slope([0, 0], [0.1, 0.2]), r"calibration_slope needs records"),
        (lambda: m.scaled_brier_score([1, 1], [0.1, 0.2]), r"scaled_brier_score needs"),
        (lambda: m.observed_expected_ratio([0, 1], [0.0, 0.0]), r"every prediction p is 0"),
        (lambda: m.roc_auc(["a", "b"], [0.1, 0.2]), r"y must be 0/1 or bool"),
        (lambda: m.net_benefit(_Y, _P, [0.5, 1.0]), r"thresholds\[1\]=1.0 is outside \(0, 1\)"),
        (lambda: m.net_benefit(_Y, _P, [0.0]), r"thresholds\[0\]=0.0 is outside \(0, 1\)"),
        (lambda: m.calibration_curve(_Y, _P, n_bins=0), r"n_bins must be a positive integer"),
        (lambda: m.expected_calibration_error(_Y, _P, n_bins=2.5), r"got n_bins=2.5"),
        (lambda: m.calibration_curve(_Y, _P, strategy="kmeans"), r"strategy must be 'quantile'"),
        (lambda: m.smoothed_calibration(_Y, _P, frac=0), r"frac must be a number in \(0, 1\]"),
        (lambda: m.smoothed_calibration(_Y, _P, frac=True), r"got frac=True"),
        (lambda: m.smoothed_calibration(_Y, _P, grid=[0.5, 2]), r"grid\[1\]=2.0 is outside"),
    ],
)
def test_binary_bad_options_and_degenerate_data(call, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


_SURVIVAL_CALLS = {
    "harrell_c": lambda t, e, r: m.harrell_c(t, e, r),
    "cause_specific_c": lambda t, e, r: m.cause_specific_c(t, e, r),
    "competing_c": lambda t, e, r: m.competing_c(t, e, r),
    "uno_c": lambda t, e, r: m.uno_c(_T, _E, t, e, r),
    "time_dependent_auc": lambda t, e, r: m.time_dependent_auc(_T, _E, t, e, r, [250.0]),
    "survival_calibration": lambda t, e, r: m.survival_calibration(t, e, r, 365.25),
    "cif_calibration": lambda t, e, r: m.cif_calibration(t, e, r, 365.25),
    "observed_expected_at_horizon": lambda t, e, r: m.observed_expected_at_horizon(t, e, r, 365.25),
    "net_benefit_survival": lambda t, e, r: m.net_benefit_survival(t, e, r, 365.25),
}


@pytest.mark.parametrize("name", list(_SURVIVAL_CALLS))
@pytest.mark.parametrize(
    ("t", "e", "r", "match"),
    [
        ([100.0, 0.0, 300.0, 400.0], _E, _R, r"time\[1\]=0.0 is not positive"),
        ([100.0, -2.0, 300.0, 400.0], _E, _R, r"time\[1\]=-2.0 is not positive"),
        ([100.0, np.inf, 300.0, 400.0], _E, _R, r"time\[1\]=inf is not finite"),
        (_T, [1, 0, -1, 1], _R, r"event\[2\]=-1 is not"),
        (_T, [1, 0, 1.5, 1], _R, r"event\[2\]=1.5 is not"),
        (_T, _E, [0.4, np.nan, 0.2, 0.1], r"(risk|cif)\[1\]=nan is not finite"),
        (_T, _E[:3], _R, r"time has 4 values but event has 3"),
        (_T, _E, _R[:3], r"time has 4 values but (risk|cif) has 3"),
    ],
)
def test_survival_bad_inputs_name_argument_position_and_value(name, t, e, r, match) -> None:
    with pytest.raises(ValueError, match=match):
        _SURVIVAL_CALLS[name](t, e, r)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: m.harrell_c(_T, [0, 0, 0, 0], _R), r"no comparable pairs"),
        (lambda: m.competing_c(_T, [0, 2, 0, 2], _R), r"no event of cause 1"),
        (lambda: m.competing_c(_T, _C, _R, cause=0), r"got cause=0"),
        (lambda: m.competing_c(_T, _C, _R, horizon=-1), r"got horizon=-1"),
        (lambda: m.cause_specific_c(_T, _C, _R, cause=1.5), r"got cause=1.5"),
        (lambda: m.survival_calibration(_T, _E, [0.4, 1.2, 0.2, 0.1], 365.25), r"risk\[1\]=1.2"),
        (lambda: m.survival_calibration(_T, _C, _R, 365.25), r"event\[1\]=2 is not 0/1"),
        (lambda: m.cif_calibration(_T, _C, _R, "1y"), r"got horizon='1y'"),
        (lambda: m.cif_calibration(_T, _C, _R, 365.25, n_bins=-1), r"got n_bins=-1"),
        (lambda: m.net_benefit_survival(_T, _E, _R, 365.25, [1.2]), r"thresholds\[0\]=1.2"),
        (lambda: m.cif_calibration(_T, _C, _R, 365.25, cause=0), r"got cause=0"),
        (lambda: m.observed_expected_at_horizon(_T, _C, _R, 365.25, cause="1"), r"got cause='1'"),
        (lambda: m.net_benefit_survival(_T, _C, _R, 365.25), r"event\[1\]=2 is not 0/1"),
        (lambda: m.harrell_c(["a", "b"], [1, 0], [0.1, 0.2]), r"time must be numeric"),
        (lambda: m.competing_c(_T, ["x"] * 4, _R), r"event must hold integer event codes"),
        (lambda: m.uno_c([100.0, -1.0], [1, 0], _T, _E, _R), r"train_time\[1\]=-1.0"),
        (lambda: m.uno_c(_T, [1, 0], _T, _E, _R), r"train_time has 4 values but train_event"),
        (lambda: m.uno_c(_T, _E, _T, _E, _R, tau=0), r"got tau=0"),
        (lambda: m.time_dependent_auc(_T, _E, _T, _E, _R, [0.0]), r"times\[0\]=0.0"),
        (
            lambda: m.time_dependent_auc(_T, _E, _T, _E, np.ones((4, 3)), [150.0, 250.0]),
            r"risk has shape \(4, 3\); expected \(4,\) or \(4, 2\)",
        ),  # fmt: skip
        (lambda: m.time_dependent_auc(_T, _E, _T, _E, _R, [5000.0]), r"time_dependent_auc: "),
        (
            lambda: m.integrated_brier_score(_T, _E, _T, _E, np.ones((4, 1)), [200.0]),
            r"at least two time points",
        ),  # fmt: skip
        (
            lambda: m.integrated_brier_score(_T, _E, _T, _E, np.ones((4, 3)), [150.0, 250.0]),
            r"survival has shape \(4, 3\); expected \(4, 2\)",
        ),  # fmt: skip
        (
            lambda: m.integrated_brier_score(_T, _E, _T, _E, np.full((4, 2), 1.1), [150.0, 250.0]),
            r"survival \(flattened row by row\)\[0\]=1.1",
        ),  # fmt: skip
    ],
)
def test_survival_bad_options_and_degenerate_data(call, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_aalen_johansen_counts_an_event_exactly_at_the_horizon() -> None:
    """Ties of different causes at the horizon: lifelines would jitter them (about half
    the time past the horizon); the exact estimate counts the event."""
    from lifelines import AalenJohansenFitter

    time, event = [100.0, 365.0, 365.0, 400.0], [1, 1, 2, 0]
    # CIF(365) = 1/4 + (3/4) * (1/3) = 0.5 for cause 1
    for horizon in (365.0, 365.5):
        assert m.observed_expected_at_horizon(time, event, [0.5] * 4, horizon, cause=1) == (
            pytest.approx(1.0, abs=1e-12)
        )
    grid = np.random.default_rng(0)
    t = grid.exponential(300, 400).round(0) + 1  # whole days: many ties
    e = grid.integers(0, 3, 400)
    # against lifelines with the ties broken by tiny offsets (which orders tied events, so
    # agreement is close, not exact) and without ties, where both are exact
    broken = AalenJohansenFitter(calculate_variance=False).fit(
        t + grid.uniform(0, 1e-3, 400), e, event_of_interest=1
    )
    untied = np.arange(1.0, 401.0)
    exact = AalenJohansenFitter(calculate_variance=False).fit(untied, e, event_of_interest=1)
    for horizon in (100.5, 250.5, 350.5):
        observed = m.observed_expected_at_horizon(t, e, np.ones(400), horizon, cause=1)
        close = float(broken.cumulative_density_.loc[:horizon].iloc[-1, 0])
        assert observed == pytest.approx(close, abs=2e-3)
        observed = m.observed_expected_at_horizon(untied, e, np.ones(400), horizon, cause=1)
        same = float(exact.cumulative_density_.loc[:horizon].iloc[-1, 0])
        assert observed == pytest.approx(same, abs=1e-12)


# ---------------------------------------------------------------------------- IPCW at a horizon
def _oracle_competing(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Exponential cause-specific hazards with a known cumulative incidence of cause 1 at
    one year, uniform censoring; returns time, event codes, the true CIF and the horizon."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    lam1, lam2 = np.exp(-6.5 + 0.8 * x), np.exp(-7.0 + 0.3 * x)
    t1, t2 = rng.exponential(1 / lam1), rng.exponential(1 / lam2)
    tc = rng.uniform(100.0, 1500.0, n)
    time = np.minimum.reduce([t1, t2, tc])
    event = np.select([time == t1, time == t2], [1, 2], 0)
    h = 365.25
    cif = lam1 / (lam1 + lam2) * (1 - np.exp(-(lam1 + lam2) * h))
    return time, event, cif, h


def test_ipcw_brier_and_ibs_equal_sksurv_for_a_single_event() -> None:
    from sksurv.metrics import brier_score, integrated_brier_score
    from sksurv.util import Surv

    time, event, score = _survival(400, seed=2, ties=True)
    train_t, train_e, _ = _survival(300, seed=3)
    risk = expit(score - 1.0)
    y_train, y_test = Surv.from_arrays(train_e, train_t), Surv.from_arrays(event, time)
    for ref in ({}, {"ref_time": train_t, "ref_event": train_e}):
        y_ref = y_train if ref else y_test
        expected = brier_score(y_ref, y_test, 1 - risk, 365.0)[1][0]
        assert m.brier_score_at_horizon(time, event, risk, 365.0, **ref) == pytest.approx(
            expected, abs=1e-12
        )
        grid = np.linspace(100.0, 1500.0, 8)
        cif = np.column_stack([1 - (1 - risk) ** (g / 365.0) for g in grid])
        assert m.integrated_brier_score_cif(time, event, cif, grid, **ref) == pytest.approx(
            integrated_brier_score(y_ref, y_test, 1 - cif, grid), abs=1e-12
        )
    # codes without a competing event: the cause-1 version is the same number
    assert m.brier_score_at_horizon(time, event.astype(int), risk, 365.0, cause=1) == pytest.approx(
        m.brier_score_at_horizon(time, event, risk, 365.0), abs=1e-15
    )


def test_competing_brier_counts_a_competing_event_as_a_known_non_event() -> None:
    # no censoring: every weight is 1 and the score is the plain mean squared error
    time = np.array([100.0, 200.0, 300.0, 500.0])
    event = np.array([1, 2, 1, 1])
    risk = np.array([0.9, 0.3, 0.2, 0.1])
    y = np.array([1, 0, 1, 0])  # by 365 days: records 1 and 3 had the fracture
    expected = np.mean((y - risk) ** 2)
    assert m.brier_score_at_horizon(time, event, risk, 365.0, cause=1) == pytest.approx(expected)
    # treating death as censoring instead drops record 2 and reweights the rest
    as_censored = m.brier_score_at_horizon(time, event == 1, risk, 365.0)
    assert as_censored != pytest.approx(expected)


def test_ipcw_calibration_without_censoring_is_the_binary_calibration() -> None:
    y, p = _binary(600, seed=5)
    time = np.where(y == 1, 100.0, 800.0)  # events before the horizon, nobody censored early
    for cause in (None, 1):
        ev = y if cause is None else y.astype(int)
        slope = m.calibration_slope_at_horizon(time, ev, p, 365.0, cause=cause)
        intercept = m.calibration_intercept_at_horizon(time, ev, p, 365.0, cause=cause)
        assert slope == pytest.approx(m.calibration_slope(y, p), abs=1e-7)
        assert intercept == pytest.approx(m.calibration_intercept(y, p), abs=1e-7)


def test_fit_logistic_matches_statsmodels_weighted_glm() -> None:
    import statsmodels.api as sm

    from spinerisk.metrics._common import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = rng.random(500) < expit(0.3 + 0.9 * x)
    w = rng.uniform(0.0, 3.0, 500)
    off = rng.normal(0, 0.2, 500)
    exog = np.column_stack([np.ones(500), x])
    ref = sm.GLM(y.astype(float), exog, family=sm.families.Binomial(), freq_weights=w, offset=off)
    np.testing.assert_allclose(fit_logistic(y, exog, w, off), ref.fit().params, atol=1e-8)
    with pytest.raises(ValueError, match="with and without the outcome"):
        fit_logistic(np.ones(5), np.ones((5, 1)))


def test_ipcw_calibration_of_true_cumulative_incidences_is_ideal() -> None:
    time, event, cif, h = _oracle_competing(6000, seed=1)
    assert m.calibration_slope_at_horizon(time, event, cif, h, cause=1) == pytest.approx(
        1.0, abs=0.12
    )
    assert m.calibration_intercept_at_horizon(time, event, cif, h, cause=1) == pytest.approx(
        0.0, abs=0.08
    )
    # twice the true log-odds: too extreme, slope near 1/2
    too_extreme = expit(2 * logit(cif) + logit(cif.mean()))
    assert m.calibration_slope_at_horizon(time, event, too_extreme, h, cause=1) < 0.65
    curve = m.smoothed_calibration_at_horizon(time, event, cif, h, cause=1)
    gap = (curve["observed"] - curve["predicted"]).abs()
    assert gap.max() < 0.04


def test_smoothed_curve_with_one_window_is_the_aalen_johansen_estimate() -> None:
    time, event, score = _competing(300, seed=4, ties=True)
    risk = expit(score - 1.5)
    curve = m.smoothed_calibration_at_horizon(
        time, event, risk, 365.25, cause=1, frac=1.0, grid=[0.1, 0.3]
    )
    np.testing.assert_allclose(curve["observed"], _aj_sksurv(time, event, 365.25), atol=1e-12)
    np.testing.assert_allclose(curve["predicted"], risk.mean())
    km = m.smoothed_calibration_at_horizon(time, event != 0, risk, 365.25, frac=1.0, grid=[0.2])
    from sksurv.nonparametric import kaplan_meier_estimator

    km_times, surv = kaplan_meier_estimator(event != 0, time)
    expected = 1 - surv[np.searchsorted(km_times, 365.25, side="right") - 1]
    assert km["observed"].iloc[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: m.brier_score_at_horizon([1, 2], [1, 0], [0.1, 0.2], 1.0, ref_time=[1]), "both"),
        (
            lambda: m.smoothed_calibration_at_horizon([1, 2], [1, 0], [0.1, 0.2], 1.0, frac=0),
            "frac",
        ),
        (lambda: m.integrated_brier_score_cif([1, 2], [1, 0], [[0.1], [0.2]], [1.0]), "two"),
        (
            lambda: m.integrated_brier_score_cif([1, 2], [1, 0], [0.1, 0.2], [1.0, 2.0]),
            r"shape \(2,\)",
        ),
        (lambda: m.brier_score_at_horizon([1, 2], [1, 3], [0.1, 2.0], 1.0, cause=1), "risk"),
    ],
)
def test_ipcw_bad_inputs(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_censoring_survival_equals_sksurv_reverse_kaplan_meier_without_it() -> None:
    """The IPCW weights' G(t) is computed here (the default model fits with it, and
    scikit-survival is optional): equal to scikit-survival's estimator bit for bit, tied
    times, no censoring and the refusal beyond the last time included."""
    from sksurv.nonparametric import CensoringDistributionEstimator
    from sksurv.util import Surv

    from spinerisk.metrics._ipcw import censoring_survival

    rng = np.random.default_rng(1)
    for trial in range(150):
        n = int(rng.integers(2, 60))
        t = rng.integers(1, 15, n).astype(float)
        e = rng.random(n) < rng.random()
        e[0] = True
        if trial % 7 == 0:
            e[:] = True
        ref = CensoringDistributionEstimator().fit(Surv.from_arrays(e, t))
        x = np.concatenate([t, rng.uniform(0, t.max(), 10), [t.max(), 0.5]])
        np.testing.assert_array_equal(censoring_survival(t, e)(x), ref.predict_proba(x))
        beyond = np.array([t.max() + 1])
        if (~e[t == t.max()]).any():  # G reached 0 at the last time: 0 beyond it
            assert censoring_survival(t, e)(beyond)[0] == ref.predict_proba(beyond)[0]
        else:
            with pytest.raises(ValueError):
                ref.predict_proba(beyond)
            with pytest.raises(ValueError, match="last follow-up time"):
                censoring_survival(t, e)(beyond)


def test_time_dependent_auc_at_a_horizon_before_an_end_of_study_censoring() -> None:
    """Every record without the event is censored at the end of study (week 52, as in
    the Rossi recidivism data) and one event falls on that day: the censoring survival is
    0 there, but at 26 weeks only earlier events are cases, so the AUC is estimable, the
    same as with that late event censored, and so is every bootstrap resample's."""
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    from spinerisk.metrics._discrimination import time_dependent_auc_resamples

    rng = np.random.default_rng(3)
    n = 120
    risk = rng.normal(size=n)
    time = np.full(n, 364.0)
    event = rng.random(n) < 1 / (1 + np.exp(-risk))
    time[event] = rng.integers(7, 364, size=event.sum()).astype(float)
    late = np.flatnonzero(~event)[0]
    event[late] = True  # an event on the last day of the study
    auc = m.time_dependent_auc(time, event, time, event, risk, [182.0, 300.0])
    censored = event.copy()
    censored[late] = False
    y = Surv.from_arrays(censored, time)
    expected, _ = cumulative_dynamic_auc(y, y, risk, [182.0, 300.0])
    np.testing.assert_allclose(auc, expected)
    rows = rng.integers(0, n, size=(50, n))
    boot = time_dependent_auc_resamples(time, event, risk, 182.0, rows)
    assert np.isfinite(boot).mean() > 0.95
