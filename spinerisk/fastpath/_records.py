"""Per-record validation for the fast path: what :func:`spinerisk.validate` accepts, per value.

:class:`RecordChecker` decides, record by record and without pandas, whether the batch
validator would accept the records, and returns their typed values. It only ever
*accepts* what the batch validator accepts; anything else (a problem, or a value whose
treatment it is not certain of) makes it return ``None`` and the caller runs the batch
path, which raises the usual :class:`~spinerisk.SchemaValidationError` (same
``.failures``, same messages) or, if the batch validator accepts after all, predicts.

Cross-field :class:`~spinerisk.schema.RowRule` checks declared as expressions run
compiled per record from the same declaration the batch validator evaluates on frames
(:meth:`RowRule.compile_record`), and on batches of ``_BY_COLUMN_FROM`` records or more
column by column (``Expression.evaluate_columns``: the per-record values, bit for bit);
a rule written as Python code runs on a small DataFrame of the records (about 0.1-0.3 ms
per rule and call).
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.schema._expr import typed_columns
from spinerisk.schema._spec import FieldSpec, RowRule, Schema
from spinerisk.schema._validate import BOOL_TEXT, INT_LIMIT

__all__ = ["RecordChecker"]

_NAN = float("nan")
_I64 = 2**63
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
# years a datetime64[ns] column can hold
_MIN_YEAR, _MAX_YEAR = 1678, 2261
#: Sets of present fields whose check plans are kept (records usually share one or two).
_MAX_PREPARED = 256


class UnsupportedModelError(TypeError):
    """The fitted model has a part the fast path cannot compile; use the batch path."""


_NUMBER, _CODE, _FLAG, _OTHER = 0, 1, 2, 3


class _Defer(Exception):
    """Raised internally when the batch validator must decide."""


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating):
        return math.isnan(v)
    if isinstance(v, str):
        return v.strip() == ""
    return False


# -- per-dtype conversions: value -> typed value, or _Defer --------------------------------
def _to_number(spec: FieldSpec, v: Any) -> float:
    if _missing(v):
        return _NAN
    if isinstance(v, bool | np.bool_ | bytes | complex | np.complexfloating):
        raise _Defer
    if isinstance(v, int | float | np.integer | np.floating):
        if isinstance(v, int) and abs(v) > 2**63:  # object column in pandas; keep it simple
            raise _Defer
        x = float(v)
    elif isinstance(v, str):
        from spinerisk.io import number_text_problem

        if number_text_problem(v) is not None:  # the batch validator names the problem
            raise _Defer
        try:
            x = float(v.strip())
        except (ValueError, OverflowError):
            raise _Defer from None
    else:
        raise _Defer
    if math.isnan(x):  # "nan" text counts as missing
        return _NAN
    if math.isinf(x):
        raise _Defer
    if spec.dtype == "int" and (abs(x) > INT_LIMIT or x != round(x)):
        raise _Defer
    if (spec.min is not None and x < spec.min) or (spec.max is not None and x > spec.max):
        raise _Defer
    if spec.categories is not None and x not in spec.categories:
        raise _Defer
    return x


def _to_bool(spec: FieldSpec, v: Any) -> bool | None:
    if _missing(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating):
        if v == 0 or v == 1:
            return bool(v)
        raise _Defer
    if isinstance(v, str):
        b = BOOL_TEXT.get(v.strip().lower())
        if b is None:
            raise _Defer
        return b
    raise _Defer


def _to_category(spec: FieldSpec, v: Any) -> str | None:
    if _missing(v):
        return None
    if isinstance(v, str) and v in spec.categories:  # type: ignore[operator]
        return str(v)
    raise _Defer


def _to_string(spec: FieldSpec, v: Any) -> str | None:
    if _missing(v):
        return None
    if isinstance(v, str):
        s = str(v)
    elif isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        if abs(int(v)) > INT_LIMIT:  # pandas may round it through float64
            raise _Defer
        s = str(int(v))
    elif isinstance(v, float | np.floating) and float(v).is_integer():
        if abs(float(v)) > INT_LIMIT:
            raise _Defer
        s = str(int(v))
    else:
        raise _Defer
    return s


def _to_date(spec: FieldSpec, v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, str) and _DATE_RE.match(v):
        try:
            day = _dt.date.fromisoformat(v)
        except ValueError:
            raise _Defer from None
        if _MIN_YEAR <= day.year <= _MAX_YEAR:
            return v
        raise _Defer
    if isinstance(v, pd.Timestamp) and v.tzinfo is None:
        return v
    raise _Defer  # anything else: let pandas decide


_CONVERT: dict[str, Callable[[FieldSpec, Any], Any]] = {
    "float": _to_number,
    "int": _to_number,
    "bool": _to_bool,
    "category": _to_category,
    "string": _to_string,
    "date": _to_date,
}


def _missing_value(spec: FieldSpec) -> Any:
    return _NAN if spec.is_numeric else None


#: Batches of at least this many records are checked, and their clinical rows built
#: (``_features``), column by column (one record: record by record, which has less
#: set-up per call).
_BY_COLUMN_FROM = 16
_NONE = type(None)
_NUMBER_TYPES = frozenset((float, int, _NONE))
_CODE_TYPES = frozenset((str, _NONE))
_FLAG_TYPES = frozenset((bool, _NONE))
_TEXT_TYPES = frozenset((str,))
_NONE_TYPES = frozenset((_NONE,))
Plan = list[tuple[Any, ...]]


def _typed_by_record(plan: Plan, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Typed values record by record (raises _Defer): the common cases inline, the
    rest through the field's conversion."""
    typed: list[dict[str, Any]] = []
    for rec in records:
        out: dict[str, Any] = {}
        for name, fn, spec, kind, lo, hi, codes, is_int in plan:
            v = rec.get(name)
            tv = type(v)
            if kind == _NUMBER and (tv is float or (tv is int and -_I64 < v < _I64)):  # type: ignore[operator]  # tv is int: v is an int
                x = float(v)  # type: ignore[arg-type]  # v is a float or an int here
                whole = not is_int or (x.is_integer() and abs(x) <= INT_LIMIT)
                if lo <= x <= hi and whole:
                    out[name] = x
                    continue
            elif kind == _CODE and tv is str and v in codes:
                out[name] = v
                continue
            elif kind == _FLAG and tv is bool:
                out[name] = v
                continue
            out[name] = fn(spec, v)
        typed.append(out)
    return typed


