"""Evaluation data (outcomes + predictions) and the metric set of each endpoint kind."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from spinerisk.evaluation._bootstrap import MetricSpec

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["METRIC_LABELS", "EvalData", "metric_specs", "subgroup_specs"]

FloatArray = npt.NDArray[np.float64]

#: Display names of the metrics.
METRIC_LABELS: dict[str, str] = {
    "auroc": "AUROC (C-statistic)",
    "auprc": "AUPRC",
    "brier": "Brier score",
    "scaled_brier": "Scaled Brier score",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration-in-the-large (intercept)",
    "oe_ratio": "Observed/expected ratio",
    "ece": "Expected calibration error",
    "harrell_c": "Harrell's C",
    "uno_c": "Uno's C",
    "cause_specific_c": "Cause-specific C",
    "competing_c": "Competing-risks C",
    "td_auc": "Time-dependent AUC",
    "ibs": "Integrated Brier score",
    "net_benefit": "Net benefit",
}


@dataclass(frozen=True)
class EvalData:
    """Outcomes and predicted risks of the evaluated records (or of a resample of them).

    Attributes
    ----------
    kind : {"binary", "survival", "competing"}
    event : ndarray
        Bool outcome (binary, survival) or event codes 0/1/2 (competing).
    time : ndarray or None
        Days to event or censoring.
    risk : ndarray of shape (n, n_horizons)
        Predicted risk at each horizon.
    horizons : tuple of float
    grid_risk : ndarray of shape (n, n_grid) or None
        Predicted risk (1 - survival, or cumulative incidence) on ``grid``, for the
        integrated Brier score of time-to-event endpoints.
    grid : ndarray or None
    ref_time, ref_event : ndarray or None
        Fixed censoring reference (a training cohort): times and event-of-interest
        indicators (Uno's C, time-dependent AUC); None means the data itself.
    ref_any : ndarray or None
        Any-event indicators of the reference (censoring weights of the Brier score and
        calibration at a horizon, where a competing event is not censoring).
    cause : int
        Competing risks: the event code of interest (the endpoint's
        ``event_of_interest``); the other non-zero codes are competing events.
    scores : ndarray of shape (n, n_comparators) or None
        Values of the comparators (existing scores or published calculators), NaN where
        a record has none.
    groups : ndarray or None
        The fold of each record when the risks are cross-validated predictions of several
        models: the calibration slope then has an intercept per fold (see
        :func:`spinerisk.metrics.calibration_slope`); None for the risks of one model.
    cache : dict
        Quantities shared by several metrics of the same resample (censoring weights,
        recalibrated comparator risks); empty in every new resample.
    """

    kind: str
    event: np.ndarray
    time: FloatArray | None
    risk: FloatArray
    horizons: tuple[float, ...]
    grid_risk: FloatArray | None = None
    grid: FloatArray | None = None
    ref_time: FloatArray | None = None
    ref_event: np.ndarray | None = None
    ref_any: np.ndarray | None = None
    cause: int = 1
    scores: FloatArray | None = None
    groups: np.ndarray | None = None
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.event)

    def take(self, rows: npt.NDArray[np.intp]) -> EvalData:
        """The records at ``rows`` (a resample); the censoring reference is kept."""
        return replace(
            self,
            event=self.event[rows],
            time=None if self.time is None else self.time[rows],
            risk=self.risk[rows],
            grid_risk=None if self.grid_risk is None else self.grid_risk[rows],
            scores=None if self.scores is None else self.scores[rows],
            groups=None if self.groups is None else self.groups[rows],
            cache={},
        )

    @property
    def follow_up(self) -> FloatArray:
        """Days to event or censoring (time-to-event endpoints only)."""
        if self.time is None:
            raise ValueError(f"A {self.kind} outcome has no follow-up times.")
        return self.time

    @property
    def estimable_horizons(self) -> tuple[float, ...]:
        """Horizons some record is followed beyond (all of a binary outcome's): at a
        later one no risk by it can be observed, so its metrics and curves are n/a."""
        if self.time is None or not len(self.time):
            return self.horizons
        last = float(np.max(self.time))
        return tuple(h for h in self.horizons if h < last)

    @property
    def occurred(self) -> np.ndarray:
        """Bool: the event of interest occurred (at any time)."""
        return self.event == self.cause if self.kind == "competing" else self.event.astype(bool)

    def reference(self) -> tuple[FloatArray, np.ndarray]:
        """Time and event-of-interest indicator of the censoring reference."""
        if self.ref_time is not None and self.ref_event is not None:
            return self.ref_time, self.ref_event
        return self.follow_up, self.occurred

    def censoring_reference(self) -> tuple[FloatArray, np.ndarray]:
        """Time and any-event indicator of the cohort the censoring distribution is
        estimated on (a competing event ends follow-up without censoring)."""
        if self.ref_time is not None and self.ref_any is not None:
            return self.ref_time, self.ref_any
        return self.follow_up, np.asarray(self.event != 0, dtype=bool)

    def horizon_outcome(self, horizon: float) -> tuple[np.ndarray, FloatArray]:
        """Event of interest by ``horizon`` and its IPCW weight per record (cached)."""
        key = ("ipcw", horizon)
        if key not in self.cache:
            from spinerisk.metrics._ipcw import censoring_survival, horizon_outcome

            if "censoring" not in self.cache:
                self.cache["censoring"] = censoring_survival(*self.censoring_reference())
            codes = np.asarray(self.event, dtype=np.int64)
            cause = self.cause if self.kind == "competing" else 1
            self.cache[key] = horizon_outcome(
                self.follow_up, codes, horizon, cause, self.cache["censoring"]
            )
        return self.cache[key]  # type: ignore[no-any-return]

    def at(self, horizon: float) -> FloatArray:
        """Predicted risk at one of ``horizons``."""
        return self.risk[:, self.horizons.index(horizon)]


def _binary_specs(h: float) -> list[MetricSpec]:
    import spinerisk.metrics as m

    def on(fn: Any) -> Any:
        return lambda d: fn(d.event, d.risk[:, 0])

    return [
        MetricSpec("auroc", h, on(m.roc_auc)),
        MetricSpec("auprc", h, on(m.pr_auc)),
        MetricSpec("brier", h, on(m.brier_score)),
        MetricSpec("scaled_brier", h, on(m.scaled_brier_score)),
        MetricSpec(
            "calibration_slope",
            h,
            lambda d: m.calibration_slope(d.event, d.risk[:, 0], groups=d.groups),
        ),
        MetricSpec("calibration_intercept", h, on(m.calibration_intercept)),
        MetricSpec("oe_ratio", h, on(m.observed_expected_ratio)),
        MetricSpec("ece", h, on(m.expected_calibration_error)),
    ]


def _td_auc(d: EvalData, h: float) -> float:
    import spinerisk.metrics as m

    ref_time, ref_event = d.reference()
    return float(
        m.time_dependent_auc(ref_time, ref_event, d.follow_up, d.occurred, d.at(h), [h])[0]
    )


def _competing_c(d: EvalData, h: float) -> float:
    import spinerisk.metrics as m

    return float(m.competing_c(d.follow_up, d.event, d.at(h), cause=d.cause, horizon=h))


def _oe(d: EvalData, h: float) -> float:
    import spinerisk.metrics as m

    cause = d.cause if d.kind == "competing" else None
    return float(m.observed_expected_at_horizon(d.follow_up, d.event, d.at(h), h, cause=cause))


def _brier_at(d: EvalData, h: float) -> float:
    y, w = d.horizon_outcome(h)
    return float(np.mean(w * np.square(y - d.at(h))))


def _slope_at(d: EvalData, h: float, *, intercept_only: bool = False) -> float:
    from spinerisk.metrics._ipcw import weighted_intercept, weighted_slope

    y, w = d.horizon_outcome(h)
    if intercept_only:
        return weighted_intercept(y, d.at(h), w)
    return weighted_slope(y, d.at(h), w, d.groups)


def _ibs(d: EvalData) -> float:
    if d.grid_risk is None or d.grid is None:
        raise ValueError("No predicted risks on a time grid.")
    scores = [
        np.mean(w * np.square(y - d.grid_risk[:, k]))
        for k, (y, w) in enumerate(d.horizon_outcome(float(t)) for t in d.grid)
    ]
    return float(np.trapezoid(scores, d.grid) / (d.grid[-1] - d.grid[0]))


def _survival_specs(kind: str, horizons: Sequence[float], with_ibs: bool) -> list[MetricSpec]:
    import spinerisk.metrics as m

    last = horizons[-1]
    specs: list[MetricSpec] = []
    if kind == "survival":

        def uno(d: EvalData) -> float:
            ref_time, ref_event = d.reference()
            return m.uno_c(ref_time, ref_event, d.follow_up, d.occurred, d.at(last), tau=last)

        specs += [
            MetricSpec(
                "harrell_c", None, lambda d: m.harrell_c(d.follow_up, d.occurred, d.at(last))
            ),
            MetricSpec("uno_c", last, uno),
        ]
    else:
        specs.append(
            MetricSpec(
                "cause_specific_c",
                None,
                lambda d: m.cause_specific_c(d.follow_up, d.event, d.at(last), cause=d.cause),
            )
        )
        specs += [MetricSpec("competing_c", h, partial(_competing_c, h=h)) for h in horizons]
    specs += [MetricSpec("td_auc", h, partial(_td_auc, h=h)) for h in horizons]
    specs += [MetricSpec("brier", h, partial(_brier_at, h=h)) for h in horizons]
    if with_ibs:
        specs.append(MetricSpec("ibs", last, _ibs))
    specs += [MetricSpec("calibration_slope", h, partial(_slope_at, h=h)) for h in horizons]
    specs += [
        MetricSpec("calibration_intercept", h, partial(_slope_at, h=h, intercept_only=True))
        for h in horizons
    ]
    specs += [MetricSpec("oe_ratio", h, partial(_oe, h=h)) for h in horizons]
    return specs


def metric_specs(
    kind: str, horizons: Sequence[float], *, with_ibs: bool = True
) -> list[MetricSpec]:
    """The metrics reported for an endpoint kind.

    Binary: AUROC, AUPRC, Brier, scaled Brier, calibration slope and intercept, O/E and
    ECE. Survival: Harrell's C (risk at the last horizon), Uno's C truncated at the last
    horizon; competing: cause-specific C and competing-risks C at each horizon. Both
    time-to-event kinds then have, at each horizon, the time-dependent AUC (competing
    events censored), the IPCW Brier score, calibration slope and intercept (competing
    events are known non-events) and O/E (Kaplan-Meier or Aalen-Johansen observed), and
    the integrated Brier score over the follow-up grid. Binned and smoothed calibration
    curves are in the report's calibration tables.
    """
    if kind == "binary":
        return _binary_specs(horizons[0])
    return _survival_specs(kind, horizons, with_ibs)


def subgroup_specs(kind: str, horizon: float) -> list[MetricSpec]:
    """Discrimination and calibration metrics of the subgroup table."""
    import spinerisk.metrics as m

    if kind == "binary":
        return [
            MetricSpec("auroc", horizon, lambda d: m.roc_auc(d.event, d.risk[:, 0])),
            MetricSpec(
                "oe_ratio", horizon, lambda d: m.observed_expected_ratio(d.event, d.risk[:, 0])
            ),
            MetricSpec(
                "calibration_intercept",
                horizon,
                lambda d: m.calibration_intercept(d.event, d.risk[:, 0]),
            ),
        ]
    if kind == "survival":
        disc = MetricSpec(
            "harrell_c", None, lambda d: m.harrell_c(d.follow_up, d.occurred, d.at(horizon))
        )
    else:
        disc = MetricSpec(
            "competing_c",
            horizon,
            lambda d: m.competing_c(
                d.follow_up, d.event, d.at(horizon), cause=d.cause, horizon=horizon
            ),
        )
    return [disc, MetricSpec("oe_ratio", horizon, lambda d: _oe(d, horizon))]


def predict_values(
    model: RiskModel,
    data: pd.DataFrame,
    horizons: tuple[float, ...],
    *,
    grid: np.ndarray | None = None,
    ref: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[EvalData, int]:
    """Outcomes and predicted risks of eligible records, and the number flagged."""
    from spinerisk.exceptions import DataQualityWarning

    ep = model.endpoint_
    target = ep.target(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        pred = model._predict(data, horizons, in_days=True)
        grid_risk = None
        if ep.kind != "binary" and grid is not None and grid.size:
            on_grid = model._predict(data, grid, in_days=True)
            # the risk columns come first, one per horizon (names can repeat on a grid)
            grid_risk = on_grid.iloc[:, : len(grid)].to_numpy(dtype=float)
    flagged = int((pred["warnings"] != "").sum())
    risk = pred.iloc[:, : len(horizons)].to_numpy(dtype=float)
    if ep.kind == "binary":
        evd = EvalData("binary", target.astype(bool), None, risk, horizons)
    else:
        event = target["event"]
        event = event.astype(bool) if ep.kind == "survival" else event.astype(int)
        evd = EvalData(
            ep.kind,
            event,
            target["time"].astype(float),
            risk,
            horizons,
            grid_risk=grid_risk,
            grid=grid if grid_risk is not None else None,
            ref_time=None if ref is None else ref[0],
            ref_event=None if ref is None else ref[1],
            ref_any=None if ref is None else ref[2],
            cause=ep.event_of_interest,
        )
    return evd, flagged
