"""Time against cohort size for every endpoint kind, next to raw XGBoost on the same matrix.

Run ``python benchmarks/bench_scaling.py`` (``--quick`` for a smoke run on small sizes,
``--sizes``, ``--only``, ``--skip-boosted``). For each endpoint kind (binary
``nonunion``, survival ``cervical_mortality`` on the trauma cohort, competing
``future_fracture``) and backend (``xgboost``, ``linear``) it

1. fits ``RiskModel`` on ``n`` SYNTHETIC records (``make_spine_cohort``);
2. scores the same records: the prediction step (features and model, as the batch
   scorer runs it) and ``predict_risk`` end to end (validation included);
3. for ``xgboost``: trains every booster of the fitted model again with
   ``xgboost.train`` on the model's own encoded matrix, with the booster's own
   parameters and number of rounds (one booster per cause for competing risks, one per
   calibration fold for binary), the DMatrix build included, and times
   ``inplace_predict`` of those boosters on that matrix;
4. prints the ratios and the log-log slope of time against size (1 is linear).

Part 2 (issue 14, point 4): ``BoostedCoxSurvival.fit`` against raw ``xgboost.train`` at
GBSA's settings (100 rounds, depth 3, learning rate 0.1) on support2 subsamples of 500,
1,000, 2,500 and 4,000 records, as ``bench_default.py`` measures it.

Writes ``benchmarks/results/scaling.json``. Not part of CI. The records are simulated:
nothing here says anything about patients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import spinerisk as sr

RESULTS = Path(__file__).parent / "results" / "scaling.json"
ENDPOINTS = {"binary": "nonunion", "survival": "cervical_mortality", "competing": "future_fracture"}
SEED = 0


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def _cohort(kind: str, n: int) -> Any:
    mode = {"mode": "trauma"} if kind == "survival" else {}
    return sr.make_spine_cohort(n, seed=SEED, **mode)


# -- raw XGBoost on the model's own matrix ------------------------------------------------------
def _boosters(model: Any, data: Any) -> list[tuple[Any, Any, Any, int]]:
    """(booster, matrix, label setter, rounds) for every booster inside a fitted model."""
    checked = sr.validate(data, model.schema_)
    checked = checked[model.endpoint_.eligible(checked, model.schema_)]
    target = model.endpoint_.target(checked)
    est = model.estimator_
    out = []
    if model.endpoint_.kind == "binary":
        for fold in est.calibrated_classifiers_:
            X = fold.estimator.named_steps["features"].transform(checked)
            booster = fold.estimator.named_steps["model"].estimator_.get_booster()
            label = np.asarray(target, dtype=float)

            def set_label(dm: Any, label: Any = label) -> None:
                dm.set_label(label)

            out.append((booster, X, set_label, booster.num_boosted_rounds()))
        return out
    X = model.features_.transform(checked)
    parts = est.estimators_ if hasattr(est, "estimators_") else [est]
    codes = est.causes_ if hasattr(est, "causes_") else [None]
    for part, code in zip(parts, codes, strict=True):
        event = target["event"] != 0 if code is None else target["event"] == code
        y = sr.targets.make_survival_target(event, target["time"])

        def set_label(dm: Any, part: Any = part, y: Any = y) -> None:
            part._set_label(dm, y)

        out.append((part.booster_, X, set_label, int(part.n_estimators_)))
    return out


def _raw_params(booster: Any) -> dict[str, Any]:
    """The booster's own training parameters, read from its saved configuration."""
    cfg = json.loads(booster.save_config())["learner"]
    gb = cfg["gradient_booster"]
    params = {k: v for k, v in gb["tree_train_param"].items() if v not in ("", None)}
    params.update(
        objective=cfg["objective"]["name"],
        tree_method=gb.get("gbtree_train_param", {}).get("tree_method", "hist"),
        nthread=int(cfg["generic_param"]["nthread"]) or 1,
        seed=int(cfg["generic_param"]["seed"]),
        verbosity=0,
    )
    params.pop("interaction_constraints", None)
    params.pop("monotone_constraints", None)
    if params["objective"] == "survival:aft":
        aft = cfg["objective"]["aft_loss_param"]
        params.update(
            aft_loss_distribution=aft["aft_loss_distribution"],
            aft_loss_distribution_scale=float(aft["aft_loss_distribution_scale"]),
        )
    params["base_score"] = float(cfg["learner_model_param"]["base_score"].strip("[]"))
    return params


