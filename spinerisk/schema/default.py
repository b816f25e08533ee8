"""The default spine schema: acute osteoporotic vertebral fracture (OVF) records.

Fields follow the spinerisk domain brief, Appendix A, trimmed to what the synthetic
cohort and the three endpoints (collapse, nonunion, future fracture) need. Units and
hard ranges follow its section 3.9; code lists follow AO Spine, the AO Spine-DGOU OF
classification, Genant and the MRI pattern literature (section 3).

Time is in **days** from the index fracture everywhere.
"""

from __future__ import annotations

import pandas as pd

from spinerisk.schema._spec import DerivedFeature, FieldSpec, RowRule, Schema

__all__ = [
    "AGE_BANDS",
    "AGE_BAND_EDGES",
    "AO_MORPHOLOGY",
    "BMI_TOLERANCE",
    "COLLAPSE_THRESHOLD",
    "GENANT_EDGES",
    "HU_OSTEOPOROSIS",
    "FX_EVENT_CODES",
    "LEVELS",
    "OF_CLASSES",
    "OVF_BASELINE_FIELDS",
    "REGIONS",
    "REGION_OF_LEVEL",
    "SPINE_SCHEMA",
    "T1_PATTERNS",
    "T2_PATTERNS",
    "TLJ_LEVELS",
    "TREATMENTS",
    "TSCORE_OSTEOPOROSIS",
    "region_of_level",
    "resolve_schema",
]

#: Vertebral levels C1-C7, T1-T12, L1-L5, S1.
LEVELS: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 8))
    + tuple(f"T{i}" for i in range(1, 13))
    + tuple(f"L{i}" for i in range(1, 6))
    + ("S1",)
)
#: Thoracolumbar junction, a nonunion and collapse risk factor.
TLJ_LEVELS: frozenset[str] = frozenset({"T11", "T12", "L1", "L2"})
#: Spine regions (AO Spine regions with the clinically used junctions).
REGIONS: tuple[str, ...] = (
    "upper_cervical",
    "subaxial",
    "cervicothoracic",
    "thoracic",
    "tlj",
    "lumbar",
    "sacral",
)
AO_MORPHOLOGY: tuple[str, ...] = ("A0", "A1", "A2", "A3", "A4", "B1", "B2", "B3", "C")
OF_CLASSES: tuple[str, ...] = ("OF1", "OF2", "OF3", "OF4", "OF5")
T1_PATTERNS: tuple[str, ...] = ("diffuse_low", "confined_low", "none")
T2_PATTERNS: tuple[str, ...] = ("confined_high", "diffuse_low", "confined_low", "none")
TREATMENTS: tuple[str, ...] = (
    "conservative",
    "vertebroplasty",
    "kyphoplasty",
    "fixation",
    "fixation_plus_augmentation",
)
MECHANISMS: tuple[str, ...] = (
    "spontaneous",
    "lifting",
    "fall_standing",
    "fall_height_gt2m",
    "mvc",
    "bicycle",
    "sport",
    "other",
)
#: Competing-risk event codes for future fracture: 0 censored, 1 fracture, 2 death.
FX_EVENT_CODES: tuple[int, ...] = (0, 1, 2)
GENANT_GRADES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0)
#: Largest accepted gap between a recorded BMI and weight / height^2 (kg/m2).
BMI_TOLERANCE: float = 1.0

_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"


def _region_table() -> dict[str, str]:
    table = {}
    for lv in LEVELS:
        if lv in ("C1", "C2"):
            table[lv] = "upper_cervical"
        elif lv in ("C7", "T1"):
            table[lv] = "cervicothoracic"
        elif lv.startswith("C"):
            table[lv] = "subaxial"
        elif lv in TLJ_LEVELS:
            table[lv] = "tlj"
        elif lv.startswith("T"):
            table[lv] = "thoracic"
        elif lv.startswith("L"):
            table[lv] = "lumbar"
        else:
            table[lv] = "sacral"
    return table


#: Spine region of each vertebral level (the one definition; the schema's lookup table
#: ``region_of_level`` is this mapping).
REGION_OF_LEVEL: dict[str, str] = _region_table()
#: Height loss (%) at which the Genant grade steps up: grade 0 below 20, 1 below 25,
#: 2 below 40, else 3 (Genant 1993).
GENANT_EDGES: tuple[float, ...] = (20.0, 25.0, 40.0)
#: Age bands used for the derived ``age_band`` feature and subgroup tables.
AGE_BANDS: tuple[str, ...] = ("<60", "60-69", "70-79", "80-89", "90+")
AGE_BAND_EDGES: tuple[float, ...] = (60.0, 70.0, 80.0, 90.0)
#: CT attenuation at L1 at or below which bone counts as osteoporotic (> 90% specific,
#: Pickhardt 2013) when no DXA T-score is available.
HU_OSTEOPOROSIS: float = 110.0
#: DXA T-score at or below which bone counts as osteoporotic (WHO).
TSCORE_OSTEOPOROSIS: float = -2.5
#: Additional height loss (percentage points at 6 months) that defines progressive
#: collapse (Ha 2013; Cho 2023).
COLLAPSE_THRESHOLD: float = 15.0


