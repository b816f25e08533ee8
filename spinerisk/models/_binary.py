"""Binary-outcome models: early-stopped boosters, a penalised logistic baseline, factories.

Everything here is a standard scikit-learn object or builds one. The only new estimator is
:class:`EarlyStoppingClassifier`, a meta-estimator that picks the number of boosting
rounds of an ``XGBClassifier`` or ``LGBMClassifier`` on a stratified inner validation
split and then refits on all rows. :func:`make_binary_model` composes the feature
pipeline, the model and (for boosters) cross-validated calibration into one unfitted
estimator that takes validated records.

xgboost and lightgbm are imported when a booster is built, never by
``import spinerisk``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import weakref
from contextlib import nullcontext
from typing import Any, Literal

import joblib  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from spinerisk.schema import Schema

__all__ = [
    "EarlyStoppingClassifier",
    "make_binary_model",
    "make_booster",
    "make_logistic",
]

_BOOSTERS = ("xgboost", "lightgbm")
_BACKENDS = (*_BOOSTERS, "logistic")
_CALIBRATIONS = ("auto", "sigmoid", "isotonic", None)
#: Inverse-penalty grid of the logistic baseline: 1e-3 to 1e3 in half-decade steps.
_LOGISTIC_CS = np.logspace(-3, 3, 13)


def neg_log_loss(estimator: Any, X: Any, y: Any, **kwargs: Any) -> float:
    """Scorer of the logistic penalty's cross-validation: scikit-learn's ``"neg_log_loss"``
    scorer, with its checks of the inputs skipped where the inputs are the estimator's
    own folds (float64 risks, every label one of its classes, no sample weights).

    Those checks took half of a linear fit's time (13 penalties x 5 folds, 65 calls).
    The loss itself is scikit-learn's: the same clipping, the same sum, so the same bits;
    any other call (sample weights, other dtypes or labels) goes to scikit-learn's scorer.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import get_scorer
    >>> X, y = np.arange(8.0).reshape(-1, 1), np.array([0, 0, 1, 0, 1, 0, 1, 1])
    >>> fitted = LogisticRegression().fit(X, y)
    >>> neg_log_loss(fitted, X, y) == get_scorer("neg_log_loss")(fitted, X, y)
    True
    """
    proba = estimator.predict_proba(X)
    labels = np.asarray(y)
    column = np.searchsorted(estimator.classes_, labels)
    plain = (
        not kwargs
        and proba.dtype == np.float64
        and proba.ndim == 2
        and np.all(column < len(estimator.classes_))
        and np.array_equal(
            estimator.classes_[np.minimum(column, len(estimator.classes_) - 1)], labels
        )
    )
    if not plain:
        from sklearn.metrics import get_scorer

        return float(get_scorer("neg_log_loss")(estimator, X, y, **kwargs))
    eps = np.finfo(proba.dtype).eps
    chosen = np.clip(proba[np.arange(len(proba)), column], eps, 1 - eps)
    return -float(np.mean(-np.log(chosen)))


# -- parameter checks -----------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_int(name: str, value: Any, low: int) -> None:
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}.")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {name}={value!r}.")


def _check_option(name: str, value: Any, options: tuple[Any, ...]) -> None:
    if not any(value is o or (isinstance(value, str) and value == o) for o in options):
        expected = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {expected}; got {name}={value!r}.")


def _check_seed(value: Any) -> None:
    if not _is_int(value) or value < 0:
        raise ValueError(
            f"random_state must be a non-negative integer (a fixed seed keeps the model "
            f"reproducible); got random_state={value!r}."
        )


def _backend_of(estimator: Any) -> str:
    """'xgboost' or 'lightgbm' for a booster instance; TypeError otherwise.

    The libraries are looked up in ``sys.modules``: an instance of one of their classes
    means the library is already imported, so nothing heavy is imported here.
    """
    xgb = sys.modules.get("xgboost")
    if xgb is not None and isinstance(estimator, xgb.XGBClassifier):
        return "xgboost"
    lgb = sys.modules.get("lightgbm")
    if lgb is not None and isinstance(estimator, lgb.LGBMClassifier):
        return "lightgbm"
    got = f"the class {estimator.__name__}" if isinstance(estimator, type) else repr(estimator)
    raise TypeError(
        "estimator must be an XGBClassifier or LGBMClassifier instance (or None for the "
        f"XGBoost default); got estimator={got}. Other classifiers do not need this "
        "wrapper: use them directly."
    )


# -- default boosters -------------------------------------------------------------------
def _xgboost_classifier(random_state: int, n_jobs: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(
        enable_categorical=True,
        tree_method="hist",
        max_depth=3,
        learning_rate=0.05,
        n_estimators=2000,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5,
        reg_lambda=1.0,
        eval_metric="logloss",
        random_state=random_state,
        n_jobs=n_jobs,
    )


def _fit_xgboost(model: Any, X: Any, y: Any, **fit_params: Any) -> Any:
    """``model.fit(X, y, **fit_params)`` for an ``XGBClassifier``, with its booster checking
    the matrices' feature names once instead of every round (``feature_check_once``: the
    same trees, in about two thirds of the time on a few hundred records); the model's own
    ``callbacks`` run too and are its parameter again afterwards."""
    from spinerisk.models._survival import feature_check_once

    own = model.get_params().get("callbacks")
    model.set_params(callbacks=[*(own or ()), feature_check_once()])
    try:
        return model.fit(X, y, **fit_params)
    finally:
        model.set_params(callbacks=own)


def _lightgbm_classifier(random_state: int, n_jobs: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        num_leaves=15,
        min_child_samples=20,
        learning_rate=0.05,
        n_estimators=2000,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        max_cat_to_onehot=16,
        random_state=random_state,
        n_jobs=n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class EarlyStoppingClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Gradient-boosted classifier whose number of rounds is chosen by early stopping.

    ``fit`` splits off a stratified, seeded validation part, fits a clone of
    ``estimator`` on the rest with early stopping on the validation loss, records the
    best number of rounds and (with ``refit=True``) refits a clone on all rows with
    exactly that many rounds and no early stopping. The result is an ordinary fitted
    classifier, usable inside ``Pipeline``, ``CalibratedClassifierCV``,
    ``GridSearchCV`` and ``cross_validate``.

    DataFrames reach the booster unchanged: pandas ``category`` columns (for
    ``XGBClassifier(enable_categorical=True)`` and LightGBM) and missing values (NaN)
    are passed through.

    Parameters
    ----------
    estimator : XGBClassifier, LGBMClassifier or None, default=None
        Unfitted booster; its ``n_estimators`` is the ceiling on the number of rounds.
        None means ``XGBClassifier`` with the small-cohort settings of
        :func:`make_booster` (seeded with ``random_state`` when it is an integer).
    validation_fraction : float, default=0.2
        Share of the training rows held out (stratified by class) to choose the
        number of rounds; strictly between 0 and 1.
    early_stopping_rounds : int, default=50
        Stop when the validation loss has not improved for this many rounds.
    refit : bool, default=True
        Refit on all rows with ``best_n_estimators_`` rounds. If False, keep the model
        fitted on the training part only (its predictions use the best round).
    random_state : int, RandomState instance or None, default=0
        Seed of the inner validation split.

    Attributes
    ----------
    estimator_ : XGBClassifier or LGBMClassifier
        The fitted booster used for prediction.
    best_n_estimators_ : int
        Number of boosting rounds with the lowest validation loss. Equal to the
        booster's ``n_estimators`` means early stopping never triggered: raise it.
    best_score_ : float
        Validation loss (the booster's first evaluation metric) at the best round.
    backend_ : {"xgboost", "lightgbm"}
        Library of the wrapped booster.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in fit (only for inputs with string column names).

    See Also
    --------
    make_booster : EarlyStoppingClassifier with small-cohort booster settings.
    make_binary_model : Features, booster and calibration in one estimator.

    Notes
    -----
    The refit on all rows keeps the number of rounds found on the smaller training
    part; with more rows the optimum is usually a little later, so the refit model is,
    if anything, slightly under-fitted (the safe side for small cohorts). Labels are
    encoded internally, so any label type works (XGBoost itself needs ``0..K-1``).
    ``sample_weight`` is not supported.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.endpoints import get_endpoint
    >>> from spinerisk.models._binary import EarlyStoppingClassifier
    >>> cohort = sr.validate(sr.make_spine_cohort(600, seed=0))
    >>> ep = get_endpoint("collapse")
    >>> rows = cohort[ep.eligible(cohort)]
    >>> X = sr.make_feature_pipeline(encoding="native").fit_transform(rows)
    >>> y = ep.target(rows)
    >>> clf = EarlyStoppingClassifier(random_state=0).fit(X, y)
    >>> clf.backend_, clf.best_n_estimators_ < 2000
    ('xgboost', True)
    >>> clf.estimator_.n_estimators == clf.best_n_estimators_
    True
    >>> clf.predict_proba(X.head(3)).shape
    (3, 2)

    Parameters are checked when fitting:

    >>> EarlyStoppingClassifier(validation_fraction=1.5).fit(X, y)
    Traceback (most recent call last):
    ...
    ValueError: validation_fraction must be a number with 0 < validation_fraction < 1; got validation_fraction=1.5.
    """  # noqa: E501

    def __init__(
        self,
        estimator: Any = None,
        *,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 50,
        refit: bool = True,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.refit = refit
        self.random_state = random_state

    # -- checks ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        vf = self.validation_fraction
        ok = isinstance(vf, numbers.Real) and not isinstance(vf, bool | np.bool_)
        if not (ok and math.isfinite(vf) and 0.0 < vf < 1.0):
            raise ValueError(
                "validation_fraction must be a number with 0 < validation_fraction < 1; "
                f"got validation_fraction={vf!r}."
            )
        _check_int("early_stopping_rounds", self.early_stopping_rounds, 1)
        _check_bool("refit", self.refit)
        rs = self.random_state
        if not (rs is None or _is_int(rs) or isinstance(rs, np.random.RandomState)):
            raise ValueError(
                "random_state must be an integer, a numpy RandomState or None; "
                f"got random_state={rs!r}."
            )

    def validate_input(self, X: Any, y: Any = "no_validation", *, reset: bool) -> Any:
        """Check X (and y, unless "no_validation"); a DataFrame is returned unchanged.

        Arrays and sparse matrices become numeric (NaN allowed). DataFrames are checked
        by hand, because ``check_array`` would cast their category columns to float.
        """
        with_y = not (isinstance(y, str) and y == "no_validation")
        if not isinstance(X, pd.DataFrame):
            return validate_data(
                self,
                X,
                y,
                accept_sparse=("csr", "csc"),
                dtype="numeric",
                ensure_all_finite="allow-nan",
                reset=reset,
            )
        validate_data(self, X, y, skip_check_array=True, reset=reset)  # names, n_features
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"Found a DataFrame of shape {X.shape}; EarlyStoppingClassifier needs at "
                "least one record and one feature."
            )
        numeric = X.select_dtypes(include="number")
        infinite = np.isinf(numeric.to_numpy(dtype=np.float64, na_value=np.nan)).any(axis=0)
        if infinite.any():
            raise ValueError(
                f"Input X contains infinity in column(s) {list(numeric.columns[infinite])}; "
                "use NaN for a missing value."
            )
        if not with_y:
            return X
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        return X, y

    def _base_estimator(self) -> Any:
        if self.estimator is None:
            rs = self.random_state
            if isinstance(rs, numbers.Integral):
                seed = int(rs)
            else:  # None or a RandomState: draw the booster's seed from it
                seed = int(check_random_state(rs).randint(2**31 - 1))
            return _xgboost_classifier(random_state=seed, n_jobs=1)
        _backend_of(self.estimator)
        return clone(self.estimator)

    # -- fit / predict --------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> EarlyStoppingClassifier:
        """Choose the number of rounds on a validation split, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training data; DataFrames are passed to the booster unchanged.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,) or None, default=None
            Records with the same label are copies of one record (a bootstrap
            resample's repeats): when some repeat, they stay on one side of the
            validation split, so early stopping is not judged on records it trained on.
            Without repeats the split is the same as without ``groups``.

        Returns
        -------
        self : EarlyStoppingClassifier
            The fitted estimator.
        """
        self._check_params()
        base = self._base_estimator()
        backend = _backend_of(base)
        X, y = self.validate_input(X, y, reset=True)
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"EarlyStoppingClassifier needs at least 2 classes in y; got 1 class "
                f"({classes[0]!r})."
            )
        counts = np.bincount(y_enc)
        if counts.min() < 2:
            rare = classes[int(counts.argmin())]
            raise ValueError(
                "EarlyStoppingClassifier holds out a stratified validation part and "
                f"needs at least 2 records of every class; class {rare!r} has "
                f"{int(counts.min())}."
            )
        n_val = math.ceil(self.validation_fraction * len(y_enc))
        if n_val < len(classes) or len(y_enc) - n_val < len(classes):
            raise ValueError(
                f"validation_fraction={self.validation_fraction!r} leaves {n_val} of "
                f"{len(y_enc)} records for validation; both parts need at least one "
                f"record per class ({len(classes)} classes). Use more records or another "
                "validation_fraction."
            )
        repeats = groups is not None and len(np.unique(np.asarray(groups))) < len(y_enc)
        if repeats:
            X_tr, X_val, y_tr, y_val = _grouped_split(
                X, y_enc, np.asarray(groups), self.validation_fraction, self.random_state
            )
        else:
            X_tr, X_val, y_tr, y_val = train_test_split(
                X,
                y_enc,
                test_size=self.validation_fraction,
                stratify=y_enc,
                random_state=self.random_state,
            )
        stopped = clone(base)
        if backend == "xgboost":
            stopped.set_params(early_stopping_rounds=self.early_stopping_rounds)
            _fit_xgboost(stopped, X_tr, y_tr, eval_set=[(X_val, y_val)], verbose=False)
            best = int(stopped.best_iteration) + 1  # xgboost counts from 0
            best_score = float(stopped.best_score)
        else:
            import lightgbm

            callback = lightgbm.early_stopping(
                self.early_stopping_rounds, first_metric_only=True, verbose=False
            )
            if "eval_X" in inspect.signature(type(stopped).fit).parameters:  # lightgbm>=4.7
                evals: dict[str, Any] = {"eval_X": (X_val,), "eval_y": (y_val,)}
            else:
                evals = {"eval_set": [(X_val, y_val)]}
            stopped.fit(X_tr, y_tr, callbacks=[callback], **evals)
            best = int(stopped.best_iteration_) or int(stopped.n_estimators)
            scores = next(iter(stopped.best_score_.values()))
            best_score = float(next(iter(scores.values())))

        if self.refit:
            final = clone(base).set_params(n_estimators=best)
            if backend == "xgboost":
                final.set_params(early_stopping_rounds=None)
                _fit_xgboost(final, X, y_enc)
            else:
                final.fit(X, y_enc)
        else:
            final = stopped
        self.estimator_ = final
        self.best_n_estimators_ = best
        self.best_score_ = best_score
        self.backend_ = backend
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Data with the features seen in fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = self.validate_input(X, reset=False)
        return np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)

    def decision_function(self, X: Any) -> npt.NDArray[np.float64]:
        """Raw booster margin: the log-odds of ``classes_[1]`` before any calibration.

        ``CalibratedClassifierCV`` prefers this to ``predict_proba``, so a sigmoid
        calibration is a straight line on the log-odds scale and tree SHAP values of the
        booster (``pred_contribs``/``pred_contrib``) stay additive after calibration
        (see :mod:`spinerisk.explanation`).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Data with the features seen in fit.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            One log-odds per record for two classes; one raw score per class otherwise.
        """
        check_is_fitted(self)
        X = self.validate_input(X, reset=False)
        if self.backend_ == "xgboost":
            margin = self.estimator_.predict(X, output_margin=True)
        else:
            margin = self.estimator_.predict(X, raw_score=True)
        return np.asarray(margin, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Data with the features seen in fit.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # first, so an unfitted model raises NotFittedError
        return self.classes_[proba.argmax(axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        return tags


# -- factories ----------------------------------------------------------------------------
def _grouped_split(
    X: Any, y: np.ndarray, groups: np.ndarray, fraction: float, random_state: Any
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """About ``fraction`` of the groups held out, stratified by class, repeats together."""
    from spinerisk.models._ridge import stratified_folds

    seed = int(check_random_state(random_state).randint(2**31 - 1))
    n_splits = max(2, round(1 / fraction))
    fit, val = stratified_folds(np.asarray(y), np.asarray(groups), n_splits, seed)[0]

    def take(rows: np.ndarray) -> Any:
        return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]

    return take(fit), take(val), y[fit], y[val]


def make_booster(
    backend: Literal["xgboost", "lightgbm"] = "xgboost",
    *,
    random_state: int = 0,
    n_jobs: int = 1,
) -> EarlyStoppingClassifier:
    """Early-stopped gradient-boosted classifier with settings for small clinical cohorts.

    Parameters
    ----------
    backend : {"xgboost", "lightgbm"}, default="xgboost"
        Boosting library.
    random_state : int, default=0
        Seed of the booster (row and column subsampling) and of the validation split.
    n_jobs : int, default=1
        Threads for the booster. Results do not depend on it, but keep it at 1 when the
        model is fitted in parallel folds.

    Returns
    -------
    EarlyStoppingClassifier
        Unfitted; wraps ``XGBClassifier`` (``enable_categorical=True``,
        ``tree_method="hist"``) or ``LGBMClassifier``, both reading pandas ``category``
        columns natively (see ``make_feature_pipeline(encoding="native")``).

    See Also
    --------
    make_binary_model : Adds the feature pipeline and calibration.

    Notes
    -----
    Clinical cohorts are small (hundreds to a few thousand records, tens to hundreds
    of events) and the signal is a handful of strong, mostly additive effects, so the
    defaults favour low variance:

    - shallow trees (XGBoost ``max_depth=3``; LightGBM ``num_leaves=15``): main
      effects and low-order interactions only;
    - a slow learning rate (0.05) with at most 2000 rounds, cut by early stopping
      (50 rounds of patience on 20% of the rows), so the number of rounds is learned
      rather than guessed;
    - at least about 20 records per leaf (XGBoost ``min_child_weight=5``: a record's
      hessian p(1 - p) is about 0.1-0.25; LightGBM ``min_child_samples=20``), so no
      leaf rests on a handful of patients;
    - row and column subsampling (0.8) and an L2 penalty on leaf values
      (``reg_lambda=1``) as further regularisation.

    Everything is seeded, and LightGBM runs with ``deterministic=True``, so the same
    seed gives bitwise-identical risks.

    Examples
    --------
    >>> from spinerisk.models._binary import make_booster
    >>> clf = make_booster("lightgbm", random_state=3)
    >>> type(clf.estimator).__name__, clf.estimator.num_leaves, clf.random_state
    ('LGBMClassifier', 15, 3)
    >>> make_booster("catboost")
    Traceback (most recent call last):
    ...
    ValueError: backend must be one of 'xgboost', 'lightgbm'; got backend='catboost'.
    """
    _check_option("backend", backend, _BOOSTERS)
    _check_seed(random_state)
    _check_int("n_jobs", n_jobs, 1)
    build = _xgboost_classifier if backend == "xgboost" else _lightgbm_classifier
    return EarlyStoppingClassifier(
        build(random_state=int(random_state), n_jobs=int(n_jobs)),
        validation_fraction=0.2,
        early_stopping_rounds=50,
        refit=True,
        random_state=int(random_state),
    )


def _l2_only() -> dict[str, Any]:
    """Keyword arguments that ask LogisticRegressionCV for a pure L2 path, warning-free.

    scikit-learn 1.8 deprecated ``penalty`` in favour of ``l1_ratios`` (0 means L2) and
    made the shape of the fitted attributes switchable; older versions are L2 by default.
    """
    defaults = LogisticRegressionCV().get_params()
    kwargs: dict[str, Any] = {}
    if defaults.get("penalty") == "deprecated" and "l1_ratios" in defaults:
        kwargs["l1_ratios"] = (0.0,)
    if defaults.get("use_legacy_attributes") == "warn":
        kwargs["use_legacy_attributes"] = False
    return kwargs


def make_logistic(*, random_state: int = 0) -> LogisticRegressionCV:
    """Penalised (L2) logistic regression with the penalty chosen by cross-validation.

    The baseline every boosted model has to beat. It expects a numeric, imputed and
    standardised matrix (``make_feature_pipeline(encoding="onehot")``), so that one
    penalty suits every coefficient.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the stratified folds that choose the penalty.

    Returns
    -------
    LogisticRegressionCV
        Unfitted. ``Cs`` spans 1e-3 to 1e3 in half-decade steps, chosen by 5-fold
        stratified, shuffled cross-validation on the log loss (the loss that matters
        for risks, unlike accuracy). The Newton-Cholesky solver converges in a few
        exact Newton steps on clinical matrices (many more records than features,
        rare one-hot categories) where lbfgs needs dozens; ``max_iter=1000`` is a
        generous ceiling.

    See Also
    --------
    make_binary_model : Adds the feature pipeline.

    Examples
    --------
    >>> from spinerisk.models._binary import make_logistic
    >>> model = make_logistic(random_state=1)
    >>> model.scoring.__name__, model.cv.n_splits, model.cv.random_state
    ('neg_log_loss', 5, 1)
    """
    _check_seed(random_state)
    return LogisticRegressionCV(
        Cs=_LOGISTIC_CS,
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=int(random_state)),
        scoring=neg_log_loss,
        solver="newton-cholesky",
        max_iter=1000,
        **_l2_only(),
    )


def make_binary_model(
    backend: Literal["xgboost", "lightgbm", "logistic"] = "xgboost",
    *,
    schema: Schema | None = None,
    calibration: Literal["auto", "sigmoid", "isotonic"] | None = "auto",
    cv: int = 5,
    include_treatment: bool = True,
    random_state: int = 0,
    n_jobs: int = 1,
    fields: tuple[str, ...] | None = None,
) -> Pipeline | CalibratedClassifierCV:
    """Unfitted risk model for a binary outcome that takes validated records.

    Parameters
    ----------
    backend : {"xgboost", "lightgbm", "logistic"}, default="xgboost"
        ``"xgboost"``/``"lightgbm"``: :func:`make_booster` on the native feature
        encoding (categories and missing values left to the booster);
        ``"logistic"``: :func:`make_logistic` on the one-hot, imputed, standardised
        encoding.
    schema : Schema or None, default=None
        Passed to :func:`spinerisk.make_feature_pipeline`; None means
        :data:`spinerisk.schema.SPINE_SCHEMA`.
    calibration : {"auto", "sigmoid", "isotonic"} or None, default="auto"
        ``"auto"``: sigmoid for boosters (their raw risks are not calibrated: too extreme
        or, with early stopping, often too moderate), none for
        the logistic model (calibrated by construction). Isotonic needs many events;
        it overfits small cohorts.
    cv : int, default=5
        Calibration folds (at least 2).
    include_treatment : bool, default=True
        Use treatment fields as predictors (confounded by indication; not causal).
    random_state : int, default=0
        Seed of the calibration folds, the boosters and the logistic penalty folds.
    n_jobs : int, default=1
        Threads for the boosters.
    fields : tuple of str or None, default=None
        Predictor fields; None means the schema's feature (and treatment) fields.

    Returns
    -------
    Pipeline or CalibratedClassifierCV
        ``Pipeline([("features", ...), ("model", ...)])``; with calibration, inside
        ``CalibratedClassifierCV(pipeline, method=calibration,
        cv=StratifiedKFold(cv, shuffle=True, random_state=random_state),
        ensemble=True)``.

    See Also
    --------
    make_booster, make_logistic : The models inside.
    spinerisk.make_feature_pipeline : The features inside.

    Notes
    -----
    With calibration, each fold clones the whole pipeline: the feature pipeline and
    the booster (with its inner early-stopping split) are fitted on the fold's
    training rows, and the calibrator on the fold's held-out rows, which neither has
    seen. Prediction averages the ``cv`` calibrated pipelines. No step ever sees the
    rows it is calibrated or evaluated on.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.endpoints import get_endpoint
    >>> from spinerisk.models._binary import make_binary_model
    >>> cohort = sr.validate(sr.make_spine_cohort(800, seed=0))
    >>> ep = get_endpoint("collapse")
    >>> rows = cohort[ep.eligible(cohort)]
    >>> model = make_binary_model("lightgbm", cv=3).fit(rows, ep.target(rows))
    >>> type(model).__name__, len(model.calibrated_classifiers_)
    ('CalibratedClassifierCV', 3)
    >>> risk = model.predict_proba(rows.head(4))[:, 1]
    >>> bool(((risk > 0) & (risk < 1)).all())
    True
    >>> type(make_binary_model("logistic")).__name__
    'Pipeline'
    >>> make_binary_model("xgboost", calibration="platt")
    Traceback (most recent call last):
    ...
    ValueError: calibration must be one of 'auto', 'sigmoid', 'isotonic', None; got calibration='platt'.
    """  # noqa: E501
    from spinerisk.features import make_feature_pipeline

    _check_option("backend", backend, _BACKENDS)
    _check_option("calibration", calibration, _CALIBRATIONS)
    _check_int("cv", cv, 2)
    _check_bool("include_treatment", include_treatment)
    _check_seed(random_state)
    _check_int("n_jobs", n_jobs, 1)
    if schema is not None and not isinstance(schema, Schema):
        raise TypeError(f"schema must be a spinerisk Schema or None; got {type(schema).__name__}.")

    encoding: Literal["onehot", "native"]
    model: BaseEstimator
    if backend == "logistic":
        encoding, model = "onehot", make_logistic(random_state=random_state)
    else:
        encoding = "native"
        model = make_booster(backend, random_state=random_state, n_jobs=n_jobs)
    features = make_feature_pipeline(
        schema, encoding=encoding, include_treatment=include_treatment, fields=fields
    )
    pipe = Pipeline([("features", features), ("model", model)])
    if calibration == "auto":
        calibration = None if backend == "logistic" else "sigmoid"
    if calibration is None:
        return pipe
    return CalibratedClassifierCV(
        pipe,
        method=calibration,
        cv=StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=int(random_state)),
        ensemble=True,
    )


# -- prediction on validated records (shared by RiskModel and the batch scorer) --------
def no_timer(stage: str) -> Any:
    return nullcontext()


_FOLD_PLANS: weakref.WeakKeyDictionary[Any, list[int] | None] = weakref.WeakKeyDictionary()


def _fold_plan(estimator: Any) -> list[int] | None:
    """For a calibrated ensemble of Pipeline(features, model) folds whose fitted feature
    pipelines are identical, the index of the fold whose features each fold reuses.

    None means the generic ``predict_proba`` path must be used.
    """
    if estimator in _FOLD_PLANS:
        return _FOLD_PLANS[estimator]
    plan: list[int] | None = None
    folds = getattr(estimator, "calibrated_classifiers_", None)
    if (
        isinstance(estimator, CalibratedClassifierCV)
        and folds
        and len(estimator.classes_) == 2
        and all(
            f.method in ("sigmoid", "isotonic")
            and isinstance(f.estimator, Pipeline)
            and [name for name, _ in f.estimator.steps] == ["features", "model"]
            and len(f.calibrators) == 1
            for f in folds
        )
    ):
        # joblib.hash digests the fitted state (arrays included); equal digests mean
        # the fold pipelines transform records identically, so one transform serves all
        digests = [joblib.hash(f.estimator.named_steps["features"]) for f in folds]
        plan = [digests.index(d) for d in digests]
    _FOLD_PLANS[estimator] = plan
    return plan


def calibrated_risk(estimator: Any, checked: pd.DataFrame, timer: Any = None) -> np.ndarray:
    """P(outcome) of a fitted binary model on validated records, as ``predict_proba``.

    For a calibrated ensemble whose fold feature pipelines are identical, the features
    are computed once for all folds and XGBoost boosters are called directly; the
    result is bit-identical to ``estimator.predict_proba(checked)[:, 1]`` (tested).
    ``timer(stage)`` is an optional context-manager factory ("features", "predict").
    """
    timer = timer or no_timer
    plan = _fold_plan(estimator)
    if plan is None:
        with timer("predict"):
            return np.asarray(estimator.predict_proba(checked)[:, 1], dtype=float)
    folds = estimator.calibrated_classifiers_
    matrices: dict[int, Any] = {}
    total = np.zeros(len(checked))
    for fold, source in zip(folds, plan, strict=True):
        if source not in matrices:
            with timer("features"):
                matrices[source] = (
                    folds[source].estimator.named_steps["features"].transform(checked)
                )
        with timer("predict"):
            # as sklearn's _CalibratedClassifier.predict_proba does for two classes: the
            # calibrator maps decision_function when the model has one, else P(class 1)
            step = fold.estimator.named_steps["model"]
            booster = _plain_xgboost(step)
            if booster is not None:  # what step.decision_function computes, minus re-checks
                raw = booster.inplace_predict(
                    matrices[source], predict_type="margin", missing=np.nan
                ).astype(np.float64)
            elif hasattr(step, "decision_function"):
                raw = np.asarray(step.decision_function(matrices[source]), dtype=float)
            else:
                raw = step.predict_proba(matrices[source])[:, 1]
            proba = fold.calibrators[0].predict(raw)
            proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
            total += proba
    total /= len(folds)
    return total


def _plain_xgboost(step: Any) -> Any:
    """The booster of an EarlyStoppingClassifier wrapping a refitted XGBClassifier, or None.

    Its ``decision_function`` is the booster's margin over all trees (the refit has no
    early stopping, so no ``best_iteration`` limits the trees); calling the booster
    directly skips the input checks already done by validation and the feature pipeline.
    """
    if (
        not isinstance(step, EarlyStoppingClassifier)
        or getattr(step, "backend_", None) != "xgboost"
    ):
        return None
    clf = step.estimator_
    if not hasattr(step, "decision_function") or hasattr(clf, "best_iteration"):
        return None
    if len(step.classes_) != 2 or not np.isnan(clf.missing if clf.missing is not None else np.nan):
        return None
    return clf.get_booster()
