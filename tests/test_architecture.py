"""One owner per concept (issue 17): each shared rule has one home, used by every step.

The import contracts themselves (layers, no cycles) are checked by ``lint-imports`` in
``make lint``; these tests pin the owners' behaviour and that the steps use them.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import FUTURE_FRACTURE, NONUNION, check_horizon, check_horizons
from spinerisk.models._state import FITTED_STATE, PARAMS, is_risk_model, set_fitted
from spinerisk.schema import SPINE_SCHEMA, resolve_schema

PACKAGE = Path(sr.__file__).parent


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sr.make_spine_cohort(700, seed=3)


@pytest.fixture(scope="module")
def model(cohort: pd.DataFrame) -> sr.RiskModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)


def test_resolve_schema_is_the_one_default():
    assert resolve_schema(None) is SPINE_SCHEMA
    other = SPINE_SCHEMA.extend(rules=[])
    assert resolve_schema(other) is other


def test_no_module_decides_the_default_schema_by_hand():
    """``SPINE_SCHEMA if schema is None`` and private ``_default_schema()`` copies are gone."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name == "default.py":
            continue
        if "SPINE_SCHEMA if schema is None" in text or "def _default_schema" in text:
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_check_horizons_one_rule_for_every_caller():
    fitted = FUTURE_FRACTURE.model_horizons
    assert check_horizons(FUTURE_FRACTURE, fitted, None) == tuple(float(h) for h in fitted)
    assert check_horizons(FUTURE_FRACTURE, fitted, [100, np.float64(200.5)]) == (100.0, 200.5)
    for bad in ([0], [-1.0], [float("nan")], [True], ["365"], []):
        with pytest.raises(ValueError, match="horizons must be positive numbers of days"):
            check_horizons(FUTURE_FRACTURE, fitted, bad)
    binary = NONUNION.model_horizons
    assert check_horizons(NONUNION, binary, [binary[0] * (1 + 1e-12)]) == binary
    with pytest.raises(ValueError, match="binary outcome at .*cannot be predicted at horizons"):
        check_horizons(NONUNION, binary, [90], action="predicted at")
    assert check_horizon(FUTURE_FRACTURE, fitted, None) == float(fitted[0])
    with pytest.raises(ValueError, match="horizon must be a positive number of days"):
        check_horizon(FUTURE_FRACTURE, fitted, -3)


def test_fit_predict_and_explain_share_the_horizon_rule(model, cohort):
    with pytest.raises(ValueError, match="cannot be fitted for horizons"):
        sr.RiskModel(endpoint="nonunion", backend="linear", horizons=[90]).fit(cohort)
    with pytest.raises(ValueError, match="cannot be predicted at horizons"):
        model.predict_risk(cohort.head(2), horizons=[90])
    with pytest.raises(ValueError, match="cannot be explained at horizon=90"):
        sr.explain(model, cohort.head(2), horizon=90)


def test_labelled_is_validate_eligible_target(cohort):
    got = NONUNION.labelled(cohort)
    checked = sr.validate(cohort)
    mask = NONUNION.eligible(checked).to_numpy()
    pd.testing.assert_frame_equal(got.checked, checked)
    np.testing.assert_array_equal(got.mask, mask)
    pd.testing.assert_frame_equal(got.data, checked[mask])
    np.testing.assert_array_equal(got.target, NONUNION.target(checked[mask]))
    again = NONUNION.labelled(checked, validated=True)
    np.testing.assert_array_equal(again.target, got.target)


def test_fitted_state_is_declared_once(model):
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    assert fitted <= set(FITTED_STATE), fitted - set(FITTED_STATE)
    assert set(PARAMS) == set(model.get_params())
    assert is_risk_model(model) and not is_risk_model(object())
    with pytest.raises(AttributeError, match="not fitted attributes"):
        set_fitted(model.__class__(), surprise_=1)


def test_save_load_explain_are_functions(model, cohort, tmp_path):
    path = sr.save(model, tmp_path / "m.srb")
    loaded = sr.load(path)
    pd.testing.assert_frame_equal(
        loaded.predict_risk(cohort.head(5)), model.predict_risk(cohort.head(5))
    )
    assert callable(sr.explain)
    a = sr.explain(model, cohort.head(3)).contributions
    pd.testing.assert_frame_equal(a, model.explain(cohort.head(3)).contributions)


def test_old_bundle_loader_still_works_with_a_deprecation_warning(model, cohort, tmp_path):
    from spinerisk.bundle import load_bundle

    path = model.save(tmp_path / "m.srb")
    with pytest.warns(DeprecationWarning, match="use spinerisk.load"):
        loaded = load_bundle(path)
    assert type(loaded) is sr.RiskModel
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # sr.load passes the class
        sr.load(path)


