"""Named parameters of the trauma and malignant-fracture parts of the SYNTHETIC generator.

Every value the cervical addendum of the domain brief (``DOMAIN-CERVICAL.md``) marks as an
assumption [A] is a field here, with its default, so that it can be changed and is
documented in one place. Fields tagged [R] were read at a published source, [K] are
textbook knowledge. See ``docs/synthetic-cohort.md`` for the sources.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CervicalMortalityParams",
    "MalignantParams",
    "OdontoidParams",
    "TraumaParams",
]


def _check_fields(obj: Any) -> None:
    """Every numeric field finite; probabilities in [0, 1]; readable errors."""
    cls = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{cls}.{f.name} must be a finite number; got {value!r}.")
        if (f.name.startswith(("p_", "share_")) or f.name.endswith("_share")) and not (
            0.0 <= value <= 1.0
        ):
            raise ValueError(
                f"{cls}.{f.name} is a probability and must be between 0 and 1; got {value!r}."
            )


@dataclass(frozen=True)
class OdontoidParams:
    """Type II odontoid fracture in older adults: unstable nonunion at 12 months.

    Equations of the domain addendum, section A(i); every value is an assumption [A]
    anchored on the published directions (Koivikko 2004, Cloney 2023, Wilson 2021 [R])
    unless stated. The nonunion, non-osseous and surgery intercepts are solved on each
    cohort to the target shares below (reference intercepts: -2.321 and 0.232).

    Parameters
    ----------
    age_mean, age_sd, age_min, age_max : float, default=82, 7.5, 65, 102
        Age ~ TN(82, 7.5, 65, 102) (mean age 82 in Chapman 2013 and Schoenfeld 2011 [R]).
    p_male : float, default=0.55
        Share of men (45% women in the SE Norway cohort [R]).
    displaced_logit, displaced_age : float, default=-0.1, 0.03
        P(displaced) = expit(-0.1 + 0.03 (age - 82)), about 47%.
    disp_shape, disp_scale, disp_scale_age : float, default=2.0, 2.2, 0.04
        Displacement (mm) of a displaced dens ~ Gamma(2, 2.2 + 0.04 (age - 82));
        undisplaced: U(0, 1).
    posterior_logit, posterior_age : float, default=-0.2, 0.06
        Displaced posteriorly with P = expit(-0.2 + 0.06 (age - 82)), about 22% overall.
    gap_logit, gap_disp : float, default=-2.0, 0.35
        Fracture gap > 1 mm with P = expit(-2.0 + 0.35 displacement_mm), about 26%.
    angulation_shape, angulation_scale, angulation_disp : float, default=1.6, 4.0, 0.9
        Angulation (degrees) = Gamma(1.6, 4) + 0.9 displacement_mm.
    angulation_threshold_deg : float, default=10.0
        Angulation above which the angulation term applies (about 33% of fractures).
    p_comminuted, p_delay_gt4d, p_smoker, p_halo : float, default=0.10, 0.15, 0.08, 0.10
        Comminution, delay to immobilisation > 4 days, current smoking, and halo (rather
        than rigid collar) among non-operated patients (collar about 90% [R]).
    beta_age_10y, beta_disp_mm, beta_posterior, beta_gap_gt1, beta_angulation, \
