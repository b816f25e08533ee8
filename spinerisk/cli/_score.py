"""``spinerisk score``: batch scoring from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from spinerisk.cli._common import (
    AUDIT_KEY_ENV_HELP,
    BANNER,
    MAPPING_OPTION,
    SEP_OPTION,
    SHA256_HELP,
    VERIFY_KEY_ENV_HELP,
    audit_key,
    bad_input_errors,
    fail,
    stderr,
    stdout,
    typer,
)


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
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
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
    sep: Annotated[str | None, SEP_OPTION] = None,
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
    files, an output location that cannot be written, mapping errors, invalid bundle),
    and when no row was scored (a file without records, or every row rejected: the
    outputs and rejects are still written, so a scheduler sees the failure and a person
    the reasons).
    """
    from spinerisk.bundle import require_bundle
    from spinerisk.scoring import score_file

    key = _check_options(engine, scheduler, audit_log, audit_key_env, interval)
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
    except bad_input_errors() as exc:
        fail(exc)
    _print_summary(summary)
    if summary.scored == 0 and summary.out_of_scope == 0:
        reason = (
            f"{input.name} has no records"
            if summary.rows_in == 0
            else f"every one of the {summary.rows_in} rows was rejected"
            + ("" if summary.rejects is None else f" (reasons in {summary.rejects})")
        )
        stderr().print(f"error: nothing was scored: {reason}.", markup=False, soft_wrap=True)
        raise typer.Exit(code=2)


def _check_options(
    engine: str,
    scheduler: str | None,
    audit_log: Path | None,
    audit_key_env: str | None,
    interval: float | None,
) -> str | None:
    """The options checked before any file is read (exit code 2 on the first wrong
    one); returns the audit key."""
    from spinerisk.models._interval import check_interval

    if engine not in ("local", "dask"):
        fail(ValueError(f"--engine must be 'local' or 'dask'; got {engine!r}."))
    if scheduler is not None and engine != "dask":
        fail(ValueError("--scheduler needs --engine dask."))
    try:
        key = audit_key(audit_log, audit_key_env)
        if interval is not None:
            check_interval(interval)
    except ValueError as exc:
        fail(exc)
    return key


def _print_summary(summary: Any) -> None:
    """rows in = scored + rejected (+ out of scope), where the files went, and what to
    look at (rows outside the training data, rejects not written)."""
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
            f"{summary.flagged} scored rows have inputs unlike the training data (out of "
            "range, an unseen code, or a value rarely missing there; see their 'warnings').",
            markup=False,
            soft_wrap=True,
        )
    if summary.all_missing:
        stderr().print(
            f"warning: {', '.join(summary.all_missing)} missing in every record: each was "
            "scored as if unknown (the model's imputation). If the file has the column "
            "under another name, map it with --mapping.",
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
