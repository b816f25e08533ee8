"""The original and the updated model side by side on a site's records.

:func:`compare_models` puts two fitted models on the same records: every metric of
:func:`spinerisk.evaluate` (discrimination, calibration), net benefit at chosen
thresholds, and the paired differences, all with percentile bootstrap intervals over the
same resampled patients. :func:`update_report` updates a model on a site and compares it
with the original on records the update did not see (a held-out part of the site), or,
when the site is too small to split, on all of them with the updated model's optimism
removed by Harrell's bootstrap (every resample repeats the update, choice of method
included).
"""

from __future__ import annotations

import html
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spinerisk.riskmodel import RiskModel

__all__ = ["UpdateReport", "compare_models", "update_report"]

#: Net-benefit thresholds of the comparison table when none are given.
DEFAULT_THRESHOLDS = {"binary": (0.1, 0.2, 0.3), "survival": (0.05, 0.1, 0.2)}
#: ``validation="auto"`` holds out part of the site when that part would hold at least
#: this many events (a common minimum for validation); otherwise it corrects for optimism.
MIN_HELD_OUT_EVENTS = 100
_SIDES = ("original", "updated", "difference")


@dataclass(frozen=True)
class _Paired:
    """The same records' outcomes with the risks of two models (resampled together).

    ``values`` keeps each metric's value per model on this (re)sample, so the
    difference reuses the two values instead of computing them again.
    """

    original: Any
    updated: Any
    values: dict[tuple[str, float | None, str], float] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.original)

    def take(self, rows: np.ndarray) -> _Paired:
        return _Paired(self.original.take(rows), self.updated.take(rows))

    def value(self, name: str, horizon: float | None, function: Any, side: str) -> float:
        key = (name, horizon, side)  # a metric is reported at every horizon
        if key not in self.values:
            self.values[key] = float(function(getattr(self, side)))
        return self.values[key]


def _net_benefit(d: Any, h: float, t: float) -> float:
    from spinerisk import metrics as m

    if d.kind == "binary":
        return float(m.net_benefit(d.event, d.at(h), [t])["model"].iloc[0])
    cause = d.cause if d.kind == "competing" else None
    table = m.net_benefit_survival(d.follow_up, d.event, d.at(h), h, [t], cause=cause)
    return float(table["model"].iloc[0])


def _specs(
    kind: str, horizons: tuple[float, ...], thresholds: Sequence[float], evd: Any = None
) -> list[Any]:
    """The metrics of :func:`spinerisk.evaluate` and net benefit at each threshold, at the
    last horizon the records ``evd`` are followed beyond (as evaluate's decision curve;
    the last horizon without them)."""
    from spinerisk.evaluation._bootstrap import MetricSpec
    from spinerisk.evaluation._data import metric_specs

    specs = metric_specs(kind, horizons, with_ibs=False)
    h = ((evd.estimable_horizons if evd is not None else ()) or horizons)[-1]
    for t in thresholds:
        name = f"net_benefit@{t:g}"
        specs.append(MetricSpec(name, h, partial(_net_benefit, h=h, t=float(t))))
    return specs


def _paired_specs(specs: list[Any]) -> list[Any]:
    from spinerisk.evaluation._bootstrap import MetricSpec

    out = []
    for s in specs:
        for side in _SIDES:
            out.append(
                MetricSpec(
                    f"{s.name}|{side}", s.horizon, _side(s.name, s.horizon, s.function, side)
                )
            )
    return out


def _side(name: str, horizon: float | None, function: Any, side: str) -> Any:
    if side == "difference":
        return lambda d: (
            d.value(name, horizon, function, "updated")
            - d.value(name, horizon, function, "original")
        )
    return lambda d: d.value(name, horizon, function, side)


