"""Saving a fitted model to a bundle file and loading it back (:mod:`spinerisk.bundle`
does the checking and the format)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spinerisk.bundle import load_bundle, save_bundle
from spinerisk.riskmodel._model import RiskModel

__all__ = ["load", "save"]


def load(
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    verify_key_env: str | None = None,
) -> RiskModel:
    """Load a fitted :class:`RiskModel` from a bundle file, safely.

    Every check of :func:`spinerisk.bundle.load_bundle` runs before any object is built
    (size and member limits, sha256 of each member, an allow-list of types, no pickle);
    see there for what each option proves.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save` or :meth:`RiskModel.save`. Load only from trusted
        storage.
    sha256 : str or None, default=None
        Expected sha256 (hex) of the whole file, from a trusted register.
    verify_key_env : str or None, default=None
        Name of the environment variable holding the HMAC key the bundle was signed
        with; the signature is then required.

    Returns
    -------
    RiskModel

    Raises
    ------
    ArtifactError
        If the file is not a valid, untampered spinerisk bundle.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import spinerisk as sr
    >>> cohort = sr.make_spine_cohort(400, seed=0)
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = sr.save(model, pathlib.Path(tmp) / "m.srb")
    ...     again = sr.load(path)
    >>> again.predict_risk(cohort.head(2)).equals(model.predict_risk(cohort.head(2)))
    True
    """
    return load_bundle(path, sha256=sha256, verify_key_env=verify_key_env, model_class=RiskModel)


def save(
    model: RiskModel, path: str | os.PathLike[str], *, sign_key_env: str | None = None
) -> Path:
    """Save a fitted model as one safe bundle file (the same as ``model.save(path)``).

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    path : str or path-like
        Target file, conventionally ``*.srb``.
    sign_key_env : str or None, default=None
        Name of an environment variable holding a secret key (at least 32 bytes): the
        manifest is signed with HMAC-SHA256, checked by ``load(path, verify_key_env=...)``.

    Returns
    -------
    Path
    """
    result: Any = save_bundle(model, path, sign_key_env=sign_key_env)
    return Path(result)
