"""The chunk function :func:`score_frame` and what every engine shares: results, model
identity, validation with per-row reasons, prediction of validated records, formula-safe
text."""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from spinerisk.exceptions import DataQualityWarning
from spinerisk.io import duplicated_within, id_text

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

#: Cells starting with one of these are run as formulas by spreadsheet programs.
FORMULA_START: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_INPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
_OUTPUT_SUFFIXES = (".csv", ".parquet")
_STAGES = ("load", "read", "map", "validate", "features", "predict", "warnings", "explain", "write")


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreSummary:
    """What :func:`score_file` did: rows in, scored and rejected, and where they went.

    Attributes
    ----------
    rows_in : int
        Data rows in the input (a malformed CSV row counts too).
    scored : int
        Rows written to ``output``.
    rejected : int
        Rows rejected, with their reasons in ``rejects`` (when a path was given).
        Always ``rows_in == scored + rejected + out_of_scope``.
    output : Path
        The scores file.
    rejects : Path or None
        The rejects file, or None when none was asked for.
    flagged : int
        Scored rows with a warning (values outside the training data).
    seconds : float
        Wall time of the run.
    timings : dict of str to float
        Seconds spent per stage (load, read, map, validate, features, predict,
        warnings, explain, write), summed over chunks and threads (the local engine
        validates one chunk while others are scored, so they can add up to more than
        ``seconds``); for the local engine only.
    trained_on_synthetic_data : bool or None
        Whether the model's training records were labelled synthetic (from its
        training reference); None when the bundle cannot tell.
    out_of_scope : int
        Rows a malignancy gate kept from a prognosis (written to ``output`` with status
        ``out_of_scope``, the reason and the probability, and no risk); 0 without a gate.
    all_missing : tuple of str
        Predictors missing in every valid row: an absent or empty column, which each
        record's warnings name but which is more likely a file or mapping problem than
        a property of the records. Counted by the local engine (the Dask engine keeps
        no valid records in the client, except with an audit log; there it is empty).
    """

    rows_in: int
    scored: int
    rejected: int
    output: Path
    rejects: Path | None
    flagged: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    trained_on_synthetic_data: bool | None = None
    out_of_scope: int = 0
    all_missing: tuple[str, ...] = ()


class _Chunk(NamedTuple):
    scores: pd.DataFrame
    rejects: pd.DataFrame
    valid: pd.DataFrame  # the validated records that were scored (same order as scores)


class _Timer:
    """Accumulates seconds per stage."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(_STAGES, 0.0)
        self._stage: str | None = None
        self._start = 0.0

    def __call__(self, stage: str) -> _Timer:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        assert self._stage is not None
        self.seconds[self._stage] += time.perf_counter() - self._start


# ---------------------------------------------------------------------------------------
# model identity
# ---------------------------------------------------------------------------------------
def model_info(model: RiskModel, path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Model id and version written next to every score: the model's
    :func:`spinerisk.bundle.model_identity`.

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    path : str, path-like or None, default=None
        The bundle the model was loaded from (see :func:`model_info_from_path`). Without
        a path the id is ``<endpoint>-<backend>-unsaved`` and the version ``"unsaved"``.

    Returns
    -------
    dict
        ``model_id``, ``model_version`` (the model's own version: its bundle's creation
        time, UTC), ``model_sha256`` (empty without a path), ``endpoint``, ``backend``,
        ``created_utc`` and ``saved_by`` (``<spinerisk version>+bundle.<format>``, the
        software that wrote the bundle).

    Raises
    ------
    ArtifactError
        If ``path`` is not a valid bundle.

    See Also
    --------
    model_info_from_path

    Notes
    -----
    ``model_version`` in score files used to be ``<spinerisk version>+bundle.<format>``
    (now ``saved_by``); it is now the model's own version, as the HTTP API has always
    meant it. Score files have no ``saved_by`` column: ``model_id`` names the bundle,
    whose manifest records the software that saved it.
    """
    from spinerisk.bundle import model_identity

    if path is None:
        return model_identity(None, model=model)
    return model_info_from_path(path)


