"""Discrimination, calibration and net benefit of predicted probabilities of a binary outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import logit
from sklearn import metrics as skm

from spinerisk._optional import import_optional
from spinerisk.metrics._common import (
    BoolArray,
    FloatArray,
    assign_bins,
    check_binary,
    check_n_bins,
    check_probability,
    check_same_length,
    check_thresholds,
    level_counts,
    slope_design,
    wilson_interval,
)

__all__ = [
    "brier_score",
    "calibration_curve",
    "calibration_intercept",
    "calibration_slope",
    "expected_calibration_error",
    "net_benefit",
    "observed_expected_ratio",
    "pr_auc",
    "roc_auc",
    "scaled_brier_score",
    "smoothed_calibration",
]

#: Predictions are clipped to [_EPS, 1 - _EPS] before taking logits (finite log-odds).
_EPS = 1e-8


def _inputs(y: Any, p: Any) -> tuple[BoolArray, FloatArray]:
    y_arr = check_binary(y, "y")
    p_arr = check_probability(p, "p")
    check_same_length(y=y_arr, p=p_arr)
    return y_arr, p_arr


def _need_both_classes(y: BoolArray, what: str) -> None:
    if y.all() or not y.any():
        raise ValueError(
            f"{what} needs records with and without the outcome; all {len(y)} values of y "
            f"are {int(y[0])}."
        )


def _logit(p: FloatArray) -> FloatArray:
    return np.asarray(logit(np.clip(p, _EPS, 1.0 - _EPS)), dtype=float)


def roc_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve (the C-statistic of a binary outcome).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        Probability that a random record with the outcome has a higher prediction than a
        random record without it (ties count one half).

    Raises
    ------
    ValueError
        If the inputs are invalid or ``y`` holds a single class.

    See Also
    --------
    sklearn.metrics.roc_auc_score : The computation used.

    Examples
    --------
    >>> from spinerisk.metrics import roc_auc
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 0, 1, 2], [0.1, 0.4, 0.35, 0.8])
    Traceback (most recent call last):
    ...
    ValueError: y[3]=2 is not 0/1 (1 such values); expected a binary outcome (0/1 or bool).
    """
    y_arr, p_arr = _inputs(y, p)
    _need_both_classes(y_arr, "roc_auc")
    return float(skm.roc_auc_score(y_arr, p_arr))


def pr_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the precision-recall curve, as average precision.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        Average precision; a model without skill scores about the prevalence.

    See Also
    --------
    sklearn.metrics.average_precision_score : The computation used.

    Examples
    --------
    >>> from spinerisk.metrics import pr_auc
    >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y_arr, p_arr = _inputs(y, p)
    _need_both_classes(y_arr, "pr_auc")
    return float(skm.average_precision_score(y_arr, p_arr))


