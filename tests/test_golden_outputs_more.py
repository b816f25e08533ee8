"""Issue 17, "behaviour does not change", for the future_fracture, cervical (trauma) and
malignant-fracture endpoints: see ``test_golden_outputs.py``, which checks collapse and
nonunion the same way."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
    ("future_fracture", "linear"),
    ("future_fracture", "spline"),
    ("future_fracture", "xgboost"),
    ("future_fracture", "auto"),
    ("odontoid_nonunion", "linear"),
    ("odontoid_nonunion", "spline"),
    ("odontoid_nonunion", "xgboost"),
    ("odontoid_nonunion", "lightgbm"),
    ("odontoid_nonunion", "auto"),
    ("cervical_mortality", "linear"),
    ("cervical_mortality", "spline"),
    ("cervical_mortality", "xgboost"),
    ("cervical_mortality", "xgboost_aft"),
    ("cervical_mortality", "auto"),
    ("malignant_fracture", "linear"),
    ("malignant_fracture", "spline"),
    ("malignant_fracture", "xgboost"),
    ("malignant_fracture", "lightgbm"),
    ("malignant_fracture", "auto"),
]


def test_every_other_recording_is_checked():
    assert set(CASES) == {c for c in record.CASES if c[0] not in {"collapse", "nonunion"}}


@pytest.mark.parametrize("case", CASES, ids=record.case_id)
def test_outputs_are_unchanged(case: tuple[str, str], tmp_path: Path) -> None:
    record.check(case, tmp_path, GOLDEN)
