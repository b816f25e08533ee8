"""Modes of the SYNTHETIC cohort generator: parameter checks, the trauma mode's frame and
the bookkeeping of malignant fractures (which OVF outcomes they hide, the attrs).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from spinerisk.datasets._fields import order_columns
from spinerisk.datasets._params import MalignantParams, TraumaParams
from spinerisk.datasets._trauma import TRAUMA_INTERCEPT_KEYS, simulate_trauma

BoolArray = npt.NDArray[np.bool_]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}.")


def _check_real(name: str, value: Any, low: float, high: float, *, open_: bool) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok:
        ok = (low < value < high) if open_ else (low <= value <= high)
    if not ok:
        rel = "<" if open_ else "<="
        raise ValueError(
            f"{name} must be a number with {low:g} {rel} {name} {rel} {high:g}; "
            f"got {name}={value!r}."
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {name}={value!r}.")


def _check_option(name: str, value: Any, options: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in options:
        expected = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {expected}; got {name}={value!r}.")


#: Keys of ``attrs["intercepts"]`` that ``make_spine_cohort(intercepts=...)`` accepts.
_INTERCEPT_KEYS = (
    "nonunion_logit",
    "collapse_mu",
    "fracture_h0",
    "death_log_hazard",
    "treatment_augmentation",
    "treatment_fixation",
    "tscore_missing_logit",
)
_MODES = ("ovf", "trauma")
_MALIGNANT_PRESETS = {"clinic": MalignantParams.clinic, "screening": MalignantParams.screening}
#: Parameters of the OVF cohort only, with their defaults (checked in trauma mode).
_OVF_ONLY = {
    "profile": "japan", "missing": True, "noise": False, "centre_effect_sd": 0.0,
    "hu_offset": 0.0, "augmentation_rate": 0.26, "outcome_definition": "radiographic_vf",
    "nonunion_prevalence": 0.16, "collapse_prevalence": 0.43, "nonlinear": False,
}  # fmt: skip


def _allowed_intercepts(params: dict[str, Any]) -> tuple[str, ...]:
    if params["mode"] == "trauma":
        return tuple(TRAUMA_INTERCEPT_KEYS)
    if _malignant_params(params["malignant"]) is not None:
        return (*_INTERCEPT_KEYS, "malignant_shift_history", "malignant_shift_no_history")
    return _INTERCEPT_KEYS


def _malignant_params(value: Any) -> MalignantParams | None:
    if isinstance(value, MalignantParams):
        return value
    return None if value == "none" else _MALIGNANT_PRESETS[value]()


def _validate_mode(params: dict[str, Any]) -> None:
    """mode, malignant and trauma, and which parameters apply to which mode."""
    _check_option("mode", params["mode"], _MODES)
    malignant = params["malignant"]
    if not isinstance(malignant, MalignantParams):
        _check_option("malignant", malignant, ("none", *_MALIGNANT_PRESETS))
    trauma = params["trauma"]
    if trauma is not None and not isinstance(trauma, TraumaParams):
        raise ValueError(f"trauma must be None or a TraumaParams; got trauma={trauma!r}.")
    if params["mode"] == "trauma":
        if not (isinstance(malignant, str) and malignant == "none"):
            raise ValueError(
                f"malignant applies to mode='ovf' only; got malignant={malignant!r} with "
                "mode='trauma'."
            )
        for name, default in _OVF_ONLY.items():
            if params[name] != default:
                raise ValueError(
                    f"{name} applies to mode='ovf' only; got {name}={params[name]!r} with "
                    f"mode='trauma'. Leave it at its default ({default!r})."
                )
    elif trauma is not None:
        raise ValueError(
            "trauma applies to mode='trauma' only; got a TraumaParams with mode='ovf'."
        )


#: OVF outcome columns, missing for malignant fractures.
_OVF_OUTCOMES = (
    "delta_height_6m", "height_loss_6m_pct", "kyphotic_angle_6m", "collapse_6m", "nonunion",
    "fx_time_days", "fx_event", "death_time_days",
)  # fmt: skip


def _masked(values: Any, mask: BoolArray) -> Any:
    if isinstance(values, np.ndarray):
        return np.where(mask, np.nan, values)
    out = values.copy()
    out[mask] = pd.NA
    return out


def _attrs(
    seed: int,
    profile: str,
    mode: str,
    malignant: Any,
    mal_params: MalignantParams | None,
    intercepts: dict[str, float],
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "synthetic": True,
        "generator": "spinerisk.datasets.make_spine_cohort",
        "seed": int(seed),
        "profile": profile,
        "description": "SYNTHETIC cohort simulated from published effect sizes; not real patients",
        "intercepts": intercepts,
        "mode": mode,
        "malignant": malignant if isinstance(malignant, str) else "custom",
    }
    if mal_params is not None:
        attrs["malignant_share"] = float(mal_params.share)
    return attrs


def _trauma_cohort(
    rng: np.random.Generator, params: dict[str, Any], return_oracle: bool
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    tp = params["trauma"] if params["trauma"] is not None else TraumaParams()
    data, truth, intercepts = simulate_trauma(
        rng, int(params["n"]), tp, int(params["n_centres"]), params["intercepts"] or {}
    )
    cohort = pd.DataFrame({name: data[name] for name in order_columns(data)})
    cohort.attrs = _attrs(params["seed"], "trauma", "trauma", "none", None, intercepts)
    cohort.attrs["profile"] = None
    if not return_oracle:
        return cohort
    oracle = pd.DataFrame({"patient_id": data["patient_id"], **truth}, index=cohort.index)
    oracle.attrs = dict(cohort.attrs)
    return cohort, oracle
