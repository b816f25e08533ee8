"""Per-record input checks against the training reference (vectorised).

Three codes, each naming the field and the value:

- ``out_of_range``: a number outside the training minimum and maximum;
- ``unseen_category``: a code (or True/False) that no training record had;
- ``rarely_missing``: missing although the field was missing in fewer than
  ``rarely_missing_below`` (1%) of the training records.

How often they fire on ordinary records is part of the rule. A new record from the
population a model was trained on lies outside the range of ``n`` training values of a
field with probability about ``2 / (n + 1)``, so with a few thousand training records
the range checks flag well under 2% of such records (``reference["flagged_share"]``
estimates the rate). A missing-value check whose threshold sat near a field's own
missing share would fire on every record that lacks it: a field missing in 5% of
training records (eGFR in the synthetic cohort) flagged 5% of all new records, as often
as it was missing. So missing values are flagged only where training records had
essentially none (below 1%), where the model has hardly seen the field missing.
A record outside the model's intended population (a treatment its endpoint excludes,
such as cement augmentation for nonunion) is flagged as well, through its code: its
risk is not defined, and that is worth a warning every time.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import DataQualityWarning
from spinerisk.reference._reference import RARELY_MISSING_BELOW, _as_reference, _check_threshold

__all__ = [
    "RARELY_MISSING_BELOW",
    "WARNING_CODES",
    "input_warning_lists",
    "input_warning_table",
    "input_warnings",
    "RecordWarnings",
    "input_reference",
    "record_warnings",
    "warn_unusual",
    "warning_codes",
]

#: The machine-readable codes, in the order they are reported within a field.
WARNING_CODES: tuple[str, ...] = ("out_of_range", "unseen_category", "rarely_missing")


_TABLE_COLUMNS = ["row", "code", "field", "value", "message"]
_DTYPES = {
    "row": "int64",
    "code": object,
    "field": object,
    "value": object,
    "message": object,
    "_note": object,
}


def input_warning_table(
    reference: Any, records: pd.DataFrame, *, rarely_missing_below: float = RARELY_MISSING_BELOW
) -> pd.DataFrame:
    """Unusual inputs, one row per record and field: machine-readable.

    Parameters
    ----------
    reference : dict or RiskModel
        A training reference from :func:`build_reference`, or a fitted model: its
        reference as :func:`input_reference` reads it (``reference_``; for an updated
        model with the ranges and codes of ``training_ranges_``). A model without
        ``reference_`` falls back to its ``training_ranges_`` (ranges and codes only; no
        ``rarely_missing`` check).
    records : DataFrame
        Validated records (see :func:`spinerisk.validate`). A predictor column that is
        absent counts as missing in every record.
    rarely_missing_below : float, default=0.01
        A missing value is flagged when the field was missing in fewer than this share
        of the training records.

    Returns
    -------
    DataFrame
        Columns ``row`` (0-based position in ``records``), ``code`` (one of
        :data:`WARNING_CODES`), ``field``, ``value`` (as text; ``"missing"`` for a
        missing value) and ``message`` (readable). Sorted by row, then by field in the
        reference's order. Empty when nothing is unusual.

    See Also
    --------
    input_warnings : The same as one string per record.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.reference import input_warning_table
    >>> ref = {"format": "spinerisk-reference", "version": 1, "fields": {
    ...     "age_years": {"kind": "numeric", "min": 60.0, "max": 100.0, "missing_rate": 0.0},
    ...     "sex": {"kind": "categorical", "counts": {"F": 70, "M": 30}, "missing_rate": 0.0}}}
    >>> records = sr.make_spine_cohort(3, seed=0)  # SYNTHETIC
    >>> records.loc[1, "age_years"] = 104.0
    >>> table = input_warning_table(ref, records)
    >>> table[["row", "code", "field", "value"]]
       row          code      field value
    0    1  out_of_range  age_years   104
    >>> table.loc[0, "message"]
    'age_years=104 is outside the training range 60 to 100.'
    """
    table = _table(reference, records, rarely_missing_below)
    return table[_TABLE_COLUMNS].reset_index(drop=True)


def input_warnings(
    reference: Any, records: pd.DataFrame, *, rarely_missing_below: float = RARELY_MISSING_BELOW
) -> pd.Series:
    """Unusual inputs as one string per record (empty when none).

    Each entry reads ``code:field=value (note)``, such as
    ``out_of_range:age_years=104 (training 60 to 100)``,
    ``unseen_category:treatment=kyphoplasty (not in the training data)`` or
    ``rarely_missing:egfr=missing (missing in 0.4% of training records)``; entries of
    one record are joined by ``"; "``.

    Parameters
    ----------
    reference : dict or RiskModel
        See :func:`input_warning_table`.
    records : DataFrame
        Validated records.
    rarely_missing_below : float, default=0.01
        See :func:`input_warning_table`.

    Returns
    -------
    Series of str
        Same index as ``records``.

    See Also
    --------
    input_warning_table : The same, machine-readable.

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.reference import input_warnings
    >>> ref = {"format": "spinerisk-reference", "version": 1, "fields": {
    ...     "egfr": {"kind": "numeric", "min": 5.0, "max": 130.0, "missing_rate": 0.004},
    ...     "treatment": {"kind": "categorical", "counts": {"conservative": 90},
    ...                   "missing_rate": 0.0}}}
    >>> records = pd.DataFrame({"egfr": [60.0, None, 140.0],
    ...                         "treatment": ["conservative", "kyphoplasty", "conservative"]})
    >>> for text in input_warnings(ref, records):
    ...     print(text.split("; "))
    ['']
    ['rarely_missing:egfr=missing (missing in 0.4% of training records)', 'unseen_category:treatment=kyphoplasty (not in the training data)']
    ['out_of_range:egfr=140 (training 5 to 130)']
    """  # noqa: E501
    entries, rows, starts, ends = _entries(reference, records, rarely_missing_below)
    out = np.full(len(records), "", dtype=object)
    single = ends - starts == 1
    out[rows[starts[single]]] = entries[starts[single]]
    for a, b in zip(starts[~single], ends[~single], strict=True):  # join strings only
        out[rows[a]] = "; ".join(entries[a:b])
    return pd.Series(out, index=records.index, dtype=object)


def input_warning_lists(
    reference: Any, records: pd.DataFrame, *, rarely_missing_below: float = RARELY_MISSING_BELOW
) -> list[tuple[str, ...]]:
    """The entries of :func:`input_warnings` per record, not joined: the structured value
    (the HTTP API sends it as a list; text outputs join it with ``"; "``).

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.reference import input_warning_lists
    >>> ref = {"format": "spinerisk-reference", "version": 1, "fields": {
    ...     "egfr": {"kind": "numeric", "min": 5.0, "max": 130.0, "missing_rate": 0.0}}}
    >>> input_warning_lists(ref, pd.DataFrame({"egfr": [60.0, 140.0]}))
    [(), ('out_of_range:egfr=140 (training 5 to 130)',)]
    """
    entries, rows, starts, ends = _entries(reference, records, rarely_missing_below)
    out: list[tuple[str, ...]] = [()] * len(records)
    for a, b in zip(starts, ends, strict=True):
        out[rows[a]] = tuple(entries[a:b])
    return out


def _entries(
    reference: Any, records: pd.DataFrame, rarely_missing_below: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every entry ``code:field=value (note)``, its record's position, and where each
    record's run of entries starts and ends (entries are sorted by record)."""
    table = _table(reference, records, rarely_missing_below)
    if not len(table):
        empty = np.array([], dtype=np.int64)
        return np.array([], dtype=object), empty, empty, empty
    text = (
        table["code"] + ":" + table["field"] + "=" + table["value"] + " ("
        + table["_note"] + ")"
    )  # fmt: skip
    entries = text.to_numpy(dtype=object)
    rows = table["row"].to_numpy()  # sorted: a record's entries are contiguous
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    return entries, rows, starts, ends


