"""``spinerisk demo``: the main job on the embedded synthetic cohort."""

from __future__ import annotations

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
) -> None:
    """Run the main job on the embedded synthetic cohort.

    Generates a synthetic acute osteoporotic vertebral fracture cohort, validates it
    against the default spine schema, builds the feature pipeline, prints a Table 1 per
    outcome, then fits a risk model per endpoint (backend chosen by cross-validation) and
    shows the risks of three patients.
    """
    import spinerisk as sr

    out = stdout()
    out.print(f"[bold red]{BANNER}[/bold red]")
    try:
        cohort = sr.make_spine_cohort(n, seed=seed, profile=profile)
    except ValueError as exc:
        stderr().print(f"error: {exc}")
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
        _demo_models(out, valid, seed)


def _demo_models(out: Any, cohort: Any, seed: int) -> None:
    """Fit one model per endpoint on 80% of the cohort and score three held-out patients."""
    import spinerisk as sr

    held_out = cohort.sample(frac=0.2, random_state=seed)
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
