"""A binary outcome recorded without a horizon states no horizon anywhere.

Internally such an endpoint predicts at :data:`spinerisk.endpoints.NO_HORIZON` (0 days,
risk column ``risk``); reports, JSON, model cards and API answers used to show that
internal value as a horizon of 0. A schema of its own, no spine field.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import NO_HORIZON, endpoint_from_dict, stated_horizon, stated_horizons
from spinerisk.monitor import monitoring_report
from spinerisk.schema import infer_schema
from spinerisk.schema._files import schema_from_dict, schema_to_dict
from spinerisk.update import update_report


def _records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame.insert(0, "pid", [f"p{seed}-{i}" for i in range(n)])
    frame["outcome"] = (rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] - 1)))).astype(int)
    frame["seen"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 360, n), "D")
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    train = _records(300, 0)
    spec = schema_to_dict(infer_schema(train, name="no_horizon", id_column="pid"))
    for field in spec["fields"]:
        if field["name"] == "outcome":
            field["role"] = "outcome"
        elif field["name"] == "seen":
            field["role"] = "admin"
        elif field["name"] in ("a", "b", "c"):
            field.pop("min", None)
            field.pop("max", None)
    endpoint = endpoint_from_dict(
        {"name": "event", "kind": "binary", "event": "outcome", "description": "Event."}
    )
    model = sr.RiskModel(endpoint, schema=schema_from_dict(spec), backend="linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model.fit(train)
    bundle = tmp_path_factory.mktemp("no_horizon") / "model.srb"
    model.save(bundle)
    return {"model": model, "train": train, "new": _records(200, 1), "bundle": bundle}


def test_the_one_owner_leaves_the_internal_horizon_out():
    assert stated_horizons((NO_HORIZON,)) == [] and stated_horizon(NO_HORIZON) is None
    assert stated_horizons((182.62, 365.25)) == [182.62, 365.25]
    assert stated_horizon(30) == 30.0


def test_reports_and_cards_state_no_horizon(fitted: dict[str, Any], tmp_path: Path) -> None:
    model = fitted["model"]
    assert model.horizons_ == (NO_HORIZON,)  # the internal horizon is unchanged
    report = sr.evaluate(model, fitted["new"], n_bootstrap=20)
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["horizons"] == [] and as_dict["horizon_days"] == []
    assert as_dict["model"]["horizons"] == []
    assert all(row["horizon"] is None for row in as_dict["metrics"]), as_dict["metrics"]
    assert report.to_frame()["horizon"].isna().all()
    report.to_html(tmp_path / "report.html")  # renders without a horizon
    assert "0 days" not in (tmp_path / "report.html").read_text()

    choice = sr.choose_threshold(model, fitted["new"], target=0.2, n_bootstrap=20)
    assert choice.to_dict()["horizon"] is None and choice.to_dict()["horizon_days"] is None

    card = sr.model_card(model, report).to_dict()
    assert card["outcome"]["horizons_days"] == []
    assert all(row.get("horizon") is None for row in card["performance"]["metrics"]), card[
        "performance"
    ]["metrics"]


def test_monitoring_and_update_reports_state_no_horizon(fitted: dict[str, Any]) -> None:
    model, new = fitted["model"], fitted["new"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        monitored = monitoring_report(model, new, labels=new, n_bootstrap=10, date_field="seen")
        updated = update_report(model, new, "recalibrate", n_bootstrap=20)
    info = json.loads(json.dumps(monitored.to_dict()))["model"]
    assert info["horizons"] == [] and info["horizon_days"] == [] and info["horizon_labels"] == []
    rows = json.loads(json.dumps(monitored.to_dict()))["performance"]
    assert rows and all(row["horizon_days"] is None for row in rows), rows
    compared = json.loads(json.dumps(updated.to_dict()))
    assert compared["horizons"] == [] and compared["horizon_days"] == []


def test_api_answers_state_no_horizon(fitted: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    client = TestClient(create_app(fitted["bundle"]))
    info = client.get("/v1/model").json()
    assert info["horizons"] == [] and info["horizon_days"] == []
    record = {"pid": "x", "a": 0.1, "b": -0.2, "c": 0.3}
    answer = client.post("/v1/predict", json=record).json()
    assert answer["horizons"] == [] and set(answer["predictions"][0]["risk"]) == {"outcome"}
    explained = client.post("/v1/explain", json=record).json()
    assert explained["horizon"] is None and explained["horizon_days"] is None
    assert 0 < explained["explanations"][0]["risk"] < 1
    refused = client.post("/v1/explain?horizon=30", json=record)
    assert refused.status_code == 422, refused.text
    assert "no horizon" in refused.text and "leave horizon out" in refused.text
    assert not math.isnan(answer["predictions"][0]["risk"]["outcome"])
    # the OpenAPI text of ?horizon= says so instead of listing an empty "()"
    params = client.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]["parameters"]
    about = next(p for p in params if p["name"] == "horizon")["description"]
    assert "without a horizon" in about and "()" not in about


def test_saved_bundle_needs_nothing_from_here(fitted: dict[str, Any]) -> None:
    # the saved model predicts at its internal horizon as before
    loaded = sr.load(Path(fitted["bundle"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        risks = loaded.predict_risk(fitted["new"].head(5))
    assert "risk" in risks.columns and loaded.horizons_ == (NO_HORIZON,)
