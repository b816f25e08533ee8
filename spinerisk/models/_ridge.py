"""Ridge (L2) logistic and Cox regression paths in numpy, and the losses the default
model is tuned and stacked on.

Small, exact Newton solvers for the candidates of ``RiskModel(backend="auto")``: the
matrices are clinical (hundreds to thousands of records, tens to a few hundred columns),
where one Newton step costs ``O(n p^2)`` and a whole penalty path with warm starts takes
milliseconds. Both minimise the mean loss per record plus ``lam / 2 * ||beta||^2`` on
standardised columns (the intercept of the logistic model is not penalised).

The Cox partial likelihood uses Breslow's handling of tied times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

FloatArray = npt.NDArray[np.float64]

#: Penalty grid of the default's ridge candidates (mean loss per record + lam/2 ||b||^2 on
#: standardised columns), strongest first so that each fit starts from the previous one.
LAMBDAS = np.logspace(1, -4, 11)
#: A path stops once its held-out deviance has risen for this many penalties in a row.
PATIENCE = 3
_MAX_NEWTON = 60
_TOL = 1e-8


# -- logistic ---------------------------------------------------------------------------------
def logistic_loss(y: FloatArray, eta: FloatArray) -> float:
    """Mean log loss of outcomes ``y`` (0/1) given log-odds ``eta``."""
    return float(np.mean(np.logaddexp(0.0, eta) - y * eta))


def ridge_logistic_path(
    D: FloatArray,
    y: FloatArray,
    lambdas: FloatArray = LAMBDAS,
    held_out: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Ridge logistic regression for every penalty in ``lambdas`` (warm-started in order).

    Parameters
    ----------
    D : ndarray of shape (n, p)
        Standardised design (no intercept column).
    y : ndarray of shape (n,)
        0/1 outcomes.
    lambdas : ndarray of shape (k,)
        Penalties, strongest first.
    held_out : (D, y) or None, default=None
        Held-out records: the path stops once their deviance has risen for
        :data:`PATIENCE` penalties in a row (the rest of the path is NaN).

    Returns
    -------
    intercepts : ndarray of shape (k,)
    coefs : ndarray of shape (k, p)
    """
    n, p = D.shape
    A = np.hstack([np.ones((n, 1)), D])
    mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta = np.zeros(p + 1)
    beta[0] = np.log(mean / (1 - mean))
    out = np.full((len(lambdas), p + 1), np.nan)
    pen = np.ones(p + 1)
    pen[0] = 0.0
    watch = _Watch(
        None
        if held_out is None
        else lambda b: logistic_loss(held_out[1], held_out[0] @ b[1:] + b[0])
    )

    for i, lam in enumerate(lambdas):

        def objective(b: FloatArray, lam: float = float(lam)) -> float:
            return logistic_loss(y, A @ b) + 0.5 * lam * float(np.sum(pen * b * b))

        f = objective(beta)
        for _ in range(_MAX_NEWTON):
            eta = A @ beta
            mu = expit(eta)
            grad = A.T @ (mu - y) / n + lam * pen * beta
            w = mu * (1.0 - mu)
            hess = (A.T * w) @ A / n
            hess[np.diag_indices_from(hess)] += lam * pen + 1e-10
            step = np.linalg.solve(hess, grad)
            beta, f, done = _line_search(objective, beta, step, f, grad)
            if done:
                break
        out[i] = beta
        if watch.stop(beta):
            break
    return out[:, 0].copy(), out[:, 1:].copy()


class _Watch:
    """Stops a penalty path once the held-out loss has risen PATIENCE times in a row."""

    def __init__(self, loss: object) -> None:
        self.loss = loss
        self.best = np.inf
        self.worse = 0

    def stop(self, beta: FloatArray) -> bool:
        if self.loss is None:
            return False
        value = float(self.loss(beta))  # type: ignore[operator]
        if value < self.best:
            self.best, self.worse = value, 0
        else:
            self.worse += 1
        return self.worse >= PATIENCE


def _line_search(
    objective: object, beta: FloatArray, step: FloatArray, f: float, grad: FloatArray
) -> tuple[FloatArray, float, bool]:
    """A damped Newton step: halve until the objective does not increase."""
    t = 1.0
    decrease = float(grad @ step)
    for _ in range(40):
        trial = beta - t * step
        ft = objective(trial)  # type: ignore[operator]
        if np.isfinite(ft) and ft <= f - 1e-4 * t * decrease + 1e-15:
            done = t * float(np.max(np.abs(step), initial=0.0)) < 1e-7 or abs(f - ft) < _TOL
            return trial, ft, done
        t *= 0.5
    return beta, f, True  # no further progress possible


