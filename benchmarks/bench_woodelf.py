"""woodelf's exact TreeSHAP against the boosters' own routines, on spinerisk's fold boosters.

Run ``python benchmarks/bench_woodelf.py`` (about a minute on 2 cores). As
``benchmarks/bench_explain.py`` does, it fits a nonunion :class:`spinerisk.RiskModel`
per booster library (XGBoost, LightGBM) on ``--n-train`` (3,000) synthetic records
(SYNTHETIC data, not real patients) and explains ``--n`` (20,000) synthetic patients with
the 5 calibrated folds' boosters, on each fold's own feature matrix:

* ``native 1``: XGBoost ``pred_contribs`` / LightGBM ``pred_contrib`` with the booster's
  own thread setting (XGBoost: the one thread it was fitted with);
* ``native all``: the same on every core, as ``spinerisk/explanation/_native.py`` calls
  them (XGBoost: a copy of the booster set to every core and a ``DMatrix`` built on every
  core; LightGBM: ``num_threads``);
* ``woodelf``: :func:`spinerisk.explanation._woodelf.tree_shap` on the folds one after the
  other (woodelf is single-threaded numpy), and ``woodelf xN``: the folds on N threads;
* ``patterns`` (XGBoost only): XGBoost's own values computed once per decision pattern
  (``spinerisk/explanation/_xgb_paths.py``, bit for bit ``pred_contribs``), as
  ``_native.py`` calls it;
* ``build``: reading the 5 boosters' trees into woodelf nodes, and ``1st call``: the whole
  first call (trees, the leaves' s-vectors, values); both are done once per booster and
  cached: the ``woodelf`` timings above are of later calls.

Each call runs ``--repeat`` times, interleaved, and the least wall time is kept, with that
run's CPU time (all threads). ``max diff`` is the largest absolute difference between
woodelf's values (bias column included) and the native ones over all folds, and
``additivity`` the largest |row sum - booster margin|. ``uptime`` is recorded before and
after; results go to ``benchmarks/results/woodelf.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import spinerisk as sr
from spinerisk._threads import all_cores, n_threads
from spinerisk.explanation import _woodelf
from spinerisk.explanation._woodelf import tree_shap

# the same timing and `uptime` as the explanation benchmark beside this script
from bench_explain import _best_of, _uptime  # noqa: E402  # isort: skip

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "woodelf.json"


def _fold_boosters(backend: str, n_train: int, records: Any, seed: int) -> list[tuple[Any, Any]]:
    """(raw booster, its feature matrix of ``records``) for each calibrated fold."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel("nonunion", backend=backend, random_state=seed)
        model.fit(sr.make_spine_cohort(n_train, seed=seed))
    checked = sr.validate(records)
    out = []
    for cc in model.estimator_.calibrated_classifiers_:
        fold = cc.estimator
        est = fold[-1].estimator_
        booster = est.get_booster() if backend == "xgboost" else est.booster_
        out.append((booster, fold[:-1].transform(checked)))
    return out


