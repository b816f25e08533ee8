"""Comparators: existing scores and published calculators shown beside a model.

A comparator gives each record a number: a column of the cohort (a schema field with role
``comparator``, such as GLOW's ``fracscore``), a published calculator computed from schema
fields (the Garvan nomogram), or values computed elsewhere and joined by record id (FRAX
probabilities from the FRAX tool). A comparator is a **probability** only when it says so
(``scale="probability"``, or a schema unit of ``probability``); anything else is a score,
compared on discrimination and, after a stated recalibration on the evaluation records,
on net benefit. A score is never read as a risk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from spinerisk._units import DAYS_PER_YEAR

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = [
    "CALCULATORS",
    "FRAX_INPUTS",
    "GARVAN_REFERENCE",
    "PROBABILITY_UNITS",
    "Comparator",
    "frax_inputs",
    "garvan_points",
    "resolve_comparators",
]

#: Schema units that mark a comparator column as a probability (a risk in [0, 1]).
PROBABILITY_UNITS: frozenset[str] = frozenset({"probability", "risk", "proportion"})

GARVAN_REFERENCE = (
    "Nguyen ND, Frost SA, Center JR, Eisman JA, Nguyen TV. Development of prognostic "
    "nomograms for individualizing 5-year and 10-year fracture risks. Osteoporos Int "
    "2008;19:1431-44 (women, model I: age, femoral-neck BMD T-score, prior fractures, "
    "falls). Point scales as transcribed from the published nomogram by "
    "medicalalgorithms.com ('2008 nomograms of Nguyen et al for osteoporosis: model 1 "
    "for females')."
)


@dataclass(frozen=True, eq=False)
class Comparator:
    """An existing score or published calculator to evaluate beside the model.

    Build one with :meth:`from_column`, :meth:`from_values` or take a shipped calculator
    from :data:`CALCULATORS` (``"garvan"``); :func:`spinerisk.evaluate` also accepts
    their names.

    Parameters
    ----------
    name : str
        Label in the report.
    scale : {"score", "probability"}, default="score"
        ``"probability"``: values are risks in [0, 1] of the endpoint's outcome (by
        ``horizon``), evaluated as they are with every metric the model gets.
        ``"score"``: any number where higher means higher risk; compared on
        discrimination and, after logistic recalibration on the evaluation records
        (stated in the report), on net benefit; its calibration is not assessed.
    horizon : float or None, default=None
        Days the probability refers to (FRAX: 10 years). At other horizons of a
        time-to-event endpoint the probability is recalibrated like a score. None: the
        endpoint's own horizon.
    column : str or None, default=None
        Column of the cohort holding the values.
    calculator : callable or None, default=None
        ``calculator(records) -> Series`` of values (NaN where it is not defined).
    values : Series or None, default=None
        Values indexed by record id (the schema's id field), for scores computed outside
        spinerisk; records without one are left out of the comparison.
    inputs : tuple of str, default=()
        Schema fields a calculator reads.
    description : str, default=""
    reference : str, default=""
        Publication of the equation.

    Examples
    --------
    >>> from spinerisk.evaluation import Comparator
    >>> Comparator.from_column("fracscore").scale
    'score'
    >>> Comparator("x", scale="odds")
    Traceback (most recent call last):
    ...
    ValueError: Comparator 'x': scale must be 'score' or 'probability'; got scale='odds'.
    """

    name: str
    scale: Literal["score", "probability"] = "score"
    horizon: float | None = None
    column: str | None = None
    calculator: Callable[[pd.DataFrame], pd.Series] | None = None
    values: pd.Series | None = None
    inputs: tuple[str, ...] = ()
    description: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if self.scale not in ("score", "probability"):
            raise ValueError(
                f"Comparator {self.name!r}: scale must be 'score' or 'probability'; "
                f"got scale={self.scale!r}."
            )
        sources = [s is not None for s in (self.column, self.calculator, self.values)]
        if sum(sources) > 1:
            raise ValueError(f"Comparator {self.name!r}: give one of column, calculator or values.")
        if self.horizon is not None and not (np.isfinite(self.horizon) and self.horizon > 0):
            raise ValueError(
                f"Comparator {self.name!r}: horizon must be positive days; got {self.horizon!r}."
            )

    @classmethod
    def from_column(
        cls,
        column: str,
        *,
        scale: Literal["score", "probability"] | None = None,
        horizon: float | None = None,
        schema: Any = None,
        description: str = "",
    ) -> Comparator:
        """A comparator read from a column of the cohort.

        Parameters
        ----------
        column : str
        scale : {"score", "probability"} or None, default=None
            None: ``"probability"`` when the schema field's unit is one of
            :data:`PROBABILITY_UNITS`, else ``"score"``.
        horizon : float or None, default=None
        schema : Schema or None, default=None
            Where the field's unit and description are read.
        description : str, default=""

        Returns
        -------
        Comparator
        """
        spec = schema[column] if schema is not None and column in schema else None
        if scale is None:
            unit = (spec.unit if spec is not None else "").strip().lower()
            scale = "probability" if unit in PROBABILITY_UNITS else "score"
        if not description and spec is not None:
            description = spec.description + (f" ({spec.unit})" if spec.unit else "")
        return cls(column, scale, horizon, column=column, description=description)

    @classmethod
    def from_values(
        cls,
        name: str,
        values: pd.Series,
        *,
        scale: Literal["score", "probability"] = "score",
        horizon: float | None = None,
        description: str = "",
        reference: str = "",
    ) -> Comparator:
        """A comparator computed elsewhere (FRAX, another hospital's score), joined to the
        records by record id.

        Parameters
        ----------
        name : str
        values : Series
            Indexed by record id.
        scale : {"score", "probability"}, default="score"
        horizon : float or None, default=None
            Days the probability refers to (FRAX: ``10 * 365.25``).
        description, reference : str, default=""

        Returns
        -------
        Comparator
        """
        if not isinstance(values, pd.Series):
            raise TypeError(
                f"Comparator {name!r}: values must be a pandas Series indexed by record id; "
                f"got {type(values).__name__}."
            )
        return cls(
            name,
            scale,
            horizon,
            values=values,
            description=description,
            reference=reference,
        )

    @property
    def source(self) -> str:
        """``"column"``, ``"calculator"`` or ``"values"``."""
        if self.calculator is not None:
            return "calculator"
        return "values" if self.values is not None else "column"

    def compute(self, records: pd.DataFrame, id_field: str) -> np.ndarray:
        """The comparator's value for each record (NaN where it has none).

        A column the records do not have gives no values (an absent optional field is
        missing data); the report then notes that the comparator could not be compared.

        Raises
        ------
        ValueError
            When a calculator's input field is absent, a value is not numeric, or a
            probability lies outside [0, 1].
        """
        if self.calculator is not None:
            missing = [f for f in self.inputs if f not in records.columns]
            if missing:
                raise ValueError(
                    f"Comparator {self.name!r} needs the field(s) {missing}, which the "
                    "cohort does not have."
                )
            raw: Any = self.calculator(records)
        elif self.values is not None:
            ids = records[id_field].astype(str)
            lookup = pd.Series(self.values.to_numpy(), index=self.values.index.astype(str))
            if lookup.index.has_duplicates:
                raise ValueError(f"Comparator {self.name!r}: values has duplicated record ids.")
            raw = lookup.reindex(ids.to_numpy())
        else:
            column = self.column or self.name
            if column not in records.columns:
                # an absent optional column is missing data, as everywhere in spinerisk
                return np.full(len(records), np.nan)
            raw = records[column]
        try:
            values = pd.to_numeric(pd.Series(raw).astype(object), errors="raise")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Comparator {self.name!r} has values that are not numbers.") from exc
        arr = np.asarray(values.astype(float), dtype=float)
        if len(arr) != len(records):
            raise ValueError(
                f"Comparator {self.name!r} gave {len(arr)} values for {len(records)} records."
            )
        arr[~np.isfinite(arr)] = np.nan
        if self.scale == "probability":
            bad = (arr < 0) | (arr > 1)
            if bad.any():
                raise ValueError(
                    f"Comparator {self.name!r} is declared a probability but "
                    f"{int(bad.sum())} values lie outside [0, 1] (first {float(arr[bad][0])!r}); "
                    "declare it scale='score' (or convert percentages to proportions)."
                )
        return arr


# -- the Garvan nomogram ---------------------------------------------------------------------
def garvan_points(records: pd.DataFrame, *, tscore: str = "tscore_fn") -> pd.Series:
    """Garvan fracture-risk nomogram points (women, model I: with femoral-neck BMD).

    The published nomogram (Nguyen et al. 2008) adds points for age (``0.8 * age - 44``,
    ages 55 to 100), femoral-neck BMD T-score (``40 - 10 * T``, T from -6 to +4), prior
    fractures after 50 (14 each, at most 3) and falls in the past 12 months (5 each, at
    most 3); more points, higher 5- and 10-year risk of any fragility fracture.

    The published Cox coefficients and baseline risk could not be obtained for this
    project, and the men's and the weight-based (model II) scales were not available, so
    spinerisk ships the women's BMD points only, as a **score** (not a probability). A
    record gets NaN when it is not a woman, an input is missing, or age or T-score lies
    outside the nomogram's range.

    Parameters
    ----------
    records : DataFrame
        With ``age_years``, ``sex``, ``tscore_fn``, ``prior_fx_count`` and
        ``falls_12m_count`` (spine schema fields).
    tscore : str, default="tscore_fn"
        Column of the T-score. The nomogram was built on the femoral-neck T-score;
        ``"tscore_min"`` (the lowest of spine, femoral neck and total hip) is a stated
        substitute when that is all a cohort records (never lower points than the
        femoral-neck value would give).

    Returns
    -------
    Series of float
        Total points (0 to 193), indexed like ``records``.

    References
    ----------
    Nguyen ND, Frost SA, Center JR, Eisman JA, Nguyen TV. Development of prognostic
    nomograms for individualizing 5-year and 10-year fracture risks. Osteoporos Int
    2008;19:1431-44. Point scales transcribed from the published nomogram by
    medicalalgorithms.com.

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.evaluation import garvan_points
    >>> women = pd.DataFrame({"age_years": [70, 85], "sex": ["F", "M"],
    ...                       "tscore_fn": [-2.5, -1.0], "prior_fx_count": [1, 4],
    ...                       "falls_12m_count": [0, 2]})
    >>> garvan_points(women).tolist()  # 12 + 65 + 14 + 0; the man gets none
    [91.0, nan]
    """
    age = pd.to_numeric(records["age_years"], errors="coerce").astype(float)
    t_values = pd.to_numeric(records[tscore], errors="coerce").astype(float)
    fractures = pd.to_numeric(records["prior_fx_count"], errors="coerce").astype(float)
    falls = pd.to_numeric(records["falls_12m_count"], errors="coerce").astype(float)
    woman = records["sex"].astype(object).eq("F").fillna(False).astype(bool)
    points = (
        (0.8 * age - 44.0)
        + (40.0 - 10.0 * t_values)
        + np.minimum(fractures, 3.0) * 14.0
        + np.minimum(falls, 3.0) * 5.0
    )
    defined = woman & age.between(55, 100) & t_values.between(-6, 4) & fractures.ge(0)
    defined &= falls.ge(0)
    return points.where(defined).astype(float)


GARVAN = Comparator(
    "garvan",
    "score",
    horizon=5 * DAYS_PER_YEAR,
    calculator=garvan_points,
    inputs=("age_years", "sex", "tscore_fn", "prior_fx_count", "falls_12m_count"),
    description=(
        "Garvan fracture-risk nomogram points (women; age, femoral-neck T-score, prior "
        "fractures, falls); a score, 5- and 10-year risk of any fragility fracture"
    ),
    reference=GARVAN_REFERENCE,
)

GARVAN_TSCORE_MIN = Comparator(
    "garvan_tscore_min",
    "score",
    horizon=5 * DAYS_PER_YEAR,
    calculator=partial(garvan_points, tscore="tscore_min"),
    inputs=("age_years", "sex", "tscore_min", "prior_fx_count", "falls_12m_count"),
    description=(
        "Garvan nomogram points with the lowest T-score (spine, femoral neck or hip) in "
        "place of the femoral-neck T-score: a deviation from the published inputs, for "
        "cohorts without a femoral-neck value"
    ),
    reference=GARVAN_REFERENCE,
)

#: Published calculators shipped with spinerisk, by the name ``evaluate`` accepts.
CALCULATORS: dict[str, Comparator] = {"garvan": GARVAN, "garvan_tscore_min": GARVAN_TSCORE_MIN}


# -- FRAX: inputs only -------------------------------------------------------------------------
#: FRAX questionnaire items and the spine schema field(s) each comes from. FRAX itself
#: is closed (its equations are not published); export these with :func:`frax_inputs`,
#: run the FRAX tool, and bring its probabilities back with :meth:`Comparator.from_values`.
FRAX_INPUTS: dict[str, str] = {
    "age": "age_years (FRAX accepts 40 to 90 years)",
    "sex": "sex",
    "weight_kg": "weight_kg",
    "height_cm": "height_cm",
    "previous_fracture": "prior_fragility_fx",
    "parent_fractured_hip": "parental_hip_fx",
    "current_smoking": "current_smoking",
    "glucocorticoids": "glucocorticoid_current and glucocorticoid_dose_mg >= 5 (FRAX asks "
    "for 3 months or more at 5 mg/day or more; the spine schema records current use)",
    "rheumatoid_arthritis": "rheumatoid_arthritis",
    "secondary_osteoporosis": "secondary_osteoporosis",
    "alcohol_3_or_more_units": "alcohol_units_day >= 3",
    "femoral_neck_tscore": "tscore_fn",
}


_FRAX_FIELDS = (
    "weight_kg",
    "height_cm",
    "prior_fragility_fx",
    "parental_hip_fx",
    "current_smoking",
    "glucocorticoid_current",
    "glucocorticoid_dose_mg",
    "rheumatoid_arthritis",
    "secondary_osteoporosis",
    "alcohol_units_day",
    "tscore_fn",
)


def frax_inputs(records: pd.DataFrame, *, id_field: str = "patient_id") -> pd.DataFrame:
    """The FRAX questionnaire items of each record, from spine schema fields.

    FRAX is closed, so spinerisk does not compute it; this table is what the FRAX tool
    (or its batch version) needs. Missing values, and fields the cohort does not record,
    stay missing: FRAX treats an unanswered item as "no", which the user should decide,
    not this function.

    Parameters
    ----------
    records : DataFrame
        Validated spine records.
    id_field : str, default="patient_id"

    Returns
    -------
    DataFrame
        Indexed by record id, one column per key of :data:`FRAX_INPUTS`.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import frax_inputs
    >>> table = frax_inputs(sr.validate(sr.make_spine_cohort(20, seed=0)))
    >>> list(table.columns)[:4]
    ['age', 'sex', 'weight_kg', 'height_cm']
    >>> int(table["femoral_neck_tscore"].notna().sum())  # the generator records no FN T-score
    0
    """
    missing = [f for f in ("age_years", "sex", id_field) if f not in records.columns]
    if missing:
        raise ValueError(f"frax_inputs needs the spine schema field(s) {missing}.")
    # an absent optional field is missing data (as everywhere in spinerisk)
    optional = [f for f in _FRAX_FIELDS if f not in records.columns]
    records = records.assign(**dict.fromkeys(optional, pd.NA))
    dose = pd.to_numeric(records["glucocorticoid_dose_mg"], errors="coerce")
    gc = records["glucocorticoid_current"].astype("boolean") & dose.ge(5).astype("boolean")
    alcohol = pd.to_numeric(records["alcohol_units_day"], errors="coerce")
    table = pd.DataFrame(
        {
            "age": records["age_years"],
            "sex": records["sex"],
            "weight_kg": records["weight_kg"],
            "height_cm": records["height_cm"],
            "previous_fracture": records["prior_fragility_fx"],
            "parent_fractured_hip": records["parental_hip_fx"],
            "current_smoking": records["current_smoking"],
            "glucocorticoids": gc,
            "rheumatoid_arthritis": records["rheumatoid_arthritis"],
            "secondary_osteoporosis": records["secondary_osteoporosis"],
            "alcohol_3_or_more_units": alcohol.ge(3).astype("boolean").mask(alcohol.isna()),
            "femoral_neck_tscore": records["tscore_fn"],
        }
    )
    table.index = pd.Index(records[id_field].astype(str), name=id_field)
    return table


# -- resolution ------------------------------------------------------------------------------
def resolve_comparators(
    comparators: Sequence[str | Comparator] | str | Comparator | None, model: RiskModel
) -> list[Comparator]:
    """The comparators to evaluate: None means the endpoint's declared ones.

    A name is a column of the cohort when the schema has that field (or the endpoint
    declares it), else a shipped calculator (:data:`CALCULATORS`).
    """
    if comparators is None:
        comparators = tuple(model.endpoint_.comparators)
    if isinstance(comparators, str | Comparator):
        comparators = (comparators,)
    out: list[Comparator] = []
    schema = model.schema_
    for item in comparators:
        if isinstance(item, Comparator):
            out.append(item)
        elif isinstance(item, str):
            if item in schema or item in model.endpoint_.comparators:
                if item in schema and schema[item].role in ("outcome", "outcome_event"):
                    raise ValueError(f"Comparator {item!r} is an outcome field, not a score.")
                out.append(Comparator.from_column(item, schema=schema))
            elif item in CALCULATORS:
                out.append(CALCULATORS[item])
            else:
                raise ValueError(
                    f"comparator {item!r} is neither a field of schema {schema.name!r} nor a "
                    f"shipped calculator ({', '.join(sorted(CALCULATORS))}); pass a "
                    "spinerisk.evaluation.Comparator for values computed elsewhere."
                )
        else:
            raise TypeError(
                "comparators must be names or spinerisk.evaluation.Comparator objects; got "
                f"{type(item).__name__}."
            )
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"comparator names must be unique; got {names}.")
    return out
