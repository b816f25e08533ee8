"""Training on a dask.distributed cluster with ``xgboost.dask`` (needs the ``dask`` extra).

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
uses: it predicts (``predict_risk``, also on dicts through the compiled fast path),
saves as a bundle (``save`` / :func:`spinerisk.load`), is explained
(:func:`spinerisk.explanation`), monitored (:mod:`spinerisk.monitor`) and scored
(:mod:`spinerisk.scoring`) unchanged. The differences from a local fit (binary: one
booster, early-stopped and sigmoid-calibrated on held-out records instead of five
cross-fitted ones; competing risks: a fixed number of rounds) are recorded in
``selection_reason_``.

Scoring on a cluster is :func:`spinerisk.scoring.score_dask`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fit_dask"]


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
    early_stopping_rounds: int | None = 50,
    validation_fraction: float = 0.2,
    random_state: int = 0,
    npartitions: int = 2,
    schema: Any = None,
) -> Any:
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

    dask = import_optional("dask", extra="dask", purpose="training on Dask")
    dd = import_optional("dask.dataframe", extra="dask", purpose="training on Dask")
    xgb_dask = import_optional("xgboost.dask", extra="dask", purpose="training on Dask")
    distributed = import_optional("distributed", extra="dask", purpose="training on Dask")
    from spinerisk.endpoints import get_endpoint
    from spinerisk.features import make_feature_pipeline
    from spinerisk.models._survival_base import _check_number
    from spinerisk.schema._validate import validate

    ep = get_endpoint(endpoint)
    from spinerisk.riskmodel import RiskModel

    shaper = RiskModel(ep, schema=schema)  # resolves the schema and the predictors as fit does
    schema_ = shaper._schema()
    ep.check_schema(schema_)
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
    _check_number("n_estimators", n_estimators, low=1, integer=True)
    _check_number("learning_rate", learning_rate, low=0, low_open=True)
    _check_number("max_depth", max_depth, low=1, integer=True)
    if early_stopping_rounds is not None:
        _check_number("early_stopping_rounds", early_stopping_rounds, low=1, integer=True)
        _check_number(
            "validation_fraction",
            validation_fraction,
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        )
    if client is None:
        client = distributed.default_client()
    if isinstance(cohort, pd.DataFrame):
        cohort = dd.from_pandas(cohort, npartitions=npartitions)

    meta = validate(cohort.head(50, npartitions=-1), schema_)
    lengths = cohort.map_partitions(len).compute()
    offsets = [0, *np.cumsum(np.asarray(lengths, dtype=np.int64)).tolist()[:-1]]
    _refuse_duplicate_ids(cohort, meta, schema_.id_field)
    checked = cohort.map_partitions(_validate_partition, offsets, schema_, meta=meta.iloc[:0])
    eligible = checked.map_partitions(lambda p: p[ep.eligible(p, schema_)], meta=meta.iloc[:0])
    eligible = eligible.persist()
    # one small task per partition: counts and training ranges
    summaries, n_checked = dask.compute(
        [dask.delayed(_partition_summary)(part, ep, schema_) for part in eligible.to_delayed()],
        [dask.delayed(len)(part) for part in checked.to_delayed()],
    )
    n_train, ranges = _merge(summaries)
    # partitions without eligible records would reach the pipeline and XGBoost empty
    kept = [i for i, summary in enumerate(summaries) if summary["n"] > 0]
    if 0 < len(kept) < len(summaries):
        eligible = eligible.partitions[kept]
    if n_train < 10:
        raise ValueError(f"Only {n_train} eligible records with the {ep.name} outcome observed.")
    frac = min(1.0, sample_size / n_train)
    sample = eligible.sample(frac=frac, random_state=random_state).compute()
    if len(sample) < 10:  # a tiny fraction of a small cohort
        sample = eligible.head(max(sample_size, 10), npartitions=-1, compute=True)
    features = make_feature_pipeline(
        schema,
        encoding="native",
        include_treatment=ep.include_treatment,
        fields=shaper._fields(ep),
    )
    features.fit(sample)
    x_meta = features.transform(sample.head(2)).iloc[:0]
    X = eligible.map_partitions(features.transform, meta=x_meta)
    booster = {"n_estimators": n_estimators, "learning_rate": learning_rate, "max_depth": max_depth}
    held = None
    if early_stopping_rounds is not None and ep.kind == "binary":
        held = eligible.map_partitions(
            _held_out,
            validation_fraction,
            random_state,
            schema_.id_field,
            meta=pd.Series([], dtype=bool),
        )
    stopping = {"rounds": early_stopping_rounds, "held": held}
    if ep.kind == "competing":
        return _fit_competing(
            client,
            xgb_dask,
            ep,
            features,
            sample,
            eligible,
            X,
            booster,
            random_state,
            ranges=ranges,
            n_train=n_train,
            n_excluded=sum(n_checked) - n_train,
            schema=schema,
        )
    return _fit_binary(
        client,
        xgb_dask,
        ep,
        features,
        sample,
        eligible,
        X,
        booster,
        random_state,
        stopping,
        ranges=ranges,
        n_train=n_train,
        n_excluded=sum(n_checked) - n_train,
        columns=meta.columns,
        schema=schema,
    )


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
    schema: Any,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`spinerisk.validate` on one partition; errors give cohort-wide row numbers."""
    from spinerisk.exceptions import SchemaValidationError
    from spinerisk.schema._validate import validate

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
    from spinerisk.scoring._chunk import _duplicated_within, _id_text
    from spinerisk.scoring._sources import _candidates, _hash_ids, _repeated

    if id_field not in cohort.columns:
        return  # validation reports the missing column
    ids = cohort[id_field]
    hashes = ids.map_partitions(
        lambda s: pd.Series(_hash_ids(_id_text(s))), meta=(id_field, "uint64")
    ).compute()
    repeated = _repeated([hashes.to_numpy(dtype=np.uint64)])
    if not len(repeated):
        return
    found = ids.map_partitions(
        lambda s: pd.Series(_candidates(_id_text(s), repeated), dtype=object),
        meta=(id_field, object),
    ).compute()
    dupes = sorted(_duplicated_within(found.to_numpy(dtype=object)))
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


