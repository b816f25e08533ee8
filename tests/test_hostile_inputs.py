"""Hostile records files: NUL bytes, huge fields, files without line breaks, lenient
numbers, broken quoting and headers. Each case is read by ``read_records`` (what
``validate`` and ``train`` use) and scored by ``score_file``: the bad row is rejected
with a reason that names it, the other rows are kept, and memory stays bounded.

Synthetic records only (``make_spine_cohort``).
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.io import MAX_FIELD_CHARS, MAX_LINE_CHARS, number_text_problem, read_records
from spinerisk.scoring import score_file

N = 20
BAD = 4  # 0-based data row of the injected defect (line BAD + 2 of the file)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    records = sr.make_spine_cohort(N, seed=2)
    return records.to_csv(index=False).splitlines()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "nonunion.srb"
    sr.RiskModel("nonunion", backend="linear").fit(sr.make_spine_cohort(300, seed=0)).save(path)
    return path


def _with(lines: list[str], column: str, value: str, row: int = BAD) -> list[str]:
    out = list(lines)
    header = out[0].split(",")
    fields = out[row + 1].split(",")
    fields[header.index(column)] = value
    out[row + 1] = ",".join(fields)
    return out


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _score(bundle: Path, path: Path, tmp_path: Path) -> tuple[Any, pd.DataFrame]:
    rejects = tmp_path / "rejects.csv"
    summary = score_file(bundle, path, tmp_path / "scores.csv", rejects=rejects, chunk_size=7)
    held = getattr(summary, "out_of_scope", 0)  # a gated model's out-of-scope rows
    assert summary.rows_in == summary.scored + summary.rejected + held
    return summary, pd.read_csv(rejects, dtype=str, keep_default_na=False)


# -- NUL bytes (issue 13, item 2) ------------------------------------------------------------
@pytest.mark.parametrize(
    "column, value",
    [("hu_l1", "30\x00x"), ("patient_id", "SYN-0000\x0004"), ("sex", "F\x00")],
)
def test_a_nul_byte_rejects_its_row_and_names_the_byte(lines, tmp_path, column, value):
    path = _write(tmp_path / "nul.csv", _with(lines, column, value))
    with pytest.raises(sr.RecordsReadError, match=rf"{column} contains a NUL byte \(\\x00\)"):
        read_records(path)  # never truncated to '30' or 'SYN-0000'
    records, rejects = read_records(path, on_invalid="split")
    assert len(records) == N - 1 and BAD not in records.index
    assert rejects["row"].tolist() == [BAD]
    assert f"{column} contains a NUL byte (\\x00) at character" in rejects["reasons"].iloc[0]
    assert f"(line {BAD + 2})" in rejects["reasons"].iloc[0]
    assert rejects[column].iloc[0] == value  # the rejected value is kept whole
    assert not records.map(lambda v: isinstance(v, str) and "\x00" in v).any().any()


def test_a_nul_byte_in_a_parquet_cell_rejects_its_row(tmp_path):
    records = sr.make_spine_cohort(6, seed=1)
    records["centre_id"] = records["centre_id"].astype(object)
    records.loc[2, "centre_id"] = "C\x001"
    records.to_parquet(tmp_path / "nul.parquet")
    read, rejects = read_records(tmp_path / "nul.parquet", on_invalid="split")
    assert rejects["row"].tolist() == [2] and len(read) == 5
    assert "centre_id contains a NUL byte" in rejects["reasons"].iloc[0]


def test_score_rejects_the_nul_row_and_scores_the_others(bundle, lines, tmp_path):
    path = _write(tmp_path / "nul.csv", _with(lines, "hu_l1", "30\x00x"))
    summary, rejects = _score(bundle, path, tmp_path)
    assert summary.rows_in == N and BAD in rejects["row"].astype(int).tolist()
    reason = rejects.set_index("row").loc[str(BAD), "reasons"]
    assert "hu_l1 contains a NUL byte (\\x00)" in reason


# -- long fields, long lines, files without line breaks (items 11, 12) ------------------------
@pytest.mark.parametrize("size", [MAX_FIELD_CHARS + 10, 200_000, 1 << 20])
def test_an_over_long_field_rejects_that_row_only(bundle, lines, tmp_path, size):
    path = _write(tmp_path / "long.csv", _with(lines, "centre_id", "A" * size))
    records, rejects = read_records(path, on_invalid="split")
    assert len(records) == N - 1 and rejects["row"].tolist() == [BAD]
    reason = rejects["reasons"].iloc[0]
    assert "centre_id is" in reason and f"{MAX_FIELD_CHARS:,}" in reason
    assert f"line {BAD + 2}" in reason
    assert "AAAA" not in reason and pd.isna(rejects["centre_id"].iloc[0])
    with pytest.raises(sr.RecordsReadError, match="centre_id is"):
        read_records(path)  # validate without --rejects: refused, naming the row
    summary, score_rejects = _score(bundle, path, tmp_path)
    assert summary.rows_in == N and str(BAD) in score_rejects["row"].tolist()


def test_a_quoted_field_that_never_ends_is_bounded(lines, tmp_path):
    """An opening quote with no closing one on a long file: the reader stops the field at
    csv's limit instead of reading the rest of the file into it."""
    body = _with(lines, "centre_id", '"C1')
    body += [body[2]] * 20_000  # 20,000 more lines the open quote would swallow
    path = _write(tmp_path / "endless.csv", body)
    records, rejects = read_records(path, on_invalid="split")
    assert len(records) + len(rejects) > 19_000  # the lines after the quote are rows again
    assert rejects["row"].iloc[0] == BAD


