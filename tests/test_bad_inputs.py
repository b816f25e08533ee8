"""The bad-input catalogue: one defect per case, reported at the right row and column.

Every case starts from the same small valid cohort, injects ONE defect at a known row and
checks that spinerisk (not pandas) raises its own exception, that the message names the
row, the column and the bad value, and that no other record is blamed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk import (
    SPINE_SCHEMA,
    MappingError,
    RecordsReadError,
    SchemaValidationError,
    apply_mapping,
    make_spine_cohort,
    read_records,
    validate,
)

BAD_ROW = 7  # the row every single-defect case is injected at
OTHER_ROW = 12  # a second row, for defects that involve two records
FAILURE_COLUMNS = ["record_id", "row", "column", "value", "check", "expected", "message"]
PACKAGE_DIR = Path(sr.__file__).resolve().parent

# pandera's own concat of failure cases emits this; it is not about the data under test
pytestmark = pytest.mark.filterwarnings(
    "ignore:The behavior of DataFrame concatenation with empty or all-NA:FutureWarning"
)


@pytest.fixture(scope="module")
def base_cohort() -> pd.DataFrame:
    cohort = make_spine_cohort(40, seed=3)
    validate(cohort)  # the base must be valid, or every case below is meaningless
    return cohort


@pytest.fixture
def cohort40(base_cohort: pd.DataFrame) -> pd.DataFrame:
    return base_cohort.copy()


def _set(df: pd.DataFrame, row: int, **values: Any) -> pd.DataFrame:
    """Set cells at ``row`` (positional), widening each touched column to object first.

    A column not in the frame is added (all missing, object dtype). Widening keeps pandas
    from casting or refusing the injected value: the defect reaches ``validate`` as is.
    """
    for column, value in values.items():
        if column in df.columns:
            df[column] = df[column].astype(object)
        else:
            df[column] = pd.Series([None] * len(df), index=df.index, dtype=object)
        df.iat[row, df.columns.get_loc(column)] = value
    return df


def _assert_raised_by_spinerisk(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """The exception was raised by spinerisk code, not from deep inside pandas."""
    raised_in = Path(str(excinfo.traceback[-1].path)).resolve()
    assert PACKAGE_DIR in raised_in.parents, f"raised in {raised_in}, not inside spinerisk"


def _lines_for_row(message: str, row: int) -> list[str]:
    return [line for line in message.splitlines() if f"(row {row})" in line]


def _rows_named(message: str) -> set[int]:
    return {int(r) for r in re.findall(r"\(row (\d+)\)", message)}


# ---------------------------------------------------------------------------------------
# cell-level defects: validate() raises, naming row, column and value
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One injected defect and how it must be reported."""

    edits: dict[str, Any]
    column: str  # the column the problem is reported against
    shown: str  # how the bad value appears after ``column=`` in the message
    check: str  # prefix of failures["check"]
    rows: tuple[int, ...] = (BAD_ROW,)


def _cell(column: str, value: Any, check: str, shown: str | None = None) -> Cell:
    return Cell({column: value}, column, repr(value) if shown is None else shown, check)


def _id_cell(value: Any, check: str) -> Cell:
    """A bad record id: messages show its first 3 characters and its length only."""
    text = str(value)
    shown = repr(text[:3] + ("..." if len(text) > 3 else "")) + f" ({len(text)} characters)"
    return Cell({"patient_id": value}, "patient_id", shown, check)