def region_of_level(level: pd.Series) -> pd.Series:
    """Spine region of each vertebral level.

    Parameters
    ----------
    level : Series of str
        Levels such as ``"T12"``; missing or unknown levels give missing regions.

    Returns
    -------
    Series of category
        One of :data:`REGIONS`.

    Examples
    --------
    >>> import pandas as pd
    >>> region_of_level(pd.Series(["C2", "C5", "T1", "T7", "L1", "L4", None])).tolist()
    ['upper_cervical', 'subaxial', 'cervicothoracic', 'thoracic', 'tlj', 'lumbar', nan]
    """
    mapped = pd.Series(level, copy=False).astype("object").map(REGION_OF_LEVEL)
    return mapped.astype(pd.CategoricalDtype(list(REGIONS)))


def _edges(edges: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{e:g}" for e in edges) + "]"


def _labels(labels: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{label}"' for label in labels) + "]"


_GENANT = f"band(height_loss0_pct, {_edges(GENANT_EDGES)}, [0, 1, 2, 3])"
_G1, _G2, _G3 = (f"{e:g}" for e in GENANT_EDGES)
#: The grades in words: "grade 0: <20%, 1: 20 to <25%, 2: 25 to <40%, 3: >=40%".
_GENANT_TEXT = f"grade 0: <{_G1}%, 1: {_G1} to <{_G2}%, 2: {_G2} to <{_G3}%, 3: >={_G3}%"


def _f(name, dtype, description, **kw):  # noqa: ANN001, ANN202 - terse local builder
    return FieldSpec(name, dtype, description, **kw)


