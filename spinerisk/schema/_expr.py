"""A small declarative expression language for row rules and derived features.

Schemas declare their cross-field rules and derived features as text, so that a schema
can live in a TOML file, travel inside a bundle and never run code. One declaration is
parsed once into a tree and evaluated three ways: vectorised on a DataFrame of validated
records (:meth:`Expression.evaluate`), per record on a dict of typed values
(:meth:`Expression.compile_record`, the fast path's reference) and on a batch of such
records column by column (:meth:`Expression.evaluate_columns`, the per-record values bit
for bit). All follow the same semantics, which tests check on generated records for every
rule and derived feature of the built-in schema.

Grammar (lowest precedence first)::

    expr    := "if" or "then" or ["else" or] | or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                    | "is" ["not"] "missing" | ["not"] "in" list]
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | power
    power   := atom [("^" | "**") unary]
    atom    := number | "text" | true | false | field | table[expr]
               | function(expr, ...) | (expr) | list
    list    := "[" expr ("," expr)* "]"

Functions: ``abs(x)``, ``min(a, b, ...)``, ``max(a, b, ...)``, ``log(x)``,
``coalesce(a, b, ...)`` (first value that is not missing) and ``band(x, [edges],
[labels])`` (the label of the interval ``edges[i-1] <= x < edges[i]``).

Values are numbers, logicals (true / false / missing, with Kleene's three-valued
``and``, ``or`` and ``not``) or text. A missing input makes comparisons and arithmetic
missing; ``x is missing`` is always true or false. ``if A then B`` without ``else`` is
the implication ``not A or B``; with ``else`` it chooses a value. Dates compare as days.

A row rule holds unless its expression is *false*: a record whose inputs are missing
passes (missingness is checked per field).

Examples
--------
>>> import pandas as pd
>>> from spinerisk.schema._expr import parse
>>> e = parse("abs(bmi - weight_kg / (height_cm / 100) ^ 2) <= 1")
>>> sorted(e.fields)
['bmi', 'height_cm', 'weight_kg']
>>> df = pd.DataFrame({"bmi": [24.0, 30.0, None], "weight_kg": [70.0, 70.0, 70.0],
...                    "height_cm": [170.0, 170.0, 170.0]})
>>> e.evaluate(df).tolist()
[1.0, 0.0, nan]
>>> e.compile_record()({"bmi": 30.0, "weight_kg": 70.0, "height_cm": 170.0})
0.0
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Expression", "ExpressionError", "parse", "record_values", "typed_columns"]

_NAN = float("nan")
NUM, LOGIC, TEXT = "number", "logical", "text"
_MAX_LENGTH = 2000
_MAX_DEPTH = 60


class ExpressionError(ValueError):
    """An expression that cannot be parsed or does not fit its fields."""


# -- tokens ---------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<text>"[^"\\]*"|'[^'\\]*')
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\*\*|==|!=|<=|>=|[-+*/^<>()\[\],])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"and", "or", "not", "if", "then", "else", "is", "in", "missing", "true", "false"}
)
_FUNCTIONS = {"abs": (1, 1), "min": (2, 99), "max": (2, 99), "log": (1, 1)}
_FUNCTIONS |= {"coalesce": (2, 99), "band": (3, 3)}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, text, name, op, end
    value: str
    pos: int


def _tokenize(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(source, pos)
        if m is None or m.end() == pos:
            start = pos + len(source[pos:]) - len(source[pos:].lstrip())
            raise ExpressionError(
                f"unexpected character {source[start]!r} at position {start + 1} of `{source}`"
            )
        kind = m.lastgroup or "op"
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(source)))
    return out


# -- syntax tree ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    op: str  # num, text, bool, field, table, call, list, unary, binary, cmp, and, or,
    # not, missing, in, implies, ifelse
    args: tuple[Any, ...]
    pos: int


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokenize(source)
        self.i = 0
        self.depth = 0

    def error(self, message: str, tok: _Tok | None = None) -> ExpressionError:
        tok = tok or self.toks[self.i]
        where = "at the end" if tok.kind == "end" else f"at position {tok.pos + 1}"
        return ExpressionError(f"{message} {where} of `{self.source}`")

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        t = self.tok
        return t.kind in ("op", "name") and t.value in values

    def expect(self, value: str) -> _Tok:
        if not self.at(value):
            got = "the end" if self.tok.kind == "end" else repr(self.tok.value)
            raise self.error(f"expected {value!r}, got {got}")
        return self.take()

    def parse(self) -> _Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.value!r}")
        return node

    def expr(self) -> _Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("expression nested too deeply")
        try:
            if self.at("if"):
                pos = self.take().pos
                cond = self.or_()
                self.expect("then")
                then = self.or_()
                if self.at("else"):
                    self.take()
                    return _Node("ifelse", (cond, then, self.or_()), pos)
                return _Node("implies", (cond, then), pos)
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> _Node:
        node = self.and_()
        while self.at("or"):
            pos = self.take().pos
            node = _Node("or", (node, self.and_()), pos)
        return node

    def and_(self) -> _Node:
        node = self.not_()
        while self.at("and"):
            pos = self.take().pos
            node = _Node("and", (node, self.not_()), pos)
        return node

    def not_(self) -> _Node:
        if self.at("not"):
            pos = self.take().pos
            return _Node("not", (self.not_(),), pos)
        return self.compare()

    def compare(self) -> _Node:
        left = self.sum()
        tok = self.tok
        if self.at("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return _Node("cmp", (tok.value, left, self.sum()), tok.pos)
        if self.at("is"):
            self.take()
            negate = False
            if self.at("not"):
                self.take()
                negate = True
            self.expect("missing")
            node = _Node("missing", (left,), tok.pos)
            return _Node("not", (node,), tok.pos) if negate else node
        if self.at("in") or (self.at("not") and self._next_is("in")):
            negate = self.take().value == "not"
            if negate:
                self.take()
            node = _Node("in", (left, self.list_()), tok.pos)
            return _Node("not", (node,), tok.pos) if negate else node
        return left

    def _next_is(self, value: str) -> bool:
        nxt = self.toks[self.i + 1]
        return nxt.kind == "name" and nxt.value == value

    def sum(self) -> _Node:
        node = self.product()
        while self.at("+", "-"):
            tok = self.take()
            node = _Node("binary", (tok.value, node, self.product()), tok.pos)
        return node

    def product(self) -> _Node:
        node = self.unary()
        while self.at("*", "/"):
            tok = self.take()
            node = _Node("binary", (tok.value, node, self.unary()), tok.pos)
        return node

    def unary(self) -> _Node:
        if self.at("-"):
            tok = self.take()
            return _Node("unary", ("-", self.unary()), tok.pos)
        return self.power()

    def power(self) -> _Node:
        node = self.atom()
        if self.at("^", "**"):
            tok = self.take()
            node = _Node("binary", ("^", node, self.unary()), tok.pos)
        return node

    def list_(self) -> _Node:
        pos = self.expect("[").pos
        items = [self.expr()]
        while self.at(","):
            self.take()
            items.append(self.expr())
        self.expect("]")
        return _Node("list", tuple(items), pos)

    def atom(self) -> _Node:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return _Node("num", (float(tok.value),), tok.pos)
        if tok.kind == "text":
            self.take()
            return _Node("text", (tok.value[1:-1],), tok.pos)
        if self.at("("):
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        if self.at("["):
            return self.list_()
        if tok.kind == "name":
            if tok.value in ("true", "false"):
                self.take()
                return _Node("bool", (tok.value == "true",), tok.pos)
            if tok.value in _KEYWORDS:
                raise self.error(f"unexpected keyword {tok.value!r}")
            self.take()
            if self.at("("):
                self.take()
                args = [self.expr()]
                while self.at(","):
                    self.take()
                    args.append(self.expr())
                self.expect(")")
                return _Node("call", (tok.value, tuple(args)), tok.pos)
            if self.at("["):
                self.take()
                key = self.expr()
                self.expect("]")
                return _Node("table", (tok.value, key), tok.pos)
            return _Node("field", (tok.value,), tok.pos)
        got = "the end" if tok.kind == "end" else repr(tok.value)
        raise self.error(f"expected a value, got {got}")


# -- the compiled expression ------------------------------------------------------------------
def _kind_of_dtype(dtype: str, categories: Sequence[Any] | None) -> str:
    if dtype == "bool":
        return LOGIC
    if dtype in ("float", "int", "date"):
        return NUM
    return TEXT


class Expression:
    """A parsed expression, checked against the fields and tables it reads.

    Use :func:`parse` to build one.

    Attributes
    ----------
    source : str
        The text it was parsed from.
    fields : frozenset of str
        Names of the fields (or derived features) it reads.
    field_order : tuple of str
        The same names in order of first use.
    tables : frozenset of str
        Names of the lookup tables it reads.
    kind : {"number", "logical", "text"} or None
        Kind of the result, once :meth:`check` has run.
    """

    def __init__(self, source: str, tree: _Node) -> None:
        self.source = source
        self._tree = tree
        fields: list[str] = []
        tables: set[str] = set()
        _collect(tree, fields, tables)
        self.field_order = tuple(dict.fromkeys(fields))
        self.fields = frozenset(fields)
        self.tables = frozenset(tables)
        self.kind: str | None = None
        self._kinds: dict[str, str] = {}
        self._lookup: dict[str, Mapping[Any, Any]] = {}

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    # -- static check ------------------------------------------------------------------------
    def check(
        self, kinds: Mapping[str, str], tables: Mapping[str, Mapping[Any, Any]] | None = None
    ) -> str:
        """Check names and value kinds; return the kind of the result.

        Parameters
        ----------
        kinds : mapping
            Field name to its kind (``"number"``, ``"logical"`` or ``"text"``).
        tables : mapping or None
            Lookup table name to its ``{key: value}`` mapping.

        Raises
        ------
        ExpressionError
            Naming the unknown field, table or function, or the operation whose
            operands do not fit, with its position.
        """
        self._kinds = dict(kinds)
        self._lookup = dict(tables or {})
        self.kind = self._kind(self._tree)
        return self.kind

    def _fail(self, node: _Node, message: str) -> ExpressionError:
        return ExpressionError(f"{message} at position {node.pos + 1} of `{self.source}`")

    def _kind(self, n: _Node) -> str:  # noqa: C901 - one branch per node type
        op, a = n.op, n.args
        if op == "num":
            return NUM
        if op == "text":
            return TEXT
        if op == "bool":
            return LOGIC
        if op == "field":
            if a[0] not in self._kinds:
                raise self._fail(n, f"unknown field {a[0]!r}")
            return self._kinds[a[0]]
        if op == "table":
            if a[0] not in self._lookup:
                raise self._fail(n, f"unknown table {a[0]!r}")
            if self._kind(a[1]) != TEXT:
                raise self._fail(
                    n, f"table {a[0]!r} is keyed by text codes; got a {self._kind(a[1])} key"
                )
            values = list(self._lookup[a[0]].values())
            return NUM if values and all(_is_number(v) for v in values) else TEXT
        if op == "list":
            raise self._fail(n, "a list may only follow `in` or be an argument of band()")
        if op == "unary":
            self._need(a[1], NUM, "`-`")
            return NUM
        if op == "binary":
            self._need(a[1], NUM, f"`{a[0]}`")
            self._need(a[2], NUM, f"`{a[0]}`")
            return NUM
        if op == "cmp":
            left, right = self._kind(a[1]), self._kind(a[2])
            if a[0] in ("==", "!="):
                if left != right:
                    raise self._fail(n, f"`{a[0]}` compares a {left} with a {right}")
            elif left != NUM or right != NUM:
                raise self._fail(n, f"`{a[0]}` needs numbers; got a {left} and a {right}")
            return LOGIC
        if op in ("and", "or", "implies"):
            for x in a:
                self._need(x, LOGIC, f"`{'if/then' if op == 'implies' else op}`")
            return LOGIC
        if op == "not":
            self._need(a[0], LOGIC, "`not`")
            return LOGIC
        if op == "missing":
            self._kind(a[0])
            return LOGIC
        if op == "in":
            left = self._kind(a[0])
            for item in a[1].args:
                if item.op not in ("num", "text", "bool"):
                    raise self._fail(item, "a list after `in` holds constants only")
                if self._kind(item) != left:
                    raise self._fail(item, f"`in` compares a {left} with a {self._kind(item)}")
            return LOGIC
        if op == "ifelse":
            self._need(a[0], LOGIC, "`if`")
            then, other = self._kind(a[1]), self._kind(a[2])
            if then != other:
                raise self._fail(n, f"`then` gives a {then} but `else` a {other}")
            return then
        return self._call_kind(n)

    def _call_kind(self, n: _Node) -> str:
        name, args = n.args
        if name not in _FUNCTIONS:
            raise self._fail(n, f"unknown function {name!r} (known: {', '.join(_FUNCTIONS)})")
        lo, hi = _FUNCTIONS[name]
        if not lo <= len(args) <= hi:
            raise self._fail(n, f"{name}() takes {lo if lo == hi else f'{lo} or more'} arguments")
        if name == "band":
            self._need(args[0], NUM, "band()")
            edges, labels = args[1], args[2]
            if edges.op != "list" or any(e.op != "num" for e in edges.args):
                raise self._fail(n, "band()'s second argument is a list of numbers")
            bounds = [e.args[0] for e in edges.args]
            if any(b >= c for b, c in zip(bounds, bounds[1:], strict=False)):
                raise self._fail(n, "band()'s edges must increase")
            if labels.op != "list" or len(labels.args) != len(bounds) + 1:
                raise self._fail(n, "band() needs one label more than it has edges")
            kinds = {self._kind(x) for x in labels.args if x.op in ("num", "text")}
            if len(kinds) != 1 or any(x.op not in ("num", "text") for x in labels.args):
                raise self._fail(n, "band()'s labels are all numbers or all text")
            return kinds.pop()
        if name == "coalesce":
            kinds = {self._kind(x) for x in args}
            if len(kinds) != 1:
                raise self._fail(n, "coalesce() needs arguments of one kind")
            return kinds.pop()
        for x in args:
            self._need(x, NUM, f"{name}()")
        return NUM

    def _need(self, n: _Node, kind: str, where: str) -> None:
        got = self._kind(n)
        if got != kind:
            raise self._fail(n, f"{where} needs a {kind}; got a {got}")

    # -- vectorised evaluation --------------------------------------------------------------
    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        """Evaluate on every row of ``frame``.

        Absent columns count as missing. Numbers and logicals come back as float arrays
        (logicals as 1.0 / 0.0, NaN when missing), text as an object array (None when
        missing).
        """
        if self.kind is None:
            self.check({c: _column_kind(frame[c]) for c in frame.columns if isinstance(c, str)})
        cache: dict[str, np.ndarray] = {}
        n = len(frame)

        def column(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = _column_values(frame, name, self._kinds.get(name, NUM), n)
            return cache[name]

        return _Vector(column, self._lookup, n).run(self._tree)

    # -- per-record evaluation --------------------------------------------------------------
    def compile_record(self) -> Callable[[Mapping[str, Any]], Any]:
        """A function of one record's typed values giving the same value as :meth:`evaluate`.

        Record values: float (NaN when missing) for numbers, ``True``/``False``/``None``
        for flags, ``str``/``None`` for text; an absent key is missing.
        """
        if self.kind is None:
            raise ExpressionError(f"check `{self.source}` against its fields before compiling")
        return _compile(self._tree, self._kinds, self._lookup)

    # -- columnar evaluation of typed records -------------------------------------------------
    def evaluate_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The values :meth:`compile_record` gives, for a batch of records at once.

        The records come column by column, as :func:`typed_columns` builds them from
        typed record values; an absent name is missing. Every operation is the per-record
        one applied element-wise (numpy for arithmetic, comparisons, logic, bands and
        lookups; the per-record scalar code for ``log``, powers other than squares and
        ``min`` / ``max``), so the values are those of :meth:`compile_record`, bit for bit
        (tested on generated batches), in a few numpy calls instead of a Python call per
        record and node.

        Parameters
        ----------
        columns : mapping
            Name to array: float64 for numbers (NaN when missing), float64 1.0 / 0.0 /
            NaN for logicals, object (str, None when missing) for text.
        n : int
            Number of records.

        Returns
        -------
        numpy.ndarray
            float64 for numbers and logicals (NaN when missing), object for text.

        Examples
        --------
        >>> from spinerisk.schema._expr import parse, typed_columns
        >>> e = parse("coalesce(bmi, weight_kg / (height_cm / 100) ^ 2)")
        >>> e.check({"bmi": "number", "weight_kg": "number", "height_cm": "number"})
        'number'
        >>> records = [{"bmi": 24.0}, {"bmi": float("nan"), "weight_kg": 80.0, "height_cm": 200.0}]
        >>> e.evaluate_columns(typed_columns(records, e.fields, e.kinds), 2).tolist()
        [24.0, 20.0]
        """
        if self.kind is None:
            raise ExpressionError(f"check `{self.source}` against its fields before evaluating")
        kinds = self._kinds

        def column(name: str) -> np.ndarray:
            col = columns.get(name)
            if col is not None:
                return col
            if kinds.get(name, NUM) == TEXT:
                return np.full(n, None, dtype=object)
            return np.full(n, _NAN)

        return _Columns(column, self._lookup, n).run(self._tree)

    @property
    def kinds(self) -> Mapping[str, str]:
        """Kind of each field, as checked (``"number"``, ``"logical"`` or ``"text"``)."""
        return self._kinds


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _collect(n: _Node, fields: list[str], tables: set[str]) -> None:
    if n.op == "field":
        fields.append(n.args[0])
        return
    if n.op == "table":
        tables.add(n.args[0])
    for a in n.args:
        if isinstance(a, _Node):
            _collect(a, fields, tables)
        elif isinstance(a, tuple):
            for x in a:
                if isinstance(x, _Node):
                    _collect(x, fields, tables)