# -- Cox (Breslow ties) -----------------------------------------------------------------------
class CoxData:
    """Records sorted by time with their risk-set boundaries (Breslow ties).

    ``first[i]`` is the first sorted position whose time is >= the i-th sorted time, so
    the risk set of an event at that time is ``first[i]:``.
    """

    def __init__(self, time: FloatArray, event: npt.NDArray[np.bool_]) -> None:
        self.order = np.argsort(time, kind="stable")
        self.time = np.asarray(time, dtype=float)[self.order]
        self.event = np.asarray(event, dtype=float)[self.order]
        self.first = np.searchsorted(self.time, self.time, side="left")
        self.n = len(self.time)
        self.n_events = float(self.event.sum())

    def loglik(self, eta_sorted: FloatArray) -> float:
        """Log partial likelihood (sum over events) of sorted linear predictors."""
        if self.n_events == 0:
            return 0.0
        shift = float(np.max(eta_sorted))
        w = np.exp(eta_sorted - shift)
        s0 = np.cumsum(w[::-1])[::-1][self.first]
        ev = self.event > 0
        return float(np.sum(self.event[ev] * (eta_sorted[ev] - shift - np.log(s0[ev]))))


def cox_partial_deviance(
    time: FloatArray, event: npt.NDArray[np.bool_], eta: FloatArray, strata: npt.NDArray[np.intp]
) -> float:
    """Minus twice the log partial likelihood of ``eta``, with risk sets within each
    stratum (for out-of-fold scores: the fold), per event."""
    total, events = 0.0, 0.0
    for s in np.unique(strata):
        rows = strata == s
        data = CoxData(time[rows], event[rows])
        total += data.loglik(eta[rows][data.order])
        events += data.n_events
    return -2.0 * total / max(events, 1.0)


def ridge_cox_path(
    D: FloatArray,
    time: FloatArray,
    event: npt.NDArray[np.bool_],
    lambdas: FloatArray = LAMBDAS,
    held_out: tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]] | None = None,
) -> FloatArray:
    """Ridge Cox regression (Breslow ties) for every penalty in ``lambdas``.

    Minimises ``-loglik / n + lam / 2 * ||beta||^2``. Returns coefficients of shape
    ``(k, p)`` on the columns of ``D`` (standardised, no intercept). With ``held_out``
    ``(D, time, event)``, the path stops once their partial-likelihood deviance has
    risen for :data:`PATIENCE` penalties in a row (the rest is NaN).
    """
    data = CoxData(time, event)
    X = D[data.order]
    n, p = X.shape
    d = data.event
    ev = d > 0
    beta = np.zeros(p)
    out = np.full((len(lambdas), p), np.nan)
    if not ev.any():
        out[:] = 0.0
        return out
    test = None if held_out is None else CoxData(held_out[1], held_out[2])
    watch = _Watch(
        None
        if held_out is None or test is None or test.n_events == 0
        else lambda b: -test.loglik((held_out[0] @ b)[test.order])
    )

    for i, lam in enumerate(lambdas):

        def objective(b: FloatArray, lam: float = float(lam)) -> float:
            return -data.loglik(X @ b) / n + 0.5 * lam * float(b @ b)

        f = objective(beta)
        for _ in range(_MAX_NEWTON):
            eta = X @ beta
            w = np.exp(eta - eta.max())
            wx = w[:, None] * X
            s0 = np.cumsum(w[::-1])[::-1][data.first]
            s1 = np.cumsum(wx[::-1], axis=0)[::-1][data.first]
            xbar = s1 / s0[:, None]
            grad = -(d[:, None] * (X - xbar)).sum(axis=0) / n + lam * beta
            # sum over events of (weighted second moment of the risk set - xbar xbar^T):
            # record j belongs to the risk set of every event at a time <= its own time
            incr = np.zeros(n)
            np.add.at(incr, data.first[ev], d[ev] / s0[ev])
            a = np.cumsum(incr)
            hess = (X.T * (w * a)) @ X - (xbar[ev].T * d[ev]) @ xbar[ev]
            hess = hess / n
            hess[np.diag_indices_from(hess)] += lam + 1e-10
            step = np.linalg.solve(hess, grad)
            beta, f, done = _line_search(objective, beta, step, f, grad)
            if done:
                break
        out[i] = beta
        if watch.stop(beta):
            break
    return out


