"""Monitoring report: drift, performance over time and one alert level, as JSON and HTML."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from spinerisk.endpoints import stated_horizon, stated_horizons
from spinerisk.evaluation._format import horizon_label
from spinerisk.monitor._drift import ALERT_LEVELS, DriftReport, _plain

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["MonitoringReport", "monitoring_report"]

_BANNER = (
    "SYNTHETIC DATA: simulated patients from published effect sizes, not real records. "
    "Nothing here is clinically validated."
)


@dataclass(frozen=True)
class MonitoringReport:
    """Result of :func:`monitoring_report`.

    Attributes
    ----------
    drift : DriftReport
        Input and prediction drift of the new records.
    performance : DataFrame or None
        :func:`performance_over_time` on the labelled records, when given.
    alert : {"none", "watch", "alert"}
        The most severe of the drift and the performance levels.
    performance_alert : {"none", "watch", "alert"}
        Level from the performance table alone (``"none"`` without labels).
    reasons : list of str
        Why the alert level was reached.
    model : dict
        Endpoint, backend, horizons, training size and, when known, ``model_id`` and
        ``model_sha256``.
    created_utc : str
    synthetic : bool
        Whether the new or labelled records, or the model's training records, are
        labelled synthetic (the report then carries a SYNTHETIC banner).
    thresholds : dict
        Performance thresholds used.
    """

    drift: DriftReport
    performance: pd.DataFrame | None
    alert: str
    performance_alert: str
    reasons: list[str]
    model: dict[str, Any]
    created_utc: str
    synthetic: bool
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """Exit code of ``spinerisk monitor``: 0 none, 10 watch, 11 alert."""
        return {"none": 0, "watch": 10, "alert": 11}[self.alert]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary of the whole report.

        Returns
        -------
        dict
            ``alert``, ``performance_alert``, ``drift_alert``, ``reasons``,
            ``synthetic``, ``created_utc``, ``model``, ``thresholds``, ``drift`` (see
            :meth:`DriftReport.to_dict`) and ``performance`` (list of rows, or None).
        """
        perf = None
        if self.performance is not None:
            perf = [
                {str(k): _plain(v) for k, v in row.items()}
                | {"horizon_days": stated_horizon(row["horizon_days"])}
                for row in self.performance.to_dict(orient="records")
            ]
        return {
            "report": "spinerisk-monitoring",
            "alert": self.alert,
            "drift_alert": self.drift.alert,
            "performance_alert": self.performance_alert,
            "reasons": list(self.reasons),
            "synthetic": bool(self.synthetic),
            "notice": _BANNER if self.synthetic else None,
            "created_utc": self.created_utc,
            "model": {k: _plain(v) for k, v in self.model.items()},
            "thresholds": {k: _plain(v) for k, v in self.thresholds.items()},
            "drift": self.drift.to_dict(),
            "performance": perf,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        Path
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return _write_atomic(Path(path), text)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """Self-contained HTML page (figures inline as PNG); write it when ``path`` is given.

        Parameters
        ----------
        path : str, path-like or None, default=None

        Returns
        -------
        str
            The HTML.
        """
        page = _render_html(self)
        if path is not None:
            _write_atomic(Path(path), page)
        return page


def monitoring_report(
    model: RiskModel,
    new_records: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    period: Literal["quarter", "month"] = "quarter",
    n_bootstrap: int = 200,
    random_state: int = 0,
    psi_thresholds: tuple[float, float] = (0.1, 0.25),
    alpha: float = 0.01,
    flagged_thresholds: tuple[float, float] = (0.05, 0.15),
    oe_limits: tuple[float, float] = (0.8, 1.25),
    model_info: dict[str, Any] | None = None,
    date_field: str = "index_date",
) -> MonitoringReport:
    """Drift of new records and, with labels, performance over time, with one alert level.

    Parameters
    ----------
    model : RiskModel
        A fitted model with a training reference in ``reference_`` (see
        :func:`build_reference`).
    new_records : DataFrame
        Recent records (baseline fields) to compare with the training reference.
    labels : DataFrame or None, default=None
        Records with observed outcomes and their index date, for
        :func:`performance_over_time`.
    period : {"quarter", "month"}, default="quarter"
    n_bootstrap : int, default=200
        Bootstrap resamples of the performance intervals; at least 10 when ``labels``
        are given (the performance levels are judged on the intervals).
    random_state : int, default=0
    psi_thresholds, alpha, flagged_thresholds
        Passed to :func:`drift`.
    oe_limits : (float, float), default=(0.8, 1.25)
        Observed/expected ratios outside these limits raise an alert when the 95%
        interval also excludes 1.
    model_info : dict or None, default=None
        ``model_id`` and ``model_sha256`` to show (see :func:`bundle_info`).
    date_field : str, default="index_date"
        Date column of ``labels`` (see :func:`performance_over_time`).

    Returns
    -------
    MonitoringReport

    Notes
    -----
    Performance levels use the ``period="all"`` rows (one per horizon) of the
    performance table: ``"watch"`` when the 95% interval of O/E excludes 1 or the upper
    limit of the calibration slope is below 1 (predictions too extreme);
    ``"alert"`` when the O/E interval excludes 1 and O/E lies outside ``oe_limits``.
    Per-period rows are shown for trends but do not raise levels on their own (with many
    periods, some intervals miss 1 by chance). The report's level is the most severe of
    the drift and performance levels.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.monitor import build_reference, monitoring_report
    >>> dev = sr.make_spine_cohort(600, seed=0)  # SYNTHETIC
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(dev)
    >>> model.reference_ = build_reference(model, dev)
    >>> report = monitoring_report(model, sr.make_spine_cohort(600, seed=5, hu_offset=40))
    >>> report.alert, report.exit_code
    ('alert', 11)
    >>> "SYNTHETIC DATA" in report.to_html()
    True
    """
    from spinerisk.monitor._drift import _pair, drift
    from spinerisk.monitor._performance import performance_over_time

    oe_lo, oe_hi = _pair("oe_limits", oe_limits)
    if not oe_lo <= 1.0 <= oe_hi:
        raise ValueError(f"oe_limits must enclose 1; got oe_limits={oe_limits!r}.")
    if labels is not None and (
        isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 10
    ):
        raise ValueError(
            f"n_bootstrap must be an integer >= 10 when labels are given (the performance "
            f"levels need bootstrap intervals); got n_bootstrap={n_bootstrap!r}."
        )
    dr = drift(
        model,
        new_records,
        psi_thresholds=psi_thresholds,
        alpha=alpha,
        flagged_thresholds=flagged_thresholds,
    )
    perf = None
    perf_level, reasons = 0, list(dr.reasons)
    if labels is not None:
        perf = performance_over_time(
            model,
            labels,
            period=period,
            n_bootstrap=n_bootstrap,
            random_state=random_state,
            date_field=date_field,
        )
        perf_level, perf_reasons = _performance_level(perf, oe_lo, oe_hi, model.endpoint_.time_unit)
        reasons += perf_reasons
    stated = stated_horizons(model.horizons_)
    info = {
        "endpoint": model.endpoint_.name,
        "kind": model.endpoint_.kind,
        "backend": model.backend_,
        "horizons": [model.endpoint_.in_unit(h) for h in stated],
        "horizon_days": stated,
        "time_unit": model.endpoint_.time_unit,
        "horizon_labels": [horizon_label(h, model.endpoint_.time_unit) for h in stated],
        "n_train": int(model.n_train_),
        "model_id": None,
        "model_sha256": None,
    }
    info.update({k: v for k, v in (model_info or {}).items() if k in ("model_id", "model_sha256")})
    level = max(ALERT_LEVELS.index(dr.alert), perf_level)
    ref = getattr(model, "reference_", None) or {}
    synthetic = (
        bool(new_records.attrs.get("synthetic", False))
        or bool(labels is not None and labels.attrs.get("synthetic", False))
        or bool(ref.get("synthetic", False))  # the model was trained on synthetic records
    )
    return MonitoringReport(
        drift=dr,
        performance=perf,
        alert=ALERT_LEVELS[level],
        performance_alert=ALERT_LEVELS[perf_level],
        reasons=reasons,
        model=info,
        created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        synthetic=synthetic,
        thresholds={"oe_low": oe_lo, "oe_high": oe_hi, "period": period},
    )


def _performance_level(
    perf: pd.DataFrame, oe_lo: float, oe_hi: float, unit: str = "days"
) -> tuple[int, list[str]]:
    level, reasons = 0, []
    for _, row in perf[perf["period"] == "all"].iterrows():
        h = horizon_label(row["horizon_days"], unit) or "the recorded outcome"
        lo, hi, oe = row["oe_low"], row["oe_high"], row["oe"]
        if np.isfinite(oe) and not np.isfinite(lo):
            level = max(level, 1)
            reasons.append(
                f"watch: observed/expected {oe:.2f} at {h} has no bootstrap interval (too "
                "few resamples could be scored), so calibration could not be assessed"
            )
        if np.isfinite(lo) and (lo > 1 or hi < 1):
            this = 2 if (oe < oe_lo or oe > oe_hi) else 1
            level = max(level, this)
            reasons.append(
                f"{ALERT_LEVELS[this]}: observed/expected {oe:.2f} (95% CI {lo:.2f} to "
                f"{hi:.2f}) at {h}"
            )
        if np.isfinite(row["slope_high"]) and row["slope_high"] < 1:
            level = max(level, 1)
            reasons.append(
                f"watch: calibration slope {row['slope']:.2f} (95% CI {row['slope_low']:.2f} "
                f"to {row['slope_high']:.2f}) at {h}: predictions too extreme"
            )
    return level, reasons


# -- HTML ----------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:0.7em;font-weight:bold}
.level{display:inline-block;padding:0.2em 0.8em;border-radius:4px;color:#fff;font-weight:bold}
.none{background:#2e7d32}.watch{background:#ef8f00}.alert{background:#c62828}
"""


def _render_html(report: MonitoringReport) -> str:
    esc = html.escape
    dr = report.drift
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>spinerisk monitoring report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    if report.synthetic:
        parts.append(f'<p class="banner" id="synthetic-banner">{esc(_BANNER)}</p>')
    parts.append("<h1>spinerisk monitoring report</h1>")
    parts.append(
        f'<p>Alert level: <span class="level {esc(report.alert)}" id="alert">'
        f"{esc(report.alert)}</span> (drift: {esc(dr.alert)}, performance: "
        f"{esc(report.performance_alert)}). Created {esc(report.created_utc)}.</p>"
    )
    parts.append('<section id="summary"><h2>Summary</h2><ul>')
    items = report.reasons or ["No field, prediction or calibration measure crossed a threshold."]
    parts += [f"<li>{esc(r)}</li>" for r in items]
    parts.append("</ul>")
    parts.append(
        f"<p>{dr.n_records} records compared; {dr.n_rejected} failed validation; "
        f"{dr.n_out_of_scope} outside the model's intended population. "
        f"{dr.flagged_share:.1%} of records have input warnings (chance level "
        f"{(dr.flagged_share_reference or 0.0):.1%}).</p></section>"
    )
    shown = {k: v for k, v in report.model.items() if k not in ("horizons", "horizon_days")}
    model_rows = pd.DataFrame({"value": [str(v) for v in shown.values()]},
                              index=list(shown))  # fmt: skip
    parts.append('<section id="model"><h2>Model</h2>' + _table(model_rows) + "</section>")
    parts.append('<section id="drift"><h2>Input drift</h2>')
    parts.append(_figure(_psi_figure(dr)))
    parts.append(_table(dr.table))
    parts.append("</section>")
    if dr.prediction_shift is not None:
        parts.append('<section id="prediction-shift"><h2>Predicted risk</h2>')
        parts.append(_figure(_prediction_figure(dr)))
        parts.append(_table(dr.prediction_shift))
        parts.append("</section>")
    if report.performance is not None:
        parts.append('<section id="performance"><h2>Performance over time</h2>')
        unit = str(report.model.get("time_unit", "days"))
        parts.append(_figure(_performance_figure(report.performance, unit)))
        table = report.performance.set_index("period")
        labels = [horizon_label(h, unit) or "-" for h in table["horizon_days"]]
        table = table.drop(columns="horizon_days")
        table.insert(0, "horizon", labels)
        parts.append(_table(table))
        parts.append("</section>")
    t = dr.thresholds
    parts.append(
        '<section id="methods"><h2>Methods and thresholds</h2><p>'
        + esc(
            f"PSI watch {t['psi_watch']:g}, alert {t['psi_alert']:g}, each with a test at "
            f"alpha {t['alpha']:g} after Holm's correction (Kolmogorov-Smirnov with a "
            "missing-share chi-squared test for numbers, chi-squared for codes). Flagged "
            f"records: watch at {t['flagged_excess_watch']:.0%} and alert at "
            f"{t['flagged_excess_alert']:.0%} above the training share. Calibration: "
            f"alert when O/E is outside {report.thresholds['oe_low']:g} to "
            f"{report.thresholds['oe_high']:g} with a 95% interval excluding 1. "
            "Time-to-event horizons count only patients whose outcome at the horizon is "
            "known, reweighted for censoring (IPCW). This report supports, and never "
            "replaces, clinical judgement."
        )
        + "</p></section>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(frame: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "" if not math.isfinite(v) else f"{v:.4g}"
        return str(v)

    shown = frame.copy()
    for col in shown.columns:
        shown[col] = shown[col].map(fmt)
    return shown.to_html(escape=True, border=0)


def _figure(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _psi_figure(dr: DriftReport) -> Any:
    from matplotlib.figure import Figure

    table = dr.table.sort_values("psi")
    fig = Figure(figsize=(7, max(2.5, 0.22 * len(table))))
    ax = fig.add_subplot()
    colours = {"none": "#2e7d32", "watch": "#ef8f00", "alert": "#c62828"}
    ax.barh(table.index.astype(str), table["psi"].fillna(0.0),
            color=[colours[f] for f in table["flag"]])  # fmt: skip
    for x in (dr.thresholds["psi_watch"], dr.thresholds["psi_alert"]):
        ax.axvline(x, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("population stability index (new vs training)")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def _prediction_figure(dr: DriftReport) -> Any:
    from matplotlib.figure import Figure

    cols = list(dr.prediction_bins)
    fig = Figure(figsize=(3.2 * max(1, len(cols)), 2.8))
    for i, col in enumerate(cols):
        ax = fig.add_subplot(1, len(cols), i + 1)
        b = dr.prediction_bins[col]
        x = np.arange(len(b["reference"]))
        ax.bar(x - 0.2, b["reference"], width=0.4, label="training")
        ax.bar(x + 0.2, b["new"], width=0.4, label="new")
        ax.set_xticks(x, [str(i + 1) for i in x], fontsize=7)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("training decile of predicted risk", fontsize=8)
        if i == 0:
            ax.set_ylabel("share of records")
            ax.legend(fontsize=7)
    return fig


def _performance_figure(perf: pd.DataFrame, unit: str = "days") -> Any:
    from matplotlib.figure import Figure

    rows = perf[perf["period"] != "all"]
    horizons = sorted(rows["horizon_days"].unique())
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    for k, h in enumerate(horizons):
        r = rows[rows["horizon_days"] == h]
        x = np.arange(len(r)) + 0.1 * k
        ok = np.isfinite(r["oe"].to_numpy(dtype=float))
        low = (r["oe"] - r["oe_low"]).to_numpy(dtype=float)
        high = (r["oe_high"] - r["oe"]).to_numpy(dtype=float)
        err = np.vstack([np.nan_to_num(low), np.nan_to_num(high)])
        ax.errorbar(x[ok], r["oe"].to_numpy(dtype=float)[ok], yerr=err[:, ok], fmt="o",
                    capsize=2, label=horizon_label(h, unit) or "outcome")  # fmt: skip
        ax.set_xticks(np.arange(len(r)), r["period"].astype(str), rotation=60, fontsize=7)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylabel("observed / expected")
    ax.legend(fontsize=7)
    return fig


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
