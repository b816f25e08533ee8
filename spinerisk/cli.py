"""Command-line interface: ``spinerisk demo`` and ``spinerisk validate``.

Needs the ``cli`` extra (typer, rich). Exit codes: 0 success, 2 bad input (schema,
mapping or file problems, with the message on stderr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from spinerisk._optional import import_optional

typer = import_optional("typer", extra="cli", purpose="the command-line interface")
rich_console = import_optional("rich.console", extra="cli", purpose="the command-line interface")
rich_table = import_optional("rich.table", extra="cli", purpose="the command-line interface")

__all__ = ["app", "main"]

app = typer.Typer(
    name="spinerisk",
    help="Prognostic risk models after spinal fracture: collapse, nonunion, future fracture.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_BANNER = (
    "SYNTHETIC DATA: simulated patients from published effect sizes, not real records. "
    "Nothing here is clinically validated."
)
_OUTCOMES = (
    ("collapse_6m", "Progressive collapse at 6 months"),
    ("nonunion", "Nonunion at 6-12 months (conservative and fixation)"),
    ("fx_event", "Future fracture, first event (death competing)"),
)


def _stdout() -> Any:
    console = rich_console.Console(highlight=False)
    if not console.is_terminal:  # files and pipes: room for a Table 1 without wrapping
        console = rich_console.Console(highlight=False, width=max(console.width, 140))
    return console


def _stderr() -> Any:
    return rich_console.Console(stderr=True, highlight=False)


def _print_frame(console: Any, frame: Any, title: str) -> None:
    console.print(title, style="bold", markup=False)  # its own line: never wrapped to the table
    table = rich_table.Table(show_lines=False)
    table.add_column("", style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, row in frame.iterrows():
        cells = [
            f"{v:.1%}" if str(col).startswith("risk_") and isinstance(v, float) else str(v)
            for col, v in row.items()
        ]
        table.add_row(str(idx), *cells)
    console.print(table)


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

    out = _stdout()
    out.print(f"[bold red]{_BANNER}[/bold red]")
    try:
        cohort = sr.make_spine_cohort(n, seed=seed, profile=profile)
    except ValueError as exc:
        _stderr().print(f"error: {exc}")
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
        _print_frame(
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
        _print_frame(out, risk, f"{endpoint} risk of three held-out patients - SYNTHETIC")


@app.command()
def validate(
    input: Annotated[Path, typer.Argument(help="Records file (.csv, .tsv, .parquet, .json).")],
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping (.toml/.yaml) for a site's own names.")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write rejected records with reasons here (CSV) instead of failing."),
    ] = None,
    sep: Annotated[str | None, typer.Option(help="Delimiter for text files.")] = None,
) -> None:
    """Validate a records file against the default spine schema.

    Without --rejects, any problem fails with exit code 2 and every problem listed.
    With --rejects, rejected records go to that CSV with their reasons and the command
    reports records in = valid + rejected.
    """
    import spinerisk as sr

    err = _stderr()
    try:
        df = sr.read_records(input, sep=sep)
        if mapping is not None:
            df = sr.apply_mapping(df, mapping)
        if rejects is None:
            sr.validate(df)
            _stdout().print(f"{len(df)} records valid.")
            return
        valid, bad = sr.validate(df, on_invalid="split")
    except (sr.SchemaValidationError, sr.MappingError, sr.RecordsReadError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(code=2) from exc
    except FileNotFoundError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(code=2) from exc
    _write_csv_safely(bad, rejects)
    _stdout().print(
        f"records in: {len(df)} = valid: {len(valid)} + rejected: {len(bad)} "
        f"(rejects written to {rejects})."
    )
    if len(bad):
        raise typer.Exit(code=2)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _write_csv_safely(frame: Any, path: Path) -> None:
    """Write CSV with text cells that a spreadsheet would run as formulas neutralised."""
    import pandas as pd

    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or isinstance(safe[col].dtype, pd.StringDtype):
            safe[col] = safe[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    tmp = path.with_name(path.name + ".tmp")
    safe.to_csv(tmp, index=False)
    tmp.replace(path)


def main() -> None:
    """Entry point of the ``spinerisk`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
