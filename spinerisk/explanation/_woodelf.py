"""Exact path-dependent TreeSHAP by woodelf on spinerisk's XGBoost and LightGBM boosters.

:func:`tree_shap` gives the values of the boosters' own routines (XGBoost
``predict(DMatrix(X, enable_categorical=True), pred_contribs=True)``, LightGBM
``predict(X, pred_contrib=True)``), in the same layout: ``(n, p + 1)``, the last column
the bias. It runs woodelf's algorithm (``woodelf-explainer``; single-threaded numpy) on
trees read from the boosters' own JSON dumps (``save_raw("json")``, ``dump_model()``),
because woodelf's own reader (treelite) refuses trees that split on categories.

Each split becomes a woodelf node whose "go left" rule is the booster's own:

* XGBoost (inputs and thresholds in float32, as XGBoost reads them): a missing value
  takes the node's default direction; a number goes left when ``x < threshold``; a
  category goes *right* when it is in the node's category list, left otherwise. Categories
  are first mapped to the training codes the model stores (its category encoder).
* LightGBM (float64): ``missing_type`` ``NaN``: a missing value takes the default
  direction, a number goes left when ``x <= threshold``; ``None``: a missing value counts
  as 0; ``Zero``: a missing value counts as 0 and 0 takes the default direction. A category
  code goes left when it is in the node's list; a missing category goes right. Categories
  are mapped to the codes of the model's ``pandas_categorical``.

Covers are XGBoost's ``sum_hessian`` and LightGBM's record counts, which the native
routines use. woodelf works in float32 (as XGBoost does; LightGBM works in float64), so
values agree with the native ones to float32 precision (about 1e-6 on these models), not
bit for bit. woodelf's neighbour-leaf trick is not used: woodelf switches it on or off by
the number of records explained, and its sums then differ in the last float32 bit, so a
record's values would depend on the batch it came in; without it they do not. A leaf's
s-vectors depend only on the tree: they are kept between calls.

The bias is computed here: the base margin (XGBoost's ``base_score`` on the objective's
margin scale) plus each tree's cover-weighted mean leaf value.

Whatever this module cannot reproduce exactly (DART or random-forest boosters, several
outputs, linear trees, an objective whose base margin it does not know, inputs it cannot
map, such as infinity or a category an XGBoost model was not fitted on; woodelf missing or
another release than :data:`WOODELF_VERSION`) raises ``NotReproduced``: the caller
then uses the native routine, which gives the answer or the user-facing error. The trees
are built once per booster and cached (weakly: the cache never keeps a booster alive) and
rebuilt if the booster has been trained further.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spinerisk._optional import import_optional


class NotReproduced(Exception):
    """This booster (or input) is something :func:`tree_shap` does not reproduce exactly;
    the caller uses the booster's native routine instead."""


__all__ = ["tree_shap"]

_ZERO = 1e-35  # LightGBM's kZeroThreshold
_LOCK = threading.Lock()
_CACHE: weakref.WeakKeyDictionary[Any, tuple[Any, _Trees]] = weakref.WeakKeyDictionary()


@dataclass
class _Trees:
    """A booster's trees as woodelf nodes, and how to read its input."""

    kind: str  # "xgboost" or "lightgbm"
    names: list[str]  # the booster's feature names, in column order
    roots: list[Any]  # woodelf roots (trees with at least one split)
    bias: float  # base margin + each tree's expected value
    categories: dict[int, list[Any] | None] = field(default_factory=dict)
    _ensemble: Any = None
    _memo: Any = None

    def prepare(self) -> None:
        """woodelf's ensemble of the trees (and the store of their leaves' s-vectors)."""
        if self._ensemble is None and self.roots:
            _woodelf()
            from woodelf.core.trees.decision_trees_ensemble import DecisionTreesEnsemble  # type: ignore[import-untyped]

            ensemble = DecisionTreesEnsemble(self.roots)
            depth = min(ensemble.max_depth, len(self.names))
            if depth <= _MAX_DENSE_DEPTH:
                self._memo = _memo_class()(depth)
            self._ensemble = ensemble

    def shap_values(self, data: pd.DataFrame) -> np.ndarray:
        """woodelf's values ``(n, p)``, quietly, without the neighbour-leaf trick."""
        self.prepare()
        from woodelf.core.cube_metric import ShapleyValues  # type: ignore[import-untyped]

        args = (self._ensemble, data, None, ShapleyValues())
        kw = {"use_neighbor_leaf_trick": False, "model_was_loaded": True, "verbose": False}
        if self._memo is not None:
            from woodelf.high_depth_woodelf import woodelf_for_high_depth  # type: ignore[import-untyped]

            values = woodelf_for_high_depth(*args, path_to_matrices_calculator=self._memo, **kw)
        else:
            from woodelf.woodelf_sparse import woodelf_sparse  # type: ignore[import-untyped]

            values = woodelf_sparse(*args, **kw)
        out = np.zeros(data.shape, dtype=np.float64)
        for column, contribution in values.items():
            out[:, column] = contribution
        return out


