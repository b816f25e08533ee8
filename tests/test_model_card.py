"""model_card (issue 15.6): the TRIPOD+AI items a model, its report and bundle know, as JSON
and self-contained HTML. Synthetic cohorts only."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser

import pytest

import spinerisk as sr
from spinerisk.evaluation import choose_threshold, model_card

pytestmark = pytest.mark.filterwarnings("ignore::spinerisk.DataQualityWarning")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [v for k, v in attrs if k == "id"]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def setup():
    cohort = sr.make_spine_cohort(700, seed=6)
    model = sr.RiskModel("nonunion", backend="linear").fit(cohort.iloc[:450])
    held_out = cohort.iloc[450:]
    report = sr.evaluate(
        model, held_out, n_bootstrap=10, validation="split", subgroups=("sex",), explain=False
    )
    threshold = choose_threshold(model, held_out, target=0.2, n_bootstrap=5)
    return model, report, threshold


def test_card_holds_what_the_model_report_and_threshold_know(setup, tmp_path):
    model, report, threshold = setup
    card = model_card(model, report, threshold=threshold)
    text = card.to_json(tmp_path / "card.json")
    saved = json.loads((tmp_path / "card.json").read_text())
    assert saved == json.loads(text) == card.to_dict()
    assert saved["format"] == "spinerisk-model-card"
    assert saved["outcome"]["endpoint"] == "nonunion" and saved["outcome"]["kind"] == "binary"
    assert [p["name"] for p in saved["predictors"]] == model.endpoint_.predictors(model.schema_)
    age = next(p for p in saved["predictors"] if p["name"] == "age_years")
    assert age["unit"] == "years" and age["description"]
    assert saved["data"]["n_development"] == model.n_train_ and saved["data"]["synthetic"]
    assert "conservative" in saved["data"]["eligibility"]  # nonunion: conservative treatment
    perf = saved["performance"]
    assert perf["validation"] == "split" and perf["n_evaluated"] == report.n_evaluated
    assert perf["metrics"] == report.to_dict()["metrics"]
    assert {s["level"] for s in perf["subgroups"]} >= {"F", "M"}
    assert perf["threshold"]["threshold"] == pytest.approx(threshold.threshold)
    status = {row["topic"]: row["status"] for row in saved["tripod_ai"]}
    assert status["Decision threshold"] == "reported"
    assert status["Comparison with existing scores"].startswith("not known")
    assert status["Model updating"].startswith("not applicable")
    assert any("not known to spinerisk" in row["status"] for row in saved["tripod_ai"])
    assert any("SYNTHETIC DATA" in line for line in saved["limitations"])
    assert any("Riley" in line for line in saved["limitations"])  # 450 records, 87 params


def test_card_html_is_self_contained_escaped_and_flags_synthetic_data(setup, tmp_path):
    model, report, _ = setup
    reason = model.selection_reason_
    model.selection_reason_ = "<script>alert(1)</script>"
    try:
        path = model_card(model, report).to_html(tmp_path / "card.html")
    finally:
        model.selection_reason_ = reason
    html = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    for section in ("intended-use", "model", "data", "outcome", "predictors", "performance"):
        assert section in page.ids, section
    assert {"lineage", "limitations", "tripod-ai", "synthetic-banner"} <= set(page.ids)
    assert "script" not in page.tags and "link" not in page.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text
    assert "http://" not in html and "https://" not in html
    assert "SYNTHETIC DATA" in html and "age_years" in html


def test_card_without_a_report_says_what_is_not_known_and_records_lineage(setup, tmp_path):
    model, report, _ = setup
    bare = model_card(model).to_dict()
    assert bare["performance"] is None and bare["lineage"] is None
    status = {row["topic"]: row["status"] for row in bare["tripod_ai"]}
    assert status["Performance (discrimination, calibration, clinical utility, with CIs)"] == (
        "not known: pass the evaluation report (model_card(model, report))"
    )
    # an updated model's lineage (spinerisk.update writes lineage_) is carried over
    lineage = {"method": "intercept", "parent": {"sha256": "ab" * 32}, "date_utc": "2026-01-01"}
    model.lineage_ = lineage
    try:
        card = model_card(model, report)
        html = card.to_html(tmp_path / "updated.html").read_text(encoding="utf-8")
    finally:
        del model.lineage_
    assert card.to_dict()["lineage"] == lineage
    assert "intercept" in html and "ab" * 32 in html
    status = {row["topic"]: row["status"] for row in card.to_dict()["tripod_ai"]}
    assert status["Model updating"] == "reported"


def test_card_identifies_the_bundle_and_refuses_a_foreign_report(setup, tmp_path):
    model, report, _ = setup
    path = tmp_path / "model.srb"
    path.write_bytes(b"bundle bytes stand-in")  # the card only reads and hashes the file
    card = model_card(model, bundle=path).to_dict()
    assert card["model"]["bundle"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    from dataclasses import replace

    foreign = replace(report, model_info={**report.model_info, "endpoint": "collapse"})
    with pytest.raises(ValueError, match="evaluates the 'collapse' model, not this 'nonunion'"):
        model_card(model, foreign)
    with pytest.raises(TypeError, match="fitted spinerisk.RiskModel"):
        model_card("model.srb")