def warning_codes(warnings: pd.Series) -> pd.Series:
    """``code:field`` of each entry of a record's warnings, without values.

    Parameters
    ----------
    warnings : Series of str or of tuples
        Text as :func:`input_warnings` joins it, or the entries of
        :func:`input_warning_lists`.

    Returns
    -------
    Series of list of str
        Same index; for example ``["out_of_range:age_years"]``.

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.reference import warning_codes
    >>> warning_codes(pd.Series(["out_of_range:age_years=104 (training 60 to 100)", ""])).tolist()
    [['out_of_range:age_years'], []]
    """
    entries = warnings.map(_entries_of)
    return entries.map(lambda items: [e.split("=", 1)[0] for e in items if e])


def _entries_of(value: Any) -> Any:
    """A record's entries: the tuple of :func:`input_warning_lists`, or text as
    :func:`input_warnings` joins it (read back from a score file)."""
    if isinstance(value, tuple | list):
        return value
    return () if value is None or value != value else str(value).split("; ")


def input_reference(obj: Any) -> dict[str, Any]:
    """The reference the per-record input checks read, for a fitted model or a reference
    dict: what :func:`input_warnings` and :class:`RecordWarnings` (the fast path) flag
    against.

    For a model as fitted, its reference (:func:`as_reference` ``(model, complete=False)``),
    whose ranges and codes are those of its training records. An updated model (one with
    ``lineage_``, from :func:`spinerisk.update.update`) keeps a reference of the site's
    records, what drift is measured against, while its parameters still rest on its
    original training (and, for a revision, the site's records too): its checks read
    the ranges and codes of ``training_ranges_``, so a code only the site lacks is not
    "unseen". A reference given as a dict is used as is.

    Parameters
    ----------
    obj : RiskModel or dict
        A fitted model, or a reference from :func:`build_reference`.

    Returns
    -------
    dict
        A reference: per field ``min``/``max`` (numbers), ``codes`` or ``counts``
        (categories) and ``missing_rate``.

    Examples
    --------
    >>> ref = {"format": "spinerisk-reference", "version": 1, "fields": {
    ...     "sex": {"kind": "categorical", "counts": {"F": 9}, "missing_rate": 0.0}}}
    >>> input_reference(ref) is ref
    True
    """
    ref = _as_reference(obj, complete=False)
    ranges = getattr(obj, "training_ranges_", None)
    updated = getattr(obj, "lineage_", None) is not None
    if isinstance(obj, dict) or not updated or not isinstance(ranges, dict):
        return ref
    fields: dict[str, Any] = {}
    for name, spec in ref["fields"].items():
        known = ranges.get(name)
        if spec["kind"] == "numeric" and isinstance(known, tuple):
            spec = {**spec, "min": float(known[0]), "max": float(known[1])}
        elif spec["kind"] == "categorical" and isinstance(known, set):
            spec = {**spec, "codes": sorted(str(v) for v in known)}
        fields[name] = spec
    return {**ref, "fields": fields}


