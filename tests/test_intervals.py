"""Per-patient risk intervals (RiskModel.fit_intervals, predict_risk(..., interval=)) and
the prediction-instability summary, on small synthetic cohorts."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

import spinerisk as sr
from spinerisk.endpoints import interval_columns
from spinerisk.evaluation._instability import prediction_instability
from spinerisk.models._interval import bootstrap_risks, interval_bounds

B = 4  # refits for the mechanics tests (the coverage tests state their own)


def _fit(endpoint: str, backend: str, cohort: pd.DataFrame, n_resamples: int = B):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small cohorts warn about their size
        model = sr.RiskModel(endpoint=endpoint, backend=backend).fit(cohort)
        return model.fit_intervals(cohort, n_resamples=n_resamples, random_state=3)


@pytest.fixture(scope="module")
def ovf() -> pd.DataFrame:
    return sr.make_spine_cohort(500, seed=4)


@pytest.fixture(scope="module")
def trauma() -> pd.DataFrame:
    return sr.make_spine_cohort(600, seed=4, mode="trauma")


@pytest.fixture(scope="module")
def binary(ovf, plain):
    """``plain`` with refits: what ``_fit`` gives, without fitting the same model twice
    (``fit_intervals`` adds the refits to a copy; ``plain`` stays without them)."""
    model = copy.deepcopy(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small cohorts warn about their size
        return model.fit_intervals(ovf, n_resamples=B, random_state=3)


@pytest.fixture(scope="module")
def plain(ovf):
    """A binary model without refits (do not call fit_intervals on it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sr.RiskModel(endpoint="nonunion", backend="lightgbm").fit(ovf)


@pytest.fixture(scope="module")
def competing(ovf):
    return _fit("future_fracture", "xgboost", ovf)


@pytest.fixture(scope="module")
def survival(trauma):
    return _fit("cervical_mortality", "xgboost", trauma)


@pytest.fixture(scope="module")
def saved(request, tmp_path_factory):
    """The bundle of the ``kind`` fixture model, saved once (saving the refits takes
    seconds); tests read the file and never change it."""
    paths = {}

    def path(kind: str):
        if kind not in paths:
            model = request.getfixturevalue(kind)
            paths[kind] = model.save(tmp_path_factory.mktemp(kind) / "m.srb")
        return paths[kind]

    return path


def _records(kind: str, request, n: int) -> pd.DataFrame:
    """Records the model of ``kind`` is meant for (cervical mortality: its scope)."""
    if kind != "survival":
        return request.getfixturevalue("ovf").head(n)
    cohort = request.getfixturevalue("trauma")
    scope = sr.get_endpoint("cervical_mortality").in_scope(cohort)
    return cohort[scope.to_numpy()].head(n)


def _predict(model, records, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unusual-input warnings of the small cohorts
        return model.predict_risk(records, **kw)


@pytest.mark.parametrize("kind", ["binary", "competing", "survival"])
def test_intervals_surround_the_risk_for_every_endpoint_kind(kind, request):
    model = request.getfixturevalue(kind)
    records = _records(kind, request, 40)
    plain = _predict(model, records)
    out = _predict(model, records, interval=0.9)
    risk_cols = [model.endpoint_.risk_column(h) for h in model.horizons_]
    expected = []
    for col in risk_cols:
        expected += [col, *interval_columns(col)]
    assert list(out.columns) == expected + ["warnings"]
    pd.testing.assert_frame_equal(out[risk_cols + ["warnings"]], plain)  # risks unchanged
    for col in risk_cols:
        lo, hi = interval_columns(col)
        assert ((out[lo] >= 0) & (out[lo] <= out[hi]) & (out[hi] <= 1)).all()
        assert (out[hi] - out[lo]).median() > 0.005  # refits really differ
    narrow = _predict(model, records, interval=0.5)
    for col in risk_cols:
        lo, hi = interval_columns(col)
        assert ((narrow[hi] - narrow[lo]) <= (out[hi] - out[lo]) + 1e-12).all()
    assert model.interval_info_ == {
        "n_resamples": B,
        "n_fitted": B,
        "random_state": 3,
        "method": "percentile",
    }


def test_intervals_are_deterministic_given_the_seed(ovf, competing):
    again = _fit("future_fracture", "xgboost", ovf)
    records = ovf.head(30)
    first = _predict(competing, records, interval=0.9)
    pd.testing.assert_frame_equal(first, _predict(again, records, interval=0.9))
    again.fit_intervals(ovf, n_resamples=B, random_state=4)
    assert not _predict(again, records, interval=0.9).equals(first)


def test_dict_records_with_an_interval_match_the_frame(ovf, binary):
    records = ovf.head(3)
    rows = [{k: v for k, v in r.items() if pd.notna(v)} for r in records.to_dict("records")]
    from_dicts = _predict(binary, rows, interval=0.8)
    from_frame = _predict(binary, records, interval=0.8)
    cols = [c for c in from_frame.columns if c != "warnings"]
    np.testing.assert_allclose(from_dicts[cols].to_numpy(), from_frame[cols].to_numpy())


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "0.9", True, float("nan")])
def test_bad_interval_values_are_refused(ovf, binary, bad):
    with pytest.raises(ValueError, match=r"interval must be a coverage level strictly between"):
        binary.predict_risk(ovf.head(2), interval=bad)


