"""Records in: read CSV / Parquet / JSON files and map a hospital's columns and codes.

Nothing here models or validates clinical values; :func:`read_records` keeps text as
text and :func:`apply_mapping` only renames columns, translates declared codes and
applies declared unit factors. :func:`spinerisk.validate` does the checking.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from spinerisk.exceptions import MappingError, RecordsReadError
from spinerisk.schema import NA_VALUES, number_text_problem, resolve_schema
from spinerisk.schema._spec import Schema, is_missing

__all__ = [
    "MAX_FIELD_CHARS",
    "MAX_LINE_CHARS",
    "NA_VALUES",
    "ColumnMapping",
    "ReadResult",
    "apply_mapping",
    "as_frame",
    "duplicated_within",
    "find_duplicate_ids",
    "hash_ids",
    "id_candidates",
    "id_text",
    "load_mapping",
    "number_text_problem",
    "read_records",
    "repeated_hashes",
]

#: Longest field read from a text file (characters); a longer one makes its row unreadable.
MAX_FIELD_CHARS = 65_536
#: Longest physical line read from a text file (characters); a longer line is skipped in
#: bounded memory and its row is unreadable, so a file without line breaks (``/dev/zero``)
#: cannot exhaust memory.
MAX_LINE_CHARS = 1_048_576
_MAX_RECORD_CHARS = 2 * MAX_LINE_CHARS
_MAX_LISTED = 20


# ---------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------
class ReadResult(NamedTuple):
    """Result of ``read_records(..., on_invalid="split")``.

    Attributes
    ----------
    records : DataFrame
        The rows that could be read, indexed by their 0-based data row in the file.
    rejects : DataFrame
        The rows that could not be read: ``row`` (0-based data row), ``reasons`` and the
        values as text where they could be split into fields (None otherwise). Always
        ``len(records) + len(rejects)`` equals the number of data rows.
    """

    records: pd.DataFrame
    rejects: pd.DataFrame


def read_records(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    on_invalid: Literal["raise", "split"] = "raise",
) -> Any:
    """Read clinical records from CSV, TSV, Parquet, JSON or JSON-lines.

    CSV and JSON values are read as text (missing markers in CSV: ``""``, ``NA``,
    ``N/A``, ``NaN``, ``nan``, ``null``, ``NULL``, exactly as written);
    :func:`spinerisk.validate` converts them to the schema's types and reports every
    value that does not fit, by row and column.

    Text files are read in bounded memory, row by row: a line longer than
    :data:`MAX_LINE_CHARS` is skipped without being held in memory, and a field longer
    than :data:`MAX_FIELD_CHARS`, a NUL byte (``\\x00``), a row whose number of fields
    differs from the header's or malformed quoting make that row unreadable (never
    truncated or guessed at). A quote that is never closed rejects its own line only;
    the lines after it are read on their own.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.tsv``, ``.txt``, ``.parquet``, ``.json`` or ``.jsonl`` file.
    sep : str or None, default=None
        Field delimiter for text files; None means ``","`` (``"\\t"`` for ``.tsv``).
    encoding : str, default="utf-8"
        Text encoding. Decoding is strict: a byte that is not valid in this encoding is
        an error naming its line, never replaced silently.
    on_invalid : {"raise", "split"}, default="raise"
        What to do with rows that cannot be read: ``"raise"`` refuses the file with a
        :class:`RecordsReadError` naming every such row (capped) and its reason;
        ``"split"`` returns the readable rows and the unreadable ones with their reasons.

    Returns
    -------
    DataFrame or ReadResult
        With ``on_invalid="raise"``: one row per record; ``attrs["source"]`` holds the
        file name for messages. With ``"split"``: ``(records, rejects)``.

    Raises
    ------
    RecordsReadError
        Unknown file type, a path that is not a regular file, undecodable bytes, a
        delimiter that does not match, a header that is missing, has a duplicated or
        empty column name, and (with ``on_invalid="raise"``) unreadable rows.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spinerisk.io import read_records
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "x.csv").write_text("patient_id,age_years\\nP1,71\\nP2,\\n")
    >>> read_records(d / "x.csv")
      patient_id age_years
    0         P1        71
    1         P2       NaN
    >>> _ = (d / "y.csv").write_text("patient_id;age_years\\nP1;71\\n")
    >>> read_records(d / "y.csv")
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.RecordsReadError: 'y.csv' line 1: the header 'patient_id;age_years' contains ';' but no ','; the file looks ';'-delimited. Pass sep=';'.
    >>> _ = (d / "z.csv").write_text("patient_id,age_years\\nP1,71\\nP2,7\\x001\\n")
    >>> records, rejects = read_records(d / "z.csv", on_invalid="split")
    >>> rejects[["row", "reasons"]].to_dict("records")
    [{'row': 1, 'reasons': 'age_years contains a NUL byte (\\\\x00) at character 2 (line 3)'}]
    """  # noqa: E501
    if on_invalid not in ("raise", "split"):
        raise ValueError(f"on_invalid must be 'raise' or 'split'; got on_invalid={on_invalid!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No records file at {str(path)!r}.")
    suffix = path.suffix.lower()
    name = path.name
    if suffix not in (".csv", ".tsv", ".txt", ".parquet", ".json", ".jsonl"):
        raise RecordsReadError(
            f"{name!r}: unknown file type {suffix!r}; expected .csv, .tsv, .txt, .parquet, "
            ".json or .jsonl."
        )
    check_regular_file(path)
    if suffix in (".csv", ".tsv", ".txt"):
        df, rejects = _read_text_table(path, delimiter_of(sep, suffix), encoding)
    else:
        if suffix == ".parquet":
            from spinerisk._optional import import_optional

            import_optional("pyarrow", extra="parquet", purpose="reading Parquet files")
            df = pd.read_parquet(path)
        else:
            text = _decode(path, encoding)
            try:
                df = pd.read_json(io.StringIO(text), lines=suffix == ".jsonl", dtype=False)
            except ValueError as exc:
                raise RecordsReadError(f"{name!r} is not valid JSON records: {exc}") from exc
        df, rejects = _split_cells(df)
    df.attrs["source"] = name
    if on_invalid == "split":
        rejects.attrs["source"] = name
        return ReadResult(df, rejects)
    if len(rejects):
        raise RecordsReadError(unreadable_message(name, rejects))
    return df


def check_regular_file(path: Path) -> None:
    if path.is_dir():
        raise RecordsReadError(f"{str(path)!r} is a directory, not a records file.")
    if not path.is_file():  # a device (/dev/zero), pipe or socket: no end, no size
        raise RecordsReadError(
            f"{path.name!r} is not a regular file (a device, pipe or socket); copy the "
            "records to a file first."
        )


def unreadable_message(name: str, rejects: pd.DataFrame) -> str:
    n = len(rejects)
    if n == 1:
        lines = [
            f"{name!r}: row {rejects['row'].iloc[0]} cannot be read: {rejects['reasons'].iloc[0]}."
        ]
    else:
        lines = [f"{name!r}: {n} rows cannot be read:"]
        shown = rejects.iloc[:_MAX_LISTED]
        for row, reason in zip(shown["row"], shown["reasons"], strict=True):
            lines.append(f"  row {row}: {reason}.")
        if n > _MAX_LISTED:
            lines.append(f"  ... and {n - _MAX_LISTED} more.")
    lines.append(
        "Correct the source, or read with on_invalid='split' (spinerisk validate --rejects "
        "FILE) to keep the other rows and get these back with their reasons."
    )
    return "\n".join(lines)


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _bad_bytes(path.name, encoding, line, col, data[exc.start : exc.end]) from exc
    except LookupError as exc:
        raise RecordsReadError(f"encoding={encoding!r} is not a known text encoding.") from exc


def _bad_bytes(name: str, encoding: str, line: int, col: int, bad: bytes) -> RecordsReadError:
    return RecordsReadError(
        f"{name!r} line {line}, column {col}: byte {bad!r} is not valid {encoding}. "
        "Re-save the file as UTF-8, or pass the file's real encoding (for example "
        "encoding='latin-1' in Python, --encoding latin-1 on the command line)."
    )


def _locate_bad_bytes(path: Path, encoding: str) -> RecordsReadError:
    """The first undecodable byte of a file, found line by line in bounded memory."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as fh:
        line = 0
        while True:
            chunk = fh.readline(MAX_LINE_CHARS + 1)
            if not chunk:
                break
            line += 1
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return _bad_bytes(
                    path.name, encoding, line, exc.start + 1, chunk[exc.start : exc.end]
                )
            if chunk[-1:] != b"\n":  # the rest of an over-long line: same line number
                line -= 1
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _bad_bytes(path.name, encoding, max(line, 1), 1, b"")
    return RecordsReadError(f"{path.name!r}: bytes that are not valid {encoding}.")


