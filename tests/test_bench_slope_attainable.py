"""benchmarks/slope_attainable.py: a known truth shaped like a small set (run by hand on
real data; here on a SYNTHETIC Weibull set whose generating model is known)."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bd = importlib.import_module("bench_default")
sa = importlib.import_module("slope_attainable")


def weibull_set(n: int, seed: int = 0) -> pd.DataFrame:
    """Weibull AFT truth ``log T = 6 - 0.5 a + 0.3 (g == "y") + W / 1.5``; a noise category
    with many levels; uniform censoring."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    g = rng.choice(["x", "y"], size=n, p=[0.6, 0.4])
    site = rng.choice([f"s{i}" for i in range(12)], size=n)
    t = np.exp(6.0 - 0.5 * a + 0.3 * (g == "y")) * rng.exponential(size=n) ** (1 / 1.5)
    c = rng.uniform(50, 1500, size=n)
    return pd.DataFrame(
        {
            "pid": np.arange(n),
            "a": a,
            "g": g,
            "site": site,
            "event": t <= c,
            "time": np.minimum(t, c),
        }
    )


def test_the_truth_recovers_the_generating_model_and_the_censoring():
    records = weibull_set(4000)
    truth = sa.Truth(records)
    # the category with few levels is in the truth, the twelve-level one is left as noise
    assert truth.columns == ["a", "g=y"]
    assert truth.beta == pytest.approx([-0.5, 0.3], abs=0.06)
    assert truth.log_scale0 == pytest.approx(6.0, abs=0.08)
    assert truth.shape == pytest.approx(1.5, abs=0.08)
    rng = np.random.default_rng(1)
    drawn = sa.sample(records, truth, rng)
    assert len(drawn) == len(records) and drawn["pid"].equals(records["pid"])
    assert drawn["event"].dtype == bool
    assert drawn["event"].mean() == pytest.approx(records["event"].mean(), abs=0.03)
    # the censoring times follow the set's reverse Kaplan-Meier curve (inverse transform)
    c = truth.censoring_times(100_000, rng)
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        t = np.quantile(c, q)
        km = truth.censor_survival[np.searchsorted(truth.censor_times, t, side="right") - 1]
        assert np.mean(c > t) == pytest.approx(km, abs=0.01)
    # past the curve's last step, the longest follow-up
    late = sa.Truth(records.assign(event=records["event"] | (records["time"] > 1400)))
    assert late.censoring_times(1000, rng).max() == pytest.approx(records["time"].max())
    # the true risk by a horizon is the share of drawn event times before it
    test, outcome = sa.draw_test_records(records, truth, 20_000, 400.0, seed=2)
    assert test["pid"].is_unique
    assert truth.risk_by(test, 400.0).mean() == pytest.approx(outcome.mean(), abs=0.015)


def test_run_writes_each_models_slopes_and_the_estimate(monkeypatch, tmp_path, capsys):
    records = weibull_set(300, seed=3)
    spec = bd.Data("toy", "survival", "SYNTHETIC", "generated here", 400, "days")
    monkeypatch.setattr(bd, "SURVIVAL", (spec,))
    monkeypatch.setattr(bd, "load_survival", lambda s: records)
    monkeypatch.setattr(bd, "MODELS", {"survival": ("default", "linear")})
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["toy", "--samples", "2", "--test-records", "3000", "--cv"]
    assert sa.main([*argv, "--json", str(out_json), "--markdown", str(out_md)]) == 0
    res = json.loads(out_json.read_text())
    (s,) = res["sets"]
    assert set(s["models"]) == {"default", "linear"}
    for v in (*s["models"].values(), s["cv_estimate"]):
        assert len(v["slopes"]) == 2 and np.isfinite(v["slopes"]).all()
    assert s["warnings"] is not None
    # the true risks are calibrated on the test records; the models are fitted on 300
    assert 0.85 <= s["oracle_slope"] <= 1.15
    assert all(0.5 < x < 1.5 for x in s["models"]["linear"]["slopes"])
    page = out_md.read_text()
    assert "SYNTHETIC" in page and "| linear |" in page and "5-fold estimate" in page
    assert "toy sample 2/2" in capsys.readouterr().out
    assert "correlation with the true slope" in page
    shares = [f"{s['models'][m]['in_range']:.0%}" for m in ("default", "linear")]
    row = next(line for line in page.splitlines() if line.startswith("| toy | 300 |"))
    assert row.split(" | ")[3:5] == [
        f"**{v}**" if v == max(shares, key=lambda x: int(x[:-1])) else v for v in shares
    ]
    assert re.search(r"at commit `([0-9a-f]{7,}|unknown)`", page), page[:400]
    assert "on 3,000 records of that truth" in page
    assert "correlation with the true slope over the samples n/a" in page  # 2 samples
    # beside the real set's own benchmark (its mean slope over fold seeds), when there is one
    real = tmp_path / "seeds.json"
    real.write_text(json.dumps({"sets": [{"name": "toy", "mean_slope": 0.777}]}))
    monkeypatch.setattr(sa, "REAL_SEEDS_JSON", real)
    beside = sa.to_markdown(res)
    est, true = s["cv_estimate"]["mean"], s["models"]["default"]["mean"]
    assert f"| toy | 0.78 | {est:.2f} | {true:.2f} |" in beside
    monkeypatch.setattr(sa, "REAL_SEEDS_JSON", tmp_path / "absent.json")
    # the page again from the results file alone
    out_md.unlink()
    assert sa.main(["--report-only", "--json", str(out_json), "--markdown", str(out_md)]) == 0
    assert out_md.read_text() == page


def test_reach_against_and_bad_arguments():
    r = sa.reach([0.8, 0.9, 1.0, 1.2, float("nan")])
    assert r["in_range"] == 0.4 and r["median"] == pytest.approx(0.95)
    assert r["mean"] == pytest.approx(0.975)
    a = sa._against([0.9, 1.0, 1.3], {"default": [0.8, 1.0, 1.2]})
    assert a["mean_minus_true"] == pytest.approx(0.0667, abs=1e-3)
    assert a["correlation_with_true"] == pytest.approx(0.08 / np.sqrt(0.26 / 3 * 0.08))
    assert a["verdict_agrees"] == pytest.approx(2 / 3)  # in, in, out against out, in, out
    assert sa._dirty({"spinerisk_modified": False, "benchmarks_modified": True}) == (
        " (benchmarks/ with uncommitted changes)"
    )
    for argv in (["no_such_set"], ["--samples", "1"], ["cancer", "--samples", "1"]):
        with pytest.raises(SystemExit):
            sa.main(argv)
