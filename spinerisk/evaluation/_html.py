"""Self-contained HTML rendering of an EvaluationReport (Jinja2 autoescape, base64 PNG figures)."""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.evaluation._data import METRIC_LABELS
from spinerisk.evaluation._format import CSS as _CSS
from spinerisk.evaluation._format import SYNTHETIC_BANNER, at_horizon, horizon_label
from spinerisk.evaluation._format import finite as _finite
from spinerisk.evaluation._format import fmt as _fmt

if TYPE_CHECKING:  # pragma: no cover
    from spinerisk.evaluation._report import EvaluationReport

__all__ = ["SECTION_IDS", "render_html"]

#: Stable ids of the report's sections (TRIPOD+AI order).
SECTION_IDS: tuple[str, ...] = (
    "data-summary",
    "model",
    "discrimination",
    "calibration",
    "decision-curve",
    "comparators",
    "subgroups",
    "sample-size",
    "explanations",
    "intended-use",
)

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
{%- macro table(t) -%}
<table>
<thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in t.rows %}
<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>
{%- endmacro %}
{% if synthetic %}
<div id="synthetic-banner" class="banner" role="alert">{{ banner }}</div>
{% endif %}
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>

<section id="data-summary">
<h2>Data summary</h2>
<p>{{ cohort_line }}</p>
<h3>Outcome</h3>
{{ table(outcome_rates) }}
{% if followup %}<p class="note">{{ followup }}</p>{% endif %}
<h3>Table 1 (by outcome)</h3>
{{ table(table_one) }}
<h3>Missing values per predictor</h3>
{{ table(missingness) }}
</section>

<section id="model">
<h2>Model</h2>
{{ table(model_table) }}
</section>

<section id="discrimination">
<h2>Discrimination and overall performance</h2>
<p>{{ ci_line }}</p>
{{ table(metrics) }}
{% for line in metric_notes %}<p class="note">{{ line }}</p>{% endfor %}
</section>

<section id="calibration">
<h2>Calibration</h2>
<p>{{ calibration_line }}</p>
{% for fig in calibration_figures %}
<img alt="{{ fig.alt }}"
 src="data:image/png;base64,{{ fig.data }}">
{% endfor %}
{% for block in calibration_tables %}<h3>{{ block.title }}</h3>{{ table(block.table) }}{% endfor %}
</section>

<section id="decision-curve">
<h2>Decision curve</h2>
<p>{{ decision_line }}</p>
{% for fig in decision_figures %}
<img alt="{{ fig.alt }}"
 src="data:image/png;base64,{{ fig.data }}">
{% endfor %}
</section>

<section id="comparators">
<h2>Comparators</h2>
{% if comparator_info %}
<p>{{ comparator_line }}</p>
<ul>{% for c in comparator_info %}
<li><strong>{{ c.name }}</strong>: {{ c.text }}</li>
{% endfor %}</ul>
{% if comparator_table %}{{ table(comparator_table) }}{% endif %}
{% if recalibration_table %}<h3>Recalibration of scores</h3>
{{ table(recalibration_table) }}{% endif %}
{% for fig in comparator_figures %}
<img alt="{{ fig.alt }}"
 src="data:image/png;base64,{{ fig.data }}">
{% endfor %}
{% for line in comparator_notes %}<p class="note">{{ line }}</p>{% endfor %}
{% else %}<p class="note">No comparators were declared or requested.</p>{% endif %}
</section>

<section id="subgroups">
<h2>Subgroups</h2>
<p>{{ subgroup_line }}</p>
{% if subgroups %}{{ table(subgroups) }}
{% else %}<p class="note">No subgroups were requested.</p>{% endif %}
</section>

<section id="sample-size">
<h2>Sample size</h2>
{% for line in sample_size_lines %}<p>{{ line }}</p>{% endfor %}
{% if sample_size_table %}{{ table(sample_size_table) }}{% endif %}
</section>

{% if instability_table %}<section id="instability">
<h2>Prediction instability</h2>
<p>{{ instability_line }}</p>
{% for fig in instability_figures %}
<img alt="{{ fig.alt }}"
 src="data:image/png;base64,{{ fig.data }}">
{% endfor %}
{{ table(instability_table) }}
</section>
{% endif %}

