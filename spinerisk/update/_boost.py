"""Boosted models: an affine map of an XGBoost booster's margin, and continued boosting.

Both return objects of the original types (an ``xgboost.Booster``, an
``XGBClassifier``, an ``LGBMClassifier``), so an updated model saves, explains and
compiles on the fast path like any other.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split

FloatArray = np.ndarray

#: Continued boosting: learning rate, most extra rounds, patience and held-out share.
LEARNING_RATE = 0.01
MAX_EXTRA_ROUNDS = 300
PATIENCE = 30
VALIDATION_FRACTION = 0.2


def affine_xgboost(booster: Any, scale: float, shift: float, probe: Any) -> Any:
    """A copy of ``booster`` whose margin is ``shift + scale * margin``.

    Every leaf value is multiplied by ``scale``; ``shift`` and the scaled base margin
    are added to every leaf of the first tree (each record reaches exactly one of its
    leaves, so every margin moves by the same amount). Tree SHAP values scale with the
    leaves, and the expected value takes the shift. ``probe`` is a DMatrix of a few
    records, used to read the base margin and to check the result.
    """
    import xgboost as xgb

    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    base = float(_rebuilt(model, 0.0, 0.0).predict(probe, output_margin=True)[0])
    first_shift = shift + (scale - 1.0) * base
    for i, tree in enumerate(trees):
        for node, left in enumerate(tree["left_children"]):
            if left != -1:
                continue
            for key in ("split_conditions", "base_weights"):
                value = float(tree[key][node]) * scale
                tree[key][node] = value + (first_shift if i == 0 else 0.0)
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(model).encode("utf-8")))
    before = np.asarray(booster.predict(probe, output_margin=True), dtype=np.float64)
    after = np.asarray(out.predict(probe, output_margin=True), dtype=np.float64)
    if not np.allclose(after, shift + scale * before, rtol=1e-5, atol=1e-4):
        raise RuntimeError("The rescaled booster does not reproduce the intended margin.")
    return out


def _rebuilt(model: dict[str, Any], scale: float, shift: float) -> Any:
    """The booster of ``model`` (parsed JSON) with every leaf set to ``scale * leaf +
    shift`` (used with 0, 0 to read the base margin)."""
    import xgboost as xgb

    model = copy.deepcopy(model)
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for node, left in enumerate(tree["left_children"]):
            if left == -1:
                tree["split_conditions"][node] = tree["split_conditions"][node] * scale + shift
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(model).encode("utf-8")))
    return out


def _split(n: int, stratify: Any, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(n)
    labels = None
    if stratify is not None and np.bincount(np.asarray(stratify, dtype=int)).min() >= 2:
        labels = stratify
    fit, val = train_test_split(
        rows, test_size=VALIDATION_FRACTION, random_state=random_state, stratify=labels
    )
    return np.sort(fit), np.sort(val)


def continue_classifier(clf: Any, X: Any, y: FloatArray, random_state: int) -> tuple[Any, int]:
    """Continue boosting a fitted ``XGBClassifier`` or ``LGBMClassifier`` on ``(X, y)``.

    The number of extra rounds (learning rate :data:`LEARNING_RATE`, at most
    :data:`MAX_EXTRA_ROUNDS`) is chosen by early stopping on a stratified held-out
    part; then the original booster is continued on every record for that many rounds.
    Returns the new classifier (the original is not changed) and the extra rounds (0:
    the original is returned, as no extra round improved the held-out loss).
    """
    name = type(clf).__name__
    y = np.asarray(y, dtype=int)
    fit, val = _split(len(y), y, random_state)
    Xf, Xv = _rows(X, fit), _rows(X, val)
    if name == "XGBClassifier":
        old = int(clf.get_booster().num_boosted_rounds())
        probe = clone(clf).set_params(
            n_estimators=MAX_EXTRA_ROUNDS,
            learning_rate=LEARNING_RATE,
            early_stopping_rounds=PATIENCE,
        )
        probe.fit(Xf, y[fit], eval_set=[(Xv, y[val])], xgb_model=clf.get_booster(), verbose=False)
        extra = int(probe.best_iteration) + 1 - old
        start = _xgb_logloss(clf, Xv, y[val])
        if extra < 1 or float(probe.best_score) >= start:
            return clf, 0
        final = clone(clf).set_params(
            n_estimators=extra, learning_rate=LEARNING_RATE, early_stopping_rounds=None
        )
        final.fit(X, y, xgb_model=clf.get_booster(), verbose=False)
        return final, extra
    if name == "LGBMClassifier":
        import lightgbm

        old = int(clf.booster_.current_iteration())
        probe = clone(clf).set_params(n_estimators=MAX_EXTRA_ROUNDS, learning_rate=LEARNING_RATE)
        probe.fit(
            Xf,
            y[fit],
            init_model=clf.booster_,
            eval_set=[(Xv, y[val])],
            eval_metric="binary_logloss",
            callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
        )
        extra = int(probe.best_iteration_) - old
        best = float(probe.best_score_["valid_0"]["binary_logloss"])
        start = _log_loss(y[val], clf.predict_proba(Xv)[:, 1])
        if extra < 1 or best >= start:
            return clf, 0
        final = clone(clf).set_params(n_estimators=extra, learning_rate=LEARNING_RATE)
        final.fit(X, y, init_model=clf.booster_)
        # a deep copy rebuilds the booster from its model text, without the reference to
        # the initial model that training leaves behind (a type a bundle cannot hold)
        return copy.deepcopy(final), extra
    raise TypeError(f"Continued boosting does not support {name}.")


def _xgb_logloss(clf: Any, X: Any, y: FloatArray) -> float:
    return _log_loss(y, clf.predict_proba(X)[:, 1])


def _log_loss(y: FloatArray, p: FloatArray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def continue_survival(est: Any, X: Any, y: np.ndarray, random_state: int) -> tuple[Any, int]:
    """Continue boosting the booster of a fitted ``BoostedCoxSurvival`` or
    ``BoostedAFTSurvival`` on ``(X, y)`` (a survival target of the modelled cause).

    As :func:`continue_classifier`: extra rounds by early stopping on a held-out part
    (stratified by event), then the original booster continued on every record.
    Returns the new booster (or the original one and 0).
    """
    import xgboost as xgb

    seed = int(np.random.default_rng(random_state).integers(np.iinfo(np.int32).max))
    params = {**est.booster_params(seed), "eta": LEARNING_RATE}
    if type(est).__name__ == "BoostedAFTSurvival":
        params["aft_loss_distribution"] = est.distribution
        params["aft_loss_distribution_scale"] = float(est.scale)
    fit, val = _split(len(y), y["event"], random_state)
    dall = est._dmatrix(X)
    dfit, dval = dall.slice(fit), dall.slice(val)
    est._set_label(dfit, y[fit])
    est._set_label(dval, y[val])
    if not y["event"][val].any() or not y["event"][fit].any():
        return est.booster_, 0
    old = int(est.booster_.num_boosted_rounds())
    start = float(
        est.booster_.eval(dval, "validation", iteration=old - 1).split(":")[-1]
        if old > 0
        else np.inf
    )
    probe = xgb.train(
        params,
        dfit,
        num_boost_round=MAX_EXTRA_ROUNDS,
        evals=[(dval, "validation")],
        early_stopping_rounds=PATIENCE,
        xgb_model=est.booster_,
        verbose_eval=False,
    )
    extra = int(probe.best_iteration) + 1 - old
    if extra < 1 or float(probe.best_score) >= start:
        return est.booster_, 0
    est._set_label(dall, y)
    booster = xgb.train(params, dall, num_boost_round=extra, xgb_model=est.booster_)
    return booster, extra


def _rows(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]
