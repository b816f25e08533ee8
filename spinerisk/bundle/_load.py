"""Checking a bundle and building the RiskModel from it.

Order of the checks (each refuses with :class:`ArtifactError`):

1. the file: a regular file of bounded size, its sha256 when one is required;
2. the archive, in bounded memory (:mod:`spinerisk.bundle._archive`): end record,
   member count, real sizes counted while streaming, compression methods;
3. the signature of the manifest when a key is required;
4. the manifest: strict JSON (bounded nesting, no NaN, no repeated key), its fields,
   format version, member list and the sha256 of every member;
5. every skops member creates only :data:`TRUSTED_TYPES` (its own zip bounded first);
6. the manifest against itself: parameters, endpoint, backend, horizons, ranges,
   training reference, gate settings (:mod:`spinerisk.bundle._checks`);
7. a nested gate bundle and nested bootstrap-refit bundles, through steps 2-6 (a
   refit must be a model of the same endpoint, schema and horizons);
8. only then are objects built; each part is checked to be the fitted object of its
   backend, to agree with the manifest, and to predict for a probe record.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spinerisk.bundle import _archive
from spinerisk.bundle._checks import check_gate_settings, check_model, check_state
from spinerisk.bundle._format import (
    _ENDPOINT_KEYS,
    _KEEP,
    _MANIFEST,
    _PARAMS,
    _PLACEHOLDER,
    _PLACEHOLDER_RE,
    _SKOPS_ERRORS,
    BUNDLE_FORMAT,
    GATE_MEMBER,
    INTERVAL_MEMBER,
    INTERVAL_MEMBER_RE,
    MAX_MANIFEST_BYTES,
    READABLE_FORMAT_VERSIONS,
    SCHEMA_PLACEHOLDER,
    TRUSTED_TYPES,
    _frame_from_json,
    _loads_json,
    _ranges_from_json,
    _reference_from_json,
    _schema_to_json,
    _walk,
)
from spinerisk.exceptions import ArtifactError
from spinerisk.models._state import set_fitted

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel


def read_manifest(
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    verify_key_env: str | None = None,
) -> dict[str, Any]:
    """Check a bundle and return its manifest, without building any object.

    Runs every check of :func:`load_bundle` that needs no fitted object: the file's
    sha256 and signature (when required), the archive read in bounded memory, the
    manifest (strict JSON, supported format version, its members and their sha256,
    its parts consistent with each other), that every skops member creates only
    :data:`TRUSTED_TYPES`, and the same for a nested gate bundle.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_bundle`.
    sha256 : str or None, default=None
        Expected sha256 (hex) of the whole file, from a trusted register.
    verify_key_env : str or None, default=None
        Name of the environment variable holding the key the bundle was signed with
        (``save_bundle(..., sign_key_env=...)``); the signature is then required.

    Returns
    -------
    dict
        The manifest (see the module description).

    Raises
    ------
    ArtifactError
        If any check fails.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import spinerisk as sr
    >>> from spinerisk.bundle import read_manifest, save_bundle
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(
    ...     sr.make_spine_cohort(600, seed=0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     manifest = read_manifest(save_bundle(model, pathlib.Path(tmp) / "m.spinerisk"))
    >>> manifest["format"], manifest["backend"], manifest["endpoint"]["kind"]
    ('spinerisk-bundle', 'linear', 'binary')
    """
    path = Path(path)
    trust = _archive.required(sha256, verify_key_env)
    return _read_checked(_archive.read_file(path), str(path), trust).manifest


def load_bundle(
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    verify_key_env: str | None = None,
    model_class: type | None = None,
) -> RiskModel:
    """Load a RiskModel written by :func:`save_bundle` (``sr.load`` calls this).

    Every check of :func:`read_manifest` runs before any object is built; skops members
    are loaded with :data:`TRUSTED_TYPES` only and XGBoost boosters from their native
    JSON. Each built part is then checked to be the fitted object of the model's
    backend, to agree with the manifest (feature names, predictors, spline terms,
    seeds, booster parameters) and to predict a probability for a probe record made
    from the training ranges. The loaded model predicts exactly what the saved one did.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_bundle`. Load only from trusted storage.
    sha256 : str or None, default=None
        Expected sha256 (hex) of the whole file, from a trusted register. Proves the
        file is the one registered, whoever could write to its storage.
    verify_key_env : str or None, default=None
        Name of the environment variable holding the HMAC key the bundle was signed
        with; the signature is then required. Proves the bundle was written by a
        holder of the key and not changed since.
    model_class : type or None, default=None
        The class to build (:func:`spinerisk.load` passes :class:`spinerisk.RiskModel`;
        bundles never import it). None, from outside ``sr.load``, is deprecated and
        looks up the registered class.

    Returns
    -------
    RiskModel
        Fitted, with its schema, endpoint, training ranges and reference (and a bound
        gate model with its settings, and its bootstrap refits for risk intervals,
        when it was saved with them).

    Raises
    ------
    ArtifactError
        If the file is not a spinerisk bundle, is truncated or too large, has another
        format version, has a member whose sha256 differs from the manifest, would
        create a type outside :data:`TRUSTED_TYPES`, has a manifest that disagrees with
        itself or with the fitted parts, or a part that is not the fitted object it
        claims to be.

    Warns
    -----
    UserWarning
        When the bundle was written with other versions of spinerisk or of the libraries
        the model uses; predictions may then differ.

    See Also
    --------
    save_bundle, read_manifest, require_bundle

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from spinerisk.bundle import load_bundle
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     bad = pathlib.Path(tmp) / "model.spinerisk"
    ...     _ = bad.write_bytes(b"not a zip")
    ...     load_bundle(bad)
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.ArtifactError: ... is not a spinerisk bundle (not a zip file; truncated or a different format).
    """  # noqa: E501
    path = Path(path)
    trust = _archive.required(sha256, verify_key_env)
    checked = _read_checked(_archive.read_file(path), str(path), trust)
    _warn_versions(checked.manifest)
    if model_class is None:
        import warnings

        from spinerisk.models._state import model_class as registered

        warnings.warn(
            "spinerisk.bundle.load_bundle(path) without model_class is deprecated and will "
            "be removed in the next release; use spinerisk.load(path).",
            DeprecationWarning,
            stacklevel=2,
        )
        model_class = registered()
    return _build(checked, model_class)


@dataclass
class _Checked:
    """A bundle whose every check before building objects has passed."""

    label: str
    manifest: dict[str, Any]
    members: dict[str, bytes]
    state: dict[str, Any]
    gate: _Checked | None
    intervals: list[_Checked] | None = None


def _read_checked(
    raw: bytes, label: str, trust: _archive.Trust, *, nested: bool = False
) -> _Checked:
    """Run every check that needs no fitted object (steps 1-7 of the module doc)."""
    digest = hashlib.sha256(raw).hexdigest()
    for expected in trust.sha256:
        if digest != expected:
            raise ArtifactError(
                f"{label}: the file's sha256 differs from the expected {expected} (it is "
                f"{digest}): not the registered file."
            )
    keys = [(env, _archive.key_from_env(env, f"verify {label}")) for env in trust.key_envs]
    manifest, members = _read_members(raw, label, keys)
    state = _checked_state(manifest, members, label)
    gate, intervals = manifest.get("gate"), manifest.get("intervals")
    if nested and gate is not None:
        raise ArtifactError(f"{label}: a gate's bundle holds a gate of its own.")
    # nested bundles get the same checks; a signature is required of them too (the
    # outer sha256 is not)
    inner = _archive.Trust(key_envs=trust.key_envs)
    checked_gate = None
    if gate is not None:
        gate_label = f"{label} (gate {gate['member']})"
        checked_gate = _read_checked(members[gate["member"]], gate_label, inner, nested=True)
        check_gate_settings(gate, state, checked_gate.state, label)
    checked_intervals = None
    if intervals is not None:
        if nested:
            raise ArtifactError(f"{label}: a nested bundle holds bootstrap refits of its own.")
        checked_intervals = []
        for name in intervals["members"]:
            refit = _read_checked(members[name], f"{label} (refit {name})", inner, nested=True)
            _check_refit(refit.state, state, f"{label} (refit {name})")
            checked_intervals.append(refit)
    return _Checked(label, manifest, members, state, checked_gate, checked_intervals)


def _read_members(
    raw: bytes, label: str, keys: list[tuple[str, bytes]]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest, its signature checked under every key, and the members it lists,
    each checked against its sha256 (steps 2-4)."""
    archive = _archive.Archive(
        raw,
        label,
        limits={_MANIFEST: MAX_MANIFEST_BYTES, _archive.SIGNATURE: 4096},
    )
    try:
        names = archive.names
        if _MANIFEST not in names:
            raise ArtifactError(f"{label} is not a spinerisk bundle (no {_MANIFEST}).")
        payload = archive.read(_MANIFEST)
        sig = archive.read(_archive.SIGNATURE) if _archive.SIGNATURE in names else None
        for env, key in keys:
            _archive.verify_signature(sig, payload, key, label, env)
        manifest = _loads_json(payload, _MANIFEST)
        _check_manifest(manifest, label)
        listed = manifest["members"]
        present = set(names) - {_MANIFEST, _archive.SIGNATURE}
        if set(listed) != present:
            extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
            raise ArtifactError(
                f"{label}: members differ from the manifest (unlisted {extra}, missing {missing})."
            )
        for name in sorted(listed):
            if archive.sha256[name] != listed[name]:
                raise ArtifactError(
                    f"{label}: member {name!r} was modified or corrupted (sha256 differs "
                    "from the manifest)."
                )
        referenced = _referenced(manifest, label)
        members = {name: archive.read(name) for name in referenced}
    finally:
        archive.close()
    return manifest, members


