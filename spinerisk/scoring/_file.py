"""Scoring a records file: chunks streamed through :func:`score_frame`, scores and rejects
written atomically after the row accounting has been checked."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from spinerisk.audit import AuditLog
from spinerisk.exceptions import RecordsReadError
from spinerisk.io import find_duplicate_ids
from spinerisk.reference import trained_on_synthetic
from spinerisk.riskmodel import RiskModel, load, predictor_columns
from spinerisk.scoring._chunk import (
    _OUTPUT_SUFFIXES,
    ScoreSummary,
    _as_mapping,
    _as_text,
    _check_chunk,
    _Chunk,
    _finish_chunk,
    _id_source,
    _interval_level,
    _mapped_ids,
    _reject_columns,
    _schema,
    _score_columns,
    _Timer,
    model_info_from_path,
    neutralize_formulas,
    out_of_scope_count,
)
from spinerisk.scoring._dask import _dask_chunks
from spinerisk.scoring._sources import _CsvSource, _open_source, _ParquetSource

# ---------------------------------------------------------------------------------------
# private staging of outputs: temporary files, published together or not at all
# ---------------------------------------------------------------------------------------
_STAGING_PREFIX = ".spinerisk-"
_STAGING_SUFFIX = ".tmp"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale(folder: Path, targets: list[Path]) -> None:
    """Remove what earlier runs on this host left behind when they were killed.

    A run stages its outputs in a private folder named after the host and its process
    id; a folder whose process is gone belonged to a killed run. Temporary files of the
    earlier layout (``.<target>.XXXXXXXX.tmp`` beside the target) are removed for this
    run's targets. Only the current user's entries are touched.
    """
    pattern = re.compile(
        rf"{re.escape(_STAGING_PREFIX + _host())}-(\d+)-[A-Za-z0-9_]+{re.escape(_STAGING_SUFFIX)}"
    )
    legacy = [re.compile(rf"\.{re.escape(t.name)}\.[A-Za-z0-9_]{{8}}\.tmp") for t in targets]
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            match = pattern.fullmatch(entry.name)
            if match and entry.is_dir(follow_symlinks=False) and not _alive(int(match[1])):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif any(p.fullmatch(entry.name) for p in legacy) and entry.is_file(
                follow_symlinks=False
            ):
                os.unlink(entry.path)
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue


def _output_error(label: str, path: Path, exc: OSError) -> RecordsReadError:
    reason = exc.strerror or type(exc).__name__
    return RecordsReadError(
        f"Cannot write the {label} {str(path)!r}: {reason}. Choose a file in a folder you "
        "can write to; nothing was written."
    )


class _Staging:
    """Private temporary files for one run's outputs.

    Each output folder gets a private sub-folder (mode 0700, named after the host and
    process id so that a later run can tell when it was left by a killed run); the
    temporary files in it are mode 0600. :meth:`publish` renames them onto their targets
    together: if one rename fails, the targets already replaced are put back.
    :meth:`cleanup` removes the private folders and whatever is still in them.
    """

    def __init__(self) -> None:
        self.dirs: dict[Path, Path] = {}

    def prepare(self, target: Path, label: str) -> Path:
        """The private folder for ``target``'s folder, made (and stale ones removed) once."""
        folder = target.parent
        if folder not in self.dirs:
            _remove_stale(folder, [target])
            try:
                made = tempfile.mkdtemp(
                    prefix=f"{_STAGING_PREFIX}{_host()}-{os.getpid()}-",
                    suffix=_STAGING_SUFFIX,
                    dir=folder,
                )
            except OSError as exc:
                raise _output_error(f"{label} folder", folder, exc) from exc
            self.dirs[folder] = Path(made)
        return self.dirs[folder]

    def tmp_for(self, target: Path, label: str) -> Path:
        """A new empty temporary file (mode 0600) for ``target``, in its private folder."""
        private = self.prepare(target, label)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{target.name}.", dir=private)
        except OSError as exc:
            raise _output_error(f"{label} file", target, exc) from exc
        os.close(fd)
        return Path(tmp)

    def publish(self, items: list[tuple[Path, Path, str]]) -> None:
        """Rename each ``(tmp, target, label)`` onto its target, all or none."""
        done: list[tuple[Path, Path | None]] = []
        for tmp, target, label in items:
            try:
                if target.is_dir():
                    raise IsADirectoryError(21, "it is a folder, not a file")
                backup = None
                if target.exists() or target.is_symlink():  # kept until all are published
                    backup = tmp.with_name(tmp.name + ".previous")
                    os.link(target, backup, follow_symlinks=False)
                os.replace(tmp, target)
            except OSError as exc:
                self._restore(done)
                raise _output_error(f"{label} file", target, exc) from exc
            done.append((target, backup))

    @staticmethod
    def _restore(done: list[tuple[Path, Path | None]]) -> None:
        for target, backup in reversed(done):
            try:
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(backup, target)
            except OSError:  # report the first failure; the staging folder holds the rest
                continue

    def cleanup(self) -> None:
        for folder in self.dirs.values():
            shutil.rmtree(folder, ignore_errors=True)
        self.dirs.clear()


