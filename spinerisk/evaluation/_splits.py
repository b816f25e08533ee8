"""Development/validation splits for temporal and external (centre) validation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["centre_split", "temporal_split"]


def _copy_attrs(part: pd.DataFrame, cohort: pd.DataFrame, role: str) -> pd.DataFrame:
    part = part.copy()
    part.attrs = dict(cohort.attrs)
    part.attrs["split"] = role
    return part


def temporal_split(
    cohort: pd.DataFrame, *, cutoff: Any, date_field: str = "index_date"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a cohort in time: develop on earlier records, validate on later ones.

    Parameters
    ----------
    cohort : DataFrame
        Records with a date column.
    cutoff : str, date or Timestamp
        Records with ``date_field`` strictly before the cutoff go to development, the
        others to validation.
    date_field : str, default="index_date"
        Column holding the date of the index fracture.

    Returns
    -------
    development, validation : DataFrame
        Copies keeping ``cohort.attrs`` (so a synthetic cohort stays labelled synthetic),
        with ``attrs["split"]`` set to ``"development"`` or ``"validation"``.

    Raises
    ------
    ValueError
        If the column is missing, has missing or unparsable dates (named by row), or if
        either side of the cutoff is empty.

    See Also
    --------
    centre_split, evaluate

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import temporal_split
    >>> cohort = sr.make_spine_cohort(500, seed=0)
    >>> dev, val = temporal_split(cohort, cutoff="2020-01-01")
    >>> len(dev) + len(val) == len(cohort), bool((dev["index_date"] < "2020-01-01").all())
    (True, True)
    >>> temporal_split(cohort, cutoff="1990-01-01")
    Traceback (most recent call last):
    ...
    ValueError: temporal_split: no records have index_date before cutoff 1990-01-01; the development set would be empty. Choose a later cutoff.
    """  # noqa: E501
    if date_field not in cohort.columns:
        raise ValueError(f"temporal_split: the cohort has no column {date_field!r}.")
    try:
        when = pd.Timestamp(cutoff)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"temporal_split: cutoff={cutoff!r} is not a date; expected e.g. '2020-01-01'."
        ) from exc
    dates = pd.to_datetime(cohort[date_field], errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise ValueError(
            f"temporal_split: {int(bad.sum())} record(s) have a missing or unparsable "
            f"{date_field}; first at row {i} ({date_field}={cohort[date_field].iloc[i]!r}); "
            "expected a date for every record."
        )
    early = (dates < when).to_numpy()
    shown = when.date().isoformat()
    if not early.any():
        raise ValueError(
            f"temporal_split: no records have {date_field} before cutoff {shown}; the "
            "development set would be empty. Choose a later cutoff."
        )
    if early.all():
        raise ValueError(
            f"temporal_split: every record has {date_field} before cutoff {shown}; the "
            "validation set would be empty. Choose an earlier cutoff."
        )
    return (
        _copy_attrs(cohort[early], cohort, "development"),
        _copy_attrs(cohort[~early], cohort, "validation"),
    )


def centre_split(
    cohort: pd.DataFrame, centres: Iterable[str], *, centre_field: str = "centre_id"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out whole centres: develop on the others, validate on ``centres``.

    Parameters
    ----------
    cohort : DataFrame
        Records with a centre column.
    centres : iterable of str
        Centres whose records form the validation set.
    centre_field : str, default="centre_id"
        Column holding the centre.

    Returns
    -------
    development, validation : DataFrame
        Copies keeping ``cohort.attrs``, with ``attrs["split"]`` set.

    Raises
    ------
    ValueError
        If the column is missing, a centre is not in the cohort, or a side is empty.

    See Also
    --------
    temporal_split, evaluate

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.evaluation import centre_split
    >>> cohort = sr.make_spine_cohort(500, seed=0)
    >>> dev, val = centre_split(cohort, centres=["C01", "C02"])
    >>> sorted(val["centre_id"].unique())
    ['C01', 'C02']
    >>> centre_split(cohort, centres=["X99"])
    Traceback (most recent call last):
    ...
    ValueError: centre_split: centre(s) ['X99'] are not in column 'centre_id'; the cohort has C01, C02, C03, C04, C05, C06, C07, C08, C09, C10, C11, C12.
    """  # noqa: E501
    if centre_field not in cohort.columns:
        raise ValueError(f"centre_split: the cohort has no column {centre_field!r}.")
    if isinstance(centres, str):
        centres = [centres]
    wanted = [str(c) for c in centres]
    if not wanted:
        raise ValueError("centre_split: centres is empty; expected at least one centre id.")
    present = cohort[centre_field].astype(object)
    known = sorted({str(c) for c in present.dropna()})
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValueError(
            f"centre_split: centre(s) {unknown} are not in column {centre_field!r}; the "
            f"cohort has {', '.join(known)}."
        )
    held = (present.notna() & present.astype(str).isin(wanted)).to_numpy()  # 2 matches "2"
    if held.all():
        raise ValueError(
            "centre_split: every record is in the held-out centres; the development set "
            "would be empty."
        )
    return (
        _copy_attrs(cohort[~held], cohort, "development"),
        _copy_attrs(cohort[held], cohort, "validation"),
    )
