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

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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

#: Value of ``manifest["format"]``.
BUNDLE_FORMAT = "spinerisk-bundle"

#: Version of the bundle layout; bundles of another version are refused. Version 2:
#: boosted binary models are calibrated on the booster's margin (``decision_function``)
#: and the manifest carries the training reference.
BUNDLE_FORMAT_VERSION = 2

#: Types a skops member may create (besides the builtins and numpy arrays that skops
#: always trusts). Anything else makes :func:`load_bundle` refuse the file.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # numpy / collections
        "numpy.dtype",
        "collections.OrderedDict",
        # scikit-learn
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        # spline terms of the penalised linear models
        "scipy.interpolate._bsplines.BSpline",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",  # BSpline's array namespace
        # gradient boosting inside their scikit-learn wrappers
        "xgboost.sklearn.XGBClassifier",
        "xgboost.core.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.basic.Booster",
        # spinerisk
        "spinerisk.features._clinical.ClinicalFeatures",
        "spinerisk.features._continuous_columns",
        "spinerisk.features._feature_name",
        "spinerisk.features._other_numbers",
        "spinerisk.features._one_hot_name",
        "spinerisk.models._binary.EarlyStoppingClassifier",
        "spinerisk.models._competing.CauseSpecificCIF",
        "spinerisk.models._survival.BoostedAFTSurvival",
        "spinerisk.models._survival.BoostedCoxSurvival",
        "spinerisk.models._survival.CoxPHSurvival",
    }
)

_MANIFEST = "manifest.json"
_PLACEHOLDER = "spinerisk-bundle:"
_PLACEHOLDER_RE = re.compile(r"^spinerisk-bundle:(booster|frame):(\d+)$")
_MAX_MEMBER_BYTES = 1 << 30  # 1 GiB uncompressed; a larger member is refused
_MAX_MEMBERS = 10_000
_VERSIONED = ("scikit-learn", "xgboost", "lightgbm", "lifelines", "numpy", "pandas", "skops")
_FITTED = (
    "endpoint_",
    "backend_",
    "features_",
    "estimator_",
    "horizons_",
    "selection_",
    "selection_reason_",
    "training_ranges_",
    "reference_",
    "n_train_",
    "n_excluded_",
    "id_field_",
)
_PARAMS = ("endpoint", "backend", "schema", "horizons", "cv", "spline_knots", "booster_params")
_PARAMS += ("random_state", "n_jobs")
_ENDPOINT_KEYS = (
    "name",
    "kind",
    "description",
    "event",
    "time",
    "horizons",
    "eligible_treatments",
    "include_treatment",
    "event_of_interest",
)
_FIELD_KEYS = ("dtype", "unit", "min", "max", "categories", "role", "nullable")
_KEEP = object()
# what skops raises for malformed input (a damaged zip, bad JSON, missing keys)
_SKOPS_ERRORS = (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError)


