"""``update(model, cohort, method)``: adapt a fitted RiskModel to a new site's records."""

from __future__ import annotations

import copy
import hashlib
import numbers
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from spinerisk.models._state import set_fitted
from spinerisk.update._glm import LEVELS, PENALTY_GRID, closed_test, fit_level
from spinerisk.update._parts import (
    Part,
    apply_linear,
    build_parts,
    cause_model,
    revise_linear,
    reweight_stack,
    survival_features,
)

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["METHODS", "update"]

#: Updating methods, from the least to the most extensive, and ``"auto"``.
METHODS: tuple[str, ...] = ("auto", "keep", "intercept", "recalibrate", "revise", "refit")
_DESCRIPTIONS = {
    "keep": "kept unchanged",
    "intercept": "intercept (baseline risk or baseline hazard) re-estimated",
    "recalibrate": "intercept and slope of the linear predictor re-estimated",
    "revise": "revised towards the site (shrunk towards the original model)",
    "refit": "refitted on the site's records alone",
}


def _check(method: Any, alpha: Any, random_state: Any) -> None:
    if isinstance(method, Mapping):
        allowed = [m for m in METHODS if m != "refit"]
        bad = {k: v for k, v in method.items() if not isinstance(v, str) or v not in allowed}
        if bad or not method:
            raise ValueError(
                "method per cause must map each event code to one of "
                f"{', '.join(map(repr, allowed))}; got method={dict(method)!r}."
            )
    elif not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, METHODS))}; got method={method!r}."
        )
    ok = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and 0 < float(alpha) < 1
    if not ok:
        raise ValueError(f"alpha must be a number strictly between 0 and 1; got alpha={alpha!r}.")
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an integer; got random_state={random_state!r}.")


def _resolve(
    model: RiskModel | str | os.PathLike[str], parent_sha256: str | None
) -> tuple[RiskModel, str | None]:
    """The model (loaded from a bundle path when given one) and its file's sha256."""
    from sklearn.exceptions import NotFittedError

    from spinerisk.riskmodel import RiskModel

    if isinstance(model, str | os.PathLike):
        from spinerisk.riskmodel import load

        path = Path(model)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if parent_sha256 is not None and parent_sha256.lower() != digest:
            raise ValueError(
                f"parent_sha256={parent_sha256!r} does not match the sha256 of {str(path)!r} "
                f"({digest})."
            )
        return load(path, sha256=digest), digest
    if not isinstance(model, RiskModel):
        raise TypeError(
            f"model must be a fitted spinerisk.RiskModel or the path of a saved bundle; got "
            f"{type(model).__name__}."
        )
    if not hasattr(model, "estimator_"):
        raise NotFittedError("This RiskModel is not fitted yet; fit or load it before update().")
    return model, parent_sha256


