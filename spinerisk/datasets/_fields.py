"""Types and code lists of the cervical and malignant-fracture columns of the generator.

The names, dtypes and codes follow the schema additions of the domain addendum
(``DOMAIN-CERVICAL.md``). When :data:`spinerisk.schema.SPINE_SCHEMA` declares a field, its
category order is used (and must hold every code listed here); until then the codes below
are used, so the columns can be generated before the schema knows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spinerisk.datasets._malignant import CANCER_PRIMARIES, ETIOLOGY_REFERENCES, VCF_ETIOLOGIES
from spinerisk.datasets._params import MRI_SIGNS
from spinerisk.schema import SPINE_SCHEMA
from spinerisk.schema.default import AIS_GRADES, IMMOBILISATION

__all__ = ["NEW_FIELDS", "new_column", "order_columns"]

AO_UPPER_CERVICAL: tuple[str, ...] = tuple(
    f"{location}-{kind}" for location in ("I", "II", "III") for kind in "ABC"
)
AO_NEURO: tuple[str, ...] = ("N0", "N1", "N2", "N3", "N4", "NX")

#: Every column the trauma mode or the malignant part can add, in output order:
#: name -> (dtype, categories or None). dtypes: "bool" (pandas boolean), "int" (Int64),
#: "float" (float64), "category".
NEW_FIELDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    # cervical trauma
    "ao_upper_cervical": ("category", AO_UPPER_CERVICAL),
    "ao_neuro": ("category", AO_NEURO),
    "anderson_dalonzo": ("category", ("I", "II", "III")),
    "grauer_subtype": ("category", ("IIA", "IIB", "IIC")),
    "dens_displacement_mm": ("float", None),
    "dens_displacement_dir": ("category", ("none", "anterior", "posterior")),
    "dens_angulation_deg": ("float", None),
    "fracture_gap_mm": ("float", None),
    "comminuted": ("bool", None),
    "days_injury_to_immobilisation": ("int", None),
    "immobilisation": ("category", IMMOBILISATION),
    "asia_ais_adm": ("category", AIS_GRADES),
    "asia_motor_adm": ("int", None),
    "ankylosing_disorder": ("category", ("none", "AS", "DISH")),
    "anticoagulant": ("bool", None),
    "tbi": ("bool", None),
    "cci": ("int", None),
    # cervical outcomes
    "healing_12m": ("category", ("osseous", "fibrous_stable", "unstable")),
    "unstable_nonunion_12m": ("bool", None),
    "surgery_for_failure": ("bool", None),
    "asia_ais_12m": ("category", AIS_GRADES),
    "time_to_death_d": ("float", None),
    "death_event": ("bool", None),
    "death_30d": ("bool", None),
    "death_90d": ("bool", None),
    "death_1y": ("bool", None),
    # malignant vertebral compression fractures
    "cancer_history": ("bool", None),
    "cancer_primary": ("category", CANCER_PRIMARIES),
    "weight_loss": ("bool", None),
    "night_pain": ("bool", None),
    "esr_mm_h": ("float", None),
    "alp_u_l": ("float", None),
    "m_protein": ("bool", None),
    **{row[0]: ("bool", None) for row in MRI_SIGNS},
    "adc_1e3_mm2_s": ("float", None),
    "cs_si_ratio": ("float", None),
    "malignant": ("bool", None),
    "vcf_etiology": ("category", VCF_ETIOLOGIES),
    "etiology_reference": ("category", ETIOLOGY_REFERENCES),
}


def schema_categorical(name: str, codes: Any, mask: Any = None) -> pd.Categorical:
    """Column of SPINE_SCHEMA field ``name`` from category codes (positions in the
    schema's category list); missing where ``mask`` is true."""
    categories = list(SPINE_SCHEMA[name].categories or ())
    codes = np.asarray(codes, dtype=np.int64)
    if mask is not None:
        codes = np.where(mask, -1, codes)
    return pd.Categorical.from_codes(codes, categories=categories)


def new_column(name: str, values: Any, mask: Any = None) -> Any:
    """A typed column of a new field from values (codes for categories) and a mask."""
    dtype, codes = NEW_FIELDS[name]
    values = np.asarray(values)
    mask = np.zeros(len(values), bool) if mask is None else np.asarray(mask, dtype=bool)
    if dtype == "bool":
        return pd.arrays.BooleanArray(values.astype(bool), mask.copy())
    if dtype == "int":
        return pd.arrays.IntegerArray(values.astype(np.int64), mask.copy())
    if dtype == "float":
        return np.where(mask, np.nan, values.astype(np.float64))
    assert codes is not None
    categories = list(codes)
    if name in SPINE_SCHEMA.names and SPINE_SCHEMA[name].categories:
        declared = [str(c) for c in SPINE_SCHEMA[name].categories or ()]
        missing = sorted(set(codes) - set(declared))
        if missing:
            raise RuntimeError(
                f"The generator's codes {missing} of {name!r} are not categories of "
                f"SPINE_SCHEMA ({declared}); the generator and the schema disagree."
            )
        categories = declared
    idx = np.where(mask, -1, values.astype(np.int64))
    labels = np.asarray(codes, dtype=object)[np.maximum(idx, 0)]
    labels[idx < 0] = None
    return pd.Categorical(labels, categories=categories)


def order_columns(data: dict[str, Any]) -> list[str]:
    """Schema fields in schema order, then new fields the schema lacks, in NEW_FIELDS order."""
    known = [name for name in SPINE_SCHEMA.names if name in data]
    extra = [name for name in NEW_FIELDS if name in data and name not in SPINE_SCHEMA.names]
    unknown = set(data) - set(known) - set(extra)
    if unknown:
        raise RuntimeError(f"Generator columns without a type: {sorted(unknown)}.")
    return known + extra
