"""Comparators (issue 15.4): existing scores and published calculators beside the model.

GLOW500 (real, public, tests/data/real/glow500) with its integer ``fracscore``; the
synthetic spine cohort with the Garvan nomogram and a probability comparator (the
generator's oracle risk).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

import spinerisk as sr
from spinerisk import metrics as m
from spinerisk.evaluation import CALCULATORS, FRAX_INPUTS, Comparator, frax_inputs, garvan_points

GLOW = Path(__file__).parent / "data" / "real" / "glow500" / "glow500.csv"
FAST = {"subgroups": (), "explain": False}
pytestmark = pytest.mark.filterwarnings("ignore::spinerisk.DataQualityWarning")


@pytest.fixture(scope="module")
def glow():
    """A linear model of one-year fracture on 70% of GLOW500, fracscore its comparator."""
    from spinerisk.schema import infer_schema

    raw = sr.read_records(GLOW)
    schema = (
        infer_schema(raw, name="glow500")
        .replace("fracscore", role="comparator", unit="points", description="GLOW score.")
        .replace("fracture", role="outcome")
    )
    endpoint = sr.Endpoint(
        name="fracture",
        kind="binary",
        description="Any fracture in the first year of follow-up (GLOW).",
        event="fracture",
        time=None,
        horizons=(365.25,),
        time_unit="years",
        comparators=("fracscore",),
    )
    development = raw.sample(frac=0.7, random_state=0)
    held_out = raw.drop(index=development.index)
    model = sr.RiskModel(endpoint=endpoint, schema=schema, backend="linear", random_state=0)
    model.fit(development)
    report = sr.evaluate(model, held_out, n_bootstrap=40, validation="split", **FAST)
    return model, held_out, report


def test_glow_fracscore_is_compared_as_a_score_by_default(glow):
    model, held_out, report = glow
    assert "fracscore" not in model.endpoint_.predictors(model.schema_)
    assert report.settings["comparators"] == ["fracscore"]
    (info,) = report.comparators["info"]
    assert info["scale"] == "score" and info["n"] == len(held_out) == 150
    assert "not a probability" in info["handling"] and "recalibration" in info["handling"]
    table = report.comparators["table"]
    y = held_out["fracture"].to_numpy(int)
    score = held_out["fracscore"].to_numpy(float)
    auroc = table[table["metric"] == "auroc"].iloc[0]
    # discrimination of the raw score, the model on the same records, and their difference
    assert auroc["comparator_estimate"] == pytest.approx(roc_auc_score(y, score))
    main = report.to_frame().set_index("metric").loc["auroc", "estimate"]
    assert auroc["model_estimate"] == pytest.approx(main)
    assert auroc["difference_estimate"] == pytest.approx(
        auroc["model_estimate"] - auroc["comparator_estimate"]
    )
    for part in ("model", "comparator", "difference"):
        assert auroc[f"{part}_lower"] <= auroc[f"{part}_estimate"] <= auroc[f"{part}_upper"]
    # net benefit of the score after the stated logistic recalibration on these records
    import statsmodels.api as sm

    fit = sm.GLM(y, sm.add_constant(score), family=sm.families.Binomial()).fit()
    recal = report.comparators["recalibration"].iloc[0]
    assert "logistic recalibration on score" in recal["method"]
    np.testing.assert_allclose([recal["intercept"], recal["slope"]], fit.params, atol=1e-6)
    risk = expit(fit.params[0] + fit.params[1] * score)
    nb = table[table["metric"] == "net_benefit"]
    assert list(nb["threshold"]) == [0.05, 0.1, 0.2, 0.3]
    expected = m.net_benefit(y, risk, [0.05, 0.1, 0.2, 0.3])["model"].to_numpy()
    np.testing.assert_allclose(nb["comparator_estimate"], expected, atol=1e-6)
    # a score's calibration is never assessed
    assert not set(table["metric"]) & {"brier", "calibration_slope", "oe_ratio"}


def test_glow_comparators_reach_dict_markdown_html_and_the_cli(glow, tmp_path):
    from typer.testing import CliRunner

    from spinerisk.cli import app

    model, held_out, report = glow
    saved = json.loads(json.dumps(report.to_dict()))
    assert saved["comparators"]["info"][0]["name"] == "fracscore"
    assert {r["metric"] for r in saved["comparators"]["table"]} == {"auroc", "net_benefit"}
    md = report.to_markdown()
    assert "## Comparators" in md and "| fracscore | AUROC (C-statistic) |" in md
    html = report.to_html(tmp_path / "glow.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="comparators">') : html.index('id="subgroups"')]
    assert "fracscore" in section and "logistic recalibration" in section
    assert section.count("data:image/png;base64,") == 1  # model and fracscore decision curves

    model.save(tmp_path / "glow.srb")
    held_out.to_csv(tmp_path / "held_out.csv", index=False)
    args = ["evaluate", "--model", tmp_path / "glow.srb", "--input", tmp_path / "held_out.csv"]
    args = [str(a) for a in [*args, "--validation", "split", "--bootstrap", "5"]]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "Comparator fracscore: a score, not a probability" in result.output
    assert "Model against comparators" in result.output
    alone = CliRunner().invoke(app, [*args, "--no-comparators"], env={"COLUMNS": "220"})
    assert alone.exit_code == 0 and "fracscore" not in alone.output
    unknown = CliRunner().invoke(app, [*args, "--comparator", "qfracture"])
    assert unknown.exit_code == 2 and "shipped calculator" in unknown.output


def test_a_score_is_never_read_as_a_probability(glow):
    model, held_out, _ = glow
    with pytest.raises(ValueError, match="declared a probability but .* outside"):
        sr.evaluate(
            model,
            held_out,
            n_bootstrap=2,
            comparators=[Comparator.from_column("fracscore", scale="probability")],
            **FAST,
        )
    with pytest.raises(ValueError, match="comparator 'qfracture' is neither a field"):
        sr.evaluate(model, held_out, comparators=["qfracture"])
    with pytest.raises(ValueError, match="comparator_thresholds must be"):
        sr.evaluate(model, held_out, comparator_thresholds=[0.0, 0.2])
    none = sr.evaluate(model, held_out, n_bootstrap=2, comparators=(), **FAST)
    assert none.comparators is None and none.comparator_table().empty
    # records without the declared score column: missing data, noted, not an error
    absent = sr.evaluate(model, held_out.drop(columns="fracscore"), n_bootstrap=2, **FAST)
    assert absent.comparators["table"].empty
    assert "Comparator fracscore: 0 records with a value" in " ".join(absent.notes)


def test_a_probability_comparator_gets_every_metric_the_model_gets():
    """The generator's oracle risk, joined by record id, is evaluated as published."""
    cohort, oracle = sr.make_spine_cohort(800, seed=3, return_oracle=True)
    model = sr.RiskModel("collapse", backend="linear").fit(cohort.iloc[:500])
    truth = pd.Series(oracle["p_collapse"].to_numpy(), index=oracle["patient_id"])
    comp = Comparator.from_values("oracle", truth, scale="probability")
    report = sr.evaluate(
        model, cohort.iloc[500:], n_bootstrap=20, comparators=[comp], validation="split", **FAST
    )
    table = report.comparators["table"].set_index("metric")
    assert {"auroc", "brier", "calibration_slope", "calibration_intercept", "oe_ratio"} <= set(
        table.index
    )
    checked = sr.validate(cohort.iloc[500:])
    eligible = checked[model.endpoint_.eligible(checked).to_numpy()]
    y = eligible["collapse_6m"].astype(bool).to_numpy()
    p = truth.loc[eligible["patient_id"]].to_numpy()
    assert table.loc["brier", "comparator_estimate"] == pytest.approx(m.brier_score(y, p))
    assert table.loc["calibration_slope", "comparator_estimate"] == pytest.approx(
        m.calibration_slope(y, p), rel=1e-6
    )
    assert np.isfinite(table.loc["brier", "difference_estimate"])
    assert np.isnan(table.loc["oe_ratio", "difference_estimate"])  # differences: AUROC, NB, Brier
    recal = report.comparators["recalibration"].iloc[0]
    assert recal["method"].startswith("as published")