def update(
    model: RiskModel | str | os.PathLike[str],
    cohort: pd.DataFrame,
    method: Literal["auto", "keep", "intercept", "recalibrate", "revise", "refit"]
    | Mapping[int, str] = "auto",
    *,
    alpha: float = 0.05,
    null_distribution: Literal["auto", "chi2", "bootstrap"] = "auto",
    random_state: int = 0,
    parent_sha256: str | None = None,
) -> RiskModel:
    """Update a fitted risk model with a new site's records.

    The methods form the usual hierarchy of model updating, from the least to the most
    extensive:

    ``"keep"``
        The original model, unchanged.
    ``"intercept"``
        Recalibration in the large: one constant added to the linear predictor. For a
        binary endpoint this re-estimates the baseline risk (the intercept); for a
        Cox-type model it scales the baseline cumulative hazard (its shape over time is
        kept); for an accelerated failure time model it re-estimates the location and
        the scale of the baseline distribution of log time.
    ``"recalibrate"``
        Intercept and slope of the linear predictor (log-odds or log hazard ratio; the
        expected log time of an AFT model), both re-estimated.
    ``"revise"``
        Linear models: every coefficient moves towards the site, with intercept and
        slope re-estimated and the coefficient changes ridge-penalised towards 0 (towards
        the recalibrated original), the penalty chosen by 5-fold cross-validated
        log-likelihood. Boosted models: the original boosters continue boosting on the
        site's records with a small learning rate (0.01), the number of extra rounds
        chosen by early stopping on a held-out fifth, then the model is recalibrated
        (binary: intercept and slope; Cox: baseline hazard; AFT: location and scale).
    ``"refit"``
        A new model of the same backend fitted on the site's records alone.
    ``"auto"``
        The closed testing procedure of Vergouwe et al. (2017): likelihood-ratio tests
        of revision against the original model, then against recalibration in the
        large, then against recalibration, at level ``alpha``; the first of keep,
        intercept or recalibrate that revision does not beat is chosen, revision when
        it beats all three (a linear revision whose cross-validated penalty is the
        largest tried changes no coefficient: recalibration is applied, the reason in
        the lineage part's ``reason``). For time-to-event endpoints the tests use the full
        likelihood with the baseline hazard's shape kept (Poisson form, exact for the
        ratios); for competing risks each cause-specific model is tested and updated
        on its own. ``"refit"`` is never chosen automatically: with the site's records
        alone it usually loses what the development data taught.

    Every method returns an ordinary fitted :class:`~spinerisk.RiskModel` of the same
    backend and types, so it saves, explains, scores, serves and takes the fast path as
    any other; ``lineage_`` records how it came about and is saved in its bundle.

    Parameters
    ----------
    model : RiskModel or path-like
        A fitted model, or the path of a bundle (``*.srb``), whose sha256 is then
        recorded as the parent.
    cohort : DataFrame
        The site's records, with the endpoint's outcome columns. They are validated and
        restricted to eligible records with the outcome observed.
    method : {"auto", "keep", "intercept", "recalibrate", "revise", "refit"} or dict, \
default="auto"
        See above. A competing-risks model also takes one method per cause, such as
        ``{1: "intercept", 2: "keep"}`` (``"refit"`` is for the whole model only). A
        requested method runs no tests; ``"auto"`` records the tests behind its choice.
    alpha : float, default=0.05
        Level of each test of ``"auto"``.
    null_distribution : {"auto", "chi2", "bootstrap"}, default="auto"
        Reference distribution of the likelihood-ratio statistics. ``"chi2"`` is the
        asymptotic one of Vergouwe et al.; it over-rejects badly when the revision has
        many terms (one per column of the model's design, about 85 for the default
        models) and the site has few events. ``"bootstrap"``: a parametric bootstrap
        (up to 99 outcome sets simulated from the smaller model of each test, follow-up
        kept as the censoring time, stopping early once 10 simulated statistics reach the
        observed one). ``"auto"`` uses chi-squared when events and non-events each
        number at least 10 per degree of freedom of the test, else the bootstrap.
    random_state : int, default=0
        Seed of the penalty folds, the early-stopping split and a refit.
    parent_sha256 : str or None, default=None
        sha256 of the parent's bundle file, when ``model`` was loaded from one (checked
        against the file when ``model`` is a path).

    Returns
    -------
    RiskModel
        A new fitted model (the original is not changed) with ``lineage_``: a dict of
        the parent (bundle sha256 when known, backend, its own lineage), the method
        requested and applied (per cause for competing risks), the tests behind the
        choice (statistic, degrees of freedom, p-value), the fitted update parameters,
        the UTC date and a fingerprint of the update records.

    Raises
    ------
    ValueError
        For an unknown method, an alpha outside (0, 1), or a cohort without eligible
        records with events and non-events.
    TypeError
        If ``model`` is neither a RiskModel nor a path.

    See Also
    --------
    spinerisk.update.update_report : The original and the updated model side by side.

    Notes
    -----
    Updating a model to a site makes it fit that site's case mix and outcome rates; it
    does not make it clinically valid there. On the synthetic cohort every number
    describes a simulation.

    References
    ----------
    .. [1] Vergouwe Y, Nieboer D, Oostenbrink R, et al. A closed testing procedure to
       select an appropriate method for updating prediction models. Stat Med
       2017;36:4529-39.
    .. [2] Steyerberg EW, Borsboom GJ, van Houwelingen HC, et al. Validation and
       updating of predictive logistic regression models: a study on sample size and
       shrinkage. Stat Med 2004;23:2567-86.
    .. [3] Crowson CS, Atkinson EJ, Therneau TM. Assessing calibration of prognostic
       risk scores. Stat Methods Med Res 2016;25:1692-706.

    Examples
    --------
    >>> import spinerisk as sr
    >>> dev = sr.make_spine_cohort(1500, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(dev)
    >>> site = sr.make_spine_cohort(800, seed=1, nonunion_prevalence=0.30)
    >>> updated = sr.update(model, site, method="intercept")  # a requested method
    >>> updated.lineage_["method"], updated.lineage_["parts"][0]["tests"]
    ('intercept', [])
    >>> chosen = sr.update(model, site)  # the closed testing procedure chooses
    >>> sorted(chosen.lineage_["parts"][0]["tests"][0])
    ['df', 'p_value', 'reference', 'statistic', 'test']
    >>> sr.update(model, site, method="retrain")
    Traceback (most recent call last):
    ...
    ValueError: method must be one of 'auto', 'keep', 'intercept', 'recalibrate', 'revise', 'refit'; got method='retrain'.
    """  # noqa: E501
    _check(method, alpha, random_state)
    if null_distribution not in ("auto", "chi2", "bootstrap"):
        raise ValueError(
            "null_distribution must be 'auto', 'chi2' or 'bootstrap'; got "
            f"null_distribution={null_distribution!r}."
        )
    model, parent_sha = _resolve(model, parent_sha256)
    ep = model.endpoint_
    checked, _, data, target = ep.labelled(cohort, model.schema_)
    if len(data) == 0:
        raise ValueError(
            f"No records of the cohort are eligible for the {ep.name} endpoint with its "
            f"outcome ({', '.join(ep.outcome_columns)}) observed; nothing to update with."
        )
    parts = build_parts(model, data, target)
    for part in parts:
        events = int(part.design.y.sum())
        if events == 0 or events == len(part.design):
            what = part.label if part.cause is not None else ep.name
            raise ValueError(
                f"The {len(data)} eligible records have {events} events of {what}; updating "
                "needs both events and non-events."
            )

    methods = _per_part(method, parts, ep)
    updated = copy.deepcopy(model)
    # the parent's bootstrap refits describe the parent, not the updated model
    for stale in ("interval_models_", "interval_info_"):
        updated.__dict__.pop(stale, None)
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: one thread is faster
        decisions = [
            _update_part(updated, p, m, alpha, null_distribution, random_state, data, target)
            for p, m in zip(parts, methods, strict=True)
        ]

    if method == "refit":
        from sklearn.base import clone

        updated = clone(model).set_params(backend=model.backend_, random_state=random_state)
        updated.fit(cohort)
    applied = {d["method"] for d in decisions}
    overall = applied.pop() if len(applied) == 1 else "per cause"
    if overall != "keep":
        revised = any(d["method"] == "revise" for d in decisions)
        _refresh_reference(updated, model, data, cohort, overall, revised=revised)
    lineage = _lineage(
        model,
        parent_sha,
        method,
        overall,
        decisions,
        alpha,
        null_distribution,
        cohort,
        checked,
        data,
    )
    set_fitted(updated, lineage_=lineage)
    return updated