def _referenced(manifest: dict[str, Any], label: str) -> list[str]:
    """The members the manifest's parts, boosters, frames, gate and refits name: exactly
    the members it lists, each of a known kind."""
    gate = manifest.get("gate")
    referenced = [p for p in manifest["parts"].values() if p is not None]
    referenced += manifest["boosters"] + manifest["frames"]
    referenced += [] if gate is None else [gate["member"]]
    intervals = manifest.get("intervals")
    nested_names = [] if intervals is None else list(intervals["members"])
    referenced += nested_names
    if sorted(referenced) != sorted(manifest["members"]):
        raise ArtifactError(f"{label}: the manifest's parts do not match its members.")
    for name in referenced:
        kind = "gate" if gate is not None and name == gate["member"] else name
        kind = "gate" if name in nested_names else kind
        if not (kind == "gate" or name.endswith((".skops", ".json"))):
            raise ArtifactError(f"{label}: member {name!r} has an unknown kind.")
    return referenced


def _checked_state(
    manifest: dict[str, Any], members: dict[str, bytes], label: str
) -> dict[str, Any]:
    """The skops members' types (step 5), then the state the manifest describes,
    checked against itself (step 6)."""
    for name in manifest["parts"].values():
        if name is not None:
            _archive.check_trusted(members[name], name, action="load")
    try:  # the schema, endpoint, ranges, parameters; then their agreement
        state = _state_from_manifest(manifest)
        check_state(manifest, state, label)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{label}: the manifest is malformed: {exc!r}") from exc
    if manifest["parts"]["estimator"] is None:
        raise ArtifactError(f"{label}: the bundle has no fitted estimator.")
    return state


