"""Latency benchmark: one-record prediction, fast path against the batch path and peers.

Run ``python benchmarks/bench_latency.py`` (options: ``--calls``, ``--batch-calls``,
``--n-train``, ``--json``). Models are fitted on a synthetic cohort (no clinical
validity), saved as bundles and loaded back, as a downstream app would. Timed, per call:

* ``FastPredictor.predict_risk(dict)`` on the nonunion xgboost bundle (five calibrated
  boosters) and on the penalised linear bundle;
* ``RiskModel.predict_risk`` on a one-row DataFrame (the batch path), same bundles;
* a plain scikit-learn ``Pipeline(ColumnTransformer(OneHotEncoder), XGBClassifier)`` fitted
  on the same records, ``predict_proba`` on a one-row DataFrame;
* one raw ``xgboost.Booster.inplace_predict`` on a one-row numpy array (one of the five
  calibration-fold boosters), and the fast path's own call of that booster.

Each timer runs a warm-up, then ``--calls`` calls (``--batch-calls`` for the slow batch
path), and reports wall-clock p50/p99/mean plus the p50 of the calling thread's CPU time
(less sensitive to other processes on the machine). The machine's load average is
recorded with the results in ``benchmarks/results/latency.json``. Target: fast path p50
under 1 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import spinerisk as sr
from spinerisk.endpoints import get_endpoint
from spinerisk.exceptions import DataQualityWarning
from spinerisk.fastpath import FastPredictor

RESULTS = Path(__file__).parent / "results" / "latency.json"


def measure(fn: Callable[[], Any], calls: int, warmup: int = 50) -> dict[str, float]:
    """Per-call wall-clock and thread-CPU times in microseconds."""
    for _ in range(warmup):
        fn()
    wall = np.empty(calls)
    cpu = np.empty(calls)
    for i in range(calls):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        fn()
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        wall[i], cpu[i] = (w1 - w0) / 1e3, (c1 - c0) / 1e3
    return {
        "calls": calls,
        "p50_us": float(np.percentile(wall, 50)),
        "p99_us": float(np.percentile(wall, 99)),
        "mean_us": float(wall.mean()),
        "cpu_p50_us": float(np.percentile(cpu, 50)),
    }


def _record(row: pd.Series, fields: list[str]) -> dict[str, Any]:
    """A JSON-like record (str/int/float/bool/None) with the given fields."""
    out: dict[str, Any] = {}
    for name in fields:
        v = row[name]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            v = None
        elif isinstance(v, np.generic):
            v = v.item()
        out[name] = v
    return out


def _plain_pipeline(cohort: pd.DataFrame, predictors: list[str]) -> Any:
    """Pipeline(ColumnTransformer(OneHotEncoder), XGBClassifier) on the raw fields."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from xgboost import XGBClassifier

    schema = sr.SPINE_SCHEMA
    rows = cohort[cohort["nonunion"].notna()]
    X = rows[predictors].copy()
    cats = [c for c in predictors if schema[c].dtype == "category"]
    nums = [c for c in predictors if c not in cats]
    X[nums] = X[nums].apply(pd.to_numeric, errors="coerce").astype(float)
    X[cats] = X[cats].astype(object)
    pipe = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), cats)],
                    remainder="passthrough",
                ),
            ),
            (
                "model",
                XGBClassifier(n_estimators=286, max_depth=3, learning_rate=0.05, n_jobs=1),
            ),
        ]
    )
    pipe.fit(X, rows["nonunion"].astype(bool))
    return pipe, X.iloc[[0]]


