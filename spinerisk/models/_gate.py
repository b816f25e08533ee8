"""Abstention: an OVF prognosis model bound to a malignancy model (issue 16.4).

The studies behind the osteoporotic vertebral fracture (OVF) endpoints excluded
pathological fractures, so their prognosis does not apply to a fracture that may be
malignant. A prognosis model can be bound to a fitted model of the ``malignant_fracture``
endpoint (:meth:`spinerisk.RiskModel.bind_malignancy_gate`). Each record then gets:

* ``status = "out_of_scope"`` when its probability of malignancy reaches the threshold
  (default 0.10) or it carries a hard red flag (an epidural or paraspinal mass, an
  M-protein, active cancer with marrow replacement): no prognosis is given, with the
  reason and the probability; a work-up comes first;
* ``status = "warning"`` between the warning level (default 0.05) and the threshold:
  the prognosis is given with the warning;
* ``status = "in_scope"`` otherwise.

The same function decides on every path (Python, batch scoring, HTTP API). The
thresholds are assumptions (DOMAIN-CERVICAL B, marked [A]), kept as named parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.models._state import set_fitted

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = [
    "DEFAULT_RED_FLAGS",
    "GATE_COLUMNS",
    "GATE_THRESHOLD",
    "GATE_WARNING",
    "apply_gate",
    "bind_gate",
    "gate_status",
]

#: Probability of malignancy at or above which no OVF prognosis is given [A].
GATE_THRESHOLD = 0.10
#: Probability of malignancy at or above which the prognosis carries a warning [A].
GATE_WARNING = 0.05
#: Hard red flags: no OVF prognosis whatever the malignancy model says.
DEFAULT_RED_FLAGS = (
    "mri_epidural_paraspinal_mass or m_protein or (active_cancer and mri_diffuse_low_t1)"
)
#: Columns the gate adds to a prediction, after the risks.
GATE_COLUMNS = ("status", "p_malignant", "status_reason")
_STATUSES = ("in_scope", "warning", "out_of_scope")


def bind_gate(
    model: RiskModel,
    gate: Any,
    *,
    threshold: float = GATE_THRESHOLD,
    warning: float = GATE_WARNING,
    red_flags: str | None = DEFAULT_RED_FLAGS,
) -> Any:
    """Bind a fitted malignancy model to a fitted prognosis model (see the module doc).

    Raises
    ------
    ValueError
        If the gate is not a fitted binary model of the same schema, or the thresholds
        are not ``0 < warning <= threshold < 1``, or the red flags do not fit the schema.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "estimator_")
    check_is_fitted(gate, "estimator_")
    if gate is model:
        raise ValueError("A model cannot be its own gate.")
    if gate.endpoint_.kind != "binary":
        raise ValueError(
            f"The gate must be a binary model (malignant_fracture); got the {gate.endpoint_.kind} "
            f"endpoint {gate.endpoint_.name!r}."
        )
    if gate.schema_ != model.schema_:
        raise ValueError(
            f"The gate was fitted with schema {gate.schema_.name!r} and the model with "
            f"{model.schema_.name!r}; both must read the same records."
        )
    if getattr(gate, "gate_", None) is not None:
        raise ValueError("The gate has a gate of its own; chains of gates are not supported.")
    for name, value in (("threshold", threshold), ("warning", warning)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ValueError(f"{name} must be a probability in (0, 1); got {name}={value!r}.")
    if warning > threshold:
        raise ValueError(f"warning={warning} must not exceed threshold={threshold}.")
    if red_flags is not None:
        _red_flag_rule(model.schema_, red_flags)  # checks the expression
    set_fitted(
        model,
        gate_=gate,
        gate_threshold_=float(threshold),
        gate_warning_=float(warning),
        gate_red_flags_=red_flags,
    )
    return model


def _red_flag_rule(schema: Any, red_flags: str) -> Any:
    from spinerisk.schema import RowRule

    rule = RowRule("red_flags", expr=f"not ({red_flags})", message="a hard red flag")
    try:
        return schema.extend(rules=[rule]).rules[-1]
    except ValueError as exc:
        raise ValueError(f"red_flags `{red_flags}` do not fit the schema: {exc}") from None


def gate_status(model: RiskModel, checked: pd.DataFrame) -> pd.DataFrame | None:
    """Status, probability of malignancy and reason per validated record (None when the
    model has no gate)."""
    gate = getattr(model, "gate_", None)
    if gate is None:
        return None
    n = len(checked)
    p = (
        np.asarray(gate._risk_values(checked, gate.horizons_), dtype=float)[:, 0]
        if n
        else np.empty(0)
    )
    flagged = np.zeros(n, dtype=bool)
    red_flags = getattr(model, "gate_red_flags_", None)
    if red_flags is not None and n:
        rule = _red_flag_rule(model.schema_, red_flags)
        present = [c for c in rule.columns if c in checked.columns]
        if present:
            flagged = ~rule.evaluate(checked).to_numpy(dtype=bool)
    flags = _flags_present(model, checked) if flagged.any() else [[] for _ in range(n)]
    status, reasons = statuses(model, p, flagged, flags)
    return pd.DataFrame(
        {"status": status, "p_malignant": p, "status_reason": reasons},
        index=checked.index,
    )


def statuses(
    model: RiskModel, p: np.ndarray, flagged: np.ndarray, flags: list[list[str]]
) -> tuple[np.ndarray, list[str]]:
    """Status and reason per record from the probability of malignancy, whether a red
    flag fired and which flags are present (the one rule of every path)."""
    threshold, warning = model.gate_threshold_, model.gate_warning_
    out_of_scope = flagged | (p >= threshold)
    warned = ~out_of_scope & (p >= warning)
    status = np.where(out_of_scope, "out_of_scope", np.where(warned, "warning", "in_scope"))
    reasons = []
    for i in range(len(p)):
        if flagged[i]:
            which = ", ".join(flags[i]) or str(model.gate_red_flags_)
            reasons.append(
                f"hard red flag ({which}): a pathological fracture must be excluded "
                "before an osteoporotic fracture prognosis; work-up first"
            )
        elif out_of_scope[i]:
            reasons.append(
                f"probability of a malignant fracture {p[i]:.2f} >= {threshold:g}: "
                "no osteoporotic fracture prognosis; work-up first"
            )
        elif warned[i]:
            reasons.append(
                f"probability of a malignant fracture {p[i]:.2f} >= {warning:g}: "
                "prognosis given with caution; consider a work-up"
            )
        else:
            reasons.append("")
    return status.astype(object), reasons


def red_flag_checker(model: RiskModel) -> Any:
    """Per-record twin of the red-flag check: ``fn(typed) -> (fired, flags present)``,
    or None when the model has no red flags."""
    red_flags = getattr(model, "gate_red_flags_", None)
    if red_flags is None:
        return None
    rule = _red_flag_rule(model.schema_, red_flags)
    passes = rule.compile_record()
    flag_fields = [c for c in rule.columns if model.schema_[c].dtype == "bool"]

    def check(t: Any) -> tuple[bool, list[str]]:
        fired = not passes(t)
        return fired, ([c for c in flag_fields if t.get(c) is True] if fired else [])

    return check


def _flags_present(model: RiskModel, checked: pd.DataFrame) -> list[list[str]]:
    """Per record, the red-flag fields that are true (the ones to name in the reason)."""
    if model.gate_red_flags_ is None:  # no red flags: none can be present
        return [[] for _ in range(len(checked))]
    rule = _red_flag_rule(model.schema_, model.gate_red_flags_)
    present = [c for c in rule.columns if c in checked.columns and model.schema_[c].dtype == "bool"]
    values = {c: checked[c].astype("boolean").fillna(False).to_numpy(dtype=bool) for c in present}
    return [[c for c in present if values[c][i]] for i in range(len(checked))]


def apply_gate(model: RiskModel, checked: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """Add the gate's columns to a prediction frame (aligned by position with
    ``checked``); risks of out-of-scope records become missing."""
    status = gate_status(model, checked)
    if status is None:
        return out
    risk_columns = [c for c in out.columns if c == "risk" or str(c).startswith("risk_")]
    blocked = status["status"].to_numpy() == "out_of_scope"
    out = out.copy()
    for c in risk_columns:
        values = out[c].to_numpy(dtype=float, copy=True)
        values[blocked] = np.nan
        out[c] = values
    position = (
        len(risk_columns) if "warnings" not in out.columns else list(out.columns).index("warnings")
    )
    for k, col in enumerate(GATE_COLUMNS):
        out.insert(position + k, col, status[col].to_numpy())
    return out


def gate_performance(
    model: RiskModel, checked: pd.DataFrame, truth: str = "malignant"
) -> dict[str, Any]:
    """How the gate behaves on validated records with a known ``truth`` column: the
    abstention rate (share out of scope), and the sensitivity, specificity and negative
    predictive value of "out of scope" for a malignant fracture.

    Records whose truth is missing count in the abstention rate only.
    """
    status = gate_status(model, checked)
    if status is None:
        raise ValueError("The model has no malignancy gate (RiskModel.bind_malignancy_gate).")
    out = (status["status"] == "out_of_scope").to_numpy()
    result: dict[str, Any] = {
        "n": int(len(status)),
        "abstention_rate": float(out.mean()) if len(out) else float("nan"),
        "warning_rate": float((status["status"] == "warning").mean()) if len(out) else np.nan,
        "threshold": model.gate_threshold_,
        "warning": model.gate_warning_,
    }
    if truth in checked.columns:
        known = checked[truth].notna().to_numpy()
        y = checked[truth].to_numpy(dtype=object)[known].astype(bool)
        flagged = out[known]
        tp, fn = int((flagged & y).sum()), int((~flagged & y).sum())
        tn, fp = int((~flagged & ~y).sum()), int((flagged & ~y).sum())
        result.update(
            n_with_truth=int(known.sum()),
            sensitivity=tp / (tp + fn) if tp + fn else float("nan"),
            specificity=tn / (tn + fp) if tn + fp else float("nan"),
            npv=tn / (tn + fn) if tn + fn else float("nan"),
        )
    return result


def gate_fields(model: RiskModel) -> list[str]:
    """Fields the gate reads beyond the model's own predictors (its predictors and the
    red-flag fields): a request for a gated model may carry them."""
    gate = getattr(model, "gate_", None)
    if gate is None:
        return []
    own = set(model.endpoint_.predictors(model.schema_))
    names = list(gate.endpoint_.predictors(gate.schema_))
    red_flags = getattr(model, "gate_red_flags_", None)
    if red_flags is not None:
        names += list(_red_flag_rule(model.schema_, red_flags).columns)
    return [n for n in dict.fromkeys(names) if n not in own]
