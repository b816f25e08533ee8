"""Mixed traumatic spinal fracture cohort (``mode="trauma"``) of the SYNTHETIC generator.

Domain brief section 6.6 (region, age, mechanism, AO type and neurology mix, anchored on
section 5.2) with the cervical sub-cohorts of the addendum (``DOMAIN-CERVICAL.md``
section A): type II odontoid fractures in older adults and their unstable nonunion at 12
months, death after a cervical fracture with an early excess hazard, and the AIS grade at
12 months. Parameters live in :mod:`spinerisk.datasets._params`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from spinerisk._units import DAYS_PER_YEAR
from spinerisk.datasets._fields import new_column, schema_categorical
from spinerisk.datasets._numeric import _choice, _choice_rows, _solve, _solve_logit, _truncnorm
from spinerisk.datasets._params import CervicalMortalityParams, OdontoidParams, TraumaParams
from spinerisk.schema import LEVELS, TLJ_LEVELS

__all__ = ["TRAUMA_INTERCEPT_KEYS", "simulate_trauma"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Keys of ``attrs["intercepts"]`` in trauma mode (reference values of the addendum).
TRAUMA_INTERCEPT_KEYS: dict[str, float] = {
    "odontoid_unstable_logit": -2.321,
    "odontoid_non_osseous_logit": 0.232,
    "odontoid_surgery_logit": math.log(0.21 / 0.79),
    "cervical_death_log_hazard": -2.789,
}

# Mechanism probabilities in schema order: spontaneous, lifting, fall_standing,
# fall_height_gt2m, mvc, bicycle, sport, other [A]. Cervical: older and younger mixes
# that give falls 57%, bicycle 12%, motor vehicle 10%, other 21% overall (Utheim 2022 [R]).
_MECH_CERVICAL_OLDER = (0.0, 0.0, 0.80, 0.05, 0.05, 0.05, 0.0, 0.05)
_MECH_CERVICAL_YOUNGER = (0.0, 0.0, 0.10, 0.25, 0.14, 0.18, 0.10, 0.23)
_MECH_TL_YOUNGER = (0.0, 0.0, 0.05, 0.35, 0.30, 0.08, 0.10, 0.12)
_MECH_TL_OLDER = (0.08, 0.07, 0.70, 0.08, 0.05, 0.0, 0.0, 0.02)
#: High-energy mechanisms: fall from > 2 m, motor vehicle, bicycle, sport [A].
_HIGH_ENERGY = (3, 4, 5, 6)
#: Levels within the thoracolumbar groups [A]: T1-T10 evenly; T11, T12, L1, L2; L3-L5.
_TL_LEVELS = (
    tuple(f"T{i}" for i in range(1, 11)),
    tuple(lv for lv in LEVELS if lv in TLJ_LEVELS),  # T11, T12, L1, L2
    ("L3", "L4", "L5"),
)
_TL_WITHIN = ((0.1,) * 10, (0.15, 0.30, 0.35, 0.20), (0.45, 0.35, 0.20))
#: AO upper-cervical type A / B / C of C1 and non-odontoid C2 fractures [A].
_UPPER_AO_TYPES = (0.80, 0.12, 0.08)
#: Grauer IIC among displaced, non-comminuted type II fractures (the rest IIB) [A].
_GRAUER_IIC = 0.30
#: Translation (AO III-C) of a type II odontoid fracture: displacement >= 5 mm [A].
_TRANSLATION_MM = 5.0
#: Current smoking outside the odontoid sub-cohort: 65 or more / younger [A].
_SMOKING = (0.08, 0.20)
#: Thoracolumbar surgery: expit(-2.2 + 2.0 [AO B/C] + 1.0 [A3/A4] + 1.5 deficit) [A].
_TL_SURGERY = (-2.2, 2.0, 1.0, 1.5)
#: ASIA motor score at admission by AIS grade (TN mean, sd, low, high) [A].
_MOTOR_CERVICAL = {0: (18, 10, 0, 50), 1: (25, 12, 0, 60), 2: (45, 15, 5, 85), 3: (80, 9, 50, 99)}
_MOTOR_TL = {0: (50, 2, 44, 52), 1: (51, 2, 46, 56), 2: (65, 8, 50, 90), 3: (88, 6, 70, 99)}


def _level_code(names: Any) -> npt.NDArray[np.intp]:
    lookup = {name: i for i, name in enumerate(LEVELS)}
    return np.array([lookup[name] for name in names], dtype=np.intp)


def _g(t: FloatArray, ratio: float, decay: float) -> FloatArray:
    """Cumulative hazard shape: t + ratio * decay * (1 - exp(-t / decay))."""
    return t + ratio * decay * -np.expm1(-t / decay)


def _death_time(y: FloatArray, ratio: float, decay: float) -> FloatArray:
    """Solve g(t) = y by Newton steps from the left (g is increasing and concave)."""
    t = np.maximum(y / (1.0 + ratio), y - ratio * decay)
    for _ in range(80):
        step = (_g(t, ratio, decay) - y) / (1.0 + ratio * np.exp(-t / decay))
        t = t - step
        if np.max(np.abs(step) / (1.0 + t), initial=0.0) < 1e-13:
            break
    return t


def _draws(rng: np.random.Generator, n: int, tp: TraumaParams, n_centres: int) -> dict[str, Any]:
    """Every random draw of the trauma cohort, in a fixed order (one row per record)."""
    op, mp = tp.odontoid, tp.mortality
    u: dict[str, Any] = {}

    def uniforms(*names: str) -> None:
        for name in names:
            u[name] = rng.random(n)

    uniforms("region", "older", "odont", "upper", "upper_kind")
    uniforms("level", "tl_group", "tl_older", "sex")
    u["age_odont"] = _truncnorm(rng, op.age_mean, op.age_sd, op.age_min, op.age_max, n)
    u["age_cold"] = _truncnorm(rng, mp.age_mean, mp.age_sd, mp.age_min, mp.age_max, n)
    u["age_cyoung"] = _truncnorm(rng, tp.younger_age_mean, tp.younger_age_sd, 18.0, 64.9, n)
    u["age_tl_young"] = _truncnorm(rng, tp.younger_age_mean, tp.younger_age_sd, 18.0, 105.0, n)
    u["age_tl_old"] = _truncnorm(rng, tp.older_age_mean, tp.older_age_sd, 18.0, 105.0, n)
    uniforms("mech", "ao_type", "ao_sub", "upper_ao")
    uniforms("dementia", "anticoag", "asd", "as", "tbi")
    uniforms("sci", "complete", "ais_inc", "motor")
    uniforms("displaced", "posterior", "gap", "comm", "delay", "smoke", "halo")
    u["gamma_disp"] = rng.gamma(op.disp_shape, 1.0, n)
    uniforms("undisp")
    u["gamma_ang"] = rng.gamma(op.angulation_shape, op.angulation_scale, n)
    u["gap_big"], u["gap_small"] = 1.1 + rng.gamma(1.5, 0.8, n), rng.random(n)
    u["delay_long"] = 5.0 + np.floor(rng.gamma(1.5, 4.0, n))
    u["delay_short"] = np.floor(rng.gamma(0.8, 1.2, n))
    uniforms("grauer", "surgery", "screw", "heal", "failure")
    u["e_death"] = rng.exponential(1.0, n)
    uniforms("end", "lost", "ais12")
    u["index"], u["centre"] = rng.integers(0, 2922, n), rng.random(n)
    u["centre_w"] = rng.dirichlet(np.full(n_centres, 4.0))
    return u


def _strata(u: dict[str, Any], tp: TraumaParams) -> dict[str, Any]:
    """Region and age strata (cervical, older cervical, type II odontoid), age and sex."""
    op, mp = tp.odontoid, tp.mortality
    cervical = u["region"] < tp.cervical_share
    older = cervical & (u["older"] < tp.cervical_older_share)  # cervical, 65 or more
    odontoid = older & (u["odont"] < tp.odontoid_share)  # type II dens fracture
    tl_old = ~cervical & (u["tl_older"] < tp.tl_older_share)
    age = np.select(
        [odontoid, older, cervical, tl_old],
        [u["age_odont"], u["age_cold"], u["age_cyoung"], u["age_tl_old"]],
        default=u["age_tl_young"],
    )  # fmt: skip
    p_male = np.select(
        [odontoid, older, tl_old], [op.p_male, mp.p_male, 1.0 - tp.older_p_female],
        default=tp.younger_p_male,
    )  # fmt: skip
    return {
        "cervical": cervical,
        "older": older,
        "odontoid": odontoid,
        "tl_old": tl_old,
        "age": np.round(age, 1),
        "male": u["sex"] < p_male,
    }


def _level(u: dict[str, Any], s: dict[str, Any], tp: TraumaParams) -> dict[str, Any]:
    """Fracture level (schema codes), other upper-cervical fractures and the dens type."""
    n = len(s["age"])
    cervical, odontoid = s["cervical"], s["odontoid"]
    type2 = tp.cervical_older_share * tp.odontoid_share
    p_upper_rest = (tp.upper_share - type2) / (1.0 - type2) if type2 < 1 else 0.0
    upper = cervical & ~odontoid & (u["upper"] < p_upper_rest)
    kind = _choice(
        u["upper_kind"],
        [tp.c1_share, tp.dens_iii_share, tp.dens_i_share,
         1.0 - tp.c1_share - tp.dens_iii_share - tp.dens_i_share],
    )  # 0 C1, 1 dens III, 2 dens I, 3 other C2  # fmt: skip
    subaxial_names = ("C3", "C4", "C5", "C6", "C7")
    subaxial = _level_code(subaxial_names)[_choice(u["level"], tp.subaxial_level_probs)]
    group = _choice(u["tl_group"], tp.tl_group_probs)
    tl_level = np.zeros(n, dtype=np.intp)
    for g, (names, within) in enumerate(zip(_TL_LEVELS, _TL_WITHIN, strict=True)):
        tl_level = np.where(group == g, _level_code(names)[_choice(u["level"], within)], tl_level)
    c1, c2 = LEVELS.index("C1"), LEVELS.index("C2")
    level = np.select(
        [odontoid, upper & (kind == 0), upper, cervical], [c2, c1, c2, subaxial],
        default=tl_level,
    )  # fmt: skip
    dens_kind = np.select([odontoid, upper & (kind == 1), upper & (kind == 2)], [1, 2, 0], -1)
    return {"upper": upper, "level": level, "dens_kind": dens_kind, "c1": c1, "c2": c2}


def _mechanism(u: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """Injury mechanism (schema codes) by stratum, and whether it was high energy."""
    probs = np.select(
        [s["older"][:, None], s["cervical"][:, None], s["tl_old"][:, None]],
        [np.array(_MECH_CERVICAL_OLDER), np.array(_MECH_CERVICAL_YOUNGER),
         np.array(_MECH_TL_OLDER)],
        default=np.array(_MECH_TL_YOUNGER),
    )  # fmt: skip
    mechanism = _choice_rows(u["mech"], probs)
    return {"mechanism": mechanism, "high_energy": np.isin(mechanism, _HIGH_ENERGY)}


def _comorbidity(
    rng: np.random.Generator, u: dict[str, Any], age: FloatArray, mp: CervicalMortalityParams
) -> dict[str, Any]:
    """Charlson index, dementia, anticoagulation, ankylosing disorder and brain injury."""
    cci_rate = np.maximum(mp.cci_rate + mp.cci_age * (age - 80.0), 0.1)
    asd = u["asd"] < mp.p_ankylosing
    return {
        "cci": np.clip(rng.poisson(cci_rate), 0, 12),
        "dementia": u["dementia"] < expit(mp.dementia_logit + mp.dementia_age * (age - 80.0)),
        "anticoag": u["anticoag"] < mp.p_anticoagulant,
        "asd": asd,
        "ankylosing": np.where(asd, np.where(u["as"] < mp.p_as_given_ankylosing, 1, 2), 0),
        "tbi": u["tbi"] < mp.p_tbi,
    }


def _neurology(u: dict[str, Any], s: dict[str, Any], tp: TraumaParams) -> dict[str, Any]:
    """Spinal cord injury, AIS grade and ASIA motor score at admission, AO neuro code."""
    mp, cervical = tp.mortality, s["cervical"]
    p_sci = np.select(
        [s["older"], cervical],
        [expit(mp.sci_logit + mp.sci_ankylosing * s["asd"]), tp.younger_cervical_sci],
        default=tp.tl_deficit,
    )  # fmt: skip
    sci = u["sci"] < p_sci
    p_complete = np.where(cervical, mp.p_complete_given_sci, tp.tl_complete)
    complete = sci & (u["complete"] < p_complete)
    incomplete_grade = 1 + _choice(u["ais_inc"], tp.ais_incomplete_probs)  # B, C, D
    ais_adm = np.where(complete, 0, np.where(sci, incomplete_grade, 4))  # 0 A ... 4 E
    motor = np.full(len(sci), 100.0)
    for grade in range(4):
        for rows, table in ((cervical, _MOTOR_CERVICAL), (~cervical, _MOTOR_TL)):
            mu, sd, lo, hi = table[grade]
            value = mu + sd * _ndtri_between(u["motor"], mu, sd, lo, hi)
            motor = np.where(rows & (ais_adm == grade), value, motor)
    return {
        "sci": sci,
        "complete": complete,
        "ais_adm": ais_adm,
        "motor": np.round(np.clip(motor, 0.0, 100.0)),
        "ao_neuro": np.select([ais_adm == 4, ais_adm == 0], [0, 4], default=3),  # N0, N4, N3
    }


def _ao(u: dict[str, Any], s: dict[str, Any], tp: TraumaParams) -> dict[str, Any]:
    """AO type and morphology (subaxial and thoracolumbar fractures only)."""
    ao_type = _choice(u["ao_type"], tp.ao_type_probs)
    ao_a, ao_b = _choice(u["ao_sub"], tp.ao_a_probs), _choice(u["ao_sub"], tp.ao_b_probs)
    ao_morph = np.select([ao_type == 0, ao_type == 1], [ao_a, 5 + ao_b], default=8)
    return {
        "ao_type": ao_type,
        "ao_morph": ao_morph,
        "has_ao_morph": ~(s["odontoid"] | s["upper"]),
    }


def _solved(
    key: str,
    lp: FloatArray,
    rows: BoolArray,
    target: float,
    what: str,
    given: Mapping[str, float],
    intercepts: dict[str, float],
) -> float:
    """Intercept ``key``: given, else solved on ``rows`` to ``target``, else the reference."""
    if key in given:
        value = float(given[key])
    elif rows.any():
        value = _solve_logit(lp[rows], target, what)
    else:  # no record to solve on (tiny cohort): the addendum's reference value
        value = TRAUMA_INTERCEPT_KEYS[key]
    intercepts[key] = value
    return value


def _odontoid_features(u: dict[str, Any], s: dict[str, Any], op: OdontoidParams) -> dict[str, Any]:
    """Displacement, posterior direction, gap, angulation and care of a dens fracture."""
    dage = s["age"] - 82.0
    displaced = u["displaced"] < expit(op.displaced_logit + op.displaced_age * dage)
    scale = np.maximum(op.disp_scale + op.disp_scale_age * dage, 0.05)
    disp = np.where(displaced, u["gamma_disp"] * scale, 0.9 * u["undisp"])  # undisplaced: < 1 mm
    posterior_p = expit(op.posterior_logit + op.posterior_age * dage)
    smoke_p = np.where(s["age"] >= 65, *_SMOKING)
    return {
        "dage": dage,
        "displaced": displaced,
        "disp": disp,
        "posterior": displaced & (u["posterior"] < posterior_p),
        "gap": u["gap"] < expit(op.gap_logit + op.gap_disp * disp),
        "angul": u["gamma_ang"] + op.angulation_disp * disp,
        "comminuted": u["comm"] < op.p_comminuted,
        "delay": u["delay"] < op.p_delay_gt4d,
        "smoker": np.where(s["odontoid"], u["smoke"] < op.p_smoker, u["smoke"] < smoke_p),
        "halo": u["halo"] < op.p_halo,
    }


def _odontoid_outcome(
    u: dict[str, Any],
    s: dict[str, Any],
    op: OdontoidParams,
    given: Mapping[str, float],
    intercepts: dict[str, float],
) -> dict[str, Any]:
    """Surgery and healing at 12 months of a type II odontoid fracture (section A(i))."""
    odontoid, dage, disp = s["odontoid"], s["dage"], s["disp"]
    lp_surg = op.surgery_disp * (disp - 3.0) + op.surgery_age * dage
    s0 = _solved("odontoid_surgery_logit", lp_surg, odontoid, op.surgery_share,
                 "odontoid surgery", given, intercepts)  # fmt: skip
    odont_surgery = odontoid & (u["surgery"] < expit(s0 + lp_surg))
    lp_nu = (
        op.beta_age_10y * dage / 10.0 + op.beta_disp_mm * (disp - 3.0)
        + op.beta_posterior * s["posterior"] + op.beta_gap_gt1 * s["gap"]
        + op.beta_angulation * (s["angul"] > op.angulation_threshold_deg)
        + op.beta_comminuted * s["comminuted"] + op.beta_delay_gt4d * s["delay"]
        + op.beta_smoker * s["smoker"] + op.beta_halo * (s["halo"] & ~odont_surgery)
        + math.log(op.surgery_or) * odont_surgery
    )  # fmt: skip
    nonop = odontoid & ~odont_surgery
    b_u = _solved("odontoid_unstable_logit", lp_nu, nonop, op.nonunion_prevalence,
                  "odontoid unstable-nonunion intercept", given, intercepts)  # fmt: skip
    b_o = _solved("odontoid_non_osseous_logit", lp_nu, nonop, op.non_osseous_share,
                  "odontoid non-osseous intercept", given, intercepts)  # fmt: skip
    p_unstable = np.where(odontoid, expit(b_u + lp_nu), np.nan)
    p_non_osseous = np.where(odontoid, expit(max(b_o, b_u) + lp_nu), np.nan)
    healing = np.select([u["heal"] < p_unstable, u["heal"] < p_non_osseous], [2, 1], default=0)
    unstable = healing == 2
    return {
        "odont_surgery": odont_surgery,
        "lp_unstable": np.where(odontoid, b_u + lp_nu, np.nan),
        "p_unstable": p_unstable,
        "p_non_osseous": p_non_osseous,
        "healing": healing,
        "unstable": unstable,
        "failure_surgery": unstable & (u["failure"] < op.p_surgery_for_failure),
    }


def _surgery(u: dict[str, Any], s: dict[str, Any], tp: TraumaParams) -> BoolArray:
    """Surgery: the odontoid model in that sub-cohort, cervical and thoracolumbar outside."""
    mp, age = tp.mortality, s["age"]
    surg_age = np.where(age < 65.0, mp.surgery_age_younger, age) - 80.0
    p_c_surg = expit(
        mp.surgery_logit + mp.surgery_age * surg_age + mp.surgery_cci * (s["cci"] - 1.2)
        + mp.surgery_dementia * s["dementia"] + mp.surgery_sci * s["sci"]
        + mp.surgery_ankylosing * s["asd"]
    )  # fmt: skip
    b0, b_bc, b_a34, b_def = _TL_SURGERY
    p_tl_surg = expit(
        b0 + b_bc * (s["ao_type"] > 0) + b_a34 * np.isin(s["ao_morph"], (3, 4)) + b_def * s["sci"]
    )
    p_other = np.where(s["cervical"], p_c_surg, p_tl_surg)
    return np.where(s["odontoid"], s["odont_surgery"], u["surgery"] < p_other)


def _death(
    u: dict[str, Any],
    s: dict[str, Any],
    tp: TraumaParams,
    given: Mapping[str, float],
    intercepts: dict[str, float],
) -> dict[str, Any]:
    """Death after a cervical fracture (section A(ii)), its risks and the follow-up."""
    mp, cervical, older, n = tp.mortality, s["cervical"], s["older"], len(s["age"])
    lp_d = (
        mp.beta_age * (s["age"] - 80.0) + mp.beta_male * s["male"]
        + mp.beta_cci * (s["cci"] - 1.2) + mp.beta_dementia * s["dementia"]
        + mp.beta_anticoagulant * s["anticoag"] + mp.beta_ankylosing * s["asd"]
        + mp.beta_sci * s["sci"] + mp.beta_sci_complete * s["complete"]
        + mp.beta_tbi * s["tbi"] + mp.beta_surgery * s["surgery"]
    )  # fmt: skip
    ratio, decay = mp.excess_hazard_ratio, mp.excess_decay_years
    g30 = float(_g(np.array(30.0 / DAYS_PER_YEAR), ratio, decay))

    def death_gap(b: float) -> float:
        return float(np.mean(-np.expm1(-np.exp(b + lp_d[older]) * g30))) - mp.death_30d

    if "cervical_death_log_hazard" in given:
        d0 = float(given["cervical_death_log_hazard"])
    elif older.any():
        d0 = _solve(death_gap, -2.789, 1.0, (-40.0, 20.0), "cervical death intercept")
    else:
        d0 = TRAUMA_INTERCEPT_KEYS["cervical_death_log_hazard"]
    intercepts["cervical_death_log_hazard"] = d0
    rate = np.exp(d0 + lp_d)
    t_death = _death_time(u["e_death"] / rate, ratio, decay)  # years
    p_death = {
        days: np.where(cervical, -np.expm1(-rate * _g(np.full(n, days / DAYS_PER_YEAR), ratio,
                                                        decay)), np.nan)
        for days in (30, 90, 365)
    }  # fmt: skip
    end = mp.followup_min_years + u["end"] * (mp.followup_max_years - mp.followup_min_years)
    death_seen = cervical & (t_death <= end)
    alive_12m = ~cervical | (t_death * DAYS_PER_YEAR > 365.0)
    return {
        "lp_d": lp_d,
        "t_death": t_death,
        "p_death": p_death,
        "end": end,
        "death_seen": death_seen,
        "death_day": t_death * DAYS_PER_YEAR,
        "assessed_12m": alive_12m & (u["lost"] >= tp.p_lost_12m),
    }


def _ais_12m(u: dict[str, Any], ais_adm: Any, tp: TraumaParams) -> dict[str, Any]:
    """AIS grade at 12 months (section A(iii)) and the true chance of improving."""
    matrix = np.vstack([np.array(tp.ais_transition), np.eye(5)[4]])
    better = np.triu(np.ones((5, 5)), 1)  # columns better than each admission grade
    return {
        "ais_12m": _choice_rows(u["ais12"], matrix[ais_adm]),
        "p_improved": (matrix * better).sum(axis=1)[ais_adm],
    }


def simulate_trauma(
    rng: np.random.Generator,
    n: int,
    tp: TraumaParams,
    n_centres: int,
    given: Mapping[str, float],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Columns, oracle and solved intercepts of a trauma cohort of ``n`` records."""
    u = _draws(rng, n, tp, n_centres)
    s = _strata(u, tp)
    s.update(_level(u, s, tp))
    s.update(_mechanism(u, s))
    s.update(_comorbidity(rng, u, s["age"], tp.mortality))
    s.update(_neurology(u, s, tp))
    s.update(_ao(u, s, tp))
    intercepts: dict[str, float] = {}
    s.update(_odontoid_features(u, s, tp.odontoid))
    s.update(_odontoid_outcome(u, s, tp.odontoid, given, intercepts))
    s["surgery"] = _surgery(u, s, tp)
    s.update(_death(u, s, tp, given, intercepts))
    s.update(_ais_12m(u, s["ais_adm"], tp))
    return _columns(u, s, tp, n_centres), _oracle(s, tp), intercepts