_B = "bool"
_FIELDS: tuple[FieldSpec, ...] = (
    # identity / admin --------------------------------------------------------------
    _f(
        "patient_id",
        "string",
        "Pseudonymous record identifier (no names or hospital numbers).",
        role="id",
        group="identity",
        nullable=False,
        required=True,
        unique=True,
        pattern=_ID_PATTERN,
    ),
    _f(
        "centre_id",
        "string",
        "Treating centre (site) code.",
        role="group",
        group="identity",
        pattern=_ID_PATTERN,
    ),
    _f(
        "country",
        "string",
        "Country of the treating centre, ISO 3166-1 alpha-2.",
        role="group",
        group="identity",
        pattern=r"[A-Z]{2}",
    ),
    _f(
        "index_date",
        "date",
        "Date of the index fracture diagnosis (prediction time point).",
        role="admin",
        group="identity",
    ),
    _f(
        "days_injury_to_imaging",
        "int",
        "Delay from injury (or symptom onset) to imaging.",
        unit="days",
        min=0,
        max=365,
        group="identity",
        source="Japanese OVF cohorts image within 14 days (Takahashi 2016; Inose 2020)",
    ),
    # demographics ---------------------------------------------------------------------
    _f(
        "age_years",
        "float",
        "Age at the index fracture.",
        unit="years",
        min=18,
        max=105,
        nullable=False,
        required=True,
        group="demographics",
    ),
    _f(
        "sex",
        "category",
        "Sex recorded at birth.",
        categories=("F", "M"),
        nullable=False,
        required=True,
        group="demographics",
    ),
    _f("height_cm", "float", "Body height.", unit="cm", min=120, max=210, group="demographics"),
    _f("weight_kg", "float", "Body weight.", unit="kg", min=25, max=200, group="demographics"),
    _f(
        "bmi",
        "float",
        "Body-mass index; must agree with weight/height^2 (within 1 kg/m2) "
        "when all three are given.",
        unit="kg/m2",
        min=12,
        max=60,
        group="demographics",
        source="Scheyerer 2022 (risk above 23)",
    ),
    # bone health ------------------------------------------------------------------------
    _f(
        "tscore_min",
        "float",
        "Lowest DXA T-score (lumbar spine, femoral neck, total hip).",
        unit="SD",
        min=-6,
        max=4,
        group="bone health",
        source="WHO; Scheyerer 2022",
    ),
    _f(
        "tscore_fn",
        "float",
        "Femoral-neck DXA T-score (FRAX input).",
        unit="SD",
        min=-6,
        max=4,
        group="bone health",
        source="Kanis 2008 (FRAX)",
    ),
    _f(
        "hu_l1",
        "float",
        "CT trabecular attenuation at L1 (or the adjacent level).",
        unit="HU",
        min=-50,
        max=450,
        group="bone health",
        source="Pickhardt 2013; Sci Rep 2025",
    ),
    _f(
        "prevalent_vf_count",
        "int",
        "Prevalent (older) vertebral fractures.",
        unit="count",
        min=0,
        max=15,
        group="bone health",
    ),
    # FRAX / Garvan inputs -------------------------------------------------------------
    _f(
        "prior_fragility_fx",
        _B,
        "Prior fragility fracture after age 50 (clinical or morphometric).",
        group="risk factors",
        source="Kanis 2004; Kanis 2008",
    ),
    _f(
        "prior_fx_count",
        "int",
        "Number of prior fractures after 50 (Garvan bins 0/1/2/3+).",
        unit="count",
        min=0,
        max=20,
        group="risk factors",
        source="Garvan (Nguyen 2007)",
    ),
    _f("parental_hip_fx", _B, "Parental hip fracture.", group="risk factors", source="FRAX"),
    _f("current_smoking", _B, "Current smoking.", group="risk factors", source="Kanis 2005"),
    _f(
        "alcohol_units_day",
        "float",
        "Alcohol intake (FRAX flag at 3 or more units/day).",
        unit="units/day",
        min=0,
        max=30,
        group="risk factors",
        source="Kanis 2005",
    ),
    _f(
        "glucocorticoid_current",
        _B,
        "Current oral glucocorticoid use.",
        group="risk factors",
        source="van Staa 2000; FRAX",
    ),
    _f(
        "glucocorticoid_dose_mg",
        "float",
        "Prednisolone-equivalent daily dose (0 when not on glucocorticoids).",
        unit="mg/day",
        min=0,
        max=100,
        group="risk factors",
        source="van Staa 2000",
    ),
    _f("rheumatoid_arthritis", _B, "Rheumatoid arthritis.", group="risk factors", source="FRAX"),
    _f(
        "secondary_osteoporosis",
        _B,
        "Secondary osteoporosis (FRAX definition).",
        group="risk factors",
        source="FRAX",
    ),
    _f(
        "falls_12m_count",
        "int",
        "Falls in the past 12 months.",
        unit="count",
        min=0,
        max=50,
        group="risk factors",
        source="Garvan; Dubbo 2024",
    ),
    # comorbidity ---------------------------------------------------------------------
    _f(
        "diabetes_type",
        "category",
        "Diabetes mellitus type.",
        categories=("none", "T1", "T2"),
        group="comorbidity",
        source="Melton 2008",
    ),
    _f(
        "egfr",
        "float",
        "Estimated glomerular filtration rate.",
        unit="mL/min/1.73m2",
        min=2,
        max=150,
        group="comorbidity",
        source="KDIGO bands",
    ),
    _f("dementia", _B, "Dementia diagnosis.", group="comorbidity"),
    _f("cardiovascular_disease", _B, "Cardiovascular disease.", group="comorbidity"),
    _f(
        "asa_class",
        "int",
        "ASA physical status class.",
        unit="class",
        min=1,
        max=5,
        group="comorbidity",
    ),
    _f(
        "mfi5",
        "int",
        "Modified 5-item frailty index.",
        unit="points",
        min=0,
        max=5,
        group="comorbidity",
        source="OF score; Scheyerer 2022",
    ),
    # injury event ----------------------------------------------------------------------
    _f(
        "mechanism",
        "category",
        "Injury mechanism.",
        categories=MECHANISMS,
        group="injury",
        source="GLOW; Utheim 2022",
    ),
    _f("energy", "category", "Injury energy.", categories=("low", "high"), group="injury"),
    # level / region ------------------------------------------------------------------
    _f(
        "level",
        "category",
        "Vertebral level of the index fracture (C1-S1).",
        categories=LEVELS,
        group="level",
        source="AO Spine regions",
    ),
    _f(
        "region",
        "category",
        "Spine region; derived from level when level is given, and must agree with it.",
        categories=REGIONS,
        group="level",
        source="AO Spine; Divi 2019",
    ),
    _f(
        "n_acute_levels",
        "int",
        "Number of acute fractured levels.",
        unit="count",
        min=1,
        max=10,
        group="level",
    ),
    # classification ----------------------------------------------------------------
    _f(
        "ao_morphology",
        "category",
        "AO Spine thoracolumbar morphology.",
        categories=AO_MORPHOLOGY,
        group="classification",
        source="Vaccaro 2013",
    ),
    _f(
        "of_class",
        "category",
        "AO Spine-DGOU osteoporotic fracture class.",
        categories=OF_CLASSES,
        group="classification",
        source="Schnake 2018",
    ),
    _f(
        "genant_grade0",
        "float",
        "Genant semi-quantitative grade at baseline; must agree with "
        "height_loss0_pct when both are given.",
        categories=GENANT_GRADES,
        group="classification",
        source="Genant 1993",
    ),
    # radiographs / CT ----------------------------------------------------------------
    _f(
        "height_loss0_pct",
        "float",
        "Vertebral height loss at presentation (worst of anterior, middle, posterior vs expected).",
        unit="%",
        min=0,
        max=100,
        group="radiographs/CT",
        source="Genant 1993; Qasem 2014",
    ),
    _f(
        "kyphotic_angle0",
        "float",
        "Local kyphotic (wedge) angle at presentation.",
        unit="degrees",
        min=-15,
        max=70,
        group="radiographs/CT",
        source="Cho 2023",
    ),
    _f(
        "posterior_wall_injury",
        _B,
        "Posterior-wall (middle-column) involvement.",
        group="radiographs/CT",
        source="Tsujio 2011; Ha 2013",
    ),
    _f(
        "both_endplates",
        _B,
        "Both endplates fractured.",
        group="radiographs/CT",
        source="Scheyerer 2022",
    ),
    _f(
        "intravertebral_cleft0",
        _B,
        "Intravertebral cleft at presentation (CT >= 1 mm, radiograph or fluid on MRI).",
        group="radiographs/CT",
        source="Muratore 2018",
    ),
    # MRI -------------------------------------------------------------------------------
    _f("mri_done", _B, "MRI performed at presentation.", group="MRI"),
    _f(
        "t1_pattern",
        "category",
        "MRI T1 signal pattern of the fractured body.",
        categories=T1_PATTERNS,
        group="MRI",
        source="Takahashi 2016; Inose 2020",
    ),
    _f(
        "t2_pattern",
        "category",
        "MRI T2 signal pattern of the fractured body.",
        categories=T2_PATTERNS,
        group="MRI",
        source="Tsujio 2011; Takahashi 2016",
    ),
    # symptoms --------------------------------------------------------------------------
    _f(
        "vas_back0",
        "float",
        "Back pain at presentation (VAS/NRS).",
        unit="0-10",
        min=0,
        max=10,
        group="symptoms",
        source="OF score",
    ),
    # treatment ----------------------------------------------------------------------
    _f(
        "treatment",
        "category",
        "Initial treatment (confounded by indication: not causal).",
        categories=TREATMENTS,
        role="treatment",
        group="treatment",
        source="Kato 2019; Kim 2014 (brace); OVF treatment literature",
    ),
    _f(
        "brace_type",
        "category",
        "Brace prescribed (no effect on outcomes in trials).",
        categories=("none", "soft", "rigid"),
        role="treatment",
        group="treatment",
        source="Kato 2019; Kim 2014",
    ),
    _f(
        "anti_op_drug",
        "category",
        "Osteoporosis drug started at baseline.",
        categories=("none", "antiresorptive", "anabolic"),
        role="treatment",
        group="treatment",
    ),
    # outcome (a): collapse --------------------------------------------------------------
    _f(
        "delta_height_6m",
        "float",
        "Additional anterior height loss over 6 months.",
        unit="percentage points",
        min=0,
        max=100,
        role="outcome",
        group="outcome: collapse",
        source="Ha 2013; Cho 2023",
    ),
    _f(
        "height_loss_6m_pct",
        "float",
        "Height loss at 6 months.",
        unit="%",
        min=0,
        max=100,
        role="outcome",
        group="outcome: collapse",
    ),
    _f(
        "kyphotic_angle_6m",
        "float",
        "Local kyphotic angle at 6 months.",
        unit="degrees",
        min=-15,
        max=90,
        role="outcome",
        group="outcome: collapse",
    ),
    _f(
        "collapse_6m",
        _B,
        "Progressive collapse: additional height loss of 15 points or more "
        "at 6 months (missing if not followed to 6 months).",
        role="outcome",
        group="outcome: collapse",
        source="Ha 2013; Cho 2023",
    ),
    # outcome (b): nonunion -------------------------------------------------------------
    _f(
        "nonunion",
        _B,
        "Nonunion (delayed union) at 6-12 months; defined for conservatively "
        "treated (or fixed) fractures, missing after cement augmentation.",
        role="outcome",
        group="outcome: nonunion",
        source="Tsujio 2011; Inose 2020",
    ),
    # outcome (c): future fracture with competing death ---------------------------------
    _f(
        "fx_time_days",
        "float",
        "Days from the index fracture to the first of subsequent fracture, death or censoring.",
        unit="days",
        min=0,
        max=36525,
        role="outcome_time",
        group="outcome: future fracture",
    ),
    _f(
        "fx_event",
        "int",
        "First event: 0 censored, 1 subsequent fracture, 2 death (competing risk).",
        categories=FX_EVENT_CODES,
        role="outcome_event",
        group="outcome: future fracture",
    ),
    _f(
        "death_time_days",
        "float",
        "Days from the index fracture to death (missing if alive at last contact).",
        unit="days",
        min=0,
        max=36525,
        role="outcome_time",
        group="outcome: future fracture",
        source="Bliuc 2009",
    ),
)

