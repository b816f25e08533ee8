"""The default model: cross-validated stacking of the candidate backends (a super learner).

``RiskModel(backend="auto")`` encodes the records once (the one-hot, imputed,
standardised matrix of the ``linear`` backend), splits them once into ``cv`` folds shared
by every candidate, fits each candidate on each fold's training part and predicts its
held-out part (out-of-fold, OOF), and then fits non-negative weights on those OOF
predictions:

* binary outcomes: ``logit(risk) = b + sum_k w_k m_k(x)`` on the candidates' log-odds
  ``m_k``, by minimising the OOF log loss;
* time-to-event outcomes (each cause of a competing-risks endpoint on its own):
  ``log hazard ratio = sum_k w_k m_k(x)`` on the candidates' risk scores, by maximising
  the OOF Cox partial likelihood (risk sets within each fold), with a Breslow baseline
  hazard of the combined score.

Each candidate alone (with its own intercept and slope) is one of the weightings the fit
searches, so on the OOF predictions the combination is never worse than the best single
candidate; the weights are few (one per candidate), so the optimism of that comparison is
small. For a time-to-event endpoint the weights are then multiplied by one factor, the
horizon scale, fitted on the same OOF scores so that the risks by the endpoint's horizons
are calibrated (censoring-weighted binomial likelihood, complementary log-log link): the
partial likelihood calibrates the log hazard ratio on average over follow-up, and when
hazards are not proportional (effects that fade, or grow, with time) the risks by a
horizon are otherwise too extreme or too moderate. One factor changes no ranking, so the
discrimination is that of the weights before it. The candidates:

* ``linear``: ridge logistic or Cox regression on the shared matrix;
* ``spline``: the same with a cubic B-spline basis of every continuous column;
* ``xgboost``: gradient-boosted trees (``binary:logistic`` or ``survival:cox``);
* ``xgboost_aft``: boosted accelerated failure time model (its score is ``-mu(x)``);
* ``xgboost_forest`` (time-to-event only): a random forest of Cox-gradient trees (one
  XGBoost round of 200 bagged, deeper trees), the diversity a random survival forest
  brings, explained by the same tree SHAP.

Numbers enter the ridge candidates divided by their standard deviation and 0/1 columns
(one-hot categories) divided by :data:`BINARY_SCALE`, so a rare category is shrunk more
than a common one. The
ridge penalty of each linear candidate is chosen on the same folds: the one with the
lowest pooled OOF deviance (not the "one standard error" rule, which over-shrinks by
design); the stack's weight on a linear candidate then acts as its calibration slope, so
a residual over- or under-shrinkage is undone on held-out predictions. Boosters stop
early on an inner split of each fold's training part; the final booster has the median
number of rounds of the folds. A booster that, after the first two folds, has no weight
in the combination and loses to the best candidate by more than twice the standard error
of the difference is stopped there (it could not win), and a candidate whose predictions
barely vary within a fold (standard deviation of its score below 0.01) is left out with
the reason. Identical records (a bootstrap resample's repeats) always share a fold.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from spinerisk.features import MIN_SPLINE_VALUES
from spinerisk.models._ridge import (
    LAMBDAS,
    CoxData,
    cox_fold_scores,
    cox_partial_deviance,
    fold_labels,
    logistic_loss,
    lowest_deviance,
    ridge_cox_path,
    ridge_logistic_path,
    stratified_folds,
    warm_path,
)
from spinerisk.models._small_data import CONSTANT_SD
from spinerisk.models._survival import feature_check_once
from spinerisk.models._survival_base import CoxType, FloatArray, _check_survival_y
from spinerisk.targets import TIME_RULE, invalid_times

__all__ = ["StackedClassifier", "StackedCoxSurvival"]

#: Candidates the default combines, per outcome kind.
DEFAULT_CANDIDATES = {
    "binary": ("linear", "spline", "xgboost"),
    "survival": ("linear", "spline", "xgboost", "xgboost_aft", "xgboost_forest"),
}
#: Candidates of the default that are not backends of their own.
STACK_ONLY = ("xgboost_forest",)
#: Boosters are checked for early stopping after this many folds (when cv >= 4).
CHECK_AFTER_FOLDS = 2
_BOOSTER_PARAMS = {
    "eta": 0.05,
    "max_depth": 3,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "tree_method": "hist",
    "nthread": 1,
    "verbosity": 0,
}
#: The "xgboost_forest" candidate: one round of 200 bagged Cox-gradient trees (a random
#: forest in XGBoost: deeper trees, row and column sampling, no shrinkage).
_FOREST_PARAMS = {
    "eta": 1.0,
    "num_parallel_tree": 200,
    "max_depth": 6,
    "min_child_weight": 2.0,
    "subsample": 0.632,
    "colsample_bytree": 1.0,
    "colsample_bynode": 0.5,
}
#: Divisor of the ridge candidates' 0/1 columns (the one-hot categories; flags and missing
#: indicators reach the stack standardised by the feature pipeline and keep their own
#: standard deviation): the standard deviation of a balanced one (Gelman 2008), so that one
#: penalty suits them and the numbers alike. Dividing a rare category by its own small
#: standard deviation would penalise it least where its estimate is noisiest.
BINARY_SCALE = 0.5
#: Range of the horizon scale of a time-to-event default: the one factor on its weights
#: that calibrates its out-of-fold risks by the endpoint's horizons (see _horizon_scale).
HORIZON_SCALE_BOUNDS = (0.5, 2.0)
_MAX_ROUNDS = 2000
_PATIENCE = 50
_INNER_FRACTION = 0.2


# -- the shared data --------------------------------------------------------------------------
@dataclass
class _Problem:
    """The encoded matrix, the outcome and the shared folds."""

    kind: str  # "binary" or "survival"
    X: FloatArray
    names: list[str]
    y: FloatArray | None  # binary 0/1
    time: FloatArray | None
    event: npt.NDArray[np.bool_] | None
    strata: npt.NDArray[np.int_]  # what folds are stratified on (outcome / event)
    groups: npt.NDArray[np.intp]  # identical records share a group
    folds: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]
    seed: int
    fold_of: npt.NDArray[np.intp] = field(init=False)

    def __post_init__(self) -> None:
        self.fold_of = fold_labels(self.folds, len(self.X))


def duplicate_groups(X: FloatArray, *outcome: Any) -> npt.NDArray[np.intp]:
    """Group label per record: records identical in every column and outcome share one."""
    frame = pd.DataFrame(X)
    for i, col in enumerate(outcome):
        frame[f"__y{i}"] = np.asarray(col, dtype=float)
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    _, groups = np.unique(hashed, return_inverse=True)
    return groups.astype(np.intp)


# -- candidate designs ----------------------------------------------------------------------
@dataclass
class _Design:
    """A ridge candidate's standardised design on the shared matrix."""

    name: str
    columns: npt.NDArray[np.intp]  # straight-line columns of X
    spline: Any  # fitted SplineTransformer or None
    spline_columns: npt.NDArray[np.intp]
    names: list[str]
    center: FloatArray
    scale: FloatArray

    def raw(self, X: FloatArray) -> FloatArray:
        parts = [X[:, self.columns]]
        if self.spline is not None:
            parts.insert(0, self.spline.transform(X[:, self.spline_columns]))
        return np.hstack(parts) if len(parts) > 1 else parts[0]

    def matrix(self, X: FloatArray) -> FloatArray:
        return (self.raw(X) - self.center) / self.scale


