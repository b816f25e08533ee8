"""Synthetic datasets.

:func:`make_spine_cohort` simulates a SYNTHETIC cohort of acute osteoporotic vertebral
fractures whose risk structure follows published effect sizes. It is not real patient
data and is not clinically validated.
"""

from spinerisk.datasets._cohort import make_spine_cohort

__all__ = ["make_spine_cohort"]