#: Anderson-D'Alonzo types of odontoid (dens) fractures.
ANDERSON_DALONZO: tuple[str, ...] = ("I", "II", "III")
#: Immobilisation or surgery after an upper cervical fracture.
IMMOBILISATION: tuple[str, ...] = (
    "none",
    "soft_collar",
    "rigid_collar",
    "halo",
    "surgery_anterior_screw",
    "surgery_posterior_c1c2",
)
AIS_GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")
CANCER_PRIMARIES: tuple[str, ...] = (
    "breast",
    "prostate",
    "lung",
    "kidney",
    "thyroid",
    "myeloma",
    "lymphoma",
    "other",
)
#: MRI / CT signs that separate malignant from osteoporotic vertebral fractures
#: (DOMAIN-CERVICAL B: Cuenod 1996; Jung 2003; Baur 2002; Suzuki 2017).
MRI_MALIGNANCY_SIGNS: dict[str, str] = {
    "mri_convex_posterior_cortex": "Convex posterior cortex of the vertebral body.",
    "mri_pedicle_involvement": "Abnormal signal of the pedicle or posterior elements.",
    "mri_epidural_paraspinal_mass": "Epidural or paraspinal soft-tissue mass.",
    "mri_diffuse_low_t1": "Diffuse low T1 signal (complete marrow replacement).",
    "mri_other_spinal_lesions": "Other spinal lesions.",
    "mri_preserved_marrow": "Preserved normal marrow signal in part of the body.",
    "mri_band_low_t1": "Band-like low T1 signal.",
    "mri_fluid_sign": "Fluid sign.",
    "mri_retropulsed_fragment": "Retropulsed posterior bony fragment.",
    "mri_vacuum_cleft": "Intravertebral vacuum cleft.",
}

