"""Compiled model heads: numpy rows -> risks, mirroring each estimator's predict path.

Boosters are called on numpy rows (categories as codes, missing values as NaN), with
the same iteration range, missing-value marker and thread count as their scikit-learn
wrappers. The survival heads reuse the models' own numpy code
(:meth:`CoxType._cumulative_hazard`, :meth:`BoostedAFTSurvival._cumulative_hazard` and
:meth:`CauseSpecificCIF._paths`) on light stand-ins whose linear predictor or margin is
compiled, so the CIF integral is not re-implemented here.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any, cast

import numpy as np
from scipy.special import expit

from spinerisk.fastpath._compiled import compiled_outputs, compiled_rows
from spinerisk.fastpath._features import UnsupportedModelError, _unsupported

__all__ = [
    "BinaryEnsemble",
    "LightGBMHead",
    "LinearHead",
    "StackHead",
    "XGBoostHead",
    "binary_head",
    "survival_head",
]


# -- raw scores -------------------------------------------------------------------------------
class LinearHead:
    """``X @ coef.T + intercept`` (logistic decision function)."""

    def __init__(self, coef: np.ndarray, intercept: Any) -> None:
        self.coef_t = np.asarray(coef).T
        self.intercept = intercept

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.reshape(X @ self.coef_t + self.intercept, (-1,))


class XGBoostHead:
    """An ``xgboost.Booster`` on numpy rows (probability or margin), as float64.

    One-row calls go straight to XGBoost's C prediction entry point (the one
    ``inplace_predict`` calls) with a pre-built array interface and a reused proxy
    matrix: the Python wrapper and a new proxy per call cost about 0.1 ms per booster.
    The call state is per thread, so one predictor can serve several threads. Several
    rows use ``inplace_predict``. The compile-time check compares both.

    :meth:`compile` turns the trees into C (:mod:`spinerisk.fastpath._compiled`); calls
    then run the compiled trees, one row at a time (a few microseconds instead of ~35) or
    several in one call of tl2cgen's batch loop (100 rows about 3x faster than
    ``inplace_predict``), which give XGBoost's own float32 answer bit for bit (checked on
    probe rows, both ways, :meth:`check_compiled`).
    """

    def __init__(
        self,
        booster: Any,
        *,
        margin: bool,
        iteration_range: tuple[int, int] = (0, 0),
        missing: float = np.nan,
        c_api: bool = True,
    ) -> None:
        self.booster = booster
        self.kwargs = {
            "predict_type": "margin" if margin else "value",
            "iteration_range": iteration_range,
            "missing": missing,
            "validate_features": False,
        }
        self.n_features = int(booster.num_features())
        self.margin = bool(margin)
        self.trees: Any = None  # CompiledTrees after compile()
        self._args = json.dumps(
            {
                "type": 1 if margin else 0,
                "training": False,
                "iteration_begin": int(iteration_range[0]),
                "iteration_end": int(iteration_range[1]),
                "missing": float(missing),
                "strict_shape": False,
                "cache_id": 0,
            }
        ).encode()
        self.c_api = bool(c_api) and self._c_entry() is not None
        self._local = threading.local()

    @staticmethod
    def _c_entry() -> Any:
        try:
            from xgboost.core import _LIB, _ProxyDMatrix  # noqa: F401
        except ImportError:  # pragma: no cover - another xgboost layout: public path only
            return None
        return getattr(_LIB, "XGBoosterPredictFromDense", None)

    def _state(self) -> Any:
        state = getattr(self._local, "state", None)
        if state is None:
            from xgboost.core import _ProxyDMatrix, c_bst_ulong

            row = np.zeros((1, self.n_features))
            face = {
                "data": [row.__array_interface__["data"][0], False],
                "strides": None,
                "descr": [["", "<f8"]],
                "typestr": "<f8",
                "shape": [1, self.n_features],
                "version": 3,
            }
            preds = ctypes.POINTER(ctypes.c_float)()
            proxy = _ProxyDMatrix()
            state = (
                self._c_entry(),
                row,
                self.booster.handle,
                json.dumps(face).encode(),
                self._args,
                proxy.handle,
                ctypes.byref(ctypes.POINTER(c_bst_ulong)()),
                ctypes.byref(c_bst_ulong()),
                ctypes.byref(preds),
                preds,
                proxy,  # keeps the proxy alive
            )
            self._local.state = state
        return state

    def compile(self) -> None:
        """Answer one-row calls from the trees compiled to C; raises
        :class:`~spinerisk.fastpath._compiled.CompileUnavailable` (with the reason)."""
        self.trees = self.build_compiled()

    def build_compiled(self) -> Any:
        """The trees compiled to C (:class:`~spinerisk.fastpath._compiled.CompiledTrees`),
        not yet used; raises ``CompileUnavailable`` (with the reason)."""
        from spinerisk.fastpath._compiled import CompiledTrees, compile_xgboost

        path = compile_xgboost(
            self.booster,
            iteration_range=cast(tuple[int, int], self.kwargs["iteration_range"]),
            missing=float(cast(float, self.kwargs["missing"])),
        )
        return CompiledTrees(path, margin=self.margin, n_features=self.n_features)

    def check_compiled(self, X: np.ndarray, trees: Any = None) -> None:
        """Raise ``CompileUnavailable`` unless the compiled trees (``trees``, else the ones
        in use) give XGBoost's answer bit for bit on every row of ``X`` and on a row with
        every value missing."""
        from spinerisk.fastpath._compiled import CompileUnavailable

        trees = self.trees if trees is None else trees
        if trees is None:
            return
        rows = np.vstack([X, np.full((1, X.shape[1]), np.nan)])
        public = np.asarray(
            self.booster.inplace_predict(rows, **self.kwargs), dtype=np.float64
        ).reshape(-1)
        batch = trees.rows(rows)  # the rows in one call, as batches are answered
        for i, row in enumerate(rows):
            for got in (trees(row), None if batch is None else batch[i]):
                if got is not None and not (
                    got == public[i] or (got != got and public[i] != public[i])
                ):
                    raise CompileUnavailable(
                        f"the compiled trees answered {got!r} where XGBoost answers "
                        f"{public[i]!r} on a probe row"
                    )

    def __call__(self, X: np.ndarray) -> np.ndarray:
        trees = self.trees
        if trees is not None:
            if X.shape[0] == 1:
                value = trees(X[0])
                if value is not None:
                    return np.array([value])
            else:
                values = trees.rows(X)
                if values is not None:
                    return values
        if self.c_api and X.shape[0] == 1:
            fn, row, handle, face, args, proxy, shape, dims, ref, preds, _ = self._state()
            row[0] = X[0]
            if fn(handle, face, args, proxy, shape, dims, ref) == 0:
                return np.array([preds[0]], dtype=np.float64)
            self.c_api = False  # pragma: no cover - use the public path from now on
        pred = self.booster.inplace_predict(np.ascontiguousarray(X), **self.kwargs)
        return np.asarray(pred, dtype=np.float64).reshape(-1)

    def check_c_api(self, X: np.ndarray) -> None:
        """Turn the C entry point off unless it matches ``inplace_predict`` bit for bit."""
        trees, self.trees = self.trees, None  # the C entry point itself
        try:
            for i in range(X.shape[0] if self.c_api else 0):
                fast = self(X[i : i + 1])
                public = np.asarray(
                    self.booster.inplace_predict(X[i : i + 1], **self.kwargs), dtype=np.float64
                ).reshape(-1)
                if not np.array_equal(fast, public, equal_nan=True):  # pragma: no cover
                    self.c_api = False
        finally:
            self.trees = trees


class LightGBMHead:
    """``lightgbm.Booster.predict`` on numpy rows with the wrapper's predict parameters.

    One-row calls use LightGBM's single-row C entry point with a per-thread
    ``FastConfig`` (same predictor and parameters as ``Booster.predict``, without its
    per-call set-up); several rows use ``Booster.predict``.
    """

    def __init__(self, clf: Any, *, raw_score: bool, c_api: bool = True) -> None:
        from lightgbm.basic import _ConfigAliases
        from lightgbm.sklearn import _choose_param_value

        params = clf._process_params(stage="predict")
        for alias in _ConfigAliases.get_by_alias(
            "data",
            "X",
            "raw_score",
            "start_iteration",
            "num_iteration",
            "pred_leaf",
            "pred_contrib",
        ):
            params.pop(alias, None)
        params = _choose_param_value("num_threads", params, clf.n_jobs)
        params["num_threads"] = clf._process_n_jobs(params["num_threads"])
        self.booster = clf.booster_
        self.params = params
        self.raw_score = raw_score
        self.n_features = int(self.booster.num_feature())
        self.c_api = bool(c_api)
        self._local = threading.local()

    def _state(self) -> Any:
        state = getattr(self._local, "state", None)
        if state is None:
            from copy import deepcopy

            from lightgbm import basic

            num_iteration = self.booster.best_iteration  # Booster.predict(num_iteration=None)
            handle = ctypes.c_void_p()
            basic._safe_call(
                basic._LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    self.booster._handle,
                    ctypes.c_int(
                        basic._C_API_PREDICT_RAW_SCORE
                        if self.raw_score
                        else basic._C_API_PREDICT_NORMAL
                    ),
                    ctypes.c_int(0),
                    ctypes.c_int(num_iteration),
                    ctypes.c_int(basic._C_API_DTYPE_FLOAT64),
                    ctypes.c_int32(self.n_features),
                    basic._c_str(basic._param_dict_to_str(deepcopy(self.params))),
                    ctypes.byref(handle),
                )
            )
            row = np.zeros(self.n_features)
            out = np.zeros(1)
            state = (
                basic._LIB.LGBM_BoosterPredictForMatSingleRowFast,
                handle,
                row,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(ctypes.c_int64()),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                out,
                _FastConfig(basic._LIB, handle),
            )
            self._local.state = state
        return state

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self.c_api and X.shape[0] == 1:
            fn, handle, row, row_ptr, out_len, out_ptr, out, _ = self._state()
            row[:] = X[0]
            if fn(handle, row_ptr, out_len, out_ptr) == 0:
                return out.copy()
            self.c_api = False  # pragma: no cover - use the public path from now on
        out = self.booster.predict(
            X,
            raw_score=self.raw_score,
            start_iteration=0,
            num_iteration=None,
            pred_leaf=False,
            pred_contrib=False,
            validate_features=False,
            **self.params,
        )
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def check_c_api(self, X: np.ndarray) -> None:
        """Turn the C entry point off unless it matches ``Booster.predict`` bit for bit."""
        for i in range(X.shape[0] if self.c_api else 0):
            fast = self(X[i : i + 1])
            self.c_api = False
            public = self(X[i : i + 1])
            self.c_api = bool(np.array_equal(fast, public, equal_nan=True))


class _FastConfig:
    """Frees a LightGBM FastConfig handle with its thread's state."""

    def __init__(self, lib: Any, handle: Any) -> None:
        self.lib, self.handle = lib, handle

    def __del__(self) -> None:
        self.lib.LGBM_FastConfigFree(self.handle)


