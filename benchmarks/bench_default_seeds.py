"""The default-model accuracy comparison repeated over several fold seeds.

``bench_default.py`` compares ``RiskModel(backend="auto")`` with its peers in one 5-fold
cross-validation (seed 0). A single split is noisy on a few hundred records: the standard
error of the paired fold differences is 0.005-0.01 in C, and a calibration slope's 95%
interval is +-0.2 to +-0.4. This script repeats the same comparison (same data sets,
models, peers and metrics, by ``bench_default.bench_accuracy``) with other fold seeds (the
seed also seeds every model), and reports per data set the mean over seeds of the
default's gap to the best peer and of its calibration slope, with the range over seeds:
repeated k-fold cross-validation, the standard way to reduce the variance of a k-fold
estimate. It also counts, per data set and model, the seeds on which the slope is in the
target range, with the slope's standard deviation over the seeds (its noise).

Usage::

    python benchmarks/bench_default_seeds.py                      # seeds 0,1,2, every set
    python benchmarks/bench_default_seeds.py --only actg,whas500 --seeds 0,1,2,3,4
    # the seven sets under 600 records, ten seeds (docs/benchmarks-default-seeds-small.md):
    python benchmarks/bench_default_seeds.py --parts accuracy --seeds 0,1,2,3,4,5,6,7,8,9 \
        --only glow500,hip_fracture_veterans,hipstudy,whas500,prostate,Pbc3,cancer \
        --json benchmarks/results/default_seeds_small.json \
        --markdown docs/benchmarks-default-seeds-small.md \
        --title "Default model benchmark, ten fold seeds on the small data sets"

Writes ``benchmarks/results/default_seeds.json`` and ``docs/benchmarks-default-seeds.md``
(or the ``--json`` and ``--markdown`` given).
Real public data sets, used to check the modelling code; nothing here validates spinerisk
clinically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_default as bd  # noqa: E402
import bench_models as bm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "default_seeds.json"
RESULTS_MD = ROOT / "docs" / "benchmarks-default-seeds.md"
TITLE = "Default model benchmark, repeated over fold seeds"


def run(names: list[str] | None, seeds: list[int], folds: int) -> dict[str, Any]:
    sets = [s for s in (*bd.BINARY, *bd.SURVIVAL) if names is None or s.name in names]
    log = bm.WarningLog()
    out: dict[str, Any] = {
        "meta": bd.run_meta(seeds=seeds, folds=folds),
        "sets": [],
    }
    for spec in sets:
        runs = []
        for seed in seeds:
            bd.SEED = seed  # folds and every model's random_state
            runs.append(bd.bench_accuracy(spec, folds, log))
            print(
                f"{spec.name} seed {seed}: gap {runs[-1]['default_minus_best_peer']:+.4f}, "
                f"slope {runs[-1]['models']['default']['calibration_slope']:.2f}",
                flush=True,
            )
        out["sets"].append(summarise(spec.name, spec.kind, runs, seeds))
    bd.SEED = 0
    out["meta"]["uptime_end"] = bd._uptime()
    return out


def run_optimism(names: list[str], seeds: list[int], n_optimism: int) -> dict[str, Any]:
    """``bench_default``'s optimism comparison (.632+ corrected AUROC against 5-fold
    cross-validation) with each seed (bootstrap resamples, folds and models)."""
    log = bm.WarningLog()
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        bd.SEED = seed
        for row in bd.bench_optimism(tuple(names), n_optimism, log)["rows"]:
            rows.append({**row, "seed": seed})
    bd.SEED = 0
    out = []
    for name in names:
        for backend in ("auto", "linear", "xgboost"):
            mine = [r for r in rows if r["data"] == name and r["backend"] == backend]
            gaps = [r["auroc_gap"] for r in mine]
            out.append(
                {
                    "data": name,
                    "backend": backend,
                    "seeds": [r["seed"] for r in mine],
                    "auroc_corrected": [r["auroc_corrected"] for r in mine],
                    "auroc_cv": [r["auroc_cv"] for r in mine],
                    "gap_per_seed": gaps,
                    "mean_corrected": float(np.mean([r["auroc_corrected"] for r in mine])),
                    "mean_cv": float(np.mean([r["auroc_cv"] for r in mine])),
                    "mean_gap": float(np.mean(gaps)),
                    "met": bool(abs(np.mean(gaps)) <= 0.02),
                }
            )
    return {"n_optimism": n_optimism, "rows": out, "per_seed": rows}


def summarise(name: str, kind: str, runs: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Per data set: every seed's figures, and their means."""
    models = list(runs[0]["models"])
    disc = {m: [r["models"][m]["discrimination"] for r in runs] for m in models}
    slopes = {
        m: [r["models"][m]["calibration_slope"] for r in runs]
        for m in models
        if "calibration_slope" in runs[0]["models"][m] and m != "selected"
    }
    cox = {
        m: [r["models"][m]["cox_slope"] for r in runs]
        for m in models
        if runs[0]["models"][m].get("cox_slope") is not None
    }
    peers = bd.PEERS[kind]
    mean_disc = {m: float(np.mean(v)) for m, v in disc.items()}
    best_peer = max(peers, key=lambda m: mean_disc[m])
    gaps = [r["default_minus_best_peer"] for r in runs]  # against each seed's best peer
    mean_gap = mean_disc["default"] - mean_disc[best_peer]
    slope = float(np.mean(slopes["default"]))
    pooled = [r["models"]["default"].get("calibration_slope_pooled", np.nan) for r in runs]
    return {
        "name": name,
        "kind": kind,
        "n": runs[0]["n"],
        "events": runs[0]["events"],
        "seeds": seeds,
        "discrimination": disc,
        "calibration_slope": slopes,
        "cox_slope": cox,
        "mean_cox_slope": float(np.mean(cox["default"])) if "default" in cox else None,
        "mean_discrimination": mean_disc,
        "best_peer": best_peer,
        "gap_per_seed": gaps,
        "mean_gap": float(mean_gap),
        "mean_slope": slope,
        "mean_pooled_slope": float(np.mean(pooled)),
        "gap_met": bool(mean_gap >= -bd.TOLERANCE),
        "slope_met": bool(bd.SLOPE_RANGE[0] <= slope <= bd.SLOPE_RANGE[1]),
        "seed_gap_met": [bool(g >= -bd.TOLERANCE) for g in gaps],
        "seed_slope_met": [
            bool(bd.SLOPE_RANGE[0] <= s <= bd.SLOPE_RANGE[1]) for s in slopes["default"]
        ],
    }


