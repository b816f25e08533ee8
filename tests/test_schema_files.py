"""Schemas and endpoints as data files (issue 12): reading, mistakes reported with line
and key, exact round trips, inference, units, missing markers, generated ids, and a
declared schema driving validation, features and the single-record path alike."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import endpoint_from_dict, endpoint_to_dict, load_endpoint
from spinerisk.fastpath import FastPredictor
from spinerisk.schema import (
    SPINE_SCHEMA,
    SchemaFileError,
    check_schema_file,
    infer_schema,
    load_schema,
    schema_from_dict,
    schema_to_dict,
)
from spinerisk.schema._files import dump_toml

SCHEMA_TOML = """\
name = "clinic"
version = "2"
subgroups = ["site"]

[[fields]]
name = "rid"
dtype = "string"
role = "id"
nullable = false
required = true
unique = true

[[fields]]
name = "site"
dtype = "category"
categories = ["A", "B"]
role = "group"

[[fields]]
name = "age"
dtype = "float"
unit = "years"
min = 18
max = 110
missing_values = ["-9", "unknown"]
description = "Age at baseline."

[[fields]]
name = "weight"
dtype = "float"
unit = "kg"
min = 20
max = 250

[[fields]]
name = "height_m"
dtype = "float"
unit = "m"
min = 1
max = 2.3

[[fields]]
name = "smoker"
dtype = "bool"

[[fields]]
name = "outcome"
dtype = "bool"
role = "outcome"

[[rules]]
name = "adult_smoker"
expr = "if smoker then age >= 18"
message = "a smoker must be an adult"

[[rules]]
name = "bmi_plausible"
expr = "weight / height_m ^ 2 < 80"
message = "weight and height give a BMI of 80 or more"

[[derived]]
name = "bmi"
expr = "weight / height_m ^ 2"
unit = "kg/m2"
replaces = ["weight", "height_m"]