@dataclass(eq=False)
class UpdateReport:
    """An original and an updated model on the same records of a site.

    Attributes
    ----------
    endpoint, kind, backend : str
    method : str
        The update method applied (``"per cause"`` when causes differ).
    validation : str
        ``"held-out"`` (records the update did not see) or ``"optimism-corrected"``
        (the update records themselves, the updated model's optimism removed).
    synthetic : bool
        The records or the models' training data are labelled synthetic.
    horizons : tuple of float
    n_update, n_evaluated, n_events : int
        Eligible records used to update, records and events of interest evaluated.
    metrics : DataFrame
        One row per metric and horizon: ``original``, ``updated`` and ``difference``
        (updated minus original), each with ``_lower``/``_upper`` bootstrap limits; with
        optimism correction also ``optimism`` (subtracted from ``updated`` and
        ``difference`` and their limits).
    calibration : dict
        Per horizon, the binned calibration tables of both models (``model`` column).
    decision_curve : dict
        Per horizon, net benefit of both models, treat-all and treat-none per threshold.
    lineage : dict
        The updated model's ``lineage_``.
    settings : dict
    notes : list of str
    updated_model : RiskModel
        The updated model that was evaluated (with a held-out part, updated on the rest
        of the site: update on the whole site for use).
    time_unit : str
        The endpoint's time unit: horizons are shown in it (``12mo``, ``5y``).
    """

    endpoint: str
    kind: str
    backend: str
    method: str
    validation: str
    synthetic: bool
    horizons: tuple[float, ...]
    n_update: int
    n_evaluated: int
    n_events: int
    metrics: pd.DataFrame
    calibration: dict[float, pd.DataFrame] = field(default_factory=dict)
    decision_curve: dict[float, pd.DataFrame] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    updated_model: RiskModel | None = None
    time_unit: str = "days"

    # -- renderings ---------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The metric table (a copy), its ``horizon`` in :attr:`time_unit`, the
        endpoint's (:attr:`metrics` keeps days)."""
        from spinerisk.evaluation._format import horizons_in_unit

        out = horizons_in_unit(self.metrics, self.time_unit)
        return out.copy() if out is self.metrics else out

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, as plain JSON-compatible data: horizons in
        ``time_unit`` (``horizon_days`` in days), per-horizon tables keyed by label."""
        from spinerisk.endpoints import days_in_unit, stated_horizons
        from spinerisk.evaluation._format import horizon_label, json_tree

        unit = self.time_unit
        return json_tree(
            {
                "endpoint": self.endpoint,
                "kind": self.kind,
                "backend": self.backend,
                "method": self.method,
                "validation": self.validation,
                "synthetic": self.synthetic,
                "time_unit": unit,
                "horizons": days_in_unit(stated_horizons(self.horizons), unit).tolist(),
                "horizon_days": stated_horizons(self.horizons),
                "n_update": self.n_update,
                "n_evaluated": self.n_evaluated,
                "n_events": self.n_events,
                "metrics": self.to_frame(),
                "calibration": {horizon_label(h, unit): t for h, t in self.calibration.items()},
                "decision_curve": {
                    horizon_label(h, unit): t for h, t in self.decision_curve.items()
                },
                "lineage": self.lineage,
                "settings": self.settings,
                "notes": self.notes,
            }
        )

    def _summary(self) -> pd.DataFrame:
        from spinerisk.evaluation._data import METRIC_LABELS
        from spinerisk.evaluation._format import fmt, horizon_label

        rows = []
        for r in self.metrics.itertuples(index=False):
            name = METRIC_LABELS.get(r.metric, r.metric.replace("net_benefit@", "Net benefit at "))
            row = {"metric": name, "horizon": horizon_label(r.horizon, self.time_unit)}
            for side in _SIDES:
                est = getattr(r, side)
                lo, hi = getattr(r, f"{side}_lower"), getattr(r, f"{side}_upper")
                row[side] = f"{fmt(est)} ({fmt(lo)} to {fmt(hi)})"
            rows.append(row)
        return pd.DataFrame(rows)

    def _intro(self) -> list[str]:
        ci = int(round(100 * float(self.settings.get("ci", 0.95))))
        lines = [
            f"{self.endpoint} model ({self.backend}), update method: {self.method} "
            f"(requested: {self.lineage.get('requested', '?')}).",
            f"{self.n_update} eligible site records updated the model; {self.n_evaluated} "
            f"records with {self.n_events} events were evaluated ({self.validation}).",
            f"Estimates with {ci}% percentile bootstrap intervals over "
            f"{self.settings.get('n_bootstrap')} resamples of patients; both models are "
            "resampled together, so differences (updated minus original) are paired.",
        ]
        if self.validation == "optimism-corrected":
            lines.append(
                "The site was too small to hold records out: the updated model's metrics and "
                "the differences are apparent values minus the bootstrap optimism of the "
                f"update ({self.settings.get('n_optimism')} resamples, each repeating the "
                "update with the chosen method); their intervals are shifted alike."
            )
        return lines

    def to_markdown(self) -> str:
        """A Markdown summary: the comparison table, the tests and the notes."""
        from spinerisk.evaluation import SYNTHETIC_BANNER
        from spinerisk.evaluation._format import md_table

        out = []
        if self.synthetic:
            out += [f"> **{SYNTHETIC_BANNER}**", ""]
        out += [f"# Original vs updated {self.endpoint} model", ""]
        out += [*self._intro(), ""]
        out += ["## Metrics", "", md_table(self._summary()), ""]
        tests = self._tests()
        if len(tests):
            out += ["## Tests behind the choice", "", md_table(tests), ""]
        if self.notes:
            out += ["## Notes", "", *[f"- {n}" for n in self.notes], ""]
        return "\n".join(out)

    def _tests(self) -> pd.DataFrame:
        return tests_table(self.lineage)

    def to_html(self, path: str | Path | None = None) -> str:
        """One self-contained HTML page (inline CSS, embedded PNG figures, no scripts).

        Parameters
        ----------
        path : str, Path or None, default=None
            Also write the page here.

        Returns
        -------
        str
        """
        from spinerisk.evaluation import SYNTHETIC_BANNER
        from spinerisk.evaluation._format import CSS

        e = html.escape
        body = []
        if self.synthetic:
            body.append(f'<div id="synthetic-banner" class="banner">{e(SYNTHETIC_BANNER)}</div>')
        body.append(f"<h1>Original vs updated {e(self.endpoint)} model</h1>")
        body += [f"<p>{e(line)}</p>" for line in self._intro()]
        body += ['<section id="metrics"><h2>Metrics</h2>', _html_table(self._summary())]
        body.append("</section>")
        for section, title, figure in (
            ("calibration", "Calibration", self._calibration_figure()),
            ("decision-curve", "Net benefit", self._decision_figure()),
        ):
            body.append(f'<section id="{section}"><h2>{title}</h2>')
            if figure:
                body.append(f'<img alt="{e(title)}" src="data:image/png;base64,{figure}">')
            body.append("</section>")
        tests = self._tests()
        body.append('<section id="tests"><h2>Tests behind the choice</h2>')
        body.append(_html_table(tests) if len(tests) else "<p>No tests.</p>")
        body.append("</section>")
        if self.notes:
            items = "".join(f"<li>{e(n)}</li>" for n in self.notes)
            body.append(f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>')
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Original vs updated {e(self.endpoint)} model</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _calibration_figure(self) -> str | None:
        from spinerisk.evaluation._format import at_horizon
        from spinerisk.evaluation._html import figure_of, png_data

        if not self.calibration:
            return None
        fig, axes = figure_of(len(self.calibration))
        for ax, (h, table) in zip(axes, self.calibration.items(), strict=True):
            top = 0.05
            for name, colour in (("original", "#777777"), ("updated", "#1f5fa6")):
                t = table[table["model"] == name]
                x = t["mean_predicted"].to_numpy(float)
                y = t["observed"].to_numpy(float)
                ax.plot(x, y, "o-", color=colour, label=name)
                top = max(top, float(np.nanmax(np.concatenate([x, y, [0.0]]))))
            top *= 1.05
            ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="ideal")
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
            ax.set_xlabel("Predicted risk")
            ax.set_ylabel("Observed")
            ax.set_title(f"Calibration{at_horizon(h, self.time_unit)}")
            ax.legend(fontsize=8, loc="upper left")
        if self.synthetic:
            fig.suptitle("SYNTHETIC DATA", color="#b00020", fontsize=10)
        return png_data(fig)

    def _decision_figure(self) -> str | None:
        from spinerisk.evaluation._format import at_horizon
        from spinerisk.evaluation._html import figure_of, png_data

        if not self.decision_curve:
            return None
        fig, axes = figure_of(len(self.decision_curve))
        for ax, (h, t) in zip(axes, self.decision_curve.items(), strict=True):
            th = t["threshold"].to_numpy(float)
            ax.plot(th, t["original"], color="#777777", label="original")
            ax.plot(th, t["updated"], color="#1f5fa6", label="updated")
            ax.plot(th, t["treat_all"], color="#999999", ls="--", label="treat all")
            ax.plot(th, t["treat_none"], color="black", lw=1, label="treat none")
            best = float(np.nanmax(t[["original", "updated", "treat_all"]].to_numpy(float)))
            best = max(best, 0.01)
            ax.set_ylim(-0.05 * best, best * 1.1)
            ax.set_xlabel("Risk threshold")
            ax.set_ylabel("Net benefit")
            ax.set_title(f"Decision curve{at_horizon(h, self.time_unit)}")
            ax.legend(fontsize=8)
        if self.synthetic:
            fig.suptitle("SYNTHETIC DATA", color="#b00020", fontsize=10)
        return png_data(fig)


def _html_table(frame: pd.DataFrame) -> str:
    from spinerisk.evaluation._format import fmt

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# -- computations ------------------------------------------------------------------------------
def _eligible(model: RiskModel, cohort: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The eligible records (with the cohort's attrs) and their outcome
    (:meth:`Endpoint.labelled`); at least one is required."""
    _, _, data, target = model.endpoint_.labelled(cohort, model.schema_)
    if len(data) == 0:
        raise ValueError(
            f"No records are eligible for the {model.endpoint_.name} endpoint with its "
            "outcome observed."
        )
    data.attrs.update(cohort.attrs)
    return data, target


