"""Validate a cohort against a :class:`~spinerisk.schema.Schema`.

Two passes, every problem collected before anything is raised:

1. **Declared conversions** (``FieldSpec.coerce``): text, numbers and booleans are
   brought to the field's dtype without changing any value. A cell that cannot be
   converted (``"abc"`` in a numeric field, ``2.5`` in a count, ``"Y"`` in a boolean,
   an infinity) is a problem at that row and column.
2. **pandera** (lazy): ranges, code lists, patterns, missingness, uniqueness, unknown
   and missing columns, and the schema's cross-field :class:`RowRule`\\ s.

Problems are reported as record id, 0-based row, column, value and what was expected.
"""

from __future__ import annotations

import decimal
import re
import warnings
import weakref
from collections.abc import Hashable
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import pandas as pd

from spinerisk.exceptions import DataQualityWarning, SchemaValidationError
from spinerisk.schema._spec import FieldSpec, Schema, is_missing
from spinerisk.schema._text import number_text_problem

__all__ = ["ValidationResult", "validate"]

FAILURE_COLUMNS = ["record_id", "row", "column", "value", "check", "expected", "message"]
#: Declared boolean spellings (the validator's and the fast path's). Site codes such as
#: "Y"/"N" belong in a column mapping.
BOOL_TEXT = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
_MAX_LISTED = 20
# an all-missing column is worth a warning in a cohort, not in a handful of records
_MIN_RECORDS_FOR_WARNINGS = 50


class ValidationResult(NamedTuple):
    """Result of ``validate(..., on_invalid="split")``.

    Attributes
    ----------
    valid : DataFrame
        Records that satisfy the schema, with schema dtypes, original index kept.
    rejects : DataFrame
        Records that do not, with their original values, the 0-based ``row`` they had
        in the input and ``reasons`` (every problem, ``" | "``-separated). Always
        ``len(valid) + len(rejects) == len(input)``.
    """

    valid: pd.DataFrame
    rejects: pd.DataFrame


