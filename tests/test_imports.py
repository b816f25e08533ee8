"""`import spinerisk` stays light, and the public API is exactly __all__."""

from __future__ import annotations

import json
import subprocess
import sys

import spinerisk

HEAVY = ["shap", "lifelines", "matplotlib", "fastapi", "dask", "xgboost", "lightgbm", "sksurv"]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_is_light():
    loaded = _modules_after("import spinerisk")
    assert not [m for m in HEAVY if m in loaded]
    assert "pandera" not in loaded and "sklearn" not in loaded


def test_validation_and_features_do_not_pull_heavy_libraries():
    loaded = _modules_after(
        "import spinerisk as sr\n"
        "c = sr.validate(sr.make_spine_cohort(50, seed=1))\n"
        "sr.make_feature_pipeline().fit_transform(c)"
    )
    assert "pandera" in loaded  # sanity: the code above really ran
    assert not [m for m in HEAVY if m in loaded]


def test_all_names_resolve_and_nothing_else_is_public():
    for name in spinerisk.__all__:
        assert getattr(spinerisk, name) is not None, name
    public = {n for n in dir(spinerisk) if not n.startswith("_")}
    # submodules that Python binds as attributes once imported are not API names
    submodules = {"schema", "io", "datasets", "features", "summary", "exceptions", "cli",
                  "endpoints", "models", "targets", "bundle", "metrics", "evaluation",
                  "explain", "scoring", "distributed", "fastpath", "api", "monitor"}  # fmt: skip
    assert public - submodules <= set(spinerisk.__all__)
    assert len(spinerisk.__all__) == len(set(spinerisk.__all__))


def test_submodules_are_reachable_as_attributes():
    assert spinerisk.monitor.drift is not None  # sr.monitor.drift(...) without an import
    assert spinerisk.scoring.score_file is spinerisk.score_file


def test_unknown_attribute_is_a_clear_error():
    try:
        spinerisk.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_version_and_typed_marker():
    from importlib.resources import files

    assert spinerisk.__version__.count(".") == 2
    assert files("spinerisk").joinpath("py.typed").is_file()