beta_comminuted, beta_delay_gt4d, beta_smoker, beta_halo : float
        Log odds ratios of unstable nonunion: 0.26 per 10 years (weak within >= 65,
        Koivikko, Wilson [R]), 0.15 per mm around 3 mm, 0.69 posterior displacement, 1.10
        gap > 1 mm, 1.10 angulation > 10 degrees (Cloney OR 5.11 [R] shrunk), 0.41
        comminution, 0.92 delay > 4 days (Koivikko [R] direction), 0.59 smoking, 0 halo
        (Waqar 2017: halo and collar do not differ [R]).
    surgery_or : float, default=0.15
        Odds ratio of unstable nonunion after primary surgery [A].
    nonunion_prevalence : float, default=0.25
        Target mean true risk of unstable nonunion among non-operated patients (Omara
        2025: 25% [R]; Smith 2013: 22% [R]).
    non_osseous_share : float, default=0.70
        Target mean true risk of non-osseous healing (fibrous or unstable) among
        non-operated patients; the ordinal model shares the linear predictor.
    surgery_share : float, default=0.21
        Target share treated with primary surgery (SE Norway odontoid cohort: 21% [R]).
    surgery_disp, surgery_age : float, default=0.0, 0.0
        Log odds of primary surgery per mm of displacement (around 3 mm) and per year of
        age (around 82) [A]. Zero by default: surgery is then assigned at random, so the
        non-operated patients are the addendum's population and reproduce its oracle AUC
        (0.81). Confounding by indication (for example 0.15 and -0.04) makes the
        non-operated fractures less displaced and lowers that AUC to about 0.79.
    p_anterior_screw : float, default=0.40
        Share of operations that are an anterior odontoid screw (rest posterior C1-C2).
    p_surgery_for_failure : float, default=0.35
        Share of unstable nonunions operated for failure within 12 months (Smith 2013:
        primary + secondary surgery 30% vs primary 22% [R]).
    """

    age_mean: float = 82.0
    age_sd: float = 7.5
    age_min: float = 65.0
    age_max: float = 102.0
    p_male: float = 0.55
    displaced_logit: float = -0.1
    displaced_age: float = 0.03
    disp_shape: float = 2.0
    disp_scale: float = 2.2
    disp_scale_age: float = 0.04
    posterior_logit: float = -0.2
    posterior_age: float = 0.06
    gap_logit: float = -2.0
    gap_disp: float = 0.35
    angulation_shape: float = 1.6
    angulation_scale: float = 4.0
    angulation_disp: float = 0.9
    angulation_threshold_deg: float = 10.0
    p_comminuted: float = 0.10
    p_delay_gt4d: float = 0.15
    p_smoker: float = 0.08
    p_halo: float = 0.10
    beta_age_10y: float = 0.26
    beta_disp_mm: float = 0.15
    beta_posterior: float = 0.69
    beta_gap_gt1: float = 1.10
    beta_angulation: float = 1.10
    beta_comminuted: float = 0.41
    beta_delay_gt4d: float = 0.92
    beta_smoker: float = 0.59
    beta_halo: float = 0.0
    surgery_or: float = 0.15
    nonunion_prevalence: float = 0.25
    non_osseous_share: float = 0.70
    surgery_share: float = 0.21
    surgery_disp: float = 0.0
    surgery_age: float = 0.0
    p_anterior_screw: float = 0.40
    p_surgery_for_failure: float = 0.35

    def __post_init__(self) -> None:
        _check_fields(self)
        for name in ("nonunion_prevalence", "non_osseous_share", "surgery_share"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(
                    f"OdontoidParams.{name} must be strictly between 0 and 1; "
                    f"got {getattr(self, name)!r}."
                )
        if self.non_osseous_share <= self.nonunion_prevalence:
            raise ValueError(
                "OdontoidParams.non_osseous_share must exceed nonunion_prevalence (unstable "
                f"nonunion is one kind of non-osseous healing); got {self.non_osseous_share!r} "
                f"<= {self.nonunion_prevalence!r}."
            )


@dataclass(frozen=True)
class CervicalMortalityParams:
    """Death after a cervical fracture, with an early excess hazard.

    Domain addendum, section A(ii). Time t in years; the cumulative hazard is
    ``H(t) = exp(b + LP) (t + excess_hazard_ratio * excess_decay_years *
    (1 - exp(-t / excess_decay_years)))``; ``b`` is solved on each cohort so that the mean
    30-day death risk among cervical patients aged 65 or more equals ``death_30d``
    (reference b = -2.789). All values [A] unless stated.

    Parameters
    ----------
    age_mean, age_sd, age_min, age_max : float, default=80, 8, 65, 104
        Age of cervical patients aged 65 or more ~ TN(80, 8, 65, 104).
    p_male : float, default=0.5
        Share of men among cervical patients aged 65 or more.
    cci_rate, cci_age : float, default=1.2, 0.04
        Charlson comorbidity index ~ Poisson(1.2 + 0.04 (age - 80)), rate at least 0.1,
        clipped to 0-12.
    dementia_logit, dementia_age : float, default=-2.0, 0.08
        P(dementia) = expit(-2.0 + 0.08 (age - 80)).
    p_anticoagulant : float, default=0.20
        Oral anticoagulant use.
    p_ankylosing : float, default=0.04
        Ankylosing spinal disorder (AS or DISH).
    p_as_given_ankylosing : float, default=0.40
        Share of ankylosing disorders that are ankylosing spondylitis (the rest DISH).
    sci_logit, sci_ankylosing : float, default=-2.6, 0.8
        P(spinal cord injury) = expit(-2.6 + 0.8 ankylosing) at 65 or more.
    p_complete_given_sci : float, default=0.15
        Complete injuries among spinal cord injuries (85% incomplete [R: Utheim 2022]).
    p_tbi : float, default=0.12
        Traumatic brain injury.
    surgery_logit, surgery_age, surgery_cci, surgery_dementia, surgery_sci, \
