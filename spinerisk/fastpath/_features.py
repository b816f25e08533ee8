"""Compile a fitted feature pipeline into numpy code working on float rows.

Categories travel as float codes (the index in the column's category list, NaN when
missing), the representation the boosters read natively. Every step is compiled from its
fitted attributes (``statistics_``, ``features_``, ``mean_``/``scale_``, ``categories_``,
``bsplines_``); nothing from scikit-learn runs at prediction time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    SplineTransformer,
    StandardScaler,
)

from spinerisk.fastpath._records import _BY_COLUMN_FROM, UnsupportedModelError
from spinerisk.features._clinical import ClinicalFeatures, derived_features
from spinerisk.schema import Schema
from spinerisk.schema._expr import record_values, typed_columns

__all__ = ["FeatureProgram", "UnsupportedModelError"]

Meta = list[tuple[Any, ...] | None]  # per column: category list (codes) or None (number)
Step = Callable[[np.ndarray], np.ndarray]
_NAN = float("nan")


def _unsupported(what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"FastPredictor cannot compile {what}; predict with RiskModel.predict_risk (the "
        "batch path) instead."
    )


# -- ClinicalFeatures ---------------------------------------------------------------------
class _ClinicalProgram:
    """Typed record values -> the ClinicalFeatures row (floats and category codes)."""

    def __init__(self, clinical: ClinicalFeatures, schema: Schema) -> None:
        if type(clinical) is not ClinicalFeatures:
            raise _unsupported(f"a feature step of type {type(clinical).__name__}")
        fields = list(clinical.fields_)
        probe = pd.DataFrame({f: pd.Series([None], dtype=schema[f].pandas_dtype()) for f in fields})
        out = clinical.transform(probe)
        self.columns = list(out.columns)
        if self.columns != list(clinical.feature_names_out_):
            raise _unsupported("ClinicalFeatures whose columns depend on the records")
        self.meta: Meta = [
            tuple(out[c].cat.categories) if isinstance(out[c].dtype, pd.CategoricalDtype) else None
            for c in self.columns
        ]
        self.fields = frozenset(fields)
        self.derive = bool(clinical.derive)
        self.schema = schema
        # the schema's derived features, compiled per record from the same declarations
        # ClinicalFeatures evaluates on frames
        applied = derived_features(schema, fields) if self.derive else []
        self._derivations = [(d.name, d.compile_record()) for d in applied]
        # and on whole batches, column by column (the same values, bit for bit)
        self._expressions = [(d.name, d.expression) for d in applied]
        derived = {d.name for d in applied}
        derived_before: set[str] = set()
        # what a derivation reads that is neither a model field nor derived before it
        # (a record may carry such a field: the batch path does not see it)
        readable, self._hidden = set(self.fields), set()
        # the record fields derivations read (before any derivation replaces them), kinds
        self._inputs: dict[str, str] = {}
        for d in applied:
            self._hidden.update(set(d.inputs) - readable)
            for name in d.inputs:
                if name in readable and name not in derived_before:
                    self._inputs.setdefault(name, d.expression.kinds[name])
            readable.add(d.name)
            derived_before.add(d.name)
        # per column: (read from the derived values?, key, code table or None: a number)
        getters: list[tuple[bool, str, dict[Any, float] | None]] = []
        for name, cats in zip(self.columns, self.meta, strict=True):
            codes = None if cats is None else {c: float(i) for i, c in enumerate(cats)}
            if name in derived:
                getters.append((True, name, codes))
            elif name in self.fields and cats is not None:
                getters.append((False, name, codes))
            elif name in self.fields and schema[name].dtype in ("float", "int", "bool"):
                getters.append((False, name, None))
            else:
                raise _unsupported(f"the ClinicalFeatures column {name!r}")
        self._getters = getters
        self._read = [key for from_derived, key, _ in getters if not from_derived]

    def _derived(self, t: Mapping[str, Any]) -> dict[str, Any]:
        """ClinicalFeatures._derive on one record."""
        if not self._derivations:
            return {}
        # only the model's own fields, as in the batch path (a record may carry others):
        # the record without the hidden ones equals the model's fields alone on every key
        # a derivation reads (a compiled expression reads an absent key as missing, so
        # the absent fields need no filling); a copy, which the derived values go into
        values = self._merged(t)
        return {name: values[name] for name, _ in self._derivations}

    def _merged(self, t: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the record without the hidden fields, with its derived values."""
        values = dict(t)
        for name in self._hidden:
            values.pop(name, None)
        for name, fn in self._derivations:
            values[name] = fn(values)
        return values

    def rows(self, typed: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if len(typed) >= _BY_COLUMN_FROM:
            return self._rows_by_column(typed)
        # record by record: column by column took 4x longer for one record (41 us
        # against 10)
        out = np.empty((len(typed), len(self.columns)))
        getters = self._getters
        for i, t in enumerate(typed):
            derived = self._derived(t)
            values = []
            for from_derived, key, codes in getters:
                v = (derived if from_derived else t).get(key)
                if v is None:
                    values.append(_NAN)
                elif codes is None:
                    values.append(float(v))
                else:
                    values.append(codes.get(v, _NAN))
            out[i] = values
        return out

    def _rows_by_column(self, typed: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """:meth:`rows` of a batch, column by column: the derived values by
        :meth:`_derived_columns` (the per-record values, bit for bit), the fields read
        from the records, codes looked up per column, numbers, flags and missing values
        converted by numpy (None to NaN, True to 1.0)."""
        derived = self._derived_columns(typed)
        n = len(typed)
        read = dict(zip(self._read, record_values(typed, self._read), strict=True))
        out = np.empty((n, len(self._getters)))
        for j, (from_derived, key, codes) in enumerate(self._getters):
            col: Any = derived[key] if from_derived else read[key]
            if codes is not None:
                col = list(map(codes.get, col, repeat(_NAN, n)))
            out[:, j] = col
        return out

    def _derived_columns(self, typed: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The derived values of a batch, in declaration order, as :meth:`_merged` gives
        them record by record: each read from the fields (the hidden ones missing) and
        the values derived before it (``Expression.evaluate_columns``)."""
        # every field read first (the hidden ones are absent: missing), then each
        # derivation in turn, replacing a field of its name for the ones after it
        columns = typed_columns(typed, self._inputs, self._inputs)
        n = len(typed)
        for name, expression in self._expressions:
            columns[name] = expression.evaluate_columns(columns, n)
        return columns


# -- scikit-learn steps -----------------------------------------------------------------------
def _identity(X: np.ndarray) -> np.ndarray:
    return X


# A "plan" describes a step that only selects columns or flags missing values: one
# (source column, op) per output column, op 0 = the value, op 1 = isnan(value). Steps
# made only of such parts are fused into one gather (see _run_plan).
Plan = list[tuple[int, int]]


def _with_plan(fn: Step, plan: Plan | None) -> Step:
    def run(X: np.ndarray) -> np.ndarray:
        return fn(X)

    run.plan = plan  # type: ignore[attr-defined]
    return run


def _plan_of(fn: Step) -> Plan | None:
    return getattr(fn, "plan", None)


def _identity_step(n: int) -> Step:
    return _with_plan(_identity, [(i, 0) for i in range(n)])


def _compose(first: Plan, second: Plan) -> Plan | None:
    out: Plan = []
    for j, op in second:
        src, op1 = first[j]
        if op == 1 and op1 == 1:
            return None  # isnan of a 0/1 flag: not a gather
        out.append((src, max(op, op1)))
    return out


def _run_plan(plan: Plan) -> Step:
    src = np.array([p[0] for p in plan], dtype=np.intp)
    flag = np.array([p[1] == 1 for p in plan])
    if not flag.any():

        def gather(X: np.ndarray) -> np.ndarray:
            return X[:, src]

        return _with_plan(gather, plan)

    def gather_flag(X: np.ndarray) -> np.ndarray:
        values = X[:, src]
        return np.where(flag, np.isnan(values), values)

    return _with_plan(gather_flag, plan)


def _chain(steps: list[Step]) -> Step:
    if len(steps) == 1:
        return steps[0]

    def run(X: np.ndarray) -> np.ndarray:
        for step in steps:
            X = step(X)
        return X

    return run


def _compile_pipeline(pipe: Pipeline, meta: Meta) -> tuple[Step, Meta]:
    steps = []
    plan: Plan | None = [(i, 0) for i in range(len(meta))]
    for _, est in pipe.steps:
        if est is None or (isinstance(est, str) and est == "passthrough"):
            continue
        fn, meta = _compile(est, meta)
        steps.append(fn)
        step_plan = _plan_of(fn)
        plan = None if plan is None or step_plan is None else _compose(plan, step_plan)
    if plan is not None:
        return _run_plan(plan), meta
    return (_chain(steps) if steps else _identity_step(len(meta))), meta


def _column_indices(ct: ColumnTransformer, cols: Any, n_in: int) -> np.ndarray:
    if isinstance(cols, slice):
        return np.arange(n_in)[cols]
    cols = list(cols) if not isinstance(cols, str) else [cols]
    if not cols:
        return np.zeros(0, dtype=np.intp)
    if all(isinstance(c, str) for c in cols):
        names = list(ct.feature_names_in_)
        return np.array([names.index(c) for c in cols], dtype=np.intp)
    arr = np.asarray(cols)
    if arr.dtype == bool:
        return np.flatnonzero(arr)
    return arr.astype(np.intp)


def _compile_column_transformer(ct: ColumnTransformer, meta: Meta) -> tuple[Step, Meta]:
    parts: list[tuple[np.ndarray, Step]] = []
    out_meta: Meta = []
    for _name, trans, cols in ct.transformers_:
        idx = _column_indices(ct, cols, len(meta))
        if (isinstance(trans, str) and trans == "drop") or idx.size == 0:
            continue
        sub_meta = [meta[i] for i in idx]
        if isinstance(trans, str) and trans == "passthrough":
            fn, sub_out = _identity_step(len(sub_meta)), sub_meta
        else:
            fn, sub_out = _compile(trans, sub_meta)
        parts.append((idx, fn))
        out_meta.extend(sub_out)
    plans = [_plan_of(fn) for _, fn in parts]
    if all(p is not None for p in plans):
        plan = [
            (int(idx[j]), op) for (idx, _), p in zip(parts, plans, strict=True) for j, op in p or ()
        ]
        return _run_plan(plan), out_meta

    def run(X: np.ndarray) -> np.ndarray:
        return np.hstack([fn(X[:, idx]) for idx, fn in parts])

    return run, out_meta


def _is_nan_marker(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _compile_imputer(imp: SimpleImputer, meta: Meta) -> tuple[Step, Meta]:
    if not _is_nan_marker(imp.missing_values) or getattr(imp, "keep_empty_features", False):
        raise _unsupported("a SimpleImputer with missing_values other than NaN")
    stats = np.asarray(imp.statistics_, dtype=float)
    valid = np.flatnonzero(~np.isnan(stats))
    fill = stats[valid]
    indicator = getattr(imp, "indicator_", None)
    ind_fn: Step | None = None
    out_meta: Meta = [None] * len(valid)
    if indicator is not None:
        ind_fn, ind_meta = _compile_indicator(indicator, meta)
        out_meta = out_meta + ind_meta

    def run(X: np.ndarray) -> np.ndarray:
        Xv = X[:, valid]
        out = np.where(np.isnan(Xv), fill, Xv)
        if ind_fn is not None:
            return np.hstack([out, ind_fn(X)])
        return out

    return run, out_meta


def _compile_indicator(ind: MissingIndicator, meta: Meta) -> tuple[Step, Meta]:
    if not _is_nan_marker(ind.missing_values) or ind.sparse is True:
        raise _unsupported("a MissingIndicator with missing_values other than NaN")
    feats = np.asarray(ind.features_, dtype=np.intp)

    def run(X: np.ndarray) -> np.ndarray:
        return np.isnan(X[:, feats]).astype(float)

    return _with_plan(run, [(int(f), 1) for f in feats]), [None] * len(feats)


def _compile_scaler(sc: StandardScaler, meta: Meta) -> tuple[Step, Meta]:
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None

    def run(X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float)
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return run, [None] * len(meta)


def _compile_onehot(ohe: OneHotEncoder, meta: Meta) -> tuple[Step, Meta]:
    if ohe.drop_idx_ is not None or getattr(ohe, "_infrequent_enabled", False):
        raise _unsupported("a OneHotEncoder with drop or infrequent categories")
    if ohe.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise _unsupported(f"a OneHotEncoder with handle_unknown={ohe.handle_unknown!r}")
    if any(m is None for m in meta):
        raise _unsupported("a OneHotEncoder on numeric columns")
    width = max(len(m) for m in meta if m is not None) + 1  # last slot: missing
    table = np.full((len(meta), width), -1, dtype=np.intp)
    start = 0
    for j, (cats, learned) in enumerate(zip(meta, ohe.categories_, strict=True)):
        assert cats is not None
        for pos, value in enumerate(learned):
            if _is_nan_marker(value) or value is None:
                table[j, width - 1] = start + pos
            elif value in cats:
                table[j, cats.index(value)] = start + pos
            else:
                raise _unsupported(f"a OneHotEncoder category {value!r} outside the code list")
        start += len(learned)
    n_out = start
    col = np.arange(len(meta))
    dtype = ohe.dtype

    def run(X: np.ndarray) -> np.ndarray:
        codes = np.where(np.isnan(X), width - 1, X).astype(np.intp)
        pos = table[col, codes]
        out = np.zeros((X.shape[0], n_out), dtype=dtype)
        rows, cols = np.nonzero(pos >= 0)
        out[rows, pos[rows, cols]] = 1.0
        return out

    return run, [None] * n_out


def _compile_spline(st: SplineTransformer, meta: Meta) -> tuple[Step, Meta]:
    if st.extrapolation not in ("linear", "constant", "continue") or st.sparse_output:
        raise _unsupported(f"a SplineTransformer with extrapolation={st.extrapolation!r}")
    if getattr(st, "handle_missing", "error") not in ("error", "zeros"):
        raise _unsupported("a SplineTransformer with this handle_missing")
    degree = int(st.degree)
    n_splines = st.bsplines_[0].c.shape[1]
    specs = []
    for spl in st.bsplines_:
        xmin, xmax = float(spl.t[degree]), float(spl.t[-degree - 1])
        specs.append((spl, xmin, xmax, spl(xmin), spl(xmax), spl(xmin, nu=1), spl(xmax, nu=1)))
    keep = (
        None
        if st.include_bias
        else np.array([j for j in range(len(specs) * n_splines) if (j + 1) % n_splines != 0])
    )
    extrapolation = st.extrapolation
    lin_degree = degree + 1 if degree <= 1 else degree

    def run(X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], len(specs) * n_splines))
        for i, (spl, xmin, xmax, f_min, f_max, fp_min, fp_max) in enumerate(specs):
            x = X[:, i]
            base = i * n_splines
            if extrapolation == "continue":
                out[:, base : base + n_splines] = spl(x)
                out[np.isnan(x), base : base + n_splines] = 0.0
                continue
            inside = (xmin <= x) & (x <= xmax)
            if inside.any():
                out[inside, base : base + n_splines] = spl(x[inside])
            below, above = x < xmin, x > xmax
            if extrapolation == "constant":
                out[below, base : base + degree] = f_min[:degree]
                out[above, base + n_splines - degree : base + n_splines] = f_max[-degree:]
                continue
            for j in range(lin_degree):
                if below.any():
                    out[below, base + j] = f_min[j] + (x[below] - xmin) * fp_min[j]
                if above.any():
                    k = n_splines - 1 - j
                    out[above, base + k] = f_max[k] + (x[above] - xmax) * fp_max[k]
        return out if keep is None else out[:, keep]

    n_out = len(specs) * n_splines if keep is None else len(keep)
    return run, [None] * n_out


def _compile(est: Any, meta: Meta) -> tuple[Step, Meta]:
    kind = type(est)
    if kind is Pipeline:
        return _compile_pipeline(est, meta)
    if kind is ColumnTransformer:
        return _compile_column_transformer(est, meta)
    if kind is SimpleImputer:
        if est.strategy not in ("median", "mean", "most_frequent", "constant"):
            raise _unsupported(f"a SimpleImputer with strategy={est.strategy!r}")
        return _compile_imputer(est, meta)
    if kind is MissingIndicator:
        return _compile_indicator(est, meta)
    if kind is StandardScaler:
        return _compile_scaler(est, meta)
    if kind is OneHotEncoder:
        return _compile_onehot(est, meta)
    if kind is SplineTransformer:
        return _compile_spline(est, meta)
    if kind is FunctionTransformer and est.func is None:  # a fitted "passthrough"
        return _identity_step(len(meta)), list(meta)
    raise _unsupported(f"a feature step of type {kind.__name__}")


class FeatureProgram:
    """A fitted feature pipeline compiled to numpy.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted ``Pipeline([("clinical", ClinicalFeatures), ("encode", ...)])`` from
        :func:`spinerisk.make_feature_pipeline`.
    schema : Schema
        The schema the records were validated with.

    Attributes
    ----------
    feature_names_out_ : list of str
        Output columns, identical to ``pipeline.get_feature_names_out()``.
    categorical_ : ndarray of bool
        Output columns holding category codes (native encoding).
    categories_ : list
        Per output column, its category list (None for numbers).
    """

    def __init__(self, pipeline: Pipeline, schema: Schema) -> None:
        if type(pipeline) is not Pipeline or len(pipeline.steps) < 1:
            raise _unsupported(f"a feature step of type {type(pipeline).__name__}")
        clinical = pipeline.steps[0][1]
        self._clinical = _ClinicalProgram(clinical, schema)
        rest = Pipeline(pipeline.steps[1:]) if len(pipeline.steps) > 1 else None
        if rest is None:
            self._encode, meta = _identity_step(len(self._clinical.meta)), list(self._clinical.meta)
        else:
            self._encode, meta = _compile_pipeline(rest, list(self._clinical.meta))
        self.feature_names_out_ = [str(c) for c in pipeline.get_feature_names_out()]
        if len(meta) != len(self.feature_names_out_):
            raise _unsupported("a feature pipeline whose output width could not be matched")
        self.categories_ = meta
        c = self._clinical
        self._key = (tuple(sorted(c.fields)), c.derive, tuple(c.columns))
        plan = _plan_of(self._encode)
        # programs with equal encode keys give the same model matrix from the same rows
        self.encode_key: tuple[Any, ...] | None = None if plan is None else (self._key, tuple(plan))
        self.categorical_ = np.array([m is not None for m in meta])

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the ClinicalFeatures step: programs with equal keys share rows."""
        return self._key

    @property
    def fields(self) -> frozenset[str]:
        """Fields the ClinicalFeatures step reads (the batch path needs all present)."""
        return self._clinical.fields

    def clinical_rows(self, typed: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """ClinicalFeatures output of typed records (floats and category codes)."""
        return self._clinical.rows(typed)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Encoding steps on ClinicalFeatures rows."""
        return self._encode(rows)

    def transform(self, typed: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Model matrix of typed records (see :class:`RecordChecker`).

        Parameters
        ----------
        typed : sequence of dict
            Typed values per record.

        Returns
        -------
        ndarray of shape (n_records, n_features_out)
            Float64; categories as codes, missing values as NaN.
        """
        return self._encode(self._clinical.rows(typed))
