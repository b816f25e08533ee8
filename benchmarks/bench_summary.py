"""One table of issue 18's performance targets, read from the benchmarks' JSON results.

Run ``python benchmarks/bench_summary.py`` after the benchmarks (``make bench``). It reads
the results each benchmark wrote to ``benchmarks/results/`` (``scaling.json``,
``scale.json``, ``api.json``, ``latency.json``, ``explain.json``, ``bootstrap.json``),
prints ONE table (issue-18 point, what is measured, the figure, the target, met or not,
the date and machine load of the run), and writes ``benchmarks/results/summary.json`` and
the docs page ``docs/benchmarks-performance.md``. Every figure comes from those files:
nothing is typed here but the targets, which are issue 18's.

A results file that is missing is shown as "not run"; so is a stale one, whose run
predates the last commit of the script that wrote it (unless the results were committed
with or after that change). A figure a target needs that the file does not hold is shown
as "not recorded", with the key that is missing.

``--run-smoke`` runs each benchmark in its smallest mode into a temporary directory
(``--results-dir`` to keep it), then builds the summary from there: this is what CI runs
(``tests/test_bench_smoke.py``); its timings mean nothing. ``bench_scaling.py`` has no
option to write its results elsewhere and writes none in ``--quick`` mode, so the smoke run
skips it. Exit code 1 if a smoke benchmark failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SUMMARY_JSON = RESULTS / "summary.json"
DOCS_PAGE = ROOT / "docs" / "benchmarks-performance.md"
POINTS = {
    1: "training and scoring linear in n",
    2: "batch scoring near raw",
    3: "an API near its ceiling",
    4: "a compiled single-record path",
    5: "explanations as fast as the native routines",
    6: "bootstraps 10x faster",
}
# the benchmark behind each results file, and its smallest mode for the smoke run ({out} is
# the results file); None: it cannot write its results elsewhere, so the smoke run skips it
SOURCES: dict[str, tuple[str, list[str] | None]] = {
    "scaling.json": ("bench_scaling.py", None),
    "scale.json": (
        "bench_scale.py",
        ["--rows", "1000", "--chunk-size", "500", "--block", "500", "--train-rows", "300",
         "--output", "{out}"],
    ),
    "api.json": (
        "bench_api.py",
        ["--requests", "64", "--batch-requests", "4", "--concurrency", "4", "--batch", "10",
         "--rounds", "1", "--cohort", "300", "--json", "{out}"],
    ),
    "latency.json": (
        "bench_latency.py",
        ["--calls", "20", "--batch-calls", "3", "--n-train", "300", "--parity-records", "0",
         "--json", "{out}"],
    ),
    "explain.json": (
        "bench_explain.py",
        ["--n", "100", "--n-train", "300", "--repeat", "1", "--json", "{out}"],
    ),
    "woodelf.json": (
        "bench_woodelf.py",
        ["--n", "100", "--n-train", "300", "--repeat", "1", "--json", "{out}"],
    ),
    "bootstrap.json": (
        "bench_bootstrap.py",
        ["--quick", "--sizes", "2", "--kinds", "binary", "--json", "{out}"],
    ),
}  # fmt: skip
LINEAR_SLOPE = 1.2  # this summary's reading of "linear in n": log-log slope (2 is quadratic)


class NotRecorded(Exception):
    """The results file lacks a figure a target needs; the message names the key."""


class NotMeasured(NotRecorded):
    """The run left this case out (e.g. ``bench_scaling.py --only``)."""


def _get(data: Any, *keys: Any) -> Any:
    """``data[k1][k2]...``, or NotRecorded naming the first missing key."""
    path = ""
    for key in keys:
        path += f"[{key!r}]"
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            raise NotRecorded(f"no {path}") from None
        if data is None:
            raise NotRecorded(f"{path} is null")
    return data


@dataclass
class Check:
    point: int
    source: str
    what: str
    op: str  # "<=", ">=", "<", ">"
    target: float
    measure: Callable[[dict[str, Any]], tuple[float, str]]  # -> (value, shown figure)

    def verdict(self, value: float) -> bool:
        ops = {"<=": value <= self.target, ">=": value >= self.target}
        ops |= {"<": value < self.target, ">": value > self.target}
        return ops[self.op]


# -- how each figure is read ------------------------------------------------------------------
def _scaling_row(data: dict[str, Any], endpoint: str, backend: str) -> dict[str, Any]:
    rows = [r for r in _get(data, "sizes") if (r["endpoint"], r["backend"]) == (endpoint, backend)]
    if not rows:
        raise NotMeasured(f"no ['sizes'] row for {endpoint}/{backend}")
    return max(rows, key=lambda r: r["records"])


def _fit_over_raw(data: dict[str, Any]) -> tuple[float, str]:
    r = _scaling_row(data, "future_fracture", "xgboost")
    v = float(_get(r, "fit_over_raw"))
    return v, f"{v:.2f}x at {r['records']:,} records"


def _scoring_vs_raw(data: dict[str, Any]) -> tuple[float, str]:
    r = _scaling_row(data, "future_fracture", "xgboost")
    v = float(_get(r, "raw_over_predict_step"))
    return v, f"{v:.2f} of raw at {r['records']:,} records"


def _slope(endpoint: str, backend: str, key: str) -> Callable[[dict[str, Any]], tuple[float, str]]:
    def measure(data: dict[str, Any]) -> tuple[float, str]:
        rows = [r for r in _get(data, "sizes") if r["endpoint"] == endpoint]
        rows = [r for r in rows if r["backend"] == backend]
        if not rows:
            raise NotMeasured(f"no ['sizes'] row for {endpoint}/{backend}")
        v = float(_get(rows[0], "slopes", key))
        sizes = "/".join(f"{r['records'] // 1000}k" for r in rows)
        return v, f"slope {v:.2f} ({sizes})"

    return measure


def _scale_ratio(data: dict[str, Any]) -> tuple[float, str]:
    v = float(_get(data, "ratio_vs_ensemble"))
    cpu = data.get("cpu_ratio_vs_ensemble")
    extra = f"; CPU-time ratio {cpu:.2f}" if cpu is not None else ""
    return v, f"{v:.2f} of raw at {_get(data, 'rows'):,} records{extra}"


def _scale_rss(data: dict[str, Any]) -> tuple[float, str]:
    v = float(_get(data, "peak_rss_gib"))
    text = f"{v:.2f} GiB at {_get(data, 'rows'):,} records, chunks of {_get(data, 'chunk_size'):,}"
    if data.get("compare_peak_rss_gib") is not None:
        text += f" ({data['compare_peak_rss_gib']:.2f} GiB at {data['compare_rows']:,})"
    return v, text


def _api_ratio(key: str, batch: bool = False) -> Callable[[dict[str, Any]], tuple[float, str]]:
    def measure(data: dict[str, Any]) -> tuple[float, str]:
        v = float(_get(data, "ratios", key))
        size = f"{_get(data, 'records_per_batch')}-record batches, " if batch else ""
        return v, f"{v:.2f} ({size}concurrency {_get(data, 'concurrency')})"

    return measure


def _woodelf(backend: str) -> Callable[[dict[str, Any]], tuple[float, str]]:
    def measure(data: dict[str, Any]) -> tuple[float, str]:
        rows = [r for r in _get(data, "results") if r.get("backend") == backend]
        if not rows:
            raise NotMeasured(f"no ['results'] row for {backend}")
        v = float(_get(rows[0], "ratio_over_native_all_cores", "woodelf"))
        diff = float(_get(rows[0], "max_abs_difference"))
        return v, f"{v:.2f}x on {_get(rows[0], 'n_explained'):,} records, max |diff| {diff:.1e}"

    return measure


def _api_p99(data: dict[str, Any]) -> tuple[float, str]:
    v = float(_get(data, "medians", "serve", "p99_ms"))
    return v, f"{v:.1f} ms (concurrency {_get(data, 'concurrency')})"


def _compiled_p50(data: dict[str, Any]) -> tuple[float, str]:
    v = float(_get(data, "compiled", "p50_us"))
    return v, f"{v:.1f} us ({_get(data, 'xgboost_ensemble', 'boosters')} boosters)"


def _parity(data: dict[str, Any]) -> tuple[float, str]:
    rows = [r for r in _get(data, "parity") if r.get("records")]
    if not rows:
        raise NotRecorded("['parity'] has no compared records")
    v = max(float(r["max_abs_difference"]) for r in rows)
    return v, f"{v:.1e} over {len(rows)} endpoint/backend pairs"


def _explain(
    backend: str, key: str, endpoint: str | None = None
) -> Callable[[dict[str, Any]], tuple[float, str]]:
    """The ratio ``key`` of the nonunion (``endpoint=None``) or ``endpoint`` model's row."""

    def measure(data: dict[str, Any]) -> tuple[float, str]:
        rows = [
            r
            for r in _get(data, "results")
            if r.get("backend") == backend and r.get("endpoint") == endpoint
        ]
        if not rows:
            raise NotMeasured(f"no ['results'] row for {endpoint or 'nonunion'} {backend}")
        v = float(_get(rows[0], key))
        return v, f"{v:.2f}x on {_get(rows[0], 'n_explained'):,} records"

    return measure


