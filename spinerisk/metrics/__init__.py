"""Validation metrics for clinical risk predictions, as plain functions.

Every function takes array-likes (lists, numpy arrays, pandas Series), checks them (same
lengths, 0/1 outcomes, probabilities in [0, 1], finite values, times in days > 0) and
raises a ``ValueError`` naming the argument, the position and the value of the first
problem. Scalars come back as Python floats, tables as DataFrames.

Binary outcome (``y`` 0/1, ``p`` predicted probability):
:func:`roc_auc`, :func:`pr_auc`, :func:`brier_score`, :func:`scaled_brier_score`,
:func:`calibration_slope`, :func:`calibration_intercept`,
:func:`observed_expected_ratio`, :func:`expected_calibration_error`,
:func:`calibration_curve`, :func:`smoothed_calibration`, :func:`net_benefit`.

Time to event (``time`` in days, ``event`` bool, or event codes 0 censored / 1 / 2 for
competing risks): :func:`harrell_c`, :func:`uno_c`, :func:`time_dependent_auc`,
:func:`integrated_brier_score`, :func:`cause_specific_c`, :func:`competing_c`,
:func:`survival_calibration`, :func:`cif_calibration`,
:func:`observed_expected_at_horizon`, :func:`net_benefit_survival`; at a horizon with
censoring weights (IPCW) or running-window Kaplan-Meier / Aalen-Johansen estimates:
:func:`brier_score_at_horizon`, :func:`integrated_brier_score_cif`,
:func:`calibration_slope_at_horizon`, :func:`calibration_intercept_at_horizon`,
:func:`smoothed_calibration_at_horizon`.

Sample size: :func:`sample_size_adequacy` (Riley et al.'s criteria for developing a model,
via pmsampsize).

The computations come from scikit-learn, scikit-survival, lifelines and statsmodels
wherever they exist (scikit-survival and statsmodels are imported only by the functions
that need them, from the ``evaluation`` extra). On the synthetic cohort the numbers
describe a simulation, not clinical performance.

Examples
--------
>>> import spinerisk as sr
>>> from spinerisk import metrics
>>> cohort, oracle = sr.make_spine_cohort(2000, seed=0, return_oracle=True)
>>> known = cohort["nonunion"].notna().to_numpy()  # defined for conservative treatment
>>> y = cohort.loc[known, "nonunion"].astype(bool)
>>> bool(metrics.roc_auc(y, oracle.loc[known, "p_nonunion"]) > 0.6)
True
"""

from __future__ import annotations

from spinerisk.metrics._binary import (
    brier_score,
    calibration_curve,
    calibration_intercept,
    calibration_slope,
    expected_calibration_error,
    net_benefit,
    observed_expected_ratio,
    pr_auc,
    roc_auc,
    scaled_brier_score,
    smoothed_calibration,
)
from spinerisk.metrics._discrimination import (
    cause_specific_c,
    competing_c,
    harrell_c,
    integrated_brier_score,
    time_dependent_auc,
    uno_c,
)
from spinerisk.metrics._horizon import (
    cif_calibration,
    net_benefit_survival,
    observed_expected_at_horizon,
    survival_calibration,
)
from spinerisk.metrics._ipcw import (
    brier_score_at_horizon,
    calibration_intercept_at_horizon,
    calibration_slope_at_horizon,
    integrated_brier_score_cif,
    smoothed_calibration_at_horizon,
)
from spinerisk.metrics._sample_size import sample_size_adequacy

__all__ = [
    "brier_score",
    "brier_score_at_horizon",
    "calibration_curve",
    "calibration_intercept",
    "calibration_intercept_at_horizon",
    "calibration_slope",
    "calibration_slope_at_horizon",
    "cause_specific_c",
    "cif_calibration",
    "competing_c",
    "expected_calibration_error",
    "harrell_c",
    "integrated_brier_score",
    "integrated_brier_score_cif",
    "net_benefit",
    "net_benefit_survival",
    "observed_expected_at_horizon",
    "observed_expected_ratio",
    "pr_auc",
    "roc_auc",
    "sample_size_adequacy",
    "scaled_brier_score",
    "smoothed_calibration",
    "smoothed_calibration_at_horizon",
    "survival_calibration",
    "time_dependent_auc",
    "uno_c",
]
