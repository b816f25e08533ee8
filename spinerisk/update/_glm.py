"""Offset likelihoods of the updating hierarchy, their maximisation and the tests.

Every updating step adds terms to the fitted model's own score, which stays fixed as an
offset (``base``):

* ``keep``: nothing is added;
* ``intercept``: ``+ alpha``;
* ``recalibrate``: ``+ alpha + gamma * eta`` (the slope on the linear predictor is
  ``1 + gamma``);
* ``revise``: ``+ alpha + gamma * eta + Z @ delta`` (a linear term per column of a
  standardised design ``Z``, shrunk towards 0 by a ridge penalty when revising).

Three likelihoods take that score:

* ``binomial``: ``P(y=1) = mean_k expit(s_k)``, one score per calibration fold ``k``
  (a single fold for logistic regression);
* ``poisson``: the full likelihood of a proportional-hazards model whose baseline
  shape is kept: ``d ~ Poisson(exp(s))`` with ``base = log H(t_i | x_i)`` (Crowson,
  Atkinson and Therneau 2016); it differs from the survival likelihood only by terms
  that no update parameter touches, so likelihood ratios are exact;
* ``aft``: ``log T = s + scale * Z`` with the model's error distribution and scale.

The nested fits give the likelihood-ratio tests of the closed testing procedure
(Vergouwe et al., Stat Med 2017).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

FloatArray = npt.NDArray[np.float64]

#: Updating levels in order of extent, each nested in the next.
LEVELS = ("keep", "intercept", "recalibrate", "revise")
#: Ridge added to every coefficient so that separated or collinear designs still give a
#: finite, unique maximum (its effect on the likelihood is negligible).
_TINY = 1e-4
_MAX_ITER = 200


@dataclass(frozen=True)
class Design:
    """Site records in the form every update level is fitted on.

    Attributes
    ----------
    family : {"binomial", "poisson", "aft"}
    y : ndarray of shape (n,)
        Outcome (binomial) or event indicator of the modelled cause (poisson, aft).
    base : ndarray of shape (n, k)
        The fitted model's score per record and calibration fold (offset).
    eta : ndarray of shape (n, k)
        Linear predictor whose slope is recalibrated.
    Z : ndarray of shape (n, q)
        Standardised revision design (q may be 0).
    log_time : ndarray of shape (n,) or None
        AFT only: log follow-up days.
    scale, distribution
        AFT only: the model's scale and error distribution.
    """

    family: str
    y: FloatArray
    base: FloatArray
    eta: FloatArray
    Z: FloatArray
    log_time: FloatArray | None = None
    scale: float = 1.0
    distribution: str = "normal"
    weights: FloatArray | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: npt.NDArray[np.intp]) -> Design:
        """The records at ``rows``."""
        return replace(
            self,
            y=self.y[rows],
            base=self.base[rows],
            eta=self.eta[rows],
            Z=self.Z[rows],
            log_time=None if self.log_time is None else self.log_time[rows],
        )

    def with_outcome(self, y: FloatArray, log_time: FloatArray | None = None) -> Design:
        """The same records with another outcome (a simulated one)."""
        return replace(self, y=y, log_time=self.log_time if log_time is None else log_time)

    def columns(self, level: str) -> list[FloatArray]:
        """Design matrix per fold for ``level`` (shape (n, p) each)."""
        n, k = self.base.shape
        ones = np.ones((n, 1))
        out = []
        for j in range(k):
            parts = {
                "keep": [np.empty((n, 0))],
                "intercept": [ones],
                "recalibrate": [ones, self.eta[:, j : j + 1]],
                "revise": [ones, self.eta[:, j : j + 1], self.Z],
            }[level]
            out.append(np.hstack(parts))
        return out

    def rank(self, level: str) -> int:
        """Number of identifiable parameters of ``level`` (collinear columns count once)."""
        X = self.columns(level)[0]
        if X.shape[1] == 0:
            return 0
        if self.family == "aft":  # the scale is re-estimated with the location
            return 1 + replace(self, family="poisson").rank(level)
        sd = X.std(axis=0)
        keep = sd > 1e-12
        keep[0] = True  # the intercept
        X = X[:, keep]
        Xc = np.hstack([X[:, :1], X[:, 1:] - X[:, 1:].mean(axis=0)])
        norms = np.linalg.norm(Xc, axis=0)
        return int(np.linalg.matrix_rank(Xc / np.where(norms > 0, norms, 1.0), tol=1e-8))


@dataclass(frozen=True)
class Fit:
    """One maximised level: coefficients ``[alpha, gamma, delta...]`` (as many as the
    level has) and the log-likelihood at the maximum (penalty excluded)."""

    level: str
    coef: FloatArray
    loglik: float
    penalty: float = 0.0
    scale: float | None = None  # AFT: the re-estimated scale (None: the model's)

    @property
    def alpha(self) -> float:
        return float(self.coef[0]) if self.coef.size else 0.0

    @property
    def slope(self) -> float:
        return 1.0 + float(self.coef[1]) if self.coef.size > 1 else 1.0

    @property
    def delta(self) -> FloatArray:
        return self.coef[2:] if self.coef.size > 2 else np.zeros(0)


# -- per-record log-likelihood and derivatives on the score ------------------------------
def _aft_terms(z: FloatArray, d: FloatArray, dist: str) -> tuple[FloatArray, ...]:
    """log-likelihood, first and second derivative in ``z`` per record."""
    if dist == "normal":
        log_s = special.log_ndtr(-z)
        mills = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_s)
        ll = np.where(d > 0, -0.5 * z**2, log_s)
        g = np.where(d > 0, -z, -mills)
        h = np.where(d > 0, -1.0, -mills * (mills - z))
    elif dist == "logistic":
        sig = special.expit(z)
        ll = np.where(d > 0, z - 2.0 * np.logaddexp(0.0, z), -np.logaddexp(0.0, z))
        g = np.where(d > 0, 1.0 - 2.0 * sig, -sig)
        h = np.where(d > 0, -2.0, -1.0) * sig * (1.0 - sig)
    else:  # extreme value (Weibull times)
        ez = np.exp(np.minimum(z, 700.0))
        ll = np.where(d > 0, z - ez, -ez)
        g = np.where(d > 0, 1.0 - ez, -ez)
        h = -ez
    return ll, g, h


def _single(design: Design, s: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """Log-likelihood, gradient and minus the second derivative in ``s`` (one fold)."""
    y = design.y
    if design.family == "binomial":
        p = special.expit(s)
        return float(np.sum(y * s - np.logaddexp(0.0, s))), y - p, p * (1.0 - p)
    if design.family == "poisson":
        mu = np.exp(np.minimum(s, 700.0))
        return float(np.sum(y * s - mu)), y - mu, mu
    assert design.log_time is not None
    sigma = design.scale
    z = (design.log_time - s) / sigma
    ll, g, h = _aft_terms(z, y, design.distribution)
    loglik = float(np.sum(ll) - np.sum(y) * np.log(sigma))
    return loglik, -g / sigma, -h / sigma**2


def _binomial_mixture(s: FloatArray, y: FloatArray) -> tuple[float, FloatArray]:
    """Log-likelihood of ``mean_k expit(s_k)`` and its gradient in each ``s_k``."""
    k = s.shape[1]
    log_p = special.logsumexp(-np.logaddexp(0.0, -s), axis=1) - np.log(k)
    log_q = special.logsumexp(-np.logaddexp(0.0, s), axis=1) - np.log(k)
    ll = float(np.sum(np.where(y > 0, log_p, log_q)))
    sig = special.expit(s)
    dp = sig * (1.0 - sig) / k  # d p / d s_k
    factor = np.where(y > 0, -log_p, -log_q)  # 1/p or 1/(1-p), in logs
    sign = np.where(y > 0, 1.0, -1.0)
    grad = sign[:, None] * dp * np.exp(factor)[:, None]
    return ll, grad


# -- maximisation -------------------------------------------------------------------------
def fit_level(
    design: Design, level: str, *, penalty: float = 0.0, start: FloatArray | None = None
) -> Fit:
    """Maximise the likelihood of ``level`` (ridge ``penalty / 2 * |delta|^2``).

    Newton-Raphson with step halving for one fold (the three likelihoods are concave in
    the coefficients); L-BFGS for a binomial ensemble of several folds. An AFT model's
    baseline distribution has a location and a scale: every level but ``keep``
    re-estimates the scale too (profiled, on a log scale within a factor of 20).
    """
    if design.family == "aft" and level != "keep":
        return _profile_scale(design, level, penalty, start)
    return _fit_fixed(design, level, penalty, start)


def _fit_fixed(design: Design, level: str, penalty: float, start: Any) -> Fit:
    """``fit_level`` with the AFT scale held at ``design.scale``."""
    Xs = design.columns(level)
    p = Xs[0].shape[1]
    if p == 0:
        return Fit(level, np.zeros(0), _loglik(design, Xs, np.zeros(0)))
    ridge = np.full(p, _TINY)
    ridge[2:] += penalty
    beta = np.zeros(p) if start is None else np.asarray(start, dtype=float).copy()
    if design.base.shape[1] > 1:
        beta = _lbfgs(design, Xs, ridge, beta)
    else:
        beta = _newton(design, Xs[0], ridge, beta)
    return Fit(level, beta, _loglik(design, Xs, beta), penalty)


def _profile_scale(design: Design, level: str, penalty: float, start: Any) -> Fit:
    fits: dict[float, Fit] = {}

    def negative(log_scale: float) -> float:
        fit = _fit_fixed(replace(design, scale=float(np.exp(log_scale))), level, penalty, start)
        fits[log_scale] = fit
        return -fit.loglik

    centre = float(np.log(design.scale))
    found = optimize.minimize_scalar(
        negative, bounds=(centre - 3.0, centre + 3.0), method="bounded", options={"xatol": 1e-5}
    )
    best = fits.get(found.x) or _fit_fixed(
        replace(design, scale=float(np.exp(found.x))), level, penalty, start
    )
    return replace(best, scale=float(np.exp(found.x)))


def _loglik(design: Design, Xs: list[FloatArray], beta: FloatArray) -> float:
    s = np.column_stack([design.base[:, j] + X @ beta for j, X in enumerate(Xs)])
    if design.base.shape[1] > 1:
        return _binomial_mixture(s, design.y)[0]
    return _single(design, s[:, 0])[0]


def _newton(design: Design, X: FloatArray, ridge: FloatArray, beta: FloatArray) -> FloatArray:
    base = design.base[:, 0]

    def objective(b: FloatArray) -> float:
        return _single(design, base + X @ b)[0] - 0.5 * float(np.sum(ridge * b**2))

    current = objective(beta)
    for _ in range(_MAX_ITER):
        _, g, w = _single(design, base + X @ beta)
        grad = X.T @ g - ridge * beta
        hess = X.T @ (X * w[:, None])
        hess[np.diag_indices_from(hess)] += ridge
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while True:
            trial = beta + t * step
            value = objective(trial)
            if value >= current - 1e-12 or t < 1e-8:
                break
            t /= 2.0
        gain = value - current
        beta, current = trial, value
        if gain < 1e-7:
            break  # converged (a separated design creeps on with ever smaller gains)
    return beta


def _lbfgs(design: Design, Xs: list[FloatArray], ridge: FloatArray, beta: FloatArray) -> Any:
    def negative(b: FloatArray) -> tuple[float, FloatArray]:
        s = np.column_stack([design.base[:, j] + X @ b for j, X in enumerate(Xs)])
        ll, g = _binomial_mixture(s, design.y)
        grad = sum(X.T @ g[:, j] for j, X in enumerate(Xs)) - ridge * b
        return -(ll - 0.5 * float(np.sum(ridge * b**2))), -grad

    found = optimize.minimize(
        negative,
        beta,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-14},
    )
    return found.x


# -- tests ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LRTest:
    """One likelihood-ratio test of a smaller level against a larger one."""

    smaller: str
    larger: str
    statistic: float
    df: int
    p_value: float
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": f"{self.larger} vs {self.smaller}",
            "statistic": round(float(self.statistic), 6),
            "df": int(self.df),
            "p_value": float(self.p_value),
            "reference": self.reference,
        }


#: Most simulated outcome sets of the parametric-bootstrap reference distribution; the
#: simulation stops early once :data:`STOP_AFTER` simulated statistics reach the observed
#: one (the p-value is then clearly above any usual level).
N_SIMULATIONS = 99
STOP_AFTER = 10
#: The chi-squared reference is used when events and non-events both number at least
#: this many per degree of freedom of the test; below it, the parametric bootstrap.
EVENTS_PER_DF = 10


def _simulate(design: Design, fit: Fit, rng: np.random.Generator) -> Design:
    """Outcomes drawn from the fitted ``fit`` (the null model), follow-up kept as the
    potential censoring time."""
    if fit.scale is not None:
        design = replace(design, scale=fit.scale)
    X = design.columns(fit.level)[0]
    s = design.base[:, 0] + X @ fit.coef
    if design.family == "binomial":
        return design.with_outcome((rng.random(len(s)) < special.expit(s)).astype(float))
    if design.family == "poisson":
        hit = rng.random(len(s)) < -np.expm1(-np.exp(np.minimum(s, 700.0)))
        return design.with_outcome(hit.astype(float))
    assert design.log_time is not None
    if design.distribution == "normal":
        z = rng.standard_normal(len(s))
    elif design.distribution == "logistic":
        z = rng.logistic(size=len(s))
    else:
        z = np.log(rng.exponential(size=len(s)))  # minimum extreme value
    log_t = s + design.scale * z
    hit = log_t <= design.log_time
    return design.with_outcome(hit.astype(float), np.where(hit, log_t, design.log_time))


def lr_test(
    design: Design,
    small: Fit,
    large: Fit,
    *,
    reference: str = "auto",
    rng: np.random.Generator | None = None,
) -> LRTest:
    """Likelihood-ratio statistic ``2 (l_large - l_small)`` and its p-value.

    The degrees of freedom are the difference in identifiable parameters. With
    ``reference="auto"`` the p-value comes from the chi-squared distribution when events
    and non-events each number at least :data:`EVENTS_PER_DF` per degree of freedom, and
    otherwise from a parametric bootstrap: up to :data:`N_SIMULATIONS` outcome sets drawn
    from the smaller fitted model, each refitted at both levels, stopping once
    :data:`STOP_AFTER` of them reach the observed statistic (Besag and Clifford's
    sequential p-value). The chi-squared approximation over-rejects badly with many
    revision terms and few events.
    """
    df = design.rank(large.level) - design.rank(small.level)
    stat = max(0.0, 2.0 * (large.loglik - small.loglik))
    if df <= 0:
        return LRTest(small.level, large.level, stat, df, 1.0, "none")
    events = float(design.y.sum())
    fewest = min(events, len(design) - events)
    if reference == "auto":
        reference = "chi2" if fewest >= EVENTS_PER_DF * df else "bootstrap"
    if reference == "chi2":
        return LRTest(small.level, large.level, stat, df, float(stats.chi2.sf(stat, df)), "chi2")
    rng = np.random.default_rng(0) if rng is None else rng
    exceed = 0
    for done in range(1, N_SIMULATIONS + 1):
        sim = _simulate(design, small, rng)
        s0 = fit_level(sim, small.level, start=small.coef)
        s1 = fit_level(sim, large.level, start=_extend(s0.coef, large.coef.size))
        exceed += 2.0 * (s1.loglik - s0.loglik) >= stat
        if exceed == STOP_AFTER:  # sequential Monte Carlo p-value (Besag and Clifford 1991)
            p = STOP_AFTER / done
            break
    else:
        p = (1.0 + exceed) / (N_SIMULATIONS + 1.0)
    return LRTest(
        small.level, large.level, stat, df, p, f"parametric bootstrap ({done} simulations)"
    )


def _extend(coef: FloatArray, size: int) -> FloatArray:
    out = np.zeros(size)
    out[: coef.size] = coef
    return out


def closed_test(
    design: Design, alpha: float = 0.05, *, reference: str = "auto", random_state: int = 0
) -> tuple[str, list[LRTest], dict[str, Fit]]:
    """The closed testing procedure of Vergouwe et al. (2017).

    The most extensive level (revision) is tested against the original model; if the
    difference is not significant the model is kept. Otherwise revision is tested
    against recalibration-in-the-large, then against recalibration; the first level it
    does not beat is chosen, and revision when it beats both.

    Returns
    -------
    level : str
    tests : list of LRTest
        The tests that were run, in order.
    fits : dict
        The maximum-likelihood fit of every level.
    """
    fits: dict[str, Fit] = {}
    previous: Fit | None = None
    for level in LEVELS:
        start = None
        if previous is not None:
            start = _extend(previous.coef, design.columns(level)[0].shape[1])
        fits[level] = previous = fit_level(design, level, start=start)
    rng = np.random.default_rng(random_state)
    tests: list[LRTest] = []
    for level in ("keep", "intercept", "recalibrate"):
        test = lr_test(design, fits[level], fits["revise"], reference=reference, rng=rng)
        tests.append(test)
        if test.df == 0 or test.p_value >= alpha:
            return level, tests, fits
    return "revise", tests, fits


# -- non-negative refit (the weights of a stacked model) ------------------------------------
def fit_nonnegative(design: Design, X: FloatArray, free: int = 1) -> tuple[FloatArray, float]:
    """Maximise the likelihood of ``base + X @ coef`` (one fold) with every coefficient
    but the first ``free`` ones non-negative (L-BFGS-B); the coefficients and the
    log-likelihood."""
    base = design.base[:, 0]
    ridge = np.full(X.shape[1], _TINY)

    def negative(b: FloatArray) -> tuple[float, FloatArray]:
        ll, g, _ = _single(design, base + X @ b)
        return -(ll - 0.5 * float(np.sum(ridge * b**2))), -(X.T @ g - ridge * b)

    bounds = [(None, None)] * free + [(0.0, None)] * (X.shape[1] - free)
    found = optimize.minimize(
        negative,
        np.zeros(X.shape[1]),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-14},
    )
    return found.x, _single(design, base + X @ found.x)[0]


# -- penalised revision ----------------------------------------------------------------------
#: Ridge penalties tried for revision, on the scale of the summed log-likelihood of a
#: standardised design.
PENALTY_GRID: tuple[float, ...] = tuple(float(x) for x in np.logspace(-1, 5, 13))


def choose_penalty(
    design: Design, splits: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]
) -> tuple[float, dict[float, float]]:
    """Ridge penalty of the revision terms, by cross-validated log-likelihood with the
    one-standard-error rule.

    ``splits`` are (train, test) row indices (for example from ``StratifiedKFold``);
    intercept and slope are re-estimated in every fold, unpenalised. The penalty chosen
    is the largest whose mean held-out log-likelihood per fold is within one standard
    error of the best (Breiman's rule, as glmnet's ``lambda.1se``): a revision moves the
    coefficients away from the original only as far as the site clearly supports.
    """
    per_fold: dict[float, FloatArray] = {}
    for lam in PENALTY_GRID:
        values = []
        for train, test in splits:
            fitted = fit_level(design.take(train), "revise", penalty=lam)
            held = design.take(test)
            values.append(_loglik(held, held.columns("revise"), fitted.coef))
        per_fold[lam] = np.asarray(values)
    means = {lam: float(v.mean()) for lam, v in per_fold.items()}
    best = max(means, key=lambda lam: (means[lam], lam))
    spread = per_fold[best] - per_fold[best].mean()
    se = float(np.sqrt(np.sum(spread**2) / max(1, len(spread) - 1) / len(spread)))
    chosen = max(lam for lam in PENALTY_GRID if means[lam] >= means[best] - se)
    return chosen, {lam: float(v.sum()) for lam, v in per_fold.items()}
