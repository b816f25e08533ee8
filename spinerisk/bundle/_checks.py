"""Cross-checks of a bundle's manifest against itself and against the fitted parts it
describes, and checks that every loaded part is the fitted object it claims to be.

The manifest is data anyone can edit; these checks refuse an edit that would make the
model say something its fitted parts do not do (relabel the 6-month risk as a 1-year
risk, widen the training ranges, swap the endpoint or the backend). They cannot refuse
an edit that keeps everything consistent (a description, the creation time, the
synthetic flag): only a trusted sha256 or a signature protects those.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spinerisk.endpoints import check_horizons
from spinerisk.exceptions import ArtifactError
from spinerisk.schema._validate import placeholder_id

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

# the fitted model of each backend (class by module and name, so no booster is imported)
_SURVIVAL = {
    "linear": ("spinerisk.models._survival.CoxPHSurvival",),
    "spline": ("spinerisk.models._survival.CoxPHSurvival",),
    "xgboost": ("spinerisk.models._survival.BoostedCoxSurvival",),
    "xgboost_aft": ("spinerisk.models._survival.BoostedAFTSurvival",),
    "stack": ("spinerisk.models._stack.StackedCoxSurvival",),
}
_LOGISTIC = (
    "sklearn.linear_model._logistic.LogisticRegressionCV",
    "sklearn.linear_model._logistic.LogisticRegression",
)
_BINARY = {
    "linear": _LOGISTIC,
    "spline": _LOGISTIC,
    "xgboost": ("spinerisk.models._binary.EarlyStoppingClassifier",),
    "lightgbm": ("spinerisk.models._binary.EarlyStoppingClassifier",),
    "stack": ("spinerisk.models._stack.StackedClassifier",),
}
_BOOSTER_WRAPPERS = {
    "xgboost": "xgboost.sklearn.XGBClassifier",
    "lightgbm": "lightgbm.sklearn.LGBMClassifier",
}
# spinerisk estimators built with the RiskModel's random_state
_SEEDED = (
    "spinerisk.models._binary.EarlyStoppingClassifier",
    "spinerisk.models._survival.BoostedCoxSurvival",
    "spinerisk.models._survival.BoostedAFTSurvival",
    "spinerisk.models._stack.StackedClassifier",
    "spinerisk.models._stack.StackedCoxSurvival",
)
_STACKS = _SEEDED[3:]


def _name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _refuse(label: str, what: str) -> ArtifactError:
    return ArtifactError(f"{label}: {what} The bundle was edited or damaged; refusing to load it.")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# -- before any object is built: the manifest against itself ------------------------------
def check_state(manifest: dict[str, Any], state: dict[str, Any], label: str) -> None:
    """The manifest's parts agree: parameters, endpoint, backend, horizons, counts,
    training ranges, training reference and gate settings."""
    from spinerisk.endpoints import ENDPOINTS
    from spinerisk.models import BACKENDS

    ep, params, schema = state["endpoint_"], state["params"], state["schema_"]
    named = params["endpoint"]
    declared = ENDPOINTS.get(named) if isinstance(named, str) else named
    if manifest["format_version"] < 4 and declared is not None:
        from spinerisk.bundle._format import _endpoint_to_json

        # version 3 declared endpoints by the keys of its time; compare those
        agree = _endpoint_to_json(declared) == _endpoint_to_json(ep)
    else:
        agree = declared == ep
    if not agree:
        raise _refuse(
            label,
            f"the model's parameters name endpoint {_ep_name(named)!r}, "
            f"but the bundle's endpoint is {ep.name!r} as declared there.",
        )
    backend, requested = state["backend_"], params["backend"]
    allowed = BACKENDS.get(ep.kind, ())
    fits = backend in (*allowed, "stack") if requested == "auto" else requested == backend
    if not fits or backend not in (*allowed, "stack"):
        raise _refuse(
            label,
            f"backend {backend!r} (requested {requested!r}) is not a backend "
            f"of the {ep.kind} endpoint {ep.name!r}.",
        )

    horizons = state["horizons_"]
    least = 0.0 if ep.kind == "binary" else math.ulp(0.0)  # 0: a binary outcome without one
    if not horizons or any(not math.isfinite(h) or h < least for h in horizons):
        raise _refuse(label, f"horizons {list(horizons)} are not days after the fracture.")
    given = params["horizons"]
    if given is not None and not (
        isinstance(given, list) and all(isinstance(h, int | float) for h in given)
    ):
        raise _refuse(label, "the horizons parameter is malformed.")
    try:  # the rule fit applies (spinerisk.endpoints.check_horizons)
        expected = check_horizons(ep, ep.model_horizons, given, action="fitted for")
    except ValueError as exc:
        raise _refuse(label, str(exc)) from None
    if tuple(horizons) != expected:
        raise _refuse(
            label,
            f"horizons {list(horizons)} are not the horizons the model "
            f"predicts at ({list(expected)}).",
        )

    n_train, n_excluded = state["n_train_"], state["n_excluded_"]
    if not (_is_int(n_train) and n_train >= 1 and _is_int(n_excluded) and n_excluded >= 0):
        raise _refuse(label, f"the record counts ({n_train!r}, {n_excluded!r}) are malformed.")
    _check_params(params, backend, label)
    _check_ranges(state["training_ranges_"], ep, schema, label)
    reference = state["reference_"]
    if reference is not None:
        _check_reference(reference, state, label, exact="lineage_" not in state)


def _ep_name(named: Any) -> str:
    return named if isinstance(named, str) else getattr(named, "name", "?")


def _check_params(params: dict[str, Any], backend: str, label: str) -> None:
    checks = {
        "cv": _is_int(params["cv"]) and params["cv"] >= 2,
        "spline_knots": _is_int(params["spline_knots"]) and params["spline_knots"] >= 3,
        "random_state": params["random_state"] is None or _is_int(params["random_state"]),
        "n_jobs": params["n_jobs"] is None or (_is_int(params["n_jobs"]) and params["n_jobs"] != 0),
        "booster_params": params["booster_params"] is None
        or (
            isinstance(params["booster_params"], dict)
            and backend not in ("linear", "spline", "stack")
        ),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise _refuse(
            label, f"model parameter(s) {bad} are malformed or do not fit backend {backend!r}."
        )


def _codes(spec: Any) -> set[Any] | None:
    if spec.dtype == "bool":
        return {True, False}
    return None if spec.categories is None else set(spec.categories)


def _check_ranges(ranges: dict[str, Any], ep: Any, schema: Any, label: str) -> None:
    predictors = set(ep.predictors(schema))
    for name, value in ranges.items():
        if name not in predictors:
            raise _refuse(
                label,
                f"training_ranges names {name!r}, not a predictor of the endpoint {ep.name!r}.",
            )
        spec = schema[name]
        if spec.is_numeric and spec.categories is None:
            lo, hi = value if isinstance(value, tuple) else (math.nan, math.nan)
            low = -math.inf if spec.min is None else spec.min
            high = math.inf if spec.max is None else spec.max
            if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
                raise _refuse(
                    label,
                    f"training range of {name!r} ({value!r}) is not a range "
                    f"within the schema's [{low}, {high}].",
                )
        else:
            codes = _codes(spec)
            if not isinstance(value, set) or (codes is not None and not value <= codes):
                raise _refuse(
                    label, f"training codes of {name!r} ({value!r}) are not codes of its field."
                )


def _check_reference(
    ref: dict[str, Any], state: dict[str, Any], label: str, *, exact: bool
) -> None:
    """The training reference describes the same model as the manifest. Summarised from
    the very records of the ranges (``fit``: same count), it must agree with them
    exactly; from a sample of them (Dask), lie within them. An updated model's
    reference summarises the update's records: only its labels are compared."""
    from spinerisk.reference import REFERENCE_FORMAT, REFERENCE_VERSION

    ep, horizons = state["endpoint_"], state["horizons_"]
    if (ref.get("format"), ref.get("version"), ref.get("partial")) != (
        REFERENCE_FORMAT,
        REFERENCE_VERSION,
        None,
    ):
        raise _refuse(
            label,
            "the training reference is not a full spinerisk reference of "
            f"version {REFERENCE_VERSION}.",
        )
    try:
        same = (
            ref.get("endpoint") == ep.name
            and ref.get("kind") == ep.kind
            and [float(h) for h in ref.get("horizons", [])] == list(horizons)
            and set(ref.get("predictions") or {}) == {ep.risk_column(h) for h in horizons}
        )
    except (TypeError, ValueError):
        same = False
    if not same:
        raise _refuse(
            label,
            "the training reference describes another endpoint or other "
            "horizons than the manifest.",
        )
    _check_summaries(ref, state, label)
    if not exact:
        return
    n, n_train = ref.get("n"), state["n_train_"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= n_train:
        raise _refuse(
            label,
            f"the training reference counts {n!r} records; the model was fitted on {n_train!r}.",
        )
    equal = n == n_train
    fields, ranges = ref["fields"], state["training_ranges_"]
    for name, value in ranges.items():
        summary = fields.get(name)
        if not isinstance(summary, dict):
            raise _refuse(label, f"the training reference has no summary of {name!r}.")
        if isinstance(value, tuple):
            lo, hi = summary.get("min"), summary.get("max")
            if equal:
                agree = (lo, hi) == value
            else:
                agree = lo is None or (
                    isinstance(lo, float)
                    and isinstance(hi, float)
                    and value[0] <= lo <= hi <= value[1]
                )
        else:
            codes, seen = {str(v) for v in value}, set(summary.get("counts") or {})
            agree = seen == codes if equal else seen <= codes
        if not agree:
            raise _refuse(
                label,
                f"the training range of {name!r} ({value!r}) does not agree "
                "with the training reference.",
            )
    for name, summary in fields.items():  # a numeric field seen in training has a range
        if (
            name not in ranges
            and isinstance(summary, dict)
            and (summary.get("kind") == "numeric" and summary.get("min") is not None)
        ):
            raise _refuse(
                label,
                f"the training ranges lack {name!r}, which the training reference summarises.",
            )


def _check_summaries(ref: dict[str, Any], state: dict[str, Any], label: str) -> None:
    """Each field summary of the reference agrees with itself (what the input warnings
    read: range, codes, missing rate) and with the schema."""
    schema, ep = state["schema_"], state["endpoint_"]
    n = ref.get("n")
    order = list(ep.predictors(schema))
    names = list(ref["fields"])
    if not set(names) <= set(order) or names != [f for f in order if f in set(names)]:
        raise _refuse(
            label,
            "the training reference summarises fields that are not the "
            "endpoint's predictors, or not in their order.",
        )
    for name, summary in ref["fields"].items():
        try:
            ok = _summary_ok(summary, n, schema[name])
        except (KeyError, TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            raise _refuse(
                label,
                f"the training reference's summary of {name!r} is "
                "inconsistent (counts, missing rate, range or codes).",
            )


def _summary_ok(summary: dict[str, Any], n: Any, spec: Any) -> bool:
    n_missing = summary["n_missing"]
    if not (_is_int(n) and summary["n"] == n and _is_int(n_missing) and 0 <= n_missing <= n):
        return False
    if summary["missing_rate"] != (float(n_missing / n) if n else 0.0):
        return False
    if n_missing and (spec.required or not spec.nullable):  # training had it missing
        return False
    observed = n - n_missing
    numeric = spec.is_numeric and spec.categories is None
    if summary["kind"] == "numeric" and numeric:
        lo, hi, sample = summary["min"], summary["max"], summary["sample"]
        if lo is None:
            return observed == 0 and hi is None and not sample
        within = all(isinstance(v, float) and lo <= v <= hi for v in sample)
        if spec.dtype == "int":  # whole numbers
            within = within and all(float(v).is_integer() for v in (lo, hi, *sample))
        ends = len(sample) < observed or (sample[0] == lo and sample[-1] == hi)
        return (
            isinstance(lo, float)
            and isinstance(hi, float)
            and lo <= hi
            and within
            and sample == sorted(sample)
            and ends
            and sum(summary["bin_counts"]) == observed
        )
    if summary["kind"] == "categorical" and not numeric:
        counts = summary["counts"]
        codes = _codes(spec)
        known = codes is None or set(counts) <= {str(c) for c in codes}
        return (
            known
            and all(_is_int(c) and c > 0 for c in counts.values())
            and (sum(counts.values()) == observed)
        )
    return False


def check_gate_settings(
    settings: dict[str, Any], state: dict[str, Any], gate: dict[str, Any], label: str
) -> None:
    """A gate is a binary model of the same schema; its thresholds are probabilities with
    ``warning <= threshold``; its red flags an expression on the schema."""
    from spinerisk.schema import RowRule

    threshold, warning, flags = settings["threshold"], settings["warning"], settings["red_flags"]
    probabilities = all(
        isinstance(p, int | float) and not isinstance(p, bool) and 0 < p < 1
        for p in (threshold, warning)
    )
    if not probabilities or warning > threshold:
        raise _refuse(
            label,
            f"the gate's warning {warning!r} and threshold {threshold!r} are "
            "not probabilities with warning <= threshold.",
        )
    if gate["endpoint_"].kind != "binary" or gate["schema_"] != state["schema_"]:
        raise _refuse(label, "the gate is not a binary model of the model's schema.")
    if flags is not None:
        if not isinstance(flags, str):
            raise _refuse(label, "the gate's red flags are not an expression.")
        rule = RowRule("red_flags", expr=f"not ({flags})", message="a hard red flag")
        try:
            state["schema_"].extend(rules=[rule])
        except ValueError as exc:
            raise _refuse(label, f"the gate's red flags do not fit the schema: {exc}") from None


# -- after the parts are built: the parts against the manifest ----------------------------
def check_model(model: RiskModel, manifest: dict[str, Any], label: str) -> None:
    """Every part is the fitted object of its backend, agrees with the manifest and
    predicts a probability for a record made from the training ranges."""
    from sklearn.exceptions import NotFittedError

    try:
        pipelines = _check_structure(model, label)
        _check_features(model, manifest, pipelines, label)
        _check_seeds_and_settings(model, label)
    except ArtifactError:
        raise
    except NotFittedError as exc:
        raise _refuse(label, f"a part is not fitted ({exc}).") from exc
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise _refuse(
            label, f"a part is not what it claims to be ({type(exc).__name__}: {exc})."
        ) from exc
    _probe(model, label)


def _fitted(obj: Any, what: str, label: str) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(obj, BaseEstimator):
        raise _refuse(label, f"{what} is a {_name(obj)}, not a fitted estimator.")
    check_is_fitted(obj)


def _check_pipeline(pipe: Any, what: str, label: str) -> Any:
    """A fitted ``Pipeline([("features", ...), ("model", ...)])``; returns the model."""
    from sklearn.pipeline import Pipeline

    if not isinstance(pipe, Pipeline) or [n for n, _ in pipe.steps] != ["features", "model"]:
        raise _refuse(label, f"{what} is not the features-and-model pipeline of a binary model.")
    _check_features_pipeline(pipe.named_steps["features"], f"{what}'s features", label)
    return pipe.named_steps["model"]


def _check_features_pipeline(features: Any, what: str, label: str) -> None:
    from sklearn.pipeline import Pipeline

    from spinerisk.features import ClinicalFeatures

    if not isinstance(features, Pipeline) or not isinstance(features.steps[0][1], ClinicalFeatures):
        raise _refuse(label, f"{what} are not a spinerisk feature pipeline.")
    for name, step in features.steps:
        if step != "passthrough":
            _fitted(step, f"{what} step {name!r}", label)


def _check_structure(model: RiskModel, label: str) -> list[Any]:
    """Types and fitted state per endpoint kind and backend; the binary pipelines."""
    ep, backend = model.endpoint_, model.backend_
    est = model.estimator_
    if ep.kind == "binary":
        if model.features_ is not None:
            raise _refuse(label, "a binary model keeps its features inside its estimator.")
        if _name(est) == "sklearn.calibration.CalibratedClassifierCV":
            _fitted(est, "the calibrated estimator", label)
            members = list(getattr(est, "calibrated_classifiers_", []))
            if not members or len(est.classes_) != 2:
                raise _refuse(label, "the calibrated estimator has no folds or is not binary.")
            pipelines = []
            for i, member in enumerate(members):
                if _name(member) != "sklearn.calibration._CalibratedClassifier":
                    raise _refuse(label, f"calibration fold {i} is a {_name(member)}.")
                for calibrator in member.calibrators:
                    _fitted(calibrator, f"the calibrator of fold {i}", label)
                pipelines.append(member.estimator)
        else:
            pipelines = [est]
        for i, pipe in enumerate(pipelines):
            inner = _check_pipeline(pipe, f"binary pipeline {i}", label)
            if _name(inner) not in _BINARY.get(backend, ()):
                raise _refuse(
                    label,
                    f"backend {backend!r} fits {_BINARY.get(backend)}, but the "
                    f"bundle holds a {_name(inner)}.",
                )
            _fitted(inner, f"the {backend} model", label)
            if backend in _BOOSTER_WRAPPERS:
                wrapped = getattr(inner, "estimator_", None)
                if (
                    getattr(inner, "backend_", None) != backend
                    or _name(wrapped) != _BOOSTER_WRAPPERS[backend]
                ):
                    raise _refuse(
                        label, f"the early-stopped booster is not a fitted {backend} model."
                    )
                _fitted(wrapped, f"the {backend} booster", label)
            if len(getattr(inner, "classes_", ())) != 2:
                raise _refuse(label, f"the {backend} model is not a binary classifier.")
        return pipelines

    _check_features_pipeline(model.features_, "the features", label)
    expected = _SURVIVAL.get(backend, ())
    if ep.kind == "competing":
        if _name(est) != "spinerisk.models._competing.CauseSpecificCIF":
            raise _refuse(
                label, f"a competing-risks model is a CauseSpecificCIF, not {_name(est)}."
            )
        _fitted(est, "the cause-specific model", label)
        causes = [int(c) for c in np.asarray(est.causes_).ravel()]
        if ep.event_of_interest not in causes or len(causes) != len(est.estimators_):
            raise _refuse(
                label,
                f"the fitted causes {causes} do not include the endpoint's "
                f"event of interest {ep.event_of_interest!r}.",
            )
        parts = list(est.estimators_)
    else:
        parts = [est]
    for part in parts:
        if _name(part) not in expected:
            raise _refuse(
                label, f"backend {backend!r} fits {expected}, but the bundle holds a {_name(part)}."
            )
        _fitted(part, f"the {backend} model", label)
    return []


def _check_features(
    model: RiskModel, manifest: dict[str, Any], pipelines: list[Any], label: str
) -> None:
    """Feature names, the predictor fields read, spline terms and matrix widths."""
    from sklearn.preprocessing import SplineTransformer

    from spinerisk.bundle._format import _feature_names_out

    names = _feature_names_out(model)
    if manifest.get("feature_names_out") != names:
        raise _refuse(
            label, "the manifest's feature_names_out are not the names the fitted features produce."
        )
    if pipelines:  # binary: each (calibration fold's) pipeline has its own features
        pairs = [(p.named_steps["features"], [p.named_steps["model"]]) for p in pipelines]
    else:
        pairs = [(model.features_, _survival_parts(model))]
    ep, schema = model.endpoint_, model.schema_
    predictors = ep.predictors(schema)
    roles = ("feature", "treatment") if ep.include_treatment else ("feature",)
    for features, users in pairs:
        clinical = features.steps[0][1]
        declared = (
            [f.name for f in schema.by_role(*roles)]
            if clinical.fields is None
            else list(clinical.fields)
        )
        if set(declared) != set(predictors) or not set(clinical.fields_) <= set(predictors):
            raise _refuse(
                label,
                f"the fitted features read {sorted(declared)[:8]}..., not the "
                f"endpoint's predictors.",
            )
        fitted = getattr(clinical, "feature_names_out_", None)
        made = list(clinical.transform(probe_frame(model)).columns)
        if fitted is not None and made != [str(c) for c in fitted]:
            raise _refuse(
                label,
                "the schema's fields and derived features no longer make the "
                "columns the clinical features were fitted on.",
            )
        splines = [o for o in _objects(features) if isinstance(o, SplineTransformer)]
        knots = model.spline_knots
        if model.backend_ == "spline" and (not splines or any(s.n_knots != knots for s in splines)):
            raise _refuse(label, f"the spline model's terms do not have spline_knots={knots}.")
        if model.backend_ == "linear" and splines:
            raise _refuse(label, "the straight-line model holds spline terms.")
        width = len(features.get_feature_names_out())
        for user in users:
            n_in = getattr(user, "n_features_in_", width)
            if n_in != width:
                raise _refuse(
                    label, f"the fitted model takes {n_in} columns but its features make {width}."
                )


def _survival_parts(model: RiskModel) -> list[Any]:
    est = model.estimator_
    return [est, *getattr(est, "estimators_", [])]


def _objects(root: Any) -> list[Any]:
    """Estimators reachable through ``get_params`` and fitted ``*_`` lists."""
    from sklearn.base import BaseEstimator

    out, stack, seen = [], [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            stack.extend(obj)
            continue
        if not isinstance(obj, BaseEstimator):
            continue
        out.append(obj)
        stack.extend(v for v in obj.get_params(deep=False).values())
        for key in (
            "steps",
            "transformers_",
            "estimators_",
            "calibrated_classifiers_",
            "estimator_",
        ):
            value = vars(obj).get(key)
            if value is not None:
                stack.append(value)
        if _name(obj) == "sklearn.calibration._CalibratedClassifier":
            stack.append(obj.estimator)
    return out


def _check_seeds_and_settings(model: RiskModel, label: str) -> None:
    """random_state, booster_params, cv and spline_knots as the fitted parts were made."""
    roots = [model.estimator_] if model.features_ is None else [model.features_, model.estimator_]
    objects = [o for root in roots for o in _objects(root)]
    seed = model.random_state
    for obj in objects:
        kind = _name(obj)
        if kind in _SEEDED and getattr(obj, "random_state", seed) != seed:
            raise _refuse(
                label,
                f"random_state={seed!r}, but the fitted {type(obj).__name__} "
                f"was made with {obj.random_state!r}.",
            )
        if kind in _STACKS and (obj.cv, obj.spline_knots) != (model.cv, model.spline_knots):
            raise _refuse(label, "cv or spline_knots differ from the fitted stacked model's.")
    params = model.booster_params
    if params:
        boosters = [
            o
            for o in objects
            if _name(o)
            in (*_BOOSTER_WRAPPERS.values(), *_SURVIVAL["xgboost"], *_SURVIVAL["xgboost_aft"])
        ]
        for booster in boosters:
            have = booster.get_params(deep=False)
            if any(k not in have or _plain(have[k]) != _plain(v) for k, v in params.items()):
                raise _refuse(label, f"booster_params {params!r} are not the fitted booster's.")
        if not boosters:
            raise _refuse(label, "booster_params were given but the model has no booster.")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def probe_frame(model: RiskModel) -> pd.DataFrame:
    """One synthetic record: the middle of each numeric training range, the first code
    of each categorical one, missing elsewhere."""
    schema = model.schema_
    ranges = model.training_ranges_
    columns: dict[str, pd.Series] = {}
    for name in [model.id_field_, *model.endpoint_.predictors(schema)]:
        spec = schema[name]
        dtype = spec.pandas_dtype()
        value: Any = {"float": np.nan, "date": pd.NaT}.get(spec.dtype, pd.NA)
        seen = ranges.get(name)
        if name == model.id_field_:
            value = placeholder_id(spec.dtype, 1)
        elif isinstance(seen, tuple):
            value = (seen[0] + seen[1]) / 2
            value = round(value) if spec.dtype == "int" else value
        elif isinstance(seen, set) and seen:
            value = sorted(seen, key=str)[0]
        columns[name] = pd.Series([value], dtype=dtype)
    return pd.DataFrame(columns)


def _probe(model: RiskModel, label: str) -> None:
    """Predict for the probe record: a spoofed or damaged part fails here, at load,
    rather than when the first patient is scored."""
    horizons = model.horizons_
    frame = probe_frame(model)
    try:
        risk = np.asarray(model._risk_values(frame, horizons), dtype=float)
        model._warnings(frame)  # the input checks read the training reference
    # a spoofed part can fail in any way (AttributeError, TypeError, a booster's own
    # error...): every failure of the probe is a refusal, with its cause attached
    except Exception as exc:  # noqa: BLE001
        raise _refuse(
            label,
            f"the model cannot predict for a record made from its training "
            f"ranges ({type(exc).__name__}: {exc}).",
        ) from exc
    ok = risk.shape == (1, len(horizons)) and bool(np.all(np.isfinite(risk)))
    ok = ok and bool(np.all((risk >= 0) & (risk <= 1)))
    if ok and len(horizons) > 1:
        ok = bool(np.all(np.diff(risk[0]) >= -1e-9))  # risk never falls with time
    if not ok:
        raise _refuse(
            label,
            f"the model predicts {risk.tolist()} for a record made from its "
            "training ranges, not one probability per horizon.",
        )
