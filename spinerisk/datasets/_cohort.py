"""Synthetic acute osteoporotic vertebral fracture (OVF) cohort.

The generator follows the spinerisk domain brief, sections 5-7: a baseline cohort whose
risk factors, fracture morphology, MRI patterns and treatment follow published effect
sizes (or stated assumptions), three outcomes (progressive collapse, nonunion and a
subsequent fracture with death as a competing risk), missingness, measurement noise,
censoring and the shift scenarios used to exercise external validation.

Every record is SYNTHETIC: simulated from published effect sizes, not real patients and
not clinically validated. See ``docs/synthetic-cohort.md`` for the provenance of every
equation and parameter.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, ndtr

from spinerisk._units import DAYS_PER_YEAR
from spinerisk.datasets._fields import new_column, order_columns, schema_categorical
from spinerisk.datasets._malignant import simulate_malignant
from spinerisk.datasets._modes import (
    _OVF_OUTCOMES,
    _allowed_intercepts,
    _attrs,
    _check_bool,
    _check_int,
    _check_option,
    _check_real,
    _malignant_params,
    _masked,
    _trauma_cohort,
    _validate_mode,
)
from spinerisk.datasets._numeric import (
    _FIXATION_RATE,
    _choice,
    _choice_rows,
    _cumulative_incidence,
    _flip,
    _fracture_time,
    _solve,
    _solve_hazards,
    _solve_logit,
    _solve_treatment,
    _truncnorm,
)
from spinerisk.datasets._params import MalignantParams, TraumaParams
from spinerisk.schema import LEVELS
from spinerisk.schema.default import COLLAPSE_THRESHOLD, TLJ_LEVELS

__all__ = ["make_spine_cohort"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# -- targets and reference values (domain brief section 6) ------------------------------
#: Target 1-year fracture cumulative incidence for each outcome definition.
_FX_CIF_1Y_TARGET: dict[str, float] = {
    "radiographic_vf": 0.125,
    "clinical_any_fragility": 0.085,
}
#: T-score missing share (missing not at random).
_TSCORE_MISSING = 0.35

# -- fixed design tables (domain brief section 6.1) --------------------------------------
_LEVEL_NAMES = tuple(f"T{i}" for i in range(4, 13)) + tuple(f"L{i}" for i in range(1, 6))
_LEVEL_PROBS = np.array([1, 1.5, 3, 5, 6, 4, 4, 8, 22, 24, 10, 6, 4, 1.5]) / 100.0
_TLJ_INDEX = np.array([name in TLJ_LEVELS for name in _LEVEL_NAMES])
_LEVEL_CODES = np.array([LEVELS.index(name) for name in _LEVEL_NAMES])

# Mechanism codes follow the schema order: spontaneous, lifting, fall_standing,
# fall_height_gt2m, mvc, bicycle, sport, other. A fall from standing height is drawn
# first (55% below 85 years, 30% from 85 years, GLOW); the rest split as below.
_NON_FALL_CODES = np.array([0, 1, 3, 4, 7])
_NON_FALL_PROBS = np.array([0.60, 0.29, 0.045, 0.045, 0.02])

_PROFILES: dict[str, dict[str, Any]] = {
    "japan": {
        "p_female": 0.75,
        "age_shift": 0.0,
        "bmi": (22.5, 3.5, 14.0, 40.0),
        "height_f": (150.0, 6.0),
        "height_m": (163.0, 6.5),
        "mri_missing": 0.15,
        "delay_max": 14,
        "delay_scale": 3.0,
        "countries": ("JP",),
    },
    "western": {
        "p_female": 0.65,
        "age_shift": 2.0,
        "bmi": (26.0, 4.5, 15.0, 50.0),
        "height_f": (161.0, 6.5),
        "height_m": (175.0, 7.0),
        "mri_missing": 0.40,
        "delay_max": 28,
        "delay_scale": 6.0,
        "countries": ("GB", "DE", "US"),
    },
}

#: Oracle ``true_<field>`` columns: predictors that noise or missingness can hide, and
#: the 6-month outcomes before loss to follow-up.
_TRUE_FIELDS = (
    "tscore_min hu_l1 current_smoking alcohol_units_day falls_12m_count egfr of_class "
    "kyphotic_angle0 t1_pattern t2_pattern kyphotic_angle_6m delta_height_6m "
    "height_loss_6m_pct collapse_6m nonunion"
).split()
_HORIZON_DAYS = (365, 730, 1826)


# -- parameter validation ----------------------------------------------------------
def _validate(params: dict[str, Any]) -> None:
    _check_int("n", params["n"], 1)
    _check_int("seed", params["seed"], 0)
    _validate_mode(params)
    _check_option("profile", params["profile"], tuple(_PROFILES))
    _check_option("outcome_definition", params["outcome_definition"], tuple(_FX_CIF_1Y_TARGET))
    for name in ("missing", "noise", "nonlinear", "return_oracle"):
        _check_bool(name, params[name])
    _check_real("centre_effect_sd", params["centre_effect_sd"], 0.0, 5.0, open_=False)
    _check_int("n_centres", params["n_centres"], 1)
    if params["n_centres"] > 9999:
        raise ValueError(f"n_centres must be at most 9999; got n_centres={params['n_centres']!r}.")
    _check_real("hu_offset", params["hu_offset"], -60.0, 60.0, open_=False)
    _check_real(
        "augmentation_rate", params["augmentation_rate"], 0.0, 1.0 - _FIXATION_RATE, open_=True
    )
    _check_real("nonunion_prevalence", params["nonunion_prevalence"], 0.0, 1.0, open_=True)
    _check_real("collapse_prevalence", params["collapse_prevalence"], 0.0, 1.0, open_=True)
    given = params["intercepts"]
    if given is not None:
        if not isinstance(given, Mapping):
            raise ValueError(
                f"intercepts must be a dict such as another cohort's attrs['intercepts']; "
                f"got intercepts={given!r}."
            )
        allowed = _allowed_intercepts(params)
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise ValueError(
                f"intercepts has unknown key(s) {unknown}; expected some of {', '.join(allowed)}."
            )
        for key, value in given.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise ValueError(f"intercepts[{key!r}] must be a finite number; got {value!r}.")
        for pair in (
            ("treatment_augmentation", "treatment_fixation"),
            ("fracture_h0", "death_log_hazard"),
        ):
            if (pair[0] in given) != (pair[1] in given):
                have, need = (pair[0], pair[1]) if pair[0] in given else (pair[1], pair[0])
                raise ValueError(
                    f"intercepts has {have!r} without {need!r}; the two are solved together, "
                    "so give both (or neither)."
                )
        if "fracture_h0" in given and not given["fracture_h0"] > 0:
            raise ValueError(
                f"intercepts['fracture_h0'] is a baseline hazard and must be > 0; got "
                f"{given['fracture_h0']!r}."
            )


# -- simulation ------------------------------------------------------------------------
def _demographics(rng: np.random.Generator, n: int, prof: dict[str, Any]) -> dict[str, Any]:
    """Sex, age and body size (section 6.1), then bone health."""
    female = rng.random(n) < prof["p_female"]
    age_mean = np.where(female, 78.0, 76.0) + prof["age_shift"]
    age = np.round(_truncnorm(rng, age_mean, np.where(female, 7.5, 8.0), 60.0, 100.0, n), 1)
    mu_b, sd_b, lo_b, hi_b = prof["bmi"]
    bmi = np.round(_truncnorm(rng, mu_b, sd_b, lo_b, hi_b, n), 1)
    h_mu = np.where(female, prof["height_f"][0], prof["height_m"][0])
    h_sd = np.where(female, prof["height_f"][1], prof["height_m"][1])
    height = np.round(np.clip(h_mu + h_sd * rng.standard_normal(n), 136.0, 198.0), 1)
    weight = np.clip(np.round(bmi * (height / 100.0) ** 2, 1), 25.0, 200.0)
    tscore = -2.25 - 0.03 * (age - 77) + 0.08 * (bmi - 22.5) - 0.30 * female
    tscore = np.round(np.clip(tscore + 0.9 * rng.standard_normal(n), -5.5, 1.5), 1)
    hu = np.round(np.clip(165.0 + 30.0 * tscore + 25.0 * rng.standard_normal(n), 10, 300))
    return {
        "female": female,
        "age": age,
        "bmi": bmi,
        "height": height,
        "weight": weight,
        "tscore": tscore,
        "hu": hu,
    }


def _lifestyle(rng: np.random.Generator, n: int, female: BoolArray) -> dict[str, Any]:
    """Smoking, alcohol (units a day) and a parent's hip fracture."""
    smoking = rng.random(n) < np.where(female, 0.05, 0.20)
    heavy = rng.random(n) < np.where(female, 0.03, 0.10)
    drinks = rng.random(n) < np.where(female, 0.45, 0.65)
    light = np.round(2.0 * rng.uniform(0.5, 2.5, n)) / 2.0
    high = np.minimum(np.round(2.0 * (3.0 + rng.exponential(1.5, n))) / 2.0, 30.0)
    alcohol = np.where(heavy, high, np.where(drinks, light, 0.0))
    parental = rng.random(n) < 0.12
    return {"smoking": smoking, "alcohol": alcohol, "parental": parental}


