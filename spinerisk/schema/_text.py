"""Numbers and missing values written as text in records files: one owner for what
counts as missing and what counts as a plain number, used by file reading
(:mod:`spinerisk.io`), validation and the single-record fast path."""

from __future__ import annotations

import math
import re

__all__ = ["NA_VALUES", "number_text_problem"]

#: Text read as missing in CSV files (nothing else is: "None" or "-" stay text).
NA_VALUES: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")

_PLAIN_NUMBER = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")


def number_text_problem(text: str) -> str | None:
    """Why text that Python's ``float`` reads is still not a number as documented.

    A number in a records file is written with the ASCII digits 0-9, an optional sign,
    decimal point and exponent, and optional spaces around it. Missing values are
    written as one of :data:`NA_VALUES`, exactly. ``float`` is more lenient: it reads
    ``"NAN"``, ``"-nan"`` and ``"nAn"`` as not-a-number, ``"8_1"`` as 81 and
    full-width or Arabic-Indic digits as numbers. Those are refused here, with a reason.
    Text that ``float`` cannot read at all, and infinities, are left to validation
    (``is not a number``, ``is not finite``).

    Parameters
    ----------
    text : str
        One cell.

    Returns
    -------
    str or None
        The reason, or None when the text is a plain number, a missing marker or is left
        to validation.

    Examples
    --------
    >>> from spinerisk.schema import number_text_problem
    >>> number_text_problem("81.5") is None, number_text_problem("NaN") is None
    (True, True)
    >>> number_text_problem("-nan")
    "is not a number: only '', 'NA', 'N/A', 'NaN', 'nan', 'null' or 'NULL' mark a missing value"
    >>> number_text_problem("8_1")
    'is not a plain number: write the digits 0-9 only, without separators'
    """
    if text in NA_VALUES or _PLAIN_NUMBER.fullmatch(text):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isinf(value):
        return None
    if math.isnan(value):
        markers = ", ".join(repr(m) for m in NA_VALUES[:-1]) + f" or {NA_VALUES[-1]!r}"
        return f"is not a number: only {markers} mark a missing value"
    return "is not a plain number: write the digits 0-9 only, without separators"
