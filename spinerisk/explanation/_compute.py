"""Per-backend explanation of a fitted RiskModel: margin contributions, risk and points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.pipeline import Pipeline

from spinerisk.explanation._native import (
    booster_contributions,
    classifier_contributions,
    design_reference,
    linear_contributions,
)
from spinerisk.features import ClinicalFeatures, field_of_feature

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

FloatArray = np.ndarray
_EPS = 1e-6
_STACK = (
    "stacked default: the weighted sum of each candidate's exact contributions (linear "
    "terms: coefficient x standardised value; boosters: native tree SHAP), with the "
    "combination's weights"
)


@dataclass
class _Parts:
    """What a backend returns to :func:`spinerisk.explanation`."""

    features: pd.DataFrame  # per model-matrix column, margin scale
    base_value: float
    output: FloatArray  # model margin, computed independently of the contributions
    scale: str
    risk: FloatArray
    base_risk: float
    points: pd.DataFrame  # per clinical field, probability scale (0-1)
    note: str


def group_by_field(phi: pd.DataFrame, schema: Any = None) -> pd.DataFrame:
    """Sum model-matrix columns into clinical fields (:func:`field_of_feature` with the
    model's schema: its derived features go to the field they declare).

    One-hot columns (``t2_pattern=confined_high``), missing indicators
    (``hu_l1_missing``) and spline terms add up into their field; derived features
    go to their source field (``region``/``tlj`` to ``level``, ``age_band`` to
    ``age_years``, ``osteoporosis`` to ``tscore_min``).
    """
    fields = [field_of_feature(str(c), schema) for c in phi.columns]
    order = list(dict.fromkeys(fields))
    codes = np.array([order.index(f) for f in fields])
    # one contiguous row per column; each field sums its columns in column order
    values = np.ascontiguousarray(phi.to_numpy(dtype=np.float64).T)
    out = np.zeros((len(order), len(phi)))
    for j, code in enumerate(codes):
        out[code] += values[j]
    return pd.DataFrame(out.T, index=phi.index, columns=order)


def secant(
    g: Any,
    out: FloatArray,
    base: FloatArray | float,
    *,
    at_out: FloatArray | None = None,
    at_base: FloatArray | None = None,
) -> FloatArray:
    """Slope of ``g`` between ``base`` and ``out`` (the derivative where they meet).

    For a monotone ``g`` this is bounded by the largest derivative on the way, so
    points never blow up when contributions cancel.

    ``at_out``/``at_base``: ``g(out)``/``g(base)`` when the caller has them already.
    The derivative is taken only for the records where ``out`` meets ``base``; a ``g``
    that needs the other records' state for it has a ``rows(values, rows)`` method.
    ``g`` acts record by record, so the values are the same as over every record.
    """
    out = np.asarray(out, dtype=np.float64)
    base = np.broadcast_to(np.asarray(base, dtype=np.float64), out.shape)
    gap = out - base
    near = np.abs(gap) < _EPS
    safe = np.where(near, 1.0, gap)
    at_out = g(out) if at_out is None else at_out
    at_base = g(base) if at_base is None else at_base
    slope = (at_out - at_base) / safe
    if not near.any():
        return slope
    rows = np.flatnonzero(near)
    local = getattr(g, "rows", lambda values, _rows: g(values))
    deriv = (local(base[rows] + _EPS, rows) - local(base[rows] - _EPS, rows)) / (2 * _EPS)
    slope = slope.copy()
    slope[rows] = deriv
    return slope


def _fold_points(fields: pd.DataFrame, slope: FloatArray) -> pd.DataFrame:
    return fields.mul(slope, axis=0)


# -- binary -----------------------------------------------------------------------------
def binary(model: RiskModel, checked: pd.DataFrame, background: pd.DataFrame | None) -> _Parts:
    """Logistic (exact linear) or calibrated boosted ensemble (exact tree SHAP)."""
    from sklearn.calibration import CalibratedClassifierCV

    est = model.estimator_
    if not isinstance(est, CalibratedClassifierCV) and hasattr(est[-1], "contributions"):
        # the stacked default: the weighted sum of its candidates' exact contributions
        risk = np.asarray(est.predict_proba(checked)[:, 1], dtype=np.float64)
        phi, base, output = est[-1].contributions(est[:-1].transform(checked))
        points = _fold_points(group_by_field(phi, model.schema_), secant(expit, output, base))
        return _Parts(phi, base, output, "log-odds", risk, float(expit(base)), points, _STACK)
    if not isinstance(est, CalibratedClassifierCV):
        risk = np.asarray(est.predict_proba(checked)[:, 1], dtype=np.float64)
        transform = est[:-1].transform
        X = transform(checked)
        lr = est[-1]
        coef = np.ravel(lr.coef_).astype(np.float64)
        ref_bg = None if background is None else transform(background)
        ref = design_reference(model, X.columns, ref_bg, lambda frame: frame)
        phi, ref_lp = linear_contributions(X, coef, ref)
        base = float(np.ravel(lr.intercept_)[0]) + ref_lp
        output = np.asarray(est.decision_function(checked), dtype=np.float64)
        slope = secant(expit, output, base)
        points = _fold_points(group_by_field(phi, model.schema_), slope)
        note = "exact linear attribution: coefficient x (value - training mean)"
        return _Parts(phi, base, output, "log-odds", risk, float(expit(base)), points, note)

    if est.method != "sigmoid":
        raise ValueError(
            f"Explanations need sigmoid calibration (a straight line on the log-odds); "
            f"this model uses method={est.method!r}."
        )
    feats, bases, outputs, points, base_risks = [], [], [], [], []
    matrices = fold_matrices([cc.estimator for cc in est.calibrated_classifiers_], checked)
    for cc, X in zip(est.calibrated_classifiers_, matrices, strict=True):
        pipe = cc.estimator
        clf = pipe[-1]
        if not hasattr(clf, "decision_function"):
            raise ValueError(
                "This boosted model was calibrated on probabilities (it was fitted before "
                "EarlyStoppingClassifier.decision_function existed), so its calibrated "
                "log-odds are not additive in tree SHAP values. Refit the model."
            )
        a, b = float(cc.calibrators[0].a_), float(cc.calibrators[0].b_)
        phi, bias, margin = classifier_contributions(clf, X)  # margin: booster's own
        phi_cal = -a * phi  # calibrated log-odds = -(a * margin + b)
        base_k = float(-(a * bias[0] + b))
        out_k = -(a * margin + b)
        feats.append(phi_cal)
        bases.append(base_k)
        outputs.append(out_k)
        base_risks.append(float(expit(base_k)))
        points.append(
            _fold_points(group_by_field(phi_cal, model.schema_), secant(expit, out_k, base_k))
        )
    k = len(feats)
    # the ensemble's probability: mean of the fold sigmoids (CalibratedClassifierCV)
    risk = np.mean([expit(o) for o in outputs], axis=0)
    features = _mean_frames(feats)
    points_mean = _mean_frames(points)
    note = (
        f"exact tree SHAP of each of the {k} calibrated fold boosters, averaged: the "
        "explained output is the mean calibrated log-odds over folds"
    )
    return _Parts(
        features,
        float(np.mean(bases)),
        np.mean(outputs, axis=0),
        "log-odds",
        risk,
        float(np.mean(base_risks)),
        points_mean,
        note,
    )


def fold_matrices(pipes: list[Any], checked: pd.DataFrame) -> list[pd.DataFrame]:
    """Each fold pipeline's model matrix of ``checked`` (``pipe[:-1].transform``).

    A fold's features are a pipeline whose first step builds the clinical features
    (:class:`ClinicalFeatures`) and whose later steps are learned on the fold (missing
    indicators, encodings). The clinical step learns nothing but which fields are
    present, so folds whose clinical steps are equal (same class, parameters and
    fields) share its output, computed once; the later steps run per fold. Any other
    layout is transformed fold by fold.
    """
    out: list[pd.DataFrame] = []
    done: list[tuple[Any, pd.DataFrame]] = []  # (clinical step, its output)
    for pipe in pipes:
        features = pipe[:-1]
        inner = features[0] if len(features) == 1 else None
        first = inner[0] if isinstance(inner, Pipeline) and len(inner) > 1 else None
        if not isinstance(inner, Pipeline) or not isinstance(first, ClinicalFeatures):
            out.append(features.transform(checked))
            continue
        shared = next((frame for step, frame in done if _same_clinical(step, first)), None)
        if shared is None:
            shared = first.transform(checked)
            done.append((first, shared))
        out.append(inner[1:].transform(shared))
    return out


def _same_clinical(a: ClinicalFeatures, b: ClinicalFeatures) -> bool:
    """Whether two fitted clinical steps give the same output for any records."""
    return (
        type(a) is type(b)
        and a.get_params(deep=False) == b.get_params(deep=False)
        and list(a.fields_) == list(b.fields_)
        and list(a.feature_names_out_) == list(b.feature_names_out_)
        and getattr(a, "_sklearn_output_config", None) == getattr(b, "_sklearn_output_config", None)
    )


def _mean_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean of the folds' frames, a column missing from a fold counting as 0.

    Summed in fold order, as ``sum(frames)`` does; with the same columns and rows in
    every fold (the usual case) on the arrays, without pandas aligning each addition.
    """
    first = frames[0]
    if all(f.columns.equals(first.columns) and f.index.equals(first.index) for f in frames):
        values: Any = 0
        for f in frames:
            values = values + f.to_numpy(dtype=np.float64)
        return pd.DataFrame(values / len(frames), index=first.index, columns=first.columns)
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    total = sum(f.reindex(columns=columns, fill_value=0.0) for f in frames)
    return total / len(frames)  # type: ignore[operator]


# -- survival ---------------------------------------------------------------------------
def _cox_like(
    model: RiskModel, est: Any, Xf: pd.DataFrame, background: pd.DataFrame | None
) -> tuple[pd.DataFrame, float, FloatArray, str]:
    """Contributions, base and independent margin of one Cox-type or AFT estimator.

    Cox margins are centred log hazard ratios (``est.predict``); AFT margins are the
    expected log time ``mu(x)`` (``-est.predict``).
    """
    from spinerisk.models._survival import BoostedAFTSurvival, BoostedCoxSurvival, CoxPHSurvival

    if hasattr(est, "contributions"):  # the stacked default (a Cox-type combination)
        phi, base, output = est.contributions(Xf)
        return phi, base, np.asarray(output, dtype=np.float64), "log-hazard"
    if isinstance(est, CoxPHSurvival):
        ref_bg = None if background is None else model.features_.transform(background)
        ref = design_reference(model, Xf.columns, ref_bg, lambda frame: frame)
        phi, ref_lp = linear_contributions(Xf, np.asarray(est.coef_, dtype=np.float64), ref)
        output = np.asarray(est.predict(Xf), dtype=np.float64)
        return phi, ref_lp - float(est.lp_mean_), output, "log-hazard"
    if isinstance(est, BoostedCoxSurvival | BoostedAFTSurvival):
        dm = est._dmatrix(Xf)
        cols = [str(c) for c in Xf.columns]
        phi, bias, _ = booster_contributions(est.booster_, dm, cols, Xf.index, Xf, margin=False)
        if isinstance(est, BoostedCoxSurvival):
            output = np.asarray(est.predict(Xf), dtype=np.float64)  # margin - lp_mean_
            return phi, float(bias[0] - est.lp_mean_), output, "log-hazard"
        output = -np.asarray(est.predict(Xf), dtype=np.float64)  # mu(x), log days
        return phi, float(bias[0]), output, "log-time"
    raise ValueError(f"Explanations do not support {type(est).__name__} models.")


def _cox_risk_fn(est: Any, horizon: float) -> Any:
    """Risk at ``horizon`` as a function of the estimator's margin."""
    from spinerisk.models._survival import BoostedAFTSurvival, log_survival
    from spinerisk.models._survival_base import step_at

    if isinstance(est, BoostedAFTSurvival):
        scale, dist = float(est.scale_), est.distribution

        def aft(mu: FloatArray) -> FloatArray:
            z = (np.log(horizon) - np.asarray(mu)) / scale
            return -np.expm1(log_survival(z, dist))

        return aft
    h0 = float(step_at(est.unique_times_, est.baseline_cumulative_hazard_, np.array([horizon]))[0])

    def cox(lp: FloatArray) -> FloatArray:
        return -np.expm1(-h0 * np.exp(np.asarray(lp, dtype=np.float64)))

    return cox


def survival(
    model: RiskModel, checked: pd.DataFrame, horizon: float, background: pd.DataFrame | None
) -> _Parts:
    """Cox (linear or boosted) on the log hazard, AFT on the log time."""
    est = model.estimator_
    Xf = model.features_.transform(checked)
    risk = np.asarray(est.predict_risk(Xf, [horizon])[:, 0], dtype=np.float64)
    phi, base, output, scale = _cox_like(model, est, Xf, background)
    g = _cox_risk_fn(est, horizon)
    points = _fold_points(group_by_field(phi, model.schema_), secant(g, output, base))
    kind = (
        _STACK
        if hasattr(est, "contributions")
        else "native tree SHAP (XGBoost pred_contribs)"
        if hasattr(est, "booster_")
        else "exact linear attribution: coefficient x (value - training mean)"
    )
    return _Parts(phi, base, output, scale, risk, float(g(np.array(base))), points, kind)


# -- competing risks --------------------------------------------------------------------
#: Cells (records x event times) of one block of the CIF computation: blocks keep the
#: arrays small (a 20,000-record explanation built 2 x 20,000 x grid arrays) and run on
#: every core. Records are computed independently, so blocks give the same values.
_CIF_BLOCK_CELLS = 1 << 18


def _cif(cif_model: Any, lps: list[FloatArray], horizon: float, target: int) -> FloatArray:
    """CIF of cause ``target`` at ``horizon`` for given per-cause log hazard ratios.

    Same Aalen-Johansen product limit as :class:`CauseSpecificCIF`, with each
    cause-specific cumulative hazard ``H0_k(t) * exp(lp_k)``; computed in blocks of
    records (:data:`_CIF_BLOCK_CELLS`), in threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    from spinerisk._threads import n_threads

    grid = cif_model.unique_times_[cif_model.unique_times_ <= horizon]
    n = len(lps[0])
    if grid.size == 0:
        return np.zeros(n)
    steps = _hazard_steps(cif_model, grid)
    size = max(1, _CIF_BLOCK_CELLS // grid.size)
    blocks = [slice(start, start + size) for start in range(0, n, size)]
    out = np.empty(n)

    def one(block: slice) -> None:
        out[block] = _cif_block([np.asarray(lp)[block] for lp in lps], steps, grid.size, target)

    if len(blocks) == 1:
        one(blocks[0])
    else:
        with ThreadPoolExecutor(min(n_threads(), len(blocks))) as pool:
            list(pool.map(one, blocks))
    return out


def _hazard_steps(cif_model: Any, grid: FloatArray) -> list[FloatArray | None]:
    """Each cause's baseline cumulative hazard increments on ``grid`` (None: no events
    of that cause by the horizon)."""
    from spinerisk.models._survival_base import step_at

    steps: list[FloatArray | None] = []
    for est in cif_model.estimators_:
        own = est.unique_times_[est.unique_times_ <= grid[-1]]
        if own.size == 0:
            steps.append(None)
            continue
        h0 = step_at(own, est.baseline_cumulative_hazard_[: own.size], grid)
        steps.append(np.maximum(np.diff(h0, prepend=0.0), 0.0))
    return steps


def _cif_block(
    lps: list[FloatArray], steps: list[FloatArray | None], size: int, target: int
) -> FloatArray:
    """:func:`_cif` for one block of records."""
    n = len(lps[0])
    inc = np.empty((len(lps), n, size))
    for k, (lp, step) in enumerate(zip(lps, steps, strict=True)):
        if step is None:
            inc[k] = 0.0
            continue
        inc[k] = np.exp(lp)[:, None] * step[None, :]
    total = inc.sum(axis=0)
    over = total > 1.0
    if over.any():
        inc[:, over] /= total[over]
        total = np.minimum(total, 1.0)
    s = np.cumprod(1.0 - total, axis=1)
    s_before = np.concatenate([np.ones((n, 1)), s[:, :-1]], axis=1)
    return (s_before * inc[target]).sum(axis=1)


class _CifOfCause:
    """The target cause's CIF as a function of cause ``k``'s log hazard, the other
    causes' log hazards held at ``current`` (copied: the caller moves on)."""

    def __init__(
        self, cif_model: Any, current: list[FloatArray], k: int, horizon: float, target: int
    ) -> None:
        self.cif_model, self.current, self.k = cif_model, list(current), k
        self.horizon, self.target = horizon, target

    def __call__(self, lp: FloatArray) -> FloatArray:
        return self.rows(lp, slice(None))

    def rows(self, lp: FloatArray, rows: Any) -> FloatArray:
        """The CIF of the records ``rows`` with cause ``k`` at ``lp``."""
        lps = [c[rows] for c in self.current]
        lps[self.k] = np.broadcast_to(np.asarray(lp, dtype=np.float64), lps[self.k].shape)
        return _cif(self.cif_model, lps, self.horizon, self.target)