class _TextRow(NamedTuple):
    """One data row of a text file: where it starts, its fields, why it is unreadable."""

    line: int
    fields: list[Any]  # text, or None where a value is not kept (too long, absent)
    problem: str | None
    text: str = ""  # the row's lines as read (readable rows only)


class _RecordTooLong(Exception):
    """Raised by :class:`_Lines` into the csv reader to end an endless quoted field."""


class _Lines:
    """The physical lines of a text file, none longer than :data:`MAX_LINE_CHARS`.

    A longer line is read through and dropped (its first :data:`MAX_LINE_CHARS`
    characters are kept to say which column overflows) and an empty line is handed on in
    its place; ``long_line`` says so. The lines of the current record are kept (bounded)
    so that a record joined by an unbalanced quote can be split again.
    """

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.num = 0  # physical lines read
        self.record: list[str] = []
        self.record_chars = 0
        self.long_line: tuple[int, int, str] | None = None

    def start_record(self) -> None:
        self.record = []
        self.record_chars = 0
        self.long_line = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line: str = self.fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.num += 1
        if len(line) > MAX_LINE_CHARS and line[-1] not in "\r\n":
            prefix, length, tail = line[:MAX_LINE_CHARS], len(line), line
            while tail and tail[-1] not in "\r\n":  # read through, keeping nothing
                tail = self.fh.readline(1 << 16)
                length += len(tail)
            length -= len(tail) - len(tail.rstrip("\r\n"))
            if self.long_line is None:
                self.long_line = (self.num, length, prefix)
            line = "\n"
        self.record_chars += len(line)
        if self.record_chars > _MAX_RECORD_CHARS:
            raise _RecordTooLong
        self.record.append(line)
        return line


