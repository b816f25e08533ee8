"""What a fitted risk model is made of, declared once: its backends per endpoint kind,
its parameters, its fitted attributes, and the class that holds them.

The facade :class:`spinerisk.RiskModel` (in :mod:`spinerisk.riskmodel`) sits above the
steps it wires; the steps below it (bundles, explanations, evaluation, the fast path)
read and write a model through these declarations and never import the facade.
Local fitting, Dask fitting and bundles set the fitted state with :func:`set_fitted`,
which refuses an attribute that is not declared here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BACKENDS",
    "FITTED_STATE",
    "LINEAR_BACKENDS",
    "PARAMS",
    "is_risk_model",
    "model_class",
    "register_model_class",
    "set_fitted",
]

#: Backends per endpoint kind ("linear" is penalised logistic or Cox regression with
#: straight-line terms, "spline" the same with spline terms for continuous predictors).
BACKENDS: dict[str, tuple[str, ...]] = {
    "binary": ("linear", "spline", "xgboost", "lightgbm"),
    "competing": ("linear", "spline", "xgboost"),
    "survival": ("linear", "spline", "xgboost", "xgboost_aft"),
}
#: Backends fitted as penalised regressions.
LINEAR_BACKENDS: tuple[str, ...] = ("linear", "spline")

#: Constructor parameters of a risk model, in order.
PARAMS: tuple[str, ...] = (
    "endpoint",
    "backend",
    "schema",
    "horizons",
    "cv",
    "spline_knots",
    "booster_params",
    "random_state",
    "n_jobs",
)

#: Every fitted attribute a risk model may carry, with what sets it.
FITTED_STATE: dict[str, str] = {
    "endpoint_": "fit: the resolved Endpoint",
    "schema_": "fit: the resolved Schema",
    "backend_": "fit: the backend fitted ('stack' for the default)",
    "features_": "fit: the fitted feature pipeline (None when inside the estimator)",
    "estimator_": "fit: the fitted model on the feature matrix",
    "horizons_": "fit: horizons in days",
    "selection_": "fit: the default's candidate table (None for an explicit backend)",
    "selection_reason_": "fit: why this backend or combination",
    "training_ranges_": "fit: per predictor, (min, max) or the codes seen",
    "reference_": "fit: the training reference (spinerisk.reference, plain JSON)",
    "n_train_": "fit: records used",
    "n_excluded_": "fit: records excluded (outcome not observed or not eligible)",
    "id_field_": "fit: the schema's record id field",
    "lineage_": "spinerisk.update: how an updated model came about (plain JSON)",
    "gate_": "bind_malignancy_gate: the bound malignancy model (a nested bundle)",
    "gate_threshold_": "bind_malignancy_gate",
    "gate_warning_": "bind_malignancy_gate",
    "gate_red_flags_": "bind_malignancy_gate",
    "interval_models_": "fit_intervals: bootstrap refits (nested bundles)",
    "interval_info_": "fit_intervals: their settings",
    "sample_size_": "fit: the sample-size check (not stored: recomputed at the next fit)",
}

_MODEL_CLASSES: list[type] = []


def register_model_class(cls: type) -> type:
    """Declare the class that holds a fitted risk model (the facade registers itself
    when it is imported); usable as a class decorator."""
    if cls not in _MODEL_CLASSES:
        _MODEL_CLASSES.append(cls)
    return cls


def model_class() -> type:
    """The registered risk model class (:class:`spinerisk.RiskModel`)."""
    if not _MODEL_CLASSES:  # only the deprecated spinerisk.bundle.load_bundle(path) gets here
        import importlib

        importlib.import_module("spinerisk.riskmodel")  # registers RiskModel
    return _MODEL_CLASSES[0]


def is_risk_model(obj: Any) -> bool:
    """Whether ``obj`` is a risk model (an instance of the registered class)."""
    return bool(_MODEL_CLASSES) and isinstance(obj, tuple(_MODEL_CLASSES))


def set_fitted(model: Any, **state: Any) -> Any:
    """Set fitted attributes on ``model``; each must be declared in
    :data:`FITTED_STATE`.

    Raises
    ------
    AttributeError
        For an attribute that is not declared.
    """
    unknown = sorted(set(state) - set(FITTED_STATE))
    if unknown:
        raise AttributeError(
            f"{unknown} are not fitted attributes of a risk model; declare them in "
            "spinerisk.models._state.FITTED_STATE."
        )
    for name, value in state.items():
        setattr(model, name, value)
    return model