def brier_score(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Brier score: mean squared difference between outcome and predicted probability.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        In [0, 1]; lower is better.

    See Also
    --------
    sklearn.metrics.brier_score_loss : The computation used.
    scaled_brier_score : Brier score relative to the prevalence-only model.

    Examples
    --------
    >>> from spinerisk.metrics import brier_score
    >>> brier_score([0, 1], [0.2, 0.6])
    0.1
    """
    y_arr, p_arr = _inputs(y, p)
    return float(skm.brier_score_loss(y_arr, p_arr, pos_label=True))


def scaled_brier_score(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Scaled Brier score (Brier skill score): ``1 - Brier / Brier of the prevalence model``.

    The reference model predicts the observed prevalence for everyone, so its Brier score
    is ``prevalence * (1 - prevalence)``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        At most 1 (perfect); 0 means no better than the prevalence; negative is worse.

    Examples
    --------
    >>> from spinerisk.metrics import scaled_brier_score
    >>> scaled_brier_score([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5])
    0.0
    >>> scaled_brier_score([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    1.0
    """
    y_arr, p_arr = _inputs(y, p)
    _need_both_classes(y_arr, "scaled_brier_score")
    prevalence = float(y_arr.mean())
    reference = prevalence * (1.0 - prevalence)
    return float(1.0 - skm.brier_score_loss(y_arr, p_arr, pos_label=True) / reference)


def _glm_binomial(y: BoolArray, exog: FloatArray, offset: FloatArray | None) -> FloatArray:
    glm = import_optional(
        "statsmodels.genmod.generalized_linear_model",
        extra="evaluation",
        purpose="calibration slope and intercept",
    )
    families = import_optional(
        "statsmodels.genmod.families", extra="evaluation", purpose="calibration slope"
    )
    fit = glm.GLM(y.astype(float), exog, family=families.Binomial(), offset=offset).fit()
    return np.asarray(fit.params, dtype=float)


def calibration_slope(
    y: npt.ArrayLike, p: npt.ArrayLike, *, groups: npt.ArrayLike | None = None
) -> float:
    """Calibration slope: coefficient of ``logit(p)`` in an unpenalised logistic regression.

    Fits ``logit P(y = 1) = a + b * logit(p)`` (with ``groups``, ``a_g + b * logit(p)``)
    by maximum likelihood (statsmodels GLM) and returns ``b``. A slope below 1 means
    predictions are too extreme (overfitting), above 1 too moderate.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].
    groups : array-like of shape (n_samples,) or None, default=None
        A label per record, for predictions of several models: cross-validation's
        folds. Each group then gets its own intercept ``a_g`` and ``b`` is their shared
        slope, the calibration slope of the models each on its own records; pooled under
        one intercept, the differences between the fold models' baselines act as noise
        in ``logit(p)`` and pull the slope towards 0 (much so on a few hundred records).
        A group without both outcomes says nothing about the slope and is left out (with
        a warning). Groups should be large: with fewer than 10 records of the rarer
        outcome in a group its intercept biases ``b`` away from 0 (warned).

    Returns
    -------
    float
        The slope ``b``; 1 is ideal.

    Notes
    -----
    Predictions are clipped to ``[1e-8, 1 - 1e-8]`` before the logit so that 0 and 1 give
    finite log-odds.

    References
    ----------
    Van Calster B, et al. Calibration: the Achilles heel of predictive analytics.
    BMC Med 2019;17:230.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import calibration_slope
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.6, 5000)
    >>> y = rng.random(5000) < p
    >>> bool(abs(calibration_slope(y, p) - 1.0) < 0.15)
    True
    """
    y_arr, p_arr = _inputs(y, p)
    _need_both_classes(y_arr, "calibration_slope")
    lp = _logit(p_arr)
    exog, keep = slope_design(lp, groups, y_arr)
    params = _glm_binomial(y_arr[keep], exog, None)
    return float(params[-1])


def calibration_intercept(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Calibration-in-the-large: logistic intercept with ``logit(p)`` as offset.

    Fits ``logit P(y = 1) = a + logit(p)`` (slope fixed at 1) and returns ``a``. Positive
    means the model under-predicts on average, negative that it over-predicts.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        The intercept ``a`` in log-odds; 0 is ideal.

    Notes
    -----
    Predictions are clipped to ``[1e-8, 1 - 1e-8]`` before the logit.

    Examples
    --------
    >>> from spinerisk.metrics import calibration_intercept
    >>> round(calibration_intercept([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 6)
    0.0
    >>> calibration_intercept([0, 1, 1, 1], [0.2, 0.2, 0.2, 0.2]) > 0  # under-predicts
    True
    """
    y_arr, p_arr = _inputs(y, p)
    _need_both_classes(y_arr, "calibration_intercept")
    lp = _logit(p_arr)
    params = _glm_binomial(y_arr, np.ones((len(lp), 1)), lp)
    return float(params[0])


def observed_expected_ratio(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Observed/expected ratio: number of outcomes over the sum of predicted probabilities.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].

    Returns
    -------
    float
        1 is ideal; above 1 the model under-predicts.

    Examples
    --------
    >>> from spinerisk.metrics import observed_expected_ratio
    >>> observed_expected_ratio([0, 1, 0, 1], [0.25, 0.25, 0.25, 0.25])
    2.0
    """
    y_arr, p_arr = _inputs(y, p)
    expected = float(p_arr.sum())
    if expected == 0.0:
        raise ValueError("observed_expected_ratio is undefined: every prediction p is 0.")
    return float(y_arr.sum()) / expected


def calibration_curve(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> pd.DataFrame:
    """Binned calibration table: mean prediction and observed proportion per risk bin.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].
    n_bins : int, default=10
        Number of bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        ``"quantile"``: equal-frequency bins (edges at percentiles of ``p``; tied
        predictions stay together). ``"uniform"``: equal-width bins on [0, 1]. Binning is
        that of :func:`sklearn.calibration.calibration_curve`.

    Returns
    -------
    DataFrame
        One row per non-empty bin, lowest risk first, with columns ``bin`` (1-based bin
        number), ``n``, ``mean_predicted``, ``observed`` (proportion with the outcome),
        ``lower`` and ``upper`` (Wilson 95% interval of ``observed``).

    Examples
    --------
    >>> from spinerisk.metrics import calibration_curve
    >>> table = calibration_curve([0, 0, 1, 0, 1, 1], [.1, .1, .2, .7, .8, .9], n_bins=2)
    >>> table[["bin", "n", "observed"]].to_string(index=False)
    ' bin  n  observed\\n   1  3  0.333333\\n   2  3  0.666667'
    """
    y_arr, p_arr = _inputs(y, p)
    n_bins = check_n_bins(n_bins)
    bins = assign_bins(p_arr, n_bins, strategy)
    n = np.bincount(bins, minlength=n_bins)
    events = np.bincount(bins, weights=y_arr.astype(float), minlength=n_bins)
    sums = np.bincount(bins, weights=p_arr, minlength=n_bins)
    keep = n > 0
    lower, upper = wilson_interval(events[keep], n[keep])
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep) + 1,
            "n": n[keep],
            "mean_predicted": sums[keep] / n[keep],
            "observed": events[keep] / n[keep],
            "lower": lower,
            "upper": upper,
        }
    )


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over equal-frequency bins.

    ``ECE = sum_b (n_b / n) * |observed_b - mean_predicted_b|`` where the bins ``b`` are
    those of :func:`calibration_curve` with ``strategy="quantile"``: edges at the
    percentiles of ``p``, so bins hold about ``n / n_bins`` records each (tied predictions
    share a bin).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].
    n_bins : int, default=10
        Number of equal-frequency bins.

    Returns
    -------
    float
        In [0, 1]; 0 is ideal. Even perfectly calibrated predictions score above 0 in
        finite samples (binomial noise within each bin).

    Examples
    --------
    >>> from spinerisk.metrics import expected_calibration_error
    >>> expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], n_bins=2)
    0.0
    """
    y_arr, p_arr = _inputs(y, p)
    n_bins = check_n_bins(n_bins)
    bins = assign_bins(p_arr, n_bins, "quantile")
    gap = np.bincount(bins, weights=y_arr.astype(float) - p_arr, minlength=n_bins)
    # |sum_b(y - p)| / n_b is |observed_b - mean_predicted_b|; weighted by n_b / n
    return float(np.abs(gap).sum() / len(p_arr))


def smoothed_calibration(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    *,
    frac: float = 2.0 / 3.0,
    grid: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Smoothed calibration curve: LOWESS of the outcome on the predicted probability.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].
    frac : float, default=2/3
        Fraction of the records used for each local fit (the LOWESS span), in (0, 1].
    grid : array-like or None, default=None
        Predicted probabilities at which to evaluate the curve. None means 101 equally
        spaced points from ``min(p)`` to ``max(p)``. Points outside that range get NaN.

    Returns
    -------
    DataFrame
        Columns ``predicted`` (the grid) and ``observed`` (smoothed observed proportion,
        clipped to [0, 1]).

    Notes
    -----
    Uses :func:`statsmodels.nonparametric.smoothers_lowess.lowess` without robustness
    iterations (``it=0``): with a 0/1 outcome, robustness weights would down-weight the
    events themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.metrics import smoothed_calibration
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(0.1, 0.9, 2000)
    >>> curve = smoothed_calibration(rng.random(2000) < p, p, grid=[0.3, 0.5, 0.7])
    >>> bool(np.allclose(curve["observed"], [0.3, 0.5, 0.7], atol=0.06))
    True
    """
    y_arr, p_arr = _inputs(y, p)
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0.0 < frac <= 1.0:
        raise ValueError(f"frac must be a number in (0, 1]; got frac={frac!r}.")
    if grid is None:
        grid_arr = np.linspace(p_arr.min(), p_arr.max(), 101)
    else:
        grid_arr = check_probability(grid, "grid")
    smoothers = import_optional(
        "statsmodels.nonparametric.smoothers_lowess",
        extra="evaluation",
        purpose="smoothed calibration curves",
    )
    fitted = smoothers.lowess(
        y_arr.astype(float), p_arr, frac=frac, it=0, xvals=grid_arr, return_sorted=False
    )
    observed = np.clip(np.asarray(fitted, dtype=float), 0.0, 1.0)
    # statsmodels extrapolates linearly outside the data; report no curve there instead
    observed[(grid_arr < p_arr.min()) | (grid_arr > p_arr.max())] = np.nan
    return pd.DataFrame({"predicted": grid_arr, "observed": observed})


