"""How often can a model's calibration slope be in 0.85-1.15, on data like a small set?

The default-model benchmark asks every real data set for a calibration slope in
0.85-1.15. On a few hundred records that is a property of the one training sample as much
as of the model. This script measures how much, with a known truth shaped like one of
``bench_default.py``'s time-to-event sets (a parametric bootstrap):

* **the truth**: a Weibull proportional-hazards model (lifelines ``WeibullAFTFitter``) of
  the set's numeric and yes/no predictors (median-imputed) and of its categories with at
  most :data:`MAX_LEVELS` levels (one indicator per level that at least
  :data:`MIN_LEVEL_RECORDS` records have, the most common level and rarer ones as the
  reference), fitted to the set's records; other category columns (an institution code)
  stay in the records as predictors the truth does not use;
* **a sample**: the set's own records (same size and predictors) with new event times drawn
  from the truth and censoring times drawn from the set's censoring distribution (its
  reverse Kaplan-Meier; beyond its last step, the set's longest follow-up);
* **the true slope** of a model fitted on one sample: the calibration slope of its risk by
  the set's horizon on ``--test-records`` records drawn from the set's predictors with
  outcomes from the truth and no censoring (nothing is estimated but the model);
* **the benchmark's estimate** (``--cv``): the default's 5-fold out-of-fold slope on the
  sample itself, measured as ``bench_default.py`` measures it on the real set.

Each model of ``bench_default.MODELS`` is fitted on ``--samples`` samples. The table gives,
per model, the mean and standard deviation of the true slope and the share of samples on
which it is in 0.85-1.15. A share well below 1 for every model, including a correctly
specified one, says that the range cannot be met on every sample of this size: a miss on
one real set of this size is then no evidence against the model. The data are SYNTHETIC
(generated from a model fitted to a real set); nothing here validates spinerisk
clinically.

    python benchmarks/slope_attainable.py cancer --samples 40 --cv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_default as bd  # noqa: E402
import bench_default_seeds as seeds_bench  # noqa: E402
import bench_models as bm  # noqa: E402

RESULTS_JSON = bd.ROOT / "benchmarks" / "results" / "slope_attainable.json"
RESULTS_MD = bd.ROOT / "docs" / "benchmarks-slope-attainable.md"
#: The real sets' own benchmark over ten fold seeds (bench_default_seeds.py), shown beside.
REAL_SEEDS_JSON = bd.ROOT / "benchmarks" / "results" / "default_seeds_small.json"
#: Categories with more levels than this are not in the truth (left as noise predictors).
MAX_LEVELS = 5
#: A category level has its own term in the truth when at least this many records have it.
MIN_LEVEL_RECORDS = 10


class Truth:
    """A Weibull proportional-hazards model of a set's predictors (its numbers and yes/no
    columns, and indicators of its categories with few levels), and the set's censoring
    distribution: draws new outcomes for records with the set's columns. Fitted when
    made; the fit's warnings reach the caller."""

    def __init__(self, records: pd.DataFrame) -> None:
        from lifelines import KaplanMeierFitter, WeibullAFTFitter
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        predictors = [c for c in records.columns if c not in ("pid", "time", "event")]
        self.numbers = [
            c for c in predictors if is_numeric_dtype(records[c]) or is_bool_dtype(records[c])
        ]
        self.levels: dict[str, list[str]] = {}
        for c in predictors:
            counts = records[c].value_counts()
            if c not in self.numbers and len(counts) <= MAX_LEVELS:
                kept = counts[counts >= MIN_LEVEL_RECORDS].index[1:]  # the most common: reference
                self.levels[c] = [str(v) for v in kept]
        self.medians = records[self.numbers].astype(float).median()
        X = self._design_of(records)
        self.columns = list(X.columns)
        frame = X.assign(time=records["time"].to_numpy(float), event=records["event"].astype(int))
        params = WeibullAFTFitter().fit(frame, "time", "event").params_
        self.beta = params.loc["lambda_"].reindex(self.columns).to_numpy(float)
        self.log_scale0 = float(params.loc[("lambda_", "Intercept")])
        self.shape = float(np.exp(params.loc[("rho_", "Intercept")]))
        reverse = KaplanMeierFitter().fit(records["time"], 1 - records["event"].astype(int))
        curve = reverse.survival_function_.iloc[:, 0]
        self.censor_times = curve.index.to_numpy(float)
        self.censor_survival = curve.to_numpy(float)
        self.max_follow_up = float(records["time"].max())

    def _design_of(self, records: pd.DataFrame) -> pd.DataFrame:
        X = records[self.numbers].astype(float).fillna(self.medians)
        for c, kept in self.levels.items():
            for level in kept:
                X[f"{c}={level}"] = (records[c].astype(str) == level).astype(float)
        return X

    def _scale(self, records: pd.DataFrame) -> np.ndarray:
        """Each record's Weibull scale, ``exp(a + x'b)``."""
        return np.exp(self.log_scale0 + self._design_of(records).to_numpy() @ self.beta)

    def event_times(self, records: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Weibull AFT: ``T = exp(a + x'b) * E ** (1 / shape)``, ``E`` standard exponential."""
        return self._scale(records) * rng.exponential(size=len(records)) ** (1.0 / self.shape)

    def censoring_times(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Inverse transform of the reverse Kaplan-Meier curve (the longest follow-up past
        its last step)."""
        u = rng.uniform(size=n)
        # the first time at which the (non-increasing) censoring survival is u or below
        first = np.searchsorted(-self.censor_survival, -u, side="left")
        last = len(self.censor_times) - 1
        return np.where(
            first <= last, self.censor_times[np.minimum(first, last)], self.max_follow_up
        )

    def risk_by(self, records: pd.DataFrame, horizon: float) -> np.ndarray:
        """The true risk of the event by ``horizon``."""
        return -np.expm1(-((horizon / self._scale(records)) ** self.shape))


def sample(records: pd.DataFrame, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
    """The set's records with new outcomes from the truth, censored as the set is."""
    t = truth.event_times(records, rng)
    c = truth.censoring_times(len(records), rng)
    out = records.copy()
    out["time"] = np.maximum(np.minimum(t, c), 1e-3)
    out["event"] = (t <= c).astype(records["event"].dtype)
    return out


def draw_test_records(
    records: pd.DataFrame, truth: Truth, n: int, horizon: float, seed: int
) -> Any:
    """``n`` records drawn from the set's predictors, and whether each has the event by the
    horizon (from the truth, no censoring)."""
    rng = np.random.default_rng(seed)
    rows = records.iloc[rng.integers(0, len(records), size=n)].reset_index(drop=True)
    rows["pid"] = np.arange(n)
    t = truth.event_times(rows, rng)
    rows["time"] = np.minimum(t, horizon)
    rows["event"] = (t <= horizon).astype(records["event"].dtype)
    return rows, t <= horizon


def run(name: str, samples: int, test_n: int, cv: bool, seed: int) -> dict[str, Any]:
    from spinerisk.metrics import calibration_slope

    spec = next(s for s in bd.SURVIVAL if s.name == name)
    records = bd.load_survival(spec)
    schema, endpoint = bm.survival_schema(records, spec.name), bd.survival_endpoint(spec)
    h = spec.horizon_days
    log = bm.WarningLog()
    with log.record(f"{name}/truth"):
        truth = Truth(records)
    test, outcome = draw_test_records(records, truth, test_n, h, seed + 10_000)
    oracle = calibration_slope(outcome, np.clip(truth.risk_by(test, h), 1e-9, 1 - 1e-9))
    names = bd.MODELS["survival"]
    slopes: dict[str, list[float]] = {m: [] for m in names}
    estimates: list[float] = []
    events: list[int] = []
    for r in range(samples):
        rng = np.random.default_rng(seed + r)
        train = sample(records, truth, rng)
        events.append(int(train["event"].astype(bool).sum()))
        for m in names:
            model = bd.make_model(m, "survival", schema, endpoint, h)
            with log.record(f"{name}/{m}"):
                model.fit(train)
                risk = np.clip(model.risk(test), 1e-9, 1 - 1e-9)
            slopes[m].append(float(calibration_slope(outcome, risk)))
        if cv:
            estimates.append(cv_slope(train, schema, endpoint, h, seed + r, log))
        print(
            f"{name} sample {r + 1}/{samples}: "
            + ", ".join(f"{m} {slopes[m][-1]:.2f}" for m in names)
            + (f"; default's 5-fold estimate {estimates[-1]:.2f}" if cv else ""),
            flush=True,
        )
    return {
        "name": name,
        "records": len(records),
        "events_real": int(records["event"].astype(bool).sum()),
        "events_mean": float(np.mean(events)),
        "horizon_days": h,
        "truth_predictors": truth.columns,
        "risk_by_horizon": float(np.mean(outcome)),
        "oracle_slope": float(oracle),
        "models": {m: reach(v) | {"slopes": v} for m, v in slopes.items()},
        "cv_estimate": (reach(estimates) | {"slopes": estimates}) if cv else None,
        "warnings": log.as_dict(),
    }


def _against(estimates: list[float], slopes: dict[str, list[float]]) -> dict[str, float]:
    """How the 5-fold estimates compare with the default's true slopes, sample by sample."""
    est, true = np.asarray(estimates), np.asarray(slopes["default"])
    low, high = bd.SLOPE_RANGE
    agree = np.mean(((est >= low) & (est <= high)) == ((true >= low) & (true <= high)))
    varies = len(est) > 2 and np.ptp(est) > 0 and np.ptp(true) > 0
    return {
        "mean_minus_true": float(np.mean(est - true)),
        "correlation_with_true": float(np.corrcoef(est, true)[0, 1]) if varies else float("nan"),
        "verdict_agrees": float(agree),
    }


def cv_slope(
    train: pd.DataFrame, schema: Any, endpoint: Any, h: float, seed: int, log: Any
) -> float:
    """The default's out-of-fold slope on one sample, as bench_default.py measures it."""
    from sklearn.model_selection import StratifiedKFold

    from spinerisk.metrics import calibration_slope_at_horizon

    e = train["event"].astype(bool).to_numpy()
    risk, fold = np.full(len(train), np.nan), np.zeros(len(train), dtype=int)
    for k, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(e, e)):
        model = bd.make_model("default", "survival", schema, endpoint, h)
        with log.record("cv/default"):
            model.fit(train.iloc[tr])
            risk[te] = model.risk(train.iloc[te])
        fold[te] = k
    with log.record("cv/slope"):  # folds with few survivors past the horizon warn
        return float(
            calibration_slope_at_horizon(
                train["time"].to_numpy(float),
                e.astype(int),
                np.clip(risk, 1e-6, 1 - 1e-6),
                h,
                groups=fold,
            )
        )


def reach(slopes: list[float]) -> dict[str, float]:
    """Mean, standard deviation, median and share in range of a list of slopes
    (``bench_default_seeds.slope_reach``'s counts as a share; NaN slopes are misses)."""
    counts = seeds_bench.slope_reach(slopes)
    finite = np.asarray(slopes, dtype=float)
    finite = finite[np.isfinite(finite)]
    return {
        "mean": counts["mean"],
        "sd": counts["sd"],
        "median": float(np.median(finite)) if len(finite) else float("nan"),
        "in_range": counts["in_range"] / counts["seeds"],
    }


def to_markdown(res: dict[str, Any]) -> str:
    meta = res["meta"]
    lines = [
        "# Calibration slope on small data: what a known truth allows",
        "",
        "> SYNTHETIC outcomes drawn from a model fitted to a real public data set; used to "
        "check the modelling code and the benchmark's targets; nothing here validates "
        "spinerisk clinically.",
        "",
        f"Produced by `benchmarks/slope_attainable.py` at commit `{meta['git']['commit']}`"
        f"{_dirty(meta['git'])} on "
        f"{meta['date']}; {meta['machine']['cpus']} cores; load `{meta['uptime_start']}` at "
        f"the start and `{meta['uptime_end']}` at the end. Method: the script's docstring. "
        f"Every slope is in `{res['json']}`.",
        "",
        "How to read it: each model is fitted on many samples of the same size as the real "
        "set, drawn from a known truth shaped like it, and its *true* calibration slope is "
        f"measured on {meta['test_records']:,} records of that truth. The share of samples "
        "in 0.85-1.15 is the chance that a model fitted on a set of this size is "
        "calibrated within the target range; a share well below 1 for every model, the "
        "well specified ones included, means the range cannot be promised on every set of "
        "this size. The "
        "last row is the benchmark's own 5-fold estimate of the default's slope on each "
        "sample: how often the benchmark would report it in range, and how well that "
        "report follows the true slope.",
        "",
        *_summary(res["sets"]),
    ]
    for s in res["sets"]:
        lines += [
            f"## {s['name']}",
            "",
            f"{s['records']} records per sample (the real set's), "
            f"{s['events_mean']:.0f} events on average ({s['events_real']} in the real set); "
            f"true risk by the horizon ({s['horizon_days']:g} days) {s['risk_by_horizon']:.2f} "
            f"on average; truth of {len(s['truth_predictors'])} predictors "
            f"({', '.join(s['truth_predictors'])}). The true risks themselves have slope "
            f"{s['oracle_slope']:.2f} on the test records. {meta['samples']} samples; true "
            f"slopes on {meta['test_records']:,} test records.",
            "",
            "| model | mean slope | SD | median | samples in 0.85-1.15 |",
            "|---|---|---|---|---|",
        ]
        for m, v in s["models"].items():
            lines.append(
                f"| {m} | {v['mean']:.2f} | {v['sd']:.2f} | {v['median']:.2f} | "
                f"{v['in_range']:.0%} |"
            )
        est = s.get("cv_estimate")
        if est and "default" in s["models"]:
            est = est | _against(est["slopes"], {m: v["slopes"] for m, v in s["models"].items()})
            lines += [
                f"| default, the benchmark's 5-fold estimate on the sample | {est['mean']:.2f} | "
                f"{est['sd']:.2f} | {est['median']:.2f} | {est['in_range']:.0%} |",
                "",
                "The 5-fold estimate minus the default's true slope: "
                f"{est['mean_minus_true']:+.2f} on average; correlation with the true slope "
                f"over the samples {_f(est['correlation_with_true'])}; the estimate and the "
                "true slope agree on in range or not on "
                f"{est['verdict_agrees']:.0%} of the samples.",
            ]
        lines.append("")
    return "\n".join(lines)


def _dirty(git: dict[str, Any]) -> str:
    """What differed from the commit when the results were made."""
    changed = [d for d in ("spinerisk", "benchmarks") if git.get(f"{d}_modified")]
    return (
        f" ({' and '.join(f'{d}/' for d in changed)} with uncommitted changes)" if changed else ""
    )


def _f(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


def _summary(sets: list[dict[str, Any]]) -> list[str]:
    """One row per set: each model's share of samples in range, and the estimate's."""
    models = list(sets[0]["models"]) if sets else []
    lines = [
        "Samples (of each set's size) on which the true slope is in 0.85-1.15:",
        "",
        "| set | records | events | " + " | ".join(models) + " | the 5-fold estimate |",
        "|---|---|---|" + "---|" * (len(models) + 1),
    ]
    for s in sets:
        shares = [s["models"][m]["in_range"] for m in models]
        best = max(shares)
        cells = [f"**{v:.0%}**" if v == best else f"{v:.0%}" for v in shares]
        est = s.get("cv_estimate")
        lines.append(
            f"| {s['name']} | {s['records']} | {s['events_mean']:.0f} | "
            + " | ".join(cells)
            + f" | {'-' if not est else format(est['in_range'], '.0%')} |"
        )
    return [*lines, "", "Bold: the model most often in range on the set.", "", *_beside_real(sets)]


def _beside_real(sets: list[dict[str, Any]]) -> list[str]:
    """The default's slope as the benchmark measured it on each real set (mean over its
    fold seeds), beside the same 5-fold estimate and the true slope on the known truth."""
    if not REAL_SEEDS_JSON.exists():
        return []
    real = {r["name"]: r for r in json.loads(REAL_SEEDS_JSON.read_text())["sets"]}
    rows = [s for s in sets if s["name"] in real and s.get("cv_estimate")]
    if not rows:
        return []
    lines = [
        "The default's calibration slope three ways: on the real set as the benchmark "
        "measures it (5-fold, mean over the fold seeds of "
        f"`{bd.shown_path(REAL_SEEDS_JSON)}`), and on the known truth shaped like it, "
        "the same 5-fold estimate and the true slope (means over the samples):",
        "",
        "| set | real set, 5-fold | known truth, 5-fold | known truth, true |",
        "|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {s['name']} | {real[s['name']]['mean_slope']:.2f} | "
            f"{s['cv_estimate']['mean']:.2f} | {s['models']['default']['mean']:.2f} |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sets", nargs="?", help="comma-separated time-to-event sets of bench_default.py"
    )
    parser.add_argument("--samples", type=int, default=40, help="at least 2")
    parser.add_argument("--test-records", type=int, default=20_000)
    parser.add_argument("--cv", action="store_true", help="also the default's 5-fold estimate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    parser.add_argument("--markdown", type=Path, default=RESULTS_MD)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the Markdown from the JSON file"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        args.markdown.write_text(to_markdown(json.loads(args.json.read_text())))
        print(f"wrote {args.markdown}", flush=True)
        return 0
    if not args.sets:
        parser.error("name the data sets (or --report-only)")
    if args.samples < 2:
        parser.error("--samples must be at least 2 (a standard deviation over the samples)")
    known = {s.name for s in bd.SURVIVAL}
    names = args.sets.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"not a time-to-event set of bench_default.py: {', '.join(unknown)}")
    res: dict[str, Any] = {
        "meta": bd.run_meta(samples=args.samples, test_records=args.test_records, seed=args.seed),
        "sets": [run(n, args.samples, args.test_records, args.cv, args.seed) for n in names],
    }
    res["meta"]["uptime_end"] = bd._uptime()
    res["json"] = bd.shown_path(args.json)
    bd.write_results(res, args.json, args.markdown, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
