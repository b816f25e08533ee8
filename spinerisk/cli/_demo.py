"""``spinerisk demo``: the main job on the embedded synthetic cohort."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from spinerisk.cli._common import BANNER, fail, print_frame, stderr, stdout, typer

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

_OUTCOMES = (
    ("collapse_6m", "Progressive collapse at 6 months"),
    ("nonunion", "Nonunion at 6-12 months (conservative and fixation)"),
    ("fx_event", "Future fracture, first event (death competing)"),
)


def demo(
    n: Annotated[int, typer.Option(help="Number of synthetic patients.", min=50)] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 0,
    profile: Annotated[str, typer.Option(help="Cohort profile: japan or western.")] = "japan",
    models: Annotated[
        bool, typer.Option(help="Also fit the risk models and show example risks.")
    ] = True,
    cervical: Annotated[
        bool,
        typer.Option(
            help="With the models, also generate the cervical trauma and malignant-fracture "
            "cohorts and fit the odontoid nonunion, cervical mortality and malignant "
            "fracture models (and the nonunion model's malignancy gate)."
        ),
    ] = True,
    report_dir: Annotated[
        Path,
        typer.Option(help="Where to write the HTML validation report of each model."),
    ] = Path("demo-report"),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the report's confidence intervals.", min=1)
    ] = 100,
) -> None:
    """Run the main job on the embedded synthetic cohort.

    Generates a synthetic acute osteoporotic vertebral fracture cohort, validates it
    against the default spine schema, builds the feature pipeline, prints a Table 1 per
    outcome, then fits a risk model per endpoint on 80% of the cohort (the default model:
    cross-validated stacking), shows the risks of three held-out patients and writes an HTML
    validation report per model, evaluated on the held-out 20%, to --report-dir. Then
    (unless --no-cervical) it does the same for the cervical and pathological-fracture
    endpoints on two more synthetic cohorts of --n records: odontoid nonunion and cervical
    mortality (cervical fractures at 65 or more) and malignant fracture (OVF cohort with
    malignant fractures), and binds the malignancy model to the nonunion model as a gate.
    """
    import spinerisk as sr

    out = stdout()
    out.print(f"[bold red]{BANNER}[/bold red]")
    try:
        cohort = sr.make_spine_cohort(n, seed=seed, profile=profile)  # type: ignore[arg-type]
    except ValueError as exc:
        fail(exc)
    out.print(f"Generated {len(cohort)} synthetic records (seed={seed}, profile={profile}).")
    valid, rejects = sr.validate(cohort, on_invalid="split")
    out.print(
        f"Validated against schema {sr.SPINE_SCHEMA.name!r} v{sr.SPINE_SCHEMA.version}: "
        f"{len(valid)} valid + {len(rejects)} rejected = {len(cohort)} records."
    )
    for encoding in ("onehot", "native"):
        X = sr.make_feature_pipeline(encoding=encoding).fit_transform(valid)
        out.print(f"Feature pipeline ({encoding}): {X.shape[0]} records x {X.shape[1]} features.")
    for field, title in _OUTCOMES:
        observed = valid[field].notna().sum()
        print_frame(
            out,
            sr.table_one(valid, by=field),
            f"Table 1 - {title} ({observed} records with the outcome observed) - SYNTHETIC",
        )
    if models:
        fitted = _demo_models(out, valid, seed, report_dir, bootstrap)
        if cervical:
            _demo_cervical_malignant(out, n, seed, profile, report_dir, bootstrap, fitted)


def _demo_models(
    out: Any, cohort: Any, seed: int, report_dir: Path, bootstrap: int
) -> dict[str, RiskModel]:
    """Fit one model per OVF endpoint on 80% of the cohort, score and evaluate the rest."""
    report_dir.mkdir(parents=True, exist_ok=True)
    train, held_out = _split(cohort, seed)
    return {
        endpoint: _fit_and_report(out, endpoint, train, held_out, seed, report_dir, bootstrap)
        for endpoint in ("nonunion", "collapse", "future_fracture")
    }


def _demo_cervical_malignant(
    out: Any,
    n: int,
    seed: int,
    profile: str,
    report_dir: Path,
    bootstrap: int,
    fitted: dict[str, RiskModel],
) -> None:
    """The cervical and pathological-fracture endpoints on their own synthetic cohorts."""
    import spinerisk as sr
    from spinerisk.datasets import TraumaParams

    out.print("\n[bold]Cervical fractures and malignant (pathological) fractures[/bold]")
    # cervical fractures in patients aged 65 or more, half of them type II odontoid
    # fractures, so that the odontoid model has enough records (in the default trauma mix
    # they are about 3% of all records)
    older_cervical = TraumaParams(
        cervical_share=1.0, cervical_older_share=1.0, odontoid_share=0.5, upper_share=0.6
    )
    trauma = sr.make_spine_cohort(n, seed=seed, mode="trauma", trauma=older_cervical)
    valid: Any
    valid, rejects = sr.validate(trauma, on_invalid="split")
    n_dens = int((valid["anderson_dalonzo"] == "II").sum())
    out.print(
        f"Generated {len(trauma)} synthetic cervical fracture records, patients aged 65 or "
        f"more (mode=trauma, seed={seed}; {n_dens} type II odontoid fractures, enriched): "
        f"{len(valid)} valid + {len(rejects)} rejected.",
        markup=False,
    )
    train, held_out = _split(valid, seed)
    for endpoint in ("odontoid_nonunion", "cervical_mortality"):
        _fit_and_report(out, endpoint, train, held_out, seed, report_dir, bootstrap)

    malignant = sr.make_spine_cohort(
        n,
        seed=seed + 1,
        profile=profile,  # type: ignore[arg-type]  # checked by the first cohort
        malignant="clinic",
    )
    valid, rejects = sr.validate(malignant, on_invalid="split")
    out.print(
        f"\nGenerated {len(malignant)} synthetic OVF records with malignant fractures "
        f"(malignant=clinic, seed={seed + 1}, profile={profile}; "
        f"{valid['malignant'].mean():.1%} malignant): {len(valid)} valid + "
        f"{len(rejects)} rejected.",
        markup=False,
    )
    train, held_out = _split(valid, seed)
    gate = _fit_and_report(out, "malignant_fracture", train, held_out, seed, report_dir, bootstrap)
    _demo_gate(out, fitted["nonunion"], gate, held_out)


def _demo_gate(out: Any, model: RiskModel, gate: RiskModel, held_out: Any) -> None:
    """No-history AUROC of the malignancy model, then the nonunion model gated by it."""
    import numpy as np

    import spinerisk as sr
    from spinerisk.metrics import roc_auc
    from spinerisk.models import gate_performance

    checked: Any = sr.validate(held_out, model.input_schema_)
    y = checked["malignant"].to_numpy(dtype=bool)
    p = _quiet_predict(gate, checked)["risk"].to_numpy(dtype=float)
    none = ~checked["cancer_history"].to_numpy(dtype=bool)
    out.print(
        f"Held-out AUROC of malignant_fracture without a cancer history (SYNTHETIC): "
        f"{roc_auc(y[none], p[none]):.3f} ({int(none.sum())} records, "
        f"{int(y[none].sum())} malignant).",
        markup=False,
    )
    model.bind_malignancy_gate(gate)
    perf = gate_performance(model, checked)
    out.print(
        f"\n[bold]nonunion gated by malignant_fracture[/bold] (out of scope at p >= "
        f"{perf['threshold']:g} or a hard red flag, warning from {perf['warning']:g}), "
        f"{perf['n']} held-out records: abstention {perf['abstention_rate']:.1%}, warning "
        f"{perf['warning_rate']:.1%}; out of scope for a malignant fracture: sensitivity "
        f"{perf['sensitivity']:.3f}, specificity {perf['specificity']:.3f}, NPV "
        f"{perf['npv']:.3f} (SYNTHETIC)."
    )
    risk = _quiet_predict(model, checked)
    status = risk["status"].to_numpy()
    first = [
        int(np.flatnonzero(status == s)[0])
        for s in ("in_scope", "warning", "out_of_scope")
        if (status == s).any()
    ]
    shown = risk.iloc[first]
    print_frame(
        out,
        shown.assign(
            risk_183d=[f"{v:.1%}" if v == v else "-" for v in shown["risk_183d"]],
            p_malignant=[f"{v:.2f}" for v in shown["p_malignant"]],
        )[["risk_183d", "status", "p_malignant"]],
        "Gated nonunion risk, the first held-out record of each status - SYNTHETIC",
    )
    for record_id, reason in shown["status_reason"].items():
        if reason:
            out.print(f"{record_id}: {reason}", markup=False)


def _split(cohort: Any, seed: int) -> tuple[Any, Any]:
    """80% to fit, 20% held out (labelled synthetic for the report's banner)."""
    held_out = cohort.sample(frac=0.2, random_state=seed)
    held_out.attrs["synthetic"] = True  # the report's banner reads this
    return cohort.drop(index=held_out.index), held_out


def _quiet_predict(model: RiskModel, records: Any) -> Any:
    import spinerisk as sr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return model.predict_risk(records)


def _fit_and_report(
    out: Any,
    endpoint: str,
    train: Any,
    held_out: Any,
    seed: int,
    report_dir: Path,
    bootstrap: int,
) -> RiskModel:
    """Fit, show three held-out patients in the endpoint's scope, evaluate, write HTML."""
    import spinerisk as sr

    model = sr.RiskModel(endpoint=endpoint, backend="auto", cv=3, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sr.DataQualityWarning)
        model.fit(train)
    out.print(
        f"\n[bold]{endpoint}[/bold]: fitted {model.backend_} on {model.n_train_} eligible "
        f"records ({model.n_excluded_} not eligible or outcome not observed). Why: "
        f"{model.selection_reason_}",
        markup=True,
    )
    for w in caught:  # data-quality warnings as lines a user reads, not Python's format
        if issubclass(w.category, sr.DataQualityWarning):
            stderr().print(f"warning: {w.message}", markup=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    in_scope = model.endpoint_.in_scope(sr.validate(held_out), model.schema_).to_numpy()
    patients = held_out[in_scope].head(3)
    risk = _quiet_predict(model, patients)
    if "risk" in risk.columns:  # an endpoint without a horizon: shown as a percentage too
        risk["risk"] = [f"{v:.1%}" for v in risk["risk"]]
    print_frame(out, risk, f"{endpoint} risk of three held-out patients - SYNTHETIC")
    report = sr.evaluate(
        model,
        held_out,
        n_bootstrap=bootstrap,
        n_bootstrap_subgroups=min(bootstrap, 50),
        random_state=seed,
        validation="split",
    )
    path = report.to_html(report_dir / f"{endpoint}.html")
    headline = report.to_frame().head(3)
    shown = "; ".join(
        f"{row.metric}{_at(row.horizon)} {row.estimate:.3f} ({row.lower:.3f} to {row.upper:.3f})"
        for row in headline.itertuples()
    )
    out.print(f"Held-out validation (SYNTHETIC, 95% bootstrap CI): {shown}", markup=False)
    out.print(f"Validation report written to {path}", markup=False)
    return model


def _at(horizon: Any) -> str:
    """`` at <days> d`` for a metric at a horizon, nothing for an overall one or an
    endpoint without a horizon (``malignant_fracture``, horizon 0)."""
    try:
        days = float(horizon)
    except (TypeError, ValueError):
        return ""
    return f" at {days:.0f} d" if days == days and days > 0 else ""  # 0: no horizon