<section id="explanations">
<h2>Explanations</h2>
{% if explanation_note %}<p class="note">{{ explanation_note }}</p>{% endif %}
{% for fig in explanation_figures %}
<img alt="{{ fig.alt }}"
 src="data:image/png;base64,{{ fig.data }}">
{% endfor %}
{% if explanation_examples %}<h3>Example patients</h3><ul>
{% for ex in explanation_examples %}
<li><strong>{{ ex.record_id }}</strong>: {{ ex.sentence }}</li>
{% endfor %}
</ul>{% endif %}
</section>

<section id="intended-use">
<h2>Intended use and limitations</h2>
{% for line in limitations %}<p>{{ line }}</p>{% endfor %}
{% if notes %}<h3>Notes from this evaluation</h3>
<ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</section>
</body>
</html>
"""


class _Table:
    """Columns and rows of strings for the template (escaped there)."""

    def __init__(self, frame: pd.DataFrame, index: bool = False) -> None:
        if index:
            frame = frame.reset_index()
        self.columns = [str(c) for c in frame.columns]
        self.rows = [[_fmt(v) for v in row] for row in frame.itertuples(index=False)]

    def __bool__(self) -> bool:
        return bool(self.rows)


def png_data(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figure_of(n_panels: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * n_panels, 4.0), layout="constrained")
    axes = [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]
    return fig, axes


def _calibration_figure(report: EvaluationReport) -> dict[str, str] | None:
    if not report.calibration:
        return None
    horizons = list(report.calibration)
    fig, axes = figure_of(len(horizons))
    for ax, h in zip(axes, horizons, strict=True):
        t = report.calibration[h]
        x = t["mean_predicted"].to_numpy(float)
        y = t["observed"].to_numpy(float)
        lo = t["lower"].to_numpy(float) if "lower" in t else y
        hi = t["upper"].to_numpy(float) if "upper" in t else y
        top = float(np.nanmax(np.concatenate([x, hi, [0.05]]))) * 1.05
        ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="ideal")
        ax.errorbar(
            x,
            y,
            yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)],
            fmt="o",
            color="#1f5fa6",
            capsize=3,
            label="binned (95% CI)",
        )
        smooth = report.smoothed_calibration.get(h)
        if smooth is not None and len(smooth):
            ax.plot(smooth["predicted"], smooth["observed"], color="#d9730d", label="smoothed")
            if "lower" in smooth and np.isfinite(smooth["lower"].to_numpy(float)).any():
                ax.fill_between(
                    smooth["predicted"].to_numpy(float),
                    smooth["lower"].to_numpy(float),
                    smooth["upper"].to_numpy(float),
                    color="#d9730d",
                    alpha=0.2,
                    lw=0,
                    label="smoothed (bootstrap band)",
                )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("Predicted risk")
        ax.set_ylabel("Observed" if report.model_info["kind"] == "binary" else "Observed (KM / AJ)")
        ax.set_title(f"Calibration{at_horizon(h, report.time_unit)}")
        ax.legend(fontsize=8, loc="upper left")
    if report.synthetic:
        fig.suptitle("SYNTHETIC DATA", color="#b00020", fontsize=10)
    return {"alt": "Calibration curves", "data": png_data(fig)}


def _decision_figure(report: EvaluationReport) -> dict[str, str] | None:
    if not report.decision_curve:
        return None
    horizons = list(report.decision_curve)
    fig, axes = figure_of(len(horizons))
    for ax, h in zip(axes, horizons, strict=True):
        t = report.decision_curve[h]
        th = t["threshold"].to_numpy(float)
        ax.plot(th, t["model"], color="#1f5fa6", label="model")
        ax.plot(th, t["treat_all"], color="#777", ls="--", label="treat all")
        ax.plot(th, t["treat_none"], color="black", lw=1, label="treat none")
        best = float(np.nanmax(t[["model", "treat_all"]].to_numpy(float))) if len(t) else 0.1
        ax.set_ylim(-0.05 * max(best, 0.01), max(best, 0.01) * 1.1)
        ax.set_xlabel("Risk threshold")
        ax.set_ylabel("Net benefit")
        ax.set_title(f"Decision curve{at_horizon(h, report.time_unit)}")
        ax.legend(fontsize=8)
    if report.synthetic:
        fig.suptitle("SYNTHETIC DATA", color="#b00020", fontsize=10)
    return {"alt": "Decision curves", "data": png_data(fig)}


def _comparator_figures(report: EvaluationReport) -> list[dict[str, str]]:
    comparison = report.comparators
    if comparison is None:
        return []
    out = []
    for name, curves in comparison["decision_curves"].items():
        if not curves:
            continue
        fig, axes = figure_of(len(curves))
        for ax, (h, t) in zip(axes, curves.items(), strict=True):
            th = t["threshold"].to_numpy(float)
            ax.plot(th, t["model"], color="#1f5fa6", label="model")
            ax.plot(th, t["comparator"], color="#2e8b57", label=name)
            ax.plot(th, t["treat_all"], color="#777", ls="--", label="treat all")
            ax.plot(th, t["treat_none"], color="black", lw=1, label="treat none")
            values = t[["model", "comparator", "treat_all"]].to_numpy(float)
            best = float(np.nanmax(values)) if np.isfinite(values).any() else 0.1
            ax.set_ylim(-0.05 * max(best, 0.01), max(best, 0.01) * 1.1)
            ax.set_xlabel("Risk threshold")
            ax.set_ylabel("Net benefit")
            ax.set_title(f"Model and {name}{at_horizon(h, report.time_unit)}")
            ax.legend(fontsize=8)
        if report.synthetic:
            fig.suptitle("SYNTHETIC DATA", color="#b00020", fontsize=10)
        out.append({"alt": f"Decision curves of the model and {name}", "data": png_data(fig)})
    return out


def _instability_figure(report: EvaluationReport) -> dict[str, str] | None:
    """Each patient's risk from the bootstrap refits against the model's risk, one panel
    per horizon, with the mean absolute difference in the title."""
    if report.instability is None:
        return None
    points = report.instability["points"]
    summary = report.instability["summary"]
    fig, axes = figure_of(len(summary))
    for ax, row in zip(axes, summary.itertuples(index=False), strict=True):
        pts = points[points["horizon"] == row.horizon]
        ax.scatter(pts["risk"], pts["refit_risk"], s=3, alpha=0.15, color="#1f4e79", lw=0)
        top = float(max(pts["risk"].max(), pts["refit_risk"].max(), 0.05))
        ax.plot([0, top], [0, top], ls="--", color="grey", lw=1)
        label = horizon_label(row.horizon, report.time_unit)
        ax.set_title(
            (f"{label}: " if label else "") + f"mean |difference| {row.mean_abs_difference:.3f}",
            fontsize=9,
        )
        ax.set_xlabel("risk from the model")
        ax.set_ylabel("risk from bootstrap refits")
    return {"alt": "Prediction instability plot", "data": png_data(fig)}


def _importance_figure(importance: pd.Series) -> dict[str, str]:
    top = importance.sort_values(ascending=True).tail(15)
    fig, (ax,) = figure_of(1)
    fig.set_size_inches(6.5, 0.3 * len(top) + 1.2)
    ax.barh([str(i) for i in top.index], top.to_numpy(float), color="#1f5fa6")
    ax.set_xlabel("Mean |contribution| (model margin)")
    ax.set_title("Global importance per clinical field")
    return {"alt": "Global importance per clinical field", "data": png_data(fig)}


def _metrics_table(report: EvaluationReport) -> _Table:
    return _Table(report.metric_table())


def _subgroup_table(report: EvaluationReport) -> _Table | None:
    sg = report.subgroups
    if sg is None or not len(sg):
        return None
    names = [c for c in sg.columns if c not in ("subgroup", "level", "n", "events", "note")]
    metrics = [c for c in names if not c.endswith(("_lower", "_upper"))]
    shown = sg[["subgroup", "level", "n", "events"]].copy()
    for m in metrics:
        shown[METRIC_LABELS.get(m, m)] = [
            "n/a" if not _finite(e) else f"{_fmt(e)} ({_fmt(lo)} to {_fmt(hi)})"
            for e, lo, hi in zip(sg[m], sg[f"{m}_lower"], sg[f"{m}_upper"], strict=True)
        ]
    shown["note"] = sg["note"].fillna("")
    return _Table(shown)


def _limitations(report: EvaluationReport) -> list[str]:
    info = report.model_info
    kind = {
        "internal": "internal validation on the development cohort (apparent performance"
        + (", with Harrell's bootstrap optimism correction" if report.optimism is not None else "")
        + (", and cross-validation" if report.cross_validation is not None else "")
        + ")",
        "split": "split-sample validation on a random part of the development cohort held "
        "out from fitting (same population and period, so not external validation)",
        "temporal": "temporal validation on records from a later period than the development data",
        "external": "external validation on a cohort not used for development",
    }[report.validation]
    lines = [
        f"Intended use: research and software evaluation of a prognostic model for "
        f"{info['description']} It estimates risk for a population like the development "
        "cohort; it is not a diagnostic device and must not be used to decide the care of "
        "an individual patient without local validation and regulatory approval.",
        f"What was shown: {kind}, on {report.n_evaluated} records with {report.n_events} "
        "events, with percentile bootstrap confidence intervals.",
        "What was not shown: clinical validity or utility in real patients, transportability "
        "to other populations, settings or time periods beyond those evaluated, the effect "
        "of using the model on decisions and outcomes (no impact study), or fairness beyond "
        "the subgroups listed.",
    ]
    if info.get("treatment_predictors", True):  # reports saved before the key: say it
        lines.append(
            "Treatment is confounded by indication in observational data: treatment-related "
            "risk differences are not causal effects."
        )
    if report.synthetic:
        lines.insert(0, SYNTHETIC_BANNER)
    if report.n_flagged:
        lines.append(
            f"{report.n_flagged} evaluated records had values outside the training data; "
            "their risks are extrapolations."
        )
    return lines


def _follow_up_line(days: float, unit: str) -> str:
    """The median follow-up (reverse Kaplan-Meier) in the endpoint's unit."""
    from spinerisk.endpoints import days_in_unit

    if not math.isfinite(days):
        return "Median follow-up (reverse Kaplan-Meier): not reached."
    value = days_in_unit(days, unit)
    shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"  # 4,760 days, not 4.76e+03
    return f"Median follow-up (reverse Kaplan-Meier): {shown} {unit}."


