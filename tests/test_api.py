"""HTTP API: every route and every error, predictions equal to the library, no values in logs.

Models are fitted on small SYNTHETIC cohorts (never real patients) once per module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk.api import create_app
from spinerisk.bundle import read_manifest
from spinerisk.cli import app as cli_app

MAX_RECORDS = 5
MAX_BODY = 60_000
N_LOAD = 96  # requests of the loopback load test (benchmarks/bench_api.py sends 2,000)


def _json_records(frame: pd.DataFrame, fields: list[str]) -> list[dict[str, Any]]:
    """Records as a JSON client sends them: schema types, null for missing."""
    valid = sr.validate(frame)
    cols = [c for c in fields if c in valid.columns]
    return json.loads(valid[cols].to_json(orient="records"))


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sr.make_spine_cohort(1500, seed=0)


@pytest.fixture(scope="module")
def fitted(cohort: pd.DataFrame) -> sr.RiskModel:
    return sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)


@pytest.fixture(scope="module")
def bundle(fitted: sr.RiskModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "nonunion.srb"
    fitted.save(path)
    return path


@pytest.fixture(scope="module")
def client(bundle: Path) -> TestClient:
    return TestClient(create_app(bundle, max_records=MAX_RECORDS, max_body_bytes=MAX_BODY))


@pytest.fixture(scope="module")
def records(cohort: pd.DataFrame, fitted: sr.RiskModel) -> list[dict[str, Any]]:
    eligible = cohort[fitted.endpoint_.eligible(sr.validate(cohort))]
    fields = [fitted.id_field_, *fitted.endpoint_.predictors()]
    return _json_records(eligible.tail(40), fields)


def _library_risk(model: sr.RiskModel, records: list[dict[str, Any]]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return model.predict_risk(records)


# -- 200 ------------------------------------------------------------------------------------------
def test_predict_one_record_equals_the_library(client, fitted, bundle, records):
    response = client.post("/v1/predict", json=records[0])
    assert response.status_code == 200
    body = response.json()
    expected = _library_risk(fitted, [records[0]])
    (pred,) = body["predictions"]
    assert pred["id"] == records[0]["patient_id"]
    assert set(pred["risk"]) == {"183d"}
    assert math.isclose(pred["risk"]["183d"], expected["risk_183d"].iloc[0], rel_tol=1e-12)
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert body["model_id"].endswith(sha[:12]) and body["endpoint"] == "nonunion"
    assert body["model_version"] == read_manifest(bundle)["created_utc"]
    assert body["horizons"] == [pytest.approx(182.62)]
    assert body["horizon_days"] == body["horizons"]  # deprecated alias, for one release


def test_predict_list_equals_the_library_in_order(client, fitted, records):
    batch = records[1 : 1 + MAX_RECORDS]
    response = client.post("/v1/predict", json={"records": batch})
    assert response.status_code == 200
    preds = response.json()["predictions"]
    expected = _library_risk(fitted, batch)
    assert [p["id"] for p in preds] == [r["patient_id"] for r in batch]
    np.testing.assert_allclose(
        [p["risk"]["183d"] for p in preds], expected["risk_183d"].to_numpy(), rtol=1e-12
    )


def test_values_outside_training_come_back_as_warnings(client, fitted, records):
    lo, hi = fitted.training_ranges_["hu_l1"]
    assert hi < 450  # the schema allows more than the synthetic cohort holds
    odd = dict(records[0], hu_l1=450.0)
    pred = client.post("/v1/predict", json=odd).json()["predictions"][0]
    assert pred["warnings"] == [f"out_of_range:hu_l1=450 (training {lo:g} to {hi:g})"]
    assert client.post("/v1/predict", json=records[0]).json()["predictions"][0]["warnings"] == []


def test_minimal_record_with_missing_fields_is_scored(client, fitted):
    record = {"patient_id": "MIN-1", "age_years": 77.0, "sex": "F", "hu_l1": None}
    response = client.post("/v1/predict", json=record)
    assert response.status_code == 200
    risk = response.json()["predictions"][0]["risk"]["183d"]
    # the library needs every field the model was fitted with; the API sends the others as null
    full = {f: record.get(f) for f in client.get("/v1/model").json()["fields"]}
    assert math.isclose(risk, _library_risk(fitted, [full])["risk_183d"].iloc[0], rel_tol=1e-12)


def test_health_and_model_card(client, fitted, bundle):
    health = client.get("/health").json()
    info = client.get("/v1/model").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    assert health["model_id"] == info["model_id"]
    manifest = read_manifest(bundle)
    assert info["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert info["created_utc"] == manifest["created_utc"]
    assert info["versions"] == manifest["versions"]
    assert (info["endpoint"], info["endpoint_kind"], info["backend"]) == (
        "nonunion",
        "binary",
        "linear",
    )
    assert info["n_train"] == fitted.n_train_
    assert info["trained_on_synthetic_data"] is True  # make_spine_cohort labels its records
    assert (info["schema_name"], info["schema_version"]) == (sr.SPINE_SCHEMA.name, "1")
    assert info["fields"] == [fitted.id_field_, *fitted.endpoint_.predictors()]
    assert info["max_records"] == MAX_RECORDS and info["max_body_bytes"] == MAX_BODY
    assert info["horizons"] == [pytest.approx(182.62)]
    assert info["horizon_days"] == info["horizons"]  # deprecated alias, for one release
    assert (
        "SYNTHETIC" in info["intended_use"] and "not clinically validated" in info["intended_use"]
    )


# -- 422: pydantic (strict types, ranges, codes, unknown fields) ----------------------------------
@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("age_years", 150.0, "less_than_equal"),  # out of range
        ("hu_l1", -51, "greater_than_equal"),
        ("age_years", "80", "float_type"),  # strict: text is not a number
        ("age_years", False, "float_type"),  # strict: a boolean is not a number
        ("prevalent_vf_count", 2.5, "int_type"),
        ("prior_fragility_fx", 1, "bool_type"),  # strict: 1 is not true
        ("sex", "X", "literal_error"),  # unknown code
        ("t2_pattern", "bright", "literal_error"),
        ("shoe_size", 42, "extra_forbidden"),  # unknown field
        ("nonunion", True, "extra_forbidden"),  # outcome fields never enter a request
        ("patient_id", "has space", "string_pattern_mismatch"),
    ],
)
def test_bad_field_gives_422_naming_the_field(client, records, field, value, error_type):
    single = client.post("/v1/predict", json=dict(records[0], **{field: value}))
    assert single.status_code == 422
    (err,) = single.json()["detail"]
    assert (err["loc"], err["type"], err["input"]) == (["body", field], error_type, value)

    batch = [records[0], dict(records[1], **{field: value})]
    in_batch = client.post("/v1/predict", json={"records": batch})
    assert in_batch.status_code == 422
    (err,) = in_batch.json()["detail"]
    assert err["loc"] == ["body", "records", 1, field]


def test_missing_required_field_and_every_problem_listed(client, records):
    record = {k: v for k, v in records[0].items() if k != "sex"}
    response = client.post("/v1/predict", json=dict(record, age_years=10.0, zz=1))
    assert response.status_code == 422
    got = {(tuple(e["loc"]), e["type"]) for e in response.json()["detail"]}
    assert got == {
        (("body", "sex"), "missing"),
        (("body", "age_years"), "greater_than_equal"),
        (("body", "zz"), "extra_forbidden"),
    }


def test_non_finite_number_is_422_not_a_crash(client, records):
    body = json.dumps(records[0]).replace(
        f'"age_years": {json.dumps(records[0]["age_years"])}', '"age_years": NaN'
    )
    assert "NaN" in body
    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "age_years"]


# -- 422: the library's schema and row rules ------------------------------------------------------
def test_row_rule_violation_is_422_on_the_record_and_field(client, records):
    bad = dict(records[2], height_cm=160.0, weight_kg=60.0, bmi=35.0)  # weight/height^2 = 23.4
    response = client.post("/v1/predict", json={"records": [records[1], bad]})
    assert response.status_code == 422
    (err,) = response.json()["detail"]
    assert err["loc"] == ["body", "records", 1, "bmi"]
    assert err["type"] == "record_rule"
    assert err["ctx"]["check"] == "rule:bmi_matches_height_weight"
    assert "bmi differs from weight_kg" in err["msg"]


def test_mri_pattern_without_mri_is_422(client, records):
    bad = dict(records[0], mri_done=False, t2_pattern="confined_high")
    (err,) = client.post("/v1/predict", json=bad).json()["detail"]
    assert err["loc"] == ["body", "mri_done"] and err["ctx"]["check"].startswith("rule:")


def test_duplicate_ids_in_a_batch_are_422(client, records):
    response = client.post("/v1/predict", json={"records": [records[0], records[0]]})
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [["body", "records", 0, "patient_id"], ["body", "records", 1, "patient_id"]]


@pytest.mark.parametrize("n", [0, MAX_RECORDS + 1])
def test_record_count_outside_limits_is_422(client, records, n):
    batch = [dict(records[0], patient_id=f"N-{i}") for i in range(n)]
    response = client.post("/v1/predict", json={"records": batch})
    assert response.status_code == 422
    (err,) = response.json()["detail"]
    assert err["loc"] == ["body", "records"]
    assert err["type"] == ("too_short" if n == 0 else "too_long")


# -- 400 and 413 ----------------------------------------------------------------------------------
def test_malformed_json_is_400(client):
    response = client.post(
        "/v1/predict",
        content=b'{"patient_id": "P-1", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body is not valid JSON")


def test_oversized_body_is_413_before_parsing(client, records):
    big = json.dumps({"records": [dict(records[0], patient_id="X" * MAX_BODY)]}).encode()
    assert len(big) > MAX_BODY
    response = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413

    def chunks():  # no Content-Length: the limit applies to the bytes streamed
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


# -- OpenAPI --------------------------------------------------------------------------------------
def test_openapi_has_units_ranges_codes_and_forbids_extras(client, fitted):
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert record["additionalProperties"] is False
    assert set(record["required"]) == {"patient_id", "age_years", "sex"}
    props = record["properties"]
    assert list(props) == [fitted.id_field_, *fitted.endpoint_.predictors()]
    with_unit = [f for f in sr.SPINE_SCHEMA if f.name in props and f.unit]
    assert len(with_unit) > 10
    for spec_field in with_unit:
        assert f"Unit: {spec_field.unit}." in props[spec_field.name]["description"]
    assert props["age_years"]["minimum"] == 18 and props["age_years"]["maximum"] == 105
    sex = props["sex"]
    assert sex.get("enum", [None])[0] == "F" or sex.get("const") or "enum" in str(sex)
    batch = spec["components"]["schemas"]["RecordBatch"]["properties"]["records"]
    assert (batch["minItems"], batch["maxItems"]) == (1, MAX_RECORDS)
    responses = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "400", "413", "422"} <= set(responses)


# -- logs -----------------------------------------------------------------------------------------
def test_logs_never_hold_record_values(client, records, caplog):
    caplog.set_level(logging.DEBUG)
    distinctive_id, distinctive_hu = "ZQX-7731-LOGCHECK", 123.456789
    ok = dict(records[0], patient_id=distinctive_id, hu_l1=distinctive_hu)
    assert client.post("/v1/predict", json=ok).status_code == 200
    bad = dict(ok, age_years=104.987654, prevalent_vf_count="7.654321")  # pydantic 422
    assert client.post("/v1/predict", json=bad).status_code == 422
    rule = dict(ok, height_cm=160.0, weight_kg=60.0, bmi=33.3331)  # library 422
    assert client.post("/v1/predict", json=rule).status_code == 422
    messages = [r.getMessage() for r in caplog.records]
    # one access line per request (the test can fail: the API does log)
    assert any('"POST /v1/predict HTTP/1.1" 200 records=1 ms=' in m for m in messages)
    assert any("rejected" in m and "bmi" in m for m in messages)
    text = "\n".join(messages)
    for value in (distinctive_id, "123.456789", "104.987654", "7.654321", "33.3331"):
        assert value not in text


def test_serve_access_log_hands_tuples_to_a_batching_writer_with_the_same_lines(
    client, records, caplog
):
    """Under ``spinerisk serve``'s logging the access line is queued as a tuple and written
    by the handler's thread: the same text as the logging path, once per request, in
    order with the other records, all of it after flush, no record values."""
    import io

    from spinerisk.api._access import AccessLogHandler, writer_of

    api_logger = logging.getLogger("spinerisk.api")
    ok = dict(records[0], patient_id="ZQX-ACCESS-1", hu_l1=98.7654321)
    rule = dict(ok, height_cm=160.0, weight_kg=60.0, bmi=33.3331)  # library 422
    caplog.set_level(logging.INFO, logger="spinerisk.api")  # the ordinary path first
    assert client.post("/v1/predict", json=ok).status_code == 200
    via_logging = [r.getMessage() for r in caplog.records if "POST /v1/predict" in r.getMessage()]
    assert len(via_logging) == 1

    stream = io.StringIO()
    handler = AccessLogHandler(stream, interval=3600)  # only flush writes: deterministic
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    saved = api_logger.handlers[:], api_logger.propagate, api_logger.level
    api_logger.handlers[:] = [handler]
    api_logger.propagate = False
    api_logger.setLevel(logging.INFO)
    try:
        assert writer_of(api_logger) == handler.access  # the fast hand-over is taken
        n = 5
        for _ in range(n):
            assert client.post("/v1/predict", json=ok).status_code == 200
        assert client.post("/v1/predict", json=rule).status_code == 422
        assert stream.getvalue() == ""  # queued, not yet written
        handler.flush()
    finally:
        api_logger.handlers[:], api_logger.propagate, _ = saved
        api_logger.setLevel(saved[2])
        handler.close()
    lines = stream.getvalue().splitlines()
    access = [x for x in lines if '"POST /v1/predict HTTP/1.1"' in x]
    assert len(access) == n + 1  # every request once, the refused one too
    assert all(x.startswith("INFO ") for x in lines)
    mask = [x.rsplit("ms=", 1)[0] for x in access]  # the time differs, not the text
    assert mask[:n] == ["INFO " + via_logging[0].rsplit("ms=", 1)[0]] * n
    assert " 422 records=0 " in access[-1]
    assert "rejected" in lines[-2] and "bmi" in lines[-2]  # order: rejection, then access
    text = stream.getvalue()
    assert "ZQX-ACCESS-1" not in text and "98.7654321" not in text and "33.3331" not in text


@pytest.mark.parametrize(
    "fmt",
    [
        "%(levelprefix)s %(message)s",  # spinerisk serve's (uvicorn's default)
        "%(asctime)s.%(msecs)03d %(levelname)s %(message)s",  # the time: formatted per line
        "{'line': %(message)r}",  # a formatter that escapes the message
    ],
)
def test_access_lines_are_what_the_formatter_gives(fmt):
    """The writer's shortcut (a prefix and suffix worked out once) gives the formatter's
    own text, and is not taken where the text varies otherwise."""
    import io

    from uvicorn.logging import DefaultFormatter

    from spinerisk.api._access import AccessLogHandler, access_line

    formatter = DefaultFormatter(fmt, use_colors=False) if "levelprefix" in fmt else None
    formatter = formatter or logging.Formatter(fmt)
    stream = io.StringIO()
    handler = AccessLogHandler(stream, interval=3600)
    handler.setFormatter(formatter)
    sent = [
        (1.7e9 + 3600.25 * i, ("10.0.0.1", 40000 + i), "POST", p, "1.1", 200, i, 0.125 * i)
        for i, p in enumerate(["/v1/predict", "/v1/explain", "/caf\udce9"])
    ]
    for fields in sent:
        handler.access(fields)
    handler.close()
    expected = []
    for fields in sent:
        record = logging.LogRecord(
            "spinerisk.api", logging.INFO, "x", 0, access_line(fields), (), None
        )
        record.created, record.msecs = fields[0], (fields[0] % 1) * 1000
        expected.append(formatter.format(record))
    assert stream.getvalue() == "\n".join(expected) + "\n"


def test_the_event_loop_never_waits_for_the_models_lock(fitted, records, monkeypatch):
    """While the model's lock is held (an explanation or a batch in a worker thread), a
    prediction waits in a thread: the loop goes on answering (/health here) and the
    prediction, once the lock is free, is the one given without contention. Before, the
    loop itself blocked on the lock and /health waited for its release."""
    import dataclasses
    import threading

    import spinerisk.api._app as app_module

    served = []

    @dataclasses.dataclass
    class Recorded(app_module._Served):
        def __post_init__(self) -> None:
            served.append(self)

    monkeypatch.setattr(app_module, "_Served", Recorded)
    app = create_app(fitted, wait_compiled=True)
    expected = TestClient(app).post("/v1/predict", json=records[0]).json()
    lock = served[0].lock

    async def run() -> tuple[float, float, dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            lock.acquire()
            release = threading.Timer(1.5, lock.release)  # also a guard against a hang
            start = time.perf_counter()
            release.start()
            predicted = asyncio.ensure_future(http.post("/v1/predict", json=records[0]))
            await asyncio.sleep(0.05)  # the prediction is waiting for the lock
            assert (await http.get("/health")).status_code == 200
            health_s = time.perf_counter() - start
            response = await predicted
            assert response.status_code == 200
            return health_s, time.perf_counter() - start, response.json()

    health_s, predict_s, answer = asyncio.run(run())
    assert health_s < 1.0 <= predict_s  # /health did not wait for the lock; predict did
    assert answer == expected


def test_unexpected_error_is_a_bare_500_without_the_message(fitted, records, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(fitted), raise_server_exceptions=False)

    def broken(*args, **kwargs):
        raise RuntimeError("age_years=98.7654 broke something")

    monkeypatch.setattr(fitted, "predict_risk", broken)
    from spinerisk.fastpath import FastPredictor  # what the API calls for a valid record

    monkeypatch.setattr(FastPredictor, "predict_risk", broken)
    response = client.post("/v1/predict", json=records[0])
    assert response.status_code == 500 and response.json() == {"detail": "Internal error."}
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    assert not any("98.7654" in r.getMessage() for r in caplog.records)


# -- audit log ------------------------------------------------------------------------------------
def test_audit_log_records_each_prediction(bundle, fitted, records, tmp_path):
    from spinerisk.monitor import AuditLog, bundle_info

    path = tmp_path / "audit.jsonl"
    client = TestClient(create_app(bundle, audit_log=AuditLog(path)))
    batch = records[:3]
    preds = client.post("/v1/predict", json={"records": batch}).json()["predictions"]
    client.post("/v1/predict", json=dict(records[0], age_years=500.0))  # 422: not scored
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(batch)
    assert {line["source"] for line in lines} == {"api"}
    identity = bundle_info(bundle)
    assert {line["model_id"] for line in lines} == {identity["model_id"]}
    assert {line["model_sha256"] for line in lines} == {identity["model_sha256"]}
    assert [line["outputs"]["risk_183d"] for line in lines] == pytest.approx(
        [p["risk"]["183d"] for p in preds], rel=1e-12
    )
    assert batch[0]["patient_id"] not in path.read_text()  # hashed, never in clear
    # the same records scored from a CSV file (with outcome columns the API never sees)
    # get the same record and id hashes: missing fields, dates and dtypes hash alike
    from spinerisk.scoring import score_file

    ids = [r["patient_id"] for r in batch]
    source = tmp_path / "same.csv"
    cohort = sr.make_spine_cohort(1500, seed=0)
    cohort[cohort["patient_id"].isin(ids)].to_csv(source, index=False)
    csv_log = tmp_path / "csv.jsonl"
    score_file(bundle, source, tmp_path / "scores.csv", audit_log=csv_log)
    from_csv = {
        line["id_hash"]: line["record_hash"]
        for line in map(json.loads, csv_log.read_text().splitlines())
    }
    assert {line["id_hash"]: line["record_hash"] for line in lines} == from_csv


def test_audit_log_failure_is_503_and_no_risk(fitted, records):
    class FullDisk:
        def log_predictions(self, **kwargs: Any) -> int:
            raise OSError("No space left on device")

    client = TestClient(create_app(fitted, audit_log=FullDisk()))
    response = client.post("/v1/predict", json=records[0])
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The audit log could not be written; no risk was returned."
    }


# -- other models ---------------------------------------------------------------------------------
def test_xgboost_model_in_memory(cohort):
    # 400 records: the API must give the library's risks whatever the size of the cohort
    model = sr.RiskModel(endpoint="collapse", backend="xgboost").fit(cohort.head(400))
    client = TestClient(create_app(model))
    fields = [model.id_field_, *model.endpoint_.predictors()]
    batch = _json_records(cohort.tail(3), fields)
    preds = client.post("/v1/predict", json={"records": batch}).json()["predictions"]
    expected = _library_risk(model, batch)["risk_183d"].to_numpy()
    np.testing.assert_allclose([p["risk"]["183d"] for p in preds], expected, rtol=1e-12)
    info = client.get("/v1/model").json()
    assert info["backend"] == "xgboost" and info["sha256"] is None
    assert info["trained_on_synthetic_data"] is True
    unlabelled = cohort.head(400).copy()
    unlabelled.attrs.clear()  # records read from a file carry no synthetic label
    plain = sr.RiskModel(endpoint="collapse", backend="linear").fit(unlabelled)
    assert (
        TestClient(create_app(plain)).get("/v1/model").json()["trained_on_synthetic_data"] is False
    )
    plain.reference_ = None  # e.g. a model without a training reference
    assert (
        TestClient(create_app(plain)).get("/v1/model").json()["trained_on_synthetic_data"] is None
    )
    assert info["model_id"] == "collapse-xgboost-unsaved"


@pytest.fixture(scope="module")
def competing(cohort: pd.DataFrame) -> tuple[sr.RiskModel, TestClient, dict[str, Any]]:
    model = sr.RiskModel(endpoint="future_fracture", backend="linear").fit(cohort.head(800))
    record = _json_records(cohort.tail(1), [model.id_field_, *model.endpoint_.predictors()])[0]
    return model, TestClient(create_app(model)), record


def test_competing_risk_model_gives_one_risk_per_horizon(competing):
    model, client, record = competing
    risk = client.post("/v1/predict", json=record).json()["predictions"][0]["risk"]
    assert list(risk) == ["365d", "730d", "1826d"]
    assert risk["365d"] <= risk["730d"] <= risk["1826d"]
    expected = _library_risk(model, [record]).iloc[0]
    for key, value in risk.items():
        assert math.isclose(value, expected[f"risk_{key}"], rel_tol=1e-12)


# -- explain ------------------------------------------------------------------------------------
def test_explain_equals_the_library(client, fitted, records):
    from spinerisk.explanation import explain

    batch = records[:3]
    response = client.post("/v1/explain", params={"top_k": 4}, json={"records": batch})
    assert response.status_code == 200
    body = response.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        expl = explain(fitted, batch)
    assert body["scale"] == "log-odds" and body["horizon"] == pytest.approx(182.62)
    assert body["horizon_days"] == body["horizon"]  # deprecated alias, for one release
    assert body["note"] == f"{expl.note} Research software; not clinically validated."
    assert ("confounded by indication" in body["note"]) == bool(expl.treatment_fields)
    sentences = expl.sentences(k=4)
    predicted = _library_risk(fitted, batch)["risk_183d"]
    for i, got in enumerate(body["explanations"]):
        assert got["id"] == batch[i]["patient_id"]
        assert math.isclose(got["risk"], predicted.iloc[i], rel_tol=1e-9)
        assert got["sentence"] == sentences.iloc[i]
        points = expl.risk_points.iloc[i]
        top = points.abs().sort_values(ascending=False, kind="stable").index[:4]
        assert [c["field"] for c in got["contributions"]] == list(top)
        for c in got["contributions"]:
            assert math.isclose(c["risk_points"], points[c["field"]], rel_tol=1e-12)
            assert math.isclose(
                c["contribution"], expl.contributions.iloc[i][c["field"]], rel_tol=1e-12
            )
        # over all fields, the percentage points add up to risk minus base risk
        total = 100 * (got["risk"] - got["base_risk"])
        assert math.isclose(points.sum(), total, abs_tol=1e-6)


@pytest.mark.parametrize("name", ["horizon", "horizon_days"])  # horizon_days: deprecated alias
def test_explain_at_another_horizon_and_bad_horizon(competing, name):
    model, client, record = competing
    response = client.post("/v1/explain", params={name: 730.5}, json=record)
    assert response.status_code == 200
    body = response.json()
    assert body["horizon"] == body["horizon_days"] == 730.5 and body["scale"] == "log-hazard"
    expected = _library_risk(model, [record])["risk_730d"].iloc[0]
    assert math.isclose(body["explanations"][0]["risk"], expected, rel_tol=1e-9)
    bad = client.post("/v1/explain", params={name: 100}, json=record)
    assert bad.status_code == 422
    (err,) = bad.json()["detail"]
    assert err["loc"] == ["query", name] and "365.25, 730.5, 1826.25" in err["msg"]
    assert err["msg"].startswith(f"{name} must be one of") and err["input"] == 100


def test_explain_refuses_a_horizon_given_under_both_names(competing):
    _, client, record = competing
    both = client.post("/v1/explain", params={"horizon": 730.5, "horizon_days": 730.5}, json=record)
    assert both.status_code == 422
    (err,) = both.json()["detail"]
    assert err["loc"] == ["query", "horizon_days"] and "not both" in err["msg"]


def test_old_horizon_names_are_marked_deprecated_in_the_openapi_schema(client):
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/v1/explain"]["post"]["parameters"]}
    assert params["horizon_days"].get("deprecated") is True
    assert not params["horizon"].get("deprecated")
    schemas = spec["components"]["schemas"]
    for model, new in (
        ("PredictResponse", "horizons"),
        ("ModelInfo", "horizons"),
        ("ExplainResponse", "horizon"),
    ):
        props = schemas[model]["properties"]
        assert props["horizon_days"].get("deprecated") is True, model
        assert not props[new].get("deprecated"), model


def test_explain_rejects_bad_records_like_predict(client, records):
    bad = dict(records[0], height_cm=160.0, weight_kg=60.0, bmi=35.0)
    response = client.post("/v1/explain", json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "bmi"]
    wrong = client.post("/v1/explain", json=dict(records[0], sex="X"))
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "sex"]


# -- construction errors and the CLI --------------------------------------------------------------
def test_create_app_refuses_bad_inputs(tmp_path, fitted):
    with pytest.raises(TypeError, match="fitted RiskModel or the path"):
        create_app(object())
    with pytest.raises(ValueError, match="max_records must be a positive integer"):
        create_app(fitted, max_records=0)
    with pytest.raises(FileNotFoundError, match="No model bundle"):
        create_app(tmp_path / "missing.srb")
    garbage = tmp_path / "garbage.srb"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(sr.ArtifactError, match="not a spinerisk bundle"):
        create_app(garbage)
    with pytest.raises(Exception, match="not fitted"):
        create_app(sr.RiskModel())


def test_serve_with_a_bad_bundle_exits_2(tmp_path):
    garbage = tmp_path / "garbage.srb"
    garbage.write_bytes(b"not a zip")
    result = CliRunner().invoke(cli_app, ["serve", "--model", str(garbage)])
    assert result.exit_code == 2
    assert "not a spinerisk bundle" in " ".join(result.output.split())  # rich wraps lines


# -- a real server on loopback --------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(
    url: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[tuple[int, float]]:
    results: list[tuple[int, float]] = []
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                start = time.perf_counter()
                response = await http.post("/v1/predict", json=body)
                results.append((response.status_code, time.perf_counter() - start))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def test_served_over_loopback_under_load_without_failures(bundle, records, tmp_path):
    port = _free_port()
    log = tmp_path / "server.log"
    code = "import sys; from spinerisk.cli import main; sys.argv[0] = 'spinerisk'; main()"
    args = ["serve", "--model", str(bundle), "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        # loading and compiling the model (the compiled single-record path) takes seconds,
        # much longer on a busy CI machine: this is a start-up wait, not a speed check
        deadline = time.monotonic() + 240
        # one client for the polls: httpx.get builds a client (and its TLS context) per
        # call, ~30 ms of CPU taken from the starting server on a shared core
        with httpx.Client(timeout=1) as probe:
            while True:
                try:
                    if probe.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        marker = dict(records[0], patient_id="LOADTEST-ZQX-99", hu_l1=111.222333)
        bodies = [marker] + [records[i % len(records)] for i in range(N_LOAD - 1)]
        results = asyncio.run(_load(url, bodies, concurrency=16))
    finally:
        server.terminate()
        server.wait(timeout=30)
    statuses = [s for s, _ in results]
    assert len(statuses) == N_LOAD and statuses.count(200) == N_LOAD
    latencies = np.array([t for _, t in results])
    print(f"{N_LOAD} requests, concurrency 16: p50 {1000 * np.median(latencies):.0f} ms, "
          f"p99 {1000 * np.quantile(latencies, 0.99):.0f} ms")  # fmt: skip
    server_log = log.read_text()
    assert '"POST /v1/predict HTTP/1.1" 200 records=1' in server_log  # access log captured
    assert server_log.count('"POST /v1/predict HTTP/1.1"') == N_LOAD  # one line per request
    assert "LOADTEST-ZQX-99" not in server_log and "111.222333" not in server_log
    assert "SYNTHETIC DATA" in server_log  # a model trained on the synthetic cohort


def test_a_fastapi_without_body_limits_is_refused(fitted, monkeypatch):
    """Old FastAPI versions ignore max_body_size silently; the app refuses to start."""
    import fastapi

    import spinerisk.api._app as app_module

    class OldFastAPI(fastapi.FastAPI):
        def __init__(self, **extra):  # the old signature: unknown keywords are swallowed
            super().__init__()

    monkeypatch.setattr(app_module, "FastAPI", OldFastAPI)
    with pytest.raises(ImportError, match="cannot limit request bodies"):
        create_app(fitted)


def test_serve_reads_the_audit_key_from_the_named_variable(bundle, tmp_path, monkeypatch):
    from spinerisk.cli import _serve

    log = tmp_path / "audit.jsonl"
    args = ["serve", "--model", str(bundle), "--audit-log", str(log)]
    monkeypatch.delenv("SITE_AUDIT_KEY", raising=False)
    unset = CliRunner().invoke(cli_app, [*args, "--audit-key-env", "SITE_AUDIT_KEY"])
    assert unset.exit_code == 2
    assert "SITE_AUDIT_KEY is not set" in " ".join(unset.output.split())  # rich wraps lines
    # the worker factory (--workers > 1) gets the variable's name, never the key itself
    monkeypatch.setenv("SITE_AUDIT_KEY", "not-a-real-secret")
    for name, value in {
        "model": str(bundle),
        "max_records": "5",
        "max_body_bytes": "60000",
        "audit_log": str(log),
        "audit_key_env": "SITE_AUDIT_KEY",
    }.items():
        monkeypatch.setenv(_serve._ENV[name], value)
    client = TestClient(_serve.app_from_environment())
    record = client.get("/v1/model").json()["fields"]
    assert record[0] == "patient_id"
    body = {"patient_id": "K-1", "age_years": 70.0, "sex": "F"}
    assert client.post("/v1/predict", json=body).status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["hash"] == "hmac-sha256"


# -- per-patient risk intervals --------------------------------------------------------------------
def test_predict_with_an_interval_gives_the_library_bounds(
    fitted: sr.RiskModel, cohort: pd.DataFrame, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    import copy

    from spinerisk.endpoints import interval_columns

    # 2 refits, the fewest that make an interval: the API must give the library's bounds
    model = copy.deepcopy(fitted).fit_intervals(cohort, n_resamples=2, random_state=0)
    path = tmp_path / "refits.srb"
    model.save(path)
    with_refits = TestClient(create_app(path, max_records=MAX_RECORDS, max_body_bytes=MAX_BODY))
    assert with_refits.get("/v1/model").json()["intervals"] is True
    response = with_refits.post("/v1/predict?interval=0.8", json={"records": records[:5]})
    assert response.status_code == 200, response.text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        expected = model.predict_risk(records[:5], interval=0.8)
    column = model.endpoint_.risk_column(model.horizons_[0])
    lo, hi = interval_columns(column)
    key = column[len("risk_") :]
    got = response.json()["predictions"]
    np.testing.assert_allclose(
        [p["risk_interval"][key] for p in got], expected[[lo, hi]].to_numpy(), rtol=1e-12
    )
    assert [p["risk"][key] for p in got] == pytest.approx(expected[column].tolist(), rel=1e-12)
    # without ?interval the answer is as before: no bounds
    plain = with_refits.post("/v1/predict", json=records[0]).json()["predictions"][0]
    assert plain["risk_interval"] is None


@pytest.mark.parametrize("query", ["interval=1.5", "interval=0", "interval=abc"])
def test_bad_interval_levels_are_422(client: TestClient, records, query: str) -> None:
    response = client.post(f"/v1/predict?{query}", json=records[0])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "interval"]


def test_interval_from_a_model_without_refits_is_422(client: TestClient, records) -> None:
    assert client.get("/v1/model").json()["intervals"] is False
    response = client.post("/v1/predict?interval=0.9", json=records[0])
    assert response.status_code == 422
    item = response.json()["detail"][0]
    assert item["loc"] == ["query", "interval"] and "--intervals N" in item["msg"]


def test_an_endpoint_scope_field_is_accepted_and_scored():
    """The cervical endpoints' scope reads ``level`` (a cervical fracture); the API must
    accept that field and score in-scope records, and say why an out-of-scope one is
    refused (it answered 422 'extra field' for every record before)."""
    from spinerisk.datasets import TraumaParams

    params = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
    cohort = sr.make_spine_cohort(600, seed=11, mode="trauma", trauma=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint="cervical_mortality", backend="linear").fit(cohort)
    client = TestClient(create_app(model))
    fields = client.get("/v1/model").json()["fields"]
    assert "level" in fields
    records = _json_records(cohort.head(3), [f for f in fields if f in cohort.columns])
    answer = client.post("/v1/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    risks = [p["risk"] for p in answer.json()["predictions"]]
    assert len(risks) == 3 and all(0 < v < 1 for r in risks for v in r.values())
    lumbar = dict(records[0], level="L1")
    refused = client.post("/v1/predict", json=lumbar)
    assert refused.status_code == 422 and "level" in refused.text


@pytest.mark.parametrize(
    ("body", "shape"), [(b"[{}]", "array"), (b"null", "null"), (b"7", "number")]
)
@pytest.mark.parametrize("route", ["/v1/predict", "/v1/explain"])
def test_a_body_that_is_not_an_object_says_what_shape_is_expected(client, route, body, shape):
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body"] and item["input"] == shape
    assert item["msg"] == (
        'The body must be a JSON object: one record, or {"records": [...]} for several; got '
        f"a JSON {shape}."
    )
