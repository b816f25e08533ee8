"""XGBoost tree SHAP by decision pattern (``spinerisk.explanation._xgb_paths``) is bit for
bit XGBoost's own ``pred_contribs``, on spinerisk's fitted boosters (numbers, booleans,
categories and missing values), and declines what it does not cover.

All data are synthetic (``make_spine_cohort``), never real patients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import Endpoint

xgb = pytest.importorskip("xgboost")

from spinerisk.explanation import _xgb_paths  # noqa: E402

FAST = {"n_estimators": 60, "learning_rate": 0.2}
FAST_SURV = {**FAST, "early_stopping_rounds": None}
FX_OR_DEATH = Endpoint(
    "fx_or_death", "survival", "synthetic test endpoint", "fx_event", "fx_time_days",
    (365.25, 730.5), None, True,
)  # fmt: skip


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return sr.validate(sr.make_spine_cohort(1200, seed=22))


def _fit(endpoint: object, backend: str, params: dict[str, object]) -> sr.RiskModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint, backend=backend, booster_params=params, random_state=3)
        return model.fit(sr.make_spine_cohort(600, seed=21))


def _with_missing(X: pd.DataFrame) -> pd.DataFrame:
    """The model matrix with every number missing in its first 40 rows."""
    X = X.copy()
    numbers = [c for c in X.columns if X[c].dtype.kind == "f"]
    X.loc[X.index[:40], numbers] = np.nan
    return X


def _pairs(model: sr.RiskModel, records: pd.DataFrame) -> list[tuple[object, pd.DataFrame]]:
    """(xgboost.Booster, its input frame) of each booster of the model, the frame with
    missing numbers in some rows."""
    checked = sr.validate(records, model.input_schema_)
    est = model.estimator_
    if hasattr(est, "calibrated_classifiers_"):
        folds = [cc.estimator for cc in est.calibrated_classifiers_]
        return [
            (f[-1].estimator_.get_booster(), _with_missing(f[:-1].transform(checked)))
            for f in folds
        ]
    Xf = _with_missing(model.features_.transform(checked))
    boosters = [e.booster_ for e in getattr(est, "estimators_", [est])]
    return [(b, Xf) for b in boosters]


@pytest.mark.parametrize(
    ("endpoint", "backend", "params"),
    [
        ("nonunion", "xgboost", FAST),
        (FX_OR_DEATH, "xgboost", FAST_SURV),
        (FX_OR_DEATH, "xgboost_aft", FAST_SURV),
        ("future_fracture", "xgboost", FAST_SURV),
    ],
    ids=["nonunion", "cox", "aft", "future_fracture"],
)
def test_identical_to_pred_contribs(
    endpoint: object, backend: str, params: dict[str, object], records: pd.DataFrame
) -> None:
    model = _fit(endpoint, backend, params)
    for booster, X in _pairs(model, records):
        assert any(isinstance(t, pd.CategoricalDtype) for t in X.dtypes)
        dm = xgb.DMatrix(X, enable_categorical=True)
        native = booster.predict(dm, pred_contribs=True)
        ours = _xgb_paths.contributions(booster, dm, X, min_rows=0)
        assert ours is not None, "the shortcut declined a plain gbtree booster"
        assert ours.dtype == native.dtype and ours.shape == native.shape
        assert np.array_equal(ours, native)  # bit for bit, not within a tolerance


def test_rows_are_independent_of_the_batch(records: pd.DataFrame) -> None:
    """A record's values do not depend on which other records share the call."""
    booster, X = _pairs(_fit("nonunion", "xgboost", FAST), records)[0]
    whole = _xgb_paths.contributions(
        booster, xgb.DMatrix(X, enable_categorical=True), X, min_rows=0
    )
    part = X.iloc[500:530]
    alone = _xgb_paths.contributions(
        booster, xgb.DMatrix(part, enable_categorical=True), part, min_rows=0
    )
    assert whole is not None and alone is not None
    assert np.array_equal(whole[500:530], alone)