class _Problems:
    """Collects problems as rows of the failures table."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self, row: int | None, column: str | None, value: Any, check: str, expected: str, what: str
    ) -> None:
        self.rows.append(
            {
                "row": row,
                "column": column,
                "value": value,
                "check": check,
                "expected": expected,
                "what": what,
            }
        )


# ---------------------------------------------------------------------------------------
# pass 1: declared conversions
# ---------------------------------------------------------------------------------------
def _all_text(values: np.ndarray) -> bool:
    """Whether every non-missing cell of an object array is text (a C-speed scan)."""
    return bool(pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"))


def _per_distinct_text(values: np.ndarray, fn: Any, dtype: Any = bool) -> np.ndarray:
    """``fn`` of every cell of an all-text object array, called once per distinct text.

    Equal texts are the same value, so the result is that of calling ``fn`` cell by cell;
    missing cells get ``fn(None)``. Codes and flags have a handful of distinct values, so
    this replaces a Python call per cell by one per code.
    """
    codes, uniques = pd.factorize(values)
    table = np.array([fn(u) for u in uniques] + [fn(None)], dtype=dtype)
    return table[codes]  # code -1 (missing) picks the last entry, fn(None)


def _is_blank(v: Any) -> bool:
    return isinstance(v, str) and v.strip() == ""


def _missing_mask(s: pd.Series) -> np.ndarray:
    mask = s.isna().to_numpy(dtype=bool)
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        text = s.to_numpy(dtype=object)
        if _all_text(text):
            blank = _per_distinct_text(text, _is_blank)
        else:
            blank = np.array([_is_blank(v) for v in text], dtype=bool)
        mask = mask | blank
    return mask


def _is_text(v: Any) -> bool:
    return isinstance(v, str)


def _number(v: Any) -> float | None:
    """A cell as a float, or None when it is not a number (bools, bytes, complex, text)."""
    if isinstance(v, bool | np.bool_ | bytes | complex | np.complexfloating):
        return None
    if isinstance(v, int | float | np.integer | np.floating | decimal.Decimal):
        return float(v)  # Decimal: SQL NUMERIC columns read from Parquet
    if isinstance(v, str):
        if number_text_problem(v) is not None:
            return None
        try:  # Python's own parser: exact, round-trip correct (no fast-path rounding)
            return float(v.strip())
        except ValueError:
            return None
    return None


#: int64-safe bound for integer fields (the validator's and the fast path's); anything
#: larger is out of every count's range.
INT_LIMIT = 2.0**53


def _convert_numeric(spec: FieldSpec, s: pd.Series, problems: _Problems) -> pd.Series:
    missing = _missing_mask(s)
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_complex_dtype(s.dtype):
        values = np.full(len(s), np.nan)
        bad = ~missing
    elif pd.api.types.is_numeric_dtype(s.dtype):
        values = pd.to_numeric(s, errors="coerce").astype(float).to_numpy(copy=True)
        bad = np.zeros(len(s), dtype=bool)
    else:
        cells = s.to_numpy(dtype=object)
        parsed = [None if m else _number(v) for v, m in zip(cells, missing, strict=True)]
        bad = np.array([p is None for p in parsed], dtype=bool) & ~missing
        values = np.array([np.nan if p is None else p for p in parsed], dtype=float)
    values = values.copy()
    values[missing] = np.nan
    raw_values = s.to_numpy(dtype=object)
    for i in np.flatnonzero(bad & ~missing):
        problems.add(int(i), spec.name, raw_values[i], "dtype", spec.expected(), "is not a number")
    values[bad] = np.nan
    infinite = np.isinf(values)
    for i in np.flatnonzero(infinite):
        problems.add(int(i), spec.name, raw_values[i], "finite", spec.expected(), "is not finite")
    values[infinite] = np.nan
    if spec.dtype == "int":
        huge = np.abs(np.nan_to_num(values)) > INT_LIMIT
        for i in np.flatnonzero(huge):
            problems.add(
                int(i), spec.name, raw_values[i], "in_range", spec.expected(), "is out of range"
            )
        values[huge] = np.nan
        frac = ~np.isnan(values) & (values != np.round(values))
        for i in np.flatnonzero(frac):
            problems.add(
                int(i),
                spec.name,
                raw_values[i],
                "integer",
                spec.expected(),
                "is not a whole number",
            )
        values[frac] = np.nan
        return pd.Series(values, index=s.index).astype(pd.Int64Dtype())
    return pd.Series(values, index=s.index, dtype="float64")


def _convert_bool(spec: FieldSpec, s: pd.Series, problems: _Problems) -> pd.Series:
    if isinstance(s.dtype, pd.BooleanDtype) or s.dtype == bool:
        return s.astype(pd.BooleanDtype())
    missing = _missing_mask(s)
    raw = s.to_numpy(dtype=object)
    if pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        ok = np.isin(num, (0.0, 1.0))
        parsed = np.where(ok, num == 1.0, False)
    else:

        def one(v: Any) -> Any:
            if isinstance(v, bool | np.bool_):
                return bool(v)
            if isinstance(v, int | float | np.integer | np.floating) and v in (0, 1):
                return bool(v)
            if isinstance(v, str):
                return BOOL_TEXT.get(v.strip().lower())
            return None

        if _all_text(raw):  # flags written as text: one look-up per distinct text
            looked_up = list(_per_distinct_text(raw, one, dtype=object))
        else:
            looked_up = [one(v) for v in raw]
        ok = np.array([v is not None for v in looked_up], dtype=bool)
        parsed = np.array([bool(v) for v in looked_up], dtype=bool)
    bad = ~missing & ~ok
    for i in np.flatnonzero(bad):
        problems.add(int(i), spec.name, raw[i], "dtype", spec.expected(), "is not a boolean")
    out = pd.array(parsed, dtype=pd.BooleanDtype())
    out[missing | bad] = pd.NA
    return pd.Series(out, index=s.index)


def _convert_category(spec: FieldSpec, s: pd.Series, problems: _Problems) -> pd.Series:
    cats = list(spec.categories or ())
    dtype = pd.CategoricalDtype(cats)
    if isinstance(s.dtype, pd.CategoricalDtype) and set(s.cat.categories) <= set(cats):
        return s.astype(dtype)
    missing = _missing_mask(s)
    obj = s.astype(object)
    # only exact text codes count: 1 is not "1", "T12 " is not "T12"
    cells = obj.to_numpy()
    if _all_text(cells):
        is_text = ~pd.isna(cells)
    else:
        is_text = np.array([isinstance(v, str) for v in cells], dtype=bool)
    ok = is_text & obj.isin(cats).to_numpy(dtype=bool)
    raw = obj.to_numpy()
    for i in np.flatnonzero(~missing & ~ok):
        problems.add(int(i), spec.name, raw[i], "isin", spec.expected(), "is not an allowed code")
    return pd.Series(pd.Categorical(obj.where(ok), dtype=dtype), index=s.index)


def _convert_string(spec: FieldSpec, s: pd.Series, problems: _Problems) -> pd.Series:
    missing = _missing_mask(s)
    raw = s.to_numpy(dtype=object)
    if _all_text(raw):  # text as it is; blanks and missing markers as missing
        text = raw.copy()
        text[missing] = None
        return pd.Series(pd.array(text, dtype=pd.StringDtype()), index=s.index)
    out = np.empty(len(s), dtype=object)
    out[:] = None
    for i, v in enumerate(raw):
        if missing[i]:
            continue
        if isinstance(v, str):
            out[i] = v
        elif isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            out[i] = str(int(v))  # declared: whole numbers are accepted as identifiers
        elif isinstance(v, float | np.floating) and float(v).is_integer():
            out[i] = str(int(v))
        else:
            problems.add(i, spec.name, v, "dtype", spec.expected(), "is not text")
    return pd.Series(pd.array(out, dtype=pd.StringDtype()), index=s.index)


def _one_date(v: Any) -> Any:
    """One cell as a naive Timestamp (a time-zone-aware one keeps its local wall-clock
    time), or NaT when it is not a date."""
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if ts is pd.NaT:
        return pd.NaT
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _convert_date(spec: FieldSpec, s: pd.Series, problems: _Problems) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):  # the local calendar date is the date
        return s.dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("datetime64[ns]")
    missing = _missing_mask(s)
    try:
        with warnings.catch_warnings():  # mixed time zones: handled cell by cell below
            warnings.simplefilter("ignore", FutureWarning)
            parsed = pd.to_datetime(s.where(~missing), errors="coerce", format="ISO8601")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        elif not pd.api.types.is_datetime64_dtype(parsed.dtype):
            raise TypeError("mixed time zones")
    except (ValueError, TypeError, OverflowError):  # mixed time zones, aware objects
        cells = s.to_numpy(dtype=object)
        parsed = pd.Series(
            [pd.NaT if m else _one_date(v) for v, m in zip(cells, missing, strict=True)],
            index=s.index,
            dtype="datetime64[ns]",
        )
    bad = ~missing & parsed.isna().to_numpy()
    raw = s.to_numpy(dtype=object)
    for i in np.flatnonzero(bad):
        problems.add(int(i), spec.name, raw[i], "dtype", spec.expected(), "is not a date")
    return parsed.astype("datetime64[ns]")


_CONVERTERS = {
    "float": _convert_numeric,
    "int": _convert_numeric,
    "bool": _convert_bool,
    "category": _convert_category,
    "string": _convert_string,
    "date": _convert_date,
}


def _convert(schema: Schema, df: pd.DataFrame, problems: _Problems) -> pd.DataFrame:
    out = {}
    for col in df.columns:
        if col not in schema:
            out[col] = df[col]
            continue
        spec = schema[col]
        if not spec.coerce:
            out[col] = df[col]
            continue
        values = _blank_markers(df[col], spec.missing_values) if spec.missing_values else df[col]
        out[col] = _CONVERTERS[spec.dtype](spec, values, problems)
    return pd.DataFrame(out, index=df.index)


def _blank_markers(s: pd.Series, markers: tuple[str, ...]) -> pd.Series:
    """The field's declared missing markers (``-9``, ``unknown``) as missing values."""
    text = set(markers)
    numbers = set()
    for m in markers:
        try:
            numbers.add(float(m))
        except ValueError:
            pass

    def hit(v: Any) -> bool:
        if isinstance(v, str):
            return v.strip() in text
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            return float(v) in numbers
        return False

    cells = s.to_numpy(dtype=object)
    if _all_text(cells):
        mask = _per_distinct_text(cells, hit)
    else:
        mask = np.fromiter((hit(v) for v in cells), dtype=bool, count=len(s))
    if not mask.any():
        return s
    out = s.astype(object).copy()
    out[mask] = None
    return out


