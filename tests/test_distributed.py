"""Dask: scoring on a 2-worker LocalCluster equals the local path; training via xgboost.dask
(binary and competing-risks endpoints) gives RiskModels close to local training.

All records are synthetic (make_spine_cohort).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.scoring import score_dask, score_file, score_frame

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """One 2-worker LocalCluster (separate processes) for the whole module.

    Start-up and connections have timeouts, so a broken cluster fails instead of hanging.
    """
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            death_timeout=60,
        ) as cluster,
        distributed.Client(cluster, timeout="60s") as client,
    ):
        yield cluster, client


@pytest.fixture(scope="module")
def model() -> sr.RiskModel:
    # trees and elementwise calibration give bit-identical risks for any chunking (a
    # linear model's matrix products may differ in the last bit with the batch size)
    return sr.RiskModel("nonunion", backend="xgboost", booster_params={"n_estimators": 100}).fit(
        sr.make_spine_cohort(500, seed=0)
    )


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    records = sr.make_spine_cohort(30, seed=3, profile="western")
    records.loc[4, "age_years"] = 300.0
    records.loc[25, "patient_id"] = records.loc[2, "patient_id"]  # in another partition
    return records


def test_score_dask_equals_local(cluster, model, records):
    _, client = cluster
    scores, rejects = score_dask(dd.from_pandas(records, npartitions=4), model)
    scores, rejects = dask.compute(scores, rejects)
    assert len(client.scheduler_info()["workers"]) == 2
    local_scores, local_rejects = score_frame(model, records)
    assert rejects["row"].tolist() == [2, 4, 25]
    # dask stores text as pyarrow strings; compare values (risks bit for bit)
    pd.testing.assert_frame_equal(_plain(scores), _plain(local_scores), check_exact=True)
    pd.testing.assert_frame_equal(_plain(rejects), _plain(local_rejects), check_exact=True)


def test_score_dask_with_intervals_equals_local(cluster, model, records):
    import copy

    refits = copy.deepcopy(model).fit_intervals(
        sr.make_spine_cohort(500, seed=0), n_resamples=2, random_state=0
    )
    scores, _ = score_dask(dd.from_pandas(records, npartitions=4), refits, interval=0.8)
    scores = dask.compute(scores)[0]
    local, _ = score_frame(refits, records, interval=0.8)
    risk = refits.endpoint_.risk_column(refits.horizons_[0])
    assert [risk, f"{risk}_lo", f"{risk}_hi"] == list(local.columns[1:4])
    pd.testing.assert_frame_equal(_plain(scores), _plain(local), check_exact=True)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    for col in out.columns:
        if out[col].dtype.kind not in "fi":
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> Path:
    """The model's bundle, saved once for the module (tests copy it, never change it)."""
    return model.save(tmp_path_factory.mktemp("saved") / "m.srb")


def test_score_file_engine_dask_writes_the_same_files(cluster, tmp_path, saved, records):
    cl, _ = cluster
    bundle = Path(shutil.copyfile(saved, tmp_path / "m.srb"))
    src = tmp_path / "in.parquet"
    records.to_parquet(src, row_group_size=8)
    outputs = {}
    for engine in ("local", "dask"):
        out, rej = tmp_path / f"{engine}.parquet", tmp_path / f"{engine}-rejects.parquet"
        summary = score_file(
            bundle,
            src,
            out,
            rejects=rej,
            chunk_size=8,
            engine=engine,
            scheduler=cl.scheduler_address if engine == "dask" else None,
        )
        assert (summary.rows_in, summary.scored, summary.rejected) == (30, 27, 3)
        outputs[engine] = (pd.read_parquet(out), pd.read_parquet(rej))
    pd.testing.assert_frame_equal(outputs["local"][0], outputs["dask"][0], check_exact=True)
    pd.testing.assert_frame_equal(outputs["local"][1], outputs["dask"][1], check_exact=True)


def test_dask_rows_are_counted_against_the_file(cluster, tmp_path, saved, records, monkeypatch):
    """A reader that loses rows cannot go unnoticed: the file's own row count is checked."""
    import dask.dataframe as dd

    cl, _ = cluster
    bundle = Path(shutil.copyfile(saved, tmp_path / "m.srb"))
    src = tmp_path / "in.parquet"
    records.to_parquet(src, row_group_size=8)
    real = dd.read_parquet

    def lossy(path, **kwargs):
        ddf = real(path, split_row_groups=True, **kwargs)
        assert ddf.npartitions > 1
        return ddf.partitions[:-1]  # the last row group goes missing

    monkeypatch.setattr(dd, "read_parquet", lossy)
    with pytest.raises(RuntimeError, match="has 30 data rows but the Dask engine read 24"):
        score_file(
            bundle, src, tmp_path / "out.parquet", engine="dask", scheduler=cl.scheduler_address
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "m.srb"]


