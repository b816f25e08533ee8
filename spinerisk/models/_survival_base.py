"""Shared machinery of the time-to-event models: time grids, Breslow, prediction mixins.

Also used by :mod:`spinerisk.models._competing`.
"""

from __future__ import annotations

import abc
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from spinerisk.targets import check_survival_target

FloatArray = npt.NDArray[np.float64]


# -- shared helpers (also used by spinerisk.models._competing) --------------------------------
def _check_times(times: Any, max_time: float, *, name: str = "times") -> FloatArray:
    """Return ``times`` as a 1-d float array of days in ``(0, max_time]``, or raise."""
    arr = np.atleast_1d(np.asarray(times, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a positive number of days or a non-empty 1-d sequence of them; "
            f"got an array of shape {arr.shape}."
        )
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(
            f"{name} must be finite and > 0 (days); got {float(arr[bad][0])!r}. "
            "Risk is only defined after the index date."
        )
    beyond = arr > max_time
    if beyond.any():
        raise ValueError(
            f"horizon {float(arr[beyond][0])!r} days (in {name}) is beyond the last training "
            f"event time, {float(max_time)!r} days. The model does not extrapolate past its "
            f"training follow-up: use {name} <= {float(max_time)!r}, or refit on data with "
            "longer follow-up."
        )
    return arr


def step_at(grid: FloatArray, values: FloatArray, times: FloatArray) -> FloatArray:
    """Right-continuous step function through ``(grid, values)`` at ``times``; 0 before it.

    ``values`` has the grid on its last axis.
    """
    idx = np.searchsorted(grid, times, side="right")  # number of grid points <= t
    zero = np.zeros(values.shape[:-1] + (1,))
    return np.concatenate([zero, values], axis=-1)[..., idx]


def _breslow(
    time: FloatArray, event: npt.NDArray[np.bool_], lp: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Breslow baseline cumulative hazard at the distinct event times.

    H0(t) = sum over event times t_i <= t of d_i / sum_{j: T_j >= t_i} exp(lp_j).
    """
    order = np.argsort(time, kind="stable")
    t, e, eta = time[order], event[order].astype(float), lp[order]
    shift = float(eta.max())
    w = np.exp(eta - shift)
    at_risk = np.cumsum(w[::-1])[::-1]  # sum of w over records with time >= t[i]
    uniq, first = np.unique(t, return_index=True)
    deaths = np.add.reduceat(e, first)
    keep = deaths > 0
    increments = deaths[keep] / at_risk[first][keep] * np.exp(-shift)
    return uniq[keep], np.cumsum(increments)


def _cox_hazard(
    lp: FloatArray, unique_times: FloatArray, baseline: FloatArray, times: FloatArray
) -> FloatArray:
    """Cox cumulative hazard ``exp(lp) * H0(t)``: shape (n_records, n_times)."""
    h0 = step_at(unique_times, baseline, times)
    return np.exp(lp)[:, None] * h0[None, :]


def _check_survival_y(y: Any, n_samples: int, owner: str) -> np.ndarray:
    if y is None:
        raise ValueError(
            f"{owner} requires y to be passed, but the target y is None; pass a survival "
            "target from spinerisk.targets.make_survival_target(event, time)."
        )
    y = check_survival_target(y)
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} records but y has {len(y)}; they must match.")
    if not y["event"].any():
        raise ValueError(
            "y has no events (every record is censored); a survival model needs at least one."
        )
    return y


def check_number(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = np.inf,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise a ValueError unless ``value`` is a number (an integer) in the interval."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        what = "an integer" if integer else "a number"
        bounds = f"> {low:g}" if low_open else f">= {low:g}"
        if high != np.inf:
            bounds += f" and < {high:g}" if high_open else f" and <= {high:g}"
        raise ValueError(f"{name} must be {what} {bounds}; got {name}={value!r}.")


def _take_rows(X: Any, rows: npt.NDArray[np.intp]) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


def _times_on_grid(grid: FloatArray, times: Any, name: str = "times") -> FloatArray:
    """``times`` checked against the training grid; None means the grid itself."""
    if times is None:
        return grid.copy()
    return _check_times(times, float(grid[-1]), name=name)


class _SurvivalPredictions(abc.ABC):
    """Survival, cumulative hazard and risk from ``_cumulative_hazard(X, times)``."""

    unique_times_: FloatArray

    @abc.abstractmethod
    def _cumulative_hazard(self, X: Any, times: FloatArray) -> FloatArray:
        """Cumulative hazard of each record at ``times``: shape (n_samples, n_times)."""

    def _times(self, times: Any, name: str = "times") -> FloatArray:
        return _times_on_grid(self.unique_times_, times, name)

    def predict_cumulative_hazard(self, X: Any, times: Any = None) -> FloatArray:
        """Cumulative hazard H(t | x) of each record at each time.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        times : array-like of float or None, default=None
            Days after the index date, each in ``(0, unique_times_[-1]]``. None means
            ``unique_times_``, the training event times.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Non-decreasing in time.

        Raises
        ------
        ValueError
            If a time is <= 0 or beyond the last training event time.
        """
        check_is_fitted(self)
        return self._cumulative_hazard(X, self._times(times))

    def predict_survival_function(self, X: Any, times: Any = None) -> FloatArray:
        """Probability of remaining event-free, S(t | x), at each time.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        times : array-like of float or None, default=None
            Days after the index date, each in ``(0, unique_times_[-1]]``. None means
            ``unique_times_``, the training event times.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Values in [0, 1], non-increasing in time.

        Raises
        ------
        ValueError
            If a time is <= 0 or beyond the last training event time.
        """
        return np.exp(-self.predict_cumulative_hazard(X, times))

    def predict_risk(self, X: Any, horizons: Any) -> FloatArray:
        """Risk of the event by each horizon, 1 - S(horizon | x).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        horizons : float or array-like of float
            Days after the index date, each in ``(0, unique_times_[-1]]``.

        Returns
        -------
        ndarray of shape (n_samples, n_horizons)
            Probabilities in [0, 1].

        Raises
        ------
        ValueError
            If a horizon is <= 0 or beyond the last training event time.
        """
        check_is_fitted(self)
        if horizons is None:
            raise ValueError("horizons must be given (days after the index date); got None.")
        times = self._times(horizons, name="horizons")
        return 1.0 - np.exp(-self._cumulative_hazard(X, times))

    def score(self, X: Any, y: Any) -> float:
        """Harrell's concordance index of ``predict(X)`` on ``(event, time)`` records.

        Makes the estimator usable in ``GridSearchCV`` and ``cross_validate`` without a
        ``scoring`` argument (as in scikit-survival).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (bool) and ``time`` (days).

        Returns
        -------
        float
            In [0, 1]; 0.5 is chance, higher is better.
        """
        from spinerisk.metrics import harrell_c

        check_is_fitted(self)
        y = _check_survival_y(y, len(X), type(self).__name__)
        estimator: Any = self  # the estimator this mixin is part of has predict
        return harrell_c(y["time"], y["event"], estimator.predict(X))


class CoxType(_SurvivalPredictions):
    """H(t | x) = H0(t) * exp(lp(x)), with a Breslow H0 on the training event times."""

    baseline_cumulative_hazard_: FloatArray

    @abc.abstractmethod
    def _lp(self, X: Any) -> FloatArray:
        """Linear predictor (log hazard ratio) of each record."""

    def fit_baseline(self, time: FloatArray, event: np.ndarray, lp: FloatArray) -> None:
        self.unique_times_, self.baseline_cumulative_hazard_ = _breslow(time, event, lp)

    def _cumulative_hazard(self, X: Any, times: FloatArray) -> FloatArray:
        return _cox_hazard(self._lp(X), self.unique_times_, self.baseline_cumulative_hazard_, times)

    def predict(self, X: Any) -> FloatArray:
        """Risk score: log hazard ratio relative to the average training record.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher means a higher hazard; ``H(t | x) = H0(t) * exp(score)``.
        """
        check_is_fitted(self)
        return self._lp(X)