@contextmanager
def _removed_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run with SystemExit (exit code 128 + signal), so that
    the staged temporary files are removed on the way out. Only in the main thread, and
    only for signals whose handler is still the default one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _AtomicWriter:
    """Writes a table incrementally to a private temporary file (see :class:`_Staging`)."""

    def __init__(
        self,
        path: Path,
        columns: list[str],
        types: dict[str, str],
        staging: _Staging,
        label: str = "output",
    ) -> None:
        self.path = path
        self.label = label
        self.kind = "parquet" if path.suffix.lower() == ".parquet" else "csv"
        self.columns = columns
        self.types = types  # column -> "string", "float64" or "int64"
        self.tmp = staging.tmp_for(path, label)
        self._writer: Any = None
        self._fh: Any = None
        self._header = True
        self.rows = 0

    def _arrow_schema(self) -> Any:
        import pyarrow as pa

        kinds = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}
        return pa.schema([(c, kinds[self.types[c]]) for c in self.columns])

    def write(self, frame: pd.DataFrame) -> None:
        try:
            self._write(frame)
        except OSError as exc:  # a full disk, a folder removed under us
            raise _output_error(f"{self.label} file", self.path, exc) from exc

    def _write(self, frame: pd.DataFrame) -> None:
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

    def close(self) -> None:
        """Finish the temporary file (an empty table when nothing was written)."""
        if self._writer is None and self._fh is None:
            self.write(pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns}))
        try:
            self._close()
        except OSError as exc:
            raise _output_error(f"{self.label} file", self.path, exc) from exc

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()


def _publish(writers: list[_AtomicWriter], staging: _Staging) -> None:
    """Close every writer, then rename all temporary files onto their targets together."""
    for w in writers:
        w.close()
    staging.publish([(w.tmp, w.path, w.label) for w in writers])


def _abort_all(writers: list[_AtomicWriter], staging: _Staging) -> None:
    """Close the writers and delete their temporary files and the staging folders."""
    try:
        for w in writers:
            if w.tmp.exists():
                w.abort()
    finally:
        staging.cleanup()