class TextTable:
    """A CSV/TSV file read as text, in bounded memory: the header, then row by row.

    Shared by :func:`read_records` and batch scoring, so both read a file the same way.
    """

    def __init__(self, path: Path, delimiter: str, encoding: str) -> None:
        self.path = path
        self.name = path.name
        self.delimiter = delimiter
        self.encoding = encoding
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise RecordsReadError(f"encoding={encoding!r} is not a known text encoding.") from exc
        self.columns = self._header()

    def _open(self) -> Any:
        encoding = self.encoding
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"  # a byte-order mark is not part of the first name
        return self.path.open(encoding=encoding, errors="strict", newline="")

    def _reader(self, lines: _Lines) -> Any:
        return csv.reader(lines, delimiter=self.delimiter, strict=True)

    def _header(self) -> list[str]:
        name = self.name
        with self._open() as fh:
            lines = _Lines(fh)
            try:
                header: list[str] = next(self._reader(lines), [])
            except UnicodeDecodeError as exc:
                raise _locate_bad_bytes(self.path, self.encoding) from exc
            except (csv.Error, _RecordTooLong) as exc:
                raise RecordsReadError(
                    f"{name!r} line 1: the header cannot be read ({exc}); is this a records file?"
                ) from exc
        if lines.long_line is not None:
            raise RecordsReadError(
                f"{name!r} line 1 is longer than {MAX_LINE_CHARS:,} characters: this is not "
                "a records file with one header line (no line breaks?)."
            )
        if not header or not any(h.strip() for h in header):
            raise RecordsReadError(f"{name!r} line 1: no header row with column names.")
        if any("\x00" in h for h in header):
            raise RecordsReadError(f"{name!r} line 1: the header contains a NUL byte (\\x00).")
        if len(header) == 1:
            for other in (";", "\t", "|", ","):
                if other != self.delimiter and other in header[0]:
                    shown = "\\t" if other == "\t" else other
                    raise RecordsReadError(
                        f"{name!r} line 1: the header {header[0][:80]!r} contains {shown!r} "
                        f"but no {self.delimiter!r}; the file looks {shown!r}-delimited. "
                        f"Pass sep={shown!r}."
                    )
        seen: dict[str, int] = {}
        for j, h in enumerate(header, start=1):
            if not h.strip():
                raise RecordsReadError(
                    f"{name!r} line 1: column {j} of the header has no name (a delimiter at "
                    "the end of the line?). Name it, or remove the empty column."
                )
            if h in seen:
                raise RecordsReadError(
                    f"{name!r} line 1: the header names {h[:80]!r} twice (columns {seen[h]} "
                    f"and {j}); each column must appear once."
                )
            seen[h] = j
        return header

    def rows(self) -> Iterator[_TextRow]:
        """Every non-blank data row in order; unreadable ones carry their ``problem``."""
        with self._open() as fh:
            lines = _Lines(fh)
            reader = self._reader(lines)
            width = len(self.columns)
            try:
                next(reader)  # the header, checked in __init__
                while True:
                    lines.start_record()
                    start = lines.num + 1
                    error: str | None = None
                    try:
                        fields = next(reader)
                    except StopIteration:
                        return
                    except csv.Error as exc:
                        fields, error = [], str(exc)
                    except _RecordTooLong:
                        fields = []
                        error = f"a field runs over more than {_MAX_RECORD_CHARS:,} characters"
                    if lines.long_line is not None:
                        yield self._long_line_row(start, *lines.long_line)
                    elif len(lines.record) > 1 and (error or len(fields) != len(self.columns)):
                        yield from self._split_joined(start, list(lines.record))
                    elif error is not None:
                        yield self._error_row(start, error, lines.record[0] if lines.record else "")
                    elif len(lines.record) == 1 and len(fields) == width:  # the usual row
                        text = lines.record[0]
                        if len(text) <= MAX_FIELD_CHARS and "\x00" not in text:
                            yield _TextRow(start, fields, None, text)
                        else:
                            yield self._checked(start, fields, lines.record)
                    elif fields:  # blank lines are skipped
                        yield self._checked(start, fields, lines.record)
            except UnicodeDecodeError as exc:
                raise _locate_bad_bytes(self.path, self.encoding) from exc

    def frame(self, texts: list[str]) -> pd.DataFrame:
        """The readable rows (their ``text``) as a frame of text, missing markers as NaN.

        The rows were checked already (width, quoting, NUL bytes, lengths), so pandas'
        C parser reads them as the csv module did, only faster.
        """
        if not texts:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns})
        body = "".join(t if t.endswith(("\n", "\r")) else t + "\n" for t in texts)
        return pd.read_csv(
            io.StringIO(body),
            sep=self.delimiter,
            header=None,
            names=self.columns,
            dtype=str,
            keep_default_na=False,
            na_values=list(NA_VALUES),
            quoting=csv.QUOTE_MINIMAL,
            skip_blank_lines=False,
            engine="c",
        )

    def _checked(self, line: int, fields: list[str], raw: list[str]) -> _TextRow:
        """A parsed row: the header's width, no NUL byte, no field too long."""
        width = len(self.columns)
        if len(fields) != width:
            shown: list[str | None] = [*fields[:width], *[None] * (width - len(fields))]
            return _TextRow(
                line,
                [None if len(v or "") > MAX_FIELD_CHARS else v for v in shown],
                f"line {line} has {len(fields)} fields; expected {width} as in the header "
                "(check the delimiter and the quoting of text that contains it)",
            )
        text = "".join(raw)
        if len(text) <= MAX_FIELD_CHARS and "\x00" not in text:  # test them whole first
            return _TextRow(line, fields, None, text)
        problems = [
            f"{col} {problem} (line {line})"
            for col, value in zip(self.columns, fields, strict=True)
            if (problem := _text_cell_problem(value)) is not None
        ]
        if problems:
            kept = [None if len(v) > MAX_FIELD_CHARS else v for v in fields]
            return _TextRow(line, kept, " | ".join(problems))
        return _TextRow(line, fields, None, text)

    def _long_line_row(self, start: int, line: int, length: int, prefix: str) -> _TextRow:
        col = self._overflowing_column(prefix)
        where = f"{col} is longer than {MAX_FIELD_CHARS:,} characters: " if col else ""
        return _TextRow(
            start,
            [None] * len(self.columns),
            f"{where}line {line} has {length:,} characters, more than the "
            f"{MAX_LINE_CHARS:,} read; the row was skipped unread",
        )

    def _error_row(self, line: int, error: str, text: str) -> _TextRow:
        if "field larger than field limit" in error:
            col = self._overflowing_column(text)
            what = col or "a field"
            return _TextRow(
                line,
                [None] * len(self.columns),
                f"{what} is longer than {MAX_FIELD_CHARS:,} characters (line {line}); the "
                "row was not read",
            )
        return _TextRow(
            line,
            self._loose_fields(text),
            f"line {line} has malformed quoting ({error}); quote a field that contains the "
            'delimiter, and double a quote inside it ("")',
        )

    def _split_joined(self, start: int, physical: list[str]) -> Iterator[_TextRow]:
        """A record that spans several lines and does not fit: an unbalanced quote joined
        them. Its first line is rejected; the others are read on their own."""
        yield _TextRow(
            start,
            self._loose_fields(physical[0]),
            f'line {start} has an unbalanced quote (") that joins it to the '
            f"{len(physical) - 1} line(s) after it; the lines after it were read on their own",
        )
        for k, text in enumerate(physical[1:], start=start + 1):
            try:
                fields = next(csv.reader([text], delimiter=self.delimiter, strict=True), [])
            except csv.Error as exc:
                yield self._error_row(k, str(exc), text)
                continue
            if fields:
                yield self._checked(k, fields, [text])

    def _loose_fields(self, text: str) -> list[str | None]:
        """The line split at every delimiter, quotes kept: values for a rejects file."""
        width = len(self.columns)
        parts = text.rstrip("\r\n").split(self.delimiter)
        return [None if len(p) > MAX_FIELD_CHARS else p for p in parts[:width]] + [None] * max(
            0, width - len(parts)
        )

    def _overflowing_column(self, text: str) -> str | None:
        """The column whose field passes :data:`MAX_FIELD_CHARS` in (the start of) a line."""
        d, pos, j, n = self.delimiter, 0, 0, len(text)
        while pos <= n and j < len(self.columns):
            start = pos
            if text.startswith('"', pos):
                end = pos + 1
                while True:
                    end = text.find('"', end)
                    if end < 0 or not text.startswith('"', end + 1):
                        break
                    end += 2
                end = n if end < 0 else end + 1
                nxt = text.find(d, end)
            else:
                nxt = text.find(d, pos)
            end = n if nxt < 0 else nxt
            if end - start > MAX_FIELD_CHARS:
                return self.columns[j]
            if nxt < 0:
                return None
            pos, j = nxt + 1, j + 1
        return None