def _curves(
    original: RiskModel, updated: RiskModel, thresholds: Any
) -> tuple[dict[float, pd.DataFrame], dict[float, pd.DataFrame]]:
    """Calibration tables and decision curves of both models at every horizon."""
    from spinerisk import metrics as m
    from spinerisk.evaluation._evaluate import SURVIVAL_THRESHOLDS

    calibration: dict[float, pd.DataFrame] = {}
    decision: dict[float, pd.DataFrame] = {}
    grid = thresholds
    if grid is None:
        grid = np.round(np.arange(0.01, 0.61, 0.01), 2) if original.kind == "binary" else None
        grid = SURVIVAL_THRESHOLDS if grid is None else grid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for h in original.estimable_horizons:  # none past the records' follow-up
            tables, curves = [], {}
            for name, d in (("original", original), ("updated", updated)):
                p = d.at(h)
                if d.kind == "binary":
                    t = m.calibration_curve(d.event, p, n_bins=10, strategy="quantile")
                    nb = m.net_benefit(d.event, p, grid)
                elif d.kind == "survival":
                    t = m.survival_calibration(d.follow_up, d.event, p, h, n_bins=10, ci=False)
                    nb = m.net_benefit_survival(d.follow_up, d.event, p, h, grid)
                else:
                    t = m.cif_calibration(
                        d.follow_up, d.event, p, h, cause=d.cause, n_bins=10, ci=False
                    )
                    nb = m.net_benefit_survival(d.follow_up, d.event, p, h, grid, cause=d.cause)
                tables.append(t.assign(model=name))
                curves[name] = nb
            calibration[h] = pd.concat(tables, ignore_index=True)
            first = curves["original"]
            decision[h] = pd.DataFrame(
                {
                    "threshold": first["threshold"].to_numpy(float),
                    "original": first["model"].to_numpy(float),
                    "updated": curves["updated"]["model"].to_numpy(float),
                    "treat_all": first["treat_all"].to_numpy(float),
                    "treat_none": first["treat_none"].to_numpy(float),
                }
            )
    return calibration, decision


