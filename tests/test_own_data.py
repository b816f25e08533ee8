"""A user's own data, end to end, through the command line alone (issue 12).

Four real public data sets with no spine field (``tests/data/real``, each with its
README): GLOW500 (fracture within a year; ``fracscore`` an existing score declared as a
comparator), whas500 (survival, time in days), rott2 (survival, time in **months**) and
kyphosis (81 rows, no id column, a text outcome without a horizon). For each: ``schema
infer`` drafts a schema, the user edits roles, ``schema check`` passes, then ``train``,
``evaluate``, ``report``, ``explain``, ``score`` (rows in = scored + rejected), ``serve``
(one request on 127.0.0.1) and ``monitor`` run on the bundle; Python gives the same
numbers as the command line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

import spinerisk as sr  # noqa: E402
from spinerisk.cli import app  # noqa: E402
from spinerisk.endpoints import TIME_UNITS  # noqa: E402
from spinerisk.evaluation._format import horizon_label  # noqa: E402
from spinerisk.schema._files import dump_toml  # noqa: E402

DATA = Path(__file__).parent / "data" / "real"
SPINE_ONLY = ("age_years", "hu_l1", "patient_id", "nonunion")

CASES: dict[str, dict[str, Any]] = {
    "glow500": {
        "file": "glow500/glow500.csv",
        "roles": {"fracture": "outcome", "fracscore": "comparator"},
        "endpoint": {
            "name": "fracture_1y",
            "kind": "binary",
            "description": "Any fracture in the first year of follow-up (GLOW).",
            "event": "fracture",
            "time_unit": "years",
            "horizons": [1],
            "comparators": ["fracscore"],
        },
        "risk": ["risk_1y"],
        "bad": {"age": "250"},
    },
    "whas500": {
        "file": "whas500/whas500.csv",
        "roles": {"event": "outcome_event", "time": "outcome_time"},
        "endpoint": {
            "name": "death",
            "kind": "survival",
            "description": "Death after acute myocardial infarction (WHAS).",
            "event": "event",
            "time": "time",
            "time_unit": "days",
            "horizons": [365, 1095],
        },
        "risk": ["risk_365d", "risk_1095d"],
        "bad": {"num_age": "-4"},
    },
    "rott2": {
        "file": "rott2/rott2.csv",
        "roles": {"event": "outcome_event", "time": "outcome_time"},
        "endpoint": {
            "name": "relapse_or_death",
            "kind": "survival",
            "description": "Relapse or death after primary breast cancer surgery (Rotterdam).",
            "event": "event",
            "time": "time",
            "time_unit": "months",
            "horizons": [60, 120],
        },
        "risk": ["risk_60mo", "risk_120mo"],
        "bad": {"fac_meno": "unknown-code"},
    },
    "kyphosis": {
        "file": "kyphosis/kyphosis.csv",
        "roles": {"Kyphosis": "outcome"},
        "endpoint": {
            "name": "kyphosis_after_surgery",
            "kind": "binary",
            "description": "Kyphosis present after corrective spinal surgery.",
            "event": "Kyphosis",
            "positive": "present",
        },
        "risk": ["risk"],
        "bad": {"Age": "not a number"},
    },
}


def _run(args: list[str]) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Infer, edit and check the schema, write the endpoint file, train a bundle."""
    name = request.param
    case = CASES[name]
    tmp = tmp_path_factory.mktemp(name)
    data = DATA / case["file"]

    inferred = _run(["schema", "infer", data])
    assert inferred.exit_code == 0, inferred.output
    draft = tomllib.loads(inferred.stdout)
    for field in draft["fields"]:  # the user's edit: roles of outcome and comparator
        if field["name"] in case["roles"]:
            field["role"] = case["roles"][field["name"]]
    schema_file = tmp / "schema.toml"
    schema_file.write_text(dump_toml(draft), encoding="utf-8")
    endpoint_file = tmp / "endpoint.toml"
    endpoint_file.write_text(dump_toml(case["endpoint"]), encoding="utf-8")

    checked = _run(["schema", "check", schema_file])
    assert checked.exit_code == 0, checked.output
    assert _run(["schema", "check", endpoint_file, "--schema", schema_file]).exit_code == 0
    checked = _run(["validate", data, "--schema", schema_file])
    assert checked.exit_code == 0 and "records valid" in checked.stdout, checked.output
    assert _run(["validate", data]).exit_code == 2  # not the spine schema's fields

    bundle = tmp / "model.srb"
    result = _run(
        [
            "train",
            "--schema",
            schema_file,
            "--endpoint",
            endpoint_file,
            "--input",
            data,
            "--output",
            bundle,
            "--backend",
            "linear",
        ]
    )
    assert result.exit_code == 0, result.output
    return {"name": name, "case": case, "tmp": tmp, "data": data, "bundle": bundle,
            "schema": schema_file, "endpoint": endpoint_file}  # fmt: skip