CELL_CASES = [
    # wrong types in numeric fields
    pytest.param(_cell("age_years", True, "dtype"), id="bool-in-age"),
    pytest.param(_cell("age_years", [1, 2], "dtype"), id="list-in-age"),
    pytest.param(_cell("hu_l1", {"a": 1}, "dtype"), id="dict-in-hu"),
    pytest.param(_cell("age_years", "abc", "dtype"), id="text-in-age"),
    pytest.param(_cell("bmi", "12,5", "dtype"), id="decimal-comma-in-bmi"),
    pytest.param(
        _cell("age_years", pd.Timestamp("2020-01-01"), "dtype", "2020-01-01"), id="date-in-age"
    ),
    pytest.param(
        _cell("age_years", 1 + 2j, "dtype"),
        id="complex-in-age",
        marks=[
            pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning"),
        ],
    ),
    pytest.param(_cell("age_years", b"71", "dtype"), id="bytes-in-age"),
    # out of range and non-finite
    pytest.param(_cell("age_years", 300.0, "in_range"), id="age-300"),
    # a negative BMI also breaks the BMI rule, which is reported against bmi too
    pytest.param(_cell("bmi", -5.0, "in_range"), id="negative-bmi"),
    pytest.param(_cell("hu_l1", 5000.0, "in_range"), id="hu-5000"),
    pytest.param(_cell("egfr", np.inf, "finite", "inf"), id="plus-inf"),
    pytest.param(_cell("egfr", -np.inf, "finite", "-inf"), id="minus-inf"),
    pytest.param(_cell("age_years", "inf", "finite"), id="inf-as-text"),
    # counts and codes
    pytest.param(_cell("falls_12m_count", 2.5, "integer"), id="non-integral-count"),
    pytest.param(_cell("falls_12m_count", "2.5", "integer"), id="non-integral-count-text"),
    pytest.param(
        _cell("falls_12m_count", 1e20, "in_range"),
        id="huge-count",
        marks=[
            pytest.mark.filterwarnings("ignore:invalid value encountered in cast"),
        ],
    ),
    pytest.param(_cell("fx_event", 3, "isin"), id="unknown-event-code"),
    pytest.param(_cell("level", "L7", "isin"), id="level-L7"),
    pytest.param(_cell("sex", "X", "isin"), id="sex-X"),
    pytest.param(_cell("sex", "f", "isin"), id="sex-lowercase-f"),
    pytest.param(_cell("sex", 1, "isin"), id="sex-numeric-code"),
    pytest.param(_cell("level", "T12 ", "isin"), id="whitespace-padded-level"),
    pytest.param(_cell("current_smoking", "Y", "dtype"), id="Y-in-boolean"),
    pytest.param(_cell("current_smoking", "N", "dtype"), id="N-in-boolean"),
    pytest.param(_cell("current_smoking", 2, "dtype"), id="2-in-boolean"),
    # missing required values
    pytest.param(_cell("age_years", np.nan, "not_nullable", "<missing>"), id="nan-age"),
    pytest.param(_cell("sex", None, "not_nullable", "<missing>"), id="none-sex"),
    pytest.param(_cell("age_years", "   ", "not_nullable", "<missing>"), id="blank-age"),
    pytest.param(_cell("patient_id", np.nan, "not_nullable", "<missing>"), id="nan-id"),
    # dates
    pytest.param(_cell("index_date", "2021-13-45", "dtype"), id="unparseable-date"),
    pytest.param(_cell("index_date", "31/12/2020", "dtype"), id="non-iso-date"),
    pytest.param(_cell("index_date", "2020-02-30", "dtype"), id="impossible-date"),
    # identifiers and text patterns (formula injection included)
    # (an invalid record id is masked in messages: it may hold a name)
    pytest.param(_id_cell("=cmd|' /C calc'!A0", "str_matches"), id="inject-cmd"),
    pytest.param(_id_cell("+1+1", "str_matches"), id="inject-plus"),
    pytest.param(_id_cell("@SUM(A1)", "str_matches"), id="inject-at"),
    pytest.param(_id_cell("A 1", "str_matches"), id="id-with-space"),
    pytest.param(_id_cell(12.5, "dtype"), id="fractional-id"),
    pytest.param(_cell("centre_id", "=1+1", "str_matches"), id="inject-centre"),
    pytest.param(_cell("country", "jp", "str_matches"), id="lowercase-country"),
    # duplicate identifiers: both records are blamed
    pytest.param(
        Cell(
            {"patient_id": "SYN-000013"},
            "patient_id",
            "'SYN-000013'",
            "field_uniqueness",
            rows=(BAD_ROW, OTHER_ROW),
        ),
        id="duplicate-id",
    ),
    # cross-field rules
    pytest.param(
        Cell(
            {"fx_event": 1, "fx_time_days": np.nan, "death_time_days": np.nan},
            "fx_event",
            "1",
            "rule:event_without_time",
        ),
        id="event-without-time",
    ),
    pytest.param(
        Cell(
            {"fx_event": np.nan, "fx_time_days": 100.0, "death_time_days": np.nan},
            "fx_time_days",
            "100.0",
            "rule:time_without_event",
        ),
        id="time-without-event",
    ),
    pytest.param(
        Cell(
            {"fx_event": 0, "fx_time_days": 0.0, "death_time_days": np.nan},
            "fx_time_days",
            "0.0",
            "rule:fx_time_positive",
        ),
        id="zero-time",
    ),
    pytest.param(
        Cell(
            {"fx_event": 0, "fx_time_days": -5.0, "death_time_days": np.nan},
            "fx_time_days",
            "-5.0",
            "in_range",
        ),
        id="negative-time",
    ),
    pytest.param(
        Cell(
            {"fx_event": 1, "fx_time_days": 500.0, "death_time_days": 300.0},
            "death_time_days",
            "300.0",
            "rule:death_before_fracture_time",
        ),
        id="death-before-fracture",
    ),
    pytest.param(
        Cell(
            {"fx_event": 2, "fx_time_days": 100.0, "death_time_days": np.nan},
            "death_time_days",
            "<missing>",
            "rule:death_event_without_death_time",
        ),
        id="death-event-without-death-time",
    ),
    pytest.param(
        Cell(
            {"fx_event": 2, "fx_time_days": 100.0, "death_time_days": 200.0},
            "fx_event",
            "2",
            "rule:death_event_time_mismatch",
        ),
        id="death-event-time-mismatch",
    ),
    pytest.param(
        Cell(
            {"height_cm": 160.0, "weight_kg": 64.0, "bmi": 30.0},
            "bmi",
            "30.0",
            "rule:bmi_matches_height_weight",
        ),
        id="bmi-inconsistent",
    ),
    pytest.param(
        Cell(
            {"mri_done": False, "t1_pattern": "none", "t2_pattern": np.nan},
            "mri_done",
            "False",
            "rule:mri_pattern_without_mri",
        ),
        id="mri-pattern-without-mri",
    ),
    pytest.param(
        Cell(
            {"treatment": "vertebroplasty", "nonunion": False},
            "nonunion",
            "False",
            "rule:nonunion_after_cement",
        ),
        id="nonunion-after-vertebroplasty",
    ),
    pytest.param(
        Cell(
            {
                "delta_height_6m": 20.0,
                "height_loss0_pct": 10.0,
                "height_loss_6m_pct": 30.0,
                "collapse_6m": False,
                "genant_grade0": 0.0,
            },
            "collapse_6m",
            "False",
            "rule:collapse_matches_height_change",
        ),
        id="collapse-inconsistent",
    ),
    pytest.param(
        Cell(
            {
                "delta_height_6m": 5.0,
                "height_loss0_pct": 10.0,
                "height_loss_6m_pct": 30.0,
                "collapse_6m": False,
                "genant_grade0": 0.0,
            },
            "height_loss_6m_pct",
            "30.0",
            "rule:height_loss_6m_adds_up",
        ),
        id="height-loss-does-not-add-up",
    ),
    pytest.param(
        Cell(
            {"level": "L1", "region": "lumbar"}, "region", "'lumbar'", "rule:region_matches_level"
        ),
        id="region-inconsistent-with-level",
    ),
    pytest.param(
        Cell(
            {
                "height_loss0_pct": 10.0,
                "genant_grade0": 3.0,
                "delta_height_6m": 5.0,
                "height_loss_6m_pct": 15.0,
                "collapse_6m": False,
            },
            "genant_grade0",
            "3.0",
            "rule:genant_matches_height_loss",
        ),
        id="genant-inconsistent",
    ),
    pytest.param(
        Cell(
            {"glucocorticoid_current": False, "glucocorticoid_dose_mg": 10.0},
            "glucocorticoid_dose_mg",
            "10.0",
            "rule:glucocorticoid_dose_without_use",
        ),
        id="glucocorticoid-dose-without-use",
    ),
    pytest.param(
        Cell(
            {"prior_fx_count": 2, "prior_fragility_fx": False},
            "prior_fx_count",
            "2",
            "rule:prior_fracture_count_matches_flag",
        ),
        id="prior-count-without-flag",
    ),
]


