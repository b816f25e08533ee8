"""Prediction instability: each patient's risk from bootstrap refits of the model against
the model's own risk (Riley and Collins, Biometrical Journal 2023).

The refits are the model's ``interval_models_`` (``RiskModel.fit_intervals``), or are
fitted here on the training cohort when it is given. The mean absolute difference
between the refits' risks and the model's risk, over patients and refits, summarises
how much an individual's risk depends on the particular development sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["MAX_PLOT_POINTS", "prediction_instability"]

#: Most (patient, refit) points kept per horizon for the instability plot (the summary
#: figures use every point).
MAX_PLOT_POINTS = 20_000


def prediction_instability(
    model: RiskModel,
    records: pd.DataFrame,
    *,
    training_cohort: pd.DataFrame | None = None,
    n_resamples: int = 20,
    random_state: int = 0,
) -> dict[str, Any]:
    """Risks of the bootstrap refits against the model's risks, per patient.

    Parameters
    ----------
    model : RiskModel
        Fitted. Its ``interval_models_`` are used when it has them.
    records : DataFrame
        Patients to show (usually the development cohort, as Riley and Collins do);
        the eligible ones are used.
    training_cohort : DataFrame or None, default=None
        Only for a model without ``interval_models_``: the cohort it was fitted on,
        refitted ``n_resamples`` times here.
    n_resamples : int, default=20
        Refits when they are made here.
    random_state : int, default=0
        Seed of those refits' resamples.

    Returns
    -------
    dict
        ``n_models``, ``n_records``; ``summary`` (per horizon: ``horizon``,
        ``mean_abs_difference`` over patients and refits, its median and 90th
        percentile over patients, and ``max_abs_difference``); ``patients`` (per
        record and horizon: the risk, the 2.5th and 97.5th percentiles of the refits'
        risks and the mean absolute difference); ``points`` (``horizon``, ``risk``,
        ``refit_risk``, at most :data:`MAX_PLOT_POINTS` per horizon, for the plot).

    Raises
    ------
    ValueError
        If the model has no refits and no training cohort is given.

    References
    ----------
    Riley RD, Collins GS. Stability of clinical prediction models developed using
    statistical or machine learning methods. Biometrical Journal 2023;65:2200302.
    """
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.models._interval import bootstrap_risks, fit_interval_models
    from spinerisk.schema import validate

    check_is_fitted(model, "estimator_")
    models = getattr(model, "interval_models_", None)
    if not models:
        if training_cohort is None:
            raise ValueError(
                "The prediction-instability plot needs bootstrap refits of the model: call "
                "model.fit_intervals(training_cohort) first, or pass training_cohort=."
            )
        models, _ = fit_interval_models(
            model,
            training_cohort,
            n_resamples=n_resamples,
            random_state=random_state,
            n_jobs=None,
        )
    ep = model.endpoint_
    checked = validate(records, model.input_schema_)
    checked = ep.labelled(checked, model.schema_, validated=True).data
    if not len(checked):
        raise ValueError(f"No eligible records for the {ep.name} endpoint to show.")
    horizons = tuple(model.horizons_)
    risk = np.asarray(model._risk_values(checked, horizons), dtype=float)
    boot = bootstrap_risks(models, checked, horizons)
    diff = np.abs(boot - risk[None])
    ids = checked[model.id_field_].to_numpy()
    summary, patients, points = [], [], []
    for j, h in enumerate(horizons):
        per_patient = diff[:, :, j].mean(axis=0)
        summary.append(
            {
                "horizon": float(h),
                "mean_abs_difference": float(diff[:, :, j].mean()),
                "median_patient_mad": float(np.median(per_patient)),
                "p90_patient_mad": float(np.quantile(per_patient, 0.9)),
                "max_abs_difference": float(diff[:, :, j].max()),
            }
        )
        lo, hi = np.quantile(boot[:, :, j], [0.025, 0.975], axis=0)
        patients.append(
            pd.DataFrame(
                {
                    "record": ids,
                    "horizon": float(h),
                    "risk": risk[:, j],
                    "refit_p2.5": lo,
                    "refit_p97.5": hi,
                    "mean_abs_difference": per_patient,
                }
            )
        )
        keep = max(1, min(len(models), MAX_PLOT_POINTS // len(checked)))
        points.append(
            pd.DataFrame(
                {
                    "horizon": float(h),
                    "risk": np.tile(risk[:, j], keep),
                    "refit_risk": boot[:keep, :, j].ravel(),
                }
            )
        )
    return {
        "n_models": len(models),
        "n_records": len(checked),
        "summary": pd.DataFrame(summary),
        "patients": pd.concat(patients, ignore_index=True),
        "points": pd.concat(points, ignore_index=True),
    }
