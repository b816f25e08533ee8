"""The FastAPI application: routes, error mapping, size limits and privacy-safe logging."""

import hashlib
import inspect
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spinerisk._version import library_versions
from spinerisk.api._access import access_line, writer_of
from spinerisk.api._access import utf8_text as _text
from spinerisk.api._models import (
    ExplainedRecord,
    ExplainResponse,
    FieldContribution,
    HealthResponse,
    MessageResponse,
    ModelInfo,
    PredictResponse,
    ValidationErrorResponse,
    _shape,
    batch_model,
    record_model,
    records_reader,
    request_body_type,
)
from spinerisk.endpoints import interval_columns, stated_horizon, stated_horizons
from spinerisk.exceptions import DataQualityWarning, SchemaValidationError
from spinerisk.reference import trained_on_synthetic
from spinerisk.riskmodel import RiskModel, predictor_columns
from spinerisk.schema import Schema

__all__ = ["create_app"]

#: Logger of the API. Messages carry counts, timings and field names, never field values.
logger = logging.getLogger("spinerisk.api")

try:  # orjson (the ``api`` extra) serialises answers several times faster than json
    import orjson

    def _dumps(content: Any) -> bytes:
        return orjson.dumps(content)

except ImportError:  # pragma: no cover - orjson missing: the standard library
    orjson = None  # type: ignore[assignment]

    def _dumps(content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()


#: Integers of 19 digits or more may lie outside 64 bits, which orjson reads as floats
#: where ``json`` keeps Python ints (a different 422): such bodies are read by ``json``.
_DIGITS = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_NUMBER = b"9" * 19


def loads_request(body: bytes) -> Any:
    """A request body as ``json.loads`` reads it (what FastAPI calls), about 3x faster.

    orjson parses the body unless it may hold an integer beyond 64 bits; whatever orjson
    refuses (``NaN``, ``1e400``, a lone surrogate escape, a byte-order mark, invalid
    JSON, ...) is handed to ``json.loads``, which gives its value or its own error, so
    every body reads as before (tested on such bodies and on random floats).
    """
    if orjson is None or _LONG_NUMBER in body.translate(_DIGITS):
        return json.loads(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


class _Request(Request):
    """A request whose JSON body is read by :func:`loads_request`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_request(await self.body())
        return self._json


#: A route's quick handler: the answer, or None to let FastAPI handle the request.
Quick = Callable[["_Request"], Coroutine[Any, Any, Response | None]]


class _Route(APIRoute):
    """A route handing its handler a :class:`_Request` (FastAPI's custom-request hook),
    first to its ``quick`` handler if it has one."""

    quick: Quick | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            request = _Request(request.scope, request.receive)
            if self.quick is not None:
                response = await self.quick(request)
                if response is not None:
                    return response
            return await handler(request)  # the body, if read, is read once (cached)

        return handle


#: ASGI scope key where a route leaves the number of records it scored (access log).
_RECORDS_KEY = "spinerisk.records"

INTENDED_USE = (
    "Research software, not clinically validated: not for diagnosis or treatment decisions. "
    "spinerisk's examples and built-in models are trained on SYNTHETIC data (simulated "
    "patients); a model trained on real data needs external validation before any use."
)
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": MessageResponse, "description": "The body is not valid JSON."},
    413: {
        "description": "The body is larger than the limit; it was not read.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    422: {
        "model": ValidationErrorResponse,
        "description": "Invalid records: wrong type, out of range, unknown code or field, "
        "inconsistent record or too many records. Every problem is listed; nothing is scored.",
    },
}
_PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERROR_RESPONSES,
    503: {"model": MessageResponse, "description": "The audit log could not be written."},
}


@dataclass
class _Served:
    """The loaded model and what the routes need to know about it."""

    model: RiskModel
    info: ModelInfo
    fields: list[str]
    lock: threading.Lock
    audit_log: Any
    fast: Any = None  # the compiled single-record path (FastPredictor), or None

    def audit_info(self) -> dict[str, Any]:
        """Model identity for audit lines (the keys of ``spinerisk.monitor.bundle_info``)."""
        return {
            "model_id": self.info.model_id,
            "model_sha256": self.info.sha256,
            "endpoint": self.info.endpoint,
            "backend": self.info.backend,
            "created_utc": self.info.created_utc,
        }


def create_app(
    model_or_path: RiskModel | str | os.PathLike[str],
    *,
    max_records: int = 1000,
    max_body_bytes: int = 1_000_000,
    audit_log: Any = None,
    wait_compiled: bool = False,
) -> FastAPI:
    """Build the HTTP prediction API around one fitted model.

    Routes: ``POST /v1/predict`` (risks), ``POST /v1/explain`` (risks with their largest
    feature contributions and a plain-language sentence), ``GET /v1/model`` (manifest
    and model-card summary) and ``GET /health``. Request records are generated from the
    model's schema: the record id plus the endpoint's baseline predictors, strictly
    typed, with units in the OpenAPI descriptions and unknown fields refused.

    Parameters
    ----------
    model_or_path : RiskModel, str or path-like
        A fitted :class:`~spinerisk.RiskModel`, or the path of a bundle written by
        :meth:`RiskModel.save <spinerisk.RiskModel.save>`, loaded with
        :func:`spinerisk.load` after all of its checks. Load bundles only from
        trusted storage.
    max_records : int, default=1000
        Largest number of records in one request (more gives 422).
    max_body_bytes : int, default=1_000_000
        Largest request body in bytes (more gives 413, before the body is parsed).
    audit_log : object or None, default=None
        Anything with ``log_predictions(*, model_info, inputs, outputs, source)``, such
        as ``spinerisk.monitor.AuditLog``; called after each successful prediction with
        ``source="api"``. If it fails, the request fails with 503 and no risk is
        returned.
    wait_compiled : bool, default=False
        Return only once the compiled single-record path is built and checked (seconds
        for boosted models), so that no request is answered while the C compiler runs
        beside it (``spinerisk serve`` does). Otherwise the trees compile in the
        background and XGBoost's own call answers until they are ready; the risks are
        the same.

    Returns
    -------
    FastAPI
        Serve it with any ASGI server (``spinerisk serve`` runs uvicorn).

    Raises
    ------
    ArtifactError
        If the bundle fails a check (see :func:`spinerisk.bundle.read_manifest`).
    TypeError
        If ``model_or_path`` is neither a RiskModel nor a path.
    ValueError
        If a limit is not a positive integer.

    Notes
    -----
    Logs (logger ``spinerisk.api``) hold counts, timings, field names and status codes,
    never the values of a record; error responses echo the client's own values back to
    it only. Risks are predictions of a statistical model, not clinical advice.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from fastapi.testclient import TestClient
    >>> from spinerisk.api import create_app
    >>> cohort = sr.make_spine_cohort(600, seed=0)
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)
    >>> client = TestClient(create_app(model))
    >>> record = {"patient_id": "P-1", "age_years": 81.0, "sex": "F", "hu_l1": 62.0}
    >>> response = client.post("/v1/predict", json=record)
    >>> response.status_code, list(response.json()["predictions"][0]["risk"])
    (200, ['183d'])
    >>> bad = client.post("/v1/predict", json=dict(record, age_years=150.0))
    >>> bad.status_code, bad.json()["detail"][0]["loc"]
    (422, ['body', 'age_years'])
    """
    _check_limits(max_records, max_body_bytes)
    served = _load(model_or_path, max_records, max_body_bytes, audit_log)
    if wait_compiled and served.fast is not None:
        served.fast.wait_compiled()
    schema = _schema_of(served.model)
    record = record_model(schema, served.fields)
    body_type = request_body_type(record, batch_model(record, max_records))
    app = _new_app(served, max_records, max_body_bytes)
    answer = _Answer(served, schema)
    _add_service_routes(app, served)
    _add_predict_route(app, served, answer, body_type)
    _quick_predict_route(app, served, answer, records_reader(schema, served.fields, max_records))
    _add_explain_route(app, served, answer, body_type)
    return app


def _check_limits(max_records: int, max_body_bytes: int) -> None:
    for name, value in (("max_records", max_records), ("max_body_bytes", max_body_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {name}={value!r}.")


def _new_app(served: _Served, max_records: int, max_body_bytes: int) -> FastAPI:
    """The application without its routes: title, version, description, body-size
    limit, error handling and the access log."""
    if "max_body_size" not in inspect.signature(FastAPI).parameters:
        # older FastAPI versions accept and ignore unknown keywords: no limit would apply
        raise ImportError(
            f"fastapi {metadata.version('fastapi')} cannot limit request bodies "
            "(FastAPI(max_body_size=...)); the spinerisk API needs a newer fastapi: "
            'pip install -U "spinerisk[api]".'
        )
    app = FastAPI(
        title="spinerisk prediction API",
        version=served.info.model_version,
        description=(
            f"Risk of **{served.info.endpoint}** ({served.info.endpoint_description}) from "
            f"one clinical record or up to {max_records} records per request. "
            f"{INTENDED_USE}"
        ),
        max_body_size=max_body_bytes,
    )
    app.state.model_id = served.info.model_id
    app.state.trained_on_synthetic_data = served.info.trained_on_synthetic_data
    app.router.route_class = _Route  # request bodies read by loads_request
    app.add_middleware(_QuietErrors)
    app.add_middleware(_AccessLog)  # outermost: sees the status of every answer
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    return app


def _add_service_routes(app: FastAPI, served: _Served) -> None:
    """``GET /health`` and ``GET /v1/model``."""

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    def health() -> HealthResponse:
        """Liveness and readiness: the model is loaded and can score."""
        return HealthResponse(status="ok", model_loaded=True, model_id=served.info.model_id)

    @app.get("/v1/model", response_model=ModelInfo, tags=["model"])
    def model_info() -> ModelInfo:
        """What the served model is: endpoint, backend, horizons, schema, training size,
        creation time, library versions, bundle sha256 and intended use."""
        return served.info


def _add_predict_route(app: FastAPI, served: _Served, answer: "_Answer", body_type: Any) -> None:
    """``POST /v1/predict``."""

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=_PREDICT_RESPONSES,
        tags=["model"],
    )
    async def predict(
        request: Request,
        body: body_type,  # type: ignore[valid-type]
        interval: float | None = Query(
            None,
            gt=0,
            lt=1,
            description="Coverage of a per-patient interval around each risk (0.9 for 90%), "
            "from the model's bootstrap refits (GET /v1/model: 'intervals').",
        ),
    ) -> Any:
        """Risk of the outcome at each horizon for one record or a batch of records.

        Send one record object, or ``{"records": [...]}``. Numbers must be JSON numbers
        and flags JSON booleans; optional fields may be null or left out.
        """
        # async: the compiled path answers a record in well under a millisecond and a
        # 100-record batch in a few, less than a hop to the thread pool and back costs;
        # pydantic has checked types, ranges and codes
        records = answer.records(body)
        if interval is not None and not getattr(served.model, "interval_models_", None):
            return _no_intervals_error(interval)
        return await _predicted(served, answer, request, records, _is_batch(body), interval)


async def _predicted(
    served: _Served,
    answer: "_Answer",
    request: Request,
    records: list[dict[str, Any]],
    batch: bool,
    interval: float | None,
) -> Response:
    """POST /v1/predict's answer for the request's records (plain dicts, as
    :meth:`_Answer.records` gives them), valid by the request model."""
    try:
        rows = await _predict_off_loop_if_long(served, records, interval)
    except SchemaValidationError as exc:
        return _schema_error_response("POST /v1/predict", exc, batch=batch)
    request.scope[_RECORDS_KEY] = len(rows)
    content = answer.content(rows, with_interval=interval is not None)
    return Response(_dumps(content), media_type="application/json")


def _quick_predict_route(
    app: FastAPI, served: _Served, answer: "_Answer", read: Callable[[Any], Any]
) -> None:
    """Give ``POST /v1/predict`` a quick handler: a plain JSON request (no query string)
    whose body the request model accepts is answered without FastAPI's request
    machinery, its records read by :func:`~spinerisk.api._models.records_reader` (the
    model's validation, into plain dicts, about twice as fast for a 100-record batch).
    Any other request (invalid records, another content type, ``?interval=``, a body
    of unknown length) goes to FastAPI as before, which validates it and reports every
    problem: answers and error messages are the same either way (tested)."""
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/predict")
    if cast(_Route, route).dependant.dependencies or cast(_Route, route).dependencies:
        return  # a dependency (authentication, say) must run: FastAPI handles every request
    limit = served.info.max_body_bytes

    async def quick(request: _Request) -> Response | None:
        headers = request.headers
        if request.scope["query_string"] or headers.get("content-type") != "application/json":
            return None
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > limit:
            return None  # FastAPI's body-size limit and errors apply
        try:
            body = await request.json()  # kept for FastAPI if it handles the request
            records = read(body)
        except Exception:  # not JSON, or too deep a body: FastAPI answers as ever
            return None
        if records is None:
            return None
        batch = _shape(body) == "batch"
        return await _predicted(served, answer, request, answer.plain(records), batch, None)

    cast(_Route, route).quick = quick


def _add_explain_route(app: FastAPI, served: _Served, answer: "_Answer", body_type: Any) -> None:
    """``POST /v1/explain``."""
    allowed = ", ".join(f"{h:g}" for h in served.info.horizons)
    unit = served.info.time_unit
    about_horizon = (
        f"Horizon of the explained risk in {unit} (the endpoint's time unit): one of the "
        f"model's horizons ({allowed}); default the first."
        if allowed
        else "Not for this model: its outcome was recorded without a horizon, so a request "
        "that gives one is refused."
    )

    @app.post(
        "/v1/explain",
        response_model=ExplainResponse,
        responses=_ERROR_RESPONSES,
        tags=["model"],
    )
    def explain(
        request: Request,
        body: body_type,  # type: ignore[valid-type]
        top_k: int = Query(5, ge=1, le=50, description="Fields to return per record."),
        horizon: float | None = Query(
            None,
            gt=0,
            description=about_horizon,
        ),
        horizon_days: float | None = Query(
            None,
            gt=0,
            deprecated=True,
            description="The horizon in days instead (deprecated: removed in the next release).",
        ),
    ) -> Any:
        """Risk of each record, the clinical fields that move it most, and a sentence.

        Contributions are additive on the model's margin scale, with their share of the
        risk in percentage points. They describe the model, not causes (and a treatment
        field the model reads is confounded by indication).
        """
        records = answer.records(body)
        chosen = _explained_horizon(served.info, horizon, horizon_days)
        if isinstance(chosen, JSONResponse):
            return chosen
        try:
            response = _explain(served, records, top_k, chosen)
        except SchemaValidationError as exc:
            return _schema_error_response("POST /v1/explain", exc, batch=_is_batch(body))
        request.scope[_RECORDS_KEY] = len(records)
        return response


def _explained_horizon(
    info: ModelInfo, horizon: float | None, horizon_days: float | None
) -> float | None | JSONResponse:
    """The model's horizon (in the endpoint's unit) that ``?horizon=`` (in that unit) or
    the deprecated ``?horizon_days=`` names, None for the default, or a 422 answer naming
    the parameter as sent."""
    if horizon is not None and horizon_days is not None:
        return _query_error(
            "horizon_days",
            horizon_days,
            "Give horizon or its deprecated alias horizon_days, not both.",
            "horizon alone",
        )
    if horizon_days is None:
        name, value, allowed, unit = "horizon", horizon, info.horizons, info.time_unit
    else:
        name, value, allowed, unit = "horizon_days", horizon_days, info.horizon_days, "days"
    if value is None:
        return None
    if not allowed:
        return _query_error(
            name,
            value,
            f"The model has no horizon (a binary outcome recorded without one): leave {name} out.",
            "no horizon",
        )
    matches = [i for i, h in enumerate(allowed) if math.isclose(value, h, rel_tol=1e-9)]
    if not matches:
        shown = ", ".join(f"{h:g}" for h in allowed)
        return _query_error(
            name,
            value,
            f"{name} must be one of the model's horizons in {unit} ({shown}).",
            shown,
        )
    # the value as sent in the endpoint's unit (explain converts it to days as fit did)
    return value if name == "horizon" else info.horizons[matches[0]]


class _Answer:
    """Request records in, JSON answer out, from plain Python values (no DataFrame).

    Built once per app: which fields are dates, which risk columns map to which keys, and
    the model identity every answer starts with. The answer has the shape of
    :class:`PredictResponse` (documented through ``response_model``; tested).
    """

    def __init__(self, served: _Served, schema: Schema) -> None:
        model = served.model
        self.dates = [f for f in served.fields if schema[f].dtype == "date"]
        columns = [model.endpoint_.risk_column(h) for h in model.horizons_]
        self.risks = [(c, _risk_key(c)) for c in columns]
        self.bounds = [interval_columns(c) for c in columns]
        self.id_field = model.id_field_
        self.gated = getattr(model, "gate_", None) is not None
        self.head = {
            "model_id": served.info.model_id,
            "model_version": served.info.model_version,
            "endpoint": served.info.endpoint,
            "horizons": served.info.horizons,
            "time_unit": served.info.time_unit,
            "horizon_days": served.info.horizon_days,  # deprecated
        }

    def records(self, body: BaseModel) -> list[dict[str, Any]]:
        """The request's records as plain dicts (dates as ISO text)."""
        items = getattr(body, "records") if _is_batch(body) else [body]  # noqa: B009
        return self.plain([dict(item.__dict__) for item in items])  # extras are refused

    def plain(self, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records as the request model gives them (field to value) with dates as ISO
        text, in place."""
        for field in self.dates:
            for record in out:
                value = record.get(field)
                if value is not None:
                    record[field] = value.isoformat()
        return out

    def content(self, rows: list[dict[str, Any]], *, with_interval: bool = False) -> dict[str, Any]:
        """The answer for prediction rows (``FastPredictor.predict_risk`` dicts, or rows
        of ``RiskModel.predict_risk`` with the interval columns)."""
        predictions = []
        for row in rows:
            item: dict[str, Any] = {
                "id": str(row[self.id_field]),
                "risk": {key: _probability(row[col]) for col, key in self.risks},
                "risk_interval": (
                    {
                        key: [_probability(row[lo]), _probability(row[hi])]
                        for (lo, hi), (_, key) in zip(self.bounds, self.risks, strict=True)
                    }
                    if with_interval
                    else None
                ),
                "warnings": list(row["warnings"]),  # the entries, never joined text
                "status": None,
                "p_malignant": None,
                "status_reason": None,
            }
            if self.gated:
                item["status"] = str(row["status"])
                item["p_malignant"] = float(row["p_malignant"])
                item["status_reason"] = str(row["status_reason"]) or None
            predictions.append(item)
        return {**self.head, "predictions": predictions}


def _probability(value: Any) -> float | None:
    """A risk for JSON: None where the model gives none (an out-of-scope record)."""
    x = float(value)
    return None if math.isnan(x) else x


def _risk_key(column: str) -> str:
    """Key of a risk in answers: the horizon (``183d``, ``60mo``), or ``outcome`` for a
    binary endpoint without a horizon (column ``risk``)."""
    return "outcome" if column == "risk" else column[len("risk_") :]


# -- loading ---------------------------------------------------------------------------
def _schema_of(model: RiskModel) -> Schema:
    return model.input_schema_


def _load(source: Any, max_records: int, max_body_bytes: int, audit_log: Any) -> _Served:
    from spinerisk.models._gate import gate_fields  # a gated model also reads the gate's

    model, manifest, sha256 = _read_model(source)
    scope = model.endpoint_.scope_rule()  # an endpoint's scope reads fields of its own
    read = [
        model.id_field_,
        *model.endpoint_.predictors(_schema_of(model)),
        *(scope.columns if scope is not None else ()),
        *gate_fields(model),
    ]
    fields = list(dict.fromkeys(read))
    info = _model_info(model, manifest, sha256, fields, max_records, max_body_bytes)
    # the compiled path (None for a model it cannot compile: the batch path serves it)
    fast = model._fast_predictor()
    return _Served(model, info, fields, threading.Lock(), audit_log, fast)


def _read_model(source: Any) -> tuple[RiskModel, dict[str, Any] | None, str | None]:
    """The fitted model, with the manifest and sha256 of its bundle (None for a model
    given as an object)."""
    from sklearn.utils.validation import check_is_fitted

    from spinerisk.riskmodel import load

    if isinstance(source, str | os.PathLike):
        from spinerisk.bundle import read_manifest

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No model bundle at {str(path)!r}.")
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest = read_manifest(path, sha256=sha256)
        return load(path, sha256=sha256), manifest, sha256
    if isinstance(source, RiskModel):
        check_is_fitted(source, "estimator_")
        return source, None, None
    raise TypeError(
        "create_app needs a fitted RiskModel or the path of a model bundle; "
        f"got {type(source).__name__}."
    )


def _model_info(
    model: RiskModel,
    manifest: dict[str, Any] | None,
    sha256: str | None,
    fields: list[str],
    max_records: int,
    max_body_bytes: int,
) -> ModelInfo:
    """GET /v1/model's answer; the identity is :func:`spinerisk.bundle.model_identity`'s
    (``model_version``: the bundle's creation time, ``unsaved`` for a model object)."""
    from spinerisk.bundle import model_identity

    identity = model_identity(manifest, sha256 or "", model=model)
    ep, schema = model.endpoint_, _schema_of(model)
    days = stated_horizons(model.horizons_)
    return ModelInfo(
        model_id=identity["model_id"],
        model_version=identity["model_version"],
        endpoint=ep.name,
        endpoint_kind=ep.kind,
        endpoint_description=ep.description,
        backend=model.backend_,
        horizons=[ep.in_unit(h) for h in days],
        time_unit=ep.time_unit,
        horizon_days=days,  # deprecated
        schema_name=schema.name,
        schema_version=schema.version,
        n_train=int(model.n_train_),
        trained_on_synthetic_data=trained_on_synthetic(model),
        created_utc=identity["created_utc"] if manifest is not None else None,
        sha256=sha256,
        versions=library_versions() if manifest is None else dict(manifest.get("versions") or {}),
        selection_reason=getattr(model, "selection_reason_", None),
        fields=fields,
        max_records=max_records,
        max_body_bytes=max_body_bytes,
        intervals=bool(getattr(model, "interval_models_", None)),
        intended_use=INTENDED_USE,
    )


# -- scoring ---------------------------------------------------------------------------
def _is_batch(body: BaseModel) -> bool:
    return "records" in type(body).model_fields


#: Largest request the event loop scores itself on the compiled path; larger ones go to
#: a worker thread. 200 records take a few milliseconds, about one switch interval of
#: the GIL (``sys.getswitchinterval()``, 5 ms): a worker thread would hold the GIL about
#: as long, so the loop would wait as much, and handing a 100-record batch to a thread
#: and back cost ~10% of the server's CPU per request (``benchmarks/bench_api.py``).
ON_LOOP_MAX_RECORDS = 200


async def _predict_off_loop_if_long(
    served: _Served, records: list[dict[str, Any]], interval: float | None
) -> list[dict[str, Any]]:
    """:func:`_predict` on the event loop for up to :data:`ON_LOOP_MAX_RECORDS` records on
    the compiled path when the model is free; otherwise in a worker thread, so that the
    loop never waits for a large batch, the batch path or the lock an explanation or a
    batch holds (it goes on reading and answering other requests meanwhile). The same
    rows either way."""
    quick = (
        served.fast is not None
        and served.audit_log is None
        and interval is None
        and len(records) <= ON_LOOP_MAX_RECORDS
    )
    if quick and served.lock.acquire(blocking=False):
        try:
            scored = _score(served, records, interval)
        finally:
            served.lock.release()
        return _rows(served, records, scored)
    return await run_in_threadpool(_predict, served, records, interval)


def _predict(
    served: _Served, records: list[dict[str, Any]], interval: float | None = None
) -> list[dict[str, Any]]:
    """Prediction rows (id, risk columns and, with ``interval``, their bounds, gate
    columns, warnings) of valid records."""
    with served.lock:
        scored = _score(served, records, interval)
    return _rows(served, records, scored)


def _score(
    served: _Served, records: list[dict[str, Any]], interval: float | None
) -> list[dict[str, Any]] | pd.DataFrame:
    """The compiled path's rows or the batch path's frame; the caller holds ``served.lock``."""
    # the per-record "warnings" field carries what DataQualityWarning summarises;
    # catch_warnings is process-global state, hence the lock (shared with /v1/explain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        if served.fast is not None and served.audit_log is None and interval is None:
            rows: list[dict[str, Any]] = served.fast.predict_risk(records, warning_lists=True)
            return rows
        # the refits run on the batch path
        frame: pd.DataFrame = served.model._predict(records, interval=interval, warning_lists=True)
        return frame


def _rows(
    served: _Served, records: list[dict[str, Any]], scored: list[dict[str, Any]] | pd.DataFrame
) -> list[dict[str, Any]]:
    if isinstance(scored, list):
        return scored
    if served.audit_log is not None:  # the audit log takes the scored frame
        _audit(served, records, scored)
    return _frame_rows(scored)


def _no_intervals_error(interval: float) -> JSONResponse:
    """422 for ?interval= on a model saved without bootstrap refits."""
    detail = [
        {
            "loc": ["query", "interval"],
            "msg": "interval needs a model with bootstrap refits (train it with --intervals N, "
            "or RiskModel.fit_intervals); the served model has none.",
            "type": "interval",
            "input": _jsonable_scalar(interval),
            "ctx": {"expected": "a model with bootstrap refits (GET /v1/model: intervals)"},
        }
    ]
    _log_rejection("POST /v1/predict", detail)
    return JSONResponse(status_code=422, content={"detail": detail})


def _frame_rows(risks: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a ``RiskModel.predict_risk`` frame as dicts, the id under its field."""
    name = risks.index.name
    return [
        {name: rid, **row} for rid, row in zip(risks.index, risks.to_dict("records"), strict=True)
    ]


def _audit(served: _Served, records: list[dict[str, Any]], risks: pd.DataFrame) -> None:
    from spinerisk.schema import validate

    model = served.model
    with warnings.catch_warnings():  # valid records (they were just scored)
        warnings.simplefilter("ignore", DataQualityWarning)
        checked = cast(
            pd.DataFrame, validate(pd.DataFrame.from_records(records), model.input_schema_)
        )  # on_invalid="raise": the frame, never a (valid, rejected) pair
    try:
        served.audit_log.log_predictions(
            model_info=served.audit_info(),
            inputs=checked[predictor_columns(model, checked)],
            outputs=risks,
            source="api",
        )
    except OSError as exc:
        logger.error("audit log could not be written (%s); no risk returned", type(exc).__name__)
        raise HTTPException(
            status_code=503, detail="The audit log could not be written; no risk was returned."
        ) from exc


def _explain(
    served: _Served, records: list[dict[str, Any]], top_k: int, horizon: float | None
) -> ExplainResponse:
    from spinerisk.explanation import explain

    with served.lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        expl = explain(served.model, records, horizon=horizon)
    sentences = expl.sentences(k=top_k).tolist()
    explained = []
    for i, rid in enumerate(expl.contributions.index):
        points = expl.risk_points.iloc[i]
        order = points.abs().sort_values(ascending=False, kind="stable").index[:top_k]
        explained.append(
            ExplainedRecord(
                id=str(rid),
                risk=float(expl.risk.iloc[i]),
                base_risk=float(expl.base_risk),
                contributions=[
                    FieldContribution(
                        field=str(field),
                        label=str(expl.labels.get(field, field)),
                        value=_jsonable_value(expl.values.iloc[i].get(field)),
                        contribution=float(expl.contributions.iloc[i][field]),
                        risk_points=float(points[field]),
                    )
                    for field in order
                ],
                sentence=str(sentences[i]),
            )
        )
    days = stated_horizon(expl.horizon)
    return ExplainResponse(
        model_id=served.info.model_id,
        model_version=served.info.model_version,
        endpoint=served.info.endpoint,
        horizon=None if days is None else served.model.endpoint_.in_unit(days),
        time_unit=served.model.endpoint_.time_unit,
        horizon_days=days,  # deprecated
        scale=str(expl.scale),
        method=str(expl.method),
        explanations=explained,
        note=f"{expl.note} Research software; not clinically validated.",
    )


def _jsonable_value(value: Any) -> str | float | bool | None:
    """A record value for JSON: missing as null, numbers as floats, codes as text."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value)


# -- errors ----------------------------------------------------------------------------
def _query_error(name: str, value: float, message: str, expected: str) -> JSONResponse:
    """422 for a query parameter of /v1/explain, in FastAPI's validation-error shape."""
    detail = [
        {
            "loc": ["query", name],
            "msg": message,
            "type": "horizon",
            "input": _jsonable_scalar(value),
            "ctx": {"expected": expected},
        }
    ]
    _log_rejection("POST /v1/explain", detail)
    return JSONResponse(status_code=422, content={"detail": detail})


def _jsonable_scalar(value: Any) -> Any:
    """A value safe to echo in JSON: scalars only, non-finite numbers and lone
    surrogates as text."""
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float | str):
        return _jsonable_scalar(value)
    return _text(str(value))


_TAGS = ("single", "batch")  # the tags of the request body's union


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header announces JSON (none at all is read as JSON)."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


#: JSON names of the Python types a parsed body can have.
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}  # fmt: skip


async def _request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with per-field errors (400 for a body that is not JSON); nothing is logged but
    counts and field names."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    content_type = request.headers.get("content-type")
    whole_body = [e for e in errors if [p for p in e.get("loc", ()) if p not in _TAGS] == ["body"]]
    if not _is_json(content_type) and whole_body:
        logger.info("%s %s: body is not JSON", request.method, request.url.path)
        shown = _text(str(content_type))[:100]
        detail = [
            {
                "loc": ["header", "content-type"],
                "msg": f"The body must be JSON sent with Content-Type: application/json; got "
                f"Content-Type {shown!r}.",
                "type": "content_type",
                "input": shown,
                "ctx": {"expected": "application/json"},
            }
        ]
        return JSONResponse(status_code=422, content={"detail": detail})
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        logger.info("%s %s: body is not valid JSON", request.method, request.url.path)
        reason = _text(str((bad_json[0].get("ctx") or {}).get("error", "JSON decode error")))
        return JSONResponse(
            status_code=400, content={"detail": f"The body is not valid JSON: {reason}."}
        )
    detail = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if len(loc) >= 2 and loc[0] == "body" and loc[1] in ("batch", "single"):
            del loc[1]  # the union tag: the client sent one shape, report in its terms
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) else _text(str(p)) for p in loc],
            "msg": _text(str(err.get("msg", ""))),
            "type": str(err.get("type", "")),
            "input": _jsonable_scalar(err.get("input")),
        }
        if loc == ["body"] and err.get("type") == "model_attributes_type":
            shape = _JSON_TYPES.get(type(err.get("input")), "value")
            item["msg"] = (
                'The body must be a JSON object: one record, or {"records": [...]} for '
                f"several; got a JSON {shape}."
            )
            item["input"] = shape
        if err.get("ctx"):
            item["ctx"] = {str(k): _plain(v) for k, v in err["ctx"].items()}
        detail.append(item)
    _log_rejection(f"{request.method} {request.url.path}", detail)
    return JSONResponse(status_code=422, content={"detail": detail})