class StackHead:
    """The stacked default's combined score, ``intercept_ + sum_k weights_[k] * score_k(x)``
    in the order of ``_StackMixin._stack_score``: ridge components through the stack's own
    ``component_score``, boosters as :class:`XGBoostHead` margins (compiled or not) times
    their sign. ``proba=True`` gives ``expit(score)`` (``StackedClassifier.predict_proba``).
    """

    def __init__(self, stack: Any, *, proba: bool = False, c_api: bool = True) -> None:
        from spinerisk.models._stack import component_score

        self.intercept = float(stack.intercept_)
        self.proba = proba
        self.boosters: list[XGBoostHead] = []
        self.parts: list[tuple[float, Any]] = []
        for comp in stack.components_:
            weight = stack.weights_[comp["name"]]
            if weight <= 0:
                continue
            if comp["family"] == "ridge":
                self.parts.append((weight, lambda X, comp=comp: component_score(comp, X)))
                continue
            head = XGBoostHead(comp["booster"], margin=True, c_api=c_api)
            self.boosters.append(head)
            self.parts.append((weight, lambda X, h=head, sign=comp["sign"]: sign * h(X)))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        score = np.full(X.shape[0], self.intercept)
        for weight, part in self.parts:
            score = score + weight * part(X)
        return expit(score) if self.proba else score

    def check_c_api(self, X: np.ndarray) -> None:
        for head in self.boosters:
            head.check_c_api(X)

    def check_compiled(self, X: np.ndarray, trees: Any = None) -> None:
        for head in self.boosters:
            head.check_compiled(X, None if trees is None else trees.get(id(head)))


