"""Model updating: adapt a fitted risk model to a new site, and compare it with the original.

:func:`update` applies the usual hierarchy of updating methods (keep, recalibration in
the large, recalibration, revision, refit), or chooses among them by the closed testing
procedure of Vergouwe et al. (2017), and returns an ordinary fitted
:class:`~spinerisk.RiskModel` whose ``lineage_`` (saved in its bundle) records the parent,
the method, the tests behind the choice, the date and a fingerprint of the update records.
"""

from __future__ import annotations

from spinerisk.update._update import METHODS, update

__all__ = ["METHODS", "update"]
