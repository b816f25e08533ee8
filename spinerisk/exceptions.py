"""Exceptions and warnings raised by spinerisk.

All subclass builtins so that ``except ValueError`` keeps working for callers that do
not know spinerisk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = [
    "ArtifactError",
    "DataQualityWarning",
    "MappingError",
    "RecordsReadError",
    "SchemaValidationError",
]


class SchemaValidationError(ValueError):
    """Records do not satisfy the clinical-record schema.

    The message lists every problem (capped) as record id, row, column, bad value and
    what was expected.

    Attributes
    ----------
    failures : DataFrame
        One row per problem with columns ``record_id``, ``row``, ``column``, ``value``,
        ``check``, ``expected`` and ``message``. ``row`` is the 0-based position of the
        record in the frame that was validated (``None`` for frame-level problems such
        as a missing column).
    hint : str
        The message's last line, what a Python caller can do next (a command-line tool
        replaces it with its own advice); empty when there is none.
    """

    def __init__(self, message: str, failures: pd.DataFrame, hint: str = "") -> None:
        super().__init__(message)
        self.failures = failures
        self.hint = hint  # the message's last line: what to do (for Python callers)

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable with its failures (raised on a Dask worker, re-raised on the client)
        return (type(self), (str(self), self.failures, self.hint))


class MappingError(ValueError):
    """A hospital extract cannot be mapped onto the schema (unmapped field, unknown code)."""


class RecordsReadError(ValueError):
    """A records file cannot be read (encoding, delimiter, format)."""


class ArtifactError(ValueError):
    """A model file cannot be saved or loaded safely.

    Raised for a file that is not a spinerisk bundle (not a zip, no or invalid
    manifest), a bundle of another format version, a member whose sha256 differs from
    the manifest, a member that would create a type outside
    ``spinerisk.bundle.TRUSTED_TYPES``, and for models that cannot be stored safely (a
    custom schema).
    """


class DataQualityWarning(UserWarning):
    """Data a user may accept but should know about (an all-missing column, say)."""
