"""What the commands of :mod:`spinerisk.cli` share: consoles, tables, safe files, the
bad-input errors (exit code 2) and the options several commands take.

Every command module imports from here; none imports another command module or the
application (:mod:`spinerisk.cli._app` registers the commands).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from spinerisk._optional import import_optional

typer = import_optional("typer", extra="cli", purpose="the command-line interface")
rich_console = import_optional("rich.console", extra="cli", purpose="the command-line interface")
rich_table = import_optional("rich.table", extra="cli", purpose="the command-line interface")

__all__ = [
    "AUDIT_KEY_ENV_HELP",
    "BANNER",
    "MAPPING_OPTION",
    "NOT_VALIDATED",
    "SEP_OPTION",
    "SHA256_HELP",
    "VERIFY_KEY_ENV_HELP",
    "audit_key",
    "bad_input_errors",
    "check_bundle_output",
    "excluded_line",
    "fail",
    "print_frame",
    "read_mapped",
    "split_valid",
    "stderr",
    "stdout",
    "typer",
    "write_csv_safely",
    "write_rejects",
]

BANNER = (
    "SYNTHETIC DATA: simulated patients from published effect sizes, not real records. "
    "Nothing here is clinically validated."
)

#: What a command says of a model trained on records not labelled synthetic.
NOT_VALIDATED = (
    "Research software: this model has not been clinically validated by spinerisk; validate "
    "it externally before any clinical use."
)

#: ``--mapping`` and ``--sep``, as every command that reads records takes them.
MAPPING_OPTION = typer.Option(help="Column mapping (.toml/.yaml) for a site's own names.")
SEP_OPTION = typer.Option(help="Delimiter for text files.")
ENCODING_OPTION = typer.Option(
    help="Text encoding of CSV/TSV/JSON files (strict), for example latin-1."
)

AUDIT_KEY_ENV_HELP = (
    "Name of an environment variable holding the secret key of the audit log: record "
    "hashes become HMAC-SHA256, which nobody without the key can recompute. Without it "
    "they are plain SHA-256, which can be reversed by hashing candidate records."
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


def stdout() -> Any:
    console = rich_console.Console(highlight=False)
    if not console.is_terminal:  # files and pipes: room for a Table 1 without wrapping
        console = rich_console.Console(highlight=False, width=max(console.width, 140))
    return console


def stderr() -> Any:
    return rich_console.Console(stderr=True, highlight=False)


def print_frame(console: Any, frame: Any, title: str) -> None:
    console.print(title, style="bold", markup=False)  # its own line: never wrapped to the table
    table = rich_table.Table(show_lines=False)
    table.add_column("", style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, row in frame.iterrows():
        cells = [
            f"{v:.1%}"
            if (str(col) == "risk" or str(col).startswith("risk_")) and isinstance(v, float)
            else str(v)
            for col, v in row.items()
        ]
        table.add_row(str(idx), *cells)
    console.print(table)


def bad_input_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """Errors that exit with code 2 and a message: bad input, and files or folders that
    cannot be read or written (OSError: missing, a folder, no permission, disk full)."""
    import spinerisk as sr

    names: tuple[type[BaseException], ...] = tuple(getattr(sr, n) for n in _BAD_INPUT_NAMES)
    return (*names, OSError, *more)


#: What to do about invalid records, on the command line.
REJECTS_ADVICE = (
    "Correct the file; `spinerisk validate FILE --rejects rejected.csv` writes every "
    "rejected record with its reasons (add --schema or --model as for this command)."
)


#: What to do when the file's columns do not match the schema (whatever its records).
COLUMNS_ADVICE = (
    "Fix the columns first: rename or drop them in the file, or map them with --mapping "
    "FILE.toml (a [columns] table and ignore = [...]); until the columns match, no "
    "record is scored and --rejects has nothing to write."
)


#: The library's advice to Python callers, and the same advice on the command line.
_PYTHON_ADVICE = (
    ("Pass sep=';'", "Pass --sep ';'"),
    (r"Pass sep='\\t'", r"Pass --sep '\t'"),
    ("Pass sep='|'", "Pass --sep '|'"),
    ("Pass sep=','", "Pass --sep ','"),
    ("use engine='local'", "use --engine local"),
    ("Use engine='local'", "Use --engine local"),
    (
        "call model.fit_intervals(training_cohort) first (or predict without interval)",
        "train the model with --intervals N (bootstrap refits), or score without --interval",
    ),
)


def cli_message(exc: BaseException, advice: str = REJECTS_ADVICE) -> str:
    """The error's message, with the library's advice to Python callers (a schema
    validation error's ``hint``, which names Python arguments) replaced by ``advice``,
    or by :data:`COLUMNS_ADVICE` when a problem is a column's (it names no row): the
    columns stop the file, whatever its records."""
    import spinerisk as sr

    message = str(exc)
    for python, command_line in _PYTHON_ADVICE:
        message = message.replace(python, command_line)
    if isinstance(exc, sr.SchemaValidationError) and exc.hint and message.endswith(exc.hint):
        rows = exc.failures.get("row") if exc.failures is not None else None
        if rows is not None and len(rows) and bool(rows.isna().any()):
            advice = COLUMNS_ADVICE
        return message[: -len(exc.hint)] + advice
    return message


def fail(exc: BaseException) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with code 2."""
    if isinstance(exc, OSError) and exc.strerror:  # no "[Errno 13]" noise
        message = f"{exc.strerror}: {exc.filename!r}" if exc.filename else exc.strerror
    else:
        message = cli_message(exc)
    stderr().print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code=2) from exc


