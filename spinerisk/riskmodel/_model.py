"""RiskModel: endpoint + schema + feature pipeline + estimator, wired for the common case.

``RiskModel(endpoint="nonunion").fit(cohort)`` picks the outcome columns, eligibility and
predictors from the endpoint, builds the feature pipeline suited to the estimator and,
with ``backend="auto"``, chooses between the penalised linear model and the boosted
models by internal cross-validation, recording why. The parts stay usable on their own.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from spinerisk.endpoints import Endpoint, check_horizons, check_within_follow_up, get_endpoint
from spinerisk.features import make_feature_pipeline
from spinerisk.io import as_frame, is_record_list
from spinerisk.models._gate import DEFAULT_RED_FLAGS
from spinerisk.models._state import (
    BACKENDS,
    LINEAR_BACKENDS,
    register_model_class,
    set_fitted,
)
from spinerisk.reference import training_ranges, warn_unusual
from spinerisk.schema import Schema, resolve_schema, validate

__all__ = ["RiskModel", "predictor_columns"]


@register_model_class
class RiskModel(BaseEstimator):
    """Risk of collapse, nonunion or future fracture from validated records.

    Parameters
    ----------
    endpoint : {"collapse", "nonunion", "future_fracture"} or Endpoint, default="nonunion"
        What is predicted, for whom (eligibility) and at which horizons.
    backend : {"auto", "linear", "spline", "xgboost", "lightgbm", "xgboost_aft"}, \
