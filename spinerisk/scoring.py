"""Batch scoring with exact row accounting: records files in, scores and rejects out.

:func:`score_frame` is the one chunk function. It validates a chunk against the model's
schema, predicts the valid records and returns the rejected ones with their 0-based input
row and the reasons. :func:`score_file` streams a CSV or Parquet file through it in
chunks (bounded memory), writes scores and rejects atomically (temporary file, renamed
only after ``rows in == scored + rejected`` has been checked) and
:func:`score_dask` runs the same chunk function over the partitions of a Dask dataframe.

Results do not depend on the chunking: a record gets the same risk, warnings and
(if rejected) the same reasons whether the file is scored in one chunk, in chunks of
7 rows or on a Dask cluster. Identifiers must be unique across the whole input; every
record whose identifier occurs more than once is rejected (all of its occurrences,
wherever they are), because nothing says which of them is right.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from spinerisk.exceptions import RecordsReadError

__all__ = [
    "ScoreSummary",
    "model_info",
    "model_info_from_path",
    "neutralize_formulas",
    "score_dask",
    "score_file",
    "score_frame",
]

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
        Always ``rows_in == scored + rejected``.
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
        warnings, explain, write), summed over chunks; for the local engine only.
    """

    rows_in: int
    scored: int
    rejected: int
    output: Path
    rejects: Path | None
    flagged: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


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
def model_info(model: Any, path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Model id, version and checksum written next to every score.

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    path : str, path-like or None, default=None
        The bundle the model was loaded from. Its manifest and sha256 make the id
        (``<endpoint>-<backend>-<created>-<first 12 hex of sha256>``) and the version
        (``<spinerisk version that saved it>+bundle.<bundle format version>``). Without a
        path the id is ``<endpoint>-<backend>-unsaved`` and the version is this
        spinerisk's.

    Returns
    -------
    dict
        ``model_id``, ``model_version`` and ``model_sha256`` (empty without a path).

    Raises
    ------
    ArtifactError
        If ``path`` is not a valid bundle.

    See Also
    --------
    model_info_from_path
    """
    from spinerisk import __version__
    from spinerisk.bundle import BUNDLE_FORMAT_VERSION

    endpoint = model.endpoint_.name
    if path is None:
        return {
            "model_id": f"{endpoint}-{model.backend_}-unsaved",
            "model_version": f"{__version__}+bundle.{BUNDLE_FORMAT_VERSION}",
            "model_sha256": "",
        }
    return model_info_from_path(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        from spinerisk.exceptions import ArtifactError

        raise ArtifactError(f"Cannot read bundle {str(path)!r}: {exc}") from exc
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# the chunk function
# ---------------------------------------------------------------------------------------
def score_frame(
    model: Any,
    frame: pd.DataFrame,
    *,
    explain: int = 0,
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
        record's risk most (from :func:`spinerisk.explain.explain`).
    row_offset : int, default=0
        Input row number of the first row of ``frame`` (for chunks of a larger input).
    mapping : ColumnMapping, dict, path or None, default=None
        Column mapping applied before validation (:func:`spinerisk.apply_mapping`).
    duplicate_ids : collection of str or None, default=None
        Identifiers that occur more than once in the whole input; records with one of
        them are rejected. None means: look for duplicates within ``frame`` only.
    info : mapping or None, default=None
        ``model_id`` and ``model_version`` to write; None means :func:`model_info`
        of the model without a bundle.

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
        If the mapping does not fit the chunk.

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


def _schema(model: Any) -> Any:
    from spinerisk.schema.default import SPINE_SCHEMA

    return SPINE_SCHEMA if model.schema is None else model.schema


def _id_source(model: Any, mapping: Any) -> str:
    """The input column holding the record id (before the mapping renames it)."""
    id_field = model.id_field_
    if mapping is not None:
        for source, target in mapping.columns.items():
            if target == id_field:
                return str(source)
    return str(id_field)


def _id_text(values: pd.Series) -> np.ndarray:
    """Identifiers as text, as validation converts them (1 and 1.0 give "1"); None if missing."""
    arr = values.astype(object).to_numpy()
    missing = pd.isna(arr)
    if pd.api.types.infer_dtype(arr[~missing], skipna=True) in ("string", "empty"):
        out = arr.copy()
        out[missing] = None
        return out
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr):
        if missing[i]:
            out[i] = None
        elif isinstance(v, str):
            out[i] = v
        elif isinstance(v, float | np.floating) and float(v).is_integer():
            out[i] = str(int(v))
        elif isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def _duplicated_within(ids: np.ndarray) -> set[str]:
    present = pd.Series(ids[pd.notna(ids)], dtype=object)
    return set(present[present.duplicated(keep=False)].tolist())


def _duplicate_reason(id_field: str, value: str) -> str:
    # the wording validate() uses for a duplicate within one frame
    return f"{id_field}={value!r} is a duplicate; expected a unique {id_field}"


def _score_chunk(
    model: Any,
    raw: pd.DataFrame,
    rows: np.ndarray,
    *,
    mapping: Any,
    duplicate_ids: Any,
    explain: int,
    info: Mapping[str, str],
    timer: _Timer,
) -> _Chunk:
    from spinerisk.schema._validate import validate

    schema = _schema(model)
    id_field = model.id_field_
    raw = raw.reset_index(drop=True)
    with timer("map"):
        mapped = raw if mapping is None else _apply_mapping(raw, mapping, schema)
    n = len(mapped)
    ids = _id_text(mapped[id_field]) if id_field in mapped.columns else np.full(n, None)
    dup_set = _duplicated_within(ids) if duplicate_ids is None else duplicate_ids
    if dup_set:
        is_dup = pd.Series(ids, dtype=object).isin(list(dup_set)).to_numpy()
    else:
        is_dup = np.zeros(n, dtype=bool)

    with timer("validate"):
        if n:
            valid, rejected = validate(mapped, schema, on_invalid="split")
        else:
            valid, rejected = mapped.iloc[:0], pd.DataFrame({"row": [], "reasons": []})
    # a reason per rejected position; the duplicate-id reason is written the same way
    # whether the other occurrence is in this chunk or not
    dup_part = re.compile(
        rf"^{re.escape(id_field)}=.* is a duplicate; expected a unique {re.escape(id_field)}$"
    )
    reasons: dict[int, list[str]] = {}
    for pos, text in zip(rejected["row"].to_numpy(), rejected["reasons"].to_numpy(), strict=True):
        parts = [p for p in str(text).split(" | ") if not dup_part.match(p)]
        reasons[int(pos)] = parts
    for pos in np.flatnonzero(is_dup):
        reasons.setdefault(int(pos), []).append(_duplicate_reason(id_field, ids[pos]))
    bad = np.array(sorted(reasons), dtype=np.int64)

    keep = np.ones(n, dtype=bool)
    keep[bad] = False
    checked = valid.loc[keep[valid.index.to_numpy()]] if len(valid) else valid
    scores = _predict_checked(model, checked, timer)
    scores["model_id"] = info["model_id"]
    scores["model_version"] = info["model_version"]
    if explain:
        with timer("explain"):
            scores["top_drivers"] = _top_drivers(model, checked, explain)

    rejects = _as_text(raw.iloc[bad])
    rejects.insert(0, "reasons", [" | ".join(reasons[int(p)]) for p in bad])
    rejects.insert(0, "row", rows[bad].astype(np.int64))
    return _Chunk(scores, rejects.reset_index(drop=True), checked)


def _apply_mapping(raw: pd.DataFrame, mapping: Any, schema: Any) -> pd.DataFrame:
    from spinerisk.io import apply_mapping

    return apply_mapping(raw, mapping, schema)


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
def _predict_checked(model: Any, checked: pd.DataFrame, timer: _Timer) -> pd.DataFrame:
    """Risk columns and warnings for records that have already been validated.

    Gives exactly what :meth:`RiskModel.predict_risk` gives for the same records,
    without validating them a second time and without issuing the per-call warning.
    """
    id_field = model.id_field_
    horizons = model.horizons_
    columns = [f"risk_{round(h):d}d" for h in horizons]
    out = pd.DataFrame({id_field: checked[id_field].astype(object).to_numpy()})
    if len(checked) == 0:
        values = np.empty((0, len(columns)))
    else:
        values = model._risk_values(checked, horizons, timer=timer)
    for j, col in enumerate(columns):
        out[col] = values[:, j].astype(float)
    with timer("warnings"):
        from spinerisk.monitor import input_warnings  # what predict_risk reports

        out["warnings"] = input_warnings(model, checked).to_numpy(dtype=object)
    return out


def _top_drivers(model: Any, checked: pd.DataFrame, k: int) -> list[str]:
    if len(checked) == 0:
        return []
    from spinerisk.explain import explain

    drivers = explain(model, checked).top_drivers(k)
    return [str(d) for d in np.asarray(drivers, dtype=object)]


# ---------------------------------------------------------------------------------------
# formula-safe CSV
# ---------------------------------------------------------------------------------------
def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose text cells a spreadsheet would run as formulas are quoted.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading ``'`` (the OWASP advice for CSV injection). Numbers are untouched.

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
    """
    safe = frame.copy()
    for col in safe.columns:
        s = safe[col]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            safe[col] = s.map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v
            )
    return safe


