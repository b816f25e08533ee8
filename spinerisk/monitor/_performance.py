"""Calibration and discrimination per calendar period on newly labelled records."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["PERFORMANCE_COLUMNS", "performance_over_time"]

#: Columns of :func:`performance_over_time`.
PERFORMANCE_COLUMNS = [
    "period",
    "horizon_days",
    "n",
    "n_excluded",
    "events",
    "observed",
    "expected",
    "oe",
    "oe_low",
    "oe_high",
    "citl",
    "citl_low",
    "citl_high",
    "slope",
    "slope_low",
    "slope_high",
    "discrimination_metric",
    "discrimination",
    "discrimination_low",
    "discrimination_high",
]
_FREQ = {"quarter": "Q", "month": "M"}
_METRICS = ("oe", "citl", "slope", "discrimination")
#: Risks are clipped to this distance from 0 and 1 before the logit.
_EPS = 1e-6


def performance_over_time(
    model: RiskModel,
    labelled_records: pd.DataFrame,
    *,
    period: Literal["quarter", "month"] = "quarter",
    date_field: str = "index_date",
    n_bootstrap: int = 200,
    random_state: int = 0,
    censoring: Literal["ipcw", "exclude"] = "ipcw",
    min_records: int = 10,
) -> pd.DataFrame:
    """Calibration and discrimination of a model per period of newly labelled records.

    Parameters
    ----------
    model : RiskModel
        A fitted model (anything with ``endpoint_``, ``horizons_`` and
        ``predict_risk``).
    labelled_records : DataFrame
        Records with the baseline fields, the endpoint's outcome columns and
        ``date_field``. They are validated; records for which the outcome is not
        defined or not observed (see :meth:`Endpoint.eligible`) are left out.
    period : {"quarter", "month"}, default="quarter"
        Calendar period of ``date_field`` (the index fracture date) that groups records.
    date_field : str, default="index_date"
        Date column that defines the period.
    n_bootstrap : int, default=200
        Bootstrap resamples (within each period) for the percentile 95% intervals; 0
        gives no intervals.
    random_state : int, default=0
        Seed of the bootstrap.
    censoring : {"ipcw", "exclude"}, default="ipcw"
        Time-to-event endpoints only: how patients censored before a horizon are handled.
        They never count as having or not having the event. ``"ipcw"`` reweights the
        patients who do count by the inverse probability of remaining uncensored
        (Kaplan-Meier of the censoring times within the period), which removes the bias
        their exclusion causes; ``"exclude"`` drops them without reweighting (biased
        upwards when censoring is common: shown for comparison).
    min_records : int, default=10
        Periods with fewer records counting at a horizon get missing metrics.

    Returns
    -------
    DataFrame
        One row per period and horizon (plus ``period="all"``), with columns
        :data:`PERFORMANCE_COLUMNS`: ``n`` records counting and ``n_excluded`` not
        counting (censored at or before the horizon, or in a period none of whose
        records is followed beyond it), ``events``, ``observed`` risk,
        ``expected`` (mean predicted risk), ``oe`` (observed / expected),
        calibration-in-the-large ``citl`` (intercept of a logistic recalibration with
        the logit of the predicted risk as offset; 0 is ideal), calibration ``slope``
        (1 is ideal), and ``discrimination`` (``"auroc"`` for binary endpoints; for
        time-to-event endpoints ``"auc_t"``, the IPCW cumulative/dynamic AUC at the
        horizon, the concordance of the risk with the event status at the horizon),
        each with ``_low``/``_high`` bootstrap 95% limits.

    Raises
    ------
    ValueError
        If a parameter is malformed, ``date_field`` is missing or has missing dates in
        eligible records, or no record is eligible.

    See Also
    --------
    spinerisk.monitor.monitoring_report

    Notes
    -----
    For a time-to-event endpoint at horizon ``h`` (days) a patient counts when the
    outcome is known at ``h``, as in :func:`spinerisk.evaluate`: followed beyond ``h``
    (no event by ``h``), or an event of any cause at or before ``h``. A competing event
    (death) before ``h`` counts as "no fracture by ``h``", as the cumulative incidence
    function requires. Patients censored at or before ``h``, including recent patients
    not yet followed for ``h`` days, do not count. With ``censoring="ipcw"`` the others
    are weighted by ``1 / G(t)``, where ``G`` is the Kaplan-Meier estimate of remaining
    uncensored within the period and ``t`` the event time (or ``h`` for those still
    event-free), the weights of the evaluation's Brier score, so the observed risk
    estimates the cumulative incidence of the whole period's population (this assumes
    censoring independent of the outcome). A period none of whose patients is followed
    beyond ``h`` has observed no risk by ``h``: its metrics at ``h`` are missing and its
    patients do not count in the ``"all"`` row. The weights are held fixed in the
    bootstrap.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.monitor import performance_over_time
    >>> dev = sr.make_spine_cohort(1000, seed=0)  # SYNTHETIC
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(dev)
    >>> new = sr.make_spine_cohort(1000, seed=1, intercepts=dev.attrs["intercepts"])
    >>> perf = performance_over_time(model, new, period="quarter", n_bootstrap=20)
    >>> overall = perf.set_index("period").loc["all"]
    >>> bool(0.7 < overall["oe"] < 1.3), overall["discrimination_metric"]
    (True, 'auroc')
    """
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.exceptions import DataQualityWarning

    check_is_fitted(model, "estimator_")
    if period not in _FREQ:
        raise ValueError(f"period must be 'quarter' or 'month'; got period={period!r}.")
    if censoring not in ("ipcw", "exclude"):
        raise ValueError(f"censoring must be 'ipcw' or 'exclude'; got censoring={censoring!r}.")
    for name, value, low in (("n_bootstrap", n_bootstrap, 0), ("min_records", min_records, 2)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}.")
    if not isinstance(labelled_records, pd.DataFrame):
        raise TypeError(
            f"labelled_records must be a DataFrame; got {type(labelled_records).__name__}."
        )
    if date_field not in labelled_records.columns:
        raise ValueError(_no_date_message(model, date_field))
    ep = model.endpoint_
    labelled = ep.labelled(labelled_records, model.schema_)
    data = labelled.data
    if not len(data):
        raise ValueError(f"No record in labelled_records has the {ep.name} outcome observed.")
    dates = _dates(labelled, labelled_records, date_field, model)
    with warnings.catch_warnings():  # unusual inputs are reported by drift()
        warnings.simplefilter("ignore", DataQualityWarning)
        predicted = model.predict_risk(data)
    periods = dates.dt.to_period(_FREQ[period]).astype(str).to_numpy()
    target = labelled.target
    rng = np.random.default_rng(random_state)
    rows = []
    for h in model.horizons_:
        col = ep.risk_column(h)
        p = np.clip(predicted[col].to_numpy(dtype=float), _EPS, 1 - _EPS)
        for label in [*sorted(set(periods)), "all"]:
            in_period = np.ones(len(p), bool) if label == "all" else periods == label
            if ep.kind == "binary":
                y, w, counts = target[in_period].astype(float), np.ones(in_period.sum()), None
            else:
                y, w, counts = _horizon_status(target, in_period, periods, h, censoring, ep)
            keep = w > 0 if counts is not None else np.ones(len(y), bool)
            row = _metrics_row(p[in_period][keep], y[keep], w[keep], n_bootstrap, rng, min_records)
            row.update(
                period=label,
                horizon_days=float(h),
                n_excluded=int((~keep).sum()),
                discrimination_metric="auroc" if ep.kind == "binary" else "auc_t",
            )
            rows.append(row)
    out = pd.DataFrame(rows)[PERFORMANCE_COLUMNS]
    out.attrs["synthetic"] = bool(labelled_records.attrs.get("synthetic", False))
    out.attrs["endpoint"] = ep.name
    out.attrs["censoring"] = censoring
    return out


def _dates(labelled: Any, records: pd.DataFrame, date_field: str, model: RiskModel) -> pd.Series:
    """The dates of the eligible records (``labelled.data``); a missing or unreadable one
    is an error naming the caller's rows and their ids."""
    data = labelled.data
    dates = pd.to_datetime(data[date_field], errors="coerce")
    if dates.isna().any():
        id_field = model.id_field_
        bad = np.flatnonzero(dates.isna().to_numpy())
        positions = np.flatnonzero(labelled.mask)[bad]  # rows of the caller's frame
        shown = ", ".join(
            f"row {r} ({id_field}={data[id_field].iloc[b]!r}, {date_field}="
            f"{records[date_field].iloc[r]!r})"
            for r, b in zip(positions[:5], bad[:5], strict=True)
        )
        raise ValueError(
            f"{date_field} is missing or not a date in {len(bad)} eligible record(s): "
            f"{shown}; expected a date for every record."
        )
    return dates


