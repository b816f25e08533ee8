"""The training reference: a JSON summary of the records a model was fitted on.

Drift detection, per-record input checks and monitoring reports compare new records with
this summary, so a deployed bundle never needs its training records.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["REFERENCE_FORMAT", "REFERENCE_VERSION", "build_reference"]

#: Value of ``reference["format"]``.
#: Default share of missing training values below which a missing value is flagged:
#: "essentially never missing in training". (It was 0.05 before: a field missing in
#: about 5% of training records then flagged every new record that lacked it.)
RARELY_MISSING_BELOW = 0.01
REFERENCE_FORMAT = "spinerisk-reference"
#: Version of the reference layout.
REFERENCE_VERSION = 1

_SAMPLE_METHOD = (
    "seeded random subsample of at most {size} observed values per field, sorted within "
    "the field; no identifiers are stored and each field is sampled and sorted on its own, "
    "so values of different fields cannot be linked back into records"
)


def build_reference(
    model: RiskModel,
    records: pd.DataFrame,
    *,
    n_bins: int = 10,
    sample_size: int = 2000,
    random_state: int = 0,
    rarely_missing_below: float = RARELY_MISSING_BELOW,
) -> dict[str, Any]:
    """Summarise the training records of a fitted model for later monitoring.

    Parameters
    ----------
    model : RiskModel
        A fitted model. Its baseline predictors (``model.endpoint_.predictors(schema)``)
        are summarised, and its predictions on ``records`` give the reference
        distribution of predicted risk.
    records : DataFrame
        The records the model was fitted on. They are validated; when the endpoint's
        outcome columns are present, only eligible records (outcome observed) are kept,
        as in :meth:`RiskModel.fit`.
    n_bins : int, default=10
        Quantile bins per numeric field (deciles) for the population stability index.
        Tied quantiles are merged, so discrete fields get fewer bins.
    sample_size : int, default=2000
        At most this many observed values per numeric field (and per prediction
        horizon) are kept for two-sample Kolmogorov-Smirnov tests.
    random_state : int, default=0
        Seed of the subsample.
    rarely_missing_below : float, default=0.01
        The ``rarely_missing`` threshold of the input checks (see
        :func:`input_warnings`) used for ``flagged_share``; :func:`drift` compares with
        the same threshold.

    Returns
    -------
    dict
        JSON-serialisable (plain ``float``/``int``/``str``/``list``/``dict``) with keys
        ``format``, ``version``, ``created_utc``, ``endpoint``, ``kind``, ``horizons``,
        ``n``, ``synthetic``, ``sample_method``, ``fields`` (per predictor: ``kind``
        ``"numeric"`` or ``"categorical"``, ``n``, ``n_missing``, ``missing_rate``; for
        numbers ``min``, ``max``, ``mean``, ``sd``, ``bin_edges`` (interior cut points,
        bins closed on the right), ``bin_counts`` (observed values per bin) and
        ``sample``; for categories ``dtype`` and ``counts`` per code) and
        ``predictions`` (the same numeric summary for each ``risk_<days>d`` column) and
        ``flagged_share``: the leave-one-out share of training records that the input
        checks would flag (the chance level for new records from the same population),
        computed with ``rarely_missing_below`` (stored under that key).

    Raises
    ------
    ValueError
        If the model is not fitted, ``records`` has no eligible record, or a parameter is
        out of range.

    See Also
    --------
    spinerisk.monitor.drift : Compares new records with the reference.
    spinerisk.monitor.input_warnings : Per-record checks against the reference.

    Notes
    -----
    The reference holds summaries, not records: counts, quantile cut points and, for
    numeric fields, a subsample of at most ``sample_size`` values without identifiers.
    Each field's subsample is drawn and sorted independently, so the stored values of
    different fields cannot be re-assembled into a patient's record. Extreme values
    (``min``/``max``) are stored because the out-of-range check needs them; with very
    small training cohorts consider whether they identify anyone.

    Examples
    --------
    >>> import json
    >>> import spinerisk as sr
    >>> from spinerisk.reference import build_reference
    >>> cohort = sr.make_spine_cohort(600, seed=0)  # SYNTHETIC
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)
    >>> ref = build_reference(model, cohort)
    >>> ref["fields"]["age_years"]["kind"], ref["fields"]["treatment"]["kind"]
    ('numeric', 'categorical')
    >>> ref["synthetic"], list(ref["predictions"])
    (True, ['risk_183d'])
    >>> json.loads(json.dumps(ref)) == ref  # plain JSON
    True
    """
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.exceptions import DataQualityWarning
    from spinerisk.schema import validate

    check_is_fitted(model, "estimator_")
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2; got n_bins={n_bins!r}.")
    if not isinstance(sample_size, int | np.integer) or sample_size < 10:
        raise ValueError(f"sample_size must be an integer >= 10; got sample_size={sample_size!r}.")
    _check_threshold(rarely_missing_below)
    if not isinstance(records, pd.DataFrame):
        raise TypeError(f"records must be a DataFrame; got {type(records).__name__}.")
    ep = model.endpoint_
    checked = validate(records, model.schema_)
    if all(c in checked.columns for c in ep.outcome_columns):
        checked = checked[ep.eligible(checked, model.schema_)]
    if not len(checked):
        raise ValueError(f"No eligible records for the {ep.name} endpoint in `records`.")
    with warnings.catch_warnings():  # training records cannot be outside their own range
        warnings.simplefilter("ignore", DataQualityWarning)
        predicted = model.predict_risk(checked)
    risk = predicted[[c for c in predicted.columns if str(c).startswith("risk_")]]
    return summarise_training(
        model,
        checked,
        risk,
        synthetic=bool(records.attrs.get("synthetic", False)),
        n_bins=n_bins,
        sample_size=sample_size,
        random_state=random_state,
        rarely_missing_below=rarely_missing_below,
    )


def summarise_training(
    model: RiskModel,
    checked: pd.DataFrame,
    risk: pd.DataFrame,
    *,
    synthetic: bool,
    n_bins: int = 10,
    sample_size: int = 2000,
    random_state: int = 0,
    rarely_missing_below: float = RARELY_MISSING_BELOW,
) -> dict[str, Any]:
    """The reference of :func:`build_reference` from records already validated and
    restricted to the eligible ones, and the model's ``risk_<days>d`` columns for them
    (:meth:`RiskModel.fit` has both at hand and calls this directly)."""
    ep = model.endpoint_
    schema = model.schema_
    rng = np.random.default_rng(random_state)

    fields: dict[str, Any] = {}
    for name in ep.predictors(schema):
        if name not in checked.columns:
            continue
        spec = schema[name]
        if spec.is_numeric and spec.categories is None:
            fields[name] = _numeric_summary(checked[name], n_bins, sample_size, rng)
        else:
            fields[name] = _categorical_summary(checked[name], spec.dtype)

    predictions = {c: _numeric_summary(risk[c], n_bins, sample_size, rng) for c in risk.columns}
    reference: dict[str, Any] = {
        "format": REFERENCE_FORMAT,
        "version": REFERENCE_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endpoint": ep.name,
        "kind": ep.kind,
        "horizons": [float(h) for h in model.horizons_],
        "n": int(len(checked)),
        "synthetic": synthetic,
        "sample_method": _SAMPLE_METHOD.format(size=int(sample_size)),
        "fields": fields,
        "predictions": predictions,
    }
    reference["flagged_share"] = _leave_one_out_flagged_share(checked, fields, rarely_missing_below)
    reference["rarely_missing_below"] = float(rarely_missing_below)
    return reference


def _leave_one_out_flagged_share(
    records: pd.DataFrame, fields: dict[str, Any], rarely_missing_below: float
) -> float:
    """Share of training records that the input checks would flag had they been new.

    A record is outside the range of the others when it alone holds the minimum or the
    maximum, and its code is unseen by the others when no other record has it. This
    leave-one-out share estimates how often a new record from the training population is
    flagged by chance, the baseline that :func:`drift` compares the flagged share with.
    """
    flagged = np.zeros(len(records), dtype=bool)
    for name, spec in fields.items():
        col = records[name]
        missing = col.isna().to_numpy(dtype=bool)
        if spec["missing_rate"] < rarely_missing_below:
            flagged |= missing
        if spec["kind"] == "numeric":
            x = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
            for extreme in (spec["min"], spec["max"]):
                at = x == extreme
                if at.sum() == 1:
                    flagged |= at
        else:
            text = col.astype(str).to_numpy(dtype=object)
            singletons = [c for c, k in spec["counts"].items() if k == 1]
            flagged |= ~missing & np.isin(text, singletons)
    return float(flagged.mean()) if len(flagged) else 0.0


def _numeric_summary(
    col: pd.Series, n_bins: int, sample_size: int, rng: np.random.Generator
) -> dict[str, Any]:
    x = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    missing = np.isnan(x)
    obs = np.sort(x[~missing])
    out: dict[str, Any] = {
        "kind": "numeric",
        "n": int(len(x)),
        "n_missing": int(missing.sum()),
        "missing_rate": float(missing.mean()) if len(x) else 0.0,
    }
    if not len(obs):
        out.update(min=None, max=None, mean=None, sd=None, bin_edges=[], bin_counts=[], sample=[])
        return out
    edges = np.unique(np.quantile(obs, np.arange(1, n_bins) / n_bins))
    counts = np.bincount(np.searchsorted(edges, obs, side="left"), minlength=len(edges) + 1)
    if len(obs) > sample_size:
        sample = np.sort(rng.choice(obs, size=sample_size, replace=False))
    else:
        sample = obs
    out.update(
        min=float(obs[0]),
        max=float(obs[-1]),
        mean=float(obs.mean()),
        sd=float(obs.std(ddof=1)) if len(obs) > 1 else 0.0,
        bin_edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in counts],
        sample=[float(v) for v in sample],
    )
    return out


def _categorical_summary(col: pd.Series, dtype: str) -> dict[str, Any]:
    missing = col.isna().to_numpy()
    codes = col[~missing].astype(str).value_counts(sort=False)
    return {
        "kind": "categorical",
        "dtype": "bool" if dtype == "bool" else "category",
        "n": int(len(col)),
        "n_missing": int(missing.sum()),
        "missing_rate": float(missing.mean()) if len(col) else 0.0,
        "counts": {str(k): int(v) for k, v in sorted(codes.items()) if v > 0},
    }


def _as_reference(obj: Any, *, complete: bool = True) -> dict[str, Any]:
    """The reference dict of a model (``reference_``) or a dict, checked.

    With ``complete=False`` a model without ``reference_`` gets a partial reference
    built from its ``training_ranges_`` (ranges and codes only, no missing rates).
    """
    if isinstance(obj, dict):
        ref = obj
    elif getattr(obj, "reference_", None) is not None:
        ref = obj.reference_
    elif not complete and hasattr(obj, "training_ranges_"):
        return _reference_from_ranges(obj.training_ranges_)
    else:
        raise ValueError(
            f"{type(obj).__name__} has no training reference (`reference_`); build one with "
            "spinerisk.monitor.build_reference(model, training_records) and pass it, or "
            "attach it as model.reference_."
        )
    if not isinstance(ref, dict) or ref.get("format") != REFERENCE_FORMAT:
        raise ValueError(
            f"Not a spinerisk training reference: expected a dict with format="
            f"{REFERENCE_FORMAT!r}; got {type(ref).__name__} with format="
            f"{ref.get('format') if isinstance(ref, dict) else None!r}."
        )
    if ref.get("version") != REFERENCE_VERSION:
        raise ValueError(
            f"Training reference version {ref.get('version')!r} is not supported; expected "
            f"{REFERENCE_VERSION}. Rebuild it with spinerisk.monitor.build_reference."
        )
    if complete and ref.get("partial"):
        raise ValueError(
            "This training reference holds ranges only; drift needs a full reference from "
            "spinerisk.monitor.build_reference."
        )
    return ref


def _reference_from_ranges(ranges: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in ranges.items():
        if isinstance(value, tuple):
            fields[name] = {"kind": "numeric", "min": float(value[0]), "max": float(value[1])}
        else:
            fields[name] = {"kind": "categorical", "counts": {str(v): 1 for v in value}}
        fields[name]["missing_rate"] = None
    return {
        "format": REFERENCE_FORMAT,
        "version": REFERENCE_VERSION,
        "partial": True,
        "fields": fields,
    }


def _check_threshold(value: Any) -> None:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"rarely_missing_below must be a share between 0 and 1; got {value!r}.")


def training_ranges(data: pd.DataFrame, ep: Any, schema: Any) -> dict[str, Any]:
    """Per baseline predictor in ``data``: ``(min, max)`` of a number, or the set of codes
    seen for a category or flag (``RiskModel.training_ranges_``)."""
    ranges: dict[str, Any] = {}
    for name in ep.predictors(schema):
        if name not in data.columns:
            continue
        spec = schema[name]
        col = data[name]
        if spec.is_numeric and spec.categories is None:
            x = pd.to_numeric(col, errors="coerce").dropna()
            if len(x):
                ranges[name] = (float(x.min()), float(x.max()))
        elif spec.dtype in ("category", "bool") or spec.categories is not None:
            ranges[name] = set(col.dropna().astype(object).tolist())
    return ranges


def trained_on_synthetic(model: RiskModel) -> bool | None:
    """Whether a model's training records were labelled synthetic, from its training
    reference (``reference_["synthetic"]``); None when the model has no reference."""
    reference = getattr(model, "reference_", None)
    if not isinstance(reference, dict) or "synthetic" not in reference:
        return None
    return bool(reference["synthetic"])
