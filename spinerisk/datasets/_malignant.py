"""Malignant (pathological) vertebral compression fractures in the SYNTHETIC OVF cohort.

Domain addendum, section B. The part is drawn from its own random stream, after every
draw of the OVF cohort, so the OVF columns of benign records never change. A record's
malignancy depends on its cancer history and on the cohort's own age, sex and level (by
their likelihood ratios); given the class, clinical findings are independent, and the MRI
signs, ADC and chemical-shift ratio share one latent marrow-replacement score, so they are
correlated within class. The exact posterior (the oracle) integrates that score out by
Gauss-Hermite quadrature.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit, ndtr, ndtri

from spinerisk.datasets._numeric import _choice, _solve_logit, _truncnorm
from spinerisk.datasets._params import MalignantParams
from spinerisk.schema.default import CANCER_PRIMARIES

__all__ = ["CANCER_PRIMARIES", "ETIOLOGY_REFERENCES", "VCF_ETIOLOGIES", "simulate_malignant"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Code lists of the new fields (domain addendum, schema additions).
VCF_ETIOLOGIES: tuple[str, ...] = (
    "osteoporotic", "metastatic", "myeloma_lymphoma", "infection", "other",
)  # fmt: skip
ETIOLOGY_REFERENCES: tuple[str, ...] = ("biopsy", "followup_6m", "imaging")

#: Primary of a known cancer [A] (order of CANCER_PRIMARIES), by class and sex.
_PRIMARY_METASTATIC = {
    "F": (0.45, 0.00, 0.20, 0.10, 0.08, 0.0, 0.0, 0.17),
    "M": (0.00, 0.40, 0.25, 0.12, 0.05, 0.0, 0.0, 0.18),
}
_PRIMARY_BENIGN = {
    "F": (0.50, 0.00, 0.08, 0.05, 0.07, 0.02, 0.05, 0.23),
    "M": (0.00, 0.45, 0.10, 0.07, 0.03, 0.02, 0.05, 0.28),
}
#: Myeloma among myeloma-or-lymphoma fractures [A].
_MYELOMA_SHARE = 0.85
#: Benign fractures without cement: reference standard 6-month follow-up, else imaging [A].
_FOLLOWUP_REFERENCE = 0.85
#: Gauss-Hermite nodes for the latent score (posterior exact to < 1e-6 in AUC).
_N_NODES = 40
#: Levels T1-T6 among the OVF cohort's levels.
_UPPER_THORACIC = ("T1", "T2", "T3", "T4", "T5", "T6")


def _log_lr(present: BoolArray, p_mal: float, p_ben: float) -> FloatArray:
    lr_yes, lr_no = math.log(p_mal / p_ben), math.log((1.0 - p_mal) / (1.0 - p_ben))
    return np.asarray(np.where(present, lr_yes, lr_no), dtype=np.float64)


def _sign_loadings(mp: MalignantParams) -> tuple[FloatArray, FloatArray]:
    p_mal = np.array([row[1] for row in mp.mri_signs])
    p_ben = np.array([row[2] for row in mp.mri_signs])
    lam = np.clip((ndtri(p_mal) - ndtri(p_ben)) / mp.latent_separation, -0.98, 0.98)
    return lam, -ndtri(p_ben)


def _mri_log_lr(
    signs: BoolArray,
    adc: FloatArray | None,
    sir: FloatArray | None,
    mp: MalignantParams,
    chunk: int = 20_000,
) -> FloatArray:
    """log P(MRI findings | malignant) - log P(MRI findings | benign), latent score
    integrated out by Gauss-Hermite quadrature."""
    lam, tau = _sign_loadings(mp)
    x, w = np.polynomial.hermite_e.hermegauss(_N_NODES)
    w = w / w.sum()
    sd_eps = np.sqrt(1.0 - lam**2)
    adc_slope, adc_sd = (
        -mp.adc_scale * mp.adc_loading,
        mp.adc_scale * np.sqrt(1.0 - mp.adc_loading**2),
    )
    sir_slope, sir_sd = (
        mp.sir_scale * mp.sir_loading,
        mp.sir_scale * np.sqrt(1.0 - mp.sir_loading**2),
    )
    out = np.empty(len(signs))
    for start in range(0, len(signs), chunk):
        sl = slice(start, start + chunk)
        s = signs[sl][:, None, :]
        logs = []
        for mu in (mp.latent_separation, 0.0):
            a = mu + x  # latent score at the nodes
            p = np.clip(ndtr((lam * a[:, None] - tau) / sd_eps), 1e-300, 1.0 - 1e-16)
            ll = np.where(s, np.log(p), np.log1p(-p)).sum(axis=2)  # (rows, nodes)
            if adc is not None and sir is not None:
                z_adc = (adc[sl, None] - mp.adc_mean - adc_slope * a) / adc_sd
                z_sir = (sir[sl, None] - mp.sir_mean - sir_slope * a) / sir_sd
                ll = ll - 0.5 * (z_adc**2 + z_sir**2)  # constants cancel in the ratio
            top = ll.max(axis=1, keepdims=True)
            logs.append(top[:, 0] + np.log(np.exp(ll - top) @ w))
        out[sl] = logs[0] - logs[1]
    return out


def _draws(rng: np.random.Generator, n: int, mp: MalignantParams) -> dict[str, Any]:
    """Every draw of the malignant part, made whatever the options, in a fixed order."""
    u: dict[str, Any] = {}
    u["history"], u["class"], u["type"] = rng.random(n), rng.random(n), rng.random(n)
    u["findings"] = rng.random((n, 4))
    u["latent_eps"] = rng.standard_normal(n)
    u["sign_eps"] = rng.standard_normal((n, len(mp.mri_signs)))
    u["adc_eps"], u["sir_eps"] = rng.standard_normal(n), rng.standard_normal(n)
    for name in ("mprot", "primary", "myeloma", "ref", "ref2"):
        u[name] = rng.random(n)
    u["esr_hi"] = np.minimum(41.0 + np.floor(rng.gamma(2.0, 15.0, n)), 150.0)
    u["esr_lo"] = np.round(_truncnorm(rng, 18.0, 10.0, 1.0, mp.esr_threshold, n))
    alp_hi = np.floor(mp.alp_threshold) + 1.0 + np.floor(rng.gamma(2.0, 60.0, n))
    u["alp_hi"] = np.minimum(alp_hi, 2000.0)
    u["alp_lo"] = np.round(_truncnorm(rng, 80.0, 20.0, 20.0, mp.alp_threshold, n))
    u["miss"] = rng.random((n, 4))  # labs, m-protein, quantitative MRI, spare
    return u


def _prior(
    u: dict[str, Any],
    s: dict[str, Any],
    level_names: tuple[str, ...],
    mp: MalignantParams,
    shift: tuple[float | None, float | None],
) -> dict[str, Any]:
    """Malignancy from cancer history and the cohort's own age, sex and level.

    The logit shifts (with and without a history) are given or solved so that
    P(malignant | history) and P(malignant | no history) equal their targets.
    """
    history = u["history"] < mp.p_history
    find = {row[0]: row[1:] for row in mp.clinical_findings}
    age = s["age"]
    (m_mu, m_sd), (b_mu, b_sd) = mp.age_malignant, mp.age_benign
    ll_age = (
        -0.5 * ((age - m_mu) / m_sd) ** 2 - np.log(m_sd)
        + 0.5 * ((age - b_mu) / b_sd) ** 2 + np.log(b_sd)
    )  # fmt: skip
    upper = np.isin(np.asarray(level_names)[s["level"]], _UPPER_THORACIC)
    ll_x = ll_age + _log_lr(s["female"], *find["female"]) + _log_lr(upper, *find["upper_thoracic"])
    shifts = []
    for rows, p_target, given in (
        (history, mp.p_malignant_history, shift[0]),
        (~history, mp.p_malignant_no_history, shift[1]),
    ):
        if given is None and rows.any():
            given = _solve_logit(ll_x[rows], p_target, "malignancy shift") - logit(p_target)
        elif given is None:  # no record to solve on (tiny cohort): no shift
            given = 0.0
        shifts.append(float(given))
    prior = np.where(
        history, logit(mp.p_malignant_history) + shifts[0],
        logit(mp.p_malignant_no_history) + shifts[1],
    )  # fmt: skip
    lp_prior = prior + ll_x
    malignant = u["class"] < expit(lp_prior)
    return {
        "history": history,
        "shifts": (shifts[0], shifts[1]),
        "lp_prior": lp_prior,
        "malignant": malignant,
        "myeloma": malignant & (u["type"] < mp.myeloma_share),
    }


def _clinical(u: dict[str, Any], c: dict[str, Any], mp: MalignantParams) -> dict[str, Any]:
    """Clinical findings and M-protein, independent given class, and their log LRs."""
    find = {row[0]: row[1:] for row in mp.clinical_findings}
    names = ("weight_loss", "night_pain", "esr_gt40", "alp_high")
    found = {}
    for k, name in enumerate(names):
        p_mal, p_ben = find[name]
        found[name] = u["findings"][:, k] < np.where(c["malignant"], p_mal, p_ben)
    ll_clin = sum(_log_lr(found[name], *find[name]) for name in names)
    p_mprot = np.where(c["myeloma"], mp.p_m_protein_myeloma, mp.p_m_protein_other)
    m_protein = u["mprot"] < p_mprot
    p_m_mal = mp.myeloma_share * mp.p_m_protein_myeloma + (1 - mp.myeloma_share) * (
        mp.p_m_protein_other
    )
    return {
        "found": found,
        "ll_clin": ll_clin,
        "m_protein": m_protein,
        "ll_mprot": _log_lr(m_protein, p_m_mal, mp.p_m_protein_other),
    }


def _mri(u: dict[str, Any], malignant: BoolArray, mp: MalignantParams) -> dict[str, Any]:
    """MRI signs, ADC and chemical-shift ratio from one latent marrow-replacement score."""
    latent = mp.latent_separation * malignant + u["latent_eps"]
    lam, tau = _sign_loadings(mp)
    signs = lam * latent[:, None] + np.sqrt(1.0 - lam**2) * u["sign_eps"] > tau
    adc_load, sir_load = mp.adc_loading, mp.sir_loading
    adc_noise, sir_noise = u["adc_eps"], u["sir_eps"]
    adc = mp.adc_mean - mp.adc_scale * (adc_load * latent + np.sqrt(1 - adc_load**2) * adc_noise)
    sir = mp.sir_mean + mp.sir_scale * (sir_load * latent + np.sqrt(1 - sir_load**2) * sir_noise)
    return {
        "latent": latent,
        "signs": signs,
        "adc": adc,
        "sir": sir,
        "ll_mri": _mri_log_lr(signs, None, None, mp),
        "ll_quant": _mri_log_lr(signs, adc, sir, mp),
    }


def _details(
    u: dict[str, Any], s: dict[str, Any], c: dict[str, Any], mp: MalignantParams
) -> dict[str, Any]:
    """Cancer primary, fracture etiology and the reference standard of the diagnosis."""
    history, malignant, myeloma = c["history"], c["malignant"], c["myeloma"]
    sex_key = np.where(s["female"], "F", "M")
    primary = np.full(len(history), -1)
    for sex in ("F", "M"):
        for cls_mask, table in ((malignant & ~myeloma, _PRIMARY_METASTATIC[sex]),
                                (~malignant, _PRIMARY_BENIGN[sex])):  # fmt: skip
            rows = history & cls_mask & (sex_key == sex)
            primary = np.where(rows, _choice(u["primary"], table), primary)
    heme = np.where(u["myeloma"] < _MYELOMA_SHARE, CANCER_PRIMARIES.index("myeloma"),
                    CANCER_PRIMARIES.index("lymphoma"))  # fmt: skip
    reference = np.select(
        [malignant, s["augmented"]],
        [np.where(u["ref"] < mp.p_biopsy_malignant, 0, 1),
         np.where(u["ref"] < mp.p_biopsy_augmented, 0, 1)],
        default=np.where(u["ref2"] < _FOLLOWUP_REFERENCE, 1, 2),
    )  # fmt: skip
    return {
        "primary": np.where(history & myeloma, heme, primary),
        "etiology": np.select([myeloma, malignant], [2, 1], default=0),
        "reference": reference,
    }


def simulate_malignant(
    rng: np.random.Generator,
    s: dict[str, Any],
    level_names: tuple[str, ...],
    mri_missing: BoolArray,
    mp: MalignantParams,
    *,
    missing: bool,
    shift: tuple[float | None, float | None],
) -> tuple[dict[str, Any], dict[str, Any], tuple[float, float]]:
    """Malignancy, its clinical and MRI findings, and the exact posterior.

    Returns the new columns (values and missing masks), the oracle columns and the
    solved logit shifts (with and without a cancer history), which make P(malignant |
    history) and P(malignant | no history) equal their targets on this cohort.
    """
    u = _draws(rng, len(s["age"]), mp)
    c = _prior(u, s, level_names, mp, shift)
    clin, mri = _clinical(u, c, mp), _mri(u, c["malignant"], mp)
    d = _details(u, s, c, mp)
    found, signs, miss_u = clin["found"], mri["signs"], u["miss"]
    # observation: MRI not done hides every sign; labs and quantitative MRI not always done
    no_labs = missing & (miss_u[:, 0] < mp.p_labs_missing)
    no_mprot = missing & (miss_u[:, 1] < mp.p_m_protein_missing)
    no_quant = mri_missing | (missing & (miss_u[:, 2] < mp.p_quantitative_mri_missing))
    cols: dict[str, Any] = {
        "cancer_history": (c["history"], None),
        "cancer_primary": (d["primary"], d["primary"] < 0),
        "weight_loss": (found["weight_loss"], None),
        "night_pain": (found["night_pain"], None),
        "esr_mm_h": (np.where(found["esr_gt40"], u["esr_hi"], u["esr_lo"]), no_labs),
        "alp_u_l": (np.where(found["alp_high"], u["alp_hi"], u["alp_lo"]), no_labs),
        "m_protein": (clin["m_protein"], no_mprot),
        **{row[0]: (signs[:, j], mri_missing) for j, row in enumerate(mp.mri_signs)},
        "adc_1e3_mm2_s": (np.round(np.clip(mri["adc"], 0.3, 3.0), 2), no_quant),
        "cs_si_ratio": (np.round(np.clip(mri["sir"], 0.1, 1.6), 2), no_quant),
        "malignant": (c["malignant"], None),
        "vcf_etiology": (d["etiology"], None),
        "etiology_reference": (d["reference"], None),
    }
    lp_clin = c["lp_prior"] + clin["ll_clin"]
    oracle = {
        "malignant": c["malignant"],
        "p_malignant_prior": expit(c["lp_prior"]),
        "p_malignant_clinical": expit(lp_clin),
        "p_malignant_clinical_mri": expit(lp_clin + mri["ll_mri"]),
        "p_malignant_clinical_mri_quant": expit(lp_clin + mri["ll_quant"]),
        "p_malignant": expit(lp_clin + mri["ll_quant"] + clin["ll_mprot"]),
        "latent_marrow_score": mri["latent"],
    }
    return cols, oracle, c["shifts"]
