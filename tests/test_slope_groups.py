"""Calibration slopes of cross-validated predictions: an intercept per fold
(``groups=``) in ``spinerisk.metrics`` and in ``evaluate(..., cv=k)``.

Pooled under one intercept, the fold models' different baselines act as noise in the
predictions and pull the slope towards 0; with an intercept per fold the slope is that of
the fold models, each on its own records."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit, logit

from spinerisk import metrics as m
from spinerisk.exceptions import DataQualityWarning


def _shifted(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Five 'fold models' with the right slope and each its own wrong intercept."""
    rng = np.random.default_rng(seed)
    folds = rng.integers(0, 5, n)
    x = rng.normal(-0.3, 1.0, n)
    truth = expit(x)
    y = rng.random(n) < truth
    shifted = expit(x + np.array([-1.2, -0.6, 0.0, 0.6, 1.2])[folds])
    return y, truth, shifted, folds


def test_an_intercept_per_group_recovers_the_slope_pooling_attenuates() -> None:
    y, truth, shifted, folds = _shifted()
    pooled = m.calibration_slope(y, shifted)
    grouped = m.calibration_slope(y, shifted, groups=folds)
    assert pooled < 0.85  # the baselines' differences, counted as noise
    assert grouped == pytest.approx(1.0, abs=0.08)
    # calibrated predictions: the same answer either way, within noise
    assert m.calibration_slope(y, truth, groups=folds) == pytest.approx(
        m.calibration_slope(y, truth), abs=0.02
    )


def test_grouped_slope_solves_its_logistic_model() -> None:
    import statsmodels.api as sm

    y, _, shifted, folds = _shifted(n=800, seed=1)
    dummies = (folds[:, None] == np.arange(5)[None, :]).astype(float)
    exog = np.column_stack([dummies, logit(shifted)])
    ref = sm.GLM(y.astype(float), exog, family=sm.families.Binomial()).fit()
    assert m.calibration_slope(y, shifted, groups=folds) == pytest.approx(ref.params[-1], 1e-8)
    # labels of any type, in any order: only the partition matters
    names = np.array(["e", "d", "c", "b", "a"])[folds]
    assert m.calibration_slope(y, shifted, groups=names) == pytest.approx(ref.params[-1], rel=1e-8)
    # one group is the ordinary slope
    assert m.calibration_slope(y, shifted, groups=np.zeros(len(y))) == pytest.approx(
        m.calibration_slope(y, shifted), rel=1e-8
    )


def _survival_shifted(n: int = 6000, seed: int = 2) -> tuple[np.ndarray, ...]:
    """Exponential event times, uniform censoring; the true risks by 365 days, and those
    of five fold models each with its own intercept on the log-odds scale."""
    rng = np.random.default_rng(seed)
    folds = rng.integers(0, 5, n)
    score = rng.normal(size=n)
    rate = np.exp(score) / 400.0
    event_time = rng.exponential(1.0 / rate)
    censor = rng.uniform(100.0, 1500.0, n)
    time = np.minimum(event_time, censor)
    event = (event_time <= censor).astype(int)
    truth = -np.expm1(-365.0 * rate)
    shift = np.array([-0.9, -0.45, 0.0, 0.45, 0.9])[folds]
    shifted = expit(logit(truth) + shift)
    return time, event, truth, shifted, folds


def test_grouped_slope_at_a_horizon() -> None:
    time, event, truth, shifted, folds = _survival_shifted()
    h = 365.0
    pooled = m.calibration_slope_at_horizon(time, event, shifted, h)
    grouped = m.calibration_slope_at_horizon(time, event, shifted, h, groups=folds)
    assert pooled < 0.9
    assert grouped == pytest.approx(1.0, abs=0.1)
    assert grouped == pytest.approx(
        m.calibration_slope_at_horizon(time, event, truth, h, groups=folds), abs=0.1
    )
    # without censoring before the horizon it is the binary grouped slope
    late = np.where(time < h, np.maximum(time, 1.0), time)
    followed = (time >= h) | (event == 1)
    t, e, r, g = late[followed], event[followed], shifted[followed], folds[followed]
    assert m.calibration_slope_at_horizon(t, e, r, h, groups=g) == pytest.approx(
        m.calibration_slope((t <= h) & (e == 1), r, groups=g), rel=1e-6
    )


