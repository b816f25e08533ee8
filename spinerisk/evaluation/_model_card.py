"""A model card: the TRIPOD+AI items a fitted model and its evaluation report know, as
JSON and self-contained HTML."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from spinerisk.endpoints import stated_horizons
from spinerisk.evaluation._format import CSS, SYNTHETIC_BANNER, fmt, horizons_in_unit, json_tree

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["ModelCard", "model_card"]

CARD_FORMAT = "spinerisk-model-card"
CARD_VERSION = 2

#: TRIPOD+AI topics and the card section that answers each (or why it cannot).
_TRIPOD_TOPICS: tuple[tuple[str, str, str], ...] = (
    ("Title and identification", "model", "always"),
    ("Intended use and users", "intended_use", "always"),
    ("Source of data", "data", "always"),
    ("Participants and eligibility", "data.eligibility", "always"),
    ("Outcome (definition, horizon)", "outcome", "always"),
    ("Predictors (definitions, units)", "predictors", "always"),
    ("Sample size", "data.sample_size", "always"),
    ("Missing data", "data.missing_data", "always"),
    ("Analytical methods (model type, selection, calibration)", "model", "always"),
    ("Model output", "model.output", "always"),
    ("Performance (discrimination, calibration, clinical utility, with CIs)", "performance",
     "report"),
    ("Fairness (performance in subgroups)", "performance.subgroups", "report"),
    ("Comparison with existing scores", "performance.comparators", "report"),
    ("Decision threshold", "performance.threshold", "threshold"),
    ("Model updating", "lineage", "lineage"),
    ("Limitations", "limitations", "always"),
    ("Software and reproducibility", "software", "always"),
)  # fmt: skip


@dataclass(eq=False)
class ModelCard:
    """The TRIPOD+AI items a model, its report and its bundle know.

    Built by :func:`model_card`; render it with :meth:`to_dict`, :meth:`to_json` or
    :meth:`to_html`.

    Attributes
    ----------
    content : dict
        Sections ``model, intended_use, data, outcome, predictors, performance,
        lineage, limitations, software`` and ``tripod_ai`` (each topic, the section that
        reports it, or ``"not known"`` with the reason).
    """

    content: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-serialisable Python objects.

        Returns
        -------
        dict
        """
        return json.loads(json.dumps(self.content))  # type: ignore[no-any-return]

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The card as JSON text, written atomically to ``path`` when given.

        Parameters
        ----------
        path : str, path-like or None, default=None

        Returns
        -------
        str
        """
        text = json.dumps(self.content, indent=2)
        if path is not None:
            _write(Path(path), text)
        return text

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the card as one self-contained HTML page (no scripts, no external
        resources; every text escaped).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        Path
        """
        text = _render(self.content)
        return _write(Path(path), text)


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# -- sections --------------------------------------------------------------------------------
def _predictors(model: RiskModel) -> list[dict[str, Any]]:
    schema, ep = model.schema_, model.endpoint_
    out = []
    for name in ep.predictors(schema):
        spec = schema[name]
        allowed = ""
        if spec.categories is not None:
            allowed = ", ".join(map(str, spec.categories))
        elif spec.min is not None or spec.max is not None:
            allowed = f"{spec.min if spec.min is not None else ''} to "
            allowed += f"{spec.max if spec.max is not None else ''}"
        out.append(
            {
                "name": name,
                "description": spec.description,
                "unit": spec.unit,
                "type": spec.dtype,
                "allowed": allowed.strip(),
                "missing_allowed": bool(spec.nullable),
                "source": spec.source,
            }
        )
    return out


def _outcome(model: RiskModel) -> dict[str, Any]:
    ep = model.endpoint_
    return {
        "endpoint": ep.name,
        "kind": ep.kind,
        "definition": ep.description,
        "event_column": ep.event,
        "time_column": ep.time,
        "time_unit": ep.time_unit,
        "horizons_days": stated_horizons(model.horizons_),
        "horizons": [ep.horizon_label(h) for h in stated_horizons(model.horizons_)],
        "event_of_interest": ep.event_of_interest if ep.kind == "competing" else None,
        "competing_events": "other non-zero event codes" if ep.kind == "competing" else None,
        "comparators_declared": list(ep.comparators),
    }