def render_html(report: EvaluationReport) -> str:
    """The report as one self-contained HTML document.

    Parameters
    ----------
    report : EvaluationReport

    Returns
    -------
    str
        HTML with inline CSS and base64-embedded PNG figures only (no scripts, no
        external resources). Every text is escaped by Jinja2's autoescape.
    """
    from spinerisk._optional import import_optional

    jinja2 = import_optional("jinja2", extra="evaluation", purpose="the HTML report")
    context = {
        "css": _CSS,
        "synthetic": report.synthetic,
        "banner": SYNTHETIC_BANNER,
        **_data_context(report),
        **_performance_context(report),
        **_comparator_context(report),
        **_subgroup_context(report),
        **_instability_context(report),
        **_sample_size_context(report.sample_size),
        **_explanation_context(report.explanations),
        "limitations": _limitations(report),
        "notes": report.notes,
    }
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(**context)


# -- the template's context, one section at a time -------------------------------------------
def _data_context(report: EvaluationReport) -> dict[str, Any]:
    """Title, cohort, data summary (outcome rates, table 1, missingness) and the model."""
    info = report.model_info
    summary = report.data_summary
    rates = summary.get("outcome_rates")
    followup = ""
    if rates is not None and "median_followup_days" in rates.attrs:
        followup = _follow_up_line(rates.attrs["median_followup_days"], report.time_unit)
    return {
        "title": f"Evaluation report: {info['endpoint']} ({report.validation} validation)"
        + (" - SYNTHETIC DATA" if report.synthetic else ""),
        "subtitle": f"Generated by spinerisk for a {info['kind']} endpoint; "
        f"{report.n_evaluated} records evaluated.",
        "cohort_line": (
            f"{report.n_records} records given; {report.n_evaluated} evaluated (eligible, "
            f"outcome observed); {report.n_excluded} excluded; {report.n_events} events; "
            f"{report.n_flagged} flagged as outside the training data."
        ),
        "outcome_rates": _Table(rates) if rates is not None else _Table(pd.DataFrame()),
        "followup": followup,
        "table_one": _Table(summary["table_one"].rename_axis("characteristic"), index=True),
        "missingness": _Table(summary["missingness"]),
        "model_table": _Table(_model_rows(report)),
    }