def competing(
    model: RiskModel, checked: pd.DataFrame, horizon: float, background: pd.DataFrame | None
) -> _Parts:
    """Fracture cause-specific log hazard, converted to points of the fracture CIF.

    The CIF moves from the all-average reference to the record along a path: first
    each competing cause's log hazard moves to the record's own value (its fields'
    contributions to that cause, scaled by the secant slope of the CIF along that
    step), then the cause of interest's. The points of a field are the sum over steps,
    so a field that raises the risk of death lowers the fracture CIF.
    """
    est = model.estimator_
    Xf = model.features_.transform(checked)
    risk = np.asarray(est.predict_risk(Xf, [horizon])[:, 0], dtype=np.float64)
    target = int(np.flatnonzero(est.causes_ == est.event_of_interest)[0])
    per_cause = [_cox_like(model, e, Xf, background) for e in est.estimators_]
    if any(sc != "log-hazard" for *_, sc in per_cause):
        raise ValueError("Competing-risk explanations need Cox-type cause models.")
    n = len(Xf)
    current = [np.full(n, base) for _, base, _, _ in per_cause]
    base_risk = float(_cif(est, [c[:1] for c in current], horizon, target)[0])
    # every record at every cause's reference: the reference's CIF, record by record
    at_base = np.full(n, base_risk)
    points: pd.DataFrame | None = None
    order = [k for k in range(len(per_cause)) if k != target] + [target]
    for k in order:
        phi, base, output, _ = per_cause[k]
        g = _CifOfCause(est, current, k, horizon, target)
        at_out = g(output)
        slope = secant(g, output, np.full(n, base), at_out=at_out, at_base=at_base)
        step = _fold_points(group_by_field(phi, model.schema_), slope)
        points = step if points is None else points.add(step, fill_value=0.0)
        current[k] = output
        at_base = at_out  # the next cause starts where this one ended
    phi, base, output, _ = per_cause[target]
    assert points is not None
    cause_model = est.estimators_[target]
    kind = (
        "stacked (weighted sum of exact linear terms and native tree SHAP)"
        if hasattr(cause_model, "contributions")
        else "native tree SHAP"
        if hasattr(cause_model, "booster_")
        else "exact linear"
    )
    note = f"{kind} attribution of the cause-specific model of {model.endpoint_.name}"
    return _Parts(phi, base, output, "log-hazard", risk, base_risk, points, note)
