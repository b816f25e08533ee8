"""Writing a fitted RiskModel as a bundle."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.bundle._archive import SIGNATURE, check_trusted, key_from_env, signature
from spinerisk.bundle._format import (
    _FITTED,
    _KEEP,
    _MANIFEST,
    _PARAMS,
    _PLACEHOLDER,
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    GATE_MEMBER,
    INTERVAL_MEMBER,
    SCHEMA_PLACEHOLDER,
    _dumps_json,
    _feature_names_out,
    _frame_to_json,
    _ranges_to_json,
    _reference_to_json,
    _walk,
    fingerprint,
)
from spinerisk.exceptions import ArtifactError

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

_GATE_SETTINGS = ("gate_threshold_", "gate_warning_", "gate_red_flags_")


def save_bundle(
    model: RiskModel,
    path: str | os.PathLike[str],
    *,
    training_data: pd.DataFrame | None = None,
    sign_key_env: str | None = None,
) -> Path:
    """Write a fitted RiskModel to one bundle file.

    Parameters
    ----------
    model : RiskModel
        A fitted model using the default schema (:data:`spinerisk.SPINE_SCHEMA`).
    path : str or path-like
        Destination file (conventionally ``*.spinerisk``); overwritten atomically.
    training_data : DataFrame or None, default=None
        The cohort the model was fitted on. When given, a fingerprint of it (sha256 of
        the row hashes, columns and dtypes) is stored in the manifest; the model does
        not keep its training records, so without it the fingerprint is null. The data
        are not checked against the model.
    sign_key_env : str or None, default=None
        Name of an environment variable holding a secret key (at least 32 bytes). The
        manifest, which holds the sha256 of every other member, is then signed with
        HMAC-SHA256 under that key (member ``signature.json``); load with
        ``load_bundle(path, verify_key_env=...)`` to require the signature. The key
        never enters the bundle, the command line or a message.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ArtifactError
        If the model's schema has a row rule written as Python code (a bundle stores
        declarations, not code), has a parameter that is not plain data, holds a type
        outside :data:`TRUSTED_TYPES`, or the signing key is missing or too short.

    Notes
    -----
    A model bound to a gate (``gate_``, a fitted binary RiskModel, with
    ``gate_threshold_``, ``gate_warning_`` and ``gate_red_flags_``) stores the gate as a
    nested bundle (member ``gate.srb``, hashed in the manifest like every member) and
    the three settings in the manifest; :func:`load_bundle` checks the nested bundle
    the same way and restores all four attributes. A model with bootstrap refits
    (``RiskModel.fit_intervals``) stores each refit as a nested bundle (members
    ``intervals/<i>.srb``) and ``interval_info_`` as ``manifest["intervals"]``.

    See Also
    --------
    load_bundle, read_manifest

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import spinerisk as sr
    >>> from spinerisk.bundle import load_bundle, save_bundle
    >>> cohort = sr.make_spine_cohort(600, seed=0)
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_bundle(model, pathlib.Path(tmp) / "nonunion.spinerisk")
    ...     loaded = load_bundle(path)
    >>> records = cohort.head(2)  # patients the nonunion model is meant for
    >>> before = model.predict_risk(records)["risk_183d"]
    >>> after = loaded.predict_risk(records)["risk_183d"]
    >>> bool(np.array_equal(before, after))
    True
    """
    path = Path(path)
    key = None if sign_key_env is None else key_from_env(sign_key_env, "sign the bundle")
    data = _bundle_bytes(model, training_data, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _bundle_bytes(
    model: RiskModel, training_data: pd.DataFrame | None, key: bytes | None, *, nested: bool = False
) -> bytes:
    """The bytes of a bundle file holding ``model`` (signed when ``key`` is given)."""
    _check_storable(model, nested)
    schema_data = _check_schema(model.schema_)
    split = _Members(model)
    parts = _dump_parts(model, split)
    members = split.members
    gate = _gate(model, key, nested)
    if gate is not None:
        members[GATE_MEMBER] = gate.pop("bytes")
    intervals = _intervals(model, key, nested)
    if intervals is not None:
        members.update(intervals.pop("bytes"))
    manifest = _manifest(model, parts, split.boosters, split.frames, training_data, schema_data)
    manifest["gate"] = gate
    if intervals is not None:  # absent, not null, without refits: older readers agree
        manifest["intervals"] = intervals
    manifest["members"] = {n: hashlib.sha256(b).hexdigest() for n, b in sorted(members.items())}
    return _zip(_dumps_json(manifest), members, key)


def _check_storable(model: RiskModel, nested: bool) -> None:
    """A fitted risk model whose fitted attributes this bundle format stores."""
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.models._state import is_risk_model

    if not is_risk_model(model):
        what = "a gate" if nested else "save_bundle"
        raise TypeError(f"{what} needs a spinerisk RiskModel; got {type(model).__name__}.")
    check_is_fitted(model, "estimator_")
    unknown = sorted(k for k in vars(model) if k.endswith("_") and k not in _FITTED)
    if unknown:
        raise ArtifactError(
            f"RiskModel has fitted attribute(s) {unknown} that bundle format "
            f"{BUNDLE_FORMAT_VERSION} does not store; update spinerisk.bundle."
        )


class _Members:
    """The bundle's members, and the swap that takes a model part's XGBoost boosters and
    DataFrames out into members of their own (JSON) and its schema out altogether (the
    manifest holds it), leaving placeholders for skops."""

    def __init__(self, model: RiskModel) -> None:
        self.schema = model.schema_
        self.members: dict[str, bytes] = {}
        self.boosters: list[str] = []
        self.frames: list[str] = []

    def __call__(self, value: Any) -> Any:
        xgb = sys.modules.get("xgboost")
        if xgb is not None and isinstance(value, xgb.Booster):
            name = f"boosters/{len(self.boosters)}.json"
            self.members[name] = bytes(value.save_raw(raw_format="json"))
            self.boosters.append(name)
            return f"{_PLACEHOLDER}booster:{len(self.boosters) - 1}"
        if isinstance(value, pd.DataFrame):
            name = f"frames/{len(self.frames)}.json"
            self.members[name] = _dumps_json(_frame_to_json(value))
            self.frames.append(name)
            return f"{_PLACEHOLDER}frame:{len(self.frames) - 1}"
        if _is_schema(value):
            if value != self.schema:
                raise ArtifactError(
                    f"A part of the model holds schema {value.name!r}, not the model's "
                    f"schema {self.schema.name!r}; refit the model."
                )
            return SCHEMA_PLACEHOLDER  # restored to the manifest's schema at load
        return _KEEP


def _dump_parts(model: RiskModel, split: _Members) -> dict[str, str | None]:
    """``features_`` and ``estimator_`` as skops members (None for an absent part), their
    boosters and frames swapped out by ``split`` for the dump and put back afterwards."""
    import skops.io as sio

    parts: dict[str, str | None] = {}
    undo: list[tuple[Callable[[Any, Any], None], Any, Any]] = []
    try:
        for attr in ("features_", "estimator_"):
            obj = getattr(model, attr)
            if obj is None:
                parts[attr] = None
                continue
            replaced = split(obj)
            if replaced is not _KEEP:
                raise ArtifactError(f"RiskModel.{attr} is a {type(obj).__name__}; cannot store.")
            _walk(obj, split, undo, set())
            try:
                data = sio.dumps(obj)
            except (TypeError, ValueError, AttributeError) as exc:
                raise ArtifactError(
                    f"RiskModel.{attr} cannot be written with skops: {exc}"
                ) from exc
            name = f"{attr.rstrip('_')}.skops"
            check_trusted(data, name, action="save")
            split.members[name] = data
            parts[attr] = name
    finally:
        for setter, key_, old in reversed(undo):
            setter(key_, old)
    return parts


def _zip(payload: bytes, members: dict[str, bytes], key: bytes | None) -> bytes:
    """The bundle file: the manifest, its signature when ``key`` is given, the members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_MANIFEST, payload)
        if key is not None:
            zf.writestr(SIGNATURE, signature(payload, key))
        for name, data in sorted(members.items()):
            # a nested bundle is compressed already
            nested_bundle = name == GATE_MEMBER or name.endswith(".srb")
            method = zipfile.ZIP_STORED if nested_bundle else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
    return buffer.getvalue()