def _model_rows(report: EvaluationReport) -> pd.DataFrame:
    info = report.model_info
    horizons = ", ".join(
        horizon_label(h, report.time_unit) or "no horizon" for h in info["horizons"]
    )
    rows = [
        ("Endpoint", info["endpoint"]),
        ("Definition", info["description"]),
        ("Kind", info["kind"]),
        ("Backend", info["backend"]),
        ("Why this backend", info["selection_reason"]),
        ("Development records (n_train)", info["n_train"]),
        ("Horizons", horizons),
        ("Model-matrix columns", info["n_parameters"]),
        ("Validation", report.validation),
    ]
    return pd.DataFrame({"item": [r[0] for r in rows], "value": [r[1] for r in rows]})


def _performance_context(report: EvaluationReport) -> dict[str, Any]:
    """Metrics with their intervals, calibration and the decision curve."""
    s = report.settings
    return {
        "ci_line": (
            f"Estimates with {100 * s['ci']:g}% percentile bootstrap intervals "
            f"({s['n_bootstrap']} resamples of patients, seed {s['random_state']})."
        ),
        "metrics": _metrics_table(report),
        "metric_notes": _metric_notes(report),
        "calibration_line": (
            "Predicted against observed risk in tenths of predicted risk (observed: outcome "
            "rate, Kaplan-Meier or Aalen-Johansen at the horizon), and the smoothed curve "
            "with its pointwise bootstrap band (binary: LOWESS; time-to-event: running "
            "windows of 20% of the records, mean predicted risk against their Kaplan-Meier "
            "or Aalen-Johansen observed risk). Points on the dashed line are perfectly "
            "calibrated. Brier score, calibration slope and intercept at each horizon are in "
            "the metrics table (time-to-event: weighted for censoring, competing events "
            "counted as non-events)."
        ),
        "calibration_figures": [f for f in [_calibration_figure(report)] if f],
        "calibration_tables": [
            {
                "title": f"Binned calibration{at_horizon(h, report.time_unit)}",
                "table": _Table(t),
            }
            for h, t in report.calibration.items()
        ],
        "decision_line": (
            "Net benefit of acting on the model's risk at each threshold, against treating "
            "everyone or no one."
        ),
        "decision_figures": [f for f in [_decision_figure(report)] if f],
    }


