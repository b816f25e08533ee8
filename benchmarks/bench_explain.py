"""Explanation speed: native tree SHAP against ``shap.TreeExplainer`` on the same boosters.

Run ``python benchmarks/bench_explain.py`` (a few minutes on 2 cores; ``--n 20000`` for a
quicker look). For each booster library (XGBoost, LightGBM) it fits a nonunion
:class:`spinerisk.RiskModel` on a synthetic cohort (SYNTHETIC data, not real patients),
then explains ``--n`` (default 100,000) synthetic patients:

* ``native``: the boosters' own exact tree SHAP (XGBoost ``pred_contribs``, LightGBM
  ``pred_contrib``) on each calibrated fold's booster;
* ``shap``: ``shap.TreeExplainer(booster).shap_values(X)`` on the same boosters and the
  same feature matrices, in the same run;

and ``shap.TreeExplainer(booster)(X)`` (the ``shap.Explanation`` call), and reports the
times, their ratios and the largest absolute difference between the sets of values. With
shap 0.51 ``TreeExplainer`` hands XGBoost and LightGBM models (tree-path-dependent, no
background data) to these same native routines, so the values agree exactly and the
ratios measure shap's overhead; shap's own C++ Tree SHAP refuses these boosters because
their trees split on categories (see ``NOTE``). It also times the
whole :func:`spinerisk.explain.explain` call (validation, feature pipelines, grouping into
clinical fields, risks and percentage points). Boosters keep the thread count they were
fitted with (one), so both routes run on one thread. Results go to
``benchmarks/results/explain.json``. This script is not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import spinerisk as sr
from spinerisk.explain import explain

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explain.json"
NOTE = (
    "For XGBoost and LightGBM models with tree_path_dependent perturbation and no "
    "background data, shap.TreeExplainer (shap_values and __call__) hands the work to the "
    "same native routines (pred_contribs / pred_contrib), so the ratio measures shap's "
    "wrapping overhead only. shap's own C++ Tree SHAP (interventional, with background "
    "data) refuses these models because they have categorical splits."
)


def _shap_values(booster: Any, X: Any) -> np.ndarray:
    import shap

    return _positive(shap.TreeExplainer(booster).shap_values(X))


def _native(booster: Any, X: Any) -> np.ndarray:
    """The booster's own exact tree SHAP (what :func:`spinerisk.explain.explain` calls)."""
    if type(booster).__name__ == "XGBClassifier":
        import xgboost as xgb

        raw = booster.get_booster().predict(
            xgb.DMatrix(X, enable_categorical=True), pred_contribs=True
        )
    else:
        raw = booster.booster_.predict(X, pred_contrib=True)
    return np.asarray(raw)[:, :-1]


def _positive(values: Any) -> np.ndarray:
    values = np.asarray(values)
    return values[..., 1] if values.ndim == 3 else values


def bench(backend: str, n_train: int, records: Any, seed: int) -> dict[str, Any]:
    """Fit one model and time native vs shap on its fold boosters."""
    import shap

    train = sr.make_spine_cohort(n_train, seed=seed)
    t0 = time.perf_counter()
    model = sr.RiskModel("nonunion", backend=backend, random_state=seed).fit(train)
    fit_s = time.perf_counter() - t0
    checked = sr.validate(records)
    folds = [cc.estimator for cc in model.estimator_.calibrated_classifiers_]
    matrices = [fold[:-1].transform(checked) for fold in folds]
    native_s = shap_s = call_s = 0.0
    max_diff = 0.0
    for fold, X in zip(folds, matrices, strict=True):
        t = time.perf_counter()
        phi = _native(fold[-1].estimator_, X)
        native_s += time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            values = _shap_values(fold[-1].estimator_, X)
        shap_s += time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            called = shap.TreeExplainer(fold[-1].estimator_)(X)
        call_s += time.perf_counter() - t
        max_diff = max(max_diff, float(np.abs(phi - _positive(called.values)).max()))
        max_diff = max(max_diff, float(np.abs(phi - values).max()))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        ex = explain(model, records)
    full_s = time.perf_counter() - t
    additivity = float((ex.contributions.sum(axis=1) + ex.base_value - ex.output).abs().max())
    trees = [int(f[-1].best_n_estimators_) for f in folds]
    return {
        "backend": backend,
        "n_train": n_train,
        "n_explained": len(checked),
        "n_features": int(matrices[0].shape[1]),
        "folds": len(folds),
        "trees_per_fold": trees,
        "fit_seconds": round(fit_s, 2),
        "native_seconds": round(native_s, 3),
        "shap_seconds": round(shap_s, 3),
        "shap_call_seconds": round(call_s, 3),
        "ratio_shap_over_native": round(shap_s / native_s, 2),
        "ratio_shap_call_over_native": round(call_s / native_s, 2),
        "max_abs_difference": max_diff,
        "explain_call_seconds": round(full_s, 2),
        "explain_additivity_error": additivity,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="patients to explain")
    parser.add_argument("--n-train", type=int, default=3000, help="training cohort size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    records = sr.make_spine_cohort(args.n, seed=args.seed + 1)
    rows = [bench(b, args.n_train, records, args.seed) for b in ("xgboost", "lightgbm")]
    header = (
        f"{'backend':<9} {'n':>8} {'native s':>9} {'shap_values s':>13} {'ratio':>6} "
        f"{'shap() s':>9} {'ratio':>6} {'max diff':>9} {'explain() s':>11}"
    )
    print("SYNTHETIC data; explanation of the nonunion model's fold boosters")
    print(header)
    for r in rows:
        print(
            f"{r['backend']:<9} {r['n_explained']:>8} {r['native_seconds']:>9.2f} "
            f"{r['shap_seconds']:>13.2f} {r['ratio_shap_over_native']:>6.2f} "
            f"{r['shap_call_seconds']:>9.2f} {r['ratio_shap_call_over_native']:>6.2f} "
            f"{r['max_abs_difference']:>9.1e} {r['explain_call_seconds']:>11.1f}"
        )
    result = {
        "description": "Native tree SHAP vs shap.TreeExplainer on the same boosters "
        "(synthetic cohort, not real patients).",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
        },
        "note": NOTE,
        "versions": {m: __import__(m).__version__ for m in ("xgboost", "lightgbm", "shap")},
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
