"""Per-patient risk intervals: coverage of the oracle risk, width and cost, per backend.

For each endpoint and backend: a synthetic cohort with its oracle (true) risks, the
model fitted on it, ``fit_intervals`` with ``B`` bootstrap refits, then the share of
the cohort's eligible patients whose oracle risk lies inside the 90% interval, for the
basic (the default) and the percentile bootstrap interval, the median width, the mean
bootstrap bias on the log-odds scale, and the seconds of the fit and of the refits.

Run: ``nice python benchmarks/bench_intervals.py [--n 1000] [--B 50] [--seeds 0 1]``
(``--quick``: nonunion with the linear and auto backends only). Prints one line per
endpoint, backend and seed, then the mean coverage per endpoint and backend.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from scipy.special import logit

import spinerisk as sr
from spinerisk.models._interval import bootstrap_risks, interval_bounds
from spinerisk.schema._validate import validate

#: endpoint -> (generator mode, oracle columns in the order of the model's horizons)
ORACLE = {
    "nonunion": ("ovf", ["p_nonunion"]),
    "collapse": ("ovf", ["p_collapse"]),
    "future_fracture": ("ovf", ["cif_fx_365", "cif_fx_730", "cif_fx_1826"]),
    "cervical_mortality": ("trauma", ["p_death_30d", "p_death_90d", "p_death_1y"]),
}
BACKENDS = {
    "nonunion": ["linear", "xgboost", "lightgbm", "auto"],
    "collapse": ["linear", "xgboost", "lightgbm", "auto"],
    "future_fracture": ["linear", "xgboost", "auto"],
    "cervical_mortality": ["linear", "xgboost", "xgboost_aft", "auto"],
}


def run(endpoint: str, backend: str, n: int, B: int, seed: int, missing: bool) -> dict:
    mode, columns = ORACLE[endpoint]
    kw = {"mode": mode} if mode == "trauma" else {"missing": missing}
    cohort, oracle = sr.make_spine_cohort(n, seed=seed, return_oracle=True, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model = sr.RiskModel(endpoint=endpoint, backend=backend).fit(cohort)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        model.fit_intervals(cohort, n_resamples=B, random_state=seed)
        refit_s = time.perf_counter() - start
    checked = validate(cohort, model.schema_)
    checked = checked[np.asarray(model.endpoint_.eligible(checked, model.schema_), dtype=bool)]
    truth = oracle.loc[checked.index, columns].to_numpy(dtype=float)
    risk = model._risk_values(checked, model.horizons_)
    boot = bootstrap_risks(model.interval_models_, checked, model.horizons_)
    out = {"n_eligible": len(checked), "fit_s": fit_s, "refit_s": refit_s}
    for method in ("basic", "percentile"):
        lo, hi = interval_bounds(risk, boot, 0.9, method)
        ok = np.isfinite(truth)
        out[method] = ((truth >= lo) & (truth <= hi))[ok].mean()
        if method == "basic":
            out["width"] = float(np.median((hi - lo)[ok]))
    clip = lambda p: np.clip(p, 1e-9, 1 - 1e-9)  # noqa: E731
    out["bias"] = float((logit(clip(boot)).mean(0) - logit(clip(risk))).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--B", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--endpoints", nargs="+", default=list(ORACLE))
    parser.add_argument("--backends", nargs="+", default=None)
    parser.add_argument("--no-missing", action="store_true", help="cohort without missing data")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.endpoints, args.backends = ["nonunion"], ["linear", "auto"]
    print(f"load {os.getloadavg()[0]:.1f}; n={args.n}, B={args.B}, missing={not args.no_missing}")
    means: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for ep in args.endpoints:
        for backend in args.backends or BACKENDS[ep]:
            if backend not in BACKENDS[ep]:
                continue
            for seed in args.seeds:
                r = run(ep, backend, args.n, args.B, seed, not args.no_missing)
                means.setdefault((ep, backend), []).append((r["percentile"], r["basic"]))
                print(
                    f"{ep:18s} {backend:11s} seed {seed}: n={r['n_eligible']:5d} "
                    f"coverage basic {r['basic']:.3f} percentile {r['percentile']:.3f} "
                    f"width {r['width']:.3f} bias {r['bias']:+.3f} "
                    f"fit {r['fit_s']:.1f}s refits {r['refit_s']:.1f}s",
                    flush=True,
                )
    for (ep, backend), values in means.items():
        pct, basic = np.mean(values, axis=0)
        print(
            f"mean coverage {ep} {backend}: percentile {pct:.3f} (the default), basic "
            f"{basic:.3f}, over {len(values)} seed(s)"
        )


if __name__ == "__main__":
    main()
