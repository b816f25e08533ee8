"""Table 1: baseline characteristics of a cohort, overall and by outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from spinerisk.schema import SPINE_SCHEMA, Schema, resolve_schema

__all__ = ["DEFAULT_TABLE_ONE_FIELDS", "table_one"]

#: Baseline fields shown by default (those in the cohort are used).
DEFAULT_TABLE_ONE_FIELDS: tuple[str, ...] = (
    "age_years",
    "sex",
    "bmi",
    "tscore_min",
    "hu_l1",
    "prior_fragility_fx",
    "current_smoking",
    "glucocorticoid_current",
    "diabetes_type",
    "egfr",
    "dementia",
    "level",
    "posterior_wall_injury",
    "intravertebral_cleft0",
    "height_loss0_pct",
    "kyphotic_angle0",
    "t2_pattern",
    "treatment",
)

_EVENT_LABELS = {0: "censored", 1: "fracture", 2: "death"}


def _group_labels(values: pd.Series, field: str) -> pd.Series:
    if field == "fx_event":
        return values.map(lambda v: _EVENT_LABELS.get(v) if pd.notna(v) else None)
    if values.dtype == "boolean" or values.dtype == bool:
        return values.map(lambda v: None if pd.isna(v) else f"{field}={'yes' if v else 'no'}")
    return values.astype(object).map(lambda v: None if pd.isna(v) else f"{field}={v}")


def table_one(
    cohort: pd.DataFrame,
    by: str | None = None,
    *,
    fields: Sequence[str] | None = None,
    schema: Schema | None = None,
    max_levels: int = 8,
) -> pd.DataFrame:
    """Baseline characteristics, overall and by the levels of an outcome.

    Numbers are shown as mean (SD) and median [IQR]; booleans and categories as
    n (%) of non-missing values; every field also gets its missing count.

    Parameters
    ----------
    cohort : DataFrame
        Validated records.
    by : str or None, default=None
        Column to stratify by (``"nonunion"``, ``"collapse_6m"``, ``"fx_event"``);
        records with a missing value of it are left out of the strata but counted
        in ``overall``.
    fields : sequence of str or None, default=None
        Rows to show; None means, for the spine schema, :data:`DEFAULT_TABLE_ONE_FIELDS`
        present in the cohort, and for any other schema its baseline fields (roles
        ``feature`` and ``treatment``) present in the cohort.
    schema : Schema or None, default=None
        The records' schema (units, default rows); None means
        :data:`spinerisk.schema.SPINE_SCHEMA`.
    max_levels : int, default=8
        Categories beyond the most frequent ``max_levels`` are pooled as "other".

    Returns
    -------
    DataFrame
        Index: rows such as ``"age_years (years), mean (SD)"``; columns: ``overall``
        then one per stratum, each headed with its n.

    Examples
    --------
    >>> import spinerisk as sr
    >>> cohort = sr.validate(sr.make_spine_cohort(400, seed=0))
    >>> t = sr.table_one(cohort, by="nonunion", fields=["age_years", "sex"])
    >>> list(t.columns)[0].startswith("overall (n=400)")
    True
    >>> t.index[0]
    'age_years (years), mean (SD)'
    """
    schema = resolve_schema(schema)
    if by is not None and by not in cohort.columns:
        raise ValueError(f"by={by!r} is not a column of the cohort.")
    if fields is None and schema == SPINE_SCHEMA:
        fields = [f for f in DEFAULT_TABLE_ONE_FIELDS if f in cohort.columns]
    elif fields is None:
        baseline = schema.by_role("feature", "treatment")
        fields = [f.name for f in baseline if f.name in cohort.columns and f.name != by]
    absent = [f for f in fields if f not in cohort.columns]
    if absent:
        raise ValueError(f"fields {absent} are not columns of the cohort.")

    groups: list[tuple[str, pd.DataFrame]] = [(f"overall (n={len(cohort)})", cohort)]
    if by is not None:
        labels = _group_labels(cohort[by], by)
        for label in sorted(labels.dropna().unique(), key=str):
            part = cohort[labels == label]
            groups.append((f"{label} (n={len(part)})", part))

    rows: dict[str, list[str]] = {}
    for name in fields:
        spec = schema[name] if name in schema else None
        unit = f" ({spec.unit})" if spec is not None and spec.unit else ""
        col = cohort[name]
        is_num = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(
            col.dtype
        )
        if is_num and not (spec is not None and spec.categories is not None):
            rows[f"{name}{unit}, mean (SD)"] = [_mean_sd(g[name]) for _, g in groups]
            rows[f"{name}{unit}, median [IQR]"] = [_median_iqr(g[name]) for _, g in groups]
        elif pd.api.types.is_bool_dtype(col.dtype):
            rows[f"{name}, n (%)"] = [_count_pct(g[name], lambda x: x == True) for _, g in groups]  # noqa: E712
        else:
            counts = col.astype(object).value_counts()
            top = list(counts.index[:max_levels])
            for level in top:
                rows[f"{name}={level}, n (%)"] = [
                    _count_pct(g[name], _equal_to(level)) for _, g in groups
                ]
            if len(counts) > max_levels:
                rows[f"{name}=other, n (%)"] = [
                    _count_pct(g[name], _not_in(top)) for _, g in groups
                ]
        rows[f"{name}, missing n (%)"] = [_missing(g[name]) for _, g in groups]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[label for label, _ in groups])


def _mean_sd(s: pd.Series) -> str:
    x = pd.to_numeric(s, errors="coerce").dropna()
    return "-" if x.empty else f"{x.mean():.1f} ({x.std(ddof=1) if len(x) > 1 else 0.0:.1f})"


def _median_iqr(s: pd.Series) -> str:
    x = pd.to_numeric(s, errors="coerce").dropna()
    if x.empty:
        return "-"
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return f"{q2:.1f} [{q1:.1f}, {q3:.1f}]"


def _equal_to(level: object) -> Callable[[pd.Series], pd.Series]:
    """Matcher of the values equal to ``level``."""
    return lambda x: x == level


def _not_in(levels: list[object]) -> Callable[[pd.Series], pd.Series]:
    """Matcher of the values not among ``levels``."""
    return lambda x: ~x.isin(levels)


def _count_pct(s: pd.Series, match: Callable[[pd.Series], pd.Series]) -> str:
    """n (%) of non-missing values for which ``match`` is true."""
    x = s.dropna().astype(object)
    if x.empty:
        return "-"
    k = int(np.asarray(match(x), dtype=bool).sum())
    return f"{k} ({100.0 * k / len(x):.1f}%)"


def _missing(s: pd.Series) -> str:
    k = int(s.isna().sum())
    return f"{k} ({100.0 * k / len(s):.1f}%)" if len(s) else "-"