def _metric_notes(report: EvaluationReport) -> list[str]:
    s = report.settings
    notes = []
    if s.get("censoring_reference"):
        notes.append(
            f"Censoring reference for Uno's C, time-dependent AUC and IBS: the "
            f"{s['censoring_reference']}."
        )
    if report.optimism is not None:
        notes.append(
            f"Optimism correction: {report.optimism.attrs.get('n_refits', s['n_optimism'])} "
            "bootstrap refits of the whole modelling procedure."
        )
    cv = report.cv_note()
    if cv is not None:
        notes.append(cv)
    return notes


def _comparator_context(report: EvaluationReport) -> dict[str, Any]:
    """The comparators beside the model: what each is, the paired table, recalibration."""
    comparison = report.comparators
    comparator_info = []
    recalibration_table = None
    if comparison is not None:
        comparator_info = [
            {"name": c["name"], "text": _comparator_text(c)} for c in comparison["info"]
        ]
        recal = comparison["recalibration"]
        if len(recal):
            shown = recal.assign(
                horizon=[horizon_label(h, report.time_unit) for h in recal["horizon"]]
            )
            recalibration_table = _Table(shown)
    return {
        "comparator_line": (
            "The model and each comparator on the same records (those with a comparator "
            f"value), with {100 * report.settings['ci']:g}% percentile bootstrap intervals; "
            "differences are model minus comparator on the same resamples (paired). Net "
            "benefit at thresholds "
            + ", ".join(f"{t:g}" for t in (comparison or {}).get("nb_thresholds", []))
            + "."
        ),
        "comparator_info": comparator_info,
        "comparator_table": _Table(report.comparator_table()) if comparison else None,
        "recalibration_table": recalibration_table,
        "comparator_figures": _comparator_figures(report),
        "comparator_notes": (comparison or {}).get("notes", []),
    }


