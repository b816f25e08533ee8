"""Plots of explanations: importance bars (matplotlib) and shap beeswarm, dependence
and waterfall plots. Every function returns the matplotlib Figure it drew on; nothing is
shown (``show=False``), so the functions work under the Agg backend."""

from __future__ import annotations

from typing import Any

_SCALE_AXIS = {
    "log-odds": "contribution (log-odds)",
    "log-hazard": "contribution (log hazard ratio)",
    "log-time": "contribution (log time; + = later event)",
}


def _synthetic_note(fig: Any, expl: Any) -> None:
    note = "model explanation, not causal"
    if getattr(expl, "synthetic", False):
        note = "SYNTHETIC DATA - " + note
    fig.text(0.99, 0.005, note, ha="right", va="bottom", fontsize=7, color="0.4")


def importance_bar(
    expl: Any, *, ax: Any = None, max_display: int = 15, kind: str = "margin"
) -> Any:
    """Horizontal bars of mean |contribution| per field (largest on top)."""
    import matplotlib.pyplot as plt

    imp = expl.importance(kind).head(int(max_display))[::-1]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(imp) + 1.2))
    else:
        fig = ax.figure
    labels = [expl.labels.get(f, f) for f in imp.index]
    ax.barh(labels, imp.to_numpy(), color="#1f77b4")
    unit = "percentage points of risk" if kind == "points" else _SCALE_AXIS[expl.scale]
    ax.set_xlabel(f"mean |{unit}|")
    ax.set_title(f"{expl.endpoint.replace('_', ' ')}: global importance ({len(expl)} records)")
    fig.tight_layout()
    _synthetic_note(fig, expl)
    return fig


def beeswarm(expl: Any, *, max_display: int = 15) -> Any:
    """shap beeswarm on a new figure."""
    import warnings

    import matplotlib.pyplot as plt
    import shap

    fig = plt.figure(figsize=(7.5, 0.4 * min(max_display, expl.contributions.shape[1]) + 1.5))
    with warnings.catch_warnings():  # colour scale of a field with no numeric value
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        shap.plots.beeswarm(
            expl.to_shap(), max_display=int(max_display), show=False, plot_size=None
        )
    fig = plt.gcf()
    fig.axes[0].set_xlabel(_SCALE_AXIS[expl.scale])
    _synthetic_note(fig, expl)
    return fig


def dependence(expl: Any, field: str, *, ax: Any = None) -> Any:
    """shap scatter of one field's value against its contribution."""
    import matplotlib.pyplot as plt
    import shap

    fields = list(expl.contributions.columns)
    if field not in fields:
        raise ValueError(
            f"field={field!r} is not a field of this explanation; expected one of "
            f"{', '.join(fields)}."
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
    sh = expl.to_shap(labels=True)
    shap.plots.scatter(sh[:, fields.index(field)], ax=ax, show=False)
    ax.set_ylabel(_SCALE_AXIS[expl.scale])
    fig = ax.figure
    _synthetic_note(fig, expl)
    return fig


def waterfall(expl: Any, record: Any, *, max_display: int = 10) -> Any:
    """shap waterfall of one record on a new figure."""
    import matplotlib.pyplot as plt
    import shap

    pos = expl._position(record)
    plt.figure(figsize=(7.5, 0.45 * max_display + 1.5))
    shap.plots.waterfall(expl.to_shap()[pos], max_display=int(max_display), show=False)
    fig = plt.gcf()
    rid = expl.contributions.index[pos]
    from spinerisk.explanation._text import risk_with_interval

    bounds = None if expl.risk_interval is None else expl.risk_interval.iloc[pos]
    shown = risk_with_interval(expl.risk.iloc[pos], bounds, expl.interval)
    fig.suptitle(
        f"{rid}: {expl.endpoint.replace('_', ' ')} risk {shown} ({expl.scale})",
        fontsize=10,
    )
    _synthetic_note(fig, expl)
    return fig
