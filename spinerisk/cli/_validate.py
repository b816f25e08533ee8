"""``spinerisk validate``: check a records file against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from spinerisk.cli._common import (
    MAPPING_OPTION,
    SEP_OPTION,
    cli_message,
    fail,
    split_valid,
    stderr,
    stdout,
    typer,
)

#: What to do about invalid records, from this command.
_ADVICE = (
    "Rerun with --rejects FILE (.csv or .parquet) to write every rejected record with its reasons."
)
ENCODING_HELP = "Text encoding of CSV/TSV/JSON files (strict), for example latin-1."


def validate(
    input: Annotated[Path, typer.Argument(help="Records file (.csv, .tsv, .parquet, .json).")],
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Write rejected records with reasons here (.csv or .parquet) instead of failing."
        ),
    ] = None,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, typer.Option(help=ENCODING_HELP)] = "utf-8",
    schema: Annotated[
        Path | None,
        typer.Option(help="Schema file (.toml, .yaml, .json); default: the spine schema."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Validate against this model bundle's schema (and its endpoint's scope): "
            "the records the model would accept."
        ),
    ] = None,
) -> None:
    """Validate a records file against a schema: the spine schema, your own (--schema),
    or a model's (--model).

    Without --rejects, any problem fails with exit code 2 and every problem listed.
    With --rejects, rejected records go to that file (CSV or Parquet) with their reasons
    and the command reports records in = valid + rejected. Rows that cannot be read (a
    NUL byte, an over-long field, broken quoting, a number written as NAN or 8_1) are
    rejected like invalid ones.
    """
    import spinerisk as sr
    from spinerisk.io import read_for_validation, unreadable_message
    from spinerisk.schema import resolve_schema
    from spinerisk.scoring._file import write_table_atomically

    err = stderr()
    try:
        if schema is not None and model is not None:
            raise sr.RecordsReadError("Give --schema or --model, not both.")
        target = resolve_schema(
            sr.load_schema(schema)
            if schema is not None
            else sr.load(model).input_schema_
            if model is not None
            else None
        )
        if rejects is not None and rejects.suffix.lower() not in (".csv", ".parquet"):
            raise sr.RecordsReadError(
                f"--rejects {rejects.name!r}: unknown file type {rejects.suffix!r}; expected "
                ".csv or .parquet."
            )
        df, unread = read_for_validation(
            input, sep=sep, encoding=encoding, mapping=mapping, schema=target
        )
        n_in = len(df) + len(unread)
        if rejects is None:
            problems = [unreadable_message(input.name, unread)] if len(unread) else []
            try:
                sr.validate(df, target)
            except sr.SchemaValidationError as exc:
                problems.insert(0, cli_message(exc, _ADVICE))
            if problems:
                err.print("\n".join(problems), markup=False)
                raise typer.Exit(code=2)
            stdout().print(f"{len(df)} records valid.")
            return
        valid, bad = split_valid(df, unread, target)
        write_table_atomically(bad, rejects)
    except (sr.SchemaValidationError, sr.MappingError, sr.RecordsReadError) as exc:
        err.print(cli_message(exc, _ADVICE), markup=False)
        raise typer.Exit(code=2) from exc
    except (sr.SchemaFileError, sr.ArtifactError) as exc:
        fail(exc)
    except OSError as exc:  # FileNotFoundError, a file or folder that cannot be read
        err.print(f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc), markup=False)
        raise typer.Exit(code=2) from exc
    stdout().print(
        f"records in: {n_in} = valid: {len(valid)} + rejected: {len(bad)} "
        f"(rejects written to {rejects})."
    )
    if len(bad):
        raise typer.Exit(code=2)