@pytest.mark.parametrize("case", CELL_CASES)
def test_bad_cell_is_reported_at_its_row_and_column(cohort40, case):
    _set(cohort40, BAD_ROW, **case.edits)
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(cohort40)
    _assert_raised_by_spinerisk(excinfo)
    err = excinfo.value
    message = str(err)

    # the message names the row, the column and the bad value, on one line per record
    for row in case.rows:
        lines = _lines_for_row(message, row)
        assert lines, f"no message line names (row {row}):\n{message}"
        wanted = re.compile(re.escape(f"{case.column}={case.shown}"))
        assert any(wanted.search(line) for line in lines), message
    assert _rows_named(message) == set(case.rows), message

    # the failures table has that row and column, and blames nothing else
    failures = err.failures
    assert list(failures.columns) == FAILURE_COLUMNS
    assert set(failures["row"].tolist()) == set(case.rows)
    assert set(failures["column"]) <= {case.column} | set(case.edits)
    for row in case.rows:
        hit = failures[(failures["row"] == row) & (failures["column"] == case.column)]
        assert hit["check"].str.startswith(case.check).any(), failures[["row", "column", "check"]]
        assert hit["message"].str.contains(f"(row {row})", regex=False).all()
    # records are labelled with their id, unless the id itself is the problem
    if case.column != "patient_id":
        expected_id = cohort40["patient_id"].iloc[BAD_ROW]
        assert (failures["record_id"] == expected_id).all()
        assert f"record {expected_id} (row {BAD_ROW})" in message