def _table(reference: Any, records: pd.DataFrame, rarely_missing_below: float) -> pd.DataFrame:
    """The warnings table with the short note of each entry in ``_note``."""
    _check_threshold(rarely_missing_below)
    ref = input_reference(reference)
    if not isinstance(records, pd.DataFrame):
        raise TypeError(f"records must be a DataFrame; got {type(records).__name__}.")
    parts: list[pd.DataFrame] = []
    for order, (name, spec) in enumerate(ref["fields"].items()):
        present = name in records.columns
        col = records[name] if present else pd.Series(np.nan, index=records.index)
        missing = col.isna().to_numpy(dtype=bool)
        if spec["kind"] == "numeric" and spec.get("min") is not None:
            x = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
            lo, hi = float(spec["min"]), float(spec["max"])
            pos = np.flatnonzero((x < lo) | (x > hi))
            if len(pos):
                shown = pd.Series(x[pos]).map("{:g}".format).to_numpy(dtype=object)
                note = f"training {lo:g} to {hi:g}"
                long = f"is outside the training range {lo:g} to {hi:g}"
                parts.append(_part(pos, order, 0, name, shown, note, long))
        elif spec["kind"] == "categorical":
            # compare the distinct values as text, not every record: factorize once
            where, distinct = pd.factorize(col, use_na_sentinel=True)
            text = pd.Index(distinct).astype(str)
            known = text.isin(pd.Index(list(spec.get("codes", spec["counts"]))))
            unseen = np.append(~known, False)  # the NA sentinel (-1) maps to False
            pos = np.flatnonzero(~missing & unseen[where])
            if len(pos):
                shown = text.to_numpy(dtype=object)[where[pos]]
                note = "not in the training data"
                long = "is a code no training record had"
                parts.append(_part(pos, order, 1, name, shown, note, long))
        rate = spec.get("missing_rate")
        if rate is not None and rate < rarely_missing_below:
            pos = np.flatnonzero(missing)
            if len(pos):
                note = _missing_share(rate)
                long = (
                    "but no training record lacked it"
                    if rate <= 0
                    else f"but only {_share(rate)} of training records lacked it"
                )
                parts.append(_part(pos, order, 2, name, "missing", note, long))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["row", "_order", "_code"], kind="stable").reset_index(drop=True)
    return table.astype(_DTYPES)