def _numbers(entry: tuple[Any, ...], col: Sequence[Any], kinds: set[type]) -> Sequence[Any] | None:
    """A number column as :func:`_typed_by_record` types it when every value is a
    float, an int or None inside the bounds (None otherwise: decide value by value)."""
    _, _, spec, _, lo, hi, _, is_int = entry
    if _NONE in kinds:
        missing = _missing_value(spec)
        xs: Sequence[Any] = [missing if v is None else float(v) for v in col]
        numbers = [v for v in col if v is not None]
    else:
        xs = col if len(kinds) == 1 and float in kinds else list(map(float, col))
        numbers = col  # type: ignore[assignment]
    if int in kinds and not (-_I64 < min(numbers) and max(numbers) < _I64):
        return None
    total = sum(xs)
    known = [x for x in xs if x == x] if total != total else xs  # NaN: missing
    if known:
        low, high = min(known), max(known)
        if not lo <= low or not high <= hi:
            return None
        if is_int and not (
            -INT_LIMIT <= low and high <= INT_LIMIT and all(map(float.is_integer, known))
        ):
            return None
    return xs


def _typed_column(
    entry: tuple[Any, ...], col: Sequence[Any], records: Sequence[Mapping[str, Any]]
) -> Sequence[Any]:
    """Typed values of one field over the records, as :func:`_typed_by_record` gives
    them (raises _Defer); whole columns of the common cases at once."""
    kind, codes = entry[3], entry[6]
    kinds = set(map(type, col))
    if kinds == _NONE_TYPES:  # every value missing: what each conversion gives for None
        return [_missing_value(entry[2])] * len(col)
    if kind == _NUMBER and kinds <= _NUMBER_TYPES:
        xs = _numbers(entry, col, kinds)
        if xs is not None:
            return xs
    elif kind == _CODE and kinds <= _CODE_TYPES:
        if codes.issuperset([v for v in col if v is not None] if _NONE in kinds else col):
            return col
    elif kind == _FLAG and kinds <= _FLAG_TYPES:
        return col
    elif entry[2].dtype == "string" and kinds == _TEXT_TYPES and all(map(str.strip, col)):
        return col  # text, none blank: kept as it is
    name = entry[0]
    return [t[name] for t in _typed_by_record([entry], records)]