default="auto"
        ``"linear"``: penalised logistic regression (binary) or penalised Cox
        regression (cause-specific for competing risks), one straight-line term per
        number. ``"spline"``: the same model with a cubic B-spline basis for every
        continuous predictor (``spline_knots`` knots at training quantiles), so that
        effects may bend, as restricted cubic splines do in clinical prediction
        models. ``"xgboost"``/``"lightgbm"``:
        gradient-boosted trees with early stopping (binary: calibrated on held-out
        folds; competing: boosted cause-specific Cox with a Breslow baseline).
        ``"auto"``: combine the candidates by cross-validated stacking (a super
        learner, :mod:`spinerisk.models._stack`): one encoded matrix, shared folds,
        non-negative weights fitted on out-of-fold predictions (log-odds for binary
        endpoints, the Cox partial likelihood per cause otherwise), ridge penalties
        chosen on the same folds; out of fold the combination is never worse than the
        best single candidate. The candidates, their losses, weights and the reason
        are in ``selection_``, ``weights_`` and ``selection_reason_``; ``backend_`` is
        ``"stack"``.
    schema : Schema or None, default=None
        None means :data:`spinerisk.schema.SPINE_SCHEMA`.
    horizons : sequence of float or None, default=None
        Prediction horizons in the endpoint's ``time_unit``, the unit of its data (days
        for the built-in endpoints; ``horizons=[26, 52]`` for an endpoint in weeks);
        None means the endpoint's defaults. A binary
        endpoint has one fixed horizon (its outcome is recorded there); any other value
        is refused at ``fit``.
    cv : int, default=5
        Folds for ``backend="auto"`` selection.
    spline_knots : int, default=4
        Knots (at least 3) of the ``"spline"`` backend's cubic B-spline basis per
        continuous predictor (numbers with at least 10 distinct training values);
        other backends ignore it.
    booster_params : dict or None, default=None
        Hyper-parameters of the boosted model (XGBoost or LightGBM names, such as
        ``{"max_depth": 4, "learning_rate": 0.03}``), for example
        ``spinerisk.models.tune(...).best_params``. None keeps the small-cohort defaults.
    random_state : int, default=0
        Seed for every random step (splits, boosters).
    n_jobs : int or None, default=None
        Threads. With ``backend="auto"``, the candidates' fold fits run in parallel
        on ``n_jobs`` threads (None or -1: every core), each booster single-threaded.
        With an explicit backend, the booster's threads (None: 1).

    Attributes
    ----------
    endpoint_ : Endpoint
    schema_ : Schema
        The schema the model was fitted with (``schema``, or the spine schema).
    backend_ : str
        The backend that was fitted.
    features_ : Pipeline
        Fitted feature pipeline.
    estimator_ : estimator
        Fitted model on the feature matrix (for binary endpoints, a calibrated
        classifier whose folds refit the feature pipeline).
    selection_ : DataFrame or None
        ``backend="auto"``: per candidate (per cause for competing risks) its
        out-of-fold loss and discrimination alone, chosen ridge penalty, boosting
        rounds, weight in the combination, fit seconds, status and reason (excluded
        when its predictions are nearly constant, stopped early when it could not
        win). None for an explicit backend.
    selection_reason_ : str
    weights_ : dict or None
        ``backend="auto"``: weight of each candidate in the combination (for competing
        risks, a dict per cause code). None for an explicit backend.
    sample_size_ : dict
        Records, events, candidate parameters, events per parameter and Riley et al.'s
        minimum sample size (``required_n``) checked at fit time; a fit below the
        minimum, or with fewer than 10 events per parameter, warns with the numbers.
    training_ranges_ : dict
        Per predictor: ``(min, max)`` for numbers, the set of codes seen for categories.
    reference_ : dict
        Training reference for input checks and drift monitoring
        (:func:`spinerisk.monitor.build_reference`; plain JSON, saved in the bundle).
    n_train_, n_excluded_ : int
        Records used, and records excluded (outcome not observed or not eligible).
    horizons_ : tuple of float
        The horizons the model predicts at, in days whatever the endpoint's unit (the
        library's internal unit; ``endpoint_.in_unit(h)`` gives the endpoint's).
    interval_models_ : list of RiskModel
        Only after :meth:`fit_intervals`: the models refitted on bootstrap resamples
        of the training records, from which ``predict_risk(..., interval=...)`` takes
        its intervals (saved in the bundle).
    interval_info_ : dict
        Only after :meth:`fit_intervals`: ``n_resamples``, ``n_fitted``,
        ``random_state`` and the interval ``method``.

    Examples
    --------
    >>> import spinerisk as sr
    >>> cohort = sr.make_spine_cohort(1500, seed=0)
    >>> model = sr.RiskModel(endpoint="nonunion", backend="linear").fit(cohort)
    >>> risk = model.predict_risk(cohort.head(3))
    >>> list(risk.columns)
    ['risk_183d', 'warnings']
    >>> bool(risk["risk_183d"].between(0, 1).all())
    True
    """

    # The fitted state, as declared in spinerisk.models._state.FITTED_STATE (set by fit,
    # fit_dask and bundles through set_fitted); annotations only, for type checkers.
    endpoint_: Endpoint
    schema_: Schema
    backend_: str
    features_: Any
    estimator_: Any
    horizons_: tuple[float, ...]
    selection_: pd.DataFrame | None
    selection_reason_: str
    training_ranges_: dict[str, Any]
    reference_: dict[str, Any]
    n_train_: int
    n_excluded_: int
    id_field_: str
    lineage_: dict[str, Any]
    gate_: RiskModel
    gate_threshold_: float
    gate_warning_: float
    gate_red_flags_: str | None
    interval_models_: list[RiskModel]
    interval_info_: dict[str, Any]
    sample_size_: dict[str, Any]

    def __init__(
        self,
        endpoint: str | Endpoint = "nonunion",
        backend: Literal["auto", "linear", "spline", "xgboost", "lightgbm", "xgboost_aft"] = "auto",
        *,
        schema: Schema | None = None,
        horizons: Any = None,
        cv: int = 5,
        spline_knots: int = 4,
        booster_params: dict[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.backend = backend
        self.schema = schema
        self.horizons = horizons
        self.cv = cv
        self.spline_knots = spline_knots
        self.booster_params = booster_params
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- building blocks ------------------------------------------------------------------
    def _candidate(self, backend: str, ep: Endpoint) -> Any:
        """An unfitted estimator taking validated records (features inside)."""
        est = self._build(backend, ep)
        if backend not in LINEAR_BACKENDS and self.booster_params:
            _set_booster_params(est, self.booster_params)
        return est

    def _build(self, backend: str, ep: Endpoint) -> Any:
        if ep.kind == "binary":
            from spinerisk.models._binary import make_binary_model

            name = "logistic" if backend in LINEAR_BACKENDS else backend
            model = make_binary_model(
                cast(Literal["xgboost", "lightgbm", "logistic"], name),
                schema=self.schema,
                include_treatment=ep.include_treatment,
                random_state=self.random_state,
                n_jobs=self._booster_jobs(),
                fields=self._fields(ep),
            )
            if backend == "spline":
                model.set_params(features=self._linear_features(ep, int(self.spline_knots)))
            return model
        from spinerisk.models._survival import (
            BoostedAFTSurvival,
            BoostedCoxSurvival,
            CoxPHSurvival,
        )

        if backend in LINEAR_BACKENDS:
            base: Any = CoxPHSurvival(penalizer="cv", random_state=self.random_state)
            features = self._linear_features(
                ep, int(self.spline_knots) if backend == "spline" else 0
            )
        elif backend == "xgboost":
            base = BoostedCoxSurvival(random_state=self.random_state, n_jobs=self._booster_jobs())
            encoding = "native"
        else:
            base = BoostedAFTSurvival(random_state=self.random_state, n_jobs=self._booster_jobs())
            encoding = "native"
        if ep.kind == "competing":
            from spinerisk.models._competing import CauseSpecificCIF

            base = CauseSpecificCIF(base, event_of_interest=ep.event_of_interest)
        if backend not in LINEAR_BACKENDS:
            features = make_feature_pipeline(
                self.schema,
                encoding=cast(Literal["onehot", "native"], encoding),
                include_treatment=ep.include_treatment,
                fields=self._fields(ep),
            )
        return Pipeline([("features", features), ("model", base)])

    def _booster_jobs(self) -> int:
        """Threads of an explicit backend's booster (None means 1)."""
        return 1 if self.n_jobs is None else int(self.n_jobs)

    def _linear_features(self, ep: Endpoint, spline_knots: int) -> Pipeline:
        """One-hot feature pipeline of the penalised linear models."""
        return make_feature_pipeline(
            self.schema,
            encoding="onehot",
            include_treatment=ep.include_treatment,
            spline_knots=spline_knots,
            fields=self._fields(ep),
        )

    def _schema(self) -> Schema:
        """The schema the model reads: ``schema``, or the spine schema when None."""
        if self.schema is None:
            return resolve_schema(None)
        if not isinstance(self.schema, Schema):
            raise TypeError(
                "schema must be a spinerisk Schema (see spinerisk.load_schema); got "
                f"{type(self.schema).__name__}."
            )
        return self.schema

    def _fields(self, ep: Endpoint) -> tuple[str, ...] | None:
        """The endpoint's predictors when they are not simply the schema's feature fields
        (a declared list, comparators or outcome columns to leave out); None otherwise."""
        schema = self._schema()
        roles = ("feature", "treatment") if ep.include_treatment else ("feature",)
        by_role = [f.name for f in schema.by_role(*roles)]
        declared = ep.predictors(schema)
        return None if declared == by_role else tuple(declared)

    def _check_params(self, ep: Endpoint) -> list[str]:
        allowed = BACKENDS[ep.kind]
        if self.backend != "auto" and self.backend not in allowed:
            raise ValueError(
                f"backend={self.backend!r} is not available for the {ep.kind} endpoint "
                f"{ep.name!r}; expected 'auto' or one of {', '.join(map(repr, allowed))}."
            )
        if self.booster_params and self.backend in ("auto", *LINEAR_BACKENDS):
            raise ValueError(
                "booster_params need an explicit boosted backend ('xgboost', 'lightgbm' or "
                f"'xgboost_aft'); got backend={self.backend!r}."
            )
        knots = self.spline_knots
        if not isinstance(knots, int | np.integer) or isinstance(knots, bool) or knots < 3:
            raise ValueError(f"spline_knots must be an integer >= 3; got {knots!r}.")
        if not isinstance(self.cv, int | np.integer) or self.cv < 2:
            raise ValueError(f"cv must be an integer >= 2; got cv={self.cv!r}.")
        if self.backend == "auto":
            return list(allowed)
        return [self.backend]

    def _horizons(self, ep: Endpoint) -> tuple[float, ...]:
        """Horizons to fit for, in days (:func:`spinerisk.endpoints.check_horizons`)."""
        return check_horizons(ep, ep.model_horizons, self.horizons, action="fitted for")

    # -- fit ----------------------------------------------------------------------------
    def fit(self, cohort: pd.DataFrame, y: None = None) -> RiskModel:
        """Validate the cohort, select eligible records and fit.

        Parameters
        ----------
        cohort : DataFrame
            Records with the schema's fields, outcomes included.
        y : None
            Ignored: the outcome comes from the endpoint's columns.

        Returns
        -------
        self : RiskModel
        """
        ep = get_endpoint(self.endpoint)
        schema = self._schema()
        ep.check_schema(schema)
        candidates = self._check_params(ep)
        horizons = self._horizons(ep)
        checked, _, data, target = ep.labelled(cohort, schema)
        if len(data) < 2 * self.cv:
            raise ValueError(
                f"Only {len(data)} eligible records with the {ep.name} outcome observed; "
                f"need at least {2 * self.cv}."
            )
        if ep.kind != "binary":  # before any fit: a horizon past follow-up is refused at once
            check_within_follow_up(ep, horizons, target["time"], target["event"])

        set_fitted(self, selection_=None)
        if len(candidates) == 1:
            chosen = candidates[0]
            set_fitted(self, selection_reason_=f"backend={chosen!r} was requested.")
            model = self._fit_candidate(chosen, ep, data, target)
            if ep.kind == "binary":
                set_fitted(self, features_=None, estimator_=model)
            else:
                set_fitted(
                    self,
                    features_=model.named_steps["features"],
                    estimator_=model.named_steps["model"],
                )
        else:
            from spinerisk.models._auto import fit_default

            chosen = "stack"
            set_fitted(self, **fit_default(self, ep, data, target))
        for stale in ("interval_models_", "interval_info_"):  # refits of an earlier fit
            self.__dict__.pop(stale, None)
        set_fitted(
            self,
            endpoint_=ep,
            schema_=schema,
            backend_=chosen,
            horizons_=horizons,
            n_train_=int(len(data)),
            n_excluded_=int(len(checked) - len(data)),
            training_ranges_=self._ranges(data, ep),
            id_field_=schema.id_field,
        )
        from spinerisk.reference import summarise_training

        risk = self._risk_values(data, horizons)
        reference = summarise_training(
            self,
            data,
            pd.DataFrame(risk, columns=[ep.risk_column(h) for h in horizons]),
            synthetic=bool(cohort.attrs.get("synthetic", False)),
        )
        set_fitted(self, reference_=reference)
        self._check_small_data(ep, data, target, risk)
        return self

    def _fit_candidate(
        self, backend: str, ep: Endpoint, data: pd.DataFrame, target: np.ndarray
    ) -> Any:
        """Fit an explicit backend. When records repeat (a bootstrap resample), every
        internal split (penalty folds, calibration folds, early stopping) keeps the copies
        of a record together; otherwise the fit is exactly the plain one."""
        model = self._candidate(backend, ep)
        groups = _repeat_groups(data, [*ep.predictors(self._schema()), *ep.outcome_columns])
        if groups is None:
            return model.fit(data, target)
        from sklearn.calibration import CalibratedClassifierCV

        def grouped(n_splits: int, strata: Any) -> list[Any]:
            from spinerisk.models._ridge import stratified_folds

            return stratified_folds(np.asarray(strata), groups, n_splits, self.random_state)

        if ep.kind == "binary":
            if isinstance(model, CalibratedClassifierCV):
                model.set_params(cv=grouped(model.cv.n_splits, target))
                return model.fit(data, target, model__groups=groups)
            inner = model.named_steps["model"]
            model.set_params(model__cv=grouped(inner.cv.n_splits, target))
            return model.fit(data, target)
        return model.fit(data, target, model__groups=groups)

    def _check_small_data(
        self, ep: Endpoint, data: pd.DataFrame, target: np.ndarray, risk: np.ndarray
    ) -> None:
        """Fit-time warnings: cohort below Riley's minimum or few events per parameter;
        an explicit backend predicting (nearly) one risk for everyone."""
        from spinerisk.models._small_data import warn_constant, warn_sample_size

        time = None if ep.kind == "binary" else np.asarray(target["time"], dtype=float)
        if ep.kind == "binary":
            event = np.asarray(target, dtype=bool)
        elif ep.kind == "competing":
            event = np.asarray(target["event"]) == ep.event_of_interest
        else:
            event = np.asarray(target["event"], dtype=bool)
        what = "default model" if self.backend_ == "stack" else f"{self.backend_} model"
        sample_size = warn_sample_size(
            endpoint=ep.name,
            kind=ep.kind,
            n=len(data),
            parameters=self._n_parameters(data),
            event=event,
            time=time,
            horizon=float(self.horizons_[-1]),
            what=what,
            stacklevel=4,
        )
        set_fitted(self, sample_size_=sample_size)
        if self.backend_ != "stack":
            warn_constant(risk[:, 0], backend=self.backend_, n=len(data), stacklevel=4)

    def _n_parameters(self, data: pd.DataFrame) -> int:
        """Columns of the fitted model's matrix (its candidate predictor parameters)."""
        features = self.features_
        if features is None:
            est = self.estimator_
            if hasattr(est, "calibrated_classifiers_"):
                est = est.calibrated_classifiers_[0].estimator
            features = est.named_steps["features"]
        try:
            return len(features.get_feature_names_out())
        except (AttributeError, ValueError, TypeError):
            return int(features.transform(data.head(50)).shape[1])

    @property
    def weights_(self) -> Any:
        """Weights of the candidates in the default's combination (None otherwise)."""
        check_is_fitted(self, "estimator_")
        if self.backend_ != "stack":
            return None
        est = self.estimator_
        if isinstance(est, Pipeline):
            return dict(est[-1].weights_)
        if hasattr(est, "estimators_"):
            return {
                int(c): dict(e.weights_) for c, e in zip(est.causes_, est.estimators_, strict=True)
            }
        return dict(est.weights_)

    def _cv_scores(
        self, backend: str, ep: Endpoint, data: pd.DataFrame, target: np.ndarray
    ) -> np.ndarray:
        """Per-fold score of one backend, higher is better (-log loss, or C-index)."""
        if ep.kind == "binary":
            splitter: Any = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
            scoring: Any = "neg_log_loss"
        else:
            splitter = KFold(self.cv, shuffle=True, random_state=self.random_state)
            scoring = None  # the estimator's own score: Harrell's C of the event of interest
        est = self._candidate(backend, ep)
        return cross_validate(est, data, target, cv=splitter, scoring=scoring)["test_score"]

    def _ranges(self, data: pd.DataFrame, ep: Endpoint) -> dict[str, Any]:
        return training_ranges(data, ep, self._schema())

    def fit_intervals(
        self,
        cohort: pd.DataFrame,
        *,
        n_resamples: int = 50,
        random_state: int = 0,
        n_jobs: int | None = None,
        method: Literal["percentile", "basic"] = "percentile",
    ) -> RiskModel:
        """Refit the model on bootstrap resamples of its training records, for
        per-patient risk intervals and the prediction-instability plot.

        Each of ``n_resamples`` resamples draws as many eligible training records as
        the model was fitted on, with replacement (all drawn up front from
        ``random_state``); a clone of the model (same parameters, so the same backend
        choice procedure) is fitted on each. ``predict_risk(records, interval=0.9)``
        then adds a 90% interval per risk column: by default the 5th and 95th
        percentiles of the refits' risks (see :mod:`spinerisk.models._interval` and the
        intervals guide for the coverage measured per backend).

        Parameters
        ----------
        cohort : DataFrame
            The cohort the model was fitted on.
        n_resamples : int, default=50
            Bootstrap refits (2 to 200); the fit takes about this many times as long
            as the model's own fit. Riley and Collins use 200 for the instability plot.
        random_state : int, default=0
            Seed of the resamples; the same seed gives the same intervals.
        n_jobs : int or None, default=None
            joblib workers for the refits (None: 1); results do not depend on it.
        method : {"percentile", "basic"}, default="percentile"
            ``"percentile"``: quantiles of the refits' risks. ``"basic"``: the reverse
            percentile interval on the log-odds scale, which moves against the refits'
            bias.

        Returns
        -------
        self : RiskModel
            With ``interval_models_`` and ``interval_info_``.

        Raises
        ------
        ValueError
            If ``cohort`` is not the training cohort (another number of eligible
            records), ``n_resamples`` is out of range, or fewer than 2 resamples can be
            fitted.

        Notes
        -----
        The interval describes how much the model's risk for this patient would move
        if the model were developed again on another sample of the same size (the
        uncertainty of the estimate). It is not the range of the patient's outcome,
        and it does not cover errors of the model's form or of the data.
        """
        from spinerisk.models._interval import fit_interval_models

        check_is_fitted(self, "estimator_")
        models, info = fit_interval_models(
            self,
            cohort,
            n_resamples=n_resamples,
            random_state=random_state,
            n_jobs=n_jobs,
            method=method,
        )
        set_fitted(self, interval_models_=models, interval_info_=info)
        return self

    def save(self, path: Any, *, sign_key_env: str | None = None) -> Any:
        """Save the fitted model as one safe bundle file (see :func:`spinerisk.load`).

        Parameters
        ----------
        path : str or path-like
            Target file, conventionally ``*.srb``.
        sign_key_env : str or None, default=None
            Name of an environment variable holding a secret key (at least 32 bytes):
            the manifest is signed with HMAC-SHA256, which ``spinerisk.load(path,
            verify_key_env=...)`` and ``spinerisk score/serve --verify-key-env`` check.

        Returns
        -------
        Path
        """
        from spinerisk.bundle import save_bundle

        return save_bundle(self, path, sign_key_env=sign_key_env)

    # -- predict --------------------------------------------------------------------------
    def explain(
        self,
        records: Any,
        horizon: float | None = None,
        *,
        background: Any = None,
        interval: float | None = None,
    ) -> Any:
        """Per-record contributions of each clinical field to the predicted risk.

        Exact attributions on the model's margin (tree SHAP from the boosters' own
        routines, exact linear terms for logistic and Cox models), grouped into
        clinical fields and converted to percentage points of risk; see
        :func:`spinerisk.explanation`. Attributions describe the model, not
        causes: treatment effects in observational data are confounded.

        Parameters
        ----------
        records : DataFrame, dict or list of dicts
            Records with the schema's baseline fields.
        horizon : float or None, default=None
            In the endpoint's ``time_unit`` (days for the built-in endpoints); None
            means the model's first horizon.
        background : DataFrame or None, default=None
            Linear models only: records whose mean is the reference point; None uses
            the training mean.
        interval : float or None, default=None
            Coverage of the risk's interval; None: 0.9 when the model has bootstrap
            refits (:meth:`fit_intervals`), no interval otherwise.

        Returns
        -------
        Explanation
        """
        from spinerisk.explanation import explain

        return explain(self, records, horizon, background=background, interval=interval)

    def _risk_values(self, checked: pd.DataFrame, horizons: Any, *, timer: Any = None) -> Any:
        """Risk matrix (records x horizons) for validated records; the one prediction step
        shared by :meth:`predict_risk` and the batch scorer. ``timer(stage)`` is an
        optional context-manager factory used to time "features" and "predict"."""
        if self.endpoint_.kind == "binary":
            from spinerisk.models._binary import calibrated_risk

            return calibrated_risk(self.estimator_, checked, timer)[:, None]
        from spinerisk.models._binary import no_timer

        timer = timer or no_timer
        with timer("features"):
            Xf = cast(Pipeline, self.features_).transform(checked)
        with timer("predict"):
            return np.asarray(self.estimator_.predict_risk(Xf, horizons), dtype=float)

    def _fast_predictor(self) -> Any:
        """The compiled single-record predictor, or None. Cached; rebuilt after a refit or
        when ``reference_`` or ``training_ranges_`` (which its input checks use) is
        replaced."""
        key = (self.estimator_, getattr(self, "reference_", None), self.training_ranges_)
        cached = self.__dict__.get("_fast_cache")
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1]
        from spinerisk.fastpath import FastPredictor, UnsupportedModelError

        try:
            # compiled trees take over when built: no call waits for the C compiler
            fast: Any = FastPredictor.from_model(self, compile="background")
        except UnsupportedModelError:
            fast = None  # the batch path serves this model
        self._fast_cache = (key, fast)
        return fast

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_fast_cache", None)  # per-thread library handles: never saved or copied
        state.pop("_input_schema", None)
        return state

    @property
    def input_schema_(self) -> Schema:
        """The schema records are validated with before prediction: ``schema_``, plus the
        endpoint's scope as a row rule when it has one (an out-of-scope record is refused
        with the reason on every path: Python, fast path, batch scoring, HTTP API)."""
        rule = self.endpoint_.scope_rule()
        if rule is None:
            return self.schema_
        cached = self.__dict__.get("_input_schema")
        if cached is None or cached[0] is not self.schema_ or cached[1] is not self.endpoint_:
            cached = (self.schema_, self.endpoint_, self.schema_.extend(rules=[rule]))
            self.__dict__["_input_schema"] = cached
        return cached[2]  # type: ignore[no-any-return]

    def bind_malignancy_gate(
        self,
        gate: Any,
        *,
        threshold: float = 0.10,
        warning: float = 0.05,
        red_flags: str | None = DEFAULT_RED_FLAGS,
    ) -> RiskModel:
        """Abstain from prognosis where a fracture may be malignant (see
        :mod:`spinerisk.models._gate`).

        Parameters
        ----------
        gate : RiskModel
            A fitted model of the ``malignant_fracture`` endpoint on the same schema.
        threshold : float, default=0.10
            Probability of malignancy from which no prognosis is given
            (``status="out_of_scope"``, risks missing, with the reason).
        warning : float, default=0.05
            Probability from which the prognosis carries a warning.
        red_flags : str or None
            Expression of hard red flags that put a record out of scope whatever the
            probability; the default reads the epidural/paraspinal mass, M-protein and
            active cancer with marrow replacement fields.

        Returns
        -------
        self : RiskModel
            Its predictions gain the columns ``status``, ``p_malignant`` and
            ``status_reason`` on every path (Python, batch scoring, HTTP API).
        """
        from spinerisk.models._gate import bind_gate

        bind_gate(self, gate, threshold=threshold, warning=warning, red_flags=red_flags)
        self.__dict__.pop("_fast_cache", None)
        return self

    def _prediction_horizons(self, horizons: Any, *, in_days: bool = False) -> tuple[float, ...]:
        """Horizons to predict at, in days (:func:`spinerisk.endpoints.check_horizons`):
        ``horizons`` is in the endpoint's unit, or in days with ``in_days``."""
        return check_horizons(
            self.endpoint_,
            self.horizons_,
            horizons,
            action="predicted at",
            last_event=self.last_event_days,
            in_days=in_days,
        )

    @property
    def last_event_days(self) -> float | None:
        """The training data's last event time in days (time-to-event models; None for
        a binary one): the latest horizon the model can predict at."""
        grid = getattr(getattr(self, "estimator_", None), "unique_times_", None)
        return None if grid is None or not len(grid) else float(np.max(grid))

    def _warnings(self, records: pd.DataFrame) -> pd.Series:
        """Input warnings per record (:func:`spinerisk.monitor.input_warnings`)."""
        from spinerisk.reference import input_warnings

        return input_warnings(self, records)

    def predict_risk(
        self, records: Any, horizons: Any = None, interval: float | None = None
    ) -> pd.DataFrame:
        """Risk per record at each horizon, with warnings for unusual inputs.

        Parameters
        ----------
        records : DataFrame, dict or list of dicts
            Records with the schema's baseline fields (outcome columns are ignored); a
            dict is one record (field name to value), a list of dicts several.
        horizons : sequence of float or None, default=None
            In the endpoint's ``time_unit`` (days for the built-in endpoints, as in the
            risk column names: ``[26, 52]`` gives ``risk_26w`` and ``risk_52w`` for an
            endpoint in weeks); None means the horizons the model was fitted for.
            Binary endpoints predict at their single fixed horizon only.
        interval : float or None, default=None
            Coverage of a per-patient interval around each risk, in (0, 1) (0.9 for
            90%); needs :meth:`fit_intervals` first. None: no interval.

        Returns
        -------
        DataFrame
            Indexed by record id; one column per horizon (a probability) named by
            :meth:`Endpoint.risk_column` (``risk_183d``, ``risk_12mo``; ``risk`` for a
            binary endpoint without a horizon)
            and ``warnings``: ``; ``-joined entries ``code:field=value (note)`` with the
            codes ``out_of_range`` (a number outside the training range),
            ``unseen_category`` (a code no training record had) and ``rarely_missing``
            (missing, although fewer than 1% of training records lacked it); empty when
            none. Records given as dicts go through a compiled single-record path
            (:class:`spinerisk.fastpath.FastPredictor`) with identical results.
            With ``interval``, each risk column ``c`` is followed by ``c_lo`` and
            ``c_hi`` (:func:`spinerisk.endpoints.interval_columns`).

        Raises
        ------
        ValueError
            If ``interval`` is not in (0, 1), or is given to a model without
            :meth:`fit_intervals`.
        """

        return self._predict(records, horizons, interval, stacklevel=3)

    def _predict(
        self,
        records: Any,
        horizons: Any = None,
        interval: float | None = None,
        *,
        warning_lists: bool = False,
        stacklevel: int = 2,
        in_days: bool = False,
    ) -> pd.DataFrame:
        """:meth:`predict_risk`, with each record's warnings as a tuple of entries
        (the structured value) when ``warning_lists`` is true; ``in_days``: the
        horizons are in days (the library's own callers), not the endpoint's unit."""
        check_is_fitted(self, "estimator_")
        level = None if interval is None else self._interval_level(interval)
        if level is None and not in_days and is_record_list(records):
            fast = self._fast_predictor()
            if fast is not None:
                return fast.predict_risk(  # type: ignore[no-any-return]
                    records, horizons, as_frame=True, warning_lists=warning_lists
                )
        checked = validate(as_frame(records), self.input_schema_)
        ep = self.endpoint_
        horizons = self._prediction_horizons(horizons, in_days=in_days)
        values = self._risk_values(checked, horizons)
        columns = [ep.risk_column(h) for h in horizons]
        out = pd.DataFrame(values, columns=columns, index=checked[self.id_field_].to_numpy())
        out.index.name = self.id_field_
        if level is not None:
            out = self._with_intervals(out, checked, horizons, level)
        if warning_lists:
            from spinerisk.reference import input_warning_lists

            entries = input_warning_lists(self, checked)
            out["warnings"] = pd.Series(entries, index=out.index, dtype=object)
            flagged = sum(1 for e in entries if e)
        else:
            out["warnings"] = self._warnings(checked).to_numpy()
            flagged = int((out["warnings"] != "").sum())
        from spinerisk.models._gate import apply_gate  # status, p_malignant, status_reason

        out = apply_gate(self, checked.set_axis(out.index, axis=0), out)
        if flagged:
            warn_unusual(flagged, len(out), stacklevel=stacklevel + 1)
        return out

    def _interval_level(self, interval: Any) -> float:
        """``interval`` checked, for a model with bootstrap refits."""
        from spinerisk.models._interval import check_interval

        level = check_interval(interval)
        if not getattr(self, "interval_models_", None):
            raise ValueError(
                f"interval={interval!r} needs bootstrap refits of the model: call "
                "model.fit_intervals(training_cohort) first (or predict without interval)."
            )
        return level

    def _with_intervals(
        self, out: pd.DataFrame, checked: pd.DataFrame, horizons: Any, level: float
    ) -> pd.DataFrame:
        """``out`` with ``c_lo`` and ``c_hi`` after each risk column ``c``."""
        from spinerisk.endpoints import interval_columns
        from spinerisk.models._interval import bootstrap_risks, interval_bounds

        risk_cols = list(out.columns)
        boot = bootstrap_risks(self.interval_models_, checked, horizons)
        method = self.interval_info_.get("method", "percentile")
        lo, hi = interval_bounds(out.to_numpy(dtype=float), boot, level, method)
        parts: dict[str, Any] = {}
        for j, col in enumerate(risk_cols):
            lo_col, hi_col = interval_columns(col)
            parts[col] = out[col]
            parts[lo_col] = lo[:, j]
            parts[hi_col] = hi[:, j]
        return pd.DataFrame(parts, index=out.index)