def _part(
    pos: np.ndarray, order: int, code: int, field: str, shown: Any, note: str, long: str
) -> pd.DataFrame:
    values = pd.Series(shown, index=range(len(pos)), dtype=object)
    return pd.DataFrame(
        {
            "row": pos.astype(np.int64),
            "_order": order,
            "_code": code,
            "code": WARNING_CODES[code],
            "field": field,
            "value": values,
            "message": field + "=" + values + " " + long + ".",
            "_note": note,
        }
    )


# -- one record at a time (the compiled single-record path) ---------------------------------
def record_warnings(
    typed: Mapping[str, Any],
    reference: Mapping[str, Any],
    *,
    rarely_missing_below: float = RARELY_MISSING_BELOW,
) -> str:
    """Warnings of one record, as in the ``warnings`` column of ``RiskModel.predict_risk``.

    The one-record twin of :func:`input_warnings` (same codes, order
    and text; the equality is tested), without building a DataFrame.

    Parameters
    ----------
    typed : dict
        Typed values of the record (float NaN for a missing number, None for a missing
        code or flag); a field the record does not have counts as missing.
    reference : dict
        The model's reference for input checks (:func:`input_reference`): per field,
        ``min``/``max`` for numbers, the known codes (or code counts) for categories, and
        the training missing rate.
    rarely_missing_below : float, default=0.01
        Flag a missing value when training had fewer missing than this share.

    Returns
    -------
    str
        ``"; "``-joined entries ``code:field=value (note)``; empty when there are none.

    Examples
    --------
    >>> ref = {"fields": {
    ...     "age_years": {"kind": "numeric", "min": 60.0, "max": 95.0, "missing_rate": 0.0},
    ...     "sex": {"kind": "categorical", "counts": {"F": 9}, "missing_rate": 0.0}}}
    >>> record_warnings({"age_years": 99.5, "sex": "M"}, ref)
    'out_of_range:age_years=99.5 (training 60 to 95); unseen_category:sex=M (not in the training data)'
    >>> record_warnings({"age_years": float("nan"), "sex": "F"}, ref)
    'rarely_missing:age_years=missing (never missing in the training records)'
    """  # noqa: E501
    return "; ".join(RecordWarnings(reference, rarely_missing_below)(typed))


def _missing_share(rate: float) -> str:
    """How often the training records lacked a field, in words: ``"missing in 0.4% of
    training records"``, ``"under 0.1%"`` (not a misleading 0.0%), or never."""
    if rate <= 0:
        return "never missing in the training records"
    return f"missing in {_share(rate)} of training records"


def _share(rate: float) -> str:
    """A positive share as a percentage: ``"0.4%"``, or ``"under 0.1%"``."""
    return "under 0.1%" if rate < 0.001 else f"{rate:.1%}"


