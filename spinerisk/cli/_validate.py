"""``spinerisk validate``: check a records file against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from spinerisk.cli._app import app, stderr, stdout, typer, write_csv_safely


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

    err = stderr()
    try:
        df = sr.read_records(input, sep=sep)
        if mapping is not None:
            df = sr.apply_mapping(df, mapping)
        if rejects is None:
            sr.validate(df)
            stdout().print(f"{len(df)} records valid.")
            return
        valid, bad = sr.validate(df, on_invalid="split")
    except (sr.SchemaValidationError, sr.MappingError, sr.RecordsReadError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(code=2) from exc
    except FileNotFoundError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(code=2) from exc
    write_csv_safely(bad, rejects)
    stdout().print(
        f"records in: {len(df)} = valid: {len(valid)} + rejected: {len(bad)} "
        f"(rejects written to {rejects})."
    )
    if len(bad):
        raise typer.Exit(code=2)
