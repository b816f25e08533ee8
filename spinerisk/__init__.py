"""spinerisk: prognostic risk models after osteoporotic and traumatic spinal fracture.

Validated, calibrated and explained risk estimates for vertebral collapse, nonunion and
future fracture (with death as a competing risk). ``import spinerisk`` is light: the
public names below load their modules on first use.

Examples
--------
>>> import spinerisk as sr
>>> cohort = sr.make_spine_cohort(100, seed=0)
>>> cohort.attrs["synthetic"]
True
"""

from __future__ import annotations as _annotations

import importlib as _importlib
import typing as _typing

from spinerisk._version import __version__

if _typing.TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from spinerisk.datasets import make_spine_cohort
    from spinerisk.endpoints import Endpoint, get_endpoint, load_endpoint
    from spinerisk.evaluation import (
        Comparator,
        EvaluationReport,
        centre_split,
        choose_threshold,
        evaluate,
        model_card,
        temporal_split,
    )
    from spinerisk.exceptions import (
        ArtifactError,
        DataQualityWarning,
        MappingError,
        RecordsReadError,
        SchemaValidationError,
    )
    from spinerisk.explanation import Explanation, explain
    from spinerisk.features import make_feature_pipeline
    from spinerisk.io import ColumnMapping, apply_mapping, load_mapping, read_records
    from spinerisk.riskmodel import RiskModel, load, save
    from spinerisk.schema import (
        SPINE_SCHEMA,
        DerivedFeature,
        FieldSpec,
        RowRule,
        Schema,
        SchemaFileError,
        ValidationResult,
        load_schema,
        validate,
    )
    from spinerisk.scoring import score_dask, score_file
    from spinerisk.summary import table_one
    from spinerisk.update import update

__all__ = [
    "SPINE_SCHEMA",
    "ArtifactError",
    "ColumnMapping",
    "Comparator",
    "DerivedFeature",
    "Endpoint",
    "DataQualityWarning",
    "EvaluationReport",
    "Explanation",
    "FieldSpec",
    "MappingError",
    "RecordsReadError",
    "RiskModel",
    "RowRule",
    "Schema",
    "SchemaFileError",
    "SchemaValidationError",
    "ValidationResult",
    "__version__",
    "apply_mapping",
    "centre_split",
    "choose_threshold",
    "evaluate",
    "explain",
    "get_endpoint",
    "load",
    "load_endpoint",
    "load_mapping",
    "load_schema",
    "make_feature_pipeline",
    "make_spine_cohort",
    "model_card",
    "read_records",
    "save",
    "score_dask",
    "score_file",
    "table_one",
    "temporal_split",
    "update",
    "validate",
]

# public name -> module that defines it (loaded lazily, PEP 562)
_LAZY = {
    "SPINE_SCHEMA": "spinerisk.schema",
    "FieldSpec": "spinerisk.schema",
    "RowRule": "spinerisk.schema",
    "Schema": "spinerisk.schema",
    "DerivedFeature": "spinerisk.schema",
    "SchemaFileError": "spinerisk.schema",
    "load_schema": "spinerisk.schema",
    "load_endpoint": "spinerisk.endpoints",
    "ValidationResult": "spinerisk.schema",
    "validate": "spinerisk.schema",
    "ArtifactError": "spinerisk.exceptions",
    "DataQualityWarning": "spinerisk.exceptions",
    "MappingError": "spinerisk.exceptions",
    "RecordsReadError": "spinerisk.exceptions",
    "SchemaValidationError": "spinerisk.exceptions",
    "ColumnMapping": "spinerisk.io",
    "apply_mapping": "spinerisk.io",
    "load_mapping": "spinerisk.io",
    "read_records": "spinerisk.io",
    "make_spine_cohort": "spinerisk.datasets",
    "Endpoint": "spinerisk.endpoints",
    "get_endpoint": "spinerisk.endpoints",
    "RiskModel": "spinerisk.riskmodel",
    "load": "spinerisk.riskmodel",
    "save": "spinerisk.riskmodel",
    "explain": "spinerisk.explanation",
    "Explanation": "spinerisk.explanation",
    "make_feature_pipeline": "spinerisk.features",
    "table_one": "spinerisk.summary",
    "EvaluationReport": "spinerisk.evaluation",
    "evaluate": "spinerisk.evaluation",
    "temporal_split": "spinerisk.evaluation",
    "centre_split": "spinerisk.evaluation",
    "Comparator": "spinerisk.evaluation",
    "choose_threshold": "spinerisk.evaluation",
    "model_card": "spinerisk.evaluation",
    "score_dask": "spinerisk.scoring",
    "score_file": "spinerisk.scoring",
    "update": "spinerisk.update",
}


# submodules reachable as attributes without an explicit import (``sr.monitor.drift``)
_SUBMODULES = frozenset(
    {
        "api",
        "bundle",
        "distributed",
        "evaluation",
        "explanation",
        "fastpath",
        "reference",
        "riskmodel",
        "metrics",
        "monitor",
        "scoring",
    }
)


def __getattr__(name: str) -> _typing.Any:
    if name in _SUBMODULES:
        return _importlib.import_module(f"spinerisk.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spinerisk' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | {n for n in globals() if n.startswith("_")})