def test_model_identity_has_one_meaning(model, tmp_path):
    from spinerisk.bundle import model_identity, read_manifest

    unsaved = model_identity(None, model=model)
    assert unsaved["model_id"] == "nonunion-linear-unsaved"
    assert unsaved["model_version"] == "unsaved"
    path = model.save(tmp_path / "m.srb")
    manifest = read_manifest(path)
    saved = model_identity(manifest, "ab" * 32)
    assert saved["model_version"] == manifest["created_utc"] == saved["created_utc"]
    assert saved["model_id"].endswith("-" + "ab" * 6)
    assert saved["saved_by"].startswith(sr.__version__ + "+bundle.")


def test_warnings_are_structured_until_joined(model, cohort):
    from spinerisk.reference import input_warning_lists, input_warnings

    records = cohort.head(40).copy()
    records.loc[records.index[:3], "age_years"] = 104.0  # outside the training range
    checked = sr.validate(records, model.input_schema_)
    lists = input_warning_lists(model, checked)
    text = input_warnings(model, checked)
    assert any(len(e) > 0 for e in lists)
    assert all(isinstance(e, tuple) for e in lists)
    assert ["; ".join(e) for e in lists] == text.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        dicts = records.head(3).to_dict("records")
        structured = model._predict(dicts, warning_lists=True)
        joined = model.predict_risk(dicts)
    assert structured["warnings"].map("; ".join).tolist() == joined["warnings"].tolist()
    assert all("out_of_range:age_years=104" in e[0] for e in structured["warnings"])


def _cross_package_private_names() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        room = rel.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spinerisk."):
                target = node.module.split(".")[1]  # type: ignore[union-attr]
                if target == room:
                    continue
                for alias in node.names:
                    if not alias.name.startswith("_") or alias.name.startswith("__"):
                        continue
                    submodule = PACKAGE.joinpath(*node.module.split(".")[1:], alias.name)  # type: ignore[union-attr]
                    if submodule.with_suffix(".py").exists() or submodule.is_dir():
                        continue  # a module of that package (its public names are used)
                    found.append(f"{rel}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_no_step_reaches_into_another_steps_private_names():
    assert _cross_package_private_names() == []


def test_moved_names_keep_a_deprecated_alias_for_one_release():
    import spinerisk.models

    with pytest.warns(DeprecationWarning, match="use spinerisk.RiskModel"):
        alias = spinerisk.models.RiskModel
    assert alias is sr.RiskModel
    from spinerisk.distributed import fit_dask, score_dask
    from spinerisk.riskmodel import fit_dask as owner

    assert fit_dask is owner and callable(score_dask)
    with pytest.raises(AttributeError):
        spinerisk.models.NoSuchThing  # noqa: B018


def test_sample_size_takes_horizon_and_the_old_keyword_warns():
    from spinerisk.metrics import sample_size_adequacy

    rng = np.random.default_rng(0)
    event = rng.random(400) < 0.3
    time = rng.uniform(30, 900, 400)
    args = {"kind": "survival", "n_available": 400, "parameters": 8, "event": event, "time": time}
    new = sample_size_adequacy(**args, horizon=365.25)
    with pytest.warns(DeprecationWarning, match="use horizon="):
        old = sample_size_adequacy(**args, timepoint_days=365.25)
    assert new == old


def test_fitted_state_of_gated_and_interval_models_is_declared(cohort):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        model = sr.RiskModel(endpoint="collapse", backend="linear").fit(cohort)
        model.fit_intervals(cohort, n_resamples=2)
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    assert {"interval_models_", "interval_info_"} <= fitted <= set(FITTED_STATE)


def test_only_the_cli_imports_the_root_namespace():
    """``import spinerisk`` / ``from spinerisk import <name>`` loads the public namespace,
    which reaches every step: only the top of the house (the CLI) may use it; the steps
    import the module that owns a name (import-linter cannot see this: the root package is
    not one of its layers)."""
    steps = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()} - {"__pycache__"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("cli", "__init__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name == "spinerisk" for a in node.names):
                found.append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module == "spinerisk":
                if any(a.name not in steps for a in node.names):
                    found.append(f"{rel}:{node.lineno}")
    assert found == []


def _code_lines(path: Path, node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of code of a function: its lines less blank ones, comment-only ones and its
    docstring."""
    lines = path.read_text().splitlines()[node.lineno - 1 : node.end_lineno]
    body = node.body
    doc = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            doc = (body[0].end_lineno or body[0].lineno) - body[0].lineno + 1
    code = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    return len(code) - doc


def test_every_function_fits_on_a_screen():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(path, node)
                if n > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n})")
    assert long == []
