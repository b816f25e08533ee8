"""Batch scoring with exact row accounting: records files in, scores and rejects out.

:func:`score_frame` is the one chunk function. It validates a chunk against the model's
schema, predicts the valid records and returns the rejected ones with their 0-based input
row and the reasons. :func:`score_file` streams a CSV or Parquet file through it in
chunks (bounded memory), writes scores and rejects atomically (temporary file, renamed
only after ``rows in == scored + rejected`` has been checked; :func:`write_table_atomically`
writes any one table that way) and
:func:`score_dask` runs the same chunk function over the partitions of a Dask dataframe.

Results do not depend on the chunking: a record gets the same risk, warnings and
(if rejected) the same reasons whether the file is scored in one chunk, in chunks of
7 rows or on a Dask cluster. Identifiers must be unique across the whole input; every
record whose identifier occurs more than once is rejected (all of its occurrences,
wherever they are), because nothing says which of them is right.
"""

from spinerisk.scoring._chunk import (
    FORMULA_START,
    ScoreSummary,
    model_info,
    model_info_from_path,
    neutralize_formulas,
    score_frame,
)
from spinerisk.scoring._dask import score_dask
from spinerisk.scoring._file import score_file, write_table_atomically

__all__ = [
    "FORMULA_START",
    "ScoreSummary",
    "model_info",
    "model_info_from_path",
    "neutralize_formulas",
    "score_dask",
    "score_file",
    "score_frame",
    "write_table_atomically",
]