def _text_cell_problem(value: Any) -> str | None:
    """Why one text cell cannot be read (a NUL byte, too long), or None."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_FIELD_CHARS:
        return f"is {len(value):,} characters long, more than the {MAX_FIELD_CHARS:,} read"
    at = value.find("\x00")
    if at >= 0:
        return f"contains a NUL byte (\\x00) at character {at + 1}"
    return None


def _rejects_frame(
    rows: list[int], reasons: list[str], values: list[list[Any]], columns: list[str]
) -> pd.DataFrame:
    out = (
        pd.DataFrame(values, columns=columns, dtype=object)
        if values
        else pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    )
    out.insert(0, "reasons", pd.Series(reasons, dtype=object))
    out.insert(0, "row", np.asarray(rows, dtype=np.int64))
    out.index = pd.Index(np.asarray(rows, dtype=np.int64))
    return out


def _read_text_table(
    path: Path, delimiter: str, encoding: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = TextTable(path, delimiter, encoding)
    good: list[str] = []
    good_rows: list[int] = []
    bad_rows: list[int] = []
    bad_reasons: list[str] = []
    bad_values: list[list[Any]] = []
    for i, row in enumerate(table.rows()):
        if row.problem is None:
            good.append(row.text)
            good_rows.append(i)
        else:
            bad_rows.append(i)
            bad_reasons.append(row.problem)
            bad_values.append(row.fields)
    df = table.frame(good)
    if bad_rows:
        df.index = pd.Index(np.asarray(good_rows, dtype=np.int64))
    return df, _rejects_frame(bad_rows, bad_reasons, bad_values, table.columns)


def _split_cells(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a Parquet/JSON frame with a text cell that cannot be read (NUL, too long)."""
    reasons: dict[int, list[str]] = {}
    for col in df.columns:
        s = df[col]
        if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
            continue
        try:
            suspect = s.str.contains("\x00", regex=False, na=False) | (
                s.str.len() > MAX_FIELD_CHARS
            )
        except AttributeError:  # no text in this column
            continue
        values = s.to_numpy(dtype=object)
        for pos in np.flatnonzero(suspect.to_numpy(dtype=bool)):
            reasons.setdefault(int(pos), []).append(f"{col} {_text_cell_problem(values[pos])}")
    columns = [str(c) for c in df.columns]
    if not reasons:
        return df, _rejects_frame([], [], [], columns)
    bad = sorted(reasons)
    kept = np.setdiff1d(np.arange(len(df)), bad)
    shown = [
        [None if isinstance(v, str) and len(v) > MAX_FIELD_CHARS else v for v in row]
        for row in df.iloc[bad].astype(object).to_numpy().tolist()
    ]
    rejects = _rejects_frame(bad, [" | ".join(reasons[p]) for p in bad], shown, columns)
    records = df.iloc[kept]
    records.index = pd.Index(kept.astype(np.int64))
    return records, rejects