def _per_part(method: Any, parts: list[Part], ep: Any) -> list[str]:
    """The method of each part: the same for all, or one per competing cause."""
    if not isinstance(method, Mapping):
        return [method] * len(parts)
    causes = [p.cause for p in parts]
    if None in causes or set(method) != set(causes):
        raise ValueError(
            f"A method per cause needs a competing-risks model and one entry per cause "
            f"({causes if None not in causes else 'the ' + ep.name + ' model has none'}); "
            f"got method={dict(method)!r}."
        )
    return [method[c] for c in causes]


def _update_part(
    updated: RiskModel,
    part: Part,
    method: str,
    alpha: float,
    null_distribution: str,
    random_state: int,
    data: pd.DataFrame,
    target: np.ndarray,
) -> dict[str, Any]:
    """Apply ``method`` to one part of ``updated`` (``"auto"``: the level the closed test
    chooses); the part's entry of the lineage. A requested method runs no tests."""
    record: dict[str, Any] = {"part": part.label}
    if part.cause is not None:
        record["cause"] = part.cause
    chosen, tests = method, list[Any]()
    if method == "auto":
        chosen, tests, _ = closed_test(
            part.design, alpha, reference=null_distribution, random_state=random_state
        )
    record.update(
        {
            "method": chosen,
            "tests": [t.to_dict() for t in tests],
            "n": len(part.design),
            "events": int(part.design.y.sum()),
        }
    )
    if chosen in ("intercept", "recalibrate"):
        # a calibrated ensemble is recalibrated in its exact form, one score per fold
        fit = fit_level(part.design if part.fold_design is None else part.fold_design, chosen)
        apply_linear(updated, part, fit)
        record["parameters"] = _parameters(fit)
    elif chosen == "revise" and part.own_design:
        fit = revise_linear(part, random_state)
        if method == "auto" and fit.penalty >= PENALTY_GRID[-1]:
            record["method"] = "recalibrate"
            record["reason"] = (
                "the closed test favoured a revision, but its cross-validated penalty is "
                f"the largest tried ({fit.penalty:g}): the site's records support no change "
                "of the coefficients beyond recalibration, so the model is recalibrated"
            )
            design = part.design if part.fold_design is None else part.fold_design
            fit = fit_level(design, "recalibrate")
        apply_linear(updated, part, fit)
        record["parameters"] = _parameters(fit)
    elif chosen == "revise":
        record["parameters"] = _revise(updated, part, data, target, random_state)
    return record