# ---------------------------------------------------------------------------------------
# pass 2: pandera
# ---------------------------------------------------------------------------------------
#: pandera schemas built per Schema object (by identity: two equal schemas may still
#: differ in detail, such as category codes 1 and 1.0) and set of columns
_PANDERA: dict[int, tuple[weakref.ref[Schema], dict[tuple[Any, ...], Any]]] = {}


def _pandera_schema(schema: Schema, present: tuple[Any, ...]) -> Any:
    """The pandera schema of ``schema`` for a frame with columns ``present``.

    Built once per schema object and set of columns (a few tens of milliseconds each
    time otherwise, a third of validating one record), read-only once built, and
    forgotten with the schema.
    """
    entry = _PANDERA.get(id(schema))
    if entry is None or entry[0]() is not schema:
        key = id(schema)
        entry = (weakref.ref(schema, lambda _: _PANDERA.pop(key, None)), {})
        _PANDERA[key] = entry
    built = entry[1].get(present)
    if built is None:
        built = entry[1][present] = _build_pandera_schema(schema, present)
    return built


def _build_pandera_schema(schema: Schema, present: tuple[Any, ...]) -> Any:
    import pandera.pandas as pa

    columns = {}
    for spec in schema:
        checks = []
        if spec.is_numeric and (spec.min is not None or spec.max is not None):
            checks.append(
                pa.Check.in_range(
                    -np.inf if spec.min is None else spec.min,
                    np.inf if spec.max is None else spec.max,
                    name="range",
                )
            )
        if spec.categories is not None and spec.dtype != "category":
            checks.append(pa.Check.isin(list(spec.categories), name="isin"))
        if spec.pattern is not None:
            checks.append(pa.Check.str_matches(rf"^(?:{spec.pattern})\Z", name="pattern"))
        columns[spec.name] = pa.Column(
            spec.pandas_dtype(),
            checks=checks,
            nullable=spec.nullable,
            unique=spec.unique,
            required=spec.required,
            coerce=False,
        )
    frame_checks = [
        pa.Check(rule.evaluate, name=f"rule:{rule.name}")
        for rule in schema.rules
        if rule.applies_to(present)
    ]
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=True, name=schema.name)