def _xgb_iteration_range(clf: Any) -> tuple[int, int]:
    try:
        return tuple(clf._get_iteration_range(None))  # type: ignore[return-value]
    except AttributeError:  # pragma: no cover
        return (0, 0)


def classifier_response(est: Any, *, decision: bool, c_api: bool = True) -> Any:
    """Response of a fitted binary classifier on its model matrix.

    ``decision=False``: probability of the positive class (``predict_proba[:, 1]``);
    ``decision=True``: the raw score (``decision_function``).
    """
    name = type(est).__name__
    if name == "EarlyStoppingClassifier":
        inner = est.estimator_
        inner_name = type(inner).__name__
        if inner_name == "XGBClassifier":
            if inner.get_params().get("objective") not in (None, "binary:logistic"):
                raise _unsupported(f"an XGBClassifier with objective {inner.objective!r}")
            return XGBoostHead(
                inner.get_booster(),
                margin=decision,
                iteration_range=_xgb_iteration_range(inner),
                missing=inner.missing,
                c_api=c_api,
            )
        if inner_name == "LGBMClassifier":
            if callable(inner.objective) or inner.n_classes_ != 2:
                raise _unsupported("an LGBMClassifier with a custom objective or > 2 classes")
            return LightGBMHead(inner, raw_score=decision, c_api=c_api)
        raise _unsupported(f"an EarlyStoppingClassifier around {inner_name}")
    if name == "StackedClassifier":
        return StackHead(est, proba=not decision, c_api=c_api)
    if name in ("LogisticRegression", "LogisticRegressionCV"):
        if len(est.classes_) != 2:
            raise _unsupported("a logistic regression with more than 2 classes")
        linear = LinearHead(est.coef_, est.intercept_)
        if decision:
            return linear
        return lambda X: expit(linear(X))
    raise _unsupported(f"a binary model of type {name}")


