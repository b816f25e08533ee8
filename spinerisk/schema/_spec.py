"""Declarative field specifications and the :class:`Schema` that groups them.

A :class:`FieldSpec` says everything spinerisk needs to know about one column of a
clinical record: its name, type, unit, allowed range or code list, whether it may be
missing, its role in modelling and a clinical description. A :class:`Schema` is an
ordered, immutable collection of field specs plus cross-field :class:`RowRule`\\ s
(impossible combinations such as death before the subsequent fracture).

Everything downstream (validation, column mapping, the feature pipeline, the schema
reference in the docs) reads these objects; nothing else defines fields.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["DTYPES", "ROLES", "DerivedFeature", "FieldSpec", "RowRule", "Schema"]

DType = Literal["float", "int", "bool", "category", "string", "date"]
Role = Literal[
    "id",
    "group",
    "admin",
    "feature",
    "treatment",
    "comparator",
    "outcome",
    "outcome_time",
    "outcome_event",
]

#: Value types a field can declare.
DTYPES: tuple[str, ...] = ("float", "int", "bool", "category", "string", "date")

#: Roles a field can play. ``feature`` and ``treatment`` are known at baseline (the index
#: fracture); ``group`` fields define subgroup tables; a ``comparator`` holds an existing
#: score shown beside the model (never a predictor); ``outcome*`` fields are observed
#: during follow-up and never enter features.
ROLES: tuple[str, ...] = (
    "id",
    "group",
    "admin",
    "feature",
    "treatment",
    "comparator",
    "outcome",
    "outcome_time",
    "outcome_event",
)

#: Roles whose fields are observed after baseline.
FOLLOW_UP_ROLES: frozenset[str] = frozenset({"outcome", "outcome_time", "outcome_event"})

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RULE = "an identifier (letters, digits and _, not starting with a digit)"


@dataclass(frozen=True)
class FieldSpec:
    """Specification of one clinical-record field.

    Parameters
    ----------
    name : str
        Column name: an identifier (letters, digits, ``_``). The built-in schema uses
        snake_case with the unit where one applies (``age_years``); a site's own names
        (``AGE``, ``fac_horTh``) are kept as they are.
    dtype : {"float", "int", "bool", "category", "string", "date"}
        Value type after validation.
    description : str
        Clinical meaning, shown in error messages and the schema reference.
    unit : str, default=""
        Unit of measurement ("years", "HU", "kg/m2", ...); empty for unitless fields.
    min, max : float or None, default=None
        Inclusive hard range for numeric fields.
    categories : tuple or None, default=None
        Allowed codes for ``category`` fields (and for numeric fields restricted to a
        code list, such as an event code).
    nullable : bool, default=True
        Whether a value may be missing.
    required : bool, default=False
        Whether the column must be present in every cohort.
    role : str, default="feature"
        One of :data:`ROLES`.
    group : str, default=""
        Thematic group (demographics, bone health, MRI, ...) for documentation.
    pattern : str or None, default=None
        Regular expression a ``string`` value must match in full.
    unique : bool, default=False
        Whether values must be unique (record identifiers).
    coerce : bool, default=True
        Declared, lossless representation changes applied before checking: ``bool``
        fields accept ``True``/``False`` and ``0``/``1``; ``int`` fields accept
        integral floats (CSV columns with blanks); ``category``/``string`` fields
        accept text; ``date`` fields accept ISO 8601 text. Numeric text may have
        surrounding spaces and boolean text is matched ignoring case (``"TRUE"``); codes
        of ``category`` fields must match exactly. No value is ever changed (no
        rounding, recoding or unit conversion). With ``coerce=False`` the column must
        already have the target dtype.
    source : str, default=""
        Where the code list or range comes from (literature reference).
    missing_values : tuple of str, default=()
        Extra text markers that mean "missing" in this field (``"-9"``, ``"unknown"``),
        besides the empty cell; matched exactly after trimming spaces.
    generated : bool, default=False
        For the ``id`` field only: the records carry no identifier column, and each
        record is named by its row instead (``row-1``, ``row-2``, ... counted from the
        first data row of the input).

    Examples
    --------
    >>> from spinerisk.schema import FieldSpec
    >>> age = FieldSpec("age_years", "float", "Age at the index fracture.", unit="years",
    ...                 min=18, max=105, nullable=False, required=True)
    >>> age.expected()
    '18 <= age_years <= 105 years, not missing'
    >>> FieldSpec("Start.Age", "float", "Age.")
    Traceback (most recent call last):
    ...
    ValueError: FieldSpec name='Start.Age' must be an identifier (letters, digits and _, not starting with a digit).
    """  # noqa: E501

    name: str
    dtype: DType
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[Any, ...] | None = None
    nullable: bool = True
    required: bool = False
    role: Role = "feature"
    group: str = ""
    pattern: str | None = None
    unique: bool = False
    coerce: bool = True
    source: str = ""
    missing_values: tuple[str, ...] = ()
    generated: bool = False

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"FieldSpec name={self.name!r} must be {_NAME_RULE}.")
        if self.dtype not in DTYPES:
            raise ValueError(
                f"FieldSpec {self.name!r}: dtype={self.dtype!r} is not one of {', '.join(DTYPES)}."
            )
        if self.role not in ROLES:
            raise ValueError(
                f"FieldSpec {self.name!r}: role={self.role!r} is not one of {', '.join(ROLES)}."
            )
        if self.dtype == "category" and not self.categories:
            raise ValueError(f"FieldSpec {self.name!r}: a category field needs `categories`.")
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))
        if (self.min is not None or self.max is not None) and self.dtype not in ("float", "int"):
            raise ValueError(f"FieldSpec {self.name!r}: min/max apply to numeric fields only.")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"FieldSpec {self.name!r}: min={self.min} is above max={self.max}.")
        if self.pattern is not None:
            re.compile(self.pattern)
        object.__setattr__(self, "missing_values", tuple(self.missing_values))
        if any(not isinstance(m, str) for m in self.missing_values):
            raise ValueError(f"FieldSpec {self.name!r}: missing_values must be text markers.")
        if self.generated and self.role != "id":
            raise ValueError(
                f"FieldSpec {self.name!r}: generated=True applies to the id field only."
            )

    @property
    def is_numeric(self) -> bool:
        """Whether the field holds numbers (``float`` or ``int``)."""
        return self.dtype in ("float", "int")

    @property
    def is_baseline(self) -> bool:
        """Whether the field is known at the index fracture (not a follow-up field)."""
        return self.role not in FOLLOW_UP_ROLES

    def expected(self) -> str:
        """Human-readable statement of what a valid value looks like."""
        parts: list[str] = []
        if self.categories is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.categories))
        elif self.is_numeric and (self.min is not None or self.max is not None):
            unit = f" {self.unit}" if self.unit else ""
            if self.min is not None and self.max is not None:
                parts.append(f"{_fmt(self.min)} <= {self.name} <= {_fmt(self.max)}{unit}")
            elif self.min is not None:
                parts.append(f"{self.name} >= {_fmt(self.min)}{unit}")
            else:
                parts.append(f"{self.name} <= {_fmt(self.max)}{unit}")
        elif self.dtype == "bool":
            parts.append("true or false (or 1/0)")
        elif self.dtype == "int":
            parts.append("a whole number")
        elif self.dtype == "float":
            parts.append("a finite number")
        elif self.dtype == "date":
            parts.append("a date (YYYY-MM-DD)")
        elif self.pattern is not None:
            parts.append(f"text matching {self.pattern}")
        else:
            parts.append("text")
        if not self.nullable:
            parts.append("not missing")
        return ", ".join(parts)

    def pandas_dtype(self) -> Any:
        """The pandas dtype a validated column has."""
        if self.dtype == "float":
            return np.dtype("float64")
        if self.dtype == "int":
            return pd.Int64Dtype()
        if self.dtype == "bool":
            return pd.BooleanDtype()
        if self.dtype == "category":
            return pd.CategoricalDtype(list(self.categories or ()))
        if self.dtype == "date":
            return np.dtype("datetime64[ns]")
        return pd.StringDtype()


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:g}"


@dataclass(frozen=True)
class RowRule:
    """A cross-field check on each record: an impossible or inconsistent combination.

    Declare the check as an expression (``expr``, see :mod:`spinerisk.schema._expr`):
    the record is consistent unless the expression is *false*, so records with missing
    inputs pass (missingness is checked per field). Declared rules can be written to a
    schema file and stored in a bundle; one declaration runs vectorised on frames and
    compiled per record on the single-record path.

    Parameters
    ----------
    name : str
        Short identifier of the rule (``death_before_fracture``).
    columns : tuple of str, default=()
        Fields the rule reads; each failing record is reported against the first. With
        ``expr`` they default to the fields the expression reads, in order of first use
        (given explicitly, they must be exactly those fields).
    check : callable or None, default=None
        Python alternative to ``expr``: ``check(df) -> bool Series``, True where the
        record is consistent. A rule written as code cannot be saved in a schema file or
        a bundle.
    message : str, default=""
        What is wrong, written for the clinician reading the error.
    optional : tuple of str, default=()
        Columns among ``columns`` that may be absent (treated as all missing); when
        there are some, the rule runs if at least one of them is present.
    expr : str or None, default=None
        The declarative check.

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.schema import RowRule
    >>> rule = RowRule("positive_followup", expr="followup_days > 0",
    ...                message="follow-up must be positive")
    >>> rule.columns
    ('followup_days',)
    >>> rule.evaluate(pd.DataFrame({"followup_days": [3.0, -1.0, None]})).tolist()
    [True, False, True]
    """

    name: str
    columns: tuple[str, ...] = ()
    check: Callable[[pd.DataFrame], pd.Series] | None = None
    message: str = ""
    optional: tuple[str, ...] = ()
    expr: str | None = None
    _parsed: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from spinerisk.schema._expr import parse

        if (self.check is None) == (self.expr is None):
            raise ValueError(f"RowRule {self.name!r}: give exactly one of `expr` and `check`.")
        if not self.message:
            raise ValueError(f"RowRule {self.name!r} needs a `message` for the clinician.")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "optional", tuple(self.optional))
        if self.expr is not None:
            parsed = parse(self.expr)
            used = parsed.field_order
            if not self.columns:
                object.__setattr__(self, "columns", used)
            elif set(self.columns) != set(used):
                raise ValueError(
                    f"RowRule {self.name!r}: columns {list(self.columns)} are not the fields "
                    f"its expression reads ({list(used)})."
                )
            object.__setattr__(self, "_parsed", parsed)
        elif not self.columns:
            raise ValueError(f"RowRule {self.name!r}: a rule written as code needs `columns`.")
        unknown = [c for c in self.optional if c not in self.columns]
        if unknown:
            raise ValueError(
                f"RowRule {self.name!r}: optional {unknown} are not among its columns."
            )

    @property
    def declarative(self) -> bool:
        """Whether the rule is an expression (storable), not Python code."""
        return self.expr is not None

    def applies_to(self, columns: Iterable[str]) -> bool:
        """Whether the columns the rule needs are present (see ``optional``)."""
        present = set(columns)
        required = [c for c in self.columns if c not in self.optional]
        return all(c in present for c in required) and (
            not self.optional or any(c in present for c in self.optional)
        )

    def evaluate(self, df: pd.DataFrame) -> pd.Series:
        """Return a boolean Series, True where the record satisfies the rule."""
        if self._parsed is not None:
            value = self._parsed.evaluate(df)
            return pd.Series(value != 0.0, index=df.index)  # missing (NaN) passes
        absent = [c for c in self.optional if c not in df.columns]
        if absent:  # an absent optional column is a column of missing values
            df = df.assign(**{c: pd.Series(None, index=df.index, dtype=object) for c in absent})
        ok = self.check(df)  # type: ignore[misc]
        return pd.Series(np.asarray(ok, dtype=bool), index=df.index)

    @property
    def expression(self) -> Any:
        """The parsed :class:`~spinerisk.schema._expr.Expression` (None for a rule written
        as code): what :meth:`evaluate` and :meth:`compile_record` run."""
        return self._parsed

    def compile_record(self) -> Callable[[Mapping[str, Any]], bool] | None:
        """Per-record twin of :meth:`evaluate` (None for a rule written as code)."""
        if self._parsed is None:
            return None
        fn = self._parsed.compile_record()
        return lambda t: fn(t) != 0.0

    def bind(self, kinds: Mapping[str, str], tables: Mapping[str, Mapping[Any, Any]]) -> RowRule:
        """A copy checked against a schema's field kinds and lookup tables."""
        if self.expr is None:
            return self
        rule = dataclasses.replace(self)
        kind = rule._parsed.check(kinds, tables)
        if kind != "logical":
            raise ValueError(
                f"RowRule {self.name!r}: `{self.expr}` gives a {kind}; a rule needs a "
                "true/false expression."
            )
        return rule


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed from a record's fields by a declared expression.

    Parameters
    ----------
    name : str
        Feature name. It may be a schema field's name: the derived value then replaces
        the recorded one (for example a recorded BMI, filled from height and weight).
    expr : str
        Expression over fields and earlier derived features (see
        :mod:`spinerisk.schema._expr`).
    description : str, default=""
        Clinical meaning, shown in explanations.
    dtype : {"float", "category"}, default="float"
        ``float`` for numbers and flags (1.0 / 0.0); ``category`` for text, with
        ``categories`` as its code list.
    categories : tuple or None, default=None
        Code list of a ``category`` feature.
    unit : str, default=""
    needs : {"all", "any"}, default="all"
        Computed when all (or any) of the fields it reads are features of the model.
    replaces : tuple of str, default=()
        Fields dropped from the features once this feature exists (they are inputs,
        not features: ``level`` once ``region`` is derived from it).
    field : str or None, default=None
        The clinical field its contributions are explained as; None means the first
        schema field the expression reads (through earlier derived features).

    Examples
    --------
    >>> from spinerisk.schema import DerivedFeature
    >>> band = DerivedFeature("age_band", 'band(age_years, [60, 70], ["<60", "60-69", "70+"])',
    ...                       dtype="category", categories=("<60", "60-69", "70+"))
    >>> band.inputs
    ('age_years',)
    """

    name: str
    expr: str
    description: str = ""
    dtype: Literal["float", "category"] = "float"
    categories: tuple[Any, ...] | None = None
    unit: str = ""
    needs: Literal["all", "any"] = "all"
    replaces: tuple[str, ...] = ()
    field: str | None = None
    _parsed: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from spinerisk.schema._expr import parse

        if not _NAME_RE.match(self.name):
            raise ValueError(f"DerivedFeature name={self.name!r} must be {_NAME_RULE}.")
        if self.dtype not in ("float", "category"):
            raise ValueError(
                f"DerivedFeature {self.name!r}: dtype must be 'float' or 'category'; "
                f"got {self.dtype!r}."
            )
        if self.dtype == "category" and not self.categories:
            raise ValueError(f"DerivedFeature {self.name!r}: a category feature needs categories.")
        if self.needs not in ("all", "any"):
            raise ValueError(
                f"DerivedFeature {self.name!r}: needs must be 'all' or 'any'; got {self.needs!r}."
            )
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "replaces", tuple(self.replaces))
        object.__setattr__(self, "_parsed", parse(self.expr))

    @property
    def inputs(self) -> tuple[str, ...]:
        """Fields and derived features the expression reads, in order of first use."""
        return self._parsed.field_order  # type: ignore[no-any-return]

    def bind(
        self, kinds: Mapping[str, str], tables: Mapping[str, Mapping[Any, Any]]
    ) -> tuple[DerivedFeature, str]:
        """A copy checked against the kinds of what it reads; and its own kind."""
        feature = dataclasses.replace(self)
        kind = feature._parsed.check(kinds, tables)
        if self.dtype == "category" and kind != "text":
            raise ValueError(
                f"DerivedFeature {self.name!r}: `{self.expr}` gives a {kind}; a category "
                "feature needs text."
            )
        if self.dtype == "float" and kind == "text":
            raise ValueError(
                f"DerivedFeature {self.name!r}: `{self.expr}` gives text; declare "
                "dtype='category' with its categories."
            )
        return feature, kind

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """Values on every row of ``frame`` (float, or category with the code list)."""
        values = self._parsed.evaluate(frame)
        if self.dtype == "category":
            return pd.Series(
                pd.Categorical(values, categories=list(self.categories or ())), index=frame.index
            )
        return pd.Series(values.astype(float), index=frame.index)

    @property
    def expression(self) -> Any:
        """The parsed :class:`~spinerisk.schema._expr.Expression` it evaluates."""
        return self._parsed

    def compile_record(self) -> Callable[[Mapping[str, Any]], Any]:
        """Per-record twin of :meth:`evaluate` (float, or str / None for categories)."""
        return self._parsed.compile_record()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Schema:
    """An ordered set of :class:`FieldSpec` and cross-field :class:`RowRule`.

    Parameters
    ----------
    fields : sequence of FieldSpec
        The fields, in documentation order. Names must be unique.
    rules : sequence of RowRule, default=()
        Cross-field consistency rules.
    name : str, default="custom"
        Schema name, shown in messages and the schema reference.
    version : str, default="1"
        Schema version; bump it when a field's meaning changes.
    derived : sequence of DerivedFeature, default=()
        Features computed from the fields by declared expressions, in order.
    tables : mapping, default=()
        Lookup tables (name to ``{code: value}``) the expressions read as ``name[code]``.
    subgroups : sequence of str or None, default=None
        Fields or derived features of the subgroup tables in evaluation reports; None
        means the fields whose role is ``group``.

    Examples
    --------
    >>> from spinerisk.schema import SPINE_SCHEMA, FieldSpec
    >>> "age_years" in SPINE_SCHEMA
    True
    >>> SPINE_SCHEMA["age_years"].unit
    'years'
    >>> local = SPINE_SCHEMA.extend(
    ...     [FieldSpec("grip_strength_kg", "float", "Hand-grip strength.", unit="kg",
    ...                min=0, max=100, group="frailty")],
    ...     name="spine+grip")
    >>> len(local) == len(SPINE_SCHEMA) + 1
    True
    """

    fields: tuple[FieldSpec, ...]
    rules: tuple[RowRule, ...] = ()
    name: str = "custom"
    version: str = "1"
    derived: tuple[DerivedFeature, ...] = ()
    tables: Any = ()
    subgroups: tuple[str, ...] | None = None
    _by_name: Mapping[str, FieldSpec] = field(init=False, repr=False, compare=False)
    _kinds: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        by_name: dict[str, FieldSpec] = {}
        for spec in self.fields:
            if not isinstance(spec, FieldSpec):
                raise TypeError(f"Schema fields must be FieldSpec objects; got {spec!r}.")
            if spec.name in by_name:
                raise ValueError(f"Schema {self.name!r} defines field {spec.name!r} twice.")
            by_name[spec.name] = spec
        ids = [f.name for f in self.fields if f.role == "id"]
        if len(ids) != 1:
            raise ValueError(
                f"Schema {self.name!r} needs exactly one field with role='id'; got {ids}."
            )
        tables = self.tables.items() if isinstance(self.tables, Mapping) else self.tables
        frozen_tables = tuple((str(k), tuple(dict(v).items())) for k, v in tables)
        object.__setattr__(self, "tables", frozen_tables)
        lookup = self.lookup_tables
        from spinerisk.schema._expr import ExpressionError

        kinds = {f.name: _kind_of_field(f) for f in self.fields}
        derived: list[DerivedFeature] = []
        for feature in self.derived:
            if not isinstance(feature, DerivedFeature):
                raise TypeError(f"Schema derived features must be DerivedFeature; got {feature!r}.")
            try:
                bound, kind = feature.bind(kinds, lookup)
            except ExpressionError as exc:
                raise ValueError(
                    f"Schema {self.name!r}: derived {feature.name!r}: {exc}."
                ) from None
            derived.append(bound)
            kinds[feature.name] = kind
        object.__setattr__(self, "derived", tuple(derived))
        if self.subgroups is not None:
            object.__setattr__(self, "subgroups", tuple(self.subgroups))
            unknown = [s for s in self.subgroups if s not in kinds]
            if unknown:
                raise ValueError(
                    f"Schema {self.name!r}: subgroups {unknown} are neither fields nor derived "
                    "features."
                )
        rules: list[RowRule] = []
        for rule in self.rules:
            missing = [c for c in rule.columns if c not in by_name]
            if missing:
                raise ValueError(
                    f"Schema {self.name!r}: rule {rule.name!r} reads unknown field(s) {missing}."
                )
            try:
                rules.append(rule.bind({c: kinds[c] for c in by_name}, lookup))
            except ExpressionError as exc:
                raise ValueError(f"Schema {self.name!r}: rule {rule.name!r}: {exc}.") from None
        object.__setattr__(self, "rules", tuple(rules))
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_kinds", kinds)

    @property
    def lookup_tables(self) -> dict[str, dict[str, Any]]:
        """Lookup tables the expressions may read (``name[key]``), as dicts."""
        return {name: dict(items) for name, items in self.tables}

    @property
    def subgroup_names(self) -> tuple[str, ...]:
        """Variables of the subgroup tables: the declared ``subgroups``, else the fields
        whose role is ``group``."""
        if self.subgroups is not None:
            return self.subgroups
        return tuple(f.name for f in self.fields if f.role == "group")

    @property
    def declarative(self) -> bool:
        """Whether every rule is a declared expression (the schema can be stored as data)."""
        return all(r.declarative for r in self.rules)

    def field_of(self, feature: str) -> str:
        """The clinical field a feature (derived or not) is explained as.

        Examples
        --------
        >>> from spinerisk.schema import SPINE_SCHEMA
        >>> SPINE_SCHEMA.field_of("tlj"), SPINE_SCHEMA.field_of("bmi")
        ('level', 'bmi')
        """
        by_name = {d.name: d for d in self.derived}
        seen: set[str] = set()
        while feature in by_name and feature not in seen:
            seen.add(feature)
            d = by_name[feature]
            if d.field is not None:
                return d.field
            first = d.inputs[0]
            if first == feature:
                return first
            feature = first
        return feature

    # -- mapping-like access -------------------------------------------------------
    def __getitem__(self, name: str) -> FieldSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a field of schema {self.name!r}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def names(self) -> list[str]:
        """Field names in schema order."""
        return [f.name for f in self.fields]

    @property
    def id_field(self) -> str:
        """Name of the record-identifier field."""
        return next(f.name for f in self.fields if f.role == "id")

    def by_role(self, *roles: str) -> list[FieldSpec]:
        """Fields whose role is one of ``roles``, in schema order."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"Unknown role(s) {sorted(unknown)}; expected some of {ROLES}.")
        return [f for f in self.fields if f.role in roles]

    @property
    def required(self) -> list[str]:
        """Names of the fields every cohort must contain."""
        return [f.name for f in self.fields if f.required]

    # -- building new schemas --------------------------------------------------------
    def extend(
        self,
        fields: Sequence[FieldSpec] = (),
        rules: Sequence[RowRule] = (),
        *,
        name: str | None = None,
        version: str | None = None,
        derived: Sequence[DerivedFeature] = (),
    ) -> Schema:
        """Return a new schema with extra fields, rules and derived features (existing
        ones unchanged)."""
        return Schema(
            self.fields + tuple(fields),
            self.rules + tuple(rules),
            name=self.name if name is None else name,
            version=self.version if version is None else version,
            derived=self.derived + tuple(derived),
            tables=self.tables,
            subgroups=self.subgroups,
        )

    def replace(self, name: str, **changes: Any) -> Schema:
        """Return a new schema where field ``name`` has the given attributes changed.

        Examples
        --------
        >>> from spinerisk.schema import SPINE_SCHEMA
        >>> s = SPINE_SCHEMA.replace("hu_l1", nullable=False, required=True)
        >>> s["hu_l1"].required, SPINE_SCHEMA["hu_l1"].required
        (True, False)
        """
        spec = self[name]
        new = dataclasses.replace(spec, **changes)
        return Schema(
            tuple(new if f.name == name else f for f in self.fields),
            self.rules,
            name=self.name,
            version=self.version,
            derived=self.derived,
            tables=self.tables,
            subgroups=self.subgroups,
        )

    def drop(self, *names: str) -> Schema:
        """Return a new schema without the named fields (and the rules and derived
        features that read them)."""
        for n in names:
            self[n]  # raises a clear KeyError for unknown names
        gone = set(names)
        derived = []
        for d in self.derived:
            if gone & set(d.inputs):
                if d.name not in self._by_name:
                    gone.add(d.name)
            else:
                derived.append(d)
        return Schema(
            tuple(f for f in self.fields if f.name not in names),
            tuple(r for r in self.rules if not gone & set(r.columns)),
            name=self.name,
            version=self.version,
            derived=tuple(derived),
            tables=self.tables,
            subgroups=None
            if self.subgroups is None
            else tuple(g for g in self.subgroups if g not in gone),
        )

    # -- documentation -----------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per field: name, group, role, dtype, unit, range or codes, description."""
        rows = []
        for f in self.fields:
            if f.categories is not None:
                allowed = ", ".join(str(c) for c in f.categories)
            elif f.min is not None or f.max is not None:
                lo = "" if f.min is None else _fmt(f.min)
                hi = "" if f.max is None else _fmt(f.max)
                allowed = f"{lo} to {hi}".strip()
            elif f.pattern is not None:
                allowed = f"`{f.pattern}`"
            else:
                allowed = ""
            rows.append(
                {
                    "field": f.name,
                    "group": f.group,
                    "role": f.role,
                    "dtype": f.dtype,
                    "unit": f.unit,
                    "allowed": allowed,
                    "missing allowed": "yes" if f.nullable else "no",
                    "required": "yes" if f.required else "no",
                    "description": f.description,
                    "source": f.source,
                }
            )
        return pd.DataFrame(rows)

    def to_markdown(self) -> str:
        """Markdown reference of the schema: one table per group, then the rules."""
        frame = self.to_frame()
        out = [f"Schema `{self.name}`, version {self.version}: {len(self)} fields.", ""]
        for group, part in frame.groupby("group", sort=False):
            out.append(f"### {str(group) if group else 'other'}")
            out.append("")
            out.append(
                "| field | type | unit | allowed | missing allowed | required | role "
                "| description |"
            )
            out.append("|---|---|---|---|---|---|---|---|")
            for r in part.itertuples(index=False):
                desc = str(r.description) + (f" *Source: {str(r.source)}.*" if r.source else "")
                cells = [
                    f"`{r.field}`",
                    r.dtype,
                    r.unit,
                    r.allowed,
                    r._6,
                    r.required,
                    r.role,
                    desc,
                ]
                out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
            out.append("")
        if self.rules:
            out.append("### Cross-field rules")
            out.append("")
            out.append("| rule | fields | what it catches |")
            out.append("|---|---|---|")
            for rule in self.rules:
                cols = ", ".join(f"`{c}`" for c in rule.columns)
                out.append(f"| `{rule.name}` | {cols} | {rule.message} |")
            out.append("")
        if self.derived:
            out.append("### Derived features")
            out.append("")
            out.append("| feature | computed as | type | description |")
            out.append("|---|---|---|---|")
            for d in self.derived:
                expr = d.expr.replace("|", "\\|")
                out.append(f"| `{d.name}` | `{expr}` | {d.dtype} | {d.description} |")
            out.append("")
        return "\n".join(out)


def _kind_of_field(spec: FieldSpec) -> str:
    """Value kind of a field in expressions: number, logical or text."""
    if spec.dtype == "bool":
        return "logical"
    if spec.dtype in ("float", "int", "date"):
        return "number"
    return "text"


def is_missing(value: Any) -> bool:
    """Whether a scalar counts as missing (None, NaN, NaT, pandas NA)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False
