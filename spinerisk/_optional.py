"""Import optional dependencies with an install hint instead of a bare ImportError."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_optional"]

_PIP_NAMES = {"yaml": "pyyaml", "sklearn": "scikit-learn", "sksurv": "scikit-survival"}


def import_optional(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that says how to install it.

    Parameters
    ----------
    module : str
        Module to import, such as ``"typer"``.
    extra : str
        The spinerisk extra that installs it, such as ``"cli"``.
    purpose : str
        What it is needed for, for the message.

    Returns
    -------
    module

    Examples
    --------
    >>> from spinerisk._optional import import_optional
    >>> import_optional("json", extra="core", purpose="tests").__name__
    'json'
    >>> import_optional("no_such_module_xyz", extra="api", purpose="serving")
    Traceback (most recent call last):
    ...
    ImportError: spinerisk needs 'no_such_module_xyz' for serving. Install it with: pip install "spinerisk[api]"
    """  # noqa: E501
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = _PIP_NAMES.get(module, module)
        raise ImportError(
            f"spinerisk needs {name!r} for {purpose}. "
            f'Install it with: pip install "spinerisk[{extra}]"'
        ) from exc
