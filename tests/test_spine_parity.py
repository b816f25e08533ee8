"""The spine endpoints give the risks they gave before schemas and endpoints became data
files: ``tests/data/golden/spine_risks.csv`` was written by the code of commit a5b4036
(row rules and derived features hand-written in Python) for every spine endpoint and the
linear and XGBoost backends, on a fixed synthetic cohort. The Cox penalty is held at
that commit's 0.1 (``recorded.fixed_cox_penalty``): this file checks the rules."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recorded import fixed_cox_penalty

import spinerisk as sr

GOLDEN = Path(__file__).parent / "data" / "golden" / "spine_risks.csv"


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sr.make_spine_cohort(1600, seed=11)  # SYNTHETIC


@pytest.mark.parametrize("endpoint", ["nonunion", "collapse", "future_fracture"])
@pytest.mark.parametrize("backend", ["linear", "xgboost"])
def test_risks_are_unchanged(cohort: pd.DataFrame, endpoint: str, backend: str) -> None:
    golden = pd.read_csv(GOLDEN)
    want = golden[(golden["endpoint"] == endpoint) & (golden["backend"] == backend)]
    want = want.pivot(index="patient_id", columns="column", values="risk")
    with warnings.catch_warnings(), fixed_cox_penalty():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(endpoint, backend=backend).fit(cohort.iloc[:1200])
        got = model.predict_risk(cohort.iloc[1200:]).drop(columns="warnings")
    assert sorted(got.columns) == sorted(want.columns)
    got = got.loc[want.index, want.columns]
    # identical on the machine that wrote them; 1e-12 leaves room for another CPU's libm
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0)
