"""Feature pipeline: validated records -> numeric (or native categorical) model matrix."""

from spinerisk.features._clinical import (
    AGE_BANDS,
    DERIVED_FROM,
    ClinicalFeatures,
    field_of_feature,
)
from spinerisk.features._pipeline import MIN_SPLINE_VALUES as MIN_SPLINE_VALUES
from spinerisk.features._pipeline import make_feature_pipeline

# Saved bundles name these four functions here (see _pipeline._saved_as_features).
from spinerisk.features._pipeline import _continuous_columns as _continuous_columns  # isort: skip
from spinerisk.features._pipeline import _feature_name as _feature_name  # isort: skip
from spinerisk.features._pipeline import _one_hot_name as _one_hot_name  # isort: skip
from spinerisk.features._pipeline import _other_numbers as _other_numbers  # isort: skip

__all__ = [
    "AGE_BANDS",
    "DERIVED_FROM",
    "ClinicalFeatures",
    "field_of_feature",
    "make_feature_pipeline",
]
