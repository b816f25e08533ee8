"""Request and response models of the HTTP API, generated from the clinical-record schema.

The request record is built with :func:`pydantic.create_model` from the same
:class:`~spinerisk.schema.FieldSpec` objects that drive validation, so the API can never
drift from the schema: one field per baseline predictor of the endpoint plus the record
identifier, with the type, unit, range and code list of its spec. Records are strict
(``"80"`` is not a number, ``false`` is not ``0``) and unknown fields are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from spinerisk.schema import FieldSpec, Schema

__all__ = [
    "ErrorItem",
    "ExplainedRecord",
    "ExplainResponse",
    "FieldContribution",
    "HealthResponse",
    "MessageResponse",
    "ModelInfo",
    "PredictResponse",
    "RecordRisk",
    "ValidationErrorResponse",
    "batch_model",
    "record_model",
    "records_reader",
    "request_body_type",
]

_STRICT = ConfigDict(extra="forbid", strict=True)


def _describe(spec: FieldSpec) -> str:
    """OpenAPI description of a field: meaning, unit, allowed values, missingness."""
    parts = [spec.description.rstrip(".") + "."]
    if spec.unit:
        parts.append(f"Unit: {spec.unit}.")
    parts.append(f"Allowed: {spec.expected()}.")
    if spec.nullable:
        parts.append("Missing: send null or leave the field out.")
    if spec.role == "treatment":
        parts.append("Treatment is confounded by indication; its effect is not causal.")
    return " ".join(parts)


def _field_type(spec: FieldSpec) -> Any:
    """Python type of a field for pydantic, constraints included."""
    if spec.categories is not None:
        codes = tuple(float(c) if spec.dtype == "float" else c for c in spec.categories)
        return Literal[codes]
    if spec.dtype == "float":
        return Annotated[float, Field(ge=spec.min, le=spec.max, allow_inf_nan=False)]
    if spec.dtype == "int":
        lo = None if spec.min is None else int(spec.min)
        hi = None if spec.max is None else int(spec.max)
        return Annotated[int, Field(ge=lo, le=hi)]
    if spec.dtype == "bool":
        return bool
    if spec.dtype == "date":
        return dt.date
    if spec.pattern is not None:  # the schema matches patterns in full
        return Annotated[str, Field(pattern=f"^(?:{spec.pattern})$")]
    return Annotated[str, Field(max_length=1000)]


def record_model(schema: Schema, fields: list[str], *, name: str = "Record") -> type[BaseModel]:
    """Build the strict pydantic model of one record from schema field specs.

    Parameters
    ----------
    schema : Schema
        The clinical-record schema.
    fields : list of str
        Fields of the record, in order (the id field and the endpoint's predictors).
    name : str, default="Record"
        Model (and OpenAPI component) name.

    Returns
    -------
    type of pydantic.BaseModel
        Strict (``strict=True``), refusing unknown fields (``extra="forbid"``). Fields that
        the schema requires and forbids missing are required; the others default to null.

    Examples
    --------
    >>> from spinerisk.schema import SPINE_SCHEMA
    >>> Record = record_model(SPINE_SCHEMA, ["patient_id", "age_years", "sex", "hu_l1"])
    >>> Record(patient_id="P-1", age_years=80.5, sex="F").hu_l1 is None
    True
    >>> Record.model_json_schema()["properties"]["hu_l1"]["description"][:44]
    'CT trabecular attenuation at L1 (or the adja'
    >>> Record(patient_id="P-1", age_years="80", sex="F")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Record
    age_years
      Input should be a valid number [type=float_type, input_value='80', input_type=str]
    ...
    """
    definitions: dict[str, Any] = {}
    for field, (annotation, required) in _annotations(schema, fields).items():
        description = _describe(schema[field])
        if required:
            definitions[field] = (annotation, Field(..., description=description))
        else:
            definitions[field] = (annotation, Field(None, description=description))
    model: type[BaseModel] = create_model(
        name,
        __config__=_STRICT,
        __doc__=f"One clinical record (schema {schema.name!r} v{schema.version}).",
        **definitions,
    )
    return model


def _annotations(schema: Schema, fields: list[str]) -> dict[str, tuple[Any, bool]]:
    """Per field of a request record: its pydantic type (``| None`` unless required) and
    whether it is required. The one source of the record model and the records reader."""
    out: dict[str, tuple[Any, bool]] = {}
    for field in fields:
        spec = schema[field]
        annotation = _field_type(spec)
        required = spec.required and not spec.nullable and not spec.generated
        out[field] = (annotation, True) if required else (annotation | None, False)
    return out


def records_reader(
    schema: Schema, fields: list[str], max_records: int
) -> Callable[[Any], list[dict[str, Any]] | None]:
    """A function giving the records of a parsed request body as the request models
    (:func:`request_body_type`) give them, without building the models.

    The body is validated by pydantic against the same field types (strict, unknown
    fields refused, 1 to ``max_records`` records), into plain dicts: every field in the
    record model's order, None for a field left out, as ``dict(record.__dict__)`` of
    the model. A body the models would refuse gives None: the caller then lets FastAPI
    validate it, which reports every problem as usual. About twice as fast as the
    models for a 100-record batch (no model instance per record).

    Parameters
    ----------
    schema : Schema
        The clinical-record schema.
    fields : list of str
        Fields of the record, in order (as for :func:`record_model`).
    max_records : int
        Largest number of records in one request (as for :func:`batch_model`).

    Returns
    -------
    callable
        ``read(body) -> list of dict or None``; ``body`` is the parsed JSON.
    """
    from typing import NotRequired

    from pydantic import TypeAdapter, ValidationError
    from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

    annotations = {
        field: annotation if required else NotRequired[annotation]
        for field, (annotation, required) in _annotations(schema, fields).items()
    }
    typed_dict: Any = TypedDict  # built from names known at run time
    values = typed_dict("RecordValues", annotations)
    values.__pydantic_config__ = _STRICT
    records = Annotated[list[values], Field(min_length=1, max_length=max_records)]  # type: ignore[valid-type]
    batch = typed_dict("RecordValuesBatch", {"records": records})
    batch.__pydantic_config__ = _STRICT
    one_adapter, batch_adapter = TypeAdapter(values), TypeAdapter(batch)
    blank = dict.fromkeys(fields)

    def read(body: Any) -> list[dict[str, Any]] | None:
        try:
            if _shape(body) == "batch":
                items = batch_adapter.validate_python(body)["records"]
            else:
                items = [one_adapter.validate_python(body)]
        except ValidationError:
            return None
        out = []
        for item in items:
            record = blank.copy()  # the model's field order, None where left out
            record.update(item)
            out.append(record)
        return out

    return read


def batch_model(record: type[BaseModel], max_records: int) -> type[BaseModel]:
    """Build the ``{"records": [...]}`` request model for up to ``max_records`` records.

    Parameters
    ----------
    record : type of pydantic.BaseModel
        The record model (see :func:`record_model`).
    max_records : int
        Largest number of records in one request.

    Returns
    -------
    type of pydantic.BaseModel
    """
    field = Field(
        min_length=1,
        max_length=max_records,
        description=f"Records to score: 1 to {max_records}; record ids must be unique.",
    )
    model: type[BaseModel] = create_model(
        "RecordBatch",
        __config__=_STRICT,
        __doc__="Several records in one request.",
        records=(list[record], field),  # type: ignore[valid-type]
    )
    return model


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "records" in value else "single"


def request_body_type(record: type[BaseModel], batch: type[BaseModel]) -> Any:
    """Request body: one record object, or ``{"records": [...]}``.

    A body with a ``records`` key is a batch; any other body is one record. Validation
    errors are reported against the chosen shape only.

    Parameters
    ----------
    record, batch : type of pydantic.BaseModel
        See :func:`record_model` and :func:`batch_model`.

    Returns
    -------
    type
        An annotated union for a FastAPI body parameter.
    """
    return Annotated[
        Annotated[batch, Tag("batch")] | Annotated[record, Tag("single")],
        Discriminator(_shape),
    ]


# -- responses ------------------------------------------------------------------------
class RecordRisk(BaseModel):
    """Risk of one record."""

    id: str = Field(description="Record identifier, as sent.")
    risk: dict[str, float | None] = Field(
        description="Probability of the outcome by horizon, keyed by the horizon in the "
        "endpoint's unit ('183d', '60mo', '1y'; 'outcome' for an endpoint without a horizon); "
        "null when a malignancy gate puts the record out of scope."
    )
    risk_interval: dict[str, list[float | None]] | None = Field(
        None,
        description="With ?interval=0.9: the lower and upper bounds of each risk's interval "
        "of that coverage, keyed like 'risk' (from the model's bootstrap refits: how much the "
        "risk would move were the model developed on another sample; not a range for the "
        "patient's outcome).",
    )
    warnings: list[str] = Field(
        description="Inputs outside the training data ('out_of_range:<field>=...', "
        "'unseen_category:<field>=...'): the risk is an extrapolation."
    )
    status: str | None = Field(
        None,
        description="With a malignancy gate: in_scope, warning, or out_of_scope (no risk is "
        "given: the fracture may be malignant; work-up first).",
    )
    p_malignant: float | None = Field(
        None, description="With a malignancy gate: probability of a malignant fracture."
    )
    status_reason: str | None = Field(None, description="Why the status is not in_scope.")


class PredictResponse(BaseModel):
    """Risks of the records of one request."""

    model_id: str = Field(description="Identifier of the model that scored the records.")
    model_version: str = Field(description="Version of that model (creation time, UTC).")
    endpoint: str = Field(description="Outcome predicted (collapse, nonunion, future_fracture).")
    horizons: list[float] = Field(
        description="Prediction horizons in the endpoint's time unit ('time_unit'); empty "
        "for a binary outcome recorded without a horizon."
    )
    time_unit: str = Field(
        description="Unit of 'horizons' and of the risk keys: the endpoint's time unit "
        "(days, weeks, months or years)."
    )
    horizon_days: list[float] = Field(
        description="The same horizons in days (deprecated: removed in the next release).",
        deprecated=True,
    )
    predictions: list[RecordRisk]


class FieldContribution(BaseModel):
    """Contribution of one clinical field to one record's risk."""

    field: str = Field(description="Clinical field (schema name).")
    label: str = Field(description="Short clinical label of the field.")
    value: str | float | bool | None = Field(description="The record's value of the field.")
    contribution: float = Field(
        description="Additive contribution on the model's margin scale (see 'scale')."
    )
    risk_points: float = Field(
        description="The contribution in percentage points of risk (positive raises it); "
        "an apportioning of risk minus base risk, not a causal effect."
    )


class ExplainedRecord(BaseModel):
    """Risk of one record with the fields that move it most."""

    id: str = Field(description="Record identifier, as sent.")
    risk: float = Field(description="Predicted probability at the explained horizon.")
    base_risk: float = Field(description="Risk of the reference (average training record).")
    contributions: list[FieldContribution] = Field(
        description="Fields that move the risk most (by absolute percentage points), largest first."
    )
    sentence: str = Field(description="The explanation in plain language.")


class ExplainResponse(BaseModel):
    """Explanations of the records of one request."""

    model_id: str
    model_version: str
    endpoint: str
    horizon: float | None = Field(
        description="Horizon of the explained risk, in the endpoint's time unit ('time_unit'); "
        "null for a binary outcome recorded without a horizon."
    )
    time_unit: str = Field(description="Unit of 'horizon': the endpoint's time unit.")
    horizon_days: float | None = Field(
        description="The same horizon in days (deprecated: removed in the next release).",
        deprecated=True,
    )
    scale: str = Field(
        description="Margin scale of 'contribution': log-odds, log-hazard or log-time "
        "(for log-time a positive contribution means a later event, i.e. lower risk)."
    )
    method: str = Field(description="How the contributions were computed.")
    explanations: list[ExplainedRecord]
    note: str = Field(
        description="Contributions describe the model, not causes (and, when the model reads "
        "a treatment field, that treatment is confounded by indication)."
    )


class ModelInfo(BaseModel):
    """What the served model is: manifest and model-card summary."""

    model_id: str
    model_version: str
    endpoint: str
    endpoint_kind: str
    endpoint_description: str
    backend: str
    horizons: list[float] = Field(
        description="Prediction horizons in the endpoint's time unit ('time_unit'); empty "
        "for a binary outcome recorded without a horizon."
    )
    time_unit: str = Field(
        description="Unit of 'horizons' and of the risk keys: the endpoint's time unit "
        "(days, weeks, months or years)."
    )
    horizon_days: list[float] = Field(
        description="The same horizons in days (deprecated: removed in the next release).",
        deprecated=True,
    )
    schema_name: str
    schema_version: str
    n_train: int = Field(description="Records the model was trained on.")
    trained_on_synthetic_data: bool | None = Field(
        description="True when the training records were labelled synthetic (simulated "
        "patients); null when the bundle has no training reference to tell."
    )
    created_utc: str | None
    sha256: str | None = Field(description="sha256 of the bundle file (null if not loaded).")
    versions: dict[str, str | None] = Field(description="Library versions at training time.")
    selection_reason: str | None
    fields: list[str] = Field(description="Fields a request record may contain.")
    max_records: int = Field(description="Largest number of records per request.")
    max_body_bytes: int = Field(description="Largest request body in bytes.")
    intervals: bool = Field(
        False,
        description="Whether the model has bootstrap refits, so /v1/predict?interval= can "
        "give per-patient risk intervals.",
    )
    intended_use: str


class HealthResponse(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok"]
    model_loaded: bool
    model_id: str


class ErrorItem(BaseModel):
    """One problem with the request (FastAPI's validation-error shape)."""

    loc: list[str | int] = Field(
        description="Where: ['body', field] for one record, ['body', 'records', i, field] "
        "for a batch."
    )
    msg: str
    type: str
    input: Any = Field(None, description="The offending value as sent (scalars only).")
    ctx: dict[str, Any] | None = None


class ValidationErrorResponse(BaseModel):
    """Every problem found in the request; nothing was scored."""

    detail: list[ErrorItem]


class MessageResponse(BaseModel):
    """An error with a single message."""

    detail: str
