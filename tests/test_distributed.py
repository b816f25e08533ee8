"""Dask: scoring on a 2-worker LocalCluster equals the local path; training via xgboost.dask.

All records are synthetic (make_spine_cohort).
"""

from __future__ import annotations

import warnings

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


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    for col in out.columns:
        if out[col].dtype.kind not in "fi":
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def test_score_file_engine_dask_writes_the_same_files(cluster, tmp_path, model, records):
    cl, _ = cluster
    bundle = model.save(tmp_path / "m.srb")
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


def test_fit_dask_matches_local_training(cluster):
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
    assert on_dask.n_train_ == local.n_train_
    assert on_dask.training_ranges_.keys() == local.training_ranges_.keys()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.DataQualityWarning)
        p_dask = on_dask.predict_risk(test)["risk_183d"].to_numpy()
        p_local = local.predict_risk(test)["risk_183d"].to_numpy()
    auc_dask, auc_local = roc_auc_score(y, p_dask), roc_auc_score(y, p_local)
    assert auc_dask > 0.7
    assert abs(auc_dask - auc_local) < 0.03
    assert np.corrcoef(p_dask, p_local)[0, 1] > 0.9
    assert abs(p_dask.mean() - y.mean()) < 0.05  # calibration-in-the-large


def test_fit_dask_refuses_competing_endpoints():
    from spinerisk.distributed import fit_dask

    with pytest.raises(ValueError, match="future_fracture' is a competing endpoint"):
        fit_dask(sr.make_spine_cohort(50, seed=0), "future_fracture", client=object())
