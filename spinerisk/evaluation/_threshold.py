"""Choosing a decision threshold on a model's risk: by net benefit at a stated exchange
rate, or to reach a target sensitivity or specificity, with bootstrap CIs."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from spinerisk.evaluation._bootstrap import MetricSpec, bootstrap_metrics
from spinerisk.evaluation._data import EvalData

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["ThresholdChoice", "choose_threshold", "operating_characteristics"]

_METHODS = ("net_benefit", "sensitivity", "specificity")
_LABELS = {
    "threshold": "Risk threshold (treat at or above)",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "Positive predictive value",
    "npv": "Negative predictive value",
    "proportion_treated": "Proportion above the threshold",
    "net_benefit": "Net benefit",
    "net_benefit_treat_all": "Net benefit of treating everyone",
    "net_benefit_at_target": "Net benefit of treating at risk >= the exchange rate",
}


def _observed(evd: EvalData, rows: np.ndarray, h: float) -> float:
    """Observed risk of the event of interest by ``h`` among ``rows`` (proportion,
    1 - Kaplan-Meier or Aalen-Johansen)."""
    from spinerisk.metrics._ipcw import aalen_johansen_at

    if rows.size == 0:
        return float("nan")
    if evd.kind == "binary":
        return float(np.mean(np.asarray(evd.event, dtype=bool)[rows]))
    codes = np.asarray(evd.event, dtype=np.int64)[rows]
    cause = evd.cause if evd.kind == "competing" else 1
    return aalen_johansen_at(evd.follow_up[rows], codes, cause, h)


def operating_characteristics(
    evd: EvalData, h: float, cutoffs: np.ndarray, exchange: float | None = None
) -> pd.DataFrame:
    """Sensitivity, specificity, predictive values, proportion treated and net benefit of
    treating records whose risk at ``h`` is at or above each cut-off.

    With ``pi`` the proportion at or above the cut-off, ``r1`` and ``r0`` the observed
    risks above and below it and ``r`` the overall observed risk (proportions for binary
    outcomes, Kaplan-Meier or Aalen-Johansen at ``h`` otherwise):
    sensitivity ``r1 pi / r``, specificity ``(1 - r0)(1 - pi) / (1 - r)``, PPV ``r1``,
    NPV ``1 - r0``, net benefit ``r1 pi - (1 - r1) pi w`` with ``w = p / (1 - p)`` for
    the exchange rate ``p`` (the cut-off itself when ``exchange`` is None).
    """
    risk = evd.at(h)
    order = np.argsort(-risk, kind="stable")
    overall = _observed(evd, np.arange(len(evd)), h)
    n = len(risk)
    counts = n - np.searchsorted(np.sort(risk), cutoffs, side="left")
    rows = []
    cache: dict[int, tuple[float, float]] = {}
    for c, k in zip(cutoffs, counts, strict=True):
        k = int(k)
        if k not in cache:
            cache[k] = (_observed(evd, order[:k], h), _observed(evd, order[k:], h))
        r1, r0 = cache[k]
        pi = k / n
        p = float(c) if exchange is None else exchange
        w = p / (1.0 - p)
        r1z = 0.0 if k == 0 else r1
        rows.append(
            {
                "threshold": float(c),
                "sensitivity": r1z * pi / overall if overall > 0 else np.nan,
                "specificity": (1.0 - (0.0 if k == n else r0)) * (1.0 - pi) / (1.0 - overall)
                if overall < 1
                else np.nan,
                "ppv": r1 if k > 0 else np.nan,
                "npv": 1.0 - r0 if k < n else np.nan,
                "proportion_treated": pi,
                "net_benefit": r1z * pi - (1.0 - r1z) * pi * w,
                "net_benefit_treat_all": overall - (1.0 - overall) * w,
            }
        )
    return pd.DataFrame(rows)


def _candidates(risk: np.ndarray, kind: str) -> np.ndarray:
    n_points = 401 if kind == "binary" else 101
    grid = np.quantile(risk, np.linspace(0.0, 1.0, n_points))
    return np.unique(np.clip(grid, 1e-6, 1 - 1e-6))


def _choose(evd: EvalData, h: float, method: str, target: float) -> float:
    """The cut-off the rule picks on ``evd``."""
    cutoffs = _candidates(evd.at(h), evd.kind)
    exchange = target if method == "net_benefit" else None
    table = operating_characteristics(evd, h, cutoffs, exchange)
    if method == "net_benefit":
        nb = table["net_benefit"].to_numpy(float)
        best = np.nanmax(nb)
        tied = np.flatnonzero(np.isclose(nb, best, rtol=0, atol=1e-12))
        # among equal net benefits, the cut-off nearest the exchange rate
        return float(cutoffs[tied[np.argmin(np.abs(cutoffs[tied] - target))]])
    if method == "sensitivity":
        ok = np.flatnonzero(table["sensitivity"].to_numpy(float) >= target)
        if not ok.size:
            raise ValueError(f"No cut-off reaches sensitivity {target:g}.")
        return float(cutoffs[ok.max()])  # the most specific cut-off that reaches it
    ok = np.flatnonzero(table["specificity"].to_numpy(float) >= target)
    if not ok.size:
        raise ValueError(f"No cut-off reaches specificity {target:g}.")
    return float(cutoffs[ok.min()])  # the most sensitive cut-off that reaches it


@dataclass(eq=False)
class ThresholdChoice:
    """A decision threshold on a model's risk and what it does, with bootstrap CIs.

    Built by :func:`choose_threshold`.

    Attributes
    ----------
    method : {"net_benefit", "sensitivity", "specificity"}
    target : float
        Exchange rate (net benefit) or the sensitivity / specificity aimed at.
    horizon : float
        Days (:meth:`to_dict` gives it in :attr:`time_unit` too).
    threshold : float
        Treat records whose risk is at or above it.
    table : DataFrame
        ``metric, label, estimate, lower, upper``: the threshold (its interval from
        choosing again on every resample) and, at the chosen threshold, sensitivity,
        specificity, predictive values, proportion treated and net benefit (intervals
        with the threshold held fixed).
    n, n_events : int
    settings : dict
    notes : list of str
    time_unit : str
        The endpoint's time unit, the one ``choose_threshold(horizon=...)`` takes.
    """

    method: str
    target: float
    horizon: float
    threshold: float
    table: pd.DataFrame
    n: int
    n_events: int
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    time_unit: str = "days"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the choice.

        Returns
        -------
        dict
            ``horizon`` in ``time_unit``, ``horizon_days`` in days (both None for a
            binary outcome recorded without a horizon).
        """
        from spinerisk.endpoints import days_in_unit, stated_horizon
        from spinerisk.evaluation._format import json_tree as _json_tree

        days = stated_horizon(self.horizon)
        return {
            "method": self.method,
            "target": self.target,
            "time_unit": self.time_unit,
            "horizon": None if days is None else days_in_unit(days, self.time_unit),
            "horizon_days": days,
            "threshold": self.threshold,
            "table": _json_tree(self.table),
            "n": self.n,
            "n_events": self.n_events,
            "settings": _json_tree(self.settings),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        row = self.table.set_index("metric").loc["threshold"]
        return (
            f"ThresholdChoice(method={self.method!r}, target={self.target:g}, "
            f"threshold={self.threshold:.3f} [{row['lower']:.3f}, {row['upper']:.3f}])"
        )


def _check_fraction(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or not 0 < float(value) < 1
    ):
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}.")
    return float(value)