def test_interval_without_refits_is_refused(ovf, plain):
    with pytest.raises(ValueError, match=r"call model.fit_intervals\(training_cohort\) first"):
        plain.predict_risk(ovf.head(2), interval=0.9)
    with pytest.raises(ValueError, match=r"call model.fit_intervals"):
        plain.explain(ovf.head(2), interval=0.9)


def test_fit_intervals_checks_its_inputs(ovf, binary):
    with pytest.raises(ValueError, match=r"needs the cohort the model was fitted on: it has"):
        binary.fit_intervals(ovf.head(200), n_resamples=3)
    for bad in (1, 201, 2.5, True):
        with pytest.raises(ValueError, match=r"n_resamples must be an integer from 2 to 200"):
            binary.fit_intervals(ovf, n_resamples=bad)


def test_refit_drops_stale_intervals(ovf, competing):
    model = copy.deepcopy(competing)  # a model with refits (the fixture stays intact)
    model.fit(ovf)
    assert not hasattr(model, "interval_models_")
    with pytest.raises(ValueError, match="fit_intervals"):
        model.predict_risk(ovf.head(2), interval=0.9)


@pytest.mark.parametrize("kind", ["binary", "competing", "survival"])
def test_bundle_round_trip_keeps_the_intervals(kind, request, saved):
    model = request.getfixturevalue(kind)
    records = _records(kind, request, 20)
    loaded = sr.load(saved(kind))
    assert loaded.interval_info_ == model.interval_info_
    assert len(loaded.interval_models_) == B
    pd.testing.assert_frame_equal(
        _predict(loaded, records, interval=0.9), _predict(model, records, interval=0.9)
    )


def test_bundle_without_intervals_still_loads(ovf, plain, tmp_path):
    import json
    import zipfile

    path = plain.save(tmp_path / "plain.srb")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert "intervals" not in manifest
    loaded = sr.load(path)
    assert not hasattr(loaded, "interval_models_")
    pd.testing.assert_frame_equal(_predict(loaded, ovf.head(5)), _predict(plain, ovf.head(5)))


def test_tampered_interval_manifest_is_refused(saved, tmp_path):
    import json
    import zipfile

    from spinerisk.exceptions import ArtifactError

    path = saved("binary")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["intervals"]["n_fitted"] = 99
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.srb"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ArtifactError, match="manifest intervals are malformed"):
        sr.load(bad)


def test_explanation_shows_the_interval(ovf, binary):
    ex = binary.explain(ovf.head(3))
    assert ex.interval == 0.9
    out = _predict(binary, ovf.head(3), interval=0.9)
    np.testing.assert_allclose(ex.risk_interval["lo"], out["risk_183d_lo"])
    np.testing.assert_allclose(ex.risk_interval["hi"], out["risk_183d_hi"])
    first = ex.sentences().iloc[0]
    lo, hi = out["risk_183d_lo"].iloc[0], out["risk_183d_hi"].iloc[0]
    assert f"(90% interval {100 * lo:.0f}-{100 * hi:.0f}%)" in first
    assert {"risk_lo", "risk_hi"} <= set(ex.to_frame().columns)
    import matplotlib.pyplot as plt

    fig = ex.plot_waterfall(ex.contributions.index[0])
    assert f"(90% interval {100 * lo:.0f}-{100 * hi:.0f}%)" in fig._suptitle.get_text()
    plt.close(fig)


