"""Shared fixtures: small seeded synthetic cohorts (never real patient data)."""

from __future__ import annotations

import pandas as pd
import pytest

import spinerisk as sr


@pytest.fixture(scope="session")
def _cohort_300() -> pd.DataFrame:
    return sr.make_spine_cohort(300, seed=0)


@pytest.fixture
def cohort(_cohort_300: pd.DataFrame) -> pd.DataFrame:
    """A fresh copy of a 300-record synthetic cohort (tests may modify it)."""
    return _cohort_300.copy()


@pytest.fixture(scope="session")
def valid_cohort(_cohort_300: pd.DataFrame) -> pd.DataFrame:
    """The same cohort after validation (schema dtypes). Do not modify."""
    return sr.validate(_cohort_300)
