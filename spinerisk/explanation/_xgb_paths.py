"""XGBoost's own tree SHAP, computed once per decision pattern instead of once per record.

``booster.predict(dmatrix, pred_contribs=True)`` (XGBoost 3.x, ``cpu_predictor.cc``,
``PredictContributionKernel``) computes, for every record and every tree ``j`` in order,
the tree's contributions into a zeroed float32 buffer (``CalculateContributions``,
``treeshap.cc``), then adds the buffer to the record's row: ``p[c] += tree_j[c] * 1``;
the bias column ends with ``+ base_score``. Inside a tree, the record enters the
recursion only through the branch it takes at each split (``GetNextNode``: missing, or
``value < threshold``, or the category's side); nothing else of the record is read.
So two records that take the same branch at every split of tree ``j`` get the same
float32 buffer, bit for bit.

This module groups the records, tree by tree, by the values that decide every split of
the tree (for a number: where it falls among the tree's thresholds on it, missing
apart; for a category: its code, missing apart), asks XGBoost for the buffer of one
record per group (``pred_contribs`` of the one-tree slice ``booster[j:j+1]``, whose
feature columns are ``0 + tree_j[c]`` exactly), and adds the buffers to the rows in
tree order, in float32, as XGBoost does. Columns a tree never splits on get ``+0.0``
from it in XGBoost, which leaves a sum that starts at ``+0.0`` unchanged, so they are
skipped. The bias column (the trees' expected values plus ``base_score``) is the same
for every record and is read from XGBoost.

The values are XGBoost's own; only their reuse across records is new. Each call
checks it on a spread sample of records against the full ``pred_contribs`` call and
returns None (the caller then makes the full call) when anything differs or the
model is not a single-output ``gbtree`` of one tree per round.
"""

from __future__ import annotations

import json
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spinerisk._threads import n_threads

#: Records of the check against the full native call.
CHECK_ROWS = 256
#: Fewest records for which the groups are worth it: the tables cost about a
#: millisecond per tree whatever the batch, the native call about half a microsecond
#: per tree and record (one nonunion fold booster, 118 trees, 2 cores: 0.15 s against
#: 0.13 s native at 2,000 records, 0.17 s against 0.30 s at 5,000; 0.11 s against
#: 0.01 s for one record). Smaller batches get the native call.
MIN_ROWS = 4000
#: Trees whose groups are computed together (in threads) before being added up.
_TREES_AT_ONCE = 16


@dataclass
class _Tree:
    """A tree with splits: its index, the columns it splits on and, per column, how the
    column's code (:func:`_codes`) maps to the tree's own branches: a lookup table for
    a number, None for a category."""

    index: int
    columns: list[int]
    parts: list[tuple[int, np.ndarray | None]]


@dataclass
class _Model:
    """A booster's trees and, per numeric column, every threshold of every tree."""

    trees: list[_Tree]
    edges: dict[int, np.ndarray]
    categorical: set[int]


#: Parsed trees of the boosters explained so far (the model's own booster objects).
_CACHE: weakref.WeakKeyDictionary[Any, tuple[int, _Model | None]] = weakref.WeakKeyDictionary()


def contributions(
    booster: Any,
    dmatrix: Any,
    X: pd.DataFrame,
    source: Any = None,
    *,
    min_rows: int | None = None,
) -> np.ndarray | None:
    """``booster.predict(dmatrix, pred_contribs=True)`` by decision pattern, or None.

    Parameters
    ----------
    booster : xgboost.Booster
        Single-output ``gbtree`` (one tree per round), any thread count.
    dmatrix : xgboost.DMatrix
        Built from ``X``.
    X : DataFrame of shape (n_samples, n_features)
        Numbers, booleans and pandas categories, in the booster's column order.
    source : xgboost.Booster or None, default=None
        The model's own booster that ``booster`` copies: its parsed trees are kept
        (weakly) for the next call.
    min_rows : int or None, default=None
        Fewer records than this: None (the native call is faster); None means
        :data:`MIN_ROWS`.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_features + 1), or None
        Identical to the native call's output; None where this shortcut does not
        apply (the caller makes the native call).
    """
    if len(X) < max(MIN_ROWS if min_rows is None else min_rows, 1):
        return None
    values = _values(X)
    model = None if values is None else _parsed(booster, X.shape[1], source)
    if values is None or model is None:
        return None
    n = len(X)
    one = booster.copy()  # the slices run on one thread: small calls, no thread team
    one.set_param({"nthread": 1})
    codes = _codes(values, model)

    def table(tree: _Tree) -> tuple[np.ndarray, np.ndarray]:
        group, reps = _groups(codes, tree.parts, n)
        return group, one[tree.index : tree.index + 1].predict(
            dmatrix.slice(reps), pred_contribs=True
        )

    out = np.zeros((X.shape[1] + 1, n), dtype=np.float32)  # one row per column
    with ThreadPoolExecutor(n_threads()) as pool:
        # tables in threads (XGBoost and numpy release the GIL), sums in tree order;
        # a few trees at a time, so that the groups kept waiting stay small
        for start in range(0, len(model.trees), _TREES_AT_ONCE):
            trees = model.trees[start : start + _TREES_AT_ONCE]
            for tree, (group, values_j) in zip(trees, pool.map(table, trees), strict=True):
                for c in tree.columns:
                    out[c] += values_j[:, c][group]
    rows = np.unique(np.linspace(0, n - 1, min(n, CHECK_ROWS)).astype(np.intp))
    native = booster.predict(dmatrix.slice(rows), pred_contribs=True)
    out[-1] = native[0, -1]
    result = out.T
    if not np.array_equal(result[rows], native):
        return None
    return np.ascontiguousarray(result)