def _make_design(name: str, X: FloatArray, names: list[str], spline_knots: int) -> _Design:
    varying = np.flatnonzero(np.ptp(X, axis=0) > 0)
    spline = None
    spline_cols = np.array([], dtype=np.intp)
    design_names: list[str] = []
    if name == "spline":
        counts = np.array([len(np.unique(X[:, j])) for j in varying])
        spline_cols = varying[counts >= MIN_SPLINE_VALUES]
        if spline_cols.size:
            from sklearn.preprocessing import SplineTransformer

            spline = SplineTransformer(
                n_knots=spline_knots,
                degree=3,
                knots="quantile",
                extrapolation="linear",
                include_bias=False,
            )
            try:
                basis = spline.fit_transform(X[:, spline_cols])
            except ValueError:  # repeated quantile knots: straight lines instead
                spline, spline_cols = None, np.array([], dtype=np.intp)
            else:
                per = basis.shape[1] // spline_cols.size
                design_names = [f"{names[j]}_sp_{i}" for j in spline_cols for i in range(per)]
        varying = np.setdiff1d(varying, spline_cols)
    design_names += [names[j] for j in varying]
    design = _Design(name, varying, spline, spline_cols, design_names, np.zeros(0), np.ones(0))
    raw = design.raw(X)
    design.center = raw.mean(axis=0)
    sd = raw.std(axis=0)
    binary = np.all((raw == 0) | (raw == 1), axis=0)
    design.scale = np.where(binary, BINARY_SCALE, np.where(sd > 0, sd, 1.0))
    return design


# -- fold tasks -------------------------------------------------------------------------------
def _ridge_fold(prob: _Problem, D: FloatArray, train: Any, test: Any) -> FloatArray:
    """OOF scores of every penalty: shape (len(test), len(LAMBDAS))."""
    if prob.kind == "binary":
        assert prob.y is not None
        b0, coef = ridge_logistic_path(D[train], prob.y[train], held_out=(D[test], prob.y[test]))
        return D[test] @ coef.T + b0
    assert prob.time is not None and prob.event is not None
    return cox_fold_scores(D, prob.time, prob.event, train, test)


