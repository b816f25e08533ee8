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
  Cox model), as plain JSON;
- ``gate.srb`` (a model bound to a gate only): the gate model as a whole nested bundle,
  checked like the outer one; its threshold, warning level and red flags are in the
  manifest;
- ``signature.json`` (signed bundles only): HMAC-SHA256 of ``manifest.json`` under a key
  from an environment variable.

:func:`load_bundle` checks the whole archive before it builds any object, in bounded
memory (members are streamed and counted, never trusted by their headers): size and
member limits, manifest (strict JSON), format version, member list, sha256 of each
member, the types each skops member would create, and the manifest's parts against
each other. After building, each part is checked to be the fitted object it claims to
be and to agree with the manifest. Any failure raises :class:`ArtifactError`.

What protects what:

- the member sha256 values in the manifest: corruption and edits of one member;
- the cross-checks: a manifest edited to say something its fitted parts do not do
  (horizons, ranges, endpoint, backend, parameters, feature names);
- ``sha256=`` (from a trusted register): any change to the file at all, by anyone;
- a signature (``save_bundle(..., sign_key_env=...)``, ``load_bundle(...,
  verify_key_env=...)``): any change after a holder of the key saved it, without a
  register of hashes.

:func:`require_bundle` requires a sha256 or signature for every bundle read in a block
(the ``--sha256`` and ``--verify-key-env`` options of ``spinerisk score`` and
``serve``). Load bundles only from trusted storage.
"""

from spinerisk.bundle._archive import require_bundle
from spinerisk.bundle._format import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    TRUSTED_TYPES,
    bundle_id,
    model_identity,
)
from spinerisk.bundle._load import load_bundle, read_manifest
from spinerisk.bundle._save import save_bundle
from spinerisk.exceptions import ArtifactError

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ArtifactError",
    "bundle_id",
    "load_bundle",
    "model_identity",
    "read_manifest",
    "require_bundle",
    "save_bundle",
]