def _fit_binary(
    client: Any,
    xgb_dask: Any,
    ep: Any,
    features: Any,
    sample: pd.DataFrame,
    eligible: Any,
    X: Any,
    booster: dict[str, Any],
    random_state: int,
    stopping: dict[str, Any],
    *,
    ranges: dict[str, Any],
    n_train: int,
    n_excluded: int,
    columns: pd.Index,
    schema: Any = None,
) -> Any:
    """A logistic booster on the cluster, wrapped as RiskModel's calibrated ensemble."""
    from dask import compute as dask_compute
    from sklearn.calibration import (
        CalibratedClassifierCV,
        _CalibratedClassifier,
        _SigmoidCalibration,
    )
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import validate_data
    from xgboost import XGBClassifier

    from spinerisk.models._binary import EarlyStoppingClassifier, _xgboost_classifier

    # the booster RiskModel(backend="xgboost") builds, with the Dask settings
    local = _xgboost_classifier(random_state=random_state, n_jobs=1).set_params(**booster)
    settings = local.get_params()
    settings.pop("n_jobs")  # xgboost.dask uses each worker's threads
    y = eligible.map_partitions(
        lambda p: pd.Series(ep.target(p).astype(np.int32), index=p.index),
        meta=pd.Series([], dtype=np.int32),
    )
    identity = _SigmoidCalibration()
    identity.a_, identity.b_ = np.float64(-1.0), np.float64(0.0)  # expit(margin)
    calibrator, best_score, held = identity, float("nan"), stopping["held"]
    if held is None:
        on_dask = xgb_dask.DaskXGBClassifier(**settings)
        on_dask.client = client
        on_dask.fit(X, y)
        trained = on_dask.get_booster()
    else:
        settings["early_stopping_rounds"] = int(stopping["rounds"])
        on_dask = xgb_dask.DaskXGBClassifier(**settings)
        on_dask.client = client
        on_dask.fit(X[~held], y[~held], eval_set=[(X[held], y[held])], verbose=False)
        best = int(on_dask.best_iteration)
        best_score = float(on_dask.best_score)
        trained = on_dask.get_booster()[: best + 1]
        # Platt scaling on the held-out records' log-odds, as a local fit calibrates
        # each member on its held-out fold
        margin, y_held = dask_compute(
            xgb_dask.predict(client, trained, X[held], output_margin=True), y[held]
        )
        y_held = np.asarray(y_held, dtype=np.int32)
        if len(np.unique(y_held)) < 2:
            raise ValueError(
                f"The {len(y_held)} held-out records (validation_fraction) have only one "
                "outcome; early stopping and calibration need both. Use more records or a "
                "larger validation_fraction."
            )
        calibrator = _SigmoidCalibration().fit(np.asarray(margin, dtype=np.float64), y_held)
    classes = np.array([False, True])
    if trained.num_features() != features.transform(sample.head(2)).shape[1]:  # pragma: no cover
        raise RuntimeError("The Dask booster and the feature pipeline disagree on the features.")

    clf = XGBClassifier(**local.get_params())
    clf._Booster = trained  # what XGBClassifier.fit stores
    clf.n_classes_ = 2
    stopper = EarlyStoppingClassifier(local, random_state=random_state)
    stopper._check_X(features.transform(sample), reset=True)  # n_features_in_, names
    stopper.estimator_ = clf
    stopper.best_n_estimators_ = int(trained.num_boosted_rounds())
    stopper.best_score_ = best_score  # held-out log loss; nan without early stopping
    stopper.backend_ = "xgboost"
    stopper.classes_ = classes
    pipe = Pipeline([("features", features), ("model", stopper)])
    calibrated = CalibratedClassifierCV(
        pipe,
        method="sigmoid",
        cv=StratifiedKFold(5, shuffle=True, random_state=random_state),
        ensemble=True,
    )
    validate_data(calibrated, sample.loc[:, columns].head(1), skip_check_array=True)
    calibrated.classes_ = classes
    calibrated.calibrated_classifiers_ = [
        _CalibratedClassifier(pipe, [calibrator], method="sigmoid", classes=classes)
    ]
    if held is None:
        reason = (
            f"trained on a Dask cluster with xgboost.dask ({n_train} records, "
            f"{stopper.best_n_estimators_} rounds, no early stopping); not recalibrated "
            "(the booster's own probabilities: identity sigmoid on its log-odds)"
        )
    else:
        reason = (
            f"trained on a Dask cluster with xgboost.dask ({n_train} records; "
            f"{stopper.best_n_estimators_} rounds chosen by early stopping on the held-out "
            "records, which also calibrate it with a sigmoid on its log-odds)"
        )
    return _risk_model(
        ep,
        features=None,
        estimator=calibrated,
        booster=booster,
        reason=reason,
        sample=sample,
        ranges=ranges,
        n_train=n_train,
        n_excluded=n_excluded,
        random_state=random_state,
        schema=schema,
    )


