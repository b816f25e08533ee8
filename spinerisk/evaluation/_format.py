"""Formatting shared by the evaluation report's renderings (JSON, Markdown, HTML) and the
model card: numbers, horizons, JSON-safe values, the synthetic-data banner and the style sheet.

Below :mod:`spinerisk.evaluation._report` and :mod:`spinerisk.evaluation._html`, which both
import it (neither imports the other for these).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CSS",
    "SYNTHETIC_BANNER",
    "finite",
    "fmt",
    "horizon_label",
    "horizons_in_unit",
    "json_records",
    "json_tree",
    "json_value",
    "md_table",
]

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA: these results come from simulated patients (the evaluation records, "
    "the training records or both), not real records. They show that the software works; "
    "they do not show that any model is clinically valid."
)


def json_value(v: Any) -> Any:
    """A JSON-safe scalar: NaN/inf become None, numpy scalars become Python ones."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def json_records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if frame is None:
        return None
    return [
        {str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


def json_tree(obj: Any) -> Any:
    if isinstance(obj, pd.DataFrame):
        return json_records(obj)
    if isinstance(obj, pd.Series):
        return {str(k): json_value(v) for k, v in obj.items()}
    if isinstance(obj, dict):
        return {str(k): json_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_tree(v) for v in obj]
    return json_value(obj)


def horizon_label(h: Any, unit: str = "days") -> str:
    """A horizon in days as the endpoint shows it: ``"365d"`` for 365.25 days,
    ``"1y"`` or ``"12mo"`` for an endpoint in years or months; ``""`` for a metric
    without a horizon (and for a binary endpoint recorded without one)."""
    from spinerisk.endpoints import NO_HORIZON, risk_column

    if h is None or (isinstance(h, float) and math.isnan(h)) or float(h) == NO_HORIZON:
        return ""
    return risk_column(float(h), unit)[len("risk_") :]


def horizons_in_unit(frame: pd.DataFrame | None, unit: str) -> pd.DataFrame | None:
    """A copy of ``frame`` with its ``horizon`` column (days) in ``unit``
    (:func:`spinerisk.endpoints.days_in_unit`), as a report's renderings show horizons;
    ``frame`` itself, not a copy, when it has no such column, is None, or ``unit`` is days
    and every horizon is one. A metric without a horizon has NaN there: Harrell's C, and
    every metric of a binary outcome recorded without a horizon (internally
    :data:`~spinerisk.endpoints.NO_HORIZON`)."""
    from spinerisk.endpoints import days_in_unit, stated_horizon

    if frame is None or "horizon" not in frame.columns:
        return frame
    horizon = pd.to_numeric(frame["horizon"], errors="coerce")
    none = horizon.map(lambda h: h == h and stated_horizon(h) is None).astype(bool)  # not NaN
    if unit == "days" and not none.any():
        return frame
    out = frame.copy()
    out["horizon"] = days_in_unit(horizon.where(~none), unit)
    return out


def at_horizon(h: Any, unit: str = "days", prefix: str = " at ") -> str:
    """``prefix`` and the horizon's label (``" at 1y"``) for a title or a sentence, or
    ``""`` where there is no horizon (a binary outcome recorded without one)."""
    label = horizon_label(h, unit)
    return f"{prefix}{label}" if label else ""


def fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float | np.floating):
        return f"{float(v):.{digits}f}"
    return str(v)


def finite(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and math.isfinite(float(v))


def md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = [fmt(v).replace("|", "\\|") for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Style sheet of the HTML report and the model card.
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
.banner{background:#b00020;color:#fff;font-weight:bold;padding:.8em 1em;border-radius:4px;
font-size:1.05em}
.note{color:#555;font-size:.9em}.warn{color:#8a4b00}
img{max-width:100%;height:auto;border:1px solid #eee}
"""