def test_bad_groups_are_refused_with_the_reason() -> None:
    y, _, shifted, folds = _shifted(n=300, seed=3)
    with pytest.raises(ValueError, match="risk has 300 values but groups has 299"):
        m.calibration_slope(y, shifted, groups=folds[:-1])
    with pytest.raises(ValueError, match=r"groups must be 1-dimensional; got .* \(2, 300\)"):
        m.calibration_slope(y, shifted, groups=[folds, folds])
    # a column is accepted, as for the outcome and the risks
    assert m.calibration_slope(y, shifted, groups=folds[:, None]) == pytest.approx(
        m.calibration_slope(y, shifted, groups=folds), rel=1e-12
    )
    for missing in (np.nan, None):
        labels = folds.astype(object)
        labels[[4, 9]] = missing
        with pytest.raises(ValueError, match=r"groups\[4\] is missing \(2 missing values\)"):
            m.calibration_slope(y, shifted, groups=labels)
    mixed = folds.astype(object)  # integers and text in one column
    mixed[folds >= 2] = np.array(["x", "y", "z", "w", "v"], dtype=object)[folds[folds >= 2]]
    assert m.calibration_slope(y, shifted, groups=mixed) == pytest.approx(
        m.calibration_slope(y, shifted, groups=folds), rel=1e-9
    )
    # a group with one outcome only says nothing about the slope: left out, with a warning
    only_events = folds.copy()
    lone = np.flatnonzero(y)[:5]
    only_events[lone] = 7  # group 7: five events and nothing else
    rest = np.setdiff1d(np.arange(len(y)), lone)
    with pytest.warns(DataQualityWarning, match=r"1 of 6 groups \(7\) have records with only"):
        got = m.calibration_slope(y, shifted, groups=only_events)
    assert got == pytest.approx(
        m.calibration_slope(y[rest], shifted[rest], groups=folds[rest]), rel=1e-9
    )
    with pytest.raises(ValueError, match="none of the 2 groups has records both with and"):
        m.calibration_slope(y, shifted, groups=y.astype(int))
    time, event, _, risk, groups = _survival_shifted(n=400, seed=4)
    by_h = (time <= 365.0) & (event == 1)
    with pytest.raises(ValueError, match="none of the 2 groups"):  # events apart from the rest
        m.calibration_slope_at_horizon(time, event, risk, 365.0, groups=by_h)
    groups = groups.copy()
    groups[np.flatnonzero(by_h)[:3]] = 9  # group 9: three events by the horizon, nothing else
    kept = groups != 9
    with pytest.warns(DataQualityWarning, match="left out of the calibration slope"):
        got = m.calibration_slope_at_horizon(time, event, risk, 365.0, groups=groups)
    expected = m.calibration_slope_at_horizon(
        time[kept],
        event[kept],
        risk[kept],
        365.0,
        groups=groups[kept],
        ref_time=time,
        ref_event=event,
    )
    assert got == pytest.approx(expected, rel=1e-9)