def net_benefit(
    y: npt.ArrayLike, p: npt.ArrayLike, thresholds: Sequence[float] | None = None
) -> pd.DataFrame:
    """Decision curve: net benefit of treating records whose risk is at or above a threshold.

    At threshold ``t``, ``NB = TP / n - FP / n * t / (1 - t)`` with records treated when
    ``p >= t``. Treat-all uses ``prevalence - (1 - prevalence) * t / (1 - t)``; treat-none
    is 0.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    p : array-like of shape (n_samples,)
        Predicted probability of the outcome, in [0, 1].
    thresholds : sequence of float or None, default=None
        Risk thresholds, each strictly inside (0, 1). None means 0.01, 0.02, ..., 0.99.

    Returns
    -------
    DataFrame
        Columns ``threshold``, ``model``, ``treat_all`` and ``treat_none``.

    References
    ----------
    Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating
    prediction models. Med Decis Making 2006;26:565-74.

    Examples
    --------
    >>> from spinerisk.metrics import net_benefit
    >>> net_benefit([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.9], thresholds=[0.5]).round(3)
       threshold  model  treat_all  treat_none
    0        0.5    0.5        0.0         0.0
    >>> net_benefit([0, 1], [0.1, 0.9], thresholds=[0.0])
    Traceback (most recent call last):
    ...
    ValueError: thresholds[0]=0.0 is outside (0, 1); expected risk thresholds strictly between 0 and 1 (net benefit weighs false positives by t / (1 - t)).
    """  # noqa: E501
    y_arr, p_arr = _inputs(y, p)
    t = check_thresholds(thresholds)
    n = len(y_arr)
    # treated at threshold t: p >= t; count them with a sorted search instead of a loop
    order = np.argsort(p_arr, kind="stable")
    p_sorted = p_arr[order]
    cum_events = np.concatenate([[0.0], np.cumsum(y_arr[order][::-1].astype(float))])
    n_treated = n - np.searchsorted(p_sorted, t, side="left")
    tp = cum_events[n_treated]
    fp = n_treated - tp
    odds = t / (1.0 - t)
    prevalence = float(y_arr.mean())
    return pd.DataFrame(
        {
            "threshold": t,
            "model": tp / n - fp / n * odds,
            "treat_all": prevalence - (1.0 - prevalence) * odds,
            "treat_none": np.zeros_like(t),
        }
    )


