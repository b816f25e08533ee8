"""Records in: read CSV / Parquet / JSON files and map a hospital's columns and codes.

Nothing here models or validates clinical values; :func:`read_records` keeps text as
text and :func:`apply_mapping` only renames columns, translates declared codes and
applies declared unit factors. :func:`spinerisk.validate` does the checking.
"""

from __future__ import annotations

import csv
import io
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import MappingError, RecordsReadError
from spinerisk.schema._spec import Schema, is_missing

__all__ = ["ColumnMapping", "apply_mapping", "load_mapping", "read_records"]

#: Text read as missing in CSV files (nothing else is: "None" or "-" stay text).
NA_VALUES: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")
_MAX_LISTED = 20


# ---------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------
def read_records(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read clinical records from CSV, TSV, Parquet, JSON or JSON-lines.

    CSV and JSON values are read as text (missing markers: ``""``, ``NA``, ``N/A``,
    ``NaN``, ``nan``, ``null``, ``NULL``); :func:`spinerisk.validate` converts them to
    the schema's types and reports every value that does not fit, by row and column.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.tsv``, ``.txt``, ``.parquet``, ``.json`` or ``.jsonl`` file.
    sep : str or None, default=None
        Field delimiter for text files; None means ``","`` (``"\\t"`` for ``.tsv``).
    encoding : str, default="utf-8"
        Text encoding. Decoding is strict: a byte that is not valid in this encoding is
        an error naming its line, never replaced silently.

    Returns
    -------
    DataFrame
        One row per record; ``attrs["source"]`` holds the file name for messages.

    Raises
    ------
    RecordsReadError
        Unknown file type, undecodable bytes, a delimiter that does not match, ragged
        rows, or a file with no header.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spinerisk.io import read_records
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "x.csv").write_text("patient_id,age_years\\nP1,71\\nP2,\\n")
    >>> read_records(d / "x.csv")
      patient_id age_years
    0         P1        71
    1         P2       NaN
    >>> _ = (d / "y.csv").write_text("patient_id;age_years\\nP1;71\\n")
    >>> read_records(d / "y.csv")
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.RecordsReadError: 'y.csv' line 1: the header 'patient_id;age_years' contains ';' but no ','; the file looks ';'-delimited. Pass sep=';'.
    """  # noqa: E501
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No records file at {str(path)!r}.")
    suffix = path.suffix.lower()
    name = path.name
    if suffix in (".csv", ".tsv", ".txt"):
        delimiter = _delimiter_of(sep, suffix)
        df = _read_text_table(path, delimiter, encoding)
    elif suffix == ".parquet":
        from spinerisk._optional import import_optional

        import_optional("pyarrow", extra="parquet", purpose="reading Parquet files")
        df = pd.read_parquet(path)
    elif suffix in (".json", ".jsonl"):
        text = _decode(path, encoding)
        try:
            df = pd.read_json(io.StringIO(text), lines=suffix == ".jsonl", dtype=False)
        except ValueError as exc:
            raise RecordsReadError(f"{name!r} is not valid JSON records: {exc}") from exc
    else:
        raise RecordsReadError(
            f"{name!r}: unknown file type {suffix!r}; expected .csv, .tsv, .txt, .parquet, "
            ".json or .jsonl."
        )
    df.attrs["source"] = name
    return df


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end]
        raise RecordsReadError(
            f"{path.name!r} line {line}, column {col}: byte {bad!r} is not valid {encoding}. "
            f"Re-save the file as UTF-8, or pass the file's real encoding "
            f"(for example encoding='latin-1')."
        ) from exc
    except LookupError as exc:
        raise RecordsReadError(f"encoding={encoding!r} is not a known text encoding.") from exc


def _read_text_table(path: Path, delimiter: str, encoding: str) -> pd.DataFrame:
    text = _decode(path, encoding)
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark is not part of the first name
        text = text[1:]
    header = text.split("\n", 1)[0].rstrip("\r")
    if not header.strip():
        raise RecordsReadError(f"{path.name!r} line 1: no header row with column names.")
    if delimiter not in header:
        for other in (";", "\t", "|", ","):
            if other != delimiter and other in header:
                shown = "\\t" if other == "\t" else other
                raise RecordsReadError(
                    f"{path.name!r} line 1: the header {header[:80]!r} contains {shown!r} "
                    f"but no {delimiter!r}; the file looks {shown!r}-delimited. "
                    f"Pass sep={shown!r}."
                )
    _check_field_counts(path.name, text, delimiter)
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=list(NA_VALUES),
            quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())
        raise RecordsReadError(
            f"{path.name!r}: the rows do not match the header ({detail}). Check the delimiter "
            "(sep=...) and quoting of text that contains it."
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise RecordsReadError(f"{path.name!r} is empty.") from exc


def _check_field_counts(name: str, text: str, delimiter: str) -> None:
    """Every row must have as many fields as the header: pandas pads short rows silently."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    width = None
    bad: list[str] = []
    for fields in reader:
        if not fields:  # blank line, skipped as pandas does
            continue
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            bad.append(f"line {reader.line_num}: {len(fields)} fields")
            if len(bad) == 5:
                break
    if bad:
        raise RecordsReadError(
            f"{name!r}: rows do not match the header's {width} fields ({'; '.join(bad)}). "
            "Check the delimiter (sep=...) and the quoting of text that contains it."
        )