def _values(X: pd.DataFrame) -> np.ndarray | None:
    """The values XGBoost reads, one float32 row per column (category codes, NaN for
    missing), or None for a column of another kind."""
    out = np.empty((X.shape[1], len(X)), dtype=np.float32)
    for i, (_, col) in enumerate(X.items()):
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            out[i] = np.where(codes < 0, np.nan, codes)
        elif col.dtype.kind in "biuf":
            out[i] = col.to_numpy()
        else:
            return None
    return out


def _codes(values: np.ndarray, model: _Model) -> dict[int, tuple[np.ndarray, int]]:
    """Per column split on: a small integer per record that decides every split on it
    (numbers: the place among all thresholds on the column, the last code for missing;
    categories: code + 1, 0 for missing), and the number of codes."""
    out: dict[int, tuple[np.ndarray, int]] = {}
    for f in model.categorical:
        v = values[f]
        code = np.where(np.isnan(v), 0, v + 1).astype(np.int64)
        out[f] = code, int(code.max()) + 1
    for f, edges in model.edges.items():
        v = values[f]
        code = np.searchsorted(edges, v, side="right")
        code[np.isnan(v)] = len(edges) + 1
        out[f] = code, len(edges) + 2
    return out


def _parsed(booster: Any, n_features: int, source: Any) -> _Model | None:
    """:func:`_model` of ``booster``, kept for ``source`` while its rounds are the same."""
    if source is None:
        return _model(booster, n_features)
    rounds = int(source.num_boosted_rounds())
    kept = _CACHE.get(source)
    if kept is None or kept[0] != rounds:
        kept = rounds, _model(booster, n_features)
        _CACHE[source] = kept
    return kept[1]


def _model(booster: Any, n_features: int) -> _Model | None:
    """The trees with splits (None: not a single-output gbtree of one tree per round, or
    a split this module does not read)."""
    doc = json.loads(booster.save_raw("json"), parse_float=str)["learner"]
    if doc["gradient_booster"].get("name") != "gbtree":
        return None
    model = doc["gradient_booster"]["model"]
    trees = model["trees"]
    if [int(i) for i in model.get("iteration_indptr", [])] != list(range(len(trees) + 1)):
        return None  # not one tree per round (forests, several outputs)
    types = booster.feature_types or ["float"] * n_features
    found: list[tuple[int, dict[int, np.ndarray | None]]] = []
    for j, tree in enumerate(trees):
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            return None
        splits = _splits(tree, types)
        if splits is None:
            return None
        if splits:
            found.append((j, splits))
    edges: dict[int, list[np.ndarray]] = {}
    for _, splits in found:
        for f, local in splits.items():
            if local is not None:
                edges.setdefault(f, []).append(local)
    every = {f: np.unique(np.concatenate(e)) for f, e in edges.items()}
    out = []
    for j, splits in found:
        parts: list[tuple[int, np.ndarray | None]] = []
        for f, local in sorted(splits.items()):
            if local is None:
                parts.append((f, None))
                continue
            # the tree's code of a record from its code among all thresholds on f
            inner = np.searchsorted(local, every[f], side="right")
            parts.append((f, np.concatenate([[0], inner, [len(local) + 1]])))
        out.append(_Tree(j, [f for f, _ in parts], parts))
    categorical = {f for _, s in found for f, local in s.items() if local is None}
    return _Model(out, every, categorical)


def _splits(tree: dict[str, Any], types: list[str]) -> dict[int, np.ndarray | None] | None:
    """Per column the tree splits on: its sorted float32 thresholds, None for a
    category; None for a split this module does not read."""
    found: dict[int, list[str]] = {}
    for node, child in enumerate(tree["left_children"]):
        if child == -1:
            continue
        f = int(tree["split_indices"][node])
        if (types[f] == "c") != (int(tree["split_type"][node]) == 1):
            return None
        found.setdefault(f, []).append(str(tree["split_conditions"][node]))
    return {f: None if types[f] == "c" else _edges(found[f]) for f in found}


def _edges(written: list[str]) -> np.ndarray:
    """The float32 thresholds of a column's splits, sorted. A threshold whose JSON text
    is not exactly its float32's shortest form (so that reading it could be off by a
    rounding) also gets its float32 neighbours: finer groups, never wrong ones."""
    edges = []
    for text in written:
        t = np.float32(float(text))
        edges.append(t)
        if float(str(t)) != float(text):
            edges += [np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))]
    return np.unique(np.asarray(edges, dtype=np.float32))


def _groups(
    codes: dict[int, tuple[np.ndarray, int]], parts: list[tuple[int, np.ndarray | None]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group of each record (same branch at every split of the tree) and one record
    per group."""
    key, size = np.zeros(n, dtype=np.int64), 1
    for f, lookup in parts:
        code, radix = codes[f]
        if lookup is not None:
            code, radix = lookup[code], int(lookup[-1]) + 1
        if size * radix >= 1 << 62:  # renumber the groups so far before the key overflows
            _, key = np.unique(key, return_inverse=True)
            key, size = key.ravel().astype(np.int64), int(key.max()) + 1
        key, size = key * radix + code, size * radix
    if size > 8 * n:
        _, first, group = np.unique(key, return_index=True, return_inverse=True)
        return group.ravel(), first
    seen = np.zeros(size, dtype=bool)
    seen[key] = True
    ids = np.flatnonzero(seen)
    number = np.zeros(size, dtype=np.intp)
    number[ids] = np.arange(len(ids))
    group = number[key]
    first = np.empty(len(ids), dtype=np.intp)
    first[group] = np.arange(n)  # one record per group (which one does not matter)
    return group, first