def _odontoid_codes(u: dict[str, Any], s: dict[str, Any], op: OdontoidParams) -> dict[str, Any]:
    """Schema codes of the dens fracture fields (and the AO upper-cervical code)."""
    displaced, disp = s["displaced"], s["disp"]
    grauer = np.select(
        [s["comminuted"], ~displaced], [2, 0], default=np.where(u["grauer"] < _GRAUER_IIC, 2, 1)
    )
    immob = np.select(
        [s["odont_surgery"] & (u["screw"] < op.p_anterior_screw), s["odont_surgery"], s["halo"]],
        [4, 5, 3],
        default=2,
    )
    upper_type = _choice(u["upper_ao"], _UPPER_AO_TYPES)
    level = s["level"]
    ao_upper = np.select(
        [s["odontoid"], level == s["c1"], level == s["c2"]],
        [np.where(disp >= _TRANSLATION_MM, 8, 6), 3 + upper_type, 6 + upper_type],
        default=-1,
    )  # fmt: skip
    return {
        "gap_mm": np.round(np.where(s["gap"], np.minimum(u["gap_big"], 10.0), u["gap_small"]), 1),
        "grauer": grauer,
        "direction": np.select([~displaced, s["posterior"]], [0, 2], default=1),
        "delay_days": np.where(
            s["delay"], np.minimum(u["delay_long"], 60.0), np.minimum(u["delay_short"], 4.0)
        ),
        "immob": immob,
        "ao_upper": ao_upper,
    }