def test_declines_what_it_does_not_cover() -> None:
    """Several trees per round (a forest) and object columns: None, the caller then
    makes the native call."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(size=200) > 0).astype(int)
    forest = xgb.train(
        {"num_parallel_tree": 3, "max_depth": 2, "subsample": 0.8, "nthread": 1},
        xgb.DMatrix(X, label=y),
        num_boost_round=3,
    )
    assert _xgb_paths.contributions(forest, xgb.DMatrix(X), X, min_rows=0) is None
    single = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, label=y), 3)
    assert _xgb_paths.contributions(single, xgb.DMatrix(X), X, min_rows=0) is not None
    assert _xgb_paths.contributions(single, xgb.DMatrix(X), X) is None  # 200 < MIN_ROWS
    text = X.assign(c=X["c"].astype(str))
    assert _xgb_paths.contributions(single, xgb.DMatrix(X), text, min_rows=0) is None


def test_fold_matrices_equal_each_folds_own_transform(
    records: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clinical step runs once for folds whose clinical steps are equal, and the
    matrices are those of each fold's own pipeline."""
    from spinerisk.explanation._compute import fold_matrices
    from spinerisk.features import ClinicalFeatures

    model = _fit("nonunion", "xgboost", FAST)
    folds = [cc.estimator for cc in model.estimator_.calibrated_classifiers_]
    checked = sr.validate(records, model.input_schema_)
    own = [fold[:-1].transform(checked) for fold in folds]
    calls = []
    original = ClinicalFeatures.transform

    def counted(self: ClinicalFeatures, X: pd.DataFrame) -> pd.DataFrame:
        calls.append(id(self))
        return original(self, X)

    monkeypatch.setattr(ClinicalFeatures, "transform", counted)
    shared = fold_matrices(folds, checked)
    assert len(calls) == 1
    for a, b in zip(own, shared, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_lightgbm_matrix_gives_lightgbms_own_values(records: pd.DataFrame) -> None:
    """The matrix made once for pred_contrib and raw_score gives exactly what LightGBM
    gives from the frame; a frame whose categories are not the training ones is passed
    through as it is."""
    pytest.importorskip("lightgbm")
    from spinerisk.explanation._native import _lightgbm_matrix

    model = _fit("nonunion", "lightgbm", FAST)
    booster, X = next(
        (cc.estimator[-1].estimator_.booster_, cc.estimator[:-1].transform(records))
        for cc in model.estimator_.calibrated_classifiers_
    )
    X = _with_missing(X)
    data = _lightgbm_matrix(booster, X)
    assert isinstance(data, np.ndarray)
    for kind in ("pred_contrib", "raw_score"):
        assert np.array_equal(
            booster.predict(data, **{kind: True}), booster.predict(X, **{kind: True})
        )
    cat = next(c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype))
    other = X.assign(**{cat: X[cat].cat.add_categories(["unheard_of"])})
    assert _lightgbm_matrix(booster, other) is other


@pytest.mark.parametrize("radix", [3, 1 << 40], ids=["dense", "renumbered"])
def test_groups_are_the_distinct_code_tuples(radix: int) -> None:
    """Records share a group exactly when all their codes agree, whether the key fits
    a dense table, needs sorting, or is renumbered before it would overflow."""
    from spinerisk.explanation._xgb_paths import _groups

    rng = np.random.default_rng(5)
    n = 500
    codes = {f: (rng.integers(0, 3, n), radix) for f in range(3)}
    group, first = _groups(codes, [(f, None) for f in range(3)], n)
    tuples = np.stack([codes[f][0] for f in range(3)], axis=1)
    _, expected = np.unique(tuples, axis=0, return_inverse=True)
    expected = expected.ravel()
    # the same partition of the records (group numbers may differ)
    assert len(first) == expected.max() + 1
    pairs = set(zip(group.tolist(), expected.tolist(), strict=True))
    assert len(pairs) == len(first)
    assert np.array_equal(group[first], np.arange(len(first)))


@pytest.mark.parametrize(
    ("endpoint", "backend", "params"),
    [("nonunion", "xgboost", FAST), ("future_fracture", "xgboost", FAST_SURV)],
    ids=["nonunion", "future_fracture"],
)
def test_explain_is_the_same_either_way(
    endpoint: object,
    backend: str,
    params: dict[str, object],
    records: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """explain() gives the same tables, bit for bit, whether the contributions come by
    decision pattern (every batch) or from the native call (no batch)."""
    from spinerisk.explanation import explain

    model = _fit(endpoint, backend, params)
    used = []
    original = _xgb_paths.contributions

    def spy(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        used.append(result is not None)
        return result

    monkeypatch.setattr(_xgb_paths, "contributions", spy)
    runs = []
    for least in (0, 10**9):
        monkeypatch.setattr(_xgb_paths, "MIN_ROWS", least)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            runs.append(explain(model, records.head(300)))
    assert used and all(used[: len(used) // 2]) and not any(used[len(used) // 2 :])
    fast, native = runs
    for name in ("feature_contributions", "contributions", "risk_points"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(native, name), check_exact=True)
    pd.testing.assert_series_equal(fast.output, native.output, check_exact=True)
    pd.testing.assert_series_equal(fast.risk, native.risk, check_exact=True)
