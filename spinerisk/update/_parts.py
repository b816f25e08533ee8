"""The updatable parts of a fitted RiskModel: their designs on site records, and the
changes each updating level makes to their fitted attributes.

A binary model has one part; a survival model one; a competing-risks model one per
cause (its cause-specific hazard model). Updated parts keep their types
(``LogisticRegressionCV``, sigmoid calibrators, ``CoxPHSurvival``, XGBoost boosters...),
so the updated RiskModel is saved, explained, scored and compiled like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.model_selection import StratifiedKFold

from spinerisk.update._glm import Design, Fit, choose_penalty, fit_level, fit_nonnegative

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

FloatArray = np.ndarray

#: Folds that choose the ridge penalty of a revision.
PENALTY_FOLDS = 5


@dataclass
class Part:
    """One linear predictor that an update changes.

    Attributes
    ----------
    label : str
        ``"model"``, or ``"cause <code>"`` for a competing-risks cause.
    cause : int or None
        Event code of a competing-risks cause.
    kind : {"logistic", "calibrated", "cox", "boosted_cox", "aft"}
    design : Design
        Offsets and revision design on the site records.
    fold_design : Design or None
        Calibrated ensembles: one score per fold, the exact form their intercept and
        slope are fitted in (``design`` tests on the logit of the ensemble's risk).
    own_design : bool
        The revision design is the model's own design matrix (linear models), so a
        revision changes its coefficients; otherwise revision continues boosting.
    z_columns, z_mean, z_sd
        Which columns of the model's design entered ``Z`` and how they were scaled.
    """

    label: str
    cause: int | None
    kind: str
    design: Design
    own_design: bool
    z_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    z_mean: FloatArray = field(default_factory=lambda: np.zeros(0))
    z_sd: FloatArray = field(default_factory=lambda: np.zeros(0))
    extra: dict[str, Any] = field(default_factory=dict)
    fold_design: Design | None = None


def _standardise(X: Any) -> tuple[FloatArray, np.ndarray, FloatArray, FloatArray]:
    """Non-constant columns of ``X``, centred and scaled on these records."""
    values = np.asarray(X, dtype=np.float64)
    sd = values.std(axis=0)
    keep = np.flatnonzero(sd > 1e-12)
    mean = values[:, keep].mean(axis=0)
    return (values[:, keep] - mean) / sd[keep], keep, mean, sd[keep]


def site_design(model: RiskModel, data: pd.DataFrame) -> FloatArray:
    """One-hot, standardised design of the site records (the revision test of boosted
    models, whose own trees are not a linear design)."""
    from spinerisk.features import make_feature_pipeline

    ep = model.endpoint_
    pipe = make_feature_pipeline(
        model.schema_,
        encoding="onehot",
        include_treatment=ep.include_treatment,
        fields=tuple(ep.predictors(model.schema_)),
    )
    return _standardise(pipe.fit_transform(data))[0]


# -- building the parts ---------------------------------------------------------------------
def build_parts(model: RiskModel, data: pd.DataFrame, target: np.ndarray) -> list[Part]:
    """The parts of ``model`` with their designs on the eligible site records ``data``."""
    ep = model.endpoint_
    if ep.kind == "binary":
        return [_binary_part(model, data, np.asarray(target, dtype=np.float64))]
    Xf = survival_features(model, data)
    est = model.estimator_
    time = np.asarray(target["time"], dtype=np.float64)
    event = np.asarray(target["event"])
    if type(est).__name__ == "CauseSpecificCIF":
        parts = []
        for sub, cause in zip(est.estimators_, est.causes_, strict=True):
            part = _survival_part(model, sub, Xf, data, time, event == cause, f"cause {cause}")
            part.cause = int(cause)
            parts.append(part)
        return parts
    return [_survival_part(model, est, Xf, data, time, event.astype(bool), "model")]


def survival_features(model: RiskModel, data: pd.DataFrame) -> Any:
    """``data`` through a time-to-event model's fitted feature pipeline (such a model
    keeps it apart from its estimator; only binary ones hold it inside)."""
    features = model.features_
    assert features is not None, "a time-to-event model has its own feature pipeline"
    return features.transform(data)


def _binary_part(model: RiskModel, data: pd.DataFrame, y: FloatArray) -> Part:
    from sklearn.calibration import CalibratedClassifierCV

    est = model.estimator_
    if not isinstance(est, CalibratedClassifierCV):
        X = est[:-1].transform(data)
        logit = np.asarray(est[-1].decision_function(X), dtype=np.float64)
        Z, keep, mean, sd = _standardise(X)
        design = Design("binomial", y, logit[:, None], logit[:, None], Z)
        if type(est[-1]).__name__ == "StackedClassifier":
            # its revision re-weights the candidates: the test's revision terms are theirs
            design = replace(design, Z=_candidate_scores(est[-1], X))
            return Part("model", None, "stack", design, False, extra={"matrix": X})
        return Part("model", None, "logistic", design, True, keep, mean, sd)
    if est.method != "sigmoid":
        raise ValueError(
            "Only sigmoid-calibrated binary models can be updated (their calibrated "
            f"log-odds are a straight line in the booster's margin); got method={est.method!r}."
        )
    logits = []
    for cc in est.calibrated_classifiers_:
        margin = np.asarray(cc.estimator.decision_function(data), dtype=np.float64)
        cal = cc.calibrators[0]
        logits.append(-(cal.a_ * margin + cal.b_))
    L = np.column_stack(logits)
    risk = np.clip(special.expit(L).mean(axis=1), 1e-15, 1 - 1e-15)
    logit = special.logit(risk)
    design = Design("binomial", y, logit[:, None], logit[:, None], site_design(model, data))
    folds = Design("binomial", y, L, L, np.zeros((len(y), 0)))
    return Part("model", None, "calibrated", design, False, fold_design=folds)


def cumulative_hazard_at(est: Any, time: FloatArray) -> FloatArray:
    """Baseline cumulative hazard of a Cox-type model at each follow-up time: its step
    function, held flat after the last training event time and rising linearly from 0 to
    its first step before it (so that an early event has a positive expected count)."""
    from spinerisk.models._survival_base import step_at

    grid = est.unique_times_
    h0 = est.baseline_cumulative_hazard_
    at = step_at(grid, h0, time)
    early = time < grid[0]
    at[early] = h0[0] * time[early] / grid[0]
    return np.maximum(at, 1e-300)


def _survival_part(
    model: RiskModel,
    est: Any,
    Xf: Any,
    data: pd.DataFrame,
    time: FloatArray,
    event: np.ndarray,
    label: str,
) -> Part:
    name = type(est).__name__
    last = float(est.unique_times_[-1])
    # follow-up beyond the model's last training event time is censored there: the model
    # says nothing about later times
    d = (event & (time <= last)).astype(np.float64)
    t = np.minimum(time, last)
    if name == "BoostedAFTSurvival":
        mu = -np.asarray(est.predict(Xf), dtype=np.float64)
        centre = float(mu.mean())
        design = Design(
            "aft",
            d,
            mu[:, None],
            (mu - centre)[:, None],
            site_design(model, data),
            log_time=np.log(t),
            scale=float(est.scale_),
            distribution=est.distribution,
        )
        extra = {"centre": centre, "probe": est._dmatrix(_head(Xf))}
        return Part(label, None, "aft", design, False, extra=extra)
    eta = np.asarray(est.predict(Xf), dtype=np.float64)
    base = np.log(cumulative_hazard_at(est, t)) + eta
    if name == "CoxPHSurvival":
        Z, keep, mean, sd = _standardise(Xf)
        design = Design("poisson", d, base[:, None], eta[:, None], Z)
        return Part(label, None, "cox", design, True, keep, mean, sd)
    if name == "StackedCoxSurvival":  # the default: its revision re-weights the candidates
        design = Design("poisson", d, base[:, None], eta[:, None], _candidate_scores(est, Xf))
        extra = {"matrix": Xf, "log_h0": np.log(cumulative_hazard_at(est, t))}
        return Part(label, None, "stack_cox", design, False, extra=extra)
    if name == "BoostedCoxSurvival":
        design = Design("poisson", d, base[:, None], eta[:, None], site_design(model, data))
        extra = {"probe": est._dmatrix(_head(Xf))}
        return Part(label, None, "boosted_cox", design, False, extra=extra)
    raise TypeError(f"Updating does not support {name} models.")


def _head(X: Any, n: int = 5) -> Any:
    return X.iloc[:n] if isinstance(X, pd.DataFrame) else X[:n]


# -- applying a level ----------------------------------------------------------------------
def revise_linear(part: Part, random_state: int) -> Fit:
    """Penalised revision of a linear part: intercept and slope free, the coefficient
    changes ridge-penalised towards 0 (towards the recalibrated model), the penalty
    chosen by cross-validated log-likelihood."""
    design = part.design
    y = design.y.astype(int)
    folds = min(PENALTY_FOLDS, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        return replace(fit_level(design, "recalibrate"), level="revise")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    splits = list(splitter.split(np.zeros(len(y)), y))
    penalty, _ = choose_penalty(design, splits)
    return fit_level(design, "revise", penalty=penalty)


def apply_linear(model: RiskModel, part: Part, fit: Fit) -> None:
    """Write intercept, slope and (for a revision) coefficient changes into a part of
    ``model`` (a copy of the original)."""
    alpha, slope = fit.alpha, fit.slope
    delta = fit.delta / part.z_sd if fit.delta.size else np.zeros(0)
    shift = float(delta @ part.z_mean) if delta.size else 0.0
    if part.kind == "logistic":
        lr = model.estimator_[-1]
        coef = slope * np.asarray(lr.coef_, dtype=np.float64)
        if delta.size:
            coef[0, part.z_columns] += delta
        lr.coef_ = coef
        lr.intercept_ = slope * np.asarray(lr.intercept_, dtype=np.float64) + alpha - shift
        return
    if part.kind in ("stack", "stack_cox"):
        stack = model.estimator_[-1] if part.kind == "stack" else cause_model(model, part)
        _check_positive_slope(slope)
        stack.weights_ = {k: slope * w for k, w in stack.weights_.items()}
        if part.kind == "stack":
            stack.intercept_ = slope * float(stack.intercept_) + alpha
        else:
            stack.intercept_ = slope * float(stack.intercept_)
            stack.lp_mean_ = slope * float(stack.lp_mean_)
            stack.baseline_cumulative_hazard_ = np.exp(alpha) * stack.baseline_cumulative_hazard_
        return
    if part.kind == "calibrated":
        for cc in model.estimator_.calibrated_classifiers_:
            cal = cc.calibrators[0]
            cal.a_ = slope * cal.a_
            cal.b_ = slope * cal.b_ - alpha
        return
    est = cause_model(model, part)
    if part.kind == "cox":
        coef = slope * np.asarray(est.coef_, dtype=np.float64)
        if delta.size:
            coef[part.z_columns] += delta
        est.coef_ = coef
        est.lp_mean_ = slope * float(est.lp_mean_) + shift
        est.baseline_cumulative_hazard_ = np.exp(alpha) * est.baseline_cumulative_hazard_
        est.summary_ = None  # the parent's coefficient table no longer describes the model
        return
    if part.kind == "boosted_cox":
        if slope != 1.0:
            probe = part.extra["probe"]
            est.booster_ = _affine(est.booster_, slope, (1.0 - slope) * est.lp_mean_, probe)
        est.baseline_cumulative_hazard_ = np.exp(alpha) * est.baseline_cumulative_hazard_
        return
    if part.kind == "aft":
        if slope != 1.0 or alpha != 0.0:
            shift_mu = alpha - (slope - 1.0) * part.extra["centre"]
            est.booster_ = _affine(est.booster_, slope, shift_mu, part.extra["probe"])
        if fit.scale is not None:
            est.scale_ = float(fit.scale)
        return
    raise TypeError(f"unknown part kind {part.kind!r}")


def _candidate_scores(stack: Any, X: Any) -> FloatArray:
    """A stacked model's revision terms: its candidates' standardised scores, the terms
    :func:`reweight_stack` re-weights (so the closed test's revision is the one applied,
    with as many degrees of freedom)."""
    return _standardise(_component_scores(stack, X))[0]


def _component_scores(stack: Any, X: Any) -> FloatArray:
    """Each candidate's score (a column per component) of a stacked model."""
    from spinerisk.models._stack import component_score

    X = np.asarray(X, dtype=np.float64)
    return np.column_stack([component_score(c, X) for c in stack.components_])