@pytest.mark.parametrize("case", CELL_CASES)
def test_bad_cell_is_the_only_rejected_record_in_split_mode(cohort40, case):
    _set(cohort40, BAD_ROW, **case.edits)
    valid, rejects = validate(cohort40, on_invalid="split")
    assert rejects["row"].tolist() == list(case.rows)
    assert len(valid) + len(rejects) == len(cohort40)
    for reason in rejects["reasons"]:
        assert f"{case.column}={case.shown}" in reason, reason


@pytest.mark.parametrize("bad_id", ["Müller, Hans", "=cmd|' /C calc'!A0", "Anna Berg 1931"])
def test_invalid_record_id_is_not_echoed_whole(cohort40, bad_id):
    _set(cohort40, BAD_ROW, patient_id=bad_id)
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(cohort40)
    message = str(excinfo.value)
    assert bad_id not in message
    assert f"({len(bad_id)} characters)" in message


def test_all_missing_required_column_blames_every_record(cohort40):
    cohort40["age_years"] = np.nan
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(cohort40)
    _assert_raised_by_spinerisk(excinfo)
    failures = excinfo.value.failures
    assert failures["row"].tolist() == list(range(len(cohort40)))
    assert set(failures["column"]) == {"age_years"}
    assert set(failures["check"]) == {"not_nullable"}
    assert "(row 0): age_years=<missing> is missing" in str(excinfo.value)


def test_all_missing_optional_feature_is_a_warning_not_an_error():
    cohort = make_spine_cohort(60, seed=3)  # warnings are for cohorts (50 records or more)
    cohort["hu_l1"] = np.nan
    with pytest.warns(sr.DataQualityWarning, match=r"'hu_l1' is entirely missing in 60 records"):
        checked = validate(cohort)
    assert len(checked) == len(cohort)
    assert checked["hu_l1"].isna().all()


# ---------------------------------------------------------------------------------------
# frame-level defects: raise in both modes, no record blamed
# ---------------------------------------------------------------------------------------
def _drop_age(df):
    return df.drop(columns="age_years")


def _add_unknown(df):
    df["favourite_colour"] = "blue"
    return df


def _duplicate_age(df):
    return pd.concat([df, df[["age_years"]]], axis=1)


def _numeric_name(df):
    df[5] = 1.0
    return df