def test_schema_infer_finds_the_identifier_or_generates_one(trained: Any) -> None:
    schema = sr.load_schema(trained["schema"])
    columns = list(pd.read_csv(trained["data"], nrows=0).columns)
    assert all(c in schema for c in columns)
    assert not set(SPINE_ONLY) & set(schema.names)
    if trained["name"] == "kyphosis":  # no id column: the rows name the records
        assert schema[schema.id_field].generated
    else:
        assert schema.id_field in ("sub_id", "pid")


def test_bundle_holds_the_users_schema_and_endpoint(trained: Any) -> None:
    model = sr.load(trained["bundle"])
    assert model.schema_ == sr.load_schema(trained["schema"])
    assert model.endpoint_ == sr.load_endpoint(trained["endpoint"], model.schema_)
    predictors = model.endpoint_.predictors(model.schema_)
    assert not set(model.endpoint_.outcome_columns) & set(predictors)
    if trained["name"] == "glow500":  # the existing score is a comparator, never a predictor
        assert "fracscore" not in predictors
        est = model.estimator_
        est = (
            est.calibrated_classifiers_[0].estimator
            if hasattr(est, "calibrated_classifiers_")
            else est
        )
        names = [str(n) for n in est.named_steps["features"].get_feature_names_out()]
        assert "age" in names and not any(n.startswith(("fracscore", "fracture")) for n in names)


