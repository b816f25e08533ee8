"""``explain(model, records)``: exact per-record explanations in clinical fields."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.endpoints import check_horizon, horizon_in_unit, stated_horizon
from spinerisk.explanation import _text
from spinerisk.io import as_frame
from spinerisk.reference import trained_on_synthetic

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["Explanation", "explain"]

_SCALE_WORDS = {
    "log-odds": "log-odds of the outcome (higher = more likely)",
    "log-hazard": "log hazard ratio against the average training record (higher = sooner)",
    "log-time": "expected log time to the event (higher = later, i.e. lower risk)",
}


class Explanation:
    """Per-record contributions of clinical fields to a fitted model's output.

    Built by :func:`explain`; not meant to be created by hand.

    Attributes
    ----------
    contributions : DataFrame of shape (n_records, n_fields)
        Indexed by record id, one column per clinical field, on the margin scale
        (``scale``). ``contributions.sum(axis=1) + base_value == output`` (exact up to
        floating point).
    feature_contributions : DataFrame of shape (n_records, n_columns)
        The same before grouping, one column per model-matrix column
        (``t2_pattern=confined_high``, ``hu_l1_missing``, ``tlj``, ...).
    base_value : float
        Margin of the reference (the training average: the expected tree margin or
        the linear predictor at the training mean of the design matrix).
    output : Series
        The model's margin per record, computed by the model itself.
    scale : {"log-odds", "log-hazard", "log-time"}
        Scale of ``contributions``, ``base_value`` and ``output``. For ``"log-time"``
        (boosted AFT), a positive contribution means a later event, i.e. lower risk.
    horizon : float
        Days at which ``risk`` is given (``horizon_days`` in :meth:`to_frame`).
    time_unit : str
        The endpoint's unit, in which the summaries name the horizon ("26 weeks").
    risk : Series
        The model's risk (probability) at ``horizon``, as ``predict_risk`` returns it.
    risk_interval : DataFrame or None
        Columns ``lo`` and ``hi``, indexed like ``risk``: the per-patient interval of
        the risk (``RiskModel.fit_intervals``), at coverage ``interval``; None when the
        model has no bootstrap refits.
    interval : float or None
        Coverage of ``risk_interval`` (0.9 for 90%), or None.
    base_risk : float
        Risk of the reference (a record sitting at ``base_value``; for competing risks,
        with every cause-specific model at its reference).
    risk_points : DataFrame of shape (n_records, n_fields)
        Contributions converted to percentage points of risk:
        ``100 * base_risk + risk_points.sum(axis=1) == 100 * risk``. An
        approximation on the probability scale, see Notes.
    values : DataFrame of shape (n_records, n_fields)
        The clinical input values of each field, as shown to users.
    labels : dict
        Field -> short clinical label.
    endpoint : str
        Endpoint name (``"nonunion"``, ``"collapse"``, ``"future_fracture"``).
    treatment_fields : tuple of str
        Fields with the treatment role, whose attributions are not causal.
    method : str
        How the contributions were computed.
    synthetic : bool
        Whether the records, or the records the model was trained on, are labelled
        synthetic; plots and the command line then say SYNTHETIC DATA.
    descriptions : dict
        Field -> its description in the model's schema (what the field means).
    units : dict
        Field -> its unit in the model's schema (empty when unitless).

    Notes
    -----
    **Exactness.** Contributions are exact on the margin scale: native tree SHAP for
    the boosters (XGBoost ``pred_contribs``, LightGBM ``pred_contrib``) and
    ``coefficient x (value - training mean)`` for logistic and Cox regression. For the
    calibrated boosted binary models, each of the cross-validation folds is a booster
    followed by a sigmoid calibration ``logit = -(A_k * margin_k + B_k)``, a straight
    line, so its SHAP values scale by ``-A_k``; the explained ``output`` is the mean
    calibrated log-odds over folds, exactly additive. The model's probability is the
    mean of the fold probabilities, which is close to, but not exactly, the sigmoid of
    ``output``.

    **Percentage points.** Risk is not additive in the fields. ``risk_points`` spread
    ``risk - base_risk`` over fields in proportion to their margin contributions:
    ``points_f = contribution_f * (g(output) - g(base_value)) / (output - base_value)``
    where ``g`` maps the margin to risk at the horizon (the secant slope; the derivative
    when output and base coincide). Because ``g`` is monotone the slope is bounded, and
    every field keeps the sign of its margin contribution (reversed for log-time). For
    the boosted binary ensemble this is done per fold and averaged. For competing risks
    the fracture CIF also depends on the death model: the conversion walks from the
    reference to the record, first moving the death log hazard (its fields get the
    change in fracture CIF caused by a different risk of dying first), then the
    fracture log hazard. Percentage points are therefore a faithful *apportioning* of
    the risk difference, not Shapley values of the risk itself.

    **Not causal.** Contributions describe what the model does with a record, not what
    would happen if a value were changed. Treatment fields are confounded by
    indication: a beneficial treatment given to the sickest patients can look harmful.
    """

    def __init__(
        self,
        *,
        contributions: pd.DataFrame,
        feature_contributions: pd.DataFrame,
        base_value: float,
        output: pd.Series,
        scale: str,
        horizon: float,
        risk: pd.Series,
        base_risk: float,
        risk_points: pd.DataFrame,
        values: pd.DataFrame,
        labels: dict[str, str],
        endpoint: str,
        treatment_fields: tuple[str, ...],
        method: str,
        units: dict[str, str],
        synthetic: bool = False,
        descriptions: dict[str, str] | None = None,
        risk_interval: pd.DataFrame | None = None,
        interval: float | None = None,
        time_unit: str = "days",
    ) -> None:
        self.contributions = contributions
        self.feature_contributions = feature_contributions
        self.base_value = base_value
        self.output = output
        self.scale = scale
        self.horizon = horizon
        self.risk = risk
        self.base_risk = base_risk
        self.risk_points = risk_points
        self.values = values
        self.labels = labels
        self.endpoint = endpoint
        self.treatment_fields = treatment_fields
        self.method = method
        self._units = units
        self.units = dict(units)
        self.synthetic = synthetic
        self.descriptions = dict(descriptions or {})
        self.risk_interval = risk_interval
        self.interval = interval
        self.time_unit = time_unit

    def __repr__(self) -> str:
        return (
            f"Explanation({self.endpoint}, {len(self.contributions)} records x "
            f"{self.contributions.shape[1]} fields, scale={self.scale!r}, "
            f"horizon={horizon_in_unit(self.horizon, self.time_unit)})"
        )

    def __len__(self) -> int:
        return len(self.contributions)

    # -- summaries ------------------------------------------------------------------------
    def importance(self, kind: str = "margin") -> pd.Series:
        """Global importance: mean absolute contribution per field, largest first.

        Parameters
        ----------
        kind : {"margin", "points"}, default="margin"
            ``"margin"``: mean ``|contribution|`` on ``scale``; ``"points"``: mean
            ``|risk_points|`` in percentage points.

        Returns
        -------
        Series
            Indexed by field, sorted descending.
        """
        if kind not in ("margin", "points"):
            raise ValueError(f"kind must be 'margin' or 'points'; got kind={kind!r}.")
        frame = self.contributions if kind == "margin" else self.risk_points
        imp = frame.abs().mean(axis=0).sort_values(ascending=False, kind="stable")
        imp.name = f"mean_abs_{'contribution' if kind == 'margin' else 'risk_points'}"
        return imp

    def _driver_order(self, rid_pos: int) -> pd.Series:
        pts = self.risk_points.iloc[rid_pos]
        return pts.reindex(pts.abs().sort_values(ascending=False, kind="stable").index)

    def top_drivers(self, k: int = 3) -> pd.Series:
        """The ``k`` fields that move each record's risk most, as one short string.

        Parameters
        ----------
        k : int, default=3
            Fields per record.

        Returns
        -------
        Series of str
            Indexed by record id, e.g. ``"t2_pattern=confined_high +14.0 pts;
            level=T12 +8.1 pts; age_years=84 +2.2 pts"``; treatment fields are marked
            ``(not causal)``.
        """
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be an integer >= 1; got k={k!r}.")
        out = []
        for i in range(len(self.risk_points)):
            parts = []
            for field, pts in self._driver_order(i).head(int(k)).items():
                value = _text.short_value(self.values.iloc[i].get(field))
                mark = " (not causal)" if field in self.treatment_fields else ""
                parts.append(f"{field}={value} {pts:+.1f} pts{mark}")
            out.append("; ".join(parts))
        return pd.Series(out, index=self.contributions.index, name="top_drivers", dtype=object)

    def sentences(self, k: int = 3, min_points: float = 0.5) -> pd.Series:
        """One plain-language line per record.

        Parameters
        ----------
        k : int, default=3
            Largest drivers mentioned (by absolute percentage points).
        min_points : float, default=0.5
            Drivers moving the risk by fewer percentage points are not mentioned.

        Returns
        -------
        Series of str
            Indexed by record id, e.g. ``"Nonunion risk 41% (90% interval 33-50%)
            (reference risk 16%).
            Raises it: T2 confined high signal (+14 points), level T12
            (thoracolumbar junction) (+8). Lowers it: age 66 years (-3)."``, with a
            non-causal warning when a treatment field is mentioned. The interval is
            shown when the model has bootstrap refits (``fit_intervals``).
        """
        what = self.endpoint.replace("_", " ").capitalize()
        horizon = (
            _text.horizon_words(self.horizon)
            if self.time_unit == "days"
            else horizon_in_unit(self.horizon, self.time_unit)
        )
        # a binary endpoint without a horizon (internal horizon 0) has just "risk"
        head = f"{what} risk" if self.horizon == 0 else f"{what} risk at {horizon}"
        out = []
        for i in range(len(self.risk_points)):
            drivers = self._driver_order(i)
            drivers = drivers[drivers.abs() >= min_points].head(int(k))
            row = self.values.iloc[i]
            ups = [self._phrase(f, row.get(f), p) for f, p in drivers.items() if p > 0]
            downs = [self._phrase(f, row.get(f), p) for f, p in drivers.items() if p < 0]
            shown = _text.risk_with_interval(
                self.risk.iloc[i],
                None if self.risk_interval is None else self.risk_interval.iloc[i],
                self.interval,
            )
            text = f"{head} {shown} (reference risk {100 * self.base_risk:.0f}%)."
            if ups:
                text += " Raises it: " + ", ".join(ups) + "."
            if downs:
                text += " Lowers it: " + ", ".join(downs) + "."
            if not ups and not downs:
                text += f" No single field moves it by {min_points:g} points or more."
            if any(f in self.treatment_fields for f in drivers.index):
                text += " " + _text.NOT_CAUSAL
            out.append(text)
        return pd.Series(out, index=self.contributions.index, name="sentence", dtype=object)

    @property
    def note(self) -> str:
        """What the contributions are and are not: they describe the model, not causes;
        treatment confounding is named when the model reads a treatment field."""
        return _text.not_causes(self.treatment_fields)

    def _phrase(self, field: str, value: Any, pts: float) -> str:
        words = _text.describe(field, value, self._units.get(field, ""))
        return f"{words} ({_text.points_text(pts / 100)} points)"

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per record and field.

        Returns
        -------
        DataFrame
            Columns: record id, ``field``, ``label``, ``value``, ``contribution``
            (margin), ``risk_points``, ``risk``, ``base_risk``, ``scale``, ``horizon_days``;
            with an interval, also ``risk_lo`` and ``risk_hi`` after ``risk``.
        """
        idx_name = self.contributions.index.name or "record_id"
        contrib = self.contributions.stack().rename("contribution")
        points = self.risk_points.reindex_like(self.contributions).stack().rename("risk_points")
        values = self.values.reindex_like(self.contributions).astype(object)
        shown = values.apply(lambda col: col.map(_text.short_value)).stack().rename("value")
        frame = pd.concat([shown, contrib, points], axis=1)
        frame.index.names = [idx_name, "field"]
        frame = frame.reset_index()
        frame.insert(2, "label", frame["field"].map(lambda f: self.labels.get(f, f)))
        frame["risk"] = frame[idx_name].map(self.risk)
        if self.risk_interval is not None:
            frame["risk_lo"] = frame[idx_name].map(self.risk_interval["lo"])
            frame["risk_hi"] = frame[idx_name].map(self.risk_interval["hi"])
        frame["base_risk"] = self.base_risk
        frame["scale"] = self.scale
        frame["horizon_days"] = stated_horizon(self.horizon)  # None without a horizon
        return frame

    # -- shap and plots ----------------------------------------------------------------------
    def _numeric_values(self) -> pd.DataFrame:
        out = {}
        for field in self.contributions.columns:
            col = self.values[field]
            if isinstance(col.dtype, pd.CategoricalDtype):
                codes = col.cat.codes.astype(float)
                out[field] = codes.where(codes >= 0)
            else:
                out[field] = pd.to_numeric(col.astype(object), errors="coerce").astype(float)
        return pd.DataFrame(out, index=self.values.index)

    def to_shap(self, labels: bool = True) -> Any:
        """The grouped contributions as a :class:`shap.Explanation`.

        Parameters
        ----------
        labels : bool, default=True
            Name features by their clinical label (else by field name).

        Returns
        -------
        shap.Explanation
            ``values`` = ``contributions``, ``base_values`` = ``base_value``, ``data``
            numeric (category codes, booleans as 0/1) and ``display_data`` the values
            as text.
        """
        import shap

        fields = list(self.contributions.columns)
        names = [self.labels.get(f, f) if labels else f for f in fields]
        display = self.values[fields].astype(object).apply(lambda c: c.map(_text.short_value))
        return shap.Explanation(
            values=self.contributions.to_numpy(dtype=np.float64),
            base_values=np.full(len(self), float(self.base_value)),
            data=self._numeric_values()[fields].to_numpy(dtype=np.float64),
            display_data=display.to_numpy(dtype=object),
            feature_names=names,
        )

    def plot_importance(self, ax: Any = None, max_display: int = 15, kind: str = "margin") -> Any:
        """Bar chart of :meth:`importance`.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None makes a new figure.
        max_display : int, default=15
            Fields shown.
        kind : {"margin", "points"}, default="margin"
            As in :meth:`importance`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from spinerisk.explanation._plots import importance_bar

        return importance_bar(self, ax=ax, max_display=max_display, kind=kind)

    def plot_beeswarm(self, max_display: int = 15) -> Any:
        """shap beeswarm of the grouped contributions (one dot per record and field).

        Parameters
        ----------
        max_display : int, default=15
            Fields shown.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from spinerisk.explanation._plots import beeswarm

        return beeswarm(self, max_display=max_display)

    def plot_dependence(self, field: str, ax: Any = None) -> Any:
        """shap dependence (scatter) plot: a field's value against its contribution.

        Parameters
        ----------
        field : str
            A field in ``contributions.columns``.
        ax : matplotlib Axes or None, default=None
            Axes to draw on.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from spinerisk.explanation._plots import dependence

        return dependence(self, field, ax=ax)

    def plot_waterfall(self, record: Any, max_display: int = 10) -> Any:
        """shap waterfall of one record, from the base value to its output.

        Parameters
        ----------
        record : str or int
            Record id (index label); an int not among the ids is a position.
        max_display : int, default=10
            Fields shown (the rest are summed).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from spinerisk.explanation._plots import waterfall

        return waterfall(self, record, max_display=max_display)

    def _position(self, record: Any) -> int:
        index = self.contributions.index
        if record in index:
            return int(index.get_loc(record))
        if isinstance(record, numbers.Integral) and not isinstance(record, bool):
            pos = int(record)
            if -len(index) <= pos < len(index):
                return pos % len(index)
        shown = ", ".join(map(str, index[:5]))
        raise ValueError(
            f"record={record!r} is neither a record id nor a position of this explanation "
            f"({len(index)} records; ids such as {shown})."
        )


