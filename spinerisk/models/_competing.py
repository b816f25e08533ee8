"""Competing risks from cause-specific hazard models.

:class:`CauseSpecificCIF` fits one survival model per cause (the other causes censored)
and combines their hazards into cumulative incidence functions (CIF) with the
Aalen-Johansen product-limit formula. With death as a competing event, the fracture CIF is
the absolute risk of a subsequent fracture; ``1 - KM`` with death censored over-estimates it.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from spinerisk.models._survival import CoxPHSurvival
from spinerisk.models._survival_base import (
    FloatArray,
    _step_at,
    _take_rows,
    _times_on_grid,
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

    def _validate_X(self, X: Any, *, reset: bool) -> Any:
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
        X = self._validate_X(X, reset=True)
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

    def _paths(self, X: Any, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Event-free survival (n, T) and CIFs (n_causes, n, T) at ``times``."""
        X = self._validate_X(X, reset=False)
        n = X.shape[0]
        grid = self.unique_times_[: np.searchsorted(self.unique_times_, times.max(), "right")]
        n_causes = len(self.estimators_)
        surv = np.empty((n, len(times)))
        cif = np.empty((n_causes, n, len(times)))
        if grid.size == 0:  # every time is before the first event
            surv[:] = 1.0
            cif[:] = 0.0
            return surv, cif
        step = max(1, _BLOCK // (grid.size * (n_causes + 2)))
        for start in range(0, n, step):
            rows = np.arange(start, min(start + step, n))
            Xb = _take_rows(X, rows)
            increments = np.empty((n_causes, len(rows), grid.size))
            for k, est in enumerate(self.estimators_):
                # every cause on the common grid (a continuous hazard, as in an AFT model,
                # grows between its own event times too), held flat after its last event
                at = np.minimum(grid, est.unique_times_[-1])
                hazard = est.predict_cumulative_hazard(Xb, at)
                increments[k] = np.maximum(np.diff(hazard, axis=1, prepend=0.0), 0.0)
            total = increments.sum(axis=0)
            over = total > 1.0
            if over.any():  # cap the step at 1, scaling every cause alike
                increments[:, over] /= total[over]
                total = np.minimum(total, 1.0)
            s = np.cumprod(1.0 - total, axis=1)
            s_before = np.concatenate([np.ones((len(rows), 1)), s[:, :-1]], axis=1)
            cif_grid = np.cumsum(s_before[None] * increments, axis=2)
            ones = np.ones((len(rows), 1))
            surv[rows] = np.concatenate([ones, s], axis=1)[:, np.searchsorted(grid, times, "right")]
            cif[:, rows] = _step_at(grid, cif_grid, times)
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
        return self._paths(X, self._times(times))[1][k]

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
        return self._paths(X, self._times(times))[0]

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
        return self._paths(X, self._times(horizons, name="horizons"))[1][k]

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
        X = self._validate_X(X, reset=False)
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