def write_table_atomically(frame: pd.DataFrame, path: Path, label: str = "rejects") -> None:
    """Write one table through a private temporary file renamed onto ``path``.

    ``.csv`` (formula-safe) or ``.parquet``; values are written as text, except an
    integer ``row`` column. On any failure nothing is left behind, and an existing
    ``path`` is unchanged.

    Parameters
    ----------
    frame : DataFrame
        The table, a rejects table for example.
    path : Path
        The file to write, ``.csv`` or ``.parquet``.
    label : str, default="rejects"
        What the file is, in error messages.

    Raises
    ------
    RecordsReadError
        For an unknown file type or a location that cannot be written.
    """
    if path.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise RecordsReadError(
            f"{label} file {path.name!r}: unknown file type {path.suffix!r}; expected "
            ".csv or .parquet."
        )
    out = _as_text(frame)
    types = dict.fromkeys(out.columns, "string")
    if "row" in frame.columns and pd.api.types.is_integer_dtype(frame["row"].dtype):
        out["row"] = frame["row"].to_numpy(dtype=np.int64)
        types["row"] = "int64"
    staging = _Staging()
    writers: list[_AtomicWriter] = []
    try:
        with _removed_on_termination():
            writers.append(_AtomicWriter(path, list(out.columns), types, staging, label))
            writers[0].write(out)
            _publish(writers, staging)
    finally:
        _abort_all(writers, staging)


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
        if path.is_dir():
            raise RecordsReadError(
                f"{label} path {str(path)!r} is a folder; give the name of a file to write."
            )
        if path.resolve() == input.resolve():
            raise RecordsReadError(f"{label} file {str(path)!r} would overwrite the input.")
    if rejects is not None and rejects.resolve() == output.resolve():
        raise RecordsReadError("output and rejects must be different files.")
    taken = [p.resolve() for p in (output, input, rejects) if p is not None]
    if audit_log is not None and audit_log.resolve() in taken:
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
    interval: float | None = None,
    engine: Literal["local", "dask"] = "local",
    scheduler: str | None = None,
    progress: bool = False,
    sep: str | None = None,
    encoding: str = "utf-8",
    audit_log: str | os.PathLike[str] | None = None,
    audit_source: Literal["cli", "api", "python"] = "python",
    audit_key: bytes | str | None = None,
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
        horizon, ``warnings``, ``model_id``, ``model_version`` (the model's own version:
        its bundle's creation time, UTC; see :func:`model_info`) and, with ``explain``,
        ``top_drivers``.
    rejects : str, path-like or None, default=None
        File (``.csv`` or ``.parquet``) for the rejected rows: ``row`` (0-based input
        row), ``reasons`` and the original values as text. Rejected rows are always
        counted, and written when a path is given.
    mapping : ColumnMapping, dict, path or None, default=None
        Column mapping for a site's own column names and codes.
    chunk_size : int, default=100_000
        Rows per chunk; memory grows with it (up to six chunks are held at once: one
        validated while two are scored), not with the input's length; results do not
        depend on it.
    explain : int, default=0
        Add ``top_drivers`` with this many drivers per record.
    interval : float or None, default=None
        Add ``c_lo`` and ``c_hi`` after each risk column ``c``: the per-patient interval
        of this coverage from the bundle's bootstrap refits (``spinerisk train
        --intervals N``); a bundle without refits is refused before anything is written.
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
        Append one line per scored record to this :class:`spinerisk.audit.AuditLog`.
        Lines are appended chunk by chunk; a run that fails later leaves the lines of
        the chunks already scored (the log records predictions made, not files written).
    audit_source : {"cli", "api", "python"}, default="python"
        ``source`` written in the audit lines.
    audit_key : bytes, str or None, default=None
        Secret key of the audit log (HMAC-SHA256 record hashes); see
        :class:`spinerisk.audit.AuditLog`.

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
        A mapping that does not fit the file's columns, or columns that do not fit the
        schema. Values the mapping cannot translate reject their rows, with the reason.

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
    start = time.perf_counter()
    input, output = Path(input), Path(output)
    rejects_path = None if rejects is None else Path(rejects)
    audit_path = None if audit_log is None else Path(audit_log)
    _check_options(engine, chunk_size, explain)
    source = _open_source(input, sep, encoding)
    _check_paths(input, output, rejects_path, audit_path)
    staging = _Staging()
    writers: list[_AtomicWriter] = []
    # SIGTERM/SIGHUP unwind through the finally below, which removes the staged files
    with _removed_on_termination():
        try:
            # the private staging folders first: an unwritable folder fails before scoring
            for label, target in (("output", output), ("rejects", rejects_path)):
                if target is not None:
                    staging.prepare(target, label)
            timer = _Timer()
            model, info = _load(model_path, timer)
            column_mapping = _as_mapping(mapping)
            audit = None if audit_path is None else AuditLog(audit_path, key=audit_key)
            level = _interval_level(model, interval)
            with ExitStack() as stack:
                out_writer, rej_writer = _open_writers(
                    model,
                    source,
                    (output, rejects_path),
                    (explain, level, column_mapping),
                    staging,
                    writers,
                )
                bar = stack.enter_context(_Progress(progress, source.num_rows))
                if engine == "local":
                    chunks = _local_run(
                        model, source, chunk_size, column_mapping, explain, info, timer, level
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
                        interval=level,
                    )
                stack.callback(chunks.close)  # stops the reader thread if a chunk fails
                counts = _write_chunks(
                    chunks, (out_writer, rej_writer), model, info, timer, bar, audit, audit_source
                )
                _publish(writers, staging)  # scores and rejects together, or neither
        finally:
            _abort_all(writers, staging)
    return ScoreSummary(
        rows_in=counts.rows_in,
        scored=counts.scored,
        rejected=counts.rejected,
        output=output,
        rejects=rejects_path,
        flagged=counts.flagged,
        seconds=time.perf_counter() - start,
        timings=dict(timer.seconds) if engine == "local" else {},
        trained_on_synthetic_data=trained_on_synthetic(model),
        out_of_scope=counts.out_of_scope,
        all_missing=counts.all_missing(),
    )