def _check_common(n_bootstrap: Any, ci: Any, random_state: Any) -> None:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, numbers.Integral):
        raise ValueError(f"n_bootstrap must be an integer >= 1; got n_bootstrap={n_bootstrap!r}.")
    if int(n_bootstrap) < 1:
        raise ValueError(f"n_bootstrap must be an integer >= 1; got n_bootstrap={n_bootstrap!r}.")
    if isinstance(ci, bool) or not isinstance(ci, numbers.Real) or not 0 < float(ci) < 1:
        raise ValueError(f"ci must be a number strictly between 0 and 1; got ci={ci!r}.")
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an integer; got random_state={random_state!r}.")


def _comparison(
    original: RiskModel,
    updated: RiskModel,
    data: pd.DataFrame,
    *,
    thresholds: Sequence[float] | None,
    n_bootstrap: int,
    ci: float,
    random_state: int,
) -> tuple[pd.DataFrame, _Paired, list[Any]]:
    from spinerisk.endpoints import same_horizons
    from spinerisk.evaluation._bootstrap import bootstrap_metrics
    from spinerisk.evaluation._data import predict_values

    horizons = tuple(float(h) for h in original.horizons_)
    if not same_horizons(updated.horizons_, horizons):
        raise ValueError("The two models predict at different horizons; they cannot be paired.")
    pair = _Paired(
        predict_values(original, data, horizons)[0], predict_values(updated, data, horizons)[0]
    )
    kind = original.endpoint_.kind
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS["binary" if kind == "binary" else "survival"]
    base = _specs(kind, horizons, thresholds, pair.original)
    boot = bootstrap_metrics(
        _paired_specs(base), pair, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state
    )
    rows = []
    for j, spec in enumerate(base):
        row: dict[str, Any] = {
            "metric": spec.name,
            "horizon": np.nan if spec.horizon is None else float(spec.horizon),
        }
        for k, side in enumerate(_SIDES):
            i = 3 * j + k
            row[side] = boot["estimate"][i]
            row[f"{side}_lower"] = boot["lower"][i]
            row[f"{side}_upper"] = boot["upper"][i]
        rows.append(row)
    return pd.DataFrame(rows), pair, base


