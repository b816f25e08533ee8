"""Command-line interface: ``spinerisk <command>``.

Needs the ``cli`` extra (typer, rich). Exit codes: 0 success, 2 bad input (schema,
mapping or file problems, with the message on stderr). Each command is a module here;
:mod:`spinerisk.cli._app` registers them on :data:`app`; heavy libraries are imported
inside commands.
"""

from __future__ import annotations

from spinerisk.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``spinerisk`` console script."""
    app()