_C = "cervical"
_P = "pathological fracture"
_CERVICAL_FIELDS: tuple[FieldSpec, ...] = (
    _f("anderson_dalonzo", "category", "Anderson-D'Alonzo type of a dens (C2) fracture.",
       categories=ANDERSON_DALONZO, group=_C, source="Anderson & D'Alonzo 1974"),
    _f("grauer_subtype", "category", "Grauer subtype of a type II dens fracture.",
       categories=("IIA", "IIB", "IIC"), group=_C, source="Grauer 2005"),
    _f("ao_upper_cervical", "category",
       "AO Spine upper cervical class: location I-III by type A-C.",
       categories=tuple(f"{loc}-{t}" for loc in ("I", "II", "III") for t in "ABC"), group=_C,
       source="AO Spine upper cervical classification (Vaccaro 2021)"),
    _f("ao_facet", "category", "AO Spine subaxial facet injury.",
       categories=("F1", "F2", "F3", "F4"), group=_C, source="Vaccaro 2016"),
    _f("ao_neuro", "category", "AO Spine neurological status.",
       categories=("N0", "N1", "N2", "N3", "N4", "NX"), group=_C, source="Vaccaro 2016"),
    _f("slic_total", "int", "Subaxial Injury Classification total (<=3 non-operative).",
       unit="points", min=0, max=10, group=_C, source="Vaccaro 2007"),
    _f("dens_displacement_mm", "float", "Displacement of the dens fragment.", unit="mm",
       min=0, max=20, group=_C, source="Koivikko 2004"),
    _f("dens_displacement_dir", "category", "Direction of dens displacement.",
       categories=("none", "anterior", "posterior"), group=_C, source="Koivikko 2004"),
    _f("dens_angulation_deg", "float", "Angulation of the dens fragment.", unit="degrees",
       min=0, max=45, group=_C, source="Cloney 2023"),
    _f("fracture_gap_mm", "float", "Gap at the dens fracture.", unit="mm", min=0, max=10,
       group=_C, source="Koivikko 2004"),
    _f("comminuted", "bool", "Comminuted fracture.", group=_C),
    _f("days_injury_to_immobilisation", "int", "Delay from injury to immobilisation.",
       unit="days", min=0, max=60, group=_C, source="Koivikko 2004"),
    _f("immobilisation", "category", "Immobilisation or surgery of the cervical fracture.",
       categories=IMMOBILISATION, role="treatment", group=_C),
    _f("asia_ais_adm", "category", "ASIA Impairment Scale grade at admission.",
       categories=AIS_GRADES, group=_C, source="ASIA / ISNCSCI"),
    _f("asia_motor_adm", "int", "ASIA motor score at admission.", unit="points", min=0,
       max=100, group=_C),
    _f("ankylosing_disorder", "category", "Ankylosing spinal disorder.",
       categories=("none", "AS", "DISH"), group=_C, source="Robinson 2015"),
    _f("anticoagulant", "bool", "On anticoagulants at injury.", group=_C),
    _f("tbi", "bool", "Traumatic brain injury.", group=_C, source="Godat 2018"),
    _f("cci", "int", "Charlson comorbidity index.", unit="points", min=0, max=12, group=_C),
    _f("healing_12m", "category", "Healing of the dens fracture at 12 months.",
       categories=("osseous", "fibrous_stable", "unstable"), role="outcome",
       group="outcome: odontoid", source="Omara 2025"),
    _f("unstable_nonunion_12m", "bool",
       "Unstable nonunion at 12 months: motion on flexion-extension at collar removal, or "
       "surgery for failure.", role="outcome", group="outcome: odontoid",
       source="Omara 2025; Smith 2013"),
    _f("surgery_for_failure", "bool", "Surgery for failed non-operative treatment.",
       role="outcome", group="outcome: odontoid"),
    _f("asia_ais_12m", "category", "ASIA Impairment Scale grade at 12 months.",
       categories=AIS_GRADES, role="outcome", group="outcome: neurology"),
    _f("time_to_death_d", "float",
       "Days from the cervical fracture to death or the end of follow-up.", unit="days",
       min=0, max=3650, role="outcome_time", group="outcome: mortality"),
    _f("death_event", "bool", "Died during follow-up (time_to_death_d is the time of death).",
       role="outcome_event", group="outcome: mortality"),
    _f("death_30d", "bool", "Died within 30 days.", role="outcome",
       group="outcome: mortality"),
    _f("death_90d", "bool", "Died within 90 days.", role="outcome",
       group="outcome: mortality"),
    _f("death_1y", "bool", "Died within one year.", role="outcome",
       group="outcome: mortality"),
)  # fmt: skip