def _native(booster: Any, X: Any, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Contributions and margin from the booster's own routine (``threads`` None: the
    booster's thread count; otherwise every core, as ``_native.py`` does)."""
    if type(booster).__module__.startswith("xgboost"):
        import xgboost as xgb

        b = all_cores(booster) if threads else booster
        dm = xgb.DMatrix(X, enable_categorical=True, nthread=threads)
        return b.predict(dm, pred_contribs=True), b.predict(dm, output_margin=True)
    kw = {"num_threads": threads} if threads else {}
    return booster.predict(X, pred_contrib=True, **kw), booster.predict(X, raw_score=True, **kw)


def _patterns(booster: Any, X: Any) -> np.ndarray:
    """XGBoost's own values computed once per decision pattern, bit for bit
    ``pred_contribs`` (``spinerisk/explanation/_xgb_paths.py``, called as ``_native.py``
    calls it; the full native call where it declines)."""
    import xgboost as xgb

    from spinerisk.explanation import _xgb_paths

    fast = all_cores(booster)
    dm = xgb.DMatrix(X, enable_categorical=True, nthread=n_threads())
    raw = _xgb_paths.contributions(fast, dm, X, booster)
    return raw if raw is not None else fast.predict(dm, pred_contribs=True)


def _cold_seconds(pairs: list[tuple[Any, Any]]) -> tuple[float, float]:
    """Reading the boosters' trees into woodelf nodes, and a whole first call (trees,
    the leaves' s-vectors and the values), each with the cache emptied first."""
    _woodelf._CACHE.clear()
    t = time.perf_counter()
    for booster, _ in pairs:
        _woodelf._trees(booster).prepare()
    build = time.perf_counter() - t
    _woodelf._CACHE.clear()
    t = time.perf_counter()
    for booster, X in pairs:
        tree_shap(booster, X)
    return build, time.perf_counter() - t


def bench(backend: str, pairs: list[tuple[Any, Any]], repeat: int) -> dict[str, Any]:
    cores = n_threads()
    build_s, first_s = _cold_seconds(pairs)
    max_diff = additivity = 0.0
    for booster, X in pairs:
        native, margin = _native(booster, X, cores)
        values = tree_shap(booster, X)
        max_diff = max(max_diff, float(np.abs(values - native).max()))
        additivity = max(additivity, float(np.abs(values.sum(axis=1) - margin).max()))
    pool = ThreadPoolExecutor(cores)

    calls = {
        "native 1": lambda: [_native(b, X, None) for b, X in pairs],
        "native all": lambda: [_native(b, X, cores) for b, X in pairs],
        "woodelf": lambda: [tree_shap(b, X) for b, X in pairs],
        f"woodelf x{cores}": lambda: list(pool.map(lambda p: tree_shap(*p), pairs)),
    }
    if backend == "xgboost":
        calls["patterns"] = lambda: [_patterns(b, X) for b, X in pairs]
    times = _best_of(repeat, calls)
    pool.shutdown()
    base = times["native all"][0]
    return {
        "backend": backend,
        "n_explained": len(pairs[0][1]),
        "n_features": int(pairs[0][1].shape[1]),
        "folds": len(pairs),
        "trees_per_fold": [len(_woodelf._trees(b).roots) for b, _ in pairs],
        "max_tree_depth": max(max(r.depth for r in _woodelf._trees(b).roots) for b, _ in pairs),
        "cores": cores,
        "build_seconds": round(build_s, 3),
        "first_call_seconds": round(first_s, 3),
        "ratio_first_call_over_native_all_cores": round(first_s / base, 2),
        "seconds": {k: round(v[0], 3) for k, v in times.items()},
        "cpu_seconds": {k: round(v[1], 3) for k, v in times.items()},
        "ratio_over_native_all_cores": {k: round(v[0] / base, 2) for k, v in times.items()},
        "max_abs_difference": max_diff,
        "additivity_error": additivity,
    }


def _print(rows: list[dict[str, Any]]) -> None:
    names = list(dict.fromkeys(k for r in rows for k in r["seconds"]))
    print("SYNTHETIC data; TreeSHAP of the nonunion model's 5 fold boosters (wall seconds,")
    print("best of the runs; in brackets: ratio to the native routine on every core)")
    print(f"{'backend':<9} {'n':>6} " + " ".join(f"{k:>16}" for k in names), end="")
    print(f" {'build s':>8} {'1st call':>14} {'max diff':>9} {'additivity':>10}")
    for r in rows:
        cells = " ".join(
            f"{r['seconds'][k]:>8.3f} ({r['ratio_over_native_all_cores'][k]:>4.2f})"
            if k in r["seconds"]
            else f"{'-':>16}"
            for k in names
        )
        print(
            f"{r['backend']:<9} {r['n_explained']:>6} {cells} {r['build_seconds']:>8.3f} "
            f"{r['first_call_seconds']:>6.3f} "
            f"({r['ratio_first_call_over_native_all_cores']:>4.2f}) "
            f"{r['max_abs_difference']:>9.1e} {r['additivity_error']:>10.1e}"
        )
    print("CPU seconds: " + "; ".join(f"{r['backend']} {r['cpu_seconds']}" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000, help="patients to explain")
    parser.add_argument("--n-train", type=int, default=3000, help="training cohort size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each call")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    records = sr.make_spine_cohort(args.n, seed=args.seed + 1)
    fitted = {
        b: _fold_boosters(b, args.n_train, records, args.seed) for b in ("xgboost", "lightgbm")
    }
    before = _uptime()
    rows = [bench(b, pairs, args.repeat) for b, pairs in fitted.items()]
    after = _uptime()
    _print(rows)
    print(f"uptime before: {before}\nuptime after:  {after}")
    import lightgbm
    import woodelf
    import xgboost

    doc = {
        "description": __doc__.split("\n", 1)[0],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "uptime_before": before,
            "uptime_after": after,
        },
        "versions": {
            "xgboost": xgboost.__version__,
            "lightgbm": lightgbm.__version__,
            "woodelf": getattr(woodelf, "__version__", "0.4.8"),
        },
        "n_train": args.n_train,
        "repeat": args.repeat,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
