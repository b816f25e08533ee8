"""Explanations of fitted risk models in clinical terms.

``explain(model, records)`` returns an :class:`Explanation`: per-record contributions of
each clinical field on the model's margin (log-odds, log hazard or log time), exact
(native tree SHAP of the boosters, ``coef x (value - mean)`` for linear models), their
conversion to percentage points of risk at a horizon, global importance, plain-language
lines and shap plots.

Contributions describe the model, not causes; treatment fields are confounded by
indication. shap and matplotlib are imported only when plotting.
"""

from __future__ import annotations

from spinerisk.explanation._explanation import Explanation, explain

__all__ = ["Explanation", "explain"]
