"""The vectorised bootstrap (issue 18 point 6) gives the numbers of the per-resample loop.

Two checks:

* every estimate and interval :func:`spinerisk.evaluate` returns (metrics, subgroup
  table, comparator table, smoothed calibration bands) for a binary, a survival and a
  competing-risk model equals the golden output recorded at commit 6ed5d8d, before the
  bootstrap was vectorised (``tests/data/golden/evaluate_<kind>.json``), to 1e-12
  (relative and absolute: the vectorised sums add the same terms in another order),
  with the linear Cox penalty of that commit (``recorded.fixed_cox_penalty``);
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
from recorded import fixed_cox_penalty

import spinerisk as sr

GOLDEN = Path(__file__).parent / "data" / "golden"
KINDS = ("binary", "survival", "competing")
#: Vectorised sums add the same terms in another order.
TOL = 1e-12


def _case(kind: str) -> tuple[sr.RiskModel, pd.DataFrame, list]:
    """A linear model, a few hundred eligible SYNTHETIC records and two comparators (a score and a
    probability, both functions of age)."""
    from spinerisk.datasets import TraumaParams
    from spinerisk.evaluation import Comparator

    if kind == "binary":
        name, cohort = "collapse", sr.make_spine_cohort(500, seed=0)
    elif kind == "survival":
        params = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
        name = "cervical_mortality"
        cohort = sr.make_spine_cohort(500, seed=11, mode="trauma", trauma=params)
    else:
        name, cohort = "future_fracture", sr.make_spine_cohort(400, seed=2)
    with warnings.catch_warnings(), fixed_cox_penalty():
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


# -- each batched metric against the metric function on every resample ------------------------
def _loop(fn, rows):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in rows:
            try:
                value = float(fn(r))
            except ValueError:
                value = np.nan
            out.append(value if np.isfinite(value) else np.nan)
    return np.array(out)


def _assert_same(got, want):
    got = np.where(np.isfinite(got), got, np.nan)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= TOL * np.maximum(1.0, np.abs(want[ok])))


def _outcomes(n=150, seed=0):
    """Times with ties, event codes 0/1/2 and risks with ties (SYNTHETIC)."""
    rng = np.random.default_rng(seed)
    time = np.round(rng.exponential(400.0, n)) + 1.0
    codes = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    risk = np.round(rng.uniform(0.02, 0.7, n), 2)
    rows = rng.integers(0, n, size=(25, n))
    rows[0] = rng.integers(0, 4, n)  # a resample of 4 records: metrics undefined or odd
    return time, codes, risk, rows


def test_binary_batches_equal_the_metric_on_each_resample():
    from spinerisk import metrics as m
    from spinerisk.metrics import _binary as mb

    time, codes, risk, rows = _outcomes()
    y = codes == 1
    pairs = [
        (mb.roc_auc_resamples, m.roc_auc),
        (mb.pr_auc_resamples, m.pr_auc),
        (mb.brier_score_resamples, m.brier_score),
        (mb.scaled_brier_score_resamples, m.scaled_brier_score),
        (mb.observed_expected_ratio_resamples, m.observed_expected_ratio),
        (mb.expected_calibration_error_resamples, m.expected_calibration_error),
        (mb.calibration_slope_resamples, m.calibration_slope),
        (mb.calibration_intercept_resamples, m.calibration_intercept),
    ]
    for batch, fn in pairs:
        want = _loop(lambda r, fn=fn: fn(y[r], risk[r]), rows)
        assert np.isfinite(want).sum() >= 20, fn.__name__
        _assert_same(batch(y, risk, rows), want)


def test_time_to_event_batches_equal_the_metric_on_each_resample():
    from spinerisk import metrics as m
    from spinerisk.metrics import _discrimination as md
    from spinerisk.metrics import _horizon as mh

    time, codes, risk, rows = _outcomes()
    ev = codes == 1
    _assert_same(
        md.harrell_c_resamples(time, ev, risk, rows),
        _loop(lambda r: m.harrell_c(time[r], ev[r], risk[r]), rows),
    )
    _assert_same(
        md.harrell_c_resamples(time, codes == 2, risk, rows),
        _loop(lambda r: m.cause_specific_c(time[r], codes[r], risk[r], cause=2), rows),
    )
    for h in (None, 200.0):
        _assert_same(
            md.competing_c_resamples(time, codes, risk, 1, h, rows),
            _loop(
                lambda r, h=h: m.competing_c(time[r], codes[r], risk[r], cause=1, horizon=h), rows
            ),
        )
    for h in (30.0, 400.0, 1e5):  # the last beyond follow-up: NaN
        for cause, c in ((None, (codes != 0).astype(int)), (2, codes)):
            _assert_same(
                mh.observed_expected_resamples(time, c, risk, h, cause, rows),
                _loop(
                    lambda r, h=h, c=c, cause=cause: m.observed_expected_at_horizon(
                        time[r], c[r], risk[r], h, cause=cause
                    ),
                    rows,
                ),
            )
    # exact ties are fine; distinct risks within scikit-survival's 1e-8 are looped instead
    assert md._no_near_ties(risk) and not md._no_near_ties(np.array([0.2, 0.2 + 1e-9, 0.5]))
    _assert_same(
        md.uno_c_resamples(time, ev, risk, 500.0, rows),
        _loop(lambda r: m.uno_c(time[r], ev[r], time[r], ev[r], risk[r], tau=500.0), rows),
    )
    for h in (100.0, 500.0):
        _assert_same(
            md.time_dependent_auc_resamples(time, ev, risk, h, rows),
            _loop(
                lambda r, h=h: m.time_dependent_auc(time[r], ev[r], time[r], ev[r], risk[r], [h])[
                    0
                ],
                rows,
            ),
        )


def test_ipcw_batches_equal_the_metric_on_each_resample():
    """Brier score, calibration slope and intercept at a horizon, each resample its own
    censoring reference (competing events are known non-events)."""
    from spinerisk import metrics as m
    from spinerisk.metrics import _ipcw as mi

    time, codes, risk, rows = _outcomes()
    for cause in (None, 1):
        c = (codes != 0).astype(int) if cause is None else codes
        for h in (100.0, 600.0):
            cens = mi.CensoringResamples(time, c != 0, rows)
            y, w, ok = mi.horizon_outcome_resamples(time, c, h, cause or 1, rows, cens)
            brier = np.where(ok, np.mean(w * np.square(y - risk[rows]), axis=1), np.nan)
            _assert_same(
                brier,
                _loop(
                    lambda r, h=h, c=c, cause=cause: m.brier_score_at_horizon(
                        time[r], c[r], risk[r], h, cause=cause
                    ),
                    rows,
                ),
            )
            lp = mi.logit(risk)[rows]
            for slope, fn in (
                (True, m.calibration_slope_at_horizon),
                (False, m.calibration_intercept_at_horizon),
            ):
                got = np.where(ok, mi.fit_logistic_resamples(y, lp, w, slope=slope), np.nan)
                want = _loop(
                    lambda r, h=h, c=c, cause=cause, fn=fn: fn(
                        time[r], c[r], risk[r], h, cause=cause
                    ),
                    rows,
                )
                assert np.isfinite(want).sum() >= 20
                _assert_same(got, want)


def _eval_data(kind: str, n: int = 200, seed: int = 4):
    from spinerisk.evaluation._data import EvalData

    time, codes, _, _ = _outcomes(n, seed)
    rng = np.random.default_rng(seed + 1)
    horizons = (100.0, 300.0, 700.0)
    risk = np.sort(rng.uniform(0.02, 0.6, (n, 3)), axis=1)
    if kind == "binary":
        return EvalData("binary", codes == 1, None, risk[:, :1], horizons[:1])
    event = codes if kind == "competing" else codes != 0
    grid = np.linspace(80.0, 650.0, 10)
    grid_risk = np.sort(rng.uniform(0.02, 0.6, (n, 10)), axis=1)
    return EvalData(kind, event, time, risk, horizons, grid_risk=grid_risk, grid=grid)


@pytest.mark.parametrize("kind", KINDS)
def test_bootstrap_metrics_batched_equals_the_loop_and_is_used(kind, monkeypatch):
    from spinerisk.evaluation import _bootstrap as b
    from spinerisk.evaluation._data import metric_specs, subgroup_specs

    evd = _eval_data(kind)
    looped = []
    chunk = b._chunk
    monkeypatch.setattr(
        b, "_chunk", lambda specs, d, r: looped.extend(s.name for s in specs) or chunk(specs, d, r)
    )
    cases = [
        (metric_specs(kind, evd.horizons), evd.horizons[-1]),
        (subgroup_specs(kind, evd.horizons[0]), evd.horizons[0]),
    ]
    for specs, horizon in cases:
        args = {"n_bootstrap": 30, "ci": 0.9, "random_state": 7}
        want = b.bootstrap_metrics(specs, evd, **args)
        assert looped
        looped.clear()
        got = b.bootstrap_metrics(b.with_batches(specs, evd, horizon=horizon), evd, **args)
        assert looped == []  # every metric batched
        for key in ("estimate", "lower", "upper", "n_resamples"):
            _assert_same(got[key], want[key])
        # in blocks of 7 resamples (memory bound): the same numbers
        monkeypatch.setattr(b, "BATCH_CELLS", 7 * len(evd))
        blocks = b.bootstrap_metrics(b.with_batches(specs, evd, horizon=horizon), evd, **args)
        monkeypatch.undo()
        monkeypatch.setattr(
            b, "_chunk", lambda s, d, r: looped.extend(x.name for x in s) or chunk(s, d, r)
        )
        assert looped == []
        for key in ("lower", "upper", "n_resamples"):
            np.testing.assert_array_equal(blocks[key], got[key])


def test_a_batched_form_that_disagrees_with_the_metric_is_not_used():
    from dataclasses import replace

    from spinerisk.evaluation import _bootstrap as b
    from spinerisk.evaluation._data import metric_specs

    evd = _eval_data("binary")
    specs = b.with_batches(metric_specs("binary", evd.horizons), evd)
    wrong = [replace(s, batch=lambda d, rows: np.zeros(len(rows))) for s in specs]
    args = {"n_bootstrap": 10, "ci": 0.9, "random_state": 0}
    want = b.bootstrap_metrics(specs, evd, **args)
    got = b.bootstrap_metrics(wrong, evd, **args)
    for key in ("estimate", "lower", "upper"):
        _assert_same(got[key], want[key])


def test_running_windows_equal_one_aalen_johansen_estimate_per_window():
    from spinerisk.metrics import _ipcw as mi

    time, codes, risk, _ = _outcomes(300)
    grid = mi.default_grid(risk, 0.2)
    k = 60
    order = np.argsort(risk, kind="stable")
    for h in (150.0, 500.0, 1e5):
        predicted, observed = mi.running_observed(time, codes, risk, h, 1, grid, 0.2)
        for j, g in enumerate(grid):
            lo = int(np.clip(np.searchsorted(risk[order], g) - k // 2, 0, len(risk) - k))
            idx = order[lo : lo + k]
            assert predicted[j] == pytest.approx(risk[idx].mean(), rel=TOL)
            want = mi.aalen_johansen_at(time[idx], codes[idx], 1, h)
            assert (np.isnan(want) and np.isnan(observed[j])) or observed[j] == want


@pytest.mark.parametrize("kind", ["binary", "survival"])
def test_comparator_table_batched_equals_the_loop(kind, monkeypatch):
    """A published probability with a value for every record (batched), and a score with
    missing values (looped, its subset differs per resample)."""
    from dataclasses import replace

    from spinerisk.evaluation import Comparator
    from spinerisk.evaluation import _compare as c

    evd = _eval_data(kind)
    rng = np.random.default_rng(9)
    score = rng.normal(size=len(evd))
    score[:15] = np.nan
    evd = replace(evd, scores=np.column_stack([np.clip(evd.risk[:, -1] * 0.8, 0, 1), score]))
    comps = [
        Comparator.from_values("prob", pd.Series(dtype=float), scale="probability"),
        Comparator.from_values("score", pd.Series(dtype=float), scale="score"),
    ]
    args = {
        "thresholds": None,
        "nb_thresholds": (0.1, 0.3),
        "n_bootstrap": 25,
        "ci": 0.9,
        "random_state": 5,
        "n_jobs": 1,
    }
    from spinerisk.evaluation import _bootstrap as b

    looped = []
    chunk = b._chunk
    monkeypatch.setattr(b, "_chunk", lambda s, d, r: looped.append(len(s)) or chunk(s, d, r))
    got = c.compare(evd, comps, **args)["table"]
    n_looped = sum(looped) // len(looped)  # specs per chunk
    monkeypatch.setattr(c, "_row_batches", lambda *a: (None, None))
    looped.clear()
    want = c.compare(replace(evd, cache={}), comps, **args)["table"]
    assert n_looped < sum(looped) // len(looped) - 5  # the probability's rows were batched
    assert got.shape == want.shape and len(got) > 5
    for col in want.columns[6:]:
        _assert_same(got[col].to_numpy(float), want[col].to_numpy(float))