def _check_refit(refit: dict[str, Any], state: dict[str, Any], label: str) -> None:
    """A bootstrap refit predicts the model's endpoint, on its schema and horizons."""
    same = (
        refit["endpoint_"] == state["endpoint_"]
        and refit["schema_"] == state["schema_"]
        and refit["horizons_"] == state["horizons_"]
        and refit["params"] == state["params"]
    )
    if not same:
        raise ArtifactError(
            f"{label}: the refit is not a model of the same endpoint, schema, horizons "
            "and parameters as the bundle's model."
        )


def _build(checked: _Checked, model_class: type) -> RiskModel:
    """Build the model from a checked bundle, then check what was built (step 8)."""
    import skops.io as sio

    label, manifest, members = checked.label, checked.manifest, checked.members
    state = dict(checked.state)
    frames = [_frame_from_json(_loads_json(members[n], n)) for n in manifest["frames"]]
    boosters = [_load_booster(members[n], n) for n in manifest["boosters"]]

    # every member has been checked; build the fitted parts
    used: set[tuple[str, int]] = set()
    schema = state["schema_"]

    def restore(value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith(_PLACEHOLDER)):
            return _KEEP
        if value == SCHEMA_PLACEHOLDER and manifest["format_version"] >= 4:
            return schema  # every part shares the model's schema
        m = _PLACEHOLDER_RE.match(value)
        pool = boosters if m and m.group(1) == "booster" else frames
        if (
            m is None
            or m.group(1) == "schema"
            or int(m.group(2)) >= len(pool)
            or (m.group(1), int(m.group(2))) in used
        ):
            raise ArtifactError(f"{label}: unknown or repeated reference {value!r}.")
        used.add((m.group(1), int(m.group(2))))
        return pool[int(m.group(2))]

    parts: dict[str, Any] = {}
    for key in ("features", "estimator"):
        name = manifest["parts"][key]
        if name is None:
            parts[key] = None
            continue
        try:
            obj = sio.loads(members[name], trusted=sorted(TRUSTED_TYPES))
        except (*_SKOPS_ERRORS, RecursionError) as exc:  # UntrustedTypes... is a TypeError
            raise ArtifactError(f"{label}: member {name!r} cannot be loaded: {exc}") from exc
        _walk(obj, restore, [], set())
        parts[key] = obj
    if len(used) != len(boosters) + len(frames):
        raise ArtifactError(f"{label}: the bundle has boosters or tables that nothing uses.")

    model = model_class(**state.pop("params"))
    set_fitted(model, **state, features_=parts["features"], estimator_=parts["estimator"])
    check_model(model, manifest, label)
    if checked.gate is not None:
        settings = manifest["gate"]
        set_fitted(
            model,
            gate_=_build(checked.gate, model_class),
            gate_threshold_=float(settings["threshold"]),
            gate_warning_=float(settings["warning"]),
            gate_red_flags_=settings["red_flags"],
        )
    if checked.intervals is not None:
        settings = manifest["intervals"]
        set_fitted(
            model,
            interval_models_=[_build(refit, model_class) for refit in checked.intervals],
            interval_info_={k: v for k, v in settings.items() if k != "members"},
        )
    return model


