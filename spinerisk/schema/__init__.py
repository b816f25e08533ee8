"""Clinical-record schema: field specs, the default spine schema, schema files and
validation."""

from spinerisk.schema._expr import ExpressionError
from spinerisk.schema._files import (
    FileProblem,
    SchemaFileError,
    check_schema_file,
    load_schema,
    schema_from_dict,
    schema_to_dict,
)
from spinerisk.schema._infer import infer_schema
from spinerisk.schema._spec import DTYPES, ROLES, DerivedFeature, FieldSpec, RowRule, Schema
from spinerisk.schema._text import NA_VALUES, number_text_problem
from spinerisk.schema._validate import ValidationResult, validate
from spinerisk.schema.default import (
    LEVELS,
    REGIONS,
    SPINE_SCHEMA,
    TLJ_LEVELS,
    region_of_level,
    resolve_schema,
)

__all__ = [
    "DTYPES",
    "LEVELS",
    "NA_VALUES",
    "REGIONS",
    "ROLES",
    "SPINE_SCHEMA",
    "TLJ_LEVELS",
    "DerivedFeature",
    "ExpressionError",
    "FieldSpec",
    "FileProblem",
    "RowRule",
    "Schema",
    "SchemaFileError",
    "ValidationResult",
    "check_schema_file",
    "infer_schema",
    "load_schema",
    "number_text_problem",
    "region_of_level",
    "resolve_schema",
    "schema_from_dict",
    "schema_to_dict",
    "validate",
]