# ---------------------------------------------------------------------------------------
# reading in chunks
# ---------------------------------------------------------------------------------------
class _ParquetSource:
    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise RecordsReadError(f"{path.name!r} is not a readable Parquet file: {exc}") from exc
        self.num_rows = int(self._file.metadata.num_rows)
        empty = self._file.schema_arrow.empty_table().to_pandas()
        self.columns = [str(c) for c in empty.columns]

    def _batches(self, size: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        import pyarrow as pa

        try:
            for batch in self._file.iter_batches(batch_size=size, columns=columns):
                yield pa.Table.from_batches([batch]).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise RecordsReadError(f"{self.path.name!r} cannot be read: {exc}") from exc

    def chunks(self, size: int) -> Iterator[tuple[pd.DataFrame, np.ndarray, pd.DataFrame]]:
        offset = 0
        for frame in self._batches(size):
            frame = frame.reset_index(drop=True)
            rows = np.arange(offset, offset + len(frame), dtype=np.int64)
            offset += len(frame)
            yield frame, rows, _no_read_rejects(self.columns)

    def ids(self, column: str) -> Iterator[np.ndarray]:
        if column not in self.columns:
            return
        for frame in self._batches(1 << 17, columns=[column]):
            yield _id_text(frame[column])


def _no_read_rejects(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=["row", "reasons", *columns])


class _CsvSource:
    """CSV/TSV read as text with :func:`spinerisk.read_records`'s conventions, in chunks.

    A row whose number of fields differs from the header's is not guessed at: it is
    rejected with its line number (``read_records`` refuses the whole file instead).
    """

    def __init__(self, path: Path, sep: str | None, encoding: str) -> None:
        from spinerisk.io import NA_VALUES

        self.path = path
        self.num_rows: int | None = None
        self.na_values = list(NA_VALUES)
        self.delimiter = sep if sep is not None else ("\t" if path.suffix == ".tsv" else ",")
        self.encoding = encoding
        with self._open() as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                header = next(reader, None)
            except UnicodeDecodeError as exc:
                raise self._decode_error(1) from exc
            except csv.Error as exc:
                raise RecordsReadError(f"{path.name!r} line 1: {exc}") from exc
        if not header or not any(h.strip() for h in header):
            raise RecordsReadError(f"{path.name!r} line 1: no header row with column names.")
        if len(header) == 1:
            for other in (";", "\t", "|", ","):
                if other != self.delimiter and other in header[0]:
                    shown = "\\t" if other == "\t" else other
                    raise RecordsReadError(
                        f"{path.name!r} line 1: the header {header[0][:80]!r} contains "
                        f"{shown!r} but no {self.delimiter!r}; the file looks "
                        f"{shown!r}-delimited. Pass sep={shown!r}."
                    )
        self.columns = header

    def _open(self) -> Any:
        encoding = self.encoding
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"  # a byte-order mark is not part of the first name
        try:
            return self.path.open(encoding=encoding, errors="strict", newline="")
        except LookupError as exc:
            raise RecordsReadError(
                f"encoding={self.encoding!r} is not a known text encoding."
            ) from exc

    def _decode_error(self, line: int) -> RecordsReadError:
        return RecordsReadError(
            f"{self.path.name!r} near line {line}: bytes that are not valid {self.encoding}. "
            "Re-save the file as UTF-8, or pass the file's real encoding."
        )

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of every non-blank data row."""
        with self._open() as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                next(reader)
                for fields in reader:
                    if fields:  # blank lines are skipped, as read_records does
                        yield reader.line_num, fields
            except UnicodeDecodeError as exc:
                raise self._decode_error(reader.line_num + 1) from exc
            except csv.Error as exc:
                raise RecordsReadError(
                    f"{self.path.name!r} line {reader.line_num}: {exc}. Check the quoting."
                ) from exc

    def chunks(self, size: int) -> Iterator[tuple[pd.DataFrame, np.ndarray, pd.DataFrame]]:
        width = len(self.columns)
        good: list[list[str]] = []
        good_rows: list[int] = []
        ragged: list[dict[str, Any]] = []
        seen = 0
        for line, fields in self._rows():
            if len(fields) == width:
                good.append(fields)
                good_rows.append(seen)
            else:
                shown = fields[:width] + [None] * (width - len(fields))
                reason = (
                    f"line {line} has {len(fields)} fields; expected {width} as in the header "
                    "(check the delimiter and the quoting of text that contains it)"
                )
                ragged.append(
                    {"row": seen, "reasons": reason, **dict(zip(self.columns, shown, strict=True))}
                )
            seen += 1
            if seen % size == 0:
                yield self._frame(good, good_rows, ragged)
                good, good_rows, ragged = [], [], []
        self.num_rows = seen
        if good or ragged or seen == 0:
            yield self._frame(good, good_rows, ragged)

    def _frame(
        self, good: list[list[str]], rows: list[int], ragged: list[dict[str, Any]]
    ) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
        frame = pd.DataFrame(good, columns=self.columns, dtype=object)
        frame = frame.mask(frame.isin(self.na_values))
        rejects = pd.DataFrame(ragged, columns=["row", "reasons", *self.columns])
        rejects["row"] = rejects["row"].astype(np.int64)
        return frame, np.asarray(rows, dtype=np.int64), rejects

    def ids(self, column: str) -> Iterator[np.ndarray]:
        if column not in self.columns:
            return
        j = self.columns.index(column)
        width = len(self.columns)
        block: list[Any] = []
        for _, fields in self._rows():
            block.append(fields[j] if len(fields) == width else None)
            if len(block) == 1 << 17:
                yield _text_ids(block, self.na_values)
                block = []
        yield _text_ids(block, self.na_values)


def _text_ids(block: list[Any], na_values: list[str]) -> np.ndarray:
    out = np.asarray(block, dtype=object)
    out[np.isin(out, na_values)] = None
    return out


def _open_source(path: Path, sep: str | None, encoding: str) -> _ParquetSource | _CsvSource:
    if not path.exists():
        raise FileNotFoundError(f"No records file at {str(path)!r}.")
    if path.is_dir():
        raise RecordsReadError(f"{str(path)!r} is a directory, not a records file.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _ParquetSource(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _CsvSource(path, sep, encoding)
    raise RecordsReadError(
        f"{path.name!r}: unknown file type {suffix!r}; batch scoring reads "
        f"{', '.join(_INPUT_SUFFIXES)}."
    )


def _hash_ids(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of the present identifiers of one block."""
    return np.asarray(
        pd.util.hash_array(ids[pd.notna(ids)].astype(object), categorize=False), dtype=np.uint64
    )


def _repeated(hashes: list[np.ndarray]) -> np.ndarray:
    allh = np.sort(np.concatenate(hashes)) if hashes else np.empty(0, dtype=np.uint64)
    return np.unique(allh[1:][allh[1:] == allh[:-1]])


def _candidates(ids: np.ndarray, repeated: np.ndarray) -> np.ndarray:
    present = ids[pd.notna(ids)]
    return present[np.isin(_hash_ids(ids), repeated)]


def _duplicate_ids(id_blocks: Callable[[], Iterator[np.ndarray]]) -> set[str]:
    """Identifiers occurring more than once, found with 64-bit hashes in bounded memory.

    A first pass keeps only the hashes of all identifiers (8 bytes each); when some
    repeat, a second pass collects the identifiers with those hashes and confirms the
    duplicates on their text, so a hash collision cannot reject a record.
    """
    repeated = _repeated([_hash_ids(b) for b in id_blocks()])
    if len(repeated) == 0:
        return set()
    found = [_candidates(b, repeated) for b in id_blocks()]
    return _duplicated_within(np.concatenate(found) if found else np.empty(0, dtype=object))


# ---------------------------------------------------------------------------------------
# atomic writers
# ---------------------------------------------------------------------------------------
class _AtomicWriter:
    """Writes a table incrementally to a hidden temporary file, renamed on commit."""

    def __init__(self, path: Path, columns: list[str], types: dict[str, str]) -> None:
        self.path = path
        self.kind = "parquet" if path.suffix.lower() == ".parquet" else "csv"
        self.columns = columns
        self.types = types  # column -> "string", "float64" or "int64"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer: Any = None
        self._fh: Any = None
        self._header = True
        self.rows = 0

    def _arrow_schema(self) -> Any:
        import pyarrow as pa

        kinds = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}
        return pa.schema([(c, kinds[self.types[c]]) for c in self.columns])

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame[self.columns]
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = self._arrow_schema()
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.tmp, schema)
            if len(frame):
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                self._writer.write_table(table)
        else:
            if self._fh is None:
                self._fh = self.tmp.open("w", encoding="utf-8", newline="")
            neutralize_formulas(frame).to_csv(self._fh, header=self._header, index=False)
            self._header = False
        self.rows += len(frame)

    def commit(self) -> None:
        if self._writer is None and self._fh is None:
            self.write(pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns}))
        self._close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _abort_all(writers: list[_AtomicWriter]) -> None:
    """Delete the temporary files of writers that were not committed."""
    for w in writers:
        if w.tmp.exists():
            w.abort()


