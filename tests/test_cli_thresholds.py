"""`spinerisk evaluate` and `report` take the decision curve's thresholds (`--threshold`),
and `evaluate(thresholds=)` refuses values that are not risks, naming them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk.cli import app


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("thresholds")
    cohort = sr.make_spine_cohort(300, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        sr.RiskModel("future_fracture", backend="linear").fit(cohort).save(work / "m.srb")
    sr.make_spine_cohort(200, seed=4).to_csv(work / "new.csv", index=False)
    return work / "m.srb", work / "new.csv"


def test_evaluate_writes_the_decision_curve_at_the_thresholds_given(saved, tmp_path):
    model, records = saved
    out = tmp_path / "r.json"
    args = ["evaluate", "--model", str(model), "--input", str(records), "--validation",
            "external", "--synthetic", "--bootstrap", "5", "--json", str(out)]  # fmt: skip
    wide = ["--threshold", "0.3", "--threshold", "0.75", "--threshold", "0.9"]
    result = CliRunner().invoke(app, [*args, *wide])
    assert result.exit_code == 0, result.output
    curves = json.loads(out.read_text())["decision_curve"]
    for table in curves.values():  # one per horizon
        assert [round(r["threshold"], 9) for r in table] == [0.3, 0.75, 0.9], table
    # without the option: the default range, which stops at 0.60 for time-to-event
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    curves = json.loads(out.read_text())["decision_curve"]
    assert max(r["threshold"] for t in curves.values() for r in t) == pytest.approx(0.6)


def test_a_threshold_that_is_not_a_risk_is_refused_with_its_name(saved):
    model, records = saved
    result = CliRunner().invoke(
        app,
        ["evaluate", "--model", str(model), "--input", str(records), "--validation",
         "external", "--bootstrap", "5", "--threshold", "1.5"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "thresholds[0]=1.5 is outside (0, 1)" in result.output
    assert "Traceback" not in result.output
