"""Calibration and decision curves of an evaluation, with bootstrap bands on the smoothed
calibration curves."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.evaluation._data import EvalData

__all__ = ["SURVIVAL_THRESHOLDS", "curves"]

#: Decision-curve thresholds of time-to-event endpoints when none are given (each
#: distinct treated group costs one Kaplan-Meier or Aalen-Johansen estimate).
SURVIVAL_THRESHOLDS: tuple[float, ...] = tuple(round(0.02 * k, 2) for k in range(1, 31))
#: Share of the records in each window of the time-to-event smoothed curve.
WINDOW_FRAC = 0.2


def _smoothed_observed(evd: EvalData, h: float, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """(x, observed) of the smoothed curve of ``evd`` at ``h`` on ``grid``."""
    import spinerisk.metrics as m
    from spinerisk.metrics._ipcw import running_observed

    p = evd.at(h)
    if evd.kind == "binary":
        curve = m.smoothed_calibration(evd.event, p, grid=grid)
        return grid, curve["observed"].to_numpy(float)
    codes = np.asarray(evd.event, dtype=np.int64)
    cause = evd.cause if evd.kind == "competing" else 1
    return running_observed(evd.follow_up, codes, p, h, cause, grid, WINDOW_FRAC)


def smoothed_curves(
    evd: EvalData, *, n_bootstrap: int, ci: float, random_state: int
) -> dict[float, pd.DataFrame]:
    """Smoothed calibration curve per horizon with percentile bootstrap bands.

    Binary: LOWESS of the outcome on the predicted risk (:func:`spinerisk.metrics.
    smoothed_calibration`) on 51 points across the predictions. Time-to-event:
    running windows of 20% of the records, mean predicted risk against Kaplan-Meier or
    Aalen-Johansen observed risk (:func:`spinerisk.metrics.smoothed_calibration_at_horizon`).
    Each resample of patients recomputes the curve at the same grid points (windows
    centred at the same predicted risks); ``lower`` and ``upper`` are pointwise
    percentiles over the resamples.
    """
    from spinerisk.metrics._ipcw import default_grid

    rng = np.random.default_rng([random_state, 2])
    rows = rng.integers(0, len(evd), size=(n_bootstrap, len(evd)))
    alpha = (1.0 - ci) / 2.0
    out: dict[float, pd.DataFrame] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for h in evd.estimable_horizons:
            p = evd.at(h)
            if evd.kind == "binary":
                grid = np.linspace(p.min(), p.max(), 51)
            else:
                grid = default_grid(p, WINDOW_FRAC)
            x, observed = _smoothed_observed(evd, h, grid)
            draws = np.full((n_bootstrap, len(grid)), np.nan)
            for b, r in enumerate(rows):
                try:
                    draws[b] = _smoothed_observed(evd.take(r), h, grid)[1]
                except ValueError:  # a resample without events
                    continue
            usable = np.isfinite(draws).sum(axis=0) > 0
            lower = np.full(len(grid), np.nan)
            upper = np.full(len(grid), np.nan)
            if usable.any():
                lower[usable] = np.nanquantile(draws[:, usable], alpha, axis=0)
                upper[usable] = np.nanquantile(draws[:, usable], 1.0 - alpha, axis=0)
            out[h] = pd.DataFrame(
                {"predicted": x, "observed": observed, "lower": lower, "upper": upper}
            )
    return out


def curves(
    evd: EvalData, thresholds: Any, *, n_bootstrap: int, ci: float, random_state: int
) -> tuple[dict[float, pd.DataFrame], dict[float, pd.DataFrame], dict[float, pd.DataFrame]]:
    """Binned calibration, smoothed calibration (with bands) and decision curve per horizon."""
    import spinerisk.metrics as m

    if thresholds is None and evd.kind != "binary":
        thresholds = SURVIVAL_THRESHOLDS
    binned: dict[float, pd.DataFrame] = {}
    decision: dict[float, pd.DataFrame] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse bins are flagged in the tables themselves
        for h in evd.estimable_horizons:
            p = evd.at(h)
            time = evd.time if evd.time is not None else np.empty(0)
            if evd.kind == "binary":
                binned[h] = m.calibration_curve(evd.event, p, n_bins=10, strategy="quantile")
                decision[h] = m.net_benefit(evd.event, p, thresholds)
            elif evd.kind == "survival":
                binned[h] = m.survival_calibration(time, evd.event, p, h, n_bins=10)
                decision[h] = m.net_benefit_survival(time, evd.event, p, h, thresholds)
            else:
                binned[h] = m.cif_calibration(time, evd.event, p, h, cause=evd.cause, n_bins=10)
                decision[h] = m.net_benefit_survival(
                    time, evd.event, p, h, thresholds, cause=evd.cause
                )
    smooth = smoothed_curves(evd, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state)
    return binned, smooth, decision
