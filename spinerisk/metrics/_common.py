"""Input checks, risk bins and binomial intervals shared by the metric functions.

Every check names the argument, the first offending position and its value, and what was
expected, so a caller can find the bad record.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from spinerisk._optional import import_optional
from spinerisk.exceptions import DataQualityWarning

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Two-sided 95% normal quantile, for the intervals of the calibration tables.
Z95 = 1.959963984540054

# Evaluated metric functions run on bootstrap resamples: keep the checks vectorised.


def _first_bad(values: np.ndarray, bad: np.ndarray) -> tuple[int, Any]:
    pos = int(np.flatnonzero(bad)[0])
    value = values[pos]
    return pos, value.item() if hasattr(value, "item") else value


def as_1d(values: Any, name: str) -> np.ndarray:
    """``values`` as a non-empty 1-D array (an ``(n, 1)`` column is accepted)."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional; got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one record.")
    if arr.dtype == object:  # pandas nullable columns ("boolean", "Int64", "Float64")
        missing = pd.isna(arr)
        if missing.any():
            pos = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{name}[{pos}] is missing ({int(missing.sum())} missing values); expected a "
                "value for every record (drop or impute the records without one)."
            )
        kind = pd.api.types.infer_dtype(arr, skipna=False)
        if kind == "boolean":
            arr = arr.astype(bool)
        elif kind in ("integer", "floating", "mixed-integer-float", "decimal"):
            arr = arr.astype(np.float64)
    return arr


def as_float(values: Any, name: str) -> FloatArray:
    """``values`` as a finite 1-D float array."""
    arr = as_1d(values, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric; got dtype {arr.dtype} (first value {arr[0]!r}).")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"{name}[{pos}]={value!r} is not finite ({int(bad.sum())} such values); "
            f"expected finite numbers."
        )
    return arr


def check_probability(values: Any, name: str) -> FloatArray:
    """Finite probabilities in [0, 1]."""
    arr = as_float(values, name)
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"{name}[{pos}]={value!r} is outside [0, 1] ({int(bad.sum())} such values); "
            f"expected predicted probabilities."
        )
    return arr


def check_binary(values: Any, name: str) -> BoolArray:
    """A 0/1 or bool outcome as a bool array."""
    arr = as_1d(values, name)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be 0/1 or bool; got dtype {arr.dtype} (first value {arr[0]!r})."
        )
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"{name}[{pos}]={value!r} is not 0/1 ({int(bad.sum())} such values); "
            f"expected a binary outcome (0/1 or bool)."
        )
    return arr.astype(bool)


def check_time(values: Any, name: str) -> FloatArray:
    """Finite times in days, strictly positive."""
    arr = as_float(values, name)
    bad = arr <= 0.0
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"{name}[{pos}]={value!r} is not positive ({int(bad.sum())} such values); "
            f"expected days from the index date to the event or censoring, > 0."
        )
    return arr


def check_event_codes(values: Any, name: str) -> IntArray:
    """Competing-risks event codes: non-negative integers, 0 = censored."""
    arr = as_1d(values, name)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold integer event codes; got dtype {arr.dtype} (first value {arr[0]!r})."
        )
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr.astype(float)) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"{name}[{pos}]={value!r} is not an event code ({int(bad.sum())} such values); "
            f"expected integers 0 (censored), 1, 2, ... (the event type)."
        )
    return arr.astype(np.int64)


def check_same_length(**arrays: np.ndarray) -> int:
    """The common length of the arrays, or a ValueError naming the two that differ."""
    names = list(arrays)
    first = names[0]
    n = len(arrays[first])
    for other in names[1:]:
        if len(arrays[other]) != n:
            raise ValueError(
                f"{first} has {n} values but {other} has {len(arrays[other])}; "
                f"expected one value per record."
            )
    return n


def check_cause(cause: Any, name: str = "cause") -> int:
    """A positive integer event code."""
    if isinstance(cause, bool) or not isinstance(cause, numbers.Integral) or cause < 1:
        raise ValueError(f"{name} must be a positive integer event code; got {name}={cause!r}.")
    return int(cause)


def check_horizon(horizon: Any, name: str = "horizon") -> float:
    """A finite positive horizon in days."""
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real):
        raise ValueError(f"{name} must be a number of days > 0; got {name}={horizon!r}.")
    value = float(horizon)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number of days > 0; got {name}={horizon!r}.")
    return value