def _comorbidities(rng: np.random.Generator, n: int, age: FloatArray) -> dict[str, Any]:
    """Glucocorticoids and their dose, rheumatoid arthritis, secondary causes, diabetes,
    kidney function and dementia."""
    gc = rng.random(n) < 0.08
    tier = _choice(rng.random(n), [0.3, 0.4, 0.3])
    dose_u = rng.random(n)
    doses = ((1.0, 2.0), (2.5, 3.0, 4.0, 5.0, 6.0), (7.5, 10.0, 15.0, 20.0, 30.0))  # mg/day
    dose = np.zeros(n)
    for k, levels in enumerate(doses):
        table = np.array(levels)
        pick = table[np.minimum((dose_u * len(table)).astype(np.intp), len(table) - 1)]
        dose = np.where(gc & (tier == k), pick, dose)
    ra = rng.random(n) < 0.04
    secondary = rng.random(n) < 0.10
    diabetes = rng.random(n) < 0.20
    dm_t1 = diabetes & (rng.random(n) < 0.03)
    secondary = secondary | dm_t1  # type 1 diabetes is a FRAX secondary cause
    egfr = np.round(np.clip(100.0 - (age - 40.0) + 16.0 * rng.standard_normal(n), 5, 130))
    dementia = rng.random(n) < expit(-2.0 + 0.08 * (age - 80))
    return {
        "gc": gc,
        "dose": dose,
        "ra": ra,
        "secondary": secondary,
        "diabetes": diabetes,
        "dm_t1": dm_t1,
        "egfr": egfr,
        "ckd": egfr < 45,
        "dementia": dementia,
    }


def _history(rng: np.random.Generator, n: int, s: dict[str, Any]) -> dict[str, Any]:
    """Prior fragility fractures, prevalent vertebral fractures and falls in 12 months."""
    age, tscore = s["age"], s["tscore"]
    prior = rng.random(n) < expit(-0.4 + 0.03 * (age - 77) - 0.3 * (tscore + 2.5))
    prior_count = np.where(prior, 1 + _choice(rng.random(n), [0.6, 0.25, 0.10, 0.05]), 0)
    prevalent_vf = rng.binomial(prior_count, 0.5)
    falls = rng.random(n) < 0.30 + 0.15 * s["dementia"]
    falls_count = 1 + _choice(rng.random(n), [0.6, 0.25, 0.15])
    falls_count = falls_count + np.where(falls_count == 3, rng.poisson(0.7, n), 0)  # 3 or more
    falls_count = np.where(falls, falls_count, 0)
    return {
        "prior": prior,
        "prior_count": prior_count,
        "prevalent_vf": prevalent_vf,
        "falls": falls,
        "falls_count": falls_count,
    }


def _level_and_admin(
    rng: np.random.Generator, n: int, age: FloatArray, prof: dict[str, Any], n_centres: int
) -> dict[str, Any]:
    """Fracture level, mechanism and energy, imaging delay, index date and centre."""
    level = _choice(rng.random(n), _LEVEL_PROBS)
    n_levels = np.where(rng.random(n) < 0.15, 2, 1)
    is_fall = rng.random(n) < np.where(age >= 85, 0.30, 0.55)
    mechanism = np.where(is_fall, 2, _NON_FALL_CODES[_choice(rng.random(n), _NON_FALL_PROBS)])
    delay = np.minimum(np.floor(rng.gamma(1.3, prof["delay_scale"], n)), prof["delay_max"])
    n_days = int((np.datetime64("2023-12-31") - np.datetime64("2016-01-01")).astype(int)) + 1
    index_day = rng.integers(0, n_days, n)
    centre_w = rng.dirichlet(np.full(n_centres, 4.0))
    return {
        "level": level,
        "tlj": _TLJ_INDEX[level],
        "n_levels": n_levels,
        "mechanism": mechanism,
        "high_energy": np.isin(mechanism, (3, 4)),
        "delay": delay,
        "index_day": index_day,
        "centre": _choice(rng.random(n), centre_w),
    }