def _parameters(fit: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"intercept": float(fit.alpha)}
    if fit.scale is not None:
        out["scale"] = float(fit.scale)
    if fit.level in ("recalibrate", "revise"):
        out["slope"] = float(fit.slope)
    if fit.level == "revise":
        out["penalty"] = float(fit.penalty)
        out["n_coefficients_changed"] = int(np.sum(np.abs(fit.delta) > 1e-12))
    return out


def _revise(
    updated: RiskModel, part: Part, data: pd.DataFrame, target: np.ndarray, random_state: int
) -> dict[str, Any]:
    """Revise one part of ``updated`` in place; the parameters for the lineage."""
    if part.kind in ("stack", "stack_cox"):
        return reweight_stack(updated, part)
    from spinerisk.update._boost import continue_classifier, continue_survival
    from spinerisk.update._parts import build_parts as rebuild

    if part.kind == "calibrated":
        y = part.design.y.astype(int)
        rounds = []
        for k, cc in enumerate(updated.estimator_.calibrated_classifiers_):
            pipe = cc.estimator
            step = pipe[-1]
            X = pipe[:-1].transform(data)
            y_enc = (np.asarray(target) == step.classes_[1]).astype(int)
            assert np.array_equal(y_enc, y)
            step.estimator_, extra = continue_classifier(
                step.estimator_, X, y_enc, random_state + k
            )
            rounds.append(extra)
        new_part = rebuild(updated, data, target)[0]
        assert new_part.fold_design is not None
        fit = fit_level(new_part.fold_design, "recalibrate")
        apply_linear(updated, new_part, fit)
        return {**_parameters(fit), "extra_rounds": rounds}
    from spinerisk.targets import make_survival_target

    est = cause_model(updated, part)
    Xf = survival_features(updated, data)
    event = np.asarray(target["event"])
    hit = event == part.cause if part.cause is not None else event.astype(bool)
    last = float(est.unique_times_[-1])
    time = np.asarray(target["time"], dtype=np.float64)
    y = make_survival_target(hit & (time <= last), np.minimum(time, last))
    est.booster_, extra = continue_survival(est, Xf, y, random_state)
    # then the baseline: hazard level (Cox), or location and scale (AFT)
    new_part = next(p for p in rebuild(updated, data, target) if p.cause == part.cause)
    fit = fit_level(new_part.design, "intercept")
    apply_linear(updated, new_part, fit)
    return {"extra_rounds": [extra], **_parameters(fit)}


