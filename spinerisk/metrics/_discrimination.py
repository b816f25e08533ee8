"""Discrimination and overall accuracy of time-to-event predictions (single event and competing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from spinerisk._optional import import_optional
from spinerisk.metrics._common import (
    BoolArray,
    FloatArray,
    IntArray,
    as_float,
    check_binary,
    check_cause,
    check_event_codes,
    check_horizon,
    check_probability,
    check_same_length,
    check_time,
    level_counts,
    resample_counts,
)

__all__ = [
    "cause_specific_c",
    "competing_c",
    "harrell_c",
    "integrated_brier_score",
    "time_dependent_auc",
    "uno_c",
]


def _surv(event: BoolArray, time: FloatArray) -> np.ndarray:
    util = import_optional("sksurv.util", extra="evaluation", purpose="IPCW survival metrics")
    return util.Surv.from_arrays(event=event, time=time)


def _sksurv_metrics() -> Any:
    return import_optional("sksurv.metrics", extra="evaluation", purpose="IPCW survival metrics")


def _single_event(time: Any, event: Any, prefix: str = "") -> tuple[FloatArray, BoolArray]:
    t = check_time(time, f"{prefix}time")
    e = check_binary(event, f"{prefix}event")
    check_same_length(**{f"{prefix}time": t, f"{prefix}event": e})
    return t, e


def harrell_c(time: npt.ArrayLike, event: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Harrell's concordance index: higher risk should mean an earlier event.

    A pair is comparable when the record with the shorter time had the event (a record
    censored at the same time as an event counts as outliving it); it is concordant when
    that record has the higher risk. Tied risks count one half.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to event or censoring, > 0.
    event : array-like of shape (n_samples,)
        Whether the event was observed (bool or 0/1).
    risk : array-like of shape (n_samples,)
        Risk score or predicted risk; higher means an earlier event.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance.

    See Also
    --------
    lifelines.utils.concordance_index : The computation used (with ``-risk``).
    uno_c : The censoring-weighted version.

    Examples
    --------
    >>> from spinerisk.metrics import harrell_c
    >>> harrell_c([100, 200, 300, 400], [1, 1, 0, 1], [0.9, 0.5, 0.7, 0.1])
    0.8
    >>> harrell_c([100, -5], [1, 1], [0.9, 0.5])
    Traceback (most recent call last):
    ...
    ValueError: time[1]=-5.0 is not positive (1 such values); expected days from the index date to the event or censoring, > 0.
    """  # noqa: E501
    from lifelines.utils import concordance_index

    t, e = _single_event(time, event)
    r = as_float(risk, "risk")
    check_same_length(time=t, risk=r)
    try:
        # lifelines scores longer survival as higher: pass minus the risk
        return float(concordance_index(t, -r, e))
    except ZeroDivisionError as exc:
        raise ValueError(
            "harrell_c is undefined: no comparable pairs (no event is followed by a longer time)."
        ) from exc


def cause_specific_c(
    time: npt.ArrayLike, event: npt.ArrayLike, risk: npt.ArrayLike, *, cause: int = 1
) -> float:
    """Harrell's C for one cause, treating the other causes as censoring.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the first event or censoring, > 0.
    event : array-like of shape (n_samples,)
        Event code: 0 censored, 1, 2, ... the event type.
    risk : array-like of shape (n_samples,)
        Predicted risk of ``cause``; higher means an earlier event of that cause.
    cause : int, default=1
        Event code of interest.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance.

    See Also
    --------
    competing_c : Keeps records with a competing event in the risk set.

    Examples
    --------
    >>> from spinerisk.metrics import cause_specific_c
    >>> cause_specific_c([100, 200, 300, 400], [1, 2, 0, 1], [0.9, 0.5, 0.7, 0.1])
    1.0
    """
    t = check_time(time, "time")
    codes = check_event_codes(event, "event")
    check_same_length(time=t, event=codes)
    return harrell_c(t, codes == check_cause(cause), risk)


