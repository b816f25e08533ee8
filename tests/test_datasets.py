"""Tests for :func:`spinerisk.datasets.make_spine_cohort`.

Reference figures come from the domain brief (section 6: the equations simulated on
n = 400,000). A 200,000-record cohort is generated once per module and reused.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from sklearn.metrics import roc_auc_score

from spinerisk.datasets import make_spine_cohort
from spinerisk.schema import SPINE_SCHEMA, TLJ_LEVELS

CEMENT = ["vertebroplasty", "kyphoplasty"]
OUTCOME_COLUMNS = [
    "delta_height_6m",
    "height_loss_6m_pct",
    "collapse_6m",
    "nonunion",
    "fx_time_days",
    "fx_event",
    "death_time_days",
]
PREDICTOR_MISSING = {
    "tscore_min": 0.35,
    "hu_l1": 0.40,
    "current_smoking": 0.10,
    "alcohol_units_day": 0.10,
    "falls_12m_count": 0.20,
    "egfr": 0.05,
    "t1_pattern": 0.15,
    "t2_pattern": 0.15,
}


@pytest.fixture(scope="module")
def big():
    """200,000 records (default configuration) with the oracle."""
    return make_spine_cohort(200_000, seed=2024, return_oracle=True)


@pytest.fixture(scope="module")
def medium():
    """50,000 records, default configuration, with the oracle (for paired scenarios)."""
    return make_spine_cohort(50_000, seed=11, return_oracle=True)


def _rate(series: pd.Series) -> float:
    """Share of True among non-missing values of a boolean column."""
    return float(series.dropna().astype(bool).mean())


def _cif_at(fitter, days: float) -> float:
    cif = fitter.cumulative_density_
    return float(cif.loc[cif.index <= days].iloc[-1, 0])


# -- metadata, determinism, parameters ------------------------------------------------------
def test_attrs_label_the_cohort_synthetic():
    cohort = make_spine_cohort(50, seed=3, profile="western")
    attrs = cohort.attrs
    assert attrs["synthetic"] is True
    assert attrs["generator"] == "spinerisk.datasets.make_spine_cohort"
    assert attrs["seed"] == 3
    assert attrs["profile"] == "western"
    assert "SYNTHETIC" in attrs["description"]
    assert set(attrs["intercepts"]) >= {
        "nonunion_logit",
        "collapse_mu",
        "fracture_h0",
        "death_log_hazard",
        "treatment_augmentation",
        "treatment_fixation",
    }
    json.dumps(attrs)  # plain JSON-able values


def test_same_seed_same_cohort_different_seed_different():
    a, oa = make_spine_cohort(500, seed=5, return_oracle=True)
    b, ob = make_spine_cohort(500, seed=5, return_oracle=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(oa, ob)
    c = make_spine_cohort(500, seed=6)
    assert not a.equals(c)
    assert not np.allclose(a["age_years"], c["age_years"])


@pytest.mark.parametrize("n", [1, 2, 7])
def test_tiny_cohorts_are_valid(n):
    for seed in range(5):
        cohort, oracle = make_spine_cohort(n, seed=seed, return_oracle=True)
        assert len(cohort) == len(oracle) == n
        assert cohort["patient_id"].tolist()[0] == "SYN-000001"


@pytest.mark.parametrize(
    "param, value",
    [
        ("n", 0),
        ("n", 2.5),
        ("n", True),
        ("seed", -1),
        ("seed", "a"),
        ("profile", "mars"),
        ("profile", None),
        ("missing", "yes"),
        ("noise", 1),
        ("return_oracle", None),
        ("centre_effect_sd", -0.1),
        ("centre_effect_sd", float("nan")),
        ("n_centres", 0),
        ("hu_offset", 100.0),
        ("augmentation_rate", 0.0),
        ("augmentation_rate", 0.99),
        ("outcome_definition", "hip"),
        ("nonunion_prevalence", 1.0),
        ("nonunion_prevalence", "0.1"),
        ("collapse_prevalence", 0.0),
    ],
)
def test_bad_parameter_is_named(param, value):
    kwargs = {"n": 20, param: value}
    with pytest.raises(ValueError, match=rf"{param} must .*got {re.escape(param)}="):
        make_spine_cohort(**kwargs)


# -- schema conformance -----------------------------------------------------------------------
def _check_schema(cohort: pd.DataFrame) -> None:
    names = SPINE_SCHEMA.names
    assert set(cohort.columns) <= set(names)
    assert list(cohort.columns) == [c for c in names if c in cohort.columns]
    assert set(SPINE_SCHEMA.required) <= set(cohort.columns)
    for spec in SPINE_SCHEMA:
        if spec.name not in cohort.columns:
            continue
        col = cohort[spec.name]
        where = f"field {spec.name!r}"
        if spec.dtype == "float":
            assert col.dtype == np.float64, where
        elif spec.dtype == "int":
            assert col.dtype == pd.Int64Dtype(), where
        elif spec.dtype == "bool":
            assert col.dtype == pd.BooleanDtype(), where
        elif spec.dtype == "category":
            assert isinstance(col.dtype, pd.CategoricalDtype), where
            assert list(col.cat.categories) == list(spec.categories), where
        elif spec.dtype == "string":
            assert isinstance(col.dtype, pd.StringDtype), where
        elif spec.dtype == "date":
            assert col.dtype == np.dtype("datetime64[ns]"), where
        present = col.dropna()
        if not spec.nullable:
            assert col.notna().all(), where
        if spec.is_numeric:
            values = present.to_numpy(dtype=float)
            assert np.isfinite(values).all(), where
            if spec.min is not None:
                assert (values >= spec.min).all(), where
            if spec.max is not None:
                assert (values <= spec.max).all(), where
        if spec.categories is not None:
            assert set(present.tolist()) <= set(spec.categories), where
        if spec.pattern is not None:
            assert present.astype(str).str.fullmatch(spec.pattern).all(), where
        if spec.unique:
            assert col.is_unique, where
    for rule in SPINE_SCHEMA.rules:
        if rule.applies_to(cohort.columns):
            assert rule.evaluate(cohort).all(), rule.name


def test_default_cohort_satisfies_schema(big):
    _check_schema(big[0])


def test_shifted_noisy_cohort_satisfies_schema():
    cohort = make_spine_cohort(
        20_000,
        seed=9,
        profile="western",
        noise=True,
        centre_effect_sd=0.3,
        n_centres=20,
        hu_offset=-15.0,
        augmentation_rate=0.40,
        outcome_definition="clinical_any_fragility",
    )
    _check_schema(cohort)
    _check_schema(make_spine_cohort(5_000, seed=9, missing=False))


def test_value_consistency(big):
    cohort = big[0]
    implied = cohort["weight_kg"] / (cohort["height_cm"] / 100) ** 2
    assert (cohort["bmi"] - implied).abs().max() < 0.2
    assert np.allclose(cohort["bmi"], cohort["bmi"].round(1))
    assert np.allclose(cohort["tscore_min"].dropna(), cohort["tscore_min"].dropna().round(1))
    hu = cohort["hu_l1"].dropna()
    assert np.array_equal(hu, hu.round())
    gc_off = ~cohort["glucocorticoid_current"].astype(bool)
    assert (cohort.loc[gc_off, "glucocorticoid_dose_mg"] == 0).all()
    assert (cohort.loc[~gc_off, "glucocorticoid_dose_mg"] > 0).all()
    assert (cohort["fx_time_days"] > 0).all()
    assert set(cohort["n_acute_levels"].unique()) == {1, 2}
    assert cohort["n_acute_levels"].eq(2).mean() == pytest.approx(0.15, abs=0.01)
    assert set(cohort["treatment"].dropna().unique()) == {"conservative", "fixation", *CEMENT}
    assert cohort["diabetes_type"].eq("T1").mean() < 0.02
    assert set(cohort["level"].unique()) <= {f"T{i}" for i in range(4, 13)} | {
        f"L{i}" for i in range(1, 6)
    }
    index_date = cohort["index_date"]
    assert index_date.min() >= pd.Timestamp("2016-01-01")
    assert index_date.max() <= pd.Timestamp("2023-12-31")
    assert cohort["days_injury_to_imaging"].max() <= 14
    assert (cohort["country"] == "JP").all()


# -- reference figures (domain brief sections 6.1-6.4) --------------------------------------
def test_solved_intercepts_match_domain_reference(big):
    intercepts = big[0].attrs["intercepts"]
    assert intercepts["nonunion_logit"] == pytest.approx(-4.88, abs=0.1)
    assert intercepts["collapse_mu"] == pytest.approx(5.0, abs=0.2)
    assert intercepts["fracture_h0"] == pytest.approx(0.020, abs=0.001)
    assert intercepts["death_log_hazard"] == pytest.approx(-11.8, abs=0.1)
    assert intercepts["treatment_augmentation"] == pytest.approx(-1.6, abs=0.1)
    assert intercepts["treatment_fixation"] == pytest.approx(-3.8, abs=0.25)


def test_baseline_distributions(big):
    cohort, oracle = big
    tscore = oracle["true_tscore_min"]
    assert tscore.mean() == pytest.approx(-2.5, abs=0.05)
    assert tscore.std() == pytest.approx(1.0, abs=0.05)
    assert oracle["true_hu_l1"].mean() == pytest.approx(90, abs=5)
    assert cohort["level"].isin(TLJ_LEVELS).mean() == pytest.approx(0.64, abs=0.01)
    assert cohort["sex"].eq("F").mean() == pytest.approx(0.75, abs=0.01)
    assert cohort["bmi"].mean() == pytest.approx(22.7, abs=0.4)
    assert _rate(cohort["posterior_wall_injury"]) == pytest.approx(0.36, abs=0.02)
    assert cohort["height_loss0_pct"].mean() == pytest.approx(18, abs=1)
    assert cohort["kyphotic_angle0"].mean() == pytest.approx(10, abs=1)
    assert _rate(cohort["prior_fragility_fx"]) == pytest.approx(0.41, abs=0.02)
    assert _rate(cohort["dementia"]) == pytest.approx(0.11, abs=0.015)
    assert (oracle["true_egfr"] < 60).mean() == pytest.approx(0.45, abs=0.02)
    assert (oracle["true_egfr"] < 45).mean() == pytest.approx(0.16, abs=0.02)
    t2 = oracle["true_t2_pattern"]
    assert t2.eq("confined_high").mean() == pytest.approx(0.19, abs=0.015)
    assert t2.eq("diffuse_low").mean() == pytest.approx(0.12, abs=0.015)
    assert oracle["true_t1_pattern"].eq("diffuse_low").mean() == pytest.approx(0.60, abs=0.02)
    assert _rate(cohort["intravertebral_cleft0"]) == pytest.approx(0.08, abs=0.01)
    genant = pd.cut(cohort["height_loss0_pct"], [0, 20, 25, 40, 101], right=False)
    shares = genant.value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(shares, [0.66, 0.13, 0.17, 0.04], atol=0.02)


def test_treatment_mix(big):
    share = big[0]["treatment"].value_counts(normalize=True)
    assert share["conservative"] == pytest.approx(0.71, abs=0.01)
    assert share["vertebroplasty"] + share["kyphoplasty"] == pytest.approx(0.26, abs=0.005)
    assert share["vertebroplasty"] == pytest.approx(share["kyphoplasty"], abs=0.01)
    assert share["fixation"] == pytest.approx(0.03, abs=0.003)
    assert share["fixation_plus_augmentation"] == 0


def test_treatment_is_confounded_by_severity(big):
    cohort = big[0]
    cemented = cohort["treatment"].isin(CEMENT)
    assert (
        cohort.loc[cemented, "height_loss0_pct"].mean()
        > cohort.loc[cohort["treatment"] == "conservative", "height_loss0_pct"].mean() + 2
    )


def test_nonunion_prevalence_and_oracle_auc(big):
    cohort, oracle = big
    conservative = cohort["treatment"] == "conservative"
    assert _rate(cohort.loc[conservative, "nonunion"]) == pytest.approx(0.16, abs=0.01)
    assert oracle.loc[conservative, "p_nonunion"].mean() == pytest.approx(0.16, abs=1e-6)
    seen = cohort["nonunion"].notna()
    auc = roc_auc_score(cohort.loc[seen, "nonunion"].astype(bool), oracle.loc[seen, "p_nonunion"])
    assert abs(auc - 0.847) <= 0.02
    cemented = cohort["treatment"].isin(CEMENT)
    assert cohort.loc[cemented, "nonunion"].isna().all()
    assert oracle.loc[cemented, "p_nonunion"].isna().all()
    assert oracle.loc[~cemented, "p_nonunion"].notna().all()
    # the 6-month loss (25%, plus deaths before 6 months) hides the outcome
    assert cohort.loc[~cemented, "nonunion"].isna().mean() == pytest.approx(0.28, abs=0.02)


def test_collapse_prevalence_by_treatment(big):
    cohort, oracle = big
    collapse = cohort["collapse_6m"]
    treatment = cohort["treatment"]
    assert _rate(collapse[treatment == "conservative"]) == pytest.approx(0.43, abs=0.01)
    assert _rate(collapse) == pytest.approx(0.36, abs=0.015)
    assert _rate(collapse[treatment.isin(CEMENT)]) == pytest.approx(0.18, abs=0.015)
    # the exact oracle risk is calibrated against the complete (unlost) outcome
    assert oracle["p_collapse"].mean() == pytest.approx(
        oracle["true_collapse_6m"].astype(bool).mean(), abs=0.004
    )
    seen = collapse.notna()
    auc = roc_auc_score(collapse[seen].astype(bool), oracle.loc[seen, "p_collapse"])
    assert auc == pytest.approx(0.83, abs=0.02)
    avhr = 100 - cohort.loc[treatment == "conservative", "height_loss_6m_pct"].mean()
    assert avhr == pytest.approx(70, abs=3)


def test_fracture_and_death_cif_oracle(big):
    oracle = big[1]
    for days, target in [(365, 0.125), (730, 0.191), (1826, 0.284)]:
        assert oracle[f"cif_fx_{days}"].mean() == pytest.approx(target, abs=0.015), days
    for days, target in [(365, 0.090), (730, 0.156), (1826, 0.299)]:
        assert oracle[f"cif_death_{days}"].mean() == pytest.approx(target, abs=0.01), days


def test_fracture_cif_aalen_johansen_and_naive_km(big):
    cohort, oracle = big
    time = cohort["fx_time_days"].to_numpy(float)
    event = cohort["fx_event"].to_numpy(int)
    fx = AalenJohansenFitter(seed=0, calculate_variance=False)
    fx.fit(time, event, event_of_interest=1)
    for days, target in [(365, 0.125), (730, 0.191), (1826, 0.284)]:
        assert _cif_at(fx, days) == pytest.approx(target, abs=0.015), days
        assert _cif_at(fx, days) == pytest.approx(oracle[f"cif_fx_{days}"].mean(), abs=0.01)
    death = AalenJohansenFitter(seed=0, calculate_variance=False)
    death.fit(time, event, event_of_interest=2)
    assert _cif_at(death, 1826) == pytest.approx(0.299, abs=0.015)
    km = KaplanMeierFitter().fit(time, event == 1)
    naive = 1.0 - float(km.survival_function_at_times(1826).iloc[0])
    assert 1.10 <= naive / _cif_at(fx, 1826) <= 1.26


def test_fracture_risk_by_sex(big):
    cohort, oracle = big
    female = cohort["sex"] == "F"
    assert oracle.loc[female, "cif_fx_365"].mean() == pytest.approx(0.139, abs=0.01)
    assert oracle.loc[~female, "cif_fx_365"].mean() == pytest.approx(0.082, abs=0.01)
    death = oracle["cif_death_1826"]
    assert death[female].mean() == pytest.approx(0.27, abs=0.015)
    assert death[~female].mean() == pytest.approx(0.38, abs=0.015)


def test_event_coding_and_censoring(big):
    cohort, oracle = big
    event = cohort["fx_event"].to_numpy(int)
    time = cohort["fx_time_days"].to_numpy(float)
    death = cohort["death_time_days"].to_numpy(float)
    latent_fx = oracle["latent_fx_time_days"].to_numpy()
    latent_death = oracle["latent_death_time_days"].to_numpy()
    censor = oracle["censor_time_days"].to_numpy()
    np.testing.assert_allclose(time, np.minimum(np.minimum(latent_fx, latent_death), censor))
    assert np.array_equal(event == 1, latent_fx <= np.minimum(latent_death, censor))
    assert np.array_equal(np.isfinite(death), latent_death <= censor)
    assert (death[event == 2] == time[event == 2]).all()
    # deaths after a subsequent fracture are recorded too
    assert np.isfinite(death[event == 1]).any()
    years = censor / 365.25
    assert years.max() <= 10
    assert (years > 2).mean() == pytest.approx(np.exp(-2 * -np.log(0.95)), abs=0.01)


# -- missingness, noise and shift scenarios (section 6.5) ------------------------------------
def test_missingness_rates(big):
    cohort = big[0]
    for name, rate in PREDICTOR_MISSING.items():
        assert cohort[name].isna().mean() == pytest.approx(rate, abs=0.02), name
    assert (~cohort["mri_done"].astype(bool)).mean() == pytest.approx(0.15, abs=0.01)
    no_mri = ~cohort["mri_done"].astype(bool)
    assert cohort.loc[no_mri, ["t1_pattern", "t2_pattern"]].isna().all().all()
    assert cohort.loc[~no_mri, ["t1_pattern", "t2_pattern"]].notna().all().all()
    # T-score missing not at random: more in men and in the very old
    missing_t = cohort["tscore_min"].isna()
    male = cohort["sex"] == "M"
    old = cohort["age_years"] >= 85
    assert missing_t[male].mean() > missing_t[~male].mean() + 0.05
    assert missing_t[old].mean() > missing_t[~old].mean() + 0.05
    # CT more often done after high-energy trauma
    high = cohort["energy"] == "high"
    assert cohort.loc[high, "hu_l1"].notna().mean() > cohort.loc[~high, "hu_l1"].notna().mean()
    # fields without missingness
    for name in ("age_years", "sex", "bmi", "level", "treatment", "fx_event", "fx_time_days"):
        assert cohort[name].notna().all(), name


def test_missing_false_keeps_predictors_and_outcomes(medium):
    cohort, oracle = medium
    complete = make_spine_cohort(50_000, seed=11, missing=False)
    for name in PREDICTOR_MISSING:
        assert complete[name].notna().all(), name
    assert complete["mri_done"].astype(bool).all()
    pd.testing.assert_frame_equal(complete[OUTCOME_COLUMNS], cohort[OUTCOME_COLUMNS])
    seen = cohort["tscore_min"].notna()
    np.testing.assert_array_equal(complete.loc[seen, "tscore_min"], cohort.loc[seen, "tscore_min"])
    np.testing.assert_array_equal(complete["tscore_min"], oracle["true_tscore_min"])


def test_noise_changes_observed_columns_only(medium):
    clean, clean_oracle = medium
    noisy, noisy_oracle = make_spine_cohort(50_000, seed=11, noise=True, return_oracle=True)
    pd.testing.assert_frame_equal(noisy[OUTCOME_COLUMNS], clean[OUTCOME_COLUMNS])
    pd.testing.assert_frame_equal(noisy_oracle, clean_oracle)
    assert noisy.attrs["intercepts"] == clean.attrs["intercepts"]
    mri = clean["mri_done"].astype(bool)
    for name in ("t1_pattern", "t2_pattern"):
        flipped = (noisy.loc[mri, name] != clean.loc[mri, name]).mean()
        assert flipped == pytest.approx(0.10, abs=0.01), name
    of_true = clean["of_class"].cat.codes
    of_noisy = noisy["of_class"].cat.codes
    assert (of_true != of_noisy).mean() == pytest.approx(0.20, abs=0.01)
    assert (of_true - of_noisy).abs().max() == 1  # adjacent classes only
    diff = noisy["kyphotic_angle0"] - clean["kyphotic_angle0"]
    assert diff.std() == pytest.approx(2.5, abs=0.2)
    unchanged = ["age_years", "bmi", "tscore_min", "hu_l1", "level", "treatment"]
    pd.testing.assert_frame_equal(noisy[unchanged], clean[unchanged])


def test_hu_offset_shifts_observed_hu_only(medium):
    clean, clean_oracle = medium
    shifted, shifted_oracle = make_spine_cohort(50_000, seed=11, hu_offset=15.0, return_oracle=True)
    seen = clean["hu_l1"].notna()
    assert (shifted["hu_l1"] - clean["hu_l1"])[seen].mean() == pytest.approx(15.0, abs=0.5)
    assert shifted["hu_l1"].mean() - clean["hu_l1"].mean() == pytest.approx(15.0, abs=0.5)
    pd.testing.assert_series_equal(shifted_oracle["true_hu_l1"], clean_oracle["true_hu_l1"])
    pd.testing.assert_frame_equal(shifted[OUTCOME_COLUMNS], clean[OUTCOME_COLUMNS])


def test_augmentation_drift_scenario():
    cohort = make_spine_cohort(50_000, seed=12, augmentation_rate=0.40)
    share = cohort["treatment"].value_counts(normalize=True)
    assert share["vertebroplasty"] + share["kyphoplasty"] == pytest.approx(0.40, abs=0.01)
    assert share["fixation"] == pytest.approx(0.03, abs=0.005)
    conservative = cohort["treatment"] == "conservative"
    assert _rate(cohort.loc[conservative, "nonunion"]) == pytest.approx(0.16, abs=0.015)
    assert cohort.attrs["intercepts"]["treatment_augmentation"] > -1.3


def test_western_profile(medium):
    japan = medium[0]
    western = make_spine_cohort(50_000, seed=11, profile="western")
    assert western["bmi"].mean() > japan["bmi"].mean() + 2.5
    assert western["sex"].eq("M").mean() == pytest.approx(0.35, abs=0.01)
    assert western["sex"].eq("M").mean() > japan["sex"].eq("M").mean() + 0.05
    for sex in ("F", "M"):  # 2 years older within each sex (less after truncation at 100)
        gap = (
            western.loc[western["sex"] == sex, "age_years"].mean()
            - japan.loc[japan["sex"] == sex, "age_years"].mean()
        )
        assert gap == pytest.approx(1.9, abs=0.3), sex
    assert (~western["mri_done"].astype(bool)).mean() == pytest.approx(0.40, abs=0.01)
    assert set(western["country"].unique()) == {"GB", "DE", "US"}
    assert western["days_injury_to_imaging"].max() <= 28
    assert western["days_injury_to_imaging"].mean() > japan["days_injury_to_imaging"].mean()


def test_centre_effect_enters_the_oracle_risk():
    cohort, oracle = make_spine_cohort(
        20_000, seed=4, centre_effect_sd=0.3, n_centres=15, return_oracle=True
    )
    by_centre = oracle.groupby(cohort["centre_id"])["centre_effect"]
    assert (by_centre.nunique() == 1).all()
    effects = by_centre.first()
    assert len(effects) == 15
    assert 0.1 < effects.std() < 0.6
    conservative = cohort["treatment"] == "conservative"
    assert oracle.loc[conservative, "p_nonunion"].mean() == pytest.approx(0.16, abs=1e-6)
    plain = make_spine_cohort(2_000, seed=4, return_oracle=True)[1]
    assert (plain["centre_effect"] == 0).all()


def test_clinical_outcome_definition_lowers_fracture_risk():
    cohort, oracle = make_spine_cohort(
        20_000, seed=8, outcome_definition="clinical_any_fragility", return_oracle=True
    )
    assert oracle["cif_fx_365"].mean() == pytest.approx(0.085, abs=0.002)
    assert oracle["cif_death_1826"].mean() == pytest.approx(0.299, abs=0.002)
    assert cohort.attrs["intercepts"]["fracture_h0"] < 0.016


def test_target_rates_are_parameters():
    cohort, oracle = make_spine_cohort(
        20_000, seed=8, nonunion_prevalence=0.25, collapse_prevalence=0.30, return_oracle=True
    )
    conservative = cohort["treatment"] == "conservative"
    assert oracle.loc[conservative, "p_nonunion"].mean() == pytest.approx(0.25, abs=1e-6)
    assert oracle.loc[conservative, "p_collapse"].mean() == pytest.approx(0.30, abs=1e-6)


def test_oracle_columns(big):
    cohort, oracle = big
    assert oracle.index.equals(cohort.index)
    assert oracle["patient_id"].equals(cohort["patient_id"])
    expected = {
        "p_nonunion",
        "lp_nonunion",
        "p_collapse",
        "collapse_mu",
        "lp_fx",
        "lp_death",
        *(f"cif_{k}_{d}" for k in ("fx", "death") for d in (365, 730, 1826)),
    }
    assert expected <= set(oracle.columns)
    for horizon in ("cif_fx", "cif_death"):
        cif = oracle[[f"{horizon}_{d}" for d in (365, 730, 1826)]].to_numpy()
        assert ((cif > 0) & (cif < 1)).all()
        assert (np.diff(cif, axis=1) > 0).all()
    total = oracle["cif_fx_1826"] + oracle["cif_death_1826"]
    assert (total < 1).all()
    p = 1 / (1 + np.exp(-oracle["lp_nonunion"]))
    np.testing.assert_allclose(p, oracle["p_nonunion"])


def test_fixed_intercepts_reproduce_the_reference_and_let_rates_shift():
    ref = make_spine_cohort(20_000, seed=5)
    fixed = ref.attrs["intercepts"]
    again = make_spine_cohort(20_000, seed=5, intercepts=fixed)
    pd.testing.assert_frame_equal(again, ref)
    assert again.attrs["intercepts"] == pytest.approx(fixed)
    # a western case mix with the development cohort's intercepts: rates move (here up,
    # with older, heavier patients), whereas re-solving pins them to the targets
    west_fixed, oracle_fixed = make_spine_cohort(
        20_000, seed=6, profile="western", intercepts=fixed, return_oracle=True
    )
    west_solved, oracle_solved = make_spine_cohort(
        20_000, seed=6, profile="western", return_oracle=True
    )
    cons = west_fixed["treatment"] == "conservative"
    assert oracle_solved.loc[cons, "p_nonunion"].mean() == pytest.approx(0.16, abs=1e-6)
    assert abs(oracle_fixed.loc[cons, "p_nonunion"].mean() - 0.16) > 0.01
    assert west_fixed.attrs["intercepts"]["nonunion_logit"] == fixed["nonunion_logit"]


@pytest.mark.parametrize(
    "intercepts, match",
    [
        ({"nonunion": -4.9}, "unknown key"),
        ({"nonunion_logit": float("nan")}, "finite number"),
        ([1, 2], "must be a dict"),
        ({"nonunion_logit": True}, "finite number"),
        ({"fracture_h0": 5.0}, "'fracture_h0' without 'death_log_hazard'"),
        ({"treatment_fixation": 1.0}, "'treatment_fixation' without 'treatment_augmentation'"),
        ({"fracture_h0": -1.0, "death_log_hazard": -10.0}, "baseline hazard and must be > 0"),
    ],
)
def test_bad_intercepts(intercepts, match):
    with pytest.raises(ValueError, match=match):
        make_spine_cohort(10, intercepts=intercepts)


def test_nonlinear_variant_changes_risks_not_schema_or_targets():
    lin, o_lin = make_spine_cohort(30_000, seed=8, return_oracle=True)
    nl, o_nl = make_spine_cohort(30_000, seed=8, nonlinear=True, return_oracle=True)
    assert list(nl.columns) == list(lin.columns)
    cons = lin["treatment"] == "conservative"
    assert o_nl.loc[cons, "p_nonunion"].mean() == pytest.approx(0.16, abs=1e-6)
    assert o_nl["cif_fx_365"].mean() == pytest.approx(0.125, abs=1e-3)
    # the extra terms really act: thresholds show up in the true risks
    old = nl["age_years"] > 85
    gap_nl = o_nl.loc[cons & old, "p_nonunion"].mean() - o_nl.loc[cons & ~old, "p_nonunion"].mean()
    gap_lin = (
        o_lin.loc[cons & old, "p_nonunion"].mean() - o_lin.loc[cons & ~old, "p_nonunion"].mean()
    )
    assert gap_nl > gap_lin + 0.03
    assert not np.allclose(o_nl["p_collapse"], o_lin["p_collapse"])
