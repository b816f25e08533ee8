"""Abstention (issue 16.4): an OVF prognosis model bound to a malignancy model gives no
prognosis where the fracture may be malignant, the same on every path."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.models._gate import GATE_COLUMNS, gate_performance, gate_status


@pytest.fixture(scope="module")
def gated():
    cohort = sr.make_spine_cohort(2500, seed=5, malignant="clinic")  # SYNTHETIC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gate = sr.RiskModel("malignant_fracture", backend="linear").fit(cohort)
        model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    model.bind_malignancy_gate(gate)
    return model, gate, cohort


def _predict(model, records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return model.predict_risk(records)


def test_status_follows_the_thresholds_and_red_flags(gated):
    model, gate, cohort = gated
    out = _predict(model, cohort.head(600))
    assert list(out.columns) == ["risk_183d", *GATE_COLUMNS, "warnings"]
    p = _predict(gate, cohort.head(600))["risk"].to_numpy()
    np.testing.assert_allclose(out["p_malignant"].to_numpy(), p, rtol=1e-12)
    red = (
        cohort.head(600)["mri_epidural_paraspinal_mass"].fillna(False).astype(bool)
        | cohort.head(600)["m_protein"].fillna(False).astype(bool)
    ).to_numpy()
    expected = np.where(
        red | (p >= 0.10), "out_of_scope", np.where(p >= 0.05, "warning", "in_scope")
    )
    # active cancer with marrow replacement adds to the red flags
    extra = (out["status"].to_numpy() == "out_of_scope") & (expected != "out_of_scope")
    active = cohort.head(600).get("active_cancer")
    if active is None or not active.notna().any():
        assert not extra.any()
    assert (out["status"].to_numpy()[~extra] == expected[~extra]).all()
    blocked = out["status"] == "out_of_scope"
    assert blocked.any() and out.loc[blocked, "risk_183d"].isna().all()
    assert out.loc[~blocked, "risk_183d"].between(0, 1).all()
    assert out.loc[blocked, "status_reason"].str.contains("work-up first").all()
    # without the gate, the same model gives the same risks to in-scope records
    plain = sr.RiskModel("nonunion", backend="linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(cohort)
    base = _predict(plain, cohort.head(600))["risk_183d"]
    np.testing.assert_allclose(out.loc[~blocked, "risk_183d"], base[~blocked], rtol=1e-12)


def test_the_gate_is_the_same_on_every_path(gated, tmp_path: Path):
    model, _, cohort = gated
    records = cohort.head(60)
    frame = _predict(model, records)
    rows = records.drop(columns="index_date").to_dict("records")
    one = _predict(model, [{k: v for k, v in r.items() if v == v and v is not None}
                           for r in rows[:5]])  # fmt: skip
    pd.testing.assert_frame_equal(one, frame.head(5), check_dtype=False)
    fast = model._fast_predictor()  # the gate is compiled too: no fallback to the batch path
    assert fast is not None and fast._gate is not None
    before = fast.n_fallbacks_
    dicts = [{k: (None if v is None or v is pd.NA or v != v else v) for k, v in r.items()}
             for r in rows]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        compiled = [fast.predict_risk(d) for d in dicts]
    assert fast.n_fallbacks_ == before
    for d, (_, expected) in zip(compiled, frame.iterrows(), strict=True):
        assert d["status"] == expected["status"] and d["status_reason"] == expected["status_reason"]
        assert d["p_malignant"] == pytest.approx(expected["p_malignant"], rel=1e-9)
        assert np.isnan(d["risk_183d"]) == np.isnan(expected["risk_183d"])

    from spinerisk.scoring._chunk import _predict_checked, _Timer

    checked = sr.validate(records, model.input_schema_)
    batch = _predict_checked(model, checked, _Timer())
    np.testing.assert_array_equal(batch["status"].to_numpy(), frame["status"].to_numpy())
    np.testing.assert_allclose(batch["risk_183d"], frame["risk_183d"], equal_nan=True)

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    client = TestClient(create_app(model))
    fields = client.get("/v1/model").json()["fields"]
    out_idx = int(np.flatnonzero(frame["status"].to_numpy() == "out_of_scope")[0])
    body = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in rows[out_idx].items()
        if k in fields and v is not None and v == v
    }
    answer = client.post("/v1/predict", json=body).json()["predictions"][0]
    assert answer["status"] == "out_of_scope" and answer["risk"] == {"183d": None}
    assert answer["p_malignant"] == pytest.approx(frame["p_malignant"].iloc[out_idx])


def test_gate_performance_and_parameter_checks(gated):
    model, gate, cohort = gated
    checked = sr.validate(cohort, model.input_schema_)
    perf = gate_performance(model, checked)
    assert perf["n"] == len(checked)
    assert 0.05 < perf["abstention_rate"] < 0.4
    assert perf["sensitivity"] > 0.85 and perf["npv"] > 0.97
    assert len(gate_status(model, checked.head(0))) == 0
    with pytest.raises(ValueError, match="binary"):
        sr.RiskModel("nonunion", backend="linear").fit(cohort).bind_malignancy_gate(
            sr.RiskModel("future_fracture", backend="linear").fit(cohort)
        )
    with pytest.raises(ValueError, match="must not exceed"):
        model.bind_malignancy_gate(gate, threshold=0.05, warning=0.2)
    with pytest.raises(ValueError, match="do not fit the schema"):
        model.bind_malignancy_gate(gate, red_flags="no_such_field")


def test_batch_scoring_counts_out_of_scope_records_apart(gated, tmp_path: Path):
    from spinerisk.scoring import score_frame
    from spinerisk.scoring._chunk import _score_columns, out_of_scope_count

    model, _, cohort = gated
    scores, rejects = score_frame(model, cohort.head(200))
    assert list(scores.columns[: len(_score_columns(model, 0)[0])]) == _score_columns(model, 0)[0]
    held = out_of_scope_count(scores)
    assert 0 < held < 200 and len(rejects) == 0
    assert scores.loc[scores["status"] == "out_of_scope", "risk_183d"].isna().all()
    python = _predict(model, cohort.head(200))
    np.testing.assert_array_equal(scores["status"].to_numpy(), python["status"].to_numpy())


def test_evaluation_reports_the_gate_and_evaluates_the_records_in_scope(gated):
    from spinerisk.evaluation import evaluate

    model, _, cohort = gated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = evaluate(model, cohort.head(1200), n_bootstrap=10, subgroups=(), explain=False)
    gate = report.model_info["malignancy_gate"]
    checked = sr.validate(cohort.head(1200), model.schema_)
    assert gate == pytest.approx(gate_performance(model, checked) | {
        "n_eligible_out_of_scope": gate["n_eligible_out_of_scope"]})  # fmt: skip
    assert any("Malignancy gate" in n and "negative predictive value" in n for n in report.notes)
    assert np.isfinite(report.to_frame()["estimate"]).all()  # no missing risk was scored