def predictor_columns(model: RiskModel, frame: pd.DataFrame) -> list[str]:
    """The model's baseline predictors present in ``frame`` (what an audit line hashes)."""
    return [c for c in model.endpoint_.predictors(model.schema_) if c in frame.columns]


def _repeat_groups(data: pd.DataFrame, columns: list[str]) -> np.ndarray | None:
    """A label per record, shared by records identical in ``columns`` (predictors and
    outcome); None when no record repeats."""
    cols = [c for c in dict.fromkeys(columns) if c in data.columns]
    hashed = pd.util.hash_pandas_object(data[cols], index=False).to_numpy()
    _, groups = np.unique(hashed, return_inverse=True)
    return None if int(groups.max()) + 1 == len(groups) else groups


def _is_booster(obj: Any) -> bool:
    from spinerisk.models._survival import BoostedAFTSurvival, BoostedCoxSurvival

    cls = type(obj).__name__
    return cls in ("XGBClassifier", "LGBMClassifier") or isinstance(
        obj, BoostedCoxSurvival | BoostedAFTSurvival
    )


def _set_booster_params(estimator: Any, params: dict[str, Any]) -> None:
    """Set hyper-parameters on the booster(s) nested anywhere inside ``estimator``."""
    paths = [k for k, v in estimator.get_params(deep=True).items() if _is_booster(v)]
    if not paths:
        raise ValueError("booster_params were given but the model has no boosted part.")
    for path in paths:
        booster = estimator.get_params(deep=True)[path]
        unknown = sorted(set(params) - set(booster.get_params(deep=False)))
        if unknown:
            raise ValueError(
                f"booster_params {unknown} are not parameters of {type(booster).__name__}."
            )
        estimator.set_params(**{f"{path}__{k}": v for k, v in params.items()})
