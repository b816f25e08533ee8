"""Per-patient risk intervals from bootstrap refits (and the models behind the
prediction-instability plot).

``RiskModel.fit_intervals(cohort, n_resamples=B)`` refits a clone of the model on ``B``
resamples of its training records (drawn with replacement, all up front from
``numpy.random.default_rng(random_state)``) and keeps the ``B`` fitted models
(``interval_models_``). ``predict_risk(..., interval=0.9)`` then gives, per record and
horizon, the percentile bootstrap interval of the refits' risks (the default,
``method="percentile"``), or the basic (reverse-percentile) interval on the log-odds
scale, ``expit(2 * logit(r) - q_hi), expit(2 * logit(r) - q_lo)``, which moves against
the refits' bias. The evidence for the default, per backend and endpoint kind, is in
``docs/intervals.md`` (from ``benchmarks/bench_intervals.py``). The same refits give the
prediction-instability plot (Riley and Collins, Biometrical Journal 2023),
:mod:`spinerisk.evaluation._instability`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = [
    "INTERVAL_METHODS",
    "bootstrap_risks",
    "check_interval",
    "fit_interval_models",
    "interval_bounds",
]

#: Interval methods: ``"percentile"`` (quantiles of the refits' risks, the default) and
#: ``"basic"`` (reverse percentile on the log-odds scale, against the refits' bias).
INTERVAL_METHODS = ("percentile", "basic")
#: Risks are clipped to ``[_EPS, 1 - _EPS]`` before the log-odds are taken.
_EPS = 1e-9
#: Most refits a bundle stores (each is a nested bundle).
MAX_RESAMPLES = 200


def check_interval(interval: Any) -> float:
    """The interval level as a float in (0, 1), or a ValueError saying what was given."""
    ok = isinstance(interval, int | float | np.integer | np.floating) and not isinstance(
        interval, bool
    )
    if not ok or not 0.0 < float(interval) < 1.0:
        raise ValueError(
            f"interval must be a coverage level strictly between 0 and 1 (such as 0.9 "
            f"for a 90% interval); got interval={interval!r}."
        )
    return float(interval)


def unique_ids(part: pd.DataFrame, id_field: str) -> pd.DataFrame:
    """A resample with the repeated records given distinct ids (of the id field's own
    kind: numbered when it holds whole numbers)."""
    part = part.copy()
    if pd.api.types.is_integer_dtype(part[id_field].dtype):
        part[id_field] = np.arange(1, len(part) + 1)
    else:
        part[id_field] = [f"{v}_{i}" for i, v in enumerate(part[id_field].astype(str))]
    return part


def _refit(model: RiskModel, sample: pd.DataFrame) -> Any:
    """A clone of ``model`` fitted on one resample, or None when it cannot be fitted
    there (too few events in the resample)."""
    from sklearn.base import clone

    from spinerisk.exceptions import DataQualityWarning

    try:
        with warnings.catch_warnings():  # the original fit already warned about its data
            warnings.simplefilter("ignore", DataQualityWarning)
            return clone(model).fit(sample)
    except ValueError:
        return None


def fit_interval_models(
    model: RiskModel,
    cohort: pd.DataFrame,
    *,
    n_resamples: int,
    random_state: int,
    n_jobs: int | None,
    method: str = "percentile",
) -> tuple[list[Any], dict[str, Any]]:
    """Refit ``model`` on ``n_resamples`` bootstrap resamples of its training records.

    Parameters
    ----------
    model : RiskModel
        Fitted on ``cohort``.
    cohort : DataFrame
        The cohort the model was fitted on; its eligible records are resampled.
    n_resamples : int
        Resamples (2 to :data:`MAX_RESAMPLES`).
    random_state : int
        Seed of the resample indices.
    n_jobs : int or None
        joblib workers for the refits; results do not depend on it.
    method : {"percentile", "basic"}, default="percentile"
        How :func:`interval_bounds` turns the refits' risks into an interval.

    Returns
    -------
    models : list of RiskModel
        The refits that succeeded, in resample order.
    info : dict
        Plain JSON: ``n_resamples``, ``n_fitted``, ``random_state``, ``method``.
    """
    from joblib import Parallel, delayed

    ok = isinstance(n_resamples, int | np.integer) and not isinstance(n_resamples, bool)
    if not ok or not 2 <= int(n_resamples) <= MAX_RESAMPLES:
        raise ValueError(
            f"n_resamples must be an integer from 2 to {MAX_RESAMPLES}; got "
            f"n_resamples={n_resamples!r}."
        )
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}; got method={method!r}.")
    if not isinstance(random_state, int | np.integer) or isinstance(random_state, bool):
        raise ValueError(f"random_state must be an integer; got random_state={random_state!r}.")
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError(
            f"fit_intervals needs the training cohort as a DataFrame; got {type(cohort).__name__}."
        )
    ep = model.endpoint_
    data = ep.labelled(cohort, model.schema_).data
    if len(data) != model.n_train_:
        raise ValueError(
            f"fit_intervals needs the cohort the model was fitted on: it has {len(data)} "
            f"eligible records with the {ep.name} outcome observed, the model was fitted on "
            f"{model.n_train_}. Pass the training cohort."
        )
    rng = np.random.default_rng(int(random_state))
    rows = rng.integers(0, len(data), size=(int(n_resamples), len(data)))
    samples = (unique_ids(data.iloc[r], model.id_field_) for r in rows)
    fitted = Parallel(n_jobs=1 if n_jobs is None else n_jobs)(
        delayed(_refit)(model, s) for s in samples
    )
    models = [m for m in fitted if m is not None]
    if len(models) < 2:
        raise ValueError(
            f"Only {len(models)} of {n_resamples} bootstrap resamples could be fitted "
            f"(too few events with the {ep.name} outcome); intervals need at least 2."
        )
    info = {
        "n_resamples": int(n_resamples),
        "n_fitted": len(models),
        "random_state": int(random_state),
        "method": method,
    }
    return models, info


def bootstrap_risks(models: list[Any], checked: pd.DataFrame, horizons: Any) -> np.ndarray:
    """Risks of every bootstrap model, shape ``(n_models, n_records, n_horizons)``."""
    return np.stack([np.asarray(m._risk_values(checked, horizons), dtype=float) for m in models])


def interval_bounds(
    risk: np.ndarray, boot: np.ndarray, level: float, method: str = "percentile"
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the ``level`` interval around ``risk``.

    Parameters
    ----------
    risk : ndarray of shape (n_records, n_horizons)
        The model's risks.
    boot : ndarray of shape (n_models, n_records, n_horizons)
        The bootstrap models' risks of the same records.
    level : float
        Coverage in (0, 1).
    method : {"percentile", "basic"}, default="percentile"

    Returns
    -------
    lo, hi : ndarray of shape (n_records, n_horizons)
        NaN where the risk is missing (a record the gate puts out of scope).
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}; got method={method!r}.")
    z = logit(np.clip(boot, _EPS, 1 - _EPS))
    alpha = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(z, [alpha, 1.0 - alpha], axis=0)
    if method == "percentile":
        lo, hi = expit(q_lo), expit(q_hi)
    else:
        centre = logit(np.clip(risk, _EPS, 1 - _EPS))
        lo, hi = expit(2 * centre - q_hi), expit(2 * centre - q_lo)
    missing = ~np.isfinite(risk)
    lo[missing] = np.nan
    hi[missing] = np.nan
    return lo, hi