def _inner_split(
    prob: _Problem, rows: npt.NDArray[np.intp], seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Early-stopping split of ``rows``: about a fifth held out, stratified, grouped."""
    n_splits = max(2, round(1 / _INNER_FRACTION))
    counts = np.bincount(prob.strata[rows])
    if counts[counts > 0].min() < n_splits:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(rows))
        cut = max(1, int(round(_INNER_FRACTION * len(rows))))
        return rows[order[cut:]], rows[order[:cut]]
    fit, val = stratified_folds(prob.strata[rows], prob.groups[rows], n_splits, seed)[0]
    return rows[fit], rows[val]


def _booster_params(name: str, prob: _Problem, seed: int) -> dict[str, Any]:
    params = {**_BOOSTER_PARAMS, "seed": seed}
    if name == "xgboost_forest":
        params.update(_FOREST_PARAMS)
    if prob.kind == "binary":
        params.update(objective="binary:logistic", eval_metric="logloss")
    elif name in ("xgboost", "xgboost_forest"):
        params.update(objective="survival:cox", eval_metric="cox-nloglik")
    else:
        params.update(
            objective="survival:aft",
            eval_metric="aft-nloglik",
            aft_loss_distribution="normal",
            aft_loss_distribution_scale=1.0,
        )
    return params


def _set_label(dm: Any, name: str, prob: _Problem, rows: npt.NDArray[np.intp]) -> dict[str, Any]:
    """Label the DMatrix; returns extra parameters (the AFT intercept)."""
    if prob.kind == "binary":
        assert prob.y is not None
        dm.set_label(prob.y[rows])
        mean = float(np.clip(prob.y[rows].mean(), 1e-6, 1 - 1e-6))
        return {"base_score": mean}
    assert prob.time is not None and prob.event is not None
    t, e = prob.time[rows], prob.event[rows]
    if name in ("xgboost", "xgboost_forest"):
        dm.set_label(np.where(e, t, -t))
        return {}
    from spinerisk.models._survival import _aft_intercept

    dm.set_float_info("label_lower_bound", t)
    dm.set_float_info("label_upper_bound", np.where(e, t, np.inf))
    return {"base_score": float(np.exp(_aft_intercept(t, e, "normal", 1.0)))}


def _sign(name: str) -> float:
    """Booster margin to risk score: the AFT margin is the expected log time."""
    return -1.0 if name == "xgboost_aft" else 1.0


def _booster_fold(
    prob: _Problem, name: str, dall: Any, train: Any, test: Any, seed: int
) -> tuple[FloatArray, int]:
    """Early-stopped booster on the fold's training part; its OOF score and best rounds."""
    import xgboost as xgb

    if name == "xgboost_forest":  # one round of bagged trees: no early stopping
        dfit, dtest = dall.slice(np.asarray(train)), dall.slice(np.asarray(test))
        extra = _set_label(dfit, name, prob, np.asarray(train))
        forest = xgb.train(
            {**_booster_params(name, prob, seed), **extra},
            dfit,
            num_boost_round=1,
            callbacks=[feature_check_once()],
        )
        margin = forest.predict(dtest, output_margin=True)
        return _sign(name) * np.asarray(margin, dtype=np.float64), 1

    fit_rows, val_rows = _inner_split(prob, np.asarray(train), seed)
    dfit, dval, dtest = dall.slice(fit_rows), dall.slice(val_rows), dall.slice(test)
    extra = _set_label(dfit, name, prob, fit_rows)
    _set_label(dval, name, prob, val_rows)
    params = {**_booster_params(name, prob, seed), **extra}
    booster = xgb.train(
        params,
        dfit,
        num_boost_round=_MAX_ROUNDS,
        evals=[(dval, "validation")],
        early_stopping_rounds=_PATIENCE,
        verbose_eval=False,
        callbacks=[feature_check_once()],
    )
    rounds = int(booster.best_iteration) + 1
    margin = booster.predict(dtest, output_margin=True, iteration_range=(0, rounds))
    return _sign(name) * np.asarray(margin, dtype=np.float64), rounds


# -- stacking weights -------------------------------------------------------------------------
def _fit_binary_weights(M: FloatArray, y: FloatArray) -> tuple[float, FloatArray, float]:
    """Intercept and non-negative weights minimising the log loss of ``b + M @ w``."""
    n, k = M.shape

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        eta = theta[0] + M @ theta[1:]
        mu = expit(eta)
        grad = np.concatenate([[np.sum(mu - y)], M.T @ (mu - y)]) / n
        return logistic_loss(y, eta), grad

    mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    start = np.concatenate([[math.log(mean / (1 - mean))], np.full(k, 1.0 / max(k, 1))])
    bounds = [(None, None)] + [(0.0, None)] * k
    res = optimize.minimize(f, start, jac=True, method="L-BFGS-B", bounds=bounds)
    theta = res.x
    return float(theta[0]), np.maximum(theta[1:], 0.0), float(res.fun)


def _cox_strata(prob: _Problem, rows: npt.NDArray[np.intp]) -> list[tuple[CoxData, Any]]:
    assert prob.time is not None and prob.event is not None
    out = []
    for k in np.unique(prob.fold_of[rows]):
        sub = rows[prob.fold_of[rows] == k]
        out.append((CoxData(prob.time[sub], prob.event[sub]), sub))
    return out


def _fit_cox_weights(
    M: FloatArray, strata: list[tuple[CoxData, Any]], rows: npt.NDArray[np.intp]
) -> tuple[FloatArray, float]:
    """Non-negative weights maximising the fold-stratified partial likelihood of M @ w.

    ``M`` has one row per record of ``rows`` (in that order)."""
    k = M.shape[1]
    pos = {int(r): i for i, r in enumerate(rows)}
    index = [np.array([pos[int(r)] for r in sub])[data.order] for data, sub in strata]
    n_events = sum(data.n_events for data, _ in strata)

    def f(w: FloatArray) -> tuple[float, FloatArray]:
        eta = M @ w
        total, grad = 0.0, np.zeros(k)
        for (data, _), idx in zip(strata, index, strict=True):
            e = eta[idx]
            total += data.loglik(e)
            ex = np.exp(e - e.max())
            s0 = np.cumsum(ex[::-1])[::-1][data.first]
            incr = np.zeros(data.n)
            ev = data.event > 0
            np.add.at(incr, data.first[ev], data.event[ev] / s0[ev])
            g_eta = data.event - ex * np.cumsum(incr)
            grad += M[idx].T @ g_eta
        return -total / n_events, -grad / n_events

    res = optimize.minimize(
        f, np.full(k, 1.0 / max(k, 1)), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * k
    )
    return np.maximum(res.x, 0.0), float(res.fun)


def _horizon_scale(
    prob: _Problem, score: FloatArray, horizons: tuple[float, ...]
) -> tuple[float, tuple[float, ...]]:
    """One factor ``b`` on the combined OOF score that calibrates the risks by the horizons.

    The weights maximise the partial likelihood, which calibrates the log hazard ratio on
    average over follow-up; when hazards are not proportional the risks by a horizon can
    still be too extreme (or too moderate). ``b`` maximises the inverse-probability-of-
    censoring weighted binomial likelihood of the outcome by each horizon under
    ``log H(h | x) = a_h + b * s(x)`` (complementary log-log link, an intercept per
    horizon, ``s`` the OOF score centred within each fold), within
    :data:`HORIZON_SCALE_BOUNDS`. A horizon is used when some records had the event by it
    and some were followed beyond it. Returns ``b`` (1 when no horizon is usable) and the
    horizons used.
    """
    from spinerisk.metrics._ipcw import censoring_survival, horizon_outcome

    assert prob.time is not None and prob.event is not None
    s = score.astype(np.float64, copy=True)
    for k in np.unique(prob.fold_of):
        s[prob.fold_of == k] -= s[prob.fold_of == k].mean()
    censoring = censoring_survival(prob.time, prob.event)
    codes = prob.event.astype(np.int_)
    used, ys, ws = [], [], []
    for h in sorted({float(h) for h in horizons}):
        if not h < float(prob.time.max()):
            continue
        y, w = horizon_outcome(prob.time, codes, h, 1, censoring)
        if w[y].sum() > 0 and w[~y].sum() > 0:
            used.append(h)
            ys.append(y.astype(np.float64))
            ws.append(w)
    if not used or not np.ptp(s) > 0:
        return 1.0, ()
    Y, W = np.array(ys), np.array(ws)
    W = W / W.sum()

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        eta = np.clip(theta[:-1, None] + theta[-1] * s[None, :], -30.0, 30.0)
        mu = np.exp(eta)
        loglik = Y * np.log(-np.expm1(-mu)) - (1.0 - Y) * mu
        d_eta = W * (Y * mu / np.expm1(mu) - (1.0 - Y) * mu)
        grad = np.concatenate([d_eta.sum(axis=1), [float((d_eta * s[None, :]).sum())]])
        return -float((W * loglik).sum()), -grad

    mean = np.clip((W * Y).sum(axis=1) / W.sum(axis=1), 1e-6, 1 - 1e-6)
    start = np.concatenate([np.log(-np.log1p(-mean)), [1.0]])
    bounds = [(None, None)] * len(used) + [HORIZON_SCALE_BOUNDS]
    res = optimize.minimize(f, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(res.x[-1]), tuple(used)


def _alone(prob: _Problem, rows: Any, score: FloatArray) -> tuple[float, float]:
    """A candidate alone: its best intercept (binary; 0 otherwise) and slope (>= 0)."""
    if prob.kind == "binary":
        assert prob.y is not None
        b, w, _ = _fit_binary_weights(score[:, None], prob.y[rows])
        return b, float(w[0])
    w, _ = _fit_cox_weights(score[:, None], _cox_strata(prob, np.asarray(rows)), np.asarray(rows))
    return 0.0, float(w[0])


def _per_unit_losses(prob: _Problem, rows: Any, score: FloatArray) -> FloatArray:
    """Loss contributions whose mean is the criterion: per record (log loss, after the
    best intercept and slope) or per event (minus the partial log-likelihood term)."""
    if prob.kind == "binary":
        assert prob.y is not None
        y = prob.y[rows]
        b, w, _ = _fit_binary_weights(score[:, None], y)
        eta = b + w[0] * score
        return np.logaddexp(0.0, eta) - y * eta
    strata = _cox_strata(prob, np.asarray(rows))
    w, _ = _fit_cox_weights(score[:, None], strata, np.asarray(rows))
    pos = {int(r): i for i, r in enumerate(rows)}
    out = []
    for data, sub in strata:
        e = w[0] * score[[pos[int(r)] for r in sub]][data.order]
        ex = np.exp(e - e.max())
        s0 = np.cumsum(ex[::-1])[::-1][data.first]
        ev = data.event > 0
        out.append(-(e[ev] - e.max() - np.log(s0[ev])))
    return np.concatenate(out)


def _deviance(prob: _Problem, rows: Any, score: FloatArray) -> float:
    """Pooled OOF deviance of a raw score (per record for binary, per event otherwise)."""
    if prob.kind == "binary":
        assert prob.y is not None
        return 2.0 * logistic_loss(prob.y[rows], score)
    assert prob.time is not None and prob.event is not None
    return cox_partial_deviance(prob.time[rows], prob.event[rows], score, prob.fold_of[rows])


def _discrimination(prob: _Problem, rows: Any, score: FloatArray) -> float:
    """Pooled OOF AUROC, or the mean per-fold Harrell C."""
    from spinerisk.metrics import harrell_c

    if prob.kind == "binary":
        from sklearn.metrics import roc_auc_score

        assert prob.y is not None
        y = prob.y[rows]
        return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")
    assert prob.time is not None and prob.event is not None
    values = []
    for k in np.unique(prob.fold_of[rows]):
        sub = np.flatnonzero(prob.fold_of[rows] == k)
        r = np.asarray(rows)[sub]
        if prob.event[r].any():
            values.append(harrell_c(prob.time[r], prob.event[r], score[sub]))
    return float(np.mean(values)) if values else float("nan")


# -- the cross-fit ----------------------------------------------------------------------------
@dataclass
class _Outcome:
    """What cross-fitting learned about one candidate."""

    name: str
    status: str = "combined"  # combined / excluded / stopped / failed
    reason: str = ""
    oof: FloatArray | None = None  # OOF score on every record (NaN where not computed)
    penalty: float = float("nan")
    rounds: list[int] = field(default_factory=list)
    loss: float = float("nan")  # alone, with its own intercept and slope (binary) / slope
    discrimination: float = float("nan")
    weight: float = 0.0
    seconds: float = 0.0


@dataclass
class _Candidates:
    """The candidates being cross-fitted: their outcomes, the ridge designs and
    penalty paths (OOF scores per penalty), and the boosters' shared matrix and seeds."""

    prob: _Problem
    names: tuple[str, ...]
    outcomes: dict[str, _Outcome]
    designs: dict[str, _Design] = field(default_factory=dict)
    matrices: dict[str, FloatArray] = field(default_factory=dict)
    paths: dict[str, FloatArray] = field(default_factory=dict)
    dall: Any = None  # xgboost.DMatrix of every record, for the boosters
    fold_seeds: Any = None


def cross_fit(
    prob: _Problem,
    candidates: tuple[str, ...],
    *,
    spline_knots: int,
    n_jobs: int,
    horizons: tuple[float, ...] = (),
) -> dict[str, Any]:
    """OOF predictions of every candidate on the shared folds, the stacking weights (for
    time-to-event outcomes with ``horizons``, times their horizon scale) and the fitted
    final components."""
    from threadpoolctl import threadpool_limits

    cands = _candidates(prob, candidates, spline_knots)
    outcomes = cands.outcomes
    n = len(prob.X)
    with threadpool_limits(limits=1):
        _cross_fit_folds(cands, n_jobs)
        everyone = np.arange(n)
        for c in cands.designs:
            _choose_penalty(prob, outcomes[c], cands.paths[c], everyone)
        _exclude_constant(prob, outcomes)
        combined = [c for c in candidates if outcomes[c].status == "combined"]
        for c in combined:
            oc = outcomes[c]
            assert oc.oof is not None
            oc.loss = float(np.mean(_per_unit_losses(prob, everyone, oc.oof)))
            oc.discrimination = _discrimination(prob, everyone, oc.oof)
        intercept, stack_loss = _stack_weights(prob, outcomes, combined)
        intercept, stack_loss = _fall_back(prob, outcomes, combined, intercept, stack_loss)
        terms = [outcomes[c].weight * _oof(outcomes[c]) for c in combined]
        stack_score = np.asarray(intercept + sum(terms)) if combined else np.zeros(n)
        scale = 1.0
        scale_horizons: tuple[float, ...] = ()
        if prob.kind == "survival" and horizons and combined:
            scale, scale_horizons = _horizon_scale(prob, stack_score, horizons)
            for c in combined:
                outcomes[c].weight *= scale
            stack_score = scale * stack_score
        final = [c for c in combined if outcomes[c].weight > 1e-8]
        best = min(combined, key=lambda c: outcomes[c].loss) if combined else None
        alone = (0.0, 0.0)
        if best is not None:  # the discrete super learner's choice, for comparison
            alone = _alone(prob, everyone, _oof(outcomes[best]))
            if best not in final:
                final.append(best)
        start = _time.perf_counter()
        components = _final_components(cands, final, n_jobs)
        final_seconds = _time.perf_counter() - start
    return {
        "outcomes": outcomes,
        "components": components,
        "intercept": float(intercept),
        "stack_loss": float(stack_loss),
        "stack_discrimination": _discrimination(prob, np.arange(n), stack_score)
        if combined
        else float("nan"),
        "final_seconds": final_seconds,
        "best": best,
        "best_calibration": alone,
        "horizon_scale": float(scale),
        "horizon_scale_times": tuple(scale_horizons),
    }


def _candidates(prob: _Problem, candidates: tuple[str, ...], spline_knots: int) -> _Candidates:
    """Designs and empty penalty paths for the ridge candidates, empty OOF scores and
    one shared matrix for the boosters, and the seed of each fold."""
    cands = _Candidates(prob, candidates, {c: _Outcome(c) for c in candidates})
    n = len(prob.X)
    for c in candidates:
        if c in ("linear", "spline"):
            cands.designs[c] = _make_design(c, prob.X, prob.names, spline_knots)
            cands.matrices[c] = cands.designs[c].matrix(prob.X)
            cands.paths[c] = np.full((n, len(LAMBDAS)), np.nan)
        else:
            cands.outcomes[c].oof = np.full(n, np.nan)
            if cands.dall is None:
                import xgboost as xgb

                cands.dall = xgb.DMatrix(prob.X, nthread=1)
    rng = np.random.default_rng(prob.seed)
    cands.fold_seeds = rng.integers(0, 2**31 - 1, size=len(prob.folds))
    return cands


def _cross_fit_folds(cands: _Candidates, n_jobs: int) -> None:
    """Every candidate on the first folds, then the boosters that are clearly hopeless
    stop, and the others go on to the remaining folds."""
    prob = cands.prob
    n_folds = len(prob.folds)
    first = CHECK_AFTER_FOLDS if n_folds >= 4 else n_folds
    _run_folds(cands, [(c, k) for k in range(first) for c in cands.names], n_jobs)
    if first < n_folds:
        seen = np.concatenate([prob.folds[k][1] for k in range(first)])
        _stop_hopeless(prob, cands.outcomes, cands.designs, cands.paths, seen, first)
    remaining = [
        (c, k)
        for k in range(first, n_folds)
        for c in cands.names
        if cands.outcomes[c].status == "combined"
    ]
    _run_folds(cands, remaining, n_jobs)


def _fold_task(cands: _Candidates, c: str, k: int) -> tuple[str, int, Any, float]:
    """Candidate ``c`` fitted without fold ``k`` and scored on it, timed."""
    prob = cands.prob
    train, test = prob.folds[k]
    start = _time.perf_counter()
    if c in cands.designs:
        out: Any = _ridge_fold(prob, cands.matrices[c], train, test)
    else:
        out = _booster_fold(prob, c, cands.dall, train, test, int(cands.fold_seeds[k]))
    return c, k, out, _time.perf_counter() - start


def _run_folds(cands: _Candidates, pairs: list[tuple[str, int]], n_jobs: int) -> None:
    """Fit the (candidate, fold) pairs in threads and store their OOF scores."""
    from joblib import Parallel, delayed

    if not pairs:
        return
    workers = max(1, min(n_jobs, len(pairs)))
    results = Parallel(n_jobs=workers, prefer="threads")(
        delayed(_fold_task)(cands, c, k) for c, k in pairs
    )
    outcomes = cands.outcomes
    for c, k, out, secs in results:
        test = cands.prob.folds[k][1]
        outcomes[c].seconds += secs
        if c in cands.designs:
            cands.paths[c][test] = out
        else:
            score, rounds = out
            _oof(outcomes[c])[test] = score
            outcomes[c].rounds.append(rounds)


def _stack_weights(
    prob: _Problem, outcomes: dict[str, _Outcome], combined: list[str]
) -> tuple[float, float]:
    """Fit the stacking weights of the combined candidates on their OOF scores (set on
    their outcomes); the intercept (binary) and the stack's loss."""
    intercept, stack_loss = 0.0, float("nan")
    if combined:
        everyone = np.arange(len(prob.X))
        M = np.column_stack([_oof(outcomes[c]) for c in combined])
        if prob.kind == "binary":
            assert prob.y is not None
            intercept, w, stack_loss = _fit_binary_weights(M, prob.y)
        else:
            w, stack_loss = _fit_cox_weights(M, _cox_strata(prob, everyone), everyone)
        for c, wc in zip(combined, w, strict=True):
            outcomes[c].weight = float(wc)
    return intercept, stack_loss


def _fall_back(
    prob: _Problem,
    outcomes: dict[str, _Outcome],
    combined: list[str],
    intercept: float,
    stack_loss: float,
) -> tuple[float, float]:
    """The best candidate alone (its own intercept and slope) where its out-of-fold loss
    is below the fitted weights' (the optimiser stops within its tolerance): so the
    combination is never worse out of fold than the best single candidate. The
    intercept and loss kept; the weights set on the outcomes."""
    if not combined:
        return intercept, stack_loss
    best = min(combined, key=lambda c: outcomes[c].loss)
    if not outcomes[best].loss < stack_loss:
        return intercept, stack_loss
    b, w = _alone(prob, np.arange(len(prob.X)), _oof(outcomes[best]))
    for c in combined:
        outcomes[c].weight = w if c == best else 0.0
    return b, float(outcomes[best].loss)


def _oof(oc: _Outcome) -> FloatArray:
    """The candidate's OOF scores (set for every candidate still combined)."""
    assert oc.oof is not None
    return oc.oof


def _final_components(cands: _Candidates, final: list[str], n_jobs: int) -> list[Any]:
    """The final candidates refitted on every record, in threads."""
    from joblib import Parallel, delayed

    components = Parallel(n_jobs=max(1, min(n_jobs, len(final) or 1)), prefer="threads")(
        delayed(_final_component)(
            cands.prob, c, cands.designs.get(c), cands.outcomes[c], cands.dall
        )
        for c in final
    )
    return list(components)


def _choose_penalty(prob: _Problem, oc: _Outcome, path: FloatArray, rows: Any) -> None:
    """The penalty with the lowest pooled OOF deviance (computed folds only)."""
    rows = np.asarray(rows)
    done = rows[~np.isnan(path[rows, 0])]
    best = lowest_deviance(path[done], lambda score: _deviance(prob, done, score))
    oc.penalty = float(LAMBDAS[best])
    oc.oof = path[:, best].copy()


def _stop_hopeless(
    prob: _Problem,
    outcomes: dict[str, _Outcome],
    designs: dict[str, _Design],
    paths: dict[str, FloatArray],
    seen: npt.NDArray[np.intp],
    n_seen: int,
) -> None:
    """Stop boosters with no weight that lose clearly, judged on the first folds."""
    scores: dict[str, FloatArray] = {}
    for c, oc in outcomes.items():
        if c in designs:
            tmp = _Outcome(c)
            _choose_penalty(prob, tmp, paths[c], seen)
            assert tmp.oof is not None
            scores[c] = tmp.oof[seen]
        else:
            assert oc.oof is not None
            scores[c] = oc.oof[seen]
    usable = [c for c, s in scores.items() if _within_fold_sd(prob, seen, s) >= CONSTANT_SD]
    if len(usable) < 2:
        return
    M = np.column_stack([scores[c] for c in usable])
    if prob.kind == "binary":
        assert prob.y is not None
        _, w, _ = _fit_binary_weights(M, prob.y[seen])
    else:
        w, _ = _fit_cox_weights(M, _cox_strata(prob, seen), seen)
    losses = {c: _per_unit_losses(prob, seen, scores[c]) for c in usable}
    best = min(usable, key=lambda c: float(losses[c].mean()))
    for c, wc in zip(usable, w, strict=True):
        if c in designs or wc > 1e-8 or c == best:
            continue
        diff = losses[c] - losses[best]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff)))
        if diff.mean() > 2 * se:
            outcomes[c].status = "stopped"
            outcomes[c].reason = (
                f"stopped after {n_seen} of {len(prob.folds)} folds: no weight in the "
                f"combination and {_unit(prob)} {losses[c].mean():.4f} against "
                f"{best} {losses[best].mean():.4f} (difference {diff.mean():.4f}, "
                f"more than twice its standard error {se:.4f})"
            )
            outcomes[c].oof = None