def _morphology(rng: np.random.Generator, n: int, s: dict[str, Any]) -> dict[str, Any]:
    """Posterior wall, height loss, kyphosis, MRI patterns, OF and AO class, back pain."""
    tlj, tscore = s["tlj"], s["tscore"]
    pw = rng.random(n) < expit(-0.9 + 0.5 * tlj - 0.25 * (tscore + 2.5))
    hl0 = np.round(np.clip(rng.gamma(2.2, 7.0, n) + 6.0 * pw, 0.0, 80.0), 1)
    ka0 = np.round(np.clip(4.0 + 0.35 * hl0 + 4.0 * rng.standard_normal(n), 0.0, 50.0), 1)
    e_ch = np.exp(-1.6 + 0.4 * pw + 0.3 * tlj)
    e_dl = np.exp(-1.8 + 0.3 * pw)
    t2_probs = np.column_stack([e_ch, e_dl, np.ones(n)]) / (1.0 + e_ch + e_dl)[:, None]
    t2_main = _choice_rows(rng.random(n), t2_probs)  # 0 confined high, 1 diffuse low, 2 other
    t2 = np.where(t2_main < 2, t2_main, np.where(rng.random(n) < 0.5, 2, 3))
    t1_dl = rng.random(n) < 0.55 + 0.15 * (t2_main < 2)
    t1 = np.where(t1_dl, 0, np.where(rng.random(n) < 0.7, 1, 2))
    cleft = rng.random(n) < 0.06 + 0.06 * pw
    both = rng.random(n) < 0.15 + 0.20 * pw
    of5 = rng.random(n) < 0.02
    of_class = np.select([of5, (hl0 > 40) | both, pw, hl0 >= 5], [4, 3, 2, 1], default=0)
    b_type = _choice(rng.random(n), [0.4, 0.4, 0.2])  # OF5: B1, B2, C
    ao = np.select(
        [of_class <= 1, of_class == 2, (of_class == 3) & pw, of_class == 3],
        [1, 3, 4, 2],
        default=np.array([5, 6, 8])[b_type],
    )
    vas = np.round(_truncnorm(rng, 6.5, 2.0, 0.0, 10.0, n), 1)
    return {
        "pw": pw, "hl0": hl0, "ka0": ka0, "t2": t2, "t1": t1, "t1_dl": t1_dl,
        "t2_ch": t2 == 0, "t2_dl": t2 == 1, "cleft": cleft, "both": both,
        "of_class": of_class, "ao": ao, "vas": vas,
    }  # fmt: skip