def _no_date_message(model: Any, date_field: str) -> str:
    """Why labelled records without ``date_field`` cannot be grouped, and the fix."""
    dates = [f.name for f in model.schema_.fields if f.dtype == "date"]
    head = (
        f"labelled_records has no date_field={date_field!r} column: performance over time "
        "groups the labelled records by a date field of the model's schema. "
    )
    if date_field in dates:
        return head + f"Give the labelled records their {date_field} column."
    if dates:
        return head + f"The schema's date fields: {', '.join(dates)}; name one as date_field."
    return head + (
        'The schema has no date field: declare one (dtype = "date", role = "admin", such '
        "as the index date) in the schema, train again, and give the labelled records "
        "that column."
    )


def _horizon_status(
    target: np.ndarray,
    in_period: np.ndarray,
    periods: np.ndarray,
    h: float,
    censoring: str,
    ep: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event-by-``h`` status and weights of one period's records (weight 0: not counted).

    The outcome by ``h`` and its weight are those of the evaluation
    (:func:`spinerisk.metrics._ipcw.horizon_outcome`, with the censoring distribution of
    each record's own period): ``"ipcw"`` weights, or 1 for every record whose outcome
    by ``h`` is known (``"exclude"``). A period none of whose records is followed beyond
    ``h`` observes no risk by ``h``: its records do not count (in the ``"all"`` row
    neither), as :func:`spinerisk.evaluate` gives n/a there.
    """
    from spinerisk.metrics._ipcw import censoring_survival, horizon_outcome

    time = target["time"].astype(float)
    event = target["event"].astype(int)
    interest = 1 if ep.kind == "survival" else ep.event_of_interest
    y = np.zeros(len(time), dtype=float)
    w = np.zeros(len(time))
    for label in set(periods[in_period]):
        idx = np.flatnonzero(periods == label)
        t, codes = time[idx], event[idx]
        if not (t > h).any():
            continue
        survival = (
            censoring_survival(t, codes != 0)
            if censoring == "ipcw"
            else lambda x: np.ones(np.shape(x))  # "exclude": weight 1 where the outcome is known
        )
        y[idx], w[idx] = horizon_outcome(t, codes, h, interest, survival)
    return y[in_period], w[in_period], w[in_period] > 0


def _metrics_row(
    p: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
    min_records: int,
) -> dict[str, Any]:
    n = len(p)
    row: dict[str, Any] = {"n": int(n), "events": int(y.sum())}
    if n < min_records or w.sum() <= 0:
        row.update(observed=math.nan, expected=math.nan)
        row.update({f"{m}{s}": math.nan for m in _METRICS for s in ("", "_low", "_high")})
        return row
    row["observed"] = float(np.average(y, weights=w))
    row["expected"] = float(np.average(p, weights=w))
    # row 0: the data; rows 1..B: bootstrap resamples as multiplicities of each record
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap)
    weights = np.vstack([w, w * counts])
    values = calibration_metrics(p, y, weights)
    for m in _METRICS:
        row[m] = float(values[m][0])
        draws = values[m][1:]
        ok = np.isfinite(draws)
        if n_bootstrap and ok.sum() >= max(10, n_bootstrap // 2):
            low, high = np.percentile(draws[ok], [2.5, 97.5])
        else:
            low = high = math.nan
        row[f"{m}_low"], row[f"{m}_high"] = float(low), float(high)
    return row


def calibration_metrics(p: np.ndarray, y: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """O/E, calibration intercept and slope and AUROC for many weight vectors at once.

    Parameters
    ----------
    p : ndarray of shape (n,)
        Predicted risks in (0, 1).
    y : ndarray of shape (n,)
        Outcome, 0 or 1.
    weights : ndarray of shape (n_sets, n)
        One row of non-negative record weights per set (bootstrap multiplicities times
        IPCW weights, say).

    Returns
    -------
    dict of ndarray of shape (n_sets,)
        ``oe``, ``citl``, ``slope`` and ``discrimination`` (AUROC); NaN where a set has
        no event or no non-event.

    Notes
    -----
    Written with numpy rather than by refitting scikit-learn or statsmodels models per
    bootstrap resample: the two logistic recalibration models have one and two
    parameters, solved here by Newton's method for all resamples at once, and the
    weighted AUROC is the Mann-Whitney statistic with ties counted half. The tests check
    them against :func:`sklearn.metrics.roc_auc_score`, scikit-learn's unpenalised
    logistic regression and a statsmodels GLM with offset.

    Examples
    --------
    >>> import numpy as np
    >>> from spinerisk.monitor._performance import calibration_metrics
    >>> p = np.array([0.1, 0.2, 0.3, 0.4])
    >>> y = np.array([0, 1, 0, 1])
    >>> out = calibration_metrics(p, y, np.ones((1, 4)))
    >>> round(float(out["oe"][0]), 3), float(out["discrimination"][0])
    (2.0, 0.75)
    """
    from scipy.special import expit, logit

    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    y = np.asarray(y, dtype=float)
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    lp = logit(p)
    total, observed, expected = W.sum(axis=1), W @ y, W @ p
    usable = (observed > 0) & (observed < total)
    with np.errstate(divide="ignore", invalid="ignore"):
        oe = np.where(expected > 0, observed / expected, np.nan)
    # calibration-in-the-large: logit P(y) = a + lp
    a = np.zeros(len(W))
    for _ in range(50):
        s = expit(a[:, None] + lp)
        grad = observed - (W * s).sum(axis=1)
        hess = (W * s * (1 - s)).sum(axis=1)
        step = np.clip(np.divide(grad, hess, out=np.zeros_like(grad), where=hess > 0), -5, 5)
        a += step
        if np.all(np.abs(step) < 1e-10):
            break
    citl = np.where(usable & (np.abs(step) < 1e-6), a, np.nan)
    # calibration slope: logit P(y) = a + b lp
    a, b = np.zeros(len(W)), np.ones(len(W))
    wy, wylp = observed, W @ (y * lp)
    for _ in range(100):
        s = expit(a[:, None] + b[:, None] * lp)
        v = W * s * (1 - s)
        g0, g1 = wy - (W * s).sum(axis=1), wylp - (W * s) @ lp
        h00, h01, h11 = v.sum(axis=1), v @ lp, v @ (lp * lp)
        det = h00 * h11 - h01 * h01
        ok = det > 1e-12
        d0 = np.divide(h11 * g0 - h01 * g1, det, out=np.zeros_like(det), where=ok)
        d1 = np.divide(h00 * g1 - h01 * g0, det, out=np.zeros_like(det), where=ok)
        d0, d1 = np.clip(d0, -5, 5), np.clip(d1, -5, 5)
        a, b = a + d0, b + d1
        if np.all((np.abs(d0) < 1e-10) & (np.abs(d1) < 1e-10)):
            break
    slope = np.where(usable & (np.abs(d1) < 1e-6), b, np.nan)
    return {"oe": oe, "citl": citl, "slope": slope, "discrimination": _auc(p, y, W, usable)}


def _auc(p: np.ndarray, y: np.ndarray, W: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Weighted AUROC per row of ``W`` (ties between a case and a control count half)."""
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    Ws = W[:, order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    cases = np.add.reduceat(Ws * ys, starts, axis=1)
    controls = np.add.reduceat(Ws * (1 - ys), starts, axis=1)
    below = np.cumsum(controls, axis=1) - controls
    num = (cases * (below + 0.5 * controls)).sum(axis=1)
    den = cases.sum(axis=1) * controls.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable & (den > 0), num / den, np.nan)
