"""Readable clinical labels and plain-language lines for explanations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from spinerisk._units import DAYS_PER_YEAR
from spinerisk.schema.default import TLJ_LEVELS

#: Short clinical labels of the spine schema's baseline fields (fallback: the field
#: name with spaces).
LABELS: dict[str, str] = {
    "days_injury_to_imaging": "days from injury to imaging",
    "age_years": "age",
    "sex": "sex",
    "height_cm": "height",
    "weight_kg": "weight",
    "bmi": "BMI",
    "tscore_min": "lowest T-score",
    "tscore_fn": "femoral-neck T-score",
    "hu_l1": "CT attenuation at L1",
    "prevalent_vf_count": "prevalent vertebral fractures",
    "prior_fragility_fx": "prior fragility fracture",
    "prior_fx_count": "prior fractures",
    "parental_hip_fx": "parental hip fracture",
    "current_smoking": "current smoking",
    "alcohol_units_day": "alcohol",
    "glucocorticoid_current": "current glucocorticoids",
    "glucocorticoid_dose_mg": "glucocorticoid dose",
    "rheumatoid_arthritis": "rheumatoid arthritis",
    "secondary_osteoporosis": "secondary osteoporosis",
    "falls_12m_count": "falls in the last 12 months",
    "diabetes_type": "diabetes",
    "egfr": "eGFR",
    "dementia": "dementia",
    "cardiovascular_disease": "cardiovascular disease",
    "asa_class": "ASA class",
    "mfi5": "frailty index (mFI-5)",
    "mechanism": "mechanism",
    "energy": "energy",
    "level": "level",
    "region": "region",
    "n_acute_levels": "acute levels",
    "ao_morphology": "AO morphology",
    "of_class": "OF class",
    "genant_grade0": "Genant grade",
    "height_loss0_pct": "height loss",
    "kyphotic_angle0": "kyphotic angle",
    "posterior_wall_injury": "posterior wall injury",
    "both_endplates": "both endplates broken",
    "intravertebral_cleft0": "intravertebral cleft",
    "mri_done": "MRI done",
    "t1_pattern": "T1",
    "t2_pattern": "T2",
    "vas_back0": "back pain (VAS)",
    "treatment": "treatment",
    "brace_type": "brace",
    "anti_op_drug": "anti-osteoporosis drug",
}

_CATEGORY_WORDS: dict[tuple[str, str], str] = {
    ("t2_pattern", "confined_high"): "T2 confined high signal",
    ("t2_pattern", "diffuse_low"): "T2 diffuse low signal",
    ("t2_pattern", "confined_low"): "T2 confined low signal",
    ("t2_pattern", "none"): "no T2 signal change",
    ("t1_pattern", "diffuse_low"): "T1 diffuse low signal",
    ("region", "tlj"): "thoracolumbar junction",
}


def not_causes(treatment_fields: Any) -> str:
    """What contributions are, for the note under explanations: treatment confounding
    is named only when the model reads a treatment field."""
    if treatment_fields:
        return (
            "Contributions describe the model, not causes: treatment is confounded by indication."
        )
    return "Contributions describe the model, not causes."


NOT_CAUSAL = (
    "Treatment attributions are not causal: treatment is confounded by indication "
    "(sicker patients get more treatment)."
)


def label(field: str) -> str:
    """Short clinical label of a field."""
    return LABELS.get(field, field.replace("_", " "))


def describe(field: str, value: Any, unit: str = "") -> str:
    """A field and its value in words: ``"T2 confined high signal"``, ``"age 82 years"``."""
    name = label(field)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return f"{name} missing"
    if isinstance(value, bool | np.bool_):
        return name if value else f"no {name}"
    if isinstance(value, int | float | np.integer | np.floating):
        shown = f"{float(value):g}"
        if unit == "%":
            return f"{name} {shown}%"
        return f"{name} {shown}{' ' + unit if unit and unit not in ('count', 'class') else ''}"
    text = str(value)
    if (field, text) in _CATEGORY_WORDS:
        return _CATEGORY_WORDS[(field, text)]
    if field == "level" and text in TLJ_LEVELS:
        return f"level {text} (thoracolumbar junction)"
    return f"{name} {text.replace('_', ' ')}"


def short_value(value: Any) -> str:
    """Compact value for ``field=value`` strings."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def horizon_words(days: float) -> str:
    """``182.62`` -> ``"6 months"``, ``365.25`` -> ``"1 year"``, else days."""
    years = days / DAYS_PER_YEAR
    if abs(years * 12 - round(years * 12)) < 0.05 and years < 1:
        months = round(years * 12)
        return f"{months} month{'s' if months != 1 else ''}"
    if abs(years - round(years)) < 0.01 and round(years) >= 1:
        n = round(years)
        return f"{n} year{'s' if n != 1 else ''}"
    return f"{days:g} days"


def points_text(points: float) -> str:
    """Signed percentage points with one decimal when small: ``+14``, ``-0.6``."""
    pts = 100.0 * points
    if abs(pts) >= 10:
        return f"{pts:+.0f}"
    return f"{pts:+.1f}"


def risk_with_interval(risk: float, bounds: Any = None, level: float | None = None) -> str:
    """A risk in whole percent, with its interval when given: ``"41%"``,
    ``"41% (90% interval 33-50%)"``."""
    text = f"{100 * float(risk):.0f}%"
    if bounds is None or level is None:
        return text
    lo, hi = float(bounds["lo"]), float(bounds["hi"])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return text
    return f"{text} ({100 * level:g}% interval {100 * lo:.0f}-{100 * hi:.0f}%)"
