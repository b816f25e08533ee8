"""The three outcomes as declarative endpoint specs.

An :class:`Endpoint` says what is predicted (kind, outcome columns, horizons in days),
for whom (eligibility) and from what (baseline predictors only). Models read these specs;
nothing else decides which column is the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from spinerisk.schema._spec import FOLLOW_UP_ROLES, Schema
from spinerisk.targets import make_competing_target, make_survival_target

__all__ = ["COLLAPSE", "ENDPOINTS", "FUTURE_FRACTURE", "NONUNION", "Endpoint", "get_endpoint"]

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Endpoint:
    """Specification of one prognostic outcome.

    Parameters
    ----------
    name : str
        Identifier (``"nonunion"``).
    kind : {"binary", "survival", "competing"}
        Binary outcome at a fixed horizon, time to event, or time to the first of
        competing events (event codes 0 censored, 1 event of interest, 2 competing).
    description : str
        Clinical definition, horizon included.
    event : str
        Outcome column: the binary flag, the event indicator or the event code.
    time : str or None
        Column with days from the index fracture to the event or censoring
        (``None`` for binary endpoints).
    horizons : tuple of float
        Default prediction horizons in days.
    eligible_treatments : tuple of str or None
        Treatments for which the outcome is defined (None: all patients).
    include_treatment : bool
        Whether treatment fields are predictors. Treatment is confounded by indication;
        its attributions are not causal.
    event_of_interest : int, default=1
        Event code of interest for competing risks.

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
    eligible_treatments: tuple[str, ...] | None
    include_treatment: bool
    event_of_interest: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "survival", "competing"):
            raise ValueError(
                f"Endpoint {self.name!r}: kind must be 'binary', 'survival' or 'competing'; "
                f"got kind={self.kind!r}."
            )
        if self.kind != "binary" and self.time is None:
            raise ValueError(f"Endpoint {self.name!r}: a {self.kind} endpoint needs `time`.")
        if not self.horizons or any(h <= 0 for h in self.horizons):
            raise ValueError(f"Endpoint {self.name!r}: horizons must be positive days.")

    @property
    def outcome_columns(self) -> tuple[str, ...]:
        """Columns that hold the outcome."""
        return (self.event,) if self.time is None else (self.event, self.time)

    def predictors(self, schema: Schema | None = None) -> list[str]:
        """Baseline fields that may be used as predictors (never an outcome field).

        Parameters
        ----------
        schema : Schema or None, default=None
            None means :data:`spinerisk.schema.SPINE_SCHEMA`.

        Returns
        -------
        list of str
        """
        schema = _schema(schema)
        roles = ("feature", "treatment") if self.include_treatment else ("feature",)
        names = [f.name for f in schema.by_role(*roles)]
        leaked = [n for n in names if schema[n].role in FOLLOW_UP_ROLES]
        if leaked:  # pragma: no cover - by_role guarantees this; kept as a hard guard
            raise RuntimeError(f"Follow-up fields {leaked} would enter the predictors.")
        return names

    def eligible(self, cohort: pd.DataFrame) -> pd.Series:
        """Records for which the outcome is defined and observed.

        Parameters
        ----------
        cohort : DataFrame
            Validated records.

        Returns
        -------
        Series of bool
            Aligned with ``cohort``.
        """
        missing = [c for c in self.outcome_columns if c not in cohort.columns]
        if missing:
            raise ValueError(
                f"Endpoint {self.name!r} needs outcome column(s) {missing}, which the cohort lacks."
            )
        mask = pd.Series(True, index=cohort.index)
        for col in self.outcome_columns:
            mask &= cohort[col].notna()
        if self.eligible_treatments is not None:
            if "treatment" not in cohort.columns:
                raise ValueError(
                    f"Endpoint {self.name!r} is defined for treatment in "
                    f"{list(self.eligible_treatments)}; the cohort has no 'treatment' column."
                )
            mask &= cohort["treatment"].astype(object).isin(self.eligible_treatments)
        return mask.astype(bool)

    def target(self, cohort: pd.DataFrame) -> np.ndarray:
        """Outcome ``y`` in the project's convention (see :mod:`spinerisk.targets`).

        Parameters
        ----------
        cohort : DataFrame
            Eligible records (see :meth:`eligible`); a missing outcome is an error.

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
            return cohort[self.event].astype(bool).to_numpy()
        time = cohort[self.time].astype(float).to_numpy()
        if self.kind == "survival":
            return make_survival_target(cohort[self.event].astype(bool).to_numpy(), time)
        return make_competing_target(cohort[self.event].astype(int).to_numpy(), time)


def _schema(schema: Schema | None) -> Schema:
    if schema is None:
        from spinerisk.schema.default import SPINE_SCHEMA

        return SPINE_SCHEMA
    return schema


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
)

#: The built-in endpoints by name.
ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (COLLAPSE, NONUNION, FUTURE_FRACTURE)}


def get_endpoint(endpoint: str | Endpoint) -> Endpoint:
    """Look up a built-in endpoint by name (an :class:`Endpoint` is returned as is).

    Examples
    --------
    >>> from spinerisk.endpoints import get_endpoint
    >>> get_endpoint("future_fracture").horizons
    (365.25, 730.5, 1826.25)
    >>> get_endpoint("fusion")
    Traceback (most recent call last):
    ...
    ValueError: endpoint='fusion' is not a built-in endpoint; expected one of 'collapse', 'nonunion', 'future_fracture', or an Endpoint.
    """  # noqa: E501
    if isinstance(endpoint, Endpoint):
        return endpoint
    if endpoint not in ENDPOINTS:
        names = ", ".join(repr(n) for n in ENDPOINTS)
        raise ValueError(
            f"endpoint={endpoint!r} is not a built-in endpoint; expected one of {names}, "
            "or an Endpoint."
        )
    return ENDPOINTS[endpoint]
