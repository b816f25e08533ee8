"""Latency benchmark: one-record prediction, fast path against the batch path and peers.

Run ``python benchmarks/bench_latency.py`` (options: ``--calls``, ``--batch-calls``,
``--n-train``, ``--json``). Models are fitted on a synthetic cohort (no clinical
validity), saved as bundles and loaded back, as a downstream app would. Timed, per call:

* ``FastPredictor.predict_risk(dict)`` on the nonunion xgboost bundle (five calibrated
  boosters), with its boosters compiled to C (treelite + tl2cgen, the default) and not
  compiled (``compile=False``: XGBoost's own one-row call, the path before compilation),
  and on the penalised linear bundle;
* ``RiskModel.predict_risk`` on a one-row DataFrame (the batch path), same bundles;
* a plain scikit-learn ``Pipeline(ColumnTransformer(OneHotEncoder), XGBClassifier)`` fitted
  on the same records, ``predict_proba`` on a one-row DataFrame;
* one raw ``xgboost.Booster.inplace_predict`` on a one-row numpy array (one of the five
  calibration-fold boosters), the same for all five boosters in a row (the raw library's
  cost of the model), and the fast path's own call of that booster, compiled and not;
  one fold's features and calibrated probability, all five folds on one record as the
  fast path runs them (features computed once, one compiled input row), and the record
  check.

``--parity-records`` (default 2000) random synthetic records per endpoint and backend are
then predicted one by one with the compiled and the uncompiled fast path, and the largest
difference is reported (target: at most 1e-7). ``auto`` (stacking) is not on the fast
path: its dicts go through the batch path, so it has nothing compiled to compare.

Each timer runs a warm-up, then ``--calls`` calls (``--batch-calls`` for the slow batch
path), and reports wall-clock p50/p99/mean plus the p50 of the calling thread's CPU time
(less sensitive to other processes on the machine). The machine's load average is
recorded with the results in ``benchmarks/results/latency.json`` (and ``uptime`` before
and after). Targets: fast path p50 under 1 ms on a 2-core machine; compiled, p50 at most
100 us for the five-booster model (issue 18, point 4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
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


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover - no uptime binary
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


#: Endpoint and backends checked for parity (compiled against uncompiled one-record path).
PARITY_CASES = [
    (endpoint, backend)
    for endpoint, kind in (
        ("collapse", "binary"),
        ("nonunion", "binary"),
        ("future_fracture", "competing"),
        ("odontoid_nonunion", "binary"),
        ("cervical_mortality", "survival"),
        ("malignant_fracture", "binary"),
    )
    for backend in {
        "binary": ("linear", "xgboost", "lightgbm", "auto"),
        "competing": ("linear", "xgboost", "auto"),
        "survival": ("linear", "xgboost", "xgboost_aft", "auto"),
    }[kind]
]


def _parity_cohort(endpoint: str, n: int, seed: int) -> pd.DataFrame:
    from spinerisk.datasets import TraumaParams

    older = {"cervical_share": 1.0, "cervical_older_share": 1.0}
    kwargs: dict[str, Any] = {
        "odontoid_nonunion": {
            "mode": "trauma",
            "trauma": TraumaParams(**older, odontoid_share=1.0, upper_share=1.0),
        },
        "cervical_mortality": {"mode": "trauma", "trauma": TraumaParams(**older)},
        "malignant_fracture": {"malignant": "clinic"},
    }.get(endpoint, {})
    return sr.make_spine_cohort(n, seed=seed, **kwargs)


def parity(n_records: int, n_train: int) -> list[dict[str, Any]]:
    """Largest |compiled - uncompiled| one-record risk per endpoint and backend."""
    from spinerisk.schema._validate import validate

    rows = []
    for endpoint, backend in PARITY_CASES:
        # auto (stacking) is fitted small: only whether the fast path takes it is checked
        train = _parity_cohort(endpoint, 400 if backend == "auto" else n_train, seed=1)
        model = sr.RiskModel(endpoint, backend=backend).fit(train)
        new = _parity_cohort(endpoint, 3 * n_records, seed=2)
        records = [
            {k: _json(v) for k, v in r.items() if k != "index_date"} for r in new.to_dict("records")
        ]
        split = validate(
            pd.DataFrame.from_records(records), model.input_schema_, on_invalid="split"
        )
        records = [records[i] for i in split.valid.index[:n_records]]
        try:
            compiled = FastPredictor.from_model(model)
            plain = FastPredictor.from_model(model, compile=False)
        except sr.fastpath.UnsupportedModelError as exc:  # auto: the batch path serves it
            rows.append(
                {
                    "endpoint": endpoint,
                    "backend": backend,
                    "records": 0,
                    "compiled": False,
                    "note": f"not on the fast path, nothing compiled ({exc})",
                }
            )
            continue
        note = compiled.compile_note_
        a = np.array([_one(compiled, r) for r in records])
        b = np.array([_one(plain, r) for r in records])
        rows.append(
            {
                "endpoint": endpoint,
                "backend": backend,
                "records": len(records),
                "compiled": compiled.compiled_,
                "max_abs_difference": float(np.nanmax(np.abs(a - b))),
                "identical": bool(np.array_equal(a, b, equal_nan=True)),
                "note": note,
            }
        )
    return rows


def _one(fp: Any, rec: dict[str, Any]) -> list[float]:
    """Risks of one record by the fast path."""
    return [float(v) for c, v in fp.predict_risk(rec).items() if c.startswith("risk")]


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value


def run(calls: int, batch_calls: int, n_train: int) -> dict[str, Any]:
    cohort = sr.make_spine_cohort(n_train, seed=0)  # synthetic
    new = sr.make_spine_cohort(50, seed=99).iloc[7]  # a synthetic record not in training
    endpoint = get_endpoint("nonunion")
    predictors = [p for p in endpoint.predictors(sr.SPINE_SCHEMA) if p in cohort.columns]
    record = _record(new, ["patient_id", *predictors])
    one_row = pd.DataFrame.from_records([record])
    load0 = os.getloadavg()
    uptime0 = _uptime()

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
            if backend == "xgboost":
                assert fp.compiled_, fp.compile_note_
                plain = FastPredictor.from_model(bundle, compile=False)
                fast["xgboost_not_compiled"] = plain
                assert plain.predict_risk(record)["risk_183d"] == fast_out["risk_183d"]
                results["fast_path_dict[xgboost, not compiled]"] = measure(
                    lambda fp=plain: fp.predict_risk(record), calls
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
    boosters = [
        (f.response.booster, f.program.encode(f.program.clinical_rows(typed)))
        for f in fast["xgboost"]._folds
    ]

    def raw_all() -> None:
        for b, x in boosters:
            b.inplace_predict(x, validate_features=False)

    results["raw_five_boosters_inplace_predict_one_row_array"] = measure(raw_all, calls)
    results["fast_path_one_booster_call"] = measure(lambda: fold.response(x_fold), calls)
    plain_fold = fast["xgboost_not_compiled"]._folds[0]
    results["fast_path_one_booster_call[not compiled]"] = measure(
        lambda: plain_fold.response(x_fold), calls
    )
    results["fast_path_one_fold_total"] = measure(
        lambda: fold.proba(fold.program.clinical_rows(typed)), calls
    )
    ensemble = fast["xgboost"]._one  # one record through all five folds, work shared
    if ensemble is not None:
        results["fast_path_all_folds_one_record"] = measure(lambda: ensemble.one(typed), calls)
    results["fast_path_record_check"] = measure(
        lambda: fast["xgboost"]._checker.check([record]), calls
    )
    n_boosters = len(fast["xgboost"]._folds)
    trees = int(booster.num_boosted_rounds())

    fast_p50 = results["fast_path_dict[xgboost]"]["p50_us"]
    compiled = {
        "compile_note": fast["xgboost"].compile_note_,
        "p50_us": fast_p50,
        "target_p50_us": 100.0,
        "target_met": fast_p50 <= 100.0,
        "speedup_vs_not_compiled": results["fast_path_dict[xgboost, not compiled]"]["p50_us"]
        / fast_p50,
        "ratio_vs_raw_five_boosters": fast_p50
        / results["raw_five_boosters_inplace_predict_one_row_array"]["p50_us"],
    }
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
            "uptime_before": uptime0,
            "uptime_after": _uptime(),
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
        "compiled": compiled,
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
    parser.add_argument(
        "--parity-records",
        type=int,
        default=2000,
        help="records per endpoint and backend for the compiled/uncompiled parity (0: skip)",
    )
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        out = run(args.calls, args.batch_calls, args.n_train)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    _print_timings(out)
    if args.parity_records:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["parity"] = parity(args.parity_records, args.n_train)
        args.json.write_text(json.dumps(out, indent=2))
        _print_parity(out)
    print(f"Wrote {args.json}.")


def _print_timings(out: dict[str, Any]) -> None:
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
        f"{'met' if out['target_p50_under_1ms'] else 'NOT met'}."
    )
    c = out["compiled"]
    print(
        f"Compiled: p50 {c['p50_us']:.1f} us (target <= 100 us: "
        f"{'met' if c['target_met'] else 'NOT met'}), {c['speedup_vs_not_compiled']:.2f}x faster "
        f"than not compiled, {c['ratio_vs_raw_five_boosters']:.2f}x the raw five XGBoost calls; "
        f"{c['compile_note']}."
    )
    print(f"uptime before: {m['uptime_before']}\nuptime after:  {m['uptime_after']}")


def _print_parity(out: dict[str, Any]) -> None:
    for r in out["parity"]:
        if not r["records"]:
            print(f"parity {r['endpoint']:<19} {r['backend']:<12} {r['note']}")
            continue
        d = r["max_abs_difference"]
        verdict = "identical" if r["identical"] else "within 1e-7" if d <= 1e-7 else "OVER 1e-7"
        print(
            f"parity {r['endpoint']:<19} {r['backend']:<12} {r['records']:>5} records, "
            f"compiled={r['compiled']!s:<5} max |diff| {r['max_abs_difference']:.1e} "
            f"({verdict})"
        )


if __name__ == "__main__":
    main()
