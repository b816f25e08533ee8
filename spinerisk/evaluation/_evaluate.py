"""``evaluate(model, cohort)``: metrics with bootstrap CIs, curves, subgroups, sample size."""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from spinerisk.endpoints import check_horizons, stated_horizon
from spinerisk.evaluation._bootstrap import (
    MetricSpec,
    bootstrap_metrics,
    evaluate_specs,
    with_batches,
)
from spinerisk.evaluation._checks import check_int, check_model
from spinerisk.evaluation._comparators import Comparator, resolve_comparators
from spinerisk.evaluation._compare import COMPARATOR_THRESHOLDS, compare
from spinerisk.evaluation._curves import SURVIVAL_THRESHOLDS, curves
from spinerisk.evaluation._data import EvalData, metric_specs, predict_values, subgroup_specs
from spinerisk.evaluation._instability import prediction_instability
from spinerisk.evaluation._optimism import optimism_632plus
from spinerisk.evaluation._report import EvaluationReport
from spinerisk.exceptions import DataQualityWarning
from spinerisk.metrics import sample_size_adequacy
from spinerisk.metrics._common import check_thresholds
from spinerisk.reference import trained_on_synthetic

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["DEFAULT_SUBGROUPS", "SURVIVAL_THRESHOLDS", "evaluate"]

#: Subgroups audited by default (``age_band`` and ``region`` are derived).
#: Subgroups of the spine schema's reports (a model reads its own:
#: :attr:`spinerisk.schema.Schema.subgroup_names`).
DEFAULT_SUBGROUPS: tuple[str, ...] = ("sex", "age_band", "region", "centre_id")
#: Subgroups with fewer events than this get no metrics (a note instead).
MIN_SUBGROUP_EVENTS = 10
_VALIDATION = ("internal", "split", "temporal", "external")
_EVENT_NAMES = {0: "censored", 1: "event of interest", 2: "competing event"}
logger = logging.getLogger(__name__)


# -- parameter checks ----------------------------------------------------------------------
def _check_params(
    n_bootstrap: Any, ci: Any, n_jobs: Any, validation: Any, cv: Any, n_optimism: Any
) -> None:
    check_int("n_bootstrap", n_bootstrap, 1)
    check_int("n_optimism", n_optimism, 1)
    if isinstance(ci, bool) or not isinstance(ci, numbers.Real) or not 0 < float(ci) < 1:
        raise ValueError(
            f"ci must be a number strictly between 0 and 1 (e.g. 0.95); got ci={ci!r}."
        )
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (-1 for all cores); got {n_jobs!r}.")
    if validation not in _VALIDATION:
        raise ValueError(
            f"validation must be one of {', '.join(map(repr, _VALIDATION))}; "
            f"got validation={validation!r}."
        )
    if cv is not None:
        check_int("cv", cv, 2)


def _options(
    *,
    n_bootstrap: Any,
    ci: Any,
    n_jobs: Any,
    random_state: int,
    optimism: bool,
    n_optimism: Any,
    cv: Any,
    n_bootstrap_subgroups: Any,
    min_subgroup_events: Any,
    validation: str,
) -> _Options:
    """Check evaluate's resampling options (each names itself in its error) and collect
    them; ``n_bootstrap_subgroups=None`` means ``n_bootstrap``."""
    _check_params(n_bootstrap, ci, n_jobs, validation, cv, n_optimism)
    check_int("min_subgroup_events", min_subgroup_events, 1)
    if n_bootstrap_subgroups is None:
        n_bootstrap_subgroups = n_bootstrap
    check_int("n_bootstrap_subgroups", n_bootstrap_subgroups, 1)
    if optimism and validation != "internal":
        raise ValueError(
            "optimism=True corrects the apparent performance on the development cohort "
            f"(internal validation); got validation={validation!r}. Evaluate temporal or "
            "external cohorts without it."
        )
    return _Options(
        n_bootstrap,
        ci,
        n_jobs,
        random_state,
        optimism,
        n_optimism,
        cv,
        n_bootstrap_subgroups,
        min_subgroup_events,
        validation,
    )


def _subgroup_names(model: RiskModel, subgroups: Sequence[str] | str | None) -> list[str]:
    """The subgroups to audit: None means the model's schema's subgroups."""
    if subgroups is None:
        subgroups = model.schema_.subgroup_names
    if isinstance(subgroups, str):
        subgroups = (subgroups,)
    return list(subgroups)


def _horizons(model: RiskModel, horizons: Sequence[float] | None) -> tuple[float, ...]:
    """Horizons to evaluate (:func:`spinerisk.endpoints.check_horizons`): the model's as
    they are, or those asked for, sorted without repeats."""
    hs = check_horizons(model.endpoint_, model.horizons_, horizons)
    return hs if horizons is None else tuple(sorted(set(hs)))