def parse(source: str) -> Expression:
    """Parse an expression (see the module docstring for the grammar).

    Raises
    ------
    ExpressionError
        With the position of the first problem.

    Examples
    --------
    >>> from spinerisk.schema._expr import parse
    >>> parse("if fx_event == 2 then death_time_days is not missing").fields == {
    ...     "fx_event", "death_time_days"}
    True
    >>> parse("age_years >> 3")
    Traceback (most recent call last):
    ...
    spinerisk.schema._expr.ExpressionError: expected a value, got '>' at position 12 of `age_years >> 3`
    """  # noqa: E501
    if not isinstance(source, str):
        raise ExpressionError(f"an expression is text; got {type(source).__name__}")
    if len(source) > _MAX_LENGTH:
        raise ExpressionError(f"an expression has at most {_MAX_LENGTH} characters")
    if not source.strip():
        raise ExpressionError("an expression may not be empty")
    return Expression(source, _tree(source))


@functools.lru_cache(maxsize=4096)
def _tree(source: str) -> _Node:
    """The syntax tree of ``source`` (immutable, so one per text: schemas and endpoints are
    rebuilt often, with the same rule and feature texts)."""
    return _Parser(source).parse()


# -- column access --------------------------------------------------------------------------
def _column_kind(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col.dtype):
        return LOGIC
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_datetime64_any_dtype(col.dtype):
        return NUM
    return TEXT


