"""Tests of the trauma mode and the malignant fractures of ``make_spine_cohort``.

Reference figures come from the domain addendum (``DOMAIN-CERVICAL.md``), whose generator
equations were checked there on 200,000 simulated records: type II odontoid unstable
nonunion 25.1% with oracle AUROC 0.810; death after a cervical fracture at 65 or more
13.2% / 17.8% / 24.9% at 30 days / 90 days / 1 year with oracle AUROC 0.797-0.800;
malignant fractures 12.7% with oracle AUROC 0.980 from clinical findings and MRI signs.
Every cohort here is SYNTHETIC.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from spinerisk.datasets import (
    CervicalMortalityParams,
    MalignantParams,
    OdontoidParams,
    TraumaParams,
    make_spine_cohort,
)
from spinerisk.datasets._fields import NEW_FIELDS
from spinerisk.datasets._params import MRI_SIGNS
from spinerisk.schema import SPINE_SCHEMA

OVF_OUTCOMES = [
    "delta_height_6m",
    "height_loss_6m_pct",
    "kyphotic_angle_6m",
    "collapse_6m",
    "nonunion",
    "fx_time_days",
    "fx_event",
    "death_time_days",
]


@pytest.fixture(scope="module")
def trauma():
    """500,000 trauma records: about 17,000 type II odontoid fractures and 67,000
    cervical patients aged 65 or more (generated in about two seconds)."""
    return make_spine_cohort(500_000, seed=2024, mode="trauma", return_oracle=True)


@pytest.fixture(scope="module")
def clinic():
    """40,000 OVF records with the clinic share of malignant fractures."""
    return make_spine_cohort(40_000, seed=7, malignant="clinic", return_oracle=True)


def _flag(series: pd.Series) -> np.ndarray:
    return series.astype("boolean").to_numpy(dtype=bool, na_value=False)


def _expected_auc(risk: np.ndarray) -> float:
    """AUROC of the true risks expected over their own Bernoulli outcomes (no sampling
    noise): P(risk_i > risk_j | i event, j non-event)."""
    p = np.sort(np.asarray(risk, dtype=float))
    q = 1.0 - p
    below = np.cumsum(q) - q
    return float(np.sum(p * below) / (p.sum() * q.sum() - np.sum(p * q)))


# -- the default cohort is unchanged ---------------------------------------------------------
def _fingerprint(df: pd.DataFrame) -> str:
    """sha256 of the values (floats rounded to 6 decimals, so another CPU's libm agrees)."""
    parts = []
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_float_dtype(col):
            col = col.round(6)
        values = col.astype(object).where(col.notna(), None).tolist()
        parts.append(name + ":" + "|".join(map(str, values)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def test_default_cohort_is_bit_identical_to_the_one_before_trauma_and_malignant():
    # fingerprints of make_spine_cohort(3000, seed=0) written by the code of 2af162d,
    # before the trauma mode and malignant fractures existed
    cohort, oracle = make_spine_cohort(3000, seed=0, return_oracle=True)
    assert cohort.shape == (3000, 52) and oracle.shape == (3000, 32)
    assert _fingerprint(cohort) == (
        "97d0048b44d9eb35d1891fb8d59a2fbab6c34dcea9070b12b9cba10f4592685e"
    )
    assert _fingerprint(oracle) == (
        "f9d35632c944fd559c5d783ffa10f62a08d9a686f16a03b98a302284e116a482"
    )
    assert cohort.attrs["mode"] == "ovf" and cohort.attrs["malignant"] == "none"


@pytest.mark.parametrize("preset", ["clinic", "screening"])
def test_malignant_fractures_leave_benign_records_unchanged(preset):
    base, base_oracle = make_spine_cohort(4000, seed=3, profile="western", return_oracle=True)
    cohort, oracle = make_spine_cohort(
        4000, seed=3, profile="western", malignant=preset, return_oracle=True
    )
    malignant = oracle["malignant"].to_numpy()
    benign = ~malignant
    assert malignant.any() and benign.any()
    pd.testing.assert_frame_equal(cohort.loc[benign, base.columns], base.loc[benign])
    pd.testing.assert_frame_equal(oracle.loc[benign, base_oracle.columns], base_oracle[benign])
    # malignant records keep their baseline but have no OVF outcome and no OVF risk
    baseline = [c for c in base.columns if c not in OVF_OUTCOMES]
    pd.testing.assert_frame_equal(cohort.loc[malignant, baseline], base.loc[malignant, baseline])
    assert cohort.loc[malignant, OVF_OUTCOMES].isna().all().all()
    assert oracle.loc[malignant, ["p_nonunion", "p_collapse", "cif_fx_365"]].isna().all().all()
    assert cohort["malignant"].notna().all()
    assert (cohort["malignant"].to_numpy(dtype=bool) == malignant).all()


# -- type II odontoid fractures (addendum A(i)) -----------------------------------------------
def test_odontoid_unstable_nonunion_rate_and_oracle_auc(trauma):
    cohort, oracle = trauma
    odontoid = oracle["odontoid_type2"].to_numpy()
    nonop = odontoid & cohort["immobilisation"].isin(["rigid_collar", "halo"]).to_numpy()
    assert 14_000 < odontoid.sum() < 20_000
    assert (cohort.loc[odontoid, "anderson_dalonzo"] == "II").all()
    assert 1 - nonop.sum() / odontoid.sum() == pytest.approx(0.21, abs=0.015)  # surgery 21%
    p = oracle["p_unstable_nonunion"].to_numpy()
    assert p[nonop].mean() == pytest.approx(0.25, abs=1e-6)  # solved: addendum 25.1%
    assert np.isnan(p[~odontoid]).all()
    assessed = nonop & cohort["unstable_nonunion_12m"].notna().to_numpy()
    y = _flag(cohort["unstable_nonunion_12m"])[assessed]
    # survivors: those who died within the year were older, so a little lower
    assert y.mean() == pytest.approx(0.24, abs=0.02)
    assert _expected_auc(p[nonop]) == pytest.approx(0.810, abs=0.01)  # addendum: 0.810
    assert roc_auc_score(y, p[assessed]) == pytest.approx(0.80, abs=0.025)
    # ordinal healing: 70% non-osseous (intercept 0.232 in the addendum)
    assert oracle["p_non_osseous"][nonop].mean() == pytest.approx(0.70, abs=1e-6)
    healing = cohort.loc[assessed, "healing_12m"]
    assert ((healing == "unstable").to_numpy() == y).all()
    assert (healing != "osseous").mean() == pytest.approx(0.68, abs=0.03)  # survivors
    # published effect directions: displacement >= 5 mm and posterior displacement
    disp = cohort["dens_displacement_mm"].to_numpy()
    big = disp[nonop] >= 5
    assert p[nonop][big].mean() == pytest.approx(0.61, abs=0.05)
    assert p[nonop][~big].mean() == pytest.approx(0.18, abs=0.03)
    posterior = (cohort["dens_displacement_dir"] == "posterior").to_numpy()
    assert p[nonop & posterior].mean() == pytest.approx(0.46, abs=0.05)


def test_odontoid_predictor_prevalences(trauma):
    cohort, oracle = trauma
    od = oracle["odontoid_type2"].to_numpy()
    rows = cohort[od]
    assert rows["age_years"].mean() == pytest.approx(82, abs=0.5)
    assert (rows["sex"] == "M").mean() == pytest.approx(0.55, abs=0.02)
    assert (rows["dens_displacement_dir"] != "none").mean() == pytest.approx(0.47, abs=0.03)
    assert (rows["dens_displacement_dir"] == "posterior").mean() == pytest.approx(0.22, abs=0.03)
    assert (rows["fracture_gap_mm"] > 1).mean() == pytest.approx(0.26, abs=0.03)
    assert (rows["dens_angulation_deg"] > 10).mean() == pytest.approx(0.33, abs=0.03)
    assert (rows["dens_displacement_mm"] >= 5).mean() == pytest.approx(0.16, abs=0.03)
    assert rows["comminuted"].mean() == pytest.approx(0.10, abs=0.015)
    assert (rows["days_injury_to_immobilisation"] > 4).mean() == pytest.approx(0.15, abs=0.015)
    assert (rows["level"] == "C2").all()
    assert set(rows["ao_upper_cervical"].astype(str)) == {"III-A", "III-C"}
    translated = (rows["ao_upper_cervical"] == "III-C").to_numpy()
    assert (rows["dens_displacement_mm"].to_numpy()[translated] >= 4.95).all()
    grauer = rows["grauer_subtype"].astype(str).to_numpy()
    undisplaced = (rows["dens_displacement_dir"] == "none").to_numpy()
    assert (grauer[undisplaced & ~rows["comminuted"].to_numpy(dtype=bool)] == "IIA").all()
    assert (rows.loc[undisplaced, "dens_displacement_mm"] < 1).all()
    # a dens type only at C2, a Grauer subtype only for type II
    dens = cohort["anderson_dalonzo"].notna()
    assert (cohort.loc[dens, "level"] == "C2").all()
    assert (cohort.loc[cohort["grauer_subtype"].notna(), "anderson_dalonzo"] == "II").all()


# -- death after a cervical fracture (addendum A(ii)) -----------------------------------------
def test_cervical_mortality_at_30_90_365_days_and_oracle_auc(trauma):
    cohort, oracle = trauma
    older = oracle["cervical_older_stratum"].to_numpy()
    assert 60_000 < older.sum() < 75_000
    for column, risk, target in (
        ("death_30d", "p_death_30d", 0.132),
        ("death_90d", "p_death_90d", 0.178),
        ("death_1y", "p_death_1y", 0.249),
    ):
        y = _flag(cohort[column])[older]
        assert cohort.loc[older, column].notna().all()
        assert y.mean() == pytest.approx(target, abs=0.012), column
        assert oracle.loc[older, risk].mean() == pytest.approx(target, abs=0.006), column
        assert roc_auc_score(y, oracle[risk][older]) == pytest.approx(0.795, abs=0.015), column
        # addendum: oracle AUC 0.797 at 30 days, 0.800 at 1 year
        assert _expected_auc(oracle[risk][older]) == pytest.approx(0.798, abs=0.01), column
    assert oracle["p_death_30d"][older].mean() == pytest.approx(0.132, abs=1e-6)  # solved
    # addendum checks: surgery 14% vs non-operative 28% at 1 year; 47% at 85 or more;
    # 31% at 30 days with a spinal cord injury
    dead_1y = _flag(cohort["death_1y"])
    operated = (cohort["treatment"] == "fixation").to_numpy()
    assert dead_1y[older & operated].mean() == pytest.approx(0.14, abs=0.03)
    assert dead_1y[older & ~operated].mean() == pytest.approx(0.28, abs=0.03)
    assert dead_1y[older & (cohort["age_years"] >= 85).to_numpy()].mean() == pytest.approx(
        0.47, abs=0.03
    )
    sci = (cohort["asia_ais_adm"] != "E").to_numpy()
    assert _flag(cohort["death_30d"])[older & sci].mean() == pytest.approx(0.31, abs=0.04)


def test_mortality_columns_are_consistent(trauma):
    cohort, oracle = trauma
    cervical = cohort["level"].astype(str).str.startswith("C").to_numpy()
    death_cols = ["time_to_death_d", "death_event", "death_30d", "death_90d", "death_1y"]
    assert cohort.loc[~cervical, death_cols].isna().all().all()
    assert cohort.loc[cervical, death_cols].notna().all().all()
    rows = cohort[cervical]
    event = rows["death_event"].to_numpy(dtype=bool)
    time = rows["time_to_death_d"].to_numpy()
    assert (time > 0).all() and (time <= 3 * 365.25 + 1e-6).all()
    assert (time[~event] >= 365.25 - 1e-9).all()  # everybody followed for a year
    for column, days in (("death_30d", 30), ("death_90d", 90), ("death_1y", 365)):
        assert (rows[column].to_numpy(dtype=bool) == (event & (time <= days))).all()
    # all ages: 3-month mortality 6-9% in cervical fractures (DOMAIN.md 6.6)
    assert rows["death_90d"].mean() == pytest.approx(0.075, abs=0.015)


# -- trauma cohort mix (DOMAIN.md 6.6) ------------------------------------------------------------
def test_trauma_mix(trauma):
    cohort, _ = trauma
    level = cohort["level"].astype(str)
    cervical = level.str.startswith("C")
    assert cervical.mean() == pytest.approx(0.30, abs=0.01)
    assert level[cervical].isin(["C1", "C2"]).mean() == pytest.approx(0.35, abs=0.01)
    subaxial = level[cervical & ~level.isin(["C1", "C2"])]
    assert subaxial.isin(["C6", "C7"]).mean() == pytest.approx(0.65, abs=0.02)
    tl = level[~cervical]
    assert tl.isin(["T11", "T12", "L1", "L2"]).mean() == pytest.approx(0.67, abs=0.01)
    mech = cohort.loc[cervical, "mechanism"].astype(str)
    assert mech.isin(["fall_standing", "fall_height_gt2m"]).mean() == pytest.approx(0.57, abs=0.02)
    assert (mech == "bicycle").mean() == pytest.approx(0.12, abs=0.01)
    assert (mech == "mvc").mean() == pytest.approx(0.10, abs=0.01)
    ao = cohort["ao_morphology"].dropna().astype(str).str[0]
    assert (ao == "A").mean() == pytest.approx(0.75, abs=0.01)
    assert (ao == "B").mean() == pytest.approx(0.15, abs=0.01)
    sci = cohort.loc[cervical, "asia_ais_adm"] != "E"
    assert sci.mean() == pytest.approx(0.12, abs=0.01)
    assert (cohort.loc[cervical, "asia_ais_adm"] == "A").sum() / sci.sum() == pytest.approx(
        0.15, abs=0.02
    )
    assert (cohort.loc[~cervical, "asia_ais_adm"] != "E").mean() == pytest.approx(0.15, abs=0.01)
    assert (cohort.loc[cervical, "sex"] == "M").mean() == pytest.approx(0.66, abs=0.03)
    assert (cohort.loc[cervical, "treatment"] == "fixation").mean() == pytest.approx(0.27, abs=0.03)
    assert cohort.loc[~cervical, "unstable_nonunion_12m"].isna().all()
    assert not set(OVF_OUTCOMES) & set(cohort.columns)  # no OVF outcome in trauma mode
    neuro = cohort["ao_neuro"].astype(str)
    ais = cohort["asia_ais_adm"].astype(str)
    assert ((neuro == "N0") == (ais == "E")).all() and ((neuro == "N4") == (ais == "A")).all()


def test_ais_conversion_follows_the_transition_matrix(trauma):
    cohort, oracle = trauma
    adm, m12 = cohort["asia_ais_adm"].astype(str), cohort["asia_ais_12m"]
    seen = m12.notna()
    assert (m12[seen & (adm == "E")] == "E").all()
    matrix = np.array(TraumaParams().ais_transition)
    for i, grade in enumerate("ABCD"):
        rows = seen & (adm == grade)
        observed = m12[rows].astype(str).value_counts(normalize=True)
        for j, to in enumerate("ABCDE"):
            assert observed.get(to, 0.0) == pytest.approx(matrix[i, j], abs=0.05), (grade, to)
    improved = seen & (adm != "E")
    grade_num = {g: k for k, g in enumerate("ABCDE")}
    better = m12[improved].astype(str).map(grade_num) > adm[improved].map(grade_num)
    assert better.mean() == pytest.approx(oracle.loc[improved, "p_ais_improved"].mean(), abs=0.02)
    no_conversion = make_spine_cohort(
        500, seed=1, mode="trauma", trauma=TraumaParams(ais_conversion=False)
    )
    assert "asia_ais_12m" not in no_conversion.columns


# -- malignant fractures (addendum B) --------------------------------------------------------
def test_malignant_share_and_oracle_auc(clinic):
    cohort, oracle = clinic
    malignant = oracle["malignant"].to_numpy()
    assert (cohort["malignant"].to_numpy(dtype=bool) == malignant).all()
    assert malignant.mean() == pytest.approx(0.127, abs=0.007)
    history = cohort["cancer_history"].to_numpy(dtype=bool)
    assert history.mean() == pytest.approx(0.15, abs=0.006)
    assert malignant[history].mean() == pytest.approx(0.60, abs=0.025)
    assert malignant[~history].mean() == pytest.approx(0.045, abs=0.006)
    auc = {
        name: roc_auc_score(malignant, oracle[f"p_malignant_{name}"])
        for name in ("clinical", "clinical_mri", "clinical_mri_quant")
    }
    # addendum: 0.917 / 0.980 / 0.982 when age, sex and level are drawn given the class;
    # here they are the OVF cohort's own, which carry a little less information
    assert auc["clinical_mri"] == pytest.approx(0.98, abs=0.01)
    assert auc["clinical"] == pytest.approx(0.91, abs=0.02)
    assert (
        auc["clinical_mri"]
        < auc["clinical_mri_quant"]
        <= roc_auc_score(malignant, oracle["p_malignant"])
    )
    no_history = roc_auc_score(malignant[~history], oracle["p_malignant_clinical_mri"][~history])
    assert no_history == pytest.approx(0.957, abs=0.015)
    # the oracle is calibrated: it is the exact posterior
    assert oracle["p_malignant_clinical_mri"].mean() == pytest.approx(malignant.mean(), abs=0.005)
    etiology = cohort["vcf_etiology"].astype(str)
    assert (etiology[~malignant] == "osteoporotic").all()
    assert (etiology[malignant] == "myeloma_lymphoma").mean() == pytest.approx(0.35, abs=0.03)


def test_screening_preset_is_about_five_percent():
    cohort, oracle = make_spine_cohort(30_000, seed=8, malignant="screening", return_oracle=True)
    assert oracle["malignant"].mean() == pytest.approx(0.05, abs=0.005)
    assert cohort["cancer_history"].mean() == pytest.approx(0.08, abs=0.006)
    assert MalignantParams.screening().share == pytest.approx(0.0504)
    assert MalignantParams.clinic().share == pytest.approx(0.12825)
    assert cohort.attrs["malignant"] == "screening"


def test_mri_signs_share_one_latent_score(clinic):
    cohort, oracle = clinic
    malignant = oracle["malignant"].to_numpy()
    mri = cohort["mri_done"].to_numpy(dtype=bool)
    for name, p_mal, p_ben in MRI_SIGNS:
        sign = cohort[name]
        assert sign[~mri].isna().all()
        values = sign[mri].to_numpy(dtype=bool)
        assert values[malignant[mri]].mean() == pytest.approx(p_mal, abs=0.04), name
        assert values[~malignant[mri]].mean() == pytest.approx(p_ben, abs=0.02), name
    # correlated within class: two signs of marrow replacement, and ADC with the SIR
    benign = mri & ~malignant
    a = cohort["mri_pedicle_involvement"].to_numpy(dtype=bool, na_value=False)[benign]
    b = cohort["mri_diffuse_low_t1"].to_numpy(dtype=bool, na_value=False)[benign]
    assert np.corrcoef(a, b)[0, 1] > 0.1
    both = cohort["adc_1e3_mm2_s"].notna() & cohort["cs_si_ratio"].notna()
    for cls in (malignant, ~malignant):
        rows = both.to_numpy() & cls
        r = np.corrcoef(cohort["adc_1e3_mm2_s"][rows], cohort["cs_si_ratio"][rows])[0, 1]
        assert r == pytest.approx(-0.5, abs=0.08)
    adc = cohort["adc_1e3_mm2_s"]
    assert adc[~malignant].mean() == pytest.approx(1.62, abs=0.03)
    assert adc[malignant].mean() == pytest.approx(1.10, abs=0.04)
    assert roc_auc_score(~malignant[both], adc[both]) == pytest.approx(0.89, abs=0.02)


def test_malignant_clinical_columns(clinic):
    cohort, oracle = clinic
    malignant = oracle["malignant"].to_numpy()
    for name, p_mal, p_ben in (("weight_loss", 0.20, 0.10), ("night_pain", 0.40, 0.30)):
        values = cohort[name].to_numpy(dtype=bool)
        assert values[malignant].mean() == pytest.approx(p_mal, abs=0.02), name
        assert values[~malignant].mean() == pytest.approx(p_ben, abs=0.01), name
    esr = cohort["esr_mm_h"]
    assert esr.dropna().between(1, 150).all()
    assert (esr[malignant].dropna() > 40).mean() == pytest.approx(0.40, abs=0.03)
    assert cohort["esr_mm_h"].isna().mean() == pytest.approx(0.30, abs=0.01)
    assert cohort["alp_u_l"].dropna().between(20, 2000).all()
    assert cohort.loc[~cohort["cancer_history"].to_numpy(dtype=bool), "cancer_primary"].isna().all()
    assert cohort.loc[cohort["cancer_history"].to_numpy(dtype=bool), "cancer_primary"].notna().all()
    myeloma = (cohort["vcf_etiology"] == "myeloma_lymphoma").to_numpy()
    m_protein = cohort["m_protein"]
    assert m_protein[myeloma].dropna().mean() == pytest.approx(0.95, abs=0.04)
    assert m_protein[~malignant].dropna().mean() == pytest.approx(0.05, abs=0.01)
    reference = cohort["etiology_reference"].astype(str)
    assert (reference[malignant] == "biopsy").mean() == pytest.approx(0.90, abs=0.02)


# -- columns, dtypes, schema ------------------------------------------------------------------
def _check_new_columns(cohort: pd.DataFrame) -> None:
    for name in cohort.columns:
        if name not in NEW_FIELDS:
            continue
        dtype, codes = NEW_FIELDS[name]
        col = cohort[name]
        if dtype == "bool":
            assert col.dtype == pd.BooleanDtype(), name
        elif dtype == "int":
            assert col.dtype == pd.Int64Dtype(), name
        elif dtype == "float":
            assert col.dtype == np.float64, name
        else:
            assert isinstance(col.dtype, pd.CategoricalDtype), name
            assert set(col.dropna().astype(str)) <= set(codes), name


@pytest.mark.parametrize(
    "kwargs", [{"mode": "trauma"}, {"malignant": "clinic"}, {"malignant": "screening"}]
)
def test_columns_follow_the_schema(kwargs):
    cohort = make_spine_cohort(3000, seed=5, **kwargs)
    _check_new_columns(cohort)
    assert cohort.attrs["synthetic"] is True
    assert "SYNTHETIC" in cohort.attrs["description"]
    schema_names = [n for n in SPINE_SCHEMA.names if n in cohort.columns]
    assert list(cohort.columns[: len(schema_names)]) == schema_names
    new = [name for name in cohort.columns if name not in SPINE_SCHEMA.names]
    assert not new, f"SPINE_SCHEMA does not declare {new}"
    import spinerisk as sr

    valid, rejects = sr.validate(cohort, on_invalid="split")
    assert len(rejects) == 0, rejects.head().to_string()
    assert len(valid) == len(cohort)


# -- parameters, determinism, tiny cohorts ------------------------------------------------
def test_trauma_is_deterministic_and_attrs_are_labelled():
    a, oa = make_spine_cohort(800, seed=4, mode="trauma", return_oracle=True)
    b, ob = make_spine_cohort(800, seed=4, mode="trauma", return_oracle=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(oa, ob)
    assert not a.equals(make_spine_cohort(800, seed=5, mode="trauma"))
    assert a.attrs["synthetic"] is True and a.attrs["mode"] == "trauma"
    assert set(a.attrs["intercepts"]) == {
        "odontoid_unstable_logit",
        "odontoid_non_osseous_logit",
        "odontoid_surgery_logit",
        "cervical_death_log_hazard",
    }
    assert oa.attrs == a.attrs


def test_intercepts_from_a_development_cohort_are_reused():
    dev = make_spine_cohort(20_000, seed=1, mode="trauma")
    other = make_spine_cohort(3000, seed=2, mode="trauma", intercepts=dev.attrs["intercepts"])
    assert other.attrs["intercepts"] == dev.attrs["intercepts"]
    mal = make_spine_cohort(5000, seed=1, malignant="clinic")
    keys = {"malignant_shift_history", "malignant_shift_no_history"}
    assert keys <= set(mal.attrs["intercepts"])
    again = make_spine_cohort(
        2000, seed=3, malignant="clinic", intercepts={k: mal.attrs["intercepts"][k] for k in keys}
    )
    assert {k: again.attrs["intercepts"][k] for k in keys} == {
        k: mal.attrs["intercepts"][k] for k in keys
    }


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("kwargs", [{"mode": "trauma"}, {"malignant": "clinic"}])
def test_tiny_cohorts(n, kwargs):
    for seed in range(4):
        cohort, oracle = make_spine_cohort(n, seed=seed, return_oracle=True, **kwargs)
        assert len(cohort) == len(oracle) == n


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "cervical"}, r"mode must be one of 'ovf', 'trauma'; got mode='cervical'"),
        ({"malignant": "high"}, r"malignant must be one of 'none', 'clinic', 'screening'"),
        ({"malignant": True}, r"malignant must be one of"),
        ({"trauma": TraumaParams()}, r"trauma applies to mode='trauma' only"),
        ({"mode": "trauma", "trauma": {"cervical_share": 0.5}}, r"trauma must be None or"),
        ({"mode": "trauma", "malignant": "clinic"}, r"malignant applies to mode='ovf' only"),
        ({"mode": "trauma", "noise": True}, r"noise applies to mode='ovf' only"),
        ({"mode": "trauma", "profile": "western"}, r"profile applies to mode='ovf' only"),
        ({"mode": "trauma", "intercepts": {"nonunion_logit": 0.0}}, r"unknown key"),
        ({"intercepts": {"cervical_death_log_hazard": -2.0}}, r"unknown key"),
        ({"intercepts": {"malignant_shift_history": 0.1}}, r"unknown key"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_spine_cohort(50, **kwargs)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: TraumaParams(cervical_share=1.5), r"TraumaParams.cervical_share"),
        (lambda: TraumaParams(tl_group_probs=(0.5, 0.2, 0.2)), r"sum to 1"),
        (lambda: TraumaParams(ais_transition=((1.0, 0, 0, 0, 0),)), r"4 rows"),
        (lambda: OdontoidParams(nonunion_prevalence=0.8), r"non_osseous_share must exceed"),
        (lambda: OdontoidParams(p_halo=2.0), r"OdontoidParams.p_halo is a probability"),
        (lambda: CervicalMortalityParams(death_30d=0.0), r"death_30d must be strictly"),
        (lambda: CervicalMortalityParams(followup_min_years=0.5), r"followup_min_years"),
        (lambda: MalignantParams(p_history=float("nan")), r"p_history must be a finite"),
        (lambda: MalignantParams(p_malignant_history=0.0, p_malignant_no_history=0.0), r"share"),
    ],
)
def test_bad_assumptions_are_named(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


def test_assumptions_change_the_cohort():
    older = TraumaParams(odontoid=OdontoidParams(nonunion_prevalence=0.30, non_osseous_share=0.8))
    cohort, oracle = make_spine_cohort(
        60_000, seed=9, mode="trauma", trauma=older, return_oracle=True
    )
    nonop = (
        oracle["odontoid_type2"].to_numpy()
        & cohort["immobilisation"].isin(["rigid_collar", "halo"]).to_numpy()
    )
    assert oracle["p_unstable_nonunion"][nonop].mean() == pytest.approx(0.30, abs=1e-6)
    custom = MalignantParams(p_history=0.10, p_malignant_history=0.5, p_malignant_no_history=0.03)
    _, mal_oracle = make_spine_cohort(20_000, seed=9, malignant=custom, return_oracle=True)
    assert mal_oracle["malignant"].mean() == pytest.approx(custom.share, abs=0.006)
    assert re.fullmatch(r"custom", mal_oracle.attrs["malignant"])