def _bootstrap(kind: str) -> Callable[[dict[str, Any]], tuple[float, str]]:
    def measure(data: dict[str, Any]) -> tuple[float, str]:
        runs = [r for r in _get(data, "runs") if r["kind"] == kind and r["n_bootstrap"] == 1000]
        if not runs:
            raise NotMeasured(f"no ['runs'] entry for {kind} with n_bootstrap 1000")
        r = runs[0]
        v = float(_get(r, "vs_before"))
        return v, f"{r['evaluate_s']:.1f} s for 1,000 vs {_get(r, 'before_s'):.1f} s for 200 before"

    return measure


CHECKS = [
    Check(1, "scaling.json", "future-fracture fit / raw xgboost.train (two causes), 100k",
          "<=", 2.0, _fit_over_raw),
    Check(1, "scaling.json", "future-fracture batch scoring, share of raw inplace_predict, 100k",
          ">=", 0.5, _scoring_vs_raw),
    *(
        Check(1, "scaling.json", f"{ep} {backend}: {key} time against size", "<=", LINEAR_SLOPE,
              _slope(ep, backend, key))
        for ep in ("nonunion", "cervical_mortality", "future_fracture")
        for backend in ("xgboost", "linear")
        for key in ("fit", "predict_risk")
    ),
    Check(2, "scale.json", "nonunion score_file end to end / raw inplace_predict (5 boosters)",
          ">=", 0.75, _scale_ratio),
    Check(2, "scale.json", "peak RSS of the scoring process (GiB)", "<", 2.0, _scale_rss),
    Check(3, "api.json", "single records (c=32): serve / minimal app throughput", ">=", 0.9,
          _api_ratio("single_vs_minimal")),
    Check(3, "api.json", "single records (c=32): serve p99 (ms)", "<=", 50.0, _api_p99),
    Check(3, "api.json", "batches (100 records): serve / minimal app", ">=", 0.8,
          _api_ratio("batch_vs_minimal", batch=True)),
    Check(3, "api.json", "cost of request logging (1 - info/warning throughput)", "<", 0.05,
          _api_ratio("logging_cost")),
    Check(3, "api.json", "batches: server CPU per batch, minimal app / serve", ">=", 0.8,
          _api_ratio("batch_server_cpu_vs_minimal", batch=True)),
    Check(3, "api.json", "--workers 2 / 1 throughput", ">", 1.0,
          _api_ratio("workers2_vs_workers1_unpinned")),
    Check(3, "api.json", "--workers 2 / 1 throughput per busy server core", ">=", 0.9,
          _api_ratio("workers2_per_core_vs_workers1")),
    Check(3, "api.json", "--workers 2 / 1 throughput, 100-record batches (2 cores)", ">=", 1.6,
          _api_ratio("batch_workers2_vs_workers1", batch=True)),
    Check(3, "api.json", "--workers 2 / 1 on batches, per busy server core", ">=", 0.9,
          _api_ratio("batch_workers2_per_core_vs_workers1", batch=True)),
    Check(4, "latency.json", "one record, compiled fast path, p50 (us)", "<=", 100.0,
          _compiled_p50),
    Check(4, "latency.json", "compiled vs today's path, max |risk difference|", "<=", 1e-7,
          _parity),
    *(
        Check(5, "explain.json", f"{backend} explain() / native SHAP ({cores})", "<=", 1.0,
              _explain(backend, key))
        for backend in ("xgboost", "lightgbm")
        for cores, key in (("booster's threads", "ratio_explain_over_native"),
                           ("all cores", "ratio_explain_over_native_all_cores"))
    ),
    Check(5, "explain.json", "future_fracture xgboost explain() / native SHAP (all cores)",
          "<=", 1.0, _explain("xgboost", "ratio_explain_over_native_all_cores",
                              "future_fracture")),
    *(
        Check(5, "woodelf.json", f"woodelf TreeSHAP / native ({backend}, all cores)", "<=",
              1.0, _woodelf(backend))
        for backend in ("xgboost", "lightgbm")
    ),
    *(
        Check(6, "bootstrap.json", f"{kind}: evaluate, 1,000 resamples / 200 before", "<=", 1.0,
              _bootstrap(kind))
        for kind in ("binary", "survival", "competing")
    ),
]  # fmt: skip