def _check_thresholds(
    thresholds: Sequence[float] | None, comparator_thresholds: Sequence[float] | None
) -> tuple[tuple[float, ...] | None, tuple[float, ...]]:
    """The decision curve's thresholds (None: the kind's default range), checked up front
    by the metrics' own rule, and the comparison's (None: :data:`COMPARATOR_THRESHOLDS`)."""
    curve = None if thresholds is None else tuple(map(float, check_thresholds(thresholds)))
    if comparator_thresholds is None:
        return curve, COMPARATOR_THRESHOLDS
    values = tuple(float(t) for t in comparator_thresholds)
    if not values or any(not 0 < t < 1 for t in values):
        raise ValueError(
            "comparator_thresholds must be risks strictly between 0 and 1; got "
            f"comparator_thresholds={list(comparator_thresholds)!r}."
        )
    return curve, values


# -- malignancy gate ------------------------------------------------------------------------
def _gate(
    model: RiskModel, checked: pd.DataFrame, data: pd.DataFrame
) -> tuple[dict[str, Any] | None, list[str], np.ndarray | None]:
    """For a model bound to a malignancy gate: how the gate behaved on every validated
    record (abstention rate; sensitivity, specificity and NPV against ``malignant`` when
    recorded), and which eligible records it leaves in scope (bool over ``data``), which
    alone are evaluated; None for a model without a gate."""
    if getattr(model, "gate_", None) is None:
        return None, [], None
    from spinerisk.models import gate_performance, gate_status

    summary = gate_performance(model, checked)
    status = gate_status(model, data)
    assert status is not None  # the model has a gate
    keep = (status["status"] != "out_of_scope").to_numpy()
    summary["n_eligible_out_of_scope"] = int((~keep).sum())
    note = (
        f"Malignancy gate (threshold {summary['threshold']:g}, warning {summary['warning']:g}): "
        f"{summary['abstention_rate']:.1%} of the {summary['n']} records were out of scope "
        f"(no prognosis), {summary['warning_rate']:.1%} carried a warning; "
        f"{summary['n_eligible_out_of_scope']} eligible records out of scope are not "
        "evaluated."
    )
    if "sensitivity" in summary:
        note += (
            f" Against the recorded malignancy ({summary['n_with_truth']} records): "
            f"sensitivity {summary['sensitivity']:.3f}, specificity "
            f"{summary['specificity']:.3f}, negative predictive value {summary['npv']:.3f}."
        )
    return summary, [note], keep


# -- predictions ----------------------------------------------------------------------------
def _ibs_grid(time: np.ndarray, occurred: np.ndarray, last: float) -> np.ndarray:
    """Ten times for the integrated Brier score, inside the observed follow-up."""
    event_times = time[occurred & (time <= last)]
    if event_times.size < 2:
        return np.array([], dtype=float)
    lo, hi = np.quantile(event_times, [0.05, 0.95])
    hi = min(hi, float(np.max(time)) * 0.99, last)
    if not hi > lo:
        return np.array([], dtype=float)
    return np.linspace(lo, hi, 10)


