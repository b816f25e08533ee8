"""Numerical helpers of the synthetic cohort generator.

Truncated normals, categorical draws, intercepts solved by root-finding, cumulative
incidence under competing hazards by Gauss-Legendre quadrature, and event times by
inversion of the cumulative hazard. numpy/scipy only, fully vectorised.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import expit, ndtr, ndtri

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Target cohort-mean 5-year death cumulative incidence.
_DEATH_CIF_5Y_TARGET = 0.299
#: Target share of patients treated with open fixation.
_FIXATION_RATE = 0.03
#: Starting values of the solved intercepts (domain brief reference values).
_START = {"fracture_h0": 0.020, "death_log_hazard": -11.8}


def _truncnorm(
    rng: np.random.Generator, mean: Any, sd: Any, low: float, high: float, size: int
) -> FloatArray:
    """Truncated normal draws by inverse CDF (vectorised, one uniform per draw)."""
    lo = ndtr((low - np.asarray(mean)) / np.asarray(sd))
    hi = ndtr((high - np.asarray(mean)) / np.asarray(sd))
    u = rng.random(size)
    x = np.asarray(mean) + np.asarray(sd) * ndtri(lo + u * (hi - lo))
    return np.clip(x, low, high)


def _choice_rows(u: FloatArray, probs: FloatArray) -> npt.NDArray[np.intp]:
    """Category index per row from uniforms ``u`` and per-row probabilities (n, k)."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def _choice(u: FloatArray, probs: Any) -> npt.NDArray[np.intp]:
    """Category index from uniforms ``u`` and one probability vector."""
    cum = np.cumsum(np.asarray(probs, dtype=float))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)


def _solve(
    func: Any,
    start: float,
    step: float,
    limits: tuple[float, float],
    what: str,
    xtol: float = 1e-12,
) -> float:
    """Root of an increasing ``func`` by ``brentq``, bracketing outwards from ``start``.

    The bracket ``start -/+ step`` doubles until it holds a sign change or reaches
    ``limits``; an unattainable target gives a readable ValueError.
    """
    low, high = max(start - step, limits[0]), min(start + step, limits[1])
    f_low, f_high = func(low), func(high)
    while f_low > 0.0 and low > limits[0]:
        step *= 2.0
        low, high, f_high = max(start - step, limits[0]), low, f_low
        f_low = func(low)
    while f_high < 0.0 and high < limits[1]:
        step *= 2.0
        low, high, f_low = high, min(start + step, limits[1]), f_high
        f_high = func(high)
    if not (f_low <= 0.0 <= f_high):
        raise ValueError(
            f"Cannot solve the {what} for this cohort: the target is not attainable "
            f"(the gap to the target ranges from {f_low:+.4g} to {f_high:+.4g}). "
            "Choose a less extreme target rate."
        )
    return float(brentq(func, low, high, xtol=xtol, rtol=1e-12, maxiter=200))


def _solve_logit(lp: FloatArray, target: float, what: str) -> float:
    """Intercept b such that mean(expit(b + lp)) equals ``target``."""
    return _solve(lambda b: float(np.mean(expit(b + lp))) - target, 0.0, 4.0, (-40.0, 40.0), what)


def _gauss_legendre(horizon: float, n_nodes: int) -> tuple[FloatArray, FloatArray]:
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    return 0.5 * horizon * (x + 1.0), 0.5 * horizon * w


def _cumulative_incidence(
    a_fx: FloatArray, b_death: FloatArray, horizon: float, n_nodes: int = 24
) -> tuple[FloatArray, FloatArray]:
    """True fracture and death cumulative incidence at ``horizon`` years, per patient.

    ``a_fx = h0 * exp(LP_fx)`` and ``b_death = exp(intercept + LP_death)``. The
    cause-specific hazards are ``a_fx * (1 + 1.6 exp(-t / 1.5))`` and
    ``b_death * exp(0.11 t)``; CIF_k(tau) = int_0^tau h_k(t) S(t) dt by Gauss-Legendre.
    """
    t, w = _gauss_legendre(horizon, n_nodes)
    big_h_fx = t + 2.4 * (1.0 - np.exp(-t / 1.5))  # H_fx(t) / a
    big_h_d = np.expm1(0.11 * t) / 0.11  # H_death(t) / b
    surv = np.exp(-(a_fx[:, None] * big_h_fx + b_death[:, None] * big_h_d))
    cif_fx = a_fx * (surv @ (w * (1.0 + 1.6 * np.exp(-t / 1.5))))
    cif_d = b_death * (surv @ (w * np.exp(0.11 * t)))
    return cif_fx, cif_d


