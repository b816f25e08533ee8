"""Load test of the HTTP API on loopback: many requests at a fixed concurrency.

Run ``python benchmarks/bench_api.py`` (2,000 requests at concurrency 32; a few minutes
on 2 cores) or ``python benchmarks/bench_api.py --requests 200 --concurrency 16`` for a
quick look. It fits a penalised logistic nonunion model on a SYNTHETIC cohort, saves it
as a bundle, starts ``spinerisk serve`` (uvicorn, one worker) on a free loopback port in
a subprocess and sends single-record ``POST /v1/predict`` requests with
``httpx.AsyncClient`` (optionally ``--batch`` records per request). It reports failed
requests, latency percentiles and records per second, checks that the server log holds
no record values, and writes ``benchmarks/results/api.json``. Exit code 1 if any request
failed. This script is not part of the test suite (``tests/test_api.py`` has a small
version of it).
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

import httpx
import numpy as np

import spinerisk as sr

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "api.json"
MARKER_ID = "BENCH-ZQX-4242"  # distinctive values that must never reach the server log
MARKER_HU = 141.424242


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(n_cohort: int, seed: int) -> tuple[sr.RiskModel, list[dict[str, Any]]]:
    cohort = sr.make_spine_cohort(n_cohort, seed=seed)
    model = sr.RiskModel(endpoint="nonunion", backend="linear", random_state=seed).fit(cohort)
    fields = [model.id_field_, *model.endpoint_.predictors()]
    valid = sr.validate(cohort)
    cols = [c for c in fields if c in valid.columns]
    return model, json.loads(valid[cols].to_json(orient="records"))


def _start_server(bundle: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from spinerisk.cli import main; sys.argv[0] = 'spinerisk'; main()"
    args = ["serve", "--model", str(bundle), "--port", str(port), "--max-records", "1000"]
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=out)


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy within 120 s")


async def _run(
    url: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[tuple[int | str, float]]:
    """Send every body with ``concurrency`` workers; (status or error name, seconds)."""
    results: list[tuple[int | str, float]] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                start = time.perf_counter()
                try:
                    response = await http.post("/v1/predict", json=body)
                    status: int | str = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                results.append((status, time.perf_counter() - start))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the load test; return the process exit code (1 if any request failed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1, help="Records per request.")
    parser.add_argument("--cohort", type=int, default=1500, help="Synthetic training records.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    args = parser.parse_args(argv)

    model, records = _records(args.cohort, args.seed)
    bodies: list[dict[str, Any]] = []
    for i in range(args.requests):
        chunk = [records[(i * args.batch + j) % len(records)] for j in range(args.batch)]
        chunk = [dict(r, patient_id=f"B{i}-{j}") for j, r in enumerate(chunk)]
        bodies.append(chunk[0] if args.batch == 1 else {"records": chunk})
    bodies[0] = dict(records[0], patient_id=MARKER_ID, hu_l1=MARKER_HU)
    if args.batch > 1:
        bodies[0] = {"records": [bodies[0]]}

    with tempfile.TemporaryDirectory() as tmp:
        bundle = model.save(Path(tmp) / "nonunion.srb")
        log = Path(tmp) / "server.log"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_server(bundle, port, log)
        try:
            _wait_healthy(url, server, log)
            asyncio.run(_run(url, bodies[: args.concurrency], args.concurrency))  # warm-up
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            results = asyncio.run(_run(url, bodies, args.concurrency))
            wall = time.perf_counter() - start
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(timeout=30)
        server_log = log.read_text()

    latencies = np.array([t for _, t in results])
    failed = [s for s, _ in results if s != 200]
    n_records = sum(len(b["records"]) if "records" in b else 1 for b in bodies)
    leaked = MARKER_ID in server_log or str(MARKER_HU) in server_log
    summary = {
        "what": "POST /v1/predict on loopback against `spinerisk serve` (uvicorn, 1 worker)",
        "model": "nonunion, penalised logistic regression, fitted on a SYNTHETIC cohort",
        "cohort_records": args.cohort,
        "requests": len(results),
        "concurrency": args.concurrency,
        "records_per_request": args.batch,
        "failed_requests": len(failed),
        "failure_statuses": sorted({str(s) for s in failed}),
        "latency_ms": {
            "p50": round(1000 * float(np.quantile(latencies, 0.50)), 1),
            "p90": round(1000 * float(np.quantile(latencies, 0.90)), 1),
            "p99": round(1000 * float(np.quantile(latencies, 0.99)), 1),
            "max": round(1000 * float(latencies.max()), 1),
        },
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(results) / wall, 1),
        "records_per_second": round(n_records / wall, 1),
        "record_values_in_server_log": leaked,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # other work on the machine inflates latency: 1-minute load average
            "load_average_before": round(load_before, 2),
            "load_average_after": round(load_after, 2),
        },
        "spinerisk": sr.__version__,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    lat = summary["latency_ms"]
    print(
        f"{summary['requests']} requests at concurrency {args.concurrency}: "
        f"{summary['failed_requests']} failed; p50 {lat['p50']} ms, p99 {lat['p99']} ms; "
        f"{summary['records_per_second']} records/s; record values in log: {leaked}; "
        f"load average {load_before:.1f} -> {load_after:.1f}. "
        f"Written to {args.json}."
    )
    return 1 if failed or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
