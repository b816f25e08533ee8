"""The bundle format: its version, the trusted types, member checks and the JSON forms
of endpoints, schemas, ranges, references and tables."""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import ArtifactError
from spinerisk.models._state import FITTED_STATE, PARAMS

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

#: Value of ``manifest["format"]``.
BUNDLE_FORMAT = "spinerisk-bundle"

#: Version of the bundle layout; bundles of another version are refused. Version 2:
#: boosted binary models are calibrated on the booster's margin (``decision_function``)
#: and the manifest carries the training reference. Version 3: boosted AFT models carry
#: the scale their predictions use (``scale_``, estimated on held-out records). Version 4:
#: the manifest holds the model's schema and endpoint declarations in full (the data
#: forms of :func:`spinerisk.schema.schema_to_dict` and
#: :func:`spinerisk.endpoints.endpoint_to_dict`), so models of any schema can be saved.
BUNDLE_FORMAT_VERSION = 4
#: Versions this spinerisk reads (version 3 bundles hold spine-schema models).
READABLE_FORMAT_VERSIONS = (3, 4)

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
        "spinerisk.models._binary.neg_log_loss",  # the logistic penalty's CV scorer
        "spinerisk.models._competing.CauseSpecificCIF",
        "spinerisk.models._stack.StackedClassifier",  # backend="auto": the stacked default
        "spinerisk.models._stack.StackedCoxSurvival",
        "spinerisk.models._survival.BoostedAFTSurvival",
        "spinerisk.models._survival.BoostedCoxSurvival",
        "spinerisk.models._survival.CoxPHSurvival",
    }
)

_MANIFEST = "manifest.json"
#: Member holding a bound gate model: the bytes of a whole bundle, checked the same way.
GATE_MEMBER = "gate.srb"
#: Members of the bootstrap refits behind per-patient intervals (nested bundles,
#: ``RiskModel.fit_intervals``): ``intervals/0.srb``, ``intervals/1.srb``, ...
INTERVAL_MEMBER = "intervals/{}.srb"
INTERVAL_MEMBER_RE = re.compile(r"^intervals/(0|[1-9][0-9]{0,2})\.srb$")
_PLACEHOLDER = "spinerisk-bundle:"
_PLACEHOLDER_RE = re.compile(r"^spinerisk-bundle:(booster|frame|schema):(\d+)$")
#: Placeholder of the model's schema inside its fitted parts.
SCHEMA_PLACEHOLDER = "spinerisk-bundle:schema:0"
# -- limits: a bundle that exceeds one is refused before anything is kept in memory --------
#: Largest bundle file (compressed), read once into memory.
MAX_FILE_BYTES = 256 << 20
#: Largest number of members (a bundle has a manifest, two skops parts, a few boosters
#: and tables, a nested gate bundle, up to 200 nested interval bundles and a signature).
MAX_MEMBERS = 256
#: Largest central directory of the zip (bounds the work of listing the members).
MAX_DIRECTORY_BYTES = 1 << 20
#: Largest member, counted in real uncompressed bytes while streaming.
MAX_MEMBER_BYTES = 128 << 20
#: Largest sum of the members' uncompressed bytes.
MAX_TOTAL_BYTES = 256 << 20
#: Largest manifest.json.
MAX_MANIFEST_BYTES = 32 << 20
#: Largest number of files inside one skops member (one per array, plus its schema).
MAX_SKOPS_FILES = 4096
#: Deepest nesting of a JSON member (the manifest nests about 6 levels; the schema
#: inside a skops part about 60).
MAX_JSON_DEPTH = 64
MAX_SKOPS_JSON_DEPTH = 256
#: Streaming chunk.
CHUNK_BYTES = 1 << 20
_FITTED: tuple[str, ...] = tuple(FITTED_STATE)  # declared once, with the model's state
_PARAMS: tuple[str, ...] = PARAMS
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


