"""``spinerisk evaluate`` and ``spinerisk report``: a saved model on a records file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from spinerisk.cli._common import (
    BANNER,
    ENCODING_OPTION,
    MAPPING_OPTION,
    SEP_OPTION,
    fail,
    print_frame,
    read_mapped,
    stderr,
    stdout,
    typer,
)

_MODEL = typer.Option("--model", help="Model bundle (.srb) written by RiskModel.save.")
_INPUT = typer.Option("--input", help="Records with outcomes (.csv, .tsv, .parquet, .json).")
_BOOTSTRAP = typer.Option("--bootstrap", help="Bootstrap resamples for the intervals.", min=1)
_SEED = typer.Option(help="Random seed of the bootstrap (same seed, same numbers).")
_VALIDATION = typer.Option(
    "--validation",
    help="Required: what the records are relative to the model's development data: "
    "internal (the development records themselves), split (a random part held out from "
    "fitting), temporal (a later period) or external (another cohort). The report states "
    "it; the tool cannot check it.",
)
_SYNTHETIC = typer.Option(
    "--synthetic", help="Label the results as SYNTHETIC DATA (files do not carry the label)."
)
_COMPARATOR = typer.Option(
    "--comparator",
    help="Score to evaluate beside the model: a comparator field of the schema or a shipped "
    "calculator (garvan, garvan_tscore_min). Repeat for several. Default: the endpoint's "
    "declared comparators.",
)
_HORIZON = typer.Option(
    "--horizon",
    help="Evaluate at this horizon, in the endpoint's time unit (repeat for several; "
    "default: the model's horizons). Uno's C and the integrated Brier score run to the last.",
)
_THRESHOLD = typer.Option(
    "--threshold",
    help="A risk threshold of the decision curve, strictly between 0 and 1 (repeat for "
    "several; default: 0.01 to 0.99 for a binary outcome, 0.02 to 0.60 otherwise).",
)
_NO_COMPARATORS = typer.Option(
    "--no-comparators", help="Evaluate the model alone, without the declared comparators."
)


def _run(
    model_path: Path,
    input_path: Path,
    mapping: Path | None,
    sep: str | None,
    *,
    encoding: str = "utf-8",
    n_bootstrap: int,
    seed: int,
    validation: str,
    synthetic: bool,
    explain: bool,
    comparators: list[str] | None = None,
    no_comparators: bool = False,
    horizons: list[float] | None = None,
    thresholds: list[float] | None = None,
) -> Any:
    """Load, read, evaluate; bad input exits with code 2 and the message on stderr."""
    import spinerisk as sr
    from spinerisk.evaluation import evaluate

    try:
        model = sr.load(model_path)
        records = read_mapped(
            input_path, sep=sep, encoding=encoding, mapping=mapping, schema=model.schema_
        )
        if synthetic:
            records.attrs["synthetic"] = True
        return evaluate(
            model,
            records,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            validation=validation,  # type: ignore[arg-type]
            explain=explain,
            comparators=() if no_comparators else (comparators or None),
            horizons=horizons or None,
            thresholds=thresholds or None,
        )
    except FileNotFoundError as exc:
        fail(exc)
    except (sr.SchemaValidationError, sr.MappingError, sr.RecordsReadError) as exc:
        fail(exc)  # "error: " and the message, as every command
    except sr.ArtifactError as exc:
        stderr().print(f"error: cannot load model {str(model_path)!r}: {exc}", markup=False)
        raise typer.Exit(code=2) from exc
    except ValueError as exc:  # no eligible records, wrong outcome columns, bad options
        fail(exc)


def evaluate(
    model: Annotated[Path, _MODEL],
    input: Annotated[Path, _INPUT],
    validation: Annotated[str, _VALIDATION],
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, ENCODING_OPTION] = "utf-8",
    bootstrap: Annotated[int, _BOOTSTRAP] = 200,
    seed: Annotated[int, _SEED] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full report as JSON here.")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown summary here.")
    ] = None,
    synthetic: Annotated[bool, _SYNTHETIC] = False,
    comparator: Annotated[list[str] | None, _COMPARATOR] = None,
    no_comparators: Annotated[bool, _NO_COMPARATORS] = False,
    horizon: Annotated[list[float] | None, _HORIZON] = None,
    threshold: Annotated[list[float] | None, _THRESHOLD] = None,
) -> None:
    """Evaluate a saved model on records with observed outcomes.

    Prints every metric with its percentile bootstrap interval (resampling patients) and
    writes the full report as JSON and/or Markdown. Records not eligible for the model's
    endpoint, or without its outcome, are excluded and counted. Comparators (existing
    scores, published calculators) are shown beside the model with paired differences.
    """
    report = _run(
        model,
        input,
        mapping,
        sep,
        encoding=encoding,
        n_bootstrap=bootstrap,
        seed=seed,
        validation=validation,
        synthetic=synthetic,
        explain=False,
        comparators=comparator,
        no_comparators=no_comparators,
        horizons=horizon,
        thresholds=threshold,
    )
    out = stdout()
    if report.synthetic:
        out.print(f"[bold red]{BANNER}[/bold red]")
    out.print(
        f"{report.model_info['endpoint']} model ({report.model_info['backend']}), "
        f"{report.validation} validation: {report.n_evaluated} of {report.n_records} records "
        f"evaluated ({report.n_excluded} excluded), {report.n_events} events, "
        f"{report.n_flagged} flagged outside the training data.",
        markup=False,
    )
    print_frame(out, report.metric_table().set_index("metric"), "Metrics")
    for note in report.notes:  # why a metric is n/a, records left out, small samples
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    _print_comparators(out, report)
    if json_path is not None:
        _write_text(json_path, json.dumps(report.to_dict(), indent=2))
        out.print(f"JSON report written to {json_path}.", markup=False)
    if markdown is not None:
        _write_text(markdown, report.to_markdown())
        out.print(f"Markdown report written to {markdown}.", markup=False)


def report(
    model: Annotated[Path, _MODEL],
    input: Annotated[Path, _INPUT],
    output: Annotated[Path, typer.Option("--output", help="HTML file to write.")],
    validation: Annotated[str, _VALIDATION],
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, ENCODING_OPTION] = "utf-8",
    bootstrap: Annotated[int, _BOOTSTRAP] = 200,
    seed: Annotated[int, _SEED] = 0,
    synthetic: Annotated[bool, _SYNTHETIC] = False,
    comparator: Annotated[list[str] | None, _COMPARATOR] = None,
    no_comparators: Annotated[bool, _NO_COMPARATORS] = False,
    horizon: Annotated[list[float] | None, _HORIZON] = None,
    threshold: Annotated[list[float] | None, _THRESHOLD] = None,
) -> None:
    """Write a self-contained HTML validation report (TRIPOD+AI sections).

    One file with the data summary, model, discrimination, calibration and decision
    curves, comparators, subgroups, sample size, explanations and intended use and
    limitations; figures are embedded, nothing is loaded from the network.
    """
    result = _run(
        model,
        input,
        mapping,
        sep,
        encoding=encoding,
        n_bootstrap=bootstrap,
        seed=seed,
        validation=validation,
        synthetic=synthetic,
        explain=True,
        comparators=comparator,
        no_comparators=no_comparators,
        horizons=horizon,
        thresholds=threshold,
    )
    result.to_html(output)
    _print_comparators(stdout(), result)
    stdout().print(
        f"Report on {result.n_evaluated} records written to {output}"
        + (" (SYNTHETIC DATA)." if result.synthetic else "."),
        markup=False,
    )


def _print_comparators(out: Any, report: Any) -> None:
    """The comparator table and how each comparator was handled, when there are any."""
    if report.comparators is None:
        return
    for info in report.comparators["info"]:
        out.print(
            f"Comparator {info['name']}: {info['handling']}; {info['n']} records with a "
            f"value ({info['n_without_value']} without).",
            markup=False,
        )
    table = report.comparator_table()
    if len(table):
        print_frame(
            out,
            table.set_index("comparator"),
            "Model against comparators (difference: model - comparator, paired bootstrap)",
        )
    for note in report.comparators["notes"]:
        out.print(note, markup=False)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
