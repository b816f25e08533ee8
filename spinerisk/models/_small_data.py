"""Fit-time honesty about small cohorts: sample size against Riley's minimum, events per
parameter, and models that predict (nearly) the same risk for everyone."""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np

from spinerisk.exceptions import DataQualityWarning
from spinerisk.metrics._sample_size import (
    R2_FRACTION,
    cached_pmsampsize,
    conservative_binary_inputs,
)

#: Events per candidate parameter below which a fit warns (the traditional floor; Riley
#: et al. show it is neither necessary nor sufficient, hence the full calculation too).
MIN_EPP = 10.0
#: A model whose risks vary less than this (SD of the log-odds or log-hazard) is
#: "constant": the small-data warning at fit time and the default's exclusion of a
#: candidate both use it.
CONSTANT_SD = 0.01


def minimum_sample_size(
    kind: str,
    *,
    n: int,
    parameters: int,
    event: np.ndarray,
    time: np.ndarray | None,
    horizon: float,
) -> dict[str, Any]:
    """Riley et al.'s minimum development sample size (pmsampsize), at fit time.

    The anticipated Cox-Snell R-squared is 15% of its maximum (Riley's conservative
    default): a model's own performance is not known honestly before it is validated.
    Binary outcomes use ``pmsampsize(type="b")``; time-to-event outcomes
    :func:`spinerisk.metrics.sample_size_adequacy` (``type="s"``, the
    event of interest, other events censored). Returns ``{"required_n": None, "note": ...}``
    when pmsampsize is not installed or cannot compute.
    """
    if kind == "binary":
        if importlib.util.find_spec("pmsampsize") is None:
            return {"required_n": None, "note": "pmsampsize is not installed"}
        inputs = conservative_binary_inputs(event, parameters)
        if isinstance(inputs, str):
            return {"required_n": None, "note": inputs}
        try:
            out = cached_pmsampsize(tuple(sorted(inputs.items())))
        except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
            return {"required_n": None, "note": f"pmsampsize could not compute: {exc}"}
        return {"required_n": int(out["sample_size"]), "required_events": float(out["events"])}
    from spinerisk.metrics import sample_size_adequacy

    result = sample_size_adequacy(
        kind="survival",
        n_available=n,
        parameters=int(parameters),
        event=event.astype(bool),
        time=time,
        horizon=horizon,
    )
    return {
        "required_n": result.get("required_n"),
        "required_events": result.get("required_events"),
        "note": result.get("note"),
    }


def warn_sample_size(
    *,
    endpoint: str,
    kind: str,
    n: int,
    parameters: int,
    event: np.ndarray,
    time: np.ndarray | None,
    horizon: float,
    what: str,
    stacklevel: int = 3,
) -> dict[str, Any]:
    """Warn (DataQualityWarning) when the cohort is below Riley's minimum sample size or
    has fewer than :data:`MIN_EPP` events per candidate parameter; return the numbers.

    For a binary outcome the count that limits is the smaller outcome class: when most
    records have the event, the records without it are the "events" of the rule."""
    events = int(np.sum(event.astype(bool)))
    limiting, counted = events, "events"
    if kind == "binary" and n - events < events:
        limiting, counted = n - events, "records without the event"
    epp = limiting / max(parameters, 1)
    found = minimum_sample_size(
        kind, n=n, parameters=parameters, event=event, time=time, horizon=horizon
    )
    required = found.get("required_n")
    info = {
        "n": n,
        "events": events,
        "parameters": parameters,
        "events_per_parameter": epp,
        "limiting": counted,
        "required_n": required,
        "required_events": found.get("required_events"),
    }
    short = required is not None and n < required
    per = "events" if counted == "events" else f"{counted} ({limiting})"
    if short or epp < MIN_EPP:
        riley = (
            f"Riley et al.'s minimum sample size for {parameters} candidate parameters is "
            f"{required} records (about {found['required_events']:.0f} events; anticipated "
            f"Cox-Snell R-squared {R2_FRACTION:.0%} of its maximum, shrinkage 0.9)"
            if required is not None
            else f"Riley et al.'s minimum sample size was not computed ({found.get('note')})"
        )
        warnings.warn(
            f"Small cohort for the {endpoint} {what}: {n} records with {events} events for "
            f"{parameters} candidate parameters ({epp:.1f} {per} per parameter; fewer than "
            f"{MIN_EPP:g} is a warning sign). {riley}. Expect overfitting: risks more "
            "extreme than the truth and optimistic apparent performance. Validate "
            "internally (evaluate(..., optimism=True) or cv=5), prefer fewer predictors, "
            "or collect more data.",
            DataQualityWarning,
            stacklevel=stacklevel,
        )
    return info


def spread(risk: np.ndarray) -> float:
    """SD of the log-odds of risks (clipped away from 0 and 1)."""
    p = np.clip(np.asarray(risk, dtype=float), 1e-9, 1 - 1e-9)
    return float(np.std(np.log(p / (1 - p))))


def warn_constant(risk: np.ndarray, *, backend: str, n: int, stacklevel: int = 3) -> bool:
    """Warn when a fitted model gives (nearly) every training record the same risk."""
    sd = spread(risk)
    if sd >= CONSTANT_SD:
        return False
    values = np.asarray(risk, dtype=float)
    advice = (
        "With few records a booster may not split at all; use backend='auto' or 'linear'."
        if backend not in ("auto", "linear", "stack")
        else "Check that the predictors vary and, for a horizon, that events occur before it."
    )
    warnings.warn(
        f"backend={backend!r} predicts (nearly) the same risk for all {n} training records "
        f"({float(values.min()):.4f} to {float(values.max()):.4f}; SD of the log-odds "
        f"{sd:.2g}, below {CONSTANT_SD}): the model has learned nothing from the predictors. "
        + advice,
        DataQualityWarning,
        stacklevel=stacklevel,
    )
    return True
