"""``spinerisk serve``: the HTTP prediction API for one model bundle, run with uvicorn."""

from __future__ import annotations

import copy
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from spinerisk.cli._common import (
    AUDIT_KEY_ENV_HELP,
    BANNER,
    NOT_VALIDATED,
    SHA256_HELP,
    VERIFY_KEY_ENV_HELP,
    audit_key,
    stderr,
    typer,
)

# settings handed to worker processes when --workers > 1 (uvicorn imports the factory)
_ENV = {
    "model": "SPINERISK_SERVE_MODEL",
    "max_records": "SPINERISK_SERVE_MAX_RECORDS",
    "max_body_bytes": "SPINERISK_SERVE_MAX_BODY_BYTES",
    "audit_log": "SPINERISK_SERVE_AUDIT_LOG",
    "audit_key_env": "SPINERISK_SERVE_AUDIT_KEY_ENV",
    "sha256": "SPINERISK_SERVE_SHA256",
    "verify_key_env": "SPINERISK_SERVE_VERIFY_KEY_ENV",
}


def serve(
    model: Annotated[
        Path,
        typer.Option(
            help="Model bundle written by RiskModel.save (.srb). Load only from trusted storage."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    max_records: Annotated[
        int, typer.Option(help="Largest number of records per request.", min=1)
    ] = 1000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body in bytes (larger gives 413).", min=1)
    ] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    audit_log: Annotated[
        Path | None,
        typer.Option(help="Append every prediction to this audit log (spinerisk.monitor)."),
    ] = None,
    audit_key_env: Annotated[str | None, typer.Option(help=AUDIT_KEY_ENV_HELP)] = None,
    log_level: Annotated[
        str, typer.Option(help="Server log level: critical, error, warning, info or debug.")
    ] = "info",
    sha256: Annotated[str | None, typer.Option(help=SHA256_HELP)] = None,
    verify_key_env: Annotated[str | None, typer.Option(help=VERIFY_KEY_ENV_HELP)] = None,
) -> None:
    """Serve a model bundle over HTTP: POST /v1/predict, POST /v1/explain, GET /v1/model.

    The bundle is checked and loaded before the server starts (exit code 2 if it
    cannot be, or if it does not have the --sha256 given or a valid signature under the
    key named by --verify-key-env). Logs hold request lines, status codes, counts and timings, never
    record values. Listens on 127.0.0.1 unless --host says otherwise; put a TLS proxy
    with authentication in front of it before exposing it to a network.
    """
    from spinerisk._optional import import_optional

    uvicorn = import_optional("uvicorn", extra="api", purpose="spinerisk serve")
    import_optional("fastapi", extra="api", purpose="spinerisk serve")
    err = stderr()
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        err.print(
            f"error: --log-level {log_level!r} is not one of critical, error, warning, info, "
            "debug.",
            markup=False,
        )
        raise typer.Exit(code=2)
    try:
        key = audit_key(audit_log, audit_key_env)
        application = _build(
            model, max_records, max_body_bytes, audit_log, key, sha256, verify_key_env
        )
    except (ValueError, TypeError, ImportError, OSError) as exc:
        err.print(f"error: cannot serve {str(model)!r}: {exc}", markup=False)
        raise typer.Exit(code=2) from exc
    if getattr(application.state, "trained_on_synthetic_data", None):
        err.print(BANNER, style="bold red", markup=False)
    else:  # the user's own records: no synthetic label, and no claim of validity either
        err.print(NOT_VALIDATED, markup=False)
    err.print(
        f"Serving {_model_id(application)} on http://{host}:{port} "
        f"(docs at /docs; {workers} worker(s)).",
        markup=False,
    )
    log_config = _log_config(uvicorn, log_level)
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_config=log_config, access_log=False)
        return
    os.environ[_ENV["model"]] = str(model)
    os.environ[_ENV["max_records"]] = str(max_records)
    os.environ[_ENV["max_body_bytes"]] = str(max_body_bytes)
    if audit_log is not None:
        os.environ[_ENV["audit_log"]] = str(audit_log)
    if audit_key_env is not None:  # the variable's name; workers read the key themselves
        os.environ[_ENV["audit_key_env"]] = audit_key_env
    if sha256 is not None:  # each worker checks the bundle it loads again
        os.environ[_ENV["sha256"]] = sha256
    if verify_key_env is not None:
        os.environ[_ENV["verify_key_env"]] = verify_key_env
    uvicorn.run(
        "spinerisk.cli._serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config,
        access_log=False,  # the API writes one access line per request itself
        # a worker loads and checks the bundle before it answers uvicorn's health check
        # (about 3.5 s of CPU); the default 5 s killed and restarted workers in a loop on a
        # busy machine
        timeout_worker_healthcheck=60,
    )


def _build(
    model: Path,
    max_records: int,
    max_body_bytes: int,
    audit_log: Path | None,
    key: str | None = None,
    sha256: str | None = None,
    verify_key_env: str | None = None,
) -> Any:
    from spinerisk.api import create_app
    from spinerisk.bundle import require_bundle

    log = None
    if audit_log is not None:
        from spinerisk.monitor import AuditLog

        log = AuditLog(audit_log, key=key)
    with require_bundle(sha256=sha256, verify_key_env=verify_key_env):
        application = create_app(
            model,
            max_records=max_records,
            max_body_bytes=max_body_bytes,
            audit_log=log,
            wait_compiled=True,  # no request shares the CPU with the C compiler
        )
    # the model and the libraries are loaded for good: out of the collector's sight, so
    # that a full collection does not walk them in the middle of a request (tail latency)
    gc.collect()
    gc.freeze()
    return application


def _model_id(application: Any) -> str:
    return str(getattr(application.state, "model_id", "the model"))


def app_from_environment() -> Any:
    """Build the app from ``SPINERISK_SERVE_*`` variables (uvicorn worker factory)."""
    audit = os.environ.get(_ENV["audit_log"])
    key_env = os.environ.get(_ENV["audit_key_env"])
    return _build(
        Path(os.environ[_ENV["model"]]),
        int(os.environ[_ENV["max_records"]]),
        int(os.environ[_ENV["max_body_bytes"]]),
        None if audit is None else Path(audit),
        None if key_env is None else os.environ[key_env],
        os.environ.get(_ENV["sha256"]),
        os.environ.get(_ENV["verify_key_env"]),
    )


def _log_config(uvicorn: Any, level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the API's own logger: one access line per request (client,
    request line, status, records, milliseconds; no values), formatted and written in
    batches by a background thread so that a request pays only for queueing a tuple."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["handlers"]["spinerisk_api"] = {
        "()": "spinerisk.cli._serve.queued_stderr",
        "formatter": "default",
    }
    config["loggers"]["spinerisk.api"] = {
        "handlers": ["spinerisk_api"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def queued_stderr() -> logging.Handler:
    """Handler of the ``spinerisk.api`` logger under ``spinerisk serve``: stderr, formatted
    and written in batches by a background thread (a dictConfig factory)."""
    from spinerisk.api._access import AccessLogHandler

    return AccessLogHandler(sys.stderr)