def check_bundle_output(output: Path) -> None:
    """``--output`` of a command that writes a model bundle must name one (.srb)."""
    from spinerisk.exceptions import RecordsReadError

    if output.suffix.lower() not in (".srb", ".spinerisk"):
        raise RecordsReadError(f"--output must be a model bundle (.srb); got {output.name!r}.")


def read_mapped(
    path: Path,
    *,
    sep: str | None,
    mapping: Path | None,
    schema: Any,
    encoding: str = "utf-8",
    unreadable: list[Any] | None = None,
) -> Any:
    """A records file as read, with ``--mapping`` applied onto ``schema``: the model's
    own schema for a command given a model, the user's for training. Every command that
    reads records maps them here, so a mapping means the same thing in each. Given a
    list as ``unreadable``, rows that cannot be read (a wrong number of fields) are set
    aside into it (a table of ``row``, ``reasons`` and values) instead of failing."""
    import spinerisk as sr

    if unreadable is None:
        records = sr.read_records(path, sep=sep, encoding=encoding)
    else:
        records, unread = sr.read_records(path, sep=sep, encoding=encoding, on_invalid="split")
        unreadable.append(unread)
    if mapping is not None:
        records = sr.apply_mapping(records, mapping, schema)
    return records


def excluded_line(model: Any, records: Any) -> str:
    """Which valid records the model's endpoint left out and why (outcome missing, not
    eligible, out of scope), named by id, a reason per line."""
    import warnings

    from spinerisk.exceptions import DataQualityWarning
    from spinerisk.schema import validate

    with warnings.catch_warnings():  # the fit has shown the data warnings already
        warnings.simplefilter("ignore", DataQualityWarning)
        checked = validate(records, model.schema_)
    lines = model.endpoint_.exclusion_lines(checked, model.schema_)
    n = model.n_excluded_
    head = f"{n} record{'' if n == 1 else 's'} not used:"
    return "\n".join([head, *(f"  {x}" for x in lines)])


def split_valid(records: Any, unread: Any, schema: Any) -> tuple[Any, Any]:
    """Valid records, and the rejected ones with their row in the file and reasons:
    ``unread`` (rows that could not be read, from ``spinerisk.io``'s reading for
    validation) and the records ``schema`` refuses, in file order."""
    import pandas as pd

    from spinerisk.schema import validate

    valid, bad = validate(records, schema, on_invalid="split")
    bad = bad.assign(row=bad.index.to_numpy())  # the row in the file
    if len(unread):
        bad = pd.concat([unread, bad]).sort_values("row", kind="stable")
    return valid, bad.reset_index(drop=True)


def write_csv_safely(frame: Any, path: Path) -> None:
    """Write CSV atomically through a private temporary file (mode 0600, removed on any
    failure, so nothing is left behind), with text cells a spreadsheet would run as
    formulas quoted; numbers stay numbers."""
    import os
    import tempfile

    from spinerisk.scoring import neutralize_formulas

    safe = neutralize_formulas(frame)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            safe.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rejects(frame: Any, path: Path | None) -> None:
    """Write a rejects table (``.csv``, formula-safe, or ``.parquet``) through a private
    temporary file (see :func:`spinerisk.scoring._file.write_table_atomically`); a
    location that cannot be written exits with code 2 and a message, leaving nothing."""
    from spinerisk.scoring._file import write_table_atomically

    assert path is not None
    try:
        write_table_atomically(frame, path)
    except bad_input_errors() as exc:
        fail(exc)


def audit_key(audit_log: Path | None, key_env: str | None) -> str | None:
    """The audit key named by ``--audit-key-env`` (read from the environment, never from
    the command line, where process lists would show it); warns when a log is unkeyed."""
    import os

    if key_env is None:
        if audit_log is not None:
            stderr().print(
                "warning: the audit log's record hashes are unkeyed (plain SHA-256); pass "
                "--audit-key-env with a secret key for keyed hashes.",
                markup=False,
            )
        return None
    if audit_log is None:
        raise ValueError("--audit-key-env needs --audit-log.")
    key = os.environ.get(key_env, "")
    if not key:
        raise ValueError(
            f"--audit-key-env {key_env}: the environment variable {key_env} is not set or is empty."
        )
    return key