FRAME_CASES = [
    pytest.param(
        _drop_age,
        "age_years",
        "missing_column",
        r"is required but the column is missing",
        id="missing-required-column",
    ),
    pytest.param(
        _add_unknown,
        "favourite_colour",
        "unknown_column",
        r"is not a field of the schema",
        id="unknown-column",
    ),
    pytest.param(
        _duplicate_age,
        "age_years",
        "duplicate_column",
        r"appears more than once",
        id="duplicate-column-names",
    ),
    pytest.param(
        _numeric_name, "5", "column_name", r"is not a text column name", id="non-text-column-name"
    ),
]


@pytest.mark.parametrize("on_invalid", ["raise", "split"])
@pytest.mark.parametrize("make_bad, column, check, what", FRAME_CASES)
def test_frame_level_problem_raises_in_both_modes(
    cohort40, make_bad, column, check, what, on_invalid
):
    bad = make_bad(cohort40)
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(bad, on_invalid=on_invalid)
    _assert_raised_by_spinerisk(excinfo)
    message = str(excinfo.value)
    assert re.search(re.escape(f"column {column!r} ") + what, message), message
    assert "fix the columns first" in message
    assert not _rows_named(message)
    failures = excinfo.value.failures
    assert failures["row"].isna().all()
    assert failures[["column", "check"]].values.tolist() == [[column, check]]


@pytest.mark.parametrize("on_invalid", ["raise", "split"])
def test_empty_frame_raises_in_both_modes(cohort40, on_invalid):
    with pytest.raises(SchemaValidationError, match=r"no records") as excinfo:
        validate(cohort40.iloc[:0], on_invalid=on_invalid)
    _assert_raised_by_spinerisk(excinfo)
    failures = excinfo.value.failures
    assert failures["check"].tolist() == ["empty"]
    assert failures["row"].isna().all()


def test_empty_frame_message_does_not_name_a_none_column(cohort40):
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(cohort40.iloc[:0])
    assert "None" not in str(excinfo.value)


def test_frame_level_problems_are_reported_together(cohort40):
    bad = _add_unknown(_drop_age(cohort40))
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(bad)
    failures = excinfo.value.failures
    assert set(failures["column"]) == {"age_years", "favourite_colour"}


@pytest.mark.parametrize("not_a_frame", [None, [1, 2], {"age_years": [70.0]}, np.zeros((2, 2))])
def test_non_frame_input_is_a_type_error(not_a_frame):
    with pytest.raises(TypeError, match=r"validate expects a pandas DataFrame; got "):
        validate(not_a_frame)


def test_unknown_on_invalid_is_a_value_error(cohort40):
    with pytest.raises(
        ValueError,
        match=r"on_invalid must be 'raise' or 'split'; got "
        r"on_invalid='drop'",
    ):
        validate(cohort40, on_invalid="drop")


# ---------------------------------------------------------------------------------------
# declared repairs: a column mapping fixes what validation rejects
# ---------------------------------------------------------------------------------------
REPAIRS = [
    pytest.param(
        {"level": "T12 "},
        {"strip_whitespace": ["level"]},
        "level",
        "T12",
        id="strip-whitespace-field",
    ),
    pytest.param(
        {"level": "T12 "}, {"strip_whitespace": True}, "level", "T12", id="strip-whitespace-all"
    ),
    pytest.param(
        {"sex": "f"}, {"values": {"sex": {"f": "F", "m": "M"}}}, "sex", "F", id="lowercase-sex-code"
    ),
    pytest.param(
        {"sex": 1}, {"values": {"sex": {"1": "M", "2": "F"}}}, "sex", "M", id="numeric-sex-code"
    ),
    pytest.param(
        {"current_smoking": "Y"},
        {"values": {"current_smoking": {"Y": True, "N": False}}},
        "current_smoking",
        True,
        id="Y-in-boolean",
    ),
]


@pytest.mark.parametrize("edits, mapping, column, repaired", REPAIRS)
def test_declared_mapping_repairs_the_defect(cohort40, edits, mapping, column, repaired):
    _set(cohort40, BAD_ROW, **edits)
    with pytest.raises(SchemaValidationError, match=re.escape(f"(row {BAD_ROW}): {column}=")):
        validate(cohort40)
    checked = validate(apply_mapping(cohort40, mapping))
    assert checked[column].iloc[BAD_ROW] == repaired
    assert checked[column].dtype == SPINE_SCHEMA[column].pandas_dtype()


