"""Reading records files and mapping a hospital's columns and codes onto the schema."""

from __future__ import annotations

import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.io import ColumnMapping


@pytest.fixture
def extract(cohort):
    """A site extract: its own column names and codes, heights in metres, free text."""
    part = cohort.head(20)[["patient_id", "age_years", "sex", "current_smoking", "level",
                             "height_cm", "weight_kg", "bmi"]].copy()  # fmt: skip
    part["sex"] = part["sex"].map({"F": "Female", "M": "Male"}).astype(object)
    part["current_smoking"] = part["current_smoking"].map({True: "Y", False: "N"}).astype(object)
    part["level"] = part["level"].astype(str) + " "
    part["height_cm"] = part["height_cm"] / 100.0
    part["Notes"] = "free text"
    return part.rename(columns={
        "patient_id": "PatientID", "age_years": "Age", "sex": "Gender",
        "current_smoking": "Smoker", "level": "FxLevel", "height_cm": "HeightM",
        "weight_kg": "WeightKg", "bmi": "BMI",
    })  # fmt: skip


MAPPING = {
    "columns": {"PatientID": "patient_id", "Age": "age_years", "Gender": "sex",
                "Smoker": "current_smoking", "FxLevel": "level", "HeightM": "height_cm",
                "WeightKg": "weight_kg", "BMI": "bmi"},
    "values": {"sex": {"Female": "F", "Male": "M"},
               "current_smoking": {"Y": True, "N": False, "1": True, "0": False}},
    "strip_whitespace": ["level"],
    "scale": {"height_cm": 100},
    "ignore": ["Notes"],
}  # fmt: skip

TOML = """
ignore = ["Notes"]
strip_whitespace = ["level"]

[columns]
PatientID = "patient_id"
Age = "age_years"
Gender = "sex"
Smoker = "current_smoking"
FxLevel = "level"
HeightM = "height_cm"
WeightKg = "weight_kg"
BMI = "bmi"

[values.sex]
Female = "F"
Male = "M"

[values.current_smoking]
Y = true
N = false
"1" = true
"0" = false

[scale]
height_cm = 100
"""


def _check_mapped(mapped, cohort):
    valid = sr.validate(mapped)
    assert list(valid.columns) == list(MAPPING["columns"].values())
    head = cohort.head(20)
    assert (valid["sex"].astype(object) == head["sex"].astype(object)).all()
    assert (valid["level"].astype(object) == head["level"].astype(object)).all()
    assert valid["current_smoking"].equals(head["current_smoking"].astype("boolean"))
    pd.testing.assert_series_equal(
        valid["height_cm"], head["height_cm"].astype(float), check_exact=False
    )


def test_mapping_from_dict(extract, cohort):
    _check_mapped(sr.apply_mapping(extract, MAPPING), cohort)


def test_mapping_from_toml_and_yaml_files(tmp_path, extract, cohort):
    import yaml

    (tmp_path / "site.toml").write_text(TOML)
    _check_mapped(sr.apply_mapping(extract, tmp_path / "site.toml"), cohort)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(MAPPING))
    assert sr.load_mapping(tmp_path / "site.yaml") == sr.load_mapping(tmp_path / "site.toml")


def test_numeric_one_zero_codes_match_text_keys(extract, cohort):
    extract["Smoker"] = extract["Smoker"].map({"Y": 1, "N": 0})
    _check_mapped(sr.apply_mapping(extract, MAPPING), cohort)


def test_input_is_not_modified(extract):
    before = extract.copy()
    sr.apply_mapping(extract, MAPPING)
    pd.testing.assert_frame_equal(extract, before)


def test_unknown_code_names_row_column_and_value(extract):
    extract.loc[extract.index[5], "Gender"] = "Unknown"
    with pytest.raises(sr.MappingError, match=r"row 5: Gender='Unknown' \(field sex\)"):
        sr.apply_mapping(extract, MAPPING)