_WHAT = {
    "in_range": "is out of range",
    "isin": "is not an allowed code",
    "str_matches": "is not a valid identifier",
    "not_nullable": "is missing",
    "field_uniqueness": "is a duplicate",
}


def _unknown_column(problems: _Problems, column: str, schema: Schema) -> None:
    problems.add(
        None,
        column,
        None,
        "unknown_column",
        "a field of schema " + repr(schema.name),
        "is not a field of the schema",
    )


def _missing_column(problems: _Problems, name: str) -> None:
    problems.add(
        None,
        name,
        None,
        "missing_column",
        "the column to be present",
        "is required but the column is missing",
    )


def _pandera_problems(schema: Schema, typed: pd.DataFrame, problems: _Problems) -> None:
    import pandera.pandas as pa

    try:
        with warnings.catch_warnings():
            # pandera's own failure-case concatenation trips a pandas FutureWarning
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"pandera\.")
            _pandera_schema(schema, tuple(typed.columns)).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
    else:
        return
    rules = {f"rule:{r.name}": r for r in schema.rules}
    seen_rule_rows: set[tuple[str, Hashable]] = set()
    for rec in fc.to_dict("records"):
        check = str(rec["check"])
        col = rec["column"]
        idx = rec["index"]
        row = None if is_missing(idx) else int(idx)
        if check == "column_in_schema":
            _unknown_column(problems, rec["failure_case"], schema)
        elif check == "column_in_dataframe":
            _missing_column(problems, rec["failure_case"])
        elif check in rules:
            if row is None or (check, row) in seen_rule_rows:
                continue
            seen_rule_rows.add((check, row))
            rule = rules[check]
            values = {c: typed[c].iloc[row] for c in rule.columns if c in typed.columns}
            problems.add(row, rule.columns[0], values, check, "a consistent record", rule.message)
        elif check.startswith("dtype("):
            problems.add(
                None,
                col,
                None,
                "dtype",
                f"dtype {schema[col].pandas_dtype()}",
                f"has dtype {typed[col].dtype} (FieldSpec.coerce is off)",
            )
        else:
            spec = schema[col] if col in schema else None
            expected = spec.expected() if spec is not None else ""
            kind = check.split("(", 1)[0]
            what = _WHAT.get(kind, f"fails check {check}")
            if check == "field_uniqueness":
                expected = f"a unique {col}"
            problems.add(row, col, rec["failure_case"], check, expected, what)


