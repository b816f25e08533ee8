"""Batches on the HTTP API's request path: bodies read as before, faster.

``loads_request`` (orjson, with ``json.loads`` for whatever orjson reads differently or
refuses) must give ``json.loads``'s value, or its very error, for every body.
"""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

pytest.importorskip("fastapi")

from spinerisk.api._app import loads_request  # noqa: E402

BODIES = [
    b'{"records": [{"patient_id": "P-1", "age_years": 81.5, "hu_l1": null}]}',
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
    b"-0",
    b"-0.0",
    b"1E2",
    b"[1e-7, 4.9e-324, 2.2250738585072011e-308, 1.7976931348623157e308]",
    b"0.1000000000000000055511151231257827021181583404541015625",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551615",
    # beyond 64 bits: orjson would give a float, json an int
    b"18446744073709551616",
    b"-9223372036854775809",
    b'{"age_years": 123456789012345678901234567890}',
    b'"digits in text 1234567890123456789012"',
    # what orjson refuses and json reads
    b"1e400",
    b"-1e400",
    b"1.7976931348623159e308",
    b"NaN",
    b"[Infinity, -Infinity]",
    b'"\\ud800"',
    b'"\\ud83d\\ude00"',
    b'\xef\xbb\xbf{"a": 1}',
    '"é \u2028"'.encode(),
    b'"\\u0000"',
    b' {"a" : [1 , 2 ] } ',
    # what both refuse: json's own error
    b'"a\x01"',
    b'{"a": 1}x',
    b"",
    b'"\xff"',
    b"{",
    b"[" * 3000 + b"]" * 3000,
]


