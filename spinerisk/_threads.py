"""Thread counts for the calls that should use every core this process may run on.

A fitted booster keeps the thread count it was trained with (part of the model); the
explanation calls take a copy set to every core instead.
"""

from __future__ import annotations

import os
from typing import Any


def n_threads() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def all_cores(booster: Any) -> Any:
    """A copy of an ``xgboost.Booster`` that predicts on every core (the model's own
    booster keeps its thread count)."""
    copy = booster.copy()
    copy.set_param({"nthread": n_threads()})
    return copy