# -- binary endpoint ---------------------------------------------------------------------------
class BinaryFold:
    """One fitted pipeline (features + classifier), optionally with a sigmoid calibrator."""

    def __init__(self, program: Any, response: Any, calibrator: Any = None) -> None:
        self.program = program
        self.response = response
        self.calibrator = calibrator

    def proba(self, rows: np.ndarray) -> np.ndarray:
        return self.calibrate(self.response(self.program.encode(rows)))

    def calibrate(self, T: np.ndarray) -> np.ndarray:
        """The fold's probability from its classifier's response ``T``."""
        if self.calibrator is None:
            return T
        a, b = self.calibrator
        # scikit-learn also sets 1 < p <= 1 + 1e-5 to 1, which an expit never gives
        return expit(-(a * T + b))


class BinaryEnsemble:
    """The folds of a binary model on one record, with the per-call work shared.

    Folds whose feature programs read the same ClinicalFeatures rows compute them once,
    folds whose encodings are the same pure column gather (``FeatureProgram.encode_key``,
    equal fitted plans) encode once, compiled boosters reading the same matrix row share
    one input buffer (:func:`~spinerisk.fastpath._compiled.compiled_outputs`), and the
    sigmoid calibrations run as one vector operation. Every number is computed by the
    same operations in the same order as :meth:`BinaryFold.proba` and the fold average
    of ``FastPredictor``: the answers are identical (tested).
    """

    def __init__(self, folds: list[BinaryFold], average: bool) -> None:
        self.folds = folds
        self.average = average
        self.n = len(folds)
        groups: dict[Any, tuple[Any, dict[Any, list[int]]]] = {}
        for i, fold in enumerate(folds):
            program = fold.program
            rows_key = program.key
            enc_key = program.encode_key if program.encode_key is not None else ("fold", i)
            _, encoders = groups.setdefault(rows_key, (program, {}))
            encoders.setdefault(enc_key, []).append(i)
        self.plan = [
            (program, [(folds[idx[0]].program, idx) for idx in encoders.values()])
            for program, encoders in groups.values()
        ]
        calibrators = [f.calibrator for f in folds]
        self.calibrated = all(c is not None for c in calibrators)
        if self.calibrated:
            self.a = np.array([c[0] for c in calibrators], dtype=np.float64)  # type: ignore[index]
            self.b = np.array([c[1] for c in calibrators], dtype=np.float64)  # type: ignore[index]
        # uncalibrated folds pass T through; a mix of both takes the general path
        self.usable = self.calibrated or all(c is None for c in calibrators)

    def _responses(self, typed: list[dict[str, Any]], compiled: Any) -> list[Any]:
        """Each fold's response to the typed records, in fold order: the clinical rows and
        the encoding computed once per shared program; the boosters of a program that are
        all compiled to the same layout answer through ``compiled(trees, X)`` (None: a
        value the compiled code would read as missing), the others through their own
        response (an array over the records)."""
        folds = self.folds
        T: list[Any] = [None] * self.n
        for rows_program, encoders in self.plan:
            rows = rows_program.clinical_rows(typed)
            for program, members in encoders:
                X = program.encode(rows)
                trees = [getattr(folds[i].response, "trees", None) for i in members]
                values = None
                if None not in trees and len({getattr(t, "layout", None) for t in trees}) == 1:
                    values = compiled(trees, X)
                for k, i in enumerate(members):
                    T[i] = folds[i].response(X) if values is None else values[k]
        return T

    def one(self, typed: list[dict[str, Any]]) -> float:
        """Risk of one typed record (``typed`` holds exactly one)."""
        T = self._responses(typed, lambda trees, X: compiled_outputs(trees, X[0]))
        T = [t[0] if isinstance(t, np.ndarray) else t for t in T]
        if self.calibrated:
            P = expit(-(self.a * np.array(T, dtype=np.float64) + self.b)).tolist()
        else:
            P = [float(v) for v in T]
        acc = 0.0
        for p in P:
            acc += p
        return acc / self.n if self.average else acc

    def many(self, typed: list[dict[str, Any]]) -> np.ndarray:
        """Risks of several typed records, shape (n_records,): the clinical rows and the
        encoding computed once per shared program, compiled boosters reading the same
        matrix in one tl2cgen matrix (:func:`~spinerisk.fastpath._compiled.compiled_rows`),
        then each fold's calibration added in fold order and averaged, as
        :meth:`BinaryFold.proba` and the fold average of ``FastPredictor`` do (the same
        answers)."""
        folds = self.folds
        T = self._responses(typed, compiled_rows)
        acc = np.zeros(len(typed))
        for fold, response in zip(folds, T, strict=True):
            acc += fold.calibrate(response)
        if self.average:
            acc /= self.n
        return acc


