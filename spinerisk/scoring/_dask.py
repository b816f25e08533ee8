"""Scoring on a Dask cluster: the same chunk function over the partitions, with global
row numbers and identifiers duplicated anywhere rejected everywhere."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import RecordsReadError
from spinerisk.io import duplicated_within, hash_ids, id_candidates, id_text, repeated_hashes
from spinerisk.scoring._chunk import (
    _as_mapping,
    _Chunk,
    _id_source,
    _interval_level,
    _mapped_ids,
    _reject_columns,
    _score_chunk,
    _score_columns,
    _Timer,
    model_info,
)
from spinerisk.scoring._sources import (
    _CsvSource,
    _ParquetSource,
    _ragged_lines,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel


# ---------------------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------------------
def _score_part(
    model: RiskModel,
    part: pd.DataFrame,
    offset: int,
    mapping: Any,
    dup_ids: set[str],
    explain: int,
    info: Mapping[str, str],
    keep_valid: bool = False,
    interval: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = np.arange(offset, offset + len(part), dtype=np.int64)
    chunk = _score_chunk(
        model,
        part,
        rows,
        mapping=mapping,
        duplicate_ids=dup_ids,
        explain=explain,
        interval=interval,
        info=info,
        timer=_Timer(),
    )
    return chunk.scores, chunk.rejects, chunk.valid if keep_valid else chunk.valid.iloc[:0]


def _dask_plan(
    ddf: Any,
    model: RiskModel,
    mapping: Any,
    explain: int,
    info: Mapping[str, str],
    *,
    keep_valid: bool = False,
    interval: float | None = None,
) -> list[Any]:
    """One delayed ``(scores, rejects, valid)`` per partition, with global row numbers."""
    from dask.delayed import delayed

    id_col = _id_source(model, mapping)
    id_field = model.id_field_
    lengths = ddf.map_partitions(len).compute()
    offsets = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))[:-1]])
    dup_ids: set[str] = set()
    if id_col in ddf.columns:  # as find_duplicate_ids, with the passes on the workers
        ids = ddf[id_col]
        hashes = ids.map_partitions(
            lambda s: pd.Series(hash_ids(_mapped_ids(id_text(s), mapping, id_field))),
            meta=(id_col, "uint64"),
        ).compute()
        repeated = repeated_hashes([hashes.to_numpy(dtype=np.uint64)])
        if len(repeated):
            found = ids.map_partitions(
                lambda s: pd.Series(
                    id_candidates(_mapped_ids(id_text(s), mapping, id_field), repeated),
                    dtype=object,
                ),
                meta=(id_col, object),
            ).compute()
            dup_ids = duplicated_within(found.to_numpy(dtype=object))
    model_d = delayed(model, pure=True)
    score = delayed(_score_part, pure=True, nout=3)
    return [
        score(model_d, part, int(off), mapping, dup_ids, explain, dict(info), keep_valid, interval)
        for part, off in zip(ddf.to_delayed(), offsets, strict=True)
    ]


def score_dask(
    ddf: Any,
    model: RiskModel,
    *,
    explain: int = 0,
    interval: float | None = None,
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
    interval : float or None, default=None
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
    level = _interval_level(model, interval)
    plan = _dask_plan(ddf, model, mapping, explain, info, interval=level)
    cols, types = _score_columns(model, explain, level)
    score_meta = pd.DataFrame(
        {c: pd.Series([], dtype="float64" if types[c] == "float64" else object) for c in cols}
    )
    reject_cols, _ = _reject_columns([str(c) for c in ddf.columns], mapping)
    reject_meta = pd.DataFrame(
        {c: pd.Series([], dtype="int64" if c == "row" else object) for c in reject_cols}
    )
    scores = dd.from_delayed([p[0] for p in plan], meta=score_meta, verify_meta=False)
    rejects = dd.from_delayed([p[1] for p in plan], meta=reject_meta, verify_meta=False)
    return scores, rejects


def _dask_chunks(
    model: RiskModel,
    source: _ParquetSource | _CsvSource,
    input: Path,
    mapping: Any,
    explain: int,
    info: Mapping[str, str],
    scheduler: str | None,
    stack: ExitStack,
    keep_valid: bool,
    *,
    interval: float | None = None,
) -> Generator[tuple[int, _Chunk], None, None]:
    from spinerisk._optional import import_optional

    dd = import_optional("dask.dataframe", extra="dask", purpose="--engine dask")
    distributed = import_optional("distributed", extra="dask", purpose="--engine dask")
    from spinerisk.io import NA_VALUES

    if isinstance(source, _CsvSource):
        # Dask's CSV reader pads short rows silently; refuse files the local path would
        # have to reject row by row
        ragged, expected_rows = _ragged_lines(source)
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
        expected_rows = source.num_rows  # from the file's metadata
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
    plan = _dask_plan(ddf, model, mapping, explain, info, keep_valid=keep_valid, interval=interval)
    window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
    seen = 0
    for start in range(0, len(plan), window):
        for fut in client.compute(plan[start : start + window]):
            scores, rejects, valid = fut.result()
            seen += len(scores) + len(rejects)
            yield len(scores) + len(rejects), _Chunk(scores, rejects, valid)
    if seen != expected_rows:  # counted independently of Dask's reader
        raise RuntimeError(
            f"Row accounting failed: {input.name!r} has {expected_rows} data rows but the "
            f"Dask engine read {seen}; no output was written. Use engine='local', and please "
            "report this as a bug."
        )