# ---------------------------------------------------------------------------------------
# column mapping errors
# ---------------------------------------------------------------------------------------
def _gender_extract(df):
    df = df.rename(columns={"sex": "Gender"})
    df["Gender"] = df["Gender"].astype(object).map({"F": "Female", "M": "Male"})
    return df


GENDER_MAPPING = {"columns": {"Gender": "sex"}, "values": {"sex": {"Male": "M", "Female": "F"}}}


def test_gender_mapping_base_is_valid(cohort40):
    checked = validate(apply_mapping(_gender_extract(cohort40), GENDER_MAPPING))
    assert (checked["sex"] == cohort40["sex"]).all()


def _unknown_code(df):
    df = _gender_extract(df)
    df.iat[BAD_ROW, df.columns.get_loc("Gender")] = "U"
    return df, GENDER_MAPPING


def _unknown_bool_code(df):
    df["current_smoking"] = df["current_smoking"].map({True: "Y", False: "N"}).astype(object)
    df.iat[BAD_ROW, df.columns.get_loc("current_smoking")] = "maybe"
    return df, {"values": {"current_smoking": {"Y": True, "N": False}}}


def _unmapped_required(df):
    return df.rename(columns={"age_years": "Age"}), {"ignore": ["Age"]}


def _unmapped_extra(df):
    return df.rename(columns={"age_years": "Age"}), {}


def _bad_target(df):
    return df.rename(columns={"age_years": "Age"}), {"columns": {"Age": "age"}}


def _absent_source(df):
    return df, {"columns": {"Alter": "age_years"}}


def _scale_not_a_number(df):
    df["height_cm"] = (df["height_cm"] / 100).astype(object)
    df.iat[BAD_ROW, df.columns.get_loc("height_cm")] = "1,6"
    return df, {"scale": {"height_cm": 100}}


MAPPING_CASES = [
    pytest.param(_unknown_code, rf"row {BAD_ROW}: Gender='U' \(field sex\)", id="unknown-code"),
    pytest.param(
        _unknown_bool_code, rf"row {BAD_ROW}: current_smoking='maybe'", id="unknown-boolean-code"
    ),
    pytest.param(
        _unmapped_required,
        r"Required field\(s\) \['age_years'\] are not mapped",
        id="unmapped-required-field",
    ),
    pytest.param(
        _unmapped_extra,
        r"Source column\(s\) \['Age'\] are neither mapped",
        id="unmapped-extra-column",
    ),
    pytest.param(
        _bad_target,
        r"targets \['age'\], which are not fields of schema 'spine-ovf'",
        id="target-not-a-field",
    ),
    pytest.param(
        _absent_source,
        r"maps source column\(s\) \['Alter'\], which are not in",
        id="source-column-absent",
    ),
    pytest.param(
        _scale_not_a_number,
        rf"row {BAD_ROW}: height_cm='1,6' \(field height_cm\) "
        r"is not a number",
        id="scale-not-a-number",
    ),
]


@pytest.mark.parametrize("make_bad, match", MAPPING_CASES)
def test_mapping_problem_is_a_mapping_error(cohort40, make_bad, match):
    extract, mapping = make_bad(cohort40)
    with pytest.raises(MappingError, match=match) as excinfo:
        apply_mapping(extract, mapping)
    _assert_raised_by_spinerisk(excinfo)
    assert isinstance(excinfo.value, ValueError)
    # row-level mapping problems name exactly the bad row
    assert set(re.findall(r"^  row (\d+):", str(excinfo.value), flags=re.M)) <= {str(BAD_ROW)}


def test_scale_problem_is_not_called_a_missing_translation(cohort40):
    extract, mapping = _scale_not_a_number(cohort40)
    with pytest.raises(MappingError) as excinfo:
        apply_mapping(extract, mapping)
    headline = str(excinfo.value).splitlines()[0]
    assert "no translation" not in headline


# ---------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------
@pytest.fixture
def csv_lines(base_cohort, tmp_path) -> list[str]:
    path = tmp_path / "base.csv"
    base_cohort.to_csv(path, index=False)
    return path.read_text(encoding="utf-8").splitlines()


