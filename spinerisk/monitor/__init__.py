"""Monitoring a deployed model: input checks, drift, performance over time, audit log.

- :func:`build_reference` summarises the training records of a model (stored in its
  bundle) so that new records can be compared with them later;
- :func:`input_warnings` / :func:`input_warning_table` flag, per record, values outside
  the training range, unseen categories and fields missing that were rarely missing;
- :func:`drift` compares a batch of new records with the reference (population stability
  index, Kolmogorov-Smirnov and chi-squared tests, predicted-risk shift, alert level);
- :func:`performance_over_time` measures calibration and discrimination per period on
  newly labelled records (time-to-event: only patients whose horizon has passed);
- :class:`AuditLog` appends one JSON line per prediction (hashes, never patient values;
  from :mod:`spinerisk.audit`, which scoring and the API write with);
- :func:`monitoring_report` puts it together as JSON and self-contained HTML.

Importing this package loads numpy and pandas only; scipy, scikit-learn, lifelines and
matplotlib are imported where used.
"""

from __future__ import annotations

from spinerisk.audit import AuditLog, bundle_info
from spinerisk.monitor._drift import ALERT_LEVELS, DriftReport, drift
from spinerisk.monitor._performance import performance_over_time
from spinerisk.monitor._report import MonitoringReport, monitoring_report
from spinerisk.reference import (
    REFERENCE_FORMAT,
    REFERENCE_VERSION,
    WARNING_CODES,
    build_reference,
    input_warning_table,
    input_warnings,
)

__all__ = [
    "ALERT_LEVELS",
    "REFERENCE_FORMAT",
    "REFERENCE_VERSION",
    "WARNING_CODES",
    "AuditLog",
    "DriftReport",
    "MonitoringReport",
    "build_reference",
    "bundle_info",
    "drift",
    "input_warning_table",
    "input_warnings",
    "monitoring_report",
    "performance_over_time",
]
