"""Append-only audit log of predictions: JSON lines, hashes instead of patient values.

The record of what was predicted, written by batch scoring
(:func:`spinerisk.scoring.score_file`) and the HTTP API, part of monitoring a deployed
model: it sits below scoring and monitoring, so that the two stay independent of each
other. :func:`bundle_info` is the
identity of a bundle file those lines name (:func:`spinerisk.bundle.model_identity`).
``spinerisk.monitor`` re-exports both names.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import math
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import ArtifactError

__all__ = ["AuditLog", "bundle_info"]

_SOURCES = ("cli", "api", "python")


class AuditLog:
    """Append-only JSON-lines log of predictions, safe with concurrent writers.

    Each call writes whole lines with a single ``os.write`` on a file opened with
    ``O_APPEND``, under an exclusive ``fcntl.flock``: lines from several processes never
    interleave and none is lost. Nothing in the file is ever rewritten.

    Parameters
    ----------
    path : str or path-like
        The log file; created (mode 0600) if absent.
    key : bytes, str or None, default=None
        Secret key for record hashes. With a key, hashes are HMAC-SHA256 and cannot be
        recomputed by anyone without the key; without one they are plain SHA-256 (see
        Notes).
    fsync : bool, default=False
        Call ``os.fsync`` after each write (durable across a power cut, slower).

    Attributes
    ----------
    path : Path
    hash_method : {"sha256", "hmac-sha256"}

    Notes
    -----
    No patient value and no identifier is written in clear: each record is represented
    by ``record_hash`` (hash of a canonical JSON of its present input values: missing
    values are left out, numbers are floats, dates at midnight are ``YYYY-MM-DD``; pass
    the validated predictor fields, as the scorer and the API do, and a record gets the
    same hash on every path) and ``id_hash``
    (hash of its identifier), plus the predicted risks and the warning codes (field
    names, not values). Clinical records have low entropy (a handful of plausible ages,
    levels and scores), so an **unsalted** SHA-256 of a record can be reversed by
    hashing candidate records until one matches. Pass a secret ``key`` (kept outside the
    log, for example in the deployment's secret store) so that hashes are HMACs; the
    same key lets an auditor check that a given record was scored. Rotating the key
    breaks the link between old and new hashes, by design.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from spinerisk.audit import AuditLog
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     log = AuditLog(pathlib.Path(tmp) / "audit.jsonl", key="not-a-real-secret")
    ...     log.append({"event": "model_loaded", "model_id": "demo"})
    ...     line = json.loads((pathlib.Path(tmp) / "audit.jsonl").read_text())
    >>> line["event"], sorted(line)
    ('model_loaded', ['event', 'model_id', 'timestamp'])
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        self._key = key.encode() if isinstance(key, str) else key
        if self._key is not None and not self._key:
            raise ValueError("key must not be empty; pass None for plain SHA-256 hashes.")
        self.fsync = fsync
        self.hash_method = "sha256" if self._key is None else "hmac-sha256"

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r}, hash_method={self.hash_method!r})"

    def append(self, event: dict[str, Any]) -> None:
        """Append one event as one JSON line (a UTC ``timestamp`` is added if absent).

        Parameters
        ----------
        event : dict
            JSON-serialisable content. Do not put patient values here.
        """
        if not isinstance(event, dict):
            raise TypeError(f"event must be a dict; got {type(event).__name__}.")
        line = {"timestamp": _now(), **event}
        self._write([_dumps(line)])

    def log_predictions(
        self,
        *,
        model_info: dict[str, Any],
        inputs: pd.DataFrame,
        outputs: pd.DataFrame,
        source: str,
    ) -> int:
        """Append one line per scored record; return the number of lines written.

        Parameters
        ----------
        model_info : dict
            ``model_id`` and ``model_sha256`` of the model (see :func:`bundle_info`);
            other keys are ignored.
        inputs : DataFrame
            The records as scored, in the same order as ``outputs``.
        outputs : DataFrame
            The result of :meth:`RiskModel.predict_risk` for ``inputs``: ``risk_*``
            columns and ``warnings``; its index holds the record ids.
        source : {"cli", "api", "python"}
            Which path made the prediction.

        Returns
        -------
        int
            Lines written (one per record).

        Notes
        -----
        Each line holds ``timestamp`` (UTC, ISO 8601), ``source``, ``model_id``,
        ``model_sha256``, ``hash`` (the method), ``id_hash``, ``record_hash``,
        ``outputs`` (``{"risk_<days>d": risk}``) and ``warnings`` (codes such as
        ``"out_of_range:age_years"``, without values). All lines of one call are written
        with one ``os.write``.
        """
        from spinerisk.reference import warning_codes

        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}; got source={source!r}.")
        if not isinstance(inputs, pd.DataFrame) or not isinstance(outputs, pd.DataFrame):
            raise TypeError("inputs and outputs must be DataFrames.")
        if len(inputs) != len(outputs):
            raise ValueError(
                f"inputs has {len(inputs)} records but outputs has {len(outputs)}; pass the "
                "records exactly as scored."
            )
        risk_cols = [c for c in outputs.columns if str(c).startswith("risk_")]
        codes = (
            warning_codes(outputs["warnings"]).tolist()
            if "warnings" in outputs.columns
            else [[] for _ in range(len(outputs))]
        )
        id_field = outputs.index.name
        columns = sorted(c for c in inputs.columns if c != id_field)
        ids = [str(v) for v in outputs.index]
        risks = outputs[risk_cols].to_numpy(dtype=float)
        stamp = _now()
        base = {
            "timestamp": stamp,
            "source": source,
            "model_id": model_info.get("model_id"),
            "model_sha256": model_info.get("model_sha256"),
            "hash": self.hash_method,
        }
        lines = []
        for i, record in enumerate(inputs[columns].itertuples(index=False, name=None)):
            present = {
                c: v
                for c, v in zip(columns, map(_canonical, record), strict=True)
                if v is not None  # a missing value and an absent field hash alike
            }
            canonical = _dumps(present)
            lines.append(
                _dumps(
                    {
                        **base,
                        "id_hash": self._hash(ids[i]),
                        "record_hash": self._hash(canonical),
                        "outputs": {
                            c: _number(v) for c, v in zip(risk_cols, risks[i], strict=True)
                        },
                        "warnings": codes[i],
                    }
                )
            )
        self._write(lines)
        return len(lines)

    def _hash(self, text: str) -> str:
        data = text.encode()
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        payload = ("\n".join(lines) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(payload)
                while view:  # one write for regular files; loop only if it is short
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def bundle_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """Identity of a bundle file, for scores and audit lines: what
    :func:`spinerisk.bundle.model_identity` calls the model, with the file's sha256.

    Parameters
    ----------
    path : str or path-like
        A bundle written by :meth:`RiskModel.save`.

    Returns
    -------
    dict
        ``model_id`` (``"<endpoint>-<backend>-<created>-<first 12 hex of sha256>"``),
        ``model_version`` (the model's own version: its bundle's creation time, UTC),
        ``model_sha256`` (of the whole file), ``endpoint``, ``backend``,
        ``created_utc`` and ``saved_by`` (``<spinerisk version>+bundle.<format>``).

    Raises
    ------
    ArtifactError
        If there is no file at ``path``, it cannot be read or it is not a valid bundle.
    """
    from spinerisk.bundle import model_identity, read_manifest

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"No model bundle at {str(path)!r}.")
    sha = _sha256(path)
    return model_identity(read_manifest(path, sha256=sha), sha)


def _sha256(path: Path) -> str:
    """sha256 of a file, read in blocks (bounded memory)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ArtifactError(f"Cannot read bundle {str(path)!r}: {exc}") from exc
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _dumps(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _number(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _canonical(v: Any) -> Any:
    """One value in a representation that does not depend on the dtype it arrived in."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, pd.Timestamp | datetime | date | np.datetime64):
        ts = pd.Timestamp(v)
        if ts is pd.NaT:
            return None
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    return str(v)
