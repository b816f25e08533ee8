"""Parameter checks shared by :func:`~spinerisk.evaluation.evaluate`,
:func:`~spinerisk.evaluation.choose_threshold` and :func:`~spinerisk.evaluation.model_card`."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["check_int", "check_model"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` and the minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name}={value!r}.")
    return int(value)


def check_model(model: RiskModel) -> None:
    """A TypeError unless ``model`` is a RiskModel, NotFittedError unless it is fitted."""
    from sklearn.exceptions import NotFittedError

    from spinerisk.models._state import is_risk_model

    if not is_risk_model(model):
        raise TypeError(
            f"model must be a fitted spinerisk.RiskModel; got {type(model).__name__}. "
            "Fit one with sr.RiskModel(endpoint=...).fit(cohort) or load one with sr.load(path)."
        )
    if not hasattr(model, "estimator_"):
        raise NotFittedError(
            "This RiskModel is not fitted yet; call model.fit(cohort) (or sr.load a saved "
            "model) before evaluate()."
        )