def compare_models(
    original: RiskModel,
    updated: RiskModel,
    cohort: pd.DataFrame,
    *,
    thresholds: Sequence[float] | None = None,
    n_bootstrap: int = 200,
    ci: float = 0.95,
    random_state: int = 0,
    validation: str = "held-out",
) -> UpdateReport:
    """Two fitted models of the same endpoint on the same records, with paired intervals.

    Parameters
    ----------
    original, updated : RiskModel
        Fitted models of one endpoint and horizons (typically a model and
        ``sr.update(model, ...)``).
    cohort : DataFrame
        Records with outcomes that the update did not use (or pass them through
        :func:`update_report`, which holds records out or corrects for optimism).
    thresholds : sequence of float or None, default=None
        Risk thresholds of the net-benefit rows (at the last horizon); None means 0.1,
        0.2, 0.3 for binary endpoints and 0.05, 0.1, 0.2 otherwise.
    n_bootstrap : int, default=200
        Bootstrap resamples of patients (both models on each).
    ci : float, default=0.95
        Interval coverage.
    random_state : int, default=0
        Seed of the resamples.
    validation : str, default="held-out"
        How the records relate to the update; stated in the report.

    Returns
    -------
    UpdateReport

    See Also
    --------
    update_report : Update, then compare on held-out or optimism-corrected records.
    spinerisk.evaluate : One model with every table and figure.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.update import compare_models
    >>> dev = sr.make_spine_cohort(1500, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(dev)
    >>> site = sr.make_spine_cohort(1500, seed=1, nonunion_prevalence=0.30)
    >>> updated = sr.update(model, site, method="intercept")
    >>> later = sr.make_spine_cohort(1500, seed=2, nonunion_prevalence=0.30)
    >>> report = compare_models(model, updated, later, n_bootstrap=20)
    >>> oe = report.to_frame().set_index("metric").loc["oe_ratio"]
    >>> bool(abs(oe["updated"] - 1) < abs(oe["original"] - 1))
    True
    """
    _check_common(n_bootstrap, ci, random_state)
    from spinerisk.riskmodel import RiskModel

    for name, m in (("original", original), ("updated", updated)):
        if not isinstance(m, RiskModel) or not hasattr(m, "estimator_"):
            raise TypeError(f"{name} must be a fitted spinerisk.RiskModel; got {type(m).__name__}.")
    if original.endpoint_.name != updated.endpoint_.name:
        raise ValueError(
            f"The models predict different endpoints ({original.endpoint_.name!r} and "
            f"{updated.endpoint_.name!r})."
        )
    data, _ = _eligible(original, cohort)
    table, pair, _ = _comparison(
        original,
        updated,
        data,
        thresholds=thresholds,
        n_bootstrap=n_bootstrap,
        ci=ci,
        random_state=random_state,
    )
    if original.endpoint_.kind != "binary":  # evaluate's rule: n/a past the follow-up
        from spinerisk.evaluation._evaluate import beyond_follow_up

        notes = beyond_follow_up(original.endpoint_, pair.original, table)
    else:
        notes = []
    calibration, decision = _curves(pair.original, pair.updated, None)
    lineage = getattr(updated, "lineage_", None) or {}
    return UpdateReport(
        endpoint=original.endpoint_.name,
        kind=original.endpoint_.kind,
        backend=updated.backend_,
        method=str(lineage.get("method", "unknown")),
        validation=validation,
        synthetic=_synthetic(cohort, original, updated),
        horizons=tuple(float(h) for h in original.horizons_),
        n_update=int(lineage.get("update_data", {}).get("n_eligible", 0)),
        n_evaluated=len(data),
        n_events=int(pair.original.occurred.sum()),
        metrics=table,
        calibration=calibration,
        decision_curve=decision,
        lineage=lineage,
        settings={"n_bootstrap": n_bootstrap, "ci": float(ci), "random_state": random_state},
        updated_model=updated,
        time_unit=original.endpoint_.time_unit,
        notes=notes,
    )


