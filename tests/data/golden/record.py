"""Record the golden outputs of issue 17: what every endpoint and backend answers today.

Fits a model per (endpoint, backend) on a small fixed SYNTHETIC cohort and writes, per
pair, one JSON file: held-out risks (DataFrame and list-of-dicts input), an explanation
of a few records (numbers and text), the risks after ``save`` + ``sr.load`` and the
bundle's member names; for one binary, one survival and one competing pair also the
score file and rejects written by ``spinerisk.scoring.score_file`` and the HTTP API's
answers. Floats are written with ``repr`` (shortest round-trip), so they compare bit for
bit. Only public names are used, so the recording survives moving private modules.

    python tests/data/golden/record.py --out tests/data/golden

``tests/test_golden_outputs*.py`` import :func:`outputs` from this file and compare.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import spinerisk as sr
from spinerisk.datasets import TraumaParams

N_TRAIN = 600
N_NEW = 200
N_EXPLAIN = 5
N_DICTS = 40
SEED_TRAIN, SEED_NEW = 11, 12

ODONTOID = TraumaParams(
    cervical_share=1.0, cervical_older_share=1.0, odontoid_share=1.0, upper_share=1.0
)
OLDER_CERVICAL = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
#: cohort generator settings per endpoint (SYNTHETIC data)
COHORTS: dict[str, dict[str, Any]] = {
    "collapse": {},
    "nonunion": {},
    "future_fracture": {},
    "odontoid_nonunion": {"mode": "trauma", "trauma": ODONTOID},
    "cervical_mortality": {"mode": "trauma", "trauma": OLDER_CERVICAL},
    "malignant_fracture": {"malignant": "clinic"},
}
_BINARY = ("linear", "spline", "xgboost", "lightgbm")
#: backends recorded per endpoint: each backend valid for the endpoint's kind at commit
#: 1bc91b0, then "auto" (stacking)
BACKENDS: dict[str, tuple[str, ...]] = {
    "collapse": _BINARY,
    "nonunion": _BINARY,
    "future_fracture": ("linear", "spline", "xgboost"),
    "odontoid_nonunion": _BINARY,
    "cervical_mortality": ("linear", "spline", "xgboost", "xgboost_aft"),
    "malignant_fracture": _BINARY,
}
#: every (endpoint, backend) recorded
CASES: list[tuple[str, str]] = [(e, b) for e, bs in BACKENDS.items() for b in (*bs, "auto")]
#: largest difference allowed between the fast path (records as dicts) and the DataFrame
#: path of one fit, compared within a run (each is compared with its recording bit for bit)
FAST_PATH_ATOL = 1e-12
#: explanations computed on purpose by another exact algorithm since the recording, and
#: the largest difference allowed in their numbers (text and structure still exactly):
#: LightGBM boosters explained by woodelf's TreeSHAP, which computes in float32, instead of
#: LightGBM's float64 pred_contrib (issue 18 point 5): float32 precision of values up to
#: 100 (risk points are percentage points); at most 1.4e-6 apart on these cases
EXPLAIN_ATOL = {"lightgbm": 1e-5}
#: pairs whose score file and HTTP answers are recorded too
SERVED = {("nonunion", "xgboost"), ("cervical_mortality", "linear"), ("future_fracture", "linear")}
#: columns and JSON keys that change from run to run or from release to release
VOLATILE_COLUMNS = {"model_id", "model_version", "scored_at", "run_id", "created_utc"}
VOLATILE_KEYS = {"model_id", "model_version", "created_utc", "sha256", "versions", "path"}


def case_id(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


# -- exact JSON values ----------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-ready value that keeps floats exact (repr) and tells NaN from None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def frame(df: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as columns, index, dtypes and values, exactly."""
    return _plain(
        {
            "columns": list(df.columns),
            "dtypes": [str(t) for t in df.dtypes],
            "index_name": df.index.name,
            "index": df.index.tolist(),
            "data": [list(row) for row in df.itertuples(index=False, name=None)],
        }
    )


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