def _unit(prob: _Problem) -> str:
    return "log loss" if prob.kind == "binary" else "partial-likelihood loss per event"


def _within_fold_sd(prob: _Problem, rows: Any, score: FloatArray) -> float:
    folds = prob.fold_of[np.asarray(rows)]
    sds = [float(np.std(score[folds == k])) for k in np.unique(folds)]
    return float(np.mean(sds)) if sds else 0.0


def _exclude_constant(prob: _Problem, outcomes: dict[str, _Outcome]) -> None:
    everyone = np.arange(len(prob.X))
    for oc in outcomes.values():
        if oc.status != "combined":
            continue
        assert oc.oof is not None
        sd = _within_fold_sd(prob, everyone, oc.oof)
        if not np.isfinite(sd) or sd < CONSTANT_SD:
            oc.status = "excluded"
            oc.reason = (
                f"excluded: its out-of-fold predictions are (nearly) constant (standard "
                f"deviation {sd:.2g} on the {_scale(prob)} scale within a fold, below "
                f"{CONSTANT_SD}); it would add nothing but noise"
            )


def _scale(prob: _Problem) -> str:
    return "log-odds" if prob.kind == "binary" else "log-hazard"


def _final_component(
    prob: _Problem, c: str, design: _Design | None, oc: _Outcome, dall: Any
) -> dict[str, Any]:
    """A candidate refitted on every record (its chosen penalty or median rounds)."""
    everyone = np.arange(len(prob.X))
    if design is not None:
        D = design.matrix(prob.X)
        lam = np.array([oc.penalty])
        if prob.kind == "binary":
            assert prob.y is not None
            b0, coef = ridge_logistic_path(D, prob.y, warm_path(lam))
            intercept, beta = float(b0[-1]), coef[-1]
        else:
            assert prob.time is not None and prob.event is not None
            beta = ridge_cox_path(D, prob.time, prob.event, warm_path(lam))[-1]
            intercept = 0.0
        return {
            "name": c,
            "family": "ridge",
            "columns": design.columns,
            "spline": design.spline,
            "spline_columns": design.spline_columns,
            "names": list(design.names),
            "center": design.center,
            "scale": design.scale,
            "coef": np.asarray(beta, dtype=np.float64),
            "intercept": intercept,
            "penalty": float(oc.penalty),
        }
    import xgboost as xgb

    rounds = max(1, int(np.median(oc.rounds)))
    dm = dall.slice(everyone)
    extra = _set_label(dm, c, prob, everyone)
    params = {**_booster_params(c, prob, prob.seed), **extra}
    booster = xgb.train(
        params, dm, num_boost_round=rounds, verbose_eval=False, callbacks=[feature_check_once()]
    )
    return {"name": c, "family": "xgboost", "booster": booster, "sign": _sign(c), "rounds": rounds}