def _schema_error_response(route: str, exc: SchemaValidationError, *, batch: bool) -> JSONResponse:
    """Schema and row-rule failures found by spinerisk's validation, as 422 per field."""
    detail = []
    for f in exc.failures.to_dict(orient="records"):
        loc: list[str | int] = ["body"]
        row, column = f.get("row"), f.get("column")
        if batch:
            loc.append("records")
            if row is not None and not pd.isna(row):
                loc.append(int(row))
        if isinstance(column, str):
            loc.append(_text(column))
        check = _text(str(f.get("check", "")))
        detail.append(
            {
                "loc": loc,
                "msg": _text(str(f.get("message", ""))),
                "type": "record_rule" if check.startswith("rule:") else "schema_check",
                "input": _jsonable_scalar(f.get("value")),
                "ctx": {"check": check, "expected": _text(str(f.get("expected", "")))},
            }
        )
    _log_rejection(route, detail)
    return JSONResponse(status_code=422, content={"detail": detail})


def _log_rejection(route: str, detail: list[dict[str, Any]]) -> None:
    fields = sorted({str(d["loc"][-1]) for d in detail if len(d["loc"]) > 1})
    logger.info(
        "%s: rejected with %d problem(s) in field(s) %s",
        route,
        len(detail),
        ", ".join(fields) or "-",
    )


