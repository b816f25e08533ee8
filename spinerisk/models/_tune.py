"""Optional hyper-parameter search with Optuna (the ``tune`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.base import clone

from spinerisk._optional import import_optional

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["SEARCH_SPACES", "tune"]

#: Search space per booster family: name -> (low, high, log scale, integer).
SEARCH_SPACES: dict[str, dict[str, tuple[float, float, bool, bool]]] = {
    "xgboost": {
        "learning_rate": (0.01, 0.2, True, False),
        "max_depth": (2, 6, False, True),
        "min_child_weight": (1.0, 30.0, True, False),
        "subsample": (0.5, 1.0, False, False),
        "colsample_bytree": (0.4, 1.0, False, False),
        "reg_lambda": (1e-3, 30.0, True, False),
    },
    "lightgbm": {
        "learning_rate": (0.01, 0.2, True, False),
        "num_leaves": (4, 63, True, True),
        "min_child_samples": (5, 100, True, True),
        "subsample": (0.5, 1.0, False, False),
        "colsample_bytree": (0.4, 1.0, False, False),
        "reg_lambda": (1e-3, 30.0, True, False),
    },
}


def tune(
    model: RiskModel,
    cohort: pd.DataFrame,
    *,
    n_trials: int = 20,
    timeout: float | None = None,
    n_startup_trials: int = 10,
) -> Any:
    """Search the boosted model's hyper-parameters by cross-validation.

    Each trial fits a clone of ``model`` with the trial's ``booster_params`` under the
    same cross-validated metric ``RiskModel(backend="auto")`` uses (log loss for binary
    endpoints, C-index otherwise), on ``model.cv`` seeded folds. The sampler is seeded
    with ``model.random_state`` and trials run one at a time, so the same data and seed
    give the same search.

    Parameters
    ----------
    model : RiskModel
        With an explicit boosted backend (``"xgboost"``, ``"lightgbm"`` or
        ``"xgboost_aft"``); its other parameters are kept.
    cohort : DataFrame
        Validated-able records with the endpoint's outcome columns.
    n_trials : int, default=20
        Number of trials.
    timeout : float or None, default=None
        Stop after this many seconds. The number of trials then depends on the
        machine's speed, so a search stopped by ``timeout`` is not reproducible.
    n_startup_trials : int, default=10
        Trials drawn at random before the TPE sampler models the earlier ones (Optuna's
        ``TPESampler(n_startup_trials=...)``).

    Returns
    -------
    optuna.Study
        ``study.best_params`` can be passed as ``RiskModel(booster_params=...)``;
        ``study.best_value`` is the best cross-validated score (higher is better).

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.models import tune
    >>> cohort = sr.make_spine_cohort(600, seed=0)
    >>> model = sr.RiskModel("collapse", backend="xgboost", cv=3)
    >>> study = tune(model, cohort, n_trials=2)
    >>> sorted(study.best_params)[:2]
    ['colsample_bytree', 'learning_rate']
    """
    optuna = import_optional("optuna", extra="tune", purpose="hyper-parameter tuning")
    from spinerisk.endpoints import get_endpoint

    family = {"xgboost": "xgboost", "xgboost_aft": "xgboost", "lightgbm": "lightgbm"}.get(
        str(getattr(model, "backend", ""))
    )
    if family is None:
        raise ValueError(
            "tune needs a RiskModel with backend 'xgboost', 'lightgbm' or 'xgboost_aft'; "
            f"got backend={getattr(model, 'backend', None)!r}."
        )
    for name, value in (("n_trials", n_trials), ("n_startup_trials", n_startup_trials)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {name}={value!r}.")
    ep = get_endpoint(model.endpoint)
    model._check_params(ep)
    _, _, data, target = ep.labelled(cohort, model._schema())
    space = SEARCH_SPACES[family]

    def objective(trial: Any) -> float:
        params: dict[str, Any] = {}
        for name, (low, high, log, integer) in space.items():
            if integer:
                params[name] = trial.suggest_int(name, int(low), int(high), log=log)
            else:
                params[name] = trial.suggest_float(name, low, high, log=log)
        trial_model = clone(model).set_params(booster_params=params)
        trial_model._check_params(ep)
        scores = trial_model._cv_scores(trial_model.backend, ep, data, target)
        return float(scores.mean())

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(
            seed=model.random_state, n_startup_trials=n_startup_trials
        ),
    )
    study.optimize(objective, n_trials=n_trials, timeout=timeout, n_jobs=1)
    return study
