"""Percentile bootstrap over patients, seeded and parallel (joblib), identical for any n_jobs.

All resample indices are drawn at once as a matrix. A metric with a batched form
(:attr:`MetricSpec.batch`) is computed on every resample at once from that matrix; the
others run resample by resample. Both give the same numbers (tested against the loop in
``tests/test_bootstrap_fast.py``): before a batched form is used, it must reproduce the
metric's own value on the full data, else the loop runs instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MetricSpec", "batch_of", "bootstrap_metrics", "evaluate_specs", "with_batches"]

FloatArray = npt.NDArray[np.float64]
IndexMatrix = npt.NDArray[np.intp]
logger = logging.getLogger(__name__)
#: A batched metric must give the metric's own value on the full data to this (relative)
#: tolerance, or the resamples are computed one by one.
BATCH_TOL = 1e-12
#: Batched metrics run on blocks of resamples holding about this many drawn records.
BATCH_CELLS = 4_000_000


@dataclass(frozen=True)
class MetricSpec:
    """One scalar metric: a name, an optional horizon and a function of the evaluation data.

    ``function(data)`` receives an :class:`~spinerisk.evaluation._data.EvalData` (the
    whole evaluation set or a bootstrap resample of it) and returns a float.
    ``batch(data, rows)``, when given, returns the metric of every resample
    ``data.take(rows[b])`` at once (shape ``(n_resamples,)``, NaN where undefined).
    """

    name: str
    horizon: float | None
    function: Callable[[Any], float]
    batch: Callable[[Any, IndexMatrix], FloatArray] | None = None


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
    values = np.full((n_bootstrap, len(specs)), np.nan)
    identity = np.arange(n)[None, :]
    batched = [j for j, s in enumerate(specs) if _checked(s, data, identity, estimate[j])]
    looped = [j for j in range(len(specs)) if j not in batched]
    # resamples in blocks of about BATCH_CELLS drawn records, so memory stays bounded;
    # every batched metric runs on a block before the next (they share its fits)
    size = max(1, BATCH_CELLS // max(1, n))
    for start in range(0, n_bootstrap, size):
        block = rows[start : start + size]
        for j in list(batched):
            out = _run(specs[j], data, block)
            if out is None:  # raised on this block: the whole metric is looped
                batched.remove(j)
                looped.append(j)
            else:
                values[start : start + size, j] = out
    if looped:
        looped.sort()
        rest = [specs[j] for j in looped]
        n_chunks = max(1, min(n_bootstrap, 4 * max(1, abs(n_jobs))))
        chunks = np.array_split(np.arange(n_bootstrap), n_chunks)
        parts = Parallel(n_jobs=n_jobs)(delayed(_chunk)(rest, data, rows[c]) for c in chunks)
        values[:, looped] = np.vstack(parts)
    alpha = (1.0 - ci) / 2.0
    usable = np.isfinite(values).sum(axis=0)
    lower = np.full(len(specs), np.nan)
    upper = np.full(len(specs), np.nan)
    for j in range(len(specs)):
        col = values[:, j][np.isfinite(values[:, j])]
        if col.size:
            lower[j], upper[j] = np.quantile(col, [alpha, 1.0 - alpha])
    return {"estimate": estimate, "lower": lower, "upper": upper, "n_resamples": usable}


def _checked(spec: MetricSpec, data: Any, identity: IndexMatrix, estimate: float) -> bool:
    """Whether the spec has a batched form that reproduces ``estimate`` (the metric on the
    full data, the single resample ``identity``)."""
    if spec.batch is None:
        return False
    check = _run(spec, data, identity)
    if check is None or not _same(float(check[0]), estimate):
        logger.debug("batched %s disagrees with the metric on the full data; looping", spec.name)
        return False
    return True


def _run(spec: MetricSpec, data: Any, rows: IndexMatrix) -> FloatArray | None:
    """The spec's batched values on ``rows`` (NaN where undefined), or None if it raised."""
    assert spec.batch is not None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = np.asarray(spec.batch(data, rows), dtype=float)
        except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError):
            return None
    return np.where(np.isfinite(out), out, np.nan)


