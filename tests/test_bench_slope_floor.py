"""benchmarks/slope_floor.py: a small Cox model's out-of-fold slope at a horizon (run by
hand on real data; here on a SYNTHETIC proportional-hazards set, where it is near 1)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bd = importlib.import_module("bench_default")
floor = importlib.import_module("slope_floor")


def test_slope_floor_reports_each_seed_and_the_quarters(monkeypatch, capsys):
    rng = np.random.default_rng(0)
    n = 1500
    a, b = rng.normal(size=n), rng.normal(size=n)
    t = rng.exponential(400 * np.exp(-(0.8 * a - 0.5 * b)))
    c = rng.uniform(100, 900, size=n)
    records = pd.DataFrame({"a": a, "b": b, "time": np.minimum(t, c), "event": t <= c})
    spec = bd.Data("toy", "survival", "SYNTHETIC", "generated here", 200, "days")
    monkeypatch.setattr(bd, "SURVIVAL", (spec,))
    monkeypatch.setattr(bd, "load_survival", lambda s: records)
    assert floor.main(["toy", "a,b", "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    slopes = [float(v) for v in re.findall(r"seed \d: calibration slope ([\d.]+)", out)]
    assert len(slopes) == 2 and all(0.8 < s < 1.2 for s in slopes)
    pooled = [float(v) for v in re.findall(r"one pooled intercept: ([\d.]+)", out)]
    assert len(pooled) == 2 and all(0.8 < s < 1.2 for s in pooled)
    assert len(re.findall(r"^  \d: \d+, 0\.\d{3}, 0\.\d{3}$", out, flags=re.M)) == 4
