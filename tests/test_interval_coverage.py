"""Per-patient risk intervals cover the true risk when the model's form can hold it.

A synthetic cohort drawn from a known logistic model (four numeric predictors, one of
them without effect, no missing values) on a schema of its own: the linear backend can
represent the truth, so its 90% bootstrap intervals should cover the true risk of about
90% of new patients. On the spine generator they cover less (docs/intervals.md): there
the model's form and the masked predictors put the truth beyond what refits can show.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import endpoint_from_dict, interval_columns
from spinerisk.schema import infer_schema
from spinerisk.schema._files import schema_from_dict, schema_to_dict

BETA = np.array([0.8, -0.5, 0.3, 0.0])
INTERCEPT = -1.0


def _cohort(rng: np.random.Generator, n: int, prefix: str) -> tuple[pd.DataFrame, np.ndarray]:
    x = rng.normal(size=(n, BETA.size))
    risk = 1.0 / (1.0 + np.exp(-(INTERCEPT + x @ BETA)))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame.insert(0, "pid", [f"{prefix}{i}" for i in range(n)])
    return frame, risk


def _schema(frame: pd.DataFrame):
    spec = schema_to_dict(infer_schema(frame, name="logistic_truth", id_column="pid"))
    for field in spec["fields"]:
        if field["name"] == "outcome":
            field["role"] = "outcome"
        elif field["name"] in ("a", "b", "c", "d"):  # new patients may fall outside
            field.pop("min", None)
            field.pop("max", None)
    return schema_from_dict(spec)


def _coverage(seed: int, n: int = 1000, n_resamples: int = 30) -> float:
    rng = np.random.default_rng(seed)
    train, risk = _cohort(rng, n, "p")
    train["outcome"] = (rng.random(n) < risk).astype(int)
    endpoint = endpoint_from_dict(
        {"name": "event", "kind": "binary", "event": "outcome", "description": "Event."}
    )
    model = sr.RiskModel(endpoint=endpoint, schema=_schema(train), backend="linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model.fit(train).fit_intervals(train, n_resamples=n_resamples, random_state=seed)
        new, true_risk = _cohort(rng, 2000, "q")
        out = model.predict_risk(new, interval=0.9)
    lo, hi = interval_columns("risk")
    return float(np.mean((out[lo] <= true_risk) & (true_risk <= out[hi])))


@pytest.mark.slow
def test_ninety_percent_intervals_cover_the_true_risk_when_the_form_is_right():
    coverage = [_coverage(seed) for seed in (0, 1, 2)]
    # one cohort's coverage is a single draw (its patients share the fitted model):
    # the mean over three development cohorts is held to the 85-95% target
    assert 0.85 <= np.mean(coverage) <= 0.95, coverage
    assert min(coverage) >= 0.7, coverage
