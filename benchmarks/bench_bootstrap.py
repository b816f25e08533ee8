"""Bootstrap speed of ``evaluate`` (issue 18 point 6, "bootstraps 10x faster").

For a binary (collapse), a survival (cervical mortality, trauma cohort) and a
competing-risk (future fracture) model, each fitted with ``backend="linear"`` on SYNTHETIC
records: ``evaluate`` on 2,000 eligible records with 200 and with 1,000 bootstrap
resamples (the default subgroups, no explanations), timed next to scikit-learn's
``roc_auc_score`` + ``brier_score_loss`` on the same number of resamples of the same
predictions, in the same run. Target: 1,000 resamples take no longer than 200 took
before the vectorised bootstrap (``--before SECONDS,SECONDS,SECONDS`` gives those times,
measured with this script at the earlier commit, or ``--before-json PATH`` reads them
from the JSON such a run wrote, with its load; without either only the ratios against
scikit-learn of this run are printed). To measure "before": a worktree of the commit
before the vectorised bootstrap (``git worktree add /tmp/before 00503c2^``), then
``PYTHONPATH=/tmp/before python benchmarks/bench_bootstrap.py --sizes 200 --json
before.json`` right before this script's own run. The line with 1 resample is everything
``evaluate`` does besides the bootstrap.

    nice .venv/bin/python benchmarks/bench_bootstrap.py [--quick] [--json PATH]
        [--before 10.7,12.0,15.0 | --before-json PATH] [--sizes 200,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

import spinerisk as sr
from spinerisk.evaluation import evaluate

KINDS = ("binary", "survival", "competing")


def _setup(kind: str, n: int) -> tuple[sr.RiskModel, object]:
    """A linear model of the endpoint and ``n`` eligible SYNTHETIC records to evaluate."""
    from spinerisk.datasets import TraumaParams

    if kind == "binary":
        name, cohort = "collapse", sr.make_spine_cohort(3 * n, seed=0)
    elif kind == "survival":
        params = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
        name = "cervical_mortality"
        cohort = sr.make_spine_cohort(3 * n, seed=11, mode="trauma", trauma=params)
    else:
        name, cohort = "future_fracture", sr.make_spine_cohort(3 * n, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(name, backend="linear").fit(cohort)
        checked = sr.validate(cohort, model.schema_)
    eligible = model.endpoint_.eligible(checked, model.schema_).to_numpy()
    records = cohort[eligible].iloc[:n]
    if len(records) < n:
        raise SystemExit(f"only {len(records)} eligible {kind} records; raise the cohort size")
    return model, records


def _raw_sklearn(model: sr.RiskModel, records: object, n_bootstrap: int) -> float:
    """scikit-learn AUROC + Brier score on ``n_bootstrap`` resamples of the predictions."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    ep = model.endpoint_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        risk = model.predict_risk(records).iloc[:, 0].to_numpy(float)
        target = ep.target(sr.validate(records, model.schema_))
    if ep.kind == "binary":
        y = np.asarray(target, dtype=bool)
    else:  # event by the first horizon (censoring ignored: a cost reference only)
        y = (np.asarray(target["event"]) != 0) & (np.asarray(target["time"]) <= ep.horizons[0])
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(y), size=(n_bootstrap, len(y)))
    start = time.perf_counter()
    for r in rows:
        if y[r].all() or not y[r].any():
            continue
        roc_auc_score(y[r], risk[r])
        brier_score_loss(y[r], risk[r])
    return time.perf_counter() - start


def _evaluate(model: sr.RiskModel, records: object, n_bootstrap: int) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(model, records, n_bootstrap=n_bootstrap, explain=False)
    return time.perf_counter() - start