CSV_LINE = BAD_ROW + 2  # line 1 is the header, line 2 is row 0


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_non_utf8_bytes_name_line_and_column(csv_lines, tmp_path):
    fields = csv_lines[CSV_LINE - 1].split(",")
    fields[1] = "Müller"  # centre_id, in a latin-1 file
    csv_lines[CSV_LINE - 1] = ",".join(fields)
    path = _write(tmp_path / "site.csv", csv_lines, encoding="latin-1")
    start = len(fields[0]) + 1  # 0-based offset of "M" in the line
    with pytest.raises(RecordsReadError) as excinfo:
        read_records(path)
    _assert_raised_by_spinerisk(excinfo)
    message = str(excinfo.value)
    assert f"'site.csv' line {CSV_LINE}, column {start + 2}: byte b'\\xfc' is not valid utf-8" in (
        message
    )
    assert "encoding='latin-1'" in message
    # and with the real encoding it reads
    assert read_records(path, encoding="latin-1")["centre_id"].iloc[BAD_ROW] == "Müller"


def test_semicolon_file_read_with_comma(csv_lines, tmp_path):
    path = _write(tmp_path / "semi.csv", [line.replace(",", ";") for line in csv_lines])
    with pytest.raises(
        RecordsReadError,
        match=r"'semi\.csv' line 1: .*contains ';' but no ','"
        r".*Pass sep=';'\.",
    ) as excinfo:
        read_records(path)
    _assert_raised_by_spinerisk(excinfo)
    assert len(read_records(path, sep=";")) == 40


def test_ragged_row_with_extra_field(csv_lines, tmp_path):
    csv_lines[CSV_LINE - 1] += ",surplus"
    path = _write(tmp_path / "ragged.csv", csv_lines)
    with pytest.raises(RecordsReadError, match=rf"'ragged\.csv'.*line {CSV_LINE}\b") as excinfo:
        read_records(path)
    _assert_raised_by_spinerisk(excinfo)


def test_ragged_row_with_missing_fields(csv_lines, tmp_path):
    csv_lines[CSV_LINE - 1] = ",".join(csv_lines[CSV_LINE - 1].split(",")[:5])
    path = _write(tmp_path / "short.csv", csv_lines)
    with pytest.raises(RecordsReadError, match=rf"line {CSV_LINE}\b"):
        read_records(path)


@pytest.mark.parametrize(
    "content, match",
    [
        pytest.param(b"", r"'empty\.csv' line 1: no header row", id="zero-bytes"),
        pytest.param(b"\n\n", r"'empty\.csv' line 1: no header row", id="blank-lines"),
    ],
)
def test_empty_file(tmp_path, content, match):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(RecordsReadError, match=match) as excinfo:
        read_records(path)
    _assert_raised_by_spinerisk(excinfo)


def test_header_only_file_reads_but_does_not_validate(csv_lines, tmp_path):
    path = _write(tmp_path / "header.csv", csv_lines[:1])
    records = read_records(path)
    assert records.shape == (0, len(csv_lines[0].split(",")))
    with pytest.raises(SchemaValidationError, match=r"0 records from 'header\.csv'"):
        validate(records)


