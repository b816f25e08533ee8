"""Competing risks from cause-specific hazard models.

:class:`CauseSpecificCIF` fits one survival model per cause (the other causes censored)
and combines their hazards into cumulative incidence functions (CIF) with the
Aalen-Johansen product-limit formula. With death as a competing event, the fracture CIF is
the absolute risk of a subsequent fracture; ``1 - KM`` with death censored over-estimates it.
"""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from spinerisk.models._survival import CoxPHSurvival, _aft_hazard
from spinerisk.models._survival_base import (
    FloatArray,
    _cox_hazard,
    _take_rows,
    _times_on_grid,
    step_at,
)
from spinerisk.targets import check_competing_target, make_survival_target

__all__ = ["CauseSpecificCIF"]

# cap on the number of floats in one (rows x grid) block while predicting
_BLOCK = 4_000_000


class CauseSpecificCIF(MetaEstimatorMixin, BaseEstimator):
    """Cumulative incidence of competing events from cause-specific hazard models.

    For each cause ``k`` a clone of ``estimator`` is fitted with only cause ``k`` as the
    event (records with another cause, or censored, count as censored). Predictions use
    the union grid ``t_1 < ... < t_m`` of the training event times of all causes. On it,
    each record's cause-specific hazard increments ``dL_k(t_j)`` are combined into

    * event-free survival ``S(t_j) = S(t_(j-1)) * (1 - sum_k dL_k(t_j))`` and
    * cumulative incidence ``CIF_k(t_j) = sum_(i <= j) S(t_(i-1)) * dL_k(t_i)``,

    so the CIFs of all causes and the event-free survival add up to 1 at every time.

    Parameters
    ----------
    estimator : survival estimator or None, default=None
        Unfitted model for one cause, taking ``y`` as a survival target. It must expose
        ``predict_cumulative_hazard(X, times)`` and ``unique_times_`` after fitting
        (:class:`CoxPHSurvival`, :class:`BoostedCoxSurvival`, :class:`BoostedAFTSurvival`).
        ``times`` is non-decreasing and may repeat a time: the grid of all causes' event
        times, held at this cause's last event time. None means ``CoxPHSurvival()``.
    causes : tuple of int, default=(1, 2)
        Event codes modelled; every non-zero code in ``y`` must be listed (1 subsequent
        fracture, 2 death).
    event_of_interest : int, default=1
        Cause whose CIF ``predict_risk`` returns and whose risk score ``predict`` returns.

    Attributes
    ----------
    estimators_ : list of fitted estimators
        One per cause, in the order of ``causes_``.
    causes_ : ndarray of shape (n_causes,)
        The modelled event codes.
    unique_times_ : ndarray of shape (n_times,)
        Union of the estimators' training event times (days), increasing: the grid on
        which CIFs are computed.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    spinerisk.models.CoxPHSurvival : The default cause-specific model.
    spinerisk.models.BoostedCoxSurvival : Boosted cause-specific model.

    Notes
    -----
    A step where the summed hazard increments exceed 1 (possible with extreme
    predictions) is capped at 1, all causes scaled alike, so the CIFs still add up. With
    no covariates and Cox models, the estimator reduces to the Aalen-Johansen estimator.
    CIFs are only estimated up to the last training event time; a later time raises a
    ValueError instead of extrapolating.

    Each cause model scores every record once. For many records at a few times with
    proportional-hazards cause models (Cox, boosted Cox, stacked Cox), the product limit
    runs over blocks of grid steps expanded as polynomials in the records' hazard
    ratios, so its cost grows linearly with the number of records; it agrees with the
    step-by-step product limit to about 1e-14.

    ``predict`` ranks records by the cause-specific hazard of the event of interest (the
    risk score of its model). To rank by absolute risk, which also reflects the competing
    event, use ``predict_risk`` at a horizon.

    References
    ----------
    .. [1] Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing risks and
       multi-state models. Stat Med 2007;26:2389-430.
    .. [2] Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov
       chains based on censored observations. Scand J Stat 1978;5:141-50.

    Examples
    --------
    >>> import numpy as np
    >>> import spinerisk as sr
    >>> from spinerisk.models._competing import CauseSpecificCIF
    >>> from spinerisk.endpoints import get_endpoint
    >>> cohort = sr.validate(sr.make_spine_cohort(400, seed=0))
    >>> ep = get_endpoint("future_fracture")
    >>> X = sr.make_feature_pipeline().fit_transform(cohort)
    >>> model = CauseSpecificCIF().fit(X, ep.target(cohort))
    >>> risk = model.predict_risk(X.head(3), ep.horizons)
    >>> risk.shape, bool((np.diff(risk, axis=1) >= 0).all())
    ((3, 3), True)
    >>> total = (model.predict_cumulative_incidence(X.head(3), ep.horizons, cause=1)
    ...          + model.predict_cumulative_incidence(X.head(3), ep.horizons, cause=2)
    ...          + model.predict_survival_function(X.head(3), ep.horizons))
    >>> bool(np.allclose(total, 1.0))
    True
    >>> model.predict_risk(X.head(3), [-1.0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: horizons must be finite and > 0 (days); got -1.0. ...
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        causes: tuple[int, ...] = (1, 2),
        event_of_interest: int = 1,
    ) -> None:
        self.estimator = estimator
        self.causes = causes
        self.event_of_interest = event_of_interest

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        base = CoxPHSurvival() if self.estimator is None else self.estimator
        tags.target_tags.required = True
        tags.input_tags.allow_nan = get_tags(base).input_tags.allow_nan
        return tags

    def _check_causes(self) -> tuple[int, ...]:
        causes = self.causes
        ok = (
            isinstance(causes, tuple | list)
            and len(causes) > 0
            and all(isinstance(c, numbers.Integral) and c > 0 for c in causes)
            and len(set(causes)) == len(causes)
        )
        if not ok:
            raise ValueError(
                "causes must be a non-empty tuple of distinct event codes >= 1, such as "
                f"(1, 2); got causes={causes!r}."
            )
        causes = tuple(int(c) for c in causes)
        if self.event_of_interest not in causes:
            raise ValueError(
                f"event_of_interest must be one of causes={causes!r}; "
                f"got event_of_interest={self.event_of_interest!r}."
            )
        return causes

    def validate_input(self, X: Any, *, reset: bool) -> Any:
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            return X
        return validate_data(self, X, dtype=None, ensure_all_finite=False, reset=reset)

    def fit(self, X: Any, y: np.ndarray, groups: Any = None) -> CauseSpecificCIF:
        """Fit one cause-specific survival model per cause.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features in the form the estimator takes (one-hot for Cox, native for the
            boosted models).
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (int code: 0 censored, then ``causes``) and ``time`` (days),
            see :func:`spinerisk.targets.make_competing_target`.
        groups : array-like of shape (n_samples,) or None, default=None
            Passed to the cause models' ``fit`` when given (copies of one record share
            a label, see :meth:`BoostedCoxSurvival.fit`).

        Returns
        -------
        self : CauseSpecificCIF
            The fitted model.
        """
        causes = self._check_causes()
        base = CoxPHSurvival() if self.estimator is None else self.estimator
        if not hasattr(base, "predict_cumulative_hazard"):
            raise TypeError(
                "estimator must be a survival model with predict_cumulative_hazard(X, times) "
                f"and unique_times_, such as CoxPHSurvival(); got {type(base).__name__}."
            )
        X = self.validate_input(X, reset=True)
        if y is None:
            raise ValueError(
                "CauseSpecificCIF requires y to be passed, but the target y is None; pass a "
                "competing-risk target from spinerisk.targets.make_competing_target."
            )
        y = check_competing_target(y)
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} records but y has {len(y)}; they must match.")
        codes = set(np.unique(y["event"]).tolist()) - {0}
        unknown = sorted(codes - set(causes))
        if unknown:
            raise ValueError(
                f"y has event code(s) {unknown} that are not in causes={causes!r}. List every "
                "competing event in causes; censoring one silently would bias the CIFs."
            )
        absent = [c for c in causes if c not in codes]
        if absent:
            raise ValueError(
                f"Cause(s) {absent} have no events in y; a cause-specific model needs at "
                "least one event per cause."
            )
        extra = {} if groups is None else {"groups": groups}
        self.estimators_ = [
            clone(base).fit(X, make_survival_target(y["event"] == k, y["time"]), **extra)
            for k in causes
        ]
        self.causes_ = np.array(causes)
        self.unique_times_ = np.unique(np.concatenate([e.unique_times_ for e in self.estimators_]))
        return self

    # -- prediction -------------------------------------------------------------------------
    def _times(self, times: Any, name: str = "times") -> FloatArray:
        return _times_on_grid(self.unique_times_, times, name)

    def _cause_index(self, cause: Any) -> int:
        cause = self.event_of_interest if cause is None else cause
        matches = np.flatnonzero(self.causes_ == cause)
        if not isinstance(cause, numbers.Integral) or matches.size == 0:
            raise ValueError(
                f"cause must be one of the fitted causes {self.causes_.tolist()}; "
                f"got cause={cause!r}."
            )
        return int(matches[0])

    def _paths(
        self, X: Any, times: FloatArray, causes: list[int] | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Event-free survival (n, T) and CIFs (n_causes, n, T) at ``times``.

        ``causes``: indices of the CIFs needed (None: all); the others may be left NaN.

        Each cause model scores every record once. With proportional (Cox-type) cause
        models, many records and few distinct times, :func:`_blocked_paths` does the
        product limit in blocks of grid steps, linear in the number of records; the
        other records (and models) follow the grid step by step.
        """
        X = self.validate_input(X, reset=False)
        n = X.shape[0]
        grid = self.unique_times_[: np.searchsorted(self.unique_times_, times.max(), "right")]
        n_causes = len(self.estimators_)
        surv = np.empty((n, len(times)))
        cif = np.empty((n_causes, n, len(times)))
        if grid.size == 0:  # every time is before the first event
            surv[:] = 1.0
            cif[:] = 0.0
            return surv, cif
        # every cause on the common grid (a continuous hazard, as in an AFT model, grows
        # between its own event times too), held flat after its last event
        hazards = [
            _CauseHazard(est, X, np.minimum(grid, est.unique_times_[-1]))
            for est in self.estimators_
        ]
        steps = np.searchsorted(grid, times, "right")  # grid steps up to each time
        needed = list(range(n_causes)) if causes is None else list(causes)
        todo = _blocked_paths(hazards, steps, surv, cif, needed)
        block = max(1, _BLOCK // (grid.size * (n_causes + 2)))
        for start in range(0, todo.size, block):
            rows = todo[start : start + block]
            increments = np.empty((n_causes, len(rows), grid.size))
            for k, hazard in enumerate(hazards):
                increments[k] = np.maximum(np.diff(hazard.at(rows), axis=1, prepend=0.0), 0.0)
            total = increments.sum(axis=0)
            over = total > 1.0
            if over.any():  # cap the step at 1, scaling every cause alike
                increments[:, over] /= total[over]
                total = np.minimum(total, 1.0)
            s = np.cumprod(1.0 - total, axis=1)
            s_before = np.concatenate([np.ones((len(rows), 1)), s[:, :-1]], axis=1)
            cif_grid = np.cumsum(s_before[None] * increments, axis=2)
            ones = np.ones((len(rows), 1))
            surv[rows] = np.concatenate([ones, s], axis=1)[:, steps]
            cif[:, rows] = step_at(grid, cif_grid, times)
        return surv, cif

    def predict_cumulative_incidence(
        self, X: Any, times: Any = None, cause: int | None = None
    ) -> FloatArray:
        """Cumulative incidence of one cause at each time.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        times : array-like of float or None, default=None
            Days after the index date, each in ``(0, unique_times_[-1]]``. None means
            ``unique_times_``.
        cause : int or None, default=None
            Event code; None means ``event_of_interest`` (1, subsequent fracture).

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Probabilities in [0, 1], non-decreasing in time.

        Raises
        ------
        ValueError
            If a time is <= 0 or beyond the last training event time, or the cause was
            not fitted.
        """
        check_is_fitted(self)
        k = self._cause_index(cause)
        return self._paths(X, self._times(times), [k])[1][k]

    def predict_survival_function(self, X: Any, times: Any = None) -> FloatArray:
        """Probability of being free of every cause at each time.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        times : array-like of float or None, default=None
            Days after the index date, each in ``(0, unique_times_[-1]]``. None means
            ``unique_times_``.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Values in [0, 1], non-increasing in time; equal to one minus the sum of the
            CIFs of all causes.

        Raises
        ------
        ValueError
            If a time is <= 0 or beyond the last training event time.
        """
        check_is_fitted(self)
        return self._paths(X, self._times(times), [])[0]

    def predict_risk(self, X: Any, horizons: Any) -> FloatArray:
        """Cumulative incidence of the event of interest at each horizon.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        horizons : float or array-like of float
            Days after the index date, each in ``(0, unique_times_[-1]]``.

        Returns
        -------
        ndarray of shape (n_samples, n_horizons)
            Absolute risk of the event of interest, with the competing events taken
            into account.

        Raises
        ------
        ValueError
            If a horizon is <= 0 or beyond the last training event time.
        """
        check_is_fitted(self)
        if horizons is None:
            raise ValueError("horizons must be given (days after the index date); got None.")
        k = self._cause_index(None)
        return self._paths(X, self._times(horizons, name="horizons"), [k])[1][k]

    def predict(self, X: Any) -> FloatArray:
        """Risk score of the event of interest from its cause-specific model.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher means a higher cause-specific hazard (for Cox models the log hazard
            ratio against the average training record).
        """
        check_is_fitted(self)
        X = self.validate_input(X, reset=False)
        return self.estimators_[self._cause_index(None)].predict(X)

    def score(self, X: Any, y: Any) -> float:
        """Harrell's concordance index of ``predict(X)`` for the event of interest.

        Records with another event count as censored at their event time (the
        cause-specific C-index); this makes the estimator usable in ``GridSearchCV`` and
        ``cross_validate`` without a ``scoring`` argument.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (int code, 0 = censored) and ``time`` (days).

        Returns
        -------
        float
            In [0, 1]; 0.5 is chance, higher is better.
        """
        from spinerisk.metrics import harrell_c

        check_is_fitted(self)
        y = check_competing_target(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} records but y has {len(y)}.")
        return harrell_c(y["time"], y["event"] == self.event_of_interest, self.predict(X))


# -- the product limit, linear in the number of records -----------------------------------------
#: Below this many (records x grid steps) the records follow the grid step by step; so
#: do the records of a risk tier with fewer than _TIER_ROWS records.
_EXACT_WORK = 2_000_000
_TIER_ROWS = 64
#: Block expansion: degree kept per cause, largest summed hazard of a block of several
#: steps for the tier's highest risk (1.5 * _TAU with the step that opens it), most steps
#: per block, most distinct times. The neglected terms of a block are below
#: (1.5 * _TAU) ** (_DEGREE + 1) / (_DEGREE + 1)! ~ 1e-14.
_DEGREE = 9
_TAU = 0.125
_MAX_STEPS = 256
_MAX_TIMES = 64


class _CauseHazard:
    """One cause model's cumulative hazard on the grid ``at``, each record scored once.

    A Cox-type model (``_lp`` and a Breslow baseline) or an AFT model (``_margin``)
    scores the records with one booster or matrix call; any other model is asked for
    ``predict_cumulative_hazard`` of the rows it needs.
    """

    def __init__(self, est: Any, X: Any, at: FloatArray) -> None:
        self.est, self.X, self.at_times = est, X, at
        self.baseline: FloatArray | None = None
        self.score: FloatArray | None = None
        if hasattr(est, "baseline_cumulative_hazard_") and hasattr(est, "_lp"):
            self.score = np.asarray(est._lp(X), dtype=np.float64)
            self.baseline = step_at(est.unique_times_, est.baseline_cumulative_hazard_, at)
        elif all(hasattr(est, a) for a in ("_margin", "scale_", "distribution")):
            self.score = np.asarray(est._margin(X), dtype=np.float64)

    def at(self, rows: np.ndarray) -> FloatArray:
        """Cumulative hazard of ``rows`` on the grid: shape (len(rows), grid)."""
        est = self.est
        if self.baseline is not None:
            return _cox_hazard(self.score[rows], est.unique_times_,  # type: ignore[index]
                               est.baseline_cumulative_hazard_, self.at_times)  # fmt: skip
        if self.score is not None:
            return _aft_hazard(self.score[rows], self.at_times, est.scale_, est.distribution)
        return np.asarray(est.predict_cumulative_hazard(_take_rows(self.X, rows), self.at_times))


def _blocked_paths(
    hazards: list[_CauseHazard],
    steps: np.ndarray,
    surv: FloatArray,
    cif: FloatArray,
    needed: list[int],
) -> np.ndarray:
    """Fill ``surv`` and the ``needed`` causes' ``cif`` (the others NaN) for the records
    the block expansion handles; return the other rows (to follow the grid step by step).

    With Cox-type causes the hazard increment of record ``i`` at step ``j`` is
    ``r_ik * a_kj`` (``r = exp(lp)``, ``a`` the baseline increments), so over a block of
    steps the event-free survival ``prod_j (1 - sum_k r_ik a_kj)`` and each cause's
    incidence ``sum_j r_ik a_kj prod_(l < j) (1 - ...)`` are polynomials in the ``r_ik``
    with coefficients fixed by the block: computed once, then evaluated for every record.
    Records are grouped in tiers by their largest ``r`` (a power of 2, ``2**t``); blocks
    are cut so that a tier's highest risk gathers at most ``1.5 * _TAU`` of hazard in a
    block (a bigger step is a block of its own, which is exact), and at every requested
    time. Records whose step could exceed 1 (the capped case), with a non-finite score,
    or in a tier too small to pay off (fewer than ``_TIER_ROWS``, or too many blocks)
    are returned.
    """
    n = surv.shape[0]
    everyone = np.arange(n)
    n_steps = int(steps.max())
    ends = np.unique(steps[steps > 0])
    n_causes = len(hazards)
    if (
        any(h.baseline is None for h in hazards)
        or n_causes > 3
        or ends.size > _MAX_TIMES
        or n * n_steps <= _EXACT_WORK
    ):
        return everyone
    base = np.stack([np.maximum(np.diff(h.baseline[:n_steps], prepend=0.0), 0.0) for h in hazards])  # type: ignore[index]
    with np.errstate(over="ignore"):
        risk = np.exp(np.stack([cast(np.ndarray, h.score) for h in hazards]))
        top = risk.max(axis=0)
    ok = np.isfinite(top) & (top > 0)
    tier = np.zeros(n, dtype=np.int64)
    tier[ok] = np.maximum(np.ceil(np.log2(top[ok])), 0).astype(np.int64)
    left = [everyone[~ok]]
    plans = []
    for t in np.unique(tier[ok]):
        rows = everyone[ok & (tier == t)]
        alpha = base * 2.0 ** int(t)  # increments of the tier's highest risk
        y = risk[:, rows] / 2.0 ** int(t)  # in (0, 1]
        envelope = alpha.sum(axis=0)
        may_cap = np.flatnonzero(envelope > 1.0)
        if may_cap.size:
            capped = (y.T @ alpha[:, may_cap] > 1.0).any(axis=1)
            left.append(rows[capped])
            rows, y = rows[~capped], y[:, ~capped]
        block, n_blocks = _cut_blocks(envelope, ends, max(_MAX_STEPS, n_steps // 16))
        if rows.size < _TIER_ROWS or n_blocks * 8 > n_steps:
            left.append(rows)
            continue
        plans.append((rows, y, block, n_blocks, 2.0 ** int(t)))
    if plans:  # the blocks of every tier built together
        first = [np.searchsorted(p[2], np.arange(p[3])) for p in plans]
        lengths = [np.bincount(p[2], minlength=p[3]) for p in plans]
        scale = [np.full(p[3], p[4]) for p in plans]
        coef = _block_polynomials(
            base, np.concatenate(first), np.concatenate(lengths), np.concatenate(scale), needed
        )
        offset = 0
        for rows, y, block, n_blocks, _ in plans:
            part = coef[:, offset : offset + n_blocks]
            _evaluate_blocks(part, y, rows, block, steps, surv, cif, needed)
            offset += n_blocks
    return np.sort(np.concatenate(left))


def _cut_blocks(envelope: FloatArray, ends: np.ndarray, max_steps: int) -> tuple[np.ndarray, int]:
    """Block of each grid step: a new block at every requested time, when the summed
    ``envelope`` passes a multiple of ``_TAU``, at and after a step above ``_TAU / 2``,
    and every ``max_steps`` steps."""
    n_steps = envelope.size
    big = envelope > _TAU / 2
    bucket = np.floor(np.cumsum(envelope) / _TAU)
    segment = np.searchsorted(ends, np.arange(n_steps), side="right")
    start = np.ones(n_steps, dtype=bool)
    start[1:] = (bucket[1:] != bucket[:-1]) | (segment[1:] != segment[:-1]) | big[1:] | big[:-1]
    block = np.cumsum(start) - 1
    position = np.arange(n_steps) - np.flatnonzero(start)[block]
    start |= position % max_steps == 0
    block = np.cumsum(start) - 1
    return block, int(block[-1]) + 1


def _block_polynomials(
    base: FloatArray,
    first: np.ndarray,
    lengths: np.ndarray,
    scale: FloatArray,
    needed: list[int],
) -> FloatArray:
    """Coefficients ``(1 + len(needed), n_blocks, d, ..., d)`` of each block's survival
    factor and the needed causes' incidences, as polynomials in the scaled risks ``y_k``.

    A block covers ``lengths`` grid steps from ``first``, with hazard increments
    ``scale * base``. Every coefficient with each degree at most ``_DEGREE`` is exact.
    The blocks are taken together, longest first, step position by step position, so
    the blocks still running at a position are a leading slice.
    """
    n_causes = base.shape[0]
    n_blocks = lengths.size
    d = _DEGREE + 1
    by_length = np.argsort(-lengths, kind="stable")
    first, scale = first[by_length], scale[by_length]
    running = (lengths[by_length][None, :] > np.arange(lengths.max())[:, None]).sum(axis=1)
    poly = np.zeros((1 + len(needed), n_blocks) + (d,) * n_causes)
    poly[(0, slice(None)) + (0,) * n_causes] = 1.0
    lift = (slice(None),) + (None,) * n_causes
    keep = [slice(None)] * (1 + n_causes)
    lower, upper = [], []
    for k in range(n_causes):  # times y_k: degree j of y_k moves to j + 1
        low, up = list(keep), list(keep)
        low[1 + k], up[1 + k] = slice(None, -1), slice(1, None)
        lower.append(tuple(low))
        upper.append(tuple(up))
    for position, m in enumerate(running):
        survival = poly[0, :m]
        steps = base[:, first[:m] + position] * scale[:m]
        moved = [steps[k][lift] * survival[lower[k]] for k in range(n_causes)]
        for i, k in enumerate(needed):
            poly[1 + i, :m][upper[k]] += moved[k]
        for k in range(n_causes):
            survival[upper[k]] -= moved[k]
    unsort = np.empty(n_blocks, dtype=np.intp)
    unsort[by_length] = np.arange(n_blocks)
    return poly[:, unsort]


def _evaluate_blocks(
    coef: FloatArray,
    y: FloatArray,
    rows: np.ndarray,
    block: np.ndarray,
    steps: np.ndarray,
    surv: FloatArray,
    cif: FloatArray,
    needed: list[int],
) -> None:
    """Evaluate the block polynomials at the records' scaled risks ``y`` and chain the
    blocks into survival and the needed causes' incidences at ``steps``."""
    n_causes = y.shape[0]
    n_polys, n_blocks = coef.shape[:2]
    d = _DEGREE + 1
    flat = coef.reshape((n_polys * n_blocks,) + (d,) * n_causes)
    at = np.maximum(steps - 1, 0)
    last = block[at]
    before = steps == 0
    flat = flat.reshape(n_polys * n_blocks, d**n_causes).T
    chunk = max(1, _BLOCK // max(n_polys * n_blocks, d**n_causes))
    powers = np.arange(d)
    for start in range(0, rows.size, chunk):
        part = slice(start, start + chunk)
        terms = y[0, part, None] ** powers  # products of the powers of every y_k
        for k in range(1, n_causes):
            terms = (terms[:, :, None] * (y[k, part, None] ** powers)[:, None, :]).reshape(
                terms.shape[0], -1
            )
        values = (terms @ flat).reshape(-1, n_polys, n_blocks)
        s = np.cumprod(values[:, 0], axis=1)
        s_before = np.concatenate([np.ones((s.shape[0], 1)), s[:, :-1]], axis=1)
        incidence = np.cumsum(s_before[:, None] * values[:, 1:], axis=2)
        r = rows[part]
        surv[r] = np.where(before, 1.0, s[:, last])
        cif[:, r] = np.nan
        cif[needed, r[:, None]] = np.where(before, 0.0, incidence[:, :, last])