def choose_threshold(
    model: RiskModel,
    cohort: pd.DataFrame,
    *,
    method: Literal["net_benefit", "sensitivity", "specificity"] = "net_benefit",
    target: float,
    horizon: float | None = None,
    n_bootstrap: int = 200,
    ci: float = 0.95,
    random_state: int = 0,
    n_jobs: int = 1,
) -> ThresholdChoice:
    """Choose a risk threshold for a decision, with bootstrap confidence intervals.

    ``method="net_benefit"``: ``target`` is the exchange rate, the risk at which a
    clinician is indifferent between acting and not (0.2 means one true case found is
    worth four unnecessary interventions). The chosen threshold is the cut-off on the
    model's risk that maximises net benefit at that exchange rate; for a perfectly
    calibrated model it is the exchange rate itself, for a miscalibrated one it moves.
    ``method="sensitivity"`` (``"specificity"``): the highest (lowest) cut-off whose
    sensitivity (specificity) reaches ``target``. Time-to-event endpoints use the
    observed risk by ``horizon`` (Kaplan-Meier, or Aalen-Johansen with competing
    events) above and below the cut-off.

    Every resample of patients chooses the threshold again: its percentile interval is
    the threshold's CI. The operating characteristics are reported at the threshold
    chosen on all records, with intervals from the same resamples.

    Parameters
    ----------
    model : RiskModel
    cohort : DataFrame
        Records with the outcome (ideally not the development records).
    method : {"net_benefit", "sensitivity", "specificity"}, default="net_benefit"
    target : float
        Exchange rate or target sensitivity / specificity, strictly inside (0, 1).
    horizon : float or None, default=None
        In the endpoint's ``time_unit`` (days for the built-in endpoints); None means
        the model's first horizon.
    n_bootstrap : int, default=200
    ci : float, default=0.95
    random_state : int, default=0
    n_jobs : int, default=1

    Returns
    -------
    ThresholdChoice

    See Also
    --------
    spinerisk.evaluation.evaluate : decision curves over all thresholds.

    Notes
    -----
    A threshold chosen and assessed on the same records is optimistic; choose it on a
    validation cohort and, where possible, confirm it on another. On the synthetic
    cohort the numbers describe a simulation.

    References
    ----------
    Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating
    prediction models. Med Decis Making 2006;26:565-74.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import choose_threshold
    >>> cohort = sr.make_spine_cohort(800, seed=0)
    >>> model = sr.RiskModel("collapse", backend="linear").fit(cohort)
    >>> choice = choose_threshold(model, cohort, method="sensitivity", target=0.9,
    ...                           n_bootstrap=20)
    >>> sens = choice.table.set_index("metric").loc["sensitivity", "estimate"]
    >>> bool(sens >= 0.9)
    True
    >>> choose_threshold(model, cohort, method="youden", target=0.5)
    Traceback (most recent call last):
    ...
    ValueError: method must be one of 'net_benefit', 'sensitivity', 'specificity'; got method='youden'.
    """  # noqa: E501
    from spinerisk.endpoints import check_horizon
    from spinerisk.evaluation._checks import check_int, check_model
    from spinerisk.evaluation._data import predict_values

    check_model(model)
    if method not in _METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, _METHODS))}; got method={method!r}."
        )
    target = _check_fraction("target", target)
    _check_fraction("ci", ci)
    check_int("n_bootstrap", n_bootstrap, 1)
    ep = model.endpoint_
    h = check_horizon(ep, model.horizons_, horizon)
    data = ep.labelled(cohort, model.schema_).data
    if len(data) == 0:
        raise ValueError(f"No records in the cohort are eligible for the {ep.name} endpoint.")
    evd, _ = predict_values(model, data, (h,))
    if len(np.unique(evd.occurred)) < 2:
        raise ValueError("Choosing a threshold needs records with and without the event.")
    chosen = _choose(evd, h, method, target)
    exchange = target if method == "net_benefit" else None
    names = list(operating_characteristics(evd, h, np.array([chosen]), exchange).columns[1:])

    def at_chosen(d: EvalData, name: str) -> float:
        key = ("oc", chosen)
        if key not in d.cache:
            d.cache[key] = operating_characteristics(d, h, np.array([chosen]), exchange)
        return float(d.cache[key][name].iloc[0])

    specs = [MetricSpec("threshold", h, lambda d: _choose(d, h, method, target))]
    specs += [MetricSpec(n, h, partial(at_chosen, name=n)) for n in names]
    if method == "net_benefit":

        def standard(d: EvalData) -> float:
            table = operating_characteristics(d, h, np.array([target]), target)
            return float(table["net_benefit"].iloc[0])

        specs.append(MetricSpec("net_benefit_at_target", h, standard))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = bootstrap_metrics(
            specs, evd, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state, n_jobs=n_jobs
        )
    table = pd.DataFrame(
        {
            "metric": [s.name for s in specs],
            "label": [_LABELS[s.name] for s in specs],
            "estimate": boot["estimate"],
            "lower": boot["lower"],
            "upper": boot["upper"],
        }
    )
    notes = []
    if method != "net_benefit":
        notes.append(
            "Net benefit here weighs false positives by the chosen threshold's own odds "
            "(its implied exchange rate)."
        )
    notes.append(
        "A threshold chosen and assessed on the same records is optimistic; confirm it on "
        "other records."
    )
    return ThresholdChoice(
        method=method,
        target=target,
        horizon=h,
        threshold=chosen,
        table=table,
        n=len(evd),
        n_events=int(evd.occurred.sum()),
        settings={
            "n_bootstrap": n_bootstrap,
            "ci": float(ci),
            "random_state": random_state,
            "synthetic": bool(cohort.attrs.get("synthetic", False)),
        },
        notes=notes,
        time_unit=ep.time_unit,
    )