def test_unmapped_required_field(extract):
    mapping = {**MAPPING, "columns": {k: v for k, v in MAPPING["columns"].items() if k != "Age"},
               "ignore": ["Notes", "Age"]}  # fmt: skip
    with pytest.raises(sr.MappingError, match=r"Required field\(s\) \['age_years'\] are not"):
        sr.apply_mapping(extract, mapping)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"columns": {**MAPPING["columns"], "Age": "age"}}, r"targets \['age'\]"),
        ({"columns": {**MAPPING["columns"], "Missing": "egfr"}}, r"\['Missing'\].*not in the"),
        ({"ignore": []}, r"\['Notes'\] are neither mapped"),
        ({"values": {"sexx": {"M": "M"}}}, r"\[values\] names \['sexx'\]"),
        ({"colums": {}}, r"Unknown key\(s\) \['colums'\]"),
        ({"columns": {**MAPPING["columns"], "WeightKg": "bmi"}}, "same field"),
    ],
)
def test_mapping_definition_errors(extract, change, match):
    with pytest.raises(sr.MappingError, match=match):
        sr.apply_mapping(extract, {**MAPPING, **change})


def test_scale_on_text_is_an_error(extract):
    extract["HeightM"] = extract["HeightM"].astype(object)
    extract.loc[extract.index[2], "HeightM"] = "1,62"
    with pytest.raises(sr.MappingError, match=r"row 2: HeightM='1,62' \(field height_cm\)"):
        sr.apply_mapping(extract, MAPPING)


def test_bad_mapping_files(tmp_path):
    (tmp_path / "m.toml").write_text("[columns\n")
    with pytest.raises(sr.MappingError, match="not valid TOML"):
        sr.load_mapping(tmp_path / "m.toml")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(sr.MappingError, match="is a .toml, .yaml or .yml file"):
        sr.load_mapping(tmp_path / "m.json")


def test_column_mapping_is_a_frozen_value():
    m = ColumnMapping.from_dict(MAPPING)
    assert m == ColumnMapping.from_dict(MAPPING)
    with pytest.raises(AttributeError):
        m.ignore = ()  # type: ignore[misc]


# -- reading files ---------------------------------------------------------------------------
def test_csv_round_trip_validates_to_the_same_frame(tmp_path, cohort):
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False)
    read = sr.read_records(path)
    assert read.attrs["source"] == "cohort.csv"
    assert all(dtype == "object" for dtype in read.dtypes)  # text stays text until validation
    pd.testing.assert_frame_equal(sr.validate(read), sr.validate(cohort), check_exact=False)


def test_parquet_and_jsonl_round_trip(tmp_path, cohort):
    cohort.to_parquet(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(
        sr.validate(sr.read_records(tmp_path / "c.parquet")), sr.validate(cohort)
    )
    cohort.head(5).to_json(tmp_path / "c.jsonl", orient="records", lines=True,
                           date_format="iso")  # fmt: skip
    out = sr.validate(sr.read_records(tmp_path / "c.jsonl"))
    assert out["patient_id"].tolist() == cohort["patient_id"].head(5).tolist()


def test_tsv_and_explicit_separator(tmp_path, cohort):
    cohort.head(5).to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    assert len(sr.validate(sr.read_records(tmp_path / "c.tsv"))) == 5
    cohort.head(5).to_csv(tmp_path / "c.csv", sep=";", index=False)
    assert len(sr.validate(sr.read_records(tmp_path / "c.csv", sep=";"))) == 5


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path, cohort):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + cohort.head(3).to_csv(index=False).encode())
    assert sr.read_records(path).columns[0] == "patient_id"


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No records file"):
        sr.read_records(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(sr.RecordsReadError, match="unknown file type '.xlsx'"):
        sr.read_records(tmp_path / "x.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(sr.RecordsReadError, match="no header row"):
        sr.read_records(tmp_path / "empty.csv")


def test_a_mapping_naming_an_absent_column_says_how_many_columns_are_not_listed():
    frame = pd.DataFrame({f"col{i}": [1.0] for i in range(35)})
    with pytest.raises(sr.MappingError, match=r"'col29'\] and 5 more\)"):
        sr.apply_mapping(frame, {"columns": {"Age": "age_years"}})
