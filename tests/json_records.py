"""Records of a frame as a JSON client sends them, and an exact comparison of records
(shared by the fast-path and API tests)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def json_value(value: Any) -> Any:
    """One cell as JSON has it: None for missing, ISO dates, Python numbers."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as JSON records (field to value)."""
    return [{k: json_value(v) for k, v in r.items()} for r in frame.to_dict("records")]


def same_records(a: Any, b: Any, *, field_order: bool = False) -> bool:
    """Whether two lists of records (or two Nones) are the same value for value: the same
    fields (in the same order with ``field_order``), types and values, the sign of a zero
    included and NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if (list(x) != list(y)) if field_order else (set(x) != set(y)):
            return False
        for k, v in x.items():
            w = y[k]
            if type(v) is not type(w):
                return False
            if isinstance(v, float) and (math.isnan(v) or math.isnan(w)):
                if not (math.isnan(v) and math.isnan(w)):
                    return False
            elif v != w or (isinstance(v, float) and math.copysign(1, v) != math.copysign(1, w)):
                return False
    return True
