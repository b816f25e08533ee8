"""The three outcomes as declarative endpoint specs.

An :class:`Endpoint` says what is predicted (kind, outcome columns, horizons in days),
for whom (eligibility) and from what (baseline predictors only). Models read these specs;
nothing else decides which column is the outcome.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import pandas as pd

from spinerisk._units import DAYS_PER_YEAR
from spinerisk.schema._spec import FOLLOW_UP_ROLES, RowRule, Schema
from spinerisk.targets import (
    TIME_RULE,
    invalid_times,
    make_competing_target,
    make_survival_target,
)

__all__ = [
    "COLLAPSE",
    "ENDPOINTS",
    "CERVICAL_MORTALITY",
    "FUTURE_FRACTURE",
    "MALIGNANT_FRACTURE",
    "NONUNION",
    "ODONTOID_NONUNION",
    "TIME_UNITS",
    "Endpoint",
    "Labelled",
    "check_horizon",
    "check_horizons",
    "days_in_unit",
    "check_within_follow_up",
    "same_horizons",
    "stated_horizon",
    "stated_horizons",
    "endpoint_from_dict",
    "endpoint_to_dict",
    "get_endpoint",
    "interval_columns",
    "load_endpoint",
    "risk_column",
]

#: Time units an endpoint's data may be recorded in, and their length in days. Times
#: and horizons are converted to days once, when the outcome is read
#: (:meth:`Endpoint.target`) and when an endpoint file is read; every output shows
#: horizons in the endpoint's own unit.
TIME_UNITS: dict[str, float] = {
    "days": 1.0,
    "weeks": 7.0,
    "months": DAYS_PER_YEAR / 12,
    "years": DAYS_PER_YEAR,
}
_UNIT_SUFFIX = {"days": "d", "weeks": "w", "months": "mo", "years": "y"}
#: Spellings of a time unit in a schema field's free-text ``unit``, by time unit: a time
#: field whose unit says one unit and an endpoint in another is refused.
_TIME_UNIT_NAMES = {
    name: unit
    for unit, names in {
        "days": ("d", "day", "days"),
        "weeks": ("w", "wk", "wks", "week", "weeks"),
        "months": ("mo", "mon", "month", "months"),
        "years": ("y", "yr", "yrs", "year", "years"),
    }.items()
    for name in names
}
#: Internal horizon of a binary endpoint recorded without one (its risk column is ``risk``).
NO_HORIZON = 0.0


def risk_column(horizon: float, time_unit: str = "days") -> str:
    """Name of the risk column for a horizon in days.

    ``risk_<whole days>d`` for endpoints in days (``risk_365d``), the horizon in the
    endpoint's unit otherwise (``risk_12mo``, ``risk_2y``, ``risk_26w``), and ``risk``
    for a binary endpoint without a horizon.

    Examples
    --------
    >>> risk_column(182.62), risk_column(365.25, "months"), risk_column(0.0)
    ('risk_183d', 'risk_12mo', 'risk')
    """
    if horizon == NO_HORIZON:
        return "risk"
    if time_unit == "days":
        return f"risk_{round(horizon):d}d"
    value = horizon / TIME_UNITS[time_unit]
    return f"risk_{round(value, 6):g}{_UNIT_SUFFIX[time_unit]}"


def stated_horizons(days: Any) -> list[float]:
    """Horizons in days as outputs state them (reports, API answers, JSON): a binary
    endpoint recorded without a horizon has none, so its internal :data:`NO_HORIZON` is
    left out and the list is empty.

    >>> stated_horizons((182.62,)), stated_horizons((NO_HORIZON,))
    ([182.62], [])
    """
    return [h for h in map(stated_horizon, days) if h is not None]


def stated_horizon(days: float) -> float | None:
    """One horizon in days as outputs state it: None for :data:`NO_HORIZON`."""
    return None if float(days) == NO_HORIZON else float(days)


def interval_columns(column: str) -> tuple[str, str]:
    """Names of the lower and upper interval bounds of a risk column.

    ``predict_risk(..., interval=0.9)`` puts them right after the risk column they
    belong to.

    Examples
    --------
    >>> interval_columns("risk_365d"), interval_columns("risk")
    (('risk_365d_lo', 'risk_365d_hi'), ('risk_lo', 'risk_hi'))
    """
    return f"{column}_lo", f"{column}_hi"


def days_in_unit(days: Any, time_unit: str) -> Any:
    """A time in days (a number, or an array or list of them) in ``time_unit``: the one
    conversion from the library's days to the unit a user reads, rounded to 9 decimals
    so that a horizon given as 36 months reads back as 36. A number gives a float, an
    array or list an array; NaN stays NaN.

    >>> days_in_unit(1095.75, "months"), days_in_unit([182.0, 364.0], "weeks").tolist()
    (36.0, [26.0, 52.0])
    """
    value = np.round(np.asarray(days, dtype=np.float64) / TIME_UNITS[time_unit], 9)
    return float(value) if value.ndim == 0 else value


def horizon_in_unit(days: float, time_unit: str) -> str:
    """A horizon in days, in words in ``time_unit``: ``"183 days"``, ``"26 weeks"``,
    ``"1 year"``."""
    if time_unit == "days":
        return f"{days:g} days"
    value = round(float(days) / TIME_UNITS[time_unit], 6)
    unit = time_unit[:-1] if value == 1 else time_unit
    return f"{value:g} {unit}"


@dataclass(frozen=True)
class Endpoint:
    """Specification of one prognostic (or diagnostic) outcome.

    Parameters
    ----------
    name : str
        Identifier (``"nonunion"``).
    kind : {"binary", "survival", "competing"}
        Binary outcome (at a fixed horizon, or without one), time to event, or time to
        the first of competing events.
    description : str
        Clinical definition, horizon included.
    event : str
        Outcome column: the binary flag, the event indicator or the event code.
    time : str or None
        Column with the time from the index date to the event or censoring, in
        ``time_unit`` (``None`` for binary endpoints).
    horizons : tuple of float
        Default prediction horizons **in days** (an endpoint file gives them in its
        ``time_unit``). A binary endpoint may have none: its risk column is ``risk``.
    eligible_treatments : tuple of str or None
        Treatments for which the outcome is defined (None: all patients).
    include_treatment : bool
        Whether treatment fields are predictors. Treatment is confounded by indication;
        its attributions are not causal.
    event_of_interest : int, default=1
        Event code of interest for competing risks (and of the event for time-to-event
        endpoints with a coded event column). For competing risks it is 1 or 2, and every
        other code except ``censor_code`` is a competing event: the models see them as one
        competing event (code 2, or 1 when the event of interest is 2), whose
        cause-specific hazard is the sum of theirs, so the event of interest's cumulative
        incidence accounts for all of them.
    time_unit : {"days", "weeks", "months", "years"}, default="days"
        Unit of the ``time`` column; converted to days once, in :meth:`target`.
    eligibility : str or None, default=None
        Expression (see :mod:`spinerisk.schema._expr`) a record must satisfy for the
        outcome to be defined; a record where it is false or missing is not eligible.
    predictor_fields : tuple of str or None, default=None
        Predictors; None means every field with role ``feature`` (and ``treatment`` when
        ``include_treatment``).
    comparators : tuple of str, default=()
        Columns holding an existing score to show beside the model (never predictors).
    censor_code : int, default=0
        Event code of a censored record (competing risks and coded time-to-event).
    positive : object or None, default=None
        Value of a binary ``event`` column that means the outcome occurred (text codes
        such as ``"present"``); None means the column is a flag or 0/1.
    scope : str or None, default=None
        Expression of the population the endpoint is defined for (``level`` not
        cervical, say). A record is in scope only where it is true: elsewhere it is left
        out of fitting and evaluation, and refused with ``scope_message`` instead of
        scored on every prediction path. Missing inputs leave a record out unless the
        scope admits them (``level is missing or not (level in [...])``).
    scope_message : str, default=""
        Why such a record is refused (shown to the user).

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.endpoints import get_endpoint
    >>> ep = get_endpoint("nonunion")
    >>> cohort = sr.validate(sr.make_spine_cohort(500, seed=0))
    >>> mask = ep.eligible(cohort)
    >>> set(cohort.loc[mask, "treatment"].astype(str)) <= {"conservative", "fixation"}
    True
    >>> y = ep.target(cohort[mask])
    >>> y.dtype == bool and len(y) == int(mask.sum())
    True
    """

    name: str
    kind: Literal["binary", "survival", "competing"]
    description: str
    event: str
    time: str | None
    horizons: tuple[float, ...]
    eligible_treatments: tuple[str, ...] | None = None
    include_treatment: bool = False
    event_of_interest: int = 1
    time_unit: str = "days"
    eligibility: str | None = None
    predictor_fields: tuple[str, ...] | None = None
    comparators: tuple[str, ...] = ()
    censor_code: int = 0
    positive: Any = None
    scope: str | None = None
    scope_message: str = ""
    _eligibility: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from spinerisk.schema._expr import parse

        if self.kind not in ("binary", "survival", "competing"):
            raise ValueError(
                f"Endpoint {self.name!r}: kind must be 'binary', 'survival' or 'competing'; "
                f"got kind={self.kind!r}."
            )
        if self.kind != "binary" and self.time is None:
            raise ValueError(f"Endpoint {self.name!r}: a {self.kind} endpoint needs `time`.")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(
                f"Endpoint {self.name!r}: time_unit={self.time_unit!r} is not one of "
                f"{', '.join(TIME_UNITS)}."
            )
        object.__setattr__(self, "horizons", tuple(float(h) for h in self.horizons))
        if self.kind != "binary" and not self.horizons:
            raise ValueError(f"Endpoint {self.name!r}: a {self.kind} endpoint needs horizons.")
        if any(not math.isfinite(h) or h <= 0 for h in self.horizons):
            raise ValueError(f"Endpoint {self.name!r}: horizons must be positive days.")
        if self.kind == "binary" and len(self.horizons) > 1:
            raise ValueError(
                f"Endpoint {self.name!r}: a binary outcome is recorded at one horizon; got "
                f"{len(self.horizons)}."
            )
        if self.kind == "competing" and (
            self.event_of_interest not in (1, 2) or self.censor_code == self.event_of_interest
        ):
            raise ValueError(
                f"Endpoint {self.name!r}: a competing endpoint's event of interest is code 1 "
                f"or 2, other than the censoring code; got event={self.event_of_interest!r}, "
                f"censored={self.censor_code!r}. Recode the event column under "
                f"[values.{self.event}] in a column mapping."
            )
        if self.eligible_treatments is not None:
            object.__setattr__(self, "eligible_treatments", tuple(self.eligible_treatments))
        if self.predictor_fields is not None:
            object.__setattr__(self, "predictor_fields", tuple(self.predictor_fields))
        object.__setattr__(self, "comparators", tuple(self.comparators))
        if self.eligibility is not None:
            object.__setattr__(self, "_eligibility", parse(self.eligibility))
        if self.scope is not None:
            parse(self.scope)
            if not self.scope_message:
                object.__setattr__(
                    self, "scope_message", f"outside the scope of the {self.name} endpoint"
                )

    def scope_rule(self) -> RowRule | None:
        """The scope as a row rule (what prediction paths validate with), or None."""
        if self.scope is None:
            return None
        from spinerisk.schema._expr import parse

        # a record is in scope only where the scope is true: missing data (an absent
        # column too) leaves it out unless the scope admits it (``level is missing or ...``)
        fields = parse(self.scope).field_order
        return RowRule(
            f"scope:{self.name}",
            fields,
            expr=f"coalesce({self.scope}, false)",
            message=self.scope_message,
            optional=fields,
        )

    # -- names and units ---------------------------------------------------------------------
    @property
    def outcome_columns(self) -> tuple[str, ...]:
        """Columns that hold the outcome."""
        return (self.event,) if self.time is None else (self.event, self.time)

    @property
    def model_horizons(self) -> tuple[float, ...]:
        """Horizons a model of this endpoint predicts at by default (days); a binary
        endpoint without a horizon has the single internal horizon :data:`NO_HORIZON`."""
        return self.horizons if self.horizons else (NO_HORIZON,)

    def risk_column(self, horizon: float) -> str:
        """Name of the risk column at ``horizon`` (days), in this endpoint's unit."""
        return risk_column(horizon, self.time_unit)

    def to_days(self, value: float) -> float:
        """A time or horizon in this endpoint's unit, in days."""
        return float(value) * TIME_UNITS[self.time_unit]

    def in_unit(self, days: float) -> float:
        """A horizon in days, in this endpoint's unit (:func:`days_in_unit`)."""
        return float(days_in_unit(float(days), self.time_unit))

    def horizon_label(self, days: float) -> str:
        """Human-readable horizon: ``"183 days"``, ``"12 months"``, ``"no horizon"``."""
        if days == NO_HORIZON:
            return "the recorded outcome (no horizon)"
        return horizon_in_unit(days, self.time_unit)

    # -- what the model may read -------------------------------------------------------------
    def predictors(self, schema: Schema | None = None) -> list[str]:
        """Baseline fields that may be used as predictors (never an outcome field).

        Parameters
        ----------
        schema : Schema or None, default=None
            None means :data:`spinerisk.schema.SPINE_SCHEMA`.

        Returns
        -------
        list of str

        Raises
        ------
        ValueError
            If a declared predictor is not a field of the schema, or is an outcome,
            identifier or comparator field.
        """
        schema = _schema(schema)
        if self.predictor_fields is not None:
            unknown = [n for n in self.predictor_fields if n not in schema]
            if unknown:
                raise ValueError(
                    f"Endpoint {self.name!r}: predictor(s) {unknown} are not fields of schema "
                    f"{schema.name!r}."
                )
            barred = [
                n
                for n in self.predictor_fields
                if schema[n].role in FOLLOW_UP_ROLES | {"id", "comparator", "admin"}
                or n in self.outcome_columns
                or n in self.comparators
            ]
            if barred:
                raise ValueError(
                    f"Endpoint {self.name!r}: {barred} cannot be predictors (outcome, "
                    "identifier, admin or comparator fields)."
                )
            return [n for n in schema.names if n in self.predictor_fields]
        roles = ("feature", "treatment") if self.include_treatment else ("feature",)
        names = [f.name for f in schema.by_role(*roles) if f.name not in self.outcome_columns]
        names = [n for n in names if n not in self.comparators]
        leaked = [n for n in names if schema[n].role in FOLLOW_UP_ROLES]
        if leaked:  # pragma: no cover - by_role guarantees this; kept as a hard guard
            raise RuntimeError(f"Follow-up fields {leaked} would enter the predictors.")
        return names

    def check_schema(self, schema: Schema | None = None) -> None:
        """Check that the endpoint's columns and eligibility fit ``schema``.

        Raises
        ------
        ValueError
            Naming the column or expression that does not fit.
        """
        schema = _schema(schema)
        for col in (*self.outcome_columns, *self.comparators):
            if col not in schema:
                raise ValueError(
                    f"Endpoint {self.name!r}: column {col!r} is not a field of schema "
                    f"{schema.name!r}."
                )
        if self.time is not None:
            said = _TIME_UNIT_NAMES.get(schema[self.time].unit.strip().lower())
            if said is not None and said != self.time_unit:
                raise ValueError(
                    f"Endpoint {self.name!r}: time_unit={self.time_unit!r}, but the schema "
                    f"gives field {self.time!r} in {said} (unit={schema[self.time].unit!r}): "
                    f"every horizon would be read in the wrong unit. Set time_unit = "
                    f'"{said}" in the endpoint (or correct the field\'s unit).'
                )
        self.predictors(schema)
        if self._eligibility is not None:
            self._bound_eligibility(schema)
        scope = self.scope_rule()
        if scope is not None:
            try:
                schema.extend(rules=[scope])
            except ValueError as exc:
                raise ValueError(f"Endpoint {self.name!r}: scope: {exc}") from None

    def treatment_predictors(self, schema: Schema | None = None) -> list[str]:
        """The treatment fields among :meth:`predictors` (their effects are confounded by
        indication: reports say so only when there are some)."""
        schema = _schema(schema)
        read = set(self.predictors(schema))
        return [f.name for f in schema.by_role("treatment") if f.name in read]

    def _bound_eligibility(self, schema: Schema) -> Any:
        from spinerisk.schema._expr import ExpressionError, parse

        expr = parse(self.eligibility or "")
        try:
            kind = expr.check(schema._kinds, schema.lookup_tables)
        except ExpressionError as exc:
            raise ValueError(f"Endpoint {self.name!r}: eligibility: {exc}.") from None
        if kind != "logical":
            raise ValueError(
                f"Endpoint {self.name!r}: eligibility `{self.eligibility}` gives a {kind}; "
                "it must be true or false."
            )
        return expr

    def eligible(self, cohort: pd.DataFrame, schema: Schema | None = None) -> pd.Series:
        """Records for which the outcome is defined and observed.

        Parameters
        ----------
        cohort : DataFrame
            Validated records.
        schema : Schema or None, default=None
            The records' schema (for the eligibility expression); None means
            :data:`spinerisk.schema.SPINE_SCHEMA`.

        Returns
        -------
        Series of bool
            Aligned with ``cohort``.
        """
        mask = pd.Series(True, index=cohort.index)
        for _, ok in self._conditions(cohort, schema):
            mask &= ok
        return mask.astype(bool)

    def exclusions(self, cohort: pd.DataFrame, schema: Schema | None = None) -> pd.Series:
        """Why each record is not eligible (see :meth:`eligible`): the first condition it
        fails, such as ``"fx_time_days is missing"``, or ``""`` for an eligible record.

        Parameters
        ----------
        cohort : DataFrame
            Validated records.
        schema : Schema or None, default=None
            The records' schema (for the eligibility expression); None means
            :data:`spinerisk.schema.SPINE_SCHEMA`.

        Returns
        -------
        Series of str
            Aligned with ``cohort``.
        """
        reasons = pd.Series("", index=cohort.index, dtype=object)
        for reason, ok in self._conditions(cohort, schema):
            reasons[(reasons == "") & ~ok.to_numpy(dtype=bool)] = reason
        return reasons

    def exclusion_lines(
        self, cohort: pd.DataFrame, schema: Schema | None = None, *, named: int = 5
    ) -> list[str]:
        """:meth:`exclusions` as text: a line per reason with its count and the first
        ``named`` record ids (``"2 time is missing (pid: 3, 9)"``).

        Parameters
        ----------
        cohort : DataFrame
            Validated records.
        schema : Schema or None, default=None
            The records' schema (its id field names the records); None means
            :data:`spinerisk.schema.SPINE_SCHEMA`.
        named : int, default=5
            Records named per reason.

        Returns
        -------
        list of str
            Empty when every record is eligible. Records are named by the schema's id
            field, or by their row label (``row: ...``) when the records lack it.
        """
        reasons = self.exclusions(cohort, schema)
        left = reasons != ""
        id_field = _schema(schema).id_field
        if id_field in cohort.columns:
            ids = cohort[id_field].astype(str)
        else:
            id_field, ids = "row", pd.Series(cohort.index.astype(str), index=cohort.index)
        lines = []
        for reason, group in ids[left].groupby(reasons[left], sort=False):
            more = f" and {len(group) - named} more" if len(group) > named else ""
            lines.append(
                f"{len(group)} {reason} ({id_field}: {', '.join(group.head(named))}{more})"
            )
        return lines

    def _conditions(
        self, cohort: pd.DataFrame, schema: Schema | None
    ) -> list[tuple[str, pd.Series]]:
        """Each condition of eligibility with its reason when it fails, in order."""
        missing = [c for c in self.outcome_columns if c not in cohort.columns]
        if missing:
            raise ValueError(
                f"Endpoint {self.name!r} needs outcome column(s) {missing}, which the cohort lacks."
            )
        out = [(f"{col} is missing", cohort[col].notna()) for col in self.outcome_columns]
        if self.eligible_treatments is not None:
            if "treatment" not in cohort.columns:
                raise ValueError(
                    f"Endpoint {self.name!r} is defined for treatment in "
                    f"{list(self.eligible_treatments)}; the cohort has no 'treatment' column."
                )
            out.append(
                (
                    f"treatment not in {list(self.eligible_treatments)}",
                    cohort["treatment"].astype(object).isin(self.eligible_treatments),
                )
            )
        if self.eligibility is not None:
            expr = self._bound_eligibility(_schema(schema))
            out.append(
                (
                    f"not eligible ({self.eligibility})",
                    pd.Series(expr.evaluate(cohort) == 1.0, index=cohort.index),
                )
            )
        if self.scope is not None:
            out.append((self.scope_message, self.in_scope(cohort, schema)))
        return out

    def in_scope(self, cohort: pd.DataFrame, schema: Schema | None = None) -> pd.Series:
        """Records inside the endpoint's ``scope`` (all of them when it has none)."""
        scope = self.scope_rule()
        if scope is None:
            return pd.Series(True, index=cohort.index)
        rule = _schema(schema).extend(rules=[scope]).rules[-1]
        if not rule.applies_to(cohort.columns):
            return pd.Series(True, index=cohort.index)
        return rule.evaluate(cohort)

    def target(self, cohort: pd.DataFrame, id_column: str | None = None) -> np.ndarray:
        """Outcome ``y`` in the project's convention (see :mod:`spinerisk.targets`).

        Times are converted from ``time_unit`` to days here, once; a censoring code
        other than 0 becomes 0.

        Parameters
        ----------
        cohort : DataFrame
            Eligible records (see :meth:`eligible`); a missing outcome is an error.
        id_column : str or None, default=None
            The records' identifier column, to name the records of an error (else their
            index labels).

        Returns
        -------
        ndarray
            Booleans for binary endpoints; a structured ``(event, time)`` array otherwise.
        """
        for col in self.outcome_columns:
            if col not in cohort.columns:
                raise ValueError(f"Endpoint {self.name!r}: the cohort lacks column {col!r}.")
            n_missing = int(cohort[col].isna().sum())
            if n_missing:
                raise ValueError(
                    f"Endpoint {self.name!r}: {col} is missing in {n_missing} record(s); "
                    "select eligible records first (Endpoint.eligible)."
                )
        if self.kind == "binary":
            return self._binary(cohort[self.event])
        time = cohort[self.time].astype(float).to_numpy()
        bad = invalid_times(time)
        if bad.any():
            raise ValueError(self._bad_times_message(cohort, bad, id_column))
        if self.time_unit != "days":
            time = time * TIME_UNITS[self.time_unit]
        codes = cohort[self.event]
        if self.kind == "survival":
            if pd.api.types.is_bool_dtype(codes.dtype) or self._is_flag(codes):
                return make_survival_target(codes.astype(bool).to_numpy(), time)
            return make_survival_target(self._codes(codes) == self.event_of_interest, time)
        return make_competing_target(self._competing_codes(codes), time)

    def _bad_times_message(
        self, cohort: pd.DataFrame, bad: np.ndarray, id_column: str | None
    ) -> str:
        """Which records break the time rule, by identifier, with their values."""
        rows = cohort[bad]
        names = (
            rows[id_column].astype(str).tolist()
            if id_column is not None and id_column in rows.columns
            else [str(label) for label in rows.index]
        )
        label = id_column or "record"
        shown = [
            f"{label}={name} ({self.time}={value!r})"
            for name, value in zip(
                names[:5], rows[self.time].astype(float).tolist()[:5], strict=True
            )
        ]
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        return (
            f"Endpoint {self.name!r}: {self.time} must be {TIME_RULE} ({self.time_unit}); "
            f"{len(names)} record(s) break this: {', '.join(shown)}{more}. An outcome at "
            "time 0 cannot be ordered against the other records' follow-up: correct these "
            f'times, or leave the records out with eligibility = "{self.time} > 0" in the '
            "endpoint."
        )

    def labelled(
        self, records: pd.DataFrame, schema: Schema | None = None, *, validated: bool = False
    ) -> Labelled:
        """Validate records, keep the eligible ones and read their outcome: the one
        "validate, eligible, target" step of fitting, evaluating, updating and monitoring.

        Parameters
        ----------
        records : DataFrame
            Records with the outcome columns.
        schema : Schema or None, default=None
            The records' schema; None means :data:`spinerisk.schema.SPINE_SCHEMA`.
        validated : bool, default=False
            True when ``records`` are already validated (the output of
            :func:`spinerisk.schema.validate`): they are not validated again.

        Returns
        -------
        Labelled
            ``checked`` (the validated records), ``mask`` (bool array over them: eligible),
            ``data`` (the eligible records) and ``target`` (:meth:`target` of ``data``).
        """
        from spinerisk.schema import validate

        checked = records if validated else validate(records, schema)
        mask = self.eligible(checked, schema).to_numpy(dtype=bool)
        data = checked[mask]
        return Labelled(checked, mask, data, self.target(data, _schema(schema).id_field))

    def _binary(self, col: pd.Series) -> np.ndarray:
        if self.positive is not None:
            return (col.astype(object) == self.positive).to_numpy(dtype=bool)
        return col.astype(bool).to_numpy()

    def _is_flag(self, codes: pd.Series) -> bool:
        values = set(pd.unique(codes.astype(float)))
        return values <= {0.0, 1.0} and (self.censor_code, self.event_of_interest) == (0, 1)

    def _codes(self, codes: pd.Series) -> np.ndarray:
        """Event codes as integers with 0 for censored (``censor_code`` and 0 swap places
        when the data censor with another code); other codes keep their values, so the
        event of interest is ``event_of_interest`` in the models as in the data."""
        raw = codes.astype(float).to_numpy()
        out = raw.astype(np.int64)
        if self.censor_code != 0:
            out = np.where(raw == self.censor_code, 0, np.where(raw == 0, self.censor_code, out))
        return out

    def _competing_codes(self, codes: pd.Series) -> np.ndarray:
        """:meth:`_codes` with every competing code (not censored, not the event of
        interest) as the one competing event the models hold: 2, or 1 when the event of
        interest is 2."""
        out = self._codes(codes)
        other = 1 if self.event_of_interest == 2 else 2
        return np.where((out != 0) & (out != self.event_of_interest), other, out)

    # -- as data -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The endpoint as plain data (horizons in its ``time_unit``); see
        :func:`spinerisk.endpoints.endpoint_from_dict`."""
        return endpoint_to_dict(self)


def _schema(schema: Schema | None) -> Schema:
    from spinerisk.schema.default import resolve_schema

    return resolve_schema(schema)


#: Scope of the osteoporotic vertebral fracture (OVF) endpoints: their source cohorts
#: studied thoracic and lumbar fractures, so a cervical record is refused, never given a
#: thoracolumbar OVF risk.
OVF_SCOPE = "level is missing or not (level in [" + ", ".join(f'"C{i}"' for i in range(1, 8)) + "])"
OVF_SCOPE_MESSAGE = (
    "a cervical fracture is outside the scope of the osteoporotic vertebral fracture "
    "endpoints (defined for thoracic and lumbar fractures)"
)

from spinerisk.schema.default import (  # noqa: E402 - the predictors of the built-ins
    MRI_MALIGNANCY_SIGNS,
    OVF_BASELINE_FIELDS,
)

_MRI_SIGNS = tuple(MRI_MALIGNANCY_SIGNS)

COLLAPSE = Endpoint(
    name="collapse",
    kind="binary",
    description="Progressive collapse: additional anterior height loss of 15 points or more "
    "at 6 months (Ha 2013; Cho 2023).",
    event="collapse_6m",
    time=None,
    horizons=(round(DAYS_PER_YEAR / 2, 2),),
    eligible_treatments=None,
    include_treatment=True,
    scope=OVF_SCOPE,
    scope_message=OVF_SCOPE_MESSAGE,
    predictor_fields=OVF_BASELINE_FIELDS,
)
NONUNION = Endpoint(
    name="nonunion",
    kind="binary",
    description="Nonunion (delayed union) at 6-12 months; defined for conservatively treated "
    "and fixed fractures, not after cement augmentation (Tsujio 2011; Inose 2020).",
    event="nonunion",
    time=None,
    horizons=(round(DAYS_PER_YEAR / 2, 2),),
    eligible_treatments=("conservative", "fixation"),
    include_treatment=True,
    scope=OVF_SCOPE,
    scope_message=OVF_SCOPE_MESSAGE,
    predictor_fields=OVF_BASELINE_FIELDS,
)
FUTURE_FRACTURE = Endpoint(
    name="future_fracture",
    kind="competing",
    description="First subsequent fragility fracture, with death as a competing risk; "
    "cumulative incidence at 1, 2 and 5 years.",
    event="fx_event",
    time="fx_time_days",
    horizons=(DAYS_PER_YEAR, 2 * DAYS_PER_YEAR, 5 * DAYS_PER_YEAR),
    eligible_treatments=None,
    include_treatment=True,
    scope=OVF_SCOPE,
    scope_message=OVF_SCOPE_MESSAGE,
    predictor_fields=OVF_BASELINE_FIELDS,
)

_CERVICAL_LEVELS = "[" + ", ".join(f'"C{i}"' for i in range(1, 8)) + "]"

ODONTOID_NONUNION = Endpoint(
    name="odontoid_nonunion",
    kind="binary",
    description="Unstable nonunion at 12 months after non-operative treatment of a type II "
    "dens (odontoid) fracture in adults aged 65 or more (Omara 2025; Smith 2013; Koivikko "
    "2004).",
    event="unstable_nonunion_12m",
    time=None,
    horizons=(DAYS_PER_YEAR,),
    eligibility='immobilisation in ["none", "soft_collar", "rigid_collar", "halo"]',
    predictor_fields=(
        "age_years",
        "sex",
        "current_smoking",
        "dens_displacement_mm",
        "dens_displacement_dir",
        "dens_angulation_deg",
        "fracture_gap_mm",
        "comminuted",
        "days_injury_to_immobilisation",
        "immobilisation",
    ),
    scope='level == "C2" and anderson_dalonzo == "II" and age_years >= 65',
    scope_message="the odontoid endpoint is defined for type II dens (C2) fractures in "
    "patients aged 65 or more",
)
CERVICAL_MORTALITY = Endpoint(
    name="cervical_mortality",
    kind="survival",
    description="Death after a cervical spine fracture in adults aged 65 or more, at 30 "
    "days, 90 days and one year (Chapman 2013; Godat 2018; Schoenfeld 2011).",
    event="death_event",
    time="time_to_death_d",
    horizons=(30.0, 90.0, DAYS_PER_YEAR),
    predictor_fields=(
        "age_years",
        "sex",
        "cci",
        "dementia",
        "anticoagulant",
        "ankylosing_disorder",
        "asia_ais_adm",
        "tbi",
        "immobilisation",
    ),
    scope=f"level in {_CERVICAL_LEVELS} and age_years >= 65",
    scope_message="the cervical mortality endpoint is defined for cervical fractures "
    "(C1-C7) in patients aged 65 or more",
)
MALIGNANT_FRACTURE = Endpoint(
    name="malignant_fracture",
    kind="binary",
    description="Malignant (pathological) rather than osteoporotic vertebral fracture, "
    "diagnosed at presentation (biopsy or 6-month follow-up; DOMAIN-CERVICAL B).",
    event="malignant",
    time=None,
    horizons=(),
    predictor_fields=(
        "age_years",
        "sex",
        "level",
        "cancer_history",
        "active_cancer",
        "weight_loss",
        "night_pain",
        "esr_mm_h",
        "alp_u_l",
        "m_protein",
        *_MRI_SIGNS,
        "adc_1e3_mm2_s",
        "cs_si_ratio",
    ),
    scope=f"level is missing or not (level in {_CERVICAL_LEVELS})",
    scope_message="the malignancy endpoint is defined for thoracic and lumbar fractures",
)

#: The built-in endpoints by name.
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        COLLAPSE,
        NONUNION,
        FUTURE_FRACTURE,
        ODONTOID_NONUNION,
        CERVICAL_MORTALITY,
        MALIGNANT_FRACTURE,
    )
}


class Labelled(NamedTuple):
    """Validated records with their eligible subset and its outcome
    (:meth:`Endpoint.labelled`)."""

    checked: pd.DataFrame
    mask: np.ndarray
    data: pd.DataFrame
    target: np.ndarray


def check_horizons(
    endpoint: Endpoint,
    fitted: Any,
    requested: Any,
    *,
    name: str = "horizons",
    action: str = "used at",
    last_event: float | None = None,
    in_days: bool = False,
) -> tuple[float, ...]:
    """Horizons to predict, explain or fit at, in days: the one horizon check.

    ``requested`` is in the endpoint's ``time_unit`` (the unit of its data: days for the
    built-in endpoints, weeks, months or years for an endpoint file that says so), as a
    user gives it; ``in_days=True`` is for callers that already hold days. None means
    ``fitted``. A binary endpoint has one horizon, at which its outcome is recorded: the
    request must be that horizon (equal within a relative 1e-9). Any other endpoint
    takes positive, finite times.

    Parameters
    ----------
    endpoint : Endpoint
    fitted : sequence of float
        The model's horizons in days (an endpoint's :attr:`Endpoint.model_horizons`
        before a fit).
    requested : sequence of float or None
        In the endpoint's unit (in days with ``in_days``).
    name : str, default="horizons"
        The argument's name in error messages.
    action : str, default="used at"
        What the caller does, for the binary endpoint's message ("fitted for",
        "predicted at", "explained at").
    last_event : float or None, default=None
        The training data's last event time (days): a later horizon is refused in the
        endpoint's unit (a fitted model does not extrapolate past its follow-up).
    in_days : bool, default=False
        Whether ``requested`` is in days already.

    Returns
    -------
    tuple of float
        Days.

    Raises
    ------
    ValueError
        Naming the value and what was expected.

    Examples
    --------
    >>> from spinerisk.endpoints import FUTURE_FRACTURE, NONUNION, check_horizons
    >>> check_horizons(FUTURE_FRACTURE, (365.0, 730.0), [365])
    (365.0,)
    >>> check_horizons(NONUNION, NONUNION.model_horizons, [90])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The nonunion endpoint is a binary outcome at ...; ... horizons=[90] ...
    """
    allowed = tuple(float(h) for h in fitted)
    if requested is None:
        return allowed
    given = list(requested)
    shown = given[0] if name == "horizon" and len(given) == 1 else given
    unit = "days" if in_days else endpoint.time_unit
    bad = [h for h in given if not _is_number(h) or not math.isfinite(h) or float(h) <= 0]
    if endpoint.kind != "binary" and (not given or bad):
        if name == "horizon":
            raise ValueError(f"horizon must be a positive number of {unit}; got horizon={shown!r}.")
        raise ValueError(
            f"{name} must be positive numbers of {unit}; got {name}={given!r}"
            + (f" ({bad[0]!r} is not)." if bad else " (empty).")
        )
    days = [
        h if not _is_number(h) else float(h) if in_days else endpoint.to_days(float(h))
        for h in given
    ]
    if endpoint.kind == "binary":
        same = len(days) == len(allowed) and all(
            _is_number(h) and math.isclose(h, a, rel_tol=1e-9)
            for h, a in zip(days, allowed, strict=False)
        )
        if not same:
            if allowed[0] == NO_HORIZON:
                when, expected = "recorded without a horizon (leave horizons out)", ""
            else:
                when = f"at {endpoint.horizon_label(allowed[0])}"
                expected = f" ({name}=[{endpoint.in_unit(allowed[0]):g}] in {unit}, or None)"
            raise ValueError(
                f"The {endpoint.name} endpoint is a binary outcome {when}; it cannot be "
                f"{action} {name}={shown!r}{expected}."
            )
        return allowed
    beyond = [h for h in days if last_event is not None and h > last_event]
    if beyond:
        assert last_event is not None
        last = endpoint.horizon_label(last_event)
        raise ValueError(
            f"{name} {', '.join(endpoint.horizon_label(h) for h in beyond)} lie(s) beyond the "
            f"last event in the training data ({last}): the model does not extrapolate past "
            f"its training follow-up. Use a horizon up to {last}, or refit on data with "
            "longer follow-up."
        )
    return tuple(days)


def same_horizons(a: Any, b: Any) -> bool:
    """Whether two sets of horizons (days) are the same, by :func:`check_horizons`' rule
    (same length, each equal within a relative 1e-9): two models, or a model and its
    training reference, predict at the same horizons."""
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        math.isclose(float(x), float(y), rel_tol=1e-9) for x, y in zip(a, b, strict=True)
    )


def check_within_follow_up(endpoint: Endpoint, horizons: Any, time: Any, event: Any) -> None:
    """Refuse horizons beyond the last observed event (days): no model can estimate risk
    there. ``time`` and ``event`` are the training outcome (event codes, 0 censored)."""
    time, event = np.asarray(time, dtype=float), np.asarray(event)
    max_time = float(np.max(time[event != 0]))
    too_far = [endpoint.horizon_label(h) for h in horizons if h > max_time]
    if too_far:
        raise ValueError(
            f"horizon(s) {', '.join(too_far)} lie beyond the last observed event "
            f"({endpoint.horizon_label(max_time)}); the model cannot estimate risk there."
        )


def check_horizon(
    endpoint: Endpoint,
    fitted: Any,
    requested: Any,
    *,
    action: str = "used at",
    last_event: float | None = None,
    in_days: bool = False,
) -> float:
    """One horizon by :func:`check_horizons` (given in the endpoint's unit, or in days
    with ``in_days``), in days; None means the first fitted one."""
    if requested is None:
        return float(tuple(fitted)[0])
    if not _is_number(requested):
        unit = "days" if in_days else endpoint.time_unit
        raise ValueError(f"horizon must be a positive number of {unit} or None; got {requested!r}.")
    return check_horizons(
        endpoint,
        fitted,
        [requested],
        name="horizon",
        action=action,
        last_event=last_event,
        in_days=in_days,
    )[0]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def get_endpoint(endpoint: Any) -> Endpoint:
    """Look up a built-in endpoint by name, or read an endpoint file (an
    :class:`Endpoint` is returned as is).

    Examples
    --------
    >>> from spinerisk.endpoints import get_endpoint
    >>> get_endpoint("future_fracture").horizons
    (365.25, 730.5, 1826.25)
    >>> get_endpoint("fusion")
    Traceback (most recent call last):
    ...
    ValueError: endpoint='fusion' is not a built-in endpoint; expected one of 'collapse', 'nonunion', 'future_fracture', 'odontoid_nonunion', 'cervical_mortality', 'malignant_fracture', an endpoint file (.toml, .yaml, .json) or an Endpoint.
    """  # noqa: E501
    if isinstance(endpoint, Endpoint):
        return endpoint
    if isinstance(endpoint, os.PathLike) or (
        isinstance(endpoint, str) and endpoint.lower().endswith((".toml", ".yaml", ".yml", ".json"))
    ):
        return load_endpoint(endpoint)
    if endpoint not in ENDPOINTS:
        names = ", ".join(repr(n) for n in ENDPOINTS)
        raise ValueError(
            f"endpoint={endpoint!r} is not a built-in endpoint; expected one of {names}, "
            "an endpoint file (.toml, .yaml, .json) or an Endpoint."
        )
    return ENDPOINTS[endpoint]


# -- endpoints as data ---------------------------------------------------------------------
_ENDPOINT_KEYS: dict[str, Any] = {
    "name": str,
    "kind": str,
    "description": str,
    "event": str,
    "time": str,
    "time_unit": str,
    "horizons": list,
    "eligibility": str,
    "eligible_treatments": list,
    "include_treatment": bool,
    "predictors": (list, str),
    "comparators": list,
    "event_codes": dict,
    "positive": (str, int, float, bool),
    "scope": str,
    "scope_message": str,
}


def endpoint_to_dict(endpoint: Endpoint) -> dict[str, Any]:
    """The plain-data form of an endpoint (horizons in its ``time_unit``).

    Examples
    --------
    >>> from spinerisk.endpoints import FUTURE_FRACTURE, endpoint_from_dict, endpoint_to_dict
    >>> endpoint_from_dict(endpoint_to_dict(FUTURE_FRACTURE)) == FUTURE_FRACTURE
    True
    """
    ep = endpoint
    out: dict[str, Any] = {"name": ep.name, "kind": ep.kind, "description": ep.description}
    out["event"] = ep.event
    if ep.time is not None:
        out["time"] = ep.time
    out["time_unit"] = ep.time_unit
    out["horizons"] = [ep.in_unit(h) for h in ep.horizons]
    if ep.eligibility is not None:
        out["eligibility"] = ep.eligibility
    if ep.eligible_treatments is not None:
        out["eligible_treatments"] = list(ep.eligible_treatments)
    out["include_treatment"] = ep.include_treatment
    out["predictors"] = "features" if ep.predictor_fields is None else list(ep.predictor_fields)
    if ep.comparators:
        out["comparators"] = list(ep.comparators)
    if ep.kind != "binary":
        out["event_codes"] = {"censored": ep.censor_code, "event": ep.event_of_interest}
    if ep.positive is not None:
        out["positive"] = ep.positive
    if ep.scope is not None:
        out["scope"] = ep.scope
        out["scope_message"] = ep.scope_message
    return out


def endpoint_problems(data: Any, text: str | None) -> tuple[Endpoint | None, list[Any]]:
    from spinerisk.schema._files import Collector, check_keys

    out = Collector(text)
    keys_ok = check_keys(data, _ENDPOINT_KEYS, "endpoint", out, ("name", "kind", "event"))
    # keys of a top-level table are reported without the "endpoint." prefix
    out.problems = [_top_level(p, out) for p in out.problems]
    if not isinstance(data, dict):
        return None, out.problems
    kind = data.get("kind")
    if "kind" in data and kind not in ("binary", "survival", "competing"):
        out.add("kind", f"{kind!r} is not one of binary, survival, competing")
    unit = data.get("time_unit", "days")
    if unit not in TIME_UNITS:
        out.add("time_unit", f"{unit!r} is not one of {', '.join(TIME_UNITS)}")
        unit = "days"
    horizons = data.get("horizons", [])
    if any(isinstance(h, bool) or not isinstance(h, int | float) for h in horizons):
        out.add("horizons", f"must be numbers (in {unit}); got {horizons!r}")
        horizons = []
    codes = data.get("event_codes") or {}
    unknown = set(codes) - {"censored", "event"}
    if unknown:
        out.add("event_codes", f"keys are `censored` and `event`; got {sorted(unknown)}")
    bad = [
        k for k in ("censored", "event")
        if k in codes and (isinstance(codes[k], bool) or not isinstance(codes[k], int))
    ]  # fmt: skip
    for key in bad:
        out.add(
            f"event_codes.{key}",
            f"must be a whole-number code of the event column; got {codes[key]!r}. A column "
            "coded as text (such as 'alive', 'cvd') is recoded to numbers by a mapping "
            "file's [values.<column>] table (see the mapping guide)",
        )
    predictors = data.get("predictors", "features")
    if isinstance(predictors, str) and predictors != "features":
        out.add("predictors", 'is a list of fields, or "features" for every feature field')
    if out.problems or not keys_ok:
        return None, out.problems
    factor = TIME_UNITS[unit]
    try:
        ep = Endpoint(
            name=data["name"],
            kind=cast(Literal["binary", "survival", "competing"], kind),
            description=data.get("description", ""),
            event=data["event"],
            time=data.get("time"),
            horizons=tuple(float(h) * factor for h in horizons),
            eligible_treatments=(
                None
                if data.get("eligible_treatments") is None
                else tuple(data["eligible_treatments"])
            ),
            include_treatment=data.get("include_treatment", False),
            event_of_interest=int(codes.get("event", 1)),
            time_unit=unit,
            eligibility=data.get("eligibility"),
            predictor_fields=None if isinstance(predictors, str) else tuple(predictors),
            comparators=tuple(data.get("comparators") or ()),
            censor_code=int(codes.get("censored", 0)),
            positive=data.get("positive"),
            scope=data.get("scope"),
            scope_message=data.get("scope_message", ""),
        )
    except ValueError as exc:
        from spinerisk.schema._expr import ExpressionError, parse

        key = "endpoint"
        for name in ("eligibility", "scope"):
            if isinstance(data.get(name), str):
                try:
                    parse(data[name])
                except ExpressionError:
                    key = name
                    break
        out.add(key, str(exc).split(": ", 1)[-1].rstrip("."))
        return None, out.problems
    return ep, []


def _top_level(problem: Any, out: Any) -> Any:
    from spinerisk.schema._files import FileProblem

    key = problem.key.removeprefix("endpoint.").removeprefix("endpoint") or "(file)"
    return FileProblem(key, problem.message, out.locate.line(key))


def endpoint_from_dict(
    data: Any, *, source: str = "the endpoint", schema: Schema | None = None
) -> Endpoint:
    """Build an :class:`Endpoint` from its plain-data form (horizons in ``time_unit``).

    Parameters
    ----------
    data : dict
        See :func:`endpoint_to_dict` and the "Bring your own data" guide.
    source : str
        Name shown in errors.
    schema : Schema or None
        When given, the endpoint's columns, predictors and eligibility are checked
        against it.

    Raises
    ------
    SchemaFileError
        Listing every problem with its key.
    """
    from spinerisk.schema._files import FileProblem, SchemaFileError

    ep, problems = endpoint_problems(data, None)
    if ep is None:
        raise SchemaFileError(source, problems)
    if schema is not None:
        try:
            ep.check_schema(schema)
        except ValueError as exc:
            raise SchemaFileError(source, [FileProblem("endpoint", str(exc))]) from None
    return ep


def load_endpoint(path: Any, schema: Schema | None = None) -> Endpoint:
    """Read an endpoint from a TOML, YAML or JSON file (see :func:`endpoint_from_dict`).

    Examples
    --------
    A file for a one-year binary outcome, with an existing score as comparator::

        name = "fracture_1y"
        kind = "binary"
        event = "fracture"
        time_unit = "years"
        horizons = [1]
        comparators = ["fracscore"]
    """
    from spinerisk.schema._files import FileProblem, SchemaFileError, read_declaration

    data, text = read_declaration(path)
    ep, problems = endpoint_problems(data, text if str(path).endswith(".toml") else None)
    if ep is None:
        raise SchemaFileError(str(path), problems)
    if schema is not None:
        try:
            ep.check_schema(schema)
        except ValueError as exc:
            raise SchemaFileError(str(path), [FileProblem("endpoint", str(exc))]) from None
    return ep
