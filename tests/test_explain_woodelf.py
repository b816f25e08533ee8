"""woodelf TreeSHAP (``spinerisk.explanation._woodelf.tree_shap``) against the boosters' own
exact TreeSHAP, on spinerisk's own fitted models.

Tolerance: the native XGBoost routine works in float32 and woodelf mixes float32 and
float64, so the values agree to float32 precision summed over the trees:
``max |woodelf - native| <= 1e-5 * max(1, max |margin|)`` per booster, bias column
included, and every row adds up to the booster's own margin within the same bound.
All data are synthetic (``make_spine_cohort``), never real patients.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import Endpoint

pytest.importorskip("woodelf")
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from spinerisk.explanation._woodelf import NotReproduced, _trees, tree_shap  # noqa: E402

# small boosters (the point is exactness); both split on categories and on missing values
FAST = {"n_estimators": 60, "learning_rate": 0.2}
FAST_SURV = {**FAST, "early_stopping_rounds": None}
#: time to first event of either kind: a plain survival endpoint of the synthetic cohort
FX_OR_DEATH = Endpoint(
    "fx_or_death", "survival", "synthetic test endpoint", "fx_event", "fx_time_days",
    (365.25, 730.5), None, True,
)  # fmt: skip
CASES = {
    "nonunion_xgboost": ("nonunion", "xgboost", FAST),
    "nonunion_lightgbm": ("nonunion", "lightgbm", FAST),
    "survival_cox": (FX_OR_DEATH, "xgboost", FAST_SURV),
    "survival_aft": (FX_OR_DEATH, "xgboost_aft", FAST_SURV),
    "future_fracture": ("future_fracture", "xgboost", FAST_SURV),
}
_MODELS: dict[str, sr.RiskModel] = {}


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return sr.validate(sr.make_spine_cohort(1500, seed=22))


def _model(name: str) -> sr.RiskModel:
    if name not in _MODELS:
        endpoint, backend, params = CASES[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sr.DataQualityWarning)
            model = sr.RiskModel(endpoint, backend=backend, booster_params=params, random_state=3)
            _MODELS[name] = model.fit(sr.make_spine_cohort(600, seed=21))
    return _MODELS[name]


def _boosters(name: str, records: pd.DataFrame) -> list[tuple[object, pd.DataFrame]]:
    """(booster, its real input matrix) for every booster of the model."""
    model = _model(name)
    est = model.estimator_
    if hasattr(est, "calibrated_classifiers_"):
        folds = [cc.estimator for cc in est.calibrated_classifiers_]
        out = []
        for fold in folds:
            booster = fold[-1].estimator_
            raw = booster.get_booster() if hasattr(booster, "get_booster") else booster.booster_
            out.append((raw, fold[:-1].transform(records)))
        return out
    X = model.features_.transform(records)
    survival = est.estimators_ if hasattr(est, "estimators_") else [est]
    return [(e.booster_, X) for e in survival]


def _with_missing(X: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``X`` and 200 more rows that go through every category of every category column
    and have 30% of their (non-boolean) values missing, so that every node's default
    direction is taken, categories included."""
    extra = X.sample(200, random_state=seed, replace=True).copy()
    rng = np.random.default_rng(seed)
    for col in extra.columns:
        if isinstance(extra[col].dtype, pd.CategoricalDtype):
            levels = extra[col].cat.categories
            extra[col] = pd.Categorical(levels[np.arange(len(extra)) % len(levels)], levels)
        if extra[col].dtype != bool:
            extra.loc[rng.random(len(extra)) < 0.3, col] = np.nan
    extra.index = range(len(X), len(X) + len(extra))
    return pd.concat([X, extra])