def _check_manifest(manifest: Any, path: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ArtifactError(f"{path} is not a spinerisk bundle (its manifest is foreign).")
    version = manifest.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
        readable = " and ".join(str(v) for v in READABLE_FORMAT_VERSIONS)
        raise ArtifactError(
            f"{path} has bundle format version {version!r}; this spinerisk reads versions "
            f"{readable}. Load it with the spinerisk version that wrote "
            f"it ({manifest.get('versions', {}).get('spinerisk')!r}) or refit the model."
        )
    expected = {
        "members": dict,
        "parts": dict,
        "boosters": list,
        "frames": list,
        "endpoint": dict,
        "schema": dict,
        "model": dict,
        "training_ranges": dict,
        "horizons": list,
        "backend": str,
        "id_field": str,
        "n_train": int,
        "n_excluded": int,
        "selection_reason": str,
    }
    for key, kind in expected.items():
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{path}: manifest field {key!r} is missing or malformed.")
    members = manifest["members"]
    if not all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in members.values()):
        raise ArtifactError(f"{path}: manifest member hashes are malformed.")
    parts = manifest["parts"]
    if set(parts) != {"features", "estimator"} or not all(
        p is None or isinstance(p, str) for p in parts.values()
    ):
        raise ArtifactError(f"{path}: manifest parts are malformed.")
    if not all(isinstance(n, str) for n in manifest["boosters"] + manifest["frames"]):
        raise ArtifactError(f"{path}: manifest boosters or frames are malformed.")
    gate = manifest.get("gate")
    if gate is not None and (
        not isinstance(gate, dict)
        or set(gate) != {"member", "threshold", "warning", "red_flags"}
        or gate["member"] != GATE_MEMBER
        or manifest["format_version"] < 4
    ):
        raise ArtifactError(f"{path}: manifest gate is malformed.")
    if "intervals" in manifest:
        _check_intervals_manifest(manifest["intervals"], manifest["format_version"], path)