def _risk_model(
    ep: Any,
    *,
    features: Any,
    estimator: Any,
    booster: dict[str, Any],
    reason: str,
    sample: pd.DataFrame,
    ranges: dict[str, Any],
    n_train: int,
    n_excluded: int,
    random_state: int,
    schema: Any = None,
) -> Any:
    """A fitted RiskModel with the attributes ``RiskModel.fit`` sets."""
    from spinerisk.endpoints import ENDPOINTS
    from spinerisk.reference import build_reference
    from spinerisk.riskmodel import RiskModel

    extra = {"early_stopping_rounds": None} if ep.kind != "binary" else {}
    model = RiskModel(
        ep.name if ep.name in ENDPOINTS and ENDPOINTS[ep.name] == ep else ep,
        backend="xgboost",
        booster_params={**booster, **extra},
        random_state=random_state,
        schema=schema,
    )
    model.endpoint_ = ep
    model.backend_ = "xgboost"
    model.features_ = features
    model.estimator_ = estimator
    model.horizons_ = tuple(ep.model_horizons)
    model.schema_ = model._schema()
    model.selection_ = None
    model.selection_reason_ = (
        f"backend='xgboost' was requested; {reason}. The feature pipeline and the training "
        f"reference come from a random sample of {len(sample)} eligible records."
    )
    model.training_ranges_ = ranges
    model.n_train_ = n_train
    model.n_excluded_ = n_excluded
    model.id_field_ = model.schema_.id_field
    model.reference_ = build_reference(model, sample)
    return model


def _cause_label(part: pd.DataFrame, ep: Any, cause: int) -> pd.Series:
    """XGBoost Cox label of one partition: time for an event of ``cause``, else -time."""
    y = ep.target(part)
    label = np.where(y["event"] == cause, y["time"], -y["time"]).astype(np.float64)
    return pd.Series(label, index=part.index)


def _time_event(part: pd.DataFrame, ep: Any) -> pd.DataFrame:
    y = ep.target(part)
    return pd.DataFrame(
        {"time": y["time"].astype(np.float64), "event": y["event"].astype(np.int8)},
        index=part.index,
    )