def tree_shap(booster: Any, X: pd.DataFrame) -> np.ndarray:
    """Exact path-dependent TreeSHAP of a booster, as its native routine gives it.

    Parameters
    ----------
    booster : xgboost.Booster or lightgbm.Booster
        ``gbtree`` XGBoost boosters with one output (``binary:logistic``,
        ``survival:cox``, ``survival:aft``, ...) and LightGBM boosters with one output.
        LightGBM explains its ``best_iteration`` trees when it has one, as its own
        ``predict`` does; XGBoost explains every tree, as ``Booster.predict`` does.
    X : DataFrame of shape (n_samples, n_features)
        Features in the booster's column order, as the native call would get them
        (numbers, booleans, pandas ``category`` columns; NaN for missing).

    Returns
    -------
    ndarray of shape (n_samples, n_features + 1), float64
        Contributions to the margin per column, and the bias in the last column; each
        row sums to the booster's margin.

    Raises
    ------
    NotReproduced
        For a booster or an input this module does not reproduce exactly: use the
        native routine instead.
    """
    if not isinstance(X, pd.DataFrame):
        raise NotReproduced("tree_shap reads a DataFrame; got " + type(X).__name__)
    _woodelf()
    trees = _trees(booster)
    data = _matrix(trees, X)
    out = np.zeros((len(X), len(trees.names) + 1), dtype=np.float64)
    out[:, -1] = trees.bias
    if trees.roots and len(X):
        out[:, :-1] = trees.shap_values(data)
    return out


#: the woodelf release whose internals (nodes, dense and sparse path-dependent algorithms,
#: s-vector calculator) this module was checked against
WOODELF_VERSION = "0.4.8"


def _woodelf() -> Any:
    """woodelf, or NotReproduced (use the native routine) when it is not installed
    or is another release than the one checked."""
    try:
        woodelf = import_optional("woodelf", extra="explain", purpose="fast exact tree SHAP")
    except ImportError as exc:
        raise NotReproduced(str(exc)) from exc
    if getattr(woodelf, "__version__", None) != WOODELF_VERSION:
        raise NotReproduced(
            f"woodelf {getattr(woodelf, '__version__', '?')} is installed; tree_shap was "
            f"checked against woodelf {WOODELF_VERSION}"
        )
    return woodelf


def _trees(booster: Any) -> _Trees:
    """The booster's trees, from the cache when the booster has not changed."""
    kind = _kind(booster)
    stamp = _stamp(kind, booster)
    with _LOCK:
        hit = _cache_get(booster)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    trees = _xgboost_trees(booster) if kind == "xgboost" else _lightgbm_trees(booster)
    with _LOCK:
        try:
            _CACHE[booster] = (stamp, trees)
        except TypeError:  # not weakly referenceable: no cache
            pass
    return trees


def _cache_get(booster: Any) -> tuple[Any, _Trees] | None:
    try:
        return _CACHE.get(booster)
    except TypeError:
        return None


def _kind(booster: Any) -> str:
    module = type(booster).__module__
    if module.startswith("xgboost") and type(booster).__name__ == "Booster":
        return "xgboost"
    if module.startswith("lightgbm") and type(booster).__name__ == "Booster":
        return "lightgbm"
    raise NotReproduced(f"tree_shap reads xgboost/lightgbm Boosters, not {module}")


def _stamp(kind: str, booster: Any) -> tuple[int, ...]:
    if kind == "xgboost":
        return (int(booster.num_boosted_rounds()),)
    return (int(booster.current_iteration()), int(booster.best_iteration or 0))


# -- woodelf's path-dependent s-vectors, kept per booster ----------------------------------
#: deepest ensemble explained by woodelf's dense algorithm with the s-vectors kept (woodelf
#: itself stops at 10 in path-dependent mode, where it keeps nothing; with them kept, depth
#: 11 LightGBM folds run in 0.6x the time of its sparse algorithm, keeping ~1-2 MB per
#: booster); deeper ensembles go to the sparse algorithm
_MAX_DENSE_DEPTH = 12