def bundle_id(manifest: dict[str, Any], sha256: str) -> str:
    """The id every output names a bundle by (scores, audit lines, the API):
    ``<endpoint>-<backend>-<created>-<first 12 hex of the file's sha256>``."""
    created = str(manifest.get("created_utc", ""))
    return f"{manifest['endpoint']['name']}-{manifest['backend']}-{created}-{sha256[:12]}"


def model_identity(
    manifest: dict[str, Any] | None, sha256: str = "", *, model: RiskModel | None = None
) -> dict[str, str]:
    """What every output calls a model: the one owner of its identity.

    ``model_id`` is :func:`bundle_id`; ``model_version`` is the model's own version, its
    creation time (UTC) as the bundle records it; ``saved_by`` is the software that
    wrote it (``<spinerisk version>+bundle.<format version>``). A model not loaded
    from a bundle (``manifest=None``, ``model`` given) is
    ``<endpoint>-<backend>-unsaved``, version ``"unsaved"``, saved by this spinerisk.

    Returns
    -------
    dict
        ``model_id``, ``model_version``, ``model_sha256`` (empty when unsaved),
        ``endpoint``, ``backend``, ``created_utc`` and ``saved_by``.
    """
    if manifest is None:
        from spinerisk._version import __version__

        if model is None:
            raise TypeError("model_identity needs a bundle's manifest or a model.")
        endpoint, backend = model.endpoint_.name, model.backend_
        return {
            "model_id": f"{endpoint}-{backend}-unsaved",
            "model_version": "unsaved",
            "model_sha256": "",
            "endpoint": endpoint,
            "backend": backend,
            "created_utc": "",
            "saved_by": f"{__version__}+bundle.{BUNDLE_FORMAT_VERSION}",
        }
    created = str(manifest.get("created_utc", ""))
    saved_by = (manifest.get("versions") or {}).get("spinerisk", "unknown")
    fmt = manifest.get("format_version", BUNDLE_FORMAT_VERSION)
    return {
        "model_id": bundle_id(manifest, sha256),
        "model_version": created,
        "model_sha256": sha256,
        "endpoint": str(manifest["endpoint"]["name"]),
        "backend": str(manifest["backend"]),
        "created_utc": created,
        "saved_by": f"{saved_by}+bundle.{fmt}",
    }


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


def _feature_names_out(model: RiskModel) -> list[str] | None:
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


def fingerprint(data: pd.DataFrame | None) -> dict[str, Any] | None:
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


# a JSON string (its escapes included); removed before brackets are counted
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKETS = re.compile(rb"[\[\]{}]")
#: Largest integer a bundle's JSON may hold (beyond it, a number is not data we wrote).
_MAX_JSON_INT = 2**63


def json_depth(blob: bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text, without parsing it
    (no recursion: a 100,000-deep text is measured, not followed)."""
    stripped = _JSON_STRING.sub(b'""', blob)
    brackets = np.frombuffer(b"".join(_JSON_BRACKETS.findall(stripped)), dtype=np.uint8)
    if not len(brackets):
        return 0
    step = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(step).max())


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} is out of range")
    return value


def _json_int(text: str) -> int:
    if len(text) > 20:  # more digits than any 64-bit integer
        raise ValueError(f"integer {text[:40]}... is out of range")
    value = int(text)
    if abs(value) > _MAX_JSON_INT:
        raise ValueError(f"integer {text} is out of range")
    return value


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return out


def _loads_json(blob: bytes, name: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON member strictly: UTF-8, nesting at most ``max_depth`` deep (checked
    before parsing), no NaN or Infinity, finite floats, integers within 64 bits, no
    repeated keys. Anything else is an :class:`ArtifactError`."""
    depth = json_depth(blob)
    if depth > max_depth:
        raise ArtifactError(
            f"Bundle member {name!r} nests {depth} levels deep; a bundle's JSON nests at "
            f"most {max_depth}."
        )
    try:
        return json.loads(
            blob.decode("utf-8"),
            parse_constant=_json_constant,
            parse_float=_json_float,
            parse_int=_json_int,
            object_pairs_hook=_json_object,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError too
        raise ArtifactError(f"Bundle member {name!r} is not valid JSON: {exc}") from exc
