"""``spinerisk score``: batch scoring from files."""

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

SHA256_HELP = (
    "Expected sha256 of the bundle file (from a trusted register); any other file is "
    "refused before it is used."
)
VERIFY_KEY_ENV_HELP = (
    "Name of the environment variable holding the HMAC key the bundle was signed with "
    "(RiskModel.save(..., sign_key_env=...)); an unsigned or changed bundle is refused."
)

#: Errors that mean "bad input": printed on stderr, exit code 2.
_BAD_INPUT_NAMES = (
    "SchemaValidationError",
    "MappingError",
    "RecordsReadError",
    "ArtifactError",
)


def _bad_input_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """Errors that exit with code 2 and a message: bad input, and files or folders that
    cannot be read or written (OSError: missing, a folder, no permission, disk full)."""
    import spinerisk as sr

    names: tuple[type[BaseException], ...] = tuple(getattr(sr, n) for n in _BAD_INPUT_NAMES)
    return (*names, OSError, *more)


def _fail(exc: BaseException) -> NoReturn:
    if isinstance(exc, OSError) and exc.strerror:  # no "[Errno 13]" noise
        message = f"{exc.strerror}: {exc.filename!r}" if exc.filename else exc.strerror
    else:
        message = str(exc)
    stderr().print(f"error: {message}", markup=False, soft_wrap=True)
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
    interval: Annotated[
        float | None,
        typer.Option(
            help="Add a per-patient interval of this coverage (0.9 for 90%) around each "
            "risk: columns <risk>_lo and <risk>_hi (the bundle needs bootstrap refits: "
            "train --intervals N)."
        ),
    ] = None,
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
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV/TSV input (strict), for example latin-1.")
    ] = "utf-8",
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    sha256: Annotated[str | None, typer.Option(help=SHA256_HELP)] = None,
    verify_key_env: Annotated[str | None, typer.Option(help=VERIFY_KEY_ENV_HELP)] = None,
) -> None:
    """Score a records file in chunks with a saved model.

    Each chunk is validated against the bundle's schema; valid rows are scored and
    invalid ones rejected with their reasons. Scores and rejects are written to
    temporary files and renamed only when every row is accounted for, so a failed run
    leaves no partial output. Temporary files are private (mode 0600, in a 0700
    folder), removed on SIGTERM, and those of a killed run are removed by the next run.
    Prints rows in = scored + rejected. Output columns: record id, risk per horizon,
    warnings, model id and version (and top drivers with --explain). CSV outputs are
    safe against formula injection. Exit code 2 on bad input (missing or unreadable
    files, an output location that cannot be written, mapping errors, invalid bundle).
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
    from spinerisk.bundle import require_bundle
    from spinerisk.models._interval import check_interval

    if interval is not None:
        try:
            check_interval(interval)
        except ValueError as exc:
            _fail(exc)

    try:
        # the bundle proves its sha256 / signature on the very bytes that are loaded
        with require_bundle(sha256=sha256, verify_key_env=verify_key_env):
            summary = score_file(
                model,
                input,
                output,
                rejects=rejects,
                mapping=mapping,
                chunk_size=chunk_size,
                explain=explain,
                interval=interval,
                engine=engine,  # type: ignore[arg-type]
                scheduler=scheduler,
                progress=progress,
                sep=sep,
                encoding=encoding,
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
        f"rows in: {summary.rows_in} = scored: {summary.scored} + rejected: {summary.rejected}"
        + (
            f" + out of scope (malignancy gate): {summary.out_of_scope}"
            if summary.out_of_scope
            else ""
        ),
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


def _write_csv(frame: Any, path: Path | None) -> None:
    """Write a rejects table (``.csv``, formula-safe, or ``.parquet``) through a private
    temporary file (see :func:`spinerisk.scoring._file.write_table_atomically`); a
    location that cannot be written exits with code 2 and a message, leaving nothing."""
    from spinerisk.scoring._file import write_table_atomically

    assert path is not None
    try:
        write_table_atomically(frame, path)
    except _bad_input_errors() as exc:
        _fail(exc)
