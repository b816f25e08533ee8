"""``spinerisk monitor``: drift and performance report for a deployed model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from spinerisk.cli._common import (
    BANNER,
    ENCODING_OPTION,
    MAPPING_OPTION,
    SEP_OPTION,
    fail,
    read_mapped,
    stderr,
    stdout,
    typer,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

#: Exit code per alert level (2 stays "bad input").
EXIT_CODES = {"none": 0, "watch": 10, "alert": 11}


def monitor(
    model: Annotated[Path, typer.Option("--model", help="Model bundle written by RiskModel.save.")],
    input: Annotated[
        Path, typer.Option("--input", help="New records (.csv, .tsv, .parquet, .json).")
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labelled records (outcomes and a date, see --date-field) for performance "
            "over time."
        ),
    ] = None,
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON summary here.")
    ] = None,
    period: Annotated[str, typer.Option(help="Performance period: quarter or month.")] = "quarter",
    reference: Annotated[
        Path | None,
        typer.Option(help="Training reference JSON, for bundles that do not hold one."),
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals.", min=0)
    ] = 200,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, ENCODING_OPTION] = "utf-8",
    date_field: Annotated[
        str,
        typer.Option(
            help="Date column of the labelled records that orders them in time (your "
            "schema's date field)."
        ),
    ] = "index_date",
) -> None:
    """Compare new records with the model's training data and check calibration over time.

    Writes a self-contained HTML report (--html) and a JSON summary (--json) and prints
    the alert level with its reasons. The exit code tells schedulers what to do:
    0 no drift or decay, 10 watch (look at the report), 11 alert (review the model
    before further use), 2 bad input (message on stderr).
    """
    import spinerisk as sr
    from spinerisk.monitor import monitoring_report

    err = stderr()
    if period not in ("quarter", "month"):
        err.print(f"error: --period must be quarter or month; got {period!r}.", markup=False)
        raise typer.Exit(code=2)
    try:
        fitted, info = _load(model, reference)
        unread: list[Any] = []  # rows that cannot be read are left out and counted
        new = read_mapped(
            input,
            sep=sep,
            encoding=encoding,
            mapping=mapping,
            schema=fitted.schema_,
            unreadable=unread,
        )
        labelled = (
            None
            if labels is None
            else read_mapped(
                labels, sep=sep, encoding=encoding, mapping=mapping, schema=fitted.schema_
            )
        )
        report = monitoring_report(
            fitted,
            new,
            labelled,
            period="month" if period == "month" else "quarter",
            n_bootstrap=n_bootstrap,
            model_info=info,
            date_field=date_field,
        )
    except (sr.SchemaValidationError, sr.MappingError, sr.RecordsReadError) as exc:
        fail(exc)  # "error: " and the message, as every command
    except (sr.ArtifactError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    _print_report(report, fitted, labelled, html, json_path)
    _note_unreadable(input.name, unread[0])
    raise typer.Exit(code=EXIT_CODES[report.alert])


def _note_unreadable(name: str, unread: Any) -> None:
    """Rows of the input that cannot be read were left out: say how many, and where."""
    if len(unread):
        first = unread.iloc[0]
        stderr().print(
            f"note: {len(unread)} row(s) of {name} cannot be read and were left out of the "
            f"comparison (first: row {first['row']}: {first['reasons']}); "
            f"`spinerisk validate {name} --rejects FILE` lists them all.",
            markup=False,
            soft_wrap=True,
        )


def _load(model: Path, reference: Path | None) -> tuple[RiskModel, dict[str, Any]]:
    """The model and its identity; its training reference replaced by --reference, and
    required."""
    import spinerisk as sr
    from spinerisk.models._state import set_fitted
    from spinerisk.monitor import bundle_info

    fitted = sr.load(model)
    info = bundle_info(model)
    if reference is not None:
        set_fitted(fitted, reference_=_read_reference(reference))
    if getattr(fitted, "reference_", None) is None:
        raise ValueError(
            f"{model} holds no training reference; pass --reference reference.json "
            "(from spinerisk.monitor.build_reference) or re-save the model."
        )
    return fitted, info


def _print_report(
    report: Any, fitted: RiskModel, labelled: Any, html: Path | None, json_path: Path | None
) -> None:
    """The alert level with its reasons, the counts, the update method the labelled
    records support, and the files written."""
    out = stdout()
    if report.synthetic:
        out.print(BANNER, style="bold red", markup=False)
    out.print(f"Alert level: {report.alert}", style="bold", markup=False)
    for reason in report.reasons:
        out.print(f"  - {reason}", markup=False)
    out.print(
        f"{report.drift.n_records} records compared, {report.drift.n_rejected} rejected by "
        f"validation, {report.drift.n_out_of_scope} outside the intended population.",
        markup=False,
    )
    if labelled is not None:
        _print_update_method(out, fitted, labelled)
    if html is not None:
        report.to_html(html)
        out.print(f"HTML report written to {html}.", markup=False)
    if json_path is not None:
        report.to_json(json_path)
        out.print(f"JSON summary written to {json_path}.", markup=False)


def _read_reference(path: Path) -> dict[str, Any]:
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(ref, dict):
        raise ValueError(f"{path} does not hold a training reference (a JSON object).")
    return ref


def _print_update_method(out: Any, model: RiskModel, labelled: Any) -> None:
    """Name the updating method the labelled batch supports (the closed test of
    :func:`spinerisk.update`, method="auto"): keep, intercept, recalibrate or revise."""
    import warnings

    import spinerisk as sr

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            updated = sr.update(model, labelled, method="auto")
    except (ValueError, sr.SchemaValidationError) as exc:  # too few outcomes, say
        out.print(f"Update method: not assessed ({exc})", markup=False, soft_wrap=True)
        return
    method = updated.lineage_["method"]
    if method == "per cause":  # competing risks: one decision per cause
        parts = updated.lineage_.get("parts") or []
        method = ", ".join(f"cause {p.get('cause')}: {p.get('method')}" for p in parts)
        advice = "; run spinerisk update --method auto"
    else:
        advice = "" if method == "keep" else f"; run spinerisk update --method {method}"
    out.print(
        f"Update method the labelled records support (closed test, alpha 0.05): {method}" + advice,
        markup=False,
        soft_wrap=True,
    )
