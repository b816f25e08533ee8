"""The default's horizon scale (issue 14, point 2): one factor on a time-to-event
stack's weights, fitted out of fold, that calibrates its risks by the endpoint's
horizons when hazards are not proportional, and changes no ranking. SYNTHETIC data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import Endpoint
from spinerisk.metrics import calibration_slope
from spinerisk.models._stack import HORIZON_SCALE_BOUNDS, StackedCoxSurvival
from spinerisk.schema import FieldSpec, Schema
from spinerisk.targets import make_survival_target

HORIZON = 180.0
CANDIDATES = ("linear", "spline")


def fading_cohort(n: int, seed: int, fade: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SYNTHETIC: hazard 0.004/day times exp(x1 - 0.5 x2) for 30 days, then with that
    log hazard ratio multiplied by ``fade`` (1: proportional hazards; below 1 the effects
    fade, above 1 they grow); follow-up ends at 365 days."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    lp = X[:, 0] - 0.5 * X[:, 1]
    early = 0.004 * np.exp(lp)
    late = 0.004 * np.exp(fade * lp)
    e = rng.exponential(size=n)
    t = np.where(e < 30 * early, e / early, 30 + (e - 30 * early) / late)
    return X, np.minimum(t, 365.0), t <= 365.0


def fit(X: np.ndarray, t: np.ndarray, d: np.ndarray, **kw: object) -> StackedCoxSurvival:
    y = make_survival_target(d, t)
    return StackedCoxSurvival(candidates=CANDIDATES, cv=5, n_jobs=1, **kw).fit(X, y)


@pytest.mark.parametrize(
    ("change", "horizon", "direction"),
    [(2.0, 30.0, "down"), (0.3, 60.0, "up")],
    ids=["effects-that-grow", "effects-that-fade"],
)
def test_non_proportional_hazards_are_scaled_and_the_risks_by_the_horizon_calibrated(
    change: float, horizon: float, direction: str
) -> None:
    X, t, d = fading_cohort(3000, 0, fade=change)
    plain = fit(X, t, d)
    scaled = fit(X, t, d, horizons=(horizon,))
    assert plain.horizon_scale_ == 1.0 and plain.horizon_scale_times_ == ()
    assert scaled.horizon_scale_times_ == (horizon,)
    b = scaled.horizon_scale_
    assert HORIZON_SCALE_BOUNDS[0] <= b <= HORIZON_SCALE_BOUNDS[1]
    assert b < 0.85 if direction == "down" else b > 1.15
    Xn, tn, dn = fading_cohort(40000, 1, fade=change)  # every record followed to 365 days
    outcome = (tn <= horizon) & dn
    slopes = [
        calibration_slope(outcome, np.clip(m.predict_risk(Xn, horizon)[:, 0], 1e-9, 1 - 1e-9))
        for m in (plain, scaled)
    ]
    assert abs(slopes[0] - 1) > 0.3  # without the scale: too extreme, or too moderate
    assert abs(slopes[1] - 1) < 0.1
    # one factor on every weight: the score is the plain score times it, rankings equal
    np.testing.assert_allclose(scaled.predict(Xn), b * plain.predict(Xn), rtol=1e-9, atol=1e-9)
    assert scaled.oof_discrimination_ == plain.oof_discrimination_
    weights = {k: v * b for k, v in plain.weights_.items()}
    assert scaled.weights_ == pytest.approx(weights, rel=1e-12)


def test_proportional_hazards_keep_a_scale_near_one() -> None:
    X, t, d = fading_cohort(3000, 2, fade=1.0)
    model = fit(X, t, d, horizons=(90.0, HORIZON))
    assert model.horizon_scale_times_ == (90.0, HORIZON)
    assert abs(model.horizon_scale_ - 1) < 0.08


def test_horizons_past_follow_up_or_without_events_are_not_used() -> None:
    X, t, d = fading_cohort(600, 3, fade=0.3)
    model = fit(X, t, d, horizons=(400.0, 0.001))
    assert model.horizon_scale_ == 1.0 and model.horizon_scale_times_ == ()


@pytest.mark.parametrize("bad", [(), (0.0,), (-3.0,), (np.nan,), ("a",), (True,), 5j])
def test_bad_horizons_are_refused_with_the_value(bad: object) -> None:
    X, t, d = fading_cohort(200, 4, fade=1.0)
    with pytest.raises(ValueError, match="horizons must be None or a non-empty sequence"):
        fit(X, t, d, horizons=bad)


def months_default() -> tuple[sr.RiskModel, pd.DataFrame]:
    """A default fitted on a SYNTHETIC endpoint recorded in months (horizon 6 months)."""
    X, t, d = fading_cohort(800, 5, fade=0.3)
    records = pd.DataFrame(
        {"rid": np.arange(len(t)), "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}
        | {"event": d, "months": t / (365.25 / 12)}
    )
    schema = Schema(
        (
            FieldSpec("rid", "int", "Record id.", role="id", unique=True, nullable=False),
            *(FieldSpec(c, "float", f"Predictor {c}.") for c in "abc"),
            FieldSpec("event", "bool", "Died.", role="outcome", nullable=False),
            FieldSpec("months", "float", "Follow-up.", role="outcome", nullable=False),
        ),
        name="fading",
    )
    endpoint = Endpoint(
        name="death",
        kind="survival",
        description="SYNTHETIC death.",
        event="event",
        time="months",
        horizons=(6 * 365.25 / 12,),  # days; shown in the endpoint's unit
        time_unit="months",
        eligible_treatments=None,
        include_treatment=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return sr.RiskModel(endpoint, schema=schema, cv=3).fit(records), records


def test_the_default_scales_at_its_endpoints_horizons_and_says_so_in_their_unit() -> None:
    model, _ = months_default()
    stack = model.estimator_
    assert stack.horizon_scale_times_ == pytest.approx((6.0 * 365.25 / 12,))
    assert f"one scale, {stack.horizon_scale_:.3f}" in model.selection_reason_
    assert "risks by 6 months are calibrated" in model.selection_reason_


def test_a_default_saved_before_the_horizon_scale_loads_scores_and_refits(tmp_path) -> None:
    """A bundle written before this change has a stack without ``horizons``,
    ``horizon_scale_`` and ``horizon_scale_times_``: it loads with its weights as they
    were (scale 1), scores the same, prints and refits."""
    from sklearn.base import clone

    model, records = months_default()
    for name in ("horizons", "horizon_scale_", "horizon_scale_times_"):
        del model.estimator_.__dict__[name]  # as a model saved before the horizon scale
    model.save(tmp_path / "old.spinerisk")
    back = sr.load(tmp_path / "old.spinerisk")
    stack = back.estimator_
    assert stack.horizons is None and stack.horizon_scale_ == 1.0
    assert stack.horizon_scale_times_ == ()
    pd.testing.assert_frame_equal(back.predict_risk(records[:20]), model.predict_risk(records[:20]))
    assert "StackedCoxSurvival" in repr(stack)
    assert clone(stack).get_params()["horizons"] is None
    unfitted = StackedCoxSurvival()
    del unfitted.__dict__["horizons"]
    unfitted.__setstate__(dict(unfitted.__dict__))
    assert unfitted.horizons is None and not hasattr(unfitted, "horizon_scale_")
