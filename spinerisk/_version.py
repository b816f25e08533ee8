"""The package's version, and the versions of the libraries a fitted model depends on."""

from __future__ import annotations

from importlib import metadata

__version__ = "0.1.0"

#: Distributions whose versions a bundle records and a model card and the API report.
VERSIONED = ("scikit-learn", "xgboost", "lightgbm", "lifelines", "numpy", "pandas", "skops")


def library_versions() -> dict[str, str | None]:
    """spinerisk's version and those of :data:`VERSIONED` in this process (None: not
    installed)."""
    versions: dict[str, str | None] = {"spinerisk": __version__}
    for dist in VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
