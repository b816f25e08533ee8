"""Endpoint scope (issue 16.3): a record outside an endpoint's declared population is
refused with the reason on every path (Python, fast path, batch scoring, HTTP API) and
left out of fitting and evaluation; a cervical record never gets a thoracolumbar OVF
risk."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import NONUNION, OVF_SCOPE_MESSAGE, endpoint_from_dict


@pytest.fixture(scope="module")
def model_and_record():
    cohort = sr.make_spine_cohort(800, seed=3)  # SYNTHETIC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    row = cohort[cohort["treatment"] == "conservative"].iloc[0].to_dict()
    record = {k: v for k, v in row.items() if k != "index_date" and v is not None and v == v}
    return model, record, cohort


def test_ovf_endpoints_declare_their_scope():
    for name in ("nonunion", "collapse", "future_fracture"):
        ep = sr.get_endpoint(name)
        assert ep.scope is not None and ep.scope_message == OVF_SCOPE_MESSAGE
    levels = pd.DataFrame({"level": ["C2", "C7", "T1", "L1", None]})
    assert NONUNION.in_scope(levels).tolist() == [False, False, True, True, True]
    # the cervical scopes need their population fields: missing data is out of scope
    odontoid = sr.get_endpoint("odontoid_nonunion")
    records = pd.DataFrame(
        {"level": ["C2", "C2", "C2", "T12"], "anderson_dalonzo": ["II", None, "III", "II"],
         "age_years": [80.0, 80.0, 80.0, 80.0]}
    )  # fmt: skip
    assert odontoid.in_scope(records).tolist() == [True, False, False, False]
    assert not odontoid.in_scope(records.drop(columns="anderson_dalonzo")).any()


def test_a_cervical_record_is_refused_on_every_path(model_and_record, tmp_path: Path):
    model, record, _ = model_and_record
    cervical = {**record, "level": "C2", "region": "upper_cervical"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        ok = model.predict_risk(record)  # a thoracolumbar record is scored
    assert 0 < ok["risk_183d"].iloc[0] < 1
    for call in (lambda: model.predict_risk(cervical),
                 lambda: model.predict_risk(pd.DataFrame([cervical]))):  # fmt: skip
        with pytest.raises(sr.SchemaValidationError, match="outside the scope") as info:
            call()
        assert info.value.failures["column"].tolist() == ["level"]

    path = tmp_path / "m.srb"
    model.save(path)
    frame = pd.DataFrame([record, {**cervical, "patient_id": "C-1"}])
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    summary = sr.score_file(path, source, tmp_path / "out.csv", rejects=tmp_path / "rej.csv")
    assert (summary.scored, summary.rejected) == (1, 1)
    rejects = pd.read_csv(tmp_path / "rej.csv")
    assert "outside the scope" in rejects["reasons"].iloc[0]

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    client = TestClient(create_app(path))
    body = {k: v for k, v in cervical.items() if k in client.get("/v1/model").json()["fields"]}
    response = client.post("/v1/predict", json=_jsonable(body))
    assert response.status_code == 422
    assert "outside the scope" in response.text


def _jsonable(record: dict) -> dict:
    out = {}
    for k, v in record.items():
        out[k] = v.item() if hasattr(v, "item") else v
    return out


def test_out_of_scope_records_are_left_out_of_fitting():
    cohort = sr.make_spine_cohort(800, seed=4)  # SYNTHETIC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = sr.RiskModel("nonunion", backend="linear").fit(cohort)
        moved = cohort.copy()
        idx = moved.index[:100]
        moved.loc[idx, "level"] = "C5"
        moved.loc[idx, "region"] = "subaxial"
        refit = sr.RiskModel("nonunion", backend="linear").fit(moved)
    eligible = NONUNION.eligible(sr.validate(cohort))
    assert refit.n_train_ == base.n_train_ - int(eligible.loc[idx].sum())


def test_scope_in_an_endpoint_file_round_trips():
    spec = {
        "name": "adults",
        "kind": "binary",
        "event": "nonunion",
        "scope": "age_years >= 65",
        "scope_message": "younger than 65",
    }
    ep = endpoint_from_dict(spec, schema=sr.SPINE_SCHEMA)
    assert (ep.scope, ep.scope_message) == ("age_years >= 65", "younger than 65")
    with pytest.raises(sr.SchemaFileError, match="scope"):
        endpoint_from_dict({**spec, "scope": "age_yrs >= 65"}, schema=sr.SPINE_SCHEMA)