def raw_fit(parts: list[tuple[Any, Any, Any, int]]) -> None:
    import xgboost as xgb

    for booster, X, set_label, rounds in parts:
        dm = xgb.DMatrix(X, enable_categorical=True, nthread=1)
        set_label(dm)
        xgb.train(_raw_params(booster), dm, num_boost_round=rounds)


def raw_predict(parts: list[tuple[Any, Any, Any, int]]) -> None:
    for booster, X, _, _ in parts:
        booster.inplace_predict(X, predict_type="margin")


# -- part 1: time against size ------------------------------------------------------------------
def bench_sizes(sizes: list[int], only: list[str]) -> list[dict[str, Any]]:
    rows = []
    for kind in only:
        endpoint = ENDPOINTS[kind]
        for backend in ("xgboost", "linear"):
            for n in sizes:
                data = _cohort(kind, n)
                model = sr.RiskModel(endpoint, backend=backend, random_state=SEED)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _, fit_s = _timed(lambda model=model, data=data: model.fit(data))
                    # score the records the endpoint applies to (its scope refuses others)
                    valid = sr.validate(data, model.schema_)
                    scored = data[model.endpoint_.eligible(valid, model.schema_)]
                    checked = sr.validate(scored, model.input_schema_)
                    _, step_s = _timed(lambda m=model, c=checked: m._risk_values(c, m.horizons_))
                    _, e2e_s = _timed(lambda m=model, d=scored: m.predict_risk(d))
                row: dict[str, Any] = {
                    "kind": kind,
                    "endpoint": endpoint,
                    "backend": backend,
                    "records": n,
                    "eligible": int(model.n_train_),
                    "fit_s": fit_s,
                    "predict_step_s": step_s,
                    "predict_risk_s": e2e_s,
                    "load": _load(),
                }
                if backend == "xgboost":
                    parts = _boosters(model, data)
                    row["boosters"] = len(parts)
                    row["rounds"] = [int(p[3]) for p in parts]
                    row["raw_fit_s"] = _timed(lambda p=parts: raw_fit(p))[1]
                    row["raw_predict_s"] = _timed(lambda p=parts: raw_predict(p))[1]
                    row["fit_over_raw"] = fit_s / row["raw_fit_s"]
                    row["raw_over_predict_step"] = row["raw_predict_s"] / step_s
                rows.append(row)
                print(_row_text(row), flush=True)
            _print_slopes([r for r in rows if r["kind"] == kind and r["backend"] == backend])
    return rows


def _row_text(r: dict[str, Any]) -> str:
    text = (
        f"{r['endpoint']:<18} {r['backend']:<8} n={r['records']:>7,} fit {r['fit_s']:7.2f} s, "
        f"predict step {r['predict_step_s']:6.2f} s, predict_risk {r['predict_risk_s']:6.2f} s"
    )
    if "raw_fit_s" in r:
        text += (
            f" | raw xgboost.train {r['raw_fit_s']:6.2f} s ({r['fit_over_raw']:.2f}x), raw "
            f"inplace_predict {r['raw_predict_s']:5.2f} s (scoring {r['raw_over_predict_step']:.2f}"
            " of raw)"
        )
    return text + f" [load {r['load']}]"


def slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) against log(size): 1 is linear, 2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def _print_slopes(rows: list[dict[str, Any]]) -> None:
    if len(rows) < 2:
        return
    sizes = [r["records"] for r in rows]
    keys = ["fit_s", "predict_step_s", "predict_risk_s"]
    if "raw_fit_s" in rows[0]:
        keys += ["raw_fit_s", "raw_predict_s"]
    text = ", ".join(f"{k[:-2]} {slope(sizes, [r[k] for r in rows]):.2f}" for k in keys)
    print(f"  log-log slope ({rows[0]['endpoint']}, {rows[0]['backend']}): {text}", flush=True)
    for r in rows:
        r["slopes"] = {k[:-2]: slope(sizes, [x[k] for x in rows]) for k in keys}