def _treatment(
    rng: np.random.Generator, n: int, s: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Treatment, confounded by indication (multinomial logit vs conservative), brace and
    anti-osteoporosis drug; ``ref`` marks the patients the outcome rates are solved on."""
    hl0, pw, t2_ch, cleft, ka0 = s["hl0"], s["pw"], s["t2_ch"], s["cleft"], s["ka0"]
    lp_aug = 0.04 * (hl0 - 15) + 0.6 * pw + 0.8 * t2_ch + 0.5 * cleft
    lp_fix = 1.2 * pw + 0.03 * (ka0 - 12)
    given = params["intercepts"] or {}
    if "treatment_augmentation" in given and "treatment_fixation" in given:
        aug0, fix0 = given["treatment_augmentation"], given["treatment_fixation"]
    else:
        aug0, fix0 = _solve_treatment(lp_aug, lp_fix, params["augmentation_rate"])
    e_aug, e_fix = np.exp(aug0 + lp_aug), np.exp(fix0 + lp_fix)
    tr_probs = np.column_stack([np.ones(n), e_aug, e_fix]) / (1 + e_aug + e_fix)[:, None]
    tr_main = _choice_rows(rng.random(n), tr_probs)  # 0 conservative, 1 augmentation, 2 fix
    kypho = rng.random(n) < 0.5
    conservative = tr_main == 0
    brace = _choice(rng.random(n), [0.2, 0.5, 0.3])
    anti_op = np.where(rng.random(n) < 0.5, np.where(rng.random(n) < 0.8, 1, 2), 0)
    return {
        "aug0": aug0,
        "fix0": fix0,
        "treatment": np.select([tr_main == 0, tr_main == 2, kypho], [0, 3, 2], default=1),
        "augmented": tr_main == 1,
        "fixed": tr_main == 2,
        "ref": conservative if conservative.any() else np.ones(n, dtype=bool),
        "brace": brace,
        "anti_op": anti_op,
    }


def _latent(rng: np.random.Generator, n: int, params: dict[str, Any]) -> dict[str, Any]:
    """Centre intercepts and the per-patient noise of the three outcomes."""
    centre_effects = params["centre_effect_sd"] * rng.standard_normal(params["n_centres"])
    u_nonunion = rng.random(n)
    eps_collapse = 7.5 * rng.standard_normal(n)
    eps_angle = 2.0 * rng.standard_normal(n)
    e_fx, e_death = rng.exponential(1.0, n), rng.exponential(1.0, n)
    return {
        "centre_effects": centre_effects,
        "u_nonunion": u_nonunion,
        "eps_collapse": eps_collapse,
        "eps_angle": eps_angle,
        "e_fx": e_fx,
        "e_death": e_death,
    }


def _nonunion(
    s: dict[str, Any], z: dict[str, Any], params: dict[str, Any], given: Mapping[str, float]
) -> dict[str, Any]:
    """Outcome (b): nonunion (section 6.2); undefined after cement augmentation."""
    t2_ch, t2_dl, t1_dl, tlj, pw = s["t2_ch"], s["t2_dl"], s["t1_dl"], s["tlj"], s["pw"]
    age, t_def, bmi, ka0, hl0 = s["age"], s["t_def"], s["bmi"], s["ka0"], s["hl0"]
    smoking, diabetes, gc, ckd = s["smoking"], s["diabetes"], s["gc"], s["ckd"]
    dementia, fixed, tscore = s["dementia"], s["fixed"], s["tscore"]
    centre_effect = z["centre_effects"][s["centre"]]
    lp_nu = (
        1.81 * t2_ch + 1.43 * t2_dl + 0.90 * t1_dl + 1.20 * tlj + 1.20 * pw
        + 0.034 * (age - 77) + 0.34 * t_def + 0.052 * (bmi - 22.5)
        + 0.047 * (ka0 - 12) + 0.026 * (hl0 - 15)
        + 0.77 * smoking + 0.90 * diabetes + 0.90 * gc + 0.53 * ckd + 0.53 * dementia
        + centre_effect + math.log(0.5) * fixed
    )  # fmt: skip
    if params["nonlinear"]:  # thresholds, a curve and an interaction no linear model fits
        lp_nu = lp_nu + (
            0.9 * (t2_ch & tlj) + 0.7 * (age > 85) + 0.8 * (tscore < -3.5)
            + 0.04 * (bmi - 22.5) ** 2 - 0.5
        )  # fmt: skip
    nu0 = given.get("nonunion_logit")
    if nu0 is None:
        nu0 = _solve_logit(lp_nu[s["ref"]], params["nonunion_prevalence"], "nonunion intercept")
    logit_nu = np.where(s["augmented"], np.nan, nu0 + lp_nu)
    p_nu = expit(logit_nu)
    return {
        "nu0": nu0,
        "centre_effect": centre_effect,
        "logit_nu": logit_nu,
        "p_nu": p_nu,
        "nonunion": z["u_nonunion"] < p_nu,  # False where p is NaN; masked later
    }


def _collapse(
    s: dict[str, Any], z: dict[str, Any], params: dict[str, Any], given: Mapping[str, float]
) -> dict[str, Any]:
    """Outcome (a): progressive collapse (section 6.3), height loss and angle at 6 months."""
    cleft, pw, tlj, t2_dl, t2_ch, t1_dl = (
        s["cleft"], s["pw"], s["tlj"], s["t2_dl"], s["t2_ch"], s["t1_dl"]
    )  # fmt: skip
    t_def, age, bmi, dementia, gc, hl0 = (
        s["t_def"],
        s["age"],
        s["bmi"],
        s["dementia"],
        s["gc"],
        s["hl0"],
    )
    augmented, fixed, tscore, ref = s["augmented"], s["fixed"], s["tscore"], s["ref"]
    mu_rest = (
        7.8 * cleft + 6.5 * pw + 3.9 * tlj + 5.2 * t2_dl + 3.9 * t2_ch + 3.25 * t1_dl
        + 2.34 * t_def + 1.04 * (age - 77) / 10 + 0.325 * (bmi - 22.5) + 2.6 * dementia
        + 1.95 * gc - 0.195 * (hl0 - 15) - 9.0 * augmented - 10.0 * fixed
    )  # fmt: skip
    if params["nonlinear"]:
        mu_rest = mu_rest + (
            6.0 * (cleft & pw) + 4.0 * (t1_dl & (hl0 < 10)) + 3.0 * (age > 85)
            + 3.0 * (tscore < -3.5)
        )  # fmt: skip
    room = 85.0 - hl0
    can_collapse = room >= COLLAPSE_THRESHOLD

    def collapse_gap(c: float) -> float:
        p = np.where(can_collapse, ndtr((c + mu_rest - COLLAPSE_THRESHOLD) / 7.5), 0.0)
        return float(np.mean(p[ref])) - params["collapse_prevalence"]

    if "collapse_mu" in given:
        c0 = given["collapse_mu"]
    elif can_collapse[ref].any():
        c0 = _solve(collapse_gap, 5.0, 5.0, (-300.0, 300.0), "collapse intercept")
    else:  # tiny cohort where no reference patient has room to collapse 15 points
        c0 = 5.0
    mu = c0 + mu_rest
    p_collapse = np.where(can_collapse, ndtr((mu - COLLAPSE_THRESHOLD) / 7.5), 0.0)
    # floor to 0.1 so that the recorded delta >= 15 exactly when the true delta is
    delta = np.floor(np.clip(mu + z["eps_collapse"], 0.0, room) * 10.0) / 10.0
    delta = np.clip(delta, 0.0, room)
    hl6 = np.round(hl0 + delta, 1)
    ka6 = np.round(np.clip(s["ka0"] + 0.35 * delta + z["eps_angle"], -15.0, 90.0), 1)
    return {"c0": c0, "mu": mu, "p_collapse": p_collapse, "delta": delta, "hl6": hl6, "ka6": ka6}


def _fracture_and_death(
    s: dict[str, Any], z: dict[str, Any], params: dict[str, Any], given: Mapping[str, float]
) -> dict[str, Any]:
    """Outcome (c): subsequent fracture with competing death (section 6.4)."""
    age, female, t_def, prior, gc = s["age"], s["female"], s["t_def"], s["prior"], s["gc"]
    smoking, diabetes, ckd, dementia = s["smoking"], s["diabetes"], s["ckd"], s["dementia"]
    falls, hl0, augmented, tscore, bmi = s["falls"], s["hl0"], s["augmented"], s["tscore"], s["bmi"]
    lp_fx = (
        0.03 * (age - 77) + 0.36 * female + 0.405 * t_def + 0.65 * prior + 0.69 * gc
        + 0.25 * smoking + 0.26 * diabetes + 0.30 * ckd + 0.40 * dementia + 0.30 * falls
        + 0.25 * (hl0 >= 40) + 0.25 * augmented
    )  # fmt: skip
    if params["nonlinear"]:
        lp_fx = lp_fx + 0.6 * ((tscore < -3.5) & prior) + 0.5 * (age > 85) * falls
    lp_d = (
        0.11 * age + 0.545 * ~female + 0.69 * dementia + 0.41 * ckd + 0.26 * diabetes
        + 0.26 * gc + 0.34 * (bmi < 20) + 0.22 * prior
    )  # fmt: skip
    exp_fx, exp_d = np.exp(lp_fx), np.exp(lp_d)
    if "fracture_h0" in given and "death_log_hazard" in given:
        h0, d0 = given["fracture_h0"], given["death_log_hazard"]
    else:
        target = _FX_CIF_1Y_TARGET[params["outcome_definition"]]
        h0, d0 = _solve_hazards(exp_fx, exp_d, target)
    a_fx, b_d = h0 * exp_fx, math.exp(d0) * exp_d
    out = {
        "h0": h0,
        "d0": d0,
        "lp_fx": lp_fx,
        "lp_d": lp_d,
        "t_fx": _fracture_time(a_fx, z["e_fx"]),
        "t_death": np.log1p(0.11 * z["e_death"] / b_d) / 0.11,
    }
    for days in _HORIZON_DAYS:
        out[f"cif_fx_{days}"], out[f"cif_death_{days}"] = _cumulative_incidence(
            a_fx, b_d, days / DAYS_PER_YEAR
        )
    return out


def _simulate_truth(
    rng: np.random.Generator, n: int, prof: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Baseline cohort, treatment and outcomes from the true (noise-free) values.

    The steps draw from ``rng`` in this order; changing it changes every cohort.
    """
    s = _demographics(rng, n, prof)
    s.update(_lifestyle(rng, n, s["female"]))
    s.update(_comorbidities(rng, n, s["age"]))
    s.update(_history(rng, n, s))
    s.update(_level_and_admin(rng, n, s["age"], prof, params["n_centres"]))
    s.update(_morphology(rng, n, s))
    s.update(_treatment(rng, n, s, params))
    z = _latent(rng, n, params)
    given = params["intercepts"] or {}
    s["t_def"] = -(s["tscore"] + 2.5)
    s.update(_nonunion(s, z, params, given))
    s.update(_collapse(s, z, params, given))
    s.update(_fracture_and_death(s, z, params, given))
    intercepts = {
        "nonunion_logit": float(s["nu0"]),
        "collapse_mu": float(s["c0"]),
        "fracture_h0": float(s["h0"]),
        "death_log_hazard": float(s["d0"]),
        "treatment_augmentation": float(s["aug0"]),
        "treatment_fixation": float(s["fix0"]),
    }
    return s, intercepts


def _follow_up(rng: np.random.Generator, s: dict[str, Any], n: int) -> dict[str, Any]:
    """Censoring (section 6.5): administrative end, loss to follow-up, 6-month loss."""
    admin = rng.uniform(2.0, 10.0, n)
    lost = rng.exponential(1.0 / -math.log(0.95), n)  # 5% lost per year
    lost_6m = rng.random(n) < 0.25
    censor = np.minimum(admin, lost)
    t_fx, t_death = s["t_fx"], s["t_death"]
    first = np.minimum(np.minimum(t_fx, t_death), censor)
    event = np.select([t_fx <= np.minimum(t_death, censor), t_death <= censor], [1, 2], 0)
    death_seen = t_death <= censor
    return {
        "censor": censor,
        "fx_time_days": first * DAYS_PER_YEAR,
        "fx_event": event,
        "death_time_days": np.where(death_seen, t_death * DAYS_PER_YEAR, np.nan),
        # no 6-month assessment if lost (MCAR) or dead before 6 months
        "no_6m": lost_6m | (t_death < 0.5),
    }


def _observe(
    rng_miss: np.random.Generator,
    rng_noise: np.random.Generator,
    s: dict[str, Any],
    n: int,
    prof: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], float | None]:
    """Observed predictors: measurement noise, scanner offset and missingness."""
    # draws are made whatever the flags, so that flags never shift other draws
    u_t1, p_t1, u_t2, p_t2 = (rng_noise.random(n) for _ in range(4))
    u_of, dir_of = rng_noise.random(n), rng_noise.random(n)
    noise_ka0, noise_ka6 = 2.5 * rng_noise.standard_normal(n), 2.5 * rng_noise.standard_normal(n)
    o: dict[str, Any] = {}
    t1, t2, of_class, ka0, ka6 = s["t1"], s["t2"], s["of_class"], s["ka0"], s["ka6"]
    if params["noise"]:
        t1 = _flip(u_t1, p_t1, t1, 3, 0.10)
        t2 = _flip(u_t2, p_t2, t2, 4, 0.10)
        step = np.where(dir_of < 0.5, -1, 1)
        step = np.where(of_class == 0, 1, np.where(of_class == 4, -1, step))
        of_class = np.where(u_of < 0.20, of_class + step, of_class)
        ka0 = np.round(np.clip(ka0 + noise_ka0, -15.0, 70.0), 1)
        ka6 = np.round(np.clip(ka6 + noise_ka6, -15.0, 90.0), 1)
    o.update(t1=t1, t2=t2, of_class=of_class, ka0=ka0, ka6=ka6)
    o["hu"] = np.round(s["hu"] + params["hu_offset"])

    male, old = ~s["female"], s["age"] >= 85
    lp_miss = 0.7 * male + 0.9 * old + 0.3 * (s["tscore"] + 2.5)  # MNAR: higher T, more missing
    m0 = (params["intercepts"] or {}).get("tscore_missing_logit")
    if m0 is None:
        m0 = _solve_logit(lp_miss, _TSCORE_MISSING, "T-score missingness intercept")
    miss = {
        "tscore": rng_miss.random(n) < expit(m0 + lp_miss),
        "hu": rng_miss.random(n) >= np.where(s["high_energy"], 0.90, 0.58),
        "mri": rng_miss.random(n) < prof["mri_missing"],
        "smoking": rng_miss.random(n) < 0.10,
        "alcohol": rng_miss.random(n) < 0.10,
        "falls": rng_miss.random(n) < 0.20,
        "egfr": rng_miss.random(n) < 0.05,
    }
    if not params["missing"]:
        miss = {k: np.zeros(n, dtype=bool) for k in miss}
    o["miss"] = miss
    return o, (float(m0) if params["missing"] else None)


