"""``spinerisk train`` and ``spinerisk schema``: fitting a model on a file, with the
built-in spine schema and endpoints or the user's own schema and endpoint files."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from spinerisk.cli._common import (
    MAPPING_OPTION,
    SEP_OPTION,
    bad_input_errors,
    check_bundle_output,
    excluded_line,
    fail,
    read_mapped,
    split_valid,
    stderr,
    stdout,
    typer,
    write_rejects,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

_BUILTIN_ENDPOINTS = (
    "collapse, nonunion, future_fracture, odontoid_nonunion, cervical_mortality, malignant_fracture"
)


def _bad_input() -> tuple[type[BaseException], ...]:
    """The bad-input errors of ``spinerisk score`` (one list), plus schema files and
    unreadable paths."""
    import spinerisk as sr

    return bad_input_errors(sr.SchemaFileError, PermissionError, IsADirectoryError, ValueError)


def resolve_schema_and_endpoint(schema: Path | None, endpoint: str) -> tuple[Any, Any]:
    """The schema (None: the spine schema) and endpoint named on the command line."""
    import spinerisk as sr
    from spinerisk.endpoints import ENDPOINTS, load_endpoint
    from spinerisk.schema import resolve_schema

    loaded = None if schema is None else sr.load_schema(schema)
    if endpoint in ENDPOINTS:
        if loaded is not None and any(c not in loaded for c in ENDPOINTS[endpoint].outcome_columns):
            raise ValueError(
                f"--endpoint {endpoint} is a built-in spine endpoint, but schema "
                f"{loaded.name!r} lacks its outcome columns; pass an endpoint file "
                "(--endpoint endpoint.toml)."
            )
        return loaded, ENDPOINTS[endpoint]
    path = Path(endpoint)
    if path.suffix.lower() not in (".toml", ".yaml", ".yml", ".json"):
        raise ValueError(
            f"--endpoint {endpoint!r} is neither a built-in endpoint ({_BUILTIN_ENDPOINTS}) "
            "nor an endpoint file (.toml, .yaml, .json)."
        )
    return loaded, load_endpoint(path, schema=resolve_schema(loaded))


def train(
    input: Annotated[Path, typer.Option("--input", help="Cohort (.csv, .tsv or .parquet).")],
    output: Annotated[Path, typer.Option("--output", help="Model bundle to write (.srb).")],
    endpoint: Annotated[
        str,
        typer.Option(
            help=f"A built-in endpoint ({_BUILTIN_ENDPOINTS}) or an endpoint file "
            "(.toml, .yaml, .json) for your own outcome."
        ),
    ] = "nonunion",
    schema: Annotated[
        Path | None,
        typer.Option(
            help="Schema file (.toml, .yaml, .json) of your own fields; default: the "
            "built-in spine schema. Draft one with `spinerisk schema infer`."
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="auto, linear, spline, xgboost, lightgbm or xgboost_aft.")
    ] = "auto",
    mapping: Annotated[Path | None, MAPPING_OPTION] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Train on the valid records and write the rejected ones here (.csv or "
            ".parquet), with their reasons."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for every random step.")] = 0,
    sep: Annotated[str | None, SEP_OPTION] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV/TSV/JSON files (strict), e.g. latin-1.")
    ] = "utf-8",
    sign_key_env: Annotated[
        str | None,
        typer.Option(
            help="Name of an environment variable holding a secret key (>= 32 bytes): the "
            "bundle is signed (HMAC-SHA256) for score/serve --verify-key-env."
        ),
    ] = None,
    intervals: Annotated[
        int,
        typer.Option(
            "--intervals",
            min=0,
            max=200,
            help="Bootstrap refits for per-patient risk intervals (score --interval, the "
            "API's interval, explanations, the report's instability plot); 0: none. The "
            "fit takes about this many times longer.",
        ),
    ] = 0,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="The cohort is simulated: the bundle records it (CSV files do not carry "
            "the label), and the API, reports and scores say so.",
        ),
    ] = False,
) -> None:
    """Fit a risk model on a cohort file and save it as a bundle.

    The cohort is validated against the schema first: any invalid record fails with exit
    code 2 and every problem listed, unless --rejects is given, in which case the model
    is fitted on the valid records and the rejected ones are written with their
    reasons. The bundle stores the schema and the endpoint, so every later command
    (score, serve, explain, evaluate, report, monitor) reads them from it.
    """
    try:
        user_schema, ep = resolve_schema_and_endpoint(schema, endpoint)
        cohort, bad = _read_cohort(input, rejects, mapping, sep, encoding, user_schema)
        if synthetic:
            cohort.attrs["synthetic"] = True
        check_bundle_output(output)
        model, caught = _fit_keeping_rejects(
            (cohort, ep, user_schema, backend, intervals, seed), bad, rejects
        )
        model.save(output, sign_key_env=sign_key_env)
    except _bad_input() as exc:
        fail(exc)
    _print_warnings(caught)
    _print_summary(model, len(cohort), bad, rejects, intervals, seed, output)
    if model.n_excluded_:
        stdout().print(excluded_line(model, cohort), markup=False, soft_wrap=True)


def _fit_keeping_rejects(
    fit_args: tuple[Any, ...], bad: Any, rejects: Path | None
) -> tuple[RiskModel, list[Any]]:
    """:func:`_fit`, with the rejects written first (a bad rejects location leaves no
    model behind) and also when the fit stops (the rows refused so far are not lost)."""
    try:
        model, caught = _fit(*fit_args)
    except _bad_input():
        if bad is not None:  # written as when the fit succeeds, an empty table included
            write_rejects(bad, rejects)
            stderr().print(
                f"{len(bad)} rejected record(s) written to {rejects} before the fit stopped.",
                markup=False,
                soft_wrap=True,
            )
        raise
    if bad is not None:
        write_rejects(bad, rejects)
    return model, caught


def _read_cohort(
    input: Path,
    rejects: Path | None,
    mapping: Path | None,
    sep: str | None,
    encoding: str,
    user_schema: Any,
) -> tuple[Any, Any]:
    """The cohort to fit on, and (with --rejects) the rejected records with their row
    in the file and reasons: unreadable rows and lenient numbers are rejects too, as in
    ``spinerisk validate``. Without --rejects, the file as read (validated by the fit)."""
    import spinerisk as sr
    from spinerisk.io import read_for_validation
    from spinerisk.schema import resolve_schema

    if rejects is None:
        return read_mapped(
            input, sep=sep, mapping=mapping, schema=user_schema, encoding=encoding
        ), None
    if rejects.suffix.lower() not in (".csv", ".parquet"):
        raise sr.RecordsReadError(
            f"--rejects must be a .csv or .parquet file; got {rejects.name!r}."
        )
    target = resolve_schema(user_schema)
    cohort, unread = read_for_validation(
        input, sep=sep, encoding=encoding, mapping=mapping, schema=target
    )
    return split_valid(cohort, unread, target)


def _fit(
    cohort: Any, ep: Any, user_schema: Any, backend: str, intervals: int, seed: int
) -> tuple[RiskModel, list[Any]]:
    """The fitted model (with --intervals, its bootstrap refits too) and the warnings
    raised, data-quality ones always."""
    import spinerisk as sr
    from spinerisk.exceptions import DataQualityWarning

    builtin = _builtin().get(ep.name) is ep  # a built-in is saved by its name
    model = sr.RiskModel(
        endpoint=ep.name if builtin else ep,
        backend=backend,  # type: ignore[arg-type]
        schema=user_schema,
        random_state=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        model.fit(cohort)
        if intervals:
            model.fit_intervals(cohort, n_resamples=intervals, random_state=seed)
    return model, caught


def _print_warnings(caught: list[Any]) -> None:
    """Data-quality warnings as lines a user reads, not Python's format; others as they
    were raised."""
    from spinerisk.exceptions import DataQualityWarning

    for w in caught:
        if issubclass(w.category, DataQualityWarning):
            stderr().print(f"warning: {w.message}", markup=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _print_summary(
    model: RiskModel,
    n_valid: int,
    bad: Any,
    rejects: Path | None,
    intervals: int,
    seed: int,
    output: Path,
) -> None:
    """What was fitted on what: records in = valid + rejected, the endpoint, schema and
    backend chosen (with the reason), the bootstrap refits kept, and where it went."""
    out = stdout()
    if bad is not None:
        out.print(
            f"records in: {n_valid + len(bad)} = valid: {n_valid} + rejected: {len(bad)} "
            f"(rejects written to {rejects}).",
            markup=False,
            soft_wrap=True,
        )
    horizons = ", ".join(model.endpoint_.horizon_label(h) for h in model.horizons_)
    out.print(
        f"endpoint {model.endpoint_.name} ({model.endpoint_.kind}, {horizons}) on schema "
        f"{model.schema_.name!r}: backend {model.backend_!r} fitted on {model.n_train_} "
        f"records ({model.n_excluded_} not eligible or outcome unknown).",
        markup=False,
        soft_wrap=True,
    )
    out.print(f"reason: {model.selection_reason_}", markup=False, soft_wrap=True)
    if intervals:
        info = model.interval_info_
        out.print(
            f"intervals: {info['n_fitted']} of {info['n_resamples']} bootstrap refits "
            f"stored (seed {seed}).",
            markup=False,
            soft_wrap=True,
        )
    out.print(f"model written to {output}", markup=False, soft_wrap=True)


def _builtin() -> dict[str, Any]:
    from spinerisk.endpoints import ENDPOINTS

    return ENDPOINTS


def schema_infer(
    data: Annotated[Path, typer.Argument(help="Data file (.csv, .tsv, .parquet, .json).")],
    name: Annotated[str | None, typer.Option(help="Schema name; default: the file's stem.")] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="The record-identifier column; default: guessed (a unique column named "
            "like an id), else generated row ids.",
        ),
    ] = None,
    max_codes: Annotated[
        int, typer.Option(help="Text columns with at most this many values become code lists.")
    ] = 12,
    sep: Annotated[str | None, SEP_OPTION] = None,
) -> None:
    """Draft a schema file from a data file, printed as TOML (redirect it to a file).

    Types, ranges (with a margin), code lists, missing markers and an identifier are
    guessed from the values; read the draft, set roles (outcome, group, comparator) and
    descriptions, then check it with `spinerisk schema check`.
    """
    import spinerisk as sr
    from spinerisk.schema import infer_schema, schema_to_dict
    from spinerisk.schema._files import dump_toml

    try:
        frame = sr.read_records(data, sep=sep)
        schema = infer_schema(
            frame,
            name=name or _schema_name(data.stem),
            id_column=id_column,
            max_codes=max_codes,
            source=data.name,
        )
    except _bad_input() as exc:
        fail(exc)
    header = (
        f"# Schema drafted by `spinerisk schema infer` from {data.name} ({len(frame)} records).\n"
        "# Check every field: dtype, unit, range, codes and role (feature, outcome,\n"
        "# outcome_time, outcome_event, group, comparator, admin, id).\n"
    )
    renamed = _renamed_columns(frame.columns)
    if renamed:
        header += _renamed_note(renamed, data.name)
        stderr().print(
            f"note: {len(renamed)} column name(s) are not field names and were renamed "
            f"({', '.join(f'{c!r} -> {f}' for c, f in renamed[:3])}"
            f"{', ...' if len(renamed) > 3 else ''}); read {data.name} with the mapping "
            "written at the top of the draft (--mapping).",
            markup=False,
            soft_wrap=True,
        )
    sys.stdout.write(header + "\n" + dump_toml(schema_to_dict(schema)))


def _renamed_columns(columns: Any) -> list[tuple[str, str]]:
    """(column, field) for every column the draft names differently."""
    from spinerisk.schema._infer import field_name

    return [(str(c), field_name(str(c))) for c in columns if field_name(str(c)) != str(c)]


def _renamed_note(renamed: list[tuple[str, str]], source: str) -> str:
    """A commented mapping file that reads the data with the draft's field names."""
    lines = [
        "#",
        f"# Some column names of {source} are not field names; the draft renamed them.",
        "# Save these lines without the leading '# ' as mapping.toml and pass",
        "# --mapping mapping.toml to every command that reads the file:",
        "# [columns]",
    ]
    lines += [f"# {json.dumps(c)} = {json.dumps(f)}" for c, f in renamed]
    return "\n".join(lines) + "\n"