def _data(model: RiskModel, report: Any) -> dict[str, Any]:
    ep = model.endpoint_
    ref = getattr(model, "reference_", None) or {}
    eligibility = []
    if ep.eligible_treatments:
        eligibility.append("treatment in: " + ", ".join(ep.eligible_treatments))
    if ep.eligibility:
        eligibility.append(f"records where `{ep.eligibility}` holds")
    eligibility.append(f"outcome ({', '.join(ep.outcome_columns)}) observed")
    data: dict[str, Any] = {
        "synthetic": bool(ref.get("synthetic", False)),
        "schema": f"{model.schema_.name} (version {getattr(model.schema_, 'version', '') or '-'})",
        "n_development": int(model.n_train_),
        "n_excluded_at_fit": int(getattr(model, "n_excluded_", 0)),
        "eligibility": "; ".join(eligibility),
        "training_reference_created_utc": ref.get("created_utc"),
        "missing_data": (
            "Missing predictor values are imputed inside the fitted pipeline (fitted on the "
            "development records only), with missing-value indicators where the feature "
            "pipeline adds them; records are never dropped for a missing predictor."
        ),
        "sample_size": json_tree(getattr(model, "sample_size_", None)),
    }
    if report is not None:
        data["missing_in_evaluation"] = json_tree(report.data_summary.get("missingness"))
        data["sample_size"] = json_tree(report.sample_size) or data["sample_size"]
    return data


def _model_section(model: RiskModel, bundle: Any) -> dict[str, Any]:
    ep = model.endpoint_
    selection = getattr(model, "selection_", None)
    section: dict[str, Any] = {
        "name": f"spinerisk {ep.name} model",
        "backend": model.backend_,
        "selection_reason": getattr(model, "selection_reason_", ""),
        "selection_table": _selection_records(selection),
        "parameters": json_tree({k: repr(v) for k, v in model.get_params(deep=False).items()}),
        "output": (
            "Probability of the outcome "
            + (
                f"by each horizon ({', '.join(ep.horizon_label(h) for h in model.horizons_)})"
                if ep.kind != "binary"
                else "as defined by the endpoint"
            )
            + (
                ", as a cumulative incidence with the competing events accounted for"
                if ep.kind == "competing"
                else ""
            )
            + "; with per-record warnings for values outside the development data."
        ),
    }
    if bundle is not None:
        raw = Path(bundle).read_bytes()
        section["bundle"] = {
            "file": Path(bundle).name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "bytes": len(raw),
        }
    return section


def _selection_records(selection: Any) -> Any:
    """The candidates' table of a default model with the candidates named (the index)."""
    if not isinstance(selection, pd.DataFrame):
        return None
    table = selection.copy()
    if table.index.nlevels == 1 and table.index.name is None:
        table.index.name = "candidate"
    return json_tree(table.reset_index())


def _performance(report: Any, threshold: Any) -> dict[str, Any] | None:
    if report is None and threshold is None:
        return None
    out: dict[str, Any] = {}
    if report is not None:
        out.update(
            {
                "validation": report.validation,
                "n_evaluated": report.n_evaluated,
                "n_events": report.n_events,
                "synthetic_evaluation": report.synthetic,
                "intervals": (
                    f"{100 * report.settings['ci']:g}% percentile bootstrap, "
                    f"{report.settings['n_bootstrap']} resamples of patients"
                ),
                "time_unit": report.time_unit,  # of the metric tables' horizons
                "metrics": json_tree(horizons_in_unit(report.metrics, report.time_unit)),
                "optimism_corrected": json_tree(
                    horizons_in_unit(report.optimism, report.time_unit)
                ),
                "cross_validated": json_tree(
                    horizons_in_unit(report.cross_validation, report.time_unit)
                ),
                "subgroups": json_tree(horizons_in_unit(report.subgroups, report.time_unit)),
                "comparators": None
                if report.comparators is None
                else {
                    "info": json_tree(report.comparators["info"]),
                    "table": json_tree(
                        horizons_in_unit(report.comparators["table"], report.time_unit)
                    ),
                },
                "notes": list(report.notes),
            }
        )
    if threshold is not None:
        out["threshold"] = threshold.to_dict()
    return out


