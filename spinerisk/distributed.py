"""Training and scoring on a dask.distributed cluster (needs the ``dask`` extra).

* :func:`fit_dask` fits the XGBoost model of a binary or competing-risks endpoint on a
  cohort held as a Dask dataframe, with ``xgboost.dask`` (it lives beside the rest of
  training, in :mod:`spinerisk.riskmodel`);
* :func:`score_dask` scores a Dask dataframe partition by partition with the batch
  scorer's chunk function (from :mod:`spinerisk.scoring`).

This is the module users import them from::

    from spinerisk.distributed import fit_dask, score_dask
"""

from __future__ import annotations

from spinerisk.riskmodel import fit_dask
from spinerisk.scoring import score_dask

__all__ = ["fit_dask", "score_dask"]
