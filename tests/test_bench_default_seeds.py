"""The repeated-seed summary of the default-model benchmark: means, targets and the page.

The comparison itself is ``bench_default.bench_accuracy`` (run by hand on real data, not in
CI); this checks what the seeds script makes of its results, on runs built here.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
seeds = importlib.import_module("bench_default_seeds")
bd = importlib.import_module("bench_default")


def _run(default: float, peers: dict[str, float], slope: float, cox: float) -> dict:
    models = {
        "default": {
            "discrimination": default,
            "calibration_slope": slope,
            "calibration_slope_pooled": slope - 0.25,  # one intercept for every fold
            "cox_slope": cox,
        },
        "linear": {"discrimination": default - 0.01, "calibration_slope": 1.0, "cox_slope": 1.0},
        "selected": {"discrimination": default},
    }
    for name, value in peers.items():
        models[name] = {"discrimination": value, "calibration_slope": 1.0, "cox_slope": 1.0}
    best = max(peers, key=peers.get)
    return {
        "n": 100,
        "events": 40,
        "models": models,
        "default_minus_best_peer": default - peers[best],
    }


def _results(seed_list: list[int], *sets: dict) -> dict:
    """A results file as ``run`` writes it, around summarised sets."""
    meta = {
        "date": "d",
        "machine": {"cpus": 2},
        "git": {"commit": "abc", "spinerisk_modified": False},
        "uptime_start": "u",
        "uptime_end": "u",
        "seeds": seed_list,
        "folds": 5,
    }
    return {"meta": meta, "sets": list(sets)}


def test_means_over_seeds_and_targets():
    peers = bd.PEERS["survival"]
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(3):
        values = dict(zip(peers, rng.uniform(0.70, 0.72, len(peers)), strict=True))
        runs.append(_run(float(rng.uniform(0.70, 0.72)), values, float(rng.uniform(0.8, 1.2)), 1.0))
    out = seeds.summarise("x", "survival", runs, [0, 1, 2])
    mean_default = np.mean([r["models"]["default"]["discrimination"] for r in runs])
    best = max(peers, key=lambda m: np.mean([r["models"][m]["discrimination"] for r in runs]))
    mean_best = np.mean([r["models"][best]["discrimination"] for r in runs])
    assert out["best_peer"] == best
    assert out["mean_gap"] == pytest.approx(mean_default - mean_best)
    assert out["gap_met"] == (mean_default - mean_best >= -bd.TOLERANCE)
    slope = np.mean([r["models"]["default"]["calibration_slope"] for r in runs])
    assert out["mean_slope"] == pytest.approx(slope)
    assert out["slope_met"] == (bd.SLOPE_RANGE[0] <= slope <= bd.SLOPE_RANGE[1])
    assert out["mean_pooled_slope"] == pytest.approx(slope - 0.25)  # shown, not judged
    assert out["gap_per_seed"] == [r["default_minus_best_peer"] for r in runs]


def test_a_miss_is_marked_on_the_page():
    peers = bd.PEERS["survival"]
    bad = [_run(0.70, dict.fromkeys(peers, 0.72), 0.5, 0.7) for _ in range(2)]
    good = [_run(0.73, dict.fromkeys(peers, 0.72), 1.0, 1.0) for _ in range(2)]
    res = _results(
        [0, 1],
        seeds.summarise("bad", "survival", bad, [0, 1]),
        seeds.summarise("good", "survival", good, [0, 1]),
    )
    page = seeds.to_markdown(res)
    bad_line = next(line for line in page.splitlines() if line.startswith("| bad "))
    good_line = next(line for line in page.splitlines() if line.startswith("| good "))
    assert bad_line.count("✗") == 2 and "✗" not in good_line
    assert "met on the mean: 1 of 2 data sets; slope target met on the mean: 1 of 2" in page
    assert "| 0.70 |" in bad_line  # the Cox slope's mean
    assert "| 0.50 ✗ | 0.50, 0.50 | 0.25 |" in bad_line  # slope, per seed, pooled slope


def test_slope_reach_counts_the_seeds_in_range():
    lo, hi = bd.SLOPE_RANGE
    slopes = [lo - 0.01, lo, 1.0, hi, hi + 0.01, float("nan")]
    r = seeds.slope_reach(slopes)
    assert (r["in_range"], r["seeds"]) == (3, 6)  # the ends count; NaN is a miss
    finite = np.array(slopes[:-1])
    assert r["mean"] == pytest.approx(finite.mean())
    assert r["sd"] == pytest.approx(finite.std(ddof=1))
    one = seeds.slope_reach([1.0])
    assert one["in_range"] == 1 and np.isnan(one["sd"])


def test_the_page_counts_each_models_seeds_in_range():
    peers = bd.PEERS["survival"]
    runs = [_run(0.72, dict.fromkeys(peers, 0.71), s, 1.0) for s in (0.5, 0.9, 1.1)]
    other = [_run(0.72, dict.fromkeys(peers, 0.71), 1.0, 1.0) for _ in range(3)]
    res = _results(
        [0, 1, 2],
        seeds.summarise("small", "survival", runs, [0, 1, 2]),
        seeds.summarise("other", "survival", other, [0, 1, 2]),
    ) | {"title": "A title", "json": "x.json"}
    page = seeds.to_markdown(res)
    assert page.startswith("# A title\n") and "is in `x.json`" in page
    table = page[page.index("## How often") :]
    header = next(line for line in table.splitlines() if line.startswith("| data set"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in table.splitlines() if line.startswith("| small "))
    cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))
    sd = np.std([0.5, 0.9, 1.1], ddof=1)
    assert cells["default"] == f"2/3, {np.mean([0.5, 0.9, 1.1]):.2f} ({sd:.2f})"
    assert cells["linear"] == "3/3, 1.00 (0.00)"
    total = next(line for line in table.splitlines() if line.startswith("| all "))
    assert "**5/6** on 2 sets" in total  # the default: 2 + 3 of 6 runs


def test_the_default_page_says_which_parts_an_earlier_run_made():
    """``bench_default.py --parts timing`` keeps the other parts' results, and the page
    says at which commit and when they were made (its header names the new run)."""
    now = {"git": {"commit": "bbbbbbb"}, "date": "2026-12-06T10:00:00Z", "uptime_start": "load 1"}
    then = {"git": {"commit": "aaaaaaa"}, "date": "2026-12-05T10:00:00Z", "uptime_start": "load 2"}
    runs = {"accuracy": bd._part_run(then), "timing": bd._part_run(now)}
    (line,) = [x for x in bd._parts_run({"meta": now, "parts_run": runs}) if x]
    assert "1 (accuracy) at commit `aaaaaaa` on 2026-12-05T10:00:00Z" in line
    assert "timing" not in line
    assert bd._parts_run({"meta": now, "parts_run": {"timing": runs["timing"]}}) == []
    # a part made by another run at the same commit is named too
    earlier = {**now, "date": "2026-12-06T09:00:00Z"}
    runs["boosted"] = bd._part_run(earlier)
    (line,) = [x for x in bd._parts_run({"meta": now, "parts_run": runs}) if x]
    assert "3 (boosted) at commit `bbbbbbb` on 2026-12-06T09:00:00Z" in line


def test_a_partial_run_keeps_the_other_parts_and_when_they_ran(tmp_path, monkeypatch):
    """``main(--parts timing)`` on an earlier results file: the accuracy part and its
    provenance are kept (from the file's meta when it has no ``parts_run``)."""
    old_meta = {"git": {"commit": "aaaaaaa", "spinerisk_modified": False},
                "date": "2026-12-05T10:00:00Z", "uptime_start": "load 2"}  # fmt: skip
    previous = {"meta": old_meta, "accuracy": [{"name": "x"}], "warnings": {}}
    json_path, md_path = tmp_path / "d.json", tmp_path / "d.md"
    json_path.write_text(json.dumps(previous))
    monkeypatch.setattr(bd, "bench_timing", lambda sizes, repeats, log: {"rows": []})
    monkeypatch.setattr(bd, "to_markdown", lambda res: "page")
    assert bd.main(["--parts", "timing", "--json", str(json_path), "--markdown", str(md_path)]) == 0
    res = json.loads(json_path.read_text())
    assert res["accuracy"] == [{"name": "x"}] and res["timing"] == {"rows": []}
    assert res["parts_run"]["accuracy"] == bd._part_run(old_meta)
    assert res["parts_run"]["timing"]["date"] == res["meta"]["date"]
    assert set(res["parts_run"]) == {"accuracy", "timing"}