def _typed_by_column(plan: Plan, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`_typed_by_record`, column by column (raises _Defer), for records that are
    dicts with the same fields (others record by record)."""
    names = [entry[0] for entry in plan]
    n = len(names)
    if n < 2 or not all(type(r) is dict and len(r) == n for r in records):
        return _typed_by_record(plan, records)
    # each record has every field of the plan (the union of the records' keys)
    columns = zip(*map(operator.itemgetter(*names), records), strict=True)
    changed, values = [], []
    for entry, col in zip(plan, columns, strict=True):
        typed = _typed_column(entry, col, records)
        if typed is not col:
            changed.append(entry[0])
            values.append(typed)
    if not changed:
        return [dict(r) for r in records]
    out = []
    for r, row in zip(records, zip(*values, strict=True), strict=True):
        t = dict(r)
        t.update(zip(changed, row, strict=True))
        out.append(t)
    return out


def _column_rules(rules: list[RowRule]) -> tuple[list[Any], list[str], dict[str, str]] | None:
    """What :func:`_rules_hold` needs for declared rules (None for no rule): their
    expressions, the fields they read and the kinds of those fields."""
    if not rules:
        return None
    expressions = [rule.expression for rule in rules]
    kinds: dict[str, str] = {}
    for e in expressions:
        kinds.update(e.kinds)
    names = list(dict.fromkeys(c for e in expressions for c in e.field_order))
    return expressions, names, kinds


def _rules_hold(
    rules: tuple[list[Any], list[str], dict[str, str]], typed: list[dict[str, Any]]
) -> bool:
    """Whether declared rules (:func:`_column_rules`) hold for every typed record, column
    by column over the batch (``Expression.evaluate_columns``: the values of the rules'
    per-record twins, bit for bit); a rule fails where its value is false, missing passes."""
    expressions, names, kinds = rules
    columns = typed_columns(typed, names, kinds)
    n = len(typed)
    return not any(bool((e.evaluate_columns(columns, n) == 0.0).any()) for e in expressions)


class RecordChecker:
    """Fast acceptance test of records against a schema (see the module docstring).

    Parameters
    ----------
    schema : Schema
        The schema the batch path validates with.

    Raises
    ------
    UnsupportedModelError
        If a field does not declare its conversions (``coerce=False``): the batch
        validator then checks column dtypes, which single records do not have.
    """

    def __init__(self, schema: Schema) -> None:
        bad = [f.name for f in schema if not f.coerce]
        if bad:
            raise UnsupportedModelError(
                f"fields {bad} of schema {schema.name!r} have coerce=False; the fast path "
                "cannot mirror column dtype checks. Use RiskModel.predict_risk."
            )
        self.schema = schema
        self._convert = {f.name: (_CONVERT[f.dtype], f) for f in schema}
        # the common cases, checked inline: (kind, min, max, codes, is_int)
        self._quick: dict[str, tuple[int, float, float, frozenset[Any], bool]] = {}
        for f in schema:
            lo = -math.inf if f.min is None else float(f.min)
            hi = math.inf if f.max is None else float(f.max)
            if f.is_numeric and f.categories is None:
                self._quick[f.name] = (_NUMBER, lo, hi, frozenset(), f.dtype == "int")
            elif f.dtype == "category":
                self._quick[f.name] = (_CODE, lo, hi, frozenset(f.categories or ()), False)
            elif f.dtype == "bool":
                self._quick[f.name] = (_FLAG, lo, hi, frozenset(), False)
            else:
                self._quick[f.name] = (_OTHER, lo, hi, frozenset(), False)
        self._patterns = {
            f.name: re.compile(rf"^(?:{f.pattern})\Z") for f in schema if f.pattern is not None
        }
        self._string_codes = {
            f.name: frozenset(f.categories)
            for f in schema
            if f.dtype == "string" and f.categories is not None
        }
        self._required = frozenset(schema.required)
        self._unique = [f.name for f in schema if f.unique]
        self._nonnull = frozenset(f.name for f in schema if not f.nullable)
        self._rules: dict[frozenset[str], list[tuple[RowRule, Any]]] = {}
        #: per set of present fields: everything check() derives from it alone
        self._prepared: dict[frozenset[str], tuple[Any, ...]] = {}

    def _rules_for(self, present: frozenset[str]) -> list[tuple[RowRule, Any]]:
        rules = self._rules.get(present)
        if rules is None:
            rules = [
                (rule, rule.compile_record())
                for rule in self.schema.rules
                if rule.applies_to(present)
            ]
            self._rules[present] = rules
        return rules

    def check(
        self, records: Sequence[Mapping[str, Any]], present: frozenset[str] | None = None
    ) -> list[dict[str, Any]] | None:
        """Typed values of each record, or None if the batch validator must decide.

        Parameters
        ----------
        records : sequence of dict
            Field name to value, one dict per record (at least one).
        present : frozenset of str or None, default=None
            The union of the records' keys, if already known.

        Returns
        -------
        list of dict or None
            Per record, every field of the record set (the union of their keys) with
            its typed value: float (NaN when missing) for numbers, bool, str or None.
        """
        if present is None:
            present = frozenset().union(*records)
        prepared = self._prepared.get(present)
        if prepared is None:
            prepared = self._prepare(present)
            if prepared is None:
                return None
        plan, nonnull, patterns, string_codes, unique, twins, slow, columnar = prepared
        try:
            if len(records) < _BY_COLUMN_FROM:
                typed = _typed_by_record(plan, records)
            else:
                typed = _typed_by_column(plan, records)
        except _Defer:
            return None
        for name in nonnull:
            for t in typed:
                v = t[name]
                if v is None or (isinstance(v, float) and v != v):
                    return None
        for name, pattern in patterns:
            for t in typed:
                if t[name] is not None and not pattern.match(t[name]):
                    return None
        for name, codes in string_codes:
            for t in typed:
                if t[name] is not None and t[name] not in codes:
                    return None
        for name in unique if len(typed) > 1 else ():
            seen = [t[name] for t in typed if t[name] is not None]
            if len(set(seen)) != len(seen):
                return None
        if len(typed) >= _BY_COLUMN_FROM:  # declared rules over the batch's columns
            if columnar is not None and not _rules_hold(columnar, typed):
                return None
        else:
            for twin in twins:
                for t in typed:
                    if not twin(t):
                        return None
        if slow and not self._rules_on_frame(slow, typed):
            return None
        return typed

    def _prepare(self, present: frozenset[str]) -> tuple[Any, ...] | None:
        """What :meth:`check` needs for records with these fields (cached), or None if
        the batch validator must decide (a required field absent, an unknown field)."""
        if not self._required <= present:
            return None
        convert, quick = self._convert, self._quick
        try:
            plan = [(name, *convert[name], *quick[name]) for name in present]
        except (KeyError, TypeError):  # unknown field, or a non-text key
            return None
        rules = self._rules_for(present)
        prepared = (
            plan,
            [name for name in self._nonnull if name in present],
            [(name, p) for name, p in self._patterns.items() if name in present],
            [(name, c) for name, c in self._string_codes.items() if name in present],
            [name for name in self._unique if name in present],
            [twin for _, twin in rules if twin is not None],
            [rule for rule, twin in rules if twin is None],
            _column_rules([rule for rule, twin in rules if twin is not None]),
        )
        if len(self._prepared) < _MAX_PREPARED:
            self._prepared[present] = prepared
        return prepared

    def _rules_on_frame(self, rules: list[RowRule], typed: list[dict[str, Any]]) -> bool:
        """Run rules without a twin on a small frame with the schema's dtypes."""
        cols = {c for rule in rules for c in rule.columns}
        data = {}
        for c in cols:
            spec = self.schema[c]
            values = [t[c] for t in typed]
            if spec.dtype == "date":
                data[c] = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
            else:
                data[c] = pd.Series(values, dtype=spec.pandas_dtype())
        frame = pd.DataFrame(data)
        return all(bool(np.all(rule.evaluate(frame).to_numpy())) for rule in rules)


def fill_missing(schema: Schema, typed: dict[str, Any], name: str) -> Any:
    """Typed value of ``name`` in a record, missing when the record lacks the field."""
    if name in typed:
        return typed[name]
    return _missing_value(schema[name])