# ---------------------------------------------------------------------------------------
# column mapping
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnMapping:
    """How a hospital extract's columns and codes map onto a schema.

    Every change it makes is declared here: renaming, code translation, whitespace
    stripping and unit factors. Anything not declared is left for validation to judge.

    Parameters
    ----------
    columns : mapping of str to str
        Source column name -> schema field name. Source columns already named like a
        schema field need no entry.
    values : mapping of str to mapping, default={}
        Schema field -> {source code: schema code}, e.g. ``{"sex": {"Male": "M"}}`` or
        ``{"current_smoking": {"Y": True, "N": False}}``. Source codes match by their
        text, so ``1``, ``1.0`` and ``"1"`` all match the key ``"1"``.
    strip_whitespace : bool or tuple of str, default=False
        Strip leading and trailing spaces from text (``"T12 "`` -> ``"T12"``): True for
        every column, or the schema fields to strip.
    scale : mapping of str to float, default={}
        Schema field -> factor applied to the source number (``{"height_cm": 100}`` for
        heights recorded in metres).
    ignore : tuple of str, default=()
        Source columns deliberately left out (free text, names): they are dropped.

    Examples
    --------
    >>> from spinerisk.io import ColumnMapping
    >>> m = ColumnMapping.from_dict({"columns": {"Gender": "sex"},
    ...                              "values": {"sex": {"Male": "M", "Female": "F"}}})
    >>> m.columns["Gender"]
    'sex'
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    strip_whitespace: bool | tuple[str, ...] = False
    scale: Mapping[str, float] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    _KEYS = ("columns", "values", "strip_whitespace", "scale", "ignore")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> ColumnMapping:
        """Build a mapping from a dict (the parsed TOML/YAML file)."""
        if not isinstance(spec, Mapping):
            raise MappingError(f"A column mapping must be a table/dict; got {type(spec).__name__}.")
        unknown = sorted(set(spec) - set(cls._KEYS))
        if unknown:
            raise MappingError(
                f"Unknown key(s) {unknown} in the column mapping; expected some of "
                f"{', '.join(cls._KEYS)}."
            )
        strip = spec.get("strip_whitespace", False)
        if not isinstance(strip, bool):
            strip = tuple(strip)
        for key in ("columns", "values", "scale"):
            if not isinstance(spec.get(key, {}), Mapping):
                raise MappingError(f"Column mapping key {key!r} must be a table of name = value.")
        return cls(
            columns=dict(spec.get("columns", {})),
            values={k: dict(v) for k, v in spec.get("values", {}).items()},
            strip_whitespace=strip,
            scale={k: float(v) for k, v in spec.get("scale", {}).items()},
            ignore=tuple(spec.get("ignore", ())),
        )


def load_mapping(path: str | os.PathLike[str]) -> ColumnMapping:
    """Load a :class:`ColumnMapping` from a TOML or YAML file.

    Parameters
    ----------
    path : str or path-like
        ``.toml``, ``.yaml`` or ``.yml`` file with the keys ``columns``, ``values``,
        ``strip_whitespace``, ``scale`` and ``ignore``.

    Returns
    -------
    ColumnMapping

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spinerisk.io import load_mapping
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "site.toml"
    >>> _ = p.write_text('[columns]\\nGender = "sex"\\n[values.sex]\\nMale = "M"\\n')
    >>> load_mapping(p).values["sex"]
    {'Male': 'M'}
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{path.name!r} is not valid TOML: {exc}") from exc
    elif suffix in (".yaml", ".yml"):
        from spinerisk._optional import import_optional

        yaml = import_optional("yaml", extra="yaml", purpose="reading YAML column mappings")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise MappingError(f"{path.name!r} is not valid YAML: {exc}") from exc
    else:
        raise MappingError(f"{path.name!r}: a column mapping is a .toml, .yaml or .yml file.")
    return ColumnMapping.from_dict(spec)