def check_n_bins(n_bins: Any) -> int:
    """A positive integer number of bins."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got n_bins={n_bins!r}.")
    return int(n_bins)


def check_thresholds(thresholds: Sequence[float] | None) -> FloatArray:
    """Decision thresholds strictly inside (0, 1); default 0.01, 0.02, ..., 0.99."""
    if thresholds is None:
        return np.round(np.arange(1, 100) / 100.0, 2)
    arr = as_float(thresholds, "thresholds")
    bad = (arr <= 0.0) | (arr >= 1.0)
    if bad.any():
        pos, value = _first_bad(arr, bad)
        raise ValueError(
            f"thresholds[{pos}]={value!r} is outside (0, 1); expected risk thresholds "
            f"strictly between 0 and 1 (net benefit weighs false positives by t / (1 - t))."
        )
    return arr


def assign_bins(p: FloatArray, n_bins: int, strategy: str = "quantile") -> IntArray:
    """0-based bin of each prediction, binned as :func:`sklearn.calibration.calibration_curve`.

    ``"quantile"`` uses the percentiles of ``p`` as edges (equal-frequency bins; tied
    predictions share a bin, so bins may be unequal or empty), ``"uniform"`` equal-width
    bins on [0, 1]. A value on an inner edge goes to the lower bin.
    """
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform'; got strategy={strategy!r}.")
    return np.searchsorted(edges[1:-1], p).astype(np.int64)


def wilson_interval(count: npt.ArrayLike, nobs: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Wilson score 95% interval of ``count / nobs`` (statsmodels ``proportion_confint``)."""
    proportion = import_optional(
        "statsmodels.stats.proportion", extra="evaluation", purpose="Wilson intervals"
    )
    lower, upper = proportion.proportion_confint(count, nobs, alpha=0.05, method="wilson")
    return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)


#: Fewest records of the rarer outcome a group should have when a calibration slope has
#: an intercept per group: with fewer, the per-group intercepts bias the slope away from
#: 0 (the incidental-parameter problem; on calibrated risks, 10 records per group gave
#: about 1.09, 4 gave 1.4).
MIN_GROUP_OUTCOMES = 10


