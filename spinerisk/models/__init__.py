"""Risk models: binary, time-to-event and competing-risk estimators (the facade
:class:`spinerisk.RiskModel` that wires them lives in :mod:`spinerisk.riskmodel`).

Every estimator follows the scikit-learn contract. Binary ``y`` is boolean; survival and
competing-risk ``y`` are structured ``(event, time)`` arrays (:mod:`spinerisk.targets`),
time in days.
"""

from typing import Any

from spinerisk.models._binary import (
    EarlyStoppingClassifier,
    make_binary_model,
    make_booster,
    make_logistic,
)
from spinerisk.models._competing import CauseSpecificCIF
from spinerisk.models._gate import gate_performance, gate_status
from spinerisk.models._state import BACKENDS
from spinerisk.models._survival import BoostedAFTSurvival, BoostedCoxSurvival, CoxPHSurvival
from spinerisk.models._tune import SEARCH_SPACES, tune

__all__ = [
    "BACKENDS",
    "gate_performance",
    "gate_status",
    "SEARCH_SPACES",
    "BoostedAFTSurvival",
    "BoostedCoxSurvival",
    "CauseSpecificCIF",
    "CoxPHSurvival",
    "EarlyStoppingClassifier",
    "make_binary_model",
    "make_booster",
    "make_logistic",
    "tune",
]


def __getattr__(name: str) -> Any:
    """``spinerisk.models.RiskModel``: deprecated alias of :class:`spinerisk.RiskModel`
    (which moved to :mod:`spinerisk.riskmodel`, above the estimators); removed in the
    next release."""
    if name == "RiskModel":
        import importlib
        import warnings

        warnings.warn(
            "spinerisk.models.RiskModel moved: use spinerisk.RiskModel (or "
            "spinerisk.riskmodel.RiskModel); this alias will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module("spinerisk.riskmodel").RiskModel
    raise AttributeError(f"module 'spinerisk.models' has no attribute {name!r}")
