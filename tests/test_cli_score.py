"""``spinerisk score`` and ``spinerisk train`` (typer CliRunner). Synthetic records only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import spinerisk as sr

typer_testing = pytest.importorskip("typer.testing")

from spinerisk.cli import app  # noqa: E402

runner = typer_testing.CliRunner()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "nonunion.srb"
    sr.RiskModel("nonunion", backend="linear").fit(sr.make_spine_cohort(400, seed=0)).save(path)
    return path


@pytest.fixture
def records_csv(tmp_path: Path) -> Path:
    records = sr.make_spine_cohort(12, seed=2)
    records.loc[4, "age_years"] = 300.0
    path = tmp_path / "records.csv"
    records.to_csv(path, index=False)
    return path


def test_score_prints_accounting_and_writes_outputs(tmp_path, bundle, records_csv):
    out, rej = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    result = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(records_csv), "--output", str(out)]
        + ["--rejects", str(rej), "--chunk-size", "5", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "rows in: 12 = scored: 11 + rejected: 1" in result.output
    scores = pd.read_csv(out)
    assert list(scores.columns[:3]) == ["patient_id", "risk_183d", "warnings"]
    assert len(scores) == 11
    assert pd.read_csv(rej)["row"].tolist() == [4]


def test_score_without_rejects_says_how_to_get_them(tmp_path, bundle, records_csv):
    result = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(records_csv)]
        + ["--output", str(tmp_path / "s.parquet"), "--no-progress"],
    )
    assert result.exit_code == 0
    assert "1 rows were rejected; pass --rejects FILE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{tmp}/missing.csv"], "No records file"),
        (["--input", "{tmp}/records.xlsx"], "unknown file type"),
        (["--model", "{tmp}/fake.srb"], "not a spinerisk bundle"),
        (["--mapping", "{tmp}/bad.toml"], "not fields of schema"),
        (["--output", "{tmp}/scores.txt"], "expected .parquet or .csv"),
        (["--engine", "spark"], "--engine must be 'local' or 'dask'"),
    ],
)
def test_score_bad_input_exits_2_without_output(tmp_path, bundle, records_csv, args, message):
    (tmp_path / "records.xlsx").write_bytes(b"PK")
    (tmp_path / "fake.srb").write_bytes(b"not a zip")
    (tmp_path / "bad.toml").write_text('[columns]\nage_years = "age_in_years"\n')
    options = {
        "--model": str(bundle),
        "--input": str(records_csv),
        "--output": str(tmp_path / "scores.parquet"),
    }
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        value = value.format(tmp=tmp_path)
        if flag in options:
            options[flag] = value
        else:
            extra += [flag, value]
    before = sorted(tmp_path.iterdir())
    argv = ["score", *[x for kv in options.items() for x in kv], *extra, "--no-progress"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert sorted(tmp_path.iterdir()) == before  # nothing written, no temp file left


def test_score_explain_adds_top_drivers(tmp_path, bundle, records_csv):
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(records_csv), "--output", str(out)]
        + ["--explain", "3", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert "top_drivers" in scores.columns
    drivers = scores["top_drivers"].str.split("; ")
    assert (drivers.map(len) == 3).all()
    assert drivers.map(lambda d: all(" pts" in part and "=" in part for part in d)).all()


def test_score_audit_log_lines_equal_scored_rows(tmp_path, bundle, records_csv):
    log = tmp_path / "audit.jsonl"
    result = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(records_csv)]
        + ["--output", str(tmp_path / "s.parquet"), "--audit-log", str(log), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    lines = log.read_text().splitlines()
    assert len(lines) == 11
    assert all('"source":"cli"' in line for line in lines)
    assert all('"hash":"sha256"' in line for line in lines)
    assert "unkeyed" in result.output  # the CLI says the hashes could be reversed by trial


def test_score_audit_key_comes_from_the_named_environment_variable(
    tmp_path, bundle, records_csv, monkeypatch
):
    base = ["score", "--model", str(bundle), "--input", str(records_csv), "--no-progress"]
    log = tmp_path / "keyed.jsonl"
    keyed = [*base, "--output", str(tmp_path / "k.parquet"), "--audit-log", str(log)]
    keyed += ["--audit-key-env", "SITE_AUDIT_KEY"]
    monkeypatch.delenv("SITE_AUDIT_KEY", raising=False)
    unset = runner.invoke(app, keyed)
    assert unset.exit_code == 2 and "SITE_AUDIT_KEY is not set" in unset.output
    assert not log.exists() and not (tmp_path / "k.parquet").exists()
    monkeypatch.setenv("SITE_AUDIT_KEY", "not-a-real-secret")
    result = runner.invoke(app, keyed)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 11 and {line["hash"] for line in lines} == {"hmac-sha256"}
    assert "unkeyed" not in result.output
    alone = [*base, "--output", str(tmp_path / "a.parquet"), "--audit-key-env", "SITE_AUDIT_KEY"]
    assert runner.invoke(app, alone).exit_code == 2  # a key without a log is a mistake


def test_help_comes_from_the_docstrings():
    for command, phrase in (
        ("score", "Score a records file in chunks with a saved model."),
        ("train", "Fit a risk model on a cohort file and save it as a bundle."),
    ):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert phrase in result.output


def test_train_saves_a_bundle_and_reports_the_backend(tmp_path):
    cohort = tmp_path / "cohort.parquet"
    sr.make_spine_cohort(400, seed=4).to_parquet(cohort)
    out = tmp_path / "m.srb"
    result = runner.invoke(
        app,
        ["train", "--input", str(cohort), "--endpoint", "nonunion", "--backend", "linear"]
        + ["--output", str(out), "--seed", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "backend 'linear' fitted on" in result.output
    assert "reason: backend='linear' was requested." in result.output
    model = sr.load(out)
    assert model.endpoint_.name == "nonunion" and model.random_state == 1


def test_train_synthetic_flag_travels_to_scores(tmp_path):
    """A CSV carries no synthetic label: --synthetic puts it in the bundle, and scoring
    with that bundle prints the SYNTHETIC banner."""
    cohort = tmp_path / "cohort.csv"
    sr.make_spine_cohort(400, seed=4).to_csv(cohort, index=False)
    base = ["train", "--input", str(cohort), "--backend", "linear"]
    for flag, name in (([], "plain.srb"), (["--synthetic"], "synthetic.srb")):
        result = runner.invoke(app, [*base, "--output", str(tmp_path / name), *flag])
        assert result.exit_code == 0, result.output
    assert sr.load(tmp_path / "plain.srb").reference_["synthetic"] is False
    assert sr.load(tmp_path / "synthetic.srb").reference_["synthetic"] is True
    for name, banner in (("plain.srb", False), ("synthetic.srb", True)):
        out = tmp_path / f"scores-{name}.csv"
        args = ["score", "--model", str(tmp_path / name), "--input", str(cohort)]
        result = runner.invoke(app, [*args, "--output", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        assert ("SYNTHETIC" in result.output) is banner


def test_train_invalid_records_exit_2_or_go_to_rejects(tmp_path):
    cohort = sr.make_spine_cohort(400, seed=4)
    cohort["sex"] = cohort["sex"].astype(object)
    cohort.loc[7, "sex"] = "X"
    src = tmp_path / "cohort.csv"
    cohort.to_csv(src, index=False)
    out = tmp_path / "m.srb"
    base = ["train", "--input", str(src), "--backend", "linear", "--output", str(out)]
    result = runner.invoke(app, base)
    assert result.exit_code == 2
    assert "sex='X' is not an allowed code" in result.stderr
    assert not out.exists()

    rej = tmp_path / "rejects.csv"
    result = runner.invoke(app, [*base, "--rejects", str(rej)])
    assert result.exit_code == 0, result.output
    assert "records in: 400 = valid: 399 + rejected: 1" in result.output
    assert pd.read_csv(rej)["row"].tolist() == [7]
    assert out.exists()


def test_train_bad_endpoint_exits_2(tmp_path):
    src = tmp_path / "cohort.parquet"
    sr.make_spine_cohort(50, seed=4).to_parquet(src)
    result = runner.invoke(
        app,
        [
            "train",
            "--input",
            str(src),
            "--endpoint",
            "mortality",
            "--output",
            str(tmp_path / "m.srb"),
        ],
    )
    assert result.exit_code == 2
    assert "mortality" in result.stderr
    assert not (tmp_path / "m.srb").exists()
