"""Bundles: one-file save/load of a fitted RiskModel, and refusal of unsafe files."""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import json
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator

import spinerisk as sr
import spinerisk.bundle as bundle
from spinerisk.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    TRUSTED_TYPES,
    ArtifactError,
    load_bundle,
    read_manifest,
    save_bundle,
)
from spinerisk.schema import schema_from_dict, schema_to_dict

CASES = [
    ("nonunion", "linear"),
    ("nonunion", "spline"),
    ("nonunion", "xgboost"),
    ("nonunion", "lightgbm"),
    ("future_fracture", "linear"),
    ("future_fracture", "xgboost"),
]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sr.make_spine_cohort(1200, seed=0)


@pytest.fixture(scope="module")
def fitted(cohort: pd.DataFrame) -> dict[tuple[str, str], Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            (ep, be): sr.RiskModel(endpoint=ep, backend=be, cv=2).fit(cohort) for ep, be in CASES
        }


@pytest.fixture(scope="module")
def saved(fitted: dict[tuple[str, str], Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle with every member kind (skops parts, boosters): competing xgboost."""
    path = tmp_path_factory.mktemp("bundle") / "ff-xgb.spinerisk"
    return save_bundle(fitted["future_fracture", "xgboost"], path)


def _predict(model: Any, cohort: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.predict_risk(cohort)


def _rewrite(src: Path, dst: Path, change: Any) -> Path:
    """Copy a bundle, letting ``change(members)`` edit the dict of member bytes."""
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def _edit_manifest(zipped: dict[str, bytes], **changes: Any) -> None:
    manifest = json.loads(zipped["manifest.json"])
    manifest.update(changes)
    zipped["manifest.json"] = json.dumps(manifest).encode()


@pytest.fixture
def no_object_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if skops is asked to build an object."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("skops.io.loads was called for a file that should be refused")

    monkeypatch.setattr(sio, "loads", refuse)


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize(("endpoint", "backend"), CASES)
def test_round_trip_predicts_identically(
    fitted: dict[tuple[str, str], Any],
    cohort: pd.DataFrame,
    tmp_path: Path,
    endpoint: str,
    backend: str,
) -> None:
    model = fitted[endpoint, backend]
    path = save_bundle(model, tmp_path / "model.spinerisk")
    loaded = load_bundle(path)

    before, after = _predict(model, cohort), _predict(loaded, cohort)
    risk = [c for c in before.columns if c.startswith("risk_")]
    np.testing.assert_array_equal(before[risk].to_numpy(), after[risk].to_numpy())
    pd.testing.assert_frame_equal(before, after)
    assert type(loaded) is type(model)
    assert loaded.schema is None
    for attr in ("backend_", "horizons_", "n_train_", "n_excluded_", "id_field_"):
        assert getattr(loaded, attr) == getattr(model, attr)
    assert loaded.endpoint_ == model.endpoint_
    assert loaded.training_ranges_ == model.training_ranges_
    assert loaded.selection_reason_ == model.selection_reason_
    if endpoint == "future_fracture":  # other horizons too (baseline hazards survived)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = model.predict_risk(cohort.head(50), horizons=[100, 500])
            b = loaded.predict_risk(cohort.head(50), horizons=[100, 500])
        np.testing.assert_array_equal(a.iloc[:, :2].to_numpy(), b.iloc[:, :2].to_numpy())


def test_a_model_that_scored_dicts_saves_and_loads_identically(
    fitted: dict[tuple[str, str], Any], cohort: pd.DataFrame, tmp_path: Path
) -> None:
    model = fitted["nonunion", "xgboost"]
    records = cohort.head(5).drop(columns=["nonunion"])
    as_dicts = records.astype(object).where(records.notna(), None).to_dict("records")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_dicts = model.predict_risk(as_dicts)  # builds and caches the fast predictor
    assert "_fast_cache" in vars(model)
    loaded = load_bundle(save_bundle(model, tmp_path / "m.spinerisk"))
    assert "_fast_cache" not in vars(loaded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(loaded.predict_risk(as_dicts), from_dicts)
        pd.testing.assert_frame_equal(_predict(loaded, records), from_dicts)


def test_save_leaves_model_intact_and_tables_round_trip(
    fitted: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    import xgboost as xgb

    boosted = fitted["future_fracture", "xgboost"]
    save_bundle(boosted, tmp_path / "b.spinerisk")
    assert all(isinstance(e.booster_, xgb.Booster) for e in boosted.estimator_.estimators_)

    cox = fitted["future_fracture", "linear"]
    loaded = load_bundle(save_bundle(cox, tmp_path / "c.spinerisk"))
    pairs = zip(cox.estimator_.estimators_, loaded.estimator_.estimators_, strict=True)
    for original, restored in pairs:
        assert isinstance(original.summary_, pd.DataFrame)
        pd.testing.assert_frame_equal(original.summary_, restored.summary_)


def test_auto_selection_table_round_trips(cohort: pd.DataFrame, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # half the cohort: the table's round trip is the point
        model = sr.RiskModel(endpoint="future_fracture", backend="auto", cv=2)
        model.fit(cohort.head(600))
    loaded = load_bundle(save_bundle(model, tmp_path / "auto.spinerisk"))
    pd.testing.assert_frame_equal(model.selection_, loaded.selection_)
    assert read_manifest(tmp_path / "auto.spinerisk")["selection"] is not None


def test_explicit_default_schema_round_trips(
    fitted: dict[tuple[str, str], Any], cohort: pd.DataFrame, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel(endpoint="nonunion", backend="linear", schema=sr.SPINE_SCHEMA)
        model.fit(cohort)
    loaded = load_bundle(save_bundle(model, tmp_path / "m.spinerisk"))
    assert loaded.schema is sr.SPINE_SCHEMA and loaded.schema_ is sr.SPINE_SCHEMA
    assert model.schema is sr.SPINE_SCHEMA  # the saved model is unchanged
    pd.testing.assert_frame_equal(_predict(model, cohort), _predict(loaded, cohort))


# -- manifest ---------------------------------------------------------------------------
def test_manifest_describes_the_model(
    fitted: dict[tuple[str, str], Any], cohort: pd.DataFrame, tmp_path: Path
) -> None:
    model = fitted["future_fracture", "xgboost"]
    path = save_bundle(model, tmp_path / "m.spinerisk", training_data=cohort)
    manifest = read_manifest(path)

    assert manifest["format"] == BUNDLE_FORMAT
    assert manifest["format_version"] == BUNDLE_FORMAT_VERSION
    assert manifest["created_utc"].endswith("Z")
    assert set(manifest["versions"]) >= {
        "spinerisk",
        "scikit-learn",
        "xgboost",
        "lightgbm",
        "lifelines",
        "numpy",
        "pandas",
    }
    assert manifest["versions"]["spinerisk"] == sr.__version__
    assert manifest["endpoint"]["name"] == "future_fracture"
    assert manifest["endpoint"]["kind"] == "competing"
    assert manifest["horizons"] == list(model.horizons_)
    assert manifest["backend"] == "xgboost"
    assert manifest["schema"]["name"] == sr.SPINE_SCHEMA.name
    assert manifest["schema"]["version"] == sr.SPINE_SCHEMA.version
    fields = {f["name"]: f for f in manifest["schema"]["fields"]}
    age = fields["age_years"]
    assert (age["dtype"], age["unit"]) == ("float", "years")
    assert fields["sex"]["categories"] == list(sr.SPINE_SCHEMA["sex"].categories)
    assert len(manifest["schema"]["rules"]) == len(sr.SPINE_SCHEMA.rules)
    assert schema_from_dict(manifest["schema"]) == sr.SPINE_SCHEMA
    assert manifest["feature_names_out"] == list(model.features_.get_feature_names_out())
    lo, hi = model.training_ranges_["age_years"]
    assert manifest["training_ranges"]["age_years"] == {"range": [lo, hi]}
    assert manifest["training_ranges"]["sex"] == {
        "categories": sorted(model.training_ranges_["sex"])
    }
    assert (manifest["n_train"], manifest["n_excluded"]) == (model.n_train_, model.n_excluded_)
    assert manifest["selection"] is None
    assert manifest["selection_reason"] == model.selection_reason_
    assert manifest["training_data_fingerprint"]["n_rows"] == len(cohort)
    assert len(manifest["boosters"]) == 2  # one per cause

    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"manifest.json", *manifest["members"]}
        for name, digest in manifest["members"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    # without training data the fingerprint is null
    assert (
        read_manifest(save_bundle(model, tmp_path / "n.spinerisk"))["training_data_fingerprint"]
        is None
    )


def test_binary_manifest_has_feature_names(
    fitted: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    manifest = read_manifest(save_bundle(fitted["nonunion", "lightgbm"], tmp_path / "b.zip"))
    assert manifest["parts"]["features"] is None
    assert "age_years" in manifest["feature_names_out"]
    assert manifest["training_ranges"]["prior_fragility_fx"] == {"categories": [False, True]}


@pytest.mark.parametrize(("endpoint", "backend"), CASES)
def test_trusted_types_cover_every_supported_model(
    fitted: dict[tuple[str, str], Any], tmp_path: Path, endpoint: str, backend: str
) -> None:
    path = save_bundle(fitted[endpoint, backend], tmp_path / "m.spinerisk")
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith(".skops"):
                assert set(sio.get_untrusted_types(data=zf.read(name))) <= TRUSTED_TYPES


# -- refusals -----------------------------------------------------------------------------
def test_tampered_member_is_refused(saved: Path, tmp_path: Path, no_object_built: None) -> None:
    def tamper(members: dict[str, bytes]) -> None:
        booster = json.loads(members["boosters/0.json"])
        booster["learner"]["attributes"]["tampered"] = "1"
        members["boosters/0.json"] = json.dumps(booster).encode()

    bad = _rewrite(saved, tmp_path / "bad.spinerisk", tamper)
    with pytest.raises(ArtifactError, match="'boosters/0.json' was modified or corrupted"):
        load_bundle(bad)


def test_unlisted_member_is_refused(saved: Path, tmp_path: Path, no_object_built: None) -> None:
    def add(members: dict[str, bytes]) -> None:
        members["extra.skops"] = sio.dumps({"a": 1})

    with pytest.raises(ArtifactError, match="unlisted \\['extra.skops'\\]"):
        load_bundle(_rewrite(saved, tmp_path / "bad.spinerisk", add))


class NotOnTheAllowList(BaseEstimator):
    """A harmless class that is not in TRUSTED_TYPES."""


def test_member_with_untrusted_type_is_refused(
    saved: Path, tmp_path: Path, no_object_built: None
) -> None:
    evil = sio.dumps(NotOnTheAllowList())

    def swap(members: dict[str, bytes]) -> None:
        members["estimator.skops"] = evil
        manifest = json.loads(members["manifest.json"])
        manifest["members"]["estimator.skops"] = hashlib.sha256(evil).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()

    bad = _rewrite(saved, tmp_path / "evil.spinerisk", swap)
    with pytest.raises(ArtifactError, match="outside spinerisk.bundle.TRUSTED_TYPES.*NotOnThe"):
        load_bundle(bad)
    with pytest.raises(ArtifactError, match="TRUSTED_TYPES"):
        read_manifest(bad)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"hello.txt": b"hi"}, "no manifest.json"),
        ({"manifest.json": b"{not json"}, "not valid JSON"),
        ({"manifest.json": json.dumps({"format": "other"}).encode()}, "manifest is foreign"),
        ({"manifest.json": b"[1, 2]"}, "manifest is foreign"),
    ],
)
def test_foreign_zip_is_refused(
    tmp_path: Path, no_object_built: None, members: dict[str, bytes], message: str
) -> None:
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ArtifactError, match=message):
        load_bundle(path)


@pytest.mark.parametrize("keep", [0.5, 0.0, 0.99])
def test_truncated_file_is_refused(
    saved: Path, tmp_path: Path, no_object_built: None, keep: float
) -> None:
    raw = saved.read_bytes()
    path = tmp_path / "cut.spinerisk"
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ArtifactError, match="not a spinerisk bundle|damaged"):
        load_bundle(path)


def test_missing_file_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="Cannot read bundle"):
        load_bundle(tmp_path / "absent.spinerisk")


# version 1 bundles calibrated boosted binary models on probabilities, version 2 on the
# booster's margin (decision_function); version 3 AFT models predict with their fitted
# scale_: reading one as another would give wrong risks or fail
@pytest.mark.parametrize("version", [0, 1, 2, 5, 99, "4", True, None])
def test_incompatible_format_version_is_refused(
    saved: Path, tmp_path: Path, no_object_built: None, version: Any
) -> None:
    bad = _rewrite(
        saved,
        tmp_path / "v.spinerisk",
        lambda m: _edit_manifest(m, format_version=version),
    )
    with pytest.raises(ArtifactError, match="bundle format version"):
        load_bundle(bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_train": "many"}, "manifest field 'n_train'"),
        ({"members": None}, "manifest field 'members'"),
        ({"boosters": [1]}, "boosters or frames are malformed"),
        ({"parts": {"estimator": "estimator.skops"}}, "parts are malformed"),
        ({"schema": {"name": "spine-ovf", "version": "0"}}, "schema needs at least one field"),
        ({"schema": {"name": "x", "fields": [{"name": "a", "dtype": "complex"}]}}, "dtype"),
        ({"training_ranges": {"age_years": [1, 2]}}, "training_ranges\\['age_years'\\]"),
        ({"horizons": ["soon"]}, "manifest is malformed"),
    ],
)
def test_malformed_manifest_is_refused(
    saved: Path, tmp_path: Path, no_object_built: None, changes: dict[str, Any], message: str
) -> None:
    bad = _rewrite(saved, tmp_path / "m.spinerisk", lambda m: _edit_manifest(m, **changes))
    with pytest.raises(ArtifactError, match=message):
        load_bundle(bad)


def test_expected_file_hash(saved: Path) -> None:
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    assert load_bundle(saved, sha256=digest).backend_ == "xgboost"
    with pytest.raises(ArtifactError, match="sha256 differs from the expected"):
        load_bundle(saved, sha256="0" * 64)


def test_other_library_versions_warn(saved: Path, tmp_path: Path) -> None:
    def old(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["versions"]["xgboost"] = "0.1"
        members["manifest.json"] = json.dumps(manifest).encode()

    with pytest.warns(UserWarning, match="xgboost 0.1 ->"):
        load_bundle(_rewrite(saved, tmp_path / "old.spinerisk", old))


def test_a_rule_written_as_code_is_refused_at_save(
    fitted: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    model = copy.copy(fitted["nonunion", "linear"])
    rule = sr.RowRule("old_enough", ("age_years",), lambda df: df["age_years"] > 50, "too young")
    model.schema_ = sr.SPINE_SCHEMA.extend(rules=[rule])
    path = tmp_path / "custom.spinerisk"
    with pytest.raises(ArtifactError, match="'old_enough'.*written as Python code"):
        save_bundle(model, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_custom_schema_round_trips_bit_identically(cohort: pd.DataFrame, tmp_path: Path) -> None:
    """A declared schema (rules, derived features, tables) travels inside the bundle."""
    rule = sr.RowRule("old_enough", expr="age_years >= 50", message="younger than 50")
    extra = sr.DerivedFeature("frail", "age_years >= 85 or bmi < 18.5", "Frailty flag.")
    schema = sr.SPINE_SCHEMA.extend(rules=[rule], derived=[extra], name="spine+frail")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sr.RiskModel("nonunion", backend="xgboost", schema=schema).fit(cohort)
    assert (
        "frail" in model.estimator_.calibrated_classifiers_[0].estimator[0].get_feature_names_out()
    )
    loaded = load_bundle(save_bundle(model, tmp_path / "c.srb"))
    assert loaded.schema_ == schema and loaded.schema == schema
    assert loaded.schema_.rules[-1].expr == "age_years >= 50"
    assert schema_to_dict(loaded.schema_) == schema_to_dict(schema)
    pd.testing.assert_frame_equal(_predict(model, cohort), _predict(loaded, cohort))


def test_save_needs_a_fitted_risk_model(tmp_path: Path) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(TypeError, match="RiskModel"):
        save_bundle(object(), tmp_path / "x")
    with pytest.raises(NotFittedError):
        save_bundle(sr.RiskModel(), tmp_path / "x")


def test_bundle_package_never_uses_pickle() -> None:
    modules = sorted(Path(bundle.__file__).parent.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "_format.py", "_load.py", "_save.py"}
    imported = set()
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "skops" in imported  # the scan sees the imports
    assert not imported & {"pickle", "joblib", "cloudpickle", "dill", "marshal"}


def test_artifact_error_is_a_value_error() -> None:
    assert issubclass(ArtifactError, ValueError)


def test_top_level_save_and_load(tmp_path):
    import spinerisk as sr

    cohort = sr.make_spine_cohort(600, seed=4)
    model = sr.RiskModel(endpoint="collapse", backend="linear").fit(cohort)
    path = model.save(tmp_path / "collapse.srb")
    loaded = sr.load(path)
    np.testing.assert_array_equal(
        loaded.predict_risk(cohort.head(20))["risk_183d"],
        model.predict_risk(cohort.head(20))["risk_183d"],
    )
    assert issubclass(sr.ArtifactError, ValueError)


# -- a bound gate: a nested bundle ---------------------------------------------------------
GATE_KEY_ENV = "SPINERISK_TEST_BUNDLE_KEY"


@pytest.fixture(scope="module")
def gated(fitted: dict[tuple[str, str], Any], cohort: pd.DataFrame) -> Any:
    """A nonunion model with a gate set by hand (the gate logic lives in models._gate):
    another fitted binary model and its three settings."""
    model = copy.deepcopy(fitted["nonunion", "linear"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.gate_ = sr.RiskModel("collapse", backend="linear").fit(cohort)
    model.gate_threshold_ = 0.2
    model.gate_warning_ = 0.1
    model.gate_red_flags_ = "age_years > 110"
    return model


def _gate_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        outer = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(io.BytesIO(outer["gate.srb"])) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_a_gate_is_saved_as_a_nested_bundle_and_restored(
    gated: Any, cohort: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GATE_KEY_ENV, "k" * 40)
    path = save_bundle(gated, tmp_path / "gated.srb", sign_key_env=GATE_KEY_ENV)
    manifest = read_manifest(path, verify_key_env=GATE_KEY_ENV)
    settings_ = {"threshold": 0.2, "warning": 0.1, "red_flags": "age_years > 110"}
    assert manifest["gate"] == {"member": "gate.srb", **settings_}
    with zipfile.ZipFile(path) as zf:
        nested = zf.read("gate.srb")
    assert manifest["members"]["gate.srb"] == hashlib.sha256(nested).hexdigest()
    (tmp_path / "nested.srb").write_bytes(nested)  # a whole bundle, signed too
    inner = read_manifest(tmp_path / "nested.srb", verify_key_env=GATE_KEY_ENV)
    assert inner["endpoint"]["name"] == "collapse" and inner["gate"] is None

    loaded = load_bundle(path, verify_key_env=GATE_KEY_ENV)
    assert (loaded.gate_threshold_, loaded.gate_warning_, loaded.gate_red_flags_) == (
        0.2,
        0.1,
        "age_years > 110",
    )
    assert loaded.gate_.endpoint_.name == "collapse"
    pd.testing.assert_frame_equal(_predict(loaded.gate_, cohort), _predict(gated.gate_, cohort))
    pd.testing.assert_frame_equal(_predict(loaded, cohort), _predict(gated, cohort))
    again = load_bundle(save_bundle(loaded, tmp_path / "again.srb"))
    assert again.gate_.endpoint_.name == "collapse"
    assert read_manifest(save_bundle(again.gate_, tmp_path / "g.srb"))["gate"] is None


def test_a_damaged_or_edited_gate_is_refused(gated: Any, tmp_path: Path) -> None:
    path = save_bundle(gated, tmp_path / "gated.srb")

    def with_gate(inner: dict[str, bytes]) -> Callable[[dict[str, bytes]], None]:
        def change(members: dict[str, bytes]) -> None:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as zf:
                for name, data in inner.items():
                    zf.writestr(name, data)
            members["gate.srb"] = buffer.getvalue()
            manifest = json.loads(members["manifest.json"])
            manifest["members"]["gate.srb"] = hashlib.sha256(members["gate.srb"]).hexdigest()
            members["manifest.json"] = json.dumps(manifest).encode()

        return change

    inner = _gate_members(path)
    manifest = json.loads(inner["manifest.json"])
    manifest["horizons"] = [365.25]
    inner["manifest.json"] = json.dumps(manifest).encode()
    bad = _rewrite(path, tmp_path / "a.srb", with_gate(inner))
    with pytest.raises(ArtifactError, match=r"\(gate gate.srb\).*horizons"):
        load_bundle(bad)
    inner = _gate_members(path)
    inner["estimator.skops"] += b"x"
    with pytest.raises(ArtifactError, match=r"\(gate gate.srb\).*modified or corrupted"):
        load_bundle(_rewrite(path, tmp_path / "b.srb", with_gate(inner)))
    for changes, message in [
        ({"threshold": 1.5}, "gate's warning"),
        ({"warning": 0.5}, "warning <= threshold"),
        ({"red_flags": "no_such_field > 1"}, "red flags do not fit"),
        ({"member": "estimator.skops"}, "manifest gate is malformed"),
    ]:

        def edit(members: dict[str, bytes], changes: dict[str, Any] = changes) -> None:
            manifest = json.loads(members["manifest.json"])
            manifest["gate"].update(changes)
            members["manifest.json"] = json.dumps(manifest).encode()

        with pytest.raises(ArtifactError, match=message):
            load_bundle(_rewrite(path, tmp_path / "c.srb", edit))


def test_a_chained_gate_or_bad_gate_settings_are_refused_at_save(
    gated: Any, tmp_path: Path
) -> None:
    chained = copy.deepcopy(gated)
    chained.gate_.gate_ = copy.deepcopy(gated.gate_)
    for attr, value in (("threshold", 0.2), ("warning", 0.1), ("red_flags", None)):
        setattr(chained.gate_, f"gate_{attr}_", value)
    with pytest.raises(ArtifactError, match="chains of gates"):
        save_bundle(chained, tmp_path / "chain.srb")
    bad = copy.copy(gated)
    bad.gate_warning_ = 0.5
    with pytest.raises(ArtifactError, match="warning <= threshold"):
        save_bundle(bad, tmp_path / "bad.srb")
    assert list(tmp_path.iterdir()) == []


# -- format 3 bundles still load ----------------------------------------------------------
def test_a_format_3_bundle_still_loads(cohort: pd.DataFrame, tmp_path: Path) -> None:
    """A version 3 manifest (schema summary, endpoint by the keys of its time) of a model
    whose endpoint declares no predictor list, as models were then."""
    from spinerisk.bundle._format import _ENDPOINT_KEYS, _endpoint_to_json, _schema_to_json
    from spinerisk.endpoints import ENDPOINTS, Endpoint

    old = _endpoint_to_json(ENDPOINTS["future_fracture"])
    assert set(old) == set(_ENDPOINT_KEYS)
    endpoint = Endpoint(**{**old, "horizons": tuple(old["horizons"])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fitted on a third of the cohort, scored on all of it
        model = sr.RiskModel(endpoint, backend="linear", cv=2).fit(cohort.head(400))

    def as_v3(members: dict[str, bytes], horizons: Any = None) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["format_version"] = 3
        manifest["schema"] = _schema_to_json(sr.SPINE_SCHEMA)
        manifest["endpoint"] = manifest["model"]["params"]["endpoint"] = old
        del manifest["gate"]
        if horizons is not None:
            manifest["horizons"] = horizons
        members["manifest.json"] = json.dumps(manifest).encode()

    saved = save_bundle(model, tmp_path / "v4.srb")
    loaded = load_bundle(_rewrite(saved, tmp_path / "v3.srb", as_v3))
    pd.testing.assert_frame_equal(_predict(loaded, cohort), _predict(model, cohort))
    with pytest.raises(ArtifactError, match="horizons"):
        load_bundle(_rewrite(saved, tmp_path / "v3b.srb", lambda m: as_v3(m, [365.25])))


# -- fuzz: mutated bundles ----------------------------------------------------------------
# Every mutation of a saved bundle is either refused with ArtifactError or loads to a model
# that scores the training records identically (risks and warnings). A mutation of the
# archive or of a member's bytes is refused before any object is built; an edit of the
# manifest (which no hash covers) is refused before building when the manifest contradicts
# itself, and after building the untouched parts when it contradicts them. Seeded and
# bounded: the same examples every run, about 20 s.
FUZZ_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2**40,
    0.5,
    -2.5,
    1e300,
    "",
    "x",
    "linear",
    "nonunion",
    [],
    [0],
    ["x"],
    {},
    {"x": 1},
]
ARCHIVE_KINDS = ("flip", "truncate", "insert", "drop", "duplicate", "rename", "swap")


@pytest.fixture(scope="module")
def fuzz_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cohort = sr.make_spine_cohort(400, seed=3)
    out: dict[str, Any] = {}
    for name, (endpoint, backend) in {
        "binary": ("nonunion", "linear"),
        "competing": ("future_fracture", "linear"),
    }.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sr.RiskModel(endpoint, backend=backend, cv=2).fit(cohort)
        path = save_bundle(model, tmp_path_factory.mktemp("fuzz") / f"{name}.srb")
        out[name] = (path.read_bytes(), _predict(model, cohort))
    out["cohort"] = cohort
    return out


def _walk_to(manifest: Any, draw: Any) -> tuple[Any, Any]:
    """A random container and key of the manifest: from the top, one child at a time,
    stopping at random (so top-level keys and deep leaves are both reached)."""
    parent, key = manifest, draw(st.sampled_from(sorted(manifest)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.booleans()):
        child = parent[key]
        parent, key = (
            child,
            draw(
                st.sampled_from(sorted(child))
                if isinstance(child, dict)
                else st.integers(0, len(child) - 1)
            ),
        )
    return parent, key


def _edit_value(value: Any, draw: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return draw(st.sampled_from(FUZZ_VALUES))
    how = draw(st.sampled_from(["other", "nudge", "negate", "same"]))
    if how == "other":
        return draw(st.sampled_from(FUZZ_VALUES))
    if isinstance(value, str):
        return {"nudge": value + "x", "negate": value[::-1], "same": value.upper()}[how]
    return {
        "nudge": value + 1 if isinstance(value, int) else value * 1.001,
        "negate": -value,
        "same": type(value)(value * 2),
    }[how]


def _mutate(raw: bytes, draw: Any) -> tuple[str, bytes]:
    kind = draw(
        st.sampled_from([*ARCHIVE_KINDS, "edit", "edit", "edit", "delete", "add", "restored"])
    )
    if kind in ("flip", "truncate", "insert"):
        at = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            return kind, raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[
                at + 1 :
            ]
        if kind == "truncate":
            return kind, raw[:at]
        return kind, raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        entries = [(n, zf.read(n)) for n in zf.namelist()]
    names = [n for n, _ in entries]
    if kind in ("drop", "duplicate", "rename", "swap"):
        i = draw(st.integers(0, len(entries) - 1))
        if kind == "drop":
            del entries[i]
        elif kind == "duplicate":
            entries.insert(draw(st.integers(0, len(entries))), entries[i])
        elif kind == "rename":
            new = draw(st.sampled_from([*names, entries[i][0] + "x", "extra.skops", "x.json"]))
            entries[i] = (new, entries[i][1])
        else:
            j = draw(st.integers(0, len(entries) - 1))
            entries[i], entries[j] = (entries[i][0], entries[j][1]), (entries[j][0], entries[i][1])
    elif kind == "restored":  # re-zipped, stored, members in another order: still the bundle
        entries = entries[::-1]
    else:
        manifest = json.loads(dict(entries)["manifest.json"])
        parent, key = _walk_to(manifest, draw)
        if kind == "delete":
            del parent[key]
        elif kind == "add" and isinstance(parent, dict):
            parent["x_" + str(key)] = draw(st.sampled_from(FUZZ_VALUES))
        elif kind == "add":
            parent.insert(key, parent[key])
        else:
            parent[key] = _edit_value(parent[key], draw)
        entries = [
            (n, json.dumps(manifest).encode() if n == "manifest.json" else d) for n, d in entries
        ]
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if kind == "restored" else zipfile.ZIP_DEFLATED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names
        with zipfile.ZipFile(buffer, "w", method) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return kind, buffer.getvalue()


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_a_mutated_bundle_is_refused_or_scores_identically(
    fuzz_bundles: dict[str, Any], data: st.DataObject
) -> None:
    which = data.draw(st.sampled_from(["binary", "competing"]))
    raw, expected = fuzz_bundles[which]
    kind, mutated = _mutate(raw, data.draw)
    built: list[int] = []
    loads = sio.loads

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return loads(*args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.srb"
        path.write_bytes(mutated)
        sio.loads = counting
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = load_bundle(path)
        except ArtifactError:
            assert not (built and kind in ARCHIVE_KINDS), f"{kind}: objects built, then refused"
            return
        finally:
            sio.loads = loads
    got = _predict(model, fuzz_bundles["cohort"])
    pd.testing.assert_frame_equal(got, expected, obj=f"scores after {kind}")


@pytest.mark.parametrize("id_type", ["int", "float", "string"])
def test_a_model_whose_id_field_is_not_text_saves_and_loads(id_type: str, tmp_path: Path) -> None:
    """The load-time probe record carries an id of the id field's own type (it was the
    text 'probe', so a model with integer ids could be saved but never loaded)."""
    from spinerisk.endpoints import Endpoint
    from spinerisk.schema import FieldSpec, Schema

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    ids = np.arange(n)
    records = pd.DataFrame(
        {
            "rid": ids.astype(str) if id_type == "string" else ids.astype(id_type),
            "x": x,
            "outcome": rng.uniform(size=n) < 1 / (1 + np.exp(-x)),
        }
    )
    schema = Schema(
        (
            FieldSpec("rid", id_type, "Record id.", role="id", unique=True, nullable=False),
            FieldSpec("x", "float", "A predictor."),
            FieldSpec("outcome", "bool", "SYNTHETIC outcome.", role="outcome", nullable=False),
        ),
        name="ids",
    )
    endpoint = Endpoint(
        name="outcome",
        kind="binary",
        description="SYNTHETIC.",
        event="outcome",
        time=None,
        horizons=(365.25,),
        eligible_treatments=None,
        include_treatment=False,
    )
    model = sr.RiskModel(endpoint, backend="linear", schema=schema).fit(records)
    model.save(tmp_path / "ids.spinerisk")
    back = sr.load(tmp_path / "ids.spinerisk")
    pd.testing.assert_frame_equal(back.predict_risk(records[:10]), model.predict_risk(records[:10]))
