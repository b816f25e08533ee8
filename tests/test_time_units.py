"""Horizons are given in the endpoint's time unit on every path a user calls.

rott2 (Rotterdam breast cancer, time in **months**) fitted twice: once with an endpoint in
months, once with the same times converted to days and an endpoint in days. The two
models are the same model; every horizon a user gives (``RiskModel(horizons=)``,
``predict_risk``, ``explain``, ``evaluate``, ``choose_threshold``, the fast path, the
HTTP API) is read in the endpoint's unit, so 60 months and 1826.25 days give the same
risks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import Endpoint, endpoint_from_dict
from spinerisk.schema import infer_schema

DATA = Path(__file__).parent / "data" / "real" / "rott2" / "rott2.csv"
DAYS_PER_MONTH = 365.25 / 12


def _endpoint(unit: str, horizons: list[float]) -> Endpoint:
    return endpoint_from_dict(
        {
            "name": "relapse_or_death",
            "kind": "survival",
            "description": "Relapse or death after breast cancer surgery (Rotterdam).",
            "event": "event",
            "time": "time",
            "time_unit": unit,
            "horizons": horizons,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    months = pd.read_csv(DATA).head(1200)
    days = months.assign(time=months["time"] * DAYS_PER_MONTH)
    schema_m, schema_d = (
        infer_schema(frame, name="rott2", id_column="pid")
        .replace("event", role="outcome_event")
        .replace("time", role="outcome_time")
        for frame in (months, days)
    )
    model_m = sr.RiskModel(
        endpoint=_endpoint("months", [36, 60]), schema=schema_m, backend="linear"
    ).fit(months)
    model_d = sr.RiskModel(
        endpoint=_endpoint("days", [36 * DAYS_PER_MONTH, 60 * DAYS_PER_MONTH]),
        schema=schema_d,
        backend="linear",
    ).fit(days)
    return {"months": months, "days": days, "m": model_m, "d": model_d}


def test_predict_risk_reads_horizons_in_the_endpoints_unit(fitted: dict[str, Any]) -> None:
    m, d = fitted["m"], fitted["d"]
    records = fitted["months"].head(20)
    by_months = m.predict_risk(records, horizons=[24, 60])
    by_days = d.predict_risk(records, horizons=[24 * DAYS_PER_MONTH, 60 * DAYS_PER_MONTH])
    assert list(by_months.columns[:2]) == ["risk_24mo", "risk_60mo"]
    np.testing.assert_allclose(by_months.iloc[:, :2].to_numpy(), by_days.iloc[:, :2].to_numpy())
    # the fitted horizons: 60 months is the default column too
    default = m.predict_risk(records)
    np.testing.assert_array_equal(default["risk_60mo"], by_months["risk_60mo"])
    # the fast path (records as dicts) reads the same unit
    one = m.predict_risk(records.head(1).to_dict("records"), horizons=[24])
    assert one["risk_24mo"].iloc[0] == pytest.approx(by_months["risk_24mo"].iloc[0], rel=1e-12)


def test_a_horizon_past_follow_up_is_refused_in_the_unit(fitted: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"horizons 600 months lie\(s\) beyond the last event"):
        fitted["m"].predict_risk(fitted["months"].head(2), horizons=[600])
    with pytest.raises(ValueError, match="positive numbers of months"):
        fitted["m"].predict_risk(fitted["months"].head(2), horizons=[-1])


def test_fit_horizons_are_in_the_unit_and_kept_in_days(fitted: dict[str, Any]) -> None:
    model = sr.RiskModel(
        endpoint=fitted["m"].endpoint_, schema=fitted["m"].schema_, backend="linear", horizons=[12]
    ).fit(fitted["months"])
    assert model.horizons_ == (12 * DAYS_PER_MONTH,)
    assert list(model.predict_risk(fitted["months"].head(2)).columns[:1]) == ["risk_12mo"]


def test_explain_evaluate_and_threshold_read_the_unit(fitted: dict[str, Any]) -> None:
    m, d = fitted["m"], fitted["d"]
    records = fitted["months"].head(5)
    expl = m.explain(records, horizon=36)
    assert expl.horizon == pytest.approx(36 * DAYS_PER_MONTH)
    assert "at 36 months" in expl.sentences(k=2).iloc[0]
    assert "36 months" in repr(expl)
    test_m, test_d = fitted["months"].tail(600), fitted["days"].tail(600)
    rep_m = sr.evaluate(m, test_m, horizons=[36], n_bootstrap=20, validation="split")
    rep_d = sr.evaluate(
        d, test_d, horizons=[36 * DAYS_PER_MONTH], n_bootstrap=20, validation="split"
    )
    assert rep_m.horizons == rep_d.horizons == (36 * DAYS_PER_MONTH,)
    a, b = rep_m.to_frame(), rep_d.to_frame()
    np.testing.assert_allclose(a["estimate"].astype(float), b["estimate"].astype(float))
    # what a user reads back is in the unit they gave: the tables, the JSON, the card
    assert set(a["horizon"].dropna()) == {36.0}
    assert set(b["horizon"].dropna()) == {36 * DAYS_PER_MONTH}
    assert set(rep_m.metrics["horizon"].dropna()) == {36 * DAYS_PER_MONTH}  # days kept
    js = rep_m.to_dict()
    assert (js["time_unit"], js["horizons"]) == ("months", [36.0])
    assert js["horizon_days"] == [36 * DAYS_PER_MONTH]
    assert {r["horizon"] for r in js["metrics"] if r["horizon"] is not None} == {36.0}
    assert list(js["calibration"]) == ["36mo"]
    assert js["model"]["horizons"] == pytest.approx([36.0, 60.0])  # the model's, in months
    assert js["settings"]["subgroup_horizon"] == pytest.approx(36.0)
    assert max(js["settings"]["ibs_times"]) <= 36.0 + 1e-9
    card = sr.model_card(m, report=rep_m).to_dict()["performance"]
    assert card["time_unit"] == "months"
    assert {r["horizon"] for r in card["metrics"] if r["horizon"] is not None} == {36.0}
    t_m = sr.choose_threshold(m, test_m, target=0.3, horizon=36, n_bootstrap=20)
    t_d = sr.choose_threshold(d, test_d, target=0.3, horizon=36 * DAYS_PER_MONTH, n_bootstrap=20)
    assert t_m.threshold == t_d.threshold
    assert t_m.to_dict()["horizon"] == pytest.approx(36.0)
    assert t_m.to_dict()["time_unit"] == "months"
    assert t_d.to_dict()["horizon"] == t_m.to_dict()["horizon_days"] == t_m.horizon


def test_http_api_gives_and_takes_horizons_in_the_unit(fitted: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    client = TestClient(create_app(fitted["m"]))
    info = client.get("/v1/model").json()
    assert info["time_unit"] == "months"
    assert info["horizons"] == pytest.approx([36, 60])
    assert info["horizon_days"] == pytest.approx([36 * DAYS_PER_MONTH, 60 * DAYS_PER_MONTH])
    record = fitted["months"].drop(columns=["event", "time"]).head(1).to_dict("records")[0]
    record["pid"] = str(record["pid"])
    answer = client.post("/v1/predict", json=record)
    assert answer.status_code == 200, answer.text
    predicted = answer.json()
    assert predicted["horizons"] == pytest.approx([36, 60])
    assert set(predicted["predictions"][0]["risk"]) == {"36mo", "60mo"}
    explained = client.post("/v1/explain?horizon=60", json=record)
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["horizon"] == pytest.approx(60) and body["time_unit"] == "months"
    assert body["explanations"][0]["risk"] == pytest.approx(
        predicted["predictions"][0]["risk"]["60mo"], rel=1e-9
    )
    by_days = client.post(f"/v1/explain?horizon_days={60 * DAYS_PER_MONTH}", json=record)
    same = by_days.json()["explanations"][0]["risk"]
    assert same == pytest.approx(body["explanations"][0]["risk"])
    refused = client.post("/v1/explain?horizon=1826.25", json=record)
    assert refused.status_code == 422
    assert "in months (36, 60)" in refused.text


def test_an_endpoint_in_another_unit_than_its_time_field_is_refused(
    fitted: dict[str, Any],
) -> None:
    """The schema says the time field is in months; an endpoint in days would read every
    horizon in the wrong unit."""
    schema = fitted["m"].schema_.replace("time", unit="months")
    in_days = _endpoint("days", [1826.25])
    with pytest.raises(ValueError, match=r'time_unit=\'days\'.*in months.*time_unit = "months"'):
        in_days.check_schema(schema)
    with pytest.raises(ValueError, match="in months"):
        sr.RiskModel(endpoint=in_days, schema=schema, backend="linear").fit(fitted["months"])
    _endpoint("months", [60]).check_schema(schema)  # the same unit, spelt as the schema has it
    _endpoint("months", [60]).check_schema(schema.replace("time", unit="mo"))
    _endpoint("days", [60]).check_schema(schema.replace("time", unit="follow-up time"))


def _past_all_but_the_last_event(fitted: dict[str, Any]) -> sr.RiskModel:
    """A model whose horizon lies between the last two event times: a fit on records
    without the last event cannot reach it."""
    months = fitted["months"]
    times = np.sort(months.loc[months["event"] == 1, "time"].to_numpy())
    horizon = float((times[-1] + times[-2]) / 2)
    return sr.RiskModel(
        endpoint=_endpoint("months", [horizon]), schema=fitted["m"].schema_, backend="linear"
    ).fit(months)


def test_cross_validation_names_the_fold_that_cannot_reach_a_horizon(
    fitted: dict[str, Any],
) -> None:
    """A horizon past every event but the last: the fold without that record cannot be
    refitted, and the error says so (not a bare error from inside the refit)."""
    months = fitted["months"]
    model = _past_all_but_the_last_event(fitted)
    with pytest.raises(ValueError, match=r"Cross-validation \(cv=5\).*fold \d's \d+ training"):
        sr.evaluate(model, months, cv=5, n_bootstrap=10)


def test_update_report_and_evaluate_agree_on_horizons_past_follow_up(
    fitted: dict[str, Any], tmp_path: Path
) -> None:
    """Records censored at 50 months say nothing of risk by 60: evaluate and the update
    report both give n/a there, with the same note."""
    from spinerisk.update import compare_models

    m = fitted["m"]
    late = fitted["months"]["time"] > 50
    records = fitted["months"].assign(
        time=fitted["months"]["time"].where(~late, 50.0),
        event=fitted["months"]["event"].where(~late, 0),
    )
    evaluated = sr.evaluate(m, records, n_bootstrap=10).to_frame()
    compared = compare_models(m, m, records, n_bootstrap=10)
    table = compared.to_frame()
    for frame, column in ((evaluated, "estimate"), (table, "original")):
        at = frame["horizon"].astype(float)  # in months, the endpoint's unit
        assert frame.loc[at == 60, column].isna().all()
        assert frame.loc[at == 36, column].notna().any()
    assert any("60 months lie at or beyond" in n for n in compared.notes)
    js = compared.to_dict()
    assert (js["time_unit"], js["horizons"]) == ("months", [36.0, 60.0])
    assert {r["horizon"] for r in js["metrics"] if r["horizon"] is not None} <= {36.0, 60.0}
    assert set(js["calibration"]) <= {"36mo", "60mo"}
    # net benefit at the last horizon the records reach, as evaluate's decision curve
    benefit = table[table["metric"].str.startswith("net_benefit")]
    assert len(benefit) and (benefit["horizon"].astype(float) == 36).all()
    assert benefit["original"].notna().all()
    assert "60 months lie at or beyond" in compared.to_markdown()
    compared.to_html(tmp_path / "update.html")
    page = (tmp_path / "update.html").read_text(encoding="utf-8")
    assert "60 months lie at or beyond" in page


def test_optimism_says_why_refits_failed(fitted: dict[str, Any]) -> None:
    """Resamples without the one record that has an event past the horizon cannot be
    refitted: the correction warns with the reason and the report's note says so."""
    months = fitted["months"]
    model = _past_all_but_the_last_event(fitted)
    with pytest.warns(sr.DataQualityWarning, match=r"refits could not be fitted .*the first: "):
        report = sr.evaluate(model, months, optimism=True, n_optimism=8, n_bootstrap=10)
    assert any("refits failed and were left out" in n and "with care" in n for n in report.notes)


def test_cli_evaluate_takes_horizons_in_the_unit(fitted: dict[str, Any], tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from spinerisk.cli import app

    bundle = fitted["m"].save(tmp_path / "m.srb")
    data = tmp_path / "test.csv"
    fitted["months"].tail(600).to_csv(data, index=False)
    out = tmp_path / "e.json"
    args = ["evaluate", "--model", str(bundle), "--input", str(data), "--validation", "split"]
    result = CliRunner().invoke(
        app, [*args, "--horizon", "36", "--bootstrap", "10", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())["metrics"]
    assert {m["horizon"] for m in metrics if m["horizon"] is not None} == {36.0}  # months
    uno = [m for m in metrics if m["metric"] == "uno_c"]
    assert uno and uno[0]["estimate"] is not None
    bad = CliRunner().invoke(app, [*args, "--horizon", "0"])
    assert bad.exit_code == 2 and "positive numbers of months" in " ".join(bad.output.split())
