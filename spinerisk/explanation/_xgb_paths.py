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
from typing import Any

import numpy as np
import pandas as pd

#: Records of the check against the full native call.
CHECK_ROWS = 256

_Tree = tuple[int, list[int], list[tuple[int, np.ndarray | None]]]


def contributions(booster: Any, dmatrix: Any, X: pd.DataFrame) -> np.ndarray | None:
    """``booster.predict(dmatrix, pred_contribs=True)`` by decision pattern, or None.

    Parameters
    ----------
    booster : xgboost.Booster
        Single-output ``gbtree`` (one tree per round), any thread count.
    dmatrix : xgboost.DMatrix
        Built from ``X``.
    X : DataFrame of shape (n_samples, n_features)
        Numbers, booleans and pandas categories, in the booster's column order.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_features + 1), or None
        Identical to the native call's output; None where this shortcut does not
        apply (the caller makes the native call).
    """
    values = _values(X)
    trees = None if values is None else _trees(booster, X.shape[1])
    if values is None or trees is None:
        return None
    n = len(X)
    one = booster.copy()  # the slices run on one thread: small calls, no thread team
    one.set_param({"nthread": 1})
    out = np.zeros((X.shape[1] + 1, n), dtype=np.float32)  # one row per column
    for j, cols, parts in trees:
        group, reps = _groups(values, parts, n)
        table = one[j : j + 1].predict(dmatrix.slice(reps), pred_contribs=True)
        for c in cols:
            out[c] += table[:, c][group]
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


def _trees(booster: Any, n_features: int) -> list[_Tree] | None:
    """Per tree with splits: its index, the columns it splits on and, per column, the
    numeric thresholds (with their float32 neighbours) or None for a category."""
    doc = json.loads(booster.save_raw("json"), parse_float=str)["learner"]
    model = doc["gradient_booster"]
    if doc["gradient_booster"].get("name") != "gbtree":
        return None
    model = model["model"]
    trees = model["trees"]
    if [int(i) for i in model.get("iteration_indptr", [])] != list(range(len(trees) + 1)):
        return None  # not one tree per round (forests, several outputs)
    types = booster.feature_types or ["float"] * n_features
    out: list[_Tree] = []
    for j, tree in enumerate(trees):
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            return None
        parts = _splits(tree, types)
        if parts is None:
            return None
        if parts:
            out.append((j, [f for f, _ in parts], parts))
    return out


def _splits(tree: dict[str, Any], types: list[str]) -> list[tuple[int, np.ndarray | None]] | None:
    left = tree["left_children"]
    found: dict[int, list[str]] = {}
    for node, child in enumerate(left):
        if child == -1:
            continue
        f = int(tree["split_indices"][node])
        categorical = types[f] == "c"
        if categorical != (int(tree["split_type"][node]) == 1):
            return None
        found.setdefault(f, []).append(str(tree["split_conditions"][node]))
    parts: list[tuple[int, np.ndarray | None]] = []
    for f in sorted(found):
        if types[f] == "c":
            parts.append((f, None))
            continue
        parts.append((f, _edges(found[f])))
    return parts


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
    values: np.ndarray, parts: list[tuple[int, np.ndarray | None]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group of each record (same branch at every split of the tree) and one record
    per group."""
    key, size = np.zeros(n, dtype=np.int64), 1
    for f, edges in parts:
        v = values[f]
        missing = np.isnan(v)
        if edges is None:
            code = np.where(missing, 0, v + 1).astype(np.int64)
            radix = int(code.max()) + 1
        else:
            code = np.searchsorted(edges, v, side="right").astype(np.int64)
            code[missing] = len(edges) + 1
            radix = len(edges) + 2
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
