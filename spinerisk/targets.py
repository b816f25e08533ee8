"""Outcome targets: the one convention for survival and competing-risk ``y``.

* Binary outcomes: a boolean array.
* Time-to-event: a structured array with fields ``event`` (bool) and ``time`` (float,
  days), the scikit-survival convention.
* Competing risks: a structured array with fields ``event`` (int: 0 censored, 1 the event
  of interest, 2 the competing event, ...) and ``time`` (float, days).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "COMPETING_DTYPE",
    "SURVIVAL_DTYPE",
    "check_competing_target",
    "check_survival_target",
    "invalid_times",
    "make_competing_target",
    "make_survival_target",
]

SURVIVAL_DTYPE = np.dtype([("event", bool), ("time", np.float64)])
COMPETING_DTYPE = np.dtype([("event", np.int64), ("time", np.float64)])


#: What every event or censoring time must be: the one rule, for targets and endpoints.
TIME_RULE = "finite and > 0"


def invalid_times(time: Any) -> npt.NDArray[np.bool_]:
    """True where a time breaks :data:`TIME_RULE` (not finite, or <= 0): an outcome at
    time 0 (or before) cannot be ordered against the others' follow-up.

    Examples
    --------
    >>> from spinerisk.targets import invalid_times
    >>> invalid_times([10.0, 0.0, float("nan"), -1.0]).tolist()
    [False, True, True, True]
    """
    t = np.asarray(time, dtype=float).ravel()
    return ~np.isfinite(t) | (t <= 0)


def _times(time: Any, n: int | None = None) -> npt.NDArray[np.float64]:
    t = np.asarray(time, dtype=float).ravel()
    if n is not None and len(t) != n:
        raise ValueError(f"event and time have different lengths ({n} and {len(t)}).")
    bad = invalid_times(t)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"time must be {TIME_RULE} (days); got time={float(t[i])!r} at position {i} "
            f"({int(bad.sum())} such value(s))."
        )
    return t


def make_survival_target(event: Any, time: Any) -> np.ndarray:
    """Structured ``(event, time)`` array for time-to-event estimators.

    Parameters
    ----------
    event : array-like of bool or {0, 1}
        True where the event was observed, False where the record is censored.
    time : array-like of float
        Days from the index fracture to the event or censoring; must be > 0.

    Returns
    -------
    ndarray of dtype [("event", bool), ("time", float64)]

    Examples
    --------
    >>> from spinerisk.targets import make_survival_target
    >>> y = make_survival_target([1, 0], [120.0, 365.0])
    >>> y["event"].tolist(), y["time"].tolist()
    ([True, False], [120.0, 365.0])
    >>> make_survival_target([1], [0.0])
    Traceback (most recent call last):
    ...
    ValueError: time must be finite and > 0 (days); got time=0.0 at position 0 (1 such value(s)).
    """  # noqa: E501
    e = np.asarray(event).ravel()
    if e.dtype != bool:
        values = set(np.unique(e).tolist())
        if not values <= {0, 1}:
            raise ValueError(f"event must be boolean or 0/1; got values {sorted(values)[:5]}.")
        e = e.astype(bool)
    t = _times(time, len(e))
    y = np.empty(len(e), dtype=SURVIVAL_DTYPE)
    y["event"], y["time"] = e, t
    return y


def make_competing_target(event: Any, time: Any) -> np.ndarray:
    """Structured ``(event, time)`` array with an event code for competing risks.

    Parameters
    ----------
    event : array-like of int
        0 censored, 1 the event of interest (subsequent fracture), 2 the competing
        event (death); further codes are further competing events.
    time : array-like of float
        Days from the index fracture to the first event or censoring; must be > 0.

    Returns
    -------
    ndarray of dtype [("event", int64), ("time", float64)]

    Examples
    --------
    >>> from spinerisk.targets import make_competing_target
    >>> make_competing_target([0, 1, 2], [400.0, 90.0, 30.0])["event"].tolist()
    [0, 1, 2]
    """
    e = np.asarray(event, dtype=float).ravel()
    if np.isnan(e).any() or (e != np.round(e)).any() or (e < 0).any():
        raise ValueError("event codes must be whole numbers >= 0 (0 censored, 1, 2, ...).")
    t = _times(time, len(e))
    y = np.empty(len(e), dtype=COMPETING_DTYPE)
    y["event"], y["time"] = e.astype(np.int64), t
    return y


def check_survival_target(y: Any) -> np.ndarray:
    """Return ``y`` as a survival target, or raise a clear error.

    Examples
    --------
    >>> from spinerisk.targets import check_survival_target
    >>> check_survival_target([(True, 10.0)])
    Traceback (most recent call last):
    ...
    TypeError: y must be a structured array with fields 'event' and 'time' (see spinerisk.targets.make_survival_target); got list.
    """  # noqa: E501
    if not isinstance(y, np.ndarray) or y.dtype.names is None:
        raise TypeError(
            "y must be a structured array with fields 'event' and 'time' (see "
            f"spinerisk.targets.make_survival_target); got {type(y).__name__}."
        )
    if set(y.dtype.names) != {"event", "time"}:
        raise TypeError(f"y must have fields 'event' and 'time'; got {y.dtype.names}.")
    return make_survival_target(y["event"], y["time"])


def check_competing_target(y: Any) -> np.ndarray:
    """Return ``y`` as a competing-risk target, or raise a clear error."""
    if not isinstance(y, np.ndarray) or y.dtype.names is None:
        raise TypeError(
            "y must be a structured array with fields 'event' (code) and 'time' (see "
            f"spinerisk.targets.make_competing_target); got {type(y).__name__}."
        )
    if set(y.dtype.names) != {"event", "time"}:
        raise TypeError(f"y must have fields 'event' and 'time'; got {y.dtype.names}.")
    return make_competing_target(y["event"], y["time"])