def _check_intervals_manifest(intervals: Any, version: Any, path: str) -> None:
    """``manifest["intervals"]``: the refits' members and settings, well formed."""
    from spinerisk.models._interval import INTERVAL_METHODS, MAX_RESAMPLES

    keys = {"members", "n_resamples", "n_fitted", "random_state", "method"}
    ok = isinstance(intervals, dict) and set(intervals) == keys and version >= 4
    if ok:
        members = intervals["members"]
        counts = [intervals[k] for k in ("n_resamples", "n_fitted", "random_state")]
        ok = (
            isinstance(members, list)
            and all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
            and members == [INTERVAL_MEMBER.format(i) for i in range(len(members))]
            and all(INTERVAL_MEMBER_RE.match(m) for m in members)
            and intervals["n_fitted"] == len(members)
            and 2 <= len(members) <= intervals["n_resamples"] <= MAX_RESAMPLES
            and intervals["method"] in INTERVAL_METHODS
        )
    if not ok:
        raise ArtifactError(f"{path}: manifest intervals are malformed.")


def _warn_versions(manifest: dict[str, Any]) -> None:
    from spinerisk._version import library_versions

    saved = manifest.get("versions") or {}
    now = library_versions()
    differ = [f"{k} {saved.get(k)} -> {v}" for k, v in now.items() if saved.get(k) != v]
    if differ:
        warnings.warn(
            "The bundle was written with other library versions ("
            + ", ".join(differ)
            + "); check its predictions before use.",
            UserWarning,
            stacklevel=3,
        )


def _load_booster(blob: bytes, name: str) -> Any:
    import xgboost as xgb

    model = _loads_json(blob, name)
    if not isinstance(model, dict) or "learner" not in model:
        raise ArtifactError(f"Bundle member {name!r} is not an XGBoost JSON model.")
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(blob))
    except xgb.core.XGBoostError as exc:
        raise ArtifactError(f"Bundle member {name!r} is not a valid XGBoost model.") from exc
    return booster


def _state_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """RiskModel parameters and fitted attributes (except the parts) from the manifest."""
    if manifest["format_version"] >= 4:
        return _state_v4(manifest)
    return _state_v3(manifest)


def _state_v4(manifest: dict[str, Any]) -> dict[str, Any]:
    """Version 4: the schema and endpoint declarations are in the manifest, as data."""
    from spinerisk.endpoints import ENDPOINTS, endpoint_from_dict
    from spinerisk.schema._files import SchemaFileError, schema_from_dict
    from spinerisk.schema.default import SPINE_SCHEMA

    try:
        schema = schema_from_dict(manifest["schema"], source="the bundle's schema")
    except SchemaFileError as exc:
        raise ArtifactError(f"The bundle's schema is invalid: {exc}") from None
    if schema == SPINE_SCHEMA:
        schema = SPINE_SCHEMA

    def endpoint(spec: Any) -> Any:
        try:
            ep = endpoint_from_dict(spec, source="the bundle's endpoint", schema=schema)
        except SchemaFileError as exc:
            raise ArtifactError(f"The bundle's endpoint is invalid: {exc}") from None
        builtin = ENDPOINTS.get(ep.name)
        return builtin if builtin == ep else ep

    params = dict(manifest["model"].get("params") or {})
    if set(params) != set(_PARAMS):
        raise ArtifactError("The bundle's model parameters are malformed.")
    if isinstance(params["endpoint"], str):
        if params["endpoint"] not in ENDPOINTS:
            raise ArtifactError("The bundle's model parameters name an unknown endpoint.")
    else:
        params["endpoint"] = endpoint(params["endpoint"])
    if params["schema"] not in (None, "manifest"):
        raise ArtifactError("The bundle's schema parameter is malformed.")
    params["schema"] = None if params["schema"] is None else schema
    state = _common_state(manifest, endpoint(manifest["endpoint"]), params)
    state["schema_"] = schema
    if manifest["id_field"] != schema.id_field:
        raise ArtifactError("The bundle's id field is not its schema's id field.")
    return state


