"""Monitoring report (JSON, HTML) and the ``spinerisk monitor`` command."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk.cli import app
from spinerisk.monitor import build_reference, bundle_info, monitoring_report

runner = CliRunner()


@pytest.fixture(scope="module")
def dev():
    return sr.make_spine_cohort(1000, seed=0)  # SYNTHETIC development cohort


@pytest.fixture(scope="module")
def model(dev):
    fitted = sr.RiskModel(endpoint="nonunion", backend="linear").fit(dev)
    fitted.reference_ = build_reference(fitted, dev)
    return fitted


@pytest.fixture(scope="module")
def files(tmp_path_factory, model, dev):
    """A bundle, its reference as JSON, and new records without and with a scanner offset."""
    root = tmp_path_factory.mktemp("monitor")
    bare = copy.copy(model)
    del bare.reference_  # bundles from before references existed; --reference supplies it
    bundle = bare.save(root / "model.srb")
    (root / "reference.json").write_text(json.dumps(model.reference_))
    kept = dev.attrs["intercepts"]
    sr.make_spine_cohort(600, seed=3, intercepts=kept).to_csv(root / "same.csv", index=False)
    for offset in (20, 40):
        shifted = sr.make_spine_cohort(600, seed=3, intercepts=kept, hu_offset=offset)
        shifted.to_csv(root / f"hu{offset}.csv", index=False)
    return root, bundle


def test_report_sections_in_json_and_html(model, dev, tmp_path):
    new = sr.make_spine_cohort(600, seed=4, hu_offset=40, intercepts=dev.attrs["intercepts"])
    report = monitoring_report(model, new, labels=new, n_bootstrap=20)
    assert report.alert == "alert" and report.exit_code == 11
    assert report.drift.alert == "alert"
    d = json.loads(report.to_json(tmp_path / "summary.json").read_text())
    assert d["alert"] == "alert" and d["synthetic"] is True and "SYNTHETIC" in d["notice"]
    assert {"drift", "performance", "model", "reasons", "thresholds"} <= set(d)
    assert d["model"]["endpoint"] == "nonunion"
    assert any("hu_l1" in r for r in d["reasons"])
    assert {row["period"] for row in d["performance"]} >= {"all", "2016Q1"}
    page = report.to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == page
    assert 'id="synthetic-banner"' in page and "SYNTHETIC DATA" in page
    for section in ("summary", "model", "drift", "prediction-shift", "performance", "methods"):
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") == 3  # self-contained figures
    assert "<script" not in page and "http" not in page  # nothing fetched from elsewhere


def test_html_escapes_strings_and_the_banner_follows_the_data(model, dev):
    real_looking = sr.make_spine_cohort(300, seed=5)
    real_looking.attrs = {}
    plain = copy.copy(model)
    plain.reference_ = {**model.reference_, "synthetic": False}
    info = {"model_id": "<script>alert(1)</script>", "model_sha256": "x"}
    report = monitoring_report(plain, real_looking, model_info=info)
    page = report.to_html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert not report.synthetic and "SYNTHETIC DATA" not in page
    assert report.to_dict()["notice"] is None
    assert monitoring_report(model, real_looking).synthetic  # trained on synthetic data


def test_watch_level_and_thresholds(model, dev):
    kept = dev.attrs["intercepts"]
    same = sr.make_spine_cohort(600, seed=6, intercepts=kept)
    assert monitoring_report(model, same).alert == "none"
    shifted = sr.make_spine_cohort(600, seed=6, intercepts=kept, hu_offset=20)
    report = monitoring_report(model, shifted)
    assert report.alert == "watch" and report.exit_code == 10
    assert monitoring_report(model, shifted, psi_thresholds=(0.05, 0.12)).alert == "alert"
    with pytest.raises(ValueError, match="oe_limits must enclose 1"):
        monitoring_report(model, same, oe_limits=(1.1, 1.5))


def test_bundle_info_identifies_the_file(files):
    _, bundle = files
    info = bundle_info(bundle)
    assert info["model_sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert info["model_id"].startswith("nonunion-linear-")
    assert info["model_id"].endswith(info["model_sha256"][:12])


# -- CLI ------------------------------------------------------------------------------------
def _monitor(root, bundle, name, *extra):
    args = ["monitor", "--model", str(bundle), "--input", str(root / name)]
    args += ["--reference", str(root / "reference.json"), *extra]
    return runner.invoke(app, args, env={"COLUMNS": "200"})


@pytest.mark.parametrize("name, code, level", [
    ("same.csv", 0, "none"), ("hu20.csv", 10, "watch"), ("hu40.csv", 11, "alert"),
])  # fmt: skip
def test_cli_exit_code_signals_the_alert_level(files, name, code, level):
    root, bundle = files
    out = root / f"{name}.json"
    result = _monitor(root, bundle, name, "--json", str(out))
    assert result.exit_code == code, result.output
    assert f"Alert level: {level}" in result.output and "SYNTHETIC DATA" in result.output
    summary = json.loads(out.read_text())
    assert summary["alert"] == level
    assert summary["model"]["model_sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()


def test_cli_writes_html_and_uses_labels(files, tmp_path):
    root, bundle = files
    html = tmp_path / "r.html"
    result = _monitor(
        root, bundle, "hu40.csv", "--labels", str(root / "same.csv"), "--html", str(html),
        "--n-bootstrap", "10", "--period", "month",
    )  # fmt: skip
    assert result.exit_code == 11, result.output
    page = html.read_text()
    assert '<section id="performance">' in page and "2016-01" in page
    # the labelled batch names the update method its evidence supports (sr.update's own)
    import re
    import warnings

    line = "Update method the labelled records support (closed test, alpha 0.05): "
    named = re.search(re.escape(line) + r"(\w+)", result.output)
    assert named, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labelled = sr.read_records(root / "same.csv")
        expected = sr.update(sr.load(bundle), labelled, method="auto").lineage_["method"]
    assert named.group(1) == expected


def test_cli_bad_input_exits_2_with_the_reason_on_stderr(files, tmp_path):
    root, bundle = files
    no_ref = runner.invoke(
        app,
        ["monitor", "--model", str(bundle), "--input", str(root / "same.csv")],
        env={"COLUMNS": "200"},
    )
    assert no_ref.exit_code == 2 and "holds no training reference" in no_ref.output
    missing = _monitor(root, bundle, "nowhere.csv")
    assert missing.exit_code == 2
    bad = sr.make_spine_cohort(50, seed=7)
    bad.loc[4, "age_years"] = -3.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    labels = _monitor(root, bundle, "same.csv", "--labels", str(tmp_path / "bad.csv"))
    assert labels.exit_code == 2 and "age_years=-3.0" in labels.output
    period = _monitor(root, bundle, "same.csv", "--period", "week")
    assert period.exit_code == 2 and "--period must be quarter or month" in period.output


def test_cli_help_documents_the_exit_codes():
    result = runner.invoke(app, ["monitor", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "10 watch" in result.output and "11 alert" in result.output


def test_labels_need_enough_bootstrap_resamples(model):
    new = sr.make_spine_cohort(300, seed=30)
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 10"):
        monitoring_report(model, new, labels=new, n_bootstrap=5)


def test_cli_leaves_out_rows_that_cannot_be_read_and_says_so(files, tmp_path):
    """A row with a field too many does not stop the monitoring of the others (as
    scoring rejects it row by row); the run names it and compares the rest."""
    root, bundle = files
    lines = (root / "same.csv").read_text(encoding="utf-8").splitlines()
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join([*lines[:5], lines[5] + ",extra", *lines[6:]]) + "\n")
    out = tmp_path / "ragged.json"
    result = runner.invoke(
        app,
        ["monitor", "--model", str(bundle), "--input", str(ragged), "--reference",
         str(root / "reference.json"), "--json", str(out)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "note: 1 row(s) of ragged.csv cannot be read and were left out" in text
    whole = tmp_path / "whole.json"
    assert _monitor(root, bundle, "same.csv", "--json", str(whole)).exit_code == 0
    n_whole = json.loads(whole.read_text())["drift"]["n_records"]
    assert json.loads(out.read_text())["drift"]["n_records"] in (n_whole - 1, n_whole)