# -- inputs ---------------------------------------------------------------------------------
def cohorts(endpoint: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and held-out cohorts (SYNTHETIC) for an endpoint."""
    kw = COHORTS[endpoint]
    return (
        sr.make_spine_cohort(N_TRAIN, seed=SEED_TRAIN, **kw),
        sr.make_spine_cohort(3 * N_NEW, seed=SEED_NEW, **kw),
    )


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()


def _held_out(model: Any, new: pd.DataFrame) -> pd.DataFrame:
    """The first N_NEW held-out records inside the endpoint's scope."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checked = sr.validate(new)
        scope = model.endpoint_.in_scope(checked, model.schema_).to_numpy()
    return new[scope].head(N_NEW)


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value


def _dict_records(records: pd.DataFrame, fields: list[str] | None = None) -> list[dict[str, Any]]:
    """Records as a client sends them (JSON values, null for missing), all fields or
    ``fields`` only."""
    cols = [c for c in records.columns if fields is None or c in fields]
    return [{k: _json_value(r[k]) for k in cols} for r in records.to_dict("records")]


# -- outputs --------------------------------------------------------------------------------
def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _explanation(model: Any, records: pd.DataFrame) -> dict[str, Any]:
    ex = _quiet(model.explain, records)
    return {
        "contributions": frame(ex.contributions),
        "feature_contributions": frame(ex.feature_contributions),
        "risk_points": frame(ex.risk_points),
        "output": _plain(ex.output.tolist()),
        "risk": _plain(ex.risk.tolist()),
        "base_value": _plain(float(ex.base_value)),
        "base_risk": _plain(float(ex.base_risk)),
        "scale": ex.scale,
        "horizon": _plain(float(ex.horizon)),
        "method": ex.method,
        "top_drivers": _plain(ex.top_drivers().tolist()),
        "sentences": _plain(ex.sentences().tolist()),
    }


def _without_fit_times(value: Any) -> Any:
    """``value`` without the per-candidate fit ``seconds`` column of a saved table
    (``backend="auto"``'s selection), at any depth."""
    if isinstance(value, dict):
        out = {k: _without_fit_times(v) for k, v in value.items()}
        columns = out.get("columns")
        if isinstance(columns, list) and all(isinstance(c, dict) for c in columns):
            out["columns"] = [c for c in columns if c.get("name") != "seconds"]
        return out
    if isinstance(value, list):
        return [_without_fit_times(v) for v in value]
    return value


def _digest_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _member_digest(name: str, data: bytes) -> str | None:
    """Digest of a saved part; None for skops files, whose bytes name arrays by object
    id and carry zip times (their content is checked through the loaded model)."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        return None
    if name.endswith(".json"):
        return _digest_json(_without_fit_times(json.loads(data)))
    return hashlib.sha256(data).hexdigest()[:16]


def _manifest_digests(manifest: dict[str, Any]) -> dict[str, str]:
    """Per manifest entry, a digest of its content without times and versions."""
    manifest = _without_fit_times(_drop_volatile(manifest))
    manifest.pop("members", None)  # digests of the members' bytes: see _member_digest
    return {key: _digest_json(value) for key, value in manifest.items()}


def _bundle(model: Any, path: Path, records: pd.DataFrame) -> dict[str, Any]:
    """What ``save`` writes (member names and digests; per manifest entry, a digest of
    its content) and what ``sr.load`` predicts."""
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        parts = {n: _member_digest(n, zf.read(n)) for n in zf.namelist() if n != "manifest.json"}
        members = sorted(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    loaded = sr.load(path)
    return {
        "members": members,
        "member_digests": parts,
        "manifest_members": sorted(manifest.get("members", {})),
        "manifest_digests": _manifest_digests(manifest),
        "risk": frame(_quiet(loaded.predict_risk, records)),
    }


def _csv_without_volatile(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, name in enumerate(rows[0]) if name not in VOLATILE_COLUMNS]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return out.getvalue()


def _score_file(bundle: Path, records: pd.DataFrame, work: Path) -> dict[str, Any]:
    """Score 60 records with two bad rows (an impossible age, a missing id) injected."""
    rows = records.head(60).copy()
    rows["age_years"] = rows["age_years"].astype(object)
    rows.iloc[3, rows.columns.get_loc("age_years")] = 250
    rows.iloc[7, rows.columns.get_loc(rows.columns[0])] = None
    src = work / "in.csv"
    rows.to_csv(src, index=False)
    summary = sr.score_file(
        bundle, src, work / "scores.csv", rejects=work / "rejects.csv", chunk_size=25
    )
    return {
        "counts": [summary.rows_in, summary.scored, summary.rejected, summary.flagged],
        "scores": _csv_without_volatile(work / "scores.csv"),
        "rejects": _csv_without_volatile(work / "rejects.csv"),
    }


def _api(bundle: Path, frame_in: pd.DataFrame) -> dict[str, Any]:
    """Answers to a record, a batch of 3, an invalid record; explain; the model."""
    from fastapi.testclient import TestClient

    from spinerisk.api import create_app

    client = TestClient(create_app(bundle))
    fields = client.get("/v1/model").json()["fields"]
    records = _dict_records(frame_in, fields)
    bad = dict(records[0], age_years=150.0)

    def call(method: str, route: str, body: Any = None) -> dict[str, Any]:
        r = client.request(method, route, json=body)
        return {"status": r.status_code, "body": _drop_volatile(r.json())}

    return {
        "predict_one": call("POST", "/v1/predict", records[0]),
        "predict_batch": call("POST", "/v1/predict", {"records": records[:3]}),
        "predict_invalid": call("POST", "/v1/predict", bad),
        "explain_batch": call("POST", "/v1/explain", {"records": records[:3]}),
        "model": call("GET", "/v1/model"),
    }


def outputs(case: tuple[str, str], work: Path) -> dict[str, Any]:
    """Everything recorded for one (endpoint, backend) pair; ``work`` holds its files.

    BLAS runs on one thread: a matrix product summed over another number of threads can
    differ in the last bit, and the recording must not depend on the machine's cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _outputs(case, work)


def _outputs(case: tuple[str, str], work: Path) -> dict[str, Any]:
    endpoint, backend = case
    train, new = cohorts(endpoint)
    model = _quiet(sr.RiskModel(endpoint, backend=backend).fit, train)
    records = _held_out(model, new)
    dicts = _dict_records(records.head(N_DICTS))
    out: dict[str, Any] = {
        "case": list(case),
        "cohorts_sha256": [_digest(train), _digest(new)],
        "risk": frame(_quiet(model.predict_risk, records)),
        "risk_dicts": frame(_quiet(model.predict_risk, dicts)),
        "explain": _explanation(model, records.head(N_EXPLAIN)),
        "bundle": _bundle(model, work / "model.srb", records),
    }
    if case in SERVED:
        out["score_file"] = _score_file(work / "model.srb", records, work)
        out["api"] = _api(work / "model.srb", records.head(3))
    return out


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=None, sort_keys=True, allow_nan=False) + "\n"


