"""Load test of the HTTP API against its ceiling: `spinerisk serve` and a minimal FastAPI
app calling the same boosters, measured in the same run (issue 18, point 3).

Run ``python benchmarks/bench_api.py`` (a few minutes on 2 cores) or
``python benchmarks/bench_api.py --requests 600 --rounds 1`` for a quick look. It fits a
nonunion XGBoost model (calibrated 5-fold ensemble: 5 boosters) on a SYNTHETIC cohort,
saves it as a bundle and, per round, starts on free loopback ports (uvicorn, one worker
unless said otherwise):

* ``spinerisk serve`` (``POST /v1/predict``: strict request model, the schema's checks,
  the compiled single-record path, one access-log line per request at log level info);
* the same with ``--log-level warning`` (no access line: the cost of logging);
* the same with ``--workers 2`` and, to compare, with one worker, both unpinned (the
  workers need every CPU), on single records and on ``--batch``-record batches. The CPU
  time of each server process is read (psutil), so the run shows how many processes
  answered requests and how many cores the server kept busy. On single records the
  client needs ~12-15% of a CPU, so on a 2-CPU machine two workers cannot double the
  throughput; on batches it needs ~2%, so the workers get nearly both cores: there the
  throughput ratio (expected near 1.8-1.9 on an otherwise idle machine) shows whether
  ``--workers`` scales. Throughput per busy server core (2 workers against 1, near 1)
  shows that it grows with the cores the workers get;
* a *minimal* FastAPI app that loads the same bundle and, per request, parses the JSON,
  stacks the already-encoded feature rows the client sends, calls the same 5 boosters'
  ``inplace_predict``, applies the sigmoid calibrators and returns a dict: no validation,
  no feature pipeline, no logging. That is the ceiling of issue 18;
* the same minimal app answering single records with spinerisk's compiled single-record
  call (``FastPredictor.predict_risk`` on the record as sent, nothing around it): a
  second, stricter ceiling, since that call is faster than XGBoost's ``inplace_predict``
  on one row, so the ratio to it measures what the API adds (request model, answer,
  log line) and nothing else.

The load generator is an asyncio HTTP/1.1 client with pre-encoded requests on
keep-alive connections (uvloop when installed), ``--concurrency`` connections each
with one request in flight. It runs in this process, pinned to the last CPU, with the
server pinned to the others where the machine has more than one; its CPU use (process
time / wall time) is reported so that a saturated client shows. Single-record requests
and ``--batch``-record requests are sent; p50/p99 latency and throughput are reported,
the ratios printed against the targets (single >= 0.9x the minimal app with p99 <= 50 ms,
batches >= 0.8x, logging < 5%) with ``uptime``, and everything written to
``benchmarks/results/api.json``. The server log is checked for record values (none
may appear). Exit code 1 if any request failed or a value leaked. Not part of the test
suite (``tests/test_api.py`` has a small loopback test).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # module level: the minimal app's annotations need it

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "api.json"
MARKER_ID = "BENCH-ZQX-4242"  # distinctive values that must never reach the server log
MARKER_HU = 141.424242
TARGETS = {"single": 0.9, "batch": 0.8, "p99_ms": 50.0, "logging_cost": 0.05}


# -- the minimal app (run in a child process: ``bench_api.py --minimal PORT BUNDLE``) ---------
def minimal_app(bundle: str) -> Any:
    """A FastAPI app calling the bundle's boosters on encoded rows; nothing else."""
    import warnings

    from scipy.special import expit

    import spinerisk as sr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.load(bundle)
    folds = [
        (
            cc.estimator.named_steps["model"].estimator_.get_booster(),
            cc.calibrators[0].a_,
            cc.calibrators[0].b_,
        )
        for cc in model.estimator_.calibrated_classifiers_
    ]
    app = FastAPI()

    def risks(X: np.ndarray) -> list[float]:
        acc = np.zeros(len(X))
        for booster, a, b in folds:
            acc += expit(-(a * booster.inplace_predict(X, predict_type="margin") + b))
        return (acc / len(folds)).tolist()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.json()
        records = body["records"] if "records" in body else [body]
        X = np.array([r["x"] for r in records], dtype=np.float64)
        return {
            "predictions": [
                {"id": r["id"], "risk": p} for r, p in zip(records, risks(X), strict=True)
            ]
        }

    fast = model._fast_predictor()
    # as `spinerisk serve` does: listen once the trees are compiled, so that neither app
    # shares its core with the C compiler while measured
    fast.wait_compiled()

    @app.post("/predict_fast")
    async def predict_fast(request: Request) -> dict[str, Any]:
        # the second ceiling: spinerisk's own compiled call on the record as sent, with
        # nothing around it (no request model, no checks beyond the call's, no log line)
        return fast.predict_risk(await request.json())  # type: ignore[no-any-return]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


