"""Records of a frame as a JSON client sends them (shared by the fast-path tests)."""

from __future__ import annotations

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