_PATHOLOGICAL_FIELDS: tuple[FieldSpec, ...] = (
    _f("cancer_history", "bool", "History of cancer.", group=_P, source="Henschke 2013"),
    _f("active_cancer", "bool", "Active (treated or untreated) cancer.", group=_P),
    _f("cancer_primary", "category", "Primary tumour of a known cancer.",
       categories=CANCER_PRIMARIES, group=_P, source="Mauch 2018"),
    _f("weight_loss", "bool", "Unexplained weight loss.", group=_P),
    _f("night_pain", "bool", "Night pain.", group=_P),
    _f("esr_mm_h", "float", "Erythrocyte sedimentation rate.", unit="mm/h", min=1, max=150,
       group=_P),
    _f("crp_mg_l", "float", "C-reactive protein.", unit="mg/L", min=0, max=400, group=_P),
    _f("alp_u_l", "float", "Alkaline phosphatase.", unit="U/L", min=20, max=2000, group=_P),
    _f("m_protein", "bool", "Monoclonal protein detected.", group=_P),
    _f("sflc_ratio", "float", "Serum free light chain ratio.", min=0.01, max=1000, group=_P),
    *(_f(name, "bool", text, group=_P, source="Cuenod 1996; Jung 2003; Baur 2002")
      for name, text in MRI_MALIGNANCY_SIGNS.items()),
    _f("adc_1e3_mm2_s", "float", "Apparent diffusion coefficient (DWI).",
       unit="1e-3 mm2/s", min=0.3, max=3.0, group=_P, source="Suh 2018 (Eur Radiol)"),
    _f("cs_si_ratio", "float", "Chemical-shift opposed/in-phase signal intensity ratio.",
       min=0.1, max=1.6, group=_P, source="Suh 2018 (AJR)"),
    _f("asym_collapse_deg", "float", "Asymmetric collapse on the AP radiograph.",
       unit="degrees", min=0, max=25, group=_P, source="Suzuki 2017"),
    _f("malignant", "bool", "Malignant (pathological) fracture, by biopsy or 6-month "
       "follow-up.", role="outcome", group="outcome: malignancy"),
    _f("vcf_etiology", "category", "Cause of the vertebral fracture.",
       categories=("osteoporotic", "metastatic", "myeloma_lymphoma", "infection", "other"),
       role="outcome", group="outcome: malignancy"),
    _f("etiology_reference", "category", "How the cause was established.",
       categories=("biopsy", "followup_6m", "imaging"), role="admin",
       group="outcome: malignancy"),
)  # fmt: skip