def _same(a: float, b: float) -> bool:
    if not np.isfinite(b):
        return not np.isfinite(a)
    return bool(abs(a - b) <= BATCH_TOL * max(1.0, abs(b)))


# -- batched forms of the evaluation metrics ------------------------------------------------------
def _column(data: Any, horizon: float | None) -> FloatArray:
    return np.asarray(data.risk[:, 0] if horizon is None else data.at(horizon), dtype=float)


def _binary(fn: Callable[..., FloatArray]) -> Callable[[Any, float | None], Any]:
    def make(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray]:
        return lambda d, rows: fn(np.asarray(d.event, dtype=bool), _column(d, horizon), rows)

    return make


def _harrell(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray]:
    from spinerisk.metrics._discrimination import harrell_c_resamples

    return lambda d, rows: harrell_c_resamples(
        d.follow_up, np.asarray(d.occurred, dtype=bool), _column(d, horizon), rows
    )


def _competing(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray]:
    from spinerisk.metrics._discrimination import competing_c_resamples

    return lambda d, rows: competing_c_resamples(
        d.follow_up,
        np.asarray(d.event, dtype=np.int64),
        _column(d, horizon),
        d.cause,
        horizon,
        rows,
    )


def _oe(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray] | None:
    from spinerisk.metrics._horizon import observed_expected_resamples

    if data.kind == "binary":
        from spinerisk.metrics._binary import observed_expected_ratio_resamples

        return _binary(observed_expected_ratio_resamples)(data, horizon)
    if horizon is None:
        return None
    cause = data.cause if data.kind == "competing" else None

    def batch(d: Any, rows: IndexMatrix) -> FloatArray:
        codes = np.asarray(d.event, dtype=np.int64)
        return observed_expected_resamples(
            d.follow_up, codes, _column(d, horizon), horizon, cause, rows
        )

    return batch


def _horizon_outcome(
    d: Any, horizon: float, rows: IndexMatrix
) -> tuple[np.ndarray, FloatArray, np.ndarray]:
    """IPCW outcome by ``horizon`` of every resample (as ``EvalData.horizon_outcome``): the
    censoring survival is fitted on each resample once and shared by the metrics."""
    from spinerisk.metrics._ipcw import CensoringResamples, horizon_outcome_resamples

    codes = np.asarray(d.event, dtype=np.int64)
    cause = d.cause if d.kind == "competing" else 1
    if d.ref_time is not None and d.ref_any is not None:  # a fixed reference
        censoring: Any = d.horizon_outcome(horizon)[1]
    else:
        # kept for the last two index matrices (the full-data check and the resamples)
        kept = d.cache.setdefault("censoring_resamples", [])
        found = [c for c in kept if c.rows is rows]
        if not found:
            found = [CensoringResamples(d.follow_up, codes != 0, rows)]
            kept[:] = [*kept[-1:], found[0]]
        censoring = found[0]
    return horizon_outcome_resamples(d.follow_up, codes, horizon, cause, rows, censoring)


def _brier_at(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray] | None:
    if horizon is None:
        return None

    def batch(d: Any, rows: IndexMatrix) -> FloatArray:
        y, w, ok = _horizon_outcome(d, horizon, rows)
        value = np.mean(w * np.square(y - _column(d, horizon)[rows]), axis=1)
        return np.where(ok, value, np.nan)

    return batch


def _ibs(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray] | None:
    if data.grid is None or data.grid_risk is None:
        return None

    def batch(d: Any, rows: IndexMatrix) -> FloatArray:
        scores = []
        usable = np.ones(rows.shape[0], dtype=bool)
        for k, t in enumerate(d.grid):
            y, w, ok = _horizon_outcome(d, float(t), rows)
            scores.append(np.mean(w * np.square(y - d.grid_risk[rows, k]), axis=1))
            usable &= ok
        area = np.trapezoid(np.column_stack(scores), d.grid, axis=1)
        return np.where(usable, area / (d.grid[-1] - d.grid[0]), np.nan)

    return batch