def _column_values(frame: pd.DataFrame, name: str, kind: str, n: int) -> np.ndarray:
    if name not in frame.columns:
        return np.full(n, _NAN) if kind != TEXT else np.full(n, None, dtype=object)
    col = frame[name]
    if kind == TEXT:
        values = col.astype(object).to_numpy(dtype=object, copy=True)
        values[pd.isna(values)] = None
        return values
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        days = col.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")
        out = days.astype(float)
        out[col.isna().to_numpy()] = _NAN
        return out
    if col.dtype.kind in "biuf" or (
        pd.api.types.is_extension_array_dtype(col.dtype)
        and (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype))
    ):
        return col.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(col.astype(object), errors="coerce").to_numpy(dtype=float)


# -- vectorised semantics -------------------------------------------------------------------
def _isnan(x: np.ndarray) -> np.ndarray:
    return np.isnan(x)


def _text_missing(x: np.ndarray) -> np.ndarray:
    return np.fromiter((v is None for v in x), dtype=bool, count=len(x))


class _Vector:
    def __init__(
        self,
        column: Callable[[str], np.ndarray],
        tables: Mapping[str, Mapping[Any, Any]],
        n: int,
    ) -> None:
        self.column, self.tables, self.n = column, tables, n

    def const(self, value: Any) -> np.ndarray:
        if isinstance(value, str):
            return np.full(self.n, value, dtype=object)
        return np.full(self.n, float(value))

    def run(self, node: _Node) -> np.ndarray:
        """The values of an expression tree (floating-point warnings silenced once)."""
        with np.errstate(all="ignore"):
            return self._run(node)

    def _run(self, node: _Node) -> np.ndarray:  # noqa: C901 - one branch per node type
        op, a = node.op, node.args
        if op == "num":
            return self.const(a[0])
        if op == "text":
            return self.const(a[0])
        if op == "bool":
            return self.const(1.0 if a[0] else 0.0)
        if op == "field":
            return self.column(a[0])
        if op == "table":
            keys = self._run(a[1])
            table = self.tables[a[0]]
            found = [table.get(k) if k is not None and k == k else None for k in keys]
            if all(v is None or _is_number(v) for v in table.values()):
                return np.array([_NAN if v is None else float(v) for v in found], dtype=float)
            return np.array(found, dtype=object)
        if op == "unary":
            return -self._run(a[1])
        if op == "binary":
            x, y = self._run(a[1]), self._run(a[2])
            if a[0] == "+":
                return x + y
            if a[0] == "-":
                return x - y
            if a[0] == "*":
                return x * y
            if a[0] == "/":
                return self.divide(x, y)
            if a[2].op == "num" and a[2].args[0] == 2.0:
                return x * x
            return self.power(x, y)
        if op == "cmp":
            return self.compare(a[0], self._run(a[1]), self._run(a[2]))
        if op == "and":
            x, y = self._run(a[0]), self._run(a[1])
            return np.where((x == 0) | (y == 0), 0.0, np.where(_isnan(x) | _isnan(y), _NAN, 1.0))
        if op == "or":
            x, y = self._run(a[0]), self._run(a[1])
            return np.where((x == 1) | (y == 1), 1.0, np.where(_isnan(x) | _isnan(y), _NAN, 0.0))
        if op == "implies":
            x, y = self._run(a[0]), self._run(a[1])
            return np.where((x == 0) | (y == 1), 1.0, np.where(_isnan(x) | _isnan(y), _NAN, 0.0))
        if op == "not":
            return 1.0 - self._run(a[0])
        if op == "missing":
            x = self._run(a[0])
            return (_text_missing(x) if x.dtype == object else _isnan(x)).astype(float)
        if op == "in":
            x = self._run(a[0])
            items = [i.args[0] for i in a[1].args]
            if x.dtype == object:
                hit = np.fromiter((v in items for v in x), dtype=bool, count=len(x))
                return np.where(_text_missing(x), _NAN, hit.astype(float))
            hit = np.isin(x, [float(i) for i in items])
            return np.where(_isnan(x), _NAN, hit.astype(float))
        if op == "ifelse":
            cond, x, y = self._run(a[0]), self._run(a[1]), self._run(a[2])
            if x.dtype == object or y.dtype == object:
                x, y = x.astype(object), y.astype(object)
                out = np.where(cond == 1, x, y).astype(object)
                out[_isnan(cond)] = None
                return out
            return np.where(_isnan(cond), _NAN, np.where(cond == 1, x, y))
        return self.call(a[0], a[1])

    def compare(self, op: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if x.dtype == object or y.dtype == object:
            gone = _text_missing(x) | _text_missing(y)
            same = np.fromiter((p == q for p, q in zip(x, y, strict=True)), bool, len(x))
            hit = same if op == "==" else ~same
            return np.where(gone, _NAN, hit.astype(float))
        fn = {
            "==": np.equal,
            "!=": np.not_equal,
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
        }[op]
        return np.where(_isnan(x) | _isnan(y), _NAN, fn(x, y).astype(float))

    def call(self, name: str, args: tuple[_Node, ...]) -> np.ndarray:
        if name == "band":
            x = self._run(args[0])
            edges = np.array([e.args[0] for e in args[1].args], dtype=float)
            labels = [label.args[0] for label in args[2].args]
            idx = np.searchsorted(edges, np.where(_isnan(x), 0.0, x), side="right")
            if isinstance(labels[0], str):
                out = np.array(labels, dtype=object)[idx]
                out[_isnan(x)] = None
                return out
            return np.where(_isnan(x), _NAN, np.array(labels, dtype=float)[idx])
        values = [self._run(x) for x in args]
        if name == "coalesce":
            out = values[0].copy()
            for v in values[1:]:
                gone = _text_missing(out) if out.dtype == object else _isnan(out)
                out[gone] = v[gone]
            return out
        if name == "abs":
            return np.abs(values[0])
        if name == "log":
            return self.log(values[0])
        return self.extreme(name, values)

    def divide(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x / y

    def power(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x**y

    def log(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), _NAN)

    def extreme(self, name: str, values: list[np.ndarray]) -> np.ndarray:
        stacked = np.vstack(values)
        incomplete = _isnan(stacked).any(axis=0)
        best = stacked.min(axis=0) if name == "min" else stacked.max(axis=0)
        return np.where(incomplete, _NAN, best)


class _Columns(_Vector):
    """:class:`_Vector` on typed record columns, with the per-record results where numpy's
    may differ in the last bit (its own ``log`` and ``power`` loops), in which of two
    equal values it returns (``min(-0.0, 0.0)``) or in the sign of a NaN (``0 / 0``)."""

    def divide(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # as the per-record division: missing (the positive NaN) for 0 / 0 and NaN / 0
        return np.where((y == 0) & ((x == 0) | _isnan(x)), _NAN, x / y)

    def power(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = [_power(p, q) for p, q in zip(x.tolist(), y.tolist(), strict=True)]
        return np.array(out, dtype=np.float64)

    def log(self, x: np.ndarray) -> np.ndarray:
        return np.array([_log(v) for v in x.tolist()], dtype=np.float64)

    def extreme(self, name: str, values: list[np.ndarray]) -> np.ndarray:
        # Python's min / max keep the first of equal values: a later one replaces the
        # best so far only if strictly smaller (larger)
        best = values[0]
        for v in values[1:]:
            best = np.where(v < best if name == "min" else v > best, v, best)
        incomplete = np.zeros(self.n, dtype=bool)
        for v in values:
            incomplete |= _isnan(v)
        return np.where(incomplete, _NAN, best)


def typed_columns(
    records: Sequence[Mapping[str, Any]], names: Iterable[str], kinds: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """Columns of typed record values for :meth:`Expression.evaluate_columns`, read as
    :meth:`Expression.compile_record` reads a record's value (an absent key is missing).

    Parameters
    ----------
    records : sequence of mapping
        Typed values: float (NaN when missing) for numbers, True / False / None for
        logicals, str / None for text.
    names : iterable of str
        Fields to read.
    kinds : mapping
        Kind of each field (``Expression.kinds``); number when not given.

    Returns
    -------
    dict
        Name to array (float64 for numbers and logicals, object for text).
    """
    names = list(names)
    n = len(records)
    out: dict[str, np.ndarray] = {}
    for name, values in zip(names, record_values(records, names), strict=True):
        kind = kinds.get(name, NUM)
        types = set(map(type, values))
        if kind == TEXT:
            col = np.empty(n, dtype=object)
            col[:] = values
        elif types <= (_FLAG_TYPES if kind == LOGIC else _NUMBER_TYPES):
            col = np.array(values, dtype=np.float64)  # None as NaN, True as 1.0
        elif kind == LOGIC:
            col = np.array([_NAN if v is None else float(v) for v in values], dtype=np.float64)
        else:
            col = np.array([_NAN if v is None else _as_number(v) for v in values], dtype=np.float64)
        out[name] = col
    return out


_NUMBER_TYPES = frozenset((float, type(None)))
_FLAG_TYPES = frozenset((bool, type(None)))


def record_values(records: Sequence[Mapping[str, Any]], names: list[str]) -> list[Sequence[Any]]:
    """The values of each name over the records (None where a record lacks it)."""
    if not names:
        return []
    if len(names) == 1 or not records:
        return [[t.get(name) for t in records] for name in names]
    try:
        rows = list(map(operator.itemgetter(*names), records))
    except (KeyError, TypeError):  # ragged records, or mappings without __getitem__ keys
        rows = [tuple(t.get(name) for name in names) for t in records]
    return list(zip(*rows, strict=True))


# -- per-record semantics (the same rules, on scalars) -----------------------------------------
Fn = Callable[[Mapping[str, Any]], Any]


def _nan(x: Any) -> bool:
    return x != x


def _compile(  # noqa: C901 - one branch per node type
    node: _Node, kinds: Mapping[str, str], tables: Mapping[str, Mapping[Any, Any]]
) -> Fn:
    op, a = node.op, node.args

    def sub(n: _Node) -> Fn:
        return _compile(n, kinds, tables)

    if op in ("num", "bool"):
        value = float(a[0])
        return lambda t: value
    if op == "text":
        text = a[0]
        return lambda t: text
    if op == "field":
        name, kind = a[0], kinds.get(a[0], NUM)
        if kind == TEXT:
            return lambda t: t.get(name)
        if kind == LOGIC:

            def flag(t: Mapping[str, Any]) -> float:
                v = t.get(name)
                return _NAN if v is None else float(v)

            return flag

        def number(t: Mapping[str, Any]) -> float:
            v = t.get(name)
            return _NAN if v is None else _as_number(v)

        return number
    if op == "table":
        table, key = tables[a[0]], sub(a[1])
        numeric = all(v is None or _is_number(v) for v in table.values())

        def lookup(t: Mapping[str, Any]) -> Any:
            k = key(t)
            v = None if k is None or _nan(k) else table.get(k)
            if numeric:
                return _NAN if v is None else float(v)
            return v

        return lookup
    if op == "unary":
        inner = sub(a[1])
        return lambda t: -inner(t)
    if op == "binary":
        return _compile_binary(a[0], sub(a[1]), sub(a[2]), a[2])
    if op == "cmp":
        return _compile_compare(a[0], sub(a[1]), sub(a[2]))
    if op in ("and", "or", "implies"):
        x, y = sub(a[0]), sub(a[1])
        return _compile_logic(op, x, y)
    if op == "not":
        inner = sub(a[0])
        return lambda t: 1.0 - inner(t)
    if op == "missing":
        inner = sub(a[0])

        def missing(t: Mapping[str, Any]) -> float:
            v = inner(t)
            return 1.0 if v is None or (isinstance(v, float) and v != v) else 0.0

        return missing
    if op == "in":
        inner = sub(a[0])
        items = [i.args[0] for i in a[1].args]
        numbers = frozenset(float(i) for i in items if not isinstance(i, str))
        texts = frozenset(i for i in items if isinstance(i, str))

        def member(t: Mapping[str, Any]) -> float:
            v = inner(t)
            if v is None or (isinstance(v, float) and v != v):
                return _NAN
            return 1.0 if (v in texts if isinstance(v, str) else v in numbers) else 0.0

        return member
    if op == "ifelse":
        cond, x, y = sub(a[0]), sub(a[1]), sub(a[2])
        text = _kind_of(a[1], kinds, tables) == TEXT

        def choose(t: Mapping[str, Any]) -> Any:
            c = cond(t)
            if c != c:
                return None if text else _NAN
            return x(t) if c == 1 else y(t)

        return choose
    return _compile_call(a[0], a[1], kinds, tables)


def _kind_of(node: _Node, kinds: Mapping[str, str], tables: Mapping[str, Mapping[Any, Any]]) -> str:
    e = Expression("", node)
    return e.check({**kinds}, tables)


def _as_number(v: Any) -> float:
    if isinstance(v, float):
        return v
    if hasattr(v, "toordinal"):  # a date: days since 1970-01-01
        return float(v.toordinal() - 719163)
    if isinstance(v, np.datetime64):
        return float(v.astype("datetime64[D]").astype("int64"))
    if isinstance(v, str):  # a typed record's date: ISO text (YYYY-MM-DD)
        return float(_dt.date.fromisoformat(v).toordinal() - 719163)
    return float(v)


def _compile_binary(op: str, x: Fn, y: Fn, right: _Node) -> Fn:
    if op == "+":
        return lambda t: x(t) + y(t)
    if op == "-":
        return lambda t: x(t) - y(t)
    if op == "*":
        return lambda t: x(t) * y(t)
    if op == "/":

        def divide(t: Mapping[str, Any]) -> float:
            p, q = x(t), y(t)
            if q == 0:
                if p != p or p == 0:
                    return _NAN
                return math.copysign(math.inf, p) * math.copysign(1.0, q)
            return p / q

        return divide
    if right.op == "num" and right.args[0] == 2.0:

        def square(t: Mapping[str, Any]) -> float:
            p = x(t)
            return p * p

        return square

    def power(t: Mapping[str, Any]) -> float:
        return _power(x(t), y(t))

    return power


def _power(p: float, q: float) -> float:
    """``p ^ q`` of one record (NaN where the result is not a real number)."""
    try:
        out = p**q
    except (OverflowError, ZeroDivisionError):
        return float(np.power(p, q))
    return _NAN if isinstance(out, complex) else float(out)


def _log(v: float) -> float:
    """``log(v)`` of one record (NaN for v <= 0 and missing values)."""
    return math.log(v) if v > 0 else _NAN


def _compile_compare(op: str, x: Fn, y: Fn) -> Fn:
    import operator

    fn = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[op]

    def compare(t: Mapping[str, Any]) -> float:
        p, q = x(t), y(t)
        if p is None or q is None or (isinstance(p, float) and p != p):
            return _NAN
        if isinstance(q, float) and q != q:
            return _NAN
        return 1.0 if fn(p, q) else 0.0

    return compare


def _compile_logic(op: str, x: Fn, y: Fn) -> Fn:
    if op == "and":

        def both(t: Mapping[str, Any]) -> float:
            p, q = x(t), y(t)
            if p == 0 or q == 0:
                return 0.0
            return _NAN if p != p or q != q else 1.0

        return both
    if op == "or":

        def either(t: Mapping[str, Any]) -> float:
            p, q = x(t), y(t)
            if p == 1 or q == 1:
                return 1.0
            return _NAN if p != p or q != q else 0.0

        return either

    def implies(t: Mapping[str, Any]) -> float:
        p, q = x(t), y(t)
        if p == 0 or q == 1:
            return 1.0
        return _NAN if p != p or q != q else 0.0

    return implies


def _compile_call(
    name: str,
    args: tuple[_Node, ...],
    kinds: Mapping[str, str],
    tables: Mapping[str, Mapping[Any, Any]],
) -> Fn:
    if name == "band":
        x = _compile(args[0], kinds, tables)
        edges = [e.args[0] for e in args[1].args]
        labels = [label.args[0] for label in args[2].args]
        text = isinstance(labels[0], str)
        labels = labels if text else [float(v) for v in labels]
        gone = None if text else _NAN

        def band(t: Mapping[str, Any]) -> Any:
            v = x(t)
            if v != v:
                return gone
            for edge, label in zip(edges, labels, strict=False):
                if v < edge:
                    return label
            return labels[-1]

        return band
    fns = [_compile(x, kinds, tables) for x in args]
    if name == "coalesce":

        def first(t: Mapping[str, Any]) -> Any:
            v: Any = None
            for fn in fns:
                v = fn(t)
                if v is not None and not (isinstance(v, float) and v != v):
                    return v
            return v

        return first
    if name == "abs":
        inner = fns[0]
        return lambda t: abs(inner(t))
    if name == "log":
        inner = fns[0]

        def log(t: Mapping[str, Any]) -> float:
            return _log(inner(t))

        return log
    pick = min if name == "min" else max

    def extreme(t: Mapping[str, Any]) -> float:
        values = [fn(t) for fn in fns]
        if any(v != v for v in values):
            return _NAN
        return float(pick(values))

    return extreme
