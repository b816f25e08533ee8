"""Draft a schema from a data file: a starting point for the user to edit.

:func:`infer_schema` looks at each column once and proposes a field: its type (flag,
whole number, number, code list, text, date), a range with a margin around the values
seen, the code list of a column with few distinct values, the markers that stand for
missing values, and an identifier (a column named like one whose values are unique, or
generated row identifiers when there is none). A site or centre code with few values
becomes a ``group`` (subgroup tables), another id-like column (a physician code) an
``admin`` field; every other field is a ``feature``: roles of outcomes and comparators
are for the user to set (the endpoint file names the outcome and comparator columns,
which never enter the predictors).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.schema._spec import FieldSpec, Schema

__all__ = ["infer_schema"]

#: Text that commonly stands for a missing value in extracts (besides the empty cell).
COMMON_MISSING_MARKERS = ("NA", "N/A", "na", "n/a", "NaN", "nan", ".", "?", "-", "NULL", "null")
_ID_NAME = re.compile(r"(^|_)(id|pid|patient|record|subject|sub_id|study_id)($|_)", re.I)
_GROUP_NAME = re.compile(r"(^|_)(site|centre|center|hospital|clinic|country|region)($|_)", re.I)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _nice(x: float, up: bool, span: float) -> float:
    """Round a bound outwards to a step a tenth of the order of the observed span (1978
    to 1993 gives whole years, 0.2 to 0.9 gives hundredths)."""
    if not math.isfinite(x):
        return x
    digits = 1 - int(math.floor(math.log10(span))) if span > 0 else 0
    factor = 10.0**digits
    value = (math.ceil if up else math.floor)(round(x * factor, 9)) / factor
    return float(round(value, max(digits, 0)))


def _as_text(col: pd.Series) -> pd.Series:
    values = col.astype(object)
    return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else v)


def _numbers(values: pd.Series) -> pd.Series | None:
    """The values as floats, or None if some present value is not a number."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return None
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float)
    parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return None if parsed[values.notna()].isna().any() else parsed.astype(float)


def field_name(column: str) -> str:
    if _FIELD_NAME.match(column):
        return column
    name = re.sub(r"[^A-Za-z0-9]+", "_", column).strip("_") or "field"
    return name if re.match(r"[A-Za-z_]", name) else f"f_{name}"