# -- every bootstrap resample at once (see spinerisk.metrics._common) ---------------------------
def _class_counts(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]
) -> tuple[FloatArray, FloatArray]:
    """Drawn records with (``pos``) and without (``neg``) the outcome per distinct value of
    ``p``, lowest first: two ``(n_resamples, n_levels)`` count matrices."""
    levels, level = np.unique(p, return_inverse=True)
    pos = level_counts(level, len(levels), rows, y.astype(float))
    neg = level_counts(level, len(levels), rows, (~y).astype(float))
    return pos, neg


def _both_classes(n1: FloatArray, n0: FloatArray) -> npt.NDArray[np.bool_]:
    return (n1 > 0) & (n0 > 0)


def roc_auc_resamples(y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]) -> FloatArray:
    """:func:`roc_auc` of every resample: the Mann-Whitney count (ties one half), exact in
    integers, over the product of the class sizes."""
    pos, neg = _class_counts(y, p, rows)
    below = np.cumsum(neg, axis=1) - neg
    wins = np.sum(pos * (below + 0.5 * neg), axis=1)
    n1, n0 = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(_both_classes(n1, n0), wins / (n1 * n0), np.nan)


def pr_auc_resamples(y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]) -> FloatArray:
    """:func:`pr_auc` (average precision) of every resample."""
    pos, neg = _class_counts(y, p, rows)
    pos, neg = pos[:, ::-1], neg[:, ::-1]  # highest prediction first
    tp = np.cumsum(pos, axis=1)
    called = tp + np.cumsum(neg, axis=1)
    n1, n0 = tp[:, -1], called[:, -1] - tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pos > 0, tp / called, 0.0)
        ap = np.sum(pos * precision, axis=1) / n1
    return np.where(_both_classes(n1, n0), ap, np.nan)


def brier_score_resamples(y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]) -> FloatArray:
    """:func:`brier_score` of every resample."""
    return np.mean(np.square(y.astype(float) - p)[rows], axis=1)


def scaled_brier_score_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`scaled_brier_score` of every resample."""
    prevalence = np.mean(y.astype(float)[rows], axis=1)
    reference = prevalence * (1.0 - prevalence)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 1.0 - brier_score_resamples(y, p, rows) / reference
    return np.where((prevalence > 0) & (prevalence < 1), value, np.nan)


def observed_expected_ratio_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`observed_expected_ratio` of every resample."""
    expected = np.sum(p[rows], axis=1)
    observed = np.sum(y.astype(float)[rows], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, observed / expected, np.nan)


