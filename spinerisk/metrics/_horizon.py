"""Calibration and net benefit of predicted risks at a horizon, against Kaplan-Meier or
Aalen-Johansen observed risks (lifelines)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from spinerisk.exceptions import DataQualityWarning
from spinerisk.metrics._common import (
    FloatArray,
    IntArray,
    assign_bins,
    check_binary,
    check_cause,
    check_event_codes,
    check_horizon,
    check_n_bins,
    check_probability,
    check_same_length,
    check_thresholds,
    check_time,
    level_counts,
    wilson_interval,
)

__all__ = [
    "cif_calibration",
    "net_benefit_survival",
    "observed_expected_at_horizon",
    "survival_calibration",
]

#: Seed of lifelines' Aalen-Johansen tie jitter (it seeds numpy's global generator; the
#: state is restored afterwards).
_AJ_SEED = 0


def _at(index: np.ndarray, values: np.ndarray, horizon: float) -> Any:
    """Value of a right-continuous step function (rows on ``index``) at ``horizon``."""
    return values[np.searchsorted(index, horizon, side="right") - 1]


def _aalen_johansen(
    time: FloatArray, codes: IntArray, cause: int, horizon: float
) -> tuple[float, bool]:
    """Aalen-Johansen cumulative incidence of ``cause`` at ``horizon``, exact with tied
    times (at each distinct event time, ``CIF += S(t-) * d_cause / n_at_risk``), and
    whether anyone was still event-free at the end of follow-up."""
    events = np.sort(time[codes != 0])
    t_ev = np.unique(events)
    at_risk = len(time) - np.searchsorted(np.sort(time), t_ev, side="left")
    d_all = np.searchsorted(events, t_ev, side="right") - np.searchsorted(events, t_ev)
    ours = np.sort(time[codes == cause])
    d_cause = np.searchsorted(ours, t_ev, side="right") - np.searchsorted(ours, t_ev)
    surv = np.cumprod(1.0 - d_all / at_risk)
    before = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(before * d_cause / at_risk)
    k = int(np.searchsorted(t_ev, horizon, side="right")) - 1
    estimate = 0.0 if k < 0 else float(cif[k])
    still_at_risk = bool((codes[time == time.max()] == 0).any())
    return estimate, still_at_risk


def _observed_risk(
    time: FloatArray, codes: IntArray, horizon: float, cause: int | None, ci: bool
) -> tuple[float, float, float]:
    """Observed risk at ``horizon`` with its 95% interval: 1 - Kaplan-Meier (``cause`` None,
    any non-zero code is the event) or Aalen-Johansen cumulative incidence of ``cause``.

    NaN when the horizon lies beyond the last follow-up time while someone was still
    event-free (the estimate would be an extrapolation). The interval is lifelines'
    log(-log) interval; where that is undefined (estimate 0 or 1) it is NaN here.
    """
    from lifelines import AalenJohansenFitter, KaplanMeierFitter

    nan = float("nan")
    if cause is None and not ci:
        # 1 - Kaplan-Meier is the Aalen-Johansen estimate of the only event type: the
        # numpy path, without a lifelines fit (decision curves and O/E call this often)
        estimate, still_at_risk = _aalen_johansen(time, (codes != 0).astype(np.int64), 1, horizon)
        if horizon > time.max() and still_at_risk:
            return nan, nan, nan
        return estimate, nan, nan
    if cause is None:
        km = KaplanMeierFitter(alpha=0.05).fit(time, codes != 0)
        index = km.survival_function_.index.to_numpy(dtype=float)
        surv = km.survival_function_.to_numpy(dtype=float)[:, 0]
        if horizon > time.max() and surv[-1] > 0.0:
            return nan, nan, nan
        estimate = 1.0 - float(_at(index, surv, horizon))
        bounds = 1.0 - km.confidence_interval_survival_function_.to_numpy(dtype=float)
    else:
        estimate, still_at_risk = _aalen_johansen(time, codes, cause, horizon)
        if horizon > time.max() and still_at_risk:
            # follow-up ended while someone was event-free: an extrapolation
            return nan, nan, nan
        if not ci:
            return estimate, nan, nan
        state = np.random.get_state()
        try:
            with warnings.catch_warnings():
                # lifelines jitters tied event times of different types (seeded here, so
                # deterministic); ties do not change the estimate at a horizon between
                # event times, so its warning is not for the user
                warnings.filterwarnings("ignore", message="Tied event times", category=Warning)
                aj = AalenJohansenFitter(seed=_AJ_SEED, alpha=0.05, calculate_variance=ci).fit(
                    time, codes, event_of_interest=cause
                )
        finally:
            np.random.set_state(state)
        # the interval from lifelines (its jitter of tied times moves it negligibly);
        # the estimate above is exact, ties included
        index = aj.cumulative_density_.index.to_numpy(dtype=float)
        bounds = (
            None
            if aj.confidence_interval_ is None
            else aj.confidence_interval_.to_numpy(dtype=float)
        )
    if not ci or bounds is None:
        return estimate, nan, nan
    with np.errstate(invalid="ignore"):
        row = np.asarray(_at(index, bounds, horizon), dtype=float)
    lower, upper = float(np.min(row)), float(np.max(row))
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return estimate, nan, nan
    return estimate, lower, upper


def _binned_table(
    time: FloatArray,
    codes: IntArray,
    pred: FloatArray,
    horizon: float,
    cause: int | None,
    n_bins: int,
    strategy: str,
    ci: bool,
) -> pd.DataFrame:
    bins = assign_bins(pred, n_bins, strategy)
    rows = []
    for b in np.unique(bins):
        inside = bins == b
        observed, lower, upper = _observed_risk(time[inside], codes[inside], horizon, cause, ci)
        rows.append(
            (int(b) + 1, int(inside.sum()), float(pred[inside].mean()), observed, lower, upper)
        )
    table = pd.DataFrame(rows, columns=["bin", "n", "mean_predicted", "observed", "lower", "upper"])
    # where the log(-log) interval is undefined (observed 0 or 1), use the Wilson interval
    # of a proportion with the bin size as denominator: an approximation that ignores
    # censoring, documented in the public functions
    per_bin = table["observed"].to_numpy(dtype=float)
    degenerate = (per_bin == 0.0) | (per_bin == 1.0) | ~np.isfinite(table["lower"].to_numpy())
    fill = ci & np.isfinite(per_bin) & degenerate
    if fill.any():
        n_fill = table.loc[fill, "n"].to_numpy(dtype=float)
        lo, hi = wilson_interval(table.loc[fill, "observed"].to_numpy(dtype=float) * n_fill, n_fill)
        table.loc[fill, "lower"] = lo
        table.loc[fill, "upper"] = hi
    missing = table.loc[~np.isfinite(table["observed"]), "bin"].tolist()
    if missing:
        warnings.warn(
            f"Observed risk at horizon={horizon!r} is not estimable in bin(s) {missing}: "
            f"follow-up ends before the horizon there; observed is NaN.",
            DataQualityWarning,
            stacklevel=3,
        )
    return table


def _inputs(
    time: Any, event: Any, pred: Any, pred_name: str, horizon: Any, cause: int | None
) -> tuple[FloatArray, IntArray, FloatArray, float]:
    t = check_time(time, "time")
    if cause is None:
        codes = check_binary(event, "event").astype(np.int64)
    else:
        codes = check_event_codes(event, "event")
    p = check_probability(pred, pred_name)
    check_same_length(time=t, event=codes, **{pred_name: p})
    return t, codes, p, check_horizon(horizon)


def survival_calibration(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    ci: bool = True,
) -> pd.DataFrame:
    """Calibration table at a horizon: predicted risk against 1 - Kaplan-Meier per risk bin.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to event or censoring, > 0.
    event : array-like of shape (n_samples,)
        Whether the event was observed (bool or 0/1).
    risk : array-like of shape (n_samples,)
        Predicted probability of the event by ``horizon``, in [0, 1].
    horizon : float
        Days.
    n_bins : int, default=10
        Number of risk bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-frequency or equal-width bins, as in :func:`calibration_curve`.
    ci : bool, default=True
        Compute the 95% intervals (False leaves ``lower`` and ``upper`` NaN).

    Returns
    -------
    DataFrame
        One row per non-empty bin with columns ``bin`` (1-based), ``n``,
        ``mean_predicted``, ``observed`` (1 - Kaplan-Meier survival at ``horizon`` in the
        bin), ``lower`` and ``upper`` (from lifelines' log(-log) Greenwood interval).

    Warns
    -----
    DataQualityWarning
        If follow-up in a bin ends before ``horizon`` while records are still event-free;
        ``observed`` is NaN there.

    Notes
    -----
    Where the log(-log) interval is undefined (observed 0 or 1), the Wilson interval of a
    proportion with the bin size as denominator is used, an approximation that ignores
    censoring.

    Examples
    --------
    >>> from spinerisk.metrics import survival_calibration
    >>> time = [100, 200, 300, 400, 150, 250, 350, 450]
    >>> event = [1, 0, 1, 0, 1, 1, 0, 0]
    >>> risk = [0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6]
    >>> table = survival_calibration(time, event, risk, 365.25, n_bins=2)
    >>> table[["bin", "n", "mean_predicted", "observed"]].round(3).to_string(index=False)
    ' bin  n  mean_predicted  observed\\n   1  4             0.2     0.625\\n   2  4             0.6     0.500'
    """  # noqa: E501
    t, codes, p, h = _inputs(time, event, risk, "risk", horizon, None)
    return _binned_table(t, codes, p, h, None, check_n_bins(n_bins), strategy, ci)


def cif_calibration(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    cif: npt.ArrayLike,
    horizon: float,
    *,
    cause: int = 1,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    ci: bool = True,
) -> pd.DataFrame:
    """Calibration table at a horizon: predicted cumulative incidence against Aalen-Johansen.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the first event or censoring, > 0.
    event : array-like of shape (n_samples,)
        Event code: 0 censored, 1, 2, ... the event type.
    cif : array-like of shape (n_samples,)
        Predicted cumulative incidence of ``cause`` by ``horizon``, in [0, 1].
    horizon : float
        Days.
    cause : int, default=1
        Event code of interest; other non-zero codes are competing events.
    n_bins : int, default=10
        Number of risk bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-frequency or equal-width bins, as in :func:`calibration_curve`.
    ci : bool, default=True
        Compute the 95% intervals (False is faster and leaves ``lower`` and ``upper`` NaN).

    Returns
    -------
    DataFrame
        One row per non-empty bin with columns ``bin`` (1-based), ``n``,
        ``mean_predicted``, ``observed`` (Aalen-Johansen cumulative incidence of ``cause``
        at ``horizon`` in the bin), ``lower`` and ``upper`` (lifelines' log(-log) interval
        from its Greenwood-type variance).

    Warns
    -----
    DataQualityWarning
        If follow-up in a bin ends before ``horizon`` while records are still event-free;
        ``observed`` is NaN there.

    Notes
    -----
    ``observed`` is an exact Aalen-Johansen estimate, tied event times of different
    causes included (an event exactly at ``horizon`` counts). The interval comes from
    lifelines, which jitters such ties (seeded, with numpy's global random state
    restored, so results are deterministic). Where the log(-log) interval is
    undefined (observed 0 or 1), the Wilson interval of a proportion with the bin size as
    denominator is used, an approximation that ignores censoring.

    Examples
    --------
    >>> from spinerisk.metrics import cif_calibration
    >>> time = [100, 200, 300, 400, 150, 250, 350, 450]
    >>> event = [1, 2, 0, 0, 1, 1, 2, 0]
    >>> cif = [0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6]
    >>> table = cif_calibration(time, event, cif, 365.25, n_bins=2)
    >>> table[["bin", "n", "mean_predicted", "observed"]].round(3).to_string(index=False)
    ' bin  n  mean_predicted  observed\\n   1  4             0.2      0.25\\n   2  4             0.6      0.50'
    """  # noqa: E501
    cause = check_cause(cause)
    t, codes, p, h = _inputs(time, event, cif, "cif", horizon, cause)
    return _binned_table(t, codes, p, h, cause, check_n_bins(n_bins), strategy, ci)


def observed_expected_at_horizon(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    cause: int | None = None,
) -> float:
    """Observed/expected ratio at a horizon: overall observed risk over mean predicted risk.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the (first) event or censoring, > 0.
    event : array-like of shape (n_samples,)
        With ``cause=None``: whether the event was observed (bool or 0/1). With a cause:
        event codes (0 censored, 1, 2, ...).
    risk : array-like of shape (n_samples,)
        Predicted risk (or cumulative incidence of ``cause``) by ``horizon``, in [0, 1].
    horizon : float
        Days.
    cause : int or None, default=None
        None: observed risk is 1 - Kaplan-Meier. An event code: Aalen-Johansen cumulative
        incidence of that cause, other causes competing.

    Returns
    -------
    float
        1 is ideal; above 1 the model under-predicts.

    Raises
    ------
    ValueError
        If the inputs are invalid, the horizon is beyond follow-up (the observed risk
        would be an extrapolation) or every predicted risk is 0.

    Examples
    --------
    >>> from spinerisk.metrics import observed_expected_at_horizon
    >>> time = [100, 200, 300, 400]
    >>> observed_expected_at_horizon(time, [1, 0, 1, 0], [0.25] * 4, 365.25)
    2.5
    >>> observed_expected_at_horizon(time, [1, 2, 1, 0], [0.25] * 4, 365.25, cause=1)
    2.0
    """
    if cause is not None:
        cause = check_cause(cause)
    t, codes, p, h = _inputs(time, event, risk, "risk", horizon, cause)
    observed, _, _ = _observed_risk(t, codes, h, cause, ci=False)
    if not np.isfinite(observed):
        raise ValueError(
            f"horizon={horizon!r} is beyond the longest follow-up ({t.max():g} days) while "
            f"records are still event-free; the observed risk cannot be estimated there."
        )
    expected = float(p.mean())
    if expected == 0.0:
        raise ValueError("observed_expected_at_horizon is undefined: every risk is 0.")
    return observed / expected


def net_benefit_survival(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    thresholds: Sequence[float] | None = None,
    *,
    cause: int | None = None,
) -> pd.DataFrame:
    """Decision curve at a horizon for censored (and competing-risks) outcomes.

    Records are treated when ``risk >= t``. With ``pi`` the proportion treated and ``r`` the
    observed risk at ``horizon`` among them (1 - Kaplan-Meier, or Aalen-Johansen cumulative
    incidence of ``cause``), ``NB = r * pi - (1 - r) * pi * t / (1 - t)``. Treat-all uses
    the whole cohort's observed risk; treat-none is 0.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the (first) event or censoring, > 0.
    event : array-like of shape (n_samples,)
        With ``cause=None``: whether the event was observed (bool or 0/1). With a cause:
        event codes (0 censored, 1, 2, ...).
    risk : array-like of shape (n_samples,)
        Predicted risk by ``horizon``, in [0, 1].
    horizon : float
        Days.
    thresholds : sequence of float or None, default=None
        Risk thresholds strictly inside (0, 1). None means 0.01, 0.02, ..., 0.99.
    cause : int or None, default=None
        None for a single event (Kaplan-Meier); an event code for competing risks
        (Aalen-Johansen).

    Returns
    -------
    DataFrame
        Columns ``threshold``, ``model``, ``treat_all`` and ``treat_none``. ``model`` is 0
        where nobody is treated and NaN where the treated group's follow-up ends before
        ``horizon`` while some are still event-free.

    Raises
    ------
    ValueError
        If the inputs are invalid or the horizon is beyond the cohort's follow-up.

    References
    ----------
    Vickers AJ, Cronin AM, Elkin EB, Gonen M. Extensions to decision curve analysis, a
    novel method for evaluating diagnostic tests, prediction models and molecular
    markers. BMC Med Inform Decis Mak 2008;8:53.

    Examples
    --------
    >>> from spinerisk.metrics import net_benefit_survival
    >>> time = [100, 200, 300, 400, 500, 600]
    >>> event = [1, 1, 0, 0, 0, 0]
    >>> risk = [0.8, 0.7, 0.1, 0.2, 0.1, 0.2]
    >>> net_benefit_survival(time, event, risk, 365.25, thresholds=[0.5]).round(3)
       threshold  model  treat_all  treat_none
    0        0.5  0.333     -0.333         0.0
    """
    if cause is not None:
        cause = check_cause(cause)
    t, codes, p, h = _inputs(time, event, risk, "risk", horizon, cause)
    thr = check_thresholds(thresholds)
    overall, _, _ = _observed_risk(t, codes, h, cause, ci=False)
    if not np.isfinite(overall):
        raise ValueError(
            f"horizon={horizon!r} is beyond the longest follow-up ({t.max():g} days) while "
            f"records are still event-free; net benefit cannot be estimated there."
        )
    n = len(t)
    order = np.argsort(-p, kind="stable")  # highest risk first
    n_treated = n - np.searchsorted(np.sort(p), thr, side="left")
    # the treated group depends only on how many are treated: estimate once per size
    risk_treated = {0: 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        for k in np.unique(n_treated):
            if k > 0:
                top = order[:k]
                risk_treated[int(k)] = _observed_risk(t[top], codes[top], h, cause, ci=False)[0]
    r = np.array([risk_treated[int(k)] for k in n_treated])
    pi = n_treated / n
    odds = thr / (1.0 - thr)
    return pd.DataFrame(
        {
            "threshold": thr,
            "model": r * pi - (1.0 - r) * pi * odds,
            "treat_all": overall - (1.0 - overall) * odds,
            "treat_none": np.zeros_like(thr),
        }
    )


# -- every bootstrap resample at once (see spinerisk.metrics._common) ---------------------------
def aalen_johansen_resamples(
    time: FloatArray, codes: IntArray, cause: int, horizon: float, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`_aalen_johansen` at ``horizon`` in every resample, NaN where the horizon lies
    beyond the resample's follow-up while a record was still event-free.

    The event times of all records form the steps; a time not drawn in a resample adds a
    factor 1 and a term 0 there, so the products and sums are those of the resample alone.
    """
    t_ev = np.unique(time[codes != 0])
    k = int(np.searchsorted(t_ev, horizon, side="right"))  # steps at or before the horizon
    b, n = rows.shape
    estimate = np.zeros(b)
    if k > 0:
        t_ev = t_ev[:k]
        step = np.searchsorted(t_ev, time)  # first event time >= time, per record
        exact = (step < k) & (t_ev[np.minimum(step, k - 1)] == time)
        # records out of the risk set at step j (times below t_ev[j]): those with at most
        # j event times at or before their own
        passed = np.minimum(np.searchsorted(t_ev, time, side="right"), k)
        at_risk = n - np.cumsum(level_counts(passed, k + 1, rows), axis=1)[:, :k]
        any_event = (codes != 0) & exact
        level = np.where(exact, step, k)
        d_all = level_counts(level, k + 1, rows, any_event.astype(float))[:, :k]
        d_cause = level_counts(level, k + 1, rows, (any_event & (codes == cause)).astype(float))
        d_cause = d_cause[:, :k]
        with np.errstate(invalid="ignore", divide="ignore"):
            surv = np.cumprod(np.where(d_all > 0, 1.0 - d_all / at_risk, 1.0), axis=1)
            before = np.concatenate([np.ones((b, 1)), surv[:, :-1]], axis=1)
            cif = np.cumsum(np.where(d_cause > 0, before * d_cause / at_risk, 0.0), axis=1)
        estimate = cif[:, -1]
    drawn = time[rows]
    last = drawn.max(axis=1)
    censored_last = ((drawn == last[:, None]) & (codes[rows] == 0)).any(axis=1)
    return np.where((horizon > last) & censored_last, np.nan, estimate)


def observed_expected_resamples(
    time: FloatArray,
    codes: IntArray,
    risk: FloatArray,
    horizon: float,
    cause: int | None,
    rows: npt.NDArray[np.intp],
) -> FloatArray:
    """:func:`observed_expected_at_horizon` of every resample (``codes`` 0/1 when ``cause``
    is None)."""
    if cause is None:
        observed = aalen_johansen_resamples(time, (codes != 0).astype(np.int64), 1, horizon, rows)
    else:
        observed = aalen_johansen_resamples(time, codes, cause, horizon, rows)
    expected = np.mean(risk[rows], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected != 0, observed / expected, np.nan)
