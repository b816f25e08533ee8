"""Calibration and accuracy of predicted risks at a horizon for censored and competing
outcomes: inverse-probability-of-censoring weighted (IPCW) Brier and integrated Brier
scores, calibration slope and intercept, and a smoothed calibration curve against
running-window Kaplan-Meier / Aalen-Johansen estimates.

Every function takes the predicted **risk** (1 - survival, or the cumulative incidence of
the cause of interest) so single-event and competing outcomes share one code path: with
``cause=None`` the outcome is a single event, with a cause the other non-zero event codes
are competing events (known non-events once they occur).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from spinerisk.metrics._common import (
    FloatArray,
    IntArray,
    as_1d,
    check_binary,
    check_cause,
    check_event_codes,
    check_horizon,
    check_probability,
    check_same_length,
    check_time,
    fit_logistic,
    slope_design,
)

__all__ = [
    "brier_score_at_horizon",
    "calibration_intercept_at_horizon",
    "calibration_slope_at_horizon",
    "integrated_brier_score_cif",
    "smoothed_calibration_at_horizon",
]

_EPS = 1e-8


# -- inputs and weights -----------------------------------------------------------------------
def _codes(event: Any, cause: int | None, name: str = "event") -> IntArray:
    if cause is None:
        return check_binary(event, name).astype(np.int64)
    return check_event_codes(event, name)


def _inputs(
    time: Any, event: Any, risk: Any, cause: int | None
) -> tuple[FloatArray, IntArray, FloatArray, int]:
    cause_code = 1 if cause is None else check_cause(cause)
    t = check_time(time, "time")
    codes = _codes(event, cause)
    p = check_probability(risk, "risk")
    check_same_length(time=t, event=codes, risk=p)
    return t, codes, p, cause_code


def _reference(
    ref_time: Any, ref_event: Any, time: FloatArray, codes: IntArray
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Times and any-event indicators of the cohort the censoring distribution is
    estimated on (the evaluated records themselves by default)."""
    if ref_time is None and ref_event is None:
        return time, codes != 0
    if ref_time is None or ref_event is None:
        raise ValueError("Give both ref_time and ref_event, or neither.")
    rt = check_time(ref_time, "ref_time")
    arr = as_1d(ref_event, "ref_event")
    re = arr.astype(bool) if arr.dtype == bool else check_event_codes(arr, "ref_event") != 0
    check_same_length(ref_time=rt, ref_event=re)
    return rt, np.asarray(re, dtype=bool)


def censoring_survival(ref_time: FloatArray, ref_any: npt.NDArray[np.bool_]) -> Any:
    """``G(t)``: Kaplan-Meier estimate of remaining uncensored (any event ends follow-up
    without censoring), as a function of an array of times.

    The reverse Kaplan-Meier of :class:`CensoringResamples` on one sample, so the weights
    are those of scikit-survival's ``CensoringDistributionEstimator`` and its Brier score
    (equal, tested) without needing scikit-survival: the default model fits with it.
    Beyond the last reference time ``G`` is 0 when it reached 0 there and undefined
    otherwise (a ValueError, as scikit-survival).
    """
    t = np.asarray(ref_time, dtype=np.float64)
    km = CensoringResamples(t, np.asarray(ref_any, dtype=bool), np.arange(len(t))[None, :])
    return km.survival_at