# -- prediction and contributions of fitted components ---------------------------------------
def component_score(comp: dict[str, Any], X: FloatArray) -> FloatArray:
    """A fitted component's score (log-odds or risk score) on the shared matrix."""
    if comp["family"] == "ridge":
        return _ridge_design(comp, X) @ comp["coef"] + comp["intercept"]
    import xgboost as xgb

    dm = xgb.DMatrix(X, nthread=1)
    margin = comp["booster"].predict(dm, output_margin=True)
    return comp["sign"] * np.asarray(margin, dtype=np.float64)


def _ridge_design(comp: dict[str, Any], X: FloatArray) -> FloatArray:
    parts = [X[:, comp["columns"]]]
    if comp["spline"] is not None:
        parts.insert(0, comp["spline"].transform(X[:, comp["spline_columns"]]))
    raw = np.hstack(parts) if len(parts) > 1 else parts[0]
    return (raw - comp["center"]) / comp["scale"]


def component_contributions(
    comp: dict[str, Any], X: FloatArray, names: list[str]
) -> tuple[FloatArray, list[str], float]:
    """Exact per-column contributions to a component's score, and its base value.

    Ridge components: ``coef * (standardised value - 0)`` per design column (spline
    terms keep their ``<column>_sp_<i>`` names), base ``intercept``; boosters: XGBoost's
    exact tree SHAP (``pred_contribs``), base the bias term."""
    if comp["family"] == "ridge":
        return _ridge_design(comp, X) * comp["coef"], list(comp["names"]), comp["intercept"]
    import xgboost as xgb

    from spinerisk._threads import all_cores, n_threads

    booster = all_cores(comp["booster"])  # explanations use every core
    raw = booster.predict(xgb.DMatrix(X, nthread=n_threads()), pred_contribs=True)
    raw = comp["sign"] * np.asarray(raw, dtype=np.float64)
    return raw[:, :-1], list(names), float(raw[0, -1]) if len(raw) else 0.0