# -- frame assembly -----------------------------------------------------------------------
def _bool(values: Any, mask: BoolArray | None = None) -> pd.arrays.BooleanArray:
    values = np.asarray(values, dtype=bool)
    return pd.arrays.BooleanArray(values, np.zeros(len(values), bool) if mask is None else mask)


def _int(values: Any, mask: BoolArray | None = None) -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.int64)
    return pd.arrays.IntegerArray(values, np.zeros(len(values), bool) if mask is None else mask)


def _float(values: Any, mask: BoolArray | None = None) -> FloatArray:
    values = np.asarray(values, dtype=np.float64)
    return values if mask is None else np.where(mask, np.nan, values)


def _labels(prefix: str, index: Any, width: int) -> npt.NDArray[np.str_]:
    return np.char.add(prefix, np.char.zfill(np.asarray(index).astype(str), width))


def _assemble(
    s: dict[str, Any],
    f: dict[str, Any],
    o: dict[str, Any],
    miss: dict[str, BoolArray],
    no_6m: BoolArray,
    countries: tuple[str, ...],
    n_centres: int,
) -> dict[str, Any]:
    """Schema-typed columns from true values ``s``, follow-up ``f`` and observed ``o``."""
    n = len(s["age"])
    not_assessed = no_6m | s["augmented"]
    width = max(6, len(str(n)))
    cwidth = max(2, len(str(n_centres)))
    countries = np.array(countries)[s["centre"] % len(countries)]
    index_date = (np.datetime64("2016-01-01", "D") + s["index_day"]).astype("datetime64[ns]")
    data: dict[str, Any] = {
        "patient_id": pd.array(_labels("SYN-", np.arange(1, n + 1), width), dtype="string"),
        "centre_id": pd.array(_labels("C", s["centre"] + 1, cwidth), dtype="string"),
        "country": pd.array(countries, dtype="string"),
        "index_date": index_date,
        "days_injury_to_imaging": _int(s["delay"]),
        "age_years": _float(s["age"]),
        "sex": schema_categorical("sex", ~s["female"]),
        "height_cm": _float(s["height"]),
        "weight_kg": _float(s["weight"]),
        "bmi": _float(s["bmi"]),
        "tscore_min": _float(s["tscore"], miss["tscore"]),
        "hu_l1": _float(o["hu"], miss["hu"]),
        "prevalent_vf_count": _int(s["prevalent_vf"]),
        "prior_fragility_fx": _bool(s["prior"]),
        "prior_fx_count": _int(s["prior_count"]),
        "parental_hip_fx": _bool(s["parental"]),
        "current_smoking": _bool(s["smoking"], miss["smoking"]),
        "alcohol_units_day": _float(s["alcohol"], miss["alcohol"]),
        "glucocorticoid_current": _bool(s["gc"]),
        "glucocorticoid_dose_mg": _float(s["dose"]),
        "rheumatoid_arthritis": _bool(s["ra"]),
        "secondary_osteoporosis": _bool(s["secondary"]),
        "falls_12m_count": _int(s["falls_count"], miss["falls"]),
        "diabetes_type": schema_categorical(
            "diabetes_type", np.select([s["dm_t1"], s["diabetes"]], [1, 2])
        ),
        "egfr": _float(s["egfr"], miss["egfr"]),
        "dementia": _bool(s["dementia"]),
        "mechanism": schema_categorical("mechanism", s["mechanism"]),
        "energy": schema_categorical("energy", s["high_energy"]),
        "level": schema_categorical("level", _LEVEL_CODES[s["level"]]),
        "n_acute_levels": _int(s["n_levels"]),
        "ao_morphology": schema_categorical("ao_morphology", s["ao"]),
        "of_class": schema_categorical("of_class", o["of_class"]),
        "height_loss0_pct": _float(s["hl0"]),
        "kyphotic_angle0": _float(o["ka0"]),
        "posterior_wall_injury": _bool(s["pw"]),
        "both_endplates": _bool(s["both"]),
        "intravertebral_cleft0": _bool(s["cleft"]),
        "mri_done": _bool(~miss["mri"]),
        "t1_pattern": schema_categorical("t1_pattern", o["t1"], miss["mri"]),
        "t2_pattern": schema_categorical("t2_pattern", o["t2"], miss["mri"]),
        "vas_back0": _float(s["vas"]),
        "treatment": schema_categorical("treatment", s["treatment"]),
        "brace_type": schema_categorical("brace_type", s["brace"]),
        "anti_op_drug": schema_categorical("anti_op_drug", s["anti_op"]),
        "delta_height_6m": _float(s["delta"], no_6m),
        "height_loss_6m_pct": _float(s["hl6"], no_6m),
        "kyphotic_angle_6m": _float(o["ka6"], no_6m),
        "collapse_6m": _bool(s["delta"] >= COLLAPSE_THRESHOLD, no_6m),
        "nonunion": _bool(s["nonunion"], not_assessed),
        "fx_time_days": _float(f["fx_time_days"]),
        "fx_event": _int(f["fx_event"]),
        "death_time_days": _float(f["death_time_days"]),
    }
    return data