# ---------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------
def _display(value: Any) -> str:
    if is_missing(value):
        return "<missing>"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return repr(value)


def _mask(value: Any) -> str:
    """Show an invalid identifier without echoing it whole (it may hold a name)."""
    if is_missing(value):
        return "<missing>"
    text = str(value)
    shown = text[:3] + ("..." if len(text) > 3 else "")
    return f"{shown!r} ({len(text)} characters)"


def _failures_frame(problems: _Problems, ids: pd.Series | None) -> pd.DataFrame:
    rows = []
    id_field = ids.name if ids is not None else None
    # records whose identifier is itself invalid are not labelled with it
    bad_id_rows = {
        p["row"]
        for p in problems.rows
        if p["column"] == id_field and p["check"] != "field_uniqueness"
    }
    for p in problems.rows:
        row = p["row"]
        rid = None
        if row is not None and ids is not None and row not in bad_id_rows:
            v = ids.iloc[row]
            rid = None if is_missing(v) else str(v)
        col = p["column"]
        who = f"record {rid}" if rid is not None else "record"
        if row is None and col is None:
            msg = f"the cohort {p['what']}; expected {p['expected']}."
        elif row is None:
            msg = f"column {col!r} {p['what']}; expected {p['expected']}."
        elif str(p["check"]).startswith("rule:"):  # a cross-field rule
            shown = ", ".join(f"{c}={_display(v)}" for c, v in p["value"].items())
            msg = f"{who} (row {row}): {p['what']} ({shown})."
        else:
            value = _display(p["value"])
            if col == id_field and p["check"] != "field_uniqueness":
                value = _mask(p["value"])
            msg = f"{who} (row {row}): {col}={value} {p['what']}; expected {p['expected']}."
        rows.append(
            {
                "record_id": rid,
                "row": row,
                "column": col,
                "value": p["value"],
                "check": p["check"],
                "expected": p["expected"],
                "message": msg,
            }
        )
    frame = pd.DataFrame(rows, columns=FAILURE_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    return frame.sort_values(["row", "column"], na_position="first", kind="stable").reset_index(
        drop=True
    )


def _raise(failures: pd.DataFrame, n_records: int, source: str | None, hint: str) -> None:
    n = len(failures)
    n_bad_rows = failures["row"].dropna().nunique()
    where = f" from {source!r}" if source else ""
    head = f"{n} problem{'s' if n != 1 else ''}"
    if n_bad_rows:
        head += f" in {n_bad_rows} of {n_records} records"
    else:
        head += f" in a cohort of {n_records} records"
    lines = [head + where + "."]
    lines += ["  " + m for m in failures["message"].head(_MAX_LISTED)]
    if n > _MAX_LISTED:
        lines.append(f"  ... and {n - _MAX_LISTED} more (see the error's .failures DataFrame).")
    lines.append(hint)
    raise SchemaValidationError("\n".join(lines), failures, hint)


def row_ids(rows: np.ndarray) -> np.ndarray:
    """Identifiers of records named by their row (a schema whose id field is
    ``generated``): ``row-1`` for the first data row of the input.

    Examples
    --------
    >>> import numpy as np
    >>> row_ids(np.array([0, 41])).tolist()
    ['row-1', 'row-42']
    """
    return np.array([f"row-{int(r) + 1}" for r in rows], dtype=object)


def placeholder_id(dtype: str, k: int) -> Any:
    """The ``k``-th made-up identifier (a probe record's) of an id field of ``dtype``: a
    value of the field's own type, so the record passes the checks a real one meets.

    Examples
    --------
    >>> placeholder_id("int", 2), placeholder_id("string", 2)
    (2, 'PROBE-2')
    """
    return {"int": k, "float": float(k)}.get(dtype, f"PROBE-{k}")


@overload
def validate(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    on_invalid: Literal["raise"] = "raise",
    source: str | None = None,
) -> pd.DataFrame: ...


@overload
def validate(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    on_invalid: Literal["split"],
    source: str | None = None,
) -> ValidationResult: ...


def validate(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    on_invalid: Literal["raise", "split"] = "raise",
    source: str | None = None,
) -> pd.DataFrame | ValidationResult:
    """Check a cohort against a clinical-record schema.

    Every problem is found in one pass (pandera ``lazy=True``) and reported as record
    id, row, column, bad value and what was expected. Values are never changed: the
    only conversions are those the schema declares (see :class:`FieldSpec`).

    Parameters
    ----------
    df : DataFrame of shape (n_records, n_fields)
        The cohort, one record per row, columns named as the schema's fields (use
        :func:`spinerisk.io.apply_mapping` first for a hospital's own names and codes).
    schema : Schema or None, default=None
        The schema; None means :data:`spinerisk.schema.SPINE_SCHEMA`.
    on_invalid : {"raise", "split"}, default="raise"
        ``"raise"``: raise :class:`SchemaValidationError` listing every problem.
        ``"split"``: return the valid records and a rejects frame with the reasons.
        Problems with the frame itself (unknown or missing columns, no records) raise
        in both modes, because no record can be judged valid.
    source : str or None, default=None
        Name of the data source for messages; defaults to ``df.attrs["source"]``
        (set by :func:`spinerisk.io.read_records`).

    Returns
    -------
    DataFrame or ValidationResult
        With ``"raise"``, the validated cohort with schema dtypes (same index). With
        ``"split"``, a :class:`ValidationResult` ``(valid, rejects)``. Both keep the
        input's ``attrs`` (for example ``attrs["synthetic"]``).

    Raises
    ------
    SchemaValidationError
        With ``.failures`` (a DataFrame, one row per problem).
    TypeError
        If ``df`` is not a DataFrame.

    Examples
    --------
    >>> import spinerisk as sr
    >>> cohort = sr.make_spine_cohort(200, seed=1)
    >>> checked = sr.validate(cohort)
    >>> len(checked)
    200
    >>> bad = cohort.head(3).copy()
    >>> bad.loc[1, "age_years"] = 300.0
    >>> sr.validate(bad)
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.SchemaValidationError: 1 problem in 1 of 3 records.
      record SYN-000002 (row 1): age_years=300.0 is out of range; expected 18 <= age_years <= 105 years, not missing.
    No records were returned. Correct the source, or pass on_invalid="split" to get the valid records and the rejected ones with their reasons.
    >>> valid, rejects = sr.validate(bad, on_invalid="split")
    >>> len(valid), len(rejects), rejects["reasons"].iloc[0][:40]
    (2, 1, 'age_years=300.0 is out of range; expecte')
    """  # noqa: E501
    from spinerisk.schema.default import resolve_schema

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate expects a pandas DataFrame; got {type(df).__name__}.")
    if on_invalid not in ("raise", "split"):
        raise ValueError(f"on_invalid must be 'raise' or 'split'; got on_invalid={on_invalid!r}.")
    schema = resolve_schema(schema)
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a spinerisk Schema; got {type(schema).__name__}.")
    source = source if source is not None else df.attrs.get("source")
    n = len(df)
    frame_hint = "No records were returned: fix the columns first (see spinerisk.io.apply_mapping)."
    problems = _frame_problems(df)
    if problems.rows:
        _raise(_failures_frame(problems, None), n, source, frame_hint)

    work = df.reset_index(drop=True)
    # pandas deep-copies attrs into every frame and column derived from one (a large
    # attrs dict costs more than the checks); they are put back on the result below
    work.attrs = {}
    id_spec = schema[schema.id_field]
    if id_spec.generated and (id_spec.name not in work.columns or work[id_spec.name].isna().all()):
        work = work.drop(columns=[id_spec.name], errors="ignore")
        work.insert(0, id_spec.name, row_ids(np.arange(n)))
    typed = _convert(schema, work, problems)
    _pandera_problems(schema, typed, problems)
    _warn_empty_features(schema, typed)

    id_field = schema.id_field
    ids = work[id_field] if id_field in work.columns else None
    typed.index = df.index
    typed.attrs = dict(df.attrs)  # labels such as attrs["synthetic"] travel with the records
    if not problems.rows:
        return ValidationResult(typed, _empty_rejects(df)) if on_invalid == "split" else typed

    _drop_double_reports(problems)
    failures = _failures_frame(problems, ids)
    frame_level = failures["row"].isna()
    if on_invalid == "raise" or frame_level.any():
        hint = (
            frame_hint
            if frame_level.any()
            else 'No records were returned. Correct the source, or pass on_invalid="split" '
            "to get the valid records and the rejected ones with their reasons."
        )
        _raise(failures, n, source, hint)
    return _split(df, typed, failures)


def _frame_problems(df: pd.DataFrame) -> _Problems:
    """Problems of the frame itself: duplicate or non-text column names, no records."""
    problems = _Problems()
    dupes = df.columns[df.columns.duplicated()].unique().tolist()
    for col in dupes:
        problems.add(
            None, col, None, "duplicate_column", "each column once", "appears more than once"
        )
    non_str = [c for c in df.columns if not isinstance(c, str)]
    for col in non_str:
        problems.add(
            None, str(col), None, "column_name", "text column names", "is not a text column name"
        )
    if len(df) == 0:
        problems.add(None, None, None, "empty", "at least one record", "has no records")
    return problems


def _warn_empty_features(schema: Schema, typed: pd.DataFrame) -> None:
    """DataQualityWarning (at validate's caller) for each feature column with no value."""
    n = len(typed)
    for spec in schema.by_role("feature") if n >= _MIN_RECORDS_FOR_WARNINGS else ():
        if spec.name in typed.columns and spec.nullable and typed[spec.name].isna().all():
            warnings.warn(
                f"Column {spec.name!r} is entirely missing in {n} records; it carries no "
                "information (check the extract or the column mapping).",
                DataQualityWarning,
                stacklevel=3,
            )


def _drop_double_reports(problems: _Problems) -> None:
    """A cell reported by the conversion pass is not reported again as "missing"."""
    converted_cells = {
        (p["row"], p["column"])
        for p in problems.rows
        if p["check"] in ("dtype", "finite", "integer", "isin", "in_range")
    }
    problems.rows = [
        p
        for p in problems.rows
        if not (p["check"] == "not_nullable" and (p["row"], p["column"]) in converted_cells)
    ]


def _split(df: pd.DataFrame, typed: pd.DataFrame, failures: pd.DataFrame) -> ValidationResult:
    """The valid records and the rejected ones (input values) with their reasons."""
    bad_rows = np.sort(failures["row"].astype(int).unique())
    reasons = failures.groupby("row", sort=True)["message"].apply(
        lambda m: " | ".join(_strip_record_prefix(x).rstrip(".") for x in m)
    )
    keep = np.ones(len(df), dtype=bool)
    keep[bad_rows] = False
    rejects = df.iloc[bad_rows].copy()
    rejects.insert(0, "reasons", reasons.loc[bad_rows].to_numpy())
    rejects.insert(0, "row", bad_rows)
    return ValidationResult(typed.iloc[keep], rejects)


def check_columns(df: pd.DataFrame, schema: Schema | None = None) -> None:
    """Check only the columns of a frame (unknown ones, missing required ones), as
    :func:`validate` does; for a chunk or file without records, which validate refuses.

    Raises
    ------
    SchemaValidationError
        One frame-level problem per unknown or missing column.
    """
    from spinerisk.schema.default import resolve_schema

    schema = resolve_schema(schema)
    problems = _Problems()
    for col in df.columns:
        if str(col) not in schema:
            _unknown_column(problems, str(col), schema)
    for name in schema.required:
        if name not in df.columns:
            _missing_column(problems, name)
    if problems.rows:
        _raise(
            _failures_frame(problems, None),
            len(df),
            df.attrs.get("source"),
            "No records were returned: fix the columns first (see spinerisk.io.apply_mapping).",
        )


_PREFIX = re.compile(r"^record [^(]*\(row \d+\): |^record \(row \d+\): ")


def _strip_record_prefix(message: str) -> str:
    return _PREFIX.sub("", message)


def _empty_rejects(df: pd.DataFrame) -> pd.DataFrame:
    rejects = df.iloc[:0].copy()
    rejects.insert(0, "reasons", pd.Series([], dtype=object))
    rejects.insert(0, "row", pd.Series([], dtype="int64"))
    return rejects
