"""The risk model facade: :class:`RiskModel` wires the steps below it (schema,
endpoints, features, estimators, explanation, bundles, the fast path, the training
reference) into one scikit-learn estimator, and :func:`load` / :func:`save` move it to
and from a bundle file.

Everything below this package reads and writes a model through
:mod:`spinerisk.models._state` (its backends, parameters and fitted state) and never
imports the facade; scoring, monitoring, updating, the API and the CLI sit above it.
"""

from __future__ import annotations

from spinerisk.riskmodel._dask import fit_dask
from spinerisk.riskmodel._model import RiskModel, predictor_columns
from spinerisk.riskmodel._persist import load, save

__all__ = ["RiskModel", "fit_dask", "load", "predictor_columns", "save"]