def _code_key(value: Any) -> str:
    """Text form used to match source codes: 1, 1.0 and "1" all give "1"."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def apply_mapping(
    df: pd.DataFrame,
    mapping: ColumnMapping | Mapping[str, Any] | str | os.PathLike[str],
    schema: Schema | None = None,
) -> pd.DataFrame:
    """Rename a hospital extract's columns and translate its codes onto a schema.

    Parameters
    ----------
    df : DataFrame
        The extract as read (for example by :func:`read_records`).
    mapping : ColumnMapping, dict or path
        The mapping, a dict in the same shape, or a TOML/YAML file.
    schema : Schema or None, default=None
        Target schema; None means :data:`spinerisk.schema.SPINE_SCHEMA`.

    Returns
    -------
    DataFrame
        A new frame with schema field names; the input is not modified.

    Raises
    ------
    MappingError
        A mapping target that is not a schema field, a mapped source column that is not
        in the extract, a source column that is neither mapped nor ignored, a required
        schema field that nothing maps to, or codes with no translation (each listed
        with row, column and value).

    Examples
    --------
    >>> import pandas as pd
    >>> from spinerisk.io import apply_mapping
    >>> raw = pd.DataFrame({"ID": ["A1", "A2"], "Age": [81, 77], "Gender": ["F", "Male"]})
    >>> mapping = {"columns": {"ID": "patient_id", "Age": "age_years", "Gender": "sex"},
    ...            "values": {"sex": {"Male": "M", "Female": "F"}}}
    >>> apply_mapping(raw, mapping)
      patient_id  age_years sex
    0         A1         81   F
    1         A2         77   M
    >>> raw.loc[1, "Gender"] = "U"
    >>> apply_mapping(raw, mapping)
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.MappingError: 1 value cannot be mapped onto the schema:
      row 1: Gender='U' (field sex): not in [values.sex] and not a code of the schema (expected one of F, M, not missing).
    Add missing codes under [values.<field>] in the mapping; fix non-numbers in [scale] fields at the source.
    """  # noqa: E501
    schema = resolve_schema(schema)
    if isinstance(mapping, str | os.PathLike):
        mapping = load_mapping(mapping)
    elif not isinstance(mapping, ColumnMapping):
        mapping = ColumnMapping.from_dict(mapping)

    out, problems = map_frame(df, mapping, schema)
    if problems:
        problems.sort(key=lambda p: p[0])
        n = len(problems)
        lines = [f"{n} value{'s' if n != 1 else ''} cannot be mapped onto the schema:"]
        lines += [f"  row {row}: {text}." for row, text in problems[:_MAX_LISTED]]
        if n > _MAX_LISTED:
            lines.append(f"  ... and {n - _MAX_LISTED} more.")
        lines.append(
            "Add missing codes under [values.<field>] in the mapping; fix non-numbers in "
            "[scale] fields at the source."
        )
        raise MappingError("\n".join(lines))
    out.attrs = dict(df.attrs)
    return out


def map_frame(
    df: pd.DataFrame, mapping: ColumnMapping, schema: Schema
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """:func:`apply_mapping` without raising for values: the mapped frame and every value
    that could not be mapped as ``(row position, reason)``. Problems with the columns
    themselves still raise MappingError (no record could be mapped)."""
    _check_mapped_columns(df, mapping, schema)
    out = _renamed(df, mapping, schema)
    source_of = {v: k for k, v in mapping.columns.items()}
    strip = mapping.strip_whitespace
    strip_fields = list(out.columns) if strip is True else list(strip or ())
    for f in strip_fields:
        if f in out.columns:
            out[f] = out[f].map(lambda v: v.strip() if isinstance(v, str) else v)
    problems = _apply_scale(out, mapping, source_of)
    problems += _translate_codes(out, mapping, schema, source_of)
    out.attrs = dict(df.attrs)
    return out, problems


def _check_mapped_columns(df: pd.DataFrame, mapping: ColumnMapping, schema: Schema) -> None:
    """Raise MappingError if the mapping names unknown fields or absent source columns,
    maps two columns to one field, or leaves a source column neither mapped nor ignored."""
    bad_targets = sorted({t for t in mapping.columns.values() if t not in schema})
    if bad_targets:
        raise MappingError(
            f"The column mapping targets {bad_targets}, which are not fields of schema "
            f"{schema.name!r}. Check the spelling (see the schema reference)."
        )
    for key, section in (("values", mapping.values), ("scale", mapping.scale)):
        unknown = sorted(f for f in section if f not in schema)
        if unknown:
            raise MappingError(f"[{key}] names {unknown}, which are not fields of the schema.")
    absent = [c for c in mapping.columns if c not in df.columns]
    if absent:
        names = list(map(str, df.columns))
        more = f" and {len(names) - 30} more" if len(names) > 30 else ""
        raise MappingError(
            f"The column mapping maps source column(s) {absent}, which are not in the extract "
            f"(its columns: {names[:30]}{more})."
        )
    targets = list(mapping.columns.values())
    dup_targets = sorted({t for t in targets if targets.count(t) > 1})
    if dup_targets:
        raise MappingError(f"Several source columns map to the same field(s) {dup_targets}.")
    unmapped = [
        c
        for c in df.columns
        if c not in mapping.columns and c not in mapping.ignore and c not in schema
    ]
    if unmapped:
        raise MappingError(
            f"Source column(s) {unmapped} are neither mapped to a schema field nor listed in "
            "`ignore`. Map them under [columns] or add them to ignore = [...] to leave them out."
        )


def _renamed(df: pd.DataFrame, mapping: ColumnMapping, schema: Schema) -> pd.DataFrame:
    """``df`` without the ignored columns and with source columns renamed to fields;
    MappingError if a field then appears twice or a required field is not mapped."""
    out = df.drop(columns=[c for c in mapping.ignore if c in df.columns]).rename(
        columns=dict(mapping.columns)
    )
    clash = out.columns[out.columns.duplicated()].unique().tolist()
    if clash:
        raise MappingError(
            f"After renaming, field(s) {clash} appear twice: a source column is already named "
            "like the field another column is mapped to. Map or ignore one of them."
        )
    missing_required = [f for f in schema.required if f not in out.columns]
    if missing_required:
        raise MappingError(
            f"Required field(s) {missing_required} are not mapped: no source column maps to "
            f"them. Source columns: {list(map(str, df.columns))[:30]}."
        )
    return out


def _apply_scale(
    out: pd.DataFrame, mapping: ColumnMapping, source_of: dict[str, str]
) -> list[tuple[int, str]]:
    """Multiply the ``[scale]`` fields of ``out`` in place by their unit factors; the
    values that are not numbers, as ``(row position, reason)``."""
    problems: list[tuple[int, str]] = []
    for f, factor in mapping.scale.items():
        if f not in out.columns:
            continue
        num = pd.to_numeric(out[f], errors="coerce")
        bad = num.isna() & ~out[f].map(is_missing)
        for row in np.flatnonzero(bad.to_numpy()):
            problems.append(
                (
                    int(row),
                    f"{source_of.get(f, f)}={out[f].iloc[row]!r} (field {f}) is not a "
                    f"number, so the unit factor {factor:g} cannot be applied",
                )
            )
        out[f] = num * factor
    return problems


def _translate_codes(
    out: pd.DataFrame, mapping: ColumnMapping, schema: Schema, source_of: dict[str, str]
) -> list[tuple[int, str]]:
    """Replace local codes of the ``[values]`` fields of ``out`` in place by schema codes;
    the values that are neither, as ``(row position, reason)``."""
    problems: list[tuple[int, str]] = []
    for f, table in mapping.values.items():
        if f not in out.columns:
            continue
        spec = schema[f]
        lookup = {_code_key(k): v for k, v in table.items()}
        col = out[f].astype(object)
        translated = []
        for row, v in enumerate(col.to_numpy()):
            if is_missing(v):
                translated.append(v)
                continue
            key = _code_key(v)
            if key in lookup:
                translated.append(lookup[key])
            elif _is_schema_value(spec.dtype, spec.categories, v):
                translated.append(v)
            else:
                translated.append(v)
                problems.append(
                    (
                        row,
                        f"{source_of.get(f, f)}={v!r} (field {f}): not in [values.{f}] "
                        f"and not a code of the schema (expected {spec.expected()})",
                    )
                )
        out[f] = pd.Series(translated, index=out.index, dtype=object)
    return problems


def _is_schema_value(dtype: str, categories: tuple[Any, ...] | None, v: Any) -> bool:
    if categories is not None:
        return any(_code_key(v) == _code_key(c) for c in categories)
    if dtype == "bool":
        return isinstance(v, bool | np.bool_) or _code_key(v) in ("0", "1", "true", "false")
    return True


def delimiter_of(sep: str | None, suffix: str) -> str:
    """The one-character delimiter of a text file: ``sep``, or by file type.

    ``"\\t"`` (a backslash and a t, as typed in a shell) and ``"tab"`` mean a tab.

    Raises
    ------
    RecordsReadError
        If ``sep`` is not one character.
    """
    if sep is None:
        return "\t" if suffix.lower() == ".tsv" else ","
    if sep in ("\\t", "tab"):
        return "\t"
    if not isinstance(sep, str) or len(sep) != 1:
        raise RecordsReadError(
            f"sep={sep!r} is not a delimiter; expected one character such as ',', ';', '|' "
            "or a tab ('\\t')."
        )
    return sep


# -- numbers written as text ----------------------------------------------------------------
_NOT_PLAIN = re.compile(r"[^0-9eE.+\- \t\n]")


def lenient_numbers(frame: pd.DataFrame, fields: Mapping[str, Any]) -> dict[int, list[str]]:
    """Rows (positions) with numeric text that validation would read leniently.

    ``fields`` maps a column of ``frame`` to the schema field it holds (numbers only);
    each reason reads like validation's: ``field='text' is not a number: ...``.
    """
    out: dict[int, list[str]] = {}
    for col, spec in fields.items():
        if col not in frame.columns:
            continue
        s = frame[col]
        if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
            continue
        values = s.to_numpy(dtype=object)
        texts = [v for v in values if isinstance(v, str)]
        if not texts or not _NOT_PLAIN.search("\n".join(texts)):
            continue  # only digits, signs, points and exponents: nothing lenient
        declared = set(getattr(spec, "missing_values", None) or ())  # the field's own markers
        for pos, v in enumerate(values):
            if isinstance(v, str) and _NOT_PLAIN.search(v) and v.strip() not in declared:
                problem = number_text_problem(v)
                if problem is not None:
                    out.setdefault(pos, []).append(
                        f"{spec.name}={v!r} {problem}; expected {spec.expected()}"
                    )
    return out


def number_fields(
    columns: Any, schema: Schema, mapping: ColumnMapping | None = None
) -> dict[str, Any]:
    """Column -> numeric schema field it holds (after the mapping renames it)."""
    out = {}
    for col in columns:
        if mapping is not None and col in mapping.ignore:
            continue
        target = mapping.columns.get(col, col) if mapping is not None else col
        if target in schema and schema[target].is_numeric:
            out[col] = schema[target]
    return out


def read_for_validation(
    path: str | os.PathLike[str],
    *,
    sep: str | None,
    encoding: str,
    mapping: ColumnMapping | Mapping[str, Any] | str | os.PathLike[str] | None,
    schema: Schema | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What ``spinerisk validate`` and ``train`` check before validation.

    The file is read with ``on_invalid="split"`` and mapped; rows that cannot be read and
    rows with numbers written leniently (:func:`number_text_problem`) are set aside.
    Returns the records to validate (indexed by their 0-based data row in the file) and
    the rows set aside (``row``, ``reasons`` and values, under schema names).
    """
    schema = resolve_schema(schema)
    records, unreadable = read_records(path, sep=sep, encoding=encoding, on_invalid="split")
    if mapping is not None:
        if not isinstance(mapping, ColumnMapping):
            mapping = (
                load_mapping(mapping)
                if isinstance(mapping, str | os.PathLike)
                else ColumnMapping.from_dict(mapping)
            )
        records = apply_mapping(records, mapping, schema)
        unreadable = unreadable.drop(
            columns=[c for c in mapping.ignore if c in unreadable.columns]
        ).rename(columns=dict(mapping.columns))
    lenient = lenient_numbers(records, number_fields(records.columns, schema))
    if lenient:
        pos = sorted(lenient)
        moved = records.iloc[pos].astype(object)
        moved.insert(0, "reasons", [" | ".join(lenient[p]) for p in pos])
        moved.insert(0, "row", moved.index.to_numpy(dtype=np.int64))
        records = records.drop(index=records.index[pos])
        unreadable = pd.concat([unreadable, moved]) if len(unreadable) else moved
    unreadable = unreadable.sort_values("row", kind="stable")
    unreadable.attrs["source"] = records.attrs.get("source")
    return records, unreadable