def competing_c(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    cause: int = 1,
    horizon: float | None = None,
) -> float:
    """Wolbers' concordance index for competing risks.

    A pair ``(i, j)`` is comparable when ``i`` had the event of interest at ``T_i`` (at or
    before ``horizon`` if given) and ``j`` either outlived ``T_i`` (``T_j > T_i``, or
    censored at ``T_j = T_i``) or had a competing event at any time: someone who died first
    can no longer have the fracture, so ranking them below ``i`` is correct. The pair is
    concordant when ``risk_i > risk_j``; tied risks count one half.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Days to the first event or censoring, > 0.
    event : array-like of shape (n_samples,)
        Event code: 0 censored, 1, 2, ... the event type.
    risk : array-like of shape (n_samples,)
        Predicted cumulative incidence (or any risk score) of ``cause``.
    cause : int, default=1
        Event code of interest; every other non-zero code is a competing event.
    horizon : float or None, default=None
        Only events of interest at or before this many days count as cases
        (truncated C). None uses all.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance. Without competing events it equals
        :func:`cause_specific_c`.

    Notes
    -----
    No library we depend on implements it (scikit-survival and lifelines only offer the
    single-event C), so it is written here with numpy, in blocks of cases to bound memory.
    It is the unweighted estimator: like Harrell's C it depends on the censoring
    distribution.

    References
    ----------
    Wolbers M, Koller MT, Witteman JCM, Steyerberg EW. Prognostic models with competing
    risks: methods and application to coronary risk prediction. Epidemiology
    2009;20:555-61.

    Examples
    --------
    >>> from spinerisk.metrics import competing_c
    >>> time = [100, 200, 300, 400]
    >>> event = [1, 2, 0, 1]
    >>> competing_c(time, event, [0.9, 0.5, 0.7, 0.1])
    0.75
    """
    t = check_time(time, "time")
    codes = check_event_codes(event, "event")
    r = as_float(risk, "risk")
    check_same_length(time=t, event=codes, risk=r)
    cause = check_cause(cause)
    is_case = codes == cause
    if horizon is not None:
        is_case &= t <= check_horizon(horizon)
    competing = (codes != 0) & (codes != cause)
    censored = codes == 0
    cases = np.flatnonzero(is_case)
    concordant = 0.0
    pairs = 0
    block = max(1, 2_000_000 // len(t))  # about 2M pair comparisons per block
    for start in range(0, len(cases), block):
        idx = cases[start : start + block]
        ti = t[idx][:, None]
        comparable = (t > ti) | ((t == ti) & censored) | competing
        ri = r[idx][:, None]
        concordant += np.count_nonzero(comparable & (r < ri))
        concordant += 0.5 * np.count_nonzero(comparable & (r == ri))
        pairs += int(np.count_nonzero(comparable))
    if pairs == 0:
        raise ValueError(
            f"competing_c is undefined: no comparable pairs (no event of cause {cause}"
            + ("" if horizon is None else f" at or before horizon={horizon!r}")
            + " with another record outliving it or having a competing event)."
        )
    return float(concordant / pairs)


def uno_c(
    train_time: npt.ArrayLike,
    train_event: npt.ArrayLike,
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    tau: float | None = None,
) -> float:
    """Uno's concordance index: Harrell's C weighted by inverse probability of censoring.

    Parameters
    ----------
    train_time, train_event : array-like of shape (n_train,)
        Days and event indicators (bool or 0/1) of the cohort used to estimate the
        censoring distribution (usually the training cohort).
    time, event : array-like of shape (n_samples,)
        Days and event indicators of the evaluated records. Times must lie within the
        follow-up of the training cohort.
    risk : array-like of shape (n_samples,)
        Risk score; higher means an earlier event.
    tau : float or None, default=None
        Truncation time in days: only pairs whose earlier time is below ``tau`` count.
        None uses all.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance.

    See Also
    --------
    sksurv.metrics.concordance_index_ipcw : The computation used.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import uno_c
    >>> time = np.array([50.0, 120, 200, 310, 400, 520, 600, 700])
    >>> event = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    >>> risk = np.array([8.0, 7, 6, 5, 4, 3, 2, 1])
    >>> uno_c(time, event, time, event, risk)
    1.0
    """
    tr_t, tr_e = _single_event(train_time, train_event, "train_")
    t, e = _single_event(time, event)
    r = as_float(risk, "risk")
    check_same_length(time=t, risk=r)
    tau_value = None if tau is None else check_horizon(tau, "tau")
    metrics = _sksurv_metrics()
    try:
        result = metrics.concordance_index_ipcw(_surv(tr_e, tr_t), _surv(e, t), r, tau=tau_value)
    except ValueError as exc:
        raise ValueError(f"uno_c: {exc}") from exc
    return float(result[0])


def time_dependent_auc(
    train_time: npt.ArrayLike,
    train_event: npt.ArrayLike,
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    times: npt.ArrayLike,
) -> FloatArray:
    """Cumulative/dynamic time-dependent AUC at each horizon (IPCW).

    At horizon ``h``, cases are records with an event at or before ``h`` and controls
    records still event-free after ``h``; cases are weighted by the inverse probability of
    censoring estimated on the training cohort.

    Parameters
    ----------
    train_time, train_event : array-like of shape (n_train,)
        Days and event indicators (bool or 0/1) of the cohort used to estimate the
        censoring distribution.
    time, event : array-like of shape (n_samples,)
        Days and event indicators of the evaluated records.
    risk : array-like of shape (n_samples,) or (n_samples, n_times)
        Risk score (one for all horizons) or predicted risk at each horizon.
    times : array-like of shape (n_times,)
        Horizons in days, inside the follow-up of the evaluated records.

    Returns
    -------
    ndarray of shape (n_times,)
        AUC at each horizon.

    See Also
    --------
    sksurv.metrics.cumulative_dynamic_auc : The computation used.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import time_dependent_auc
    >>> time = np.array([50.0, 120, 200, 310, 400, 520, 600, 700])
    >>> event = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    >>> risk = np.array([8.0, 7, 6, 5, 4, 3, 2, 1])
    >>> time_dependent_auc(time, event, time, event, risk, [150, 350]).tolist()
    [1.0, 1.0]
    """
    tr_t, tr_e = _single_event(train_time, train_event, "train_")
    t, e = _single_event(time, event)
    h = check_time(times, "times")
    r = np.asarray(risk)
    if r.ndim == 2 and r.shape[1] != 1:
        if r.shape != (len(t), len(h)):
            raise ValueError(
                f"risk has shape {r.shape}; expected ({len(t)},) or ({len(t)}, {len(h)}) "
                f"(one column per horizon in times)."
            )
        if not np.isfinite(r).all():
            raise ValueError("risk holds non-finite values; expected finite risks.")
        r = r.astype(float)
    else:
        r = as_float(r, "risk")
        check_same_length(time=t, risk=r)
    # one horizon at a time, events after it counted as controls' censoring: they are
    # neither cases nor weighted at it, and a censoring survival of 0 after the horizon
    # (every record censored at one end of study) must not make it unestimable
    out = []
    for k, hk in enumerate(h):
        rk = r if r.ndim == 1 else r[:, k if r.shape[1] > 1 else 0]
        try:
            auc, _ = _sksurv_metrics().cumulative_dynamic_auc(
                _surv(tr_e, tr_t), _surv(e & (t <= hk), t), rk, [hk]
            )
        except ValueError as exc:
            raise ValueError(f"time_dependent_auc: {exc}") from exc
        out.append(float(np.asarray(auc, dtype=float)[0]))
    return np.asarray(out, dtype=float)


def integrated_brier_score(
    train_time: npt.ArrayLike,
    train_event: npt.ArrayLike,
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    survival: npt.ArrayLike,
    times: npt.ArrayLike,
) -> float:
    """Integrated Brier score of predicted survival curves (IPCW).

    Parameters
    ----------
    train_time, train_event : array-like of shape (n_train,)
        Days and event indicators (bool or 0/1) of the cohort used to estimate the
        censoring distribution.
    time, event : array-like of shape (n_samples,)
        Days and event indicators of the evaluated records.
    survival : array-like of shape (n_samples, n_times)
        Predicted probability of being event-free at each of ``times``.
    times : array-like of shape (n_times,)
        At least two increasing times in days, inside the follow-up of the evaluated
        records.

    Returns
    -------
    float
        Brier score averaged over ``times`` (trapezoid rule); lower is better.

    See Also
    --------
    sksurv.metrics.integrated_brier_score : The computation used.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import integrated_brier_score
    >>> time = np.array([50.0, 120, 200, 310, 400, 520, 600, 700])
    >>> event = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    >>> flat = np.full((8, 3), 0.5)
    >>> round(integrated_brier_score(time, event, time, event, flat, [100, 300, 500]), 3)
    0.25
    """
    tr_t, tr_e = _single_event(train_time, train_event, "train_")
    t, e = _single_event(time, event)
    h = check_time(times, "times")
    if len(h) < 2:
        raise ValueError(f"times must hold at least two time points; got {len(h)}.")
    s = np.asarray(survival)
    if s.shape != (len(t), len(h)):
        raise ValueError(
            f"survival has shape {s.shape}; expected ({len(t)}, {len(h)}) "
            f"(one row per record, one column per time in times)."
        )
    s = check_probability(s.ravel(), "survival (flattened row by row)").reshape(s.shape)
    try:
        ibs = _sksurv_metrics().integrated_brier_score(_surv(tr_e, tr_t), _surv(e, t), s, h)
    except ValueError as exc:
        raise ValueError(f"integrated_brier_score: {exc}") from exc
    return float(ibs)


# -- every bootstrap resample at once (see spinerisk.metrics._common) ---------------------------
def _pair_c_resamples(
    time: FloatArray,
    risk: FloatArray,
    is_case: BoolArray,
    outlives: BoolArray,
    always_control: BoolArray | None,
    rows: npt.NDArray[np.intp],
    *,
    case_weight: FloatArray | None = None,
    tie_tol: float = 0.0,
    controls: BoolArray | None = None,
) -> FloatArray:
    """Concordance over comparable pairs in every resample, from pair weights.

    Case ``i`` and record ``j`` are comparable when ``T_j > T_i``, or ``T_j == T_i`` and
    ``outlives[j]`` (censored at the case's time), or ``always_control[j]`` (or, when
    ``controls`` is given, exactly when ``controls[j]``); a resample holding ``c_i`` and
    ``c_j`` copies of them holds ``c_i * c_j`` such pairs, each case copy weighted by
    ``case_weight[b, i] / c_i`` (default 1). The concordant (risk_i > risk_j, ties one
    half; risks within ``tie_tol`` are tied) and comparable counts per case are
    integers and half-integers below 2**24, so float32 matrix products add them exactly.
    """
    n = len(time)
    counts = _counts(rows, n)
    concordant = np.zeros(rows.shape[0])
    pairs = np.zeros(rows.shape[0])
    cases = np.flatnonzero(is_case)
    block = max(1, 2_000_000 // n)
    for start in range(0, len(cases), block):
        idx = cases[start : start + block]
        if controls is not None:
            comparable = np.broadcast_to(controls, (len(idx), n))
        else:
            ti = time[idx][:, None]
            comparable = (time > ti) | ((time == ti) & outlives)
            if always_control is not None:
                comparable = comparable | always_control
        ri = risk[idx][:, None]
        tied = np.abs(risk - ri) <= tie_tol
        score = (comparable & (risk < ri) & ~tied).astype(np.float32)
        score += np.float32(0.5) * (comparable & tied)
        own = (counts[:, idx] if case_weight is None else case_weight[:, idx]).astype(np.float64)
        concordant += np.sum(own * (counts @ score.T), axis=1, dtype=np.float64)
        pairs += np.sum(own * (counts @ comparable.T.astype(np.float32)), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, concordant / pairs, np.nan)


_LAST_COUNTS: list[tuple[Any, np.ndarray]] = []


def _counts(rows: npt.NDArray[np.intp], n: int) -> np.ndarray:
    """:func:`resample_counts` as float32, kept for the last two index matrices (the
    metrics of one bootstrap share them: the full-data check and the resamples)."""
    for kept, counts in _LAST_COUNTS:
        if kept is rows:
            return counts
    counts = resample_counts(rows, n, np.float32)
    _LAST_COUNTS[:] = [*_LAST_COUNTS[-1:], (rows, counts)]
    return counts


def _no_near_ties(risk: FloatArray, tol: float = 1e-8) -> bool:
    """Whether distinct risks are all more than ``tol`` apart (so scikit-survival's ties
    within 1e-8 are exact ties in every resample)."""
    return bool(np.all(np.diff(np.unique(risk)) > tol))


def uno_c_resamples(
    time: FloatArray, event: BoolArray, risk: FloatArray, tau: float, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`uno_c` of every resample, each its own censoring reference (scikit-survival's
    ``concordance_index_ipcw``: cases before ``tau`` weighted by ``1 / G(T)**2``, ties
    within 1e-8). Needs :func:`_no_near_ties` of ``risk``."""
    from spinerisk.metrics._ipcw import CensoringResamples

    event = np.asarray(event, dtype=bool)
    drawn_event = event[rows]
    g = CensoringResamples(time, event, rows).of_records()
    case = drawn_event & (time[rows] < tau)
    with np.errstate(divide="ignore"):
        weight = np.where(case, 1.0 / np.square(g), 0.0)
    valid = drawn_event.any(axis=1) & ~(case & (g == 0)).any(axis=1)
    per_record = _scatter(weight, rows, len(time))
    value = _pair_c_resamples(
        time, risk, event, ~event, None, rows, case_weight=per_record, tie_tol=1e-8
    )
    return np.where(valid, value, np.nan)


def time_dependent_auc_resamples(
    time: FloatArray, event: BoolArray, risk: FloatArray, horizon: float, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`time_dependent_auc` at one horizon of every resample, each its own censoring
    reference (scikit-survival's ``cumulative_dynamic_auc``: cases by the horizon weighted
    by ``1 / G(T)``, controls event-free after it, ties within 1e-8). Needs
    :func:`_no_near_ties` of ``risk``."""
    from spinerisk.metrics._ipcw import CensoringResamples

    event = np.asarray(event, dtype=bool)
    drawn_event = event[rows]
    drawn_time = time[rows]
    g = CensoringResamples(time, event, rows).of_records()
    with np.errstate(divide="ignore"):
        weight = np.where(drawn_event, 1.0 / g, 0.0)
    case = drawn_event & (drawn_time <= horizon)
    valid = (  # only the cases are weighted: a censoring survival of 0 later is no matter
        drawn_event.any(axis=1)
        & ~(case & (g == 0)).any(axis=1)
        & (horizon < drawn_time.max(axis=1))
        & (horizon >= drawn_time.min(axis=1))
    )
    # weighted Mann-Whitney count over the distinct risks (exact ties, by _no_near_ties)
    levels, level = np.unique(risk, return_inverse=True)
    control = level_counts(level, len(levels), rows, (time > horizon).astype(float))
    below = np.cumsum(control, axis=1) - control
    case_weight = np.where(case, weight, 0.0)
    lv = level[rows]
    wins = np.take_along_axis(below, lv, axis=1) + 0.5 * np.take_along_axis(control, lv, axis=1)
    numerator = np.sum(case_weight * wins, axis=1)
    denominator = np.sum(case_weight, axis=1) * control.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = numerator / denominator
    return np.where(valid & (denominator > 0), value, np.nan)


def _scatter(weight: FloatArray, rows: npt.NDArray[np.intp], n: int) -> FloatArray:
    """Per resample, the summed weight of every record's drawn copies: ``(n_resamples, n)``
    (copies of a record have equal weights, so this is ``count * weight``)."""
    b = rows.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n + rows).ravel()
    summed = np.bincount(flat, weights=weight.ravel(), minlength=b * n).reshape(b, n)
    return np.asarray(summed, dtype=np.float64)


def harrell_c_resamples(
    time: FloatArray, event: BoolArray, risk: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`harrell_c` of every resample (lifelines' pairs: a record censored at an
    event's time outlives it; tied event times are not comparable)."""
    event = np.asarray(event, dtype=bool)
    return _pair_c_resamples(time, risk, event, ~event, None, rows)


def competing_c_resamples(
    time: FloatArray,
    codes: IntArray,
    risk: FloatArray,
    cause: int,
    horizon: float | None,
    rows: npt.NDArray[np.intp],
) -> FloatArray:
    """:func:`competing_c` of every resample."""
    is_case = codes == cause
    if horizon is not None:
        is_case &= time <= horizon
    competing = (codes != 0) & (codes != cause)
    return _pair_c_resamples(time, risk, is_case, codes == 0, competing, rows)
