"""Synthetic datasets.

:func:`make_spine_cohort` simulates a SYNTHETIC cohort of acute osteoporotic vertebral
fractures (``mode="ovf"``, optionally with malignant fractures) or of traumatic spinal
fractures with cervical sub-cohorts (``mode="trauma"``), whose risk structure follows
published effect sizes. It is not real patient data and is not clinically validated. The
parameter classes hold every assumption of the cervical and malignant-fracture parts.
"""

from spinerisk.datasets._cohort import make_spine_cohort
from spinerisk.datasets._params import (
    CervicalMortalityParams,
    MalignantParams,
    OdontoidParams,
    TraumaParams,
)

__all__ = [
    "CervicalMortalityParams",
    "MalignantParams",
    "OdontoidParams",
    "TraumaParams",
    "make_spine_cohort",
]