def _record_ids(u: dict[str, Any], n_centres: int) -> dict[str, Any]:
    """Patient and centre identifiers, country and index date."""
    n = len(u["centre"])
    centre = _choice(u["centre"], u["centre_w"])
    width, cwidth = max(6, len(str(n))), max(2, len(str(n_centres)))
    ids = np.char.add("SYN-", np.char.zfill(np.arange(1, n + 1).astype(str), width))
    cids = np.char.add("C", np.char.zfill((centre + 1).astype(str), cwidth))
    return {
        "patient_id": pd.array(ids, dtype="string"),
        "centre_id": pd.array(cids, dtype="string"),
        "country": pd.array(np.full(n, "NO"), dtype="string"),
        "index_date": (np.datetime64("2016-01-01", "D") + u["index"]).astype("datetime64[ns]"),
    }


def _columns(
    u: dict[str, Any], s: dict[str, Any], tp: TraumaParams, n_centres: int
) -> dict[str, Any]:
    """Schema-typed columns of the trauma cohort."""
    n, odontoid, cervical = len(s["age"]), s["odontoid"], s["cervical"]
    c = _odontoid_codes(u, s, tp.odontoid)
    not_odont, not_dens, no_death = ~odontoid, s["dens_kind"] < 0, ~cervical
    unassessed = not_odont | ~s["assessed_12m"]
    death_seen, death_day = s["death_seen"], s["death_day"]
    followup_days = np.where(death_seen, death_day, s["end"] * DAYS_PER_YEAR)
    disp_mm = np.round(np.minimum(s["disp"], 20.0), 1)
    angulation = np.round(np.minimum(s["angul"], 45.0), 1)
    data: dict[str, Any] = {
        **_record_ids(u, n_centres),
        "age_years": s["age"].astype(np.float64),
        "sex": schema_categorical("sex", s["male"]),
        "current_smoking": pd.arrays.BooleanArray(s["smoker"].astype(bool), np.zeros(n, bool)),
        "dementia": pd.arrays.BooleanArray(s["dementia"].astype(bool), np.zeros(n, bool)),
        "mechanism": schema_categorical("mechanism", s["mechanism"]),
        "energy": schema_categorical("energy", s["high_energy"]),
        "level": schema_categorical("level", s["level"]),
        "ao_morphology": schema_categorical("ao_morphology", s["ao_morph"], ~s["has_ao_morph"]),
        "treatment": schema_categorical("treatment", np.where(s["surgery"], 3, 0)),
        "ao_upper_cervical": new_column("ao_upper_cervical", c["ao_upper"], c["ao_upper"] < 0),
        "ao_neuro": new_column("ao_neuro", s["ao_neuro"]),
        "anderson_dalonzo": new_column("anderson_dalonzo", s["dens_kind"], not_dens),
        "grauer_subtype": new_column("grauer_subtype", c["grauer"], not_odont),
        "dens_displacement_mm": new_column("dens_displacement_mm", disp_mm, not_odont),
        "dens_displacement_dir": new_column("dens_displacement_dir", c["direction"], not_odont),
        "dens_angulation_deg": new_column("dens_angulation_deg", angulation, not_odont),
        "fracture_gap_mm": new_column("fracture_gap_mm", c["gap_mm"], not_odont),
        "comminuted": new_column("comminuted", s["comminuted"], not_odont),
        "days_injury_to_immobilisation": new_column(
            "days_injury_to_immobilisation", c["delay_days"], not_odont
        ),
        "immobilisation": new_column("immobilisation", c["immob"], not_odont),
        "asia_ais_adm": new_column("asia_ais_adm", s["ais_adm"]),
        "asia_motor_adm": new_column("asia_motor_adm", s["motor"]),
        "ankylosing_disorder": new_column("ankylosing_disorder", s["ankylosing"]),
        "anticoagulant": new_column("anticoagulant", s["anticoag"]),
        "tbi": new_column("tbi", s["tbi"]),
        "cci": new_column("cci", s["cci"]),
        "healing_12m": new_column("healing_12m", s["healing"], unassessed),
        "unstable_nonunion_12m": new_column("unstable_nonunion_12m", s["unstable"], unassessed),
        "surgery_for_failure": new_column("surgery_for_failure", s["failure_surgery"], unassessed),
        "time_to_death_d": new_column("time_to_death_d", followup_days, no_death),
        "death_event": new_column("death_event", death_seen, no_death),
        "death_30d": new_column("death_30d", death_seen & (death_day <= 30), no_death),
        "death_90d": new_column("death_90d", death_seen & (death_day <= 90), no_death),
        "death_1y": new_column("death_1y", death_seen & (death_day <= 365), no_death),
    }
    if tp.ais_conversion:
        data["asia_ais_12m"] = new_column("asia_ais_12m", s["ais_12m"], ~s["assessed_12m"])
    return data