# -- save -----------------------------------------------------------------------------------
def save_bundle(
    model: Any, path: str | os.PathLike[str], *, training_data: pd.DataFrame | None = None
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

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ArtifactError
        If the model uses a custom schema (its row rules are code, which a bundle
        does not store), has a parameter that is not plain data, or holds a type
        outside :data:`TRUSTED_TYPES`.

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
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.models import RiskModel

    if not isinstance(model, RiskModel):
        raise TypeError(f"save_bundle needs a spinerisk RiskModel; got {type(model).__name__}.")
    check_is_fitted(model, "estimator_")
    unknown = sorted(k for k in vars(model) if k.endswith("_") and k not in _FITTED)
    if unknown:
        raise ArtifactError(
            f"RiskModel has fitted attribute(s) {unknown} that bundle format "
            f"{BUNDLE_FORMAT_VERSION} does not store; update spinerisk.bundle."
        )
    _check_schema(model.schema)
    path = Path(path)

    members: dict[str, bytes] = {}
    boosters: list[str] = []
    frames: list[str] = []

    def swap(value: Any) -> Any:
        xgb = sys.modules.get("xgboost")
        if xgb is not None and isinstance(value, xgb.Booster):
            name = f"boosters/{len(boosters)}.json"
            members[name] = bytes(value.save_raw(raw_format="json"))
            boosters.append(name)
            return f"{_PLACEHOLDER}booster:{len(boosters) - 1}"
        if isinstance(value, pd.DataFrame):
            name = f"frames/{len(frames)}.json"
            members[name] = _dumps_json(_frame_to_json(value))
            frames.append(name)
            return f"{_PLACEHOLDER}frame:{len(frames) - 1}"
        if _is_schema(value):
            _check_schema(value)
            return None  # the default schema; None means the same to every part
        return _KEEP

    import skops.io as sio

    parts: dict[str, str | None] = {}
    undo: list[tuple[Callable[[Any, Any], None], Any, Any]] = []
    try:
        for attr in ("features_", "estimator_"):
            obj = getattr(model, attr)
            if obj is None:
                parts[attr] = None
                continue
            replaced = swap(obj)
            if replaced is not _KEEP:
                raise ArtifactError(f"RiskModel.{attr} is a {type(obj).__name__}; cannot store.")
            _walk(obj, swap, undo, set())
            try:
                data = sio.dumps(obj)
            except (TypeError, ValueError, AttributeError) as exc:
                raise ArtifactError(
                    f"RiskModel.{attr} cannot be written with skops: {exc}"
                ) from exc
            name = f"{attr.rstrip('_')}.skops"
            _check_trusted(data, name, action="save")
            members[name] = data
            parts[attr] = name
    finally:
        for setter, key, old in reversed(undo):
            setter(key, old)

    manifest = _manifest(model, parts, boosters, frames, training_data)
    manifest["members"] = {n: hashlib.sha256(b).hexdigest() for n, b in sorted(members.items())}
    payload = _dumps_json(manifest)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_MANIFEST, payload)
            for name, data in sorted(members.items()):
                zf.writestr(name, data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _walk(
    obj: Any,
    swap: Callable[[Any], Any],
    undo: list[tuple[Callable[[Any, Any], None], Any, Any]],
    seen: set[int],
) -> None:
    """Apply ``swap`` to every value reachable from ``obj``, replacing in place.

    Descends into dicts, lists, tuples and the attributes of scikit-learn and spinerisk
    objects (never into XGBoost or LightGBM objects: their boosters stay inside their
    scikit-learn wrappers). ``undo`` records each replacement so it can be reverted.
    """
    if id(obj) in seen:
        return
    seen.add(id(obj))
    setter: Callable[[Any, Any], None] | None
    if isinstance(obj, dict):
        items, setter = list(obj.items()), obj.__setitem__
    elif isinstance(obj, list):
        items, setter = list(enumerate(obj)), obj.__setitem__
    elif isinstance(obj, tuple):
        items, setter = list(enumerate(obj)), None
    elif _descend(obj):
        state = vars(obj)
        items, setter = list(state.items()), state.__setitem__
    else:
        return
    for key, value in items:
        new = swap(value)
        if new is _KEEP:
            _walk(value, swap, undo, seen)
            continue
        if setter is None:
            raise ArtifactError(
                f"A {type(value).__name__} inside a tuple of {type(obj).__name__} cannot be "
                "stored in a bundle."
            )
        undo.append((setter, key, value))
        setter(key, new)


def _descend(obj: Any) -> bool:
    if isinstance(obj, type) or not hasattr(obj, "__dict__"):
        return False
    root = type(obj).__module__.split(".")[0]
    return root in ("sklearn", "spinerisk")


def _is_schema(value: Any) -> bool:
    from spinerisk.schema._spec import Schema

    return isinstance(value, Schema)


def _check_schema(schema: Any) -> None:
    if schema is None:
        return
    from spinerisk.schema.default import SPINE_SCHEMA

    if schema is SPINE_SCHEMA or schema == SPINE_SCHEMA:
        return
    raise ArtifactError(
        f"The model uses the custom schema {getattr(schema, 'name', schema)!r}. A bundle "
        "stores the schema as a description, and the row rules of a custom schema are "
        "code that cannot be stored safely, so only models fitted with the default "
        "schema (schema=None, spinerisk.SPINE_SCHEMA) can be saved."
    )


def _check_trusted(data: bytes, member: str, *, action: str) -> None:
    import skops.io as sio

    try:
        found = set(sio.get_untrusted_types(data=data))
    except _SKOPS_ERRORS as exc:
        raise ArtifactError(f"Member {member!r} is not a valid skops file: {exc}") from exc
    bad = sorted(found - TRUSTED_TYPES)
    if bad:
        verb = "would load" if action == "load" else "holds"
        raise ArtifactError(
            f"Member {member!r} {verb} type(s) outside spinerisk.bundle.TRUSTED_TYPES: "
            f"{', '.join(bad)}. Refusing to {action} it."
        )


def _manifest(
    model: Any,
    parts: dict[str, str | None],
    boosters: list[str],
    frames: list[str],
    training_data: pd.DataFrame | None,
) -> dict[str, Any]:
    from spinerisk import __version__
    from spinerisk.schema.default import SPINE_SCHEMA

    params = model.get_params(deep=False)
    params = {k: params[k] for k in _PARAMS}
    params["schema"] = None
    ep = params["endpoint"]
    params["endpoint"] = ep if isinstance(ep, str) else _endpoint_to_json(ep)
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
        "versions": {"spinerisk": __version__, **{d: _dist_version(d) for d in _VERSIONED}},
        "model": {"class": "spinerisk.RiskModel", "params": params},
        "endpoint": _endpoint_to_json(model.endpoint_),
        "backend": model.backend_,
        "horizons": [float(h) for h in model.horizons_],
        "schema": _schema_to_json(SPINE_SCHEMA),
        "id_field": model.id_field_,
        "feature_names_out": _feature_names_out(model),
        "training_ranges": _ranges_to_json(model.training_ranges_),
        "reference": _reference_to_json(getattr(model, "reference_", None)),
        "n_train": int(model.n_train_),
        "n_excluded": int(model.n_excluded_),
        "selection": None if model.selection_ is None else _frame_to_json(model.selection_),
        "selection_reason": model.selection_reason_,
        "training_data_fingerprint": _fingerprint(training_data),
        "parts": {"features": parts["features_"], "estimator": parts["estimator_"]},
        "boosters": boosters,
        "frames": frames,
    }


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _endpoint_to_json(ep: Any) -> dict[str, Any]:
    out = {k: getattr(ep, k) for k in _ENDPOINT_KEYS}
    out["horizons"] = [float(h) for h in out["horizons"]]
    if out["eligible_treatments"] is not None:
        out["eligible_treatments"] = list(out["eligible_treatments"])
    return out


