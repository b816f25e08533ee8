"""Clinical-record schema: field specs, the default spine schema and validation."""

from spinerisk.schema._spec import DTYPES, ROLES, FieldSpec, RowRule, Schema
from spinerisk.schema.default import (
    LEVELS,
    REGIONS,
    SPINE_SCHEMA,
    TLJ_LEVELS,
    region_of_level,
)

__all__ = [
    "DTYPES",
    "LEVELS",
    "REGIONS",
    "ROLES",
    "SPINE_SCHEMA",
    "TLJ_LEVELS",
    "FieldSpec",
    "RowRule",
    "Schema",
    "region_of_level",
]
