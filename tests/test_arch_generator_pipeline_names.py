"""Issue 17: code moved between modules keeps what users and saved bundles see.

The feature pipeline moved to ``spinerisk.features._pipeline``; a fitted pipeline still
names its functions as saved bundles do (``spinerisk.features.<name>``, the names the
bundle trusts), and the public import path still works.
"""

import skops.io as sio

from spinerisk.bundle import TRUSTED_TYPES
from spinerisk.datasets import make_spine_cohort
from spinerisk.features import make_feature_pipeline
from spinerisk.schema import validate


def test_fitted_pipeline_names_only_trusted_types():
    cohort = validate(make_spine_cohort(120, seed=3))
    for options in ({"spline_knots": 4}, {"encoding": "native"}):
        pipe = make_feature_pipeline(**options).fit(cohort)
        untrusted = set(sio.get_untrusted_types(data=sio.dumps(pipe)))
        spinerisk_types = {t for t in untrusted if t.startswith("spinerisk.")}
        assert spinerisk_types, "the pipeline holds spinerisk functions; none were found"
        assert spinerisk_types <= TRUSTED_TYPES, sorted(spinerisk_types - TRUSTED_TYPES)


def test_old_import_path_and_saved_names():
    import spinerisk.features as features

    for name in ("_continuous_columns", "_feature_name", "_other_numbers", "_one_hot_name"):
        func = getattr(features, name)
        assert func.__module__ == "spinerisk.features", name
        assert f"spinerisk.features.{name}" in TRUSTED_TYPES