# -- optimism and cross-validation -----------------------------------------------------------
def _cross_validate(
    model: RiskModel,
    data: pd.DataFrame,
    specs: list[MetricSpec],
    horizons: tuple[float, ...],
    grid: np.ndarray | None,
    ref: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    *,
    cv: int,
    random_state: int,
    n_jobs: int,
    refit_warns: bool = True,
) -> np.ndarray:
    """Refit a clone per fold, predict the held-out fold, pool and compute the metrics.
    ``refit_warns=False`` silences the refits' data warnings (internal validation: the
    model's own fit already warned about these records)."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold, StratifiedKFold

    ep = model.endpoint_
    target = ep.target(data)
    if ep.kind == "binary":
        splits = StratifiedKFold(cv, shuffle=True, random_state=random_state).split(data, target)
    else:
        splits = KFold(cv, shuffle=True, random_state=random_state).split(data)

    def fold(k: int, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, EvalData]:
        from sklearn.base import clone

        try:
            with warnings.catch_warnings():
                if not refit_warns:
                    warnings.simplefilter("ignore", DataQualityWarning)
                refit = clone(model).fit(data.iloc[train])
        except ValueError as exc:  # a fold's records end before a horizon, say
            raise ValueError(
                f"Cross-validation (cv={cv}): the model could not be refitted on fold "
                f"{k + 1}'s {len(train)} training records: {exc} Use fewer folds, or a "
                "model with earlier horizons."
            ) from None
        return test, predict_values(refit, data.iloc[test], horizons, grid=grid, ref=ref)[0]

    parts = Parallel(n_jobs=n_jobs)(delayed(fold)(k, tr, te) for k, (tr, te) in enumerate(splits))
    first = parts[0][1]
    # the fold of each record: the calibration slope of the fold models, each its own
    # intercept (one pooled intercept would count their baseline differences as noise)
    folds = np.concatenate([np.full(len(p[0]), k) for k, p in enumerate(parts)])
    pooled = EvalData(
        first.kind,
        np.concatenate([p[1].event for p in parts]),
        None if first.time is None else np.concatenate([p[1].time for p in parts]),
        np.vstack([p[1].risk for p in parts]),
        horizons,
        grid_risk=None if first.grid_risk is None else np.vstack([p[1].grid_risk for p in parts]),
        grid=first.grid,
        ref_time=first.ref_time,
        ref_event=first.ref_event,
        ref_any=first.ref_any,
        cause=first.cause,
        groups=folds,
    )
    return evaluate_specs(specs, pooled)


# -- subgroups, summaries ------------------------------------------------------------------------
def _subgroup_values(data: pd.DataFrame, name: str, schema: Any) -> pd.Series:
    """A subgroup variable: a derived feature of the schema (computed from the records as
    the features compute it), else a column of the cohort."""
    from spinerisk.features._clinical import derived_value

    derived = derived_value(schema, data, name)
    if derived is not None:
        return derived.astype(object)
    if name not in data.columns:
        names = [d.name for d in schema.derived]
        raise ValueError(
            f"subgroup {name!r} is neither a column of the cohort nor a derived feature of "
            f"schema {schema.name!r} ({', '.join(names) or 'none'})."
        )
    return data[name].astype(object)


def _subgroups(
    data: pd.DataFrame, evd: EvalData, names: Sequence[str], schema: Any, opt: _Options
) -> tuple[pd.DataFrame, list[str]]:
    """Metrics with bootstrap intervals per level of each subgroup (a level with fewer
    than ``opt.min_subgroup_events`` events or non-events is listed with a note)."""
    specs = subgroup_specs(evd.kind, evd.horizons[0])
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in names:
        for label, mask in _levels(_subgroup_values(data, name, schema).to_numpy()):
            row = _subgroup_row(evd, specs, mask, opt)
            rows.append({"subgroup": name, "level": label, **row})
            if row["note"]:
                notes.append(f"{name}={label}: {row['note']}.")
    columns = ["subgroup", "level", "n", "events"]
    for spec in specs:
        columns += [spec.name, f"{spec.name}_lower", f"{spec.name}_upper"]
    columns.append("note")
    return pd.DataFrame(rows).reindex(columns=columns), notes


def _levels(values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each level of a subgroup variable (sorted as text, then "missing" if any) and the
    mask of its records."""
    missing = pd.isna(values)
    labels = sorted({str(v) for v in values[~missing]})
    levels = [(lab, ~missing & (values.astype(str) == lab)) for lab in labels]
    if missing.any():
        levels.append(("missing", missing))
    return levels


def _subgroup_row(
    evd: EvalData, specs: list[MetricSpec], mask: np.ndarray, opt: _Options
) -> dict[str, Any]:
    """n, events and each metric with its interval on the records of ``mask``, or a note
    why the level is not scored."""
    idx = np.flatnonzero(mask)
    part = evd.take(idx)
    events = int(part.occurred.sum())
    row: dict[str, Any] = {"n": len(idx), "events": events}
    least = opt.min_subgroup_events
    if events < least or len(idx) - events < least:
        row["note"] = (
            f"skipped: {events} events and {len(idx) - events} non-events; metrics "
            f"need at least {least} of each"
        )
        return row
    res = bootstrap_metrics(
        with_batches(specs, part, horizon=evd.horizons[0]),
        part,
        n_bootstrap=opt.n_bootstrap_subgroups,
        ci=opt.ci,
        random_state=opt.random_state,
        n_jobs=opt.n_jobs,
    )
    for j, spec in enumerate(specs):
        row[spec.name] = res["estimate"][j]
        row[f"{spec.name}_lower"] = res["lower"][j]
        row[f"{spec.name}_upper"] = res["upper"][j]
    row["note"] = ""
    return row


def _n_parameters(model: RiskModel, data: pd.DataFrame) -> int:
    """Columns of the model matrix (candidate predictor parameters)."""
    features = model.features_
    if features is None:
        est = model.estimator_
        if hasattr(est, "calibrated_classifiers_"):
            est = est.calibrated_classifiers_[0].estimator
        features = est.named_steps["features"]
    return int(features.transform(data.head(50)).shape[1])


