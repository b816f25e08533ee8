"""Batch scoring (spinerisk.scoring): row accounting, chunk independence, atomic output.

All records are synthetic (make_spine_cohort).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk import scoring
from spinerisk.scoring import _chunk, _file, score_file, score_frame


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calibrated XGBoost nonunion model (5-fold ensemble) saved as a bundle."""
    path = tmp_path_factory.mktemp("model") / "nonunion.srb"
    model = sr.RiskModel("nonunion", backend="xgboost", booster_params={"n_estimators": 100}).fit(
        sr.make_spine_cohort(500, seed=0)
    )
    model.save(path)
    return path


@pytest.fixture(scope="module")
def model(bundle: Path) -> sr.RiskModel:
    return sr.load(bundle)


@pytest.fixture(scope="module")
def manifest(bundle: Path) -> dict:
    """The bundle's manifest, read once (reading checks the whole archive)."""
    return sr.bundle.read_manifest(bundle)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    # western profile: some values fall outside the (japan) training data -> warnings
    return sr.make_spine_cohort(24, seed=7, profile="western")


def _reference(model: sr.RiskModel, records: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return model.predict_risk(records).reset_index()


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def first_12(model: sr.RiskModel, records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first 12 records and their risks from one predict_risk call (read only)."""
    head = records.head(12)
    return head, _reference(model, head)


@pytest.mark.parametrize(
    ("fmt_in", "fmt_out", "chunk_size"),
    [
        (".csv", ".parquet", 1),
        (".csv", ".parquet", 7),
        (".parquet", ".csv", 7),
        (".parquet", ".csv", 1000),
    ],
)
def test_chunked_scores_equal_one_predict_risk_call(
    tmp_path, bundle, manifest, first_12, chunk_size, fmt_in, fmt_out
):
    records, ref = first_12
    src = tmp_path / f"in{fmt_in}"
    if fmt_in == ".csv":
        records.to_csv(src, index=False)
    else:
        records.to_parquet(src)
    out = tmp_path / f"scores{fmt_out}"
    summary = score_file(bundle, src, out, chunk_size=chunk_size)
    assert (summary.rows_in, summary.scored, summary.rejected) == (12, 12, 0)

    got = _read(out)
    assert list(got.columns) == [
        "patient_id",
        "risk_183d",
        "warnings",
        "model_id",
        "model_version",
    ]
    assert got["patient_id"].tolist() == ref["patient_id"].tolist()
    # bit for bit (CSV writes the shortest repr that round-trips)
    risk = got["risk_183d"].astype(float).to_numpy()
    np.testing.assert_array_equal(risk, ref["risk_183d"].to_numpy())
    assert got["warnings"].fillna("").tolist() == ref["warnings"].tolist()
    assert (ref["warnings"] != "").any()  # the warnings path was exercised
    assert summary.flagged == int((ref["warnings"] != "").sum())
    assert got["model_id"].str.startswith(f"nonunion-xgboost-{manifest['created_utc']}-").all()
    # the model's own version: its bundle's creation time (as the HTTP API means it)
    assert set(got["model_version"]) == {manifest["created_utc"]}


def test_model_identity_has_one_owner(bundle, model):
    """Scores, audit lines and the API name a model by spinerisk.bundle.model_identity:
    model_version is the model's own version (its bundle's creation time, or "unsaved"),
    and the software that saved it is saved_by."""
    from spinerisk._version import __version__
    from spinerisk.bundle import model_identity, read_manifest
    from spinerisk.monitor import bundle_info

    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    manifest = read_manifest(bundle)
    info = scoring.model_info_from_path(bundle)
    assert info == model_identity(manifest, sha) == bundle_info(bundle)
    assert scoring.model_info(model, bundle) == info
    assert info["model_version"] == manifest["created_utc"] != ""
    assert (
        info["saved_by"]
        == f"{manifest['versions']['spinerisk']}+bundle.{manifest['format_version']}"
    )
    unsaved = scoring.model_info(model)
    assert (unsaved["model_id"], unsaved["model_version"], unsaved["model_sha256"]) == (
        "nonunion-xgboost-unsaved",
        "unsaved",
        "",
    )
    assert unsaved["saved_by"].startswith(f"{__version__}+bundle.")
    scores, _ = score_frame(model, sr.make_spine_cohort(3, seed=1))
    assert set(scores["model_version"]) == {"unsaved"}
    with pytest.raises(sr.ArtifactError, match="No model bundle"):
        scoring.model_info_from_path(bundle.with_name("absent.srb"))


def _bad_csv(tmp_path: Path, records: pd.DataFrame) -> tuple[Path, dict[int, list[str]]]:
    """Records as CSV with injected problems; returns the expected reason fragments by row."""
    text = records.astype(object).where(records.notna(), "").astype(str)
    text.loc[3, "age_years"] = "abc"
    text.loc[5, "t2_pattern"] = "glowing"
    text.loc[9, "sex"] = '=HYPERLINK("http://x")'
    text.loc[21, "patient_id"] = text.loc[2, "patient_id"]  # duplicate, far apart
    text.loc[12, "age_years"] = "300"
    lines = [",".join(text.columns)]
    for i, row in enumerate(text.itertuples(index=False)):
        fields = ['"' + v.replace('"', '""') + '"' if ("," in v or '"' in v) else v for v in row]
        if i == 16:
            fields = fields[:-3]  # a ragged row
        lines.append(",".join(fields))
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dup = text.loc[2, "patient_id"]
    expected = {
        2: [f"patient_id={dup!r} is a duplicate"],
        3: ["age_years='abc' is not a number"],
        5: ["t2_pattern='glowing' is not an allowed code"],
        9: ["sex='=HYPERLINK", "is not an allowed code"],
        12: ["age_years=300.0 is out of range"],
        16: ["line 18 has", "fields; expected"],
        21: [f"patient_id={dup!r} is a duplicate"],
    }
    return path, expected


@pytest.mark.parametrize("chunk_size", [2, 1000])
def test_bad_rows_are_rejected_with_reasons_and_counted(
    tmp_path, bundle, model, records, chunk_size
):
    src, expected = _bad_csv(tmp_path, records)
    out, rej = tmp_path / "scores.parquet", tmp_path / "rejects.csv"
    summary = score_file(bundle, src, out, rejects=rej, chunk_size=chunk_size)
    assert summary.rows_in == 24
    assert summary.rows_in == summary.scored + summary.rejected
    assert summary.rejected == len(expected)

    rejects = pd.read_csv(rej, dtype=str, keep_default_na=False)
    assert rejects["row"].astype(int).tolist() == sorted(expected)
    for row, reason in zip(rejects["row"].astype(int), rejects["reasons"], strict=True):
        for fragment in expected[row]:
            assert fragment in reason, (row, reason)
    # the original values are kept, as text
    assert rejects.set_index(rejects["row"].astype(int)).loc[3, "age_years"] == "abc"
    scores = pd.read_parquet(out)
    good = [i for i in range(24) if i not in expected]
    assert scores["patient_id"].tolist() == records["patient_id"].iloc[good].tolist()
    ref = _reference(model, records.iloc[good])
    np.testing.assert_array_equal(scores["risk_183d"].to_numpy(), ref["risk_183d"].to_numpy())


def test_rejects_do_not_depend_on_chunking(tmp_path, bundle, records):
    src, _ = _bad_csv(tmp_path, records)
    frames = []
    for size in (3, 1000):
        rej = tmp_path / f"rejects{size}.parquet"
        score_file(bundle, src, tmp_path / f"s{size}.parquet", rejects=rej, chunk_size=size)
        frames.append(pd.read_parquet(rej))
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_formula_cells_are_neutralised_in_csv_outputs(tmp_path, bundle, records):
    src, _ = _bad_csv(tmp_path, records)
    rej = tmp_path / "rejects.csv"
    score_file(bundle, src, tmp_path / "scores.csv", rejects=rej, chunk_size=7)
    with rej.open(newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert '\'=HYPERLINK("http://x")' in cells
    plain = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    assert not any(c.startswith(scoring.FORMULA_START) and not plain.fullmatch(c) for c in cells)


@pytest.mark.parametrize("cell", ["-5", "-0.25", "+3", "-1e-3", "+.5"])
def test_a_plain_signed_number_stays_as_sent(cell):
    """A spreadsheet reads '-5' as the number -5: the rejects file keeps it re-submittable."""
    assert scoring.neutralize_formulas(pd.DataFrame({"x": [cell]}))["x"].tolist() == [cell]


@pytest.mark.parametrize("cell", ["-5+A1", "-cmd|' /C calc'!A0", "+1-", "-", "--5", "-5 "])
def test_a_signed_cell_that_is_not_one_number_is_quoted(cell):
    assert scoring.neutralize_formulas(pd.DataFrame({"x": [cell]}))["x"].tolist() == ["'" + cell]


def test_failure_mid_stream_leaves_no_output(tmp_path, bundle, records, monkeypatch):
    src = tmp_path / "in.csv"
    records.to_csv(src, index=False)
    import itertools

    counter, calls = itertools.count(1), []  # next() is atomic: chunks run on two threads
    real = _chunk._predict_checked

    def flaky(*args, **kwargs):
        calls.append(next(counter))
        if calls[-1] == 3:
            raise RuntimeError("simulated crash in chunk 3")
        return real(*args, **kwargs)

    monkeypatch.setattr(_chunk, "_predict_checked", flaky)
    with pytest.raises(RuntimeError, match="chunk 3"):
        score_file(
            bundle, src, tmp_path / "out.parquet", rejects=tmp_path / "rej.csv", chunk_size=7
        )
    # the 4th (last) chunk may already be scoring beside the 3rd when it fails
    assert max(calls) in (3, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no output, no temp


def test_accounting_is_checked_before_the_rename(tmp_path, bundle, records, monkeypatch):
    src = tmp_path / "in.parquet"
    records.to_parquet(src)
    real = _file._finish_chunk

    def lossy(*args, **kwargs):  # a bug that loses a row must not produce output
        chunk = real(*args, **kwargs)
        return chunk._replace(scores=chunk.scores.iloc[1:])

    monkeypatch.setattr(_file, "_finish_chunk", lossy)
    with pytest.raises(RuntimeError, match="Row accounting failed: 24 rows in but 20 scored"):
        score_file(bundle, src, tmp_path / "out.parquet", chunk_size=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_score_frame_rows_are_global_and_duplicates_all_rejected(model, records):
    batch = records.head(6).copy()
    batch.loc[4, "patient_id"] = batch.loc[1, "patient_id"]
    scores, rejects = score_frame(model, batch, row_offset=1000)
    assert rejects["row"].tolist() == [1001, 1004]
    assert rejects["reasons"].str.contains("is a duplicate; expected a unique patient_id").all()
    assert len(scores) + len(rejects) == 6
    # an id seen in another chunk of the same input is rejected as well
    scores, rejects = score_frame(
        model, records.head(3), duplicate_ids={records.loc[0, "patient_id"]}
    )
    assert rejects["row"].tolist() == [0]
    assert len(scores) == 2


def test_frame_level_problems_raise(model, records):
    with pytest.raises(sr.SchemaValidationError, match="not a field of the schema"):
        score_frame(model, records.head(3).assign(surname="x"))


def test_mapping_is_applied_and_rejects_keep_source_names(tmp_path, bundle, records):
    raw = records.head(10).rename(columns={"age_years": "Age"})
    raw["sex"] = raw["sex"].map({"F": "Female", "M": "Male"})
    raw.loc[2, "Age"] = 999.0
    raw["Notes"] = "free text naming the patient"
    src = tmp_path / "site.parquet"
    raw.to_parquet(src)
    mapping = tmp_path / "site.toml"
    mapping.write_text(
        'ignore = ["Notes"]\n[columns]\nAge = "age_years"\n[values.sex]\nFemale = "F"\nMale = "M"\n'
    )
    rej = tmp_path / "rej.parquet"
    summary = score_file(bundle, src, tmp_path / "s.parquet", rejects=rej, mapping=mapping)
    assert (summary.scored, summary.rejected) == (9, 1)
    rejects = pd.read_parquet(rej)
    assert "Age" in rejects.columns and rejects.loc[0, "Age"] == "999.0"
    assert "Notes" not in rejects.columns  # what the mapping ignores never leaves again
    assert "age_years=999.0 is out of range" in rejects.loc[0, "reasons"]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: d / "missing.csv", FileNotFoundError, "No records file"),
        (lambda d: d / "records.xlsx", sr.RecordsReadError, "unknown file type"),
        (lambda d: d / "broken.parquet", sr.RecordsReadError, "not a readable Parquet"),
        (lambda d: d / "semicolon.csv", sr.RecordsReadError, "looks ';'-delimited"),
        (lambda d: d / "header_only.csv", sr.SchemaValidationError, "'age' is not a field"),
    ],
)
def test_bad_input_files_fail_clearly_without_output(tmp_path, bundle, make, error, match):
    (tmp_path / "records.xlsx").write_bytes(b"PK")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    (tmp_path / "semicolon.csv").write_text("patient_id;age_years\nP1;70\n")
    (tmp_path / "header_only.csv").write_text("id,age\n")  # no records, wrong columns
    before = sorted(tmp_path.iterdir())
    with pytest.raises(error, match=match):
        score_file(bundle, make(tmp_path), tmp_path / "out.parquet")
    assert sorted(tmp_path.iterdir()) == before


def test_bad_bundle_and_outputs_fail_clearly(tmp_path, bundle, records):
    src = tmp_path / "in.parquet"
    records.head(3).to_parquet(src)
    fake = tmp_path / "fake.srb"
    fake.write_bytes(b"not a zip")
    with pytest.raises(sr.ArtifactError, match="not a spinerisk bundle"):
        score_file(fake, src, tmp_path / "out.parquet")
    with pytest.raises(sr.RecordsReadError, match="unknown file type '.xlsx'"):
        score_file(bundle, src, tmp_path / "out.xlsx")
    with pytest.raises(sr.RecordsReadError, match="does not exist"):
        score_file(bundle, src, tmp_path / "nowhere" / "out.parquet")
    with pytest.raises(sr.RecordsReadError, match="audit log must be a file of its own"):
        score_file(
            bundle,
            src,
            tmp_path / "o.csv",
            rejects=tmp_path / "r.csv",
            audit_log=tmp_path / "r.csv",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.srb", "in.parquet"]


def test_a_tab_typed_as_backslash_t_is_a_tab(tmp_path, bundle, records):
    src = tmp_path / "in.txt"
    records.head(4).to_csv(src, sep="\t", index=False)
    summary = score_file(bundle, src, tmp_path / "out.csv", sep="\\t")  # as a shell passes it
    assert (summary.rows_in, summary.scored) == (4, 4)
    with pytest.raises(sr.RecordsReadError, match="sep=';;' is not a delimiter"):
        score_file(bundle, src, tmp_path / "bad.csv", sep=";;")
    assert not (tmp_path / "bad.csv").exists()
    header_only = tmp_path / "empty.csv"
    records.head(0).to_csv(header_only, index=False)  # right columns, no records: fine
    assert score_file(bundle, header_only, tmp_path / "none.csv").rows_in == 0


def test_audit_log_has_one_line_per_scored_row(tmp_path, bundle, records):
    src, expected = _bad_csv(tmp_path, records)
    log = tmp_path / "audit.jsonl"
    summary = score_file(bundle, src, tmp_path / "s.parquet", chunk_size=7, audit_log=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == summary.scored == 24 - len(expected)
    assert {line["model_sha256"] for line in lines} == {
        hashlib.sha256(bundle.read_bytes()).hexdigest()
    }
    assert all(line["source"] == "python" for line in lines)


def test_neutralize_formulas_leaves_numbers_and_plain_text():
    frame = pd.DataFrame({"a": ["@cmd", "+1+A2", "plain", None], "b": [-1.0, 1.0, 2.0, 3.0]})
    safe = scoring.neutralize_formulas(frame)
    assert safe["a"].tolist() == ["'@cmd", "'+1+A2", "plain", None]
    assert safe["b"].tolist() == [-1.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("chunk_size", [1, 2, 10])
def test_duplicates_are_found_after_the_mapping_strips_whitespace(
    tmp_path, bundle, records, chunk_size
):
    frame = records.head(4).copy()
    first = frame["patient_id"].iloc[0]
    frame.loc[frame.index[1], "patient_id"] = first + " "  # the same id once stripped
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    summary = score_file(
        bundle,
        src,
        tmp_path / "out.csv",
        rejects=tmp_path / "rej.csv",
        mapping={"strip_whitespace": True},
        chunk_size=chunk_size,
    )
    assert (summary.rows_in, summary.scored, summary.rejected) == (4, 2, 2)
    rejects = pd.read_csv(tmp_path / "rej.csv")
    assert list(rejects["row"]) == [0, 1]
    assert set(rejects["reasons"]) == {f"patient_id={first!r} is a duplicate; expected a unique "
                                       "patient_id"}  # fmt: skip
    assert first not in set(pd.read_csv(tmp_path / "out.csv")["patient_id"])


def test_untranslatable_values_reject_their_rows_not_the_run(tmp_path, bundle, records):
    frame = records.head(6).rename(columns={"sex": "Gender"})
    frame["Gender"] = frame["Gender"].astype(str).map({"F": "Female", "M": "Male"})
    frame.loc[frame.index[3], "Gender"] = "U"  # no translation for this code
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    mapping = {"columns": {"Gender": "sex"}, "values": {"sex": {"Female": "F", "Male": "M"}}}
    for chunk_size in (2, 100):
        summary = score_file(
            bundle,
            src,
            tmp_path / "out.csv",
            rejects=tmp_path / "rej.csv",
            mapping=mapping,
            chunk_size=chunk_size,
        )
        assert (summary.rows_in, summary.scored, summary.rejected) == (6, 5, 1)
        rejects = pd.read_csv(tmp_path / "rej.csv")
        assert list(rejects["row"]) == [3]  # the input row, not the row within a chunk
        assert (
            rejects["reasons"]
            .iloc[0]
            .startswith("Gender='U' (field sex): not in [values.sex] and not a code of the schema")
        )


def test_chunks_scored_at_once_come_out_in_input_order(tmp_path, bundle, model, records):
    """The worker threads finish chunks out of order here (the first waits until a later
    one has been scored); scores and rejects are still written in input order, the
    warning filters are left as they were, and the stages of every thread are timed."""
    import threading

    src = tmp_path / "in.parquet"
    bad = records.copy()
    bad.loc[[3, 17], "age_years"] = 300.0  # one reject in two different chunks
    bad.to_parquet(src)
    real = _file._finish_chunk
    seen: list[str] = []
    lock, overtaken, waited = threading.Lock(), threading.Event(), []
    first_id = records["patient_id"].iloc[0]

    def slow_first(model_, part, **kwargs):
        with lock:
            seen.append(threading.current_thread().name)
        first = first_id in set(part.checked["patient_id"])
        if first:  # the input's first chunk waits until a later one is done: overtaken
            waited.append(overtaken.wait(timeout=60))
        out = real(model_, part, **kwargs)
        if not first:
            overtaken.set()
        return out

    before = list(warnings.filters)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_file, "_finish_chunk", slow_first)
        summary = score_file(
            bundle, src, tmp_path / "out.parquet", rejects=tmp_path / "rej.csv", chunk_size=3
        )
    assert warnings.filters == before
    assert waited == [True]  # a later chunk was scored before the first
    assert len(seen) == 8 and all(name.startswith("spinerisk-score") for name in seen)
    assert len(set(seen)) == 2  # two workers
    got = pd.read_parquet(tmp_path / "out.parquet")
    expected_ids = [i for k, i in enumerate(records["patient_id"]) if k not in (3, 17)]
    assert got["patient_id"].tolist() == expected_ids
    ref = _reference(model, records.drop(index=[3, 17]))
    np.testing.assert_array_equal(got["risk_183d"].to_numpy(), ref["risk_183d"].to_numpy())
    assert _read(tmp_path / "rej.csv")["row"].tolist() == ["3", "17"]
    assert (summary.scored, summary.rejected) == (22, 2)
    assert summary.timings["validate"] > 0 and summary.timings["predict"] > 0


def test_write_table_atomically_is_public(tmp_path):
    """The CLI writes its rejects tables with the public name (text cells, an integer row
    column, formula-safe CSV)."""
    table = pd.DataFrame({"row": [3, 7], "reasons": ["=bad", "ok"], "age": [1.5, None]})
    scoring.write_table_atomically(table, tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines() == [
        "row,reasons,age",
        "3,'=bad,1.5",
        "7,ok,",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # nothing else left
    with pytest.raises(sr.RecordsReadError, match="unknown file type '.txt'"):
        scoring.write_table_atomically(table, tmp_path / "r.txt")


def test_audit_log_lives_below_scoring_and_monitoring():
    """Scoring writes audit lines without importing monitoring; spinerisk.monitor still
    offers the same AuditLog and bundle_info."""
    import spinerisk.audit
    import spinerisk.monitor

    assert spinerisk.monitor.AuditLog is spinerisk.audit.AuditLog is _file.AuditLog
    assert spinerisk.monitor.bundle_info is spinerisk.audit.bundle_info