def binary_head(estimator: Any, make_program: Any, c_api: bool) -> list[BinaryFold]:
    """Folds of a binary estimator: a Pipeline, or a CalibratedClassifierCV of Pipelines."""
    from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
    from sklearn.pipeline import Pipeline

    if type(estimator) is Pipeline:
        program = make_program(estimator.named_steps["features"])
        response = classifier_response(estimator[-1], decision=False, c_api=c_api)
        return [BinaryFold(program, response)]
    if type(estimator) is not CalibratedClassifierCV:
        raise _unsupported(f"a binary estimator of type {type(estimator).__name__}")
    folds = []
    for cc in estimator.calibrated_classifiers_:
        pipe = cc.estimator
        if type(pipe) is not Pipeline or len(cc.calibrators) != 1 or len(cc.classes) != 2:
            raise _unsupported("a calibrated classifier that is not a binary Pipeline")
        calibrator = cc.calibrators[0]
        if cc.method != "sigmoid" or type(calibrator) is not _SigmoidCalibration:
            raise _unsupported(f"calibration method {cc.method!r}")
        # CalibratedClassifierCV reads decision_function when the estimator has one
        decision = hasattr(pipe, "decision_function")
        response = classifier_response(pipe[-1], decision=decision, c_api=c_api)
        program = make_program(pipe.named_steps["features"])
        folds.append(BinaryFold(program, response, (calibrator.a_, calibrator.b_)))
    return folds