_RULES: tuple[RowRule, ...] = (
    RowRule(
        "fx_time_positive",
        expr="fx_time_days > 0",
        message="fx_time_days must be greater than 0 (an event on the index day is not a "
        "subsequent event)",
    ),
    RowRule(
        "death_time_positive",
        expr="death_time_days > 0",
        message="death_time_days must be greater than 0",
    ),
    RowRule(
        "bmi_matches_height_weight",
        ("bmi", "height_cm", "weight_kg"),
        expr=f"abs(bmi - weight_kg / (height_cm / 100) ^ 2) <= {BMI_TOLERANCE:g}",
        message=f"bmi differs from weight_kg / (height_cm/100)^2 by more than {BMI_TOLERANCE} "
        "kg/m2",
    ),
    RowRule(
        "event_without_time",
        expr="if fx_event is not missing then fx_time_days is not missing",
        message="fx_event is recorded but fx_time_days is missing",
    ),
    RowRule(
        "time_without_event",
        expr="if fx_time_days is not missing then fx_event is not missing",
        message="fx_time_days is recorded but fx_event is missing",
    ),
    RowRule(
        "death_event_without_death_time",
        ("death_time_days", "fx_event"),
        expr="if fx_event == 2 then death_time_days is not missing",
        message="fx_event=2 (death) but death_time_days is missing",
    ),
    RowRule(
        "death_before_fracture_time",
        expr="death_time_days >= fx_time_days - 1e-9",
        message="death_time_days is earlier than fx_time_days (follow-up cannot outlast death)",
    ),
    RowRule(
        "death_event_time_mismatch",
        ("fx_event", "death_time_days", "fx_time_days"),
        expr="if fx_event == 2 then abs(death_time_days - fx_time_days) <= 1e-6",
        message="fx_event=2 (death) but fx_time_days differs from death_time_days",
    ),
    RowRule(
        "collapse_matches_height_change",
        ("collapse_6m", "delta_height_6m"),
        expr=f"(delta_height_6m >= {COLLAPSE_THRESHOLD:g}) == collapse_6m",
        message="collapse_6m disagrees with delta_height_6m (collapse means a change >= "
        f"{COLLAPSE_THRESHOLD:g} points)",
    ),
    RowRule(
        "height_loss_6m_adds_up",
        expr="abs(height_loss_6m_pct - height_loss0_pct - delta_height_6m) <= 0.5",
        message="height_loss_6m_pct is not height_loss0_pct + delta_height_6m (within 0.5)",
    ),
    RowRule(
        "mri_pattern_without_mri",
        expr="if mri_done == false then t1_pattern is missing and t2_pattern is missing",
        message="an MRI pattern is recorded but mri_done is false",
        optional=("t1_pattern", "t2_pattern"),
    ),
    RowRule(
        "region_matches_level",
        ("region", "level"),
        expr="region_of_level[level] == region",
        message="region does not match the region of the fractured level",
    ),
    RowRule(
        "genant_matches_height_loss",
        ("genant_grade0", "height_loss0_pct"),
        expr=f"genant_grade0 == {_GENANT} or (genant_grade0 == 0.5 and {_GENANT} == 0)",
        message=f"genant_grade0 disagrees with height_loss0_pct ({_GENANT_TEXT})",
    ),
    RowRule(
        "glucocorticoid_dose_without_use",
        expr="if glucocorticoid_dose_mg > 0 then glucocorticoid_current != false",
        message="glucocorticoid_dose_mg > 0 but glucocorticoid_current is false",
    ),
    RowRule(
        "nonunion_after_cement",
        ("nonunion", "treatment"),
        expr='if treatment in ["vertebroplasty", "kyphoplasty"] then nonunion is missing',
        message="nonunion is recorded after cement augmentation, where it is not defined",
    ),
    RowRule(
        "prior_fracture_count_matches_flag",
        expr="(prior_fx_count > 0) == prior_fragility_fx",
        message="prior_fx_count and prior_fragility_fx disagree (count > 0 means a prior fracture)",
    ),
)

