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
    "REGIONS",
    "REGION_OF_LEVEL",
    "SPINE_SCHEMA",
    "T1_PATTERNS",
    "T2_PATTERNS",
    "TLJ_LEVELS",
    "TREATMENTS",
    "TSCORE_OSTEOPOROSIS",
    "region_of_level",
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


_GENANT = f"band(height_loss0_pct, {_edges(GENANT_EDGES)}, [0, 1, 2, 3])"


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
        message="genant_grade0 disagrees with height_loss0_pct (grade 0: <20%, 1: 20 to <25%, "
        "2: 25 to <40%, 3: >=40%)",
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
        "Osteoporosis: DXA T-score <= -2.5, else CT attenuation at L1 <= 110 HU.",
        needs="any",
    ),
    DerivedFeature(
        "age_band",
        f'band(age_years, {_edges(AGE_BAND_EDGES)}, ["<60", "60-69", "70-79", "80-89", "90+"])',
        "Age band.",
        dtype="category",
        categories=AGE_BANDS,
    ),
)

#: The default clinical-record schema for acute osteoporotic vertebral fractures.
SPINE_SCHEMA: Schema = Schema(
    _FIELDS,
    _RULES,
    name="spine-ovf",
    version="1",
    derived=_DERIVED,
    tables={"region_of_level": REGION_OF_LEVEL},
    subgroups=("sex", "age_band", "region", "centre_id"),
)