# ---------------------------------------------------------------------------------------
# records passed in memory


def is_record_list(records: Any) -> bool:
    """Whether ``records`` is a dict (one record) or a non-empty list/tuple of dicts."""
    if isinstance(records, Mapping):
        return True
    return (
        isinstance(records, list | tuple)
        and bool(records)
        and all(isinstance(r, Mapping) for r in records)
    )


def as_frame(records: Any) -> pd.DataFrame:
    """Records as a DataFrame: a frame as is, a dict as one row, a list of dicts as rows.

    Examples
    --------
    >>> from spinerisk.io import as_frame
    >>> as_frame({"age_years": 81}).shape
    (1, 1)
    """
    if isinstance(records, pd.DataFrame):
        return records
    if isinstance(records, Mapping):
        records = [records]
    if isinstance(records, list | tuple) and all(isinstance(r, Mapping) for r in records):
        if not records:
            raise ValueError("No records to predict: got an empty list.")
        return pd.DataFrame.from_records(list(records))
    raise TypeError(
        "records must be a DataFrame, a dict (one record) or a list of dicts; "
        f"got {type(records).__name__}."
    )


# ---------------------------------------------------------------------------------------
# record identifiers (scoring and Dask training refuse duplicates)


def id_text(values: pd.Series) -> np.ndarray:
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