def test_garvan_nomogram_on_the_competing_future_fracture_endpoint():
    cohort = sr.make_spine_cohort(900, seed=4)
    model = sr.RiskModel("future_fracture", backend="linear").fit(cohort.iloc[:600])
    test = cohort.iloc[600:]
    with pytest.raises(ValueError, match=r"needs the field\(s\) \['tscore_fn'\]"):
        sr.evaluate(model, test, n_bootstrap=2, comparators=["garvan"], **FAST)
    report = sr.evaluate(
        model,
        test,
        n_bootstrap=10,
        comparators=["garvan_tscore_min"],
        comparator_thresholds=[0.1, 0.2],
        validation="split",
        **FAST,
    )
    checked = sr.validate(test)
    eligible = checked[model.endpoint_.eligible(checked).to_numpy()]
    points = garvan_points(eligible, tscore="tscore_min").to_numpy()
    has = np.isfinite(points)
    (info,) = report.comparators["info"]
    assert info["n"] == int(has.sum()) and info["n_without_value"] == int((~has).sum()) > 0
    assert (eligible.loc[has, "sex"] == "F").all()
    assert "Nguyen" in info["reference"] and "deviation" in info["description"]
    table = report.comparators["table"]
    c1 = table[(table["metric"] == "competing_c") & (table["horizon"] == 365.25)].iloc[0]
    time = eligible["fx_time_days"].to_numpy(float)[has]
    event = eligible["fx_event"].to_numpy(int)[has]
    assert c1["comparator_estimate"] == pytest.approx(
        m.competing_c(time, event, points[has], cause=1, horizon=365.25)
    )
    nb = table[table["metric"] == "net_benefit"]
    assert len(nb) == 2 * len(model.horizons_) and nb["difference_estimate"].notna().all()
    recal = report.comparators["recalibration"]
    assert recal["method"].str.contains("weighted for censoring").all()
    assert (recal["slope"] > 0).all()  # more points, higher risk


