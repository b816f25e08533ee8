"""The typer application and the helpers its commands share (consoles, tables, safe CSV).

Each command lives in its own module of :mod:`spinerisk.cli` and registers itself on
:data:`app` with ``@app.command()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spinerisk._optional import import_optional

typer = import_optional("typer", extra="cli", purpose="the command-line interface")
rich_console = import_optional("rich.console", extra="cli", purpose="the command-line interface")
rich_table = import_optional("rich.table", extra="cli", purpose="the command-line interface")

__all__ = ["BANNER", "app", "print_frame", "stderr", "stdout", "write_csv_safely"]

app = typer.Typer(
    name="spinerisk",
    help="Prognostic risk models after spinal fracture: collapse, nonunion, future fracture.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
BANNER = (
    "SYNTHETIC DATA: simulated patients from published effect sizes, not real records. "
    "Nothing here is clinically validated."
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


AUDIT_KEY_ENV_HELP = (
    "Name of an environment variable holding the secret key of the audit log: record "
    "hashes become HMAC-SHA256, which nobody without the key can recompute. Without it "
    "they are plain SHA-256, which can be reversed by hashing candidate records."
)


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


# commands in modules that spinerisk.cli does not import itself register here
from spinerisk.cli import _update  # noqa: E402, F401
