"""``spinerisk explain``: per-record explanations of a saved model's risks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from spinerisk.cli._common import (
    BANNER,
    ENCODING_OPTION,
    MAPPING_OPTION,
    SEP_OPTION,
    bad_input_errors,
    fail,
    read_mapped,
    stdout,
    typer,
    write_csv_safely,
)

#: Lines printed on the terminal; the output file always has every record.
_MAX_PRINTED = 50


def _table(expl: Any, top: int) -> Any:
    """One row per record: risk, reference risk, sentence, drivers, contributions, points."""
    import pandas as pd

    from spinerisk.endpoints import stated_horizon

    idx = expl.contributions.index
    frame = pd.DataFrame(
        {
            expl.risk.name: expl.risk.to_numpy(),
            "base_risk": expl.base_risk,
            "horizon_days": stated_horizon(expl.horizon),
            "scale": expl.scale,
            "sentence": expl.sentences(k=top).to_numpy(),
            "top_drivers": expl.top_drivers(top).to_numpy(),
        },
        index=idx,
    )
    contrib = expl.contributions.add_prefix("contribution_")
    points = expl.risk_points.add_prefix("points_")
    frame = pd.concat([frame, contrib, points], axis=1)
    frame.insert(
        len(frame.columns) - contrib.shape[1] - points.shape[1], "base_value", expl.base_value
    )
    return frame.reset_index()


def _write(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_csv_safely(frame, path)
    elif suffix == ".parquet":
        tmp = path.with_name(path.name + ".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    else:
        raise ValueError(f"--output must end in .csv or .parquet; got {path.name!r}.")


def explain(
    model: Annotated[Path, typer.Option("--model", help="Model bundle (.srb).")],
    input: Annotated[Path, typer.Option("--input", help="Records (.csv, .tsv, .parquet, .json).")],
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write one row per record (.csv or .parquet): risk, sentence, "
            "top drivers, contributions and percentage points per field."
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Drivers mentioned per record.")] = 3,
    horizon: Annotated[
        float | None,
        typer.Option(
            help="Horizon in the endpoint's time unit (days for the spine endpoints, "
            'months for an endpoint file with time_unit = "months"); default: the '
            "first horizon."
        ),
    ] = None,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[str, ENCODING_OPTION] = "utf-8",
) -> None:
    """Explain each record's risk: the clinical fields that raise or lower it.

    Prints one plain-language line per record (at most 50 on the terminal) and, with
    --output, writes the full table. Contributions describe the model, not causes (a
    treatment field the model reads is confounded by indication). Exit code 2 on bad
    input (missing or unreadable files, mapping or schema errors, an invalid bundle or
    horizon).
    """
    import warnings

    import spinerisk as sr
    from spinerisk.explanation import explain as explain_records

    try:
        fitted = sr.load(model)
        records = read_mapped(
            input, sep=sep, encoding=encoding, mapping=mapping, schema=fitted.schema_
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            expl = explain_records(fitted, records, horizon=horizon)
        table = _table(expl, top)
        if output is not None:
            _write(table, output)
    except bad_input_errors(ValueError) as exc:
        fail(exc)
    out = stdout()
    if expl.synthetic:
        out.print(BANNER, style="bold red", markup=False)
    id_col = table.columns[0]
    for rid, sentence in zip(table[id_col].head(_MAX_PRINTED), table["sentence"], strict=False):
        out.print(f"{rid}: {sentence}", markup=False, soft_wrap=True)
    if len(table) > _MAX_PRINTED:
        out.print(f"... {len(table) - _MAX_PRINTED} more records", markup=False)
    out.print(f"{expl.note} Not clinically validated.", markup=False)
    if output is not None:
        out.print(f"{len(table)} explanations written to {output}", markup=False)