def _check_positive_slope(slope: float) -> None:
    if not slope > 0:
        raise ValueError(
            f"The site's recalibration slope is {slope:.3g}: the model ranks the site's "
            "patients the wrong way round, and a stacked model's weights cannot turn "
            "negative. Do not update it this way: refit (method='refit') or investigate."
        )


def reweight_stack(model: RiskModel, part: Part) -> dict[str, Any]:
    """Revision of a stacked default: the intercept (or baseline hazard level) and the
    non-negative weight of every candidate re-estimated on the site, by maximum
    likelihood (a few parameters, one per candidate)."""
    stack = model.estimator_[-1] if part.kind == "stack" else cause_model(model, part)
    names = [c["name"] for c in stack.components_]
    scores = _component_scores(stack, part.extra["matrix"])
    design = part.design
    if part.kind == "stack":
        design = replace(design, base=np.zeros((len(design), 1)))
    else:  # log H(t) = log H0(t) + alpha + intercept_ + sum_k v_k s_k - lp_mean_
        offset = part.extra["log_h0"] + float(stack.intercept_) - float(stack.lp_mean_)
        design = replace(design, base=offset[:, None])
    coef, _ = fit_nonnegative(design, np.column_stack([np.ones(len(scores)), scores]))
    weights = dict.fromkeys(stack.weights_, 0.0)
    weights.update({k: float(v) for k, v in zip(names, coef[1:], strict=True)})
    stack.weights_ = weights
    if part.kind == "stack":
        stack.intercept_ = float(coef[0])
    else:
        stack.baseline_cumulative_hazard_ = np.exp(coef[0]) * stack.baseline_cumulative_hazard_
    return {"intercept": float(coef[0]), "weights": dict(stack.weights_)}


def _affine(booster: Any, scale: float, shift: float, probe: Any) -> Any:
    from spinerisk.update._boost import affine_xgboost

    return affine_xgboost(booster, scale, shift, probe)


def cause_model(model: RiskModel, part: Part) -> Any:
    """The fitted estimator of a survival part inside ``model``."""
    est = model.estimator_
    if part.cause is None:
        return est
    k = int(np.flatnonzero(est.causes_ == part.cause)[0])
    return est.estimators_[k]