def duplicated_within(ids: np.ndarray) -> set[str]:
    """The identifiers that occur more than once in ``ids`` (missing ones left out)."""
    present = pd.Series(ids[pd.notna(ids)], dtype=object)
    return set(present[present.duplicated(keep=False)].tolist())


def hash_ids(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of the present identifiers of one block."""
    return np.asarray(
        pd.util.hash_array(ids[pd.notna(ids)].astype(object), categorize=False), dtype=np.uint64
    )


def repeated_hashes(hashes: list[np.ndarray]) -> np.ndarray:
    """The hashes that occur more than once across blocks."""
    allh = np.sort(np.concatenate(hashes)) if hashes else np.empty(0, dtype=np.uint64)
    return np.unique(allh[1:][allh[1:] == allh[:-1]])


def id_candidates(ids: np.ndarray, repeated: np.ndarray) -> np.ndarray:
    """The present identifiers whose hash is among ``repeated``."""
    present = ids[pd.notna(ids)]
    return present[np.isin(hash_ids(ids), repeated)]


def find_duplicate_ids(id_blocks: Callable[[], Iterator[np.ndarray]]) -> set[str]:
    """Identifiers occurring more than once, found with 64-bit hashes in bounded memory.

    A first pass keeps only the hashes of all identifiers (8 bytes each); when some
    repeat, a second pass collects the identifiers with those hashes and confirms the
    duplicates on their text, so a hash collision cannot reject a record.
    """
    repeated = repeated_hashes([hash_ids(b) for b in id_blocks()])
    if len(repeated) == 0:
        return set()
    found = [id_candidates(b, repeated) for b in id_blocks()]
    return duplicated_within(np.concatenate(found) if found else np.empty(0, dtype=object))