def make_spine_cohort(
    n: int = 1000,
    seed: int = 0,
    *,
    profile: Literal["japan", "western"] = "japan",
    missing: bool = True,
    noise: bool = False,
    centre_effect_sd: float = 0.0,
    n_centres: int = 12,
    hu_offset: float = 0.0,
    augmentation_rate: float = 0.26,
    outcome_definition: Literal["radiographic_vf", "clinical_any_fragility"] = "radiographic_vf",
    nonunion_prevalence: float = 0.16,
    collapse_prevalence: float = 0.43,
    nonlinear: bool = False,
    intercepts: Mapping[str, float] | None = None,
    return_oracle: bool = False,
    mode: Literal["ovf", "trauma"] = "ovf",
    malignant: Literal["none", "clinic", "screening"] | MalignantParams = "none",
    trauma: TraumaParams | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a SYNTHETIC cohort of acute osteoporotic vertebral fractures.

    One record per patient at the diagnosis of an acute thoracolumbar osteoporotic
    vertebral fracture (T4-L5): demographics, bone health, FRAX / Garvan risk factors,
    comorbidity, fracture level and morphology, MRI patterns, treatment, and three
    outcomes: progressive collapse at 6 months, nonunion at 6-12 months, and a subsequent
    fracture with death as a competing risk. Risk structure, prevalences and incidences
    follow published effect sizes (spinerisk domain brief, sections 5-7).

    Parameters
    ----------
    n : int, default=1000
        Number of patients (records).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``. The same seed and parameters always give
        the same cohort.
    profile : {"japan", "western"}, default="japan"
        Population profile. ``"japan"``: BMI TN(22.5, 3.5), 75% women, MRI missing in
        15%, imaging within 14 days, country ``"JP"``. ``"western"``: BMI TN(26, 4.5),
        2 years older, 65% women, MRI missing in 40%, imaging within 28 days, countries
        ``"GB"``, ``"DE"``, ``"US"`` by centre.
    missing : bool, default=True
        Apply the predictor missingness of the brief (T-score 35% missing not at random,
        CT attenuation present in about 60%, MRI, smoking, alcohol, falls, eGFR).
        Outcome censoring applies either way.
    noise : bool, default=False
        Add reader variability to the observed columns only: MRI patterns flipped in
        10%, OF class moved to an adjacent class in 20%, angles + N(0, 2.5) degrees.
        Outcomes are always generated from the true values.
    centre_effect_sd : float, default=0.0
        SD of a centre random intercept on the nonunion logit (0.3 is a realistic
        between-site spread).
    n_centres : int, default=12
        Number of centres; patients are spread over them with unequal sizes.
    hu_offset : float, default=0.0
        Scanner offset (HU) added to the observed ``hu_l1`` only, between -60 and 60
        (a shift scenario; +-15 is realistic).
    augmentation_rate : float, default=0.26
        Share of patients treated with cement augmentation (vertebroplasty or
        kyphoplasty, half each). 0.40 is the treatment-drift scenario. Fixation is
        always about 3%, so the rate must be below 0.97.
    outcome_definition : {"radiographic_vf", "clinical_any_fragility"}, \
default="radiographic_vf"
        Subsequent-fracture definition: radiographic vertebral fracture (1-year
        cumulative incidence 12.5%) or clinical fragility fracture at any site (8.5%).
    nonunion_prevalence : float, default=0.16
        Mean true risk of nonunion among conservatively treated patients.
    collapse_prevalence : float, default=0.43
        Mean true risk of progressive collapse among conservatively treated patients.
    nonlinear : bool, default=False
        Add non-linear effects and interactions to the three outcome models (an age
        threshold at 85, a T-score threshold at -3.5, a U-shaped BMI effect on nonunion,
        T2 confined-high x thoracolumbar junction, cleft x posterior wall, T1 diffuse-low x
        small initial height loss, low T-score x prior fracture). They are assumptions
        [A] made to test that flexible models find structure a linear model cannot; the
        reference figures of the default generator do not apply. The oracle risks include
        them.
    intercepts : dict or None, default=None
        Intercepts to use instead of solving them for this cohort, typically
        ``reference.attrs["intercepts"]`` of a development cohort. Solving keeps the
        target rates whatever the case mix; fixing them lets a shifted cohort (western
        profile, centre effects) carry its own outcome rates, as real external data
        would, so calibration decay can be measured. Keys may be a subset (pairs
        ``fracture_h0``/``death_log_hazard`` and the two treatment keys go together);
        missing keys are solved. Leave the treatment keys out to apply
        ``augmentation_rate`` (treatment drift).
    return_oracle : bool, default=False
        Also return the true, noise-free risks and predictor values.
    mode : {"ovf", "trauma"}, default="ovf"
        ``"ovf"``: the acute osteoporotic fracture cohort described above. ``"trauma"``:
        a mixed traumatic spinal fracture cohort (30% cervical, 70% thoracolumbar, all
        ages) with the cervical sub-cohorts of the domain addendum: type II odontoid
        fractures in adults aged 65 or more and their unstable nonunion at 12 months,
        death after a cervical fracture (early excess hazard; 30 days, 90 days, 1 year)
        and, optionally, the AIS grade at 12 months. The OVF-only parameters
        (``profile``, ``missing``, ``noise``, ``centre_effect_sd``, ``hu_offset``,
        ``augmentation_rate``, ``outcome_definition``, ``nonunion_prevalence``,
        ``collapse_prevalence``, ``nonlinear``) must keep their defaults in trauma mode.
    malignant : {"none", "clinic", "screening"} or MalignantParams, default="none"
        Malignant (pathological) fractures in the OVF cohort. ``"none"``: the cohort
        of the OVF prognosis studies, which excluded them. ``"clinic"``: the spine-clinic
        mix of the addendum, 12.7% malignant (cancer history 15%). ``"screening"``: about
        5% malignant. A :class:`~spinerisk.datasets.MalignantParams` sets every
        assumption. Adds cancer history and primary, red-flag symptoms and labs, ten MRI
        signs, ADC and chemical-shift ratio, ``malignant``, ``vcf_etiology`` and
        ``etiology_reference``; OVF outcomes are missing for malignant fractures. The
        other columns of benign records are the same as with ``"none"``.
    trauma : TraumaParams or None, default=None
        Assumptions of the trauma cohort (mode ``"trauma"`` only); None means
        ``TraumaParams()``, the addendum's values.

    Returns
    -------
    cohort : DataFrame of shape (n, n_columns)
        Records with the columns of :data:`spinerisk.schema.SPINE_SCHEMA` that the
        generator produces (52 by default), in schema order and with the schema dtypes.
        ``cohort.attrs`` holds ``synthetic=True``, the generator name, seed, profile,
        mode, malignant preset, a description and the solved ``intercepts``.
    oracle : DataFrame of shape (n, n_oracle_columns)
        Only when ``return_oracle=True``. Same index plus ``patient_id``: true risks
        (``p_nonunion``, ``p_collapse``, ``cif_fx_365``/``730``/``1826``,
        ``cif_death_365``/``730``/``1826``), linear predictors (``lp_nonunion``, the
        nonunion logit; ``collapse_mu``, the mean additional height loss; ``lp_fx`` and
        ``lp_death``, the log-hazard ratios without baseline), latent event times and
        the true values of the noisy or missing predictors (``true_<field>``). With
        malignant fractures: ``malignant``, the exact posterior probability of
        malignancy given the prior (``p_malignant_prior``), the clinical findings
        (``p_malignant_clinical``), + MRI signs (``p_malignant_clinical_mri``), + ADC and
        chemical shift (``p_malignant_clinical_mri_quant``), + M-protein
        (``p_malignant``), and ``latent_marrow_score``; OVF risks are missing for
        malignant fractures. In trauma mode: ``p_unstable_nonunion``,
        ``lp_unstable_nonunion``, ``p_non_osseous``, ``p_death_30d``, ``p_death_90d``,
        ``p_death_1y``, ``lp_death_cervical``, ``latent_death_time_days``,
        ``followup_end_days``, ``p_ais_improved``, ``cervical_older_stratum`` and
        ``odontoid_type2``.

    Raises
    ------
    ValueError
        If a parameter is out of range, naming the parameter, the value and what is
        expected; or if a target rate cannot be attained in the generated cohort.

    See Also
    --------
    spinerisk.schema.SPINE_SCHEMA : Field definitions the cohort follows.

    Notes
    -----
    **SYNTHETIC DATA: not real patients, not clinically validated.** Use it to develop
    and test software, never to inform care.

    The default cohort (``mode="ovf"``, ``malignant="none"``) is the same, record for
    record, as before the trauma mode and malignant fractures existed: they draw from a
    fifth random stream, independent of the four the OVF cohort uses.

    Intercepts are solved by root-finding on each generated cohort, so targets hold for
    any profile or scenario: the nonunion and collapse intercepts give the requested
    mean true risk among conservatively treated patients; the treatment intercepts give
    the augmentation and fixation shares; the fracture baseline hazard ``h0`` gives the
    1-year fracture cumulative incidence and the death intercept the 5-year death
    cumulative incidence (29.9%), solved jointly because the risks compete.

    Treatment is confounded by indication, as in every observational source: augmented
    patients have worse fractures. Treatment coefficients and their attributions are
    not causal effects. Brace type has no effect (trial evidence). Outcome (b) is
    undefined after cement augmentation and missing there. Collapse and nonunion are
    missing for 25% of patients lost before 6 months (completely at random) and for
    those who died before 6 months. ``fx_time_days`` is the first of subsequent
    fracture, death or censoring (administrative end after 2-10 years, loss to
    follow-up 5% per year); ``death_time_days`` is recorded whenever death was observed,
    also after a fracture. Ignoring death as a competing risk over-estimates fracture
    risk (naive 1 - Kaplan-Meier is about 18% too high at 5 years).

    References
    ----------
    .. [1] Takahashi S et al. Machine learning for nonunion after osteoporotic
       vertebral fracture. Eur Spine J 2023;32:3788.
    .. [2] Ha KY et al. Risk factors for progressive collapse after osteoporotic
       vertebral fracture. Osteoporos Int 2013;24:1207.
    .. [3] Dubbo Osteoporosis Epidemiology Study, competing-risk models of refracture
       and death. Osteoporos Int 2024;35:1989.
    .. [4] Johansson H et al. Imminent risk of fracture after fracture. Osteoporos Int
       2017;28:775.
    .. [5] Leslie WD et al. Competing mortality and fracture risk assessment.
       Osteoporos Int 2013;24:681.

    Examples
    --------
    >>> from spinerisk.datasets import make_spine_cohort
    >>> cohort = make_spine_cohort(200, seed=1)
    >>> cohort.shape
    (200, 52)
    >>> cohort.attrs["synthetic"]
    True
    >>> cohort.loc[0, ["patient_id", "centre_id", "country"]].tolist()
    ['SYN-000001', 'C06', 'JP']
    >>> sorted(cohort["fx_event"].unique().tolist())
    [0, 1, 2]
    >>> cemented = cohort["treatment"].isin(["vertebroplasty", "kyphoplasty"])
    >>> bool(cohort.loc[cemented, "nonunion"].isna().all())
    True

    The oracle holds the true risks:

    >>> cohort, oracle = make_spine_cohort(200, seed=1, return_oracle=True)
    >>> bool(((oracle["cif_fx_365"] > 0) & (oracle["cif_fx_365"] < 1)).all())
    True
    >>> bool(oracle["patient_id"].equals(cohort["patient_id"]))
    True

    Malignant fractures, and the trauma cohort:

    >>> cohort = make_spine_cohort(2000, seed=1, malignant="clinic")
    >>> cohort.attrs["malignant_share"]
    0.12825
    >>> bool(cohort.loc[cohort["malignant"], "nonunion"].isna().all())
    True
    >>> trauma = make_spine_cohort(2000, seed=1, mode="trauma")
    >>> sorted(trauma["anderson_dalonzo"].dropna().unique().tolist())
    ['I', 'II', 'III']

    Parameters are checked before anything is simulated:

    >>> make_spine_cohort(100, profile="mars")
    Traceback (most recent call last):
    ...
    ValueError: profile must be one of 'japan', 'western'; got profile='mars'.
    """
    params = dict(locals())
    _validate(params)
    n, prof = int(n), _PROFILES[profile]
    rng = np.random.default_rng(seed)
    # The first four streams are those of the OVF cohort since its first version; the
    # fifth (trauma mode, malignant fractures) is independent of them, so adding it
    # leaves every OVF draw, and so the default cohort, bit-identical.
    rng_base, rng_cens, rng_miss, rng_noise, rng_extra = rng.spawn(5)
    if mode == "trauma":
        return _trauma_cohort(rng_extra, params, return_oracle)
    s, intercepts = _simulate_truth(rng_base, n, prof, params)
    f = _follow_up(rng_cens, s, n)
    o, m0 = _observe(rng_miss, rng_noise, s, n, prof, params)
    if m0 is not None:
        intercepts["tscore_missing_logit"] = m0

    data = _assemble(s, f, o, o["miss"], f["no_6m"], prof["countries"], params["n_centres"])
    mal_params = _malignant_params(malignant)
    mal_oracle: dict[str, Any] = {}
    given = params["intercepts"] or {}
    if mal_params is not None:
        mal_cols, mal_oracle, shift = simulate_malignant(
            rng_extra,
            s,
            _LEVEL_NAMES,
            o["miss"]["mri"],
            mal_params,
            missing=bool(missing),
            shift=(given.get("malignant_shift_history"), given.get("malignant_shift_no_history")),
        )
        intercepts["malignant_shift_history"], intercepts["malignant_shift_no_history"] = shift
        is_mal = mal_oracle["malignant"]
        for name in _OVF_OUTCOMES:  # no OVF prognosis exists for a pathological fracture
            data[name] = _masked(data[name], is_mal)
        data.update({name: new_column(name, *value) for name, value in mal_cols.items()})
    cohort = pd.DataFrame({name: data[name] for name in order_columns(data)})
    cohort.attrs = _attrs(seed, profile, mode, malignant, mal_params, intercepts)
    if not return_oracle:
        return cohort

    truth = {k: s[k] for k in ("t1", "t2", "of_class", "ka0", "ka6", "hu")}
    complete = {k: np.zeros(n, dtype=bool) for k in o["miss"]}
    no_loss = np.zeros(n, dtype=bool)
    true = _assemble(s, f, truth, complete, no_loss, prof["countries"], params["n_centres"])
    oracle = pd.DataFrame(
        {
            "patient_id": data["patient_id"],
            "p_nonunion": s["p_nu"],
            "lp_nonunion": s["logit_nu"],
            "p_collapse": s["p_collapse"],
            "collapse_mu": s["mu"],
            "lp_fx": s["lp_fx"],
            "lp_death": s["lp_d"],
            **{f"cif_fx_{d}": s[f"cif_fx_{d}"] for d in _HORIZON_DAYS},
            **{f"cif_death_{d}": s[f"cif_death_{d}"] for d in _HORIZON_DAYS},
            "centre_effect": s["centre_effect"],
            "latent_fx_time_days": s["t_fx"] * DAYS_PER_YEAR,
            "latent_death_time_days": s["t_death"] * DAYS_PER_YEAR,
            "censor_time_days": f["censor"] * DAYS_PER_YEAR,
            **{f"true_{name}": true[name] for name in _TRUE_FIELDS},
        },
        index=cohort.index,
    )
    if mal_oracle:
        is_mal = mal_oracle["malignant"]
        ovf_risks = [c for c in oracle.columns if c != "patient_id" and not c.startswith("true_")]
        ovf_risks = [c for c in ovf_risks if c != "centre_effect" and not c.endswith("time_days")]
        oracle.loc[is_mal, ovf_risks] = np.nan
        for name, values in mal_oracle.items():
            oracle[name] = values
    oracle.attrs = dict(cohort.attrs)
    return cohort, oracle