def _schema_to_json(schema: Any) -> dict[str, Any]:
    fields = {}
    for f in schema.fields:
        spec = {k: getattr(f, k) for k in _FIELD_KEYS}
        if spec["categories"] is not None:
            spec["categories"] = list(spec["categories"])
        fields[f.name] = spec
    return {"name": schema.name, "version": schema.version, "fields": fields}


def _feature_names_out(model: Any) -> list[str] | None:
    from sklearn.pipeline import Pipeline

    features = model.features_
    if features is None:  # binary: the feature pipeline is the first step inside
        est = model.estimator_
        if hasattr(est, "calibrated_classifiers_"):
            est = est.calibrated_classifiers_[0].estimator
        if isinstance(est, Pipeline) and "features" in est.named_steps:
            features = est.named_steps["features"]
    try:
        return [str(n) for n in features.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        return None


def _ranges_to_json(ranges: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in ranges.items():
        if isinstance(value, tuple):
            out[name] = {"range": [float(value[0]), float(value[1])]}
        else:
            values = [v.item() if isinstance(v, np.generic) else v for v in value]
            out[name] = {"categories": sorted(values, key=lambda v: (type(v).__name__, v))}
    return out


def _ranges_from_json(ranges: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(ranges, dict):
        raise ArtifactError("manifest training_ranges is not an object.")
    for name, value in ranges.items():
        if isinstance(value, dict) and set(value) == {"range"} and len(value["range"]) == 2:
            out[name] = (float(value["range"][0]), float(value["range"][1]))
        elif isinstance(value, dict) and set(value) == {"categories"}:
            out[name] = set(value["categories"])
        else:
            raise ArtifactError(f"manifest training_ranges[{name!r}] is malformed.")
    return out


def _reference_to_json(reference: Any) -> dict[str, Any] | None:
    """The training reference (plain JSON by construction), checked to be plain JSON."""
    if reference is None:
        return None
    try:
        json.dumps(reference, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"The model's training reference is not plain JSON: {exc}") from exc
    return dict(reference)


def _reference_from_json(reference: Any) -> dict[str, Any] | None:
    if reference is None:
        return None
    if not isinstance(reference, dict) or not isinstance(reference.get("fields"), dict):
        raise ArtifactError("manifest reference is malformed (expected an object with fields).")
    return reference


def _fingerprint(data: pd.DataFrame | None) -> dict[str, Any] | None:
    if data is None:
        return None
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"training_data must be a DataFrame; got {type(data).__name__}.")
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    digest.update(json.dumps([[str(c), str(t)] for c, t in data.dtypes.items()]).encode())
    return {
        "method": "sha256 of pandas row hashes, columns and dtypes",
        "sha256": digest.hexdigest(),
        "n_rows": int(len(data)),
    }


# -- tables as JSON ---------------------------------------------------------------------
def _float_to_json(x: float) -> float | str:
    return float(x) if math.isfinite(x) else repr(float(x))  # 'nan', 'inf', '-inf'


def _frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    if df.columns.duplicated().any():
        raise ArtifactError("A table with duplicate column names cannot be stored in a bundle.")
    columns = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s.dtype) and s.dtype == bool:
            values: list[Any] = [bool(v) for v in s]
        elif pd.api.types.is_integer_dtype(s.dtype) and s.dtype.kind in "iu":
            values = [int(v) for v in s]
        elif s.dtype.kind == "f":
            values = [_float_to_json(v) for v in s.to_numpy(dtype=np.float64)]
        elif _is_text(s):
            values = [str(v) for v in s]
        else:
            raise ArtifactError(
                f"Table column {col!r} has dtype {s.dtype}, which a bundle cannot store."
            )
        dtype = "object" if _is_text(s) else str(s.dtype)
        columns.append({"name": _label(col), "dtype": dtype, "values": values})
    index = df.index
    index_dtype = str(index.dtype)
    if _is_text(index):
        index_values: list[Any] = [str(v) for v in index]
        index_dtype = "object"
    elif index.dtype.kind in "iu":
        index_values = [int(v) for v in index]
    else:
        raise ArtifactError(f"Table index of dtype {index.dtype} cannot be stored in a bundle.")
    return {
        "index": {"name": _label(index.name), "dtype": index_dtype, "values": index_values},
        "columns": columns,
    }


def _is_text(values: pd.Series | pd.Index) -> bool:
    return (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)) and all(
        isinstance(v, str) for v in values
    )