def _calibration_at(slope: bool) -> Callable[[Any, float | None], Any]:
    def make(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray] | None:
        from spinerisk.metrics._ipcw import fit_logistic_resamples, logit

        if horizon is None:
            return None

        def batch(d: Any, rows: IndexMatrix) -> FloatArray:
            y, w, ok = _horizon_outcome(d, horizon, rows)
            lp = logit(_column(d, horizon))[rows]
            value = fit_logistic_resamples(y, lp, w, slope=slope)
            return np.where(ok, value, np.nan)

        return batch

    return make


def _ipcw_rank(uno: bool) -> Callable[[Any, float | None], Any]:
    """Uno's C or the time-dependent AUC, when each resample is its own censoring
    reference and no two distinct risks are within scikit-survival's tie tolerance."""

    def make(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray] | None:
        from spinerisk.metrics import _discrimination as md

        if horizon is None or data.ref_time is not None or data.ref_event is not None:
            return None
        if not md._no_near_ties(_column(data, horizon)):
            return None
        fn = md.uno_c_resamples if uno else md.time_dependent_auc_resamples
        return lambda d, rows: fn(
            d.follow_up, np.asarray(d.occurred, dtype=bool), _column(d, horizon), horizon, rows
        )

    return make


def _batch_maker(kind: str, name: str) -> Callable[[Any, float | None], Any] | None:
    from spinerisk.metrics import _binary as mb

    if kind == "binary":
        binary = {
            "auroc": mb.roc_auc_resamples,
            "auprc": mb.pr_auc_resamples,
            "brier": mb.brier_score_resamples,
            "scaled_brier": mb.scaled_brier_score_resamples,
            "ece": mb.expected_calibration_error_resamples,
            "calibration_slope": mb.calibration_slope_resamples,
            "calibration_intercept": mb.calibration_intercept_resamples,
        }
        if name in binary:
            return _binary(binary[name])
    if name == "oe_ratio":
        return _oe
    if kind != "binary":
        timed = {
            "brier": _brier_at,
            "ibs": _ibs,
            "calibration_slope": _calibration_at(slope=True),
            "calibration_intercept": _calibration_at(slope=False),
            "td_auc": _ipcw_rank(uno=False),
            "uno_c": _ipcw_rank(uno=True),
        }
        if name in timed:
            return timed[name]
    if kind == "survival" and name == "harrell_c":
        return _harrell
    if kind == "competing" and name == "competing_c":
        return _competing
    if kind == "competing" and name == "cause_specific_c":
        return _cause_specific
    return None


def _cause_specific(data: Any, horizon: float | None) -> Callable[[Any, IndexMatrix], FloatArray]:
    from spinerisk.metrics._discrimination import harrell_c_resamples

    return lambda d, rows: harrell_c_resamples(
        d.follow_up, np.asarray(d.event) == d.cause, _column(d, horizon), rows
    )


def with_batches(
    specs: Sequence[MetricSpec], data: Any, *, horizon: float | None = None
) -> list[MetricSpec]:
    """``specs`` with the batched form of each metric that has one.

    Parameters
    ----------
    specs : sequence of MetricSpec
        As built by :func:`~spinerisk.evaluation._data.metric_specs` or
        :func:`~spinerisk.evaluation._data.subgroup_specs`.
    data : EvalData
        The data they will be bootstrapped on (its kind picks the forms).
    horizon : float or None
        The horizon whose risks a spec without one (Harrell's C, the cause-specific C)
        ranks. Binary endpoints have a single risk column.

    Returns
    -------
    list of MetricSpec
        A batched form that does not reproduce the metric on the full data is ignored by
        :func:`bootstrap_metrics`, so a mismatch costs time, never numbers.
    """
    out = []
    for spec in specs:
        batch = batch_of(spec.name, data, spec.horizon or horizon)
        out.append(spec if batch is None else replace(spec, batch=batch))
    return out


def batch_of(
    name: str, data: Any, horizon: float | None
) -> Callable[[Any, IndexMatrix], FloatArray] | None:
    """The batched form of the evaluation metric ``name`` on the risks of ``data`` at
    ``horizon`` (binary endpoints: the single risk column), or None."""
    maker = _batch_maker(data.kind, name)
    if maker is None or (name == "calibration_slope" and data.groups is not None):
        return None  # the batched slopes have one intercept, not one per group
    return maker(data, None if data.kind == "binary" else horizon)  # type: ignore[no-any-return]