def _schema_name(stem: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) or "inferred"


def schema_check(
    path: Annotated[Path, typer.Argument(help="Schema or endpoint file (.toml, .yaml, .json).")],
    schema: Annotated[
        Path | None,
        typer.Option(help="For an endpoint file: the schema its columns must belong to."),
    ] = None,
) -> None:
    """Check a schema file (or an endpoint file, given --schema or with `kind =`): every
    mistake is listed with its line and key; exit code 2 when there is one."""
    import spinerisk as sr
    from spinerisk.schema._files import read_declaration

    try:
        data, _ = read_declaration(path)
    except sr.SchemaFileError as exc:
        _problems(path, exc.problems)
    if "kind" in data and "fields" not in data:
        from spinerisk.endpoints import endpoint_problems

        ep, problems = endpoint_problems(data, path.read_text(encoding="utf-8"))
        if problems:
            _problems(path, problems)
        if schema is not None:
            try:
                ep.check_schema(sr.load_schema(schema))  # type: ignore[union-attr]
            except sr.SchemaFileError as exc:
                _problems(schema, exc.problems)
            except ValueError as exc:
                fail(exc)
        stdout().print(f"{path}: endpoint {ep.name!r} is correct.", markup=False)  # type: ignore[union-attr]
        return
    problems = sr.schema.check_schema_file(path)
    if problems:
        _problems(path, problems)
    loaded = sr.load_schema(path)
    stdout().print(
        f"{path}: schema {loaded.name!r} is correct ({_count(len(loaded), 'field')}, "
        f"{_count(len(loaded.rules), 'rule')}, "
        f"{_count(len(loaded.derived), 'derived feature')}).",
        markup=False,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _problems(path: Path, problems: list[Any]) -> NoReturn:
    err = stderr()
    n = len(problems)
    err.print(f"{path}: {n} problem{'s' if n != 1 else ''}", markup=False)
    for p in problems:
        err.print(f"  {p}", markup=False, soft_wrap=True)
    raise typer.Exit(code=2)
