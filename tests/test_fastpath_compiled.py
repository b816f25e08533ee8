"""One-record predictions from XGBoost boosters compiled to C (treelite + tl2cgen).

The compiled path must give today's risks (the XGBoost call) within 1e-7 for every
endpoint (and the batch path's for the stacked default, now on the fast path), fall back
to XGBoost's call and say so where compilation is unavailable, and never put compiled
code into a saved bundle. Models are small (few, shallow trees: quick
to compile) and fitted on SYNTHETIC cohorts (no clinical validity).
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from json_records import json_records

import spinerisk as sr
from spinerisk.datasets import TraumaParams
from spinerisk.exceptions import DataQualityWarning
from spinerisk.fastpath import FastPredictor
from spinerisk.fastpath import _compiled as compiled
from spinerisk.schema._validate import validate

pytest.importorskip("tl2cgen", reason="the compiled path needs the 'compiled' extra")

N_RECORDS = 300
SMALL = {"n_estimators": 40, "max_depth": 3}
ODONTOID = TraumaParams(
    cervical_share=1.0, cervical_older_share=1.0, odontoid_share=1.0, upper_share=1.0
)
OLDER_CERVICAL = TraumaParams(cervical_share=1.0, cervical_older_share=1.0)
COHORTS = {
    "collapse": {},
    "nonunion": {},
    "future_fracture": {},
    "odontoid_nonunion": {"mode": "trauma", "trauma": ODONTOID},
    "cervical_mortality": {"mode": "trauma", "trauma": OLDER_CERVICAL},
    "malignant_fracture": {"malignant": "clinic"},
}
CASES = [(endpoint, "xgboost") for endpoint in COHORTS] + [
    ("cervical_mortality", "xgboost_aft"),
    ("nonunion", "auto"),  # the stacked default: the weighted sum of its candidates
    ("cervical_mortality", "auto"),
]


def _records(model, cohort: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Records the model accepts: cohort rows, some predictors blanked at random."""
    rows = json_records(cohort)
    nullable = [f.name for f in model.schema_.by_role("feature") if f.nullable]
    for rec in rows:
        for name in rng.choice(nullable, size=int(rng.integers(0, 4)), replace=False):
            if name in rec:
                rec[name] = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        split = validate(pd.DataFrame.from_records(rows), model.input_schema_, on_invalid="split")
    return [rows[i] for i in split.valid.index[:N_RECORDS]]


@pytest.fixture(scope="module")
def fitted() -> dict[tuple[str, str], tuple[sr.RiskModel, list[dict]]]:
    out = {}
    rng = np.random.default_rng(0)
    for endpoint, backend in CASES:
        train = sr.make_spine_cohort(400, seed=1, **COHORTS[endpoint])
        new = sr.make_spine_cohort(3 * N_RECORDS, seed=2, **COHORTS[endpoint])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = None if backend == "auto" else SMALL
            model = sr.RiskModel(endpoint, backend=backend, booster_params=params).fit(train)
        out[endpoint, backend] = (model, _records(model, new, rng))
    return out


@pytest.fixture(scope="module")
def predictors(fitted):
    """Per case, the model's fast path with its trees compiled and without (XGBoost's own
    call), each built once for the module: the tests given them only predict with them
    (a fast path keeps no state between calls but its fallback count, which stays 0)."""
    built: dict[tuple[str, str], tuple[FastPredictor, FastPredictor]] = {}

    def get(case: tuple[str, str]) -> tuple[FastPredictor, FastPredictor]:
        if case not in built:
            model, _ = fitted[case]
            built[case] = (
                FastPredictor.from_model(model),
                FastPredictor.from_model(model, compile=False),
            )
        return built[case]

    return get


