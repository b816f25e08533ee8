"""Records files read in chunks (Parquet record batches, CSV as text) and identifiers
checked for duplicates across the whole file in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import RecordsReadError
from spinerisk.io import id_text
from spinerisk.scoring._chunk import _INPUT_SUFFIXES


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
            yield id_text(frame[column])


def _no_read_rejects(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=["row", "reasons", *columns])


class _CsvSource:
    """CSV/TSV read as text with :func:`spinerisk.read_records`'s reader, in chunks.

    A row that cannot be read (a number of fields that differs from the header's, a NUL
    byte, a field longer than ``MAX_FIELD_CHARS``, a line longer than ``MAX_LINE_CHARS``,
    malformed or unbalanced quoting) is not guessed at: it is rejected with its line
    number and reason, and the other rows are scored.
    """

    def __init__(self, path: Path, sep: str | None, encoding: str) -> None:
        from spinerisk.io import NA_VALUES, TextTable, delimiter_of

        self.path = path
        self.num_rows: int | None = None
        self.na_values = list(NA_VALUES)
        self.delimiter = delimiter_of(sep, path.suffix)
        self.encoding = encoding
        self._table = TextTable(path, self.delimiter, encoding)
        self.columns = self._table.columns

    def _rows(self) -> Iterator[tuple[int, list[str | None], str | None, str]]:
        """(line number, fields, problem, text) of every non-blank data row."""
        for row in self._table.rows():
            yield row.line, row.fields, row.problem, row.text

    def chunks(self, size: int) -> Iterator[tuple[pd.DataFrame, np.ndarray, pd.DataFrame]]:
        good: list[str] = []
        good_rows: list[int] = []
        bad: list[dict[str, Any]] = []
        seen = 0
        for _, fields, problem, text in self._rows():
            if problem is None:
                good.append(text)
                good_rows.append(seen)
            else:
                bad.append(
                    {
                        "row": seen,
                        "reasons": problem,
                        **dict(zip(self.columns, fields, strict=True)),
                    }
                )
            seen += 1
            if seen % size == 0:
                yield self._frame(good, good_rows, bad)
                good, good_rows, bad = [], [], []
        self.num_rows = seen
        if good or bad or seen == 0:
            yield self._frame(good, good_rows, bad)

    def _frame(
        self, good: list[str], rows: list[int], bad: list[dict[str, Any]]
    ) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
        frame = self._table.frame(good).astype(object)
        rejects = pd.DataFrame(bad, columns=["row", "reasons", *self.columns])
        rejects["row"] = rejects["row"].astype(np.int64)
        return frame, np.asarray(rows, dtype=np.int64), rejects

    def ids(self, column: str) -> Iterator[np.ndarray]:
        if column not in self.columns:
            return
        j = self.columns.index(column)
        block: list[Any] = []
        for _, fields, problem, _text in self._rows():
            block.append(fields[j] if problem is None else None)
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
    from spinerisk.io import check_regular_file

    check_regular_file(path)  # not a folder, device (/dev/zero), pipe or socket
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _ParquetSource(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _CsvSource(path, sep, encoding)
    raise RecordsReadError(
        f"{path.name!r}: unknown file type {suffix!r}; batch scoring reads "
        f"{', '.join(_INPUT_SUFFIXES)}."
    )


def _ragged_lines(source: _CsvSource) -> tuple[list[int], int]:
    """Line numbers of rows that cannot be read (a field count that differs from the
    header's, a NUL byte, an over-long field or line, bad quoting), and the number of data
    rows (blank lines skipped, as everywhere)."""
    ragged: list[int] = []
    n_rows = 0
    for line, _, problem, _ in source._rows():
        n_rows += 1
        if problem is not None:
            ragged.append(line)
    return ragged, n_rows
