"""Units of time shared by every step (the one definition of a year in days)."""

from __future__ import annotations

__all__ = ["DAYS_PER_YEAR"]

#: Days in a year (Julian year): the project's conversion between years and days, used by
#: endpoints' time units, the generator, sample-size calculations and explanations.
DAYS_PER_YEAR = 365.25