def _oracle(s: dict[str, Any], tp: TraumaParams) -> dict[str, Any]:
    """True risks, linear predictors and latent times of the trauma cohort."""
    cervical, p_death = s["cervical"], s["p_death"]
    nan = np.full(len(cervical), np.nan)
    return {
        "p_unstable_nonunion": s["p_unstable"],
        "lp_unstable_nonunion": s["lp_unstable"],
        "p_non_osseous": s["p_non_osseous"],
        "p_death_30d": p_death[30],
        "p_death_90d": p_death[90],
        "p_death_1y": p_death[365],
        "lp_death_cervical": np.where(cervical, s["lp_d"], nan),
        "latent_death_time_days": np.where(cervical, s["t_death"] * DAYS_PER_YEAR, nan),
        "followup_end_days": np.where(cervical, s["end"] * DAYS_PER_YEAR, nan),
        "p_ais_improved": s["p_improved"] if tp.ais_conversion else nan,
        "cervical_older_stratum": s["older"],
        "odontoid_type2": s["odontoid"],
    }


def _ndtri_between(u: FloatArray, mu: float, sd: float, lo: float, hi: float) -> FloatArray:
    """Standardised truncated-normal quantile of uniforms ``u`` (for TN(mu, sd, lo, hi))."""
    a, b = ndtr((lo - mu) / sd), ndtr((hi - mu) / sd)
    return ndtri(a + u * (b - a))
