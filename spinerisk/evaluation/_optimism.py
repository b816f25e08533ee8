"""Optimism correction that holds for every backend: the .632+ bootstrap.

Harrell's bootstrap (apparent performance of a refit on its own resample minus its
performance on the original records) under-states the optimism of models that memorise
their training records, boosted trees most: about 63% of the original records are in each
resample, so the "test" half of the difference is itself partly apparent. Measured on
GLOW500 and the hip-fracture study it corrected the ``xgboost`` AUROC by about half of what
5-fold cross-validation shows (``docs/benchmarks-default.md``, part 4).

The .632+ estimator (Efron and Tibshirani 1997) tests each refit only on the records its
resample left out (out-of-bag), so no memorised record is scored, and weighs that pessimistic
estimate (each refit saw about 63% of the distinct records) against the apparent one by how
far the out-of-bag performance falls towards no information (the performance of the original
model's risks shuffled across records). Every step of the model, its tuning included
(penalty choice, early stopping, stacking weights), is repeated inside every refit: the refit
is a :func:`sklearn.base.clone` of the model fitted from scratch.

References
----------
Efron B, Tibshirani R. Improvements on cross-validation: the .632+ bootstrap method.
J Am Stat Assoc 1997;92:548-60.
Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, section 17.2.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spinerisk.evaluation._bootstrap import MetricSpec, evaluate_specs
from spinerisk.evaluation._data import EvalData, predict_values
from spinerisk.models._interval import unique_ids

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = [
    "PLUS_METRICS",
    "OptimismEstimates",
    "combine_632plus",
    "optimism_632plus",
    "optimism_estimates",
]

#: Weight of the out-of-bag estimate without overfitting (1 - 1/e, rounded as by Efron).
_W632 = 0.632
#: Out-of-bag records a refit needs before it is scored (fewer: the refit is left out).
_MIN_OOB = 10
#: Metrics corrected by .632+: discrimination and proper scores, whose value moves one way
#: from perfect towards no information. The calibration metrics (slope, intercept, O/E,
#: ECE) have a target value, not a direction, and the out-of-bag refits (about 63% of the
#: distinct records, so more shrunk) bias them; they keep Harrell's optimism.
PLUS_METRICS = frozenset(
    {
        "auroc",
        "auprc",
        "brier",
        "scaled_brier",
        "harrell_c",
        "uno_c",
        "competing_c",
        "td_auc",
        "ibs",
    }
)
SLOW_OPTIMISM_S = 30.0
"""Seconds of refits above which evaluate warns before starting them."""
logger = logging.getLogger("spinerisk.evaluation._evaluate")  # the log evaluate's users read


@dataclass(frozen=True)
class OptimismEstimates:
    """Every estimate from one set of bootstrap refits, one value per metric.

    Attributes
    ----------
    apparent : ndarray
        The model's metrics on the records it was fitted on.
    harrell : ndarray
        Harrell's optimism: mean of (refit on its resample - refit on the original records).
    out_of_bag : ndarray
        Mean metric of each refit on the records its resample left out.
    no_information : ndarray
        The metric of the model's risks shuffled across records (no information).
    optimism : ndarray
        The optimism used: .632+ for the metrics in :data:`PLUS_METRICS`
        (``apparent - (1 - w) * apparent - w * out_of_bag`` with Efron and Tibshirani's
        weight ``w``), Harrell's for the others; ``apparent - optimism`` is the corrected
        value.
    n_refits : int
        Refits that were fitted and scored.
    seconds_first : float
        Wall-clock seconds of the first refit, from which the rest was estimated.
    """

    apparent: np.ndarray
    harrell: np.ndarray
    out_of_bag: np.ndarray
    no_information: np.ndarray
    optimism: np.ndarray
    n_refits: int
    seconds_first: float


def _with_own_reference(evd: EvalData) -> EvalData:
    """The records as their own censoring reference, kept when a subset is taken (the
    out-of-bag records are scored with the censoring distribution of every record)."""
    if evd.kind == "binary" or evd.ref_time is not None:
        return evd
    return replace(
        evd,
        ref_time=evd.follow_up,
        ref_event=evd.occurred,
        ref_any=np.asarray(evd.event != 0, dtype=bool),
    )


def _refit_once(
    model: RiskModel,
    data: pd.DataFrame,
    rows: np.ndarray,
    specs: list[MetricSpec],
    horizons: tuple[float, ...],
    original: EvalData,
    grid: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray] | str:
    """One refit on the resample ``rows``: (Harrell's difference, out-of-bag metrics), or
    why the model could not be fitted on it."""
    from sklearn.base import clone

    from spinerisk.exceptions import DataQualityWarning

    boot = unique_ids(data.iloc[rows], model.id_field_)
    out_of_bag = np.setdiff1d(np.arange(len(data)), rows)
    try:
        with warnings.catch_warnings():  # the original fit already warned about its data
            warnings.simplefilter("ignore", DataQualityWarning)
            refit = clone(model).fit(boot)
        apparent, _ = predict_values(refit, boot, horizons, grid=grid)
        tested, _ = predict_values(refit, data, horizons, grid=grid)
    except ValueError as exc:  # a resample the model cannot be fitted on (too few events)
        return str(exc)
    tested = replace(
        tested, ref_time=original.ref_time, ref_event=original.ref_event, ref_any=original.ref_any
    )
    harrell = evaluate_specs(specs, apparent) - evaluate_specs(specs, tested)
    oob = np.full(len(specs), np.nan)
    held = _with_own_reference(tested).take(out_of_bag)
    if len(out_of_bag) >= _MIN_OOB and len(np.unique(held.occurred)) == 2:
        oob = evaluate_specs(specs, held)
    return harrell, oob


def _no_information(
    specs: list[MetricSpec], original: EvalData, rng: np.random.Generator, n: int
) -> np.ndarray:
    """Mean metric of the original risks shuffled across records, ``n`` shuffles."""
    values = []
    for _ in range(n):
        order = rng.permutation(len(original))
        shuffled = replace(
            original,
            risk=original.risk[order],
            grid_risk=None if original.grid_risk is None else original.grid_risk[order],
            cache={},
        )
        values.append(evaluate_specs(specs, shuffled))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN metric columns
        return np.nanmean(np.vstack(values), axis=0)


def combine_632plus(apparent: np.ndarray, oob: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The .632+ estimate of each metric from its apparent, out-of-bag and
    no-information values (Efron and Tibshirani 1997, eq. 32, written for a metric of
    either direction: the overfitting rate is how far the out-of-bag value fell from the
    apparent one towards no information, between 0 and 1).

    >>> import numpy as np
    >>> combine_632plus(np.array([0.80]), np.array([0.70]), np.array([0.5])).round(3)
    array([0.728])
    """
    apparent, oob, gamma = (np.asarray(a, dtype=float) for a in (apparent, oob, gamma))
    span = apparent - gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(np.abs(span) > 1e-12, (apparent - oob) / span, 0.0)
    # out-of-bag beyond no information counts as no information (Efron's Err1')
    oob = np.where(rate > 1, gamma, oob)
    rate = np.clip(np.nan_to_num(rate, nan=0.0), 0.0, 1.0)
    weight = _W632 / (1 - (1 - _W632) * rate)
    return (1 - weight) * apparent + weight * oob


def optimism_estimates(
    model: RiskModel,
    data: pd.DataFrame,
    specs: list[MetricSpec],
    horizons: tuple[float, ...],
    original: EvalData,
    grid: np.ndarray | None,
    *,
    n_optimism: int,
    random_state: int,
    n_jobs: int | None,
    slow_s: float | None = None,
) -> OptimismEstimates:
    """Refit ``model`` on ``n_optimism`` bootstrap resamples of ``data`` and return the
    .632+ optimism with the quantities it is built from (and Harrell's, for comparison).

    The first refit is timed on its own; how long the others will take is logged before
    they start, and warned about when it exceeds ``slow_s`` seconds (None: evaluate's
    ``SLOW_OPTIMISM_S``).
    """
    from joblib import Parallel, delayed, effective_n_jobs

    if slow_s is None:
        slow_s = SLOW_OPTIMISM_S

    rng = np.random.default_rng([random_state, 1])
    rows = rng.integers(0, len(data), size=(n_optimism, len(data)))
    start = time.perf_counter()
    parts = [_refit_once(model, data, rows[0], specs, horizons, original, grid)]
    took = time.perf_counter() - start
    rest = n_optimism - 1
    if rest:
        workers = max(1, min(rest, effective_n_jobs(n_jobs)))
        left = took * math.ceil(rest / workers)
        message = (
            f"Optimism correction: {n_optimism} bootstrap refits of the "
            f"{getattr(model, 'backend_', '?')} model on {len(data)} records; the first took "
            f"{took:.1f} s, so the other {rest} will take about {left:.0f} s on "
            f"{workers} worker(s)."
        )
        logger.info(message)
        if left > slow_s:
            warnings.warn(
                message + " Pass n_jobs=-1 to use every core, or a smaller n_optimism.",
                UserWarning,
                stacklevel=4,
            )
        parts += Parallel(n_jobs=n_jobs)(
            delayed(_refit_once)(model, data, r, specs, horizons, original, grid) for r in rows[1:]
        )
    usable = [p for p in parts if not isinstance(p, str)]
    failed = [p for p in parts if isinstance(p, str)]
    if failed:
        from spinerisk.exceptions import DataQualityWarning

        warnings.warn(
            f"Optimism: {len(failed)} of {len(parts)} bootstrap refits could not be fitted "
            f"and were left out (the first: {failed[0]}). The correction rests on the "
            "others, which are not a random share of the resamples: read it with care.",
            DataQualityWarning,
            stacklevel=4,
        )
    apparent = evaluate_specs(specs, original)
    gamma = _no_information(specs, original, rng, 10)
    if not usable:
        nan = np.full(len(specs), np.nan)
        return OptimismEstimates(apparent, nan, nan, gamma, nan, 0, took)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN metric columns
        harrell = np.nanmean(np.vstack([p[0] for p in usable]), axis=0)
        oob = np.nanmean(np.vstack([p[1] for p in usable]), axis=0)
    plus = np.array([s.name in PLUS_METRICS for s in specs], dtype=bool)
    optimism = np.where(plus, apparent - combine_632plus(apparent, oob, gamma), harrell)
    return OptimismEstimates(apparent, harrell, oob, gamma, optimism, len(usable), took)


def optimism_632plus(
    model: RiskModel,
    data: pd.DataFrame,
    specs: list[MetricSpec],
    horizons: tuple[float, ...],
    original: EvalData,
    grid: np.ndarray | None,
    *,
    n_optimism: int,
    random_state: int,
    n_jobs: int,
) -> tuple[np.ndarray, int]:
    """The optimism of each metric (.632+ for discrimination and proper scores, Harrell's
    for calibration) and the number of refits used: what ``evaluate(..., optimism=True)``
    subtracts from the apparent values."""
    est = optimism_estimates(
        model,
        data,
        specs,
        horizons,
        original,
        grid,
        n_optimism=n_optimism,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    return est.optimism, est.n_refits