# -- comparing ------------------------------------------------------------------------------
def _decode(value: Any) -> Any:
    """Inverse of :func:`_plain` for non-finite floats."""
    if isinstance(value, dict):
        if set(value) == {"float"}:
            return float(value["float"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def loads(text: str) -> dict[str, Any]:
    return _decode(json.loads(text))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(got: list[Any], want: list[Any], where: str, atol: float) -> None:
    types = [type(v).__name__ for v in got], [type(v).__name__ for v in want]
    assert types[0] == types[1], f"{where}: int/float types {types[0]} != {types[1]}"
    got_a, want_a = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if atol == 0:
        # bit for bit: equal values, NaN where NaN, and the same sign of zero
        np.testing.assert_array_equal(got_a, want_a, err_msg=where, strict=True)
        np.testing.assert_array_equal(np.signbit(got_a), np.signbit(want_a), err_msg=where)
    else:
        np.testing.assert_allclose(got_a, want_a, rtol=0, atol=atol, err_msg=where)


def _frames(got: dict[str, Any], want: dict[str, Any], where: str, atol: float) -> None:
    for key in ("columns", "dtypes", "index_name", "index"):
        assert got[key] == want[key], f"{where}.{key}: {got[key]!r} != {want[key]!r}"
    assert len(got["data"]) == len(want["data"]), f"{where}: row count"
    for j, column in enumerate(want["columns"]):
        got_c = [row[j] for row in got["data"]]
        want_c = [row[j] for row in want["data"]]
        if all(_is_number(v) for v in want_c) and all(_is_number(v) for v in got_c):
            _numbers(got_c, want_c, f"{where}[{column!r}]", atol)
        else:
            compare(got_c, want_c, f"{where}[{column!r}]", atol)


def compare(got: Any, want: Any, where: str = "", atol: float = 0.0) -> None:
    """Assert ``got`` equals the recorded ``want``: strings and structure exactly,
    floats bit for bit (``atol=0``) or within ``atol``; a failure names the path."""
    if isinstance(want, dict) and {"columns", "data"} <= set(want):
        assert isinstance(got, dict), f"{where}: {type(got).__name__} instead of a table"
        _frames(got, want, where, atol)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (
            f"{where}: keys {sorted(got) if isinstance(got, dict) else got!r} != {sorted(want)}"
        )
        for key in want:
            compare(got[key], want[key], f"{where}.{key}", atol)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        if want and all(_is_number(v) for v in want) and all(_is_number(v) for v in got):
            _numbers(got, want, where, atol)
        else:
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                compare(g, w, f"{where}[{i}]", atol)
    elif _is_number(want) and _is_number(got):
        _numbers([got], [want], where, atol)
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


#: keys the HTTP answers gained on purpose after the recording (issue 17 point 4, commit
#: 1a931b2: one name per idea): new key -> the deprecated key it must equal
RENAMED_API_KEYS = {"horizons": "horizon_days", "horizon": "horizon_days"}


def _without_new_names(api: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """``api`` without the keys of :data:`RENAMED_API_KEYS` that the recording lacks,
    after checking that each equals the deprecated key it renames (still answered)."""
    out = {}
    for call, answer in api.items():
        body, old = answer["body"], recorded.get(call, {}).get("body")
        if isinstance(body, dict) and isinstance(old, dict):
            body = dict(body)
            for new, alias in RENAMED_API_KEYS.items():
                if new in body and new not in old:
                    assert alias in body, f"api.{call}: {new!r} answered without {alias!r}"
                    compare(body.pop(new), body[alias], f"api.{call}.{new} vs {alias}")
        out[call] = dict(answer, body=body)
    return out


def check(case: tuple[str, str], work: Path, golden: Path) -> None:
    """Refit ``case`` with the code imported now and compare with its recording."""
    want = loads((golden / f"{case_id(case)}.json").read_text())
    # through JSON as the recording went, so that both sides have the same types
    got = loads(dumps(outputs(case, work)))
    assert got["cohorts_sha256"] == want["cohorts_sha256"], (
        "the synthetic cohorts changed (make_spine_cohort's output): every other "
        "difference follows from that"
    )
    # a saved and reloaded model predicts what the fitted one did; its manifest lists
    # every member of the file
    compare(got["bundle"]["risk"], got["risk"], "save+load vs in memory")
    listed = sorted([*got["bundle"]["manifest_members"], "manifest.json"])
    assert listed == got["bundle"]["members"], "the manifest does not list the bundle's files"
    # records given as dicts (the single-record fast path) get the DataFrame path's risks;
    # not bit for bit: for linear and spline models the fast path sums in another order
    # (at most 1e-15 apart at commit 1bc91b0; the boosters' paths are identical)
    n = len(got["risk_dicts"]["data"])
    head = dict(got["risk"], index=got["risk"]["index"][:n], data=got["risk"]["data"][:n])
    compare(got["risk_dicts"], head, "dicts vs DataFrame", atol=FAST_PATH_ATOL)
    if "api" in got and "api" in want:
        got["api"] = _without_new_names(got["api"], want["api"])
    if case[1] in EXPLAIN_ATOL:
        where = f"{case_id(case)}.explain"
        compare(got.pop("explain"), want.pop("explain"), where, atol=EXPLAIN_ATOL[case[1]])
    compare(got, want, case_id(case))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", help="case ids (endpoint-backend) to record")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for case in CASES:
        if args.only and case_id(case) not in args.only:
            continue
        start = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            result = outputs(case, Path(tmp))
        timings[case_id(case)] = round(time.process_time() - start, 2)
        (args.out / f"{case_id(case)}.json").write_text(dumps(result))
        print(f"{case_id(case)}: {timings[case_id(case)]} s CPU", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