def _gate(model: RiskModel, key: bytes | None, nested: bool) -> dict[str, Any] | None:
    """The bound gate as bundle bytes plus its settings, checked; None without one."""
    gate = getattr(model, "gate_", None)
    if gate is None:
        return None
    if nested:
        raise ArtifactError("The gate has a gate of its own; chains of gates cannot be saved.")
    if gate is model:
        raise ArtifactError("A model cannot be its own gate.")
    missing = [a for a in _GATE_SETTINGS if not hasattr(model, a)]
    if missing:
        raise ArtifactError(f"The model has a gate_ but not {missing}; bind the gate again.")
    threshold, warning = model.gate_threshold_, model.gate_warning_
    red_flags = model.gate_red_flags_
    valid = all(
        isinstance(p, int | float) and not isinstance(p, bool) and 0 < float(p) < 1
        for p in (threshold, warning)
    )
    if not valid or float(warning) > float(threshold):
        raise ArtifactError(
            f"The gate's settings are not probabilities with warning <= threshold: "
            f"warning={warning!r}, threshold={threshold!r}."
        )
    if red_flags is not None and not isinstance(red_flags, str):
        raise ArtifactError(f"gate_red_flags_ must be an expression or None; got {red_flags!r}.")
    return {
        "member": GATE_MEMBER,
        "threshold": float(threshold),
        "warning": float(warning),
        "red_flags": red_flags,
        "bytes": _bundle_bytes(gate, None, key, nested=True),
    }