def _tripod(content: dict[str, Any], report: Any, threshold: Any, lineage: Any) -> list[dict]:
    rows = []
    for topic, section, needs in _TRIPOD_TOPICS:
        status = "reported"
        if needs == "report" and report is None:
            status = "not known: pass the evaluation report (model_card(model, report))"
        elif needs == "threshold" and threshold is None:
            status = "not known: no decision threshold was chosen (choose_threshold)"
        elif needs == "lineage" and lineage is None:
            status = "not applicable: the model was developed, not updated"
        elif section == "performance.comparators" and (
            report is None or report.comparators is None
        ):
            status = "not known: the evaluation had no comparators"
        rows.append({"topic": topic, "section": section, "status": status})
    rows.append(
        {
            "topic": "Clinical impact, patient involvement, ethics approval, funding",
            "section": "",
            "status": "not known to spinerisk: the developers must report these",
        }
    )
    return rows


def _limitations(model: RiskModel, report: Any) -> list[str]:
    ref = getattr(model, "reference_", None) or {}
    lines = []
    if ref.get("synthetic") or (report is not None and report.synthetic):
        lines.append(
            "SYNTHETIC DATA: the model or its evaluation used simulated patients; nothing "
            "here shows clinical validity."
        )
    lines += [
        "Not validated for clinical use; not a medical device.",
        "Transportability to other populations, settings or periods is not shown unless "
        "an external or temporal evaluation says so.",
    ]
    if model.endpoint_.treatment_predictors(model.schema_):
        lines.append(
            "Treatment is confounded by indication in observational data: treatment-related "
            "risk differences are not causal effects."
        )
    if report is None:
        lines.append("No evaluation report was attached: performance is not documented here.")
    elif report.validation == "internal":
        lines.append(
            "Performance is internal (apparent"
            + (", optimism-corrected" if report.optimism is not None else "")
            + "); expect lower performance on new patients."
        )
    ss = getattr(model, "sample_size_", None)
    if isinstance(ss, dict) and isinstance(ss.get("required_n"), int | float):
        n = ss.get("n", getattr(model, "n_train_", None))
        if n is not None and n < ss["required_n"]:
            lines.append(
                f"The development sample ({n} records) is below the Riley et al. minimum "
                f"for {ss.get('parameters')} candidate parameters ({ss['required_n']}): "
                "expect overfitting."
            )
    return lines


def model_card(
    model: RiskModel,
    report: Any = None,
    *,
    threshold: Any = None,
    bundle: str | os.PathLike[str] | None = None,
) -> ModelCard:
    """A model card with the TRIPOD+AI items the model, its report and bundle know.

    Parameters
    ----------
    model : RiskModel
        A fitted (or loaded) model.
    report : EvaluationReport or None, default=None
        Its evaluation (:func:`spinerisk.evaluate`); without one the card says that
        performance is not documented.
    threshold : ThresholdChoice or None, default=None
        A decision threshold chosen with :func:`spinerisk.evaluation.choose_threshold`.
    bundle : path-like or None, default=None
        The model's bundle file: its name and sha256 identify the model.

    Returns
    -------
    ModelCard

    See Also
    --------
    spinerisk.evaluation.evaluate, spinerisk.evaluation.choose_threshold

    Notes
    -----
    The card lists each TRIPOD+AI topic with the section that reports it, or why it is
    not known (clinical impact, ethics, funding and patient involvement are for the
    developers to report). Lineage comes from ``model.lineage_`` when the model was
    updated (:mod:`spinerisk.update`).

    References
    ----------
    Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for
    reporting clinical prediction models that use regression or machine learning
    methods. BMJ 2024;385:e078378.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import model_card
    >>> cohort = sr.make_spine_cohort(600, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> card = model_card(model).to_dict()
    >>> card["outcome"]["endpoint"], card["data"]["synthetic"]
    ('nonunion', True)
    >>> card["performance"] is None
    True
    """
    from spinerisk._version import library_versions
    from spinerisk.evaluation._checks import check_model

    check_model(model)
    if report is not None and report.model_info.get("endpoint") != model.endpoint_.name:
        raise ValueError(
            f"The report evaluates the {report.model_info.get('endpoint')!r} model, not "
            f"this {model.endpoint_.name!r} model."
        )
    lineage = getattr(model, "lineage_", None)
    content: dict[str, Any] = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "generated_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": _model_section(model, bundle),
        "intended_use": [
            f"Research and software evaluation of a prognostic model for "
            f"{model.endpoint_.description}",
            "Estimates risk for patients like those of the development data; not for "
            "deciding an individual patient's care without local validation and "
            "regulatory approval.",
            "Users: clinical researchers and data scientists evaluating the model.",
        ],
        "data": _data(model, report),
        "outcome": _outcome(model),
        "predictors": _predictors(model),
        "performance": json_tree(_performance(report, threshold)),
        "lineage": json_tree(lineage),
        "limitations": _limitations(model, report),
        "software": library_versions(),
    }
    content["tripod_ai"] = _tripod(content, report, threshold, lineage)
    return ModelCard(json_tree(content))