# -- time-to-event endpoints ------------------------------------------------------------------
class _CoxStandIn:
    """What ``CoxType._cumulative_hazard`` reads, with a compiled linear predictor."""

    def __init__(self, est: Any, lp: Any) -> None:
        self.unique_times_ = est.unique_times_
        self.baseline_cumulative_hazard_ = est.baseline_cumulative_hazard_
        self._lp = lp

    def _cumulative_hazard(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        from spinerisk.models._survival_base import CoxType

        return CoxType._cumulative_hazard(self, X, times)  # type: ignore[arg-type]

    def predict_cumulative_hazard(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        return self._cumulative_hazard(X, np.atleast_1d(np.asarray(times, dtype=float)))


class _AFTStandIn(_CoxStandIn):
    """What ``BoostedAFTSurvival._cumulative_hazard`` reads, with a compiled margin."""

    def __init__(self, est: Any, margin: Any) -> None:
        self.unique_times_ = est.unique_times_
        self.scale_ = est.scale_
        self.distribution = est.distribution
        self._margin = margin

    def _cumulative_hazard(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        from spinerisk.models._survival import BoostedAFTSurvival

        return BoostedAFTSurvival._cumulative_hazard(self, X, times)  # type: ignore[arg-type]


class _CIFStandIn:
    """What ``CauseSpecificCIF._paths`` reads."""

    def __init__(self, est: Any, stand_ins: list[Any]) -> None:
        self.unique_times_ = est.unique_times_
        self.estimators_ = stand_ins

    @staticmethod
    def validate_input(X: np.ndarray, *, reset: bool) -> np.ndarray:
        return X


def _hazard_model(est: Any, c_api: bool) -> Any:
    name = type(est).__name__
    if name == "CoxPHSurvival":
        coef, mean = est.coef_, est.lp_mean_
        return _CoxStandIn(est, lambda X: X @ coef - mean)
    if name == "BoostedCoxSurvival":
        head = XGBoostHead(est.booster_, margin=True, c_api=c_api)
        mean = est.lp_mean_
        stand_in = _CoxStandIn(est, lambda X: head(X) - mean)
        stand_in.head = head  # type: ignore[attr-defined]
        return stand_in
    if name == "StackedCoxSurvival":
        stack = StackHead(est, c_api=c_api)
        mean = est.lp_mean_
        stand_in = _CoxStandIn(est, lambda X: stack(X) - mean)
        stand_in.head = stack  # type: ignore[attr-defined]
        return stand_in
    if name == "BoostedAFTSurvival":
        head = XGBoostHead(est.booster_, margin=True, c_api=c_api)
        stand_in = _AFTStandIn(est, head)
        stand_in.head = head  # type: ignore[attr-defined]
        return stand_in
    raise _unsupported(f"a survival model of type {name}")


class SurvivalHead:
    """Risk at horizons from a survival model or a :class:`CauseSpecificCIF`."""

    def __init__(self, est: Any, c_api: bool) -> None:
        self.estimator = est
        if type(est).__name__ == "CauseSpecificCIF":
            parts = [_hazard_model(e, c_api) for e in est.estimators_]
            self._cif: Any = _CIFStandIn(est, parts)
            self._cause = est._cause_index(None)
            self.parts = parts
        else:
            self._cif = None
            self.parts = [_hazard_model(est, c_api)]
        self._times: dict[tuple[float, ...], np.ndarray] = {}

    def times(self, horizons: tuple[float, ...]) -> np.ndarray:
        """Horizons checked as the estimator checks them (same errors)."""
        times = self._times.get(horizons)
        if times is None:
            times = self.estimator._times(list(horizons), name="horizons")
            self._times[horizons] = times
        return times

    def __call__(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        if self._cif is None:
            return 1.0 - np.exp(-self.parts[0]._cumulative_hazard(X, times))
        from spinerisk.models._competing import CauseSpecificCIF

        return CauseSpecificCIF._paths(self._cif, X, times)[1][self._cause]  # type: ignore[arg-type]

    def heads(self) -> list[Any]:
        """XGBoost heads (and stacked heads) inside (for the C entry point check)."""
        return [p.head for p in self.parts if hasattr(p, "head")]


def survival_head(est: Any, c_api: bool) -> SurvivalHead:
    """Compile a fitted survival or competing-risks estimator."""
    try:
        return SurvivalHead(est, c_api)
    except AttributeError as exc:  # a stand-in lacks what this estimator version reads
        raise UnsupportedModelError(f"FastPredictor cannot compile {est!r}: {exc}") from exc