def run(calls: int, batch_calls: int, n_train: int) -> dict[str, Any]:
    cohort = sr.make_spine_cohort(n_train, seed=0)  # synthetic
    new = sr.make_spine_cohort(50, seed=99).iloc[7]  # a synthetic record not in training
    endpoint = get_endpoint("nonunion")
    predictors = [p for p in endpoint.predictors(sr.SPINE_SCHEMA) if p in cohort.columns]
    record = _record(new, ["patient_id", *predictors])
    one_row = pd.DataFrame.from_records([record])
    load0 = os.getloadavg()

    results: dict[str, Any] = {}
    fast: dict[str, FastPredictor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("xgboost", "linear"):
            model = sr.RiskModel("nonunion", backend=backend).fit(cohort)
            bundle = sr.load(model.save(Path(tmp) / f"nonunion-{backend}.srb"))
            fp = FastPredictor.from_model(bundle)
            fast[backend] = fp
            fast_out = fp.predict_risk(record)
            batch_out = bundle.predict_risk(one_row)
            assert abs(fast_out["risk_183d"] - batch_out["risk_183d"].iloc[0]) <= 1e-9
            results[f"fast_path_dict[{backend}]"] = measure(
                lambda fp=fp: fp.predict_risk(record), calls
            )
            results[f"batch_path_one_row_frame[{backend}]"] = measure(
                lambda b=bundle: b.predict_risk(one_row), batch_calls, warmup=5
            )

    pipe, x_row = _plain_pipeline(cohort, predictors)
    results["sklearn_pipeline_ohe_xgbclassifier_one_row_frame"] = measure(
        lambda: pipe.predict_proba(x_row), calls
    )
    fold = fast["xgboost"]._folds[0]
    typed = fast["xgboost"]._checker.check([record])
    x_fold = fold.program.encode(fold.program.clinical_rows(typed))
    booster = fold.response.booster
    results["raw_booster_inplace_predict_one_row_array"] = measure(
        lambda: booster.inplace_predict(x_fold, validate_features=False), calls
    )
    results["fast_path_one_booster_call"] = measure(lambda: fold.response(x_fold), calls)
    results["fast_path_one_fold_total"] = measure(
        lambda: fold.proba(fold.program.clinical_rows(typed)), calls
    )
    results["fast_path_record_check"] = measure(
        lambda: fast["xgboost"]._checker.check([record]), calls
    )
    n_boosters = len(fast["xgboost"]._folds)
    trees = int(booster.num_boosted_rounds())

    fast_p50 = results["fast_path_dict[xgboost]"]["p50_us"]
    ratios = {
        name: r["p50_us"] / fast_p50
        for name, r in results.items()
        if name != "fast_path_dict[xgboost]"
    }
    import lightgbm
    import sklearn
    import xgboost

    return {
        "synthetic_data": True,
        "note": "Synthetic cohort; latency only, no clinical validity.",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load0,
            "load_average_after": os.getloadavg(),
        },
        "versions": {
            "spinerisk": sr.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__,
            "lightgbm": lightgbm.__version__,
        },
        "settings": {"calls": calls, "batch_calls": batch_calls, "n_train": n_train},
        "xgboost_ensemble": {"boosters": n_boosters, "trees_in_first_booster": trees},
        "results": results,
        "ratio_p50_vs_fast_xgboost": ratios,
        "target_p50_under_1ms": fast_p50 < 1000.0,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per fast timer")
    parser.add_argument("--batch-calls", type=int, default=200, help="timed batch-path calls")
    parser.add_argument("--n-train", type=int, default=1500, help="synthetic training records")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        out = run(args.calls, args.batch_calls, args.n_train)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    fast_p50 = out["results"]["fast_path_dict[xgboost]"]["p50_us"]
    print(f"{'timer':<52} {'p50 us':>10} {'p99 us':>10} {'cpu p50':>9} {'x fast':>8}")
    for name, r in out["results"].items():
        print(
            f"{name:<52} {r['p50_us']:>10.1f} {r['p99_us']:>10.1f} {r['cpu_p50_us']:>9.1f} "
            f"{r['p50_us'] / fast_p50:>8.2f}"
        )
    m = out["machine"]
    print(
        f"{m['cpu_count']} cores, load average {m['load_average_before'][0]:.2f} before, "
        f"{m['load_average_after'][0]:.2f} after; {out['xgboost_ensemble']['boosters']} boosters "
        f"of ~{out['xgboost_ensemble']['trees_in_first_booster']} trees. Target p50 < 1 ms: "
        f"{'met' if out['target_p50_under_1ms'] else 'NOT met'}. Wrote {args.json}."
    )


if __name__ == "__main__":
    main()