# ---------------------------------------------------------------------------------------
# column mapping
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnMapping:
    """How a hospital extract's columns and codes map onto a schema.

    Every change it makes is declared here: renaming, code translation, whitespace
    stripping and unit factors. Anything not declared is left for validation to judge.

    Parameters
    ----------
    columns : mapping of str to str
        Source column name -> schema field name. Source columns already named like a
        schema field need no entry.
    values : mapping of str to mapping, default={}
        Schema field -> {source code: schema code}, e.g. ``{"sex": {"Male": "M"}}`` or
        ``{"current_smoking": {"Y": True, "N": False}}``. Source codes match by their
        text, so ``1``, ``1.0`` and ``"1"`` all match the key ``"1"``.
    strip_whitespace : bool or tuple of str, default=False
        Strip leading and trailing spaces from text (``"T12 "`` -> ``"T12"``): True for
        every column, or the schema fields to strip.
    scale : mapping of str to float, default={}
        Schema field -> factor applied to the source number (``{"height_cm": 100}`` for
        heights recorded in metres).
    ignore : tuple of str, default=()
        Source columns deliberately left out (free text, names): they are dropped.

    Examples
    --------
    >>> from spinerisk.io import ColumnMapping
    >>> m = ColumnMapping.from_dict({"columns": {"Gender": "sex"},
    ...                              "values": {"sex": {"Male": "M", "Female": "F"}}})
    >>> m.columns["Gender"]
    'sex'
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    strip_whitespace: bool | tuple[str, ...] = False
    scale: Mapping[str, float] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    _KEYS = ("columns", "values", "strip_whitespace", "scale", "ignore")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> ColumnMapping:
        """Build a mapping from a dict (the parsed TOML/YAML file)."""
        if not isinstance(spec, Mapping):
            raise MappingError(f"A column mapping must be a table/dict; got {type(spec).__name__}.")
        unknown = sorted(set(spec) - set(cls._KEYS))
        if unknown:
            raise MappingError(
                f"Unknown key(s) {unknown} in the column mapping; expected some of "
                f"{', '.join(cls._KEYS)}."
            )
        strip = spec.get("strip_whitespace", False)
        if not isinstance(strip, bool):
            strip = tuple(strip)
        for key in ("columns", "values", "scale"):
            if not isinstance(spec.get(key, {}), Mapping):
                raise MappingError(f"Column mapping key {key!r} must be a table of name = value.")
        return cls(
            columns=dict(spec.get("columns", {})),
            values={k: dict(v) for k, v in spec.get("values", {}).items()},
            strip_whitespace=strip,
            scale={k: float(v) for k, v in spec.get("scale", {}).items()},
            ignore=tuple(spec.get("ignore", ())),
        )


def load_mapping(path: str | os.PathLike[str]) -> ColumnMapping:
    """Load a :class:`ColumnMapping` from a TOML or YAML file.

    Parameters
    ----------
    path : str or path-like
        ``.toml``, ``.yaml`` or ``.yml`` file with the keys ``columns``, ``values``,
        ``strip_whitespace``, ``scale`` and ``ignore``.

    Returns
    -------
    ColumnMapping

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spinerisk.io import load_mapping
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "site.toml"
    >>> _ = p.write_text('[columns]\\nGender = "sex"\\n[values.sex]\\nMale = "M"\\n')
    >>> load_mapping(p).values["sex"]
    {'Male': 'M'}
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{path.name!r} is not valid TOML: {exc}") from exc
    elif suffix in (".yaml", ".yml"):
        from spinerisk._optional import import_optional

        yaml = import_optional("yaml", extra="yaml", purpose="reading YAML column mappings")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise MappingError(f"{path.name!r} is not valid YAML: {exc}") from exc
    else:
        raise MappingError(f"{path.name!r}: a column mapping is a .toml, .yaml or .yml file.")
    return ColumnMapping.from_dict(spec)


