"""Settings under which recorded outputs were written, for tests that compare against
them (shared by the spine parity and bootstrap golden tests)."""

from __future__ import annotations

from typing import Any
from unittest import mock


def fixed_cox_penalty() -> Any:
    """A context in which the linear backend's Cox penalty is 0.1, as it was when the
    recordings were written (it has been chosen by cross-validation since, issue 14):
    those tests check the schema's rules and the bootstrap engine, not the penalty."""
    return mock.patch("spinerisk.models._survival._penalty_by_cv", return_value=(0.1, None))