# -- the public function ------------------------------------------------------------------
def _check_model(model: RiskModel) -> None:
    from sklearn.exceptions import NotFittedError

    from spinerisk.models._state import is_risk_model

    if not is_risk_model(model):
        raise TypeError(f"model must be a fitted spinerisk RiskModel; got {type(model).__name__}.")
    if not hasattr(model, "estimator_"):
        raise NotFittedError(
            "This RiskModel is not fitted yet: call model.fit(cohort) before explain()."
        )


def _check_horizon(model: RiskModel, horizon: Any) -> float:
    return check_horizon(
        model.endpoint_,
        model.horizons_,
        horizon,
        action="explained at",
        last_event=model.last_event_days,
    )


def explain(
    model: RiskModel,
    records: Any,
    horizon: float | None = None,
    *,
    background: Any = None,
    interval: float | None = None,
) -> Explanation:
    """Explain a fitted model's risks record by record, in clinical fields.

    Parameters
    ----------
    model : RiskModel
        Fitted model (any endpoint and backend).
    records : DataFrame, dict or list of dicts
        Records with the schema's baseline fields; validated first.
    horizon : float or None, default=None
        When risk is explained, in the endpoint's ``time_unit`` (days for the built-in
        endpoints). None: the model's first horizon. Binary endpoints have one fixed
        horizon.
    background : DataFrame or None, default=None
        Linear models only (ignored for boosters, whose reference is the training
        distribution stored in the trees): records whose mean design matrix is the
        reference point. None uses the training mean, rebuilt exactly from the model's
        training summary ``reference_`` (or a stored ``design_mean_``).
    interval : float or None, default=None
        Coverage of the risk's interval, in (0, 1). None: 0.9 when the model has
        bootstrap refits (``RiskModel.fit_intervals``), no interval otherwise. A value
        given for a model without refits is refused.

    Returns
    -------
    Explanation
        Contributions on the margin scale, risks and percentage points; see
        :class:`Explanation` for the scales and the approximations.

    Notes
    -----
    The contributions describe the model, not causes. Treatment is confounded by
    indication: its attributions must not be read as treatment effects.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.explanation import explain
    >>> cohort = sr.make_spine_cohort(1500, seed=0)  # synthetic, not real patients
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> ex = explain(model, cohort.head(3))
    >>> ex.scale, ex.contributions.shape[0]
    ('log-odds', 3)
    >>> gap = ex.contributions.sum(axis=1) + ex.base_value - ex.output
    >>> bool(gap.abs().max() < 1e-9)
    True
    >>> explain(model, cohort.head(3), horizon=365.25)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The nonunion endpoint is a binary outcome at 182.62 days; ...
    """
    from spinerisk.explanation import _compute
    from spinerisk.schema import validate

    _check_model(model)
    h = _check_horizon(model, horizon)
    checked: pd.DataFrame = validate(as_frame(records), model.input_schema_)  # type: ignore[assignment]
    linear = model.backend_ in ("linear", "spline")
    bg = None if background is None or not linear else validate(as_frame(background), model.schema_)
    ep = model.endpoint_
    if ep.kind == "binary":
        parts = _compute.binary(model, checked, bg)
    elif ep.kind == "competing":
        parts = _compute.competing(model, checked, h, bg)
    else:
        parts = _compute.survival(model, checked, h, bg)

    ids = pd.Index(checked[model.id_field_].astype(object).to_numpy(), name=model.id_field_)
    level, risk_interval = _risk_interval(model, checked, h, parts.risk, interval, ids)
    features = parts.features.set_axis(ids, axis=0)
    contributions = _compute.group_by_field(features, model.schema_)
    points = (100.0 * parts.points).set_axis(ids, axis=0)
    points = points.reindex(columns=contributions.columns, fill_value=0.0)
    schema = model.schema_
    values = pd.DataFrame(index=ids)
    units: dict[str, str] = {}
    # values the model used: derived fields (Genant grade from height loss, BMI from
    # height and weight, region from level, ...) where the record itself lacks them
    from spinerisk.features._clinical import ClinicalFeatures

    used = ClinicalFeatures(model.schema_).fit_transform(checked)
    for field in contributions.columns:
        if field in checked.columns:
            given = checked[field].astype(object)
            if field in used.columns:  # e.g. a grade derived from the height loss
                given = given.where(given.notna(), used[field].astype(object))
            values[field] = given.to_numpy()
        elif field in used.columns:
            values[field] = used[field].to_numpy()
        else:
            values[field] = np.nan
        if field in schema.names:
            units[field] = schema[field].unit
    treatment = tuple(f.name for f in schema.by_role("treatment"))
    return Explanation(
        contributions=contributions,
        feature_contributions=features,
        base_value=float(parts.base_value),
        output=pd.Series(parts.output, index=ids, name="output"),
        scale=parts.scale,
        horizon=h,
        risk=pd.Series(parts.risk, index=ids, name=model.endpoint_.risk_column(h)),
        base_risk=float(parts.base_risk),
        risk_points=points,
        values=values,
        labels={f: _text.label(f) for f in contributions.columns},
        endpoint=ep.name,
        treatment_fields=tuple(f for f in treatment if f in contributions.columns),
        method=parts.note,
        units=units,
        synthetic=bool(getattr(records, "attrs", {}).get("synthetic", False))
        or bool(trained_on_synthetic(model)),
        descriptions={f: schema[f].description for f in contributions.columns if f in schema},
        risk_interval=risk_interval,
        interval=level,
        time_unit=ep.time_unit,
    )


#: Coverage of the interval an explanation shows when none is asked for.
DEFAULT_INTERVAL = 0.9


def _risk_interval(
    model: RiskModel, checked: pd.DataFrame, horizon: float, risk: Any, interval: Any, ids: pd.Index
) -> tuple[float | None, pd.DataFrame | None]:
    """The interval level and the ``lo``/``hi`` frame of the explained risks, or Nones."""
    from spinerisk.models._interval import bootstrap_risks, interval_bounds

    if interval is None:
        if not getattr(model, "interval_models_", None):
            return None, None
        interval = DEFAULT_INTERVAL
    level = model._interval_level(interval)
    risk = np.asarray(risk, dtype=float).reshape(-1, 1)
    boot = bootstrap_risks(model.interval_models_, checked, (horizon,))
    lo, hi = interval_bounds(risk, boot, level, model.interval_info_.get("method", "percentile"))
    return level, pd.DataFrame({"lo": lo[:, 0], "hi": hi[:, 0]}, index=ids)
