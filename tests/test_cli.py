"""The spinerisk command line: demo and validate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from spinerisk.cli import app

runner = CliRunner()


def test_demo_runs_the_main_job_and_labels_data_synthetic():
    result = runner.invoke(
        app, ["demo", "--n", "400", "--seed", "3", "--no-models"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "SYNTHETIC DATA" in out
    assert "400 valid + 0 rejected = 400 records" in out
    assert "Feature pipeline (onehot): 400 records x" in out
    for title in ("Progressive collapse", "Nonunion", "Future fracture"):
        assert f"Table 1 - {title}" in out
    assert "fracture (n=" in out and "nonunion=yes (n=" in out


def test_demo_fits_a_model_per_endpoint_and_writes_reports(tmp_path):
    result = runner.invoke(
        app,
        # at 600 records every endpoint, the enriched odontoid subset too (130 records),
        # is still fitted as the stacked model
        ["demo", "--n", "600", "--seed", "1", "--report-dir", str(tmp_path), "--bootstrap", "5"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for endpoint in ("nonunion", "collapse", "future_fracture"):
        assert f"{endpoint}: fitted " in result.output
        assert f"{endpoint} risk of three held-out patients - SYNTHETIC" in result.output
        html = (tmp_path / f"{endpoint}.html").read_text()
        assert 'id="synthetic-banner"' in html and 'id="calibration"' in html
        assert "split-sample validation on a random part of the development cohort" in html
        assert "apparent performance" not in html  # the records were held out from fitting
    assert "risk_1826d" in result.output and "cross-validat" in result.output
    assert "Held-out validation (SYNTHETIC, 95% bootstrap CI): auroc" in result.output


def test_demo_bad_option_exits_2():
    result = runner.invoke(app, ["demo", "--profile", "martian"])
    assert result.exit_code == 2
    assert "profile" in result.output
    markup = runner.invoke(app, ["demo", "--profile", "[bold]mars"])  # printed as given
    assert markup.exit_code == 2 and "'[bold]mars'" in markup.output


def test_help_text_comes_from_docstrings():
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "Validate a records file against a schema" in result.output


def test_validate_ok_and_failing_files(tmp_path, cohort):
    good = tmp_path / "good.csv"
    cohort.head(30).to_csv(good, index=False)
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0 and "30 records valid" in result.output

    bad = cohort.head(30).copy()
    bad["sex"] = bad["sex"].astype(object)
    bad.loc[4, "sex"] = "X"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(app, ["validate", str(tmp_path / "bad.csv")])
    assert result.exit_code == 2
    assert "(row 4): sex='X' is not an allowed code" in result.output


def test_validate_writes_rejects_with_exact_accounting(tmp_path, cohort):
    bad = cohort.head(30).copy()
    bad["patient_id"] = bad["patient_id"].astype(object)
    bad.loc[2, "patient_id"] = "=cmd|' /C calc'!A0"
    bad.loc[7, "age_years"] = 300.0
    bad.to_csv(tmp_path / "in.csv", index=False)
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["validate", str(tmp_path / "in.csv"), "--rejects", str(rejects)])
    assert result.exit_code == 2  # rejects exist: schedulers must notice
    assert "records in: 30 = valid: 28 + rejected: 2" in result.output
    written = pd.read_csv(rejects)
    assert sorted(written["row"]) == [2, 7]
    # text that a spreadsheet would execute is neutralised in the CSV
    assert written.loc[written["row"] == 2, "patient_id"].item().startswith("'=")


@pytest.mark.parametrize("content, match", [
    (b"patient_id;age_years\nP1;70\n", "looks ';'-delimited"),
    (b"patient_id,age_years\nM\xfcller,70\n", "is not valid utf-8"),
])  # fmt: skip
def test_validate_unreadable_files_exit_2(tmp_path, content, match):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert match in result.output


def _train_args(data):
    return ["train", "--input", str(data), "--endpoint", "nonunion", "--backend", "linear"]


@pytest.fixture(scope="module")
def trained_with_refits(tmp_path_factory, _cohort_300):
    """The cohort file and a linear nonunion bundle with 3 bootstrap refits, trained once
    by the command line for the tests of this module (they read it, never change it)."""
    tmp = tmp_path_factory.mktemp("refits")
    data = tmp / "cohort.csv"
    _cohort_300.to_csv(data, index=False)
    bundle = tmp / "refits.srb"
    result = runner.invoke(app, [*_train_args(data), "--intervals", "3", "--output", str(bundle)])
    return {"data": data, "bundle": bundle, "result": result}


def test_train_stores_bootstrap_refits_for_intervals(tmp_path, cohort, trained_with_refits):
    import spinerisk as sr

    result = trained_with_refits["result"]
    assert result.exit_code == 0, result.output
    assert "intervals: 3 of 3 bootstrap refits stored (seed 0)" in result.output
    model = sr.load(trained_with_refits["bundle"])
    assert len(model.interval_models_) == 3
    risks = model.predict_risk(cohort.head(20), interval=0.9)
    lo, hi = sr.endpoints.interval_columns(model.endpoint_.risk_column(model.horizons_[0]))
    assert (risks[lo] <= risks[hi]).all() and risks[[lo, hi]].notna().all().all()
    # one refit cannot make an interval: a clear error, no traceback, no bundle
    base = _train_args(trained_with_refits["data"])
    result = runner.invoke(app, [*base, "--intervals", "1", "--output", str(tmp_path / "x.srb")])
    assert result.exit_code == 2
    assert "n_resamples must be an integer from 2 to 200" in result.output
    assert not (tmp_path / "x.srb").exists()


def test_score_writes_interval_columns_and_refuses_a_model_without_refits(
    tmp_path, cohort, trained_with_refits
):
    import spinerisk as sr
    from spinerisk.endpoints import interval_columns

    data, with_refits = trained_with_refits["data"], trained_with_refits["bundle"]
    result = trained_with_refits["result"]
    plain = tmp_path / "plain.srb"
    assert runner.invoke(app, [*_train_args(data), "--output", str(plain)]).exit_code == 0
    assert result.exit_code == 0, result.output
    scores = tmp_path / "scores.csv"
    score = ["score", "--input", str(data), "--output", str(scores), "--no-progress"]
    result = runner.invoke(app, [*score, "--model", str(with_refits), "--interval", "0.8"])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(scores)
    model = sr.load(with_refits)
    risk = model.endpoint_.risk_column(model.horizons_[0])
    lo, hi = interval_columns(risk)
    assert list(out.columns[1:4]) == [risk, lo, hi]
    expected = model.predict_risk(cohort, interval=0.8)
    np.testing.assert_allclose(out[lo], expected[lo].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(out[hi], expected[hi].to_numpy(), rtol=1e-9)
    # a bundle without refits cannot give an interval: a clear error, exit 2, no output
    scores.unlink()
    result = runner.invoke(app, [*score, "--model", str(plain), "--interval", "0.8"])
    assert result.exit_code == 2
    assert "--intervals N" in result.output and not scores.exists()
    result = runner.invoke(app, [*score, "--model", str(with_refits), "--interval", "1.5"])
    assert result.exit_code == 2 and "strictly between 0 and 1" in result.output
