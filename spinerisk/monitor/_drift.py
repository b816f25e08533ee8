"""Drift of a batch of new records against the training reference.

Effect size first, test second: a field is flagged when its population stability index
(PSI) reaches a threshold *and* a test of equal distributions rejects after Holm's
correction across fields. With thousands of records every test rejects for trivial
differences, so the test alone never raises an alert; with a few dozen records the PSI is
noisy, so it never raises one alone either.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["ALERT_LEVELS", "DriftReport", "drift"]

#: Alert levels, from least to most severe.
ALERT_LEVELS: tuple[str, ...] = ("none", "watch", "alert")

#: Floor on bin shares in the PSI, so an empty bin gives a large but finite term.
PSI_FLOOR = 1e-4

_FIELD_COLUMNS = [
    "kind",
    "n_reference",
    "n_new",
    "missing_reference",
    "missing_new",
    "psi",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "flag",
]
_PRED_COLUMNS = [
    "mean_reference",
    "mean_new",
    "mean_shift",
    "psi",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "flag",
]


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`drift`.

    Attributes
    ----------
    table : DataFrame
        One row per predictor field (index ``field``): ``kind``, ``n_reference``,
        ``n_new``, ``missing_reference``, ``missing_new`` (shares), ``psi``, ``test``
        (``"ks"`` or ``"chi2"``), ``statistic``, ``p_value``, ``p_adjusted`` (Holm) and
        ``flag`` (``"none"``, ``"watch"`` or ``"alert"``).
    prediction_shift : DataFrame or None
        One row per ``risk_<days>d`` column: ``mean_reference``, ``mean_new``,
        ``mean_shift``, ``psi``, ``test``, ``statistic``, ``p_value``, ``p_adjusted`` and
        ``flag``. None when only a reference (no model) was given.
    flagged_share : float
        Share of new records with at least one input warning.
    flagged_share_reference : float or None
        The chance level: the leave-one-out share of training records the checks would
        flag (see :func:`build_reference`).
    alert : {"none", "watch", "alert"}
        The most severe level among fields, predictions and the flagged share.
    reasons : list of str
        Why the alert level was reached (empty when ``"none"``).
    n_records, n_rejected, n_out_of_scope : int
        Records compared; records that failed validation; records outside the model's
        intended population (treatments the endpoint is not defined for), left out.
    thresholds : dict
        The thresholds used.
    synthetic : bool
        Whether the new records are labelled synthetic, or the reference comes from
        synthetic training records.
    prediction_bins : dict
        Per ``risk_<days>d`` column: ``edges`` (the reference deciles of predicted
        risk), ``reference`` and ``new`` (share of records per bin), for plots.
    """

    table: pd.DataFrame
    prediction_shift: pd.DataFrame | None
    flagged_share: float
    flagged_share_reference: float | None
    alert: str
    reasons: list[str] = field(default_factory=list)
    n_records: int = 0
    n_rejected: int = 0
    n_out_of_scope: int = 0
    thresholds: dict[str, Any] = field(default_factory=dict)
    synthetic: bool = False
    prediction_bins: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary (no numpy types; missing numbers as None).

        Returns
        -------
        dict
        """
        return {
            "alert": self.alert,
            "reasons": list(self.reasons),
            "synthetic": bool(self.synthetic),
            "n_records": int(self.n_records),
            "n_rejected": int(self.n_rejected),
            "n_out_of_scope": int(self.n_out_of_scope),
            "flagged_share": _plain(self.flagged_share),
            "flagged_share_reference": _plain(self.flagged_share_reference),
            "thresholds": {k: _plain(v) for k, v in self.thresholds.items()},
            "fields": _records(self.table),
            "prediction_shift": None
            if self.prediction_shift is None
            else _records(self.prediction_shift),
        }

    def to_markdown(self) -> str:
        """Markdown summary: alert, reasons, flagged fields and the prediction shift.

        Returns
        -------
        str
        """
        lines = []
        if self.synthetic:
            lines += ["**SYNTHETIC DATA: not real patients, not clinically validated.**", ""]
        lines += [f"**Drift alert: {self.alert}** ({self.n_records} records)", ""]
        lines += [f"- {r}" for r in self.reasons] or ["- no field or prediction shifted"]
        lines += ["", _markdown_table(self.table.reset_index())]
        if self.prediction_shift is not None:
            lines += [
                "",
                "Predicted risk:",
                "",
                _markdown_table(self.prediction_shift.reset_index()),
            ]
        return "\n".join(lines) + "\n"


def drift(
    model_or_reference: RiskModel | dict[str, Any],
    new_records: pd.DataFrame,
    *,
    psi_thresholds: tuple[float, float] = (0.1, 0.25),
    alpha: float = 0.01,
    flagged_thresholds: tuple[float, float] = (0.05, 0.15),
    rejected_thresholds: tuple[float, float] = (0.05, 0.15),
    rarely_missing_below: float | None = None,
    in_scope_only: bool = True,
) -> DriftReport:
    """Compare a batch of new records with the training reference.

    Parameters
    ----------
    model_or_reference : RiskModel or dict
        A fitted model with ``reference_`` (predictions are then compared too), or a
        reference from :func:`build_reference` (inputs only).
    new_records : DataFrame
        New records with the schema's baseline fields; outcome columns are not needed.
        They are validated; records that fail are left out and counted.
    psi_thresholds : (float, float), default=(0.1, 0.25)
        PSI at which a field or a prediction horizon reaches ``"watch"`` and ``"alert"``
        (the customary 0.1 / 0.25 rule).
    alpha : float, default=0.01
        Family-wise significance level of the tests, Holm-corrected across fields (and
        separately across prediction horizons).
    flagged_thresholds : (float, float), default=(0.05, 0.15)
        Excess share of records with an input warning, over the chance level estimated
        on the training records (``reference["flagged_share"]``), at which the batch
        reaches ``"watch"`` and ``"alert"``.
    rejected_thresholds : (float, float), default=(0.05, 0.15)
        Share of new records that fail validation at which the batch reaches
        ``"watch"`` and ``"alert"``: invalid values are often the first sign of a data
        pipeline change, and they never reach the per-field comparison.
    rarely_missing_below : float or None, default=None
        Passed to :func:`input_warnings`. None means the threshold the reference's
        chance level (``flagged_share``) was computed with (``reference
        ["rarely_missing_below"]``, 0.01 by default); another value is refused, because
        the flagged share and its chance level must use the same threshold (build the
        reference with ``build_reference(..., rarely_missing_below=...)`` instead).
    in_scope_only : bool, default=True
        Leave out records with a treatment the endpoint is not defined for (nonunion is
        not defined after cement augmentation); they are counted in ``n_out_of_scope``.

    Returns
    -------
    DriftReport

    Raises
    ------
    ValueError
        If no reference is available, a threshold is malformed, or no record is left.

    See Also
    --------
    build_reference, input_warnings, monitoring_report

    Notes
    -----
    **PSI** is the symmetrised Kullback-Leibler divergence
    :math:`\\sum_b (p_b - q_b) \\ln(p_b / q_b)` between the new (``p``) and reference
    (``q``) shares of each bin, computed with :func:`scipy.special.rel_entr`. Numeric
    fields use the training deciles as bins (closed on the right) plus a bin for missing
    values; categorical fields use their codes plus missing. Shares are floored at
    :data:`PSI_FLOOR`.

    **Tests**: numeric fields use the two-sample Kolmogorov-Smirnov test
    (:func:`scipy.stats.ks_2samp`, asymptotic p-value) of the observed values against
    the reference subsample, combined (Bonferroni, factor 2) with a chi-squared test of the missing
    share; ties (integer fields) make it conservative. Categorical fields use the
    chi-squared test of homogeneity (:func:`scipy.stats.chi2_contingency`) on the code
    counts, missing included. Holm's step-down correction across fields controls the
    family-wise error rate (written here in a few lines: neither scipy nor scikit-learn
    provides it and statsmodels is not a core dependency).

    **Levels**: a field or horizon is ``"alert"`` when PSI >= the upper threshold and the
    adjusted p-value < ``alpha``, ``"watch"`` when PSI >= the lower threshold and the
    adjusted p-value < ``alpha``. The batch takes the most severe level among fields,
    prediction horizons and the flagged share.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.monitor import build_reference, drift
    >>> dev = sr.make_spine_cohort(600, seed=0)  # SYNTHETIC
    >>> model = sr.RiskModel(endpoint="future_fracture", backend="linear").fit(dev)
    >>> model.reference_ = build_reference(model, dev)
    >>> same = drift(model, sr.make_spine_cohort(600, seed=1))
    >>> same.alert
    'none'
    >>> shifted = drift(model, sr.make_spine_cohort(600, seed=1, hu_offset=40))
    >>> shifted.alert, shifted.table.loc["hu_l1", "flag"]
    ('alert', 'alert')
    """
    from spinerisk.reference import input_warnings

    lo, hi = _pair("psi_thresholds", psi_thresholds)
    f_lo, f_hi = _pair("flagged_thresholds", flagged_thresholds)
    r_lo, r_hi = _pair("rejected_thresholds", rejected_thresholds)
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a number between 0 and 1; got alpha={alpha!r}.")
    ref, model = _reference_of(model_or_reference)
    rarely_missing_below = _rarely_missing_below(ref, rarely_missing_below)
    if not isinstance(new_records, pd.DataFrame):
        raise TypeError(f"new_records must be a DataFrame; got {type(new_records).__name__}.")
    valid, rejects, n_out = _compared_records(new_records, model, ref, in_scope_only)

    table = _field_table(ref, valid, lo, hi, alpha)
    prediction_shift, bins = _prediction_shift(model, ref, valid, lo, hi, alpha)
    flagged = float(
        (input_warnings(ref, valid, rarely_missing_below=rarely_missing_below) != "").mean()
    )
    base = ref.get("flagged_share")
    thresholds = {
        "psi_watch": lo,
        "psi_alert": hi,
        "alpha": float(alpha),
        "flagged_excess_watch": f_lo,
        "flagged_excess_alert": f_hi,
        "rejected_watch": r_lo,
        "rejected_alert": r_hi,
        "rarely_missing_below": float(rarely_missing_below),
    }
    level, reasons = _alert(
        table,
        prediction_shift,
        flagged,
        base,
        n_rejected=len(rejects),
        n_all=len(valid) + len(rejects) + n_out,
        thresholds=thresholds,
    )
    return DriftReport(
        table=table,
        prediction_shift=prediction_shift,
        flagged_share=flagged,
        flagged_share_reference=base,
        alert=ALERT_LEVELS[level],
        reasons=reasons,
        n_records=int(len(valid)),
        n_rejected=int(len(rejects)),
        n_out_of_scope=int(n_out),
        thresholds=thresholds,
        synthetic=bool(new_records.attrs.get("synthetic", False))
        or bool(ref.get("synthetic", False)),
        prediction_bins=bins,
    )


# -- the steps of drift() -------------------------------------------------------------------
def _reference_of(
    model_or_reference: RiskModel | dict[str, Any],
) -> tuple[dict[str, Any], RiskModel | None]:
    """The training reference, and the model (None when a reference was given): a
    model's reference must be for its endpoint and horizons."""
    from spinerisk.endpoints import same_horizons
    from spinerisk.reference import as_reference

    ref = as_reference(model_or_reference, complete=True)
    model = None if isinstance(model_or_reference, dict) else model_or_reference
    if model is not None and ref.get("endpoint") is not None:
        same = same_horizons(ref.get("horizons", ()), model.horizons_)
        if ref["endpoint"] != model.endpoint_.name or not same:
            raise ValueError(
                f"The training reference is for the {ref['endpoint']!r} endpoint at "
                f"{ref.get('horizons')} days, but the model predicts {model.endpoint_.name!r} "
                f"at {list(model.horizons_)} days; use the reference built for this model."
            )
    return ref, model


