"""Evaluation of fitted risk models: metrics with bootstrap CIs, calibration, decision
curves, comparators (existing scores and published calculators, with paired
differences), subgroup audits, sample-size adequacy and temporal/external validation
helpers, rendered as a dict, Markdown or one self-contained HTML report.

Metric functions themselves live in :mod:`spinerisk.metrics`; this package combines them.
"""

from __future__ import annotations

from spinerisk.evaluation._comparators import (
    CALCULATORS,
    FRAX_INPUTS,
    Comparator,
    frax_inputs,
    garvan_points,
)
from spinerisk.evaluation._evaluate import DEFAULT_SUBGROUPS, evaluate
from spinerisk.evaluation._format import SYNTHETIC_BANNER
from spinerisk.evaluation._html import SECTION_IDS
from spinerisk.evaluation._instability import prediction_instability
from spinerisk.evaluation._model_card import ModelCard, model_card
from spinerisk.evaluation._report import EvaluationReport
from spinerisk.evaluation._splits import centre_split, temporal_split
from spinerisk.evaluation._threshold import ThresholdChoice, choose_threshold
from spinerisk.metrics import sample_size_adequacy

__all__ = [
    "CALCULATORS",
    "DEFAULT_SUBGROUPS",
    "FRAX_INPUTS",
    "SECTION_IDS",
    "SYNTHETIC_BANNER",
    "Comparator",
    "EvaluationReport",
    "ModelCard",
    "ThresholdChoice",
    "centre_split",
    "choose_threshold",
    "evaluate",
    "frax_inputs",
    "garvan_points",
    "model_card",
    "prediction_instability",
    "sample_size_adequacy",
    "temporal_split",
]