@functools.cache
def _memo_class() -> type:
    """woodelf's s-vector calculator, remembering each leaf's s-vectors.

    In path-dependent mode a leaf's s-vectors depend only on the features on its path,
    their cover ratios and the leaf values (not on the records explained), so a booster
    explained again reuses them; they are kept contiguous (woodelf indexes them with the
    records' decision patterns).
    """
    from woodelf.core.cube_metric import ShapleyValues  # type: ignore[import-untyped]
    from woodelf.core.path_to_s_vectors.woodelf_p2s import (  # type: ignore[import-untyped]
        HighDepthWoodelfPathToSVectors,
    )

    class MemoSVectors(HighDepthWoodelfPathToSVectors):  # type: ignore[misc]
        def __init__(self, max_depth: int) -> None:
            super().__init__(metric=ShapleyValues(), max_depth=max_depth)
            self.memo: dict[Any, dict[Any, np.ndarray]] = {}

        def get_path_dependent_s_matrix(
            self, features: Any, patterns: Any, covers: Any, w: Any, w_neighbor: Any = None
        ) -> dict[Any, np.ndarray]:
            key = (tuple(features), np.asarray(covers).tobytes(), w, w_neighbor)
            found = self.memo.get(key)
            if found is None:
                made = super().get_path_dependent_s_matrix(
                    features, patterns, covers, w, w_neighbor
                )
                found = self.memo[key] = {k: np.ascontiguousarray(v) for k, v in made.items()}
            return found

    return MemoSVectors


# -- woodelf nodes ------------------------------------------------------------------------
def _node_class() -> type:
    """A woodelf node whose go-left rule is a function of its feature's column."""
    from woodelf.core.trees.decision_trees_ensemble import DecisionTreeNode  # type: ignore[import-untyped]

    class RuleNode(DecisionTreeNode):  # type: ignore[misc]
        rule: Callable[[np.ndarray], np.ndarray]

        def shall_go_left(self, row: Any, GPU: bool = False) -> Any:  # noqa: N803
            return self.rule(row[self.feature_name].to_numpy()).view(_Bits)

    return RuleNode


class _Bits(np.ndarray):
    """A boolean array that answers ``to_numpy()`` like the pandas Series woodelf's nodes
    return (woodelf only inverts it and reads it back), without building a Series."""

    def to_numpy(self) -> np.ndarray:
        return self.view(np.ndarray)


@functools.cache
def _rule_node() -> type:
    return _node_class()


def _split(
    feature: int, rule: Callable[..., np.ndarray], left: Any, right: Any, cover: float
) -> Any:
    node = _rule_node()(feature, 0.0, right, left, index=None, cover=float(cover))
    node.rule = rule
    left.parent = right.parent = node
    return node


def _leaf(value: float, cover: float) -> Any:
    from woodelf.core.trees.decision_trees_ensemble import DecisionTreeNode  # type: ignore[import-untyped]

    return DecisionTreeNode(None, value, None, None, cover=float(cover))


def _finish(root: Any) -> Any:
    """Number the nodes (woodelf keys its dicts by index) and set the tree depth."""
    for i, node in enumerate(root.bfs()):
        node.index = i
    root.depth = root.get_depth()
    return root


def _isin(x: np.ndarray, values: list[float]) -> np.ndarray:
    """``x`` in ``values`` (NaN never is): equalities for a few values, faster than isin."""
    if len(values) > 8:
        return np.isin(x, values)
    out = np.zeros(x.shape, dtype=bool)
    for value in values:
        out |= x == value
    return out


def _xgb_number(threshold: float, default_left: bool, x: np.ndarray) -> np.ndarray:
    return ~(x >= threshold) if default_left else x < threshold


def _xgb_category(right: list[float], default_left: bool, x: np.ndarray) -> np.ndarray:
    missing = np.isnan(x)
    return np.where(missing, default_left, ~_isin(x, right))


def _lgb_number(threshold: float, default_left: bool, missing: str, x: np.ndarray) -> np.ndarray:
    if missing == "NaN":
        return np.where(np.isnan(x), default_left, x <= threshold)
    x = np.where(np.isnan(x), 0.0, x)
    if missing == "Zero":
        return np.where((x > -_ZERO) & (x <= _ZERO), default_left, x <= threshold)
    return x <= threshold