# -- where and when each results file was made -------------------------------------------------
def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def _commit_time(path: Path) -> float | None:
    """Unix time of the last commit touching ``path``, None if untracked or no git."""
    stamp = _git("log", "-1", "--format=%ct", "--", str(path))
    return float(stamp) if stamp else None


def _run_time(data: dict[str, Any], path: Path) -> tuple[float, str]:
    """When the benchmark ran: its recorded date, else the file's commit or write time."""
    for key in ("date_utc", "date", "when"):
        text = data.get(key)
        if isinstance(text, str):
            clean = text.replace(" UTC", "+00:00").replace("Z", "+00:00")
            try:
                when = dt.datetime.fromisoformat(clean)
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp(), f"['{key}']"
    tracked = _git("ls-files", "--", str(path)) and not _git("status", "--porcelain", str(path))
    committed = _commit_time(path) if tracked else None
    if committed is not None:  # a checkout's file time says nothing about the run
        return committed, "no date key; committed then"
    return path.stat().st_mtime, "no date key; file written then"


def _load(data: dict[str, Any]) -> str:
    """The 1-minute load average(s) the benchmark recorded, as text."""
    m = data.get("machine") if isinstance(data.get("machine"), dict) else {}
    pairs = [
        (m.get("load_average_before"), m.get("load_average_after")),
        (m.get("load_average_1m_before_scoring"), m.get("load_average_1m_after_scoring")),
        (data.get("load_before"), data.get("load_after")),
        (m.get("load_average_1m"), None),
    ]
    for before, after in pairs:
        if before is None:
            continue
        first = [x[0] if isinstance(x, list) else x for x in (before, after) if x is not None]
        return " -> ".join(f"{x:.1f}" for x in first)
    uptimes = [m.get("uptime_before"), m.get("uptime_after")]
    ones = [u.split("load average:")[1].split(",")[0].strip() for u in uptimes if u]
    if ones:  # `uptime` text: its 1-minute load average
        return " -> ".join(ones)
    loads = sorted({r["load"] for r in data.get("sizes", []) + data.get("boosted", [])})
    if loads:  # bench_scaling: "1m/5m" per measured size
        return f"{loads[0].split('/')[0]}-{loads[-1].split('/')[0]}"
    return "not recorded"


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine")
    m = m if isinstance(m, dict) else {}
    cores = m.get("cpus") or m.get("cores") or m.get("cpu_count") or data.get("cpus")
    plat = m.get("platform") or (data["machine"] if isinstance(data.get("machine"), str) else "")
    parts = [f"{cores} cores" if cores else "cores not recorded"]
    if plat:
        parts.append(plat)
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    return ", ".join(parts)


