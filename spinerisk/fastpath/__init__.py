"""Fast prediction for one record (or a few) from a fitted :class:`~spinerisk.RiskModel`.

``RiskModel.predict_risk`` builds DataFrames, runs pandera and scikit-learn's checks on
every call: right for cohorts, tens of milliseconds for a single record.
:class:`FastPredictor` compiles, once, everything that path does into numpy and plain
Python: record validation (the schema's conversions, ranges, codes, required fields,
unknown fields and cross-field rules), the feature pipeline (derived clinical features,
imputation, missing indicators, scaling, one-hot codes, splines) and the model (logistic
regression, the calibrated booster ensemble, Cox and boosted survival models, competing
risks, the stacked default as the weighted sum of its candidates). XGBoost boosters are
compiled to C for one-record calls where treelite, tl2cgen and a C compiler are at hand
(:mod:`spinerisk.fastpath._compiled`), with XGBoost's answers bit for bit. The outputs
are those of the batch path (tested to ``rtol=1e-9``, most of them bit for bit).

The fast path never decides differently from the batch path: a record it does not
accept outright (any validation problem, or a value whose handling it is not sure of,
such as a date that is not ``YYYY-MM-DD``) is handed to the batch path, which raises the
usual :class:`~spinerisk.SchemaValidationError` or predicts. Such hand-overs are
counted in ``n_fallbacks_``.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.endpoints import check_horizons
from spinerisk.exceptions import DataQualityWarning
from spinerisk.fastpath._compiled import CompileUnavailable, NotWorthIt, _Quiet
from spinerisk.fastpath._features import FeatureProgram, UnsupportedModelError
from spinerisk.fastpath._records import RecordChecker
from spinerisk.fastpath._scorers import (
    BinaryEnsemble,
    BinaryFold,
    StackHead,
    XGBoostHead,
    binary_head,
    survival_head,
)
from spinerisk.reference import (
    RARELY_MISSING_BELOW,
    RecordWarnings,
    record_warnings,
    warn_unusual,
)
from spinerisk.reference import input_reference as _input_reference
from spinerisk.schema._validate import placeholder_id, row_ids

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["FastPredictor", "UnsupportedModelError", "record_warnings"]


#: Output columns holding text (compared exactly by the self-check).
_TEXT_COLUMNS = frozenset({"warnings", "status", "status_reason"})
#: Reasons for not compiling already given in a warning (each is given once per process).
_WARNED: set[str] = set()


class FastPredictor:
    """A fitted :class:`~spinerisk.RiskModel` compiled for low-latency prediction.

    Parameters
    ----------
    model : RiskModel
        Fitted model, for example from :func:`spinerisk.load`.
    check : bool, default=True
        After compiling, predict a few probe records built from the model's training
        ranges with both paths and raise if they disagree (``rtol=1e-9``).
    c_api : bool, default=True
        Call XGBoost's C prediction entry point directly for one-row predictions (the
        Python wrapper of ``inplace_predict`` costs about 0.1 ms per booster and call).
        It is checked against ``inplace_predict``; False uses ``inplace_predict`` only.
    compile : bool or "background", default=True
        Compile the XGBoost boosters' trees to C (treelite and tl2cgen, the
        ``spinerisk[compiled]`` extra, and a C compiler) for one-record predictions:
        about 4 us per booster instead of about 35 us, with XGBoost's answer bit for bit
        (checked on probe rows). The libraries go to a directory private to the process;
        nothing is written into the model or its bundle. Where compilation is unavailable
        or fails, one-record calls use XGBoost's own call and a warning says why (once
        per reason and process). ``"background"`` compiles in a thread: the predictor is
        ready at once, on XGBoost's own call, and the compiled trees take over when they
        are built and checked (:meth:`wait_compiled`); the answers are the same.

    Attributes
    ----------
    model_ : RiskModel
        The model.
    id_field_ : str
        Record-identifier field.
    horizons_ : tuple of float
        Default horizons (days).
    feature_programs_ : list of FeatureProgram
        Compiled feature pipelines (one per calibration fold for boosted binary models).
    n_fallbacks_ : int
        Calls handed to the batch path (invalid or unusual records).
    compiled_ : bool
        Whether one-record calls run compiled trees (every XGBoost booster compiled, but
        those too large to be worth it, see ``compile_note_``).
    compile_note_ : str
        What was compiled and how long it took, or why nothing was.

    Raises
    ------
    UnsupportedModelError
        If a part of the model cannot be compiled (a custom feature step, isotonic
        calibration, a schema field with ``coerce=False``, ...), or the probe check
        fails. Use ``RiskModel.predict_risk`` for such models.

    See Also
    --------
    spinerisk.RiskModel.predict_risk : The batch path.

    Notes
    -----
    Cross-field rules and derived features declared as expressions run as scalar twins
    per record, and on batches of 16 records or more column by column over the batch
    (``Expression.evaluate_columns``, the same values bit for bit); rules of a custom
    schema written as Python code run on a small DataFrame when all their fields are
    present (about 0.1-0.3 ms per rule and call). A risk is an estimate from a model; the
    synthetic cohort used in the examples carries no clinical validity.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.fastpath import FastPredictor
    >>> cohort = sr.make_spine_cohort(400, seed=0)  # synthetic records
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(cohort)
    >>> fast = FastPredictor.from_model(model)
    >>> row = cohort[cohort["treatment"] == "conservative"].head(1)  # a training record
    >>> record = {k: v for k, v in row.iloc[0].to_dict().items() if k != "index_date"}
    >>> out = fast.predict_risk(record)
    >>> sorted(out), out["warnings"]
    (['patient_id', 'risk_183d', 'warnings'], '')
    >>> batch = model.predict_risk(row)
    >>> bool(abs(out["risk_183d"] - batch["risk_183d"].iloc[0]) < 1e-12)
    True
    >>> fast.predict_risk({**record, "age_years": 300})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.SchemaValidationError: 1 problem in 1 of 1 records.
      record SYN-... (row 0): age_years=300.0 is out of range; expected 18 <= age_years <= 105 years, not missing.
    No records were returned. Correct the source, or pass on_invalid="split" to get the valid records and the rejected ones with their reasons.
    """  # noqa: E501

    def __init__(
        self,
        model: RiskModel,
        *,
        check: bool = True,
        c_api: bool = True,
        compile: bool | str = True,
    ) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model, "estimator_")
        self._gate: FastPredictor | None = None
        self._red_flags: Any = None
        if getattr(model, "gate_", None) is not None:  # the malignancy gate, compiled too
            from spinerisk.models._gate import red_flag_checker

            self._gate = FastPredictor(model.gate_, check=False, c_api=c_api, compile=compile)
            self._red_flags = red_flag_checker(model)
        schema = model.input_schema_
        self.model_ = model
        self.schema_ = schema
        self.id_field_ = model.id_field_
        self._id_spec = schema[model.id_field_]
        self.horizons_ = tuple(model.horizons_)
        self._last_event = model.last_event_days  # the batch path's horizon limit
        self.n_fallbacks_ = 0
        self._columns: dict[tuple[float, ...], list[str]] = {}
        self._kind = model.endpoint_.kind
        self._checker = RecordChecker(schema)

        def program(pipeline: Any) -> FeatureProgram:
            return FeatureProgram(pipeline, schema)

        if self._kind == "binary":
            self._folds: list[BinaryFold] = binary_head(model.estimator_, program, c_api)
            self._average = type(model.estimator_).__name__ == "CalibratedClassifierCV"
            self.feature_programs_ = [f.program for f in self._folds]
            self._ensemble = BinaryEnsemble(self._folds, self._average)
            usable = self._ensemble.usable
            self._one: BinaryEnsemble | None = self._ensemble if usable else None
        else:
            self._program = program(model.features_)
            self._head = survival_head(model.estimator_, c_api)
            self.feature_programs_ = [self._program]
        self._needed = frozenset().union(*(p.fields for p in self.feature_programs_))
        self._reference = _input_reference(model)
        self._warnings = RecordWarnings(self._reference, RARELY_MISSING_BELOW)
        self._compile(compile)
        if check:
            self._self_check()

    @classmethod
    def from_model(
        cls, model: RiskModel, *, check: bool = True, c_api: bool = True, compile: bool | str = True
    ) -> FastPredictor:
        """Compile a fitted RiskModel.

        Parameters
        ----------
        model : RiskModel
            Fitted model (for example from :func:`spinerisk.load`).
        check : bool, default=True
            Compare both paths on probe records after compiling.
        c_api : bool, default=True
            Use XGBoost's C prediction entry point for one-row predictions.
        compile : bool or "background", default=True
            Compile the XGBoost boosters' trees to C for one-record predictions (in a
            thread with ``"background"``).

        Returns
        -------
        FastPredictor
        """
        return cls(model, check=check, c_api=c_api, compile=compile)

    # -- compiled trees ---------------------------------------------------------------------------
    def _xgboost_heads(self) -> list[XGBoostHead]:
        heads = [f.response for f in self._folds] if self._kind == "binary" else self._head.heads()
        out: list[XGBoostHead] = []
        for head in heads:
            if isinstance(head, XGBoostHead):
                out.append(head)
            elif isinstance(head, StackHead):
                out.extend(head.boosters)
        return out

    def _compile(self, compile: bool | str) -> None:
        """Compile every XGBoost booster (in parallel), or none; with
        ``compile="background"`` in a thread, the trees taking over once checked."""
        self.compiled_ = False
        self._compiling: threading.Thread | None = None
        heads = self._xgboost_heads()
        if not heads:
            self.compile_note_ = (
                "nothing to compile: no XGBoost boosters (linear models run as numpy code; "
                "LightGBM's own single-row call is faster than its compiled trees)"
            )
            return
        if not compile:
            self.compile_note_ = (
                "not compiled (compile=False): one-record calls use XGBoost's own prediction call"
            )
            return
        if compile == "background":
            self.compile_note_ = (
                f"compiling {len(heads)} XGBoost booster(s) in the background; one-record "
                "calls use XGBoost's own call until the compiled trees are checked"
            )
            # not a daemon: a script that ends while it compiles waits for it, so that
            # tl2cgen's temporary directory is not removed at exit while the compiler
            # still writes to it (a traceback at exit, now and then)
            self._compiling = threading.Thread(
                target=self._compile_in_background, args=(heads,), daemon=False
            )
            self._compiling.start()
            return
        start = time.perf_counter()

        def build(head: XGBoostHead) -> CompileUnavailable | None:
            try:
                head.compile()
            except CompileUnavailable as exc:
                return exc
            return None

        with _Quiet(), ThreadPoolExecutor(min(len(heads), os.cpu_count() or 1)) as pool:
            failures = list(pool.map(build, heads))
        self._compiled_note(heads, failures, start)

    def _compiled_note(self, heads: list[XGBoostHead], failures: list[Any], start: float) -> None:
        skipped = [str(e) for e in failures if isinstance(e, NotWorthIt)]
        failed = [e for e in failures if e is not None and not isinstance(e, NotWorthIt)]
        if failed:
            self._uncompile(str(failed[0]))
            return
        done = len(heads) - len(skipped)
        self.compiled_ = done > 0
        self.compile_note_ = (
            f"{done} XGBoost booster(s) compiled to C with tl2cgen in "
            f"{time.perf_counter() - start:.1f} s"
        )
        if skipped:
            self.compile_note_ += (
                f"; {len(skipped)} left to XGBoost's own call, not worth compiling: "
                + "; ".join(skipped)
            )

    def _compile_in_background(self, heads: list[XGBoostHead]) -> None:
        """Build every booster's library, check them all on the probe records, then let
        them answer one-record calls (until then XGBoost's own call does: same answers)."""
        start = time.perf_counter()
        pending: dict[int, Any] = {}
        failures: list[Any] = []
        with _Quiet():
            for head in heads:
                try:
                    pending[id(head)] = head.build_compiled()
                    failures.append(None)
                except CompileUnavailable as exc:
                    failures.append(exc)
            if not any(f is not None and not isinstance(f, NotWorthIt) for f in failures):
                try:
                    for probe in self._probes():
                        self._compiled_check(probe, pending)
                except CompileUnavailable as exc:
                    failures.append(exc)
        if not any(f is not None and not isinstance(f, NotWorthIt) for f in failures):
            for head in heads:
                head.trees = pending.get(id(head))
        self._compiled_note(heads, failures, start)

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for a background compilation (``compile="background"``) to end; returns
        ``compiled_``."""
        if self._compiling is not None:
            self._compiling.join(timeout)
        if self._gate is not None:  # a bound malignancy gate compiles its own trees
            self._gate.wait_compiled(timeout)
        return self.compiled_

    def _uncompile(self, reason: str) -> None:
        """Back to XGBoost's own call for every booster, and say why (once per reason)."""
        for head in self._xgboost_heads():
            head.trees = None
        self.compiled_ = False
        self.compile_note_ = (
            f"not compiled: {reason}; one-record calls use XGBoost's own prediction call"
        )
        if reason not in _WARNED:
            _WARNED.add(reason)
            warnings.warn(
                f"FastPredictor could not compile the model's trees ({reason}); one-record "
                "predictions use XGBoost's own call (about 35 us per booster instead of 4). "
                "The risks are the same.",
                RuntimeWarning,
                stacklevel=4,
            )

    # -- prediction ---------------------------------------------------------------------------
    def predict_risk(
        self,
        records: Any,
        horizons: Any = None,
        *,
        as_frame: bool = False,
        warning_lists: bool = False,
    ) -> Any:
        """Risk per record at each horizon, with warnings, as ``RiskModel.predict_risk``.

        Parameters
        ----------
        records : dict, list of dict or DataFrame
            One record (field name to value, JSON-like values), several, or a frame.
        horizons : sequence of float or None, default=None
            Days; None means the model's horizons. Binary endpoints predict at their
            single fixed horizon only.
        as_frame : bool, default=False
            Return the DataFrame ``RiskModel.predict_risk`` returns whatever the input.
        warning_lists : bool, default=False
            Give each record's warnings as a tuple of entries (the structured value the
            input checks produce, as the HTTP API sends it) instead of one
            ``"; "``-joined text.

        Returns
        -------
        dict, list of dict or DataFrame
            For a dict: ``{<id field>: id, "risk_<days>d": float, ..., "warnings": str}``;
            for a list: a list of such dicts; for a DataFrame (or with ``as_frame=True``):
            the DataFrame ``RiskModel.predict_risk`` returns.

        Raises
        ------
        SchemaValidationError
            For invalid records, exactly as the batch path (same ``.failures``).
        ValueError
            For horizons the model cannot predict at.
        """
        if type(records) is dict and not as_frame:
            return self._predict_one(records, horizons, warning_lists)
        if isinstance(records, pd.DataFrame):
            kind = "frame"
            ok = len(records) > 0 and not records.columns.duplicated().any()
            rows: Sequence[Mapping[str, Any]] = records.to_dict("records") if ok else []
        elif isinstance(records, Mapping):
            kind, rows = "dict", [records]
        elif isinstance(records, list | tuple) and all(isinstance(r, Mapping) for r in records):
            kind, rows = "list", list(records)
        else:
            kind, rows = "other", []
        if as_frame and kind != "other":
            kind = "frame"
        if not rows:
            return self._fallback(records, kind, horizons, warning_lists)
        present = frozenset(rows[0]) if len(rows) == 1 else frozenset().union(*rows)
        typed = self._checker.check(rows, present) if self._needed <= present else None
        if typed is None:
            return self._fallback(records, kind, horizons, warning_lists)
        horizons = self._check_horizons(horizons)
        values = self._values(typed, horizons)
        columns = self._risk_columns(horizons)
        gate = self._gate_columns(typed, values)  # status, p_malignant, status_reason
        ids = self._ids(typed)
        entries = self._warnings.many(typed)
        flagged = sum(1 for n in entries if n)
        if flagged:
            warn_unusual(flagged, len(entries), stacklevel=3)
        notes: list[Any] = entries if warning_lists else ["; ".join(n) for n in entries]
        if kind == "frame":
            out = pd.DataFrame(
                values, columns=columns, index=pd.Index(ids, dtype=object, name=self.id_field_)
            )
            for name, col in gate.items():
                out[name] = col
            column = np.empty(len(notes), dtype=object)  # 1-d, even for tuples of one length
            for i, note in enumerate(notes):
                column[i] = note
            out["warnings"] = column
            return out
        dicts = self._dicts(ids, columns, values, gate, notes)
        return dicts[0] if kind == "dict" else dicts

    def _dicts(
        self,
        ids: list[Any],
        columns: list[str],
        values: np.ndarray,
        gate: dict[str, Any],
        notes: list[Any],
    ) -> list[dict[str, Any]]:
        """One dict per record: id, risks (Python floats), gate columns, warnings."""
        id_field, gated = self.id_field_, list(gate.items())
        dicts = []
        for i, (rid, row, w) in enumerate(zip(ids, values.tolist(), notes, strict=True)):
            out = {id_field: rid}
            out.update(zip(columns, row, strict=True))
            for name, col in gated:
                out[name] = col[i]
            out["warnings"] = w
            dicts.append(out)
        return dicts

    def _ids(self, typed: list[dict[str, Any]]) -> list[Any]:
        """The records' identifiers as the batch path gives them: an integer id as an
        integer (the record check types numbers as floats), and a generated id that no
        record carries as ``row-1``, ``row-2``, ... (:func:`validate`'s)."""
        name, spec = self.id_field_, self._id_spec
        ids = [t.get(name) for t in typed]
        if spec.generated and all(v is None for v in ids):
            return list(row_ids(np.arange(len(typed))))
        return [None if v is None else int(v) for v in ids] if spec.dtype == "int" else ids

    def _predict_one(
        self, record: dict[str, Any], horizons: Any, warning_lists: bool = False
    ) -> dict[str, Any]:
        """``predict_risk`` of one dict: the steps of the general case for one record."""
        present = frozenset(record)
        typed = self._checker.check((record,), present) if self._needed <= present else None
        if typed is None:
            return self._fallback(record, "dict", horizons, warning_lists)  # type: ignore[no-any-return]
        horizons = self.horizons_ if horizons is None else self._check_horizons(horizons)
        values = self._values(typed, horizons)
        columns = self._risk_columns(horizons)
        gate = self._gate_columns(typed, values)  # status, p_malignant, status_reason
        t = typed[0]
        entries = self._warnings(t)
        if entries:
            warn_unusual(1, 1, stacklevel=4)
        out = {self.id_field_: self._ids(typed)[0]}
        out.update(zip(columns, values[0].tolist(), strict=True))
        for name, col in gate.items():
            out[name] = col[0]
        out["warnings"] = entries if warning_lists else "; ".join(entries)
        return out

    def _risk_columns(self, horizons: tuple[float, ...]) -> list[str]:
        """Names of the risk columns at ``horizons`` (cached per horizons)."""
        columns = self._columns.get(horizons)
        if columns is None:
            columns = [self.model_.endpoint_.risk_column(h) for h in horizons]
            self._columns[horizons] = columns
        return columns

    def _gate_columns(self, typed: list[dict[str, Any]], values: np.ndarray) -> dict[str, Any]:
        """The malignancy gate on the compiled path (as ``apply_gate`` on the batch path):
        its columns, and the risks of out-of-scope records set to missing in place."""
        if self._gate is None:
            return {}
        from spinerisk.models._gate import statuses

        gate = self._gate
        p = gate._values(typed, gate.horizons_)[:, 0].astype(float)
        checks = [self._red_flags(t) if self._red_flags else (False, []) for t in typed]
        flagged = np.array([c[0] for c in checks], dtype=bool)
        status, reasons = statuses(self.model_, p, flagged, [c[1] for c in checks])
        values[status == "out_of_scope", :] = np.nan
        return {
            "status": np.asarray(status, dtype=object),
            "p_malignant": [float(x) for x in p],
            "status_reason": np.asarray(reasons, dtype=object),
        }

    def _check_horizons(self, horizons: Any) -> tuple[float, ...]:
        if horizons is None:  # the common case, without building a tuple
            return self.horizons_
        horizons = check_horizons(
            self.model_.endpoint_,
            self.horizons_,
            horizons,
            action="predicted at",
            last_event=self._last_event,
        )
        if self._kind != "binary":
            self._head.times(horizons)
        return horizons

    def _values(self, typed: list[dict[str, Any]], horizons: tuple[float, ...]) -> np.ndarray:
        """Risks, shape (n_records, n_horizons)."""
        if self._kind == "binary":
            if len(typed) == 1 and self._one is not None:
                return np.array([[self._one.one(typed)]])
            return self._ensemble.many(typed)[:, None]
        X = self._program.transform(typed)
        return self._head(X, self._head.times(horizons))

    def _fallback(self, records: Any, kind: str, horizons: Any, warning_lists: bool = False) -> Any:
        """Hand the call to the batch path (which raises for invalid records)."""
        from spinerisk.io import as_frame

        self.n_fallbacks_ += 1
        frame = records if isinstance(records, pd.DataFrame) else as_frame(records)
        out = type(self.model_)._predict(self.model_, frame, horizons, warning_lists=warning_lists)
        if kind in ("frame", "other"):
            return out
        dicts = [
            {
                self.id_field_: rid,
                **{c: (v if c in _TEXT_COLUMNS else float(v)) for c, v in r.items()},
            }
            for rid, r in zip(out.index, out.to_dict("records"), strict=True)
        ]
        return dicts[0] if kind == "dict" else dicts

    # -- compile-time check -----------------------------------------------------------------------
    def _probes(self) -> list[dict[str, Any]]:
        """Records built from the training ranges: required fields only, codes, numbers."""
        schema, ranges = self.schema_, self.model_.training_ranges_
        predictors = self.model_.endpoint_.predictors(schema)
        in_rules = {c for rule in schema.rules for c in rule.columns}

        def value(name: str) -> Any:
            spec = schema[name]
            seen = ranges.get(name)
            if spec.dtype == "bool":
                return True
            if spec.categories is not None:
                options = sorted(seen, key=str) if isinstance(seen, set) and seen else None
                return (options or list(spec.categories))[0]
            if spec.is_numeric:
                lo, hi = seen if isinstance(seen, tuple) else (spec.min or 0.0, spec.max or 0.0)
                mid = (lo + hi) / 2.0
                return float(round(mid)) if spec.dtype == "int" else mid
            return None

        base: dict[str, Any] = dict.fromkeys(predictors)
        probe_id = partial(placeholder_id, self._id_spec.dtype)
        base[self.id_field_] = probe_id(1)
        for name in schema.required:
            if name != self.id_field_:
                base[name] = value(name)
        codes = {**base, self.id_field_: probe_id(2)}
        numbers = {**base, self.id_field_: probe_id(3)}
        for name in predictors:
            spec = schema[name]
            if name == "region":
                continue
            if spec.dtype in ("bool", "category") and codes[name] is None:
                codes[name] = value(name)
            elif spec.is_numeric and name not in in_rules and numbers[name] is None:
                numbers[name] = value(name)
        return [base, codes, numbers]

    def _probe_rows(self, probe: dict[str, Any]) -> list[tuple[np.ndarray, list[Any]]]:
        """A probe's encoded row for each feature program, with the heads that read it
        (none for a probe the record check refuses)."""
        typed = self._checker.check([probe])
        if typed is None:
            return []
        if self._kind == "binary":
            pairs = [(f.program, [f.response]) for f in self._folds]
        else:
            pairs = [(self._program, self._head.heads())]
        return [(program.encode(program.clinical_rows(typed)), heads) for program, heads in pairs]

    def _c_api_check(self, probe: dict[str, Any]) -> None:
        """Compare the boosters' C entry points with their public predict on a probe."""
        for X, heads in self._probe_rows(probe):
            for head in heads:
                if hasattr(head, "check_c_api"):
                    head.check_c_api(X)

    def _compiled_check(self, probe: dict[str, Any], pending: dict[int, Any] | None = None) -> None:
        """Compare the compiled trees (``pending``: by head, not yet in use) with XGBoost on a
        probe (raises CompileUnavailable)."""
        for X, heads in self._probe_rows(probe):
            for head in heads:
                if isinstance(head, StackHead):
                    head.check_compiled(X, pending)
                elif isinstance(head, XGBoostHead):
                    head.check_compiled(X, None if pending is None else pending.get(id(head)))

    def _self_check(self) -> None:
        from spinerisk.schema import validate

        probes = self._probes()
        for probe in probes:
            self._c_api_check(probe)
        if self.compiled_:
            try:
                for probe in probes:
                    self._compiled_check(probe)
            except CompileUnavailable as exc:
                self._uncompile(str(exc))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            valid = validate(pd.DataFrame.from_records(probes), self.schema_, on_invalid="split")
            kept = [probes[i] for i in valid.valid.index]
            if not kept:  # pragma: no cover - the schema rejects every probe
                return
            batch = type(self.model_).predict_risk(self.model_, pd.DataFrame.from_records(kept))
            fast = self.predict_risk(kept)
        for row, (_, expected) in zip(fast, batch.iterrows(), strict=True):
            for col in batch.columns:
                if col in _TEXT_COLUMNS:
                    same = row[col] == expected[col]
                else:
                    same = bool(
                        np.isclose(row[col], expected[col], rtol=1e-9, atol=0.0, equal_nan=True)
                    )
                if not same:
                    raise UnsupportedModelError(
                        f"FastPredictor's compiled path disagrees with the batch path on a "
                        f"probe record ({col}: {row[col]!r} vs {expected[col]!r}); predict "
                        "with RiskModel.predict_risk instead."
                    )
        for probe in kept:  # one-row calls take the C entry points
            with warnings.catch_warnings():  # probes are not the user's records
                warnings.simplefilter("ignore", DataQualityWarning)
                one = self.predict_risk(probe)
            expected = batch.loc[probe[self.id_field_]]
            for col in batch.columns:
                if col not in _TEXT_COLUMNS and not np.isclose(
                    one[col], expected[col], rtol=1e-9, equal_nan=True
                ):
                    raise UnsupportedModelError(
                        f"FastPredictor's one-record path disagrees with the batch path on a "
                        f"probe record ({col}: {one[col]!r} vs {expected[col]!r}); predict "
                        "with RiskModel.predict_risk instead."
                    )
        self.n_fallbacks_ = 0
