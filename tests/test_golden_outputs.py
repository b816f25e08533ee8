"""Issue 17, "behaviour does not change": every endpoint and backend gives today the risks,
explanations, bundles, score files and API answers recorded at commit 1bc91b0, bit for bit.

``tests/data/golden/<endpoint>-<backend>.json`` were written by ``tests/data/golden/record.py``
(see the README there); collapse and nonunion are checked here, the other endpoints in
``test_golden_outputs_more.py`` (another xdist worker; the two take similar times). Each
test refits one model on the same SYNTHETIC cohort with the current code and compares with
``record.check``.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "data" / "golden"


def _recorder() -> ModuleType:
    name = "spinerisk_golden_record"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, GOLDEN / "record.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


record = _recorder()
#: the pairs checked here, hard-coded (not read from spinerisk.models.BACKENDS)
CASES = [
    ("collapse", "linear"),
    ("collapse", "spline"),
    ("collapse", "xgboost"),
    ("collapse", "lightgbm"),
    ("collapse", "auto"),
    ("nonunion", "linear"),
    ("nonunion", "spline"),
    ("nonunion", "xgboost"),
    ("nonunion", "lightgbm"),
    ("nonunion", "auto"),
]


def test_every_recording_is_checked_and_every_check_recorded():
    files = {p.name for p in GOLDEN.glob("*-*.json")}
    assert files == {f"{record.case_id(c)}.json" for c in record.CASES}
    assert set(CASES) == {c for c in record.CASES if c[0] in {"collapse", "nonunion"}}


@pytest.mark.parametrize("case", CASES, ids=record.case_id)
def test_outputs_are_unchanged(case: tuple[str, str], tmp_path: Path) -> None:
    record.check(case, tmp_path, GOLDEN)


def test_the_comparison_sees_one_ulp_a_sign_of_zero_and_one_character():
    want = record.loads((GOLDEN / "nonunion-linear.json").read_text())
    risk = want["risk"]
    record.compare(record.loads(record.dumps(want)), want)  # equal to itself
    changes = [
        lambda r: r["data"][7].__setitem__(0, float(np.nextafter(r["data"][7][0], 1.0))),
        lambda r: r["data"][0].__setitem__(1, r["data"][0][1] + " "),
        lambda r: r["index"].__setitem__(3, "SYN-999999"),
        lambda r: r["dtypes"].__setitem__(0, "float32"),
    ]
    for change in changes:
        got = copy.deepcopy(risk)
        change(got)
        with pytest.raises(AssertionError):
            record.compare(got, risk, "risk")
    with pytest.raises(AssertionError):
        record.compare([-0.0, 1.0], [0.0, 1.0])
    with pytest.raises(AssertionError):
        record.compare({"a": 1}, {"a": 1.0})


def test_renamed_api_keys_are_accepted_only_beside_an_equal_deprecated_key():
    recorded = {"model": {"status": 200, "body": {"horizon_days": [182.62]}}}
    same = {"model": {"status": 200, "body": {"horizon_days": [182.62], "horizons": [182.62]}}}
    assert record._without_new_names(same, recorded) == recorded
    other = {"model": {"status": 200, "body": {"horizon_days": [182.62], "horizons": [365.25]}}}
    with pytest.raises(AssertionError):
        record._without_new_names(other, recorded)
    alone = {"model": {"status": 200, "body": {"horizons": [182.62]}}}
    with pytest.raises(AssertionError):
        record._without_new_names(alone, recorded)