def _label(x: Any) -> str | None:
    if x is None or isinstance(x, str):
        return x
    raise ArtifactError(f"Table label {x!r} is not text; a bundle cannot store it.")


def _frame_from_json(d: Any) -> pd.DataFrame:
    try:
        idx = d["index"]
        if idx["dtype"] not in ("object", "int64", "int32", "uint64"):
            raise ValueError(f"index dtype {idx['dtype']}")
        index = pd.Index(idx["values"], name=idx["name"], dtype=idx["dtype"])
        data = {}
        for col in d["columns"]:
            dtype = col["dtype"]
            if dtype == "float64" or dtype == "float32":
                values: Any = np.array([float(v) for v in col["values"]], dtype=dtype)
            elif dtype in ("bool", "int64", "int32", "uint64"):
                values = np.array(col["values"], dtype=dtype)
            elif dtype == "object":
                if not all(isinstance(v, str) for v in col["values"]):
                    raise ValueError("non-text value in an object column")
                values = np.array(col["values"], dtype=object)
            else:
                raise ValueError(f"column dtype {dtype}")
            if len(values) != len(index):
                raise ValueError("column length differs from the index")
            data[col["name"]] = values
        return pd.DataFrame(data, index=index, columns=[c["name"] for c in d["columns"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"A table in the bundle is malformed: {exc}") from exc


def _dumps_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, allow_nan=False, ensure_ascii=False).encode("utf-8")


# -- load -----------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict[str, Any]:
    """Check a bundle and return its manifest, without building any object.

    Checks the file's sha256 (when given), that it is a zip with a valid manifest of a
    supported format version, that its members are exactly those the manifest lists,
    the sha256 of each member, and that every skops member creates only
    :data:`TRUSTED_TYPES`.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_bundle`.
    sha256 : str or None, default=None
        Expected sha256 (hex) of the whole file, from a trusted register.

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
    manifest, _ = _read_checked(Path(path), sha256)
    return manifest


def load_bundle(path: str | os.PathLike[str], *, sha256: str | None = None) -> Any:
    """Load a RiskModel written by :func:`save_bundle`.

    Every check of :func:`read_manifest` runs before any object is built; skops members
    are loaded with :data:`TRUSTED_TYPES` only and XGBoost boosters from their native
    JSON. The loaded model predicts exactly what the saved one did.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_bundle`. Load only from trusted storage.
    sha256 : str or None, default=None
        Expected sha256 (hex) of the whole file, from a trusted register.

    Returns
    -------
    RiskModel
        Fitted, with ``schema=None`` (the default schema).

    Raises
    ------
    ArtifactError
        If the file is not a spinerisk bundle, is truncated, has another format
        version, has a member whose sha256 differs from the manifest, or would create a
        type outside :data:`TRUSTED_TYPES`.

    Warns
    -----
    UserWarning
        When the bundle was written with other versions of spinerisk or of the libraries
        the model uses; predictions may then differ.

    See Also
    --------
    save_bundle, read_manifest

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
    import skops.io as sio

    path = Path(path)
    manifest, members = _read_checked(path, sha256)
    try:  # checks the schema, endpoint, ranges and parameters
        state = _state_from_manifest(manifest)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path}: the manifest is malformed: {exc!r}") from exc
    if manifest["parts"]["estimator"] is None:
        raise ArtifactError(f"{path}: the bundle has no fitted estimator.")
    frames = [_frame_from_json(_loads_json(members[n], n)) for n in manifest["frames"]]
    boosters = [_load_booster(members[n], n) for n in manifest["boosters"]]
    _warn_versions(manifest)

    # every member has been checked; build the fitted parts
    used: set[tuple[str, int]] = set()

    def restore(value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith(_PLACEHOLDER)):
            return _KEEP
        m = _PLACEHOLDER_RE.match(value)
        pool = boosters if m and m.group(1) == "booster" else frames
        if m is None or int(m.group(2)) >= len(pool) or (m.group(1), int(m.group(2))) in used:
            raise ArtifactError(f"{path}: unknown or repeated reference {value!r}.")
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
        except _SKOPS_ERRORS as exc:  # UntrustedTypesFoundException is a TypeError
            raise ArtifactError(f"{path}: member {name!r} cannot be loaded: {exc}") from exc
        _walk(obj, restore, [], set())
        parts[key] = obj
    if len(used) != len(boosters) + len(frames):
        raise ArtifactError(f"{path}: the bundle has boosters or tables that nothing uses.")

    from spinerisk.models import RiskModel

    model = RiskModel(**state.pop("params"))
    for attr, value in state.items():
        setattr(model, attr, value)
    model.features_ = parts["features"]
    model.estimator_ = parts["estimator"]
    return model


def _read_checked(path: Path, sha256: str | None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and check every member; return the manifest and the members' bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"Cannot read bundle {path}: {exc}") from exc
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256.lower():
        raise ArtifactError(f"{path}: the file's sha256 differs from the expected {sha256}.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise ArtifactError(
            f"{path} is not a spinerisk bundle (not a zip file; truncated or a different format)."
        ) from exc
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(infos) > _MAX_MEMBERS or len(set(names)) != len(names):
            raise ArtifactError(f"{path}: too many or duplicate members.")
        if _MANIFEST not in names:
            raise ArtifactError(f"{path} is not a spinerisk bundle (no {_MANIFEST}).")
        if any(i.file_size > _MAX_MEMBER_BYTES for i in infos):
            raise ArtifactError(f"{path}: a member is larger than {_MAX_MEMBER_BYTES} bytes.")
        try:
            data = {i.filename: zf.read(i) for i in infos}
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ArtifactError(f"{path}: the zip archive is damaged: {exc}") from exc
    manifest = _loads_json(data.pop(_MANIFEST), _MANIFEST)
    _check_manifest(manifest, path)

    listed = manifest["members"]
    if set(listed) != set(data):
        extra, missing = sorted(set(data) - set(listed)), sorted(set(listed) - set(data))
        raise ArtifactError(
            f"{path}: members differ from the manifest (unlisted {extra}, missing {missing})."
        )
    for name, blob in data.items():
        if hashlib.sha256(blob).hexdigest() != listed[name]:
            raise ArtifactError(
                f"{path}: member {name!r} was modified or corrupted (sha256 differs from "
                "the manifest)."
            )
    referenced = [p for p in manifest["parts"].values() if p is not None]
    referenced += manifest["boosters"] + manifest["frames"]
    if sorted(referenced) != sorted(listed):
        raise ArtifactError(f"{path}: the manifest's parts do not match its members.")
    for name in referenced:
        if name.endswith(".skops"):
            _check_trusted(data[name], name, action="load")
        elif not name.endswith(".json"):
            raise ArtifactError(f"{path}: member {name!r} has an unknown kind.")
    return manifest, data


def _loads_json(blob: bytes, name: str) -> Any:
    try:
        return json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"Bundle member {name!r} is not valid JSON: {exc}") from exc


def _check_manifest(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ArtifactError(f"{path} is not a spinerisk bundle (its manifest is foreign).")
    version = manifest.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has bundle format version {version!r}; this spinerisk reads version "
            f"{BUNDLE_FORMAT_VERSION} only. Load it with the spinerisk version that wrote "
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


def _warn_versions(manifest: dict[str, Any]) -> None:
    from spinerisk import __version__

    saved = manifest.get("versions") or {}
    now = {"spinerisk": __version__, **{d: _dist_version(d) for d in _VERSIONED}}
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
    return {
        "params": params,
        "endpoint_": endpoint(manifest["endpoint"]),
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
