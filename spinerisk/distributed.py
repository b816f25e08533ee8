"""Training on a dask.distributed cluster with ``xgboost.dask`` (needs the ``dask`` extra).

:func:`fit_dask` fits the boosted model of a binary endpoint on a cohort held as a Dask
dataframe, partition by partition: validation, eligibility, the feature matrix and the
targets are computed on the workers and the trees are grown by ``xgboost.dask`` across
them. The result, :class:`DaskBoostedModel`, predicts with the same risk API as
:class:`~spinerisk.RiskModel` (``predict_risk``), in this process.

Scoring on a cluster is :func:`spinerisk.scoring.score_dask`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.exceptions import DataQualityWarning

__all__ = ["DaskBoostedModel", "fit_dask"]


class DaskBoostedModel:
    """A gradient-boosted risk model trained on a Dask cluster (see :func:`fit_dask`).

    Parameters
    ----------
    endpoint : Endpoint
        The binary endpoint the model predicts.
    features : Pipeline
        Fitted native-encoding feature pipeline.
    booster : xgboost.Booster
        The trained booster (logistic objective).
    training_ranges : dict
        Per predictor, ``(min, max)`` or the set of codes seen in training.
    n_train : int
        Records the booster was trained on.
    schema : Schema or None, default=None
        None means :data:`spinerisk.SPINE_SCHEMA`.

    Attributes
    ----------
    endpoint_, features_, booster_, training_ranges_, n_train_, schema
        As passed.
    horizons_ : tuple of float
        The endpoint's horizon.
    id_field_ : str
        The schema's record id field.
    backend_ : str
        ``"xgboost_dask"``.

    Notes
    -----
    The model is not calibrated on held-out folds (as ``RiskModel``'s boosted binary
    models are): the logistic objective gives probabilities directly, and with the large
    cohorts this path is meant for they are usually well calibrated; check with
    :mod:`spinerisk.evaluation` before use. It is not saved as a bundle yet: save the
    booster with ``booster_.save_model("model.json")`` and rebuild the features.
    """

    def __init__(
        self,
        endpoint: Any,
        features: Any,
        booster: Any,
        training_ranges: dict[str, Any],
        n_train: int,
        schema: Any = None,
    ) -> None:
        self.endpoint_ = endpoint
        self.features_ = features
        self.booster_ = booster
        self.training_ranges_ = training_ranges
        self.n_train_ = n_train
        self.schema = schema
        self.horizons_ = tuple(endpoint.horizons)
        self.backend_ = "xgboost_dask"
        from spinerisk.schema.default import SPINE_SCHEMA

        self.id_field_ = (schema or SPINE_SCHEMA).id_field

    def __repr__(self) -> str:
        return (
            f"DaskBoostedModel(endpoint={self.endpoint_.name!r}, n_train={self.n_train_}, "
            f"rounds={self.booster_.num_boosted_rounds()})"
        )

    def predict_risk(self, records: Any) -> pd.DataFrame:
        """Risk per record at the endpoint's horizon, with warnings for unusual inputs.

        Parameters
        ----------
        records : DataFrame, dict or list of dicts
            Records with the schema's baseline fields.

        Returns
        -------
        DataFrame
            Indexed by record id: ``risk_<days>d`` and ``warnings``, as
            :meth:`RiskModel.predict_risk`.
        """
        from spinerisk.models._risk_model import _as_frame
        from spinerisk.monitor import input_warnings
        from spinerisk.schema._validate import validate

        checked = validate(_as_frame(records), self.schema)
        X = self.features_.transform(checked)
        risk = np.asarray(self.booster_.inplace_predict(X), dtype=float)
        out = pd.DataFrame(
            {f"risk_{round(self.horizons_[0]):d}d": risk},
            index=pd.Index(checked[self.id_field_].to_numpy(), name=self.id_field_),
        )
        out["warnings"] = input_warnings(self, checked).to_numpy(dtype=object)
        flagged = int((out["warnings"] != "").sum())
        if flagged:
            warnings.warn(
                f"{flagged} of {len(out)} records have values outside the training data "
                "(see the 'warnings' column); their risks are extrapolations.",
                DataQualityWarning,
                stacklevel=2,
            )
        return out


def fit_dask(
    cohort: Any,
    endpoint: str = "nonunion",
    backend: str = "xgboost",
    *,
    client: Any = None,
    sample_size: int = 50_000,
    n_estimators: int = 300,
    learning_rate: float = 0.05,
    max_depth: int = 3,
    random_state: int = 0,
    npartitions: int = 2,
) -> DaskBoostedModel:
    """Fit a boosted binary risk model on a Dask cluster with ``xgboost.dask``.

    Parameters
    ----------
    cohort : dask.dataframe.DataFrame or DataFrame
        Records with the schema's fields, outcomes included. A pandas frame is split
        into ``npartitions`` partitions.
    endpoint : {"collapse", "nonunion"}, default="nonunion"
        A binary endpoint.
    backend : {"xgboost"}, default="xgboost"
        Only XGBoost trains on Dask here.
    client : distributed.Client or None, default=None
        The cluster to use; None means the current default client.
    sample_size : int, default=50_000
        The feature pipeline is fitted on the first ``sample_size`` eligible records
        (see Notes); the booster uses all of them.
    n_estimators, learning_rate, max_depth : int, float, int
        Booster settings (fixed number of rounds: no early stopping on Dask).
    random_state : int, default=0
        Seed of the booster's row and column subsampling.
    npartitions : int, default=2
        Partitions for a pandas ``cohort``.

    Returns
    -------
    DaskBoostedModel

    Raises
    ------
    SchemaValidationError
        If any partition has an invalid record (every problem of that partition listed).
    ValueError
        For an endpoint that is not binary or a backend other than ``"xgboost"``.

    Notes
    -----
    The native feature pipeline learns little from data: the codes of each categorical
    field come from the schema, and it records which fields had missing values (for
    missing-value indicators). Fitting it on a sample is therefore the same as fitting
    it on all records unless a field is never missing in the sample but missing later;
    such a field gets no indicator (its missing values still reach the booster as NaN).
    Validation, eligibility, features and targets run on the workers, partition by
    partition; nothing but the sample and the training ranges is collected here.
    Competing-risks endpoints (future fracture) are not trained on Dask yet.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from distributed import Client, LocalCluster
    >>> import spinerisk as sr
    >>> from spinerisk.distributed import fit_dask
    >>> cohort = sr.make_spine_cohort(600, seed=0)  # synthetic records
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
    ...                   dashboard_address=None) as cluster, Client(cluster) as client:
    ...     model = fit_dask(cohort, client=client, n_estimators=20)
    >>> risk = model.predict_risk(cohort.head(3))
    >>> list(risk.columns)
    ['risk_183d', 'warnings']
    """
    from spinerisk._optional import import_optional

    dd = import_optional("dask.dataframe", extra="dask", purpose="training on Dask")
    xgb_dask = import_optional("xgboost.dask", extra="dask", purpose="training on Dask")
    distributed = import_optional("distributed", extra="dask", purpose="training on Dask")
    from spinerisk.endpoints import get_endpoint
    from spinerisk.features import make_feature_pipeline
    from spinerisk.schema._validate import validate

    ep = get_endpoint(endpoint)
    if ep.kind != "binary":
        raise ValueError(
            f"fit_dask trains binary endpoints (collapse, nonunion); {ep.name!r} is a "
            f"{ep.kind} endpoint. Fit it with spinerisk.RiskModel."
        )
    if backend != "xgboost":
        raise ValueError(f"fit_dask supports backend='xgboost' only; got backend={backend!r}.")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 10:
        raise ValueError(f"sample_size must be an integer >= 10; got {sample_size!r}.")
    if client is None:
        client = distributed.default_client()
    if isinstance(cohort, pd.DataFrame):
        cohort = dd.from_pandas(cohort, npartitions=npartitions)

    meta = validate(cohort.head(50, npartitions=-1))
    checked = cohort.map_partitions(validate, meta=meta.iloc[:0])
    eligible = checked.map_partitions(lambda p: p[ep.eligible(p)], meta=meta.iloc[:0])
    eligible = eligible.persist()
    sample = eligible.head(sample_size, npartitions=-1, compute=True)
    if len(sample) < 10:
        raise ValueError(
            f"Only {len(sample)} eligible records with the {ep.name} outcome observed."
        )
    features = make_feature_pipeline(encoding="native", include_treatment=ep.include_treatment)
    features.fit(sample)
    x_meta = features.transform(sample.head(2)).iloc[:0]
    X = eligible.map_partitions(features.transform, meta=x_meta)
    y = eligible.map_partitions(
        lambda p: pd.Series(ep.target(p).astype(np.int32), index=p.index),
        meta=pd.Series([], dtype=np.int32),
    )
    clf = xgb_dask.DaskXGBClassifier(
        enable_categorical=True,
        tree_method="hist",
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        max_depth=max_depth,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5,
        reg_lambda=1.0,
        random_state=random_state,
    )
    clf.client = client
    clf.fit(X, y)
    n_train = int(eligible.map_partitions(len).compute().sum())
    ranges = _training_ranges(eligible, ep)
    return DaskBoostedModel(ep, features, clf.get_booster(), ranges, n_train)


def _training_ranges(data: Any, ep: Any) -> dict[str, Any]:
    """``RiskModel.training_ranges_`` computed on a Dask dataframe."""
    import dask

    from spinerisk.schema.default import SPINE_SCHEMA

    lazy: dict[str, Any] = {}
    for name in ep.predictors(SPINE_SCHEMA):
        if name not in data.columns:
            continue
        spec = SPINE_SCHEMA[name]
        col = data[name]
        if spec.is_numeric and spec.categories is None:
            num = col.astype("float64")
            lazy[name] = (num.min(), num.max())
        elif spec.dtype in ("category", "bool") or spec.categories is not None:
            lazy[name] = col.dropna().astype(object).unique()
    (computed,) = dask.compute(lazy)
    ranges: dict[str, Any] = {}
    for name, value in computed.items():
        if isinstance(value, tuple):
            lo, hi = value
            if not (pd.isna(lo) or pd.isna(hi)):
                ranges[name] = (float(lo), float(hi))
        else:
            ranges[name] = set(pd.Series(value, dtype=object).tolist())
    return ranges