def _common_state(manifest: dict[str, Any], ep: Any, params: dict[str, Any]) -> dict[str, Any]:
    lineage = manifest.get("lineage")  # an updated model's history (spinerisk.update)
    if lineage is not None and not isinstance(lineage, dict):
        raise ArtifactError("manifest lineage is malformed (expected an object).")
    return {
        **({"lineage_": lineage} if lineage is not None else {}),
        "params": params,
        "endpoint_": ep,
        "backend_": manifest["backend"],
        "horizons_": tuple(float(h) for h in manifest["horizons"]),
        "selection_": None
        if manifest.get("selection") is None
        else _frame_from_json(manifest["selection"]),
        "selection_reason_": manifest["selection_reason"],
        "training_ranges_": _ranges_from_json(manifest["training_ranges"]),
        "reference_": _reference_from_json(manifest.get("reference")),
        "n_train_": manifest["n_train"],
        "n_excluded_": manifest["n_excluded"],
        "id_field_": manifest["id_field"],
    }


def _state_v3(manifest: dict[str, Any]) -> dict[str, Any]:
    """Version 3: spine-schema models, the schema given as a summary."""
    from spinerisk.endpoints import ENDPOINTS, Endpoint
    from spinerisk.schema.default import SPINE_SCHEMA

    schema = manifest["schema"]
    current = _schema_to_json(SPINE_SCHEMA)
    if (schema.get("name"), schema.get("version")) != (current["name"], current["version"]):
        raise ArtifactError(
            f"The bundle was fitted with schema {schema.get('name')!r} version "
            f"{schema.get('version')!r}; this spinerisk has {current['name']!r} version "
            f"{current['version']!r}."
        )
    if schema.get("fields") != current["fields"]:
        changed = sorted(
            set(current["fields"]).symmetric_difference(schema.get("fields") or {})
            | {
                n
                for n, f in current["fields"].items()
                if (schema.get("fields") or {}).get(n, f) != f
            }
        )
        raise ArtifactError(
            f"The bundle's schema fields differ from this spinerisk's {current['name']!r} "
            f"version {current['version']}: {changed[:10]}."
        )

    def endpoint(spec: Any) -> Any:
        if not isinstance(spec, dict) or set(spec) != set(_ENDPOINT_KEYS):
            raise ArtifactError("The bundle's endpoint spec is malformed.")
        spec = dict(spec)
        try:
            spec["horizons"] = tuple(float(h) for h in spec["horizons"])
            spec["time_unit"] = "days"
            if spec["eligible_treatments"] is not None:
                spec["eligible_treatments"] = tuple(spec["eligible_treatments"])
            ep = Endpoint(**spec)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"The bundle's endpoint spec is invalid: {exc}") from exc
        builtin = ENDPOINTS.get(ep.name)
        return builtin if builtin == ep else ep

    params = dict(manifest["model"].get("params") or {})
    if set(params) != set(_PARAMS):
        raise ArtifactError("The bundle's model parameters are malformed.")
    if not isinstance(params["endpoint"], str):
        params["endpoint"] = endpoint(params["endpoint"])
    params["schema"] = None
    state = _common_state(manifest, endpoint(manifest["endpoint"]), params)
    state["schema_"] = SPINE_SCHEMA
    return state