def to_markdown(res: dict[str, Any]) -> str:
    meta = res["meta"]
    seeds = ", ".join(str(s) for s in meta["seeds"])
    sets = res["sets"]
    lines = [
        f"# {res.get('title', TITLE)}",
        "",
        "The accuracy comparison of [the default model benchmark](benchmarks-default.md) "
        f"(same data sets, models, peers and metrics) repeated with fold seeds {seeds} "
        "(the seed also seeds every model): repeated "
        f"{meta['folds']}-fold cross-validation. Produced by `benchmarks/bench_default_seeds.py` "
        f"at commit `{meta['git']['commit']}`"
        f"{' (spinerisk/ with uncommitted changes)' if meta['git']['spinerisk_modified'] else ''}"
        f" on {meta['date']}; {meta['machine']['cpus']} cores; load "
        f"`{meta['uptime_start']}` at the start and `{meta.get('uptime_end', '?')}` at the end.",
        "",
        "> Real public data sets, used to check the modelling code; nothing here validates "
        "spinerisk clinically.",
        "",
        f"Targets (issue 14): the default within {bd.TOLERANCE} of the best peer, calibration "
        f"slope in {bd.SLOPE_RANGE[0]}-{bd.SLOPE_RANGE[1]}. `mean` columns: the mean over "
        "seeds (the best peer is the peer with the best mean); `per seed`: each seed's own "
        "comparison, as the single-seed table reports it. The slope has an intercept per "
        "fold (the fold models' slope); `pooled slope` has one intercept for the pooled "
        "out-of-fold risks (see the single-seed page for why they differ on small sets; "
        "where a fold has fewer than 10 records of the rarer outcome, as on cancer and Pbc3, "
        "the slope per fold is biased upwards and the pooled one is the check).",
        "",
        f"Discrimination target met on the mean: {sum(s['gap_met'] for s in sets)} of "
        f"{len(sets)} data sets; slope target met on the mean: "
        f"{sum(s['slope_met'] for s in sets)} of {len(sets)}.",
        "",
        "| data set | n | events | default (mean) | best peer (mean) | gap (mean) | gap per seed | "
        "slope (mean) | slope per seed | pooled slope (mean) | linear slope (mean) | "
        "Cox slope (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sets:
        peer = s["best_peer"]
        lin = s["calibration_slope"].get("linear")
        lines.append(
            f"| {s['name']} | {s['n']} | {s['events']} | "
            f"{s['mean_discrimination']['default']:.3f} | "
            f"{s['mean_discrimination'][peer]:.3f} ({peer}) | {s['mean_gap']:+.4f}"
            f"{'' if s['gap_met'] else ' ✗'} | "
            + ", ".join(f"{g:+.3f}" for g in s["gap_per_seed"])
            + f" | {s['mean_slope']:.2f}{'' if s['slope_met'] else ' ✗'} | "
            + ", ".join(f"{v:.2f}" for v in s["calibration_slope"]["default"])
            + f" | {bd._f(s.get('mean_pooled_slope'), 2)} | {np.mean(lin):.2f} | "
            + ("–" if s.get("mean_cox_slope") is None else f"{s['mean_cox_slope']:.2f}")
            + " |"
        )
    lines += _misses(sets)
    lines += _slope_reach(sets, meta["seeds"])
    if "optimism" in res:
        lines += _optimism_table(res["optimism"])
    lines += [
        "",
        "Every number, per seed and model, is in "
        f"`{res.get('json', bd.shown_path(RESULTS_JSON))}`.",
        "",
    ]
    return "\n".join(lines)


def _misses(sets: list[dict[str, Any]]) -> list[str]:
    """One line per data set that misses a target on the mean, with the other models'
    slopes on the same folds."""
    misses = [m for m in sets if not (m["gap_met"] and m["slope_met"])]
    lines = ["", "Misses on the mean, with every model's mean slope on the same folds:", ""]
    for m in misses:
        others = ", ".join(
            f"{name} {np.mean(v):.2f}"
            for name, v in m["calibration_slope"].items()
            if name != "default"
        )
        what = []
        if not m["gap_met"]:
            what.append(
                f"discrimination {m['mean_gap']:+.4f} against {m['best_peer']} (per seed "
                + ", ".join(f"{g:+.3f}" for g in m["gap_per_seed"])
                + ")"
            )
        if not m["slope_met"]:
            cox = m.get("mean_cox_slope")
            what.append(
                f"calibration slope {m['mean_slope']:.2f}"
                + ("" if cox is None else f" (Cox slope {cox:.2f})")
                + f"; the other models: {others} (`benchmarks/slope_floor.py {m['name']} "
                "<predictors>` shows how close a hardly overfitted Cox model gets there; "
                f"`benchmarks/slope_attainable.py {m['name']} --cv`, how often any model "
                "can be in range on samples of this size, with a known truth: "
                "[slope on small data](benchmarks-slope-attainable.md))"
            )
        lines.append(f"- **{m['name']}**: " + "; ".join(what) + ".")
    return lines if misses else []


def slope_reach(slopes: list[float]) -> dict[str, float]:
    """How often one model's calibration slopes over the seeds are in the target range,
    with their mean and standard deviation (NaN slopes count as misses)."""
    v = np.asarray(slopes, dtype=float)
    inside = (v >= bd.SLOPE_RANGE[0]) & (v <= bd.SLOPE_RANGE[1])
    return {
        "in_range": int(inside.sum()),
        "seeds": len(v),
        "mean": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
        "sd": float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan"),
    }


def _slope_reach(sets: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """Per data set and model: on how many seeds the slope is in the target range, and
    its mean and standard deviation over the seeds. The standard deviation is the noise of
    one 5-fold run's slope; where it is near the half-width of the range, no model can be
    in range on every seed, however well calibrated it is."""
    models = list(dict.fromkeys(m for s in sets for m in s["calibration_slope"]))
    lo, hi = bd.SLOPE_RANGE
    lines = [
        "",
        "## How often each model's slope is in range",
        "",
        f"Per data set and model: the seeds (of {len(seeds)}) on which the calibration "
        f"slope is in {lo}-{hi}, then its mean and standard deviation over the seeds. The "
        "standard deviation is the noise of one cross-validation run's slope: where it "
        f"is near the range's half-width ({(hi - lo) / 2:.2f}), even a model whose true "
        "slope is 1 misses the range on a good share of the seeds.",
        "",
        "| data set | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    reach = [{m: slope_reach(v) for m, v in s["calibration_slope"].items()} for s in sets]
    for s, own in zip(sets, reach, strict=True):
        cells = [
            f"{r['in_range']}/{r['seeds']}, {bd._f(r['mean'], 2)} ({bd._f(r['sd'], 2)})"
            if (r := own.get(m))
            else "–"
            for m in models
        ]
        lines.append(f"| {s['name']} | " + " | ".join(cells) + " |")
    totals = []
    for m in models:
        mine = [own[m] for own in reach if m in own]
        inside, runs = sum(r["in_range"] for r in mine), sum(r["seeds"] for r in mine)
        totals.append(f"**{inside}/{runs}** on {len(mine)} sets")
    lines.append("| all | " + " | ".join(totals) + " |")
    return lines


def _optimism_table(op: dict[str, Any]) -> list[str]:
    met = sum(r["met"] for r in op["rows"])
    lines = [
        "",
        "## Optimism correction, repeated over seeds",
        "",
        f"`evaluate(model, records, optimism=True, n_optimism={op['n_optimism']}, cv=5)` "
        "with each seed (its bootstrap resamples, its folds and the model's seed), as in "
        "section 4 of the single-seed page: the .632+ corrected AUROC against 5-fold "
        f"cross-validation. Target: within 0.02 — met on the mean for {met} of "
        f"{len(op['rows'])}. Load at the end: `{op.get('uptime_end', '?')}`.",
        "",
        "| data set | backend | corrected (mean) | 5-fold CV (mean) | gap (mean) | gap per seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in op["rows"]:
        lines.append(
            f"| {r['data']} | {r['backend']} | {r['mean_corrected']:.3f} | {r['mean_cv']:.3f} | "
            f"{r['mean_gap']:+.4f}{'' if r['met'] else ' ✗'} | "
            + ", ".join(f"{g:+.4f}" for g in r["gap_per_seed"])
            + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated data set names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated fold seeds")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--parts", default="accuracy,optimism")
    parser.add_argument("--optimism-sets", default="glow500,hipstudy")
    parser.add_argument("--n-optimism", type=int, default=20)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the Markdown from the JSON file"
    )
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    parser.add_argument("--markdown", type=Path, default=RESULTS_MD)
    parser.add_argument("--title", default=None, help=f"the page's title (default: {TITLE!r})")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else None
    seeds = [int(s) for s in args.seeds.split(",")]
    # where the page says its numbers are, and its title
    page = {"json": bd.shown_path(args.json)} | ({"title": args.title} if args.title else {})
    if args.report_only:
        res = json.loads(args.json.read_text()) | page
        args.markdown.write_text(to_markdown(res))
        return 0
    parts = set(args.parts.split(","))
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    if "accuracy" in parts:
        res = run(names, seeds, args.folds)
    else:
        res = previous
    if "optimism" in parts:
        res["optimism"] = run_optimism(args.optimism_sets.split(","), seeds, args.n_optimism)
        res["optimism"]["uptime_end"] = bd._uptime()
    elif "optimism" in previous:
        res["optimism"] = previous["optimism"]
    res.update(page)
    bd.write_results(res, args.json, args.markdown, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
