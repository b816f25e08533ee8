"""Sample-size adequacy of the development data (Riley et al. criteria, via pmsampsize)."""

from __future__ import annotations

import functools
import importlib.util
import math
from typing import Any

import numpy as np

from spinerisk._units import DAYS_PER_YEAR

__all__ = ["sample_size_adequacy"]

#: Riley et al.'s conservative default when no prior R-squared is known: the expected
#: Cox-Snell R-squared is 15% of its maximum possible value.
R2_FRACTION = 0.15


@functools.lru_cache(maxsize=64)
def cached_pmsampsize(inputs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """pmsampsize on (rounded) inputs, remembered: it simulates a million records to turn a
    C-statistic into an R-squared (seconds), and reseeds numpy, so the same inputs always
    give the same answer."""
    from pmsampsize.pmsampsize import pmsampsize

    state = np.random.get_state()  # pmsampsize reseeds numpy's global generator
    try:
        return dict(pmsampsize(**dict(inputs), noprint=True))
    finally:
        np.random.set_state(state)  # the caller's random stream is left as it was


def sample_size_adequacy(
    *,
    kind: str,
    n_available: int,
    parameters: int,
    event: np.ndarray,
    time: np.ndarray | None = None,
    cstatistic: float | None = None,
    horizon: float | None = None,
    shrinkage: float = 0.9,
    timepoint_days: float | None = None,
) -> dict[str, Any]:
    """Minimum development sample size for the model, next to the available one.

    Binary outcomes use ``pmsampsize(type="b")`` with the observed prevalence and the
    model's C-statistic (converted to a Cox-Snell R-squared by pmsampsize). Time-to-event
    outcomes use ``pmsampsize(type="s")`` with the observed event rate per year, the mean
    follow-up, the horizon and a Cox-Snell R-squared of 15% of its maximum (Riley et al.'s
    conservative default); competing events count as censored here.

    Parameters
    ----------
    kind : {"binary", "survival", "competing"}
    n_available : int
        Records the model was developed on.
    parameters : int
        Candidate predictor parameters (columns of the model matrix).
    event : ndarray
        Outcome (bool) or event codes (1 is the event of interest).
    time : ndarray or None, default=None
        Follow-up in days (time-to-event outcomes).
    cstatistic : float or None, default=None
        C-statistic (binary outcomes).
    horizon : float or None, default=None
        Key prediction horizon in days (time-to-event outcomes).
    shrinkage : float, default=0.9
        Target shrinkage factor.
    timepoint_days : float or None, default=None
        Deprecated name of ``horizon`` (removed in the next release).

    Returns
    -------
    dict
        ``required_n``, ``available_n``, ``adequate``, ``required_events``,
        ``events_per_parameter`` (required), ``parameters``, ``inputs`` (what was passed
        to pmsampsize) and ``criteria`` (the per-criterion table), or ``note`` when the
        calculation was not possible.
    """
    horizon = _horizon(horizon, timepoint_days)
    result: dict[str, Any] = {
        "method": "Riley et al. (2019, 2020) minimum sample size, pmsampsize",
        "available_n": int(n_available),
        "parameters": int(parameters),
    }
    if importlib.util.find_spec("pmsampsize") is None:
        result["note"] = (
            "Sample size not computed: the 'pmsampsize' package is not installed. Install "
            "it with: pip install --no-deps --ignore-requires-python pmsampsize==0.1.0"
        )
        return result
    if kind == "binary":
        prevalence = float(np.mean(event.astype(bool)))
        if cstatistic is None or not np.isfinite(cstatistic):
            result["note"] = "No C-statistic available; sample size not computed."
            return result
        inputs: dict[str, Any] = {
            "type": "b",
            "cstatistic": round(float(cstatistic), 4),
            "parameters": int(parameters),
            "prevalence": round(prevalence, 4),
            "shrinkage": shrinkage,
        }
    else:
        if time is None or horizon is None:
            raise ValueError(f"A {kind} outcome needs follow-up times and a horizon (horizon).")
        occurred = (event == 1) if kind == "competing" else event.astype(bool)
        survival = _survival_inputs(occurred, time, horizon, parameters, shrinkage)
        if isinstance(survival, str):
            result["note"] = survival
            return result
        inputs = survival
    try:
        out = cached_pmsampsize(tuple(sorted(inputs.items())))
    except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
        result["inputs"] = inputs
        result["note"] = f"pmsampsize could not compute a sample size: {exc}"
        return result
    required = int(out["sample_size"])
    criteria = []
    for row in out.get("results_table", []):
        if isinstance(row, list | tuple) and len(row) >= 2:
            criteria.append({"criterion": str(row[0]), "sample_size": int(row[1])})
    result.update(
        {
            "inputs": inputs,
            "required_n": required,
            "required_events": float(out["events"]),
            "events_per_parameter": float(out["EPP"]),
            "adequate": bool(n_available >= required),
            "criteria": criteria,
        }
    )
    return result


def conservative_binary_inputs(event: np.ndarray, parameters: int) -> dict[str, Any] | str:
    """pmsampsize's binary inputs with Riley et al.'s conservative R-squared (15% of its
    maximum, for when no C-statistic is known, as at fit time), or why there are none."""
    prevalence = float(np.mean(np.asarray(event).astype(bool)))
    if not 0.0 < prevalence < 1.0:
        return "only one outcome class"
    ln_null = prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence)
    max_r2 = 1.0 - math.exp(2.0 * ln_null)
    return {
        "type": "b",
        "csrsquared": round(R2_FRACTION * max_r2, 4),
        "parameters": int(parameters),
        "prevalence": round(prevalence, 4),
    }


def _survival_inputs(
    occurred: np.ndarray, time: np.ndarray, horizon: float, parameters: int, shrinkage: float
) -> dict[str, Any] | str:
    """pmsampsize's time-to-event inputs (Riley et al.'s conservative R-squared), or why
    they cannot be given."""
    n_events = int(occurred.sum())
    years = float(np.sum(time)) / DAYS_PER_YEAR
    n = len(time)
    if n_events == 0 or years <= 0:
        return "No events; sample size not computed."
    rate = n_events / years
    # maximum Cox-Snell R-squared of an exponential null model (Riley et al. 2019, part II)
    ln_null = n_events * math.log(n_events / years) - n_events
    max_r2 = 1.0 - math.exp(2.0 * ln_null / n)
    if not max_r2 > 0.0:  # the exponential null likelihood per year is above 1
        return (
            f"Sample size not computed: with {rate:.2f} events per person-year Riley et "
            "al.'s maximum Cox-Snell R-squared (from an exponential null model, time in "
            f"years) is {max_r2:.3f}, not positive; the formula needs fewer than e "
            "(2.72) events per person-year."
        )
    return {
        "type": "s",
        "csrsquared": round(R2_FRACTION * max_r2, 4),
        "parameters": int(parameters),
        "rate": round(rate, 5),
        "timepoint": round(horizon / DAYS_PER_YEAR, 4),
        "meanfup": round(years / n, 4),
        "shrinkage": shrinkage,
    }


def _horizon(horizon: float | None, timepoint_days: float | None) -> float | None:
    """``horizon``, or the deprecated ``timepoint_days`` with a warning."""
    if timepoint_days is None:
        return horizon
    import warnings

    warnings.warn(
        "sample_size_adequacy(timepoint_days=...) is deprecated: use horizon=... (days).",
        DeprecationWarning,
        stacklevel=3,
    )
    return timepoint_days if horizon is None else horizon