def read_source(results: Path, name: str, check_stale: bool) -> dict[str, Any]:
    """Status, data and provenance of one results file."""
    script = HERE / SOURCES[name][0]
    path = results / name
    info: dict[str, Any] = {"file": name, "script": SOURCES[name][0]}
    if not path.exists():
        return info | {"status": "not run", "reason": f"no {name}"}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return info | {"status": "not run", "reason": f"{name} is not readable JSON: {err}"}
    when, when_from = _run_time(data, path)
    info |= {
        "date": dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "date_from": when_from,
        "load": _load(data),
        "machine": _machine(data),
        "uptime": (data.get("machine") or {}).get("uptime_after")
        if isinstance(data.get("machine"), dict)
        else None,
    }
    changed = _commit_time(script) if check_stale else None
    if changed is not None and when < changed:
        committed = _commit_time(path)
        clean = not _git("status", "--porcelain", str(path))
        if not (committed is not None and clean and committed >= changed):
            stamp = dt.datetime.fromtimestamp(changed, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = f"stale: run {info['date']}, {SOURCES[name][0]} changed {stamp}"
            return info | {"status": "not run", "reason": reason}
    return info | {"status": "read", "data": data}


def build(results: Path, check_stale: bool = True) -> dict[str, Any]:
    """Every check against its target, from the JSON in ``results``."""
    sources = {name: read_source(results, name, check_stale) for name in SOURCES}
    rows = []
    for c in CHECKS:
        src = sources[c.source]
        row: dict[str, Any] = {
            "point": c.point,
            "what": c.what,
            "target": f"{c.op} {c.target:g}",
            "source": c.source,
            "date": src.get("date"),
            "load": src.get("load"),
        }
        if src["status"] != "read":
            rows.append(row | {"figure": None, "status": "not run", "note": src["reason"]})
            continue
        try:
            value, shown = c.measure(src["data"])
        except NotRecorded as missing:
            status = "not run" if isinstance(missing, NotMeasured) else "not recorded"
            note = f"{c.source} has {missing}"
            rows.append(row | {"figure": None, "status": status, "note": note})
            continue
        met = c.verdict(value)
        rows.append(row | {"value": value, "figure": shown, "status": "met" if met else "not met"})
    for src in sources.values():
        src.pop("data", None)
    return {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "results_dir": str(results.relative_to(ROOT) if results.is_relative_to(ROOT) else results),
        "sources": sources,
        "rows": rows,
    }


# -- output --------------------------------------------------------------------------------------
def _figure(row: dict[str, Any]) -> str:
    return row["figure"] if row["figure"] is not None else f"{row['status']}: {row['note']}"


def table(summary: dict[str, Any]) -> str:
    """The summary as plain text; why a row has no figure is on the line below it."""
    head = f"{'pt':<3}{'measured':<66}{'figure':<56}{'target':<9}{'status':<14}run (date, load)"
    lines = [head, "-" * len(head)]
    for r in summary["rows"]:
        run = f"{r['date']}, load {r['load']}" if r["date"] else ""
        fig = r["figure"] or "-"
        lines.append(
            f"{r['point']:<3}{r['what']:<66}{fig:<56}{r['target']:<9}{r['status']:<14}{run}"
        )
        if r["figure"] is None:
            lines.append(f"{'':<3}  -> {r['note']}")
    counts = {s: sum(r["status"] == s for r in summary["rows"]) for s in
              ("met", "not met", "not recorded", "not run")}  # fmt: skip
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def _cells(*cells: Any) -> str:
    """One Markdown table row; a "|" inside a cell is escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def markdown(summary: dict[str, Any]) -> str:
    out = [
        "# Performance against issue 18's targets",
        "",
        "<!-- Generated by benchmarks/bench_summary.py from benchmarks/results/*.json; "
        "do not edit by hand. -->",
        "",
        "Each figure below is read from the JSON a benchmark in `benchmarks/` wrote; nothing "
        "is typed by hand but the targets, which are issue 18's. Speed figures are ratios "
        "against the raw library (or a minimal app) measured in the same run on the same "
        "machine, so they say more than absolute times on a shared machine; the load average "
        'of each run is given with it. "not run" means no results, or results older than '
        'the last change to the benchmark; "not recorded" means the benchmark\'s JSON lacks '
        "the figure. All data are synthetic. Regenerate with `make bench` or "
        "`python benchmarks/bench_summary.py`.",
        "",
        f"Summary built {summary['generated']}.",
        "",
        "| point | measured | figure | target | status | run (date, load) |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        run = f"{r['date']}, load {r['load']}" if r["date"] else "-"
        what = f"{r['point']}. {POINTS[r['point']]}"
        out.append(_cells(what, r["what"], _figure(r), r["target"], r["status"], run))
    out += [
        "",
        "## Where each figure came from",
        "",
        "| results file | benchmark | status | run | load (1 min) | machine |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary["sources"].values():
        status = s["status"] if s["status"] != "not run" else f"not run ({s['reason']})"
        run = f"{s['date']} ({s['date_from']})" if s.get("date") else "-"
        script = f"`benchmarks/{s['script']}`"
        out.append(
            _cells(f"`{s['file']}`", script, status, run, s.get("load", "-"), s.get("machine", "-"))
        )
    uptimes = [(s["file"], s["uptime"]) for s in summary["sources"].values() if s.get("uptime")]
    if uptimes:
        out += ["", "`uptime` after each run, where the benchmark recorded it:", ""]
        out += [f"- `{f}`: `{u}`" for f, u in uptimes]
    out += [
        "",
        f"A time-against-size slope counts as linear up to {LINEAR_SLOPE} (log-log; 2 is "
        "quadratic). See `benchmarks/README.md` for what each benchmark does.",
        "",
    ]
    return "\n".join(out)


# -- the smoke run -------------------------------------------------------------------------------
def run_smoke(results: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each benchmark's smallest mode into ``results`` (two at a time), but the scripts in
    ``skip``; exit code and seconds per script."""
    results.mkdir(parents=True, exist_ok=True)

    def one(name: str) -> tuple[str, dict[str, Any]]:
        script, args = SOURCES[name]
        if args is None:
            return name, {"script": script, "skipped": "no option to write its results elsewhere"}
        if script in skip:
            return name, {"script": script, "skipped": "left out (--skip)"}
        cmd = [sys.executable, str(HERE / script)] + [a.format(out=results / name) for a in args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - start
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        return name, {"script": script, "exit_code": proc.returncode, "seconds": round(took, 1),
                      "output_tail": tail if proc.returncode else []}  # fmt: skip

    workers = max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, SOURCES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="read (or, with --run-smoke, write) the results here",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the docs page here")
    parser.add_argument(
        "--run-smoke",
        action="store_true",
        help="run every benchmark's smallest mode first (CI); writes neither "
        "the published summary nor the docs page unless told to",
    )
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=[script for script, args in SOURCES.values() if args],
        help="with --run-smoke: leave these benchmarks out",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.run_smoke:
        with tempfile.TemporaryDirectory(prefix="spinerisk-bench-smoke-") as tmp:
            results = args.results_dir or Path(tmp)
            smoke = run_smoke(results, tuple(args.skip))
            summary = build(results, check_stale=False) | {"smoke": smoke}
        failed = [s["script"] for s in smoke.values() if s.get("exit_code")]
    else:
        summary = build(args.results_dir or RESULTS)
        args.json = args.json or SUMMARY_JSON
        args.markdown = args.markdown or DOCS_PAGE
        failed = []
    print(table(summary))
    for s in summary.get("smoke", {}).values():
        said = s.get("skipped") or f"exit {s['exit_code']} in {s['seconds']} s"
        print(f"smoke {s['script']:<20} {said}")
        for line in s.get("output_tail", []):
            print(f"    {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(summary), encoding="utf-8")
        print(f"wrote {args.markdown}")
    if failed:
        print(f"smoke run failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
