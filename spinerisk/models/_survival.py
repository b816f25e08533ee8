"""Time-to-event models behind the scikit-learn API.

* :class:`CoxPHSurvival`: penalised Cox proportional hazards (lifelines ``CoxPHFitter``).
* :class:`BoostedCoxSurvival`: gradient-boosted Cox model (XGBoost ``survival:cox``).
* :class:`BoostedAFTSurvival`: gradient-boosted accelerated failure time model (XGBoost
  ``survival:aft``).

All three take ``y`` as the structured ``(event, time)`` array of
:func:`spinerisk.targets.make_survival_target` (time in days), return a risk score from
``predict`` (higher means worse) and survival curves as arrays of shape
``(n_samples, n_times)``. Predictions are only made inside the training follow-up: a time
beyond the last training event time is an error, never a silent extrapolation.
"""

from __future__ import annotations

import abc
import numbers
import os
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from spinerisk.models._survival_base import (
    CoxType,
    FloatArray,
    _check_survival_y,
    _SurvivalPredictions,
    check_number,
)

__all__ = ["BoostedAFTSurvival", "BoostedCoxSurvival", "CoxPHSurvival"]


# -- Cox proportional hazards (lifelines) ------------------------------------------------------
_DURATION, _EVENT = "__spinerisk_duration_days__", "__spinerisk_event__"
#: ``CoxPHSurvival``'s default penalty, and the one ``penalizer="cv"`` falls back to when
#: there is nothing to cross-validate (fewer than 2 events).
DEFAULT_PENALIZER = 0.1


