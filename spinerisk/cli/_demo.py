"""``spinerisk demo``: the main job on the embedded synthetic cohort."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from spinerisk.cli._app import BANNER, app, print_frame, stderr, stdout, typer

_OUTCOMES = (
    ("collapse_6m", "Progressive collapse at 6 months"),
    ("nonunion", "Nonunion at 6-12 months (conservative and fixation)"),
    ("fx_event", "Future fracture, first event (death competing)"),
)


@app.command()
def demo(
    n: Annotated[int, typer.Option(help="Number of synthetic patients.", min=50)] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 0,
    profile: Annotated[str, typer.Option(help="Cohort profile: japan or western.")] = "japan",
    models: Annotated[
        bool, typer.Option(help="Also fit the three risk models and show example risks.")
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
    outcome, then fits a risk model per endpoint on 80% of the cohort (backend chosen by
    cross-validation), shows the risks of three held-out patients and writes an HTML
    validation report per model, evaluated on the held-out 20%, to --report-dir.
    """
    import spinerisk as sr

    out = stdout()
    out.print(f"[bold red]{BANNER}[/bold red]")
    try:
        cohort = sr.make_spine_cohort(n, seed=seed, profile=profile)
    except ValueError as exc:
        stderr().print(f"error: {exc}", markup=False)
        raise typer.Exit(code=2) from exc
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
        _demo_models(out, valid, seed, report_dir, bootstrap)


def _demo_models(out: Any, cohort: Any, seed: int, report_dir: Path, bootstrap: int) -> None:
    """Fit one model per endpoint on 80% of the cohort, score and evaluate the rest."""
    import spinerisk as sr

    report_dir.mkdir(parents=True, exist_ok=True)
    held_out = cohort.sample(frac=0.2, random_state=seed)
    held_out.attrs["synthetic"] = True  # the report's banner reads this
    train = cohort.drop(index=held_out.index)
    patients = held_out.head(3)
    for endpoint in ("nonunion", "collapse", "future_fracture"):
        model = sr.RiskModel(endpoint=endpoint, backend="auto", cv=3, random_state=seed)
        model.fit(train)
        out.print(
            f"\n[bold]{endpoint}[/bold]: fitted {model.backend_} on {model.n_train_} eligible "
            f"records ({model.n_excluded_} not eligible or outcome not observed). Why: "
            f"{model.selection_reason_}",
            markup=True,
        )
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            risk = model.predict_risk(patients)
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
            f"{row.metric}{_at(row.horizon)} {row.estimate:.3f} "
            f"({row.lower:.3f} to {row.upper:.3f})"
            for row in headline.itertuples()
        )
        out.print(f"Held-out validation (SYNTHETIC, 95% bootstrap CI): {shown}", markup=False)
        out.print(f"Validation report written to {path}", markup=False)


def _at(horizon: Any) -> str:
    """`` at <days> d`` for a metric at a horizon, nothing for an overall one."""
    try:
        return f" at {float(horizon):.0f} d" if float(horizon) == float(horizon) else ""
    except (TypeError, ValueError):
        return ""
