"""``spinerisk update``: adapt a saved model to a site's records and save the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from spinerisk.cli._common import (
    BANNER,
    ENCODING_OPTION,
    MAPPING_OPTION,
    SEP_OPTION,
    bad_input_errors,
    check_bundle_output,
    fail,
    print_frame,
    read_mapped,
    stdout,
    typer,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

_METHOD_HELP = (
    "auto (closed testing procedure), keep, intercept (baseline risk or hazard), "
    "recalibrate (intercept and slope), revise (shrunk towards the original) or refit."
)


def _bad_input() -> tuple[type[BaseException], ...]:
    """The bad-input errors of ``spinerisk score`` (one list), plus unreadable paths."""
    return bad_input_errors(PermissionError, IsADirectoryError, ValueError)


def update(
    model: Annotated[Path, typer.Option("--model", help="Model bundle (.srb) to update.")],
    input: Annotated[
        Path, typer.Option("--input", help="The site's records with outcomes (.csv, .parquet...).")
    ],
    output: Annotated[Path, typer.Option("--output", help="Updated model bundle to write (.srb).")],
    method: Annotated[str, typer.Option(help=_METHOD_HELP)] = "auto",
    alpha: Annotated[float, typer.Option(help="Level of each test of method auto.")] = 0.05,
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Also write an HTML report of the original vs the updated model on the "
            "site (a held-out part, or optimism-corrected when the site is small)."
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the updated model's lineage as JSON.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples of the report.", min=1)
    ] = 200,
    optimism: Annotated[
        int,
        typer.Option(
            "--optimism",
            help="Optimism resamples of the report when the site is small (each repeats "
            "the update).",
            min=1,
        ),
    ] = 20,
    seed: Annotated[int, typer.Option(help="Seed for every random step.")] = 0,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, ENCODING_OPTION] = "utf-8",
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Label the records as SYNTHETIC DATA.")
    ] = False,
) -> None:
    """Update a saved model with a site's records and save the updated model.

    The update method is chosen by the closed testing procedure (method auto) or given;
    the updated bundle records its lineage: the parent bundle's sha256, the method, the
    tests behind the choice, the date and a fingerprint of the site's records. Bad
    input exits with code 2.
    """
    import spinerisk as sr

    try:
        check_bundle_output(output)
        if output.resolve() == model.resolve():
            raise sr.RecordsReadError("--output must differ from --model (keep the parent).")
        records = read_mapped(
            input,
            sep=sep,
            encoding=encoding,
            mapping=mapping,
            schema=None if mapping is None else sr.load(model).schema_,
        )
        if synthetic:
            records.attrs["synthetic"] = True
        updated = sr.update(model, records, method, alpha=alpha, random_state=seed)  # type: ignore[arg-type]
        updated.save(output)
        result = None
        if report is not None:
            from spinerisk.update import update_report

            result = update_report(
                sr.load(model),
                records,
                method,  # type: ignore[arg-type]
                alpha=alpha,
                n_bootstrap=bootstrap,
                n_optimism=optimism,
                random_state=seed,
            )
            result.to_html(report)
    except _bad_input() as exc:
        fail(exc)
    _print(updated, output, report, result)
    if json_path is not None:
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(updated.lineage_, indent=2), encoding="utf-8")
        tmp.replace(json_path)
        stdout().print(f"lineage written to {json_path}", markup=False, soft_wrap=True)


def _print(updated: RiskModel, output: Path, report: Path | None, result: Any) -> None:
    from spinerisk.update._report import tests_table

    out = stdout()
    lineage = updated.lineage_
    if lineage["update_data"].get("synthetic") or (result is not None and result.synthetic):
        out.print(f"[bold red]{BANNER}[/bold red]")
    out.print(
        f"{updated.endpoint_.name} model ({updated.backend_}): {lineage['method']} "
        f"({lineage['description']}), requested {lineage['requested']!s}; "
        f"{lineage['update_data']['n_eligible']} eligible site records.",
        markup=False,
        soft_wrap=True,
    )
    tests = tests_table(lineage)
    if len(tests):
        print_frame(out, tests.set_index("part"), "Tests behind the choice")
    for p in lineage["parts"]:
        if p.get("parameters"):
            values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in p["parameters"].items())  # fmt: skip
            out.print(f"{p['part']}: {values}", markup=False, soft_wrap=True)
        if p.get("reason"):
            out.print(f"{p['part']}: {p['reason']}", markup=False, soft_wrap=True)
    out.print(f"updated model written to {output}", markup=False, soft_wrap=True)
    if report is not None:
        out.print(
            f"report written to {report} ({result.validation}; its updated model was fitted "
            "for the comparison only)",
            markup=False,
            soft_wrap=True,
        )