def test_a_device_is_refused_without_reading_it(bundle, tmp_path):
    link = tmp_path / "zero.csv"
    os.symlink("/dev/zero", link)
    with pytest.raises(sr.RecordsReadError, match="not a regular file"):
        read_records(link)
    with pytest.raises(sr.RecordsReadError, match="not a regular file"):
        score_file(bundle, link, tmp_path / "s.csv")


def test_a_file_without_line_breaks_is_refused_in_bounded_memory(bundle, tmp_path):
    path = tmp_path / "zeros.csv"
    with path.open("wb") as fh:
        for _ in range(24):
            fh.write(b"\x00" * (1 << 20))  # 24 MiB, no line break
    tracemalloc.start()
    try:
        with pytest.raises(sr.RecordsReadError, match="no line breaks"):
            read_records(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_LINE_CHARS, f"peak {peak / 2**20:.0f} MiB"
    with pytest.raises(sr.RecordsReadError, match="no line breaks"):
        score_file(bundle, path, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_a_long_line_among_good_ones_is_skipped_in_bounded_memory(lines, tmp_path):
    body = list(lines)
    body.insert(BAD + 1, "x" * (3 * MAX_LINE_CHARS))  # a row of 3 MiB with no delimiter
    path = _write(tmp_path / "line.csv", body)
    tracemalloc.start()
    try:
        records, rejects = read_records(path, on_invalid="split")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(records) == N and rejects["row"].tolist() == [BAD]
    assert f"more than the {MAX_LINE_CHARS:,} read" in rejects["reasons"].iloc[0]
    assert peak < 8 * MAX_LINE_CHARS


# -- numbers written leniently (item 3) ------------------------------------------------------
LENIENT = ["NAN", "-nan", "+nan", "nAn", "8_1", "\uff18\uff11", "\u0668\u0661", "\u00a081"]


@pytest.mark.parametrize("text", LENIENT)
def test_lenient_number_text_has_a_reason(text):
    assert number_text_problem(text) is not None


@pytest.mark.parametrize("text", ["81", " 81.5 ", "-3", "+2.5e3", ".5", "7.", "NaN", "nan", ""])
def test_plain_numbers_and_the_documented_markers_pass(text):
    assert number_text_problem(text) is None


@pytest.mark.parametrize("text", LENIENT)
def test_score_rejects_lenient_numbers_with_a_reason(bundle, lines, tmp_path, text):
    path = _write(tmp_path / "num.csv", _with(lines, "age_years", text))
    summary, rejects = _score(bundle, path, tmp_path)
    assert summary.rows_in == N
    reason = rejects.set_index("row").loc[str(BAD), "reasons"]
    assert f"age_years={text!r} is not a" in reason


# -- headers and quoting (smaller items) -----------------------------------------------------
def test_a_duplicated_header_is_named_as_duplicated(bundle, lines, tmp_path):
    body = list(lines)
    body[0] = body[0].replace(",bmi,", ",age_years,")
    path = _write(tmp_path / "dup.csv", body)
    for call in (lambda: read_records(path), lambda: score_file(bundle, path, tmp_path / "s.csv")):
        with pytest.raises(sr.RecordsReadError, match=r"names 'age_years' twice") as excinfo:
            call()
        assert "age_years.1" not in str(excinfo.value)


def test_an_unbalanced_quote_is_reported_at_its_line_and_does_not_swallow_rows(
    bundle, lines, tmp_path
):
    path = _write(tmp_path / "quote.csv", _with(lines, "centre_id", '"C1'))
    records, rejects = read_records(path, on_invalid="split")
    assert rejects["row"].tolist() == [BAD] and len(records) == N - 1
    assert rejects["reasons"].iloc[0].startswith(f'line {BAD + 2} has an unbalanced quote (")')
    summary, score_rejects = _score(bundle, path, tmp_path)
    assert summary.rows_in == N
    assert (
        f"line {BAD + 2} has an unbalanced quote"
        in score_rejects.set_index("row").loc[str(BAD), "reasons"]
    )


def test_malformed_quoting_rejects_that_row(lines, tmp_path):
    path = _write(tmp_path / "q.csv", _with(lines, "centre_id", '"C1"x'))
    records, rejects = read_records(path, on_invalid="split")
    assert rejects["row"].tolist() == [BAD] and len(records) == N - 1
    assert "malformed quoting" in rejects["reasons"].iloc[0]


def test_the_encoding_error_names_the_cli_option(lines, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(_with(lines, "centre_id", "Müller")) + "\n").encode("latin-1"))
    with pytest.raises(sr.RecordsReadError, match=f"line {BAD + 2}, column .*--encoding latin-1"):
        read_records(path)
    assert read_records(path, encoding="latin-1")["centre_id"].iloc[BAD] == "Müller"


# -- the validate command ------------------------------------------------------------------
typer_testing = pytest.importorskip("typer.testing")
runner = typer_testing.CliRunner()


def _validate(*args: str) -> Any:
    from spinerisk.cli import app

    return runner.invoke(app, ["validate", *args])


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("hu_l1", "30\x00x", "hu_l1 contains a NUL byte (\\x00)"),
        ("centre_id", "A" * (1 << 20), "centre_id is longer than 65,536 characters"),
        ("age_years", "-nan", "age_years='-nan' is not a number"),
        ("egfr", "\u0668\u0661", "egfr='\u0668\u0661' is not a plain number"),
    ],
    ids=["nul", "1MiB-field", "nan-spelling", "arabic-indic"],
)
def test_validate_rejects_the_row_with_its_reason(lines, tmp_path, column, value, reason):
    path = _write(tmp_path / "in.csv", _with(lines, column, value))
    result = _validate(str(path))
    assert result.exit_code == 2 and reason in result.output
    assert "Traceback" not in result.output
    rejects = tmp_path / "rejects.csv"
    result = _validate(str(path), "--rejects", str(rejects))
    assert result.exit_code == 2, result.output
    assert f"records in: {N} = valid: {N - 1} + rejected: 1" in result.output
    written = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert written["row"].tolist() == [str(BAD)] and reason in written["reasons"].iloc[0]