[[derived]]
name = "age_group"
expr = 'band(age, [65, 80], ["<65", "65-79", "80+"])'
dtype = "category"
categories = ["<65", "65-79", "80+"]
"""


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.toml"
    path.write_text(SCHEMA_TOML, encoding="utf-8")
    return path


def _records(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(40, 95, n).round(1)
    weight = rng.uniform(45, 110, n).round(1)
    height = rng.uniform(1.45, 1.95, n).round(2)
    smoker = rng.random(n) < 0.3
    lp = -4 + 0.05 * (age - 40) + 0.8 * smoker + 0.03 * (weight / height**2 - 25)
    return pd.DataFrame(
        {
            "rid": [f"r{i}" for i in range(n)],
            "site": rng.choice(["A", "B"], n),
            "age": age,
            "weight": weight,
            "height_m": height,
            "smoker": smoker,
            "outcome": rng.random(n) < 1 / (1 + np.exp(-lp)),
        }
    )


def test_schema_file_reads_and_round_trips(schema_file: Path) -> None:
    schema = load_schema(schema_file)
    assert (schema.name, schema.version, len(schema)) == ("clinic", "2", 7)
    assert schema.subgroup_names == ("site",)
    assert [d.name for d in schema.derived] == ["bmi", "age_group"]
    again = schema_from_dict(schema_to_dict(schema))
    assert again == schema
    path = schema_file.with_name("again.toml")
    path.write_text(dump_toml(schema_to_dict(schema)), encoding="utf-8")
    assert load_schema(path) == schema
    assert schema_from_dict(schema_to_dict(SPINE_SCHEMA)) == SPINE_SCHEMA


def test_mistakes_are_reported_with_line_and_key(tmp_path: Path) -> None:
    broken = (
        SCHEMA_TOML.replace('dtype = "bool"\n\n[[fields]]\nname = "outcome"', 'dtype = "flag"\n\n'
                            '[[fields]]\nname = "outcome"')
        .replace('expr = "if smoker then age >= 18"', 'expr = "if smoker then agee >= 18"')
        .replace('unit = "kg"', 'units = "kg"')
    )  # fmt: skip
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    problems = {p.key: p for p in check_schema_file(path)}
    lines = broken.splitlines()
    assert set(problems) == {"fields[5].dtype", "fields[3].units"}, problems
    for key, p in problems.items():
        assert p.line is not None and key.split(".")[-1] in lines[p.line - 1], (key, p.line)
    assert "did you mean 'unit'" in problems["fields[3].units"].message
    assert "'flag' is not one of" in problems["fields[5].dtype"].message
    # once the fields are right, the rule's unknown field is reported with its line
    fixed = broken.replace('dtype = "flag"', 'dtype = "bool"').replace("units =", "unit =")
    path.write_text(fixed, encoding="utf-8")
    (p,) = check_schema_file(path)
    assert p.key == "rules[0].expr" and p.message == "reads unknown field(s) ['agee']"
    assert "agee" in fixed.splitlines()[p.line - 1]
    with pytest.raises(SchemaFileError, match="1 problem in .*broken.toml"):
        load_schema(path)
    path.write_text("name = [unclosed\n", encoding="utf-8")
    (p,) = check_schema_file(path)
    assert p.key == "(syntax)" and p.line == 1


def test_a_schema_file_cannot_run_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.toml"
    path.write_text(
        SCHEMA_TOML.replace('"if smoker then age >= 18"', "\"__import__('os').system('x')\""),
        encoding="utf-8",
    )
    (p,) = check_schema_file(path)
    assert p.key == "rules[0].expr"


def test_declared_schema_drives_validation_features_and_the_fast_path(schema_file: Path) -> None:
    schema = load_schema(schema_file)
    records = _records()
    bad = records.head(3).copy()
    bad.loc[bad.index[0], "age"] = -9  # a declared missing marker, not a bad value
    bad.loc[bad.index[1], "height_m"] = 1.0  # BMI >= 80 with a heavy weight
    bad.loc[bad.index[1], "weight"] = 240.0
    valid, rejects = sr.validate(bad, schema, on_invalid="split")
    assert np.isnan(valid.loc[bad.index[0], "age"])
    assert rejects["row"].tolist() == [1]
    assert "weight and height give a BMI of 80 or more" in rejects["reasons"].iloc[0]

    endpoint = endpoint_from_dict(
        {"name": "event", "kind": "binary", "event": "outcome", "time_unit": "years",
         "horizons": [2]},
        schema=schema,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint, backend="xgboost", schema=schema).fit(records)
        batch = model.predict_risk(records.head(40))
    names = model.estimator_.calibrated_classifiers_[0].estimator[0].get_feature_names_out()
    assert {"bmi", "age_group"} <= set(names) and "weight" not in set(names)
    assert list(batch.columns) == ["risk_2y", "warnings"]
    fast = FastPredictor.from_model(model)
    rows = records.head(40).drop(columns="outcome").to_dict("records")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        single = [fast.predict_risk(r)["risk_2y"] for r in rows]
    np.testing.assert_allclose(single, batch["risk_2y"].to_numpy(), rtol=1e-9)
    # the rule runs compiled on the single-record path, as in the batch validator
    with pytest.raises(sr.SchemaValidationError, match="BMI of 80 or more"):
        fast.predict_risk({**rows[0], "weight": 240.0, "height_m": 1.0})
    assert fast.n_fallbacks_ >= 1  # the invalid record went to the batch path's message
    explanation = model.explain(records.head(3))
    # derived bmi is explained as weight (the field its expression reads first)
    assert set(explanation.contributions.columns) == {"weight", "age", "smoker"}
    assert explanation.descriptions["age"] == "Age at baseline."
    assert explanation.units["weight"] == "kg"


def test_endpoint_files(tmp_path: Path, schema_file: Path) -> None:
    schema = load_schema(schema_file)
    path = tmp_path / "endpoint.toml"
    path.write_text(
        'name = "event"\nkind = "binary"\nevent = "outcome"\n'
        'eligibility = "age >= 50"\npredictors = ["age", "smoker"]\n',
        encoding="utf-8",
    )
    ep = load_endpoint(path, schema)
    assert ep.horizons == () and ep.risk_column(ep.model_horizons[0]) == "risk"
    assert ep.predictors(schema) == ["age", "smoker"]
    records = sr.validate(_records(), schema)
    assert ep.eligible(records, schema).sum() == (records["age"] >= 50).sum()
    assert endpoint_from_dict(endpoint_to_dict(ep)) == ep
    model = sr.RiskModel(ep, backend="linear", schema=schema).fit(_records())
    assert model.n_train_ == int((records["age"] >= 50).sum())
    assert list(model.predict_risk(_records().head(2)).columns) == ["risk", "warnings"]

    path.write_text(
        'name = "x"\nkind = "survival"\nevent = "outcome"\ntime = "age"\n'
        'time_unit = "fortnights"\nhorizons = [1]\npredictor = ["age"]\n',
        encoding="utf-8",
    )
    with pytest.raises(SchemaFileError) as info:
        load_endpoint(path, schema)
    keys = {p.key for p in info.value.problems}
    assert {"time_unit", "predictor"} <= keys
    assert all(p.line is not None for p in info.value.problems)
    with pytest.raises(SchemaFileError, match="outcome.*cannot be predictors"):
        endpoint_from_dict(
            {"name": "y", "kind": "binary", "event": "smoker", "predictors": ["outcome"]},
            schema=schema,
        )


def test_infer_schema_drafts_types_ranges_codes_markers_and_ids() -> None:
    frame = pd.DataFrame(
        {
            "Patient ID": ["a", "b", "c", "d"],
            "site": ["1", "2", "1", "2"],
            "age": ["61.5", "70", "NA", "88"],
            "n_falls": ["0", "2", "1", "3"],
            "sex": ["F", "M", "F", "F"],
            "flag": ["1", "0", "0", "1"],
            "seen": ["2020-01-02", "2021-03-04", "2020-05-06", "2022-01-01"],
        }
    )
    schema = infer_schema(frame)
    assert schema.id_field == "Patient_ID"  # an identifier name; map the column to it
    kinds = {f.name: (f.dtype, f.role) for f in schema}
    assert kinds["site"] == ("int", "group")
    assert kinds["age"] == ("float", "feature") and schema["age"].missing_values == ("NA",)
    assert (schema["age"].min, schema["age"].max) == (58.0, 91.0)  # 10% margins, rounded out
    assert kinds["n_falls"][0] == "int" and schema["n_falls"].min == 0
    assert schema["sex"].categories == ("F", "M")
    assert kinds["flag"][0] == "bool" and kinds["seen"][0] == "date"
    no_id = infer_schema(frame.drop(columns="Patient ID"))
    assert no_id.id_field == "row_id" and no_id["row_id"].generated


def test_generated_row_ids_name_records_by_their_row(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "real" / "kyphosis" / "kyphosis.csv"
    frame = sr.read_records(data)
    schema = infer_schema(frame)
    checked = sr.validate(frame, schema)
    assert checked["row_id"].tolist()[:2] == ["row-1", "row-2"]
    ep = endpoint_from_dict(
        {"name": "k", "kind": "binary", "event": "Kyphosis", "positive": "present"}, schema=schema
    )
    model = sr.RiskModel(ep, backend="linear", schema=schema).fit(frame)
    out = tmp_path / "scores.csv"
    model.save(tmp_path / "k.srb")
    summary = sr.score_file(tmp_path / "k.srb", data, out, chunk_size=30)
    scores = pd.read_csv(out)
    assert scores["row_id"].tolist() == [f"row-{i}" for i in range(1, 82)]
    assert summary.scored == 81
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        python = model.predict_risk(frame)
    np.testing.assert_allclose(scores["risk"], python["risk"].to_numpy(), rtol=1e-12)