# -- setup --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fit(n_cohort: int, seed: int, bundle: Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Fit and save the model; JSON records and their encoded rows (minimal app input)."""
    import warnings

    import spinerisk as sr

    cohort = sr.make_spine_cohort(n_cohort, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(endpoint="nonunion", backend="xgboost", random_state=seed)
        model.fit(cohort)
        model.save(bundle)
        valid = sr.validate(cohort)
        valid = valid[model.endpoint_.eligible(valid)]
    fields = [model.id_field_, *model.endpoint_.predictors()]
    records = json.loads(valid[[c for c in fields if c in valid.columns]].to_json(orient="records"))
    features = model.estimator_.calibrated_classifiers_[0].estimator.named_steps["features"]
    X = features.transform(valid)  # categories as codes, as the boosters read numpy rows
    encoded = np.column_stack(
        [
            np.where(X[c].cat.codes < 0, np.nan, X[c].cat.codes).astype(np.float64)
            if X[c].dtype == "category"
            else X[c].to_numpy(dtype=np.float64)
            for c in X.columns
        ]
    )
    return records, encoded


def _bodies(
    records: list[dict[str, Any]], encoded: np.ndarray, n: int, batch: int
) -> tuple[list[bytes], list[bytes]]:
    """``n`` request bodies for spinerisk and the same records encoded for the minimal app."""
    ours, minimal = [], []
    for i in range(n):
        idx = [(i * batch + j) % len(records) for j in range(batch)]
        recs = [dict(records[k], patient_id=f"B{i}-{j}") for j, k in enumerate(idx)]
        rows = [
            {"id": r["patient_id"], "x": [float(v) for v in encoded[k]]}
            for r, k in zip(recs, idx, strict=True)
        ]
        if i == 0:
            recs[0] = dict(recs[0], patient_id=MARKER_ID, hu_l1=MARKER_HU)
        ours.append(json.dumps(recs[0] if batch == 1 else {"records": recs}).encode())
        minimal.append(json.dumps(rows[0] if batch == 1 else {"records": rows}).encode())
    return ours, minimal


def _start(args: list[str], log: Path, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    """Start a server on ``cpus`` (set before it runs, so that ``--workers`` inherit it; a
    child would otherwise inherit this process's affinity: the client's CPU)."""

    def pin() -> None:
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)

    with log.open("w") as out:
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=out, preexec_fn=pin)


def _serve_args(bundle: Path, port: int, *extra: str) -> list[str]:
    code = "import sys; from spinerisk.cli import main; sys.argv[0] = 'spinerisk'; main()"
    return ["-c", code, "serve", "--model", str(bundle), "--port", str(port), *extra]