def test_fit_dask_matches_local_training(cluster, tmp_path):
    from sklearn.metrics import roc_auc_score

    from spinerisk.distributed import fit_dask

    _, client = cluster
    train = sr.make_spine_cohort(1500, seed=0)
    test = sr.validate(sr.make_spine_cohort(1500, seed=1))
    ep = sr.get_endpoint("nonunion")
    test = test[ep.eligible(test)]
    y = ep.target(test)

    on_dask = fit_dask(train, "nonunion", client=client, n_estimators=150, npartitions=3)
    local = sr.RiskModel("nonunion", backend="xgboost").fit(train)
    assert type(on_dask) is sr.RiskModel and on_dask.backend_ == "xgboost"
    # the fitted state a local fit sets (all declared; the sample-size check is not stored)
    fitted = {k for k in vars(on_dask) if k.endswith("_")}
    assert fitted == {k for k in vars(local) if k.endswith("_")} - {"sample_size_"}
    assert "Dask" in on_dask.selection_reason_
    assert (on_dask.n_train_, on_dask.n_excluded_) == (local.n_train_, local.n_excluded_)
    assert on_dask.training_ranges_ == local.training_ranges_
    assert "early stopping" in on_dask.selection_reason_
    calibrated = on_dask.estimator_.calibrated_classifiers_[0]
    member = calibrated.estimator
    assert 1 <= member[-1].best_n_estimators_ < 150  # stopped on the held-out records
    assert np.isfinite(member[-1].best_score_)
    sigmoid = calibrated.calibrators[0]
    assert (sigmoid.a_, sigmoid.b_) != (-1.0, 0.0)  # Platt-scaled on the held-out records
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        p_dask = on_dask.predict_risk(test)["risk_183d"].to_numpy()
        p_local = local.predict_risk(test)["risk_183d"].to_numpy()
    auc_dask, auc_local = roc_auc_score(y, p_dask), roc_auc_score(y, p_local)
    assert auc_dask > 0.7
    assert abs(auc_dask - auc_local) < 0.03
    assert np.corrcoef(p_dask, p_local)[0, 1] > 0.9
    assert abs(p_dask.mean() - y.mean()) < 0.05  # calibration-in-the-large
    # the risk is the sigmoid calibration of the Dask booster's log-odds
    booster = member[-1].estimator_.get_booster()
    margin = booster.inplace_predict(member[0].transform(test), predict_type="margin")
    np.testing.assert_allclose(p_dask, 1 / (1 + np.exp(sigmoid.a_ * margin + sigmoid.b_)), 1e-6)
    fixed = fit_dask(
        train,
        "nonunion",
        client=client,
        n_estimators=150,
        npartitions=3,
        early_stopping_rounds=None,
    )
    fixed_member = fixed.estimator_.calibrated_classifiers_[0].estimator
    assert fixed_member[-1].best_n_estimators_ == 150 and "no early stopping" in (
        fixed.selection_reason_
    )
    with warnings.catch_warnings():  # without a hold-out: the booster's own probability
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        p_fixed = fixed.predict_risk(test)["risk_183d"].to_numpy()
    own = fixed_member[-1].estimator_.get_booster().inplace_predict(fixed_member[0].transform(test))
    np.testing.assert_allclose(p_fixed, own, 1e-6)
    loaded = sr.load(on_dask.save(tmp_path / "nonunion.srb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        np.testing.assert_array_equal(loaded.predict_risk(test)["risk_183d"].to_numpy(), p_dask)


@pytest.fixture(scope="module")
def fx_models(cluster):
    """future_fracture on the cluster (3 partitions) and locally, same synthetic cohort."""
    from spinerisk.distributed import fit_dask

    _, client = cluster
    train = sr.make_spine_cohort(4000, seed=0)
    on_dask = fit_dask(train, "future_fracture", client=client, n_estimators=300, npartitions=3)
    local = sr.RiskModel("future_fracture", backend="xgboost").fit(train)
    return train, on_dask, local


@pytest.fixture(scope="module")
def fx_test() -> pd.DataFrame:
    test = sr.validate(sr.make_spine_cohort(3000, seed=1))
    return test[sr.get_endpoint("future_fracture").eligible(test)]


def _aalen_johansen(y: np.ndarray, horizons: tuple[float, ...]) -> np.ndarray:
    from lifelines import AalenJohansenFitter

    aj = AalenJohansenFitter(calculate_variance=False, seed=0)
    aj.fit(y["time"], y["event"], event_of_interest=1)
    cif = aj.cumulative_density_.iloc[:, 0]
    return np.array([cif.loc[:h].iloc[-1] for h in horizons])


def _quiet_risk(model, records) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        return model.predict_risk(records)


def test_fit_dask_future_fracture_is_a_risk_model_like_local(fx_models):
    from spinerisk.models._competing import CauseSpecificCIF
    from spinerisk.models._survival import BoostedCoxSurvival
    from spinerisk.models._survival_base import _breslow

    train, on_dask, local = fx_models
    assert type(on_dask) is sr.RiskModel and on_dask.backend_ == "xgboost"
    # the fitted state a local fit sets (all declared; the sample-size check is not stored)
    fitted = {k for k in vars(on_dask) if k.endswith("_")}
    assert fitted == {k for k in vars(local) if k.endswith("_")} - {"sample_size_"}
    assert "Dask" in on_dask.selection_reason_ and on_dask.selection_ is None
    cif = on_dask.estimator_
    assert isinstance(cif, CauseSpecificCIF) and cif.causes_.tolist() == [1, 2]
    assert all(type(e) is BoostedCoxSurvival for e in cif.estimators_)
    assert (on_dask.n_train_, on_dask.n_excluded_) == (local.n_train_, local.n_excluded_)
    assert on_dask.horizons_ == local.horizons_
    assert on_dask.training_ranges_ == local.training_ranges_
    assert list(cif.feature_names_in_) == list(local.estimator_.feature_names_in_)
    assert on_dask.reference_["n"] == local.reference_["n"]
    # the baselines were built from margins in the same record order as times and events
    ep = on_dask.endpoint_
    data = sr.validate(train)
    data = data[ep.eligible(data)]
    y = ep.target(data)
    X = on_dask.features_.transform(data)
    for cause, est in zip((1, 2), cif.estimators_, strict=True):
        assert est.n_estimators_ == 300
        margin = est.booster_.inplace_predict(X, predict_type="margin").astype(np.float64)
        assert est.lp_mean_ == pytest.approx(float(np.mean(margin)), rel=1e-9)
        times, h0 = _breslow(y["time"], y["event"] == cause, margin - est.lp_mean_)
        np.testing.assert_array_equal(est.unique_times_, times)
        np.testing.assert_allclose(est.baseline_cumulative_hazard_, h0, rtol=1e-9)


def test_fit_dask_future_fracture_predicts_like_local(fx_models, fx_test):
    from lifelines.utils import concordance_index

    _, on_dask, local = fx_models
    ep = on_dask.endpoint_
    y = ep.target(fx_test)
    risk_dask, risk_local = _quiet_risk(on_dask, fx_test), _quiet_risk(local, fx_test)
    cols = [f"risk_{round(h):d}d" for h in ep.horizons]
    for col in cols:
        c_dask = concordance_index(y["time"], -risk_dask[col], y["event"] == 1)
        c_local = concordance_index(y["time"], -risk_local[col], y["event"] == 1)
        assert c_dask > 0.6
        assert abs(c_dask - c_local) < 0.03
    mean_dask = risk_dask[cols].mean().to_numpy()
    mean_local = risk_local[cols].mean().to_numpy()
    observed = _aalen_johansen(y, ep.horizons)  # held-out records
    np.testing.assert_allclose(mean_dask, mean_local, atol=0.02)
    np.testing.assert_allclose(mean_dask, observed, atol=0.02)
    assert np.corrcoef(risk_dask[cols[-1]], risk_local[cols[-1]])[0, 1] > 0.8
    # the two causes and event-free survival add up to 1
    X = on_dask.features_.transform(fx_test)
    cif = on_dask.estimator_
    total = sum(cif.predict_cumulative_incidence(X, ep.horizons, cause=k) for k in (1, 2))
    total = total + cif.predict_survival_function(X, ep.horizons)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    np.testing.assert_array_equal(
        cif.predict_cumulative_incidence(X, ep.horizons, cause=1), risk_dask[cols].to_numpy()
    )


def test_fit_dask_future_fracture_saves_explains_and_scores(fx_models, fx_test, tmp_path):
    from spinerisk.explanation import explain

    _, on_dask, _ = fx_models
    records = fx_test.head(40)
    path = on_dask.save(tmp_path / "fx.srb")
    loaded = sr.load(path)
    pd.testing.assert_frame_equal(
        _quiet_risk(loaded, records), _quiet_risk(on_dask, records), check_exact=True
    )
    assert loaded.selection_reason_ == on_dask.selection_reason_
    one = sr.validate(records.head(1)).iloc[0].to_dict()  # a dict takes the compiled path
    np.testing.assert_allclose(
        _quiet_risk(loaded, one).drop(columns="warnings").to_numpy(),
        _quiet_risk(on_dask, records.head(1)).drop(columns="warnings").to_numpy(),
        rtol=1e-9,
    )
    explanation = explain(loaded, records.head(5))
    np.testing.assert_allclose(
        explanation.risk.to_numpy(), _quiet_risk(on_dask, records.head(5))["risk_365d"], rtol=1e-6
    )
    scores, rejects = score_frame(loaded, records)
    assert len(scores) == len(records) and len(rejects) == 0
    np.testing.assert_array_equal(
        scores["risk_365d"].to_numpy(), _quiet_risk(on_dask, records)["risk_365d"].to_numpy()
    )


def test_dask_training_and_scoring_are_imported_from_spinerisk_distributed():
    import spinerisk.distributed
    from spinerisk.riskmodel._dask import fit_dask

    assert spinerisk.distributed.fit_dask is fit_dask  # training lives beside local training
    assert spinerisk.distributed.score_dask is score_dask
    assert sorted(spinerisk.distributed.__all__) == ["fit_dask", "score_dask"]


@pytest.mark.parametrize(
    ("endpoint", "backend", "message"),
    [
        ("fusion", "xgboost", "endpoint='fusion' is not a built-in endpoint"),
        ("future_fracture", "lightgbm", "backend='xgboost' only.*got backend='lightgbm'"),
        ("nonunion", "linear", "backend='xgboost' only.*got backend='linear'"),
        ("future_fracture", "xgboost", "n_estimators must be an integer >= 1; got n_estim"),
    ],
)
def test_fit_dask_refuses_bad_endpoint_or_backend(endpoint, backend, message):
    from spinerisk.distributed import fit_dask

    bad = {"n_estimators": 0} if "n_estimators" in message else {}
    with pytest.raises(ValueError, match=message):
        fit_dask(sr.make_spine_cohort(50, seed=0), endpoint, backend, client=object(), **bad)


def test_fit_dask_skips_partitions_without_eligible_records(cluster):
    from spinerisk.distributed import fit_dask

    _, client = cluster
    cohort = sr.make_spine_cohort(600, seed=0)
    eligible = sr.get_endpoint("nonunion").eligible(sr.validate(cohort)).to_numpy()
    # the first partition holds 50 records that cannot enter the nonunion model
    parts = dd.concat(
        [
            dd.from_pandas(cohort[~eligible].head(50), npartitions=1),
            dd.from_pandas(cohort[eligible], npartitions=2),
        ]
    )
    model = fit_dask(parts, "nonunion", client=client, n_estimators=20)
    assert (model.n_train_, model.n_excluded_) == (int(eligible.sum()), 50)
    assert model.estimator_.calibrated_classifiers_[0].estimator[-1].n_features_in_ > 0


def test_fit_dask_grows_again_when_a_worker_meets_no_held_out_records(cluster, monkeypatch):
    """The scheduler can place a partition's held-out part on another worker than its
    training part, and XGBoost then refuses a worker without held-out records (with
    categories in the matrix): seen once in CI. The early-stopping fit is grown once
    more, and gives the model an undisturbed fit gives; another error is raised."""
    import xgboost.dask as xgb_dask
    from xgboost.core import XGBoostError

    from spinerisk.distributed import fit_dask

    _, client = cluster
    cohort = sr.make_spine_cohort(400, seed=2)
    kwargs = {"client": client, "n_estimators": 10, "npartitions": 2}
    plain = fit_dask(cohort, "nonunion", **kwargs)
    original = xgb_dask.DaskXGBClassifier.fit
    calls = []

    def placed_badly(self, *args, **kw):
        calls.append(1)
        if len(calls) == 1 and "eval_set" in kw:
            raise XGBoostError("A worker cannot have empty input when a dataframe with ...")
        return original(self, *args, **kw)

    monkeypatch.setattr(xgb_dask.DaskXGBClassifier, "fit", placed_badly)
    again = fit_dask(cohort, "nonunion", **kwargs)
    assert len(calls) >= 2
    records = cohort.head(20)
    pd.testing.assert_frame_equal(again.predict_risk(records), plain.predict_risk(records))

    def always(self, *args, **kw):
        raise XGBoostError("Ring allreduce failed")

    monkeypatch.setattr(xgb_dask.DaskXGBClassifier, "fit", always)
    with pytest.raises(XGBoostError, match="allreduce"):
        fit_dask(cohort, "nonunion", **kwargs)


def test_fit_dask_refuses_ids_duplicated_across_partitions_and_names_cohort_rows(cluster):
    from spinerisk.distributed import fit_dask

    _, client = cluster
    cohort = sr.make_spine_cohort(300, seed=1)
    twin = cohort.copy()
    twin.loc[250, "patient_id"] = twin.loc[10, "patient_id"]  # partition 0 and partition 1
    with pytest.raises(sr.SchemaValidationError, match="occur more than once") as dup:
        fit_dask(twin, "nonunion", client=client, n_estimators=5, npartitions=2)
    assert list(dup.value.failures["value"]) == [cohort.loc[10, "patient_id"]]
    bad = cohort.copy()
    bad.loc[260, "age_years"] = 300.0  # row 110 of the second partition (150 rows each)
    with pytest.raises(sr.SchemaValidationError, match="partition 1 of the cohort") as err:
        fit_dask(bad, "nonunion", client=client, n_estimators=5, npartitions=2)
    assert list(err.value.failures["row"]) == [260]  # the cohort's row, not the partition's


def test_fit_dask_on_a_users_own_schema_and_endpoint(cluster, tmp_path):
    """GLOW500 (real data, no spine field): the Dask-trained model carries the user's
    schema and endpoint, never uses the comparator score, and saves and scores."""
    from spinerisk.distributed import fit_dask
    from spinerisk.endpoints import endpoint_from_dict
    from spinerisk.schema import infer_schema

    _, client = cluster
    data = Path(__file__).parent / "data" / "real" / "glow500" / "glow500.csv"
    glow = sr.read_records(data)
    schema = infer_schema(glow, name="glow500")
    ep = endpoint_from_dict(
        {"name": "fracture_1y", "kind": "binary", "event": "fracture", "time_unit": "years",
         "horizons": [1], "comparators": ["fracscore"]},
        schema=schema,
    )  # fmt: skip
    model = fit_dask(
        glow, ep, schema=schema, client=client, n_estimators=40, sample_size=300, npartitions=3
    )
    assert model.schema_ == schema and model.id_field_ == "sub_id"
    names = model.estimator_.calibrated_classifiers_[0].estimator[0].get_feature_names_out()
    assert "age" in set(names) and not {"fracscore", "fracture"} & set(names)
    loaded = sr.load(model.save(tmp_path / "g.srb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        pd.testing.assert_frame_equal(loaded.predict_risk(glow), model.predict_risk(glow))
    assert list(model.predict_risk(glow.head(2)).columns) == ["risk_1y", "warnings"]


def test_fit_dask_checks_future_fracture_targets_before_any_booster(cluster, monkeypatch):
    """A horizon past follow-up is refused before any booster grows (it was checked after
    both causes' boosters had grown), with the horizon and the last event named."""
    import dataclasses

    from spinerisk.distributed import fit_dask
    from spinerisk.endpoints import get_endpoint
    from spinerisk.riskmodel import _dask

    def no_boosting(*args, **kwargs):
        raise AssertionError("a booster grew before the targets were checked")

    _, client = cluster
    monkeypatch.setattr(_dask, "_cause_boosters", no_boosting)
    ep = dataclasses.replace(get_endpoint("future_fracture"), horizons=(365.0, 40_000.0))
    with pytest.raises(ValueError, match=r"horizon\(s\) 40000 days lie beyond the last observed"):
        fit_dask(sr.make_spine_cohort(300, seed=1), ep, client=client, n_estimators=5)