def _comparator_text(c: dict[str, Any]) -> str:
    text = f"{c['description'] or c['source']}. Handled as {c['handling']}. "
    text += f"{c['n']} records with a value, {c['events']} events"
    text += f" ({c['n_without_value']} records without a value are left out)."
    if c["reference"]:
        text += f" Reference: {c['reference']}"
    return text


def _subgroup_context(report: EvaluationReport) -> dict[str, Any]:
    s = report.settings
    label = horizon_label(s.get("subgroup_horizon"), report.time_unit)
    return {
        "subgroup_line": (
            "Per level: n, events, discrimination and calibration with intervals"
            f"{f' (horizon {label})' if label else ''}; levels with fewer than "
            f"{s.get('min_subgroup_events')} events or non-events are listed but not scored."
        ),
        "subgroups": _subgroup_table(report),
    }


def _instability_context(report: EvaluationReport) -> dict[str, Any]:
    instability = report.instability
    if instability is None:
        return {"instability_line": "", "instability_figures": [], "instability_table": None}
    return {
        "instability_line": (
            f"Each patient's risk from {instability['n_models']} models refitted on "
            "bootstrap resamples of the development data (the whole modelling procedure), "
            "against the model's risk, for "
            f"{instability['n_records']} patients (Riley and Collins, Biom J 2023). "
            "Points far from the diagonal are patients whose risk depends on the particular "
            "development sample; the table gives the mean absolute difference over patients "
            "and refits, and its spread over patients."
        ),
        "instability_figures": [f for f in [_instability_figure(report)] if f],
        "instability_table": _Table(report.instability_table()),
    }


def _sample_size_context(ss: dict[str, Any]) -> dict[str, Any]:
    """The Riley et al. minimum sample size against the development records."""
    from spinerisk.metrics._sample_size import R2_FRACTION

    lines = []
    table = None
    if "required_n" in ss:
        lines.append(
            f"Minimum sample size to develop this model (Riley et al. criteria, pmsampsize): "
            f"{ss['required_n']} records, with {ss['required_events']:.0f} events (so "
            f"{ss['events_per_parameter']:.1f} events per candidate parameter), for "
            f"{ss['parameters']} candidate parameters. Available development records: "
            f"{ss['available_n']} - "
            f"{'adequate' if ss['adequate'] else 'NOT adequate: expect overfitting'}."
        )
        units = (
            " (pmsampsize's: rate per person-year, timepoint and meanfup in years)"
            if "timepoint" in ss["inputs"]
            else ""
        )
        inputs = ", ".join(f"{k}={v}" for k, v in ss["inputs"].items())
        lines.append(
            f"Inputs{units}: {inputs}. They come from the evaluated records; the warning "
            f"at fit time assumes a Cox-Snell R-squared of {R2_FRACTION:.0%} of its maximum "
            "instead, so its minimum can differ."
        )
        if ss.get("criteria"):
            table = _Table(pd.DataFrame(ss["criteria"]))
    if ss.get("note"):
        lines.append(ss["note"])
    if ss.get("note_basis"):
        lines.append(ss["note_basis"])
    return {"sample_size_lines": lines, "sample_size_table": table}


def _explanation_context(expl: dict[str, Any] | None) -> dict[str, Any]:
    """Global importance figure and example sentences, or the note why there are none."""
    figures = []
    examples = []
    if expl is not None and expl.get("importance") is not None and len(expl["importance"]):
        figures.append(_importance_figure(expl["importance"]))
        examples = expl.get("examples", [])
    return {
        "explanation_note": "Explanations were not requested."
        if expl is None
        else expl.get("note", ""),
        "explanation_figures": figures,
        "explanation_examples": examples,
    }
