"""Audit log: JSON lines, no patient values, safe with concurrent writers (spinerisk.monitor)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from spinerisk.monitor import AuditLog

WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from spinerisk.audit import AuditLog  # what spinerisk.monitor exports, without its imports

    path = sys.argv[1]
    worker, n_lines, n_workers = (int(a) for a in sys.argv[2:5])
    log = AuditLog(path)
    pad = str(worker) * 5000  # long lines: a torn write would show
    gate = pathlib.Path(path).parent
    (gate / f"ready-{worker}").touch()
    deadline = time.time() + 60
    while len(list(gate.glob("ready-*"))) < n_workers and time.time() < deadline:
        time.sleep(0.001)  # all writers start together, once every interpreter is up (a
        # busy wait took the CPU from the writers still importing: one core per test worker)
    for i in range(n_lines):
        log.append({"worker": worker, "i": i, "pad": pad})
    """
)


def test_parallel_processes_lose_and_interleave_no_line(tmp_path):
    import spinerisk.audit

    assert AuditLog is spinerisk.audit.AuditLog  # the writers' class is monitor's
    path = tmp_path / "audit.jsonl"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    n_workers, n_lines = 4, 500
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(w), str(n_lines), str(n_workers)]
        )
        for w in range(n_workers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * n_workers
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every line is terminated
    events = [json.loads(line) for line in lines[:-1]]  # raises on a torn line
    assert len(events) == n_workers * n_lines
    for w in range(n_workers):
        mine = [e["i"] for e in events if e["worker"] == w]
        assert mine == list(range(n_lines))  # none lost, in order per writer
        assert all(e["pad"] == str(w) * 5000 for e in events if e["worker"] == w)
    workers = [e["worker"] for e in events]
    switches = sum(a != b for a, b in zip(workers, workers[1:], strict=False))
    print(f"{len(events)} lines, writers alternated {switches} times")
    assert switches >= n_workers - 1  # the writers really ran at the same time


@pytest.fixture
def scored(valid_cohort):
    inputs = valid_cohort.head(4).copy()
    outputs = pd.DataFrame(
        {
            "risk_183d": [0.1, 0.2, np.nan, 0.4],
            "warnings": [
                "",
                "out_of_range:age_years=104 (training 60 to 100)",
                "",
                "unseen_category:treatment=kyphoplasty (not in the training data); "
                "rarely_missing:egfr=missing (missing in 1.0% of training records)",
            ],
        },
        index=pd.Index(inputs["patient_id"].to_numpy(), name="patient_id"),
    )
    return inputs, outputs


def test_prediction_lines_hold_hashes_outputs_and_codes_but_no_patient_values(tmp_path, scored):
    inputs, outputs = scored
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    info = {"model_id": "nonunion-linear-test", "model_sha256": "ab" * 32, "extra": "ignored"}
    n = log.log_predictions(model_info=info, inputs=inputs, outputs=outputs, source="cli")
    assert n == 4
    text = path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4
    assert set(lines[0]) == {
        "timestamp", "source", "model_id", "model_sha256", "hash", "id_hash", "record_hash",
        "outputs", "warnings",
    }  # fmt: skip
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["source"] == "cli"
    assert lines[0]["hash"] == "sha256" and "extra" not in lines[0]
    assert lines[1]["outputs"] == {"risk_183d": 0.2} and lines[2]["outputs"] == {"risk_183d": None}
    assert lines[1]["warnings"] == ["out_of_range:age_years"]
    assert lines[3]["warnings"] == ["unseen_category:treatment", "rarely_missing:egfr"]
    # no identifier and no value in clear
    pid = inputs["patient_id"].iloc[0]
    assert pid not in text and "SYN-" not in text and "104" not in text
    assert lines[0]["id_hash"] == hashlib.sha256(pid.encode()).hexdigest()
    for value in inputs.iloc[0][["age_years", "bmi", "hu_l1"]].dropna():
        assert f"{value}" not in text
    assert len({line["record_hash"] for line in lines}) == 4


def test_record_hash_ignores_dtypes_and_a_key_makes_it_an_hmac(tmp_path, scored, cohort):
    inputs, outputs = scored
    raw = cohort.head(4)  # the same records before validation (other dtypes)
    plain = AuditLog(tmp_path / "a.jsonl")
    plain.log_predictions(model_info={}, inputs=inputs, outputs=outputs, source="python")
    plain.log_predictions(model_info={}, inputs=raw, outputs=outputs, source="python")
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["record_hash"] for x in a[:4]] == [x["record_hash"] for x in a[4:]]

    keyed = AuditLog(tmp_path / "b.jsonl", key="not-a-real-secret")
    keyed.log_predictions(model_info={}, inputs=inputs, outputs=outputs, source="api")
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert b[0]["hash"] == "hmac-sha256"
    assert b[0]["record_hash"] != a[0]["record_hash"] and b[0]["id_hash"] != a[0]["id_hash"]


def test_appending_never_rewrites_earlier_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"event": "first"})
    before = path.read_bytes()
    AuditLog(path).append({"event": "second"})
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_bad_calls_are_refused(tmp_path, scored):
    inputs, outputs = scored
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(ValueError, match="source must be one of"):
        log.log_predictions(model_info={}, inputs=inputs, outputs=outputs, source="email")
    with pytest.raises(ValueError, match="inputs has 3 records but outputs has 4"):
        log.log_predictions(model_info={}, inputs=inputs.head(3), outputs=outputs, source="cli")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        log.append({"x": float("nan")})
    with pytest.raises(ValueError, match="key must not be empty"):
        AuditLog(tmp_path / "x.jsonl", key="")
    assert not (tmp_path / "audit.jsonl").exists()  # nothing half-written