# -- HTML ------------------------------------------------------------------------------------
_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
{%- macro table(rows) -%}
{% if rows %}<table>
<thead><tr>{% for c in rows[0] %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in rows %}
<tr>{% for c in row %}<td>{{ fmt(row[c]) }}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>{% else %}<p class="note">None.</p>{% endif %}
{%- endmacro %}
{%- macro pairs(d) -%}
<table><tbody>
{%- for k, v in d.items() if v is not mapping and not (v is iterable and v is not string) %}
<tr><th>{{ k }}</th><td>{{ fmt(v) }}</td></tr>
{%- endfor %}
</tbody></table>
{%- endmacro %}
{% if synthetic %}
<div id="synthetic-banner" class="banner" role="alert">{{ banner }}</div>
{% endif %}
<h1>{{ title }}</h1>
<p class="note">Generated {{ c.generated_utc }} by spinerisk {{ c.software.spinerisk }}.</p>
<section id="intended-use"><h2>Intended use</h2>
<ul>{% for line in c.intended_use %}<li>{{ line }}</li>{% endfor %}</ul></section>
<section id="model"><h2>Model</h2>{{ pairs(c.model) }}
{% if c.model.selection_table %}<h3>Candidates of the default model</h3>
{{ table(c.model.selection_table) }}{% endif %}
{% if c.model.bundle %}{{ pairs(c.model.bundle) }}{% endif %}</section>
<section id="data"><h2>Data</h2>{{ pairs(c.data) }}
{% if c.data.sample_size is mapping %}<h3>Sample size</h3>{{ pairs(c.data.sample_size) }}{% endif %}
</section>
<section id="outcome"><h2>Outcome</h2>{{ pairs(c.outcome) }}</section>
<section id="predictors"><h2>Predictors</h2>{{ table(c.predictors) }}</section>
<section id="performance"><h2>Performance</h2>
{% if c.performance %}{{ pairs(c.performance) }}
{% if c.performance.metrics %}<h3>Metrics</h3>{{ table(c.performance.metrics) }}{% endif %}
{% if c.performance.comparators %}<h3>Comparators</h3>
{{ table(c.performance.comparators.table) }}{% endif %}
{% if c.performance.threshold %}<h3>Decision threshold</h3>
{{ pairs(c.performance.threshold) }}{{ table(c.performance.threshold.table) }}{% endif %}
{% else %}<p class="note">No evaluation report was attached.</p>{% endif %}</section>
<section id="lineage"><h2>Lineage</h2>
{% if c.lineage %}<pre>{{ lineage_text }}</pre>
{% else %}<p class="note">The model was developed, not updated.</p>{% endif %}</section>
<section id="limitations"><h2>Limitations</h2>
<ul>{% for line in c.limitations %}<li>{{ line }}</li>{% endfor %}</ul></section>
<section id="tripod-ai"><h2>TRIPOD+AI items</h2>{{ table(c.tripod_ai) }}</section>
</body>
</html>
"""


def _render(content: dict[str, Any]) -> str:
    from spinerisk._optional import import_optional

    jinja2 = import_optional("jinja2", extra="evaluation", purpose="the HTML model card")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    synthetic = bool(content["data"].get("synthetic")) or bool(
        (content.get("performance") or {}).get("synthetic_evaluation")
    )
    title = f"Model card: {content['model']['name']}" + (" - SYNTHETIC DATA" if synthetic else "")
    return env.from_string(_TEMPLATE).render(
        c=content,
        css=CSS,
        title=title,
        synthetic=synthetic,
        banner=SYNTHETIC_BANNER,
        fmt=fmt,
        lineage_text=json.dumps(content.get("lineage"), indent=2),
    )