_ROUNDED = ("statistic", "p_value")


def tests_table(lineage: dict[str, Any]) -> pd.DataFrame:
    """The tests behind an update's choice, one row per test of each part, with the
    statistic and p-value to four significant digits (as shown; ``lineage_`` keeps
    them whole)."""
    rows = []
    for part in lineage.get("parts", []):
        for t in part.get("tests", []):
            shown = {
                k: float(f"{v:.4g}") if k in _ROUNDED and isinstance(v, float) else v
                for k, v in t.items()
            }
            rows.append({"part": part.get("part"), "chosen": part.get("method"), **shown})
    return pd.DataFrame(rows)


def _synthetic(cohort: pd.DataFrame, *models: RiskModel) -> bool:
    from spinerisk.reference import trained_on_synthetic

    return bool(cohort.attrs.get("synthetic", False)) or any(
        bool(trained_on_synthetic(m)) for m in models
    )


def _split(
    model: RiskModel, data: pd.DataFrame, target: np.ndarray, test_size: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The update part and the held-out part, stratified on the outcome (``target`` of
    ``data``)."""
    from sklearn.model_selection import train_test_split

    labels = target if model.endpoint_.kind == "binary" else target["event"]
    update_rows, held_rows = train_test_split(
        np.arange(len(data)), test_size=test_size, random_state=random_state, stratify=labels
    )
    return data.iloc[np.sort(update_rows)], data.iloc[np.sort(held_rows)]


def update_report(
    model: RiskModel,
    cohort: pd.DataFrame,
    method: Literal["auto", "keep", "intercept", "recalibrate", "revise", "refit"] = "auto",
    *,
    validation: Literal["auto", "held-out", "optimism"] = "auto",
    test_size: float = 0.3,
    n_optimism: int = 20,
    thresholds: Sequence[float] | None = None,
    n_bootstrap: int = 200,
    ci: float = 0.95,
    alpha: float = 0.05,
    null_distribution: Literal["auto", "chi2", "bootstrap"] = "auto",
    random_state: int = 0,
) -> UpdateReport:
    """Update a model on a site and compare it with the original on the site's records.

    Parameters
    ----------
    model : RiskModel
        The fitted original model.
    cohort : DataFrame
        The site's records with outcomes.
    method : {"auto", "keep", "intercept", "recalibrate", "revise", "refit"}, default="auto"
        Passed to :func:`spinerisk.update`.
    validation : {"auto", "held-out", "optimism"}, default="auto"
        ``"held-out"``: a stratified ``test_size`` share of the eligible records is held
        out; the model is updated on the rest and both models are compared on the
        held-out part. ``"optimism"``: the model is updated on every record and compared
        on them; the updated model's metrics (and the differences) are corrected by
        Harrell's bootstrap optimism, each of ``n_optimism`` resamples repeating the
        whole update (the choice of method included). ``"auto"``: held-out when the
        held-out part would have at least 100 events of interest, else optimism.
    test_size : float, default=0.3
        Held-out share.
    n_optimism : int, default=20
        Resamples of the optimism correction.
    thresholds, n_bootstrap, ci
        As in :func:`compare_models`.
    alpha, null_distribution
        Passed to :func:`spinerisk.update`.
    random_state : int, default=0
        Seed of the split, the update and the resamples.

    Returns
    -------
    UpdateReport
        ``updated_model`` is the model that was evaluated; with a held-out part it was
        updated on the rest of the site only, so update on the whole site for use.

    See Also
    --------
    compare_models, spinerisk.update

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.update import update_report
    >>> dev = sr.make_spine_cohort(1500, seed=0)
    >>> model = sr.RiskModel("nonunion", backend="linear").fit(dev)
    >>> site = sr.make_spine_cohort(1500, seed=1, nonunion_prevalence=0.30)
    >>> report = update_report(
    ...     model, site, method="intercept", validation="held-out", n_bootstrap=20
    ... )
    >>> report.validation, report.method
    ('held-out', 'intercept')
    >>> oe = report.to_frame().set_index("metric").loc["oe_ratio"]
    >>> bool(abs(oe["updated"] - 1) < abs(oe["original"] - 1))
    True
    >>> "Original vs updated" in report.to_html()
    True
    """
    from spinerisk.update._update import update

    _check_common(n_bootstrap, ci, random_state)
    if validation not in ("auto", "held-out", "optimism"):
        raise ValueError(
            f"validation must be 'auto', 'held-out' or 'optimism'; got validation={validation!r}."
        )
    ok = isinstance(test_size, numbers.Real) and not isinstance(test_size, bool)
    if not (ok and 0 < test_size < 1):
        raise ValueError(f"test_size must be strictly between 0 and 1; got {test_size!r}.")
    if isinstance(n_optimism, bool) or not isinstance(n_optimism, numbers.Integral):
        raise ValueError(f"n_optimism must be an integer >= 1; got n_optimism={n_optimism!r}.")
    if int(n_optimism) < 1:
        raise ValueError(f"n_optimism must be an integer >= 1; got n_optimism={n_optimism!r}.")
    data, target = _eligible(model, cohort)
    ep = model.endpoint_
    events = int(np.sum(target if ep.kind == "binary" else target["event"] == ep.event_of_interest))
    if validation == "auto":
        validation = "held-out" if events * test_size >= MIN_HELD_OUT_EVENTS else "optimism"
    kwargs = {"alpha": alpha, "null_distribution": null_distribution}
    common = {"thresholds": thresholds, "n_bootstrap": n_bootstrap, "ci": ci}
    if validation == "held-out":
        part, held = _split(model, data, target, test_size, random_state)
        updated = update(model, part, method, random_state=random_state, **kwargs)
        report = compare_models(
            model, updated, held, random_state=random_state, validation="held-out", **common
        )
        report.settings.update({"test_size": float(test_size), "validation": "held-out"})
        return report
    updated = update(model, data, method, random_state=random_state, **kwargs)
    report = compare_models(
        model, updated, data, random_state=random_state, validation="optimism-corrected", **common
    )
    chosen = _chosen(updated, method)
    optimism, used = _optimism(
        model, data, chosen, report, n_optimism, random_state, kwargs, thresholds
    )
    table = report.metrics
    table["optimism"] = optimism
    for col in ("updated", "updated_lower", "updated_upper"):
        table[col] = table[col] - optimism
    for col in ("difference", "difference_lower", "difference_upper"):
        table[col] = table[col] - optimism
    report.settings.update({"n_optimism": n_optimism, "n_optimism_used": used})
    if used < n_optimism:
        report.notes.append(
            f"Optimism: {n_optimism - used} of {n_optimism} resamples could not be updated "
            "(too few events) and were left out."
        )
    return report


def _chosen(updated: RiskModel, requested: Any) -> Any:
    """The method(s) the update applied: a name, or one per cause."""
    lineage = updated.lineage_
    if lineage["method"] != "per cause":
        return lineage["method"]
    return {int(p["cause"]): p["method"] for p in lineage["parts"]}


def _optimism(
    model: RiskModel,
    data: pd.DataFrame,
    method: Any,
    report: UpdateReport,
    n_optimism: int,
    random_state: int,
    kwargs: dict[str, Any],
    thresholds: Sequence[float] | None,
) -> tuple[np.ndarray, int]:
    """Harrell's optimism of the updated model: mean over resamples of (the resample's
    update on the resample) minus (on the site), less the same difference of the original
    model (which was not fitted on the site, so its difference is resampling noise)."""
    from spinerisk.evaluation._bootstrap import evaluate_specs
    from spinerisk.evaluation._data import predict_values
    from spinerisk.models._interval import unique_ids
    from spinerisk.update._update import update

    horizons = tuple(float(h) for h in model.horizons_)
    kind = model.endpoint_.kind
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS["binary" if kind == "binary" else "survival"]
    evd = predict_values(model, data, horizons)[0]
    specs = _specs(kind, horizons, thresholds, evd)
    rng = np.random.default_rng([random_state, 1])
    original = evaluate_specs(specs, evd)
    diffs = []
    for b in range(n_optimism):
        rows = rng.integers(0, len(data), size=len(data))
        boot = unique_ids(data.iloc[rows], model.id_field_)
        try:
            refit = update(model, boot, method, random_state=random_state + b + 1, **kwargs)
        except ValueError:  # a resample without events of some cause
            continue
        apparent = evaluate_specs(specs, predict_values(refit, boot, horizons)[0])
        tested = evaluate_specs(specs, predict_values(refit, data, horizons)[0])
        # the original model has no optimism on the site: its own resample-minus-site
        # difference is resampling noise, removed as a control
        control = evaluate_specs(specs, predict_values(model, boot, horizons)[0]) - original
        diffs.append(apparent - tested - control)
    if not diffs:
        return np.full(len(specs), np.nan), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(np.vstack(diffs), axis=0)
    return np.where(np.isfinite(values), values, 0.0), len(diffs)