class RecordWarnings:
    """:func:`record_warnings` with the reference read once: per field that can give a
    note, its range or codes and its ``rarely_missing`` note, in the reference's order."""

    _RANGE, _CODES, _NONE = 0, 1, 2

    def __init__(self, reference: Mapping[str, Any], rarely_missing_below: float) -> None:
        self.fields: list[tuple[str, int, float, float, Any, str | None]] = []
        for name, spec in reference["fields"].items():
            rate = spec.get("missing_rate")
            rare = (
                f"rarely_missing:{name}=missing ({_missing_share(rate)})"
                if rate is not None and rate < rarely_missing_below
                else None
            )
            if spec["kind"] == "numeric" and spec.get("min") is not None:
                lo, hi = float(spec["min"]), float(spec["max"])
                self.fields.append((name, self._RANGE, lo, hi, None, rare))
            elif spec["kind"] == "categorical":
                codes = frozenset(spec.get("codes", spec["counts"]))
                self.fields.append((name, self._CODES, 0.0, 0.0, codes, rare))
            elif rare is not None:
                self.fields.append((name, self._NONE, 0.0, 0.0, None, rare))

    def __call__(self, typed: Mapping[str, Any]) -> tuple[str, ...]:
        notes: list[str] = []
        get = typed.get
        for name, kind, lo, hi, counts, rare in self.fields:
            v = get(name)
            if v is None or v != v:  # missing (NaN is the only value unequal to itself)
                if rare is not None:
                    notes.append(rare)
            elif kind == 0:
                if v < lo or v > hi:
                    notes.append(f"out_of_range:{name}={float(v):g} (training {lo:g} to {hi:g})")
            elif kind == 1 and str(v) not in counts:
                notes.append(f"unseen_category:{name}={v} (not in the training data)")
        return tuple(notes)

    def many(self, typed: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
        """``[self(t) for t in typed]``, with records no field can flag found column by
        column (one pass per field over the batch) and given no notes without the
        per-record pass."""
        if len(typed) < _BY_COLUMN_FROM:
            return [self(t) for t in typed]
        first = typed[0]
        fields = [f for f in self.fields if f[0] in first]
        try:  # the fields of the first record, in every record
            rows = list(map(operator.itemgetter(*[f[0] for f in fields]), typed))
        except (KeyError, TypeError):
            return [self(t) for t in typed]
        columns: list[Sequence[Any]] = (
            list(zip(*rows, strict=True)) if len(fields) > 1 else [rows] if fields else []
        )
        suspects: set[int] = set()
        for (_, kind, lo, hi, counts, rare), col in zip(fields, columns, strict=True):
            suspects.update(_suspects(col, kind, lo, hi, counts, rare))
        for name, *_, rare in self.fields:
            if name not in first and (rare is not None or any(name in t for t in typed)):
                suspects.update(range(len(typed)))  # absent (missing) or ragged records
                break
        out: list[tuple[str, ...]] = [()] * len(typed)
        for i in suspects:
            out[i] = self(typed[i])
        return out


#: Batches of at least this many records look for records with notes column by column.
_BY_COLUMN_FROM = 16
_PLAIN_CODES = frozenset((str, bool, type(None)))


def _suspects(
    col: Sequence[Any], kind: int, lo: float, hi: float, counts: Any, rare: str | None
) -> Iterable[int]:
    """Positions in one field's column that may give a note in :class:`RecordWarnings`
    (at least all that do): missing values when the field has a ``rarely_missing`` note,
    numbers outside ``lo``..``hi``, values that are not among the counted codes."""
    values = set(col)
    if kind == RecordWarnings._RANGE:
        try:
            total = None if None in values else sum(values)
        except TypeError:
            total = None
        if total is not None and total == total:  # no value missing (None or NaN)
            known: Any = values
        else:
            known = [v for v in values if v is not None and v == v]
        missing = len(known) < len(values)
        clean = not known or (lo <= min(known) and max(known) <= hi)
        if clean and (rare is None or not missing):
            return ()
        return [i for i, v in enumerate(col) if _range_suspect(v, lo, hi, rare)]
    if kind == RecordWarnings._CODES:
        known = [v for v in values if v is not None and v == v]
        missing = len(known) < len(values)
        # equal values of these types have equal text (1 and True do not)
        plain = set(map(type, col)) <= _PLAIN_CODES
        clean = plain and {str(v) for v in known}.issubset(counts)
        if clean and (rare is None or not missing):
            return ()
        return [i for i, v in enumerate(col) if _code_suspect(v, counts, rare)]
    if rare is None:
        return ()
    return [i for i, v in enumerate(col) if v is None or v != v]


def _range_suspect(v: Any, lo: float, hi: float, rare: str | None) -> bool:
    if v is None or v != v:
        return rare is not None
    return bool(v < lo or v > hi)


def _code_suspect(v: Any, counts: Any, rare: str | None) -> bool:
    if v is None or v != v:
        return rare is not None
    return str(v) not in counts


def warn_unusual(flagged: int, n: int, *, stacklevel: int) -> None:
    """The DataQualityWarning of ``predict_risk`` for records with warnings."""
    warnings.warn(
        f"{flagged} of {n} records have unusual inputs: values outside the "
        "training data or missing where training records rarely were (see the "
        "'warnings' column); treat their risks with caution.",
        DataQualityWarning,
        stacklevel=stacklevel,
    )