def _lgb_category(left: list[float], x: np.ndarray) -> np.ndarray:
    return _isin(x, left)


# -- XGBoost ------------------------------------------------------------------------------
_XGB_LINK: dict[str, Callable[[float], float]] = {
    "binary:logistic": lambda p: math.log(p / (1.0 - p)),
    "reg:logistic": lambda p: math.log(p / (1.0 - p)),
    "binary:logitraw": lambda p: p,
    "reg:squarederror": lambda p: p,
    "survival:cox": math.log,
    "survival:aft": math.log,
}


def _xgboost_trees(booster: Any) -> _Trees:
    learner = json.loads(booster.save_raw("json"))["learner"]
    gbm, param = learner["gradient_booster"], learner["learner_model_param"]
    if gbm.get("name") != "gbtree":
        raise NotReproduced(f"XGBoost booster {gbm.get('name')!r} (only gbtree)")
    model = gbm["model"]
    outputs = (int(param.get("num_class", 0)), int(param.get("num_target", 1)))
    if outputs[0] > 1 or outputs[1] != 1 or model["gbtree_model_param"]["num_parallel_tree"] != "1":
        raise NotReproduced("XGBoost boosters with several outputs or parallel trees")
    objective = learner["objective"]["name"]
    if objective not in _XGB_LINK:
        raise NotReproduced(f"XGBoost objective {objective!r}: base margin not known")
    base = float(np.float32(_XGB_LINK[objective](_xgb_base_score(param["base_score"]))))
    names = list(learner.get("feature_names") or [])
    types = list(learner.get("feature_types") or [])
    n_features = int(param["num_feature"])
    names = names or [f"f{j}" for j in range(n_features)]
    roots, bias = [], base
    for tree in model["trees"]:
        root, mean = _xgb_tree(tree)
        bias += mean
        if root is not None:
            roots.append(root)
    encoders = model.get("cats", {}).get("enc", [])
    cats = {
        j: _xgb_encoder(encoders[j] if j < len(encoders) else {})
        for j, t in enumerate(types)
        if t == "c"
    }
    return _Trees("xgboost", names, roots, bias, cats)


def _xgb_base_score(text: str) -> float:
    value = json.loads(text) if text.startswith("[") else float(text)
    values = value if isinstance(value, list) else [value]
    if len(values) != 1:
        raise NotReproduced("XGBoost base_score with several values")
    return float(values[0])


def _xgb_encoder(enc: dict[str, Any]) -> list[Any] | None:
    """The training categories the model stores for one column (None: codes as given)."""
    offsets, values = enc.get("offsets") or [], enc.get("values") or []
    if offsets:
        raw = bytes(values)
        return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return list(values) if values else None


def _xgb_tree(tree: dict[str, Any]) -> tuple[Any, float]:
    """One XGBoost tree as woodelf nodes (None for a single leaf), and its mean value."""
    left, right = tree["left_children"], tree["right_children"]
    cond = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
    cover, feature = tree["sum_hessian"], tree["split_indices"]
    default_left, split_type = tree["default_left"], tree["split_type"]
    sets = {
        node: [float(c) for c in tree["categories"][start : start + size]]
        for node, start, size in zip(
            tree["categories_nodes"],
            tree["categories_segments"],
            tree["categories_sizes"],
            strict=True,
        )
    }

    def build(i: int) -> tuple[Any, float]:
        if left[i] == -1:
            return _leaf(cond[i], cover[i]), float(cond[i])
        (lnode, lmean), (rnode, rmean) = build(left[i]), build(right[i])
        dleft = bool(default_left[i])
        if split_type[i] == 1:
            rule = functools.partial(_xgb_category, sets.get(i, []), dleft)
        else:
            rule = functools.partial(_xgb_number, float(cond[i]), dleft)
        mean = (lmean * cover[left[i]] + rmean * cover[right[i]]) / cover[i]
        return _split(feature[i], rule, lnode, rnode, cover[i]), mean

    root, mean = build(0)
    return (None if left[0] == -1 else _finish(root)), mean


