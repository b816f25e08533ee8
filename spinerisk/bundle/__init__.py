"""Save a fitted :class:`~spinerisk.RiskModel` as one file and load it back safely.

A bundle is a zip archive with

- ``manifest.json``: what the model is (format name and version, library versions,
  endpoint, backend, schema spec, feature names, training ranges, cohort size, backend
  selection, creation time) and the sha256 of every other member;
- ``features.skops`` and ``estimator.skops``: the fitted parts, written with
  :func:`skops.io.dumps` and read back with an explicit allow-list
  (:data:`TRUSTED_TYPES`), never with pickle or joblib;
- ``boosters/<i>.json``: raw :class:`xgboost.Booster` objects (the boosted Cox and
  AFT models) in XGBoost's native JSON format;
- ``frames/<i>.json``: numeric tables held by fitted parts (the lifelines summary of a
  Cox model), as plain JSON.

:func:`load_bundle` checks the whole archive before it builds any object: manifest,
format version, member list, sha256 of each member and the types each skops member
would create. Any failure raises :class:`ArtifactError`.

The sha256 values protect against corruption and accidental edits, not against someone
who rewrites both a member and the manifest; pass the sha256 of the whole file (from a
trusted register) to ``load_bundle(path, sha256=...)`` for that. Load bundles only from
trusted storage.
"""

from spinerisk.bundle._format import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, TRUSTED_TYPES
from spinerisk.bundle._load import load_bundle, read_manifest
from spinerisk.bundle._save import save_bundle
from spinerisk.exceptions import ArtifactError

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ArtifactError",
    "load_bundle",
    "read_manifest",
    "save_bundle",
]
