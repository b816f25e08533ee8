"""HTTP prediction API (FastAPI) around one fitted :class:`~spinerisk.RiskModel`.

Needs the ``api`` extra (fastapi, uvicorn). ``spinerisk serve --model m.srb`` runs it
with uvicorn; :func:`create_app` builds the application for any ASGI server or for tests.
Nothing in :mod:`spinerisk` imports this package.

Routes: ``POST /v1/predict``, ``POST /v1/explain``, ``GET /v1/model``, ``GET /health``.
"""

from __future__ import annotations

from spinerisk._optional import import_optional

import_optional("fastapi", extra="api", purpose="the HTTP API")

from spinerisk.api._app import INTENDED_USE, create_app  # noqa: E402
from spinerisk.api._models import batch_model, record_model  # noqa: E402

__all__ = ["INTENDED_USE", "batch_model", "create_app", "record_model"]