class _QuietErrors:
    """Turn an unexpected exception into a bare 500, logging only its type.

    Exception messages can quote record values, so neither the message nor the
    traceback reaches the logs or the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except HTTPException:  # handled outside (the body-size limit signals with one)
            raise
        except UnicodeEncodeError:
            # text from the request that UTF-8 cannot carry (a lone surrogate such as
            # "\\ud800", valid as a JSON escape) reached an answer or a log: the request
            # is at fault, not the server
            if started:
                return
            logger.info("%s %s: text that is not valid Unicode", scope["method"], scope["path"])
            response = JSONResponse(
                status_code=400,
                content={
                    "detail": "The body holds text that is not valid Unicode (a lone "
                    "surrogate such as \\ud800); send UTF-8 text."
                },
            )
            await response(scope, receive, send)
        except Exception as exc:
            if started:  # a response went out already (the body-size limiter's 413)
                return
            logger.error(
                "%s %s: internal error (%s)", scope["method"], scope["path"], type(exc).__name__
            )
            response = JSONResponse(status_code=500, content={"detail": "Internal error."})
            await response(scope, receive, send)


class _AccessLog:
    """One access line per request: client, request line, status, records and time.

    Replaces uvicorn's access log (``spinerisk serve`` turns that off) and the former
    per-route line, so that a request costs one log line. The path is logged without
    its query string, never a body value. Under ``spinerisk serve`` the request hands a
    tuple to :class:`~spinerisk.api._access.AccessLogHandler`, which formats and writes
    it in a background thread; elsewhere the line is an ordinary ``logging`` record.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            fields = (
                time.time(),
                scope.get("client"),
                scope["method"],
                scope["path"],
                scope.get("http_version", "1.1"),
                status,
                scope.get(_RECORDS_KEY, 0),
                1000 * (time.perf_counter() - start),
            )
            write = writer_of(logger)
            if write is not None:
                write(fields)
            else:
                # the record is made directly: logger.info would also walk the stack to
                # find the calling line, which costs more than the rest of the line
                line = access_line(fields)
                logger.handle(
                    logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None)
                )
