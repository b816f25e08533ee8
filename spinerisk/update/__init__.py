"""Model updating: adapt a fitted risk model to a new site, and compare it with the original.

:func:`update` applies the usual hierarchy of updating methods (keep, recalibration in
the large, recalibration, revision, refit), or chooses among them by the closed testing
procedure of Vergouwe et al. (2017), and returns an ordinary fitted
:class:`~spinerisk.RiskModel` whose ``lineage_`` (saved in its bundle) records the parent,
the method, the tests behind the choice, the date and a fingerprint of the update records.
:func:`update_report` and :func:`compare_models` put the original and the updated model
side by side on the site's records, with paired bootstrap differences.

``spinerisk.update`` is both this package and, as ``sr.update(model, cohort)``, the
function :func:`update`: calling the package calls the function.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import Any as _Any

from spinerisk.update._report import UpdateReport, compare_models, update_report
from spinerisk.update._update import METHODS, update

__all__ = ["METHODS", "UpdateReport", "compare_models", "update", "update_report"]


class _CallablePackage(_types.ModuleType):
    """Importing ``spinerisk.update`` binds the package as ``spinerisk.update``, where
    ``sr.update(model, cohort)`` expects the function; calling the package calls it."""

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        return update(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