def _wait_healthy(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy within 300 s")


def _wait_workers(server_args: list[str], server: subprocess.Popen[bytes], log: Path) -> None:
    """With ``--workers N``, wait until every worker has loaded the model (uvicorn logs
    "Application startup complete." once per worker): the first one ready answers the
    health check, and a worker still compiling its trees when the load starts gets no
    connection (they are kept alive), so one worker would serve them all."""
    if "--workers" not in server_args:
        return
    n = int(server_args[server_args.index("--workers") + 1])
    deadline = time.monotonic() + 300
    while log.read_text().count("Application startup complete.") < n:
        if server.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {n} workers started within 300 s")
        time.sleep(0.2)


# -- the load generator -------------------------------------------------------------------------
async def _load(
    port: int, path: str, bodies: list[bytes], concurrency: int
) -> tuple[list[tuple[int, float]], float, float]:
    """Send every body over ``concurrency`` keep-alive connections, one request in flight
    each; (status, seconds) per request, wall seconds and client CPU seconds."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    requests = [(head + f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]
    queue = list(reversed(requests))
    results: list[tuple[int, float]] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while queue:
                request = queue.pop()
                start = time.perf_counter()
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                status = int(header[9:12])
                length = 0
                for line in header.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                results.append((status, time.perf_counter() - start))
        finally:
            writer.close()

    # connections opened one at a time before the clock starts: uvicorn's workers share
    # the listening socket, and a burst of connections is accepted by whichever worker
    # wakes first, which would then serve them all (they are kept alive)
    connections = []
    for _ in range(concurrency):
        connections.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.002)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection(r, w) for r, w in connections))
    return results, time.perf_counter() - wall, time.process_time() - cpu


def _server_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of a process and of each of its children (uvicorn's
    workers), by process id; empty without psutil."""
    try:
        import psutil
    except ImportError:
        return {}
    proc = psutil.Process(pid)
    out = {}
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[p.pid] = t.user + t.system
    return out


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds each process used between two readings (0 for one that ended)."""
    return {pid: after.get(pid, before.get(pid, 0.0)) - before.get(pid, 0.0) for pid in after}


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _measure(
    name: str,
    server_args: list[str],
    port: int,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    tmp: Path,
    cpus: set[int] | None,
) -> dict[str, Any]:
    log = tmp / f"{name}.log"
    server = _start(server_args, log, cpus)
    try:
        _wait_healthy(port, server, log)
        _wait_workers(server_args, server, log)
        _run_loop(_load(port, path, bodies[: 4 * concurrency], concurrency))  # warm-up
        cpu_before = _server_cpu(server.pid)
        results, wall, client_cpu = _run_loop(_load(port, path, bodies, concurrency))
        used = _cpu_used(cpu_before, _server_cpu(server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:  # a busy machine: do not leave it running
            server.kill()
            server.wait()
    latencies = np.array([t for _, t in results])
    failed = [s for s, _ in results if s != 200]
    server_log = log.read_text()
    server_cpu = sum(used.values()) if used else float("nan")
    # processes that did a share of the work: the workers that answered requests (the
    # supervisor of --workers N and multiprocessing's helper hardly use any CPU)
    busy = sorted((c for c in used.values() if c > 0.1 * server_cpu), reverse=True)
    return {
        "requests": len(results),
        "failed": len(failed),
        "requests_per_second": len(results) / wall,
        "p50_ms": 1000 * float(np.quantile(latencies, 0.5)),
        "p99_ms": 1000 * float(np.quantile(latencies, 0.99)),
        "client_cpu_share": client_cpu / wall,  # near 1.0: the client was the bottleneck
        # CPU the server (all its processes and threads) spent per request: unlike
        # throughput, hardly moved by other programs sharing the machine
        "server_cpu_us_per_request": 1e6 * server_cpu / len(results),
        # cores the server kept busy (all its processes), and per busy process its
        # share of the server's CPU (``--workers N``: N shares if every worker served)
        "server_cores_busy": server_cpu / wall,
        "busy_processes": len(busy),
        "busy_process_cpu_shares": [round(c / server_cpu, 3) for c in busy],
        "record_values_in_server_log": MARKER_ID in server_log or str(MARKER_HU) in server_log,
        "access_lines": server_log.count('"POST /v1/predict HTTP/1.1"'),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; return the process exit code (1 if any request failed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="Single-record requests.")
    parser.add_argument("--batch-requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=100, help="Records per batch request.")
    parser.add_argument("--rounds", type=int, default=3, help="Repeats; medians are reported.")
    parser.add_argument("--cohort", type=int, default=3000, help="Synthetic training records.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    parser.add_argument("--minimal", nargs=2, metavar=("PORT", "BUNDLE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minimal:  # child process: serve the minimal app
        import uvicorn

        port, bundle = args.minimal
        uvicorn.run(minimal_app(bundle), port=int(port), access_log=False, log_level="warning")
        return 0

    import spinerisk as sr

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpus = set(cpus[:-1]) if ncpu > 1 else None
    every_cpu = set(cpus) or None  # "unpinned": every CPU, the client's included
    if server_cpus:  # the client on its own core
        os.sched_setaffinity(0, {cpus[-1]})
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bundle = tmp / "nonunion.srb"
        records, encoded = _fit(args.cohort, args.seed, bundle)
        single, single_min = _bodies(records, encoded, args.requests, 1)
        batch, batch_min = _bodies(records, encoded, args.batch_requests, args.batch)
        me = str(Path(__file__).resolve())
        load_before = os.getloadavg()
        for _ in range(args.rounds):
            port = _free_port()
            cases = [
                ("serve", _serve_args(bundle, port), "/v1/predict", single, server_cpus),
                ("minimal", [me, "--minimal", str(port), str(bundle)], "/predict", single_min,
                 server_cpus),
                ("minimal_fastpath", [me, "--minimal", str(port), str(bundle)],
                 "/predict_fast", single, server_cpus),
                ("serve_quiet", _serve_args(bundle, port, "--log-level", "warning"),
                 "/v1/predict", single, server_cpus),
                ("serve_batch", _serve_args(bundle, port), "/v1/predict", batch, server_cpus),
                ("minimal_batch", [me, "--minimal", str(port), str(bundle)], "/predict",
                 batch_min, server_cpus),
                ("serve_workers2", _serve_args(bundle, port, "--workers", "2"), "/v1/predict",
                 single, every_cpu),
                ("serve_workers1_unpinned", _serve_args(bundle, port), "/v1/predict", single,
                 every_cpu),
                # twice the batches: two workers answer them in about the time one
                # worker takes for a single pass
                ("serve_batch_workers2", _serve_args(bundle, port, "--workers", "2"),
                 "/v1/predict", batch * 2, every_cpu),
                ("serve_batch_workers1", _serve_args(bundle, port), "/v1/predict", batch * 2,
                 every_cpu),
            ]  # fmt: skip
            for name, server_args, path, bodies, pin in cases:
                port = _free_port()
                server_args = _with_port(server_args, port, name)
                result = _measure(name, server_args, port, path, bodies, args.concurrency, tmp, pin)
                runs.setdefault(name, []).append(result)
                print(
                    f"  {name:<24}{result['requests_per_second']:>9.0f} req/s  p50 "
                    f"{result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  client CPU "
                    f"{result['client_cpu_share']:.0%}  failed {result['failed']}",
                    flush=True,
                )
        load_after = os.getloadavg()
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    med = {name: _median(rs) for name, rs in runs.items()}
    b = args.batch
    ratios = {
        "single_vs_minimal": med["serve"]["requests_per_second"]
        / med["minimal"]["requests_per_second"],
        "single_vs_minimal_fastpath": med["serve"]["requests_per_second"]
        / med["minimal_fastpath"]["requests_per_second"],
        "batch_vs_minimal": med["serve_batch"]["requests_per_second"]
        / med["minimal_batch"]["requests_per_second"],
        "logging_cost": 1
        - med["serve"]["requests_per_second"] / med["serve_quiet"]["requests_per_second"],
        # the same from the server's CPU per request (robust to a busy machine)
        "logging_cost_server_cpu": 1
        - med["serve_quiet"]["server_cpu_us_per_request"]
        / med["serve"]["server_cpu_us_per_request"],
        "workers2_vs_workers1_unpinned": med["serve_workers2"]["requests_per_second"]
        / med["serve_workers1_unpinned"]["requests_per_second"],
        # throughput per server core kept busy, 2 workers against 1: near 1 means
        # throughput grows with the cores the workers get (the client and any other
        # program take their share of this machine's CPUs first)
        "workers2_per_core_vs_workers1": _per_core(med["serve_workers2"])
        / _per_core(med["serve_workers1_unpinned"]),
        "workers2_server_cores_busy": med["serve_workers2"]["server_cores_busy"],
        "workers1_server_cores_busy": med["serve_workers1_unpinned"]["server_cores_busy"],
        "workers2_busy_processes": med["serve_workers2"]["busy_processes"],
        "batch_server_cpu_vs_minimal": med["minimal_batch"]["server_cpu_us_per_request"]
        / med["serve_batch"]["server_cpu_us_per_request"],
        # --workers on batches: the client needs ~2% of a CPU, the workers get the rest
        "batch_workers2_vs_workers1": med["serve_batch_workers2"]["requests_per_second"]
        / med["serve_batch_workers1"]["requests_per_second"],
        "batch_workers2_per_core_vs_workers1": _per_core(med["serve_batch_workers2"])
        / _per_core(med["serve_batch_workers1"]),
        "batch_workers2_server_cores_busy": med["serve_batch_workers2"]["server_cores_busy"],
        "batch_workers1_server_cores_busy": med["serve_batch_workers1"]["server_cores_busy"],
        "batch_workers2_busy_processes": med["serve_batch_workers2"]["busy_processes"],
        "batch_workers_client_cpu_share": med["serve_batch_workers2"]["client_cpu_share"],
        # per round: other programs' load changes from round to round, and with it the
        # cores the workers can get (the medians mix rounds with and without a free core)
        "batch_workers2_vs_workers1_rounds": _round_ratios(
            runs["serve_batch_workers2"], runs["serve_batch_workers1"]
        ),
        "batch_workers2_server_cores_busy_rounds": [
            round(r["server_cores_busy"], 3) for r in runs["serve_batch_workers2"]
        ],
        "batch_workers1_server_cores_busy_rounds": [
            round(r["server_cores_busy"], 3) for r in runs["serve_batch_workers1"]
        ],
        "workers2_vs_workers1_rounds": _round_ratios(
            runs["serve_workers2"], runs["serve_workers1_unpinned"]
        ),
        "workers2_server_cores_busy_rounds": [
            round(r["server_cores_busy"], 3) for r in runs["serve_workers2"]
        ],
    }
    failed = sum(r["failed"] for rs in runs.values() for r in rs)
    leaked = any(r["record_values_in_server_log"] for rs in runs.values() for r in rs)
    summary = {
        "what": "POST /v1/predict on loopback: `spinerisk serve` (uvicorn) against a minimal "
        "FastAPI app calling the same boosters, same run",
        "model": "nonunion, XGBoost calibrated 5-fold ensemble (5 boosters), SYNTHETIC cohort",
        "load_generator": "asyncio HTTP/1.1 client, pre-encoded requests, keep-alive, one "
        "request in flight per connection" + (" (uvloop)" if _has_uvloop() else ""),
        "pinning": f"server on CPUs {sorted(server_cpus)}, client on CPU {cpus[-1]}"
        if server_cpus
        else "none (one CPU)",
        "workers_note": f"{ncpu} CPU(s) shared by the client, the server's workers and any "
        "other program. Single records: the client takes ~12-15% of a CPU, so --workers 2 "
        "cannot double throughput here (workers2_*). Batches (batch_workers2_*): the client "
        "takes ~2%, so two workers get nearly both cores and batch_workers2_vs_workers1 "
        "shows the scaling (near 1.8-1.9 on an otherwise idle machine; other programs' "
        "load takes its share). Per busy server core near 1 and busy processes = 2 show "
        "the workers share the port and the work, so throughput grows with the cores "
        "they get. The *_rounds lists give each round's ratio and cores busy: other "
        "programs' load changes between rounds",
        "concurrency": args.concurrency,
        "records_per_batch": b,
        "rounds": args.rounds,
        "medians": med,
        "runs": runs,
        "ratios": ratios,
        "targets": TARGETS,
        "failed_requests": failed,
        "record_values_in_server_log": leaked,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "uptime_after": uptime,
        },
        "spinerisk": sr.__version__,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")

    s, m = med["serve"], med["minimal"]
    sb, mb = med["serve_batch"], med["minimal_batch"]
    print(f"\nload generator: {summary['load_generator']}; {summary['pinning']}")
    print(f"{'measure':<52}{'value':>12}{'target':>12}")
    table = [
        ("single, spinerisk req/s (median of rounds)", f"{s['requests_per_second']:.0f}", ""),
        ("single, minimal app req/s", f"{m['requests_per_second']:.0f}", ""),
        ("single, ratio", f"{ratios['single_vs_minimal']:.2f}", ">= 0.90"),
        ("single, minimal app on the compiled path req/s",
         f"{med['minimal_fastpath']['requests_per_second']:.0f}", ""),
        ("single, ratio to that", f"{ratios['single_vs_minimal_fastpath']:.2f}", ">= 0.90"),
        ("single, spinerisk p50 / p99 ms", f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}", "p99 <= 50"),
        ("single, minimal p50 / p99 ms", f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f}", ""),
        (f"batch of {b}, spinerisk records/s", f"{b * sb['requests_per_second']:.0f}", ""),
        (f"batch of {b}, minimal records/s", f"{b * mb['requests_per_second']:.0f}", ""),
        (f"batch of {b}, ratio", f"{ratios['batch_vs_minimal']:.2f}", ">= 0.80"),
        ("access log cost (1 - info/warning throughput)", f"{ratios['logging_cost']:.1%}", "< 5%"),
        ("access log cost (server CPU per request)",
         f"{ratios['logging_cost_server_cpu']:.1%}", "< 5%"),
        ("server CPU us/request, single (info / warning)",
         f"{s['server_cpu_us_per_request']:.0f} / "
         f"{med['serve_quiet']['server_cpu_us_per_request']:.0f}", ""),
        (f"batch of {b}, ratio of server CPU per request",
         f"{ratios['batch_server_cpu_vs_minimal']:.2f}", ""),
        ("--workers 2 / 1 (unpinned, client shares CPUs)",
         f"{ratios['workers2_vs_workers1_unpinned']:.2f}", "> 1"),
        ("--workers 2: processes that served / server cores busy",
         f"{ratios['workers2_busy_processes']:.0f} / {ratios['workers2_server_cores_busy']:.2f}",
         "2 / -"),
        ("--workers 1: server cores busy",
         f"{ratios['workers1_server_cores_busy']:.2f}", ""),
        ("--workers 2 / 1, throughput per busy server core",
         f"{ratios['workers2_per_core_vs_workers1']:.2f}", "~1"),
        (f"--workers 2 / 1, batches of {b} (unpinned)",
         f"{ratios['batch_workers2_vs_workers1']:.2f}", "~1.8-1.9"),
        (f"--workers 2 / 1, batches of {b}: server cores busy",
         f"{ratios['batch_workers2_server_cores_busy']:.2f} / "
         f"{ratios['batch_workers1_server_cores_busy']:.2f}", ""),
        (f"--workers 2 / 1, batches of {b}: per busy server core",
         f"{ratios['batch_workers2_per_core_vs_workers1']:.2f}", "~1"),
        (f"--workers 2 / 1, batches of {b}, per round (cores busy 2 / 1)",
         ", ".join(
             f"{x:.2f} ({c2:.2f}/{c1:.2f})"
             for x, c2, c1 in zip(ratios["batch_workers2_vs_workers1_rounds"],
                                  ratios["batch_workers2_server_cores_busy_rounds"],
                                  ratios["batch_workers1_server_cores_busy_rounds"], strict=True)
         ), ""),
        (f"--workers 2, batches of {b}: processes that served / client CPU",
         f"{ratios['batch_workers2_busy_processes']:.0f} / "
         f"{ratios['batch_workers_client_cpu_share']:.0%}", "2 / -"),
        ("client CPU share, single (spinerisk / minimal)",
         f"{s['client_cpu_share']:.0%} / {m['client_cpu_share']:.0%}", "< 100%"),
    ]  # fmt: skip
    for name, value, target in table:
        print(f"{name:<52}{value:>12}{target:>12}")
    print(f"failed requests {failed}; record values in server logs: {leaked}")
    print(f"uptime: {uptime}\nwritten to {args.json}")
    return 1 if failed or leaked else 0


def _with_port(server_args: list[str], port: int, name: str) -> list[str]:
    out = list(server_args)
    if name.startswith("minimal"):
        out[out.index("--minimal") + 1] = str(port)
    else:
        out[out.index("--port") + 1] = str(port)
    return out


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "requests_per_second",
        "p50_ms",
        "p99_ms",
        "client_cpu_share",
        "server_cpu_us_per_request",
        "server_cores_busy",
        "busy_processes",
    )
    return {k: float(np.median([r[k] for r in results])) for k in keys}


def _round_ratios(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[float]:
    """Throughput of ``a`` over ``b``, round by round."""
    return [
        round(x["requests_per_second"] / y["requests_per_second"], 3)
        for x, y in zip(a, b, strict=True)
    ]


def _per_core(result: dict[str, Any]) -> float:
    """Requests per second per server core kept busy."""
    return float(result["requests_per_second"] / result["server_cores_busy"])


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
