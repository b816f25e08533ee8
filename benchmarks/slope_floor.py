"""How well can a small, hardly overfitted model be calibrated by a data set's horizon?

For a calibration-slope miss in the default-model benchmark: fits an unpenalised
lifelines Cox model of a few named predictors (numbers as numbers, median-imputed) in the
same 5-fold cross-validation as ``bench_default.py`` (stratified on the event, each seed)
and prints its out-of-fold calibration slope at the data set's horizon with an intercept
per fold (the benchmark's measure, censoring-weighted), the same slope under one pooled
intercept, Royston's Cox slope (stratified by fold), and a table of predicted against
Kaplan-Meier risk by quarter of predicted risk. With many events per parameter
such a model cannot overfit much, so a slope far below 1 there says that even without
overfitting a proportional-hazards risk fitted by partial likelihood is too extreme by
the horizon on this data set (the default's horizon scale corrects that when the
training data show it out of fold; on a few hundred records they may not).

    python benchmarks/slope_floor.py cancer sex,ph_ecog
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_default as bd  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from sklearn.model_selection import StratifiedKFold

    from spinerisk.metrics import calibration_slope_at_horizon

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a time-to-event set of bench_default.py")
    parser.add_argument("predictors", help="comma-separated columns")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    spec = next(s for s in bd.SURVIVAL if s.name == args.data)
    records = bd.load_survival(spec)
    X = records[args.predictors.split(",")].apply(pd.to_numeric, errors="coerce").astype(float)
    X = X.fillna(X.median())
    t = records["time"].to_numpy(float)
    e = records["event"].to_numpy(bool)
    h = spec.horizon_days
    frame = X.assign(time=t, event=e.astype(int))
    print(
        f"{spec.name}: {len(t)} records, {int(e.sum())} events, horizon {h:g} days; "
        f"Cox model of {', '.join(X.columns)} ({e.sum() / X.shape[1]:.0f} events per "
        "parameter)"
    )
    for seed in (int(s) for s in args.seeds.split(",")):
        risk = np.full(len(t), np.nan)
        fold = np.zeros(len(t), dtype=int)
        splits = StratifiedKFold(5, shuffle=True, random_state=seed).split(X, e)
        for k, (tr, te) in enumerate(splits):
            fold[te] = k
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cph = CoxPHFitter().fit(frame.iloc[tr], "time", "event")
            surv = cph.predict_survival_function(frame.iloc[te], times=[h])
            risk[te] = 1.0 - surv.to_numpy()[0]
        r = np.clip(risk, 1e-6, 1 - 1e-6)
        slope = calibration_slope_at_horizon(t, e.astype(int), r, h, groups=fold)
        pooled = calibration_slope_at_horizon(t, e.astype(int), r, h)
        cox, se = bd.cox_calibration_slope(t, e.astype(int), r, h, groups=fold)
        print(
            f"seed {seed}: calibration slope {slope:.2f} (one pooled intercept: {pooled:.2f}), "
            f"Cox slope {cox:.2f} (SE {se:.2f})"
        )
    quarter = pd.qcut(r, 4, labels=False, duplicates="drop")
    print("last seed, by quarter of predicted risk: records, mean predicted, Kaplan-Meier")
    for q in np.unique(quarter):
        m = quarter == q
        km = KaplanMeierFitter().fit(t[m], e[m])
        print(f"  {q + 1}: {int(m.sum())}, {r[m].mean():.3f}, {1 - float(km.predict(h)):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
