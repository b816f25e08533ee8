"""The model against its comparators on the same records: metrics with bootstrap CIs and
paired bootstrap differences (model minus comparator) in discrimination and net benefit."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from spinerisk.evaluation._bootstrap import MetricSpec, bootstrap_metrics
from spinerisk.evaluation._comparators import Comparator
from spinerisk.evaluation._data import EvalData
from spinerisk.metrics._ipcw import logit

__all__ = ["COMPARATOR_THRESHOLDS", "compare"]

#: Risk thresholds at which net benefit differences are tabulated by default.
COMPARATOR_THRESHOLDS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)
_SAME_HORIZON_DAYS = 0.5


@dataclass(frozen=True)
class _Row:
    comparator: str
    metric: str
    horizon: float | None
    threshold: float | None
    model: Callable[[EvalData], float]
    other: Callable[[EvalData], float]
    paired: bool


# -- per-resample quantities (cached on the resample) ------------------------------------------
def _subset(d: EvalData, j: int) -> EvalData:
    """The records with a value of comparator ``j``."""
    key = ("subset", j)
    if key not in d.cache:
        assert d.scores is not None
        rows = np.flatnonzero(np.isfinite(d.scores[:, j]))
        d.cache[key] = d.take(rows)
    return d.cache[key]  # type: ignore[no-any-return]


def _as_published(comp: Comparator, kind: str, h: float) -> bool:
    if comp.scale != "probability":
        return False
    if kind == "binary" or comp.horizon is None:
        return True
    return abs(comp.horizon - h) <= _SAME_HORIZON_DAYS


def _recalibrate(sub: EvalData, x: np.ndarray, h: float) -> tuple[float, float]:
    """Intercept and slope of ``logit P(outcome by h) = a + b * x`` on ``sub`` (binary:
    plain logistic; time-to-event: weighted for censoring, competing events known
    non-events)."""
    from spinerisk.metrics._common import fit_logistic

    design = np.column_stack([np.ones_like(x), x])
    if sub.kind == "binary":
        a, b = fit_logistic(np.asarray(sub.event, dtype=bool), design)
    else:
        y, w = sub.horizon_outcome(h)
        a, b = fit_logistic(y, design, w)
    return float(a), float(b)


def _comparator_risk(sub: EvalData, j: int, comp: Comparator) -> np.ndarray:
    """Risk of comparator ``j`` at every horizon: as published, or recalibrated."""
    key = ("comparator_risk", j)
    if key not in sub.cache:
        assert sub.scores is not None
        score = sub.scores[:, j]
        cols = []
        for h in sub.horizons:
            if _as_published(comp, sub.kind, h):
                cols.append(score)
                continue
            x = logit(score) if comp.scale == "probability" else score
            a, b = _recalibrate(sub, x, h)
            cols.append(1.0 / (1.0 + np.exp(-(a + b * x))))
        sub.cache[key] = np.column_stack(cols)
    return sub.cache[key]  # type: ignore[no-any-return]


def _net_benefit(
    sub: EvalData, risk: np.ndarray, h: float, thresholds: Sequence[float]
) -> np.ndarray:
    import spinerisk.metrics as m

    if sub.kind == "binary":
        table = m.net_benefit(sub.event, risk, thresholds)
    else:
        cause = sub.cause if sub.kind == "competing" else None
        table = m.net_benefit_survival(sub.follow_up, sub.event, risk, h, thresholds, cause=cause)
    return table["model"].to_numpy(float)


def _nb(d: EvalData, j: int, comp: Comparator, which: str, h: float, thr: tuple) -> np.ndarray:
    sub = _subset(d, j)
    key = ("nb", which, h)
    if key not in sub.cache:
        k = sub.horizons.index(h)
        risk = sub.risk[:, k] if which == "model" else _comparator_risk(sub, j, comp)[:, k]
        sub.cache[key] = _net_benefit(sub, risk, h, thr)
    return sub.cache[key]  # type: ignore[no-any-return]


# -- the rows of the comparison ----------------------------------------------------------------
def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC of any score (ties count one half): the Mann-Whitney statistic, equal to
    :func:`sklearn.metrics.roc_auc_score` (tested) without its input checks, which cost
    more than the statistic on every bootstrap resample."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("AUROC needs records with and without the outcome.")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _discrimination_rows(j: int, comp: Comparator, kind: str, hs: tuple) -> list[_Row]:
    import spinerisk.metrics as m

    def score(d: EvalData) -> np.ndarray:
        assert d.scores is not None
        return d.scores[:, j]

    if kind == "binary":
        return [
            _Row(
                comp.name,
                "auroc",
                hs[0],
                None,
                lambda d: _auroc(_subset(d, j).event, _subset(d, j).risk[:, 0]),
                lambda d: _auroc(_subset(d, j).event, score(_subset(d, j))),
                True,
            )
        ]
    if kind == "survival":
        last = hs[-1]

        def harrell(d: EvalData, values: np.ndarray | None) -> float:
            sub = _subset(d, j)
            r = sub.at(last) if values is None else values
            return m.harrell_c(sub.follow_up, sub.occurred, r)

        return [
            _Row(
                comp.name,
                "harrell_c",
                None,
                None,
                lambda d: harrell(d, None),
                lambda d: harrell(d, score(_subset(d, j))),
                True,
            )
        ]
    rows = []
    for h in hs:

        def wolbers(d: EvalData, own: bool, h: float = h) -> float:
            sub = _subset(d, j)
            r = sub.at(h) if own else score(sub)
            return m.competing_c(sub.follow_up, sub.event, r, cause=sub.cause, horizon=h)

        rows.append(
            _Row(
                comp.name,
                "competing_c",
                h,
                None,
                partial(wolbers, own=True),
                partial(wolbers, own=False),
                True,
            )
        )
    return rows


def _calibration_rows(j: int, comp: Comparator, kind: str, hs: tuple) -> list[_Row]:
    """Brier, calibration slope and intercept and O/E of a comparator used as published."""
    from spinerisk.evaluation._data import metric_specs

    rows: list[_Row] = []
    wanted = ("brier", "calibration_slope", "calibration_intercept", "oe_ratio")
    for h in hs:
        if not _as_published(comp, kind, h):
            continue
        specs = [s for s in metric_specs(kind, hs, with_ibs=False) if s.name in wanted]
        for spec in specs:
            if spec.horizon not in (h, None):
                continue

            def own(d: EvalData, fn: Any = spec.function) -> float:
                return float(fn(_subset(d, j)))

            def other(d: EvalData, fn: Any = spec.function) -> float:
                sub = _subset(d, j)
                return float(fn(replace(sub, risk=_comparator_risk(sub, j, comp), cache={})))

            rows.append(_Row(comp.name, spec.name, h, None, own, other, spec.name == "brier"))
    return rows


def _net_benefit_rows(
    j: int, comp: Comparator, hs: tuple, thresholds: tuple[float, ...]
) -> list[_Row]:
    def nb(d: EvalData, part: str, h: float, k: int) -> float:
        return float(_nb(d, j, comp, part, h, thresholds)[k])

    rows = []
    for h in hs:
        for k, t in enumerate(thresholds):
            own = partial(nb, part="model", h=h, k=k)
            other = partial(nb, part="comparator", h=h, k=k)
            rows.append(_Row(comp.name, "net_benefit", h, t, own, other, True))
    return rows


def _recalibration_table(evd: EvalData, comps: list[Comparator]) -> pd.DataFrame:
    rows = []
    for j, comp in enumerate(comps):
        sub = _subset(evd, j)
        for h in evd.horizons:
            if _as_published(comp, evd.kind, h):
                rows.append(
                    {
                        "comparator": comp.name,
                        "horizon": h,
                        "method": "as published (a probability)",
                        "intercept": np.nan,
                        "slope": np.nan,
                    }
                )
                continue
            assert sub.scores is not None
            score = sub.scores[:, j]
            x = logit(score) if comp.scale == "probability" else score
            try:
                a, b = _recalibrate(sub, x, h)
            except ValueError:
                a = b = np.nan
            on = "logit(probability)" if comp.scale == "probability" else "score"
            weighted = "" if evd.kind == "binary" else ", weighted for censoring"
            rows.append(
                {
                    "comparator": comp.name,
                    "horizon": h,
                    "method": f"logistic recalibration on {on}{weighted}",
                    "intercept": a,
                    "slope": b,
                }
            )
    return pd.DataFrame(rows, columns=["comparator", "horizon", "method", "intercept", "slope"])


def _decision_curves(
    evd: EvalData,
    comps: list[Comparator],
    thresholds: Sequence[float] | None,
    usable: Sequence[int],
) -> dict[str, dict[float, pd.DataFrame]]:
    import spinerisk.metrics as m
    from spinerisk.evaluation._curves import SURVIVAL_THRESHOLDS

    grid = tuple(thresholds) if thresholds is not None else None
    if grid is None and evd.kind != "binary":
        grid = SURVIVAL_THRESHOLDS
    out: dict[str, dict[float, pd.DataFrame]] = {}
    for j, comp in enumerate(comps):
        sub = _subset(evd, j)
        out[comp.name] = {}
        if j not in usable:
            continue
        for h in sub.estimable_horizons:  # none beyond the records' follow-up
            k = evd.horizons.index(h)
            try:
                risk = _comparator_risk(sub, j, comp)[:, k]
            except ValueError:
                continue
            if evd.kind == "binary":
                model = m.net_benefit(sub.event, sub.risk[:, k], grid)
                other = m.net_benefit(sub.event, risk, grid)
            else:
                cause = sub.cause if sub.kind == "competing" else None
                model = m.net_benefit_survival(
                    sub.follow_up, sub.event, sub.risk[:, k], h, grid, cause=cause
                )
                other = m.net_benefit_survival(sub.follow_up, sub.event, risk, h, grid, cause=cause)
            out[comp.name][h] = pd.DataFrame(
                {
                    "threshold": model["threshold"],
                    "model": model["model"],
                    "comparator": other["model"],
                    "treat_all": model["treat_all"],
                    "treat_none": model["treat_none"],
                }
            )
    return out


def _info(evd: EvalData, comps: list[Comparator]) -> list[dict[str, Any]]:
    out = []
    for j, comp in enumerate(comps):
        sub = _subset(evd, j)
        missing = len(evd) - len(sub)
        if comp.scale == "probability":
            handling = "a probability: evaluated as published with every metric" + (
                ""
                if comp.horizon is None or evd.kind == "binary"
                else f" at its horizon ({comp.horizon:g} days); recalibrated like a "
                "score at the other horizons"
            )
        else:
            handling = (
                "a score, not a probability: discrimination from the score itself; net "
                "benefit after logistic recalibration on these evaluation records "
                "(logit risk = a + b x score"
                + ("" if evd.kind == "binary" else ", weighted for censoring, at each horizon")
                + "), refitted in every bootstrap resample; its calibration is not "
                "assessed (recalibrated on the same records it would look perfect)"
            )
        out.append(
            {
                "name": comp.name,
                "source": comp.source,
                "scale": comp.scale,
                "horizon": comp.horizon,
                "description": comp.description,
                "reference": comp.reference,
                "n": len(sub),
                "events": int(sub.occurred.sum()),
                "n_without_value": int(missing),
                "handling": handling,
            }
        )
    return out


Batch = Callable[[EvalData, np.ndarray], np.ndarray]


def _row_batches(
    evd: EvalData, row: _Row, j: int, comp: Comparator
) -> tuple[Batch | None, Batch | None]:
    """Batched forms of a row's model and comparator values (see
    :func:`~spinerisk.evaluation._bootstrap.bootstrap_metrics`), for a comparator with a
    value for every record (each resample is then its own subset) and a metric with one;
    net benefit is batched for binary endpoints, the comparator's only when it is a
    published probability (a score is recalibrated in every resample, and time-to-event
    net benefit fits Kaplan-Meier to the treated: both run resample by resample).
    The comparator's values stand in for the model's risks: as a score for discrimination,
    as the published probability for calibration and net benefit."""
    from spinerisk.evaluation._bootstrap import batch_of
    from spinerisk.metrics._binary import net_benefit_resamples

    assert evd.scores is not None
    score = evd.scores[:, j]
    if not np.isfinite(score).all():
        return None, None
    if row.metric == "net_benefit":
        if evd.kind != "binary" or row.threshold is None:
            return None, None
        y, t = np.asarray(evd.event, dtype=bool), row.threshold
        model_risk = evd.risk[:, 0]

        def nb_model(d: EvalData, rows: np.ndarray) -> np.ndarray:
            return net_benefit_resamples(y, model_risk, t, rows)

        def nb_other(d: EvalData, rows: np.ndarray) -> np.ndarray:
            return net_benefit_resamples(y, score, t, rows)

        return nb_model, nb_other if comp.scale == "probability" else None
    horizon = evd.horizons[-1] if row.horizon is None else row.horizon
    own = batch_of(row.metric, evd, horizon)
    as_risk = replace(
        evd, risk=np.repeat(score[:, None], len(evd.horizons), axis=1), scores=None, cache={}
    )
    base = batch_of(row.metric, as_risk, horizon)
    if own is None or base is None:
        return None, None

    def other(d: EvalData, rows: np.ndarray) -> np.ndarray:
        return base(as_risk, rows)

    return own, other


def _difference(own: Batch, other: Batch) -> Batch:
    return lambda d, rows: own(d, rows) - other(d, rows)


def _memo(fn: Callable[[EvalData], float], key: tuple) -> Callable[[EvalData], float]:
    """``fn`` computed once per resample (the difference reuses both values)."""

    def cached(d: EvalData) -> float:
        if key not in d.cache:
            d.cache[key] = fn(d)
        return float(d.cache[key])

    return cached


def compare(
    evd: EvalData,
    comps: list[Comparator],
    *,
    thresholds: Sequence[float] | None,
    nb_thresholds: Sequence[float],
    n_bootstrap: int,
    ci: float,
    random_state: int,
    n_jobs: int,
) -> dict[str, Any]:
    """The comparison tables of :func:`spinerisk.evaluate` (see its ``comparators``)."""
    assert evd.scores is not None
    thr = tuple(float(t) for t in nb_thresholds)
    rows, notes, usable = _rows(evd, comps, thr)
    specs = _specs(evd, comps, rows)
    table_rows: list[dict[str, Any]] = []
    if specs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = bootstrap_metrics(
                specs,
                evd,
                n_bootstrap=n_bootstrap,
                ci=ci,
                random_state=random_state,
                n_jobs=n_jobs,
            )
        table_rows = _table_rows(evd, comps, rows, boot)
    columns = ["comparator", "metric", "horizon", "threshold", "n", "events"]
    for part in ("model", "comparator", "difference"):
        columns += [f"{part}_estimate", f"{part}_lower", f"{part}_upper"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recalibration = _recalibration_table(evd, comps)
        curves = _decision_curves(evd, comps, thresholds, usable)
    return {
        "table": pd.DataFrame(table_rows).reindex(columns=columns),
        "info": _info(evd, comps),
        "recalibration": recalibration,
        "decision_curves": curves,
        "nb_thresholds": list(thr),
        "notes": notes,
    }


def _rows(
    evd: EvalData, comps: list[Comparator], thr: tuple[float, ...]
) -> tuple[list[_Row], list[str], list[int]]:
    """The comparison's rows (metric, horizon, threshold of each comparator with enough
    events and non-events), notes on those left out and the indices of those kept."""
    rows: list[_Row] = []
    notes: list[str] = []
    usable: list[int] = []
    for j, comp in enumerate(comps):
        sub = _subset(evd, j)
        events = int(sub.occurred.sum())
        if events < 2 or len(sub) - events < 2:
            notes.append(
                f"Comparator {comp.name}: {len(sub)} records with a value and {events} "
                "events; too few to compare."
            )
            continue
        usable.append(j)
        rows += _discrimination_rows(j, comp, evd.kind, sub.estimable_horizons)
        rows += _calibration_rows(j, comp, evd.kind, sub.estimable_horizons)
        rows += _net_benefit_rows(j, comp, sub.estimable_horizons, thr)
    return rows, notes, usable


def _specs(evd: EvalData, comps: list[Comparator], rows: list[_Row]) -> list[MetricSpec]:
    """Per row: the model's and the comparator's value, and their paired difference."""
    specs: list[MetricSpec] = []
    index = {c.name: j for j, c in enumerate(comps)}
    for i, r in enumerate(rows):
        own, other = _memo(r.model, ("row", i, "model")), _memo(r.other, ("row", i, "other"))
        own_b, other_b = _row_batches(evd, r, index[r.comparator], comps[index[r.comparator]])
        specs.append(MetricSpec("model", r.horizon, own, own_b))
        specs.append(MetricSpec("comparator", r.horizon, other, other_b))
        if r.paired:
            diff_b = None
            if own_b is not None and other_b is not None:
                diff_b = _difference(own_b, other_b)
            specs.append(MetricSpec("difference", r.horizon, _minus(own, other), diff_b))
    return specs


def _minus(
    a: Callable[[EvalData], float], b: Callable[[EvalData], float]
) -> Callable[[EvalData], float]:
    """``d -> a(d) - b(d)``."""

    def difference(d: EvalData) -> float:
        return a(d) - b(d)

    return difference


def _table_rows(
    evd: EvalData, comps: list[Comparator], rows: list[_Row], boot: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """The table's rows: n, events and the bootstrap estimates and intervals of the
    specs of :func:`_specs`, in their order."""
    table_rows = []
    pos = 0
    names = {c.name: j for j, c in enumerate(comps)}
    for r in rows:
        sub = _subset(evd, names[r.comparator])
        row: dict[str, Any] = {
            "comparator": r.comparator,
            "metric": r.metric,
            "horizon": np.nan if r.horizon is None else float(r.horizon),
            "threshold": np.nan if r.threshold is None else r.threshold,
            "n": len(sub),
            "events": int(sub.occurred.sum()),
        }
        parts = ("model", "comparator", "difference") if r.paired else ("model", "comparator")
        for part in parts:
            row[f"{part}_estimate"] = boot["estimate"][pos]
            row[f"{part}_lower"] = boot["lower"][pos]
            row[f"{part}_upper"] = boot["upper"][pos]
            pos += 1
        table_rows.append(row)
    return table_rows
