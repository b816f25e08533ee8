"""Records whose event time breaks the rule are named by id; command-line errors give
command-line advice (not the library's Python arguments)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk.cli import app
from spinerisk.schema import infer_schema
from spinerisk.targets import invalid_times, make_survival_target


def _records(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pid": [f"p{i:03d}" for i in range(n)],
            "age": rng.integers(50, 90, n).astype(float),
            "months": rng.uniform(1, 60, n).round(1),
            "died": rng.integers(0, 2, n),
        }
    )


def _endpoint(horizon_days: float = 365.25, eligibility: str | None = None) -> sr.Endpoint:
    return sr.Endpoint(
        name="death",
        description="Death.",
        kind="survival",
        event="died",
        time="months",
        time_unit="months",
        horizons=(horizon_days,),  # days, whatever the data's unit
        eligibility=eligibility,
    )


def _schema_and_endpoint(records: pd.DataFrame) -> tuple[sr.Schema, sr.Endpoint]:
    return infer_schema(records, id_column="pid"), _endpoint()


def test_invalid_times_is_the_rule_of_targets() -> None:
    t = [3.0, 0.0, -1.0, np.inf, np.nan, 1e-9]
    assert invalid_times(t).tolist() == [False, True, True, True, True, False]
    with pytest.raises(ValueError, match=r"got time=0.0 at position 1 \(1 such value"):
        make_survival_target([1, 0], [3.0, 0.0])


def test_time_zero_names_the_records_by_id_and_says_what_to_do() -> None:
    records = _records()
    records.loc[[4, 17], "months"] = 0.0
    schema, endpoint = _schema_and_endpoint(records)
    with pytest.raises(ValueError) as info:
        endpoint.labelled(records, schema)
    message = str(info.value)
    assert "Endpoint 'death': months must be finite and > 0 (months)" in message
    assert "2 record(s)" in message
    assert "pid=p004 (months=0.0), pid=p017 (months=0.0)" in message
    assert 'eligibility = "months > 0"' in message


def test_the_advised_eligibility_leaves_them_out_and_fits() -> None:
    records = _records()
    records.loc[[4, 17], "months"] = 0.0
    schema = infer_schema(records, id_column="pid")
    labelled = _endpoint(eligibility="months > 0").labelled(records, schema)
    assert labelled.mask.sum() == len(records) - 2
    assert (labelled.target["time"] > 0).all()


def test_many_bad_times_are_counted_not_all_listed() -> None:
    records = _records()
    records.loc[:9, "months"] = 0.0
    schema, endpoint = _schema_and_endpoint(records)
    with pytest.raises(ValueError, match=r"10 record\(s\) break this: .* and 5 more\."):
        endpoint.labelled(records, schema)


def test_cli_errors_give_command_line_advice(tmp_path) -> None:
    records = _records()
    runner = CliRunner()
    good = tmp_path / "good.csv"
    records.to_csv(good, index=False)
    drafted = runner.invoke(app, ["schema", "infer", str(good), "--id-column", "pid"])
    assert drafted.exit_code == 0, drafted.output
    schema_path = tmp_path / "schema.toml"
    schema_path.write_text(drafted.stdout)
    bad = records.copy()
    bad.loc[3, "age"] = -5.0
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = runner.invoke(app, ["validate", str(path), "--schema", str(schema_path)])
    assert result.exit_code == 2
    text = result.output
    assert "age=-5.0" in text and "Rerun with --rejects FILE" in text
    assert "on_invalid" not in text
    # the other commands: the same records through `explain` with a model of this schema
    schema = sr.load_schema(schema_path)
    model = sr.RiskModel(endpoint=_endpoint(), schema=schema, backend="linear").fit(records)
    bundle = tmp_path / "m.srb"
    sr.save(model, bundle)
    for command in (
        ["explain", "--model", str(bundle), "--input", str(path)],
        ["evaluate", "--model", str(bundle), "--input", str(path), "--validation", "internal"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, command
        assert "age=-5.0" in result.output, command
        assert "spinerisk validate FILE --rejects" in result.output, command
        assert "on_invalid" not in result.output, command
    # a column problem stops the file, so rejects cannot help (also with bad records:
    # the advice to write them with --rejects went round in a circle); the columns can
    extra = records.assign(ward="A")
    path = tmp_path / "extra.csv"
    extra.to_csv(path, index=False)
    both = tmp_path / "extra_and_bad.csv"
    bad.assign(ward="A").to_csv(both, index=False)
    for command in (
        ["validate", str(both), "--schema", str(schema_path), "--rejects", str(tmp_path / "r.csv")],
        [
            "score",
            "--model",
            str(bundle),
            "--input",
            str(both),
            "--output",
            str(tmp_path / "s.csv"),
            "--rejects",
            str(tmp_path / "r.csv"),
        ],
        ["validate", str(path), "--schema", str(schema_path), "--rejects", str(tmp_path / "r.csv")],
        [
            "score",
            "--model",
            str(bundle),
            "--input",
            str(path),
            "--output",
            str(tmp_path / "s.csv"),
        ],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        text = " ".join(result.output.split())
        assert "column 'ward' is not a field" in text, command
        assert "Fix the columns first" in text and "--mapping" in text, command
        assert "Rerun with --rejects" not in text and "validate FILE --rejects" not in text


def test_constant_risk_advice_fits_the_backend() -> None:
    records = _records()
    schema = infer_schema(records, id_column="pid")
    # horizons are days: 5 days is before the first event (1 month), every risk is 0
    early = _endpoint(horizon_days=5.0)
    with pytest.warns(sr.DataQualityWarning, match="same risk") as seen:
        sr.RiskModel(endpoint=early, schema=schema, backend="linear").fit(records)
    text = " ".join(str(w.message) for w in seen)
    assert "events occur before it" in text
    assert "use backend='auto' or 'linear'" not in text


def test_python_advice_is_given_as_command_line_options(tmp_path) -> None:
    """The library tells Python callers 'sep=' and 'model.fit_intervals(...)'; the
    command line names its own options instead."""
    semi = tmp_path / "semi.csv"
    semi.write_text("patient_id;age_years\nA;70\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(semi)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Pass --sep ';'" in text and "sep=';'" not in text
    tab = tmp_path / "tab.csv"
    tab.write_text("patient_id\tage_years\nA\t70\n", encoding="utf-8")
    text = " ".join(CliRunner().invoke(app, ["validate", str(tab)]).output.split())
    assert "Pass --sep '\\t'" in text and "sep='" not in text.replace("--sep '", "")
    records = _records()
    data = tmp_path / "records.csv"
    records.to_csv(data, index=False)
    schema, endpoint = _schema_and_endpoint(records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint=endpoint, schema=schema, backend="linear").fit(records)
    bundle = tmp_path / "m.srb"
    sr.save(model, bundle)
    args = ["score", "--model", bundle, "--input", data, "--output", tmp_path / "s.csv"]
    result = CliRunner().invoke(app, [*map(str, args), "--interval", "0.9"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "train the model with --intervals N" in text
    assert "fit_intervals" not in text
    # the Dask engine refuses a file with a malformed row: the CLI names its own option
    broken = tmp_path / "broken.csv"
    lines = data.read_text(encoding="utf-8").splitlines()
    broken.write_text("\n".join([*lines[:3], lines[3] + ",extra", *lines[4:]]) + "\n")
    args = ["score", "--model", bundle, "--input", broken, "--output", tmp_path / "d.csv"]
    result = CliRunner().invoke(app, [*map(str, args), "--engine", "dask", "--no-progress"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "--engine local" in text and "engine='local'" not in text


def test_train_with_rejects_keeps_them_when_the_fit_stops(tmp_path) -> None:
    """An invalid record is rejected, then a time of 0 stops the fit: the rejects file is
    still written, and the run says so."""
    records = _records()
    schema_path = tmp_path / "schema.toml"
    good = tmp_path / "good.csv"
    records.to_csv(good, index=False)
    drafted = CliRunner().invoke(app, ["schema", "infer", str(good), "--id-column", "pid"])
    assert drafted.exit_code == 0, drafted.output
    schema_path.write_text(drafted.stdout)
    endpoint_path = tmp_path / "death.toml"
    endpoint_path.write_text(
        'name = "death"\nkind = "survival"\ndescription = "Death."\nevent = "died"\n'
        'time = "months"\ntime_unit = "months"\nhorizons = [12]\n'
    )
    bad = records.copy()
    bad.loc[3, "age"] = -5.0  # refused by the schema: a reject
    bad.loc[7, "months"] = 0.0  # valid for the schema, refused by the endpoint: stops the fit
    data = tmp_path / "cohort.csv"
    bad.to_csv(data, index=False)
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(
        app,
        ["train", "--schema", str(schema_path), "--endpoint", str(endpoint_path), "--input",
         str(data), "--output", str(tmp_path / "m.srb"), "--backend", "linear", "--rejects",
         str(rejects)],
    )  # fmt: skip
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "pid=p007 (months=0.0)" in text
    assert f"1 rejected record(s) written to {rejects}" in text
    written = pd.read_csv(rejects)
    assert written["pid"].tolist() == ["p003"] and "age=-5.0" in written.loc[0, "reasons"]
    assert not (tmp_path / "m.srb").exists()