def expected_calibration_error_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp], n_bins: int = 10
) -> FloatArray:
    """:func:`expected_calibration_error` of every resample (each with its own
    equal-frequency bins, as :func:`assign_bins`)."""
    drawn = p[rows]
    edges = np.percentile(drawn, np.linspace(0.0, 100.0, n_bins + 1), axis=1)[1:-1]
    # np.searchsorted(edges, x) (side "left") counts the edges below x
    bins = np.zeros(drawn.shape, dtype=np.intp)
    for edge in edges:
        bins += drawn > edge[:, None]
    b = rows.shape[0]
    flat = (np.arange(b)[:, None] * n_bins + bins).ravel()
    gap = np.bincount(flat, weights=(y.astype(float) - p)[rows].ravel(), minlength=b * n_bins)
    return np.abs(gap.reshape(b, n_bins)).sum(axis=1) / rows.shape[1]


def _glm_logit_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp], *, slope: bool
) -> FloatArray:
    """:func:`calibration_slope` (``slope``) or :func:`calibration_intercept` of every
    resample: statsmodels' IRLS for a binomial GLM (its starting values, working weights,
    clipping and deviance stopping rule, at most 100 iterations), run on all resamples at
    once, each stopping at its own iteration. The weighted least-squares step has one or
    two parameters and is solved in closed form (centred), where statsmodels calls lstsq.
    """
    eps = np.finfo(float).eps

    def clean(q: FloatArray) -> FloatArray:
        return np.clip(q, eps, 1.0 - eps)

    def deviance(yy: FloatArray, mu: FloatArray) -> FloatArray:
        # statsmodels: 2 * (y * log(clip(y / mu)) + (1 - y) * log(clip((1 - y) / (1 - mu))));
        # with y 0 or 1 one term is 0 * log(eps) = -0.0, so this is the same number
        ratio = np.where(yy > 0, 1.0 / (mu + 1e-20), 1.0 / (1.0 - mu + 1e-20))
        return np.sum(2.0 * np.log(np.clip(ratio, eps, np.inf)), axis=1)

    yy = y.astype(float)[rows]
    x = _logit(p)[rows]
    n1 = yy.sum(axis=1)
    out = np.full(rows.shape[0], np.nan)
    both = (n1 > 0) & (n1 < rows.shape[1])
    active = np.flatnonzero(both)
    yy, x = yy[active], x[active]
    offset = np.zeros_like(x) if slope else x
    mu = (yy + 0.5) / 2.0
    q = clean(mu)
    lin = np.log(q / (1.0 - q))
    dev = deviance(yy, mu)
    params = np.zeros(len(active))
    for _ in range(100):
        if not len(active):
            break
        q = clean(mu)  # statsmodels cleans mu for the link derivative and the variance
        deriv = 1.0 / (q * (1.0 - q))
        w = 1.0 / (deriv**2 * (q * (1.0 - q)))
        z = lin + deriv * (yy - mu) - offset
        sw = w.sum(axis=1)
        z_bar = (w * z).sum(axis=1) / sw
        if slope:
            x_bar = (w * x).sum(axis=1) / sw
            xc = x - x_bar[:, None]
            b = (w * xc * (z - z_bar[:, None])).sum(axis=1) / (w * xc * xc).sum(axis=1)
            a = z_bar - b * x_bar
            lin = a[:, None] + b[:, None] * x + offset
            params = b
        else:
            lin = z_bar[:, None] + offset
            params = z_bar
        mu = 1.0 / (1.0 + np.exp(-lin))
        new_dev = deviance(yy, mu)
        done = np.abs(new_dev - dev) <= 1e-8
        out[active[done]] = params[done]
        keep = ~done
        active, yy, x, offset = active[keep], yy[keep], x[keep], offset[keep]
        lin, mu, dev, params = lin[keep], mu[keep], new_dev[keep], params[keep]
    out[active] = params  # no convergence in 100 iterations: statsmodels' last iterate
    return out


def calibration_slope_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`calibration_slope` of every resample."""
    return _glm_logit_resamples(y, p, rows, slope=True)


def calibration_intercept_resamples(
    y: BoolArray, p: FloatArray, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """:func:`calibration_intercept` of every resample."""
    return _glm_logit_resamples(y, p, rows, slope=False)


def net_benefit_resamples(
    y: BoolArray, p: FloatArray, threshold: float, rows: npt.NDArray[np.intp]
) -> FloatArray:
    """The ``model`` column of :func:`net_benefit` at one threshold, for every resample."""
    t = float(threshold)
    treated = p[rows] >= t
    tp = np.sum(treated & y[rows], axis=1).astype(float)
    fp = treated.sum(axis=1) - tp
    n = rows.shape[1]
    return np.asarray(tp / n - fp / n * (t / (1.0 - t)), dtype=float)