def test_garvan_points_follow_the_published_scales():
    records = pd.DataFrame(
        {
            "age_years": [60.0, 80.0, 50.0, 75.0, 90.0],
            "sex": ["F", "F", "F", "F", "M"],
            "tscore_fn": [0.0, -3.0, -1.0, np.nan, -2.0],
            "prior_fx_count": [0, 5, 0, 1, 1],
            "falls_12m_count": [1, 4, 0, 0, 0],
        }
    )
    points = garvan_points(records).tolist()
    assert points[0] == pytest.approx(4 + 40 + 0 + 5)
    assert points[1] == pytest.approx(20 + 70 + 42 + 15)  # capped at 3 fractures, 3 falls
    assert np.isnan(points[2])  # below the nomogram's age range
    assert np.isnan(points[3]) and np.isnan(points[4])  # missing T-score; a man
    assert set(CALCULATORS) == {"garvan", "garvan_tscore_min"}


def test_frax_inputs_export_and_frax_results_come_back_by_record_id():
    cohort = sr.validate(sr.make_spine_cohort(200, seed=0))
    table = frax_inputs(cohort)  # no femoral-neck T-score recorded: missing, not an error
    assert list(table.columns) == list(FRAX_INPUTS)
    assert table["femoral_neck_tscore"].isna().all()
    assert table.index.tolist() == cohort["patient_id"].astype(str).tolist()
    gc = cohort["glucocorticoid_current"].astype("boolean") & cohort["glucocorticoid_dose_mg"].ge(
        5
    ).astype("boolean")
    pd.testing.assert_series_equal(
        table["glucocorticoids"].reset_index(drop=True),
        gc.reset_index(drop=True),
        check_names=False,
    )
    # a FRAX-like 10-year probability: recalibrated at the endpoint's other horizons
    fake = pd.Series(np.linspace(0.05, 0.4, len(table)), index=table.index)
    comp = Comparator.from_values("frax_mof", fake, scale="probability", horizon=3652.5)
    assert comp.source == "values" and comp.horizon == 3652.5
    values = comp.compute(cohort.iloc[::-1], "patient_id")
    np.testing.assert_allclose(values, fake.to_numpy()[::-1])
    with pytest.raises(TypeError, match="pandas Series indexed by record id"):
        Comparator.from_values("x", fake.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(comp.compute(cohort.assign(patient_id="SYN-X"), "patient_id")).all()
