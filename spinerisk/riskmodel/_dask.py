"""Training on a dask.distributed cluster with ``xgboost.dask`` (needs the ``dask`` extra),
beside the local training of :class:`RiskModel`.

:func:`fit_dask` fits the XGBoost model of an endpoint on a cohort held as a Dask
dataframe, partition by partition: validation, eligibility, the feature matrix and the
targets are computed on the workers and the trees are grown by ``xgboost.dask`` across
them.

* Future fracture (competing risks, death competing): one boosted Cox model per cause
  (``survival:cox``), with a Breslow baseline hazard per cause, combined into cumulative
  incidence functions by :class:`~spinerisk.models.CauseSpecificCIF`.
* Binary endpoints (collapse, nonunion): one logistic booster.

Either way the result is a fitted :class:`~spinerisk.RiskModel` with
``backend_="xgboost"``, built from the same parts ``RiskModel(..., backend="xgboost")``
uses and given its fitted state through :func:`spinerisk.models._state.set_fitted`, as
a local fit and a bundle do: it predicts (``predict_risk``, also on dicts through the
compiled fast path), saves as a bundle (``save`` / :func:`spinerisk.load`), is explained
(:func:`spinerisk.explain`), monitored (:mod:`spinerisk.monitor`) and scored
(:mod:`spinerisk.scoring`) unchanged. The differences from a local fit (binary: one
booster, early-stopped and sigmoid-calibrated on held-out records instead of five
cross-fitted ones; competing risks: a fixed number of rounds) are recorded in
``selection_reason_``.

Users import it from :mod:`spinerisk.distributed`, beside scoring on a cluster
(:func:`spinerisk.scoring.score_dask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from spinerisk.endpoints import ENDPOINTS, Endpoint, check_within_follow_up, get_endpoint
from spinerisk.features import make_feature_pipeline
from spinerisk.models._state import set_fitted
from spinerisk.riskmodel._model import RiskModel
from spinerisk.schema import Schema, validate

__all__ = ["fit_dask"]

_PURPOSE = "training on Dask"


def fit_dask(
    cohort: Any,
    endpoint: str | Endpoint = "nonunion",
    backend: str = "xgboost",
    *,
    client: Any = None,
    sample_size: int = 50_000,
    n_estimators: int = 300,
    learning_rate: float = 0.05,
    max_depth: int = 3,
    early_stopping_rounds: int | None = 50,
    validation_fraction: float = 0.2,
    random_state: int = 0,
    npartitions: int = 2,
    schema: Schema | None = None,
) -> RiskModel:
    """Fit a boosted risk model on a Dask cluster with ``xgboost.dask``.

    Parameters
    ----------
    cohort : dask.dataframe.DataFrame or DataFrame
        Records with the schema's fields, outcomes included. A pandas frame is split
        into ``npartitions`` partitions.
    endpoint : str or Endpoint, default="nonunion"
        A binary or competing-risks endpoint: a built-in one (collapse, nonunion,
        future_fracture, ...), an :class:`~spinerisk.Endpoint` or an endpoint file.
    backend : {"xgboost"}, default="xgboost"
        Only XGBoost trains on Dask here.
    client : distributed.Client or None, default=None
        The cluster to use; None means the current default client.
    sample_size : int, default=50_000
        The feature pipeline is fitted on a seeded random sample of about
        ``sample_size`` eligible records (see Notes), which also gives the model's
        training reference (``reference_``); the boosters use all records.
    n_estimators, learning_rate, max_depth : int, float, int
        Booster settings; ``n_estimators`` is the most rounds grown.
    early_stopping_rounds : int or None, default=50
        Binary endpoints: stop when the log loss on the held-out records has not
        improved for this many rounds and keep the booster at its best round. None
        grows ``n_estimators`` rounds on every eligible record, without a hold-out.
        The competing-risks boosters always grow ``n_estimators`` rounds on every
        record: XGBoost cannot evaluate its Cox loss on data spread over workers.
    validation_fraction : float, default=0.2
        Binary endpoints with early stopping: share of eligible records held out for
        early stopping and calibration, chosen by a seeded hash of the record id, so
        the split does not depend on the partitioning.
    random_state : int, default=0
        Seed of the sample and of the boosters' row and column subsampling.
    npartitions : int, default=2
        Partitions for a pandas ``cohort``.

    Returns
    -------
    RiskModel
        Fitted, ``backend_="xgboost"``, ``selection_=None`` and ``selection_reason_``
        saying it was trained on Dask; its parameters (``booster_params`` holds
        ``n_estimators``, ``learning_rate`` and ``max_depth``) describe the boosters.

    Raises
    ------
    SchemaValidationError
        If any partition has an invalid record (every problem of that partition listed).
    ValueError
        For an unknown endpoint, a backend other than ``"xgboost"``, a bad
        ``sample_size`` or booster setting, too few eligible records, or (future
        fracture) a cause without events or horizons beyond the last event.

    Notes
    -----
    The native feature pipeline learns little from data: the codes of each categorical
    field come from the schema, and it records which fields had missing values (for
    missing-value indicators). Fitting it on a sample is therefore the same as fitting
    it on all records unless a field is never missing in the sample but missing later;
    such a field gets no indicator (its missing values still reach the booster as NaN).
    Validation, eligibility, features and targets run on the workers, partition by
    partition.

    **Binary endpoints**: one ``binary:logistic`` booster (``DaskXGBClassifier`` with
    the settings of ``RiskModel``'s XGBoost classifier). With early stopping it grows on
    the records not held out, stops on the held-out ones, and a sigmoid (Platt)
    calibration is fitted on the held-out records' booster log-odds, as each member of
    a local fit is calibrated on its held-out fold; only those log-odds and outcomes
    (16 bytes per held-out record), the sample and the training ranges are collected
    here. ``estimator_`` has the shape of ``RiskModel``'s boosted binary model, a
    sigmoid ``CalibratedClassifierCV`` over ``Pipeline([("features", ...), ("model",
    EarlyStoppingClassifier)])``, with one member instead of five. Without early
    stopping the booster uses every record and the calibration is the identity
    (``a_=-1``, ``b_=0``: the booster's own probability); check it with
    :mod:`spinerisk.evaluation` on held-out data before use.

    **Future fracture (competing risks)**: one ``survival:cox`` booster per cause
    (1 subsequent fracture, 2 death), each trained with
    ``xgboost.dask.train`` on the label ``time`` for an event of that cause and
    ``-time`` otherwise (the other cause and censoring count as censored), as
    :class:`~spinerisk.models.CauseSpecificCIF` does locally. The Breslow baseline
    cumulative hazard of each cause needs every record's time, event code and booster
    margin, in time order: the margins are predicted on the workers
    (``xgboost.dask.predict(..., output_margin=True)``) and ``(time, event, margin per
    cause)`` is brought to this process, about 25 bytes per eligible record (float64
    time, int8 event, two float64 margins): 250 MB for 10 million records. The result
    is a plain :class:`~spinerisk.RiskModel` whose ``estimator_`` is a
    ``CauseSpecificCIF`` of fitted ``BoostedCoxSurvival`` models, set up exactly as
    ``fit`` sets them (without early stopping, so ``best_score_`` is None): it predicts,
    saves as a bundle, is explained and scored like a locally fitted model.
    ``selection_reason_`` says it was trained on Dask, and its training reference
    (``reference_``, for input checks and drift monitoring) is built from the random
    sample, not from every record.

    With early stopping (binary endpoints), the rounds are chosen on the held-out
    records; for the competing-risks boosters, and for other settings, choose them on a
    local sample, for example with ``spinerisk.models.tune``.

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
    ...     fx = fit_dask(cohort, "future_fracture", client=client, n_estimators=20)
    >>> type(model).__name__, model.backend_
    ('RiskModel', 'xgboost')
    >>> list(fx.predict_risk(cohort.head(3)).columns)
    ['risk_365d', 'risk_730d', 'risk_1826d', 'warnings']
    """
    from spinerisk._optional import import_optional

    dask = import_optional("dask", extra="dask", purpose=_PURPOSE)
    dd = import_optional("dask.dataframe", extra="dask", purpose=_PURPOSE)
    xgb_dask = import_optional("xgboost.dask", extra="dask", purpose=_PURPOSE)
    distributed = import_optional("distributed", extra="dask", purpose=_PURPOSE)

    ep = get_endpoint(endpoint)
    shaper = RiskModel(ep, schema=schema)  # resolves the schema and the predictors as fit does
    schema_ = shaper._schema()
    ep.check_schema(schema_)
    _check_request(ep, backend, sample_size, early_stopping_rounds, validation_fraction)
    booster = {"n_estimators": n_estimators, "learning_rate": learning_rate, "max_depth": max_depth}
    _check_booster(booster, early_stopping_rounds, validation_fraction)
    if client is None:
        client = distributed.default_client()
    if isinstance(cohort, pd.DataFrame):
        cohort = dd.from_pandas(cohort, npartitions=npartitions)

    records = _eligible_records(dask, cohort, ep, schema_)
    sample = _sample(records.eligible, records.n_train, sample_size, random_state)
    features = make_feature_pipeline(
        schema,
        encoding="native",
        include_treatment=ep.include_treatment,
        fields=shaper._fields(ep),
    )
    features.fit(sample)
    x_meta = features.transform(sample.head(2)).iloc[:0]
    job = _Job(
        client=client,
        xgb_dask=xgb_dask,
        ep=ep,
        features=features,
        sample=sample,
        eligible=records.eligible,
        X=records.eligible.map_partitions(features.transform, meta=x_meta),
        booster=booster,
        random_state=random_state,
        ranges=records.ranges,
        n_train=records.n_train,
        n_excluded=records.n_excluded,
        schema=schema,
    )
    if ep.kind == "competing":
        return _fit_competing(job)
    held = None
    if early_stopping_rounds is not None:
        held = records.eligible.map_partitions(
            _held_out,
            validation_fraction,
            random_state,
            schema_.id_field,
            meta=pd.Series([], dtype=bool),
        )
    return _fit_binary(job, early_stopping_rounds, held, records.columns)


# ---------------------------------------------------------------------------------------
# the request
# ---------------------------------------------------------------------------------------
def _check_request(
    ep: Endpoint,
    backend: str,
    sample_size: Any,
    early_stopping_rounds: Any,
    validation_fraction: Any,
) -> None:
    """Refuse an endpoint, backend or sample size that Dask training does not take."""
    if ep.kind not in ("binary", "competing"):
        raise ValueError(
            f"fit_dask trains the binary endpoints (collapse, nonunion) and the "
            f"competing-risks endpoint (future_fracture); {ep.name!r} is a {ep.kind} "
            "endpoint. Fit it with spinerisk.RiskModel."
        )
    if backend != "xgboost":
        raise ValueError(
            f"fit_dask supports backend='xgboost' only (XGBoost is the booster that trains "
            f"on Dask); got backend={backend!r}."
        )
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 10:
        raise ValueError(f"sample_size must be an integer >= 10; got {sample_size!r}.")


def _check_booster(
    booster: dict[str, Any], early_stopping_rounds: Any, validation_fraction: Any
) -> None:
    """The booster settings, checked as the boosted survival models check theirs."""
    from spinerisk.models._survival_base import check_number

    check_number("n_estimators", booster["n_estimators"], low=1, integer=True)
    check_number("learning_rate", booster["learning_rate"], low=0, low_open=True)
    check_number("max_depth", booster["max_depth"], low=1, integer=True)
    if early_stopping_rounds is not None:
        check_number("early_stopping_rounds", early_stopping_rounds, low=1, integer=True)
        check_number(
            "validation_fraction",
            validation_fraction,
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        )


# ---------------------------------------------------------------------------------------
# the records: validated, eligible, summarised and sampled on the workers
# ---------------------------------------------------------------------------------------
class _Records(NamedTuple):
    eligible: Any  # dask dataframe of the validated eligible records (persisted)
    columns: pd.Index  # the validated records' columns
    ranges: dict[str, Any]  # RiskModel.training_ranges_
    n_train: int
    n_excluded: int


def _eligible_records(dask: Any, cohort: Any, ep: Endpoint, schema: Schema) -> _Records:
    """Validate every partition (cohort-wide row numbers in errors, ids unique across
    partitions), keep the eligible records and summarise them, one small task per
    partition; partitions without eligible records are dropped (they would reach the
    pipeline and XGBoost empty)."""
    meta = validate(cohort.head(50, npartitions=-1), schema)
    lengths = cohort.map_partitions(len).compute()
    offsets = [0, *np.cumsum(np.asarray(lengths, dtype=np.int64)).tolist()[:-1]]
    _refuse_duplicate_ids(cohort, meta, schema.id_field)
    checked = cohort.map_partitions(_validate_partition, offsets, schema, meta=meta.iloc[:0])
    eligible = checked.map_partitions(
        lambda p: p[ep.eligible(p, schema)], meta=meta.iloc[:0]
    ).persist()
    summaries, n_checked = dask.compute(
        [dask.delayed(_partition_summary)(part, ep, schema) for part in eligible.to_delayed()],
        [dask.delayed(len)(part) for part in checked.to_delayed()],
    )
    n_train, ranges = _merge(summaries)
    kept = [i for i, summary in enumerate(summaries) if summary["n"] > 0]
    if 0 < len(kept) < len(summaries):
        eligible = eligible.partitions[kept]
    if n_train < 10:
        raise ValueError(f"Only {n_train} eligible records with the {ep.name} outcome observed.")
    return _Records(eligible, meta.columns, ranges, n_train, sum(n_checked) - n_train)


def _sample(eligible: Any, n_train: int, sample_size: int, random_state: int) -> pd.DataFrame:
    """A seeded random sample of about ``sample_size`` eligible records, here."""
    frac = min(1.0, sample_size / n_train)
    sample = eligible.sample(frac=frac, random_state=random_state).compute()
    if len(sample) < 10:  # a tiny fraction of a small cohort
        sample = eligible.head(max(sample_size, 10), npartitions=-1, compute=True)
    return sample


def _held_out(part: pd.DataFrame, fraction: float, seed: int, id_field: str) -> pd.Series:
    """Records held out for early stopping: a seeded hash of the id below ``fraction``,
    the same whatever the partitioning."""
    ids = part[id_field].astype(str).to_numpy(dtype=object)
    keyed = np.array([f"{seed}|{i}" for i in ids], dtype=object)
    h = pd.util.hash_array(keyed, categorize=False) % np.uint64(1_000_000)
    return pd.Series(h < fraction * 1_000_000, index=part.index)


def _validate_partition(
    part: pd.DataFrame,
    offsets: list[int],
    schema: Schema,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`spinerisk.validate` on one partition; errors give cohort-wide row numbers."""
    from spinerisk.exceptions import SchemaValidationError

    k = 0 if partition_info is None else int(partition_info["number"])
    try:
        return validate(part, schema)
    except SchemaValidationError as exc:
        failures = exc.failures.copy()
        rows = pd.to_numeric(failures["row"], errors="coerce")
        failures["row"] = (rows + offsets[k]).astype("Int64")
        raise SchemaValidationError(
            f"In partition {k} of the cohort (its row 0 is cohort row {offsets[k]}; the rows "
            f"below count from the start of the partition): {exc}",
            failures,
        ) from None


def _refuse_duplicate_ids(cohort: Any, meta: pd.DataFrame, id_field: str) -> None:
    """Identifiers must be unique across partitions, as :meth:`RiskModel.fit` requires;
    found with 64-bit hashes on the workers (the batch scorer's passes)."""
    from spinerisk.exceptions import SchemaValidationError
    from spinerisk.io import duplicated_within, hash_ids, id_candidates, id_text, repeated_hashes

    if id_field not in cohort.columns:
        return  # validation reports the missing column
    ids = cohort[id_field]
    hashes = ids.map_partitions(
        lambda s: pd.Series(hash_ids(id_text(s))), meta=(id_field, "uint64")
    ).compute()
    repeated = repeated_hashes([hashes.to_numpy(dtype=np.uint64)])
    if not len(repeated):
        return
    found = ids.map_partitions(
        lambda s: pd.Series(id_candidates(id_text(s), repeated), dtype=object),
        meta=(id_field, object),
    ).compute()
    dupes = sorted(duplicated_within(found.to_numpy(dtype=object)))
    if dupes:
        failures = pd.DataFrame(
            {
                "record_id": dupes,
                "row": pd.array([None] * len(dupes), dtype="Int64"),
                "column": id_field,
                "value": dupes,
                "check": "unique",
                "expected": f"a unique {id_field}",
                "message": [f"{id_field}={d!r} is a duplicate" for d in dupes],
            }
        )
        raise SchemaValidationError(
            f"{len(dupes)} {id_field} value(s) occur more than once in the cohort (across "
            f"partitions): {', '.join(map(repr, dupes[:10]))}"
            + (" ..." if len(dupes) > 10 else "")
            + f"; expected a unique {id_field}. No model was fitted.",
            failures,
        )


def _partition_summary(part: pd.DataFrame, ep: Endpoint, schema: Schema) -> dict[str, Any]:
    """Record count and per-predictor ranges of one partition (merged by ``_merge``)."""
    from spinerisk.reference import training_ranges

    return {"n": len(part), "ranges": training_ranges(part, ep, schema)}


def _merge(summaries: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Total records and ``RiskModel.training_ranges_`` from partition summaries."""
    ranges: dict[str, Any] = {}
    for summary in summaries:
        for name, value in summary["ranges"].items():
            old = ranges.get(name)
            if old is None:
                ranges[name] = value
            elif isinstance(value, tuple):
                ranges[name] = (min(old[0], value[0]), max(old[1], value[1]))
            else:
                ranges[name] = old | value
    return sum(s["n"] for s in summaries), ranges


# ---------------------------------------------------------------------------------------
# the fitted model
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    """What both kinds of endpoint train from: the cluster, the endpoint, the fitted
    feature pipeline, the records (a local sample, the eligible records and their
    feature matrix on the workers) and what the fitted model records about them."""

    client: Any
    xgb_dask: Any
    ep: Endpoint
    features: Any
    sample: pd.DataFrame
    eligible: Any
    X: Any
    booster: dict[str, Any]
    random_state: int
    ranges: dict[str, Any]
    n_train: int
    n_excluded: int
    schema: Schema | None


def _risk_model(job: _Job, *, features: Any, estimator: Any, reason: str) -> RiskModel:
    """A fitted RiskModel with the state ``RiskModel.fit`` sets."""
    from spinerisk.reference import build_reference

    ep = job.ep
    extra = {"early_stopping_rounds": None} if ep.kind != "binary" else {}
    model = RiskModel(
        ep.name if ep.name in ENDPOINTS and ENDPOINTS[ep.name] == ep else ep,
        backend="xgboost",
        booster_params={**job.booster, **extra},
        random_state=job.random_state,
        schema=job.schema,
    )
    schema = model._schema()
    set_fitted(
        model,
        endpoint_=ep,
        backend_="xgboost",
        features_=features,
        estimator_=estimator,
        horizons_=tuple(ep.model_horizons),
        schema_=schema,
        selection_=None,
        selection_reason_=(
            f"backend='xgboost' was requested; {reason}. The feature pipeline and the "
            f"training reference come from a random sample of {len(job.sample)} eligible "
            "records."
        ),
        training_ranges_=job.ranges,
        n_train_=job.n_train,
        n_excluded_=job.n_excluded,
        id_field_=schema.id_field,
    )
    set_fitted(model, reference_=build_reference(model, job.sample))
    return model


# ---------------------------------------------------------------------------------------
# binary endpoints: one logistic booster
# ---------------------------------------------------------------------------------------
def _fit_binary(job: _Job, rounds: int | None, held: Any, columns: pd.Index) -> RiskModel:
    """A logistic booster on the cluster, wrapped as RiskModel's calibrated ensemble."""
    from spinerisk.models import make_booster

    # the booster RiskModel(backend="xgboost") builds, with the Dask settings
    local = make_booster("xgboost", random_state=job.random_state, n_jobs=1).estimator
    local.set_params(**job.booster)
    settings = local.get_params()
    settings.pop("n_jobs")  # xgboost.dask uses each worker's threads
    y = job.eligible.map_partitions(_binary_label, job.ep, meta=pd.Series([], dtype=np.int32))
    if held is None:
        trained, best_score, calibrator = _grow(job, settings, y), float("nan"), _identity()
    else:
        trained, best_score, calibrator = _grow_stopped(job, settings, y, held, rounds)
    if trained.num_features() != job.features.transform(job.sample.head(2)).shape[1]:
        raise RuntimeError(  # pragma: no cover
            "The Dask booster and the feature pipeline disagree on the features."
        )
    stopper = _stopper(job, local, trained, best_score)
    estimator = _calibrated(job, stopper, calibrator, columns)
    if held is None:
        reason = (
            f"trained on a Dask cluster with xgboost.dask ({job.n_train} records, "
            f"{stopper.best_n_estimators_} rounds, no early stopping); not recalibrated "
            "(the booster's own probabilities: identity sigmoid on its log-odds)"
        )
    else:
        reason = (
            f"trained on a Dask cluster with xgboost.dask ({job.n_train} records; "
            f"{stopper.best_n_estimators_} rounds chosen by early stopping on the held-out "
            "records, which also calibrate it with a sigmoid on its log-odds)"
        )
    return _risk_model(job, features=None, estimator=estimator, reason=reason)


def _binary_label(part: pd.DataFrame, ep: Endpoint) -> pd.Series:
    """The binary outcome of one partition as XGBoost's label."""
    return pd.Series(ep.target(part).astype(np.int32), index=part.index)


def _identity() -> Any:
    """The sigmoid calibration that leaves the booster's probability as it is."""
    from sklearn.calibration import _SigmoidCalibration

    identity = _SigmoidCalibration()
    identity.a_, identity.b_ = np.float64(-1.0), np.float64(0.0)  # expit(margin)
    return identity


def _grow(job: _Job, settings: dict[str, Any], y: Any) -> Any:
    """All rounds on every eligible record: the booster."""
    on_dask = job.xgb_dask.DaskXGBClassifier(**settings)
    on_dask.client = job.client
    on_dask.fit(job.X, y)
    return on_dask.get_booster()


def _grow_stopped(
    job: _Job, settings: dict[str, Any], y: Any, held: Any, rounds: Any
) -> tuple[Any, float, Any]:
    """Grow on the records not held out, stop on the held-out ones and calibrate on
    them: the booster cut at its best round, its held-out log loss and the sigmoid."""
    from dask import compute as dask_compute
    from sklearn.calibration import _SigmoidCalibration
    from xgboost.core import XGBoostError

    X = job.X
    settings = {**settings, "early_stopping_rounds": int(rounds)}
    for attempt in (1, 2):
        on_dask = job.xgb_dask.DaskXGBClassifier(**settings)
        on_dask.client = job.client
        try:
            on_dask.fit(X[~held], y[~held], eval_set=[(X[held], y[held])], verbose=False)
            break
        except XGBoostError as exc:
            # The scheduler may place a partition's held-out part on another worker than
            # its training part; XGBoost then meets a worker without held-out records and
            # refuses it when the matrix has categories. The placement is the
            # scheduler's, not the data's: grown once more it is placed anew.
            if attempt == 2 or "cannot have empty input" not in str(exc):
                raise
    best = int(on_dask.best_iteration)
    trained = on_dask.get_booster()[: best + 1]
    # Platt scaling on the held-out records' log-odds, as a local fit calibrates
    # each member on its held-out fold
    margin, y_held = dask_compute(
        job.xgb_dask.predict(job.client, trained, X[held], output_margin=True), y[held]
    )
    y_held = np.asarray(y_held, dtype=np.int32)
    if len(np.unique(y_held)) < 2:
        raise ValueError(
            f"The {len(y_held)} held-out records (validation_fraction) have only one "
            "outcome; early stopping and calibration need both. Use more records or a "
            "larger validation_fraction."
        )
    calibrator = _SigmoidCalibration().fit(np.asarray(margin, dtype=np.float64), y_held)
    return trained, float(on_dask.best_score), calibrator


def _stopper(job: _Job, local: Any, trained: Any, best_score: float) -> Any:
    """The trained booster as the fitted ``EarlyStoppingClassifier`` of a local fit."""
    from xgboost import XGBClassifier

    from spinerisk.models import EarlyStoppingClassifier

    clf = XGBClassifier(**local.get_params())
    clf._Booster = trained  # what XGBClassifier.fit stores
    clf.n_classes_ = 2
    stopper = EarlyStoppingClassifier(local, random_state=job.random_state)
    stopper.validate_input(job.features.transform(job.sample), reset=True)  # n_features_in_, names
    stopper.estimator_ = clf
    stopper.best_n_estimators_ = int(trained.num_boosted_rounds())
    stopper.best_score_ = best_score  # held-out log loss; nan without early stopping
    stopper.backend_ = "xgboost"
    stopper.classes_ = np.array([False, True])
    return stopper


def _calibrated(job: _Job, stopper: Any, calibrator: Any, columns: pd.Index) -> Any:
    """RiskModel's boosted binary model, a sigmoid ``CalibratedClassifierCV`` over the
    features and the booster, with one member calibrated by ``calibrator``."""
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import validate_data

    classes = stopper.classes_
    pipe = Pipeline([("features", job.features), ("model", stopper)])
    calibrated = CalibratedClassifierCV(
        pipe,
        method="sigmoid",
        cv=StratifiedKFold(5, shuffle=True, random_state=job.random_state),
        ensemble=True,
    )
    validate_data(calibrated, job.sample.loc[:, columns].head(1), skip_check_array=True)
    calibrated.classes_ = classes
    calibrated.calibrated_classifiers_ = [
        _CalibratedClassifier(pipe, [calibrator], method="sigmoid", classes=classes)
    ]
    return calibrated


# ---------------------------------------------------------------------------------------
# competing risks: one boosted Cox model per cause
# ---------------------------------------------------------------------------------------
_CAUSES = (1, 2)


def _fit_competing(job: _Job) -> RiskModel:
    """Cause-specific boosted Cox models on the cluster, wrapped in a fitted RiskModel."""
    import dask

    from spinerisk.models import BoostedCoxSurvival

    # the same estimator RiskModel(backend="xgboost") builds, with the Dask settings
    base = BoostedCoxSurvival(
        **job.booster, early_stopping_rounds=None, random_state=job.random_state
    )
    base.check_boosting_params()
    time, event = _targets(job)  # checked before any booster grows
    boosters, margins = _cause_boosters(job, base)
    margins = list(dask.compute(*margins))
    cif = _cause_specific_cif(job, base, boosters, margins, time, event)
    reason = (
        f"trained on a Dask cluster with xgboost.dask ({job.n_train} records, "
        f"{job.booster['n_estimators']} rounds per cause, no early stopping: XGBoost cannot "
        "evaluate its Cox loss across workers)"
    )
    return _risk_model(job, features=job.features, estimator=cif, reason=reason)


def _cause_boosters(job: _Job, base: Any) -> tuple[list[Any], list[Any]]:
    """One ``survival:cox`` booster per cause, and its margins (still on the workers)."""
    from sklearn.utils import check_random_state

    seed = int(check_random_state(job.random_state).randint(np.iinfo(np.int32).max))
    params = base.booster_params(seed)
    params.pop("nthread")  # xgboost.dask uses each worker's threads
    xgb_dask, client = job.xgb_dask, job.client
    # XGBoost cannot evaluate its Cox loss on data spread over workers ("Cox metric does
    # not support distributed evaluation"), so these boosters grow a fixed number of rounds
    boosters, margins = [], []
    for cause in _CAUSES:
        label = job.eligible.map_partitions(
            _cause_label, job.ep, cause, meta=pd.Series([], dtype=np.float64)
        )
        dtrain = xgb_dask.DaskDMatrix(client, job.X, label, enable_categorical=True)
        rounds = int(job.booster["n_estimators"])
        bst = xgb_dask.train(client, params, dtrain, num_boost_round=rounds)["booster"]
        boosters.append(bst)
        margins.append(xgb_dask.predict(client, bst, job.X, output_margin=True))
    return boosters, margins


def _cause_label(part: pd.DataFrame, ep: Endpoint, cause: int) -> pd.Series:
    """XGBoost Cox label of one partition: time for an event of ``cause``, else -time."""
    y = ep.target(part)
    label = np.where(y["event"] == cause, y["time"], -y["time"]).astype(np.float64)
    return pd.Series(label, index=part.index)


def _time_event(part: pd.DataFrame, ep: Endpoint) -> pd.DataFrame:
    y = ep.target(part)
    return pd.DataFrame(
        {"time": y["time"].astype(np.float64), "event": y["event"].astype(np.int8)},
        index=part.index,
    )


def _targets(job: _Job) -> tuple[np.ndarray, np.ndarray]:
    """Time and event code of every eligible record, brought here (see :func:`fit_dask`),
    with the event codes, the causes and the horizons against follow-up checked."""
    te = job.eligible.map_partitions(
        _time_event,
        job.ep,
        meta=pd.DataFrame({"time": [], "event": []}).astype({"time": np.float64, "event": np.int8}),
    ).compute()
    time = te["time"].to_numpy()
    event = te["event"].to_numpy()
    n_train = job.n_train
    if len(time) != n_train:  # pragma: no cover - partitions lost or duplicated
        raise RuntimeError(f"Collected {len(time)} targets for {n_train} eligible records.")
    unknown = sorted(set(np.unique(event).tolist()) - {0, *_CAUSES})
    if unknown:
        raise ValueError(
            f"The {job.ep.name} target has event code(s) {unknown}; expected 0 (censored) or "
            f"one of the causes {list(_CAUSES)}."
        )
    absent = [c for c in _CAUSES if not (event == c).any()]
    if absent:
        raise ValueError(
            f"Cause(s) {absent} have no events among the {n_train} eligible records; a "
            "cause-specific model needs at least one event per cause."
        )
    check_within_follow_up(job.ep, job.ep.horizons, time, event)
    return time, event


def _cause_specific_cif(
    job: _Job,
    base: Any,
    boosters: list[Any],
    margins: list[Any],
    time: np.ndarray,
    event: np.ndarray,
) -> Any:
    """The boosters as fitted ``BoostedCoxSurvival`` models (Breslow baseline per cause)
    in a fitted ``CauseSpecificCIF``, set up as a local fit sets them."""
    from spinerisk.models import BoostedCoxSurvival, CauseSpecificCIF

    x_sample = job.features.transform(job.sample)
    estimators = []
    for cause, bst, margin in zip(_CAUSES, boosters, margins, strict=True):
        est = BoostedCoxSurvival(**base.get_params())
        est.validate_input(x_sample, reset=True)  # n_features_in_, feature_names_in_
        est.booster_ = bst
        est.n_estimators_ = int(bst.num_boosted_rounds())
        est.best_score_ = None
        m = np.asarray(margin, dtype=np.float64).ravel()
        est.lp_mean_ = float(m.mean())
        est.fit_baseline(time, event == cause, m - est.lp_mean_)
        estimators.append(est)
    cif = CauseSpecificCIF(base, causes=_CAUSES, event_of_interest=job.ep.event_of_interest)
    cif.validate_input(x_sample, reset=True)
    cif.estimators_ = estimators
    cif.causes_ = np.array(_CAUSES)
    cif.unique_times_ = np.unique(np.concatenate([e.unique_times_ for e in estimators]))
    return cif
