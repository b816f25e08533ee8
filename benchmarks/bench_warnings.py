"""How often input warnings fire on ordinary patients, and that they still fire on shifted
ones (issue 13, "warnings that cry wolf").

For every built-in OVF endpoint and backend: train on 6,000 synthetic records, then score
4,000 fresh records drawn from the same generator (other seed) and report the share
flagged with a DataQualityWarning among the records the model is meant for (eligible,
in scope), next to the share flagged in the shift scenarios the monitoring tests use
(another HU calibration, a western profile, noise). Target: <= 2% in-population, while
the shifted batches are flagged far more often. SYNTHETIC data.

    .venv/bin/python benchmarks/bench_warnings.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import spinerisk as sr


def _rate(model: sr.RiskModel, records) -> tuple[float, int]:
    checked = sr.validate(records)
    mine = checked[model.endpoint_.eligible(checked, model.schema_)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        out = model.predict_risk(mine)
    return float((out["warnings"] != "").mean()), len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller cohorts, one backend")
    args = parser.parse_args()
    n_train, n_fresh = (1500, 1000) if args.quick else (6000, 4000)
    backends = ("linear",) if args.quick else ("linear", "xgboost")
    train = sr.make_spine_cohort(n_train, seed=0)
    fresh = sr.make_spine_cohort(n_fresh, seed=1)
    shifted = {
        "hu_offset=-40": sr.make_spine_cohort(n_fresh, seed=2, hu_offset=-40.0),
        "western profile": sr.make_spine_cohort(n_fresh, seed=3, profile="western"),
        "noise": sr.make_spine_cohort(n_fresh, seed=4, noise=True),
    }
    print(f"# input-warning rates (SYNTHETIC), {platform.node()}, load {os.getloadavg()[0]:.1f}")
    print("| endpoint | backend | fresh, same population | " + " | ".join(shifted) + " |")
    print("|---|---|---|" + "---|" * len(shifted))
    start = time.perf_counter()
    for endpoint in ("nonunion", "collapse", "future_fracture"):
        for backend in backends:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = sr.RiskModel(endpoint, backend=backend).fit(train)
            rate, n = _rate(model, fresh)
            cells = [f"{_rate(model, batch)[0]:.1%}" for batch in shifted.values()]
            ok = "ok" if rate <= 0.02 else "ABOVE 2%"
            print(
                f"| {endpoint} | {backend} | {rate:.2%} of {n} ({ok}) | " + " | ".join(cells) + " |"
            )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