# -- LightGBM -----------------------------------------------------------------------------
def _lightgbm_trees(booster: Any) -> _Trees:
    dump = booster.dump_model()
    if int(dump.get("num_tree_per_iteration", 1)) != 1 or int(dump.get("num_class", 1)) != 1:
        raise NotReproduced("LightGBM boosters with several outputs")
    if dump.get("average_output"):
        raise NotReproduced("LightGBM random-forest boosters (average_output)")
    roots, bias = [], 0.0
    for info in dump["tree_info"]:
        root, mean = _lgb_tree(info["tree_structure"])
        bias += mean
        if root is not None:
            roots.append(root)
    cats = getattr(booster, "pandas_categorical", None) or []
    return _Trees(
        "lightgbm",
        list(dump["feature_names"]),
        roots,
        bias,
        {-1 - i: c for i, c in enumerate(cats)},
    )


def _lgb_tree(top: dict[str, Any]) -> tuple[Any, float]:
    """One LightGBM tree as woodelf nodes (None for a single leaf), and its expected value
    (leaf values weighted by their record counts)."""
    if "split_index" not in top:
        _lgb_check_leaf(top)
        return None, float(top["leaf_value"])
    total = float(top["internal_count"])
    mean = 0.0

    def build(node: dict[str, Any]) -> Any:
        nonlocal mean
        if "split_index" not in node:
            _lgb_check_leaf(node)
            mean += float(node["leaf_count"]) / total * float(node["leaf_value"])
            return _leaf(float(node["leaf_value"]), node["leaf_count"])
        lnode, rnode = build(node["left_child"]), build(node["right_child"])
        if node["decision_type"] == "==":
            cats = [float(c) for c in str(node["threshold"]).split("||")]
            rule = functools.partial(_lgb_category, cats)
        elif node["decision_type"] == "<=":
            rule = functools.partial(
                _lgb_number,
                float(node["threshold"]),
                bool(node["default_left"]),
                node["missing_type"],
            )
        else:
            raise NotReproduced(f"LightGBM decision_type {node['decision_type']!r}")
        return _split(node["split_feature"], rule, lnode, rnode, node["internal_count"])

    return _finish(build(top)), mean


def _lgb_check_leaf(leaf: dict[str, Any]) -> None:
    if "leaf_coeff" in leaf or "leaf_const" in leaf:
        raise NotReproduced("LightGBM linear trees")


# -- inputs -------------------------------------------------------------------------------
def _matrix(trees: _Trees, X: pd.DataFrame) -> pd.DataFrame:
    """The input as the booster reads it: float64 columns named 0..p-1 (XGBoost's values
    rounded to float32), categories as the model's codes, NaN for missing."""
    if X.shape[1] != len(trees.names):
        raise NotReproduced(f"{X.shape[1]} columns for a booster of {len(trees.names)}")
    if trees.kind == "xgboost" and [str(c) for c in X.columns] != trees.names:
        raise NotReproduced("the columns are not the booster's feature names")
    dtype = np.float32 if trees.kind == "xgboost" else np.float64
    out = np.empty(X.shape, dtype=np.float64, order="F")
    n_cat = 0
    for j, (_, col) in enumerate(X.items()):
        if isinstance(col.dtype, pd.CategoricalDtype):
            key = j if trees.kind == "xgboost" else -1 - n_cat
            n_cat += 1
            out[:, j] = _codes(col, trees.categories.get(key), trees.kind == "lightgbm")
        elif trees.kind == "xgboost" and j in trees.categories:
            raise NotReproduced(f"column {col.name!r}: categorical split on a non-category column")
        elif col.dtype.kind in "biuf":
            out[:, j] = col.to_numpy(dtype=dtype, na_value=np.nan)
        else:
            raise NotReproduced(f"column {col.name!r} of dtype {col.dtype}")
    if np.isinf(out).any():
        raise NotReproduced("infinite values")
    if trees.kind == "lightgbm" and n_cat != len(trees.categories):
        raise NotReproduced("category columns differ from the booster's")
    return pd.DataFrame(out, index=X.index, columns=range(X.shape[1]), copy=False)


def _codes(col: pd.Series, categories: list[Any] | None, unseen_missing: bool) -> np.ndarray:
    """Codes of a category column in the model's categories (None: its own codes). An
    unseen category is missing for LightGBM (``set_categories``) and refused by XGBoost."""
    codes = col.cat.codes.to_numpy()
    if categories is not None:
        position = pd.Index(categories).get_indexer(col.cat.categories)
        mapped = np.where(codes >= 0, position[codes], -1)
        if not unseen_missing and ((codes >= 0) & (mapped < 0)).any():
            raise NotReproduced(f"column {col.name!r}: a category the model was not fitted on")
        codes = mapped
    return np.where(codes >= 0, codes, np.nan).astype(np.float64)