def _score_columns(model: Any, explain: int) -> tuple[list[str], dict[str, str]]:
    risks = [f"risk_{round(h):d}d" for h in model.horizons_]
    cols = [model.id_field_, *risks, "warnings", "model_id", "model_version"]
    if explain:
        cols.append("top_drivers")
    types = {c: ("float64" if c in risks else "string") for c in cols}
    return cols, types


def _reject_columns(source_columns: list[str]) -> tuple[list[str], dict[str, str]]:
    cols = ["row", "reasons", *source_columns]
    types = dict.fromkeys(cols, "string")
    types["row"] = "int64"
    return cols, types


def _check_paths(input: Path, output: Path, rejects: Path | None, audit_log: Path | None) -> None:
    for label, path in (("output", output), ("rejects", rejects)):
        if path is None:
            continue
        if path.suffix.lower() not in _OUTPUT_SUFFIXES:
            raise RecordsReadError(
                f"{label} file {path.name!r}: unknown file type {path.suffix!r}; expected "
                ".parquet or .csv."
            )
        if not path.parent.is_dir():
            raise RecordsReadError(f"{label} folder {str(path.parent)!r} does not exist.")
        if path.resolve() == input.resolve():
            raise RecordsReadError(f"{label} file {str(path)!r} would overwrite the input.")
    if rejects is not None and rejects.resolve() == output.resolve():
        raise RecordsReadError("output and rejects must be different files.")
    if audit_log is not None and audit_log.resolve() in (output.resolve(), input.resolve()):
        raise RecordsReadError("the audit log must be a file of its own.")


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------
def score_file(
    model_path: str | os.PathLike[str],
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    rejects: str | os.PathLike[str] | None = None,
    mapping: Any = None,
    chunk_size: int = 100_000,
    explain: int = 0,
    engine: Literal["local", "dask"] = "local",
    scheduler: str | None = None,
    progress: bool = False,
    sep: str | None = None,
    encoding: str = "utf-8",
    audit_log: str | os.PathLike[str] | None = None,
    audit_source: Literal["cli", "api", "python"] = "python",
) -> ScoreSummary:
    """Score a CSV or Parquet records file in chunks; write scores and rejects atomically.

    The input is read ``chunk_size`` rows at a time (Parquet by record batches, CSV as
    text with the missing-value markers of :func:`spinerisk.read_records`), mapped,
    validated against the bundle's schema and scored by :func:`score_frame`. Scores and
    rejects go to temporary files next to their targets, which are renamed only when
    the whole input has been scored and ``rows_in == scored + rejected`` holds; on any
    failure both are deleted and no output file is left.

    Parameters
    ----------
    model_path : str or path-like
        A bundle written by :meth:`RiskModel.save`.
    input : str or path-like
        ``.csv``, ``.tsv``, ``.txt`` or ``.parquet`` records.
    output : str or path-like
        Scores file, ``.parquet`` or ``.csv`` (formula-safe): id, ``risk_<days>d`` per
        horizon, ``warnings``, ``model_id``, ``model_version`` (and ``top_drivers``).
    rejects : str, path-like or None, default=None
        File (``.csv`` or ``.parquet``) for the rejected rows: ``row`` (0-based input
        row), ``reasons`` and the original values as text. Rejected rows are always
        counted, and written when a path is given.
    mapping : ColumnMapping, dict, path or None, default=None
        Column mapping for a site's own column names and codes.
    chunk_size : int, default=100_000
        Rows per chunk; memory grows with it, results do not depend on it.
    explain : int, default=0
        Add ``top_drivers`` with this many drivers per record.
    engine : {"local", "dask"}, default="local"
        ``"dask"`` scores the partitions on a dask.distributed cluster (see
        :func:`score_dask`); results are identical.
    scheduler : str or None, default=None
        Address of the Dask scheduler; None starts a 2-worker LocalCluster.
    progress : bool, default=False
        Show a progress bar (rows processed) on stderr.
    sep : str or None, default=None
        Delimiter of text files; None means ``","`` (``"\\t"`` for ``.tsv``).
    encoding : str, default="utf-8"
        Text encoding of CSV input (strict).
    audit_log : str, path-like or None, default=None
        Append one line per scored record to this :class:`spinerisk.monitor.AuditLog`.
        Lines are appended chunk by chunk; a run that fails later leaves the lines of
        the chunks already scored (the log records predictions made, not files written).
    audit_source : {"cli", "api", "python"}, default="python"
        ``source`` written in the audit lines.

    Returns
    -------
    ScoreSummary

    Raises
    ------
    FileNotFoundError
        If the input does not exist.
    RecordsReadError
        Unknown file type, unreadable input or output location.
    ArtifactError
        If the bundle is not valid.
    MappingError, SchemaValidationError
        A mapping that does not fit, or columns that do not fit the schema.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> import spinerisk as sr
    >>> from spinerisk.scoring import score_file
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> cohort = sr.make_spine_cohort(400, seed=0)  # synthetic records
    >>> _ = sr.RiskModel("nonunion", backend="linear").fit(cohort).save(tmp / "m.srb")
    >>> cohort.head(50).to_parquet(tmp / "in.parquet")
    >>> s = score_file(tmp / "m.srb", tmp / "in.parquet", tmp / "out.parquet", chunk_size=20)
    >>> s.rows_in, s.scored, s.rejected
    (50, 50, 0)
    >>> list(pd.read_parquet(tmp / "out.parquet").columns)
    ['patient_id', 'risk_183d', 'warnings', 'model_id', 'model_version']
    """
    from spinerisk.bundle import load_bundle

    start = time.perf_counter()
    input, output = Path(input), Path(output)
    rejects_path = None if rejects is None else Path(rejects)
    audit_path = None if audit_log is None else Path(audit_log)
    if engine not in ("local", "dask"):
        raise ValueError(f"engine must be 'local' or 'dask'; got engine={engine!r}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    if isinstance(explain, bool) or not isinstance(explain, int) or explain < 0:
        raise ValueError(f"explain must be a non-negative integer; got {explain!r}.")
    source = _open_source(input, sep, encoding)
    _check_paths(input, output, rejects_path, audit_path)
    timer = _Timer()
    with timer("load"):
        info = model_info_from_path(model_path)
        model = load_bundle(model_path, sha256=info["model_sha256"])
    column_mapping = _as_mapping(mapping)
    audit = None
    if audit_path is not None:
        from spinerisk.monitor import AuditLog

        audit = AuditLog(audit_path)

    score_cols, score_types = _score_columns(model, explain)
    reject_cols, reject_types = _reject_columns(source.columns)
    with ExitStack() as stack:
        writers: list[_AtomicWriter] = []
        out_writer = _AtomicWriter(output, score_cols, score_types)
        writers.append(out_writer)
        rej_writer = None
        if rejects_path is not None:
            rej_writer = _AtomicWriter(rejects_path, reject_cols, reject_types)
            writers.append(rej_writer)
        stack.callback(_abort_all, writers)
        bar = stack.enter_context(_Progress(progress, source.num_rows))

        rows_in = scored = rejected = flagged = 0
        if engine == "local":
            with timer("read"):
                id_col = _id_source(model, column_mapping)
                dup_ids = _duplicate_ids(lambda: source.ids(id_col))
            chunks = _local_chunks(
                model, source, chunk_size, column_mapping, dup_ids, explain, info, timer
            )
        else:
            chunks = _dask_chunks(
                model,
                source,
                input,
                column_mapping,
                explain,
                info,
                scheduler,
                stack,
                audit is not None,
            )
        stack.callback(chunks.close)  # stops the reader thread if a chunk fails
        for n_rows, chunk in chunks:
            rows_in += n_rows
            with timer("write"):
                out_writer.write(chunk.scores)
                if rej_writer is not None:
                    rej_writer.write(chunk.rejects)
            if audit is not None and len(chunk.scores):
                risk = [c for c in chunk.scores.columns if str(c).startswith("risk_")]
                outputs = chunk.scores.set_index(model.id_field_)[[*risk, "warnings"]]
                audit.log_predictions(
                    model_info=info,
                    inputs=chunk.valid,
                    outputs=outputs,
                    source=audit_source,
                )
            scored += len(chunk.scores)
            rejected += len(chunk.rejects)
            flagged += int((chunk.scores["warnings"] != "").sum())
            bar(n_rows)
        if rows_in != scored + rejected:  # never drop a row silently
            raise RuntimeError(
                f"Row accounting failed: {rows_in} rows in but {scored} scored + {rejected} "
                "rejected; no output was written. Please report this as a bug."
            )
        for w in writers:
            w.commit()
    return ScoreSummary(
        rows_in=rows_in,
        scored=scored,
        rejected=rejected,
        output=output,
        rejects=rejects_path,
        flagged=flagged,
        seconds=time.perf_counter() - start,
        timings=dict(timer.seconds) if engine == "local" else {},
    )


def model_info_from_path(path: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`model_info` of a bundle file, without building the model.

    Parameters
    ----------
    path : str or path-like
        A bundle written by :meth:`RiskModel.save`.

    Returns
    -------
    dict
        ``model_id``, ``model_version`` and ``model_sha256``.
    """
    from spinerisk.bundle import BUNDLE_FORMAT_VERSION, read_manifest

    path = Path(path)
    if not path.is_file():
        from spinerisk.exceptions import ArtifactError

        raise ArtifactError(f"No model bundle at {str(path)!r}.")
    sha = _sha256(path)
    manifest = read_manifest(path, sha256=sha)
    created = str(manifest.get("created_utc", ""))
    saved_by = manifest.get("versions", {}).get("spinerisk", "unknown")
    fmt = manifest.get("format_version", BUNDLE_FORMAT_VERSION)
    return {
        "model_id": f"{manifest['endpoint']['name']}-{manifest['backend']}-{created}-{sha[:12]}",
        "model_version": f"{saved_by}+bundle.{fmt}",
        "model_sha256": sha,
    }


def _local_chunks(
    model: Any,
    source: _ParquetSource | _CsvSource,
    chunk_size: int,
    mapping: Any,
    dup_ids: set[str],
    explain: int,
    info: Mapping[str, str],
    timer: _Timer,
) -> Iterator[tuple[int, _Chunk]]:
    it = _read_ahead(source.chunks(chunk_size))
    while True:
        with timer("read"):  # time spent waiting for the reader thread
            item = next(it, None)
        if item is None:
            return
        frame, rows, read_rejects = item
        chunk = _score_chunk(
            model,
            frame,
            rows,
            mapping=mapping,
            duplicate_ids=dup_ids,
            explain=explain,
            info=info,
            timer=timer,
        )
        if len(read_rejects):
            both = pd.concat([chunk.rejects, read_rejects], ignore_index=True)
            chunk = chunk._replace(rejects=both.sort_values("row", kind="stable"))
        yield len(frame) + len(read_rejects), chunk


_DONE = object()


def _read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """Iterate ``items`` with the next one read by a background thread (one item ahead).

    Reading Parquet (Arrow) and CSV parsing overlap with scoring; an exception in the
    reader is raised here, in order, and leaving early stops the reader.
    """
    import queue
    import threading

    buffer: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            result: tuple[Any, BaseException | None] = (_DONE, None)
        except BaseException as exc:  # handed to the consumer, raised there
            result = (_DONE, exc)
        while not stop.is_set():
            try:
                buffer.put(result, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="spinerisk-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class _Progress:
    """A rich progress bar on stderr (rows processed), or nothing."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        self.total = total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._bar.start()
        task = self._bar.add_task("rows", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------------------
def _score_part(
    model: Any,
    part: pd.DataFrame,
    offset: int,
    mapping: Any,
    dup_ids: set[str],
    explain: int,
    info: Mapping[str, str],
    keep_valid: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = np.arange(offset, offset + len(part), dtype=np.int64)
    chunk = _score_chunk(
        model,
        part,
        rows,
        mapping=mapping,
        duplicate_ids=dup_ids,
        explain=explain,
        info=info,
        timer=_Timer(),
    )
    return chunk.scores, chunk.rejects, chunk.valid if keep_valid else chunk.valid.iloc[:0]


def _dask_plan(
    ddf: Any,
    model: Any,
    mapping: Any,
    explain: int,
    info: Mapping[str, str],
    *,
    keep_valid: bool = False,
) -> list[Any]:
    """One delayed ``(scores, rejects, valid)`` per partition, with global row numbers."""
    from dask.delayed import delayed

    id_col = _id_source(model, mapping)
    lengths = ddf.map_partitions(len).compute()
    offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))[:-1]])
    dup_ids: set[str] = set()
    if id_col in ddf.columns:  # as _duplicate_ids, with the passes on the workers
        ids = ddf[id_col]
        hashes = ids.map_partitions(
            lambda s: pd.Series(_hash_ids(_id_text(s))), meta=(id_col, "uint64")
        ).compute()
        repeated = _repeated([hashes.to_numpy(dtype=np.uint64)])
        if len(repeated):
            found = ids.map_partitions(
                lambda s: pd.Series(_candidates(_id_text(s), repeated), dtype=object),
                meta=(id_col, object),
            ).compute()
            dup_ids = _duplicated_within(found.to_numpy(dtype=object))
    model_d = delayed(model, pure=True)
    score = delayed(_score_part, pure=True, nout=3)
    return [
        score(model_d, part, int(off), mapping, dup_ids, explain, dict(info), keep_valid)
        for part, off in zip(ddf.to_delayed(), offsets, strict=True)
    ]


