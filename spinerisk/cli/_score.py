"""``spinerisk score`` and ``spinerisk train``: batch scoring and model fitting from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

from spinerisk.cli._app import (
    AUDIT_KEY_ENV_HELP,
    BANNER,
    app,
    audit_key,
    stderr,
    stdout,
    typer,
)

#: Errors that mean "bad input": printed on stderr, exit code 2.
_BAD_INPUT_NAMES = (
    "SchemaValidationError",
    "MappingError",
    "RecordsReadError",
    "ArtifactError",
)


def _bad_input_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    import spinerisk as sr

    names: tuple[type[BaseException], ...] = tuple(getattr(sr, n) for n in _BAD_INPUT_NAMES)
    return (*names, FileNotFoundError, *more)


def _fail(exc: BaseException) -> NoReturn:
    stderr().print(f"error: {exc}", markup=False, soft_wrap=True)
    raise typer.Exit(code=2) from exc


@app.command()
def score(
    model: Annotated[Path, typer.Option("--model", help="Model bundle (.srb) to score with.")],
    input: Annotated[Path, typer.Option("--input", help="Records (.csv, .tsv or .parquet).")],
    output: Annotated[
        Path, typer.Option("--output", help="Scores file to write (.parquet or .csv).")
    ],
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write rejected rows with their reasons here (.csv or .parquet)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping (.toml/.yaml) for a site's own names.")
    ] = None,
    explain: Annotated[
        int, typer.Option(min=0, help="Add the top N drivers of each record's risk.")
    ] = 0,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Rows per chunk (memory grows with it).")
    ] = 100_000,
    engine: Annotated[
        str, typer.Option(help="'local' (one process) or 'dask' (a dask.distributed cluster).")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address; default: a 2-worker LocalCluster."),
    ] = None,
    audit_log: Annotated[
        Path | None, typer.Option(help="Append one audit line per scored record to this file.")
    ] = None,
    audit_key_env: Annotated[str | None, typer.Option(help=AUDIT_KEY_ENV_HELP)] = None,
    sep: Annotated[str | None, typer.Option(help="Delimiter for text files.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Score a records file in chunks with a saved model.

    Each chunk is validated against the bundle's schema; valid rows are scored and
    invalid ones rejected with their reasons. Scores and rejects are written to
    temporary files and renamed only when every row is accounted for, so a failed run
    leaves no partial output. Prints rows in = scored + rejected. Output columns: record
    id, risk per horizon, warnings, model id and version (and top drivers with
    --explain). CSV outputs are safe against formula injection. Exit code 2 on bad
    input (missing or unreadable files, mapping errors, invalid bundle).
    """
    from spinerisk.scoring import score_file

    if engine not in ("local", "dask"):
        _fail(ValueError(f"--engine must be 'local' or 'dask'; got {engine!r}."))
    if scheduler is not None and engine != "dask":
        _fail(ValueError("--scheduler needs --engine dask."))
    try:
        key = audit_key(audit_log, audit_key_env)
    except ValueError as exc:
        _fail(exc)
    try:
        summary = score_file(
            model,
            input,
            output,
            rejects=rejects,
            mapping=mapping,
            chunk_size=chunk_size,
            explain=explain,
            engine=engine,  # type: ignore[arg-type]
            scheduler=scheduler,
            progress=progress,
            sep=sep,
            audit_log=audit_log,
            audit_source="cli",
            audit_key=key,
        )
    except _bad_input_errors() as exc:
        _fail(exc)
    out = stdout()
    if summary.trained_on_synthetic_data:
        out.print(BANNER, style="bold red", markup=False)
    out.print(
        f"rows in: {summary.rows_in} = scored: {summary.scored} + rejected: {summary.rejected}",
        markup=False,
    )
    out.print(f"scores written to {summary.output}", markup=False, soft_wrap=True)
    if summary.flagged:
        out.print(
            f"{summary.flagged} scored rows have values outside the training data (see "
            "their 'warnings').",
            markup=False,
            soft_wrap=True,
        )
    if summary.rejects is not None:
        out.print(f"rejects written to {summary.rejects}", markup=False, soft_wrap=True)
    elif summary.rejected:
        stderr().print(
            f"{summary.rejected} rows were rejected; pass --rejects FILE to get them with "
            "their reasons.",
            markup=False,
            soft_wrap=True,
        )


@app.command()
def train(
    input: Annotated[Path, typer.Option("--input", help="Cohort (.csv, .tsv or .parquet).")],
    output: Annotated[Path, typer.Option("--output", help="Model bundle to write (.srb).")],
    endpoint: Annotated[
        str, typer.Option(help="collapse, nonunion or future_fracture.")
    ] = "nonunion",
    backend: Annotated[
        str, typer.Option(help="auto, linear, spline, xgboost, lightgbm or xgboost_aft.")
    ] = "auto",
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping (.toml/.yaml) for a site's own names.")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Train on the valid records and write the rejected ones here (CSV)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for every random step.")] = 0,
    sep: Annotated[str | None, typer.Option(help="Delimiter for text files.")] = None,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="The cohort is simulated: the bundle records it (CSV files do not carry "
            "the label), and the API, reports and scores say so.",
        ),
    ] = False,
) -> None:
    """Fit a risk model on a cohort file and save it as a bundle.

    The cohort is validated first: any invalid record fails with exit code 2 and every
    problem listed, unless --rejects is given, in which case the model is fitted on the
    valid records and the rejected ones are written with their reasons. Prints the
    backend chosen and why.
    """
    import spinerisk as sr
    from spinerisk.scoring import neutralize_formulas

    try:
        cohort = sr.read_records(input, sep=sep)
        if mapping is not None:
            cohort = sr.apply_mapping(cohort, mapping)
        if synthetic:
            cohort.attrs["synthetic"] = True
        if rejects is not None:
            if rejects.suffix.lower() != ".csv":
                raise sr.RecordsReadError(f"--rejects must be a .csv file; got {rejects.name!r}.")
            cohort, bad = sr.validate(cohort, on_invalid="split")
        else:
            bad = None
        if output.suffix.lower() not in (".srb", ".spinerisk"):
            raise sr.RecordsReadError(
                f"--output must be a model bundle (.srb); got {output.name!r}."
            )
        model = sr.RiskModel(endpoint=endpoint, backend=backend, random_state=seed)  # type: ignore[arg-type]
        model.fit(cohort)
        model.save(output)
    except _bad_input_errors(ValueError) as exc:
        _fail(exc)
    out = stdout()
    n_in = len(cohort) + (0 if bad is None else len(bad))
    if bad is not None:
        _write_csv(neutralize_formulas(bad), rejects)
        out.print(
            f"records in: {n_in} = valid: {len(cohort)} + rejected: {len(bad)} "
            f"(rejects written to {rejects}).",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"endpoint {model.endpoint_.name}: backend {model.backend_!r} fitted on "
        f"{model.n_train_} records ({model.n_excluded_} not eligible or outcome unknown).",
        markup=False,
    )
    out.print(f"reason: {model.selection_reason_}", markup=False, soft_wrap=True)
    out.print(f"model written to {output}", markup=False, soft_wrap=True)


def _write_csv(frame: Any, path: Path | None) -> None:
    import os
    import tempfile

    assert path is not None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