# -- part 2: boosted survival against raw xgboost.train ------------------------------------------
def bench_boosted(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """``BoostedCoxSurvival.fit`` on the encoded matrix against raw ``xgboost.train`` at
    GBSA's settings on support2 subsamples (the measurement of bench_default.py)."""
    from sklearn.base import clone

    sys.path.insert(0, str(Path(__file__).parent))
    import bench_models as bm

    support = next(s for s in bm.SURVIVAL_DATA if s.name == "support2")
    records, _ = bm.load_survival(support, None)
    schema = bm.survival_schema(records, "support2")
    endpoint = bm.survival_endpoint(support)
    order = np.random.default_rng(SEED).permutation(len(records))
    out = []
    for n in sizes:
        train = records.iloc[order[:n]]
        y = bm._surv(train)
        model = sr.RiskModel(endpoint=endpoint, backend="xgboost", schema=schema, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(train)
        X = model.features_.transform(sr.validate(train, schema))
        est = clone(model.estimator_)
        raw = bm.raw_xgboost_fit(train)
        times: dict[str, list[float]] = {"estimator": [], "raw": []}
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            times["raw"].append(_timed(raw)[1])
            times["estimator"].append(_timed(lambda e=est, X=X, y=y: e.fit(X, y))[1])
        med = {k: float(np.median(v)) for k, v in times.items()}
        row = {
            "records": n,
            "rounds": int(model.estimator_.n_estimators_),
            "estimator_s": med["estimator"],
            "raw_s": med["raw"],
            "ratio": med["estimator"] / med["raw"],
            "load": _load(),
        }
        out.append(row)
        print(
            f"support2 n={n:>5} ({row['rounds']} rounds): BoostedCoxSurvival.fit "
            f"{row['estimator_s'] * 1000:.0f} ms, raw xgboost.train {row['raw_s'] * 1000:.0f} ms "
            f"-> {row['ratio']:.2f}x (target <= 2) [load {row['load']}]",
            flush=True,
        )
    return out


def _merged(res: dict[str, Any], only: list[str], *, skipped_boosted: bool) -> dict[str, Any]:
    """``res`` with the rows of endpoints (and part 2) not measured now kept from the last
    results file, each row with the date of its own run."""
    for row in res["sizes"]:
        row["when"] = res["when"]
    if not RESULTS.exists():
        return res
    old = json.loads(RESULTS.read_text())
    kept = [
        dict(row, when=row.get("when", old.get("when")))
        for row in old.get("sizes", [])
        if row["kind"] not in only
    ]
    res["sizes"] = kept + res["sizes"]
    if skipped_boosted and "boosted" in old:
        res["boosted"] = old["boosted"]
        res["boosted_when"] = old.get("boosted_when", old.get("when"))
    if kept:
        res["when_kept_rows"] = sorted({row["when"] for row in kept})
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--only", nargs="+", choices=list(ENDPOINTS), default=list(ENDPOINTS))
    parser.add_argument("--skip-boosted", action="store_true")
    parser.add_argument("--boosted-only", action="store_true", help="only part 2")
    parser.add_argument("--repeats", type=int, default=5, help="part 2 repeats (median)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([600, 1200] if args.quick else [10_000, 40_000, 100_000])
    print(f"{platform.node()}, {os.cpu_count()} cores, load {_load()}", flush=True)
    res: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "sizes": [] if args.boosted_only else bench_sizes(sizes, args.only),
    }
    if not args.skip_boosted:
        boosted = [500, 1000] if args.quick else [500, 1000, 2500, 4000]
        res["boosted"] = bench_boosted(boosted, 1 if args.quick else args.repeats)
    if not args.quick and not args.boosted_only:
        RESULTS.parent.mkdir(exist_ok=True)
        res = _merged(res, args.only, skipped_boosted=args.skip_boosted)
        RESULTS.write_text(json.dumps(res, indent=2))
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