def score_dask(
    ddf: Any,
    model: Any,
    *,
    explain: int = 0,
    mapping: Any = None,
    info: Mapping[str, str] | None = None,
) -> tuple[Any, Any]:
    """Score a Dask dataframe partition by partition with :func:`score_frame`.

    Row numbers are global (partition offsets are computed first) and identifiers
    duplicated anywhere in the dataframe are rejected in every partition, so the result
    equals the local path's exactly.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        Raw records (for example ``dask.dataframe.read_parquet(...)``).
    model : RiskModel
        A fitted model; it is sent to the workers with the task graph.
    explain : int, default=0
        As in :func:`score_frame`.
    mapping : ColumnMapping, dict, path or None, default=None
        As in :func:`score_frame`.
    info : mapping or None, default=None
        ``model_id`` and ``model_version`` to write (see :func:`model_info`).

    Returns
    -------
    scores, rejects : dask.dataframe.DataFrame
        Lazy frames with the columns of :func:`score_frame`'s results; compute them
        together (``dask.compute(scores, rejects)``) so each partition is scored once.

    Notes
    -----
    Offsets and duplicate identifiers need one pass over the data before scoring.
    The partitions are scored by ``dask.delayed`` calls of the chunk function (one
    call returns both frames) rather than two ``map_partitions`` calls, which would
    score every partition twice.

    Examples
    --------
    >>> import dask, dask.dataframe as dd
    >>> import spinerisk as sr
    >>> from spinerisk.scoring import score_dask
    >>> cohort = sr.make_spine_cohort(400, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> scores, rejects = score_dask(dd.from_pandas(cohort.head(30), npartitions=3), model)
    >>> s, r = dask.compute(scores, rejects, scheduler="synchronous")
    >>> len(s), len(r)
    (30, 0)
    """
    import dask.dataframe as dd

    mapping = _as_mapping(mapping)
    info = model_info(model) if info is None else info
    plan = _dask_plan(ddf, model, mapping, explain, info)
    cols, types = _score_columns(model, explain)
    score_meta = pd.DataFrame(
        {c: pd.Series([], dtype="float64" if types[c] == "float64" else object) for c in cols}
    )
    reject_cols, _ = _reject_columns([str(c) for c in ddf.columns])
    reject_meta = pd.DataFrame(
        {c: pd.Series([], dtype="int64" if c == "row" else object) for c in reject_cols}
    )
    scores = dd.from_delayed([p[0] for p in plan], meta=score_meta, verify_meta=False)
    rejects = dd.from_delayed([p[1] for p in plan], meta=reject_meta, verify_meta=False)
    return scores, rejects


