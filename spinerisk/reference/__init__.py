"""The training reference and per-record input checks: one step below the models,
used by fitting (a model's ``reference_``), bundles, scoring, the fast path and
monitoring.

- :func:`build_reference` / :func:`summarise_training` summarise the records a model was
  fitted on as plain JSON (stored in its bundle), so new records can be compared with
  them without the training records;
- :func:`input_warnings` / :func:`input_warning_table` flag, per record, values outside
  the training range, unseen categories and fields missing that were rarely missing;
- :func:`training_ranges` and :func:`trained_on_synthetic` read a model's training
  ranges and whether its records were labelled synthetic.
"""

from __future__ import annotations

from spinerisk.reference._checks import (
    WARNING_CODES,
    RecordWarnings,
    input_reference,
    input_warning_lists,
    input_warning_table,
    input_warnings,
    record_warnings,
    warn_unusual,
    warning_codes,
)
from spinerisk.reference._reference import (
    RARELY_MISSING_BELOW,
    REFERENCE_FORMAT,
    REFERENCE_VERSION,
    _as_reference,
    build_reference,
    summarise_training,
    trained_on_synthetic,
    training_ranges,
)

as_reference = _as_reference

__all__ = [
    "RARELY_MISSING_BELOW",
    "REFERENCE_FORMAT",
    "REFERENCE_VERSION",
    "WARNING_CODES",
    "RecordWarnings",
    "as_reference",
    "build_reference",
    "input_reference",
    "input_warning_lists",
    "input_warning_table",
    "input_warnings",
    "record_warnings",
    "summarise_training",
    "trained_on_synthetic",
    "training_ranges",
    "warn_unusual",
    "warning_codes",
]