def _native(booster: object, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(booster, xgb.Booster):
        dm = xgb.DMatrix(X, enable_categorical=True)
        return booster.predict(dm, pred_contribs=True), booster.predict(dm, output_margin=True)
    return booster.predict(X, pred_contrib=True), booster.predict(X, raw_score=True)


def _categorical_splits(booster: object) -> int:
    if isinstance(booster, xgb.Booster):
        trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
        return sum(sum(t["split_type"]) for t in trees["trees"])
    return json.dumps(booster.dump_model()).count('"decision_type": "=="')


@pytest.mark.parametrize("name", list(CASES))
def test_woodelf_equals_the_native_tree_shap(name, records, capsys):
    pairs = _boosters(name, records)
    assert sum(_categorical_splits(b) for b, _ in pairs) > 0  # the case woodelf refused
    for k, (booster, X) in enumerate(pairs):
        X = _with_missing(X, seed=k)
        cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        for c in cats:  # every category, and missing, is explained
            assert set(X[c].dropna().unique()) == set(X[c].cat.categories), c
            assert X[c].isna().any(), c
        native, margin = _native(booster, X)
        values = tree_shap(booster, X)
        assert values.shape == native.shape == (len(X), X.shape[1] + 1)
        tol = 1e-5 * max(1.0, float(np.abs(margin).max()))
        assert np.abs(values - native).max() <= tol, (name, k, np.abs(values - native).max())
        assert np.abs(values.sum(axis=1) - margin).max() <= tol  # additivity
        assert np.ptp(values[:, -1]) == 0.0  # one bias for every row
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # woodelf prints nothing


def test_trees_are_built_once_per_booster(records):
    booster, X = _boosters("nonunion_xgboost", records)[0]
    assert _trees(booster) is _trees(booster)
    copy = booster.copy()  # another booster: its own trees
    assert _trees(copy) is not _trees(booster)
    # the leaves' s-vectors kept from a first call give the same values on other records
    first = tree_shap(copy, X.iloc[:40])
    again = tree_shap(copy, X)
    np.testing.assert_array_equal(again[:40], first)  # a record's values: not the batch's
    np.testing.assert_array_equal(again, tree_shap(booster, X))
    native, margin = _native(booster, X)
    assert np.abs(again - native).max() <= 1e-5 * max(1.0, float(np.abs(margin).max()))


def test_what_it_cannot_reproduce_is_refused(records):
    booster, X = _boosters("nonunion_xgboost", records)[0]
    with pytest.raises(NotReproduced, match="DataFrame"):
        tree_shap(booster, X.to_numpy())
    with pytest.raises(NotReproduced, match="columns"):
        tree_shap(booster, X.iloc[:, :-1])
    col = next(c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype))
    unseen = X.iloc[:5].copy()
    unseen[col] = unseen[col].cat.add_categories(["unseen"])
    unseen.loc[unseen.index[0], col] = "unseen"
    with pytest.raises(NotReproduced, match="not fitted on"):
        tree_shap(booster, unseen)
    rng = np.random.default_rng(0)
    dart = xgb.train(
        {"booster": "dart", "max_depth": 2},
        xgb.DMatrix(rng.normal(size=(100, 3)), label=rng.integers(0, 2, 100)),
        3,
    )
    with pytest.raises(NotReproduced, match="dart"):
        tree_shap(dart, pd.DataFrame(rng.normal(size=(4, 3)), columns=dart.feature_names))


def _synthetic(seed: int, n: int = 1500) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with missing values and exact zeros, and a 12-level category (with missing
    values) whose effect needs partition splits (several categories on one side)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n).round(1),  # many ties with the thresholds, many zeros
            "b": rng.normal(size=n),
            "c": pd.Categorical(rng.integers(0, 12, n), categories=range(12)),
            "d": rng.integers(0, 3, n).astype(float),
        }
    )
    X.loc[rng.random(n) < 0.15, "a"] = np.nan
    X.loc[rng.random(n) < 0.1, "c"] = np.nan
    effect = np.where(X["c"].cat.codes.isin([1, 4, 5, 9, 11]), 1.0, -0.5)
    y = (X["a"].fillna(1.5) + effect + 0.3 * X["d"] + rng.normal(size=n) > 0.5).astype(int)
    return X, y.to_numpy()


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "binary:logistic", "max_cat_to_onehot": 1},  # partition splits
        {"objective": "binary:logistic", "max_cat_to_onehot": 64},  # one-hot splits
        {"objective": "reg:squarederror", "base_score": 0.3, "max_depth": 6},
    ],
)
def test_xgboost_partition_splits_numeric_categories_and_base_score(params):
    X, y = _synthetic(1)
    dm = xgb.DMatrix(X, label=y, enable_categorical=True)
    booster = xgb.train({"max_depth": 4, "tree_method": "hist", **params}, dm, 40)
    if params.get("max_cat_to_onehot") == 1:
        assert max(_xgb_category_sizes(booster)) > 1  # the case under test
    _assert_matches_native(booster, X)