def test_validate_rejects_to_parquet_and_leaves_no_temporary_file(lines, tmp_path):
    path = _write(tmp_path / "in.csv", _with(lines, "age_years", "300"))
    rejects = tmp_path / "rejects.parquet"
    result = _validate(str(path), "--rejects", str(rejects))
    assert result.exit_code == 2 and "rejected: 1" in result.output
    written = pd.read_parquet(rejects)  # real Parquet, not CSV text
    assert written["row"].tolist() == [BAD] and "age_years" in written["reasons"].iloc[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "rejects.parquet"]


@pytest.mark.parametrize("target", ["folder", "rejects.xlsx", "missing/rejects.csv"])
def test_validate_rejects_location_errors_exit_2_without_leftovers(lines, tmp_path, target):
    path = _write(tmp_path / "in.csv", lines)
    (tmp_path / "folder").mkdir()
    result = _validate(str(path), "--rejects", str(tmp_path / target))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "in.csv"]
    assert list((tmp_path / "folder").iterdir()) == []


def test_validate_takes_the_encoding_its_error_advises(lines, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(_with(lines, "centre_id", "Müller")) + "\n").encode("latin-1"))
    result = _validate(str(path))
    assert result.exit_code == 2 and "--encoding latin-1" in result.output
    result = _validate(str(path), "--encoding", "latin-1")
    assert "is not valid utf-8" not in result.output
    assert "centre_id='Müller'" in result.output  # now read, and judged by the schema


# -- hostile requests (item 4, content types) --------------------------------------------------
@pytest.fixture(scope="module")
def client(bundle):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    return TestClient(create_app(bundle), raise_server_exceptions=False)


SURROGATE_BODIES = [
    '{"patient_id": "\\ud800", "age_years": 80.0, "sex": "F"}',
    '{"patient_id": "P1", "age_years": 80.0, "sex": "\\udfff"}',
    '{"patient_id": "P1", "age_years": 80.0, "sex": "F", "\\ud800": 1}',
    '{"records": [{"patient_id": "P\\ud83d", "age_years": 80.0, "sex": "F"}]}',
]


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/explain"])
@pytest.mark.parametrize("body", SURROGATE_BODIES)
def test_a_lone_surrogate_is_a_client_error_not_a_500(client, route, body):
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert "\\ud8" in response.text or "\\udf" in response.text  # named, as an escape


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_wrong_content_type_is_named_in_the_error(client, content_type):
    body = '{"patient_id": "P1", "age_years": 80.0, "sex": "F"}'
    response = client.post("/v1/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["header", "content-type"]
    assert content_type in detail["msg"] and "application/json" in detail["msg"]