# -- the steps of score_file() --------------------------------------------------------------
def _check_options(engine: str, chunk_size: Any, explain: Any) -> None:
    if engine not in ("local", "dask"):
        raise ValueError(f"engine must be 'local' or 'dask'; got engine={engine!r}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    if isinstance(explain, bool) or not isinstance(explain, int) or explain < 0:
        raise ValueError(f"explain must be a non-negative integer; got {explain!r}.")


def _load(model_path: str | os.PathLike[str], timer: _Timer) -> tuple[RiskModel, dict[str, str]]:
    """The model and its identity, loaded from the bundle whose sha256 the identity
    holds (so both come from the same bytes)."""
    with timer("load"):
        info = model_info_from_path(model_path)
        model = load(model_path, sha256=info["model_sha256"])
    return model, info


def _open_writers(
    model: RiskModel,
    source: _ParquetSource | _CsvSource,
    paths: tuple[Path, Path | None],
    options: tuple[int, float | None, Any],
    staging: _Staging,
    writers: list[_AtomicWriter],
) -> tuple[_AtomicWriter, _AtomicWriter | None]:
    """The scores writer and, when a rejects file is asked for, the rejects writer; each
    is added to ``writers`` as soon as it exists (so that a failure removes its file)."""
    output, rejects = paths
    explain, interval, mapping = options  # top drivers, interval level, column mapping
    score_cols, score_types = _score_columns(model, explain, interval)
    writers.append(_AtomicWriter(output, score_cols, score_types, staging, "output"))
    if rejects is None:
        return writers[-1], None
    reject_cols, reject_types = _reject_columns(source.columns, mapping)
    writers.append(_AtomicWriter(rejects, reject_cols, reject_types, staging, "rejects"))
    return writers[-2], writers[-1]


def _local_run(
    model: RiskModel,
    source: _ParquetSource | _CsvSource,
    chunk_size: int,
    mapping: Any,
    explain: int,
    info: Mapping[str, str],
    timer: _Timer,
    interval: float | None,
) -> Generator[tuple[int, _Chunk], None, None]:
    """The local engine: identifiers repeated anywhere in the input, then the chunks
    scored by :func:`_local_chunks`."""
    with timer("read"):
        id_col = _id_source(model, mapping)
        dup_ids = find_duplicate_ids(
            lambda: (_mapped_ids(block, mapping, model.id_field_) for block in source.ids(id_col))
        )
    return _local_chunks(
        model, source, chunk_size, mapping, dup_ids, explain, info, timer, interval=interval
    )


def _write_chunks(
    chunks: Iterable[tuple[int, _Chunk]],
    writers: tuple[_AtomicWriter, _AtomicWriter | None],
    model: RiskModel,
    info: Mapping[str, str],
    timer: _Timer,
    bar: Any,
    audit: AuditLog | None,
    audit_source: str,
) -> _Counts:
    """Write each chunk's scores and rejects (and audit lines), counting its rows; the
    counts must add up (never drop a row silently)."""
    out_writer, rej_writer = writers
    counts = _Counts()
    predictors = _known_in_training(model)
    for n_rows, chunk in chunks:
        with timer("write"):
            out_writer.write(chunk.scores)
            if rej_writer is not None:
                rej_writer.write(chunk.rejects)
        if audit is not None:
            _audit_chunk(audit, model, chunk, info, audit_source)
        counts.add(n_rows, chunk, predictors)
        bar(n_rows)
    counts.check()
    return counts


def _known_in_training(model: RiskModel) -> list[str]:
    """Predictors the training records had values of (all of them when the model has no
    training reference): a column missing everywhere is news only for these."""
    predictors = model.endpoint_.predictors(model.schema_)
    fields = (getattr(model, "reference_", None) or {}).get("fields")
    if not fields:
        return predictors
    # a partial reference may hold None for a rate: unknown counts as observed
    return [p for p in predictors if p in fields and (fields[p].get("missing_rate") or 0.0) < 1.0]


def _audit_chunk(
    audit: AuditLog, model: RiskModel, chunk: _Chunk, info: Mapping[str, str], source: str
) -> None:
    """One audit line per scored record of a chunk."""
    if not len(chunk.scores):
        return
    risk = [c for c in chunk.scores.columns if str(c).startswith("risk_")]
    outputs = chunk.scores.set_index(model.id_field_)[[*risk, "warnings"]]
    audit.log_predictions(
        model_info=dict(info),
        inputs=chunk.valid[predictor_columns(model, chunk.valid)],
        outputs=outputs,
        source=source,
    )


@dataclass
class _Counts:
    """Rows in, scored, rejected, flagged and out of scope, summed over chunks."""

    rows_in: int = 0
    scored: int = 0
    rejected: int = 0
    flagged: int = 0
    out_of_scope: int = 0
    valid: int = 0
    missing: dict[str, int] = field(default_factory=dict)  # per predictor, valid rows

    def add(self, n_rows: int, chunk: _Chunk, predictors: list[str]) -> None:
        self.rows_in += n_rows
        self.valid += len(chunk.valid)
        for name in predictors:
            gaps = int(chunk.valid[name].isna().sum()) if name in chunk.valid else len(chunk.valid)
            self.missing[name] = self.missing.get(name, 0) + gaps
        held = out_of_scope_count(chunk.scores)  # a gate's out-of-scope rows
        self.out_of_scope += held
        self.scored += len(chunk.scores) - held
        self.rejected += len(chunk.rejects)
        self.flagged += int((chunk.scores["warnings"] != "").sum())

    def all_missing(self) -> tuple[str, ...]:
        """Predictors missing in every valid row (an absent or empty column)."""
        if not self.valid:
            return ()
        return tuple(name for name, k in self.missing.items() if k == self.valid)

    def check(self) -> None:
        """Every row in is scored, rejected or out of scope; else nothing is written."""
        if self.rows_in != self.scored + self.rejected + self.out_of_scope:
            raise RuntimeError(
                f"Row accounting failed: {self.rows_in} rows in but {self.scored} scored + "
                f"{self.rejected} rejected + {self.out_of_scope} out of scope; no output was "
                "written. Please report this as a bug."
            )


_WORKERS = 2  # chunks scored at once, beside the one being validated


def _local_chunks(
    model: RiskModel,
    source: _ParquetSource | _CsvSource,
    chunk_size: int,
    mapping: Any,
    dup_ids: set[str],
    explain: int,
    info: Mapping[str, str],
    timer: _Timer,
    *,
    interval: float | None = None,
) -> Generator[tuple[int, _Chunk], None, None]:
    """Scored chunks in input order, from a pipeline of threads.

    A reader thread reads ahead, this thread validates chunk k+2 (validation stays on one
    thread), and two worker threads compute the features and risks of chunks k and k+1:
    the boosters release the GIL, so one chunk's boosters run beside another's pandas
    work. At most six chunks are held at once (read, validated, two scored, one waiting,
    one written): memory follows the chunk size, whatever the input's length. The stage
    timings are summed over the threads, so they can add up to more than the wall time.

    Warning filters are process-wide and ``warnings.catch_warnings`` (which validation and
    scikit-learn use) is not thread-safe: the filters are put back as they were when the
    run ends.
    """
    import warnings
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from spinerisk.io import number_fields

    numbers = number_fields(source.columns, _schema(model), mapping)
    filters = list(warnings.filters)
    it = _read_ahead(source.chunks(chunk_size))
    timers = [_Timer() for _ in range(_WORKERS)]  # one per worker thread
    free: list[_Timer] = list(timers)
    lock = threading.Lock()

    def finish(part: Any) -> _Chunk:
        with lock:
            own = free.pop()
        try:
            return _finish_chunk(
                model, part, explain=explain, info=info, timer=own, interval=interval
            )
        finally:
            with lock:
                free.append(own)

    def done(n_rows: int, read_rejects: pd.DataFrame, future: Future[_Chunk]) -> _Chunk:
        chunk = future.result()
        if len(read_rejects):
            both = pd.concat([chunk.rejects, read_rejects], ignore_index=True)
            chunk = chunk._replace(rejects=both.sort_values("row", kind="stable"))
        return chunk

    pending: deque[tuple[int, pd.DataFrame, Future[_Chunk]]] = deque()
    pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="spinerisk-score")
    try:
        while True:
            with timer("read"):  # time spent waiting for the reader thread
                item = next(it, None)
            if item is None:
                break
            frame, rows, read_rejects = item
            frame, rows, read_rejects = _split_lenient_numbers(frame, rows, read_rejects, numbers)
            part = _check_chunk(
                model, frame, rows, mapping=mapping, duplicate_ids=dup_ids, timer=timer
            )
            pending.append(
                (len(frame) + len(read_rejects), read_rejects, pool.submit(finish, part))
            )
            del frame, part  # held by the worker until it is done
            if len(pending) > _WORKERS:
                first = pending.popleft()
                yield first[0], done(*first)
        while pending:
            first = pending.popleft()
            yield first[0], done(*first)
    finally:
        for _, _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        it.close()
        if warnings.filters != filters:
            # a list at run time; typeshed declares it a read-only Sequence
            warnings.filters[:] = filters  # type: ignore[index]
            getattr(warnings, "_filters_mutated", lambda: None)()  # drop cached decisions
        for own in timers:
            for stage, seconds in own.seconds.items():
                timer.seconds[stage] += seconds
                own.seconds[stage] = 0.0


def _split_lenient_numbers(
    frame: pd.DataFrame, rows: np.ndarray, read_rejects: pd.DataFrame, numbers: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Move rows whose numbers are written leniently (``NAN``, ``8_1``, non-ASCII digits)
    from ``frame`` to the read rejects, with the reason: validation would read them as
    missing or as numbers (see :func:`spinerisk.io.number_text_problem`)."""
    from spinerisk.io import lenient_numbers

    bad = lenient_numbers(frame, numbers)
    if not bad:
        return frame, rows, read_rejects
    pos = np.array(sorted(bad), dtype=np.int64)
    moved = _as_text(frame.iloc[pos])
    moved.insert(0, "reasons", [" | ".join(bad[int(p)]) for p in pos])
    moved.insert(0, "row", rows[pos].astype(np.int64))
    keep = np.setdiff1d(np.arange(len(frame)), pos)
    both = pd.concat([read_rejects, moved], ignore_index=True) if len(read_rejects) else moved
    return frame.iloc[keep].reset_index(drop=True), rows[keep], both.reset_index(drop=True)


_DONE = object()


def _read_ahead(items: Iterator[Any]) -> Generator[Any, None, None]:
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
