"""Percentile bootstrap over patients, seeded and parallel (joblib), identical for any n_jobs."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MetricSpec", "bootstrap_metrics", "evaluate_specs"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MetricSpec:
    """One scalar metric: a name, an optional horizon and a function of the evaluation data.

    ``function(data)`` receives an :class:`~spinerisk.evaluation._evaluate.EvalData` (the
    whole evaluation set or a bootstrap resample of it) and returns a float.
    """

    name: str
    horizon: float | None
    function: Callable[[Any], float]


def _safe(spec: MetricSpec, data: Any) -> float:
    """The metric, or NaN when it is undefined on this resample (one class, no events...)."""
    with warnings.catch_warnings():
        # a resample may hold few events; the metric functions warn about it, and an
        # undefined value shows up as NaN and in the count of usable resamples instead
        warnings.simplefilter("ignore")
        try:
            value = float(spec.function(data))
        except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError):
            return float("nan")
    return value if np.isfinite(value) else float("nan")


def evaluate_specs(specs: Sequence[MetricSpec], data: Any) -> FloatArray:
    """Every metric on one data set (NaN where undefined).

    Parameters
    ----------
    specs : sequence of MetricSpec
    data : EvalData

    Returns
    -------
    ndarray of shape (n_specs,)
    """
    return np.array([_safe(s, data) for s in specs], dtype=float)


def _chunk(specs: Sequence[MetricSpec], data: Any, rows: npt.NDArray[np.intp]) -> FloatArray:
    return np.vstack([evaluate_specs(specs, data.take(r)) for r in rows])


def bootstrap_metrics(
    specs: Sequence[MetricSpec],
    data: Any,
    *,
    n_bootstrap: int,
    ci: float,
    random_state: int,
    n_jobs: int = 1,
) -> dict[str, FloatArray]:
    """Point estimates and percentile bootstrap intervals, resampling patients.

    Every resample draws ``len(data)`` patients with replacement. All resample indices
    are drawn up front from ``numpy.random.default_rng(random_state)``, so the same seed
    gives the same numbers whatever ``n_jobs`` is; joblib only spreads the work.

    Parameters
    ----------
    specs : sequence of MetricSpec
    data : EvalData
        Must support ``len(data)`` and ``data.take(indices)``.
    n_bootstrap : int
        Number of resamples (>= 1).
    ci : float
        Interval coverage in (0, 1).
    random_state : int
    n_jobs : int, default=1
        joblib workers.

    Returns
    -------
    dict
        ``estimate``, ``lower``, ``upper`` (each of shape ``(n_specs,)``) and
        ``n_resamples`` (resamples on which the metric was defined).
    """
    from joblib import Parallel, delayed

    estimate = evaluate_specs(specs, data)
    n = len(data)
    rng = np.random.default_rng(random_state)
    rows = rng.integers(0, n, size=(n_bootstrap, n))
    n_chunks = max(1, min(n_bootstrap, 4 * max(1, abs(n_jobs))))
    chunks = np.array_split(np.arange(n_bootstrap), n_chunks)
    parts = Parallel(n_jobs=n_jobs)(delayed(_chunk)(specs, data, rows[c]) for c in chunks)
    values = np.vstack(parts)
    alpha = (1.0 - ci) / 2.0
    usable = np.isfinite(values).sum(axis=0)
    lower = np.full(len(specs), np.nan)
    upper = np.full(len(specs), np.nan)
    for j in range(len(specs)):
        col = values[:, j][np.isfinite(values[:, j])]
        if col.size:
            lower[j], upper[j] = np.quantile(col, [alpha, 1.0 - alpha])
    return {"estimate": estimate, "lower": lower, "upper": upper, "n_resamples": usable}
