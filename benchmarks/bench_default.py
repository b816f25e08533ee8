"""Default-model benchmark (issue 14): ``RiskModel(backend="auto")`` against standard peers.

Run ``nice .venv/bin/python benchmarks/bench_default.py`` (about an hour on 2 shared
cores) or ``--quick`` (a smoke test of a few minutes: 3 folds, 3 data sets, small sizes;
results go to a temporary directory unless ``--json``/``--markdown`` are given). The full
run writes ``benchmarks/results/default.json`` and ``docs/benchmarks-default.md``.
Nothing is downloaded: the binary data sets are in ``benchmarks/data/`` and the SurvSet
tables ship inside the ``SurvSet`` wheel.

1. Accuracy on 13 real data sets (3 binary, 10 time-to-event from SurvSet), 5-fold
   cross-validation (stratified on the outcome or event, seed 0), every model on the same
   folds in the same run: the default, spinerisk's own ``linear`` backend, and the peers
   (binary: scikit-learn ``LogisticRegression``; time-to-event: lifelines ``CoxPHFitter``,
   scikit-survival ``RandomSurvivalForest`` and ``GradientBoostingSurvivalAnalysis``).
   Discrimination: AUROC of the pooled out-of-fold risks (binary) or the mean per-fold
   Harrell's C of the risk scores (time-to-event). Calibration slope of the pooled
   out-of-fold risks (time-to-event: at the data set's horizon, censoring-weighted) with
   its bootstrap standard error, and for time-to-event sets Royston's Cox slope too.
   Targets: the default within 0.005 of the best peer, calibration slope in 0.85-1.15.
   The best single candidate of each fitted default (the discrete super learner, a
   selection rule) is scored too, from the same fits: the evidence for combining.
2. Fit time: the default against each single backend at 500 and 2,500 eligible records
   (synthetic spine cohort: collapse and future fracture; support2: survival).
   Targets: <= 3 s at 500, <= 15 s at 2,500, <= 10x the slowest single backend.
3. Boosted survival fit against raw ``xgboost.train`` at 500-4,000 support2 records.
   Target: at most 2x raw ``xgboost.train``.
4. Optimism correction against nested cross-validation on two real binary sets, for the
   default, ``linear`` and ``xgboost``: the .632+ bootstrap of
   ``spinerisk/evaluation/_optimism.py`` (what ``evaluate`` uses) and
   Harrell's from the same refits. Target: corrected AUROC within 0.02 of 5-fold CV.

The machine's load (``os.getloadavg``) is recorded at the start and end of each part:
the machine is shared, so fit times are wall-clock seconds under that load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import spinerisk
from spinerisk.endpoints import Endpoint
from spinerisk.riskmodel import RiskModel
from spinerisk.schema import FieldSpec, Schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models as bm  # noqa: E402  (the peers and SurvSet loading are shared)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS_JSON = ROOT / "benchmarks" / "results" / "default.json"
RESULTS_MD = ROOT / "docs" / "benchmarks-default.md"
SEED = 0
DAYS = {"days": 1.0, "months": 365.25 / 12, "years": 365.25}
TOLERANCE = 0.005
SLOPE_RANGE = (0.85, 1.15)


# -- data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """A real data set, how it is read and what is left out."""

    name: str
    kind: str  # "binary" or "survival"
    description: str
    source: str
    horizon: float = 0.0  # survival: horizon in the data's time unit
    unit: str = "days"
    drop: dict[str, str] = field(default_factory=dict)

    @property
    def horizon_days(self) -> float:
        return self.horizon * DAYS[self.unit]


BINARY = (
    Data(
        "glow500",
        "binary",
        "GLOW500: women aged 55+, any fracture in the first year (125 of 500; fractures "
        "oversampled).",
        "benchmarks/data/glow/glow500.csv",
    ),
    Data(
        "hip_fracture_veterans",
        "binary",
        "Male US veterans, hip fracture case-control study (218 cases, 218 controls); "
        "886 missing cells.",
        "benchmarks/data/hip_fracture_veterans/bone.csv",
    ),
    Data(
        "hipstudy",
        "binary",
        "Elderly patients operated for hip fracture, mortality (93 of 426).",
        "benchmarks/data/hipstudy/hipstudy.csv",
    ),
)
SURVIVAL = (
    Data("whas500", "survival", "Worcester Heart Attack Study: death.", "SurvSet", 365, "days"),
    Data(
        "rott2",
        "survival",
        "Rotterdam breast cancer: recurrence or death.",
        "SurvSet",
        60,
        "months",
    ),
    Data("smarto", "survival", "SMART vascular cohort: vascular events.", "SurvSet", 1095, "days"),
    Data(
        "colon",
        "survival",
        "Adjuvant colon cancer trial: recurrence or death.",
        "SurvSet",
        1095,
        "days",
    ),
    Data("TRACE", "survival", "Post-myocardial infarction cohort: death.", "SurvSet", 3, "years"),
    Data(
        "actg", "survival", "ACTG 320 HIV trial: AIDS or death (96 events).", "SurvSet", 180, "days"
    ),
    Data("prostate", "survival", "Prostate cancer trial: death.", "SurvSet", 24, "months"),
    Data(
        "Pbc3",
        "survival",
        "PBC3 liver trial: death or transplant (61 events).",
        "SurvSet",
        730,
        "days",
    ),
    Data("cancer", "survival", "NCCTG lung cancer: death.", "SurvSet", 365, "days"),
    Data(
        "grace",
        "survival",
        "GRACE acute coronary syndrome: death within 6 months.",
        "SurvSet",
        90,
        "days",
    ),
)
QUICK_SETS = ("glow500", "whas500", "Pbc3")


def _flag_or_number(col: pd.Series) -> pd.Series:
    values = set(col.dropna().unique().tolist())
    if values <= {0, 1} and col.notna().all():
        return col.astype(bool)
    return col.astype(float)


def load_binary(spec: Data) -> pd.DataFrame:
    """Records: ``rid``, predictors, ``outcome`` (bool)."""
    raw = pd.read_csv(ROOT / spec.source)
    if spec.name == "glow500":
        out = raw[["sub_id", *bm.GLOW_COVARIATES, "fracture"]].rename(
            columns={"sub_id": "rid", "fracture": "outcome"}
        )
        out["raterisk"] = out["raterisk"].map(bm.RATERISK)
    elif spec.name == "hip_fracture_veterans":
        out = raw.rename(columns={"fracture": "outcome"})
        out.insert(0, "rid", np.arange(1, len(out) + 1))
    else:  # hipstudy
        out = raw.rename(columns={"pat_id": "rid", "Mortality": "outcome"})
        for code in ("Mobility", "Dementia", "Home", "ASA"):
            out[code] = out[code].astype(int).astype(str)
    for col in out.columns:
        if col in ("rid", "outcome") or out[col].dtype == object:
            continue
        out[col] = _flag_or_number(out[col])
    out["outcome"] = out["outcome"].astype(bool)
    return out.reset_index(drop=True)


def binary_schema(records: pd.DataFrame, name: str) -> Schema:
    fields = [FieldSpec("rid", "int", "Record id.", role="id", unique=True, nullable=False)]
    for col in records.columns:
        if col in ("rid", "outcome"):
            continue
        s = records[col]
        if s.dtype == bool:
            fields.append(FieldSpec(col, "bool", f"{name}: {col} (1 = yes)."))
        elif s.dtype == object:
            fields.append(
                FieldSpec(col, "category", f"{name}: {col}.", categories=tuple(sorted(s.unique())))
            )
        else:
            fields.append(FieldSpec(col, "float", f"{name}: {col}."))
    fields.append(FieldSpec("outcome", "bool", "Outcome.", role="outcome", nullable=False))
    return Schema(tuple(fields), name=name)


def binary_endpoint(spec: Data) -> Endpoint:
    return Endpoint(
        name=spec.name.lower(),
        kind="binary",
        description=spec.description,
        event="outcome",
        time=None,
        horizons=(365.25,),
        eligible_treatments=None,
        include_treatment=False,
    )


def load_survival(spec: Data, max_rows: int | None = None) -> pd.DataFrame:
    """SurvSet records (bench_models' conversion), time in days."""
    shim = bm.SurvivalData(spec.name, spec.description, spec.horizon_days, spec.drop)
    records, _ = bm.load_survival(shim, max_rows)
    records["time"] = records["time"] * DAYS[spec.unit]
    return records


def survival_endpoint(spec: Data) -> Endpoint:
    return Endpoint(
        name=spec.name.lower(),
        kind="survival",
        description=spec.description,
        event="event",
        time="time",
        horizons=(spec.horizon_days,),
        eligible_treatments=None,
        include_treatment=False,
    )


# -- models -----------------------------------------------------------------------------------
class SpineriskModel:
    """A RiskModel; risk scores and risks at the horizon from its own prediction path."""

    def __init__(self, backend: str, schema: Schema, endpoint: Endpoint) -> None:
        self.model = RiskModel(endpoint=endpoint, backend=backend, schema=schema, random_state=SEED)
        self.schema = schema

    def fit(self, train: pd.DataFrame) -> SpineriskModel:
        self.model.fit(train)
        return self

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        """Binary: the risk; survival: the risk at the model's horizon."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", spinerisk.DataQualityWarning)
            out = self.model.predict_risk(records)
        return out.drop(columns="warnings").to_numpy(dtype=float)[:, 0]

    def score(self, records: pd.DataFrame) -> np.ndarray:
        """Survival risk score (higher is worse)."""
        X = self.model.features_.transform(spinerisk.validate(records, self.schema))
        return np.asarray(self.model.estimator_.predict(X), dtype=float)

    def selected_score(self, records: pd.DataFrame) -> np.ndarray | None:
        """The default's best single candidate alone (the discrete super learner)."""
        if self.model.backend_ != "stack":
            return None
        checked = spinerisk.validate(records, self.schema)
        est = self.model.estimator_
        if hasattr(est, "steps"):
            return np.asarray(est[-1].selected_score(est[0].transform(checked)))
        return np.asarray(est.selected_score(self.model.features_.transform(checked)))


class PeerLogistic:
    """scikit-learn LogisticRegression (defaults) on median-imputed, standardised numbers
    and one-hot categories learned on the training fold."""

    def fit(self, train: pd.DataFrame) -> PeerLogistic:
        self.design = bm.PeerDesign().fit(_as_peer(train))
        self.lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.lr.fit(self.design.transform(_as_peer(train)), train["outcome"].to_numpy(bool))
        return self

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        return self.lr.predict_proba(self.design.transform(_as_peer(records)))[:, 1]


def _as_peer(records: pd.DataFrame) -> pd.DataFrame:
    """bench_models.PeerDesign expects pid/event/time columns and float numbers."""
    out = records.rename(columns={"rid": "pid"}).copy()
    out["event"] = out.pop("outcome") if "outcome" in out else out["event"]
    out["time"] = out.get("time", 1.0)
    for col in out.columns:
        if out[col].dtype == bool and col != "event":
            out[col] = out[col].astype(float)
    return out


class PeerSurvival:
    """A bench_models peer, with its risk at the horizon."""

    def __init__(self, peer: Any, horizon: float) -> None:
        self.peer, self.horizon = peer, horizon

    def fit(self, train: pd.DataFrame) -> PeerSurvival:
        self.peer.fit(_numbers(train))
        return self

    def score(self, records: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.peer.risk(_numbers(records)), dtype=float)

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        surv = self.peer.survival(_numbers(records), np.array([self.horizon]))
        return 1.0 - np.asarray(surv, dtype=float)[:, 0]


def _numbers(records: pd.DataFrame) -> pd.DataFrame:
    out = records.copy()
    for col in out.columns:
        if out[col].dtype == bool and col != "event":
            out[col] = out[col].astype(float)
    return out


def make_model(name: str, kind: str, schema: Schema, endpoint: Endpoint, horizon: float) -> Any:
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest

    if name in ("default", "linear"):
        return SpineriskModel("auto" if name == "default" else name, schema, endpoint)
    if name == "sklearn_logistic":
        return PeerLogistic()
    if name == "lifelines_cox":
        return PeerSurvival(bm.LifelinesCox(), horizon)
    if name == "sksurv_rsf":
        rsf = RandomSurvivalForest(
            n_estimators=100, min_samples_leaf=15, n_jobs=1, random_state=SEED
        )
        return PeerSurvival(bm.SksurvModel(rsf), horizon)
    if name == "sksurv_gbsa":
        return PeerSurvival(
            bm.SksurvModel(GradientBoostingSurvivalAnalysis(random_state=SEED)), horizon
        )
    raise ValueError(name)


MODELS = {
    "binary": ("default", "linear", "sklearn_logistic"),
    "survival": ("default", "linear", "lifelines_cox", "sksurv_rsf", "sksurv_gbsa"),
}
PEERS = {
    "binary": ("sklearn_logistic",),
    "survival": ("lifelines_cox", "sksurv_rsf", "sksurv_gbsa"),
}


# -- helpers ----------------------------------------------------------------------------------
def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": one, "load_5m": five, "load_15m": fifteen, "at": _now()}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The parts of the benchmark, in the page's order.
PARTS = ("accuracy", "timing", "boosted", "optimism")


def _part_run(meta: dict[str, Any]) -> dict[str, Any]:
    """The commit, date and starting load of the run that produced a part."""
    return {"commit": meta["git"]["commit"], "date": meta["date"], "load": meta["uptime_start"]}


def shown_path(path: Path) -> str:
    """A path as a page shows it: from the repository root when it is inside it."""
    full = path.resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(path)


def run_meta(**extra: Any) -> dict[str, Any]:
    """What a benchmark run records about itself: date, machine, commit, load at the
    start (the caller adds ``uptime_end``), and ``extra`` settings."""
    return {
        "date": _now(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "git": bm._git(),
        "uptime_start": _uptime(),
        **extra,
    }


def write_results(res: dict[str, Any], json_path: Path, md_path: Path, markdown: Any) -> None:
    """The results as JSON, and the page ``markdown(res)`` writes from them."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=1, default=float))
    md_path.write_text(markdown(res))
    print(f"wrote {json_path} and {md_path}", flush=True)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unavailable"


# -- 1. accuracy ------------------------------------------------------------------------------
def bench_accuracy(spec: Data, folds_n: int, log: bm.WarningLog) -> dict[str, Any]:
    from spinerisk.metrics import (
        calibration_slope,
        calibration_slope_at_horizon,
        harrell_c,
        roc_auc,
    )

    if spec.kind == "binary":
        records = load_binary(spec)
        schema, endpoint = binary_schema(records, spec.name), binary_endpoint(spec)
        strata = records["outcome"].to_numpy(bool)
    else:
        records = load_survival(spec)
        schema, endpoint = bm.survival_schema(records, spec.name), survival_endpoint(spec)
        strata = records["event"].to_numpy(bool)
    spinerisk.validate(records, schema)  # fail early
    folds = list(StratifiedKFold(folds_n, shuffle=True, random_state=SEED).split(records, strata))
    names = MODELS[spec.kind]
    n = len(records)
    risk = {m: np.full(n, np.nan) for m in names}
    score = {m: np.full(n, np.nan) for m in names}
    selected = np.full(n, np.nan)
    fold_of = np.zeros(n, dtype=int)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    fold_disc: dict[str, list[float]] = {m: [] for m in (*names, "selected")}
    fit_s: dict[str, list[float]] = {m: [] for m in names}
    choices = []
    for k, (tr, te) in enumerate(folds):
        train, test = records.iloc[tr], records.iloc[te]
        for name in names:
            model = make_model(name, spec.kind, schema, endpoint, spec.horizon_days)
            with log.record(f"{spec.name}/{name}"):
                _, secs = _timed(lambda m=model, t=train: m.fit(t))
                risk[name][te] = model.risk(test)
                if spec.kind == "survival":
                    score[name][te] = model.score(test)
            fit_s[name].append(secs)
            if name == "default":
                sel = model.selected_score(test)
                if sel is not None:
                    selected[te] = sel
                choices.append({"fold": k, "weights": model.model.weights_, "seconds": secs})
        for name in (*names, "selected"):
            if spec.kind == "binary":
                values = selected[te] if name == "selected" else risk[name][te]
                fold_disc[name].append(roc_auc_score(test["outcome"].to_numpy(bool), values))
            else:
                values = selected[te] if name == "selected" else score[name][te]
                fold_disc[name].append(
                    harrell_c(test["time"].to_numpy(float), test["event"].to_numpy(bool), values)
                )
        print(
            f"  {spec.name} fold {k + 1}/{folds_n}: "
            + ", ".join(f"{m} {fold_disc[m][-1]:.3f} ({fit_s[m][-1]:.1f}s)" for m in names)
            + f", selected {fold_disc['selected'][-1]:.3f}",
            flush=True,
        )
    models: dict[str, Any] = {}
    for name in (*names, "selected"):
        entry: dict[str, Any] = {"fold_discrimination": fold_disc[name]}
        if spec.kind == "binary":
            y = records["outcome"].to_numpy(bool)
            values = selected if name == "selected" else risk[name]
            if name == "selected":
                values = 1 / (1 + np.exp(-values))
            entry["discrimination"] = roc_auc(y, values)
            entry["calibration_slope"] = calibration_slope(y, values, groups=fold_of)
            entry["calibration_slope_pooled"] = calibration_slope(y, values)
            if name != "selected":
                entry["calibration_slope_se"] = _bootstrap_se(
                    lambda i, y=y, v=values: calibration_slope(y[i], v[i], groups=fold_of[i]),
                    n,
                )
        else:
            entry["discrimination"] = float(np.mean(fold_disc[name]))
            if name != "selected":
                t = records["time"].to_numpy(float)
                e = records["event"].to_numpy(int)
                r = np.clip(risk[name], 1e-6, 1 - 1e-6)
                h = spec.horizon_days
                entry["calibration_slope"] = calibration_slope_at_horizon(
                    t, e, r, h, groups=fold_of
                )
                entry["calibration_slope_pooled"] = calibration_slope_at_horizon(t, e, r, h)
                entry["calibration_slope_se"] = _bootstrap_se(
                    lambda i, t=t, e=e, r=r, h=h: calibration_slope_at_horizon(
                        t[i], e[i], r[i], h, groups=fold_of[i]
                    ),
                    n,
                )
                cox = cox_calibration_slope(t, e, r, h, groups=fold_of)
                entry["cox_slope"], entry["cox_slope_se"] = cox
        if name != "selected":
            entry["fit_s_mean"] = float(np.mean(fit_s[name]))
        models[name] = entry
    peers = PEERS[spec.kind]
    best_peer = max(peers, key=lambda m: models[m]["discrimination"])
    gap = models["default"]["discrimination"] - models[best_peer]["discrimination"]
    slope = models["default"]["calibration_slope"]
    slope_se = models["default"]["calibration_slope_se"]
    return {
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "source": spec.source,
        "n": int(n),
        "events": int(strata.sum()),
        "predictors": int(len(schema.fields) - (2 if spec.kind == "binary" else 3)),
        "horizon_days": spec.horizon_days if spec.kind == "survival" else None,
        "metric": "pooled AUROC" if spec.kind == "binary" else "mean per-fold Harrell's C",
        "models": models,
        "default_weights": choices,
        "best_peer": best_peer,
        "default_minus_best_peer": float(gap),
        "within_tolerance": bool(gap >= -TOLERANCE),
        "slope_in_range": bool(SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]),
        # the target range overlaps the slope's 95% interval: a miss inside the noise
        "slope_range_in_ci": bool(
            slope - 1.96 * slope_se <= SLOPE_RANGE[1] and slope + 1.96 * slope_se >= SLOPE_RANGE[0]
        ),
        "selected_minus_default": float(
            models["selected"]["discrimination"] - models["default"]["discrimination"]
        ),
    }


def _bootstrap_se(stat: Callable[[np.ndarray], float], n: int, reps: int = 200) -> float:
    """Standard deviation of ``stat(rows)`` over seeded bootstrap resamples of the pooled
    out-of-fold predictions (the models are not refitted: the noise of the measurement
    on this many records)."""
    rng = np.random.default_rng(SEED)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            try:
                values.append(stat(rng.integers(0, n, n)))
            except (ValueError, np.linalg.LinAlgError):
                continue
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")


def cox_calibration_slope(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    horizon: float,
    *,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Royston's calibration slope of a time-to-event model: the coefficient of
    ``log(-log(1 - risk))`` (the linear predictor plus the log baseline cumulative hazard
    at the horizon) in a Cox model of the outcome, follow-up cut at the horizon; with its
    standard error. Van Calster et al. (2016) and Royston and Altman (2013) use it; it
    needs no censoring weights, so it is steadier than the weighted logistic slope on
    small sets. With ``groups`` (the folds) the Cox model is stratified by them: each fold
    model its own baseline, as the logistic slope has an intercept per fold."""
    from lifelines import CoxPHFitter

    df = pd.DataFrame(
        {
            "lp": np.log(-np.log1p(-risk)),
            "T": np.minimum(time, horizon),
            "E": (event == 1) & (time <= horizon),
        }
    )
    if groups is not None:
        df["fold"] = groups
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(
            df, duration_col="T", event_col="E", strata=None if groups is None else ["fold"]
        )
    return float(cph.params_["lp"]), float(cph.standard_errors_["lp"])


# -- 2. fit time ------------------------------------------------------------------------------
def _eligible_spine(endpoint: str, n: int) -> pd.DataFrame:
    from spinerisk.endpoints import get_endpoint

    cohort = spinerisk.make_spine_cohort(max(3 * n, 1000), seed=SEED)
    checked = spinerisk.validate(cohort)
    return cohort[get_endpoint(endpoint).eligible(checked).to_numpy()].head(n)


def bench_timing(sizes: tuple[int, ...], repeats: int, log: bm.WarningLog) -> dict[str, Any]:
    """Default vs each single backend, median wall-clock fit seconds."""
    from spinerisk.models import BACKENDS

    cases = []
    support = next(s for s in bm.SURVIVAL_DATA if s.name == "support2")
    sup_records, _ = bm.load_survival(support, None)
    sup_schema = bm.survival_schema(sup_records, "support2")
    sup_endpoint = bm.survival_endpoint(support)
    order = np.random.default_rng(SEED).permutation(len(sup_records))
    for n in sizes:
        for label, kind in (
            ("collapse", "binary"),
            ("future_fracture", "competing"),
            ("support2", "survival"),
        ):
            if label == "support2":
                data = sup_records.iloc[order[:n]]
                kwargs: dict[str, Any] = {"endpoint": sup_endpoint, "schema": sup_schema}
            else:
                data = _eligible_spine(label, n)
                kwargs = {"endpoint": label}
            row: dict[str, Any] = {"data": label, "kind": kind, "records": int(len(data))}
            for backend in ("auto", *BACKENDS[kind]):
                with log.record(f"timing/{label}/{backend}"):
                    _fit_seconds(backend, kwargs, data)  # warm-up: imports, caches
                    times = [_fit_seconds(backend, kwargs, data) for _ in range(repeats)]
                row[backend] = float(np.median(times))
            singles = {b: row[b] for b in BACKENDS[kind]}
            slowest = max(singles, key=singles.get)  # type: ignore[arg-type]
            row["slowest_single"] = slowest
            row["ratio_to_slowest"] = row["auto"] / singles[slowest]
            row["load_1m"] = os.getloadavg()[0]
            cases.append(row)
            print(
                f"  {label} {n}: default {row['auto']:.2f} s; "
                + ", ".join(f"{b} {singles[b]:.2f}" for b in singles)
                + f"; {row['ratio_to_slowest']:.1f}x the slowest ({slowest})",
                flush=True,
            )
    return {"cases": cases}


def _fit_seconds(backend: str, kwargs: dict[str, Any], data: pd.DataFrame) -> float:
    model = RiskModel(backend=backend, random_state=SEED, **kwargs)
    return _timed(partial(model.fit, data))[1]


# -- 3. boosted survival fit ------------------------------------------------------------------
def bench_boosted(sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    """BoostedCoxSurvival.fit against raw xgboost.train on the same support2 records."""
    from sklearn.base import clone

    support = next(s for s in bm.SURVIVAL_DATA if s.name == "support2")
    records, _ = bm.load_survival(support, None)
    schema = bm.survival_schema(records, "support2")
    endpoint = bm.survival_endpoint(support)
    order = np.random.default_rng(SEED).permutation(len(records))
    rows = []
    for n in sizes:
        train = records.iloc[order[:n]]
        y = bm._surv(train)
        model = RiskModel(endpoint=endpoint, backend="xgboost", schema=schema, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(train)
        X_own = model.features_.transform(spinerisk.validate(train, schema))
        est = clone(model.estimator_)
        rounds = int(model.estimator_.n_estimators_)
        raw_gbsa = bm.raw_xgboost_fit(train)
        X_peer = bm.PeerDesign().fit(train).transform(train).to_numpy(dtype=float)
        label = np.where(y["event"], y["time"], -y["time"])

        raw_same = partial(_raw_same_work, X_peer, label)
        raw_own = partial(_raw_gbsa_own_matrix, X_own, label)

        times: dict[str, list[float]] = {
            "raw_gbsa": [],
            "raw_same": [],
            "estimator": [],
            "riskmodel": [],
        }
        times["raw_gbsa_own"] = []
        cpu: dict[str, list[float]] = {"raw_gbsa": [], "estimator": []}
        fresh = RiskModel(endpoint=endpoint, backend="xgboost", schema=schema, random_state=SEED)
        for _ in range(repeats):  # interleaved, so load changes hit every variant alike
            for key, fn in (("raw_gbsa", raw_gbsa), ("estimator", partial(est.fit, X_own, y))):
                wall, busy = _wall_and_cpu(fn)
                times[key].append(wall)
                cpu[key].append(busy)
            times["raw_same"].append(_timed(raw_same)[1])
            times["raw_gbsa_own"].append(_timed(raw_own)[1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times["riskmodel"].append(_timed(partial(fresh.fit, train))[1])
        med = {k: float(np.median(v)) for k, v in times.items()}
        med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
        row = {
            "records": int(n),
            "rounds": rounds,
            **{f"{k}_s": v for k, v in med.items()},
            **{f"{k}_cpu_s": v for k, v in med_cpu.items()},
            "estimator_over_raw_gbsa": med["estimator"] / med["raw_gbsa"],
            "estimator_cpu_over_raw_gbsa": med_cpu["estimator"] / med_cpu["raw_gbsa"],
            "own_matrix_over_raw_gbsa": med["raw_gbsa_own"] / med["raw_gbsa"],
            "estimator_over_raw_same": med["estimator"] / med["raw_same"],
            "riskmodel_over_raw_gbsa": med["riskmodel"] / med["raw_gbsa"],
            "load_1m": os.getloadavg()[0],
        }
        rows.append(row)
        print(
            f"  {n} records ({rounds} rounds): estimator {med['estimator'] * 1000:.0f} ms, raw "
            f"xgboost.train at GBSA's settings {med['raw_gbsa'] * 1000:.0f} ms "
            f"({row['estimator_over_raw_gbsa']:.2f}x; CPU time "
            f"{row['estimator_cpu_over_raw_gbsa']:.2f}x), the same probe and refit by hand "
            f"{med['raw_same'] * 1000:.0f} ms ({row['estimator_over_raw_same']:.2f}x), "
            f"RiskModel.fit {med['riskmodel'] * 1000:.0f} ms",
            flush=True,
        )
    return {"data": "support2", "sizes": rows}


def _wall_and_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (every thread of this process) of one call."""
    wall, busy = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - busy


def _raw_gbsa_own_matrix(X: pd.DataFrame, label: np.ndarray) -> Any:
    """The reference's ``xgboost.train`` call on the estimator's own matrix (missing
    values kept as NaN, native categories), the DMatrix build included."""
    import xgboost as xgb

    dm = xgb.DMatrix(X, label=label, enable_categorical=True, nthread=1)
    return xgb.train(bm.RAW_XGBOOST_COX, dm, num_boost_round=bm.RAW_XGBOOST_ROUNDS)


def _raw_same_work(X: np.ndarray, label: np.ndarray) -> Any:
    """By hand: the same early-stopping probe and refit, with ``xgboost.train``."""
    import xgboost as xgb

    idx = np.random.default_rng(SEED).permutation(len(label))
    cut = int(0.2 * len(label))
    params = {
        "objective": "survival:cox",
        "eta": 0.05,
        "max_depth": 3,
        "min_child_weight": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
        "nthread": 1,
        "verbosity": 0,
    }
    dall = xgb.DMatrix(X, label=label, nthread=1)
    dfit, dval = dall.slice(idx[cut:]), dall.slice(idx[:cut])
    probe = xgb.train(
        params, dfit, 2000, evals=[(dval, "v")], early_stopping_rounds=50, verbose_eval=False
    )
    return xgb.train(params, dall, probe.best_iteration + 1)


# -- 4. optimism ------------------------------------------------------------------------------
def _evaluate_optimism(model: Any, records: pd.DataFrame, n_optimism: int) -> Any:
    return spinerisk.evaluate(
        model,
        records,
        n_bootstrap=2,
        optimism=True,
        n_optimism=n_optimism,
        cv=5,
        explain=False,
        subgroups=(),
        random_state=SEED,
    )


def bench_optimism(names: tuple[str, ...], n_optimism: int, log: bm.WarningLog) -> dict[str, Any]:
    """``evaluate``'s optimism correction (the .632+ bootstrap of
    ``spinerisk.evaluation._optimism``, recorded here so Harrell's estimate from the same
    refits is reported next to it) against its 5-fold cross-validation."""
    from spinerisk.evaluation import _evaluate
    from spinerisk.evaluation._optimism import optimism_estimates

    seen: dict[str, Any] = {}

    def recording(*args: Any, **kwargs: Any) -> tuple[np.ndarray, int]:
        seen["estimates"] = optimism_estimates(*args, **kwargs)
        seen["names"] = [spec.name for spec in args[2]]
        return seen["estimates"].optimism, seen["estimates"].n_refits

    wired = _evaluate.optimism_632plus
    _evaluate.optimism_632plus = recording
    try:
        return _bench_optimism(names, n_optimism, log, seen)
    finally:
        _evaluate.optimism_632plus = wired


def _bench_optimism(
    names: tuple[str, ...], n_optimism: int, log: bm.WarningLog, seen: dict[str, Any]
) -> dict[str, Any]:
    out = []
    for name in names:
        spec = next(s for s in BINARY if s.name == name)
        records = load_binary(spec)
        schema, endpoint = binary_schema(records, spec.name), binary_endpoint(spec)
        for backend in ("auto", "linear", "xgboost"):
            with log.record(f"optimism/{name}/{backend}"):
                model = RiskModel(endpoint, backend=backend, schema=schema, random_state=SEED)
                model.fit(records)
                report, secs = _timed(partial(_evaluate_optimism, model, records, n_optimism))
            opt = report.optimism.set_index("metric")
            cv = report.cross_validation.set_index("metric")
            row = {
                "data": name,
                "backend": backend,
                "seconds": secs,
                **{
                    f"{metric}_{what}": float(opt.loc[metric, what])
                    for metric in ("auroc", "calibration_slope")
                    for what in ("apparent", "corrected")
                },
                "auroc_cv": float(cv.loc["auroc", "estimate"]),
                "calibration_slope_cv": float(cv.loc["calibration_slope", "estimate"]),
            }
            est, i = seen["estimates"], seen["names"].index("auroc")
            row["auroc_harrell"] = float(est.apparent[i] - est.harrell[i])
            row["auroc_out_of_bag"] = float(est.out_of_bag[i])
            row["first_refit_s"] = float(est.seconds_first)
            row["auroc_gap"] = row["auroc_corrected"] - row["auroc_cv"]
            row["auroc_gap_harrell"] = row["auroc_harrell"] - row["auroc_cv"]
            row["met"] = bool(abs(row["auroc_gap"]) <= 0.02)
            out.append(row)
            print(
                f"  {name} {backend}: corrected AUROC {row['auroc_corrected']:.3f} (.632+; "
                f"Harrell {row['auroc_harrell']:.3f}) vs CV "
                f"{row['auroc_cv']:.3f} ({row['auroc_gap']:+.3f}); slope "
                f"{row['calibration_slope_corrected']:.2f} vs {row['calibration_slope_cv']:.2f}; "
                f"{secs:.0f} s",
                flush=True,
            )
    return {"n_optimism": n_optimism, "rows": out}


# -- report -----------------------------------------------------------------------------------
def _f(x: Any, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _signed(x: Any) -> str:
    return "–" if x is None else f"{x:+.3f}"


def _slope_ci(entry: dict[str, Any]) -> str:
    """The calibration slope with its 95% interval (1.96 bootstrap standard errors)."""
    slope, se = entry.get("calibration_slope"), entry.get("calibration_slope_se")
    if se is None or not np.isfinite(se):
        return _f(slope, 2)
    return f"{slope:.2f} ({slope - 1.96 * se:.2f} to {slope + 1.96 * se:.2f})"


def _slopes(entry: dict[str, Any]) -> str:
    out = f"slope {_f(entry.get('calibration_slope'), 2)}"
    return out if entry.get("cox_slope") is None else out + f", Cox {entry['cox_slope']:.2f}"


def _cox(entry: dict[str, Any]) -> str:
    """Royston's Cox calibration slope with its standard error (time-to-event only)."""
    if entry.get("cox_slope") is None:
        return "–"
    return f"{entry['cox_slope']:.2f} ({entry['cox_slope_se']:.2f})"


def _span(rows: list[dict[str, Any]], key: str, digits: int = 1) -> str:
    values = [r[key] for r in rows if key in r]
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}x" if values else "-"


def _boosted_note(rows: list[dict[str, Any]]) -> str:
    """What section 3's ratios are made of, from the measured rows."""
    rows = [
        {**r, "estimator_cpu_per_wall": r["estimator_cpu_s"] / r["estimator_s"]}
        if "estimator_cpu_s" in r
        else r
        for r in rows
    ]
    met = [r["records"] for r in rows if r["estimator_over_raw_gbsa"] <= 2.0]
    return (
        "The target is met at "
        + (", ".join(f"{n:,}" for n in met) if met else "no size")
        + f" of {len(rows)} sizes. The estimator does more work than the reference: an "
        "early-stopping probe on 80% of the records (the best number of rounds plus 50 of "
        "patience, each scored on the hold-out) and a refit on every record (the best number "
        "of rounds), where the reference trains 100 rounds once; and its matrix keeps missing "
        "values as NaN and categories native, where the reference's is imputed and one-hot: "
        "the reference's own call on the estimator's matrix takes "
        f"{_span(rows, 'own_matrix_over_raw_gbsa')} the reference. The probe and the refit "
        "train side by side in two threads (one XGBoost thread each at `n_jobs=1`), so with a "
        "second core free the fit can take about the probe's time; with it busy the wall time "
        "is the CPU time, "
        f"{_span(rows, 'estimator_cpu_over_raw_gbsa')} the reference's (in this run the "
        f"estimator's CPU time was {_span(rows, 'estimator_cpu_per_wall', 2)} its wall time; "
        "above 1x means both cores worked). Against the same "
        "probe and refit written by hand with `xgboost.train` on the reference's matrix "
        "(a different split, so other round counts) the estimator takes "
        f"{_span(rows, 'estimator_over_raw_same')}. The probe and the refit stay: the explicit "
        "`xgboost` backend must keep giving the same risks."
    )


def _parts_run(res: dict[str, Any]) -> list[str]:
    """A line saying which parts an earlier run produced (``--parts`` re-runs some)."""
    runs = res.get("parts_run", {})
    here = _part_run(res["meta"])
    kept = [p for p in PARTS if p in runs and runs[p] != here]
    if not kept:
        return []
    return [
        "",
        "Parts kept from earlier runs: "
        + "; ".join(
            f"{PARTS.index(p) + 1} ({p}) at commit `{runs[p]['commit'][:10]}` on "
            f"{runs[p]['date']}, load `{runs[p]['load']}` at its start"
            for p in kept
        )
        + ".",
    ]


def to_markdown(res: dict[str, Any]) -> str:
    meta = res["meta"]
    dirty = " (spinerisk/ with uncommitted changes)" if meta["git"]["spinerisk_modified"] else ""
    lines = [
        "# Default model benchmark",
        "",
        '`RiskModel(backend="auto")` (cross-validated stacking of the `linear`, `spline` and '
        "boosted candidates, see [Models](models.md)) against standard peers on real data, "
        "fitted in the same run on the same folds. Produced by `benchmarks/bench_default.py` "
        f"at commit `{meta['git']['commit'][:10]}`{dirty}"
        f" on {meta['date']}; {meta['machine']['cpus']} cores, shared with other work: load "
        f"`{meta['uptime_start']}` at the start and `{meta['uptime_end']}` at the end. Fit "
        "times are wall-clock seconds under that load.",
        *_parts_run(res),
        "",
        "> Real public data sets, used to check the modelling code; nothing here validates "
        "spinerisk clinically.",
        "",
    ]
    acc = res.get("accuracy")
    if acc:
        met = sum(d["within_tolerance"] for d in acc)
        slopes = sum(d["slope_in_range"] for d in acc)
        noisy = sum(d.get("slope_range_in_ci", False) and not d["slope_in_range"] for d in acc)
        lines += [
            "## 1. Accuracy against the best peer",
            "",
            f"5-fold cross-validation, stratified, seed {SEED}. Discrimination: pooled "
            "out-of-fold AUROC (binary) or mean per-fold Harrell's C (time-to-event); "
            "calibration slope of the pooled out-of-fold risks with an intercept per fold "
            "(time-to-event: at the horizon, censoring-weighted). Peers: scikit-learn "
            "`LogisticRegression` (binary); lifelines "
            "`CoxPHFitter(penalizer=0.1)`, scikit-survival `RandomSurvivalForest(100 trees, "
            "min_samples_leaf=15)` and `GradientBoostingSurvivalAnalysis()` (time-to-event), on "
            "median-imputed numbers and one-hot factors. `selected` is the best single "
            "candidate of each fitted default alone (a selection rule, the discrete super "
            "learner), from the same fits.",
            "",
            "**How the calibration slope is measured, and how precisely.** Logistic regression of"
            " the outcome on the logit of the pooled out-of-fold risks (time-to-event: of the "
            "outcome by the horizon, with inverse-probability-of-censoring weights), with one "
            "intercept per fold and one shared slope, as `evaluate(..., cv=5)` reports it "
            "(`calibration_slope(..., groups=folds)`): the slope of the five fold models, each on"
            " its own held-out records. Under one pooled intercept (`pooled slope` column, the "
            "measure of earlier runs) the differences between the fold models' baselines count as"
            " noise in the risks and pull the slope towards 0 whatever the model: on cancer (228 "
            "records) an unpenalised Cox model of ECOG status alone, 165 events for one "
            "parameter, has a pooled slope of 0.58-0.62 over seeds 0-2 and 0.73-0.93 with an "
            "intercept per fold (`python benchmarks/slope_floor.py cancer ph_ecog`); on sets of "
            "thousands the two agree. Where a fold has fewer than 10 records of the rarer "
            "outcome by the horizon (cancer and Pbc3 have folds with 4-5), the intercepts per "
            "fold bias the slope upwards (the metric warns); read the pooled slope beside it "
            "there. Time-to-event discrimination is per fold for the same "
            "reason (mean per-fold Harrell's C). The 95% interval (1.96 bootstrap standard errors"
            " of the pooled predictions, 200 resamples, models not refitted) shows how precisely "
            "a set of this size can measure the slope. For time-to-event sets the `Cox slope` "
            "column is the standard alternative (Royston and Altman 2013; Van Calster et al. "
            "2016): the coefficient of log(-log(1 - risk)) in a Cox model of the outcome with "
            "follow-up cut at the horizon, stratified by fold, with its standard error; it uses "
            "every record's follow-up instead of weights and is steadier on small sets.",
            "",
            f"**Targets**: default within {TOLERANCE} of the best peer — met on {met} of "
            f"{len(acc)} data sets; calibration slope in {SLOPE_RANGE[0]}–{SLOPE_RANGE[1]} — met "
            f"on {slopes} of {len(acc)}"
            + (
                f" (on {noisy} of the others the target range lies inside the slope's 95% "
                "interval: a miss the data cannot tell from a hit)."
                if noisy
                else "."
            )
            + " One 5-fold split is noisy on a few hundred records: the same comparison "
            "repeated over fold seeds, with the means, is on [Default model over fold "
            "seeds](benchmarks-default-seeds.md) (`benchmarks/bench_default_seeds.py`), and "
            "over ten seeds on the seven sets under 600 records, with how often each model's "
            "slope is in range, on [ten seeds on the small sets]"
            "(benchmarks-default-seeds-small.md).",
            "",
            "| data set | n | events | default | linear | best peer | default − best peer | "
            "selected | default slope (95% interval) | pooled slope | Cox slope (SE) | "
            "best peer slope | default fit (s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for d in acc:
            m = d["models"]
            bp = d["best_peer"]
            lines.append(
                f"| {d['name']} ({d['kind']}) | {d['n']} | {d['events']} | "
                f"{_f(m['default']['discrimination'])} | {_f(m['linear']['discrimination'])} | "
                f"{_f(m[bp]['discrimination'])} ({bp}) | "
                f"{d['default_minus_best_peer']:+.3f}{'' if d['within_tolerance'] else ' ✗'} | "
                f"{_f(m['selected']['discrimination'])} | "
                f"{_slope_ci(m['default'])}{'' if d['slope_in_range'] else ' ✗'} | "
                f"{_f(m['default'].get('calibration_slope_pooled'), 2)} | "
                f"{_cox(m['default'])} | "
                f"{_f(m[bp].get('calibration_slope'), 2)} | {_f(m['default']['fit_s_mean'], 1)} |"
            )
        misses = [d for d in acc if not d["within_tolerance"] or not d["slope_in_range"]]
        if misses:
            lines += [
                "",
                "Misses, with the fold-to-fold noise of the comparison (standard error of "
                "the paired per-fold differences):",
                "",
            ]
            for d in misses:
                m, bp = d["models"], d["best_peer"]
                diff = np.subtract(
                    m["default"]["fold_discrimination"], m[bp]["fold_discrimination"]
                )
                se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
                what = []
                if not d["within_tolerance"]:
                    what.append(
                        f"discrimination {d['default_minus_best_peer']:+.3f} against {bp} "
                        f"(standard error {se:.3f}); the default's own `linear` candidate "
                        f"{_f(m['linear']['discrimination'])}"
                    )
                if not d["slope_in_range"]:
                    peer_slopes = ", ".join(
                        f"{p} {_f(m[p].get('calibration_slope'), 2)}" for p in PEERS[d["kind"]]
                    )
                    what.append(
                        f"calibration slope {_slope_ci(m['default'])}, Cox slope "
                        f"{_cox(m['default'])} (`linear` "
                        f"{_f(m['linear']['calibration_slope'], 2)}; {peer_slopes}); how "
                        "often any model can be in range on samples of this size, with a "
                        "known truth: `python benchmarks/slope_attainable.py "
                        f"{d['name']} --cv` ([slope on small data]"
                        "(benchmarks-slope-attainable.md))"
                    )
                lines.append(f"- **{d['name']}**: " + "; ".join(what) + ".")
        diffs = [d["selected_minus_default"] for d in acc]
        lines += [
            "",
            "**Combine or select?** The selection rule (`selected`) minus the combination "
            f"(`default`): mean {np.mean(diffs):+.4f}, from {min(diffs):+.3f} to "
            f"{max(diffs):+.3f}; the selection rule is better on "
            f"{sum(x > 0 for x in diffs)} of {len(diffs)} data sets.",
            "",
            "Every model's discrimination and slope:",
            "",
            "| data set | " + " | ".join(["default", "linear", "selected", "peers"]) + " |",
            "|---|---|---|---|---|",
        ]
        for d in acc:
            m = d["models"]
            peers = "; ".join(
                f"{p} {_f(m[p]['discrimination'])} ({_slopes(m[p])})" for p in PEERS[d["kind"]]
            )
            lines.append(
                f"| {d['name']} | {_f(m['default']['discrimination'])} "
                f"({_slopes(m['default'])}) | {_f(m['linear']['discrimination'])} "
                f"({_slopes(m['linear'])}) | {_f(m['selected']['discrimination'])} | {peers} |"
            )
    tim = res.get("timing")
    if tim:
        lines += [
            "",
            "## 2. Fit time",
            "",
            "Median wall-clock seconds of `RiskModel.fit` (validation, features, every fit, "
            "training reference) after a warm-up fit, `n_jobs=None` (every core, here 2). "
            "Records are eligible records given to `fit` (synthetic spine cohort for collapse "
            "and future fracture; support2 for survival). Targets: default <= 3 s at 500 "
            "records, <= 15 s at 2,500, <= 10x the slowest single backend.",
            "",
            "| data | records | default (s) | slowest single backend (s) | ratio | load (1 min) "
            "| met |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in tim["cases"]:
            limit = 3.0 if r["records"] <= 500 else 15.0
            ok = r["auto"] <= limit and r["ratio_to_slowest"] <= 10
            lines.append(
                f"| {r['data']} | {r['records']} | {r['auto']:.2f} | "
                f"{r[r['slowest_single']]:.2f} ({r['slowest_single']}) | "
                f"{r['ratio_to_slowest']:.1f}x | {r['load_1m']:.1f} | {'yes' if ok else 'no'} |"
            )
    bo = res.get("boosted")
    if bo:
        lines += [
            "",
            "## 3. Boosted survival fit against raw XGBoost",
            "",
            "support2 subsamples. `estimator`: `BoostedCoxSurvival.fit` on the encoded matrix "
            "(early-stopping probe, refit, Breslow baseline); `raw (GBSA settings)`: "
            "`xgboost.train` alone, 100 rounds at depth 3 and learning rate 0.1; `raw (same "
            "work)`: the same early-stopping probe and refit written by hand with `xgboost.train`; "
            "`RiskModel.fit`: end to end; `CPU-time ratio`: the estimator's CPU seconds (every "
            "thread) over the reference's; `raw on the estimator's matrix`: the reference's call "
            "on the estimator's matrix. Medians of interleaved runs (7; 3 with `--quick`); "
            "`load`: 1-minute load average after the size. Target: estimator at most 2x raw "
            "`xgboost.train`.",
            "",
            "| records | rounds | estimator (ms) | raw, GBSA settings (ms) | ratio "
            "| CPU-time ratio | raw on the estimator's matrix (ms) | raw, same work (ms) | ratio "
            "| RiskModel.fit (ms) | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = bo["sizes"]
        lines = [*lines[:-2], _boosted_note(rows), "", *lines[-2:]]
        for r in rows:
            cpu_ratio = r.get("estimator_cpu_over_raw_gbsa")
            own = r.get("raw_gbsa_own_s")
            lines.append(
                f"| {r['records']} | {r['rounds']} | {r['estimator_s'] * 1000:.0f} | "
                f"{r['raw_gbsa_s'] * 1000:.0f} | {r['estimator_over_raw_gbsa']:.2f}x | "
                f"{'-' if cpu_ratio is None else f'{cpu_ratio:.2f}x'} | "
                f"{'-' if own is None else f'{own * 1000:.0f}'} | "
                f"{r['raw_same_s'] * 1000:.0f} | {r['estimator_over_raw_same']:.2f}x | "
                f"{r['riskmodel_s'] * 1000:.0f} | {r['load_1m']:.1f} |"
            )
    op = res.get("optimism")
    if op:
        lines += [
            "",
            "## 4. Optimism correction against cross-validation",
            "",
            f"`evaluate(model, records, optimism=True, n_optimism={op['n_optimism']}, cv=5)` "
            "with the .632+ bootstrap of `spinerisk/evaluation/_optimism.py` (Efron and "
            "Tibshirani 1997: each refit scored on the records its resample left out, weighed "
            "against the apparent value by how far that falls towards no information) for "
            "discrimination and proper scores, Harrell's bootstrap for the calibration "
            "metrics; next to 5-fold cross-validation (every step, tuning included, refitted "
            "in each fold: nested). `Harrell` is Harrell's optimism-corrected AUROC from the "
            "same refits (what `evaluate` reported before). Target: AUROC within 0.02.",
            "",
            "| data set | backend | apparent AUROC | corrected (.632+) | Harrell | 5-fold CV "
            "| gap (.632+) | gap (Harrell) | corrected slope | CV slope | first refit (s) "
            "| seconds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        ok = sum(r["met"] for r in op["rows"])
        old_ok = sum(abs(r.get("auroc_gap_harrell", np.inf)) <= 0.02 for r in op["rows"])
        lines[-3:-3] = [
            "",
            f"Met for {ok} of {len(op['rows'])} (Harrell's: {old_ok})"
            + "".join(
                f"; {r['data']} {r['backend']} misses by {abs(r['auroc_gap']) - 0.02:.4f}"
                for r in op["rows"]
                if not r["met"]
            )
            + ". Harrell's bootstrap "
            "under-states the optimism of models that memorise their records (boosted trees "
            "most): about 63% of the original records are in each resample, so its test on "
            "the original records is itself partly apparent. The .632+ estimate tests only "
            "on left-out records; it targets a model trained on every record where 5-fold "
            "cross-validation trains on 80%, so for a model whose accuracy still grows with "
            "data it sits somewhat above cross-validation. `evaluate` logs how long the "
            "correction will take after the first refit (`first refit`), before the others "
            "start, and warns when that is over 30 s.",
        ]
        for r in op["rows"]:
            harrell = r.get("auroc_harrell")
            lines.append(
                f"| {r['data']} | {r['backend']} | {r['auroc_apparent']:.3f} | "
                f"{r['auroc_corrected']:.3f} | {_f(harrell)} | {r['auroc_cv']:.3f} | "
                f"{r['auroc_gap']:+.3f}{'' if r['met'] else ' ✗'} | "
                f"{_signed(r.get('auroc_gap_harrell'))} | {r['calibration_slope_corrected']:.2f} | "
                f"{r['calibration_slope_cv']:.2f} | {_f(r.get('first_refit_s'), 1)} | "
                f"{r['seconds']:.0f} |"
            )
    lines += ["", "Every number, per fold, is in `benchmarks/results/default.json`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test (3 folds, 3 sets)")
    parser.add_argument("--parts", default="accuracy,timing,boosted,optimism")
    parser.add_argument("--only", default=None, help="comma-separated data set names")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument(
        "--resume", action="store_true", help="keep the data sets already in the JSON file"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the Markdown from the JSON file"
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    quick = args.quick
    out_dir = Path(tempfile.mkdtemp(prefix="bench_default_")) if quick else None
    json_path = args.json or (out_dir / "default.json" if out_dir else RESULTS_JSON)
    md_path = args.markdown or (out_dir / "benchmarks-default.md" if out_dir else RESULTS_MD)
    if args.report_only:
        md_path.write_text(to_markdown(json.loads(json_path.read_text())))
        print(f"wrote {md_path}", flush=True)
        return 0
    log = bm.WarningLog()
    res: dict[str, Any] = {"meta": run_meta(versions=bm._versions(), quick=quick)}
    kept_warnings: dict[str, Any] = {}  # of parts not re-run (the accuracy part's, mostly)
    # when and where each part ran: the parts not re-run keep theirs
    res["parts_run"] = {p: _part_run(res["meta"]) for p in PARTS if p in parts}
    if json_path.exists() and not quick:
        previous = json.loads(json_path.read_text())
        if "accuracy" not in parts:
            kept_warnings = previous.get("warnings", {})
        runs = previous.get("parts_run", {})
        for key in PARTS:  # parts not re-run keep their last results, and when they ran
            if key in parts or key not in previous:
                continue
            res[key] = previous[key]
            res["parts_run"][key] = runs.get(key, _part_run(previous["meta"]))
        if "accuracy" not in parts and "accuracy_load" in previous:
            res["accuracy_load"] = previous["accuracy_load"]
    sets = (*BINARY, *SURVIVAL)
    if quick:
        sets = tuple(s for s in sets if s.name in QUICK_SETS)
    if args.only:
        wanted = set(args.only.split(","))
        sets = tuple(s for s in sets if s.name in wanted)

    def save() -> None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res, indent=1, default=float))

    if "accuracy" in parts:
        print("1. accuracy", flush=True)
        done = {}
        if args.resume and json_path.exists():  # data sets finished by an interrupted run
            done = {d["name"]: d for d in json.loads(json_path.read_text()).get("accuracy", [])}
        loads = [_load()]
        res["accuracy"] = []
        for spec in sets:
            if spec.name in done:
                res["accuracy"].append(done[spec.name])
                continue
            res["accuracy"].append(bench_accuracy(spec, 3 if quick else 5, log))
            save()  # an interrupted run keeps what it finished (--resume)
        loads.append(_load())
        res["accuracy_load"] = loads
    if "timing" in parts:
        print("2. fit time", flush=True)
        res["timing"] = bench_timing((500,) if quick else (500, 2500), 1 if quick else 3, log)
    if "boosted" in parts:
        print("3. boosted survival fit", flush=True)
        res["boosted"] = bench_boosted(
            (500, 1000) if quick else (500, 1000, 2000, 4000), 3 if quick else 7
        )
    if "optimism" in parts:
        print("4. optimism", flush=True)
        res["optimism"] = bench_optimism(
            ("glow500",) if quick else ("glow500", "hipstudy"), 4 if quick else 20, log
        )
    res["meta"]["uptime_end"] = _uptime()
    res["warnings"] = {**kept_warnings, **log.as_dict()}
    save()
    md_path.write_text(to_markdown(res))
    print(f"wrote {json_path} and {md_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