def _data_summary(data: pd.DataFrame, evd: EvalData, model: RiskModel) -> dict[str, Any]:
    from spinerisk.summary import table_one

    ep = model.endpoint_
    schema = model.schema_
    predictors = [c for c in ep.predictors(schema) if c in data.columns]
    missing = data[predictors].isna()
    missingness = pd.DataFrame(
        {
            "field": predictors,
            "n_missing": missing.sum().to_numpy(dtype=int),
            "pct_missing": (100.0 * missing.mean()).round(1).to_numpy(),
        }
    )
    if evd.kind == "binary":
        n_events = int(evd.event.sum())
        rates = pd.DataFrame(
            {
                "outcome": [ep.event],
                "n": [len(evd)],
                "events": [n_events],
                "pct": [round(100.0 * n_events / len(evd), 1)],
            }
        )
    else:
        codes = np.asarray(evd.event, dtype=int)
        rows = []
        for code in sorted(set(codes.tolist()) | {0, 1}):
            label = _EVENT_NAMES.get(code, f"event {code}")
            if evd.kind == "survival":
                label = "event" if code == 1 else "censored"
            k = int((codes == code).sum())
            rows.append(
                {
                    "outcome": f"{ep.event}={code} ({label})",
                    "n": len(codes),
                    "events": k,
                    "pct": round(100.0 * k / len(codes), 1),
                }
            )
        rates = pd.DataFrame(rows)
        assert evd.time is not None
        rates.attrs["median_followup_days"] = _median_follow_up(evd.time, codes)
    return {
        "table_one": table_one(
            data, by=ep.event, schema=schema, fields=_table_one_fields(schema, predictors)
        ),
        "missingness": missingness,
        "outcome_rates": rates,
    }