def infer_schema(
    frame: pd.DataFrame,
    *,
    name: str = "inferred",
    id_column: str | None = None,
    max_codes: int = 12,
    margin: float = 0.1,
    source: str = "",
) -> Schema:
    """Propose a schema for the columns of ``frame`` (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The records, as read by :func:`spinerisk.read_records` (text cells) or typed.
    name : str, default="inferred"
        Schema name.
    id_column : str or None, default=None
        The identifier column; None guesses one (a column named like an id whose values
        are unique and never missing), else adds a generated ``row_id`` field.
    max_codes : int, default=12
        Columns with at most this many distinct text values become code lists.
    margin : float, default=0.1
        Numeric ranges are widened by this share of the observed span on each side
        (never below 0 for a column without negative values).
    source : str, default=""
        Where the data came from, written in each field's description.

    Returns
    -------
    Schema
        Column names that are not identifiers (``Start.Age``) become identifiers
        (``Start_Age``); rename those columns or map them (:func:`spinerisk.apply_mapping`).

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.schema import infer_schema
    >>> df = pd.DataFrame({"Age": ["71.5", "80", "NA"], "Sex": ["F", "M", "F"],
    ...                    "event": ["1", "0", "1"]})
    >>> s = infer_schema(df)
    >>> [(f.name, f.dtype) for f in s]
    [('row_id', 'string'), ('Age', 'float'), ('Sex', 'category'), ('event', 'bool')]
    >>> s["Age"].min, s["Age"].max, s["Age"].missing_values
    (70.6, 80.9, ('NA',))
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"infer_schema needs a DataFrame; got {type(frame).__name__}.")
    if len(frame) == 0:
        raise ValueError("infer_schema needs at least one record.")
    origin = f" (inferred from {source})" if source else " (inferred)"
    fields: list[FieldSpec] = []
    id_name = id_column if id_column is not None else _guess_id(frame)
    if id_column is not None and id_column not in frame.columns:
        raise ValueError(f"id_column={id_column!r} is not a column of the data.")
    if id_name is None:
        fields.append(
            FieldSpec(
                "row_id",
                "string",
                "Record identifier generated from the row number (the data have no id).",
                role="id",
                generated=True,
                nullable=False,
                unique=True,
            )
        )
    for column in frame.columns:
        col = frame[column]
        fname = field_name(str(column))
        if column == id_name:
            fields.append(
                FieldSpec(
                    fname,
                    "string",
                    f"Record identifier{origin}.",
                    role="id",
                    nullable=False,
                    required=True,
                    unique=True,
                )
            )
            continue
        spec = _infer_field(fname, col, max_codes, margin, origin)
        role = _role_of(str(column), col, max_codes)
        if role == "admin":  # an identifier-like code: text, whatever its digits
            spec = FieldSpec(spec.name, "string", spec.description, role="admin",
                             missing_values=spec.missing_values)  # fmt: skip
        elif role != "feature":
            spec = dataclasses.replace(spec, role=role)
        fields.append(spec)
    return Schema(tuple(fields), name=name, version="1")


def _role_of(column: str, col: pd.Series, max_codes: int) -> str:
    """``group`` for a site or centre code (subgroup tables), ``admin`` for another
    identifier-like column (a physician or batch code), ``feature`` otherwise."""
    if _GROUP_NAME.search(column) and col.nunique() <= max_codes:
        return "group"
    if _ID_NAME.search(_words(column)):
        return "admin"
    return "feature"


def _words(column: str) -> str:
    """The column's name as snake_case words, camelCase split (``PatientNo`` ->
    ``Patient_No``), for the name patterns."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field_name(column))


def _guess_id(frame: pd.DataFrame) -> str | None:
    for column in frame.columns:
        col = frame[column]
        if not _ID_NAME.search(_words(str(column))):
            continue
        if col.notna().all() and col.astype(str).is_unique:
            return str(column)
    return None


def _infer_field(name: str, col: pd.Series, max_codes: int, margin: float, origin: str) -> Any:
    values = _as_text(col) if col.dtype == object else col
    present = values.dropna()
    markers: list[str] = []
    if present.dtype == object:
        text = present.astype(str).str.strip()
        found = sorted(set(text[text.isin(COMMON_MISSING_MARKERS)]))
        markers = found
        present = present[~text.isin(found)]
    description = f"{name}{origin}; edit this description."
    if len(present) == 0:
        return FieldSpec(name, "string", description, missing_values=tuple(markers))
    numbers = _numbers(present)
    if numbers is not None:
        distinct = set(numbers.unique().tolist())
        if distinct <= {0.0, 1.0} and len(distinct) == 2:
            return FieldSpec(name, "bool", description, missing_values=tuple(markers))
        # whole numbers with few distinct values are counts or scores; anything else
        # (ages, weights) may take fractional values in later data
        whole = bool(np.all(np.equal(np.mod(numbers, 1), 0))) and len(distinct) <= 20
        lo, hi = float(numbers.min()), float(numbers.max())
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        low, high = lo - margin * span, hi + margin * span
        if lo >= 0:
            low = max(low, 0.0)
        low, high = _nice(low, up=False, span=span), _nice(high, up=True, span=span)
        return FieldSpec(
            name,
            "int" if whole else "float",
            description,
            min=math.floor(low) if whole else low,
            max=math.ceil(high) if whole else high,
            missing_values=tuple(markers),
        )
    text = present.astype(str)
    if text.str.match(_DATE).all():
        return FieldSpec(name, "date", description, missing_values=tuple(markers))
    codes = sorted(set(text))
    if len(codes) <= max_codes:
        return FieldSpec(
            name, "category", description, categories=tuple(codes), missing_values=tuple(markers)
        )
    return FieldSpec(name, "string", description, missing_values=tuple(markers))