class CoxPHSurvival(CoxType, BaseEstimator):
    """Penalised Cox proportional hazards model (lifelines) with the scikit-learn API.

    An adapter around :class:`lifelines.CoxPHFitter`: ``X`` and ``y`` are mapped to one
    frame with a duration and an event column, the feature names are kept, and the fitted
    coefficients and a Breslow baseline cumulative hazard on the training event times are
    stored as attributes.

    Parameters
    ----------
    penalizer : float or "cv", default=0.1
        Strength of the elastic-net penalty, as in lifelines (it scales the penalty
        against the log partial likelihood averaged over records, on lifelines'
        standardised columns). ``"cv"`` chooses a ridge penalty from 1e-4 to 10 (11
        values, a half-decade apart) by 5-fold cross-validation, stratified by event and
        seeded by ``random_state``: the one with the lowest pooled out-of-fold partial-
        likelihood deviance (risk sets within each fold; not the "one standard error"
        rule, which over-shrinks by design). lifelines then fits at that penalty, started
        at the exact ridge solution: from zero its Newton steps can stop far from the
        optimum under a weak penalty (measured on real data, flchain). With fewer than 2
        events there is nothing to cross-validate and 0.1 is used.
        ``RiskModel(backend="linear")`` uses ``"cv"``.
    l1_ratio : float, default=0.0
        Share of the penalty that is L1 (lasso); 0 is ridge. Must be 0 with
        ``penalizer="cv"``.
    random_state : int, default=0
        Seed of the folds of ``penalizer="cv"`` (an integer >= 0, so that the same data
        give the same model); unused otherwise.

    Attributes
    ----------
    penalizer_ : float
        The penalty used: ``penalizer``, or the one cross-validation chose.
    coef_ : ndarray of shape (n_features_in_,)
        Log hazard ratio per unit of each feature. Features that are constant in the
        training data carry no information for a Cox model; they get 0 and are not
        passed to lifelines.
    summary_ : DataFrame or None
        lifelines' coefficient table (coefficient, standard error, confidence interval,
        p value) for the non-constant features; None if every feature is constant.
    lp_mean_ : float
        Mean linear predictor ``X @ coef_`` over the training records; risk scores are
        centred on it.
    unique_times_ : ndarray of shape (n_times,)
        Distinct training event times in days, increasing.
    baseline_cumulative_hazard_ : ndarray of shape (n_times,)
        Breslow estimate of H0 at ``unique_times_`` for a record whose linear predictor
        equals ``lp_mean_``: ``H(t | x) = H0(t) * exp(predict(x))``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    BoostedCoxSurvival : Gradient-boosted Cox model for non-linear effects.
    spinerisk.models.CauseSpecificCIF : Competing risks from cause-specific models.

    Notes
    -----
    Categories must be encoded first: a frame with ``category`` columns is refused. Missing
    values are refused too (impute them in the feature pipeline). The lifelines fitter is
    not kept because it stores the training records; ``summary_`` keeps its table.

    Survival is only estimated up to the last training event time: asking for a later
    time raises a ValueError instead of extrapolating the baseline hazard.

    Coefficients are associations in observational data; treatment coefficients are
    confounded by indication and are not treatment effects.

    References
    ----------
    .. [1] Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187-220.
    .. [2] Breslow NE. Discussion of Cox (1972). J R Stat Soc B 1972;34:216-7.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.models._survival import CoxPHSurvival
    >>> from spinerisk.targets import make_survival_target
    >>> cohort = sr.validate(sr.make_spine_cohort(300, seed=0))
    >>> X = sr.make_feature_pipeline().fit_transform(cohort)
    >>> y = make_survival_target(cohort["fx_event"] == 1, cohort["fx_time_days"])
    >>> model = CoxPHSurvival().fit(X, y)
    >>> model.predict_risk(X.head(2), [365.25, 730.5]).shape
    (2, 2)
    >>> S = model.predict_survival_function(X.head(2))
    >>> bool((S >= 0).all() and (S <= 1).all() and (S[:, 1:] <= S[:, :-1]).all())
    True
    >>> model.predict_risk(X.head(2), [20 * 365.25])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: horizon 7305.0 days (in horizons) is beyond the last training event time, ...
    >>> CoxPHSurvival().fit(cohort[["sex"]], y)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: CoxPHSurvival needs numeric features; column(s) ['sex'] are not numeric ...
    """

    coef_: FloatArray
    lp_mean_: float

    def __init__(
        self,
        penalizer: float | Literal["cv"] = DEFAULT_PENALIZER,
        l1_ratio: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.random_state = random_state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A model saved before ``penalizer="cv"`` existed loads as fitted then: seed 0,
        and (if fitted) the penalty it was given."""
        state = {"random_state": 0, **state}
        if "coef_" in state:
            state = {"penalizer_": state["penalizer"], **state}
        super().__setstate__(state)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags

    def validate_input(self, X: Any, *, reset: bool) -> FloatArray:
        if isinstance(X, pd.DataFrame):
            bad = [
                c
                for c, dt in X.dtypes.items()
                if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
                or isinstance(dt, pd.CategoricalDtype)
            ]
            if bad:
                raise TypeError(
                    f"CoxPHSurvival needs numeric features; column(s) {bad[:5]} are not "
                    "numeric (categorical or text). Encode them first with "
                    'spinerisk.make_feature_pipeline(encoding="onehot").'
                )
        return validate_data(self, X, dtype=np.float64, reset=reset)

    def _lp(self, X: Any) -> FloatArray:
        return self.validate_input(X, reset=False) @ self.coef_ - self.lp_mean_

    def fit(self, X: Any, y: np.ndarray, groups: Any = None) -> CoxPHSurvival:
        """Fit the Cox model and its Breslow baseline hazard.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric features without missing values (one-hot encoded categories).
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (bool) and ``time`` (days), see
            :func:`spinerisk.targets.make_survival_target`.
        groups : array-like of shape (n_samples,) or None, default=None
            With ``penalizer="cv"``: records of one group share a fold (copies of a
            record in a bootstrap resample). Unused otherwise.

        Returns
        -------
        self : CoxPHSurvival
            The fitted model.
        """
        cv = isinstance(self.penalizer, str) and self.penalizer == "cv"
        if isinstance(self.penalizer, str) and not cv:
            raise ValueError(
                f"penalizer must be a number >= 0 or 'cv'; got penalizer={self.penalizer!r}."
            )
        if not cv:
            check_number("penalizer", self.penalizer, low=0)
        check_number("l1_ratio", self.l1_ratio, low=0, high=1)
        if cv and self.l1_ratio != 0:
            raise ValueError(
                "penalizer='cv' chooses a ridge penalty, so l1_ratio must be 0; got "
                f"l1_ratio={self.l1_ratio!r}."
            )
        check_number("random_state", self.random_state, low=0, integer=True)
        Xa = self.validate_input(X, reset=True)
        y = _check_survival_y(y, Xa.shape[0], type(self).__name__)
        names = (
            [str(c) for c in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{i}" for i in range(Xa.shape[1])]
        )
        varying = np.ptp(Xa, axis=0) > 0
        coef = np.zeros(Xa.shape[1])
        self.summary_ = None
        start = None
        if cv:
            self.penalizer_, start = _penalty_by_cv(
                Xa[:, varying], y, int(self.random_state), groups
            )
        else:
            self.penalizer_ = float(self.penalizer)  # type: ignore[arg-type]
        if varying.any():
            from lifelines import CoxPHFitter
            from lifelines.exceptions import ConvergenceError

            used = [names[i] for i in np.flatnonzero(varying)]
            df = pd.DataFrame(Xa[:, varying], columns=used)
            df[_DURATION] = y["time"]
            df[_EVENT] = y["event"].astype(int)
            fitter = CoxPHFitter(penalizer=self.penalizer_, l1_ratio=float(self.l1_ratio))
            try:
                fitter.fit(df, duration_col=_DURATION, event_col=_EVENT, initial_point=start)
            except ConvergenceError as exc:
                exc.add_note(
                    f"CoxPHSurvival(penalizer={self.penalizer_!r}): try a larger penalizer, "
                    "or drop near-constant and collinear features."
                )
                raise
            coef[varying] = fitter.params_.to_numpy(dtype=float)
            self.summary_ = fitter.summary.copy()
        self.coef_ = coef
        lp = Xa @ coef
        self.lp_mean_ = float(lp.mean())
        self.fit_baseline(y["time"], y["event"], lp - self.lp_mean_)
        return self


def _penalty_by_cv(
    X: FloatArray, y: np.ndarray, seed: int, groups: Any
) -> tuple[float, FloatArray | None]:
    """The ridge penalty ``penalizer="cv"`` chooses (see :class:`CoxPHSurvival`), and the
    coefficients of the fit at it on lifelines' scale, where lifelines starts: under a
    weak penalty its own Newton steps from zero stopped far from the optimum on real
    samples of flchain, where the exact path, warm-started down the grid, converges.
    Folds stratified by event where both kinds of record fill every fold; copies of a
    record (one group) share a fold."""
    from spinerisk.models._ridge import cox_penalty_cv, fold_labels, stratified_folds

    event = y["event"].astype(bool)
    k = min(5, int(event.sum()))
    if k < 2 or X.shape[1] == 0:
        return DEFAULT_PENALIZER, None
    strata = event.astype(np.int_) if int((~event).sum()) >= k else np.zeros(len(event), np.int_)
    ids = np.arange(len(event)) if groups is None else pd.factorize(np.asarray(groups))[0]
    folds = fold_labels(stratified_folds(strata, ids, k, seed), len(event))
    sd = X.std(axis=0)  # columns vary: constant ones were left out
    lam, beta = cox_penalty_cv(
        (X - X.mean(axis=0)) / sd, y["time"].astype(np.float64), event, folds
    )
    # lifelines standardises by the sample standard deviation (ddof=1)
    return lam, beta * X.std(axis=0, ddof=1) / sd


# -- gradient boosting (XGBoost) ---------------------------------------------------------------
def _check_features_once(model: Any) -> None:
    """Make ``model`` (an ``xgboost.Booster``) check each DMatrix's feature names once.

    ``Booster.update`` and ``eval_set`` re-read and compare the feature names and types
    of the training and evaluation matrices every round (string lists converted from C
    each time): about a third of the fit time of a small survival model. The matrices
    do not change during training, so the first check stands for all rounds. Training
    is identical; if the booster lacks the (private) hook, nothing changes. Undo with
    :func:`_check_features_always` (the patched booster does not pickle).
    """
    check = getattr(model, "_assign_dmatrix_features", None)
    if callable(check):
        seen: set[int] = set()

        def once(data: Any) -> None:
            if id(data) not in seen:
                seen.add(id(data))
                check(data)

        model._assign_dmatrix_features = once  # this booster only


def _check_features_always(model: Any) -> None:
    model.__dict__.pop("_assign_dmatrix_features", None)  # picklable again


def feature_check_once() -> Any:
    """An ``xgboost.train`` callback doing :func:`_check_features_once` while training."""
    import xgboost as xgb

    class _Once(xgb.callback.TrainingCallback):  # type: ignore[misc]
        def before_training(self, model: Any) -> Any:
            _check_features_once(model)
            return model

        def after_training(self, model: Any) -> Any:
            _check_features_always(model)
            return model

    return _Once()


def _probe_and_refit(
    params: dict[str, Any],
    dfit: Any,
    dval: Any,
    dall: Any,
    n_rounds: int,
    patience: int,
    *,
    share_threads: bool = True,
) -> tuple[Any, int, float, Any]:
    """Early stopping on ``(dfit, dval)`` and the refit on ``dall``, side by side.

    The probe runs as ``xgboost.train(params, dfit, n_rounds, evals=[(dval, ...)],
    early_stopping_rounds=patience)`` does: the held-out metric after every round, the
    best round the first strictly lowest score, a stop after ``patience`` rounds
    without improvement. Boosting is sequential and seeded once, so the refit's first
    rounds do not depend on how many it will get: a second thread grows the refit up
    to the best round found so far while the probe runs on (XGBoost releases the GIL),
    and it never trains a round beyond the final best. The refit booster is the one
    ``xgboost.train(params, dall, best + 1)`` returns (the same trees and bytes); the
    wall time is about the longer of the two fits instead of their sum. Round 0 is
    always kept, so the refit starts it (and its histogram index of ``dall``) at once.

    With ``share_threads`` and ``params["nthread"]`` above 1 the two boosters split the
    threads (the probe gets the larger half) instead of each starting an OpenMP team as
    large as the machine: two such teams side by side oversubscribe the cores and spin
    against each other. XGBoost's ``hist`` trees do not depend on the thread count
    (tested), so the boosters are unchanged; the refit gets ``params["nthread"]`` back
    when it is done. Pass False when the held-out metric sums over threads (its last
    bits, hence possibly the best round, would depend on the probe's thread count).

    Returns the probe booster, the number of rounds kept, the best held-out score and
    the refit booster.
    """
    import threading

    import xgboost as xgb

    threads = int(params.get("nthread", 1))
    shared = share_threads and threads > 1
    probe = xgb.Booster(
        {**params, "nthread": threads - threads // 2} if shared else params, [dfit, dval]
    )
    refit = xgb.Booster({**params, "nthread": threads // 2} if shared else params, [dall])
    for booster in (probe, refit):
        _check_features_once(booster)
    # the refit may train every round up to "best"; round 0 is kept whatever comes next
    state: dict[str, Any] = {"best": 0, "done": False, "error": None}
    ready = threading.Condition()

    def grow_refit() -> None:
        done = 0
        try:
            while True:
                with ready:
                    while done > state["best"] and not state["done"]:
                        ready.wait()
                    if done > state["best"]:
                        return
                refit.update(dall, done)
                done += 1
        except BaseException as exc:  # re-raised by the caller's thread
            state["error"] = exc

    worker = threading.Thread(target=grow_refit, name="spinerisk-refit", daemon=True)
    worker.start()
    best_score, best, waited = np.nan, -1, 0
    try:
        for i in range(n_rounds):
            probe.update(dfit, i)
            text = probe.eval_set([(dval, "validation")], i)
            score = float(text.split()[-1].split(":")[-1])  # as xgboost's callbacks parse it
            if best < 0 or best_score > score:
                best_score, best, waited = score, i, 0
                if i > 0:
                    with ready:
                        state["best"] = i
                        ready.notify()
            else:
                waited += 1
                if waited >= patience:
                    break
    finally:
        with ready:
            state["done"] = True
            ready.notify()
        worker.join()
        for booster in (probe, refit):
            _check_features_always(booster)
    if state["error"] is not None:
        raise state["error"]
    if shared:
        refit.set_param("nthread", str(threads))  # as xgboost.train(params, ...) leaves it
    return probe, best + 1, best_score, refit


class _Boosted(_SurvivalPredictions, BaseEstimator):
    """Shared parameters, validation and training loop of the XGBoost survival models."""

    booster_: Any
    _objective: str
    _metric: str
    #: Whether XGBoost computes ``_metric`` in one serial sum (the same bits whatever the
    #: thread count), so the probe and the refit may split the threads.
    _metric_serial: bool

    def check_boosting_params(self) -> None:
        check_number("n_estimators", self.n_estimators, low=1, integer=True)
        check_number("learning_rate", self.learning_rate, low=0, low_open=True)
        check_number("max_depth", self.max_depth, low=1, integer=True)
        check_number("min_child_weight", self.min_child_weight, low=0)
        check_number("subsample", self.subsample, low=0, high=1, low_open=True)
        check_number("colsample_bytree", self.colsample_bytree, low=0, high=1, low_open=True)
        check_number("reg_lambda", self.reg_lambda, low=0)
        if self.early_stopping_rounds is not None:
            check_number("early_stopping_rounds", self.early_stopping_rounds, low=1, integer=True)
            check_number(
                "validation_fraction",
                self.validation_fraction,
                low=0,
                high=1,
                low_open=True,
                high_open=True,
            )
        if self.n_jobs is not None and not (
            isinstance(self.n_jobs, numbers.Integral)
            and (int(self.n_jobs) >= 1 or self.n_jobs == -1)
        ):
            raise ValueError(
                f"n_jobs must be None, -1 or an integer >= 1; got n_jobs={self.n_jobs!r}."
            )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        return tags

    def validate_input(self, X: Any, *, reset: bool) -> Any:
        if isinstance(X, pd.DataFrame):
            bad = [
                c
                for c, dt in X.dtypes.items()
                if not (
                    pd.api.types.is_numeric_dtype(dt)
                    or pd.api.types.is_bool_dtype(dt)
                    or isinstance(dt, pd.CategoricalDtype)
                )
            ]
            if bad:
                raise TypeError(
                    f"{type(self).__name__} needs numeric, boolean or category columns; "
                    f"column(s) {bad[:5]} are not. Encode records with "
                    'spinerisk.make_feature_pipeline(encoding="native").'
                )
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] < 1:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                    "is required."
                )
            return X
        return validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=reset)

    def _dmatrix(self, X: Any) -> Any:
        import xgboost as xgb

        if isinstance(X, pd.DataFrame):
            return xgb.DMatrix(X, enable_categorical=True, nthread=self._nthread())
        booster = getattr(self, "booster_", None)
        names = None if booster is None else booster.feature_names
        types = None if booster is None else booster.feature_types
        return xgb.DMatrix(X, feature_names=names, feature_types=types, nthread=self._nthread())

    def _nthread(self) -> int:
        if self.n_jobs is None or self.n_jobs == -1:
            return os.cpu_count() or 1
        return int(self.n_jobs)

    def booster_params(self, seed: int) -> dict[str, Any]:
        return {
            "objective": self._objective,
            "eval_metric": self._metric,
            "eta": float(self.learning_rate),
            "max_depth": int(self.max_depth),
            "min_child_weight": float(self.min_child_weight),
            "subsample": float(self.subsample),
            "colsample_bytree": float(self.colsample_bytree),
            "lambda": float(self.reg_lambda),
            "tree_method": "hist",
            "seed": seed,
            "nthread": self._nthread(),
            "verbosity": 0,
        }

    @abc.abstractmethod
    def _set_label(self, dm: Any, y: np.ndarray) -> None:
        """Put the objective's label encoding of ``y`` on the DMatrix."""

    def _train(
        self,
        X: Any,
        y: np.ndarray,
        extra: dict[str, Any],
        groups: Any = None,
        *,
        held_out: bool = False,
    ) -> tuple[Any, tuple[FloatArray, np.ndarray] | None]:
        """Early stopping on a seeded inner split, and a refit on every record with the
        best number of rounds (grown alongside the probe, see :func:`_probe_and_refit`).

        Returns the DMatrix of every record (reused by ``fit`` for the training margin)
        and, with early stopping and ``held_out``, the probe's margin on the held-out
        records with their target (else None).
        """
        import xgboost as xgb

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        params = {**self.booster_params(seed), **extra}
        n_rounds = int(self.n_estimators)
        self.best_score_ = None
        holdout = None
        dall = self._dmatrix(X)  # built once: the inner split takes row slices of it
        if self.early_stopping_rounds is not None:
            rows = np.arange(len(y))
            counts = np.bincount(y["event"].astype(int), minlength=2)
            stratify = y["event"] if counts.min() >= 2 else None
            if groups is not None and len(np.unique(np.asarray(groups))) < len(rows):
                # repeated records (a bootstrap resample) stay on one side of the split
                from spinerisk.models._ridge import stratified_folds

                n_splits = max(2, round(1 / self.validation_fraction))
                fit_rows, val_rows = stratified_folds(
                    y["event"].astype(int), np.asarray(groups), n_splits, seed
                )[0]
            else:
                fit_rows, val_rows = train_test_split(
                    rows, test_size=self.validation_fraction, random_state=seed, stratify=stratify
                )
            if not y["event"][val_rows].any() or not y["event"][fit_rows].any():
                raise ValueError(
                    f"The early-stopping split (validation_fraction={self.validation_fraction!r}) "
                    f"left no events on one side ({int(y['event'].sum())} events in all). Use "
                    "more data, a larger validation_fraction, or early_stopping_rounds=None."
                )
            dfit = dall.slice(fit_rows)
            self._set_label(dfit, y[fit_rows])
            dval = dall.slice(val_rows)
            self._set_label(dval, y[val_rows])
            self._set_label(dall, y)
            probe, n_rounds, best_score, self.booster_ = _probe_and_refit(
                params,
                dfit,
                dval,
                dall,
                n_rounds,
                int(self.early_stopping_rounds),
                share_threads=self._metric_serial,
            )
            self.best_score_ = best_score
            if held_out:
                holdout = (
                    np.asarray(
                        probe.predict(dval, output_margin=True, iteration_range=(0, n_rounds)),
                        dtype=np.float64,
                    ),
                    y[val_rows],
                )
        else:
            self._set_label(dall, y)
            self.booster_ = xgb.train(
                params,
                dall,
                num_boost_round=n_rounds,
                verbose_eval=False,
                callbacks=[feature_check_once()],
            )
        self.n_estimators_ = n_rounds
        return dall, holdout

    def _margin(self, X: Any) -> FloatArray:
        X = self.validate_input(X, reset=False)
        if isinstance(X, pd.DataFrame):  # the same margins as through a DMatrix, without one
            margin = self.booster_.inplace_predict(X, predict_type="margin")
        else:
            margin = self.booster_.predict(self._dmatrix(X), output_margin=True)
        return np.asarray(margin, dtype=np.float64)


class BoostedCoxSurvival(CoxType, _Boosted):
    """Gradient-boosted Cox proportional hazards model (XGBoost ``survival:cox``).

    The log hazard ratio is a sum of trees fitted to the Cox partial likelihood. The
    number of rounds is chosen by early stopping on a seeded inner split, then the model
    is refitted on every record. A Breslow baseline cumulative hazard on the training
    event times turns the booster's margin into survival curves.

    Parameters
    ----------
    n_estimators : int, default=2000
        Maximum number of boosting rounds (early stopping usually ends sooner).
    learning_rate : float, default=0.05
        Shrinkage per round (XGBoost ``eta``).
    max_depth : int, default=3
        Depth of each tree.
    min_child_weight : float, default=5
        Minimum hessian weight in a leaf.
    subsample : float, default=0.8
        Share of records drawn for each tree.
    colsample_bytree : float, default=0.8
        Share of features drawn for each tree.
    reg_lambda : float, default=1.0
        L2 penalty on leaf weights.
    validation_fraction : float, default=0.2
        Share of records held out (stratified by event) to choose the number of rounds.
    early_stopping_rounds : int or None, default=50
        Stop when the held-out loss has not improved for this many rounds; the model is
        then refitted on every record with the best number of rounds. None trains
        ``n_estimators`` rounds on every record without a hold-out.
    random_state : int, RandomState instance or None, default=0
        Seeds the inner split and XGBoost's row and column sampling.
    n_jobs : int or None, default=1
        XGBoost threads; None or -1 means every core. With early stopping the refit on
        every record trains beside the probe (two boosters at once, the same trees as one
        after the other), the two splitting the threads between them (each keeps at
        least one).

    Attributes
    ----------
    booster_ : xgboost.Booster
        The booster refitted on every record (save it with ``booster_.save_model``).
    n_estimators_ : int
        Boosting rounds in ``booster_``.
    best_score_ : float or None
        Held-out ``cox-nloglik`` at the chosen round; None without early stopping.
    lp_mean_ : float
        Mean booster margin over the training records; risk scores are centred on it.
    unique_times_ : ndarray of shape (n_times,)
        Distinct training event times in days, increasing.
    baseline_cumulative_hazard_ : ndarray of shape (n_times,)
        Breslow estimate of H0 at ``unique_times_``,
        ``H0(t) = sum_(t_i <= t) d_i / sum_(j at risk at t_i) exp(eta_j)`` with
        ``eta = margin - lp_mean_``, so ``H(t | x) = H0(t) * exp(predict(x))``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    CoxPHSurvival : Penalised linear Cox model.
    BoostedAFTSurvival : Boosted accelerated failure time model.

    Notes
    -----
    Use ``make_feature_pipeline(encoding="native")``: categories stay pandas
    ``category`` columns (XGBoost ``enable_categorical=True``) and missing values stay NaN
    for the booster's own handling. Survival is only estimated up to the last training
    event time; a later time raises a ValueError. Risk scores reflect associations, not
    treatment effects.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.models._survival import BoostedCoxSurvival
    >>> from spinerisk.targets import make_survival_target
    >>> cohort = sr.validate(sr.make_spine_cohort(300, seed=0))
    >>> X = sr.make_feature_pipeline(encoding="native").fit_transform(cohort)
    >>> y = make_survival_target(cohort["fx_event"] == 1, cohort["fx_time_days"])
    >>> model = BoostedCoxSurvival(n_estimators=50, early_stopping_rounds=10).fit(X, y)
    >>> 1 <= model.n_estimators_ <= 50
    True
    >>> risk = model.predict_risk(X.head(3), [365.25, 730.5])
    >>> risk.shape, bool((risk[:, 1] >= risk[:, 0]).all())
    ((3, 2), True)
    >>> model.predict_risk(X.head(3), 0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: horizons must be finite and > 0 (days); got 0.0. ...
    """

    _objective = "survival:cox"
    _metric = "cox-nloglik"
    _metric_serial = True

    def __init__(
        self,
        n_estimators: int = 2000,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int | None = 50,
        random_state: int | np.random.RandomState | None = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _set_label(self, dm: Any, y: np.ndarray) -> None:
        # XGBoost's Cox convention: a negative time marks a censored record
        dm.set_label(np.where(y["event"], y["time"], -y["time"]))

    def _lp(self, X: Any) -> FloatArray:
        return self._margin(X) - self.lp_mean_

    def fit(self, X: Any, y: np.ndarray, groups: Any = None) -> BoostedCoxSurvival:
        """Fit the boosted Cox model and its Breslow baseline hazard.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features: numbers (NaN allowed), booleans and pandas categories.
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (bool) and ``time`` (days), see
            :func:`spinerisk.targets.make_survival_target`.
        groups : array-like of shape (n_samples,) or None, default=None
            Copies of one record share a label; when some repeat (a bootstrap
            resample), they stay on one side of the early-stopping split.

        Returns
        -------
        self : BoostedCoxSurvival
            The fitted model.
        """
        self.check_boosting_params()
        X = self.validate_input(X, reset=True)
        y = _check_survival_y(y, X.shape[0], type(self).__name__)
        dall, _ = self._train(X, y, {}, groups)
        margin = np.asarray(self.booster_.predict(dall, output_margin=True), dtype=np.float64)
        self.lp_mean_ = float(margin.mean())
        self.fit_baseline(y["time"], y["event"], margin - self.lp_mean_)
        return self


# -- accelerated failure time ------------------------------------------------------------------
_DISTRIBUTIONS = ("normal", "logistic", "extreme")


def log_survival(z: FloatArray, distribution: str) -> FloatArray:
    """log(1 - F(z)) for XGBoost's AFT error distributions."""
    if distribution == "normal":
        return special.log_ndtr(-z)
    if distribution == "logistic":
        return -np.logaddexp(0.0, z)
    return -np.exp(np.minimum(z, 700.0))  # extreme: F(z) = 1 - exp(-exp(z)) (Weibull times)


def _log_density(z: FloatArray, distribution: str) -> FloatArray:
    """log f(z) up to a constant."""
    if distribution == "normal":
        return -0.5 * z**2
    if distribution == "logistic":
        return z - 2.0 * np.logaddexp(0.0, z)
    return z - np.exp(np.minimum(z, 700.0))


def _aft_hazard(mu: FloatArray, times: FloatArray, scale: float, distribution: str) -> FloatArray:
    """AFT cumulative hazard ``-log S(t | mu)``: shape (n_records, n_times)."""
    z = (np.log(times)[None, :] - mu[:, None]) / scale
    return -log_survival(z, distribution)


def _standard_loglik(z: FloatArray, event: np.ndarray, distribution: str) -> float:
    """Log-likelihood of standardised log times ``z`` (events: density; censored records:
    survival), up to a constant and without the ``-log(scale)`` term of each event."""
    return float(
        np.where(event, _log_density(z, distribution), log_survival(z, distribution)).sum()
    )


def _aft_intercept(time: FloatArray, event: np.ndarray, distribution: str, scale: float) -> float:
    """Maximum-likelihood log-time intercept of the AFT model without covariates."""
    log_t = np.log(time)

    def nll(mu: float) -> float:
        return -_standard_loglik((log_t - mu) / scale, event, distribution)

    lo, hi = log_t.min() - 20 * scale, log_t.max() + 20 * scale
    return float(optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded").x)


#: Search range of the maximum-likelihood AFT scale (log-day scale), and the fewest
#: held-out events it is estimated from.
_SCALE_BOUNDS = (0.02, 50.0)
_SCALE_MIN_EVENTS = 10


def _aft_scale(
    time: FloatArray, event: np.ndarray, mu: FloatArray, distribution: str
) -> float | None:
    """Maximum-likelihood scale of ``log T = mu + scale * Z`` with ``mu`` given, or None
    when it cannot be trusted (too few events, or the optimum at a search bound)."""
    n_events = int(np.sum(event))
    if n_events < _SCALE_MIN_EVENTS:
        return None
    log_t = np.log(time)

    def nll(log_scale: float) -> float:
        z = (log_t - mu) / np.exp(log_scale)
        return n_events * log_scale - _standard_loglik(z, event, distribution)

    low, high = np.log(_SCALE_BOUNDS[0]), np.log(_SCALE_BOUNDS[1])
    found = optimize.minimize_scalar(nll, bounds=(low, high), method="bounded")
    if min(found.x - low, high - found.x) < 1e-3:
        return None
    return float(np.exp(found.x))


class BoostedAFTSurvival(_Boosted):
    """Gradient-boosted accelerated failure time model (XGBoost ``survival:aft``).

    ``log T = mu(x) + scale * Z``: trees model the expected log time ``mu(x)`` (days) and
    ``Z`` follows the chosen distribution, so
    ``S(t | x) = 1 - F((log t - mu(x)) / scale)``. Censored records enter as the interval
    ``[time, inf)``. The number of rounds is chosen by early stopping on a seeded inner
    split, then the model is refitted on every record, starting from the
    maximum-likelihood intercept.

    Parameters
    ----------
    distribution : {"normal", "logistic", "extreme"}, default="normal"
        Distribution of ``Z``: log-normal, log-logistic or Weibull times ("extreme" is
        the minimum extreme value distribution, ``F(z) = 1 - exp(-exp(z))``).
    scale : float, default=1.0
        Scale of ``Z`` on the log-day scale in XGBoost's training loss.
    estimate_scale : bool, default=False
        Re-estimate the scale used for predictions (``scale_``) by maximum likelihood
        on the early-stopping hold-out, given the booster's ``mu(x)`` there (records
        the booster did not fit, though they chose its number of rounds, which makes
        the estimate slightly optimistic). With fewer than 10 held-out events, or an
        optimum at the search bounds (0.02, 50), it warns and keeps ``scale``. It helps
        when the fixed ``scale`` is far from the data's spread and the distribution fits
        the whole range of times; it can hurt the Brier score at the horizons when the
        distribution fits the tails badly (see the guide). False, or no hold-out
        (``early_stopping_rounds=None``), means ``scale_`` is ``scale``.
    n_estimators : int, default=2000
        Maximum number of boosting rounds (early stopping usually ends sooner).
    learning_rate : float, default=0.05
        Shrinkage per round (XGBoost ``eta``).
    max_depth : int, default=3
        Depth of each tree.
    min_child_weight : float, default=5
        Minimum hessian weight in a leaf.
    subsample : float, default=0.8
        Share of records drawn for each tree.
    colsample_bytree : float, default=0.8
        Share of features drawn for each tree.
    reg_lambda : float, default=1.0
        L2 penalty on leaf weights.
    validation_fraction : float, default=0.2
        Share of records held out (stratified by event) to choose the number of rounds.
    early_stopping_rounds : int or None, default=50
        Stop when the held-out loss has not improved for this many rounds; the model is
        then refitted on every record with the best number of rounds. None trains
        ``n_estimators`` rounds on every record without a hold-out.
    random_state : int, RandomState instance or None, default=0
        Seeds the inner split and XGBoost's row and column sampling.
    n_jobs : int or None, default=1
        XGBoost threads per booster; None or -1 means every core. With early stopping
        the refit on every record trains beside the probe (two boosters at once, the
        same trees as one after the other).

    Attributes
    ----------
    booster_ : xgboost.Booster
        The booster refitted on every record; its margin is ``mu(x)``.
    n_estimators_ : int
        Boosting rounds in ``booster_``.
    best_score_ : float or None
        Held-out ``aft-nloglik`` at the chosen round; None without early stopping.
    intercept_ : float
        Maximum-likelihood log-time intercept used as XGBoost's base score.
    scale_ : float
        Scale of ``Z`` used for predictions (see ``estimate_scale``).
    unique_times_ : ndarray of shape (n_times,)
        Distinct training event times in days, increasing.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    BoostedCoxSurvival : Boosted proportional hazards model.

    Notes
    -----
    ``predict`` returns ``-mu(x)``: a shorter expected time is a higher risk.
    ``predict_cumulative_hazard`` is ``-log S(t | x)``. Although the model is
    parametric, it is not used beyond the last training event time: a later time raises
    a ValueError, as for the Cox models.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.models._survival import BoostedAFTSurvival
    >>> from spinerisk.targets import make_survival_target
    >>> cohort = sr.validate(sr.make_spine_cohort(300, seed=0))
    >>> X = sr.make_feature_pipeline(encoding="native").fit_transform(cohort)
    >>> y = make_survival_target(cohort["fx_event"] == 1, cohort["fx_time_days"])
    >>> model = BoostedAFTSurvival(distribution="extreme", n_estimators=50).fit(X, y)
    >>> S = model.predict_survival_function(X.head(3), [365.25, 730.5])
    >>> S.shape, bool((S[:, 1] <= S[:, 0]).all())
    ((3, 2), True)
    >>> BoostedAFTSurvival(distribution="weibull").fit(X, y)
    Traceback (most recent call last):
    ...
    ValueError: distribution must be one of 'normal', 'logistic', 'extreme'; got distribution='weibull'.
    """  # noqa: E501

    _objective = "survival:aft"
    _metric = "aft-nloglik"
    _metric_serial = False  # an OpenMP reduction: its last bits follow the thread count

    def __init__(
        self,
        distribution: Literal["normal", "logistic", "extreme"] = "normal",
        scale: float = 1.0,
        estimate_scale: bool = False,
        n_estimators: int = 2000,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int | None = 50,
        random_state: int | np.random.RandomState | None = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.distribution = distribution
        self.scale = scale
        self.estimate_scale = estimate_scale
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _set_label(self, dm: Any, y: np.ndarray) -> None:
        dm.set_float_info("label_lower_bound", y["time"])
        dm.set_float_info("label_upper_bound", np.where(y["event"], y["time"], np.inf))

    def fit(self, X: Any, y: np.ndarray, groups: Any = None) -> BoostedAFTSurvival:
        """Fit the boosted AFT model.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features: numbers (NaN allowed), booleans and pandas categories.
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (bool) and ``time`` (days), see
            :func:`spinerisk.targets.make_survival_target`.
        groups : array-like of shape (n_samples,) or None, default=None
            As for :meth:`BoostedCoxSurvival.fit`.

        Returns
        -------
        self : BoostedAFTSurvival
            The fitted model.
        """
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(
                "distribution must be one of 'normal', 'logistic', 'extreme'; "
                f"got distribution={self.distribution!r}."
            )
        check_number("scale", self.scale, low=0, low_open=True)
        if not isinstance(self.estimate_scale, bool | np.bool_):
            raise ValueError(
                f"estimate_scale must be True or False; got estimate_scale={self.estimate_scale!r}."
            )
        self.check_boosting_params()
        X = self.validate_input(X, reset=True)
        y = _check_survival_y(y, X.shape[0], type(self).__name__)
        self.intercept_ = _aft_intercept(
            y["time"], y["event"], self.distribution, float(self.scale)
        )
        extra = {
            "aft_loss_distribution": self.distribution,
            "aft_loss_distribution_scale": float(self.scale),
            "base_score": float(np.exp(self.intercept_)),  # XGBoost takes it on the time scale
        }
        _, held = self._train(X, y, extra, groups, held_out=bool(self.estimate_scale))
        self.scale_ = float(self.scale)
        if self.estimate_scale and held is not None:
            mu, y_held = held
            found = _aft_scale(y_held["time"], y_held["event"], mu, self.distribution)
            if found is None:
                warnings.warn(
                    f"estimate_scale: no reliable scale from the {len(y_held)} held-out "
                    f"records ({int(y_held['event'].sum())} events; at least "
                    f"{_SCALE_MIN_EVENTS} are needed and the optimum must lie inside "
                    f"{_SCALE_BOUNDS}); predictions use scale={self.scale!r}.",
                    UserWarning,
                    stacklevel=2,
                )
            else:
                self.scale_ = found
        self.unique_times_ = np.unique(y["time"][y["event"]])
        return self

    def _cumulative_hazard(self, X: Any, times: FloatArray) -> FloatArray:
        return _aft_hazard(self._margin(X), times, self.scale_, self.distribution)

    def predict(self, X: Any) -> FloatArray:
        """Risk score: minus the expected log time, ``-mu(x)``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher means an earlier expected event.
        """
        check_is_fitted(self)
        return -self._margin(X)
