"""EvaluationReport: the results of :func:`spinerisk.evaluation.evaluate` and their renderings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spinerisk.endpoints import days_in_unit, stated_horizons
from spinerisk.evaluation._data import METRIC_LABELS
from spinerisk.evaluation._format import (
    SYNTHETIC_BANNER,
    horizon_label,
    horizons_in_unit,
)
from spinerisk.evaluation._format import finite as _finite
from spinerisk.evaluation._format import fmt as _fmt
from spinerisk.evaluation._format import json_records as _records
from spinerisk.evaluation._format import json_tree as _json_tree
from spinerisk.evaluation._format import md_table as _md_table
from spinerisk.evaluation._html import render_html

__all__ = ["EvaluationReport", "SYNTHETIC_BANNER"]


def _comparators_json(comparison: dict[str, Any], unit: str = "days") -> dict[str, Any]:
    return {
        "table": _records(horizons_in_unit(comparison["table"], unit)),
        "info": _json_tree(comparison["info"]),
        "recalibration": _records(horizons_in_unit(comparison["recalibration"], unit)),
        "decision_curves": {
            name: {horizon_label(h, unit): _records(t) for h, t in curves.items()}
            for name, curves in comparison["decision_curves"].items()
        },
        "nb_thresholds": list(comparison["nb_thresholds"]),
        "notes": list(comparison["notes"]),
    }


def _instability_json(instability: dict[str, Any], unit: str = "days") -> dict[str, Any]:
    """The instability summary and per-patient table (the plot's points are left out)."""
    return {
        "n_models": instability["n_models"],
        "n_records": instability["n_records"],
        "summary": _records(horizons_in_unit(instability["summary"], unit)),
        "patients": _records(horizons_in_unit(instability["patients"], unit)),
    }


@dataclass(eq=False, repr=False)
class EvaluationReport:
    """Performance of a risk model on a cohort, with bootstrap confidence intervals.

    Built by :func:`spinerisk.evaluation.evaluate`; render it with :meth:`to_frame`,
    :meth:`to_dict`, :meth:`to_markdown` or :meth:`to_html`.

    Attributes
    ----------
    model_info : dict
        Endpoint, kind, description, backend, selection reason, n_train, horizons and
        number of model-matrix columns.
    validation : {"internal", "split", "temporal", "external"}
    synthetic : bool
        Whether the cohort was labelled synthetic (``cohort.attrs["synthetic"]``) or the
        model was trained on records labelled synthetic (``model.reference_``).
    horizons : tuple of float
        Evaluated horizons (days).
    n_records, n_evaluated, n_excluded, n_flagged, n_events : int
        Records given, evaluated (eligible, outcome observed), excluded, flagged by
        ``predict_risk`` as outside the training data, and events of interest.
    settings : dict
        Bootstrap resamples, coverage, seed, optimism, cv, censoring reference.
    metrics : DataFrame
        ``metric, horizon, estimate, lower, upper, n_resamples``.
    optimism : DataFrame or None
        ``metric, horizon, apparent, optimism, corrected`` (``optimism=True``).
    cross_validation : DataFrame or None
        ``metric, horizon, estimate`` from pooled out-of-fold predictions (``cv=k``;
        the calibration slope with an intercept per fold).
    calibration : dict of float to DataFrame
        Binned calibration per horizon (``bin, n, mean_predicted, observed, lower, upper``).
    smoothed_calibration : dict of float to DataFrame
        Smoothed calibration per horizon (``predicted, observed, lower, upper``; the
        band is a pointwise percentile bootstrap interval): LOWESS for binary
        endpoints, running windows against Kaplan-Meier / Aalen-Johansen for
        time-to-event endpoints.
    decision_curve : dict of float to DataFrame
        Net benefit of the model, treat-all and treat-none per threshold and horizon.
    subgroups : DataFrame
        One row per subgroup level: n, events, metrics with CIs, and a note when skipped.
    sample_size : dict
        Riley et al. minimum sample size next to the available development n.
    data_summary : dict
        ``table_one``, ``missingness`` and ``outcome_rates`` DataFrames.
    explanations : dict or None
        ``importance`` (Series), ``examples`` and ``note``.
    notes : list of str
        Caveats gathered during the evaluation.
    comparators : dict or None
        The model against existing scores or published calculators on the same records
        (``evaluate(..., comparators=...)``): ``table`` (per comparator, metric, horizon
        and threshold: n, events, model, comparator and difference estimates with
        bootstrap CIs), ``info`` (what each comparator is and how it was handled),
        ``recalibration`` (intercept and slope of each recalibrated score),
        ``decision_curves`` and ``nb_thresholds``. None when there were none.
    instability : dict or None
        Prediction instability (:func:`spinerisk.evaluation._instability.prediction_instability`):
        each patient's risk from bootstrap refits of the model against the model's
        risk, with the mean absolute difference per horizon (Riley and Collins 2023).
        None when the model has no bootstrap refits.

    Examples
    --------
    >>> import json
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import evaluate
    >>> cohort = sr.make_spine_cohort(600, seed=1)
    >>> model = sr.RiskModel("collapse", backend="linear").fit(cohort)
    >>> report = evaluate(model, cohort, n_bootstrap=10, subgroups=(), explain=False)
    >>> report.synthetic, report.validation
    (True, 'internal')
    >>> "SYNTHETIC DATA" in report.to_markdown()
    True
    >>> isinstance(json.dumps(report.to_dict()), str)
    True
    >>> report  # doctest: +ELLIPSIS
    EvaluationReport(collapse model (linear), internal validation, ... records evaluated, ...)
    """

    def __repr__(self) -> str:
        """One line: what was evaluated on what (the tables are in the renderings)."""
        info = self.model_info
        return (
            f"EvaluationReport({info.get('endpoint')} model ({info.get('backend')}), "
            f"{self.validation} validation, {self.n_evaluated} of {self.n_records} records "
            f"evaluated, {self.n_events} events, {len(self.metrics)} metrics"
            + (", SYNTHETIC DATA" if self.synthetic else "")
            + "; see metric_table(), to_markdown(), to_html(path))"
        )

    model_info: dict[str, Any]
    validation: str
    synthetic: bool
    horizons: tuple[float, ...]
    n_records: int
    n_evaluated: int
    n_excluded: int
    n_flagged: int
    n_events: int
    settings: dict[str, Any]
    metrics: pd.DataFrame
    optimism: pd.DataFrame | None = None
    cross_validation: pd.DataFrame | None = None
    calibration: dict[float, pd.DataFrame] = field(default_factory=dict)
    smoothed_calibration: dict[float, pd.DataFrame] = field(default_factory=dict)
    decision_curve: dict[float, pd.DataFrame] = field(default_factory=dict)
    subgroups: pd.DataFrame | None = None
    sample_size: dict[str, Any] = field(default_factory=dict)
    data_summary: dict[str, Any] = field(default_factory=dict)
    explanations: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    comparators: dict[str, Any] | None = None
    instability: dict[str, Any] | None = None

    def to_frame(self) -> pd.DataFrame:
        """Tidy metrics table.

        Returns
        -------
        DataFrame
            Columns ``metric, horizon, estimate, lower, upper``; ``horizon`` is in the
            endpoint's :attr:`time_unit`, as ``evaluate(horizons=...)`` takes it (NaN for
            metrics over the whole follow-up). :attr:`metrics` keeps it in days.
        """
        table = self.metrics[["metric", "horizon", "estimate", "lower", "upper"]]
        out = horizons_in_unit(table, self.time_unit)
        return out.copy() if out is table else out

    @property
    def time_unit(self) -> str:
        """The endpoint's time unit: :meth:`to_frame`, :meth:`to_dict` and the renderings
        show horizons in it (days for the spine endpoints)."""
        return str((self.model_info or {}).get("time_unit", "days"))

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as JSON-serialisable Python objects.

        Returns
        -------
        dict
            Tables are lists of records; missing values are None; per-horizon tables are
            keyed by horizon label (``"365d"``). Times (``horizons``, the model's
            ``horizons``, every table's ``horizon``, the settings' ``ibs_times`` and
            ``subgroup_horizon``) are in ``time_unit``, the endpoint's; ``horizon_days``
            gives the horizons in days.
        """
        unit = self.time_unit

        def tab(t: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            return _records(horizons_in_unit(t, unit))

        def in_unit(values: Any) -> Any:  # a time or a list of times in days
            if values is None:
                return None
            converted = days_in_unit(values, unit)
            return converted.tolist() if isinstance(values, list) else converted

        model = dict(self.model_info or {})
        if "horizons" in model:
            model["horizons"] = in_unit(stated_horizons(model["horizons"]))
        settings = dict(self.settings)
        for key in ("ibs_times", "subgroup_horizon"):
            if key in settings:
                settings[key] = in_unit(settings[key])

        def per_horizon(tables: dict[float, pd.DataFrame]) -> dict[str, Any]:
            return {horizon_label(h, unit): _records(t) for h, t in tables.items()}

        explanations = None
        if self.explanations is not None:
            explanations = _json_tree(self.explanations)
        out = {
            "synthetic": self.synthetic,
            "banner": SYNTHETIC_BANNER if self.synthetic else None,
            "validation": self.validation,
            "model": _json_tree(model),
            "time_unit": unit,
            "horizons": in_unit(stated_horizons(self.horizons)),
            "horizon_days": stated_horizons(self.horizons),
            "n_records": self.n_records,
            "n_evaluated": self.n_evaluated,
            "n_excluded": self.n_excluded,
            "n_flagged": self.n_flagged,
            "n_events": self.n_events,
            "settings": _json_tree(settings),
            "metrics": tab(self.metrics),
            "optimism": tab(self.optimism),
            "cross_validation": tab(self.cross_validation),
            "calibration": per_horizon(self.calibration),
            "smoothed_calibration": per_horizon(self.smoothed_calibration),
            "decision_curve": per_horizon(self.decision_curve),
            "subgroups": tab(self.subgroups),
            "sample_size": _json_tree(self.sample_size),
            "data_summary": {
                "table_one": _records(self.data_summary["table_one"].reset_index(names="row"))
                if "table_one" in self.data_summary
                else None,
                "missingness": _records(self.data_summary.get("missingness")),
                "outcome_rates": _records(self.data_summary.get("outcome_rates")),
            },
            "explanations": explanations,
            "notes": list(self.notes),
            "comparators": None
            if self.comparators is None
            else _comparators_json(self.comparators, unit),
            "instability": None
            if self.instability is None
            else _instability_json(self.instability, unit),
        }
        return out

    def instability_table(self) -> pd.DataFrame:
        """Prediction instability per horizon, formatted for display.

        Returns
        -------
        DataFrame
            Columns ``horizon, mean absolute difference, median patient, 90th percentile
            patient, largest`` (differences in risk between the bootstrap refits and
            the model, over patients and refits); empty without refits.
        """
        columns = ["horizon", "mean absolute difference", "median patient"]
        columns += ["90th percentile patient", "largest"]
        if self.instability is None:
            return pd.DataFrame(columns=columns)
        t = self.instability["summary"]
        return pd.DataFrame(
            {
                "horizon": [horizon_label(h, self.time_unit) or "-" for h in t["horizon"]],
                "mean absolute difference": [_fmt(v) for v in t["mean_abs_difference"]],
                "median patient": [_fmt(v) for v in t["median_patient_mad"]],
                "90th percentile patient": [_fmt(v) for v in t["p90_patient_mad"]],
                "largest": [_fmt(v) for v in t["max_abs_difference"]],
            },
            columns=columns,
        )

    def comparator_table(self) -> pd.DataFrame:
        """The model against each comparator, formatted for display.

        Returns
        -------
        DataFrame
            Columns ``comparator, metric, horizon, threshold, n, model, comparator value,
            difference`` (model minus comparator), each value with its interval; empty
            when the evaluation had no comparators.
        """
        columns = ["comparator", "metric", "horizon", "threshold", "n", "model"]
        columns += ["comparator value", "difference (model - comparator)"]
        if self.comparators is None or not len(self.comparators["table"]):
            return pd.DataFrame(columns=columns)
        t = self.comparators["table"]

        def cell(part: str) -> list[str]:
            return [
                "n/a" if not _finite(e) else f"{_fmt(e)} ({_fmt(lo)} to {_fmt(hi)})"
                for e, lo, hi in zip(
                    t[f"{part}_estimate"], t[f"{part}_lower"], t[f"{part}_upper"], strict=True
                )
            ]

        return pd.DataFrame(
            {
                "comparator": t["comparator"],
                "metric": [METRIC_LABELS.get(x, x) for x in t["metric"]],
                "horizon": [horizon_label(h, self.time_unit) for h in t["horizon"]],
                "threshold": ["" if not _finite(v) else f"{v:g}" for v in t["threshold"]],
                "n": t["n"],
                "model": cell("model"),
                "comparator value": cell("comparator"),
                "difference (model - comparator)": cell("difference"),
            },
            columns=columns,
        )

    def metric_table(self) -> pd.DataFrame:
        """Metrics formatted for display: label, horizon, estimate and interval.

        Returns
        -------
        DataFrame
            Columns ``metric, horizon, estimate, 95% CI`` (the coverage in the header
            follows ``settings["ci"]``), plus optimism-corrected and cross-validated
            estimates when they were computed.
        """
        pct = f"{100 * self.settings['ci']:g}% CI"
        m = self.metrics
        table = pd.DataFrame(
            {
                "metric": [METRIC_LABELS.get(x, x) for x in m["metric"]],
                "horizon": [horizon_label(h, self.time_unit) for h in m["horizon"]],
                "estimate": [_fmt(v) for v in m["estimate"]],
                pct: [
                    f"{_fmt(lo)} to {_fmt(hi)}"
                    for lo, hi in zip(m["lower"], m["upper"], strict=True)
                ],
            }
        )
        if self.optimism is not None:
            table["optimism-corrected"] = [_fmt(v) for v in self.optimism["corrected"]]
        if self.cross_validation is not None:
            table["cross-validated"] = [_fmt(v) for v in self.cross_validation["estimate"]]
        return table

    def cv_note(self) -> str | None:
        """What the cross-validated column is.

        Returns
        -------
        str or None
            One sentence for the reports; None without ``cv``.
        """
        if self.cross_validation is None:
            return None
        return (
            f"Cross-validated: pooled out-of-fold predictions, {self.settings['cv']} folds "
            "(the calibration slope with an intercept per fold; a fold without both "
            "outcomes by a horizon is left out of it)."
        )

    def to_markdown(self) -> str:
        """A Markdown summary: banner, cohort, model, metrics, subgroups, sample size.

        Returns
        -------
        str
        """
        info = self.model_info
        cv = self.cv_note()
        parts = []
        if self.synthetic:
            parts.append(f"> **{SYNTHETIC_BANNER}**\n")
        parts.append(
            f"# Evaluation of the {info['endpoint']} model ({self.validation} validation)\n"
        )
        parts.append(
            f"- Endpoint: {info['description']}\n"
            f"- Model: {info['backend']} ({info['selection_reason']}), developed on "
            f"{info['n_train']} records\n"
            f"- Evaluated: {self.n_evaluated} of {self.n_records} records "
            f"({self.n_excluded} excluded: not eligible or outcome not observed); "
            f"{self.n_events} events; {self.n_flagged} records flagged outside the "
            "training data\n"
            f"- Intervals: {100 * self.settings['ci']:g}% percentile bootstrap, "
            f"{self.settings['n_bootstrap']} resamples of patients, "
            f"seed {self.settings['random_state']}\n" + ("" if cv is None else f"- {cv}\n")
        )
        parts.append("## Metrics\n\n" + _md_table(self.metric_table()) + "\n")
        if self.comparators is not None:
            lines = [
                f"- {c['name']}: {c['description'] or c['source']}; {c['handling']}; "
                f"{c['n']} records with a value ({c['n_without_value']} without)."
                for c in self.comparators["info"]
            ]
            parts.append(
                "## Comparators\n\n"
                + "\n".join(lines)
                + "\n\n"
                + _md_table(self.comparator_table())
                + "\n"
            )
        if self.instability is not None:
            parts.append(
                "## Prediction instability\n\n"
                f"Risks of {self.instability['n_models']} bootstrap refits of the model "
                f"against its own risks, for {self.instability['n_records']} patients "
                "(Riley and Collins 2023).\n\n" + _md_table(self.instability_table()) + "\n"
            )
        if self.subgroups is not None and len(self.subgroups):
            parts.append("## Subgroups\n\n" + _md_table(self.subgroups) + "\n")
        ss = self.sample_size
        if "required_n" in ss:
            parts.append(
                "## Sample size\n\n"
                f"Minimum development sample size (Riley et al.): {ss['required_n']} records "
                f"({ss['required_events']:.0f} events) for {ss['parameters']} candidate "
                f"parameters; available: {ss['available_n']} "
                f"({'adequate' if ss['adequate'] else 'NOT adequate'}).\n"
            )
        elif ss.get("note"):
            parts.append(f"## Sample size\n\n{ss['note']}\n")
        if self.notes:
            parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in self.notes) + "\n")
        return "\n".join(parts)

    def to_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML report (figures embedded, no external resources).

        Sections follow TRIPOD+AI: data summary, model, discrimination, calibration,
        decision curve, subgroups, explanations, intended use and limitations.

        Parameters
        ----------
        path : str or path-like
            Output file (``.html``); written atomically.

        Returns
        -------
        Path
        """
        path = Path(path)
        text = render_html(self)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path