def _intervals(model: RiskModel, key: bytes | None, nested: bool) -> dict[str, Any] | None:
    """The bootstrap refits as nested bundles plus their settings; None without them."""
    from spinerisk.models._interval import INTERVAL_METHODS, MAX_RESAMPLES

    models = getattr(model, "interval_models_", None)
    if models is None:
        return None
    if nested:
        raise ArtifactError("A bootstrap refit holds refits of its own; it cannot be saved.")
    info = getattr(model, "interval_info_", None)
    if not isinstance(models, list) or not isinstance(info, dict):
        raise ArtifactError(
            "The model's interval_models_ or interval_info_ is malformed; call fit_intervals again."
        )
    keys = ("n_resamples", "n_fitted", "random_state", "method")
    settings: dict[str, Any] = {k: info.get(k) for k in keys}
    counts = (settings["n_resamples"], settings["n_fitted"], settings["random_state"])
    if (
        not all(isinstance(v, int) and not isinstance(v, bool) for v in counts)
        or settings["n_fitted"] != len(models)
        or not 2 <= len(models) <= settings["n_resamples"] <= MAX_RESAMPLES
        or settings["method"] not in INTERVAL_METHODS
    ):
        raise ArtifactError(
            f"The model's interval settings {settings} do not match its "
            f"{len(models)} refits; call fit_intervals again."
        )
    blobs: dict[str, bytes] = {}
    for i, refit in enumerate(models):
        if refit is model or getattr(refit, "gate_", None) is not None:
            raise ArtifactError("A bootstrap refit must be a plain fitted RiskModel.")
        blobs[INTERVAL_MEMBER.format(i)] = _bundle_bytes(refit, None, key, nested=True)
    return {**settings, "members": list(blobs), "bytes": blobs}


def _is_schema(value: Any) -> bool:
    from spinerisk.schema._spec import Schema

    return isinstance(value, Schema)


def _check_schema(schema: Any) -> dict[str, Any]:
    """The schema's data form, checked to give back an equal schema."""
    from spinerisk.schema._files import schema_from_dict, schema_to_dict

    try:
        data = schema_to_dict(schema)
    except ValueError as exc:
        raise ArtifactError(f"The model cannot be saved: {exc}") from None
    if schema_from_dict(json.loads(json.dumps(data))) != schema:  # pragma: no cover - guard
        raise ArtifactError(
            f"Schema {schema.name!r} does not survive its data form; please report this bug."
        )
    return data


def _manifest(
    model: RiskModel,
    parts: dict[str, str | None],
    boosters: list[str],
    frames: list[str],
    training_data: pd.DataFrame | None,
    schema_data: dict[str, Any],
) -> dict[str, Any]:
    from spinerisk._version import library_versions
    from spinerisk.endpoints import ENDPOINTS, endpoint_to_dict

    params = model.get_params(deep=False)
    params = {k: params[k] for k in _PARAMS}
    params["schema"] = None if params["schema"] is None else "manifest"
    ep = params["endpoint"]
    builtin = isinstance(ep, str) and ep in ENDPOINTS
    params["endpoint"] = ep if builtin else endpoint_to_dict(model.endpoint_)
    if params["horizons"] is not None:
        params["horizons"] = [float(h) for h in params["horizons"]]
    for key in ("cv", "random_state", "n_jobs"):
        if isinstance(params[key], np.integer):
            params[key] = int(params[key])
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"RiskModel parameters are not plain data: {exc}") from exc

    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": library_versions(),
        "model": {"class": "spinerisk.RiskModel", "params": params},
        "endpoint": endpoint_to_dict(model.endpoint_),
        "backend": model.backend_,
        "horizons": [float(h) for h in model.horizons_],
        "schema": schema_data,
        "id_field": model.id_field_,
        "feature_names_out": _feature_names_out(model),
        "training_ranges": _ranges_to_json(model.training_ranges_),
        "reference": _reference_to_json(getattr(model, "reference_", None)),
        "n_train": int(model.n_train_),
        "n_excluded": int(model.n_excluded_),
        "selection": None if model.selection_ is None else _frame_to_json(model.selection_),
        "selection_reason": model.selection_reason_,
        "training_data_fingerprint": fingerprint(training_data),
        "lineage": _reference_to_json(getattr(model, "lineage_", None)),  # plain JSON dict
        "parts": {"features": parts["features_"], "estimator": parts["estimator_"]},
        "boosters": boosters,
        "frames": frames,
    }