@pytest.mark.parametrize(
    "name, kwargs, exc, match",
    [
        pytest.param(
            "records.xlsx", {}, RecordsReadError, r"unknown file type '\.xlsx'", id="unknown-suffix"
        ),
        pytest.param(
            "records.csv",
            {"encoding": "utf-9"},
            RecordsReadError,
            r"encoding='utf-9' is not a known text encoding",
            id="unknown-encoding",
        ),
        pytest.param(
            "records.json",
            {},
            RecordsReadError,
            r"'records\.json' is not valid JSON",
            id="broken-json",
        ),
    ],
)
def test_unreadable_file(tmp_path, name, kwargs, exc, match):
    path = tmp_path / name
    path.write_text("{not: a table", encoding="utf-8")
    with pytest.raises(exc, match=match) as excinfo:
        read_records(path, **kwargs)
    _assert_raised_by_spinerisk(excinfo)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No records file at .*nope\.csv"):
        read_records(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------
# several bad rows: split accounting, CSV round trip, message cap
# ---------------------------------------------------------------------------------------
SEVERAL = {
    3: {"age_years": 300.0},
    11: {"sex": "X", "egfr": np.inf},
    19: {"falls_12m_count": 2.5},
    25: {"level": "L7"},
    33: {"glucocorticoid_current": False, "glucocorticoid_dose_mg": 10.0},
}


def test_split_accounts_for_every_row(cohort40):
    for row, edits in SEVERAL.items():
        _set(cohort40, row, **edits)
    cohort40.index = cohort40.index + 1000  # rows are positions, the index is kept
    valid, rejects = validate(cohort40, on_invalid="split")

    assert len(valid) + len(rejects) == len(cohort40)
    assert rejects["row"].tolist() == sorted(SEVERAL)
    assert rejects.index.tolist() == [1000 + r for r in sorted(SEVERAL)]
    assert valid.index.tolist() == [i for i in cohort40.index if i - 1000 not in SEVERAL]
    assert set(valid.index).isdisjoint(rejects.index)
    # each reason mentions the column(s) injected at that row
    for row, reason in zip(rejects["row"], rejects["reasons"], strict=True):
        for column in SEVERAL[row]:
            if column != "glucocorticoid_current":  # a rule is reported against its first field
                assert f"{column}=" in reason, reason
        assert "(row" not in reason  # the record prefix is stripped in the rejects frame
    # the rejects keep the original values and columns
    assert list(rejects.columns[2:]) == list(cohort40.columns)
    assert rejects.loc[1000 + 25, "level"] == "L7"
    for spec in SPINE_SCHEMA:
        if spec.name in valid.columns:
            assert valid[spec.name].dtype == spec.pandas_dtype(), spec.name


def test_csv_round_trip_with_bad_cells(base_cohort, tmp_path):
    bad_cells = {
        2: {"age_years": "abc"},
        9: {"bmi": "12,5"},
        14: {"level": "T12 "},
        21: {"falls_12m_count": "2.5"},
        30: {"current_smoking": "Y"},
        36: {"index_date": "2021-13-45"},
    }
    frame = base_cohort.copy()
    for row, edits in bad_cells.items():
        _set(frame, row, **edits)
    path = tmp_path / "extract.csv"
    frame.to_csv(path, index=False)

    records = read_records(path)
    assert records.attrs["source"] == "extract.csv"
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(records)
    message = str(excinfo.value)
    assert message.startswith("6 problems in 6 of 40 records from 'extract.csv'.")
    for row, edits in bad_cells.items():
        ((column, value),) = edits.items()
        assert f"(row {row}): {column}={value!r}" in message

    valid, rejects = validate(records, on_invalid="split")
    assert len(valid) + len(rejects) == len(records)
    assert rejects["row"].tolist() == sorted(bad_cells)
    for spec in SPINE_SCHEMA:
        if spec.name in valid.columns:
            assert valid[spec.name].dtype == spec.pandas_dtype(), spec.name
    # the valid rows carry the same values as the cohort40 that was written
    kept = base_cohort.drop(index=list(bad_cells))
    pd.testing.assert_frame_equal(
        valid.reset_index(drop=True), kept.reset_index(drop=True), check_exact=False
    )


def test_message_is_capped_but_failures_are_complete(cohort40):
    big = pd.concat([cohort40] * 5, ignore_index=True)
    big["patient_id"] = [f"P{i:04d}" for i in range(len(big))]
    big["age_years"] = 300.0
    with pytest.raises(SchemaValidationError) as excinfo:
        validate(big)
    message = str(excinfo.value)
    lines = message.splitlines()
    problem_lines = [line for line in lines if "(row " in line]
    assert 1 <= len(problem_lines) <= 20
    assert lines[0] == "200 problems in 200 of 200 records."
    assert re.search(r"\.\.\. and 180 more \(see the error's \.failures DataFrame\)", message)
    failures = excinfo.value.failures
    assert len(failures) == 200
    assert failures["row"].tolist() == list(range(200))
    assert len(message) < 5000