# ---------------------------------------------------------------------------------------
# the chunk function
# ---------------------------------------------------------------------------------------
def score_frame(
    model: RiskModel,
    frame: pd.DataFrame,
    *,
    explain: int = 0,
    interval: float | None = None,
    row_offset: int = 0,
    mapping: Any = None,
    duplicate_ids: Any = None,
    info: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score one chunk of records: validate, predict the valid ones, return the rejects.

    Parameters
    ----------
    model : RiskModel
        A fitted model (for example from :func:`spinerisk.load`).
    frame : DataFrame
        Raw records as read (text or typed values), one per row.
    explain : int, default=0
        When positive, add ``top_drivers``: the ``explain`` features that moved each
        record's risk most (from :func:`spinerisk.explanation.explain`).
    interval : float or None, default=None
        Coverage of a per-patient interval around each risk (0.9 for 90%): ``c_lo`` and
        ``c_hi`` after each risk column ``c``, from the model's bootstrap refits
        (:meth:`RiskModel.fit_intervals`).
    row_offset : int, default=0
        Input row number of the first row of ``frame`` (for chunks of a larger input).
    mapping : ColumnMapping, dict, path or None, default=None
        Column mapping applied before validation (:func:`spinerisk.apply_mapping`).
    duplicate_ids : collection of str or None, default=None
        Identifiers that occur more than once in the whole input; records with one of
        them are rejected. None means: look for duplicates within ``frame`` only.
    info : mapping or None, default=None
        ``model_id`` and ``model_version`` to write; None means :func:`model_info` of
        the model without a bundle (version ``"unsaved"``).

    Returns
    -------
    scores : DataFrame
        One row per valid record, in input order: the id field, ``risk_<days>d`` per
        horizon, ``warnings``, ``model_id``, ``model_version`` and (with ``explain``)
        ``top_drivers``.
    rejects : DataFrame
        One row per rejected record: ``row`` (0-based input row), ``reasons`` and the
        record's original values as text. ``len(scores) + len(rejects) == len(frame)``.

    Raises
    ------
    SchemaValidationError
        For problems with the frame itself (unknown or missing columns): no record can
        be judged.
    MappingError
        If the mapping does not fit the chunk's columns. A value the mapping cannot
        translate (an unknown code, a non-number to rescale) rejects its row instead.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.scoring import score_frame
    >>> cohort = sr.make_spine_cohort(400, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> batch = cohort.head(5).copy()
    >>> batch.loc[3, "age_years"] = 300.0
    >>> scores, rejects = score_frame(model, batch, row_offset=100)
    >>> len(scores), list(rejects["row"])
    (4, [103])
    >>> rejects["reasons"].iloc[0]
    'age_years=300.0 is out of range; expected 18 <= age_years <= 105 years, not missing'
    """
    rows = np.arange(len(frame), dtype=np.int64) + int(row_offset)
    info = model_info(model) if info is None else info
    chunk = _score_chunk(
        model,
        frame,
        rows,
        mapping=_as_mapping(mapping),
        duplicate_ids=duplicate_ids,
        explain=explain,
        interval=_interval_level(model, interval),
        info=info,
        timer=_Timer(),
    )
    return chunk.scores, chunk.rejects


def _as_mapping(mapping: Any) -> Any:
    if mapping is None:
        return None
    from spinerisk.io import ColumnMapping, load_mapping

    if isinstance(mapping, ColumnMapping):
        return mapping
    if isinstance(mapping, str | os.PathLike):
        return load_mapping(mapping)
    return ColumnMapping.from_dict(mapping)


def _schema(model: RiskModel) -> Any:
    return model.input_schema_


def _id_source(model: RiskModel, mapping: Any) -> str:
    """The input column holding the record id (before the mapping renames it)."""
    id_field = model.id_field_
    if mapping is not None:
        for source, target in mapping.columns.items():
            if target == id_field:
                return str(source)
    return str(id_field)


def _mapped_ids(ids: np.ndarray, mapping: Any, id_field: str) -> np.ndarray:
    """Raw identifiers as the mapping will turn them: whitespace stripped when the
    mapping strips the id field (an id that becomes empty is missing), so that duplicates
    are found on the identifiers that are validated."""
    strip = None if mapping is None else mapping.strip_whitespace
    if not (strip is True or (strip and id_field in strip)):
        return ids
    out = np.asarray(ids, dtype=object).copy()
    for i, v in enumerate(out):
        if isinstance(v, str):
            out[i] = v.strip() or None
    return out


def _duplicate_reason(id_field: str, value: str) -> str:
    # the wording validate() uses for a duplicate within one frame
    return f"{id_field}={value!r} is a duplicate; expected a unique {id_field}"


class _Checked(NamedTuple):
    """A chunk after validation: the records to score and the rejected ones."""

    checked: pd.DataFrame
    rejects: pd.DataFrame


def _score_chunk(
    model: RiskModel,
    raw: pd.DataFrame,
    rows: np.ndarray,
    *,
    mapping: Any,
    duplicate_ids: Any,
    explain: int,
    interval: float | None = None,
    info: Mapping[str, str],
    timer: _Timer,
) -> _Chunk:
    part = _check_chunk(model, raw, rows, mapping=mapping, duplicate_ids=duplicate_ids, timer=timer)
    return _finish_chunk(model, part, explain=explain, interval=interval, info=info, timer=timer)


def _check_chunk(
    model: RiskModel,
    raw: pd.DataFrame,
    rows: np.ndarray,
    *,
    mapping: Any,
    duplicate_ids: Any,
    timer: _Timer,
) -> _Checked:
    """Map and validate one chunk: the records to score and the rejects with reasons.

    Runs on one thread at a time (validation changes warning filters, which are
    process-wide); :func:`_finish_chunk` may run on another.
    """
    from spinerisk.schema import validate
    from spinerisk.schema._validate import check_columns

    schema = _schema(model)
    id_field = model.id_field_
    raw = raw.reset_index(drop=True)
    # pandas deep-copies attrs (Parquet metadata, a synthetic cohort's labels) into every
    # frame derived from one, which costs more than some stages; scores do not use them
    raw.attrs = {k: v for k, v in raw.attrs.items() if k == "source"}
    with timer("map"):  # values the mapping cannot translate reject their rows
        mapped, map_problems = (raw, []) if mapping is None else map_frame(raw, mapping, schema)
    n = len(mapped)
    if schema[id_field].generated and id_field not in mapped.columns:
        from spinerisk.schema._validate import row_ids  # records named by their input row

        mapped = mapped.copy()
        mapped.insert(0, id_field, row_ids(rows))
    ids = id_text(mapped[id_field]) if id_field in mapped.columns else np.full(n, None)
    dup_set = duplicated_within(ids) if duplicate_ids is None else duplicate_ids
    if dup_set:
        is_dup = pd.Series(ids, dtype=object).isin(list(dup_set)).to_numpy()
    else:
        is_dup = np.zeros(n, dtype=bool)

    with timer("validate"), warnings.catch_warnings():
        # a column empty in one chunk says nothing of the file: the whole file's empty
        # columns are counted once (ScoreSummary.all_missing) instead
        warnings.simplefilter("ignore", DataQualityWarning)
        if n:
            valid, rejected = validate(mapped, schema, on_invalid="split")
        else:  # no records (a header-only file): the columns must still fit
            check_columns(mapped, schema)
            valid, rejected = mapped.iloc[:0], pd.DataFrame({"row": [], "reasons": []})
    # a reason per rejected position; the duplicate-id reason is written the same way
    # whether the other occurrence is in this chunk or not
    dup_part = re.compile(
        rf"^{re.escape(id_field)}=.* is a duplicate; expected a unique {re.escape(id_field)}$"
    )
    reasons: dict[int, list[str]] = {}
    for pos, text in zip(rejected["row"].to_numpy(), rejected["reasons"].to_numpy(), strict=True):
        parts = str(text).split(" | ")
        if is_dup[int(pos)]:  # replaced by the whole-input reason below
            parts = [p for p in parts if not dup_part.match(p)]
        reasons[int(pos)] = parts
    for pos in np.flatnonzero(is_dup):
        reasons.setdefault(int(pos), []).append(_duplicate_reason(id_field, ids[pos]))
    for pos, text in reversed(map_problems):
        reasons.setdefault(int(pos), []).insert(0, text)
    if any(not any(parts) for parts in reasons.values()):  # never reject without a reason
        raise RuntimeError("A record was rejected without a reason. Please report this as a bug.")
    bad = np.array(sorted(reasons), dtype=np.int64)

    keep = np.ones(n, dtype=bool)
    keep[bad] = False
    if len(valid) and not keep[valid.index.to_numpy()].all():
        checked = valid.loc[keep[valid.index.to_numpy()]]
    else:  # every validated record is scored: no copy
        checked = valid
    # the rows as sent, less the columns the mapping ignores (names, free text)
    ignored = [] if mapping is None else [c for c in mapping.ignore if c in raw.columns]
    rejects = _as_text(raw.iloc[bad].drop(columns=ignored))
    rejects.insert(0, "reasons", [" | ".join(reasons[int(p)]) for p in bad])
    rejects.insert(0, "row", rows[bad].astype(np.int64))
    return _Checked(checked, rejects.reset_index(drop=True))


def _finish_chunk(
    model: RiskModel,
    part: _Checked,
    *,
    explain: int,
    info: Mapping[str, str],
    timer: _Timer,
    interval: float | None = None,
) -> _Chunk:
    """Features, risks (and their intervals), warnings (and top drivers) of a validated
    chunk."""
    checked = part.checked
    scores = _predict_checked(model, checked, timer, interval)
    scores["model_id"] = info["model_id"]
    scores["model_version"] = info["model_version"]
    if explain:
        with timer("explain"):
            scores["top_drivers"] = _top_drivers(model, checked, explain)
    return _Chunk(scores, part.rejects, checked)


def map_frame(
    raw: pd.DataFrame, mapping: Any, schema: Any
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    from spinerisk.io import map_frame

    return map_frame(raw, mapping, schema)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Original values as text (None where missing), for rejects files."""
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy(dtype=object)
        missing = pd.isna(values)
        out[str(col)] = [
            None if m else (v if isinstance(v, str) else str(v))
            for v, m in zip(values, missing, strict=True)
        ]
    return pd.DataFrame(out, index=frame.index, columns=[str(c) for c in frame.columns])


# ---------------------------------------------------------------------------------------
# prediction on validated records (what RiskModel.predict_risk does after validation)
# ---------------------------------------------------------------------------------------
def _predict_checked(
    model: RiskModel, checked: pd.DataFrame, timer: _Timer, interval: float | None = None
) -> pd.DataFrame:
    """Risk columns and warnings for records that have already been validated.

    Gives exactly what :meth:`RiskModel.predict_risk` gives for the same records,
    without validating them a second time and without issuing the per-call warning.
    """
    id_field = model.id_field_
    horizons = model.horizons_
    columns = [model.endpoint_.risk_column(h) for h in horizons]
    out = pd.DataFrame({id_field: checked[id_field].astype(object).to_numpy()})
    gated = getattr(model, "gate_", None) is not None
    if len(checked) == 0:
        values = np.empty((0, len(columns)))
    else:
        values = model._risk_values(checked, horizons, timer=timer)
    risks = pd.DataFrame(values.astype(float), columns=columns)
    if interval is not None:  # c_lo, c_hi after each risk column c (as predict_risk)
        with timer("predict"):
            if len(checked):
                risks = model._with_intervals(risks, checked, horizons, interval)
            else:
                risks = pd.DataFrame(
                    {c: pd.Series([], dtype=float) for c in _risk_and_interval_columns(model, 1)}
                )
    for col in risks.columns:
        out[col] = risks[col].to_numpy(dtype=float)
    with timer("warnings"):
        from spinerisk.reference import input_warnings  # what predict_risk reports

        out["warnings"] = input_warnings(model, checked).to_numpy(dtype=object)
    if gated:  # status, p_malignant, status_reason (as RiskModel.predict_risk)
        from spinerisk.models._gate import apply_gate

        out = apply_gate(model, checked.set_axis(out.index, axis=0), out)
    return out


def _top_drivers(model: RiskModel, checked: pd.DataFrame, k: int) -> list[str]:
    if len(checked) == 0:
        return []
    from spinerisk.explanation import explain

    drivers = explain(model, checked).top_drivers(k)
    return [str(d) for d in np.asarray(drivers, dtype=object)]


# ---------------------------------------------------------------------------------------
# formula-safe CSV
# ---------------------------------------------------------------------------------------
#: A cell that is one plain decimal number, which spreadsheets read as a number only.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose text cells a spreadsheet would run as formulas are quoted.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading ``'`` (the OWASP advice for CSV injection), unless the whole cell is a
    plain number (``-5``, ``-0.25``, ``+1e3``), which a spreadsheet reads as that number
    and nothing else: a rejects file keeps the values as they were sent. Numbers are
    untouched.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.scoring import neutralize_formulas
    >>> safe = neutralize_formulas(pd.DataFrame({"a": ["=1+1", "ok"], "b": [-1.0, 2.0]}))
    >>> safe["a"].tolist(), safe["b"].tolist()
    (["'=1+1", 'ok'], [-1.0, 2.0])
    >>> neutralize_formulas(pd.DataFrame({"c": pd.Categorical(["@SUM(A1)"])}))["c"].tolist()
    ["'@SUM(A1)"]
    >>> neutralize_formulas(pd.DataFrame({"d": ["-5", "-0.25", "-2+3", "-A1"]}))["d"].tolist()
    ['-5', '-0.25', "'-2+3", "'-A1"]
    """
    safe = frame.copy()
    for col in safe.columns:
        s = safe[col]
        if isinstance(s.dtype, pd.CategoricalDtype):  # codes are text too
            s = s.astype(object)
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            safe[col] = s.map(
                lambda v: (
                    "'" + v
                    if isinstance(v, str)
                    and v.startswith(FORMULA_START)
                    and not _PLAIN_NUMBER.fullmatch(v)
                    else v
                )
            )
    return safe


def model_info_from_path(path: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`model_info` of a bundle file, without building the model.

    Parameters
    ----------
    path : str or path-like
        A bundle written by :meth:`RiskModel.save`.

    Returns
    -------
    dict
        As :func:`model_info`: ``model_id``, ``model_version`` (the bundle's creation
        time), ``model_sha256``, ``endpoint``, ``backend``, ``created_utc`` and
        ``saved_by``.

    Raises
    ------
    ArtifactError
        If there is no file at ``path`` or it is not a valid bundle.
    """
    from spinerisk.audit import bundle_info

    return bundle_info(path)


def _interval_level(model: RiskModel, interval: Any) -> float | None:
    """``interval`` checked against the model (None: no interval): a ValueError for a
    level outside (0, 1), an ArtifactError for a bundle without bootstrap refits."""
    from spinerisk.exceptions import ArtifactError
    from spinerisk.models._interval import check_interval

    if interval is None:
        return None
    check_interval(interval)
    try:
        return float(model._interval_level(interval))
    except ValueError as exc:  # the model has no refits to take an interval from
        raise ArtifactError(f"{exc} The bundle was saved without them.") from exc


def _risk_and_interval_columns(model: RiskModel, interval: float | None) -> list[str]:
    """Risk columns, each followed by its interval bounds when an interval is asked."""
    from spinerisk.endpoints import interval_columns

    out = []
    for h in model.horizons_:
        col = model.endpoint_.risk_column(h)
        out += [col, *(interval_columns(col) if interval is not None else ())]
    return out


def _score_columns(
    model: RiskModel, explain: int, interval: float | None = None
) -> tuple[list[str], dict[str, str]]:
    risks = _risk_and_interval_columns(model, interval)
    gate = ["status", "p_malignant", "status_reason"] if _gated(model) else []
    cols = [model.id_field_, *risks, *gate, "warnings", "model_id", "model_version"]
    if explain:
        cols.append("top_drivers")
    numbers = {*risks, "p_malignant"}
    types = {c: ("float64" if c in numbers else "string") for c in cols}
    return cols, types


def _gated(model: RiskModel) -> bool:
    """Whether the model is bound to a malignancy gate (its scores carry a status)."""
    return getattr(model, "gate_", None) is not None


def out_of_scope_count(scores: pd.DataFrame) -> int:
    """Records a malignancy gate kept from a prognosis (status ``out_of_scope``): counted
    apart from the scored and the rejected ones."""
    if "status" not in scores.columns:
        return 0
    return int((scores["status"] == "out_of_scope").sum())


def _reject_columns(
    source_columns: list[str], mapping: Any = None
) -> tuple[list[str], dict[str, str]]:
    """Columns of a rejects file: the row, its reasons and the source columns, less those
    the mapping ignores (as :func:`_check_chunk` writes them)."""
    ignored = () if mapping is None else mapping.ignore
    cols = ["row", "reasons", *(c for c in source_columns if c not in ignored)]
    types = dict.fromkeys(cols, "string")
    types["row"] = "int64"
    return cols, types