def test_evaluate_and_report_use_the_models_fields(trained: Any) -> None:
    tmp = trained["tmp"]
    report_json = tmp / "evaluation.json"
    result = _run(
        ["evaluate", "--model", trained["bundle"], "--input", trained["data"],
         "--validation", "internal", "--bootstrap", "10", "--json", report_json]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(report_json.read_text())
    # the report's notes (why a metric is n/a, small samples) are on the terminal too
    stdout = " ".join(result.stdout.split())
    for note in summary["notes"]:
        assert f"note: {' '.join(note.split())}" in stdout
    metrics = {m["metric"] for m in summary["metrics"]}
    assert (
        ("auroc" in metrics)
        if trained["case"]["endpoint"]["kind"] == "binary"
        else ("harrell_c" in metrics or "uno_c" in metrics)
    )
    html = tmp / "report.html"
    result = _run(
        ["report", "--model", trained["bundle"], "--input", trained["data"],
         "--validation", "internal", "--bootstrap", "10", "--output", html]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    model = sr.load(trained["bundle"])
    first = model.endpoint_.predictors(model.schema_)[0]
    assert f"{first}" in text  # Table 1 and missing values show the model's own fields
    assert not model.schema_.by_role("treatment")  # so no word of treatment confounding
    assert "confounded by indication" not in text
    if trained["case"]["endpoint"]["kind"] != "binary":  # reverse Kaplan-Meier, own unit
        from lifelines import KaplanMeierFitter

        frame = pd.read_csv(trained["data"])
        unit = trained["case"]["endpoint"]["time_unit"]
        km = KaplanMeierFitter().fit(frame["time"], frame["event"] == 0)
        median = km.median_survival_time_  # whole numbers from 100 on, not 1.3e+03
        shown = f"{median:,.0f}" if median >= 100 else f"{median:.3g}"
        line = f"Median follow-up (reverse Kaplan-Meier): {shown} {unit}."
        assert line in text
        # pmsampsize works in years whatever the endpoint's unit: the inputs say so
        assert "timepoint and meanfup in years" in text and "timepoint=" in text
    # an outcome without a horizon (kyphosis) leaves no "at" or "(horizon )" dangling
    assert re.search(r"\bat\s*<", text) is None and "(horizon )" not in text
    assert not any(f">{f}" in text for f in SPINE_ONLY)


def test_explain_names_the_models_fields(trained: Any) -> None:
    head = trained["tmp"] / "head.csv"
    pd.read_csv(trained["data"], dtype=str, keep_default_na=False).head(5).to_csv(head, index=False)
    out = trained["tmp"] / "explained.csv"
    result = _run(["explain", "--model", trained["bundle"], "--input", head, "--output", out])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 5
    model = sr.load(trained["bundle"])
    predictors = model.endpoint_.predictors(model.schema_)
    assert any(p in " ".join(map(str, table.columns)) for p in predictors)


def _with_bad_rows(trained: Any) -> Path:
    frame = pd.read_csv(trained["data"], dtype=str, keep_default_na=False)
    bad = frame.head(2).copy()
    for column, value in trained["case"]["bad"].items():
        bad[column] = value
    sid = sr.load_schema(trained["schema"]).id_field
    if sid in bad.columns:
        bad[sid] = ["bad-1", "bad-2"]
    path = trained["tmp"] / "to_score.csv"
    pd.concat([frame, bad], ignore_index=True).to_csv(path, index=False)
    return path


def test_score_accounts_for_every_row_and_matches_python(trained: Any) -> None:
    to_score = _with_bad_rows(trained)
    n_in = len(pd.read_csv(to_score, dtype=str))
    scores, rejects = trained["tmp"] / "scores.csv", trained["tmp"] / "rejects.csv"
    result = _run(
        ["score", "--model", trained["bundle"], "--input", to_score,
         "--output", scores, "--rejects", rejects]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sid = sr.load_schema(trained["schema"]).id_field
    scored, rejected = pd.read_csv(scores, dtype={sid: str}), pd.read_csv(rejects)
    assert len(scored) + len(rejected) == n_in
    assert len(rejected) == 2 and rejected["reasons"].str.len().gt(0).all()
    assert [c for c in scored.columns if c.startswith("risk")] == trained["case"]["risk"]

    # the same model fitted in Python from the same files gives the same risks
    schema = sr.load_schema(trained["schema"])
    endpoint = sr.load_endpoint(trained["endpoint"], schema)
    records = sr.read_records(trained["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint, backend="linear", schema=schema).fit(records)
        python = model.predict_risk(records)
    cli = scored.set_index(sid).loc[[str(i) for i in python.index]]
    for column in trained["case"]["risk"]:
        np.testing.assert_allclose(cli[column].to_numpy(), python[column].to_numpy(), rtol=1e-12)


def test_serve_answers_one_request_on_localhost(trained: Any) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "spinerisk"), "serve", "--model", str(trained["bundle"]),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to 30 s and more, polled often: start-up is the cost
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            proc.kill()
            pytest.fail(f"the server did not start: {proc.stdout.read().decode()[-2000:]}")
        info = json.load(urllib.request.urlopen(f"{base}/v1/model", timeout=5))
        model = sr.load(trained["bundle"])
        assert info["fields"] == [model.id_field_, *model.endpoint_.predictors(model.schema_)]
        row = pd.read_csv(trained["data"]).iloc[0]
        typed = sr.validate(pd.DataFrame([row]), model.schema_)
        record = {
            f: (None if pd.isna(typed[f].iloc[0]) else typed[f].iloc[0].item()
                if hasattr(typed[f].iloc[0], "item") else typed[f].iloc[0])
            for f in info["fields"] if f in typed.columns
        }  # fmt: skip
        if model.schema_[model.id_field_].generated:
            record[model.id_field_] = "row-1"
        request = urllib.request.Request(
            f"{base}/v1/predict",
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.load(urllib.request.urlopen(request, timeout=10))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            expected = model.predict_risk(typed)
        got = answer["predictions"][0]["risk"]
        for column in trained["case"]["risk"]:
            key = column[len("risk_") :] if column != "risk" else "outcome"
            assert got[key] == pytest.approx(float(expected[column].iloc[0]), rel=1e-9)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    said = proc.stdout.read().decode()  # real records: no synthetic label, no validity claim
    assert "SYNTHETIC" not in said and "has not been clinically validated" in said, said


def test_monitor_reads_the_bundles_reference(trained: Any) -> None:
    out = trained["tmp"] / "monitor.json"
    result = _run(
        ["monitor", "--model", trained["bundle"], "--input", trained["data"],
         "--json", out, "--n-bootstrap", "0"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["alert"] == "none"  # the training data themselves: nothing drifted
    model = sr.load(trained["bundle"])
    unit = model.endpoint_.time_unit
    assert summary["model"]["time_unit"] == unit
    stated = list(model.endpoint_.horizons)  # the endpoint file's: none for kyphosis
    assert summary["model"]["horizon_labels"] == [horizon_label(h, unit) for h in stated]
    assert summary["model"]["horizon_days"] == stated
    assert summary["model"]["horizons"] == [model.endpoint_.in_unit(h) for h in stated]


def test_months_are_not_read_as_days() -> None:
    """rott2's times are months: a 60-month horizon is 1826 days, not 60."""
    from spinerisk.endpoints import endpoint_from_dict

    endpoint = endpoint_from_dict(CASES["rott2"]["endpoint"])
    assert endpoint.horizons == (60 * 365.25 / 12, 120 * 365.25 / 12)
    assert endpoint.risk_column(endpoint.horizons[0]) == "risk_60mo"
    frame = pd.DataFrame({"event": [1, 0], "time": [12.0, 24.0]})
    y = endpoint.target(frame)
    np.testing.assert_allclose(y["time"], [365.25, 730.5])


def test_train_signs_the_bundle_and_load_verifies_it(tmp_path, monkeypatch):
    data = DATA / "glow500" / "glow500.csv"
    schema = tmp_path / "s.toml"
    schema.write_text(_run(["schema", "infer", data]).stdout, encoding="utf-8")
    endpoint = tmp_path / "e.toml"
    endpoint.write_text(dump_toml(CASES["glow500"]["endpoint"]), encoding="utf-8")
    monkeypatch.setenv("SPINERISK_TEST_KEY", "k" * 40)
    bundle = tmp_path / "signed.srb"
    result = _run(
        ["train", "--schema", schema, "--endpoint", endpoint, "--input", data,
         "--output", bundle, "--backend", "linear", "--sign-key-env", "SPINERISK_TEST_KEY"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sr.load(bundle, verify_key_env="SPINERISK_TEST_KEY").schema_.name == "glow500"
    monkeypatch.setenv("SPINERISK_TEST_KEY", "x" * 40)
    with pytest.raises(sr.ArtifactError):
        sr.load(bundle, verify_key_env="SPINERISK_TEST_KEY")


def _site_extract(trained: Any) -> tuple[Path, Path]:
    """The data as another site sends them: its own name for the first predictor and
    every code of the first category field (or of the binary outcome) spelled its way,
    with a mapping back onto the model's schema."""
    model = sr.load(trained["bundle"])
    schema = model.schema_
    frame = pd.read_csv(trained["data"], dtype=str, keep_default_na=False)
    first = model.endpoint_.predictors(schema)[0]
    mapping: dict[str, Any] = {"columns": {f"Site {first}": first}}
    frame = frame.rename(columns={first: f"Site {first}"})
    coded = next((f.name for f in schema.fields if f.dtype == "category" and f.name in frame), None)
    if coded is not None:
        codes = {str(c): f"site-{c}" for c in schema[coded].categories or ()}
        frame[coded] = frame[coded].map(lambda v: codes.get(v, v))
        mapping["values"] = {coded: {site: code for code, site in codes.items()}}
    path = trained["tmp"] / "site.csv"
    frame.to_csv(path, index=False)
    mapping_file = trained["tmp"] / "site_mapping.toml"
    mapping_file.write_text(dump_toml(mapping), encoding="utf-8")
    return path, mapping_file


def test_every_command_maps_a_site_extract_onto_the_models_schema(trained: Any) -> None:
    """--mapping means the model's schema in every command that reads records, not the
    spine schema (a site's own names and codes, then the same numbers as unmapped)."""
    # a small site's update report repeats the whole update on each optimism resample
    # (--optimism, 20 by default): 4 write the same page, whose horizon labels and the
    # command's reading of the mapped extract are what is checked here
    site, mapping = _site_extract(trained)
    tmp, bundle = trained["tmp"], trained["bundle"]
    mapped = ["--mapping", mapping]
    # explain writes its sentences record by record (seconds per thousand records): the
    # first 100 rows of the extract carry the same renamed column and recoded values
    site_head = tmp / "site_head.csv"
    pd.read_csv(site, dtype=str, keep_default_na=False).head(100).to_csv(site_head, index=False)
    runs = {
        "validate": ["validate", site, "--model", bundle, *mapped],
        "evaluate": ["evaluate", "--model", bundle, "--input", site, "--validation",
                     "internal", "--bootstrap", "1", "--json", tmp / "site_eval.json", *mapped],
        "report": ["report", "--model", bundle, "--input", site, "--validation", "internal",
                   "--bootstrap", "1", "--output", tmp / "site_report.html", *mapped],
        "explain": ["explain", "--model", bundle, "--input", site_head, "--output",
                    tmp / "site_explained.csv", *mapped],
        "score": ["score", "--model", bundle, "--input", site, "--output",
                  tmp / "site_scores.csv", "--rejects", tmp / "site_rejects.csv", *mapped],
        "monitor": ["monitor", "--model", bundle, "--input", site, "--json",
                    tmp / "site_monitor.json", "--n-bootstrap", "0", *mapped],
        "update": ["update", "--model", bundle, "--input", site, "--output",
                   tmp / "site_updated.srb", "--method", "intercept", "--report",
                   tmp / "site_update.html", "--bootstrap", "2", "--optimism", "4",
                   *mapped],
    }  # fmt: skip
    for command, args in runs.items():
        result = _run(args)
        assert result.exit_code in (0, 10, 11), (command, result.output)
        assert "spine-ovf" not in result.output, (command, result.output)
    plain = _run(["evaluate", "--model", bundle, "--input", trained["data"], "--validation",
                  "internal", "--bootstrap", "1", "--json", tmp / "plain_eval.json"])  # fmt: skip
    assert plain.exit_code == 0, plain.output
    site_eval = json.loads((tmp / "site_eval.json").read_text())["metrics"]
    plain_eval = json.loads((tmp / "plain_eval.json").read_text())["metrics"]
    assert site_eval == plain_eval
    scores = pd.read_csv(tmp / "site_scores.csv")
    assert len(scores) == len(pd.read_csv(site))
    # the update report shows horizons in the endpoint's unit (rott2: 60mo, not 1826d)
    model = sr.load(bundle)
    page = (tmp / "site_update.html").read_text(encoding="utf-8")
    for h in model.horizons_:
        label = horizon_label(h, model.endpoint_.time_unit)
        assert label == "" or f">{label}<" in page, label
        if model.endpoint_.time_unit != "days":
            assert f">{horizon_label(h)}<" not in page


def _competing_variant(codes: dict[int, int], censored: int, event: int, seed: int = 0) -> Any:
    """A competing-risks extract of the synthetic cohort with its codes spelled another
    way (``codes``: the cohort's 0/1/2 -> the site's), and a linear model fitted on it."""
    from spinerisk.endpoints import Endpoint
    from spinerisk.schema import FieldSpec, Schema

    cohort = sr.make_spine_cohort(1500, seed=3)
    frame = cohort[["patient_id", "age_years", "hu_l1", "fx_event", "fx_time_days"]].copy()
    rng = np.random.default_rng(seed)
    site = frame["fx_event"].astype(int).map(codes).to_numpy()
    if 3 in codes.values() and 4 in codes.values():  # two competing causes: split deaths
        deaths = site == codes[2]
        site[deaths & (rng.random(len(site)) < 0.5)] = 4
    frame["fx_event"] = site
    schema = Schema(
        (
            FieldSpec("patient_id", "string", "Record id.", role="id", unique=True, nullable=False),
            FieldSpec("age_years", "float", "Age.", unit="years", min=0, max=120),
            FieldSpec("hu_l1", "float", "L1 attenuation.", unit="HU", min=-100, max=500),
            FieldSpec("fx_event", "int", "Site event code.", role="outcome_event", min=0, max=9),
            FieldSpec("fx_time_days", "float", "Follow-up.", unit="days", min=0,
                      max=40000, role="outcome_time"),
        ),
        name="site",
    )  # fmt: skip
    endpoint = Endpoint(
        name="refracture", kind="competing", description="SYNTHETIC site coding test.",
        event="fx_event", time="fx_time_days", horizons=(365.25, 730.5),
        eligible_treatments=None, include_treatment=False, censor_code=censored,
        event_of_interest=event,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint, backend="linear", schema=schema).fit(frame)
        return model, model.predict_risk(frame.drop(columns=["fx_event", "fx_time_days"]))


def test_competing_codes_other_than_0_1_2_mean_the_same_model() -> None:
    """'Every other code is a competing event': a site's coding (1 event, 2 censored,
    3 other death, as in MASS::Melanoma) or two competing codes give the same model as
    0/1/2 (the competing codes are one competing event for the models)."""
    _, canonical = _competing_variant({0: 0, 1: 1, 2: 2}, censored=0, event=1)
    _, melanoma = _competing_variant({0: 2, 1: 1, 2: 3}, censored=2, event=1)
    _, two_causes = _competing_variant({0: 0, 1: 1, 2: 3, 3: 4}, censored=0, event=1)
    pd.testing.assert_frame_equal(melanoma, canonical)
    pd.testing.assert_frame_equal(two_causes, canonical)
    model, death = _competing_variant({0: 0, 1: 2, 2: 1}, censored=0, event=2)  # interest 2
    pd.testing.assert_frame_equal(death, canonical)
    # the explanation names this endpoint's model, not the spine's "fracture" one
    records = sr.make_spine_cohort(5, seed=3)[["patient_id", "age_years", "hu_l1"]]
    explanation = model.explain(records, horizon=365.25)
    assert explanation.method.endswith("cause-specific model of refracture"), explanation.method
    # no treatment field is read: the note does not speak of treatment confounding
    assert explanation.note == "Contributions describe the model, not causes."


def test_a_competing_event_of_interest_outside_1_and_2_is_refused_with_the_fix() -> None:
    from spinerisk.endpoints import endpoint_from_dict

    spec = {"name": "e", "kind": "competing", "description": "d", "event": "status",
            "time": "t", "horizons": [1.0], "event_codes": {"censored": 0, "event": 3}}  # fmt: skip
    with pytest.raises(ValueError, match=r"event of interest is code 1 or 2.*\[values\.status\]"):
        endpoint_from_dict(spec)


def test_text_event_codes_are_refused_with_the_mapping_named() -> None:
    """An endpoint file coding the outcome as text (``censored = "alive"``) gets every
    bad key named and the fix, not Python's bare ``'alive'``."""
    from spinerisk.endpoints import endpoint_from_dict
    from spinerisk.schema._files import SchemaFileError

    spec = {"name": "e", "kind": "competing", "description": "d", "event": "status",
            "time": "t", "horizons": [1.0],
            "event_codes": {"censored": "alive", "event": "cvd"}}  # fmt: skip
    with pytest.raises(SchemaFileError) as raised:
        endpoint_from_dict(spec)
    text = str(raised.value)
    for key, value in (("censored", "alive"), ("event", "cvd")):
        assert f"event_codes.{key}: must be a whole-number code" in text
        assert f"got {value!r}" in text
    assert "[values.<column>]" in text
    with pytest.raises(SchemaFileError, match=r"event_codes\.event: .*got True"):
        endpoint_from_dict({**spec, "event_codes": {"censored": 0, "event": True}})


def test_schema_infer_gives_the_mapping_for_renamed_columns_and_finds_a_camelcase_id(
    tmp_path: Path,
) -> None:
    """Columns whose names are not field names are renamed in the draft; the draft
    carries the mapping that reads the file with them, and says so on stderr. A unique
    ``PatientNo`` is the identifier (camelCase words, as ``patient_no``)."""
    frame = pd.read_csv(DATA / "kyphosis" / "kyphosis.csv", dtype=str)
    frame = frame.rename(columns={"Age": "Age (months)", "Number": "Number.Vert"})
    frame.insert(0, "PatientNo", [f"P{i}" for i in range(len(frame))])
    data = tmp_path / "awkward.csv"
    frame.to_csv(data, index=False)
    drafted = _run(["schema", "infer", data])
    assert drafted.exit_code == 0, drafted.output
    assert "'Age (months)' -> Age_months" in drafted.stderr
    schema_file = tmp_path / "awkward.toml"
    schema_file.write_text(drafted.stdout, encoding="utf-8")
    assert sr.load_schema(schema_file).id_field == "PatientNo"
    block = drafted.stdout.split("# [columns]\n", 1)[1].split("\n\n", 1)[0]
    mapping = tmp_path / "mapping.toml"
    lines = [line.removeprefix("# ") for line in block.splitlines()]
    mapping.write_text("\n".join(["[columns]", *lines]) + "\n", encoding="utf-8")
    assert tomllib.loads(mapping.read_text())["columns"] == {
        "Age (months)": "Age_months",
        "Number.Vert": "Number_Vert",
    }
    assert _run(["validate", data, "--schema", schema_file]).exit_code == 2
    checked = _run(["validate", data, "--schema", schema_file, "--mapping", mapping])
    assert checked.exit_code == 0 and "81 records valid" in checked.stdout, checked.output


def test_records_left_out_are_named_with_their_reason(tmp_path: Path) -> None:
    """A record without its time or event is not used to fit or evaluate: train and
    evaluate say which records, by id, and why (before: only a count)."""
    case = CASES["whas500"]
    frame = pd.read_csv(DATA / case["file"])
    frame.loc[[3, 9], "time"] = np.nan
    frame.loc[7, "event"] = np.nan
    data = tmp_path / "gaps.csv"
    frame.to_csv(data, index=False)
    drafted = tomllib.loads(_run(["schema", "infer", data]).stdout)
    for field in drafted["fields"]:
        if field["name"] in case["roles"]:
            field["role"] = case["roles"][field["name"]]
    schema_file, endpoint_file = tmp_path / "schema.toml", tmp_path / "endpoint.toml"
    schema_file.write_text(dump_toml(drafted), encoding="utf-8")
    endpoint_file.write_text(dump_toml(case["endpoint"]), encoding="utf-8")
    bundle = tmp_path / "m.srb"
    result = _run(["train", "--schema", schema_file, "--endpoint", endpoint_file, "--input",
                   data, "--output", bundle, "--backend", "linear"])  # fmt: skip
    assert result.exit_code == 0, result.output
    pids = frame["pid"].astype(str)
    assert "3 records not used:" in result.stdout
    assert f"2 time is missing (pid: {pids[3]}, {pids[9]})" in result.stdout
    assert f"1 event is missing (pid: {pids[7]})" in result.stdout
    model = sr.load(bundle)
    report = sr.evaluate(model, frame, n_bootstrap=1, explain=False)
    note = next(n for n in report.notes if n.startswith("Records not evaluated"))
    assert f"2 time is missing (pid: {pids[3]}, {pids[9]})" in note
    reasons = model.endpoint_.exclusions(sr.validate(frame, model.schema_), model.schema_)
    assert (reasons != "").sum() == 3 and reasons[7] == "event is missing"


def test_monitor_labels_without_a_date_field_say_how_to_declare_one(trained: Any) -> None:
    labels = trained["tmp"] / "labels.csv"
    pd.read_csv(trained["data"], dtype=str).to_csv(labels, index=False)
    result = _run(["monitor", "--model", trained["bundle"], "--input", trained["data"],
                   "--labels", labels, "--n-bootstrap", "10"])  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "The schema has no date field: declare one" in text


def test_a_horizon_beyond_the_training_follow_up_is_refused_in_the_endpoints_unit(
    trained: Any,
) -> None:
    model = sr.load(trained["bundle"])
    if model.endpoint_.kind == "binary":  # a binary outcome has its one horizon
        assert model.last_event_days is None
        return
    unit = model.endpoint_.time_unit
    last = model.last_event_days
    assert (
        last is not None
        and 0 < last <= float(pd.read_csv(trained["data"])["time"].max()) * (TIME_UNITS[unit])
    )
    label = model.endpoint_.horizon_label(last)
    records = pd.read_csv(trained["data"]).head(3)
    with pytest.raises(
        ValueError, match=rf"beyond the last event in the training data \({label}\)"
    ):
        model.predict_risk(records, horizons=[2 * last])
    far = 2 * last / TIME_UNITS[unit]  # the CLI takes the endpoint's unit
    result = _run(["explain", "--model", trained["bundle"], "--input", trained["data"],
                   "--horizon", f"{far:.6g}"])  # fmt: skip
    assert result.exit_code == 2
    assert f"({label})" in " ".join(result.output.split()) and unit in result.output