def _fit_competing(
    client: Any,
    xgb_dask: Any,
    ep: Any,
    features: Any,
    sample: pd.DataFrame,
    eligible: Any,
    X: Any,
    booster: dict[str, Any],
    random_state: int,
    *,
    ranges: dict[str, Any],
    n_train: int,
    n_excluded: int,
    schema: Any = None,
) -> Any:
    """Cause-specific boosted Cox models on the cluster, wrapped in a fitted RiskModel."""
    import dask
    from sklearn.utils import check_random_state

    from spinerisk.models._competing import CauseSpecificCIF
    from spinerisk.models._survival import BoostedCoxSurvival

    causes = (1, 2)
    # the same estimator RiskModel(backend="xgboost") builds, with the Dask settings
    base = BoostedCoxSurvival(**booster, early_stopping_rounds=None, random_state=random_state)
    base._check_boosting_params()
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    params = base._params(seed)
    params.pop("nthread")  # xgboost.dask uses each worker's threads
    x_sample = features.transform(sample)

    # XGBoost cannot evaluate its Cox loss on data spread over workers ("Cox metric does
    # not support distributed evaluation"), so these boosters grow a fixed number of rounds
    boosters, margins = [], []
    for cause in causes:
        label = eligible.map_partitions(
            _cause_label, ep, cause, meta=pd.Series([], dtype=np.float64)
        )
        dtrain = xgb_dask.DaskDMatrix(client, X, label, enable_categorical=True)
        bst = xgb_dask.train(client, params, dtrain, num_boost_round=int(booster["n_estimators"]))[
            "booster"
        ]
        boosters.append(bst)
        margins.append(xgb_dask.predict(client, bst, X, output_margin=True))
    te = eligible.map_partitions(
        _time_event,
        ep,
        meta=pd.DataFrame({"time": [], "event": []}).astype({"time": np.float64, "event": np.int8}),
    )
    # (time, event, one margin per cause) for every eligible record, here (see fit_dask)
    te, *margins = dask.compute(te, *margins)
    time = te["time"].to_numpy()
    event = te["event"].to_numpy()
    if len(time) != n_train:  # pragma: no cover - partitions lost or duplicated
        raise RuntimeError(f"Collected {len(time)} targets for {n_train} eligible records.")
    unknown = sorted(set(np.unique(event).tolist()) - {0, *causes})
    if unknown:
        raise ValueError(
            f"The {ep.name} target has event code(s) {unknown}; expected 0 (censored) or "
            f"one of the causes {list(causes)}."
        )
    absent = [c for c in causes if not (event == c).any()]
    if absent:
        raise ValueError(
            f"Cause(s) {absent} have no events among the {n_train} eligible records; a "
            "cause-specific model needs at least one event per cause."
        )

    estimators = []
    for cause, bst, margin in zip(causes, boosters, margins, strict=True):
        est = BoostedCoxSurvival(**base.get_params())
        est._validate_X(x_sample, reset=True)  # n_features_in_, feature_names_in_
        est.booster_ = bst
        est.n_estimators_ = int(bst.num_boosted_rounds())
        est.best_score_ = None
        m = np.asarray(margin, dtype=np.float64).ravel()
        est.lp_mean_ = float(m.mean())
        est._fit_baseline(time, event == cause, m - est.lp_mean_)
        estimators.append(est)
    cif = CauseSpecificCIF(base, causes=causes, event_of_interest=ep.event_of_interest)
    cif._validate_X(x_sample, reset=True)
    cif.estimators_ = estimators
    cif.causes_ = np.array(causes)
    cif.unique_times_ = np.unique(np.concatenate([e.unique_times_ for e in estimators]))

    max_time = float(time[event != 0].max())
    too_far = [h for h in ep.horizons if h > max_time]
    if too_far:
        raise ValueError(
            f"horizons {too_far} days lie beyond the last observed event "
            f"({max_time:.0f} days); the model cannot estimate risk there."
        )
    reason = (
        f"trained on a Dask cluster with xgboost.dask ({n_train} records, "
        f"{booster['n_estimators']} rounds per cause, no early stopping: XGBoost cannot "
        "evaluate its Cox loss across workers)"
    )
    return _risk_model(
        ep,
        features=features,
        estimator=cif,
        booster=booster,
        reason=reason,
        sample=sample,
        ranges=ranges,
        n_train=n_train,
        n_excluded=n_excluded,
        random_state=random_state,
        schema=schema,
    )


def _partition_summary(part: pd.DataFrame, ep: Any, schema: Any) -> dict[str, Any]:
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
