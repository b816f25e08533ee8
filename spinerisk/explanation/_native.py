"""Exact per-column attributions on a model's own margin scale.

Tree models use the boosters' native exact tree SHAP (XGBoost ``pred_contribs``,
LightGBM ``pred_contrib``); linear models use ``coef * (x - reference)``. Every function
returns ``(phi, base, margin)``: a DataFrame of per-column contributions, the base value
(an array, one per record, constant for these models) and the model's margin computed
*independently* of ``phi`` (by the model's own prediction routine), so that additivity
``phi.sum(axis=1) + base == margin`` is a check, not a definition.

XGBoost's ``pred_contribs`` is asked once per decision pattern rather than once per
record (:mod:`spinerisk.explanation._xgb_paths`: records taking the same branches in a
tree get the same float32 values, added in tree order as XGBoost does), which gives
the native call's values bit for bit, checked on a sample against the full call each
time; the full call is made where that does not apply. LightGBM adds each leaf's
terms straight into the record's float64 row, so its values are not reusable per tree
without changing the last bits; LightGBM boosters are explained by woodelf's exact
TreeSHAP instead (:mod:`spinerisk.explanation._woodelf`, on the booster's own trees),
about 4-10 times faster than ``pred_contrib``, with the same values to float32 precision
(woodelf computes in float32; at most a few 1e-6 apart on these models, tested against
``pred_contrib``), not bit for bit. ``pred_contrib`` runs where woodelf does not
reproduce the booster (:class:`~spinerisk.explanation._woodelf.NotReproduced`).

The contribution calls use every core the process may run on: boosters keep the thread
count they were trained with (one, for the small-cohort defaults), so XGBoost explains
with a copy of the booster set to all cores and LightGBM gets ``num_threads`` for the
call; the model itself is not changed. Threads do not change the values. The margin
comes from the same call's input on every core, not a second pass through the sklearn
wrapper.

woodelf cannot read these boosters through treelite (category encoder, categorical
splits; ``benchmarks/bench_explain.py`` records the attempt), hence ``_woodelf.py``.
XGBoost keeps the decision patterns, which are bit for bit and, per record, about as fast.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk._threads import all_cores, n_threads
from spinerisk.explanation import _xgb_paths
from spinerisk.explanation._woodelf import NotReproduced, tree_shap

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

FloatArray = np.ndarray


def _booster_kind(estimator: Any) -> str:
    name = type(estimator).__name__
    if name in ("XGBClassifier", "XGBRegressor"):
        return "xgboost"
    if name in ("LGBMClassifier", "LGBMRegressor"):
        return "lightgbm"
    raise TypeError(f"Unsupported booster {name}; expected an XGBoost or LightGBM model.")


def classifier_contributions(
    clf: Any, X: pd.DataFrame
) -> tuple[pd.DataFrame, FloatArray, FloatArray]:
    """Native tree SHAP of a fitted ``EarlyStoppingClassifier`` on its log-odds margin.

    Parameters
    ----------
    clf : EarlyStoppingClassifier
        Fitted, with an XGBoost or LightGBM booster.
    X : DataFrame of shape (n_samples, n_features)
        Native feature matrix (the output of the fold's feature pipeline).

    Returns
    -------
    phi : DataFrame of shape (n_samples, n_features)
        Contributions to the log-odds, columns as in ``X``.
    base : ndarray of shape (n_samples,)
        Expected margin (the bias term).
    margin : ndarray of shape (n_samples,)
        ``clf.decision_function(X)``.
    """
    booster = clf.estimator_
    if _booster_kind(booster) == "xgboost":
        raw, margin = _xgboost_contributions(clf, X)
    else:
        raw, margin = _lightgbm_contributions(clf, X)
    raw = np.asarray(raw, dtype=np.float64)
    phi = pd.DataFrame(raw[:, :-1], index=X.index, columns=[str(c) for c in X.columns])
    return phi, raw[:, -1], np.asarray(margin, dtype=np.float64)


def _xgboost_contributions(clf: Any, X: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """``pred_contribs`` on every core, and the margin from the same input matrix.

    The margin is the booster's own margin prediction on the ``DMatrix`` the
    contributions read (built once), on every core: the same values as
    ``clf.decision_function(X)`` (which predicts from the frame again, on the booster's
    one thread) when no ``best_iteration`` limits the trees, as after
    ``EarlyStoppingClassifier``'s refit; otherwise ``decision_function`` gives it.
    """
    import xgboost as xgb

    source = clf.estimator_.get_booster()
    booster = all_cores(source)
    dm = xgb.DMatrix(X, enable_categorical=True, nthread=n_threads())
    raw = _xgb_paths.contributions(booster, dm, X, source)
    if raw is None:
        raw = booster.predict(dm, pred_contribs=True)
    if getattr(clf.estimator_, "best_iteration", None) is None:
        return raw, booster.predict(dm, output_margin=True)
    return raw, clf.decision_function(X)


def _lightgbm_contributions(clf: Any, X: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """woodelf's TreeSHAP (else ``pred_contrib`` on every core), and the margin.

    The margin is the Booster's own raw score on every core: the same values as
    ``clf.decision_function(X)`` (which checks the frame again and predicts on the
    booster's one thread) when no ``best_iteration`` limits the trees, as after
    ``EarlyStoppingClassifier``'s refit; otherwise ``decision_function`` gives it. The
    Booster itself is called, on the matrix LightGBM makes of the frame, made once for
    both calls (:func:`_lightgbm_matrix`).
    """
    booster, threads = clf.estimator_.booster_, n_threads()
    data = _lightgbm_matrix(booster, X)
    try:
        raw = tree_shap(booster, X)
    except NotReproduced:
        raw = booster.predict(data, pred_contrib=True, num_threads=threads)
    if int(getattr(booster, "best_iteration", 0) or 0) <= 0:
        return raw, booster.predict(data, raw_score=True, num_threads=threads)
    return raw, clf.decision_function(X)


def _lightgbm_matrix(booster: Any, X: pd.DataFrame) -> Any:
    """The float64 matrix LightGBM predicts from when given ``X``: numbers and booleans as
    floats, each category as its code among the booster's training categories
    (``pandas_categorical``), missing as NaN. ``X`` itself (LightGBM converts it) when a
    column is of another kind or its categories are not the training ones."""
    training = list(getattr(booster, "pandas_categorical", None) or [])
    out = np.empty(X.shape, dtype=np.float64)
    for i, (_, col) in enumerate(X.items()):
        if isinstance(col.dtype, pd.CategoricalDtype):
            if not training or list(col.cat.categories) != list(training.pop(0)):
                return X
            codes = col.cat.codes.to_numpy()
            out[:, i] = np.where(codes < 0, np.nan, codes)
        elif col.dtype.kind in "biuf":
            out[:, i] = col.to_numpy(dtype=np.float64)
        else:
            return X
    return X if training else out


def booster_contributions(
    booster: Any,
    dmatrix: Any,
    columns: list[str],
    index: Any,
    frame: pd.DataFrame | None = None,
    *,
    margin: bool = True,
) -> tuple[pd.DataFrame, FloatArray, FloatArray | None]:
    """Native tree SHAP of a raw ``xgboost.Booster`` on its margin.

    Parameters
    ----------
    booster : xgboost.Booster
        Fitted booster (``survival:cox``: log hazard; ``survival:aft``: log time).
    dmatrix : xgboost.DMatrix
        Features.
    columns : list of str
        Feature names, in the booster's order.
    index : Index
        Row labels of the result.
    frame : DataFrame or None, default=None
        The features ``dmatrix`` was built from: with it, the contributions are
        computed once per decision pattern (:mod:`._xgb_paths`, the same values).
    margin : bool, default=True
        Also predict the margin (False: None in its place, for callers that take the
        margin from the model's own prediction).

    Returns
    -------
    phi : DataFrame of shape (n_samples, n_features)
    base : ndarray of shape (n_samples,)
    margin : ndarray of shape (n_samples,) or None
        ``booster.predict(dmatrix, output_margin=True)``; None with ``margin=False``.
    """
    source, booster = booster, all_cores(booster)
    raw = None if frame is None else _xgb_paths.contributions(booster, dmatrix, frame, source)
    if raw is None:
        raw = booster.predict(dmatrix, pred_contribs=True)
    raw = np.asarray(raw, dtype=np.float64)
    phi = pd.DataFrame(raw[:, :-1], index=index, columns=columns)
    if not margin:
        return phi, raw[:, -1], None
    out = np.asarray(booster.predict(dmatrix, output_margin=True), dtype=np.float64)
    return phi, raw[:, -1], out


def linear_contributions(
    X: pd.DataFrame, coef: FloatArray, reference: pd.Series
) -> tuple[pd.DataFrame, float]:
    """``coef * (x - reference)`` per column, and the base ``reference @ coef``.

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features)
        Design matrix of the linear model.
    coef : ndarray of shape (n_features,)
        Coefficients on that matrix.
    reference : Series
        Reference value per column (the training mean of the design matrix).

    Returns
    -------
    phi : DataFrame of shape (n_samples, n_features)
    base : float
        ``reference @ coef`` (add the intercept or subtract the centring yourself).
    """
    ref = reference.reindex(X.columns).to_numpy(dtype=np.float64)
    values = X.to_numpy(dtype=np.float64)
    phi = pd.DataFrame((values - ref) * coef, index=X.index, columns=[str(c) for c in X.columns])
    return phi, float(ref @ coef)


def design_reference(
    model: RiskModel, columns: pd.Index, background: pd.DataFrame | None, transform: Any
) -> pd.Series:
    """Reference point (training mean) of a linear model's design matrix.

    Priority: the mean design of ``background`` records; else the model's stored
    ``design_mean_``; else the training mean rebuilt from the model's training summary
    ``reference_`` (see :func:`training_design_mean`); else zero with a warning.
    """
    if background is not None:
        return transform(background).mean(axis=0).reindex(columns)
    stored = getattr(model, "design_mean_", None)
    if stored is not None:
        return pd.Series(stored, dtype=float).reindex(columns).fillna(0.0)
    summary = getattr(model, "reference_", None)
    means, unknown = training_design_mean(summary, columns)
    if unknown:
        warnings.warn(
            f"The training mean of design column(s) {unknown[:5]} is unknown (no background "
            "records, no design_mean_ and no training summary for them): their "
            "contributions are measured against 'no category' rather than the training "
            "average. Pass background=<training cohort> for average-centred contributions.",
            UserWarning,
            stacklevel=3,
        )
    return means


def training_design_mean(summary: Any, columns: pd.Index) -> tuple[pd.Series, list[str]]:
    """Training mean of a standardised one-hot design, from per-field training counts.

    Every number, missing indicator and spline term of the linear models' design is
    standardised on the training records, so its training mean is exactly 0. A one-hot
    column ``field=code`` has the training share of that code (``field=missing`` the
    share missing), which ``reference_["fields"][field]["counts"]`` holds exactly;
    ``region`` is derived from the ``level`` counts, and ``age_band`` from the stored age
    sample (all ages up to the sample size, a seeded subsample beyond).

    Returns
    -------
    means : Series
        Indexed by ``columns``.
    unknown : list of str
        Columns whose mean could not be rebuilt (set to 0).
    """
    fields = summary.get("fields", {}) if isinstance(summary, dict) else {}
    means = pd.Series(0.0, index=columns, dtype=float)
    unknown: list[str] = []
    for col in columns:
        name = str(col)
        if "=" not in name:
            continue  # standardised: training mean 0
        field, code = name.split("=", 1)
        share = _share(fields, field, code)
        if share is None:
            unknown.append(name)
        else:
            means[col] = share
    return means, unknown


def _share(fields: dict[str, Any], field: str, code: str) -> float | None:
    info = fields.get(field)
    if info and isinstance(info.get("counts"), dict) and info.get("n"):
        n = float(info["n"])
        if code == "missing":
            return float(info.get("n_missing", 0)) / n
        return float(info["counts"].get(code, 0)) / n
    if field == "region" and fields.get("level", {}).get("counts") is not None:
        from spinerisk.schema.default import region_of_level

        level = fields["level"]
        n = float(level["n"])
        if code == "missing":
            return float(level.get("n_missing", 0)) / n
        total = 0
        for lv, count in level["counts"].items():
            reg = region_of_level(pd.Series([lv])).astype(object).iloc[0]
            total += count if reg == code else 0
        return total / n
    if field == "age_band" and fields.get("age_years", {}).get("sample"):
        from spinerisk.schema.default import AGE_BAND_EDGES, AGE_BANDS

        age = fields["age_years"]
        sample = np.asarray(age["sample"], dtype=float)
        observed = 1.0 - float(age.get("missing_rate", 0.0))
        if code == "missing":
            return 1.0 - observed
        edges = [-np.inf, *AGE_BAND_EDGES, np.inf]
        bands = pd.cut(sample, edges, right=False, labels=AGE_BANDS)
        return float((bands.astype(object) == code).mean()) * observed
    return None