def _rarely_missing_below(ref: dict[str, Any], requested: float | None) -> float:
    """The threshold the reference's chance level of flagged records was computed with;
    another one is refused."""
    from spinerisk.reference import RARELY_MISSING_BELOW

    ref_threshold = float(ref.get("rarely_missing_below", RARELY_MISSING_BELOW))
    if requested is None:
        return ref_threshold
    if not np.isclose(requested, ref_threshold):
        raise ValueError(
            f"rarely_missing_below={requested!r} differs from the threshold "
            f"({ref_threshold:g}) the reference's chance level of flagged records was "
            "computed with, so the two shares would not be comparable. Leave it None, or "
            "rebuild the reference with build_reference(model, training_records, "
            f"rarely_missing_below={requested!r})."
        )
    return requested


def _compared_records(
    new_records: pd.DataFrame, model: RiskModel | None, ref: dict[str, Any], in_scope_only: bool
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The valid records to compare, the rejected ones and the number left out of scope."""
    from spinerisk.schema import validate

    schema = None if model is None else model.schema_
    valid, rejects = validate(new_records, schema, on_invalid="split")
    n_out = 0
    if in_scope_only:
        valid, n_out = _in_scope(valid, ref)
    if not len(valid):
        raise ValueError(
            f"No records left to compare: {len(rejects)} failed validation and {n_out} are "
            "outside the model's intended population."
        )
    return valid, rejects, n_out


def _field_table(
    ref: dict[str, Any], valid: pd.DataFrame, lo: float, hi: float, alpha: float
) -> pd.DataFrame:
    """One row per reference field: PSI, test and flag (:data:`_FIELD_COLUMNS`)."""
    rows = {name: _field_row(spec, valid, name) for name, spec in ref["fields"].items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "field"
    table["p_adjusted"] = _holm(table["p_value"].to_numpy(dtype=float))
    table["flag"] = _flags(table, lo, hi, alpha)
    return table[_FIELD_COLUMNS]


def _prediction_shift(
    model: RiskModel | None,
    ref: dict[str, Any],
    valid: pd.DataFrame,
    lo: float,
    hi: float,
    alpha: float,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Shift of the predicted risks per horizon (:data:`_PRED_COLUMNS`) and their bins;
    (None, {}) without a model or without reference predictions."""
    from spinerisk.exceptions import DataQualityWarning

    if model is None or not ref.get("predictions"):
        return None, {}
    with warnings.catch_warnings():  # unusual inputs are counted in flagged_share
        warnings.simplefilter("ignore", DataQualityWarning)
        predicted = model.predict_risk(valid)
    pred_rows, bins = {}, {}
    for col, spec in ref["predictions"].items():
        if col in predicted.columns:
            pred_rows[col], bins[col] = _prediction_row(spec, predicted[col])
    shift = pd.DataFrame.from_dict(pred_rows, orient="index")
    shift.index.name = "prediction"
    shift["p_adjusted"] = _holm(shift["p_value"].to_numpy(float))
    shift["flag"] = _flags(shift, lo, hi, alpha)
    return shift[_PRED_COLUMNS], bins


def _alert(
    table: pd.DataFrame,
    prediction_shift: pd.DataFrame | None,
    flagged: float,
    base: float | None,
    *,
    n_rejected: int,
    n_all: int,
    thresholds: dict[str, Any],
) -> tuple[int, list[str]]:
    """The batch's alert level (an index into :data:`ALERT_LEVELS`) and its reasons: the
    most severe of the fields, the predictions, the flagged and the rejected shares."""
    levels: list[int] = [0]
    reasons: list[str] = []
    for name, row in table.iterrows():
        if row["flag"] != "none":
            levels.append(ALERT_LEVELS.index(row["flag"]))
            reasons.append(
                f"{row['flag']}: {name} shifted (PSI {row['psi']:.3f}, {row['test']} "
                f"p={row['p_adjusted']:.2g} after Holm)"
            )
    if prediction_shift is not None:
        for name, row in prediction_shift.iterrows():
            if row["flag"] != "none":
                levels.append(ALERT_LEVELS.index(row["flag"]))
                reasons.append(
                    f"{row['flag']}: predicted {name} shifted (PSI {row['psi']:.3f}, mean "
                    f"{row['mean_reference']:.3f} -> {row['mean_new']:.3f})"
                )
    excess = flagged - (base or 0.0)
    if excess >= thresholds["flagged_excess_watch"]:
        level = 2 if excess >= thresholds["flagged_excess_alert"] else 1
        levels.append(level)
        reasons.append(
            f"{ALERT_LEVELS[level]}: {flagged:.1%} of records have input warnings "
            f"(chance level from the training records {base or 0.0:.1%})"
        )
    rejected_share = n_rejected / n_all
    if rejected_share >= thresholds["rejected_watch"]:
        level = 2 if rejected_share >= thresholds["rejected_alert"] else 1
        levels.append(level)
        reasons.append(
            f"{ALERT_LEVELS[level]}: {n_rejected} of {n_all} records ({rejected_share:.1%}) "
            "failed validation and were not compared; check the data pipeline"
        )
    return max(levels), reasons


# -- per field ----------------------------------------------------------------------------
def _field_row(spec: dict[str, Any], records: pd.DataFrame, name: str) -> dict[str, Any]:
    present = name in records.columns
    col = records[name] if present else pd.Series(np.nan, index=records.index)
    missing = col.isna().to_numpy(dtype=bool)
    n_ref, n_new = int(spec["n"]), int(len(col))
    row: dict[str, Any] = {
        "kind": spec["kind"],
        "n_reference": n_ref,
        "n_new": n_new,
        "missing_reference": float(spec["missing_rate"]),
        "missing_new": float(missing.mean()),
    }
    if spec["kind"] == "numeric" and spec.get("min") is None:
        # never observed in training: compare the observed/missing split only
        ref_counts = np.array([0, spec["n_missing"]], dtype=float)
        new_counts = np.array([(~missing).sum(), missing.sum()], dtype=float)
        stat, p = _chi2(ref_counts, new_counts)
        row.update(psi=_psi(new_counts, ref_counts), test="chi2", statistic=stat, p_value=p)
    elif spec["kind"] == "numeric":
        x = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()[~missing]
        ref_counts = np.append(spec["bin_counts"], spec["n_missing"]).astype(float)
        edges = np.asarray(spec["bin_edges"], dtype=float)
        new_counts = np.bincount(
            np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1
        ).astype(float)
        new_counts = np.append(new_counts, missing.sum())
        stat, p = _ks_with_missing(x, np.asarray(spec["sample"], dtype=float), spec, missing)
        row.update(psi=_psi(new_counts, ref_counts), test="ks", statistic=stat, p_value=p)
    else:
        codes = list(spec["counts"])
        text = col[~missing].astype(str)
        new_vc = text.value_counts()
        codes += [c for c in new_vc.index if c not in spec["counts"]]
        ref_counts = np.array([spec["counts"].get(c, 0) for c in codes] + [spec["n_missing"]])
        new_counts = np.array([int(new_vc.get(c, 0)) for c in codes] + [int(missing.sum())])
        stat, p = _chi2(ref_counts, new_counts)
        row.update(psi=_psi(new_counts, ref_counts), test="chi2", statistic=stat, p_value=p)
    return row


def _prediction_row(
    spec: dict[str, Any], values: pd.Series
) -> tuple[dict[str, Any], dict[str, Any]]:
    from scipy.stats import ks_2samp

    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    edges = np.asarray(spec["bin_edges"], dtype=float)
    new_counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    res = ks_2samp(x, np.asarray(spec["sample"], dtype=float), method="asymp")
    mean_new = float(x.mean()) if len(x) else math.nan
    ref_counts = np.asarray(spec["bin_counts"], dtype=float)
    bins = {
        "edges": [float(e) for e in edges],
        "reference": [float(v) for v in ref_counts / max(ref_counts.sum(), 1.0)],
        "new": [float(v) for v in new_counts / max(new_counts.sum(), 1)],
    }
    row = {
        "mean_reference": float(spec["mean"]),
        "mean_new": mean_new,
        "mean_shift": mean_new - float(spec["mean"]),
        "psi": _psi(new_counts.astype(float), np.asarray(spec["bin_counts"], dtype=float)),
        "test": "ks",
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
    }
    return row, bins


def _psi(new_counts: np.ndarray, ref_counts: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    from scipy.special import rel_entr

    if new_counts.sum() == 0 or ref_counts.sum() == 0:
        return math.nan
    p = np.maximum(new_counts / new_counts.sum(), PSI_FLOOR)
    q = np.maximum(ref_counts / ref_counts.sum(), PSI_FLOOR)
    return float(np.sum(rel_entr(p, q) + rel_entr(q, p)))


def _ks_with_missing(
    x: np.ndarray, sample: np.ndarray, spec: dict[str, Any], missing: np.ndarray
) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    if len(x) and len(sample):
        res = ks_2samp(x, sample, method="asymp")
        stat, p_ks = float(res.statistic), float(res.pvalue)
    else:
        stat, p_ks = math.nan, 1.0
    n_obs_ref = int(spec["n"]) - int(spec["n_missing"])
    table = np.array([[spec["n_missing"], n_obs_ref], [int(missing.sum()), int((~missing).sum())]])
    _, p_miss = _chi2(table[0], table[1])
    return stat, min(1.0, 2.0 * min(p_ks, p_miss))


def _chi2(ref_counts: np.ndarray, new_counts: np.ndarray) -> tuple[float, float]:
    from scipy.stats import chi2_contingency

    table = np.vstack([ref_counts, new_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    res = chi2_contingency(table)
    return float(res.statistic), float(res.pvalue)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _flags(table: pd.DataFrame, lo: float, hi: float, alpha: float) -> list[str]:
    psi = table["psi"].to_numpy(dtype=float)
    sig = table["p_adjusted"].to_numpy(dtype=float) < alpha
    return [
        "alert" if s and v >= hi else "watch" if s and v >= lo else "none"
        for v, s in zip(psi, sig, strict=True)
    ]


def _in_scope(records: pd.DataFrame, ref: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    from spinerisk.endpoints import ENDPOINTS

    ep = ENDPOINTS.get(str(ref.get("endpoint")))
    if ep is None or ep.eligible_treatments is None or "treatment" not in records.columns:
        return records, 0
    keep = records["treatment"].astype(object).isin(ep.eligible_treatments).to_numpy()
    return records[keep], int((~keep).sum())


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be two numbers (watch, alert); got {value!r}.") from exc
    if not 0.0 <= a <= b:
        raise ValueError(f"{name} must satisfy 0 <= watch <= alert; got {value!r}.")
    return a, b


# -- output helpers -------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar: numpy scalars unwrapped, NaN/inf as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    name = frame.index.name or "index"
    out = []
    for idx, row in frame.iterrows():
        item = {name: _plain(idx)}
        item.update({str(k): _plain(v) for k, v in row.items()})
        out.append(item)
    return out


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate)."""

    def cell(v: Any) -> str:
        v = _plain(v)
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