# -- the estimators ---------------------------------------------------------------------------
class _StackMixin:
    """Shared fit and contribution code of the stacked estimators."""

    candidates: tuple[str, ...] | None
    cv: int
    spline_knots: int
    random_state: int
    n_jobs: int | None
    components_: list[dict[str, Any]]
    weights_: dict[str, float]
    intercept_: float
    feature_names_: list[str]

    def _check_stack_params(self, kind: str) -> tuple[str, ...]:
        allowed = DEFAULT_CANDIDATES[kind]
        cands = allowed if self.candidates is None else tuple(self.candidates)
        bad = [c for c in cands if c not in allowed]
        if not cands or bad:
            raise ValueError(
                f"candidates must be a non-empty tuple of {', '.join(map(repr, allowed))}; "
                f"got candidates={self.candidates!r}."
            )
        if not isinstance(self.cv, int | np.integer) or isinstance(self.cv, bool) or self.cv < 2:
            raise ValueError(f"cv must be an integer >= 2; got cv={self.cv!r}.")
        k = self.spline_knots
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 3:
            raise ValueError(f"spline_knots must be an integer >= 3; got spline_knots={k!r}.")
        return cands

    def _workers(self) -> int:
        if self.n_jobs is None or self.n_jobs == -1:
            from joblib import cpu_count

            return max(1, int(cpu_count()))
        return max(1, int(self.n_jobs))

    def _matrix(self, X: Any, *, reset: bool) -> FloatArray:
        if reset and isinstance(X, pd.DataFrame):
            self.feature_names_ = [str(c) for c in X.columns]
        arr = validate_data(self, X, dtype=np.float64, reset=reset)  # type: ignore[arg-type]
        if reset and not isinstance(X, pd.DataFrame):
            self.feature_names_ = [f"x{i}" for i in range(arr.shape[1])]
        return np.asarray(arr, dtype=np.float64)

    def _record(self, result: dict[str, Any], seconds: float) -> None:
        outcomes: dict[str, _Outcome] = result["outcomes"]
        self.components_ = result["components"]
        self.intercept_ = result["intercept"]
        self.weights_ = {c: float(o.weight) for c, o in outcomes.items()}
        rows = []
        for c, o in outcomes.items():
            rows.append(
                {
                    "candidate": c,
                    "loss": o.loss,
                    "discrimination": o.discrimination,
                    "penalty": o.penalty,
                    "rounds": float(np.median(o.rounds)) if o.rounds else float("nan"),
                    "weight": o.weight,
                    "seconds": o.seconds,
                    "status": o.status if o.status != "combined" or o.weight > 0 else "no weight",
                    "reason": o.reason,
                }
            )
        self.candidates_ = pd.DataFrame(rows).set_index("candidate")
        self.oof_loss_ = result["stack_loss"]
        self.oof_discrimination_ = result["stack_discrimination"]
        self.fit_seconds_ = seconds
        self.best_ = result["best"]
        self.best_calibration_ = tuple(float(v) for v in result["best_calibration"])

    def _stack_score(self, X: FloatArray) -> FloatArray:
        score = np.full(X.shape[0], float(self.intercept_))
        for comp in self.components_:
            if self.weights_[comp["name"]] > 0:
                score = score + self.weights_[comp["name"]] * component_score(comp, X)
        return score

    def selected_score(self, X: Any) -> FloatArray:
        """Score of the best single candidate alone, with its own out-of-fold intercept
        and slope: what a selection rule (the discrete super learner) would predict.

        For comparison with the combination (the benchmark reports both).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Log-odds (binary) or log hazard ratio up to a constant.
        """
        check_is_fitted(self, "components_")
        arr = self._matrix(X, reset=False)
        if self.best_ is None:
            return np.full(arr.shape[0], float(self.intercept_))
        comp = next(c for c in self.components_ if c["name"] == self.best_)
        b, w = self.best_calibration_
        return b + w * component_score(comp, arr)

    def contributions(self, X: Any) -> tuple[pd.DataFrame, float, FloatArray]:
        """Exact contributions of each column to the combined score.

        The combined score is ``intercept_ + sum_k weights_[k] * score_k(x)``, so its
        contributions are the weighted sums of each component's exact contributions
        (ridge terms, XGBoost tree SHAP).

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            The shared matrix (output of the feature pipeline).

        Returns
        -------
        phi : DataFrame
            Per column (spline terms as ``<column>_sp_<i>``), on the score's scale.
        base : float
            Score of a record whose contributions are all zero.
        score : ndarray of shape (n_samples,)
            The combined score, computed by the prediction routine (not from ``phi``).
        """
        check_is_fitted(self, "components_")
        index = X.index if isinstance(X, pd.DataFrame) else None
        arr = self._matrix(X, reset=False)
        total: dict[str, FloatArray] = {}
        base = float(self.intercept_)
        for comp in self.components_:
            w = self.weights_[comp["name"]]
            if w <= 0:
                continue
            phi, cols, b = component_contributions(comp, arr, self.feature_names_)
            base += w * b
            for j, col in enumerate(cols):
                total[col] = total.get(col, 0.0) + w * phi[:, j]
        frame = pd.DataFrame(total, index=index)
        if frame.shape[1] == 0:
            frame = pd.DataFrame(index=index if index is not None else range(arr.shape[0]))
        return frame, base, self._raw_score(arr)

    def _raw_score(self, arr: FloatArray) -> FloatArray:
        return self._stack_score(arr)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {name}={value!r}.")