def horizon_outcome(
    time: FloatArray, codes: IntArray, horizon: float, cause: int, censoring: Any
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Outcome by ``horizon`` and its IPCW weight, per record.

    ``y`` is True for an event of ``cause`` at or before the horizon. The weight is
    ``1 / G(T)`` for any event at or before the horizon (a competing event is a known
    non-event), ``1 / G(horizon)`` for records followed beyond it and 0 for records
    censored before it (their outcome is unknown); a zero ``G`` gives weight 0, as in
    scikit-survival.
    """
    before = time <= horizon
    occurred = before & (codes != 0)
    y = before & (codes == cause)
    g_time = np.asarray(censoring(time), dtype=float)
    g_h = float(np.asarray(censoring(np.array([horizon])), dtype=float)[0])
    w = np.zeros(len(time))
    with np.errstate(divide="ignore"):
        w[occurred] = np.where(g_time[occurred] > 0, 1.0 / g_time[occurred], 0.0)
        w[time > horizon] = 1.0 / g_h if g_h > 0 else 0.0
    return y, w


def _weighted_outcome(
    time: Any,
    event: Any,
    risk: Any,
    horizon: Any,
    cause: int | None,
    ref_time: Any,
    ref_event: Any,
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray, float]:
    t, codes, p, cause_code = _inputs(time, event, risk, cause)
    h = check_horizon(horizon)
    rt, ra = _reference(ref_time, ref_event, t, codes)
    y, w = horizon_outcome(t, codes, h, cause_code, censoring_survival(rt, ra))
    return y, w, p, h


# -- Brier scores -----------------------------------------------------------------------------
def brier_score_at_horizon(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    cause: int | None = None,
    ref_time: npt.ArrayLike | None = None,
    ref_event: npt.ArrayLike | None = None,
) -> float:
    """Brier score of predicted risks at a horizon, weighted for censoring (IPCW).

    ``BS(h) = mean_i w_i (y_i - risk_i)^2`` with ``y_i`` the event of interest by ``h``
    and ``w_i`` the inverse probability of remaining uncensored (Graf et al. 1999; for
    competing risks a competing event before ``h`` is a known non-event, Schoop et al.
    2011). With ``cause=None`` this equals :func:`sksurv.metrics.brier_score` on the
    survival ``1 - risk`` (tested).

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the (first) event or censoring, > 0.
    event : array-like of shape (n_samples,)
        ``cause=None``: whether the event was observed. With a cause: event codes
        (0 censored, 1, 2, ...).
    risk : array-like of shape (n_samples,)
        Predicted risk (cumulative incidence of ``cause``) by ``horizon``, in [0, 1].
    horizon : float
        Days.
    cause : int or None, default=None
        Event code of interest; None for a single event.
    ref_time, ref_event : array-like or None, default=None
        Cohort on which the censoring distribution is estimated (event indicator or
        codes; any non-zero code ends follow-up uncensored). None means the evaluated
        records themselves.

    Returns
    -------
    float
        Lower is better; a model predicting the observed risk for everyone scores about
        ``r (1 - r)``.

    References
    ----------
    Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of
    prognostic classification schemes for survival data. Stat Med 1999;18:2529-45.
    Schoop R, Beyersmann J, Schumacher M, Binder H. Quantifying the predictive accuracy
    of time-to-event models in the presence of competing risks. Biom J 2011;53:88-112.

    Examples
    --------
    >>> from spinerisk.metrics import brier_score_at_horizon
    >>> time = [100, 200, 300, 400]
    >>> brier_score_at_horizon(time, [1, 1, 0, 0], [0.5] * 4, 250.0)
    0.25
    >>> brier_score_at_horizon(time, [1, 2, 0, 0], [0.5, 0.0, 0.0, 0.0], 250.0, cause=1)
    0.0625
    """
    y, w, p, _ = _weighted_outcome(time, event, risk, horizon, cause, ref_time, ref_event)
    return float(np.mean(w * np.square(y - p)))


def integrated_brier_score_cif(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    times: npt.ArrayLike,
    *,
    cause: int | None = None,
    ref_time: npt.ArrayLike | None = None,
    ref_event: npt.ArrayLike | None = None,
) -> float:
    """Integrated Brier score of predicted risks over a time grid (IPCW, trapezoid rule).

    The IPCW Brier score of :func:`brier_score_at_horizon` at each of ``times``,
    integrated by the trapezoid rule and divided by ``times[-1] - times[0]``, as
    :func:`sksurv.metrics.integrated_brier_score` does for survival (equal to it with
    ``cause=None``, tested); with a cause it is the integrated Brier score of the
    cumulative incidence function.

    Parameters
    ----------
    time, event : array-like of shape (n_samples,)
        As in :func:`brier_score_at_horizon`.
    risk : array-like of shape (n_samples, n_times)
        Predicted risk (cumulative incidence) at each of ``times``.
    times : array-like of shape (n_times,)
        At least two increasing times in days.
    cause : int or None, default=None
    ref_time, ref_event : array-like or None, default=None

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import integrated_brier_score_cif
    >>> time = np.array([50.0, 120, 200, 310, 400, 520, 600, 700])
    >>> event = np.array([1, 2, 0, 1, 0, 1, 2, 0])
    >>> flat = np.full((8, 3), 0.5)
    >>> round(integrated_brier_score_cif(time, event, flat, [100, 300, 500], cause=1), 3)
    0.25
    """
    cause_code = 1 if cause is None else check_cause(cause)
    t = check_time(time, "time")
    codes = _codes(event, cause)
    check_same_length(time=t, event=codes)
    grid = check_time(times, "times")
    if len(grid) < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError(f"times must hold at least two increasing time points; got {grid!r}.")
    r = np.asarray(risk, dtype=float)
    if r.shape != (len(t), len(grid)):
        raise ValueError(
            f"risk has shape {r.shape}; expected ({len(t)}, {len(grid)}) "
            "(one row per record, one column per time in times)."
        )
    r = check_probability(r.ravel(), "risk (flattened row by row)").reshape(r.shape)
    rt, ra = _reference(ref_time, ref_event, t, codes)
    censoring = censoring_survival(rt, ra)
    scores = np.empty(len(grid))
    for k, h in enumerate(grid):
        y, w = horizon_outcome(t, codes, float(h), cause_code, censoring)
        scores[k] = np.mean(w * np.square(y - r[:, k]))
    return float(np.trapezoid(scores, grid) / (grid[-1] - grid[0]))


# -- calibration slope and intercept ----------------------------------------------------------
def logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.asarray(np.log(q / (1.0 - q)), dtype=float)


def calibration_slope_at_horizon(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    cause: int | None = None,
    ref_time: npt.ArrayLike | None = None,
    ref_event: npt.ArrayLike | None = None,
    groups: npt.ArrayLike | None = None,
) -> float:
    """Calibration slope at a horizon: IPCW logistic regression of the outcome by the
    horizon on ``logit(risk)``.

    Fits ``logit P(y_h = 1) = a + b * logit(risk)`` with the inverse-probability-of-
    censoring weights of :func:`brier_score_at_horizon` (records censored before the
    horizon carry no weight; competing events are known non-events) and returns ``b``.
    Without censoring before the horizon every weight is 1 and it equals
    :func:`calibration_slope` of the binary outcome (tested).

    Parameters
    ----------
    time, event, risk, horizon, cause, ref_time, ref_event
        As in :func:`brier_score_at_horizon`.
    groups : array-like of shape (n_samples,) or None, default=None
        A label per record (cross-validation's folds): an intercept per group and one
        shared slope, as in :func:`~spinerisk.metrics.calibration_slope`. The censoring
        weights stay those of every record together.

    Returns
    -------
    float
        1 is ideal; below 1 the risks are too extreme.

    References
    ----------
    Gerds TA, Andersen PK, Kattan MW. Calibration plots for risk prediction models in
    the presence of competing risks. Stat Med 2014;33:3191-203.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import calibration_slope_at_horizon
    >>> rng = np.random.default_rng(0)
    >>> risk = rng.uniform(0.05, 0.6, 4000)
    >>> time = np.where(rng.random(4000) < risk, 100.0, 500.0)  # the event by 365 days
    >>> event = (time == 100.0).astype(int)
    >>> bool(abs(calibration_slope_at_horizon(time, event, risk, 365.0) - 1) < 0.15)
    True
    """
    y, w, p, _ = _weighted_outcome(time, event, risk, horizon, cause, ref_time, ref_event)
    return weighted_slope(y, p, w, groups)


def weighted_slope(
    y: npt.NDArray[np.bool_], risk: FloatArray, w: FloatArray, groups: npt.ArrayLike | None
) -> float:
    """The censoring-weighted calibration slope of the outcome by a horizon on
    ``logit(risk)`` (an intercept per group with ``groups``): the fit behind
    :func:`calibration_slope_at_horizon` and the evaluation's."""
    exog, keep = slope_design(logit(risk), groups, y, w)
    return float(fit_logistic(y[keep], exog, w[keep])[-1])


def calibration_intercept_at_horizon(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    cause: int | None = None,
    ref_time: npt.ArrayLike | None = None,
    ref_event: npt.ArrayLike | None = None,
) -> float:
    """Calibration-in-the-large at a horizon: IPCW logistic intercept with ``logit(risk)``
    as offset (slope fixed at 1).

    Parameters
    ----------
    time, event, risk, horizon, cause, ref_time, ref_event
        As in :func:`brier_score_at_horizon`.

    Returns
    -------
    float
        In log-odds; 0 is ideal, positive means the model under-predicts.

    Examples
    --------
    >>> from spinerisk.metrics import calibration_intercept_at_horizon
    >>> time = [100, 200, 500, 600]
    >>> round(calibration_intercept_at_horizon(time, [1, 0, 0, 0], [0.25] * 4, 365.0), 6)
    0.0
    """
    y, w, p, _ = _weighted_outcome(time, event, risk, horizon, cause, ref_time, ref_event)
    return weighted_intercept(y, p, w)


def weighted_intercept(y: npt.NDArray[np.bool_], risk: FloatArray, w: FloatArray) -> float:
    """The censoring-weighted calibration-in-the-large by a horizon (``logit(risk)`` as
    offset): the fit behind :func:`calibration_intercept_at_horizon` and the
    evaluation's."""
    lp = logit(risk)
    return float(fit_logistic(y, np.ones((len(lp), 1)), w, offset=lp)[0])


# -- smoothed calibration curve ---------------------------------------------------------------
def aalen_johansen_at(time: FloatArray, codes: IntArray, cause: int, horizon: float) -> float:
    """Aalen-Johansen cumulative incidence of ``cause`` at ``horizon`` (1 - Kaplan-Meier
    when ``cause`` is the only event type), NaN beyond the last follow-up while some
    records are still event-free."""
    from spinerisk.metrics._horizon import _aalen_johansen

    estimate, still_at_risk = _aalen_johansen(time, codes, cause, horizon)
    if horizon > time.max() and still_at_risk:
        return float("nan")
    return estimate


def smoothed_calibration_at_horizon(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    horizon: float,
    *,
    cause: int | None = None,
    frac: float = 0.2,
    grid: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Smoothed calibration curve at a horizon: mean predicted risk against the observed
    risk (Kaplan-Meier or Aalen-Johansen) of running windows of records.

    Records are ordered by predicted risk; for each grid value the ``ceil(frac * n)``
    records centred on it form a window (shifted inwards at the ends). The curve joins,
    for each window, its mean predicted risk and its observed risk at ``horizon``:
    1 - Kaplan-Meier (``cause=None``) or the Aalen-Johansen cumulative incidence of
    ``cause``. This is a nearest-neighbour smoother like
    ``riskRegression::plotCalibration(method="nne")``; censoring is handled by the
    estimator itself, so no model for it is needed.

    Parameters
    ----------
    time, event, risk, horizon, cause
        As in :func:`brier_score_at_horizon`.
    frac : float, default=0.2
        Share of the records in each window, in (0, 1].
    grid : array-like or None, default=None
        Predicted risks at which windows are centred; None means 25 windows whose
        centres run evenly through the ranks from ``frac / 2`` to ``1 - frac / 2`` (no
        window is cut short at the ends).

    Returns
    -------
    DataFrame
        Columns ``predicted`` (mean predicted risk of the window) and ``observed``;
        ``observed`` is NaN where the window's follow-up ends before the horizon.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import smoothed_calibration_at_horizon
    >>> rng = np.random.default_rng(1)
    >>> risk = rng.uniform(0.1, 0.6, 3000)
    >>> time = np.where(rng.random(3000) < risk, 100.0, 500.0)
    >>> curve = smoothed_calibration_at_horizon(time, time == 100.0, risk, 365.0)
    >>> bool(np.allclose(curve["observed"], curve["predicted"], atol=0.05))
    True
    """
    t, codes, p, cause_code = _inputs(time, event, risk, cause)
    h = check_horizon(horizon)
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0.0 < frac <= 1.0:
        raise ValueError(f"frac must be a number in (0, 1]; got frac={frac!r}.")
    grid_arr = default_grid(p, frac) if grid is None else check_probability(grid, "grid")
    predicted, observed = running_observed(t, codes, p, h, cause_code, grid_arr, frac)
    return pd.DataFrame({"predicted": predicted, "observed": observed})


def default_grid(risk: FloatArray, frac: float, n_points: int = 25) -> FloatArray:
    """Window centres: predicted risks at ranks evenly spaced from ``frac / 2`` to
    ``1 - frac / 2``."""
    lo, hi = frac / 2.0, 1.0 - frac / 2.0
    qs = np.linspace(lo, hi, n_points) if hi > lo else np.array([0.5])
    return np.asarray(np.quantile(risk, qs), dtype=float)


def running_observed(
    time: FloatArray,
    codes: IntArray,
    risk: FloatArray,
    horizon: float,
    cause: int,
    grid: FloatArray,
    frac: float,
) -> tuple[FloatArray, FloatArray]:
    """Mean predicted and observed risk at ``horizon`` of the window of each grid value
    (checked inputs; the bootstrap calls this directly). The windows' Aalen-Johansen
    estimates are computed together, as resamples (:func:`aalen_johansen_at` of each)."""
    from spinerisk.metrics._horizon import aalen_johansen_resamples

    n = len(time)
    k = max(1, int(np.ceil(frac * n)))
    order = np.argsort(risk, kind="stable")
    sorted_risk = risk[order]
    # the windows: k records centred on each grid value in the order of predicted risk
    lo = np.clip(np.searchsorted(sorted_risk, np.asarray(grid)) - k // 2, 0, n - k)
    window = lo.astype(np.intp)[:, None] + np.arange(k)
    predicted = sorted_risk[window].mean(axis=1)
    observed = aalen_johansen_resamples(time, codes, cause, horizon, order[window])
    return predicted, observed


# -- every bootstrap resample at once (see spinerisk.metrics._common) ---------------------------
class CensoringResamples:
    """:func:`censoring_survival` fitted on every resample of ``(time, ended)`` at once:
    scikit-survival's reverse Kaplan-Meier (``CensoringDistributionEstimator``) on the
    distinct times of all records, where a time not drawn in a resample adds a factor 1.

    ``at(x)`` is ``G`` at one time per resample (shape ``(n_resamples,)``, NaN where
    scikit-survival refuses: beyond the resample's last time while ``G`` is above 0);
    ``of_records()`` is ``G`` at each drawn record's own time (``(n_resamples, n)``).
    """

    def __init__(
        self, time: FloatArray, ended: npt.NDArray[np.bool_], rows: npt.NDArray[np.intp]
    ) -> None:
        from spinerisk.metrics._common import level_counts

        self.rows = rows
        self.levels, self.level = np.unique(time, return_inverse=True)
        u = len(self.levels)
        b, n = rows.shape
        total = level_counts(self.level, u, rows)
        ended_n = level_counts(self.level, u, rows, ended.astype(float))
        censored = total - ended_n
        at_risk = n - np.concatenate([np.zeros((b, 1)), np.cumsum(total, axis=1)[:, :-1]], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(censored != 0, censored / (at_risk - ended_n), 0.0)
        self.g: FloatArray = np.asarray(np.cumprod(1.0 - ratio, axis=1), dtype=np.float64)
        drawn = time[rows]
        self.last = drawn.max(axis=1)
        self.g_last = self.g[np.arange(b), np.searchsorted(self.levels, self.last)]

    def at(self, x: float) -> FloatArray:
        k = int(np.searchsorted(self.levels, x, side="right")) - 1
        value = np.ones(self.g.shape[0]) if k < 0 else self.g[:, k].copy()
        value[(x > self.last) & (self.g_last > 0)] = np.nan
        return value

    def of_records(self) -> FloatArray:
        return np.take_along_axis(self.g, self.level[self.rows], axis=1)

    def survival_at(self, times: npt.ArrayLike) -> FloatArray:
        """``G`` of the first resample at each of ``times`` (1 before the first time)."""
        x = np.asarray(times, dtype=np.float64)
        if (x > self.last[0]).any() and self.g_last[0] > 0:
            raise ValueError(
                f"The censoring distribution is only known up to the last follow-up time, "
                f"{float(self.last[0])!r}; got a time of {float(x.max())!r}."
            )
        k = np.searchsorted(self.levels, x, side="right") - 1
        out = np.where(k < 0, 1.0, self.g[0, np.maximum(k, 0)])
        return np.where(x > self.last[0], 0.0, out)


def horizon_outcome_resamples(
    time: FloatArray,
    codes: IntArray,
    horizon: float,
    cause: int,
    rows: npt.NDArray[np.intp],
    censoring: CensoringResamples | FloatArray,
) -> tuple[npt.NDArray[np.bool_], FloatArray, npt.NDArray[np.bool_]]:
    """:func:`horizon_outcome` of every resample: ``y`` and ``w`` of shape
    ``(n_resamples, n)`` and whether the resample has them (False where the censoring
    survival is undefined at the horizon).

    ``censoring`` is the censoring survival fitted on each resample, or a fixed reference
    (the weights of :func:`horizon_outcome` for every record, computed once).
    """
    t = time[rows]
    before = t <= horizon
    c = codes[rows]
    y = before & (c == cause)
    if not isinstance(censoring, CensoringResamples):
        return y, np.asarray(censoring)[rows], np.ones(rows.shape[0], dtype=bool)
    occurred = before & (c != 0)
    g_time = censoring.of_records()
    g_h = censoring.at(horizon)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(occurred & (g_time > 0), 1.0 / g_time, 0.0)
        late = np.where(g_h > 0, 1.0 / g_h, 0.0)
    w = np.where(t > horizon, late[:, None], w)
    return y, w, np.isfinite(g_h)


def fit_logistic_resamples(
    y: npt.NDArray[np.bool_],
    x: FloatArray,
    w: FloatArray,
    *,
    slope: bool,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> FloatArray:
    """:func:`~spinerisk.metrics._common.fit_logistic` on every row at once: the slope of
    ``logit P(y) = a + b x`` (``slope``) or the intercept with ``x`` as offset, with the
    same Newton steps, step halving and stopping rules, each row stopping at its own
    iteration; NaN where ``fit_logistic`` raises. Records of weight 0 add 0 to every sum.
    """
    rows = y.shape[0]
    out = np.full(rows, np.nan)
    yv = y.astype(float)
    positive = w > 0
    has_both = ((positive & y).any(axis=1)) & ((positive & ~y).any(axis=1))
    active = np.flatnonzero(has_both)
    yv, x, w = yv[active], x[active], w[active]
    beta = np.zeros((len(active), 2 if slope else 1))

    def loglik(b: FloatArray, sel: npt.NDArray[np.bool_] | slice = slice(None)) -> FloatArray:
        eta = b[:, :1] + (b[:, 1:] * x[sel] if slope else x[sel])
        return np.sum(w[sel] * (yv[sel] * eta - np.logaddexp(0.0, eta)), axis=1)

    current = loglik(beta)
    for _ in range(max_iter):
        if not len(active):
            break
        eta = beta[:, :1] + (beta[:, 1:] * x if slope else x)
        p = 1.0 / (1.0 + np.exp(-eta))
        r = w * (yv - p)
        v = w * p * (1.0 - p)
        with np.errstate(divide="ignore", invalid="ignore"):
            if slope:
                g0, g1 = r.sum(axis=1), (r * x).sum(axis=1)
                h00, h01, h11 = v.sum(axis=1), (v * x).sum(axis=1), (v * x * x).sum(axis=1)
                det = h00 * h11 - h01 * h01
                step = np.column_stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det])
                singular = det == 0
            else:
                h00 = v.sum(axis=1)
                step = (r.sum(axis=1) / h00)[:, None]
                singular = h00 == 0
        scale = np.ones(len(active))
        pending = np.ones(len(active), dtype=bool)
        candidate = beta.copy()
        value = current.copy()
        while pending.any():  # step halving keeps the likelihood from decreasing
            candidate[pending] = beta[pending] + scale[pending, None] * step[pending]
            value[pending] = loglik(candidate[pending], pending)
            ok = (value >= current - 1e-12) | (scale < 1e-8)
            pending &= ~ok
            scale[pending] /= 2.0
        moved = np.max(np.abs(scale[:, None] * step), axis=1)
        previous = current
        beta, current = candidate, value
        done = (moved < tol) | (np.abs(current - previous) < tol * (1.0 + np.abs(current)))
        finished = done & ~singular
        coef = beta[:, 1] if slope else beta[:, 0]
        fine = np.all(np.isfinite(beta), axis=1) & (np.max(np.abs(beta), axis=1) <= 1e6)
        out[active[finished & fine]] = coef[finished & fine]
        keep = ~(finished | singular)  # a singular Hessian raises in fit_logistic: NaN
        active, yv, x, w = active[keep], yv[keep], x[keep], w[keep]
        beta, current = beta[keep], current[keep]
    return out  # rows still active after max_iter did not converge: NaN, as the raise
