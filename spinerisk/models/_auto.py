"""``RiskModel(backend="auto")``: the stacked default, its selection table and its reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from spinerisk.models._stack import (
    DEFAULT_CANDIDATES,
    STACK_ONLY,
    StackedClassifier,
    StackedCoxSurvival,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

#: Backends offered for a kind that the default does not combine, and why.
NOT_COMBINED = {
    "lightgbm": (
        "not combined: the default already has one gradient-boosted tree model (xgboost), "
        "and a second library of the same family adds fitting time, not diversity; "
        "backend='lightgbm' fits it alone"
    ),
    "xgboost_aft": (
        "not combined for competing risks: the cause-specific hazards are combined on the "
        "log-hazard scale of Cox-type models; backend='xgboost_aft' is for one event type"
    ),
}
COLUMNS = [
    "metric",
    "loss",
    "discrimination",
    "penalty",
    "rounds",
    "weight",
    "seconds",
    "status",
    "reason",
]


def fit_default(
    model: RiskModel, ep: Any, data: pd.DataFrame, target: np.ndarray
) -> dict[str, Any]:
    """Fit the stacked default; returns the RiskModel's fitted parts and its record."""
    from spinerisk.models._competing import CauseSpecificCIF
    from spinerisk.models._state import BACKENDS

    features = model._linear_features(ep, 0)
    X = features.fit_transform(data)
    kind = "binary" if ep.kind == "binary" else "survival"
    params: dict[str, Any] = {
        "candidates": tuple(
            c for c in DEFAULT_CANDIDATES[kind] if c in BACKENDS[ep.kind] or c in STACK_ONLY
        ),
        "cv": int(model.cv),
        "spline_knots": int(model.spline_knots),
        "random_state": int(model.random_state),
        "n_jobs": model.n_jobs,
    }
    stacks: dict[int | None, Any]
    if ep.kind == "binary":
        stack: Any = StackedClassifier(**params).fit(X, target)
        parts = {
            "features_": None,
            "estimator_": Pipeline([("features", features), ("model", stack)]),
        }
        stacks = {None: stack}
    elif ep.kind == "survival":
        stack = StackedCoxSurvival(**params, horizons=tuple(ep.horizons)).fit(X, target)
        parts = {"features_": features, "estimator_": stack}
        stacks = {None: stack}
    else:
        cif = CauseSpecificCIF(
            StackedCoxSurvival(**params), event_of_interest=ep.event_of_interest
        ).fit(X, target)
        parts = {"features_": features, "estimator_": cif}
        stacks = {int(c): e for c, e in zip(cif.causes_, cif.estimators_, strict=True)}
    table = selection_table(ep, stacks)
    parts["selection_"] = table
    parts["selection_reason_"] = reason(ep, stacks, int(model.cv))
    return parts


def _metric(kind: str) -> str:
    if kind == "binary":
        return "out-of-fold log loss alone (lower is better); AUROC"
    return "out-of-fold partial-likelihood loss per event alone (lower is better); Harrell's C"


def selection_table(ep: Any, stacks: dict[int | None, Any]) -> pd.DataFrame:
    """One row per candidate (per cause for competing risks)."""
    from spinerisk.models._state import BACKENDS

    frames = []
    kind = "binary" if ep.kind == "binary" else "survival"
    for cause, stack in stacks.items():
        t = stack.candidates_.copy()
        for name in BACKENDS[ep.kind]:
            if name not in t.index:
                t.loc[name] = {
                    "loss": np.nan,
                    "discrimination": np.nan,
                    "penalty": np.nan,
                    "rounds": np.nan,
                    "weight": 0.0,
                    "seconds": 0.0,
                    "status": "not combined",
                    "reason": NOT_COMBINED.get(name, "not a candidate of the default"),
                }
        t = t.loc[[n for n in (*BACKENDS[ep.kind], *STACK_ONLY) if n in t.index]]
        t["metric"] = _metric(kind)
        t = t[COLUMNS]
        if cause is not None:
            t.index = [f"{n} (cause {cause})" for n in t.index]
            t.insert(0, "cause", cause)
        frames.append(t)
    out = pd.concat(frames)
    out.index.name = "backend"
    return out


def _describe(stack: Any, kind: str, ep: Any) -> str:
    t = stack.candidates_
    used = [(n, w) for n, w in stack.weights_.items() if w > 0]
    weights = ", ".join(f"{n} {w:.3f}" for n, w in sorted(used, key=lambda x: -x[1]))
    alone = t[t["loss"].notna()]
    unit = "log loss" if kind == "binary" else "partial-likelihood loss per event"
    disc = "AUROC" if kind == "binary" else "Harrell's C"
    text = f"weights {weights or 'none'}"
    if len(used) == 1:  # a stack of one: say so, the name "stack" alone would not
        text += (
            f" (only {used[0][0]} carries weight: the default is {used[0][0]} with its "
            "scores recalibrated out of fold)"
        )
    if kind == "binary":
        text += f", intercept {stack.intercept_:.3f}"
    if len(alone):
        best = alone["loss"].idxmin()
        text += (
            f"; out-of-fold {unit} {stack.oof_loss_:.4f} (the best candidate alone, {best}: "
            f"{alone.loc[best, 'loss']:.4f}); {disc} {stack.oof_discrimination_:.3f} "
            f"({best}: {alone.loc[best, 'discrimination']:.3f})"
        )
    times = getattr(stack, "horizon_scale_times_", ())
    if times:
        when = ", ".join(ep.horizon_label(h) for h in times)
        text += (
            f"; the weights include one scale, {stack.horizon_scale_:.3f}, fitted on the "
            f"out-of-fold scores so that the risks by {when} are calibrated "
            "(censoring-weighted, complementary log-log; it changes no ranking, and the "
            "loss above is that of the weights before it)"
        )
    notes = [f"{n} {r}" for n, r in t["reason"].items() if r]
    if notes:
        text += ". " + "; ".join(notes)
    return text


def reason(ep: Any, stacks: dict[int | None, Any], cv: int) -> str:
    kind = "binary" if ep.kind == "binary" else "survival"
    first = next(iter(stacks.values()))
    names = ", ".join(first.candidates_.index)
    scale = (
        "log-odds, intercept and non-negative weights fitted by out-of-fold log loss"
        if kind == "binary"
        else "log hazard ratio, non-negative weights fitted by the out-of-fold partial "
        "likelihood (risk sets within folds), Breslow baseline"
    )
    head = (
        f"cross-validated stacking (super learner) of {names} on {cv} shared folds "
        f"({scale}); each candidate alone is one of the weightings searched (and taken "
        "where the fitted weights come out worse), so out of fold the combination is never "
        "worse than the best single candidate"
    )
    if len(stacks) == 1:
        return f"{head}: {_describe(first, kind, ep)}."
    parts = [f"cause {c}: {_describe(s, kind, ep)}" for c, s in stacks.items()]
    return f"{head}, per cause. " + " | ".join(parts) + "."