def test_basic_method_is_stored_and_used(ovf, competing):
    model = copy.deepcopy(competing)  # percentile refits, replaced below
    model.fit_intervals(ovf, n_resamples=3, random_state=3, method="basic")
    assert model.interval_info_["method"] == "basic"
    records = ovf.head(5)
    out = _predict(model, records, interval=0.9)
    cols = [model.endpoint_.risk_column(h) for h in model.horizons_]
    boot = bootstrap_risks(model.interval_models_, sr.validate(records), model.horizons_)
    lo, hi = interval_bounds(out[cols].to_numpy(), boot, 0.9, "basic")
    np.testing.assert_allclose(out[[interval_columns(c)[0] for c in cols]], lo)
    np.testing.assert_allclose(out[[interval_columns(c)[1] for c in cols]], hi)
    with pytest.raises(ValueError, match="method must be one of"):
        model.fit_intervals(ovf, n_resamples=3, method="bca")


def test_basic_interval_moves_against_the_refits_bias():
    risk = np.array([[0.2]])
    boot = np.linspace(0.05, 0.15, 101)[:, None, None]  # refits all below the risk
    lo_b, hi_b = interval_bounds(risk, boot, 0.9, "basic")
    lo_p, hi_p = interval_bounds(risk, boot, 0.9, "percentile")
    assert hi_p[0, 0] < 0.2 < lo_b[0, 0]  # percentile below the risk, basic above it
    with pytest.raises(ValueError, match="method must be one of"):
        interval_bounds(risk, boot, 0.9, "studentised")


def test_instability_summary_and_report(ovf, binary, tmp_path):
    from spinerisk.evaluation import evaluate

    inst = prediction_instability(binary, ovf)
    checked = sr.validate(ovf)
    eligible = checked[binary.endpoint_.eligible(checked)]
    boot = bootstrap_risks(binary.interval_models_, eligible, binary.horizons_)
    risk = binary._risk_values(eligible, binary.horizons_)
    expected = np.abs(boot - risk[None]).mean()
    assert inst["n_models"] == B and inst["n_records"] == len(eligible)
    assert inst["summary"]["mean_abs_difference"].iloc[0] == pytest.approx(expected)
    assert expected > 0.005
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = evaluate(binary, ovf, n_bootstrap=5, subgroups=(), explain=False)
    # evaluate adds the instability of a model with refits, on the records it evaluates
    assert report.instability["n_models"] == B
    assert report.instability["summary"]["mean_abs_difference"].iloc[0] == pytest.approx(expected)
    report.instability = inst
    saved = report.to_dict()["instability"]["summary"][0]["mean_abs_difference"]
    assert saved == pytest.approx(expected)
    assert "## Prediction instability" in report.to_markdown()
    assert report.instability_table()["mean absolute difference"].iloc[0] == f"{expected:.3f}"
    html = report.to_html(tmp_path / "r.html").read_text()
    assert '<section id="instability">' in html
    assert 'alt="Prediction instability plot"' in html
    report.instability = None
    assert '<section id="instability">' not in report.to_html(tmp_path / "r2.html").read_text()


def test_instability_needs_refits_or_the_training_cohort(ovf, plain):
    with pytest.raises(ValueError, match="needs bootstrap refits"):
        prediction_instability(plain, ovf)
    inst = prediction_instability(plain, ovf, training_cohort=ovf, n_resamples=2)
    assert inst["n_models"] == 2
    assert not hasattr(plain, "interval_models_")  # the refits are not kept on the model


def test_a_refit_of_another_model_is_refused(saved, competing, tmp_path):
    import hashlib
    import json
    import zipfile

    from spinerisk.bundle import save_bundle
    from spinerisk.exceptions import ArtifactError

    path = saved("binary")
    foreign = save_bundle(competing.interval_models_[0], tmp_path / "foreign.srb").read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["intervals/0.srb"] = foreign
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["intervals/0.srb"] = hashlib.sha256(foreign).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.srb"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ArtifactError, match="not a model of the same endpoint"):
        sr.load(bad)


def test_bootstrap_folds_keep_a_records_copies_together_and_are_stratified():
    from spinerisk.models._ridge import stratified_folds

    rng = np.random.default_rng(0)
    outcome = (rng.random(400) < 0.2).astype(int)
    rows = rng.integers(0, 400, size=400)  # a bootstrap resample: records repeat
    groups = np.unique(rows, return_inverse=True)[1]
    folds = stratified_folds(outcome[rows], groups, 5, seed=3)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(400))  # every row held out once
    share = outcome[rows].mean()
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])  # no record on both sides
        assert abs(outcome[rows][test].mean() - share) < 0.06  # stratified by outcome
    again = stratified_folds(outcome[rows], groups, 5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