def _solve_hazards(
    exp_lp_fx: FloatArray, exp_lp_d: FloatArray, fx_target: float
) -> tuple[float, float]:
    """Solve h0 (1-year fracture CIF) and the death intercept (5-year death CIF) jointly.

    The two targets interact through the competing risk, so each is solved by
    ``brentq`` given the other, alternating until both are stable.
    """
    # 10 and 16 nodes give the cohort-mean CIFs to better than 1e-9 at these horizons
    t1, w1 = _gauss_legendre(1.0, 10)
    h1 = t1 + 2.4 * (1.0 - np.exp(-t1 / 1.5))
    d1 = np.expm1(0.11 * t1) / 0.11
    g1 = w1 * (1.0 + 1.6 * np.exp(-t1 / 1.5))
    t5, w5 = _gauss_legendre(5.0, 16)
    h5 = t5 + 2.4 * (1.0 - np.exp(-t5 / 1.5))
    d5 = np.expm1(0.11 * t5) / 0.11
    g5 = w5 * np.exp(0.11 * t5)

    def fx_gap(log_h0: float, b0: float) -> float:
        a = math.exp(log_h0) * exp_lp_fx
        b = math.exp(b0) * exp_lp_d
        s = np.exp(-(a[:, None] * h1 + b[:, None] * d1))
        return float(np.mean(a * (s @ g1))) - fx_target

    def death_gap(b0: float, log_h0: float) -> float:
        a = math.exp(log_h0) * exp_lp_fx
        b = math.exp(b0) * exp_lp_d
        s = np.exp(-(a[:, None] * h5 + b[:, None] * d5))
        return float(np.mean(b * (s @ g5))) - _DEATH_CIF_5Y_TARGET

    log_h0, b0, step = math.log(_START["fracture_h0"]), _START["death_log_hazard"], 0.5
    for _ in range(20):
        new_b0 = _solve(
            partial(death_gap, log_h0=log_h0), b0, step, (-30.0, -4.0), "death intercept", 1e-9
        )
        new_h0 = _solve(partial(fx_gap, b0=new_b0), log_h0, step, (-20.0, 1.0), "fracture h0", 1e-9)
        change = max(abs(new_b0 - b0), abs(new_h0 - log_h0))
        log_h0, b0 = new_h0, new_b0
        if change < 1e-7:
            break
        step = min(0.5, 4.0 * change)
    return math.exp(log_h0), b0


def _solve_treatment(lp_aug: FloatArray, lp_fix: FloatArray, rate: float) -> tuple[float, float]:
    """Intercepts of the treatment multinomial logit (augmentation, fixation vs conservative).

    Solved so that the mean true probabilities equal ``rate`` and the fixation share,
    alternating ``brentq`` on each intercept given the other.
    """

    def share(b: float, lp: FloatArray, other: FloatArray) -> FloatArray:
        e = np.exp(b + lp)
        return e / (1.0 + e + other)

    def aug_gap(b: float, e_fix: FloatArray) -> float:
        return float(np.mean(share(b, lp_aug, e_fix))) - rate

    def fix_gap(b: float, e_aug: FloatArray) -> float:
        return float(np.mean(share(b, lp_fix, e_aug))) - _FIXATION_RATE

    aug0, fix0 = -1.6, -3.8
    for _ in range(200):
        e_fix = np.exp(fix0 + lp_fix)
        new_aug = _solve(partial(aug_gap, e_fix=e_fix), aug0, 1.0, (-40.0, 40.0), "augmentation")
        e_aug = np.exp(new_aug + lp_aug)
        new_fix = _solve(partial(fix_gap, e_aug=e_aug), fix0, 1.0, (-40.0, 40.0), "fixation")
        change = max(abs(new_aug - aug0), abs(new_fix - fix0))
        aug0, fix0 = new_aug, new_fix
        if change < 1e-10:
            break
    return aug0, fix0


def _fracture_time(a_fx: FloatArray, e: FloatArray) -> FloatArray:
    """Invert H_fx(t) = a (t + 2.4 (1 - exp(-t / 1.5))) = e by vectorised Newton steps.

    H is increasing and concave, so Newton from a start left of the root increases
    monotonically to it; ``max(y / 2.6, y - 2.4)`` is such a start.
    """
    y = e / a_fx
    t = np.maximum(y / 2.6, y - 2.4)
    for _ in range(60):
        decay = np.exp(-t / 1.5)
        step = (t + 2.4 * (1.0 - decay) - y) / (1.0 + 1.6 * decay)
        t = t - step
        if np.max(np.abs(step) / (1.0 + t)) < 1e-13:
            break
    return t


def _flip(
    u: FloatArray, pick: FloatArray, codes: npt.NDArray[np.intp], k: int, rate: float
) -> npt.NDArray[np.intp]:
    """Replace a share ``rate`` of codes by a different category, uniformly at random."""
    shift = 1 + np.minimum((pick * (k - 1)).astype(np.intp), k - 2)
    return np.where(u < rate, (codes + shift) % k, codes)


# -- parameter validation ----------------------------------------------------------------
