"""Training reference and drift against the generator's shift scenarios (spinerisk.monitor)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import spinerisk as sr
from spinerisk.monitor import build_reference, drift, input_warnings

N = 1000  # records per new batch


@pytest.fixture(scope="module")
def dev():
    return sr.make_spine_cohort(1500, seed=0)  # SYNTHETIC development cohort


@pytest.fixture(scope="module")
def model(dev):
    """Future-fracture model (all treatments are eligible) with its training reference."""
    fitted = sr.RiskModel(endpoint="future_fracture", backend="linear").fit(dev)
    fitted.reference_ = build_reference(fitted, dev)
    return fitted


@pytest.fixture(scope="module")
def ref(model):
    return model.reference_


def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


# -- reference ---------------------------------------------------------------------------
def test_reference_is_plain_json_and_holds_no_identifiers(model, ref, dev):
    assert json.loads(json.dumps(ref, allow_nan=False)) == ref
    assert not [s for s in _strings(ref) if s.startswith("SYN-")]  # no patient ids
    predictors = [f for f in model.endpoint_.predictors() if f in dev.columns]
    assert list(ref["fields"]) == predictors
    assert ref["synthetic"] is True and ref["n"] == model.n_train_
    age = ref["fields"]["age_years"]
    assert age["min"] == dev["age_years"].min() and age["max"] == dev["age_years"].max()
    assert sum(age["bin_counts"]) + age["n_missing"] == age["n"] == ref["n"]
    assert len(age["bin_edges"]) == 9 and age["sample"] == sorted(age["sample"])
    hu = ref["fields"]["hu_l1"]
    assert hu["missing_rate"] == pytest.approx(dev["hu_l1"].isna().mean())
    treat = ref["fields"]["treatment"]
    assert treat["counts"] == dev["treatment"].astype(str).value_counts().to_dict()
    assert list(ref["predictions"]) == ["risk_365d", "risk_730d", "risk_1826d"]


def test_reference_is_deterministic_and_the_sample_is_capped(model, dev):
    a = build_reference(model, dev, sample_size=100)
    b = build_reference(model, dev, sample_size=100)
    a.pop("created_utc"), b.pop("created_utc")
    assert a == b
    assert len(a["fields"]["age_years"]["sample"]) == 100
    with pytest.raises(ValueError, match="sample_size must be an integer >= 10"):
        build_reference(model, dev, sample_size=3)


def test_the_reference_saved_at_fit_equals_build_reference(dev):
    """RiskModel.fit summarises its already-validated records directly; same result."""
    fitted = sr.RiskModel(endpoint="nonunion", backend="linear").fit(dev)
    at_fit = copy.deepcopy(fitted.reference_)
    rebuilt = build_reference(fitted, dev)
    at_fit.pop("created_utc"), rebuilt.pop("created_utc")
    assert at_fit == rebuilt
    assert at_fit["n"] == fitted.n_train_ < len(dev)  # nonunion: eligible records only


# -- drift on the generator's shift scenarios ------------------------------------------------
def _flagged(report):
    return set(report.table.index[report.table["flag"] != "none"])


@pytest.mark.parametrize(
    "shift, fields",
    [
        ({"hu_offset": 30.0}, {"hu_l1"}),  # scanner offset: the observed HU only
        ({"augmentation_rate": 0.5}, {"treatment"}),  # treatment drift
        # the Western profile: body size, delay to imaging and MRI availability
        (
            {"profile": "western"},
            {
                "bmi",
                "height_cm",
                "weight_kg",
                "days_injury_to_imaging",
                "mri_done",
                "t1_pattern",
                "t2_pattern",
            },
        ),  # fmt: skip
        ({"centre_effect_sd": 1.0, "n_centres": 30}, set()),  # outcome-only shift: no input drift
    ],
)
def test_drift_is_flagged_where_the_generator_shifted(ref, shift, fields):
    new = sr.make_spine_cohort(N, seed=21, **shift)
    report = drift(ref, new)
    flagged = _flagged(report)
    if shift.get("profile") == "western":
        assert fields <= flagged
        # everything flagged is a field the profile changes (directly or through them)
        assert flagged <= fields | {"age_years", "sex", "tscore_min", "hu_l1"}
    else:
        assert flagged == fields
    assert (report.alert != "none") == bool(fields)
    assert report.prediction_shift is None  # a reference alone cannot predict


@pytest.mark.parametrize(
    "shift, field", [({"hu_offset": 15.0}, "hu_l1"), ({"augmentation_rate": 0.40}, "treatment")]
)
def test_realistic_small_shifts_are_significant_but_below_the_psi_watch_level(ref, shift, field):
    """+15 HU and 40% augmentation: the test sees them; their PSI stays near 0.09."""
    report = drift(ref, sr.make_spine_cohort(N, seed=22, **shift))
    table = report.table
    assert table["psi"].idxmax() == field
    assert table.loc[field, "p_adjusted"] < 0.01
    assert 0.03 < table.loc[field, "psi"] < 0.25
    assert (table.drop(index=field)["flag"] == "none").all()


def test_false_alarm_rate_on_unshifted_samples_is_bounded(ref):
    n_seeds = 20
    field_flags, batch_alarms = 0, 0
    for seed in range(100, 100 + n_seeds):
        report = drift(ref, sr.make_spine_cohort(N, seed=seed))
        field_flags += int((report.table["flag"] != "none").sum())
        batch_alarms += report.alert != "none"
    n_tests = n_seeds * len(ref["fields"])
    rate = field_flags / n_tests
    print(f"false alarms: {field_flags}/{n_tests} field tests, {batch_alarms}/{n_seeds} batches")
    assert rate <= 0.005
    assert batch_alarms <= 1


def test_prediction_shift_needs_the_model_and_sees_an_older_case_mix(model):
    new = sr.make_spine_cohort(3 * N, seed=23)
    older = new[new["age_years"] >= 82].copy()
    report = drift(model, older)
    shift = report.prediction_shift
    assert list(shift.index) == ["risk_365d", "risk_730d", "risk_1826d"]
    assert (shift["mean_shift"] > 0).all()
    assert shift.loc["risk_365d", "flag"] == "alert"  # deaths compete more at 5 years
    assert report.table.loc["age_years", "flag"] == "alert"
    same = drift(model, new)
    assert (same.prediction_shift["flag"] == "none").all()
    assert same.prediction_shift["psi"].max() < 0.05


def test_report_outputs_are_plain_and_count_rejected_and_out_of_scope_records(ref, model):
    new = sr.make_spine_cohort(400, seed=24)
    new.loc[3, "age_years"] = -3.0  # fails validation
    nonunion_ref = {**ref, "endpoint": "nonunion"}  # nonunion is undefined after cement
    report = drift(nonunion_ref, new)
    cemented = new.drop(index=3)["treatment"].isin(["vertebroplasty", "kyphoplasty"]).sum()
    assert report.n_rejected == 1 and report.n_out_of_scope == cemented
    assert report.n_records == 400 - 1 - cemented
    d = report.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["synthetic"] is True and len(d["fields"]) == len(ref["fields"])
    md = report.to_markdown()
    assert md.startswith("**SYNTHETIC DATA") and "| field | kind |" in md


def test_parameters_are_checked(ref):
    new = sr.make_spine_cohort(50, seed=25)
    with pytest.raises(ValueError, match="alpha must be a number between 0 and 1"):
        drift(ref, new, alpha=2)
    with pytest.raises(ValueError, match="psi_thresholds must satisfy"):
        drift(ref, new, psi_thresholds=(0.3, 0.1))
    with pytest.raises(ValueError, match="holds ranges only"):
        drift({"format": "spinerisk-reference", "version": 1, "partial": True, "fields": {}}, new)


def test_the_missingness_threshold_is_the_references(model, dev):
    """The flagged share and its chance level use one rarely-missing threshold."""
    new = sr.make_spine_cohort(1000, seed=26)  # SYNTHETIC, same population
    assert model.reference_["rarely_missing_below"] == 0.01
    report = drift(model, new)
    assert report.thresholds["rarely_missing_below"] == 0.01
    with pytest.raises(ValueError, match=r"rarely_missing_below=0.5 differs from the threshold"):
        drift(model, new, rarely_missing_below=0.5)
    wide = build_reference(model, dev, rarely_missing_below=0.5)
    assert wide["flagged_share"] > model.reference_["flagged_share"]
    same_population = drift(wide, new)  # the threshold travels with the reference
    assert same_population.thresholds["rarely_missing_below"] == 0.5
    assert abs(same_population.flagged_share - wide["flagged_share"]) < 0.05
    assert "input warnings" not in " ".join(same_population.reasons)


def test_a_model_without_reference_falls_back_to_its_training_ranges(model, dev):
    bare = copy.copy(model)
    bare.reference_ = None
    rec = sr.validate(dev.head(3))
    rec.loc[rec.index[1], "age_years"] = 104.0
    out = input_warnings(bare, rec)
    assert out.iloc[1].startswith("out_of_range:age_years=104 (training")
    assert out.iloc[0] == "" and not np.any(out.str.contains("rarely_missing"))
    with pytest.raises(ValueError, match="no training reference"):
        drift(bare, rec)


def test_rejected_records_raise_the_level_and_a_foreign_reference_is_refused(model, dev):
    new = sr.make_spine_cohort(400, seed=27)  # SYNTHETIC
    new["height_cm"] = new["height_cm"].astype(float)
    broken = new.index[: int(0.3 * len(new))]
    new.loc[broken, "height_cm"] = new.loc[broken, "height_cm"] / 100  # metres: invalid
    report = drift(model, new)
    assert report.n_rejected >= len(broken) * 0.9
    assert report.alert == "alert"
    assert any("failed validation" in r for r in report.reasons)
    collapse = sr.RiskModel(endpoint="collapse", backend="linear").fit(dev)
    mixed = copy.copy(model)
    mixed.reference_ = collapse.reference_
    with pytest.raises(ValueError, match="reference is for the 'collapse' endpoint"):
        drift(mixed, sr.make_spine_cohort(200, seed=28))


def test_a_field_never_observed_in_training_compares_its_missing_share(model):
    ref = copy.deepcopy(model.reference_)
    spec = ref["fields"]["hu_l1"]
    spec.update(
        n_missing=spec["n"], missing_rate=1.0, min=None, max=None, mean=None, sd=None,
        bin_edges=[], bin_counts=[], sample=[],
    )  # fmt: skip
    all_missing = sr.make_spine_cohort(300, seed=29).assign(hu_l1=np.nan)
    assert drift(ref, all_missing).table.loc["hu_l1", "psi"] == pytest.approx(0.0)
    some = sr.make_spine_cohort(300, seed=29)
    row = drift(ref, some).table.loc["hu_l1"]
    assert row["psi"] > 1 and row["test"] == "chi2"
