"""Record identifiers on the fast path (dicts, the HTTP API) are those of the batch path:
a generated id that the records do not carry is ``row-1``, ``row-2``, ... (it raised
KeyError), an integer id stays an integer (it came back as a float), and the probe
records the fast path checks itself with carry an id of the field's own type (a text
id in an integer field made every probe fail the record check, so the check was
empty). SYNTHETIC data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import spinerisk as sr
from spinerisk.api import create_app
from spinerisk.endpoints import Endpoint
from spinerisk.fastpath import FastPredictor
from spinerisk.schema import FieldSpec, Schema

ENDPOINT = Endpoint(
    name="outcome",
    kind="binary",
    description="SYNTHETIC outcome.",
    event="outcome",
    time=None,
    horizons=(365.25,),
    eligible_treatments=None,
    include_treatment=False,
)


def fitted(id_type: str, generated: bool, backend: str) -> tuple[sr.RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    records = pd.DataFrame(
        {"rid": np.arange(n).astype(id_type if id_type != "string" else str)}
        | {"x": x, "z": rng.normal(size=n), "outcome": rng.uniform(size=n) < 1 / (1 + np.exp(-x))}
    )
    if generated:
        records = records.drop(columns="rid")
    schema = Schema(
        (
            FieldSpec(
                "rid",
                id_type,
                "Record id.",
                role="id",
                unique=True,
                nullable=False,
                generated=generated,
            ),
            FieldSpec("x", "float", "A predictor."),
            FieldSpec("z", "float", "Another."),
            FieldSpec("outcome", "bool", "SYNTHETIC.", role="outcome", nullable=False),
        ),
        name="ids",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(ENDPOINT, backend=backend, schema=schema).fit(records)
    return model, records.drop(columns="outcome")


@pytest.mark.parametrize("backend", ["linear", "xgboost"])
def test_a_generated_id_the_records_lack_is_made_as_the_batch_path_makes_it(backend, tmp_path):
    model, records = fitted("string", True, backend)
    frame = model.predict_risk(records.head(3))
    assert frame.index.tolist() == ["row-1", "row-2", "row-3"]
    dicts = model.predict_risk(records.head(3).to_dict("records"))
    pd.testing.assert_frame_equal(dicts, frame, check_exact=False, atol=1e-12, rtol=0)
    one = model.predict_risk(records.iloc[0].to_dict())
    assert one.index.tolist() == ["row-1"]
    model.save(tmp_path / "gen.srb")
    client = TestClient(create_app(tmp_path / "gen.srb"))
    answer = client.post("/v1/predict", json={"records": records.head(2).to_dict("records")})
    assert answer.status_code == 200
    assert [p["id"] for p in answer.json()["predictions"]] == ["row-1", "row-2"]


@pytest.mark.parametrize("id_type", ["int", "float", "string"])
def test_ids_keep_their_type_and_the_probes_pass_the_record_check(id_type):
    model, records = fitted(id_type, False, "xgboost")
    frame = model.predict_risk(records.head(3))
    dicts = model.predict_risk(records.head(3).to_dict("records"))
    assert dicts.index.tolist() == frame.index.tolist()
    assert [type(v) for v in dicts.index] == [type(v) for v in frame.index]
    fast = FastPredictor(model, compile=False)
    probes = fast._probes()
    assert probes and all(fast._checker.check([p]) is not None for p in probes)