def _check_horizons(horizons: Any) -> tuple[float, ...]:
    """``horizons`` as a tuple of days (empty for None), each by the time rule of
    :func:`spinerisk.targets.invalid_times`; anything else is refused with the value."""
    if horizons is None:
        return ()
    values = np.atleast_1d(np.asarray(horizons, dtype=object))
    numbers = None
    if values.ndim == 1 and values.size and not any(isinstance(v, bool) for v in values):
        try:
            numbers = values.astype(np.float64)
        except (TypeError, ValueError):
            numbers = None
    if numbers is None or invalid_times(numbers).any():
        raise ValueError(
            f"horizons must be None or a non-empty sequence of numbers of days, each "
            f"{TIME_RULE}; got horizons={horizons!r}."
        )
    return tuple(numbers.tolist())


def _check_jobs(n_jobs: Any) -> None:
    if n_jobs is not None and not (
        isinstance(n_jobs, int | np.integer)
        and not isinstance(n_jobs, bool)
        and (n_jobs >= 1 or n_jobs == -1)
    ):
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1; got n_jobs={n_jobs!r}.")


class StackedClassifier(_StackMixin, ClassifierMixin, BaseEstimator):
    """Cross-validated stacking of ridge, spline and boosted log-odds (binary outcomes).

    Parameters
    ----------
    candidates : tuple of str or None, default=None
        Among ``"linear"``, ``"spline"``, ``"xgboost"``; None means all three.
    cv : int, default=5
        Shared folds.
    spline_knots : int, default=4
        Knots of the ``"spline"`` candidate's cubic B-spline basis per continuous column.
    random_state : int, default=0
        Seed of the folds, the inner early-stopping splits and the boosters.
    n_jobs : int or None, default=None
        Parallel fold fits (threads); None or -1 means every core.

    Attributes
    ----------
    components_ : list of dict
        The candidates with a weight, refitted on every record.
    weights_ : dict
        Non-negative weight per candidate (0: not combined).
    intercept_ : float
        Intercept of the combined log-odds.
    candidates_ : DataFrame
        Per candidate: OOF log loss alone (with its own intercept and slope), AUROC,
        chosen ridge penalty, median boosting rounds, weight, seconds, status, reason.
    oof_loss_, oof_discrimination_ : float
        OOF log loss and AUROC of the combination.
    classes_ : ndarray of shape (2,)
    fit_seconds_ : float

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.models._stack import StackedClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = rng.uniform(size=300) < 1 / (1 + np.exp(-X[:, 0]))
    >>> model = StackedClassifier(candidates=("linear", "spline"), cv=3).fit(X, y)
    >>> sorted(model.weights_), model.predict_proba(X[:2]).shape
    (['linear', 'spline'], (2, 2))
    """

    def __init__(
        self,
        candidates: tuple[str, ...] | None = None,
        *,
        cv: int = 5,
        spline_knots: int = 4,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.candidates = candidates
        self.cv = cv
        self.spline_knots = spline_knots
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any) -> StackedClassifier:
        """Cross-fit the candidates, fit the weights, refit the weighted candidates.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric matrix without missing values (the one-hot feature pipeline's output).
        y : array-like of shape (n_samples,)
            Binary outcome.

        Returns
        -------
        self : StackedClassifier
        """
        start = _time.perf_counter()
        cands = self._check_stack_params("binary")
        _check_jobs(self.n_jobs)
        _check_positive_int("random_state", self.random_state)
        arr = self._matrix(X, reset=True)
        classes, y_enc = np.unique(np.asarray(y), return_inverse=True)
        if len(classes) != 2:
            raise ValueError(f"StackedClassifier needs 2 classes in y; got {len(classes)}.")
        if np.bincount(y_enc).min() < self.cv:
            raise ValueError(
                f"Each class needs at least cv={self.cv} records for the shared folds; the "
                f"smaller class has {int(np.bincount(y_enc).min())}."
            )
        self.classes_ = classes
        yf = y_enc.astype(np.float64)
        groups = duplicate_groups(arr, yf)
        seed = int(self.random_state)
        prob = _Problem(
            "binary",
            arr,
            self.feature_names_,
            yf,
            None,
            None,
            y_enc.astype(np.int_),
            groups,
            stratified_folds(y_enc, groups, int(self.cv), seed),
            seed,
        )
        result = cross_fit(prob, cands, spline_knots=int(self.spline_knots), n_jobs=self._workers())
        self._record(result, _time.perf_counter() - start)
        return self

    def decision_function(self, X: Any) -> FloatArray:
        """Combined log-odds of the positive class.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "components_")
        return self._stack_score(self._matrix(X, reset=False))

    def predict_proba(self, X: Any) -> FloatArray:
        """Risk of each class.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> Any:
        """Most likely class.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


class StackedCoxSurvival(_StackMixin, CoxType, BaseEstimator):
    """Cross-validated stacking of ridge, spline and boosted survival scores (Cox type).

    The combined log hazard ratio is ``sum_k weights_[k] * score_k(x)`` with
    non-negative weights maximising the out-of-fold partial likelihood (risk sets within
    each fold); the baseline hazard is Breslow's estimate for the combined score.

    Parameters
    ----------
    candidates : tuple of str or None, default=None
        Among ``"linear"``, ``"spline"``, ``"xgboost"`` (boosted Cox), ``"xgboost_aft"``
        and ``"xgboost_forest"``; None means all five.
    cv : int, default=5
        Shared folds (stratified by event).
    spline_knots : int, default=4
        Knots of the ``"spline"`` candidate's basis per continuous column.
    random_state : int, default=0
        Seed of the folds, the inner early-stopping splits and the boosters.
    n_jobs : int or None, default=None
        Parallel fold fits (threads); None or -1 means every core.
    horizons : tuple of float or None, default=None
        Days at which the risks should be calibrated (the endpoint's horizons): the
        weights are multiplied by one factor, fitted on the out-of-fold scores, that
        calibrates the risks by these horizons when hazards are not proportional
        (:data:`HORIZON_SCALE_BOUNDS`; it changes no ranking). None: the partial-likelihood
        weights as they are.

    Attributes
    ----------
    components_, weights_, candidates_, fit_seconds_
        As :class:`StackedClassifier` (losses are partial-likelihood losses per event
        and discrimination is the mean per-fold Harrell's C). ``weights_`` include the
        horizon scale; ``oof_loss_`` is the loss of the weights before it (the scale
        changes no ranking, so ``oof_discrimination_`` is the same either way).
    horizon_scale_ : float
        The factor on the partial-likelihood weights (1 without usable horizons).
    horizon_scale_times_ : tuple of float
        The horizons it was fitted at (empty without).
    intercept_ : float
        Always 0 (the baseline hazard absorbs it).
    lp_mean_ : float
        Mean combined score over the training records (scores are centred on it).
    unique_times_, baseline_cumulative_hazard_ : ndarray
        Breslow baseline of the centred combined score.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.models._stack import StackedCoxSurvival
    >>> from spinerisk.targets import make_survival_target
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> t = rng.exponential(np.exp(-X[:, 0]))
    >>> y = make_survival_target(t < 1.5, np.minimum(t, 1.5) * 365)
    >>> model = StackedCoxSurvival(candidates=("linear", "spline"), cv=3).fit(X, y)
    >>> model.predict_risk(X[:2], [200.0]).shape
    (2, 1)
    """

    def __init__(
        self,
        candidates: tuple[str, ...] | None = None,
        *,
        cv: int = 5,
        spline_knots: int = 4,
        random_state: int = 0,
        n_jobs: int | None = None,
        horizons: tuple[float, ...] | None = None,
    ) -> None:
        self.candidates = candidates
        self.cv = cv
        self.spline_knots = spline_knots
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.horizons = horizons

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A model saved before the horizon scale existed loads as fitted then: no
        horizons, a scale of 1 (its weights are as they were)."""
        state = {"horizons": None, **state}
        if "components_" in state:
            state = {"horizon_scale_": 1.0, "horizon_scale_times_": (), **state}
        super().__setstate__(state)

    def fit(self, X: Any, y: np.ndarray) -> StackedCoxSurvival:
        """Cross-fit the candidates, fit the weights, refit, estimate the baseline.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric matrix without missing values (the one-hot feature pipeline's output).
        y : structured ndarray of shape (n_samples,)
            Fields ``event`` (bool) and ``time`` (days).

        Returns
        -------
        self : StackedCoxSurvival
        """
        start = _time.perf_counter()
        cands = self._check_stack_params("survival")
        _check_jobs(self.n_jobs)
        _check_positive_int("random_state", self.random_state)
        arr = self._matrix(X, reset=True)
        y = _check_survival_y(y, arr.shape[0], type(self).__name__)
        event = np.asarray(y["event"], dtype=bool)
        time_ = np.asarray(y["time"], dtype=np.float64)
        if int(event.sum()) < self.cv:
            raise ValueError(
                f"The shared folds need at least cv={self.cv} events; y has {int(event.sum())}."
            )
        groups = duplicate_groups(arr, time_, event)
        seed = int(self.random_state)
        strata = event.astype(np.int_)
        prob = _Problem(
            "survival",
            arr,
            self.feature_names_,
            None,
            time_,
            event,
            strata,
            groups,
            stratified_folds(strata, groups, int(self.cv), seed),
            seed,
        )
        result = cross_fit(
            prob,
            cands,
            spline_knots=int(self.spline_knots),
            n_jobs=self._workers(),
            horizons=_check_horizons(self.horizons),
        )
        self._record(result, _time.perf_counter() - start)
        self.horizon_scale_ = result["horizon_scale"]
        self.horizon_scale_times_ = result["horizon_scale_times"]
        score = self._stack_score(arr)
        self.lp_mean_ = float(score.mean())
        self.fit_baseline(time_, event, score - self.lp_mean_)
        return self

    def _lp(self, X: Any) -> FloatArray:
        return self._stack_score(self._matrix(X, reset=False)) - self.lp_mean_

    def _raw_score(self, arr: FloatArray) -> FloatArray:
        return self._stack_score(arr) - self.lp_mean_

    def contributions(self, X: Any) -> tuple[pd.DataFrame, float, FloatArray]:
        """Exact contributions to the centred log hazard ratio (``predict(X)``).

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)

        Returns
        -------
        phi : DataFrame
        base : float
        score : ndarray of shape (n_samples,)
        """
        phi, base, score = super().contributions(X)
        return phi, base - self.lp_mean_, score