def _dask_chunks(
    model: Any,
    source: _ParquetSource | _CsvSource,
    input: Path,
    mapping: Any,
    explain: int,
    info: Mapping[str, str],
    scheduler: str | None,
    stack: ExitStack,
    keep_valid: bool,
) -> Iterator[tuple[int, _Chunk]]:
    from spinerisk._optional import import_optional

    dd = import_optional("dask.dataframe", extra="dask", purpose="--engine dask")
    distributed = import_optional("distributed", extra="dask", purpose="--engine dask")
    from spinerisk.io import NA_VALUES

    if isinstance(source, _CsvSource):
        # Dask's CSV reader pads short rows silently; refuse files the local path would
        # have to reject row by row
        ragged = _ragged_lines(source)
        if ragged:
            raise RecordsReadError(
                f"{input.name!r}: {len(ragged)} row(s) do not match the header's "
                f"{len(source.columns)} fields (first at line {ragged[0]}). The Dask engine "
                "needs a well-formed file; use engine='local' to reject them row by row."
            )
        ddf = dd.read_csv(
            str(input),
            sep=source.delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=list(NA_VALUES),
            encoding="utf-8-sig"
            if source.encoding.lower() in ("utf-8", "utf8")
            else source.encoding,
        )
    else:
        ddf = dd.read_parquet(str(input))
    if scheduler is None:
        cluster = stack.enter_context(
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
        )
        client = stack.enter_context(distributed.Client(cluster))
    else:
        try:
            client = stack.enter_context(distributed.Client(scheduler, timeout="20s"))
        except (OSError, TimeoutError) as exc:
            raise RecordsReadError(
                f"Cannot reach the Dask scheduler at {scheduler!r}: {exc}"
            ) from exc
    plan = _dask_plan(ddf, model, mapping, explain, info, keep_valid=keep_valid)
    window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
    for start in range(0, len(plan), window):
        for fut in client.compute(plan[start : start + window]):
            scores, rejects, valid = fut.result()
            yield len(scores) + len(rejects), _Chunk(scores, rejects, valid)


def _ragged_lines(source: _CsvSource) -> list[int]:
    width = len(source.columns)
    return [line for line, fields in source._rows() if len(fields) != width]