_CERVICAL_RULES: tuple[RowRule, ...] = (
    RowRule(
        "dens_type_only_at_c2",
        ("anderson_dalonzo", "level"),
        expr='if anderson_dalonzo is not missing then level == "C2"',
        message="anderson_dalonzo (a dens fracture type) is recorded for a level other than C2",
    ),
    RowRule(
        "grauer_subtype_only_for_type_ii",
        expr='if grauer_subtype is not missing then anderson_dalonzo == "II"',
        message="grauer_subtype is recorded but anderson_dalonzo is not type II",
    ),
    RowRule(
        "dens_direction_matches_displacement",
        expr='if dens_displacement_dir == "none" then dens_displacement_mm < 1',
        message="dens_displacement_dir is none but dens_displacement_mm is 1 mm or more",
    ),
    RowRule(
        "death_flags_follow_death_time",
        expr="if death_event == false then not (death_30d == true or death_90d == true or "
        "death_1y == true)",
        message="a death flag is set but death_event is false",
        optional=("death_30d", "death_90d", "death_1y"),
    ),
    RowRule(
        "death_30d_matches_time",
        expr="if death_event then death_30d == (time_to_death_d <= 30)",
        message="death_30d disagrees with time_to_death_d",
    ),
    RowRule(
        "primary_needs_cancer_history",
        expr="if cancer_primary is not missing then cancer_history != false",
        message="cancer_primary is recorded but cancer_history is false",
    ),
    RowRule(
        "active_cancer_needs_history",
        expr="if active_cancer then cancer_history != false",
        message="active_cancer is true but cancer_history is false",
    ),
    RowRule(
        "etiology_matches_malignant",
        expr='malignant == (vcf_etiology in ["metastatic", "myeloma_lymphoma"])',
        message="malignant disagrees with vcf_etiology",
    ),
)

_DERIVED: tuple[DerivedFeature, ...] = (
    DerivedFeature(
        "region",
        "coalesce(region_of_level[level], region)",
        "Spine region: the fractured level's region, else the recorded region.",
        dtype="category",
        categories=REGIONS,
        needs="any",
        replaces=("level",),
        field="level",
    ),
    DerivedFeature(
        "tlj",
        'region == "tlj"',
        "Fracture at the thoracolumbar junction (T11-L2).",
        field="level",
    ),
    DerivedFeature(
        "genant_grade0",
        f"coalesce({_GENANT}, genant_grade0)",
        "Genant grade from the height loss, else the recorded grade.",
        needs="any",
        field="genant_grade0",
    ),
    DerivedFeature(
        "bmi",
        "coalesce(bmi, weight_kg / (height_cm / 100) ^ 2)",
        "Body-mass index, from weight and height when not recorded.",
        unit="kg/m2",
        replaces=("height_cm", "weight_kg"),
    ),
    DerivedFeature(
        "osteoporosis",
        f"coalesce(tscore_min <= {TSCORE_OSTEOPOROSIS:g}, hu_l1 <= {HU_OSTEOPOROSIS:g})",
        f"Osteoporosis: DXA T-score <= {TSCORE_OSTEOPOROSIS:g}, else CT attenuation at L1 <= "
        f"{HU_OSTEOPOROSIS:g} HU.",
        needs="any",
    ),
    DerivedFeature(
        "age_band",
        f"band(age_years, {_edges(AGE_BAND_EDGES)}, {_labels(AGE_BANDS)})",
        "Age band.",
        dtype="category",
        categories=AGE_BANDS,
    ),
)

#: The default clinical-record schema for acute osteoporotic vertebral fractures.
#: Baseline fields of the osteoporotic vertebral fracture records (features and
#: treatments; the predictors of the OVF endpoints).
OVF_BASELINE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in _FIELDS if f.role in ("feature", "treatment")
)

SPINE_SCHEMA: Schema = Schema(
    _FIELDS + _CERVICAL_FIELDS + _PATHOLOGICAL_FIELDS,
    _RULES + _CERVICAL_RULES,
    name="spine-ovf",
    version="1",
    derived=_DERIVED,
    tables={"region_of_level": REGION_OF_LEVEL},
    subgroups=("sex", "age_band", "region", "centre_id"),
)


def resolve_schema(schema: Schema | None) -> Schema:
    """The schema to use: ``schema`` itself, or :data:`SPINE_SCHEMA` when it is None.

    The one place where "no schema given" is decided; every function taking
    ``schema=None`` resolves it here.

    Examples
    --------
    >>> from spinerisk.schema import SPINE_SCHEMA, resolve_schema
    >>> resolve_schema(None) is SPINE_SCHEMA
    True
    """
    return SPINE_SCHEMA if schema is None else schema
