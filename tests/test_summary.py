"""Table 1."""

from __future__ import annotations

import pytest

import spinerisk as sr


def test_overall_column_matches_direct_computation(valid_cohort):
    t = sr.table_one(valid_cohort, fields=["age_years", "sex", "current_smoking", "t2_pattern"])
    overall = t.iloc[:, 0]
    age = valid_cohort["age_years"]
    assert overall["age_years (years), mean (SD)"] == f"{age.mean():.1f} ({age.std():.1f})"
    n_f = int((valid_cohort["sex"] == "F").sum())
    assert overall["sex=F, n (%)"] == f"{n_f} ({100 * n_f / len(valid_cohort):.1f}%)"
    smoke = valid_cohort["current_smoking"].dropna()
    assert overall["current_smoking, n (%)"].startswith(f"{int(smoke.sum())} (")
    miss = int(valid_cohort["t2_pattern"].isna().sum())
    assert overall["t2_pattern, missing n (%)"].startswith(f"{miss} (")


@pytest.mark.parametrize("by, labels", [
    ("nonunion", ["nonunion=no", "nonunion=yes"]),
    ("fx_event", ["censored", "death", "fracture"]),
])  # fmt: skip
def test_strata_partition_the_records_with_the_outcome(valid_cohort, by, labels):
    t = sr.table_one(valid_cohort, by=by, fields=["age_years"])
    heads = list(t.columns)
    assert heads[0] == f"overall (n={len(valid_cohort)})"
    assert [h.split(" (n=")[0] for h in heads[1:]] == labels
    counts = [int(h.split("(n=")[1].rstrip(")")) for h in heads[1:]]
    assert sum(counts) == valid_cohort[by].notna().sum()


def test_errors(valid_cohort):
    with pytest.raises(ValueError, match="by='nope'"):
        sr.table_one(valid_cohort, by="nope")
    with pytest.raises(ValueError, match=r"\['shoe'\]"):
        sr.table_one(valid_cohort, fields=["shoe"])