surgery_ankylosing : float, default=-1.4, -0.05, -0.25, -0.8, 1.2, 0.6
        Surgery (non-odontoid records) = expit(-1.4 - 0.05 (age - 80) - 0.25 (cci - 1.2)
        - 0.8 dementia + 1.2 sci + 0.6 ankylosing), about 21% at 65 or more.
    surgery_age_younger : float, default=75.0
        Age used in the surgery model for cervical patients younger than 65 (the model
        was written for older patients; extrapolating its age term would operate most
        younger patients). With 75, open fixation is about 26% of cervical fractures
        overall, as in Utheim 2022 [R].
    beta_age, beta_male, beta_cci, beta_dementia, beta_anticoagulant, beta_ankylosing, \
beta_sci, beta_sci_complete, beta_tbi, beta_surgery : float
        Log hazard ratios: 0.095 per year (Chapman HR 1.10/y [R]), 0.405 men (Godat female
        OR 0.68 [R]), 0.18 per CCI point, 0.92 dementia, 0.26 anticoagulant (HR 1.3 [A]),
        0.92 ankylosing disorder, 1.10 spinal cord injury, 1.2 more if complete, 0.31 brain
        injury (Godat TBI 1.37 [R]), -0.53 surgery (confounded, Merali 2023 [R]).
    excess_hazard_ratio, excess_decay_years : float, default=18.0, 0.06
        Early excess hazard: 18 times the baseline at injury, decaying with time constant
        0.06 years (about 22 days).
    death_30d : float, default=0.132
        Target mean 30-day death risk among cervical patients aged 65 or more (Chapman
        2013: 14% [R]); with the shape above 90 days is about 17.8% and 1 year 24.9%
        (Godat 2018: 28% at 1 year [R]).
    followup_min_years, followup_max_years : float, default=1.0, 3.0
        End of mortality follow-up ~ U(1, 3) years (registry linkage, nobody lost before).
    """

    age_mean: float = 80.0
    age_sd: float = 8.0
    age_min: float = 65.0
    age_max: float = 104.0
    p_male: float = 0.5
    cci_rate: float = 1.2
    cci_age: float = 0.04
    dementia_logit: float = -2.0
    dementia_age: float = 0.08
    p_anticoagulant: float = 0.20
    p_ankylosing: float = 0.04
    p_as_given_ankylosing: float = 0.40
    sci_logit: float = -2.6
    sci_ankylosing: float = 0.8
    p_complete_given_sci: float = 0.15
    p_tbi: float = 0.12
    surgery_logit: float = -1.4
    surgery_age: float = -0.05
    surgery_cci: float = -0.25
    surgery_dementia: float = -0.8
    surgery_sci: float = 1.2
    surgery_ankylosing: float = 0.6
    surgery_age_younger: float = 75.0
    beta_age: float = 0.095
    beta_male: float = 0.405
    beta_cci: float = 0.18
    beta_dementia: float = 0.92
    beta_anticoagulant: float = 0.26
    beta_ankylosing: float = 0.92
    beta_sci: float = 1.10
    beta_sci_complete: float = 1.2
    beta_tbi: float = 0.31
    beta_surgery: float = -0.53
    excess_hazard_ratio: float = 18.0
    excess_decay_years: float = 0.06
    death_30d: float = 0.132
    followup_min_years: float = 1.0
    followup_max_years: float = 3.0

    def __post_init__(self) -> None:
        _check_fields(self)
        if not 0.0 < self.death_30d < 1.0:
            raise ValueError(
                f"CervicalMortalityParams.death_30d must be strictly between 0 and 1; "
                f"got {self.death_30d!r}."
            )
        if self.excess_hazard_ratio < 0 or self.excess_decay_years <= 0:
            raise ValueError(
                "CervicalMortalityParams needs excess_hazard_ratio >= 0 and "
                f"excess_decay_years > 0; got {self.excess_hazard_ratio!r} and "
                f"{self.excess_decay_years!r}."
            )
        if not 1.0 <= self.followup_min_years <= self.followup_max_years <= 10.0:
            raise ValueError(
                "CervicalMortalityParams needs 1 <= followup_min_years <= followup_max_years "
                f"<= 10 (the 1-year horizon must be observed); got {self.followup_min_years!r} "
                f"and {self.followup_max_years!r}."
            )


#: AIS grade transition at 12 months (rows A, B, C, D at admission; columns A-E) [A],
#: anchored on Kirshblum 2021 and the SCIMS cervical series [R].
AIS_TRANSITION: tuple[tuple[float, ...], ...] = (
    (0.75, 0.12, 0.06, 0.07, 0.00),
    (0.05, 0.45, 0.20, 0.30, 0.00),
    (0.01, 0.03, 0.17, 0.77, 0.02),
    (0.00, 0.00, 0.01, 0.91, 0.08),
)


@dataclass(frozen=True)
class TraumaParams:
    """Mixed traumatic spinal fracture cohort (``mode="trauma"``).

    Domain brief section 6.6 (anchored on section 5.2: Utheim 2022, Reinhold 2010 [R])
    with the cervical sub-cohorts of the addendum: type II odontoid fractures in older
    adults (:class:`OdontoidParams`), death after a cervical fracture
    (:class:`CervicalMortalityParams`) and the AIS grade at 12 months. All shares [A]
    unless stated.

    Parameters
    ----------
    cervical_share : float, default=0.30
        Cervical fractures (the rest thoracolumbar), from incidences of about 15 vs 30
        per 100,000.
    cervical_older_share : float, default=0.45
        Cervical patients aged 65 or more (Utheim 2022: median age 62 [R]); their age,
        sex and comorbidity follow :class:`CervicalMortalityParams`.
    odontoid_share : float, default=0.25
        Type II odontoid fractures among cervical patients aged 65 or more; their age,
        sex and fracture follow :class:`OdontoidParams`.
    upper_share : float, default=0.35
        Upper cervical (C1-C2) share of all cervical fractures, type II odontoid
        included; the other upper-cervical fractures are C1 (``c1_share``), dens type III
        (``dens_iii_share``), dens type I (``dens_i_share``) or another C2 fracture.
    c1_share, dens_iii_share, dens_i_share : float, default=0.33, 0.31, 0.02
        Shares among upper-cervical fractures that are not type II odontoid (type II is
        59% of odontoid fractures in SE Norway [R]).
    subaxial_level_probs : tuple of float, default=(0.05, 0.10, 0.20, 0.32, 0.33)
        Levels C3-C7 of subaxial fractures (peak at C6/C7 [R: Utheim]).
    younger_age_mean, younger_age_sd : float, default=42.0, 15.0
        Age of younger (high-energy) patients ~ N(42, 15), truncated to 18-65 for cervical
        patients and 18-105 for thoracolumbar patients.
    younger_p_male : float, default=0.75
        Share of men among younger high-energy patients.
    tl_older_share : float, default=0.45
        Thoracolumbar patients from the older low-energy component N(76, 9).
    older_age_mean, older_age_sd, older_p_female : float, default=76.0, 9.0, 0.55
        Older thoracolumbar component (low-energy falls).
    tl_group_probs : tuple of float, default=(0.22, 0.67, 0.11)
        T1-T10, T11-L2 and L3-L5 shares of thoracolumbar fractures (Reinhold 2010 [R]).
    ao_type_probs : tuple of float, default=(0.75, 0.15, 0.10)
        AO type A, B and C of subaxial and thoracolumbar fractures (all-comers).
    ao_a_probs, ao_b_probs : tuple of float
        Subtypes A0-A4 (0.05, 0.40, 0.10, 0.25, 0.20) and B1-B3 (0.20, 0.60, 0.20).
    younger_cervical_sci : float, default=0.16
        Spinal cord injury in cervical patients younger than 65 (cervical overall about
        12% [R: Utheim 2022]).
    tl_deficit, tl_complete : float, default=0.15, 0.30
        Neurological deficit in thoracolumbar fractures, and the complete share.
    ais_incomplete_probs : tuple of float, default=(0.15, 0.25, 0.60)
        AIS B, C and D among incomplete injuries at admission.
    p_lost_12m : float, default=0.10
        Lost to follow-up before the 12-month assessment (completely at random): the
        odontoid healing and the AIS grade at 12 months are then missing, as they are for
        patients who died within the year.
    ais_conversion : bool, default=True
        Generate the AIS grade at 12 months (transition matrix :data:`AIS_TRANSITION`).
    ais_transition : tuple of tuple of float, default=AIS_TRANSITION
        Rows A, B, C, D at admission; columns A-E at 12 months.
    odontoid : OdontoidParams, default=OdontoidParams()
    mortality : CervicalMortalityParams, default=CervicalMortalityParams()
    """

    cervical_share: float = 0.30
    cervical_older_share: float = 0.45
    odontoid_share: float = 0.25
    upper_share: float = 0.35
    c1_share: float = 0.33
    dens_iii_share: float = 0.31
    dens_i_share: float = 0.02
    subaxial_level_probs: tuple[float, ...] = (0.05, 0.10, 0.20, 0.32, 0.33)
    younger_age_mean: float = 42.0
    younger_age_sd: float = 15.0
    younger_p_male: float = 0.75
    tl_older_share: float = 0.45
    older_age_mean: float = 76.0
    older_age_sd: float = 9.0
    older_p_female: float = 0.55
    tl_group_probs: tuple[float, ...] = (0.22, 0.67, 0.11)
    ao_type_probs: tuple[float, ...] = (0.75, 0.15, 0.10)
    ao_a_probs: tuple[float, ...] = (0.05, 0.40, 0.10, 0.25, 0.20)
    ao_b_probs: tuple[float, ...] = (0.20, 0.60, 0.20)
    younger_cervical_sci: float = 0.16
    tl_deficit: float = 0.15
    tl_complete: float = 0.30
    ais_incomplete_probs: tuple[float, ...] = (0.15, 0.25, 0.60)
    p_lost_12m: float = 0.10
    ais_conversion: bool = True
    ais_transition: tuple[tuple[float, ...], ...] = AIS_TRANSITION
    odontoid: OdontoidParams = field(default_factory=OdontoidParams)
    mortality: CervicalMortalityParams = field(default_factory=CervicalMortalityParams)

    def __post_init__(self) -> None:
        _check_fields(self)
        for name in (
            "cervical_share", "cervical_older_share", "odontoid_share", "upper_share",
            "younger_p_male", "tl_older_share", "older_p_female", "younger_cervical_sci",
            "tl_deficit", "tl_complete",
        ):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TraumaParams.{name} must be between 0 and 1; got {value!r}.")
        sizes = {
            "subaxial_level_probs": 5, "tl_group_probs": 3, "ao_type_probs": 3,
            "ao_a_probs": 5, "ao_b_probs": 3, "ais_incomplete_probs": 3,
        }  # fmt: skip
        for name, size in sizes.items():
            _check_probs(f"TraumaParams.{name}", getattr(self, name), size)
        if len(self.ais_transition) != 4:
            raise ValueError("TraumaParams.ais_transition must have 4 rows (AIS A, B, C, D).")
        for grade, row in zip("ABCD", self.ais_transition, strict=True):
            _check_probs(f"TraumaParams.ais_transition row {grade}", row, 5)
        if self.c1_share + self.dens_iii_share + self.dens_i_share > 1.0:
            raise ValueError(
                "TraumaParams: c1_share + dens_iii_share + dens_i_share must be at most 1."
            )
        if self.cervical_older_share * self.odontoid_share > self.upper_share:
            raise ValueError(
                "TraumaParams: type II odontoid fractures (cervical_older_share x "
                "odontoid_share) cannot outnumber upper-cervical fractures (upper_share)."
            )
        if not isinstance(self.odontoid, OdontoidParams):
            raise TypeError(f"TraumaParams.odontoid must be OdontoidParams; got {self.odontoid!r}.")
        if not isinstance(self.mortality, CervicalMortalityParams):
            raise TypeError(
                f"TraumaParams.mortality must be CervicalMortalityParams; got {self.mortality!r}."
            )


def _check_probs(name: str, probs: Any, size: int) -> None:
    ok = isinstance(probs, tuple | list) and len(probs) == size
    ok = ok and all(isinstance(p, int | float) and 0.0 <= p <= 1.0 for p in probs)
    if not ok or abs(sum(probs) - 1.0) > 1e-6:
        raise ValueError(f"{name} must be {size} probabilities that sum to 1; got {probs!r}.")


#: MRI signs of malignancy: (column, P(sign | malignant), P(sign | benign)), section B
#: of the addendum (Cuenod 1996, Jung 2003, Baur 2002 [R]; sizes partly [A]).
MRI_SIGNS: tuple[tuple[str, float, float], ...] = (
    ("mri_convex_posterior_cortex", 0.70, 0.06),
    ("mri_pedicle_involvement", 0.78, 0.12),
    ("mri_epidural_paraspinal_mass", 0.60, 0.03),
    ("mri_diffuse_low_t1", 0.77, 0.19),
    ("mri_other_spinal_lesions", 0.55, 0.05),
    ("mri_preserved_marrow", 0.13, 0.68),
    ("mri_band_low_t1", 0.10, 0.55),
    ("mri_fluid_sign", 0.06, 0.40),
    ("mri_retropulsed_fragment", 0.03, 0.16),
    ("mri_vacuum_cleft", 0.02, 0.08),
)

#: Clinical findings independent given class: (name, P(finding | malignant),
#: P(finding | benign)), section B of the addendum [A], directions from Henschke 2013 [R].
CLINICAL_FINDINGS: tuple[tuple[str, float, float], ...] = (
    ("female", 0.55, 0.75),
    ("weight_loss", 0.20, 0.10),
    ("night_pain", 0.40, 0.30),
    ("upper_thoracic", 0.20, 0.05),
    ("esr_gt40", 0.40, 0.15),
    ("alp_high", 0.30, 0.15),
)


@dataclass(frozen=True)
class MalignantParams:
    """Malignant (pathological) vertebral compression fractures in the OVF cohort.

    Domain addendum, section B. A record's malignancy is drawn from its prior (cancer
    history) and the likelihood ratios of the cohort's own age, sex and level, shifted so
    that the share of malignant fractures is ``p_history x p_malignant_history + (1 -
    p_history) x p_malignant_no_history``. Given the class, the MRI signs share one
    latent marrow-replacement score ``A ~ N(latent_separation x malignant, 1)``: a sign is
    present when ``lambda A + sqrt(1 - lambda^2) eps > tau`` with ``lambda =
    (ndtri(P mal) - ndtri(P ben)) / latent_separation`` (clipped to +-0.98) and ``tau =
    -ndtri(P ben)``, so signs are correlated within class. Use :meth:`clinic` (the default
    preset, 12.7% malignant) or :meth:`screening` (about 5%).

    Parameters
    ----------
    p_history : float, default=0.15
        Share with a history of cancer [A].
    p_malignant_history, p_malignant_no_history : float, default=0.60, 0.045
        P(malignant | cancer history) and P(malignant | none) [A]; about one third of
        fractures in known cancer are benign (BJR 2016 [R]); 6.2% positive biopsies in
        patients without history (Radiol Med 2021 [R], other series 0.7-1.1%).
    latent_separation : float, default=2.4
        Mean of the latent marrow score in malignant fractures (benign 0) [A].
    mri_signs : tuple, default=MRI_SIGNS
        (column, P(sign | malignant), P(sign | benign)) for the 10 MRI signs.
    clinical_findings : tuple, default=CLINICAL_FINDINGS
        (name, P | malignant, P | benign) for female sex, weight loss, night pain, level
        T1-T6, ESR > 40 mm/h and raised alkaline phosphatase [A].
    age_malignant, age_benign : tuple of float, default=(71.0, 10.0), (77.0, 8.5)
        Normal age densities whose ratio is the age likelihood ratio [A].
    adc_mean, adc_scale, adc_loading : float, default=1.62, 0.30, 0.72
        ADC (1e-3 mm2/s) = 1.62 - 0.30 (0.72 A + 0.69 eps) (benign about 1.4-1.9,
        malignant 0.9-1.3 [R: BJR 2016]).
    sir_mean, sir_scale, sir_loading : float, default=0.68, 0.25, 0.70
        Chemical-shift signal-intensity ratio = 0.68 + 0.25 (0.70 A + 0.71 eps) (benign
        0.68 +- 0.29, malignant 1.06 +- 0.10 [R: Suh 2018]).
    myeloma_share : float, default=0.35
        Myeloma or lymphoma among malignant fractures (2.6 / 7.5 of the pooled biopsy
        series [R-derived]); the rest metastatic.
    p_m_protein_myeloma, p_m_protein_other : float, default=0.95, 0.05
        M-protein in myeloma, and in benign or metastatic fractures [A].
    esr_threshold, alp_threshold : float, default=40.0, 130.0
        ESR (mm/h) and alkaline phosphatase (U/L) above which the finding counts.
    p_labs_missing, p_m_protein_missing, p_quantitative_mri_missing : float, \