def slope_design(
    lp: FloatArray,
    groups: npt.ArrayLike | None,
    y: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Design matrix of a calibration slope: an intercept, or one per group, then ``lp``;
    and the records it keeps.

    With ``groups`` (for example the fold of each cross-validated prediction) every
    group gets its own intercept and the slope of ``lp`` is shared: the slope of the
    models that made the predictions, each on its own records, without the differences
    between their baselines (which, pooled under one intercept, act as noise in ``lp``
    and pull the slope towards 0). A group whose records (of positive weight) all have,
    or all lack, the outcome says nothing about the slope (its own intercept would be
    infinite), so its records are left out, with a :class:`DataQualityWarning`. Groups
    with fewer than :data:`MIN_GROUP_OUTCOMES` records of the rarer outcome get a warning
    too: their intercepts bias the slope away from 0.

    Raises
    ------
    ValueError
        When ``groups`` is not one label per record, has missing labels, or no group has
        records both with and without the outcome.
    """
    n = len(lp)
    if groups is None:
        return np.column_stack([np.ones_like(lp), lp]), np.ones(n, dtype=bool)
    labels = as_1d(np.asarray(groups, dtype=object), "groups")
    check_same_length(risk=lp, groups=labels)
    index, levels = pd.factorize(labels)  # any labels, integers and text mixed too
    outcome = np.asarray(y, dtype=bool)
    counted = np.ones(n, dtype=bool) if weights is None else np.asarray(weights) > 0
    with_outcome = np.bincount(index[counted & outcome], minlength=len(levels))
    without = np.bincount(index[counted & ~outcome], minlength=len(levels))
    rarer = np.minimum(with_outcome, without)
    informative = np.flatnonzero(rarer > 0)
    if informative.size == 0:
        raise ValueError(
            f"none of the {len(levels)} groups has records both with and without the "
            "outcome, so a slope with an intercept per group is not estimable; use fewer, "
            "larger groups (fewer folds) or groups=None."
        )
    # labels as given (as_1d reads whole numbers in an object column as floats)
    left_out = [
        int(v) if isinstance(v, float) and v.is_integer() else v
        for v in (levels[k] for k in np.flatnonzero(rarer == 0))
    ]
    if left_out:
        warnings.warn(
            f"{len(left_out)} of {len(levels)} groups ({', '.join(map(str, left_out[:5]))}) "
            "have records with only one outcome and are left out of the calibration slope "
            "(they say nothing about it).",
            DataQualityWarning,
            stacklevel=3,
        )
    small = informative[rarer[informative] < MIN_GROUP_OUTCOMES]
    if small.size:
        warnings.warn(
            f"{small.size} of {len(levels)} groups have fewer than {MIN_GROUP_OUTCOMES} "
            f"records of the rarer outcome (fewest: {int(rarer[small].min())}); an "
            "intercept per group then biases the calibration slope away from 0. Use "
            "fewer, larger groups (fewer folds).",
            DataQualityWarning,
            stacklevel=3,
        )
    keep = np.isin(index, informative)
    dummies = index[keep][:, None] == informative[None, :]
    return np.column_stack([dummies.astype(np.float64), lp[keep]]), keep


def fit_logistic(
    y: npt.ArrayLike,
    exog: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    offset: npt.ArrayLike | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> FloatArray:
    """Maximum-likelihood coefficients of a weighted logistic regression (Newton-Raphson).

    A small, fast solver for the few-parameter fits of calibration and recalibration
    (an intercept, or one per group, and a slope), which run on every bootstrap
    resample. Tests check it against
    statsmodels' ``GLM(family=Binomial(), freq_weights=...)`` to 1e-8.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 outcome.
    exog : array-like of shape (n, k)
        Design matrix (include a column of ones for an intercept).
    weights : array-like of shape (n,) or None
        Non-negative case weights (inverse-probability-of-censoring weights); None is 1.
    offset : array-like of shape (n,) or None
        Fixed term added to the linear predictor.

    Returns
    -------
    ndarray of shape (k,)

    Raises
    ------
    ValueError
        When the fit does not converge (separation, a single class among the weighted
        records) or gives non-finite coefficients.
    """
    yv = np.asarray(y, dtype=float)
    x = np.asarray(exog, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    w = np.ones_like(yv) if weights is None else np.asarray(weights, dtype=float)
    off = np.zeros_like(yv) if offset is None else np.asarray(offset, dtype=float)
    keep = w > 0
    yv, x, w, off = yv[keep], x[keep], w[keep], off[keep]
    if yv.size == 0 or np.all(yv == yv[0]):
        raise ValueError("The logistic fit needs weighted records with and without the outcome.")
    beta = np.zeros(x.shape[1])

    def loglik(b: FloatArray) -> float:
        eta = x @ b + off
        # log(1 + exp(eta)) computed stably
        return float(np.sum(w * (yv * eta - np.logaddexp(0.0, eta))))

    current = loglik(beta)
    for _ in range(max_iter):
        eta = x @ beta + off
        p = 1.0 / (1.0 + np.exp(-eta))
        grad = x.T @ (w * (yv - p))
        hess = x.T @ (x * (w * p * (1.0 - p))[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"The logistic fit is singular: {exc}.") from exc
        scale = 1.0
        while True:  # step halving keeps the likelihood from decreasing
            candidate = beta + scale * step
            value = loglik(candidate)
            if value >= current - 1e-12 or scale < 1e-8:
                break
            scale /= 2.0
        beta, previous, current = candidate, current, value
        if np.max(np.abs(scale * step)) < tol or abs(current - previous) < tol * (
            1.0 + abs(current)
        ):
            break
    else:
        raise ValueError("The logistic fit did not converge (separated outcome?).")
    if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e6:
        raise ValueError("The logistic fit gave non-finite coefficients (separated outcome?).")
    return np.asarray(beta, dtype=float)


# -- bootstrap resamples as index matrices ------------------------------------------------------
# The ``*_resamples`` functions of the metric modules compute a metric on every row of a
# resample index matrix ``rows`` (shape ``(n_resamples, n)``, each row the positions of the
# records drawn) at once, on inputs checked once by the caller. Each returns one value per
# resample, NaN where the metric is undefined on it (where the plain function raises).
# They give the plain function's value on ``data[rows[b]]`` up to the order in which
# floating-point sums are added (1e-12); ``tests/test_bootstrap_fast.py`` holds them to it.


def resample_counts(rows: npt.NDArray[np.intp], n: int, dtype: Any = np.float64) -> np.ndarray:
    """How often each of the ``n`` records is drawn in each resample: ``(n_resamples, n)``."""
    b = rows.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n + rows).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(dtype)


def level_counts(
    level: npt.NDArray[np.intp],
    n_levels: int,
    rows: npt.NDArray[np.intp],
    weights: np.ndarray | None = None,
) -> FloatArray:
    """Per resample, the number (or the summed ``weights``) of drawn records at each level:
    ``out[b, k] = sum(weights[r] for r in rows[b] if level[r] == k)``."""
    b = rows.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n_levels + level[rows]).ravel()
    w = None if weights is None else np.asarray(weights, dtype=float)[rows].ravel()
    counts = np.bincount(flat, weights=w, minlength=b * n_levels).reshape(b, n_levels)
    return np.asarray(counts, dtype=np.float64)