def _outcome(fn, body: bytes):
    try:
        return "value", repr(fn(body)), type(fn(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return "error", type(exc).__name__, str(exc)


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_bodies_read_as_json_reads_them(body):
    assert _outcome(loads_request, body) == _outcome(json.loads, body)


def test_numbers_read_as_json_reads_them():
    rng = random.Random(0)
    texts = []
    for _ in range(20_000):
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            texts += [repr(x), f"{x:.25g}", f"{x:.12e}"]
    texts += [str(rng.randrange(-(2**70), 2**70)) for _ in range(2_000)]
    body = ("[" + ",".join(texts) + "]").encode()
    got, expected = loads_request(body), json.loads(body)
    assert [(type(v), repr(v)) for v in got] == [(type(v), repr(v)) for v in expected]
    for text in texts[:3000]:  # one by one too (the long-integer check is per body)
        assert repr(loads_request(text.encode())) == repr(json.loads(text))


@pytest.fixture(scope="module")
def boosted():
    """A small calibrated XGBoost nonunion model (5 folds) and 150 JSON records of
    SYNTHETIC patients, some values left out."""
    import warnings

    import numpy as np

    import spinerisk as sr

    cohort = sr.make_spine_cohort(600, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(
            "nonunion", backend="xgboost", booster_params={"n_estimators": 30, "max_depth": 3}
        ).fit(cohort)
        valid = sr.validate(sr.make_spine_cohort(400, seed=4))
    fields = [model.id_field_, *model.endpoint_.predictors()]
    valid = valid[model.endpoint_.eligible(valid)]
    records = json.loads(valid[[c for c in fields if c in valid.columns]].to_json(orient="records"))
    rng = np.random.default_rng(0)
    for rec in records:
        for name in rng.choice(["hu_l1", "tscore_min", "egfr", "bmi"], size=2, replace=False):
            rec[name] = None
    return model, records[:150]


def test_a_batch_on_the_loop_answers_as_in_a_worker_thread(boosted, monkeypatch):
    """Batches scored on the event loop (up to ON_LOOP_MAX_RECORDS) and in a worker
    thread give the same answer, byte for byte, and the library's risks."""
    import warnings

    import numpy as np
    import pandas as pd
    from fastapi.testclient import TestClient

    from spinerisk.api import _app, create_app

    model, records = boosted
    client = TestClient(create_app(model, wait_compiled=True))
    body = {"records": records[:120]}
    assert len(body["records"]) <= _app.ON_LOOP_MAX_RECORDS
    on_loop = client.post("/v1/predict", json=body)
    monkeypatch.setattr(_app, "ON_LOOP_MAX_RECORDS", 0)
    in_thread = client.post("/v1/predict", json=body)
    assert on_loop.status_code == in_thread.status_code == 200
    assert on_loop.content == in_thread.content
    got = [p["risk"]["183d"] for p in on_loop.json()["predictions"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.predict_risk(pd.DataFrame.from_records(body["records"]))
    np.testing.assert_allclose(got, expected["risk_183d"].to_numpy(), rtol=1e-9, atol=0)


def test_an_invalid_record_in_a_batch_is_named(boosted):
    """A bad value anywhere in a batch: 422 naming the record's index, the field, the
    value and what was expected; nothing scored."""
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    model, records = boosted
    client = TestClient(create_app(model))
    bad = [dict(r) for r in records[:100]]
    bad[73]["age_years"] = 250.0
    answer = client.post("/v1/predict", json={"records": bad})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "records", 73, "age_years"]
    assert problem["input"] == 250.0 and "105" in problem["msg"]


def test_serve_with_two_workers_runs_two_processes_on_one_port(tmp_path):
    """``spinerisk serve --workers 2``: two worker processes listen on the port, and
    every request is answered."""
    import socket
    import subprocess
    import sys
    import time
    import warnings

    import httpx

    import spinerisk as sr

    psutil = pytest.importorskip("psutil")
    cohort = sr.make_spine_cohort(400, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr.RiskModel("nonunion", backend="linear").fit(cohort).save(tmp_path / "m.srb")
    record = {"patient_id": "P-1", "age_years": 81.0, "sex": "F", "hu_l1": 62.0}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from spinerisk.cli import main; sys.argv[0] = 'spinerisk'; main()"
    args = ["serve", "--model", str(tmp_path / "m.srb"), "--port", str(port), "--workers", "2"]
    with (tmp_path / "server.log").open("w") as out:
        server = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=out)

    def listening() -> list[int]:
        pids = []
        for child in psutil.Process(server.pid).children(recursive=True):
            try:
                conns = child.net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns):
                pids.append(child.pid)
        return pids

    try:
        deadline = time.monotonic() + 240  # a start-up wait on a busy machine, not a speed check
        while len(listening()) < 2:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the workers did not start"
            # each look reads every child's socket table (~6 ms of CPU), on the core
            # the server's processes start on
            time.sleep(0.25)
        assert len(listening()) == 2
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            statuses = [client.post("/v1/predict", json=record).status_code for _ in range(20)]
        assert statuses == [200] * 20
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_quick_handler_answers_as_fastapi_does(boosted):
    """POST /v1/predict answered by the quick handler (plain JSON, body valid by the
    request model) and by FastAPI (the same body sent with a charset, which the quick
    handler leaves to FastAPI): the same status and bytes for valid batches and single
    records, records that break a row rule or share an id, and invalid bodies (which
    the quick handler always leaves to FastAPI)."""
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    model, records = boosted
    app = create_app(model, wait_compiled=True)
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/predict")
    quick, answered = route.quick, []

    async def spy(request):
        response = await quick(request)
        answered.append(response is not None)
        return response

    route.quick = spy
    client = TestClient(app)
    ruled = [dict(r) for r in records[:40]]
    ruled[7].update(mri_done=False, t1_pattern="none")  # breaks a row rule
    twins = [dict(r) for r in records[:20]]
    twins[5]["patient_id"] = twins[2]["patient_id"]
    bad = [dict(r) for r in records[:30]]
    bad[3]["age_years"] = "80"
    cases = [
        ({"records": records[:100]}, True),
        ({"records": records[100:101]}, True),
        (records[3], True),
        ({k: v for k, v in records[4].items() if v is not None}, True),
        ({"records": ruled}, True),
        ({"records": twins}, True),
        ({"records": bad}, False),
        ({"records": []}, False),
        (dict(records[0], unknown=1), False),
    ]
    for body, taken in cases:
        data = json.dumps(body).encode()
        answered.clear()
        plain = client.post(
            "/v1/predict", content=data, headers={"content-type": "application/json"}
        )
        assert answered == [taken]
        answered.clear()
        other = client.post(
            "/v1/predict", content=data, headers={"content-type": "application/json; charset=utf-8"}
        )
        assert answered == [False]
        assert plain.status_code == other.status_code
        assert plain.content == other.content
        assert plain.headers["content-type"] == other.headers["content-type"]
    statuses = [client.post("/v1/predict", json=body).status_code for body, _ in cases]
    assert statuses == [200, 200, 200, 200, 422, 422, 422, 422, 422]
    with_interval = client.post("/v1/predict?interval=0.9", json=records[0])
    assert with_interval.status_code == 422 and answered[-1] is False  # left to FastAPI


def test_no_quick_handler_past_a_route_dependency(boosted, monkeypatch):
    """A dependency on POST /v1/predict (authentication, say) must run for every
    request: with one, the route gets no quick handler and FastAPI answers everything."""
    from fastapi import Depends, HTTPException, Request
    from fastapi.testclient import TestClient

    from spinerisk.api import _app, create_app

    def key_required(request: Request) -> None:
        if request.headers.get("x-key") != "secret":
            raise HTTPException(status_code=401, detail="key required")

    original = _app._add_predict_route

    def guarded(app, *args):
        original(app, *args)
        route = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/predict")
        route.dependencies.append(Depends(key_required))
        route.dependant.dependencies.append(object())  # as FastAPI records one

    model, records = boosted
    monkeypatch.setattr(_app, "_add_predict_route", guarded)
    app = create_app(model, wait_compiled=True)
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/predict")
    assert route.quick is None
    monkeypatch.undo()
    plain = create_app(model, wait_compiled=True)
    again = next(r for r in plain.router.routes if getattr(r, "path", None) == "/v1/predict")
    assert again.quick is not None  # the guard is what took it away
    client = TestClient(plain)
    assert client.post("/v1/predict", json={"records": records[:20]}).status_code == 200


def test_no_pandas_in_the_request_path(boosted, monkeypatch):
    """POST /v1/predict builds no pandas object for single records or batches (the fast
    path answers from plain records); a DataFrame built anywhere in the request fails."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    model, records = boosted
    client = TestClient(create_app(model, wait_compiled=True))
    client.post("/v1/predict", json=records[0])  # warm-up: lazy imports and caches
    built = []
    real_frame, real_series = pd.DataFrame.__init__, pd.Series.__init__

    def frame(self, *args, **kwargs):
        built.append("DataFrame")
        real_frame(self, *args, **kwargs)

    def series(self, *args, **kwargs):
        built.append("Series")
        real_series(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "__init__", frame)
    monkeypatch.setattr(pd.Series, "__init__", series)
    for body in (records[1], {"records": records[:100]}, {"records": records[100:120]}):
        assert client.post("/v1/predict", json=body).status_code == 200
    assert built == []
    pd.DataFrame({"a": [1]})  # the spy works
    assert built == ["DataFrame"]