default=0.30, 0.60, 0.50
        With ``missing=True``: ESR and ALP not measured; M-protein not tested; DWI and
        chemical shift not acquired although MRI was done [A].
    p_biopsy_malignant, p_biopsy_augmented : float, default=0.90, 0.50
        Reference standard: biopsy for malignant fractures (else 6-month follow-up); for
        benign fractures, biopsy at cement augmentation, else follow-up [A].
    """

    p_history: float = 0.15
    p_malignant_history: float = 0.60
    p_malignant_no_history: float = 0.045
    latent_separation: float = 2.4
    mri_signs: tuple[tuple[str, float, float], ...] = MRI_SIGNS
    clinical_findings: tuple[tuple[str, float, float], ...] = CLINICAL_FINDINGS
    age_malignant: tuple[float, float] = (71.0, 10.0)
    age_benign: tuple[float, float] = (77.0, 8.5)
    adc_mean: float = 1.62
    adc_scale: float = 0.30
    adc_loading: float = 0.72
    sir_mean: float = 0.68
    sir_scale: float = 0.25
    sir_loading: float = 0.70
    myeloma_share: float = 0.35
    p_m_protein_myeloma: float = 0.95
    p_m_protein_other: float = 0.05
    esr_threshold: float = 40.0
    alp_threshold: float = 130.0
    p_labs_missing: float = 0.30
    p_m_protein_missing: float = 0.60
    p_quantitative_mri_missing: float = 0.50
    p_biopsy_malignant: float = 0.90
    p_biopsy_augmented: float = 0.50

    def __post_init__(self) -> None:
        _check_fields(self)
        if not 0.0 < self.share < 1.0:
            raise ValueError(
                "MalignantParams: the share of malignant fractures must be strictly between 0 "
                f"and 1; got {self.share!r}."
            )
        if self.latent_separation <= 0:
            raise ValueError(
                f"MalignantParams.latent_separation must be > 0; got {self.latent_separation!r}."
            )
        if not (0 < self.adc_loading < 1 and 0 < self.sir_loading < 1):
            raise ValueError("MalignantParams: adc_loading and sir_loading must be in (0, 1).")
        for group in (self.mri_signs, self.clinical_findings):
            for name, p_mal, p_ben in group:
                if not (0.0 < p_mal < 1.0 and 0.0 < p_ben < 1.0):
                    raise ValueError(
                        f"MalignantParams: probabilities of {name!r} must be strictly between "
                        f"0 and 1; got {p_mal!r} and {p_ben!r}."
                    )
        if [row[0] for row in self.clinical_findings] != [row[0] for row in CLINICAL_FINDINGS]:
            raise ValueError(
                "MalignantParams.clinical_findings must list, in order: "
                f"{[row[0] for row in CLINICAL_FINDINGS]}."
            )
        if [row[0] for row in self.mri_signs] != [row[0] for row in MRI_SIGNS]:
            raise ValueError(
                f"MalignantParams.mri_signs must list, in order: {[r[0] for r in MRI_SIGNS]}."
            )

    @property
    def share(self) -> float:
        """Share of malignant fractures implied by the cancer-history parameters."""
        return self.p_history * self.p_malignant_history + (1.0 - self.p_history) * (
            self.p_malignant_no_history
        )

    @classmethod
    def clinic(cls) -> MalignantParams:
        """Spine-clinic preset of the addendum: history 15%, 12.7% malignant.

        Returns
        -------
        MalignantParams
        """
        return cls()

    @classmethod
    def screening(cls) -> MalignantParams:
        """Screening preset: history 8%, about 5% malignant.

        The addendum's "history 8% gives about 5%" is 8.9% with the clinic's conditional
        probabilities, so this preset also lowers them (0.40 with a cancer history, 0.02
        without) [A]: 0.08 x 0.40 + 0.92 x 0.02 = 5.04%.

        Returns
        -------
        MalignantParams
        """
        return cls(p_history=0.08, p_malignant_history=0.40, p_malignant_no_history=0.02)