# -- choosing the penalty ---------------------------------------------------------------------
def warm_path(lam: FloatArray) -> FloatArray:
    """The grid down to ``lam`` (warm starts reach a weak penalty reliably)."""
    return np.concatenate([LAMBDAS[LAMBDAS > lam[0]], lam])


def cox_fold_scores(
    D: FloatArray, time: FloatArray, event: npt.NDArray[np.bool_], train: Any, test: Any
) -> FloatArray:
    """Held-out scores of the ridge Cox path fitted on ``train``: shape
    ``(len(test), len(LAMBDAS))``, NaN beyond where the path stopped early."""
    coef = ridge_cox_path(
        D[train], time[train], event[train], held_out=(D[test], time[test], event[test])
    )
    return D[test] @ coef.T


def stratified_folds(
    strata: npt.NDArray[Any], groups: npt.NDArray[Any], n_splits: int, seed: int
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    """Stratified folds that keep the copies of a record together.

    Without repeats, scikit-learn's ``StratifiedKFold`` on the records. When records
    repeat (a bootstrap resample; ``groups`` labels the copies of a record, which share
    its stratum), the distinct records, in the order they first appear, are split by
    ``StratifiedKFold`` and every copy follows its record: what ``StratifiedGroupKFold``
    aims at, without its search over groups (a third of a bootstrap refit of the linear
    model on 1,000 records). The one splitter of every grouped fit in the library.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    labels, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    if len(labels) == len(groups):
        return [(tr, te) for tr, te in splitter.split(np.zeros(len(strata)), strata)]
    order = np.argsort(first)  # the records in the order they first appear
    fold_of = np.empty(len(labels), dtype=np.intp)
    distinct = np.asarray(strata)[first[order]]
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(order)), distinct)):
        fold_of[order[test]] = k
    row_fold = fold_of[np.ravel(inverse)]
    return [(np.flatnonzero(row_fold != k), np.flatnonzero(row_fold == k)) for k in range(n_splits)]


def fold_labels(
    splits: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]], n: int
) -> npt.NDArray[np.intp]:
    """Each of ``n`` records' fold: the index of the split that holds it out."""
    labels = np.empty(n, dtype=np.intp)
    for k, (_, test) in enumerate(splits):
        labels[test] = k
    return labels


def lowest_deviance(oof: FloatArray, deviance: Callable[[FloatArray], float]) -> int:
    """Index of the penalty whose out-of-fold scores have the lowest ``deviance``.

    ``oof`` has one column of out-of-fold scores per penalty of :data:`LAMBDAS` (NaN where
    a fold's path stopped early); only penalties every fold reached compete. Not the
    "one standard error" rule, which over-shrinks by design.
    """
    complete = np.asarray(~np.isnan(oof).any(axis=0), dtype=bool)
    values = np.array([deviance(oof[:, j]) if complete[j] else np.inf for j in range(oof.shape[1])])
    values[~np.isfinite(values)] = np.inf
    return int(np.argmin(values))


def cox_penalty_cv(
    D: FloatArray, time: FloatArray, event: npt.NDArray[np.bool_], folds: npt.NDArray[np.intp]
) -> tuple[float, FloatArray]:
    """The ridge Cox penalty of :data:`LAMBDAS` with the lowest pooled out-of-fold
    partial-likelihood deviance (risk sets within each fold), on standardised ``D``, and
    the coefficients of every record's fit at that penalty.

    ``folds`` gives each record's fold. The penalty is on the scale of
    :func:`ridge_cox_path` (mean loss per record plus ``lam / 2 * ||beta||^2``), which is
    lifelines' ``penalizer`` on its standardised columns. BLAS runs on one thread here:
    the path's matrices are small, and more threads spin more than they compute (on
    3,000 records of 30 columns, 0.40 s of wall time on one thread and 0.77 s on two).
    """
    from threadpoolctl import threadpool_limits

    oof = np.full((len(time), len(LAMBDAS)), np.nan)
    with threadpool_limits(limits=1, user_api="blas"):
        for k in np.unique(folds):
            test, train = folds == k, folds != k
            oof[test] = cox_fold_scores(D, time, event, train, test)
        best = lowest_deviance(oof, lambda s: cox_partial_deviance(time, event, s, folds))
        lam = LAMBDAS[best : best + 1]
        return float(lam[0]), ridge_cox_path(D, time, event, warm_path(lam))[-1]