def test_small_groups_are_warned_about() -> None:
    """Per-group intercepts of small groups bias the slope away from 0 (the incidental-
    parameter problem): measured on calibrated risks, and warned about."""
    rng = np.random.default_rng(5)
    slopes = {}
    for size in (4, 40):
        values = []
        for _ in range(200):
            p = expit(rng.normal(-0.3, 1.0, 400))
            y = rng.random(400) < p
            groups = np.repeat(np.arange(400 // size), size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    values.append(m.calibration_slope(y, p, groups=groups))
                except ValueError:
                    continue
        slopes[size] = float(np.median(values))
    assert slopes[4] > 1.2 and abs(slopes[40] - 1.0) < 0.06
    y, _, shifted, folds = _shifted(n=300, seed=6)
    with pytest.warns(DataQualityWarning, match=r"fewer than 10 records of the rarer outcome"):
        m.calibration_slope(y, shifted, groups=np.arange(300) % 30)  # 10 records per group
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # five groups of about 60: no warning
        m.calibration_slope(y, shifted, groups=folds)


def test_evaluate_cv_slope_has_an_intercept_per_fold(monkeypatch, tmp_path) -> None:
    """evaluate(cv=k) gives its pooled out-of-fold data the folds: the reported slope is
    the grouped one, recomputed here from the same pooled predictions."""
    import spinerisk as sr
    from spinerisk.evaluation import _evaluate

    cohort = sr.make_spine_cohort(400, seed=0)
    with pytest.warns(DataQualityWarning, match="Small cohort"):
        model = sr.RiskModel("collapse", backend="linear", random_state=0).fit(cohort)
    seen = {}
    real = _evaluate.evaluate_specs

    def recording(specs, data):
        if data.groups is not None:
            seen["data"] = data
        return real(specs, data)

    monkeypatch.setattr(_evaluate, "evaluate_specs", recording)
    cross_validate = _evaluate._cross_validate

    def records_seen(model, data, *args, **kwargs):
        seen["records"] = data
        return cross_validate(model, data, *args, **kwargs)

    monkeypatch.setattr(_evaluate, "_cross_validate", records_seen)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = sr.evaluate(
            model, cohort, n_bootstrap=2, cv=4, explain=False, subgroups=(), random_state=0
        )
    # the model's fit warned about its cohort once; the four fold refits do not repeat it
    assert not [w for w in caught if "Small cohort" in str(w.message)], caught
    data = seen["data"]
    # the labels line up with the pooled predictions: evaluate's own split, rebuilt
    from sklearn.model_selection import StratifiedKFold

    records = seen["records"]
    target = model.endpoint_.target(records)
    splits = list(StratifiedKFold(4, shuffle=True, random_state=0).split(records, target))
    assert data.groups.tolist() == [k for k, (_, te) in enumerate(splits) for _ in te]
    assert data.event.tolist() == np.concatenate([target[te] for _, te in splits]).tolist()
    cv = report.cross_validation.set_index("metric")
    slope = float(cv.loc["calibration_slope", "estimate"])
    assert slope == pytest.approx(
        m.calibration_slope(data.event, data.risk[:, 0], groups=data.groups), rel=1e-9
    )
    assert slope != pytest.approx(m.calibration_slope(data.event, data.risk[:, 0]), rel=1e-6)
    # the reports say what the column is
    note = "pooled out-of-fold predictions, 4 folds (the calibration slope with an intercept"
    assert note in report.to_markdown()
    assert note in report.to_html(tmp_path / "report.html").read_text()


def test_grouped_data_is_not_given_the_one_intercept_batched_slope() -> None:
    from dataclasses import replace

    from spinerisk.evaluation._bootstrap import batch_of
    from spinerisk.evaluation._data import EvalData

    y, _, shifted, folds = _shifted(n=300, seed=7)
    data = EvalData("binary", y, None, shifted[:, None], (365.25,))
    assert batch_of("calibration_slope", data, None) is not None
    grouped = replace(data, groups=folds)
    assert batch_of("calibration_slope", grouped, None) is None
    assert batch_of("auroc", grouped, None) is not None  # other metrics keep theirs
    # a resample keeps each record's group
    rows = np.array([5, 5, 17, 299])
    assert grouped.take(rows).groups.tolist() == folds[rows].tolist()


def test_cv_refits_still_warn_on_records_the_model_was_not_fitted_on() -> None:
    """Only internal validation silences the fold refits' data warnings: on external
    records no fit has warned about them yet."""
    import spinerisk as sr

    with pytest.warns(DataQualityWarning, match="Small cohort"):
        model = sr.RiskModel("nonunion", backend="linear").fit(sr.make_spine_cohort(300, seed=1))
    other = sr.make_spine_cohort(300, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr.evaluate(model, other, validation="external", n_bootstrap=2, cv=3, explain=False,
                    subgroups=())  # fmt: skip
    assert [w for w in caught if "Small cohort" in str(w.message)]
