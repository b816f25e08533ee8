"""Field specs, schema composition and the default spine schema."""

from __future__ import annotations

import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.schema import LEVELS, SPINE_SCHEMA, FieldSpec, RowRule, Schema, region_of_level
from spinerisk.schema._spec import FOLLOW_UP_ROLES


def _id() -> FieldSpec:
    return FieldSpec("rid", "string", "Record id.", role="id", nullable=False, required=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "Start.Age"}, "must be an identifier"),
        ({"dtype": "decimal"}, "dtype='decimal'"),
        ({"role": "label"}, "role='label'"),
        ({"dtype": "category"}, "needs `categories`"),
        ({"dtype": "string", "min": 0}, "numeric fields only"),
        ({"min": 5, "max": 1}, "above max"),
    ],
)
def test_fieldspec_rejects_bad_definitions(kwargs, match):
    base = {"name": "x", "dtype": "float", "description": "x"}
    with pytest.raises(ValueError, match=match):
        FieldSpec(**{**base, **kwargs})


def test_expected_text_states_range_unit_and_missingness():
    spec = FieldSpec("hu", "float", "HU.", unit="HU", min=-50, max=450, nullable=False)
    assert spec.expected() == "-50 <= hu <= 450 HU, not missing"
    cat = FieldSpec("sex", "category", "Sex.", categories=("F", "M"))
    assert cat.expected() == "one of F, M"


def test_schema_requires_unique_names_one_id_and_known_rule_columns():
    a = FieldSpec("a", "float", "a")
    with pytest.raises(ValueError, match="twice"):
        Schema((_id(), a, a))
    with pytest.raises(ValueError, match="exactly one field with role='id'"):
        Schema((a,))
    rule = RowRule("r", ("a", "zzz"), lambda df: df["a"] > 0, "m")
    with pytest.raises(ValueError, match="unknown field"):
        Schema((_id(), a), (rule,))


def test_extend_replace_drop_return_new_schemas():
    extra = FieldSpec("grip_kg", "float", "Grip.", unit="kg", min=0, max=100)
    ext = SPINE_SCHEMA.extend([extra], name="local")
    assert "grip_kg" in ext and "grip_kg" not in SPINE_SCHEMA
    assert ext.name == "local" and len(ext) == len(SPINE_SCHEMA) + 1
    rep = SPINE_SCHEMA.replace("hu_l1", max=300.0)
    assert rep["hu_l1"].max == 300.0 and SPINE_SCHEMA["hu_l1"].max == 450
    dropped = SPINE_SCHEMA.drop("bmi")
    assert "bmi" not in dropped
    assert all("bmi" not in r.columns for r in dropped.rules)
    with pytest.raises(KeyError, match="not a field"):
        SPINE_SCHEMA.drop("nope")


def test_default_schema_covers_the_required_groups():
    needed = {
        "patient_id", "centre_id", "country",  # identity / centre
        "age_years", "sex", "bmi", "height_cm", "weight_kg",  # demographics
        "tscore_min", "hu_l1",  # bone health incl. T-score and CT HU
        "prior_fragility_fx", "parental_hip_fx", "current_smoking", "alcohol_units_day",
        "glucocorticoid_current", "rheumatoid_arthritis", "secondary_osteoporosis",
        "falls_12m_count",  # FRAX / Garvan
        "diabetes_type", "egfr", "dementia",  # comorbidity
        "mechanism", "level", "region",  # mechanism, level C1-S1 and region
        "ao_morphology", "of_class", "genant_grade0", "height_loss0_pct", "kyphotic_angle0",
        "posterior_wall_injury", "intravertebral_cleft0", "t1_pattern", "t2_pattern",
        "treatment",
        "collapse_6m", "nonunion", "fx_time_days", "fx_event", "death_time_days",
    }  # fmt: skip
    assert needed <= set(SPINE_SCHEMA.names)
    assert SPINE_SCHEMA["level"].categories[0] == "C1"
    assert SPINE_SCHEMA["level"].categories[-1] == "S1"
    assert SPINE_SCHEMA["fx_event"].categories == (0, 1, 2)
    assert SPINE_SCHEMA.id_field == "patient_id"


def test_every_field_has_description_and_outcomes_are_follow_up():
    for spec in SPINE_SCHEMA:
        assert spec.description.strip(), spec.name
        if spec.is_numeric and spec.categories is None:
            assert spec.min is not None and spec.max is not None, spec.name
    outcomes = {f.name for f in SPINE_SCHEMA if f.role in FOLLOW_UP_ROLES}
    assert {"collapse_6m", "nonunion", "fx_time_days", "fx_event"} <= outcomes
    assert not any(SPINE_SCHEMA[o].is_baseline for o in outcomes)


def test_by_role_and_unknown_role():
    assert [f.name for f in SPINE_SCHEMA.by_role("id")] == ["patient_id"]
    with pytest.raises(ValueError, match="Unknown role"):
        SPINE_SCHEMA.by_role("label")


def test_markdown_reference_lists_units_ranges_codes_and_rules():
    md = SPINE_SCHEMA.to_markdown()
    assert "| `hu_l1` | float | HU | -50 to 450 |" in md
    assert "T11, T12, L1" in md
    assert "### Cross-field rules" in md and "`death_before_fracture_time`" in md
    n_rows = len(SPINE_SCHEMA) + len(SPINE_SCHEMA.rules) + len(SPINE_SCHEMA.derived)
    assert md.count("\n| `") == n_rows
    assert "### Derived features" in md and "`tlj`" in md


def test_region_of_level_covers_every_level():
    regions = region_of_level(pd.Series(list(LEVELS)))
    assert regions.notna().all()
    assert regions[list(LEVELS).index("T12")] == "tlj"
    assert regions[list(LEVELS).index("L2")] == "tlj"
    assert regions[list(LEVELS).index("L3")] == "lumbar"
    assert regions[list(LEVELS).index("T10")] == "thoracic"


def test_a_users_own_schema_validates_with_its_own_rules():
    schema = Schema(
        (
            _id(),
            FieldSpec("grip_kg", "float", "Grip.", unit="kg", min=0, max=100),
            FieldSpec("frail", "bool", "Frail."),
        ),
        (RowRule("weak_means_frail", ("grip_kg", "frail"),
                 lambda d: ~((d["grip_kg"] < 10) & d["frail"].eq(False).fillna(False)),
                 "grip under 10 kg but not frail"),),
        name="mine",
    )  # fmt: skip
    ok = sr.validate(pd.DataFrame({"rid": ["a", "b"], "grip_kg": [30, 5], "frail": [0, 1]}), schema)
    assert ok["frail"].tolist() == [False, True]
    bad = pd.DataFrame({"rid": ["a"], "grip_kg": [5.0], "frail": [False]})
    with pytest.raises(sr.SchemaValidationError, match=r"record a \(row 0\): grip under 10 kg"):
        sr.validate(bad, schema)
