"""``spinerisk score`` and ``spinerisk train`` (typer CliRunner). Synthetic records only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
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


@pytest.mark.parametrize("rows", ["none", "all bad"])
def test_score_that_scores_nothing_exits_2_with_the_accounting(tmp_path, bundle, rows):
    """A file without records, or with every row rejected, is written and accounted for,
    and fails the command so that a scheduler does not take it for a success."""
    records = sr.make_spine_cohort(3, seed=2)
    if rows == "none":
        records = records.head(0)
    else:
        records["age_years"] = 300.0
    src, out, rej = tmp_path / "in.csv", tmp_path / "s.csv", tmp_path / "r.csv"
    records.to_csv(src, index=False)
    result = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(src), "--output", str(out)]
        + ["--rejects", str(rej), "--no-progress"],
    )
    assert result.exit_code == 2, result.output
    n = len(records)
    assert f"rows in: {n} = scored: 0 + rejected: {n}" in result.output
    expected = "in.csv has no records" if rows == "none" else "every one of the 3 rows"
    assert f"error: nothing was scored: {expected}" in result.stderr
    assert out.exists() and len(pd.read_csv(rej)) == n


def test_a_predictor_missing_from_every_record_is_named(tmp_path, bundle, records_csv):
    """An absent column scores every record as if the value were unknown: the run says
    so once, naming the column (each record's warnings name it too)."""
    frame = pd.read_csv(records_csv).drop(columns=["hu_l1"])
    frame = pd.concat([frame] * 5, ignore_index=True)  # 50+: validation warns of empty columns
    frame["patient_id"] = [f"P{i}" for i in range(len(frame))]
    frame["tscore_min"] = float("nan")
    src, out = tmp_path / "no_hu.csv", tmp_path / "s.csv"
    frame.to_csv(src, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(
            app,
            ["score", "--model", str(bundle), "--input", str(src), "--output", str(out)]
            + ["--rejects", str(tmp_path / "r.csv"), "--no-progress"],
        )
    assert result.exit_code == 0, result.output
    # said once, by the command: no Python warning per chunk with its source line
    assert not [w for w in caught if "entirely missing" in str(w.message)]
    model = sr.load(bundle)
    gone = [p for p in model.endpoint_.predictors(model.schema_) if p in ("hu_l1", "tscore_min")]
    text = " ".join(result.stderr.split())
    assert f"warning: {', '.join(gone)} missing in every record" in text
    full = runner.invoke(
        app,
        ["score", "--model", str(bundle), "--input", str(records_csv), "--output", str(out)]
        + ["--rejects", str(tmp_path / "r.csv"), "--no-progress"],
    )
    assert "missing in every record" not in full.stderr


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


# -- output locations (issue 13, item 5) -----------------------------------------------------
def _score_argv(bundle, records_csv, output, *extra):
    return ["score", "--model", str(bundle), "--input", str(records_csv)] + [
        "--output",
        str(output),
        *extra,
        "--no-progress",
    ]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("which", ["output", "rejects"])
def test_an_output_path_that_is_a_folder_exits_2_and_publishes_nothing(
    tmp_path, bundle, records_csv, which
):
    out, rej = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    (out if which == "output" else rej).mkdir()
    result = runner.invoke(app, _score_argv(bundle, records_csv, out, "--rejects", str(rej)))
    assert result.exit_code == 2, result.output
    assert "is a folder" in result.stderr and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (out.is_dir() or not out.exists()) and (rej.is_dir() or not rej.exists())
    assert _leftovers(tmp_path) == []


def test_an_unwritable_output_folder_exits_2_before_scoring(
    tmp_path, bundle, records_csv, monkeypatch
):
    import spinerisk.scoring._file as file_mod

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(file_mod.tempfile, "mkdtemp", refuse)
    result = runner.invoke(app, _score_argv(bundle, records_csv, tmp_path / "s.csv"))
    assert result.exit_code == 2, result.output
    assert "Cannot write the output folder" in result.stderr
    assert "Permission denied" in result.stderr and "Traceback" not in result.output


def test_scores_and_rejects_are_published_together_or_not_at_all(tmp_path):
    """The second rename fails (its target became a folder meanwhile): the first target
    gets its previous content back."""
    from spinerisk.scoring._file import _Staging

    scores, rejects = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    scores.write_text("previous scores\n")
    staging = _Staging()
    new_scores = staging.tmp_for(scores, "output")
    new_scores.write_text("new scores\n")
    new_rejects = staging.tmp_for(rejects, "rejects")
    new_rejects.write_text("new rejects\n")
    rejects.mkdir()
    (rejects / "x").write_text("a folder in the way")
    with pytest.raises(sr.RecordsReadError, match="Cannot write the rejects file"):
        staging.publish([(new_scores, scores, "output"), (new_rejects, rejects, "rejects")])
    assert scores.read_text() == "previous scores\n"
    staging.cleanup()
    assert _leftovers(tmp_path) == []
    # and when the first target did not exist, it is removed again
    scores.unlink()
    staging = _Staging()
    a, b = staging.tmp_for(scores, "output"), staging.tmp_for(rejects, "rejects")
    with pytest.raises(sr.RecordsReadError):
        staging.publish([(a, scores, "output"), (b, rejects, "rejects")])
    staging.cleanup()
    assert not scores.exists() and _leftovers(tmp_path) == []


def test_temporary_files_are_private(tmp_path, bundle, records_csv, monkeypatch):
    import spinerisk.scoring._file as file_mod

    seen = []
    publish = file_mod._publish

    def spy(writers, staging):
        for w in writers:
            seen.append((w.tmp.stat().st_mode & 0o777, w.tmp.parent.stat().st_mode & 0o777))
        publish(writers, staging)

    monkeypatch.setattr(file_mod, "_publish", spy)
    rej = tmp_path / "rejects.csv"
    result = runner.invoke(
        app, _score_argv(bundle, records_csv, tmp_path / "s.csv", "--rejects", str(rej))
    )
    assert result.exit_code == 0, result.output
    assert seen == [(0o600, 0o700), (0o600, 0o700)]
    assert _leftovers(tmp_path) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tmp_path, bundle, records_csv):
    from spinerisk.scoring._file import _host

    stale = tmp_path / f".spinerisk-{_host()}-{_dead_pid()}-abc123.tmp"
    stale.mkdir(mode=0o700)
    (stale / "scores.csv.x1y2z3").write_text("patient_id,risk_183d\nSYN-1,0.2\n")
    legacy = tmp_path / ".scores.csv.ab12cd34.tmp"  # the layout of earlier versions
    legacy.write_text("patient_id,risk_183d\nSYN-1,0.2\n")
    alive = tmp_path / f".spinerisk-{_host()}-{os.getpid()}-live99.tmp"
    alive.mkdir()  # a run still going (this process): left alone
    result = runner.invoke(app, _score_argv(bundle, records_csv, tmp_path / "scores.csv"))
    assert result.exit_code == 0, result.output
    assert _leftovers(tmp_path) == [alive.name]


@pytest.fixture(scope="module")
def big_and_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """40 000 records (a run still going when it is stopped) and 5 of them, written once
    for the module: the tests only read them."""
    folder = tmp_path_factory.mktemp("terminated")
    big, small = folder / "big.csv", folder / "small.csv"
    cohort = sr.make_spine_cohort(400, seed=5)
    pd.concat([cohort] * 100, ignore_index=True).assign(
        patient_id=[f"SYN-{i:06d}" for i in range(40_000)]
    ).to_csv(big, index=False)
    cohort.head(5).to_csv(small, index=False)
    return big, small


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_terminated_run_leaves_no_patient_data_behind(tmp_path, bundle, big_and_small, sig):
    """SIGTERM: the run removes its temporary files on the way out. SIGKILL cannot be
    caught: the next run removes what it left."""
    big, small = big_and_small
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    argv = [sys.executable, "-c", "from spinerisk.cli import main; main()"]
    argv += _score_argv(bundle, big, out, "--chunk-size", "500")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    staged = []
    while time.monotonic() < deadline and proc.poll() is None:
        staged = [p for p in out.parent.glob(".spinerisk-*") if any(p.iterdir())]
        if staged and any(f.stat().st_size > 0 for f in staged[0].iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert list(out.parent.iterdir()) == []
        return
    assert staged and staged[0].exists()  # what SIGKILL leaves
    result = runner.invoke(app, _score_argv(bundle, small, out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv"]


def test_train_rejects_path_that_is_a_folder_exits_2_without_leftovers(tmp_path):
    cohort = sr.make_spine_cohort(300, seed=4)
    cohort["sex"] = cohort["sex"].astype(object)
    cohort.loc[7, "sex"] = "X"
    src = tmp_path / "cohort.csv"
    cohort.to_csv(src, index=False)
    (tmp_path / "rejects.csv").mkdir()
    argv = ["train", "--input", str(src), "--backend", "linear"]
    argv += ["--output", str(tmp_path / "m.srb"), "--rejects", str(tmp_path / "rejects.csv")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "Cannot write the rejects file" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _leftovers(tmp_path) == [] and list((tmp_path / "rejects.csv").iterdir()) == []
