"""The typer application: the one place where the commands are registered.

Each command is a plain function in its own module of :mod:`spinerisk.cli` (the helpers
they share are in :mod:`spinerisk.cli._common`); this module imports them and adds them
to :data:`app`, in the order ``spinerisk --help`` lists them.
"""

from __future__ import annotations

from spinerisk.cli._common import typer
from spinerisk.cli._demo import demo
from spinerisk.cli._evaluate import evaluate, report
from spinerisk.cli._explain import explain
from spinerisk.cli._monitor import monitor
from spinerisk.cli._score import score
from spinerisk.cli._serve import serve
from spinerisk.cli._train import schema_check, schema_infer, train
from spinerisk.cli._update import update
from spinerisk.cli._validate import validate

__all__ = ["app"]

app = typer.Typer(
    name="spinerisk",
    help="Prognostic risk models after spinal fracture: collapse, nonunion, future fracture.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(
    help="Draft a schema file from data (infer) and check a schema or endpoint file (check).",
    no_args_is_help=True,
)

for _command in (score, update, demo, evaluate, report, explain, monitor, serve, train, validate):
    app.command()(_command)
app.add_typer(schema_app, name="schema")
schema_app.command("infer")(schema_infer)
schema_app.command("check")(schema_check)