def _code_key(value: Any) -> str:
    """Text form used to match source codes: 1, 1.0 and "1" all give "1"."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def apply_mapping(
    df: pd.DataFrame,
    mapping: ColumnMapping | Mapping[str, Any] | str | os.PathLike[str],
    schema: Schema | None = None,
) -> pd.DataFrame:
    """Rename a hospital extract's columns and translate its codes onto a schema.

    Parameters
    ----------
    df : DataFrame
        The extract as read (for example by :func:`read_records`).
    mapping : ColumnMapping, dict or path
        The mapping, a dict in the same shape, or a TOML/YAML file.
    schema : Schema or None, default=None
        Target schema; None means :data:`spinerisk.schema.SPINE_SCHEMA`.

    Returns
    -------
    DataFrame
        A new frame with schema field names; the input is not modified.

    Raises
    ------
    MappingError
        A mapping target that is not a schema field, a mapped source column that is not
        in the extract, a source column that is neither mapped nor ignored, a required
        schema field that nothing maps to, or codes with no translation (each listed
        with row, column and value).

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.io import apply_mapping
    >>> raw = pd.DataFrame({"ID": ["A1", "A2"], "Age": [81, 77], "Gender": ["F", "Male"]})
    >>> mapping = {"columns": {"ID": "patient_id", "Age": "age_years", "Gender": "sex"},
    ...            "values": {"sex": {"Male": "M", "Female": "F"}}}
    >>> apply_mapping(raw, mapping)
      patient_id  age_years sex
    0         A1         81   F
    1         A2         77   M
    >>> raw.loc[1, "Gender"] = "U"
    >>> apply_mapping(raw, mapping)
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.MappingError: 1 value cannot be mapped onto the schema:
      row 1: Gender='U' (field sex): not in [values.sex] and not a code of the schema (expected one of F, M, not missing).
    Add missing codes under [values.<field>] in the mapping; fix non-numbers in [scale] fields at the source.
    """  # noqa: E501
    from spinerisk.schema.default import SPINE_SCHEMA

    schema = SPINE_SCHEMA if schema is None else schema
    if isinstance(mapping, str | os.PathLike):
        mapping = load_mapping(mapping)
    elif not isinstance(mapping, ColumnMapping):
        mapping = ColumnMapping.from_dict(mapping)

    out, problems = _map_frame(df, mapping, schema)
    if problems:
        problems.sort(key=lambda p: p[0])
        n = len(problems)
        lines = [f"{n} value{'s' if n != 1 else ''} cannot be mapped onto the schema:"]
        lines += [f"  row {row}: {text}." for row, text in problems[:_MAX_LISTED]]
        if n > _MAX_LISTED:
            lines.append(f"  ... and {n - _MAX_LISTED} more.")
        lines.append(
            "Add missing codes under [values.<field>] in the mapping; fix non-numbers in "
            "[scale] fields at the source."
        )
        raise MappingError("\n".join(lines))
    out.attrs = dict(df.attrs)
    return out


def _map_frame(
    df: pd.DataFrame, mapping: ColumnMapping, schema: Schema
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """:func:`apply_mapping` without raising for values: the mapped frame and every value
    that could not be mapped as ``(row position, reason)``. Problems with the columns
    themselves still raise MappingError (no record could be mapped)."""
    bad_targets = sorted({t for t in mapping.columns.values() if t not in schema})
    if bad_targets:
        raise MappingError(
            f"The column mapping targets {bad_targets}, which are not fields of schema "
            f"{schema.name!r}. Check the spelling (see the schema reference)."
        )
    for key, section in (("values", mapping.values), ("scale", mapping.scale)):
        unknown = sorted(f for f in section if f not in schema)
        if unknown:
            raise MappingError(f"[{key}] names {unknown}, which are not fields of the schema.")
    absent = [c for c in mapping.columns if c not in df.columns]
    if absent:
        raise MappingError(
            f"The column mapping maps source column(s) {absent}, which are not in the extract "
            f"(its columns: {list(map(str, df.columns))[:30]})."
        )
    targets = list(mapping.columns.values())
    dup_targets = sorted({t for t in targets if targets.count(t) > 1})
    if dup_targets:
        raise MappingError(f"Several source columns map to the same field(s) {dup_targets}.")
    unmapped = [
        c
        for c in df.columns
        if c not in mapping.columns and c not in mapping.ignore and c not in schema
    ]
    if unmapped:
        raise MappingError(
            f"Source column(s) {unmapped} are neither mapped to a schema field nor listed in "
            "`ignore`. Map them under [columns] or add them to ignore = [...] to leave them out."
        )

    out = df.drop(columns=[c for c in mapping.ignore if c in df.columns]).rename(
        columns=dict(mapping.columns)
    )
    clash = out.columns[out.columns.duplicated()].unique().tolist()
    if clash:
        raise MappingError(
            f"After renaming, field(s) {clash} appear twice: a source column is already named "
            "like the field another column is mapped to. Map or ignore one of them."
        )
    missing_required = [f for f in schema.required if f not in out.columns]
    if missing_required:
        raise MappingError(
            f"Required field(s) {missing_required} are not mapped: no source column maps to "
            f"them. Source columns: {list(map(str, df.columns))[:30]}."
        )
    source_of = {v: k for k, v in mapping.columns.items()}

    strip = mapping.strip_whitespace
    strip_fields = list(out.columns) if strip is True else list(strip or ())
    for f in strip_fields:
        if f in out.columns:
            out[f] = out[f].map(lambda v: v.strip() if isinstance(v, str) else v)

    problems: list[tuple[int, str]] = []
    for f, factor in mapping.scale.items():
        if f not in out.columns:
            continue
        num = pd.to_numeric(out[f], errors="coerce")
        bad = num.isna() & ~out[f].map(is_missing)
        for row in np.flatnonzero(bad.to_numpy()):
            problems.append(
                (
                    int(row),
                    f"{source_of.get(f, f)}={out[f].iloc[row]!r} (field {f}) is not a "
                    f"number, so the unit factor {factor:g} cannot be applied",
                )
            )
        out[f] = num * factor

    for f, table in mapping.values.items():
        if f not in out.columns:
            continue
        spec = schema[f]
        lookup = {_code_key(k): v for k, v in table.items()}
        col = out[f].astype(object)
        translated = []
        for row, v in enumerate(col.to_numpy()):
            if is_missing(v):
                translated.append(v)
                continue
            key = _code_key(v)
            if key in lookup:
                translated.append(lookup[key])
            elif _is_schema_value(spec.dtype, spec.categories, v):
                translated.append(v)
            else:
                translated.append(v)
                problems.append(
                    (
                        row,
                        f"{source_of.get(f, f)}={v!r} (field {f}): not in [values.{f}] "
                        f"and not a code of the schema (expected {spec.expected()})",
                    )
                )
        out[f] = pd.Series(translated, index=out.index, dtype=object)
    out.attrs = dict(df.attrs)
    return out, problems


def _is_schema_value(dtype: str, categories: tuple[Any, ...] | None, v: Any) -> bool:
    if categories is not None:
        return any(_code_key(v) == _code_key(c) for c in categories)
    if dtype == "bool":
        return isinstance(v, bool | np.bool_) or _code_key(v) in ("0", "1", "true", "false")
    return True


def _delimiter_of(sep: str | None, suffix: str) -> str:
    """The one-character delimiter of a text file: ``sep``, or by file type.

    ``"\\t"`` (a backslash and a t, as typed in a shell) and ``"tab"`` mean a tab.

    Raises
    ------
    RecordsReadError
        If ``sep`` is not one character.
    """
    if sep is None:
        return "\t" if suffix.lower() == ".tsv" else ","
    if sep in ("\\t", "tab"):
        return "\t"
    if not isinstance(sep, str) or len(sep) != 1:
        raise RecordsReadError(
            f"sep={sep!r} is not a delimiter; expected one character such as ',', ';', '|' "
            "or a tab ('\\t')."
        )
    return sep