def _one_by_one(fp: FastPredictor, records: list[dict]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        outs = [fp.predict_risk(r) for r in records]
    columns = [c for c in outs[0] if c.startswith("risk")]
    return np.array([[o[c] for c in columns] for o in outs], dtype=float)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_compiled_risks_are_todays_within_1e_7(case, fitted, predictors):
    model, records = fitted[case]
    assert len(records) >= 100
    fast, today = predictors(case)
    heads = fast._xgboost_heads()
    if case[1] == "auto":  # boosters the combination weights (possibly none)
        assert fast.compiled_ == bool(heads), fast.compile_note_
    else:
        assert fast.compiled_ and heads, fast.compile_note_
    assert all(h.trees is not None for h in heads)
    assert not today.compiled_ and all(h.trees is None for h in today._xgboost_heads())
    got, expected = _one_by_one(fast, records), _one_by_one(today, records)
    assert fast.n_fallbacks_ == 0 and today.n_fallbacks_ == 0
    assert np.isfinite(got).all() and got.std(axis=0).max() > 1e-3  # risks that vary
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        batch = model.predict_risk(pd.DataFrame.from_records(records))
    risk = batch[[c for c in batch.columns if c.startswith("risk")]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, risk, rtol=0, atol=1e-7)


def test_models_without_xgboost_boosters_say_there_is_nothing_to_compile():
    cohort = sr.make_spine_cohort(300, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel("nonunion", backend="lightgbm").fit(cohort)
    fast = FastPredictor.from_model(model)
    assert not fast.compiled_ and "nothing to compile" in fast.compile_note_


def _fresh(monkeypatch) -> None:
    """Forget compiled libraries and warnings already given in this process."""
    monkeypatch.setattr(compiled, "_LIBRARIES", {})
    import spinerisk.fastpath as fastpath

    monkeypatch.setattr(fastpath, "_WARNED", set())


def _same_as_today(model, records) -> FastPredictor:
    fast = FastPredictor.from_model(model)
    today = FastPredictor.from_model(model, compile=False)
    np.testing.assert_array_equal(_one_by_one(fast, records), _one_by_one(today, records))
    return fast


def test_without_tl2cgen_it_falls_back_and_says_so_once(fitted, monkeypatch):
    model, records = fitted["nonunion", "xgboost"]
    _fresh(monkeypatch)

    def missing():
        raise compiled.CompileUnavailable("tl2cgen is not installed")

    monkeypatch.setattr(compiled, "_modules", missing)
    with pytest.warns(RuntimeWarning, match="tl2cgen is not installed") as caught:
        fast = _same_as_today(model, records[:50])
    assert len([w for w in caught if w.category is RuntimeWarning]) == 1
    assert not fast.compiled_
    assert fast.compile_note_.startswith("not compiled: tl2cgen is not installed")
    assert all(h.trees is None for h in fast._xgboost_heads())
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        again = FastPredictor.from_model(model)
    assert not again.compiled_
    assert not [w for w in later if "could not compile" in str(w.message)]  # said once


def test_without_a_compiler_it_falls_back(fitted, monkeypatch):
    model, records = fitted["future_fracture", "xgboost"]
    _fresh(monkeypatch)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        fast = _same_as_today(model, records[:50])
    assert not fast.compiled_ and "no C compiler" in fast.compile_note_


def test_a_failing_compilation_falls_back(fitted, monkeypatch):
    import tl2cgen

    model, records = fitted["collapse", "xgboost"]
    _fresh(monkeypatch)

    def broken(*args, **kwargs):
        raise RuntimeError("gcc: internal compiler error")

    monkeypatch.setattr(tl2cgen, "export_lib", broken)
    with pytest.warns(RuntimeWarning, match="compiling the trees failed"):
        fast = _same_as_today(model, records[:50])
    assert not fast.compiled_


def test_compiled_trees_that_disagree_with_xgboost_are_not_used(fitted, monkeypatch):
    model, records = fitted["nonunion", "xgboost"]
    _fresh(monkeypatch)
    call = compiled.CompiledTrees.__call__

    def off(self, x):
        value = call(self, x)
        return None if value is None else value + 1e-6

    monkeypatch.setattr(compiled.CompiledTrees, "__call__", off)
    with pytest.warns(RuntimeWarning, match="where XGBoost answers"):
        fast = _same_as_today(model, records[:50])
    assert not fast.compiled_ and all(h.trees is None for h in fast._xgboost_heads())


def test_no_compiled_code_in_a_bundle(fitted, tmp_path):
    model, records = fitted["nonunion", "xgboost"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        model.predict_risk(records[0])  # builds and caches the compiled fast path
    fast = model._fast_predictor()
    assert fast.wait_compiled(timeout=120), fast.compile_note_  # compiled in the background
    libraries = {h.trees.path for h in fast._xgboost_heads()}
    assert all(tmp_path not in p.parents for p in libraries)
    model.save(tmp_path / "nonunion.srb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nonunion.srb"]
    data = (tmp_path / "nonunion.srb").read_bytes()
    assert b"\x7fELF" not in data and b"tl2cgen" not in data
    if zipfile.is_zipfile(tmp_path / "nonunion.srb"):
        with zipfile.ZipFile(tmp_path / "nonunion.srb") as zf:
            for info in zf.infolist():
                assert not info.filename.endswith((".so", ".c", ".dll", ".dylib", ".pkl"))
                assert b"\x7fELF" not in zf.read(info)
    loaded = sr.load(tmp_path / "nonunion.srb")
    again = loaded._fast_predictor()
    assert again.wait_compiled(
        timeout=120
    )  # rebuilt from the trees at load time, in the process cache
    assert all(tmp_path not in h.trees.path.parents for h in again._xgboost_heads())
    np.testing.assert_array_equal(_one_by_one(again, records[:20]), _one_by_one(fast, records[:20]))


def test_background_compilation_answers_at_once_and_takes_over_when_checked(fitted):
    """compile="background": ready before the compiler has run, XGBoost's own answers
    meanwhile, the compiled trees afterwards, the same risks throughout."""
    model, records = fitted["nonunion", "xgboost"]
    today = FastPredictor.from_model(model, compile=False)
    fast = FastPredictor.from_model(model, compile="background")
    assert "in the background" in fast.compile_note_ or fast.compiled_
    early = _one_by_one(fast, records[:20])
    assert fast.wait_compiled(timeout=120), fast.compile_note_
    assert all(h.trees is not None for h in fast._xgboost_heads())
    assert "compiled to C" in fast.compile_note_
    np.testing.assert_array_equal(early, _one_by_one(today, records[:20]))
    np.testing.assert_array_equal(_one_by_one(fast, records[:20]), early)


def test_background_compilation_that_disagrees_is_never_used(fitted, monkeypatch):
    model, records = fitted["nonunion", "xgboost"]
    _fresh(monkeypatch)

    def off(self, row):
        return 0.123

    monkeypatch.setattr(compiled.CompiledTrees, "__call__", off)
    with pytest.warns(RuntimeWarning, match="where XGBoost answers"):
        fast = FastPredictor.from_model(model, compile="background")
        assert not fast.wait_compiled(timeout=120)
    assert "not compiled" in fast.compile_note_
    assert all(h.trees is None for h in fast._xgboost_heads())
    today = FastPredictor.from_model(model, compile=False)
    np.testing.assert_array_equal(_one_by_one(fast, records[:20]), _one_by_one(today, records[:20]))


@pytest.mark.parametrize("compile_", [True, False], ids=["compiled", "not-compiled"])
def test_one_record_ensemble_is_the_fold_by_fold_answer_bit_for_bit(fitted, predictors, compile_):
    """One record through the shared work (one encode, one compiled input row, one vector
    calibration) gives exactly the fold-by-fold answer: every fold's own encode, booster
    call and calibration, averaged in order."""
    _, records = fitted["nonunion", "xgboost"]
    fast = predictors(("nonunion", "xgboost"))[0 if compile_ else 1]
    assert fast.compiled_ is compile_
    ensemble = fast._one
    assert ensemble is not None and ensemble.n == len(fast._folds) > 1
    # the folds' encodings are the same gather: one encode serves them all
    assert [len(encoders) for _, encoders in ensemble.plan] == [1]
    for record in records[:150]:
        typed = fast._checker.check([record])
        acc = np.zeros(1)
        for fold in fast._folds:
            acc += fold.proba(fold.program.clinical_rows(typed))
        acc /= len(fast._folds)
        got = fast._values(typed, fast.horizons_)
        assert got.shape == (1, 1) and got[0, 0] == acc[0], record


def _batch(fp: FastPredictor, records: list[dict]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        outs = fp.predict_risk(records)
    columns = [c for c in outs[0] if c.startswith("risk")]
    return np.array([[o[c] for c in columns] for o in outs], dtype=float)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_compiled_batches_are_xgboosts_answers_bit_for_bit(case, fitted, predictors, monkeypatch):
    """Several records go through tl2cgen's batch loop (one matrix per encoding), with
    the answers of XGBoost's own batch call, bit for bit."""
    _, records = fitted[case]
    fast, today = predictors(case)
    calls = []
    original = compiled.compiled_rows

    def counted(trees, X):
        calls.append(X.shape[0])
        return original(trees, X)

    monkeypatch.setattr(compiled, "compiled_rows", counted)
    monkeypatch.setattr("spinerisk.fastpath._scorers.compiled_rows", counted)
    got, expected = _batch(fast, records), _batch(today, records)
    assert fast.n_fallbacks_ == 0 and today.n_fallbacks_ == 0
    assert (len(records) in calls) == bool(fast._xgboost_heads()), calls
    assert np.isfinite(got).all() and got.std(axis=0).max() > 1e-3
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("compile_", [True, False], ids=["compiled", "not-compiled"])
def test_batch_ensemble_is_the_fold_by_fold_answer_bit_for_bit(fitted, predictors, compile_):
    """Several records through the shared work (one clinical table, one encode, one
    compiled matrix for the 5 boosters) give exactly every fold's own answer averaged in
    order, as the batch path computed it before."""
    _, records = fitted["nonunion", "xgboost"]
    fast = predictors(("nonunion", "xgboost"))[0 if compile_ else 1]
    assert fast.compiled_ is compile_
    typed = fast._checker.check(records)
    assert typed is not None and len(typed) == len(records) >= 100
    acc = np.zeros(len(typed))
    for fold in fast._folds:
        X = fold.program.encode(fold.program.clinical_rows(typed))
        T = np.asarray(
            fold.response.booster.inplace_predict(np.ascontiguousarray(X), **fold.response.kwargs),
            dtype=np.float64,
        ).reshape(-1)
        acc += fold.calibrate(T)
    acc /= len(fast._folds)
    got = fast._values(typed, fast.horizons_)
    assert got.shape == (len(typed), 1)
    np.testing.assert_array_equal(got[:, 0], acc)