def _assert_matches_native(booster: object, X: pd.DataFrame) -> None:
    """tree_shap equals the native routine within float32 precision of the margin, adds up
    to the margin, and gives a record the same values in a smaller batch."""
    native, margin = _native(booster, X)
    values = tree_shap(booster, X)
    tol = 1e-5 * max(1.0, float(np.abs(margin).max()))
    assert np.abs(values - native).max() <= tol
    assert np.abs(values.sum(axis=1) - margin).max() <= tol
    np.testing.assert_array_equal(tree_shap(booster, X.iloc[:7]), values[:7])


def _xgb_category_sizes(booster: object) -> list[int]:
    model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    return [s for t in model["trees"] for s in t["categories_sizes"]] or [0]


@pytest.mark.parametrize(
    "params",
    [
        {},  # missing_type NaN, one-hot and partition category splits
        {"zero_as_missing": True},  # missing_type Zero
        {"use_missing": False},  # missing_type None: missing counts as 0
        {"max_cat_to_onehot": 64, "num_leaves": 63, "min_data_in_leaf": 5},  # deep trees
    ],
)
def test_lightgbm_missing_types_and_category_splits(params):
    X, y = _synthetic(2)
    train = lgb.Dataset(X.iloc[:1000], y[:1000], free_raw_data=False)
    valid = lgb.Dataset(X.iloc[1000:], y[1000:], reference=train)
    settings = {
        "objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_per_group": 5,
        "cat_smooth": 1, "learning_rate": 0.2, **params,
    }  # fmt: skip
    stop = [lgb.early_stopping(5, verbose=False)]
    booster = lgb.train(
        settings, train, 200, valid_sets=[valid], callbacks=stop, keep_training_booster=True
    )
    assert 0 < booster.best_iteration < booster.current_iteration()  # native uses the best
    dump = json.dumps(booster.dump_model())
    kind = {"zero_as_missing": "Zero", "use_missing": "None"}
    assert f'"missing_type": "{kind.get(next(iter(params), ""), "NaN")}"' in dump
    assert '"decision_type": "=="' in dump
    if not params:
        assert "||" in dump  # partition splits: several categories go left
    _assert_matches_native(booster, X)


def test_another_woodelf_release_falls_back(records, monkeypatch):
    import woodelf

    booster, X = _boosters("nonunion_xgboost", records)[0]
    monkeypatch.setattr(woodelf, "__version__", "9.9")
    with pytest.raises(NotReproduced, match="checked against woodelf 0.4.8"):
        tree_shap(booster, X)


@pytest.mark.parametrize("max_depth", [12, -1])
def test_deep_trees_on_many_columns(max_depth):
    """woodelf's dense algorithm (s-vectors kept) up to 12 distinct columns on a path, its
    sparse one beyond: a target that needs 20 conditions at once grows chains of splits."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(800, 20)), columns=[f"x{j}" for j in range(20)])
    X[X > 2.2] = np.nan
    y = 10.0 * (X.fillna(0) > -1.3).all(axis=1) + rng.normal(size=800) * 0.1
    settings = {"verbose": -1, "num_leaves": 40, "min_data_in_leaf": 3, "max_depth": max_depth}
    booster = lgb.train(settings, lgb.Dataset(X, y), 4)
    _assert_matches_native(booster, X)
    depth = max(root.depth for root in _trees(booster).roots)
    assert depth == 12 if max_depth == 12 else depth > 12
    assert (_trees(booster)._memo is None) == (depth > 12)