def _commit() -> str | None:
    """The commit of the spinerisk being measured (it may be a worktree's)."""
    import subprocess

    where = os.path.dirname(os.path.dirname(os.path.abspath(sr.__file__)))
    try:
        out = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _run_before(rev: str, path: str, extra: list[str]) -> str:
    """Run this script's smallest size at ``rev`` (a temporary git worktree); its JSON path."""
    import subprocess
    import sys
    import tempfile

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "before")
        subprocess.run(
            ["git", "-C", repo, "worktree", "add", "-q", "--detach", tree, rev], check=True
        )
        try:
            env = dict(os.environ, PYTHONPATH=tree)
            cmd = [sys.executable, os.path.abspath(__file__), "--json", path, *extra]
            subprocess.run(cmd, check=True, env=env, cwd=tree)
        finally:
            subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", tree], check=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 records, 50 and 100 resamples")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--before",
        help="seconds of evaluate with the smallest size before the change, one per kind "
        "(binary,survival,competing)",
    )
    parser.add_argument(
        "--before-json",
        help="the JSON a run of this script wrote at the earlier commit (its smallest size)",
    )
    parser.add_argument(
        "--before-commit",
        help="measure 'before' first: run the smallest size at this commit in a temporary "
        "git worktree (00503c2^ is the code before the vectorised bootstrap)",
    )
    parser.add_argument("--sizes", default=None, help="resample counts, e.g. 200,1000")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    n = 500 if args.quick else 2000
    sizes = [int(s) for s in (args.sizes or ("50,100" if args.quick else "200,1000")).split(",")]
    kinds = args.kinds.split(",")
    before = {}
    before_run: dict[str, object] | None = None
    if args.before:
        before = dict(zip(KINDS, map(float, args.before.split(",")), strict=True))
    elif args.before_json or args.before_commit:
        if args.before_commit:
            stem = args.json or "bootstrap.json"
            extra = ["--sizes", str(sizes[0]), "--kinds", ",".join(kinds)]
            extra += ["--quick"] if args.quick else []
            before_path = stem.replace(".json", "_before.json")
            args.before_json = _run_before(args.before_commit, before_path, extra)
        with open(args.before_json, encoding="utf-8") as fh:
            before_run = json.load(fh)
        smallest = min(before_run["sizes"])
        before = {
            r["kind"]: float(r["evaluate_s"])
            for r in before_run["runs"]
            if r["n_bootstrap"] == smallest
        }
        before_run = {k: v for k, v in before_run.items() if k != "runs"} | {"before_s": before}
    results: dict[str, object] = {
        "n_records": n,
        "sizes": sizes,
        "commit": _commit(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_before": os.getloadavg(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "runs": [],
    }
    if before_run is not None:
        results["before_run"] = before_run
    print(f"evaluate, {n} records; load average {os.getloadavg()[0]:.2f}")
    header = f"{'kind':<10}{'resamples':>10}{'evaluate s':>12}{'sklearn s':>11}{'ratio':>8}"
    print(header + ("   vs 'before' (target <= 1)" if before else ""))
    for kind in kinds:
        model, records = _setup(kind, n)
        fixed = _evaluate(model, records, 1)  # imports and caches, then the fixed part
        fixed = _evaluate(model, records, 1)
        print(f"{kind:<10}{1:>10}{fixed:>12.2f}   (everything but the bootstrap)", flush=True)
        results["runs"].append({"kind": kind, "n_bootstrap": 1, "evaluate_s": fixed})  # type: ignore[attr-defined]
        for size in sizes:
            took = _evaluate(model, records, size)
            raw = _raw_sklearn(model, records, size)
            run = {"kind": kind, "n_bootstrap": size, "evaluate_s": took, "sklearn_s": raw}
            line = f"{kind:<10}{size:>10}{took:>12.2f}{raw:>11.2f}{took / raw:>8.1f}"
            if kind in before:
                run["before_s"] = before[kind]
                run["vs_before"] = took / before[kind]
                line += f"   {took / before[kind]:.2f} of {before[kind]:.2f} s"
            results["runs"].append(run)  # type: ignore[attr-defined]
            print(line, flush=True)
    results["load_after"] = os.getloadavg()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