def _refresh_reference(
    updated: RiskModel,
    parent: RiskModel,
    data: pd.DataFrame,
    cohort: pd.DataFrame,
    method: str,
    *,
    revised: bool,
) -> None:
    """The training reference becomes the update records (what the updated model is
    deployed on, and what drift is measured against); a revision of some part (its
    coefficients estimated on the site too) widens the training ranges to the site's."""
    from spinerisk.reference import summarise_training, trained_on_synthetic, training_ranges

    if method == "refit":
        return  # fit() built both from the site's records
    if revised:
        site = training_ranges(data, updated.endpoint_, updated.schema_)
        set_fitted(updated, training_ranges_=_union(parent.training_ranges_, site))
    risk = updated._risk_values(data, updated.horizons_)
    synthetic = bool(cohort.attrs.get("synthetic", False)) or bool(trained_on_synthetic(parent))
    reference = summarise_training(
        updated,
        data,
        pd.DataFrame(risk, columns=[updated.endpoint_.risk_column(h) for h in updated.horizons_]),
        synthetic=synthetic,
    )
    set_fitted(updated, reference_=reference)


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for name, value in b.items():
        old = out.get(name)
        if old is None:
            out[name] = value
        elif isinstance(old, tuple) and isinstance(value, tuple):
            out[name] = (min(old[0], value[0]), max(old[1], value[1]))
        elif isinstance(old, set) and isinstance(value, set):
            out[name] = old | value
    return out


def _lineage(
    parent: RiskModel,
    parent_sha: str | None,
    requested: Any,
    applied: str,
    decisions: list[dict[str, Any]],
    alpha: float,
    null_distribution: str,
    cohort: pd.DataFrame,
    checked: pd.DataFrame,
    data: pd.DataFrame,
) -> dict[str, Any]:
    from spinerisk._version import __version__
    from spinerisk.bundle._format import fingerprint

    text = _DESCRIPTIONS.get(applied, "updated per cause (see causes)")
    if applied == "revise" and parent.backend_ == "stack":
        text = (
            "revised: the intercept and every candidate's weight re-estimated on the site "
            "(non-negative, by maximum likelihood)"
        )
    return {
        "parent": {
            "sha256": parent_sha,
            "endpoint": parent.endpoint_.name,
            "backend": parent.backend_,
            "n_train": int(parent.n_train_),
            "lineage": getattr(parent, "lineage_", None),
        },
        "requested": requested
        if isinstance(requested, str)
        else {str(k): v for k, v in requested.items()},
        "method": applied,
        "description": text,
        "procedure": (
            "closed testing procedure (Vergouwe et al., Stat Med 2017): likelihood-ratio "
            f"tests of revision vs keep, vs intercept, vs recalibration at alpha={alpha:g}; "
            f"null distribution {null_distribution!r}"
        ),
        "alpha": float(alpha),
        "levels": list(LEVELS),
        "parts": decisions,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "update_data": {
            "fingerprint": fingerprint(cohort),
            "n_records": int(len(checked)),
            "n_eligible": int(len(data)),
            "synthetic": bool(cohort.attrs.get("synthetic", False)),
        },
        "spinerisk_version": __version__,
    }