def _median_follow_up(time: Any, codes: Any) -> float:
    """Median follow-up in days by the reverse Kaplan-Meier method (Schemper and Smith
    1996: censoring is the "event", an event censors follow-up), so that early events do
    not shorten it; inf when more than half are still followed at the last time."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(np.asarray(time, dtype=float), np.asarray(codes) == 0)
    return float(km.median_survival_time_)


def _table_one_fields(schema: Any, predictors: list[str]) -> list[str] | None:
    """Table 1 rows: the spine schema's curated list, else the model's own predictors."""
    from spinerisk.schema import SPINE_SCHEMA

    return None if schema == SPINE_SCHEMA else predictors


def _explanations(model: RiskModel, data: pd.DataFrame, n_examples: int = 3) -> dict[str, Any]:
    """Global importance and plain-language drivers of a few records, or a note why not."""
    try:
        from spinerisk.explanation import explain as _explain
    except ImportError as exc:
        return {
            "note": "Explanations are not available: spinerisk.explain could not be "
            f"imported ({exc})."
        }
    sample = data.head(min(len(data), 200))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expl = _explain(model, sample)
            importance = expl.importance()
            sentences = expl.sentences().head(n_examples)
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        ImportError,
        RuntimeError,
    ) as exc:
        return {"note": f"Explanations could not be computed for this model: {exc}"}
    labels = getattr(expl, "labels", None) or {}
    importance = pd.Series(importance, dtype=float)
    importance.index = [str(labels.get(f, f)) for f in importance.index]
    return {
        "importance": importance,
        "examples": [{"record_id": str(i), "sentence": str(s)} for i, s in sentences.items()],
        "n_explained": len(sample),
        "note": (
            f"Contributions on the model's margin for the first {len(sample)} evaluated "
            f"records. {expl.note}"
        ),
    }


# -- the public function ------------------------------------------------------------------------
def evaluate(
    model: RiskModel,
    cohort: pd.DataFrame,
    *,
    n_bootstrap: int = 200,
    ci: float = 0.95,
    n_jobs: int = 1,
    random_state: int = 0,
    horizons: Sequence[float] | None = None,
    optimism: bool = False,
    n_optimism: int = 20,
    cv: int | None = None,
    subgroups: Sequence[str] | None = None,
    n_bootstrap_subgroups: int | None = None,
    thresholds: Sequence[float] | None = None,
    train: pd.DataFrame | None = None,
    validation: Literal["internal", "split", "temporal", "external"] = "internal",
    min_subgroup_events: int = MIN_SUBGROUP_EVENTS,
    explain: bool = True,
    comparators: Sequence[str | Comparator] | None = None,
    comparator_thresholds: Sequence[float] | None = None,
) -> EvaluationReport:
    """Evaluate a fitted risk model on a cohort: every metric with a bootstrap CI.

    The cohort is validated and restricted to records eligible for the model's endpoint
    with the outcome observed (the number excluded is reported). Risks come from
    ``model.predict_risk``; records it flags as outside the training data are counted
    (its DataQualityWarning is silenced). Confidence intervals are percentile bootstrap
    intervals over patients: each of ``n_bootstrap`` resamples draws as many patients as
    were evaluated, with replacement, and recomputes every metric on the same
    predictions.

    Parameters
    ----------
    model : RiskModel
        A fitted model (or one loaded with :func:`spinerisk.load`).
    cohort : DataFrame
        Records with the schema's fields and the endpoint's outcome columns.
    n_bootstrap : int, default=200
        Bootstrap resamples for the intervals (>= 1).
    ci : float, default=0.95
        Interval coverage, strictly between 0 and 1.
    n_jobs : int, default=1
        joblib workers for the bootstrap, the optimism refits and the folds. Results do
        not depend on it: every resample is drawn up front from ``random_state``.
    random_state : int, default=0
        Seed: the same seed gives identical numbers.
    horizons : sequence of float or None, default=None
        In the endpoint's ``time_unit`` (days for the built-in endpoints); None means
        the model's horizons. Binary endpoints have one fixed horizon.
    optimism : bool, default=False
        Internal validation only: bootstrap optimism correction. A clone of the model
        is refitted on each of ``n_optimism`` bootstrap samples (every modelling step,
        tuning and backend selection included). Discrimination and proper scores are
        corrected by Efron and Tibshirani's .632+ estimator (each refit scored on the
        records its sample left out), calibration metrics by Harrell's (the refit's
        value on its sample minus its value on the original cohort); see
        :mod:`spinerisk.evaluation._optimism`.
        The first refit is timed and the expected time of the others logged (a
        UserWarning when over 30 s) before they start. The default model keeps a
        resample's repeated records in one fold, so its internal cross-validation
        stays honest on bootstrap samples.
    n_optimism : int, default=20
        Refits for the optimism correction.
    cv : int or None, default=None
        If set, also refit a clone per fold of a ``cv``-fold split and report metrics of
        the pooled out-of-fold predictions (point estimates); the calibration slope has
        an intercept per fold (the fold models' slope; see
        :func:`spinerisk.metrics.calibration_slope`).
    subgroups : sequence of str or None, default=None
        Columns, or derived features of the model's schema (for the spine schema
        ``"age_band"`` from age_years and ``"region"`` from level). None means the
        schema's subgroups (:attr:`spinerisk.schema.Schema.subgroup_names`: for the spine
        schema sex, age band, region and centre); an empty list, or a schema with none,
        gives no subgroup table.
    n_bootstrap_subgroups : int or None, default=None
        Resamples for the subgroup intervals; None means ``n_bootstrap``. Each
        time-to-event subgroup resample refits Kaplan-Meier or Aalen-Johansen curves, so
        a smaller number here keeps large audits fast.
    thresholds : sequence of float or None, default=None
        Risk thresholds of the decision curve; None means 0.01 to 0.99 for binary
        endpoints and 0.02 to 0.60 in steps of 0.02 for time-to-event endpoints.
    train : DataFrame or None, default=None
        Training cohort used as the censoring reference of Uno's C, the time-dependent
        AUC and the integrated Brier score. None means the evaluation cohort itself
        (each bootstrap resample is its own reference).
    validation : {"internal", "split", "temporal", "external"}, default="internal"
        What the cohort is relative to the development data; recorded in the report:
        ``"internal"`` the development records themselves (apparent performance),
        ``"split"`` a random part of the development cohort held out from fitting,
        ``"temporal"`` a later period, ``"external"`` another cohort.
    min_subgroup_events : int, default=10
        Subgroup levels with fewer events (or non-events) get no metrics, with a note.
    explain : bool, default=True
        Add global importance and example explanations (:mod:`spinerisk.explanation`), or a
        note when the model's explanations cannot be computed.
    comparators : sequence of str or Comparator, or None, default=None
        Existing scores or published calculators to evaluate next to the model on the
        same records: names of schema fields (role ``comparator``), names of shipped
        calculators (``"garvan"``, see :data:`spinerisk.evaluation.CALCULATORS`) or
        :class:`~spinerisk.evaluation.Comparator` objects (values computed elsewhere,
        such as FRAX, joined by record id). None means the endpoint's declared
        comparators; an empty list, none. Each is scored on the records where it has a
        value, with the model on the same records: discrimination (AUROC, Harrell's C or
        the competing-risks C) and net benefit at ``comparator_thresholds`` with
        bootstrap CIs and paired bootstrap differences (model minus comparator, the same
        resamples); a probability also gets the Brier score and calibration. A score
        that is not a probability is never read as one: its net benefit is computed
        after logistic recalibration on the evaluation records (weighted for censoring
        for time-to-event endpoints), refitted in every resample and stated in the
        report.
    comparator_thresholds : sequence of float or None, default=None
        Risk thresholds of the net benefit comparison; None means 0.05, 0.10, 0.20 and
        0.30.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    TypeError
        If ``model`` is not a RiskModel.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    ValueError
        For a parameter out of range, ``optimism=True`` with external or temporal
        validation, or a cohort without eligible records with the outcome observed.
    SchemaValidationError
        If the cohort does not satisfy the schema.

    See Also
    --------
    temporal_split, centre_split, EvaluationReport

    Notes
    -----
    On the synthetic cohort these numbers show that the software works; they say nothing
    about clinical validity. Time-dependent AUC of competing endpoints treats the
    competing event as censoring (a cause-specific AUC); the competing-risks C counts it
    as a control.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import evaluate
    >>> cohort = sr.make_spine_cohort(600, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> report = evaluate(model, cohort, n_bootstrap=20, subgroups=("sex",), explain=False)
    >>> table = report.to_frame()
    >>> list(table.columns)
    ['metric', 'horizon', 'estimate', 'lower', 'upper']
    >>> auroc = table.set_index("metric").loc["auroc"]
    >>> bool(auroc["lower"] <= auroc["estimate"] <= auroc["upper"])
    True
    >>> evaluate(model, cohort, ci=95)
    Traceback (most recent call last):
    ...
    ValueError: ci must be a number strictly between 0 and 1 (e.g. 0.95); got ci=95.
    """
    check_model(model)
    opt = _options(
        n_bootstrap=n_bootstrap,
        ci=ci,
        n_jobs=n_jobs,
        random_state=random_state,
        optimism=optimism,
        n_optimism=n_optimism,
        cv=cv,
        n_bootstrap_subgroups=n_bootstrap_subgroups,
        min_subgroup_events=min_subgroup_events,
        validation=validation,
    )
    comps = resolve_comparators(comparators, model)
    thresholds, nb_thresholds = _check_thresholds(thresholds, comparator_thresholds)
    subgroups = _subgroup_names(model, subgroups)
    rec = _records(model, cohort, train, _horizons(model, horizons), comps)
    evd, data = rec.evd, rec.data
    metrics, boot = _apparent(rec, opt)
    notes: list[str] = []
    optimism_table = _optimism_table(model, rec, metrics, boot, opt, notes) if optimism else None
    cv_table = None if cv is None else _cv_table(model, rec, metrics, opt)
    notes += _record_notes(model, rec, metrics, optimism_table, cv_table)
    comparison = None
    if comps:
        comparison = compare(
            evd, comps, thresholds=thresholds, nb_thresholds=nb_thresholds, **opt.boot
        )
        notes += comparison["notes"]
    binned, smooth, decision = curves(
        evd, thresholds, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state
    )
    subgroup_table, subgroup_notes = _subgroups(data, evd, subgroups, model.schema_, opt)
    notes += subgroup_notes + rec.gate_notes
    sample_size = _sample_size(model, rec, metrics, validation)
    return EvaluationReport(
        model_info=_model_info(model, sample_size, rec.gate_summary),
        validation=validation,
        synthetic=bool(cohort.attrs.get("synthetic", False)) or bool(trained_on_synthetic(model)),
        horizons=evd.horizons,
        n_records=len(rec.checked),
        n_evaluated=len(data),
        n_excluded=int(len(rec.checked) - len(data)),
        n_flagged=rec.flagged,
        n_events=int(evd.occurred.sum()),
        settings=_settings(model, rec, opt, optimism_table, comps),
        metrics=metrics,
        optimism=optimism_table,
        cross_validation=cv_table,
        calibration=binned,
        smoothed_calibration=smooth,
        decision_curve=decision,
        subgroups=subgroup_table,
        sample_size=sample_size,
        data_summary=_data_summary(data, evd, model),
        instability=(  # from the bootstrap refits behind the model's risk intervals
            prediction_instability(model, data)
            if getattr(model, "interval_models_", None)
            else None
        ),
        explanations=_explanations(model, data) if explain else None,
        notes=notes,
        comparators=comparison,
    )


# -- evaluate's steps -----------------------------------------------------------------------------
class _Options(NamedTuple):
    """evaluate's checked resampling options."""

    n_bootstrap: int
    ci: float
    n_jobs: int
    random_state: int
    optimism: bool
    n_optimism: int
    cv: int | None
    n_bootstrap_subgroups: int
    min_subgroup_events: int
    validation: str = "internal"

    @property
    def boot(self) -> dict[str, Any]:
        """Keywords of :func:`bootstrap_metrics` (and of the comparison)."""
        return {
            "n_bootstrap": self.n_bootstrap,
            "ci": self.ci,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }


class _Records(NamedTuple):
    """The evaluated records and what :func:`evaluate` computes on them before any metric."""

    checked: pd.DataFrame  # the validated cohort
    data: pd.DataFrame  # eligible, outcome observed, in the gate's scope
    evd: EvalData  # their outcomes and predicted risks (and comparator scores)
    flagged: int  # records flagged as outside the training data
    specs: list[MetricSpec]
    grid: np.ndarray | None  # times of the integrated Brier score (time-to-event)
    ref: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # censoring reference (train)
    gate_summary: dict[str, Any] | None
    gate_notes: list[str]


def _records(
    model: RiskModel,
    cohort: pd.DataFrame,
    train: pd.DataFrame | None,
    hs: tuple[float, ...],
    comps: list[Comparator],
) -> _Records:
    """Validate the cohort, keep the eligible records in the gate's scope, predict their
    risks (and read the comparators) and choose the metrics."""
    ep = model.endpoint_
    lab = ep.labelled(cohort, model.schema_)
    gate_summary, gate_notes, keep = _gate(model, lab.checked, lab.data)
    data = lab.data if keep is None else lab.data[keep]
    target = lab.target if keep is None else lab.target[keep]
    if len(data) == 0:
        raise ValueError(
            f"No records in the cohort are eligible for the {ep.name} endpoint with its "
            f"outcome ({', '.join(ep.outcome_columns)}) observed; {len(lab.checked)} records "
            "were excluded. Check the outcome columns"
            + (
                f" and the treatment (eligible: {', '.join(ep.eligible_treatments)})."
                if ep.eligible_treatments
                else "."
            )
        )
    ref = None if train is None or ep.kind == "binary" else _censoring_reference(model, train)
    grid = None
    if ep.kind != "binary":
        of_interest = (
            target["event"] == ep.event_of_interest
            if ep.kind == "competing"
            else target["event"] != 0
        )
        grid = _ibs_grid(target["time"].astype(float), np.asarray(of_interest, dtype=bool), hs[-1])
    evd, flagged = predict_values(model, data, hs, grid=grid, ref=ref)
    if len(np.unique(evd.occurred)) < 2:
        raise ValueError(
            f"The {len(data)} eligible records have "
            f"{'no' if not evd.occurred.any() else 'only'} events of the {ep.name} outcome; "
            "discrimination and calibration need both events and non-events."
        )
    if comps:
        scores = np.column_stack([c.compute(data, model.id_field_) for c in comps])
        evd = replace(evd, scores=scores)
    specs = metric_specs(ep.kind, hs, with_ibs=grid is not None and grid.size > 0)
    return _Records(lab.checked, data, evd, flagged, specs, grid, ref, gate_summary, gate_notes)


def _record_notes(model: RiskModel, rec: _Records, *tables: pd.DataFrame | None) -> list[str]:
    """Notes on the evaluated records: horizons beyond their follow-up (whose metrics in
    ``tables`` become n/a) and the records the endpoint left out, with reasons."""
    notes = []
    if model.endpoint_.kind != "binary":
        notes += beyond_follow_up(model.endpoint_, rec.evd, *tables)
    left_out = model.endpoint_.exclusion_lines(rec.checked, model.schema_)
    if left_out:
        notes.append("Records not evaluated: " + "; ".join(left_out) + ".")
    return notes


#: Fewest records followed beyond a horizon for its metrics to pass without a note.
MIN_FOLLOWED_BEYOND = 10


def beyond_follow_up(ep: Any, evd: EvalData, *tables: pd.DataFrame | None) -> list[str]:
    """Metrics at a horizon no evaluated record is followed beyond are not estimable:
    their values become missing in every table (rows with that horizon, Uno's C and the
    integrated Brier score of the last horizon too), with a note; a horizon with fewer
    than :data:`MIN_FOLLOWED_BEYOND` records followed beyond it gets a note."""
    time = np.asarray(evd.follow_up, dtype=float)
    last = float(time.max())
    notes = []
    beyond = [h for h in evd.horizons if h not in evd.estimable_horizons]
    for table in tables:
        if table is None or not beyond:
            continue
        # Uno's C and the integrated Brier score carry the last horizon: n/a with it
        rows = table["horizon"].isin(beyond).to_numpy()
        values = [c for c in table.columns if c not in ("metric", "horizon", "n_resamples")]
        table.loc[rows, values] = np.nan
        if "n_resamples" in table.columns:
            table.loc[rows, "n_resamples"] = 0
    if beyond:
        notes.append(
            f"Horizon(s) {', '.join(ep.horizon_label(h) for h in beyond)} lie at or beyond "
            f"the evaluated records' last follow-up time ({ep.horizon_label(last)}): no "
            "record is followed past them, so their metrics are not estimable (n/a). "
            "Evaluate at shorter horizons or on records with longer follow-up."
        )
    few = [
        (h, int((time > h).sum()))
        for h in evd.estimable_horizons
        if (time > h).sum() < MIN_FOLLOWED_BEYOND
    ]
    if few:
        notes.append(
            "Few records are followed beyond "
            + ", ".join(f"{ep.horizon_label(h)} ({k})" for h, k in few)
            + f" (fewer than {MIN_FOLLOWED_BEYOND}): the metrics there rest on very few "
            "patients; read them with their intervals."
        )
    return notes


def _censoring_reference(
    model: RiskModel, train: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow-up, event of interest and any event of the training cohort's eligible
    records: the censoring reference of Uno's C, the time-dependent AUC and the IBS."""
    ep = model.endpoint_
    y_train = ep.labelled(train, model.schema_).target
    ref_event = (
        y_train["event"] == ep.event_of_interest if ep.kind == "competing" else y_train["event"]
    )
    return (
        y_train["time"].astype(float),
        np.asarray(ref_event, dtype=bool),
        np.asarray(y_train["event"] != 0, dtype=bool),
    )


def _apparent(rec: _Records, opt: _Options) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Every metric on the evaluated records with its bootstrap interval: the metric
    table and the bootstrap's output."""
    specs = rec.specs
    boot = bootstrap_metrics(
        with_batches(specs, rec.evd, horizon=rec.evd.horizons[-1]), rec.evd, **opt.boot
    )
    metrics = pd.DataFrame(
        {
            "metric": [s.name for s in specs],
            "horizon": [np.nan if s.horizon is None else float(s.horizon) for s in specs],
            "estimate": boot["estimate"],
            "lower": boot["lower"],
            "upper": boot["upper"],
            "n_resamples": boot["n_resamples"].astype(int),
        }
    )
    return metrics, boot


def _optimism_table(
    model: RiskModel,
    rec: _Records,
    metrics: pd.DataFrame,
    boot: dict[str, np.ndarray],
    opt: _Options,
    notes: list[str],
) -> pd.DataFrame:
    """Apparent, optimism and corrected value of each metric (.632+ bootstrap); a note
    in ``notes`` when refits failed."""
    optimism, used = optimism_632plus(
        model,
        rec.data,
        rec.specs,
        rec.evd.horizons,
        rec.evd,
        rec.grid,
        n_optimism=opt.n_optimism,
        random_state=opt.random_state,
        n_jobs=opt.n_jobs,
    )
    table = metrics[["metric", "horizon"]].assign(
        apparent=boot["estimate"], optimism=optimism, corrected=boot["estimate"] - optimism
    )
    table.attrs["n_refits"] = used
    if used < opt.n_optimism:
        notes.append(
            f"Optimism: {opt.n_optimism - used} of {opt.n_optimism} refits failed and were "
            "left out (resamples the model cannot be fitted on, such as one with no event "
            "before a horizon); the correction rests on the others, which are not a random "
            "share of the resamples: read it with care."
        )
    return table


def _cv_table(
    model: RiskModel, rec: _Records, metrics: pd.DataFrame, opt: _Options
) -> pd.DataFrame:
    """Metrics of the pooled out-of-fold predictions of ``opt.cv`` folds."""
    assert opt.cv is not None
    estimate = _cross_validate(
        model,
        rec.data,
        rec.specs,
        rec.evd.horizons,
        rec.grid,
        rec.ref,
        cv=opt.cv,
        random_state=opt.random_state,
        n_jobs=opt.n_jobs,
        refit_warns=opt.validation != "internal",
    )
    return metrics[["metric", "horizon"]].assign(estimate=estimate)


def _sample_size(
    model: RiskModel, rec: _Records, metrics: pd.DataFrame, validation: str
) -> dict[str, Any]:
    """Riley et al.'s minimum sample size against the model's development records."""
    kind = model.endpoint_.kind
    evd = rec.evd
    cstat = (
        float(metrics.loc[metrics["metric"] == "auroc", "estimate"].iloc[0])
        if kind == "binary"
        else None
    )
    sample_size = sample_size_adequacy(
        kind=kind,
        n_available=int(model.n_train_),
        parameters=_n_parameters(model, rec.data),
        event=evd.event if kind != "competing" else evd.occurred,
        time=evd.time,
        cstatistic=cstat,
        horizon=evd.horizons[-1],
    )
    if validation != "internal":
        sample_size["note_basis"] = (
            "Outcome rate and performance taken from the validation cohort; the required "
            "size is compared with the model's development n."
        )
    return sample_size


def _settings(
    model: RiskModel,
    rec: _Records,
    opt: _Options,
    optimism_table: pd.DataFrame | None,
    comps: list[Comparator],
) -> dict[str, Any]:
    """The report's record of how it was computed."""
    return {
        "n_bootstrap": opt.n_bootstrap,
        "ci": float(opt.ci),
        "random_state": opt.random_state,
        "optimism": bool(opt.optimism),
        "n_optimism": opt.n_optimism if opt.optimism else None,
        "n_optimism_refits": (
            optimism_table.attrs["n_refits"] if optimism_table is not None else None
        ),
        "cv": opt.cv,
        "censoring_reference": (
            None
            if model.endpoint_.kind == "binary"
            else ("training cohort" if rec.ref is not None else "evaluation cohort")
        ),
        "ibs_times": None if rec.grid is None else [float(t) for t in rec.grid],
        "n_bootstrap_subgroups": opt.n_bootstrap_subgroups,
        "subgroup_horizon": stated_horizon(rec.evd.horizons[0]),
        "min_subgroup_events": opt.min_subgroup_events,
        "comparators": [c.name for c in comps],
    }


def _model_info(
    model: RiskModel, sample_size: dict[str, Any], gate_summary: dict[str, Any] | None
) -> dict[str, Any]:
    ep = model.endpoint_
    info = {
        "endpoint": ep.name,
        "kind": ep.kind,
        "description": ep.description,
        "backend": model.backend_,
        "selection_reason": getattr(model, "selection_reason_", ""),
        "n_train": int(model.n_train_),
        "horizons": list(model.horizons_),
        "time_unit": ep.time_unit,
        # treatment fields the model reads (their effects are confounded by indication)
        "treatment_predictors": ep.treatment_predictors(model.schema_),
        "n_parameters": sample_size["parameters"],
    }
    if gate_summary is not None:
        info["malignancy_gate"] = gate_summary
    return info
