"""The self-contained HTML evaluation report (TRIPOD+AI sections), parsed with html.parser.

Built from synthetic cohorts only; the report must say so.
"""

from __future__ import annotations

import base64
import binascii
from html.parser import HTMLParser

import pandas as pd
import pytest
from typer.testing import CliRunner

import spinerisk as sr
from spinerisk.evaluation import evaluate

SECTIONS = (
    "data-summary",
    "model",
    "discrimination",
    "calibration",
    "decision-curve",
    "comparators",
    "subgroups",
    "sample-size",
    "explanations",
    "intended-use",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects ids, tags, resource attributes, images and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.resources: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.section_text: dict[str, list[str]] = {}
        self._section: str | None = None
        self.section_images: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "section":
            self._section = attrs.get("id")
            self.section_text[self._section] = []
        for key in ("src", "href", "data", "action", "srcset", "poster"):
            if key in attrs and attrs[key] is not None:
                self.resources.append(attrs[key])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
            if self._section:
                self.section_images[self._section] = self.section_images.get(self._section, 0) + 1

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        self.text.append(data)
        if self._section:
            self.section_text[self._section].append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def setup():
    cohort = sr.make_spine_cohort(800, seed=5)
    model = sr.RiskModel("collapse", backend="linear").fit(cohort)
    report = evaluate(model, cohort, n_bootstrap=10, subgroups=("sex", "centre_id"))
    return model, cohort, report


@pytest.fixture(scope="module")
def page(setup, tmp_path_factory):
    path = setup[2].to_html(tmp_path_factory.mktemp("html") / "report.html")
    return _parse(path.read_text(encoding="utf-8")), path.read_text(encoding="utf-8")


def test_every_tripod_section_is_present_once(page):
    parsed, _ = page
    for section in SECTIONS:
        assert parsed.ids.count(section) == 1, section
    assert len(parsed.ids) == len(set(parsed.ids))
    assert "Intended use and limitations" in " ".join(parsed.section_text["intended-use"])
    limits = " ".join(parsed.section_text["intended-use"])
    assert "What was not shown: clinical validity" in limits


def test_treatment_confounding_is_named_only_for_a_model_reading_treatment(setup, page):
    model, _, report = setup
    limits = " ".join(_parse(page[1]).section_text["intended-use"])
    reads = [f.name for f in model.schema_.by_role("treatment")]
    reads = [f for f in reads if f in model.endpoint_.predictors(model.schema_)]
    assert report.model_info["treatment_predictors"] == reads
    assert ("confounded by indication" in limits) == bool(reads)


def test_synthetic_banner_present_for_a_synthetic_cohort(page):
    parsed, text = page
    assert "synthetic-banner" in parsed.ids
    assert parsed.ids.index("synthetic-banner") < parsed.ids.index("data-summary")
    assert text.count("SYNTHETIC DATA") >= 2  # banner and title


def test_no_banner_when_neither_records_nor_training_are_labelled_synthetic(setup, tmp_path):
    synthetic_model, cohort, _ = setup
    unlabelled = cohort.copy()
    unlabelled.attrs = {}
    # a model trained on labelled synthetic records keeps the banner on any records
    kept = evaluate(synthetic_model, unlabelled, n_bootstrap=3, subgroups=(), explain=False)
    assert kept.synthetic
    model = sr.RiskModel("collapse", backend="linear").fit(unlabelled)
    report = evaluate(model, unlabelled, n_bootstrap=3, subgroups=(), explain=False)
    text = report.to_html(tmp_path / "plain.html").read_text(encoding="utf-8")
    parsed = _parse(text)
    assert "synthetic-banner" not in parsed.ids
    assert "SYNTHETIC" not in text
    assert all(s in parsed.ids for s in SECTIONS)


def test_images_are_embedded_decodable_pngs(page):
    parsed, _ = page
    assert len(parsed.images) >= 2  # calibration and decision curve at least
    assert parsed.section_images.get("calibration", 0) >= 1
    assert parsed.section_images.get("decision-curve", 0) >= 1
    for src in parsed.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        try:
            data = base64.b64decode(src[len(prefix) :], validate=True)
        except binascii.Error as exc:  # pragma: no cover - the assertion message
            raise AssertionError(f"image is not valid base64: {exc}") from exc
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 5_000


def test_no_external_resources_or_scripts(page):
    parsed, text = page
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "iframe" not in parsed.tags
    for value in parsed.resources:
        assert value.startswith("data:image/png;base64,"), value[:60]
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "@import" not in lowered and "url(" not in lowered


def test_text_is_escaped(setup, tmp_path):
    _, _, report = setup
    hostile = "<script>alert('x')</script> & <img src=http://evil.example/x.png>"
    report.notes.append(hostile)
    try:
        text = report.to_html(tmp_path / "escaped.html").read_text(encoding="utf-8")
    finally:
        report.notes.remove(hostile)
    parsed = _parse(text)
    assert "<script>" not in text and "script" not in parsed.tags
    assert "&lt;script&gt;" in text
    assert all(not r.startswith("http") for r in parsed.resources)
    assert hostile in "".join(parsed.text)  # shown to the reader as text


def test_comparators_section_says_when_there_are_none_and_smoothed_curves_have_bands(setup, page):
    _, _, report = setup
    parsed, _ = page
    assert "No comparators were declared or requested." in " ".join(
        parsed.section_text["comparators"]
    )
    for curve in report.smoothed_calibration.values():
        assert list(curve.columns) == ["predicted", "observed", "lower", "upper"]
        assert (curve["lower"] <= curve["upper"]).all()
    assert "bootstrap band" in " ".join(parsed.section_text["calibration"])


def test_data_summary_model_and_subgroup_content(setup, page):
    _, cohort, report = setup
    parsed, _ = page
    summary = " ".join(parsed.section_text["data-summary"])
    assert f"{report.n_records} records given" in summary
    assert f"{report.n_excluded} excluded" in summary
    assert "overall (n=" in summary  # Table 1
    assert "pct_missing" in summary
    model_text = " ".join(parsed.section_text["model"])
    assert "collapse" in model_text and "linear" in model_text
    subgroups = " ".join(parsed.section_text["subgroups"])
    for centre in sorted(set(cohort["centre_id"].astype(str))):
        assert centre in subgroups
    sample = " ".join(parsed.section_text["sample-size"])
    assert "Riley" in sample and str(report.sample_size["required_n"]) in sample


def test_explanations_section_shows_importance_or_a_clear_note(setup, tmp_path):
    _, _, report = setup
    original = report.explanations
    try:
        report.explanations = {
            "importance": pd.Series({"t2_pattern": 0.8, "age_years": 0.3}),
            "examples": [{"record_id": "SYN-000001", "sentence": "Risk is raised by T2 <b>."}],
            "note": "",
        }
        parsed = _parse(report.to_html(tmp_path / "with.html").read_text(encoding="utf-8"))
        assert parsed.section_images.get("explanations") == 1
        text = " ".join(parsed.section_text["explanations"])
        assert "SYN-000001" in text and "Risk is raised by T2 <b>." in text

        report.explanations = {"note": "Explanations could not be computed for this model: x"}
        parsed = _parse(report.to_html(tmp_path / "without.html").read_text(encoding="utf-8"))
        assert "explanations" not in parsed.section_images
        assert "could not be computed" in " ".join(parsed.section_text["explanations"])
    finally:
        report.explanations = original
    # whatever spinerisk.explain provides, the real report says something there
    text = " ".join(
        _parse(report.to_html(tmp_path / "real.html").read_text()).section_text["explanations"]
    )
    assert text.strip()


def test_cli_report_writes_one_html_file(tmp_path, setup):
    from spinerisk.cli import app

    model, cohort, _ = setup
    model.save(tmp_path / "m.srb")
    cohort.head(500).to_parquet(tmp_path / "c.parquet")
    out = tmp_path / "r.html"
    args = ["report", "--model", str(tmp_path / "m.srb"), "--input", str(tmp_path / "c.parquet")]
    result = CliRunner().invoke(
        app,
        [
            *args,
            "--output",
            str(out),
            "--bootstrap",
            "3",
            "--synthetic",
            "--validation",
            "internal",
        ],
    )
    assert result.exit_code == 0, result.output
    parsed = _parse(out.read_text(encoding="utf-8"))
    assert all(s in parsed.ids for s in SECTIONS) and "synthetic-banner" in parsed.ids
    assert "SYNTHETIC DATA" in result.output

    bad = cohort.head(50).copy()
    bad["sex"] = bad["sex"].astype(object)
    bad.iloc[3, bad.columns.get_loc("sex")] = "X"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    args = ["report", "--model", str(tmp_path / "m.srb"), "--input", str(tmp_path / "bad.csv")]
    result = CliRunner().invoke(
        app, [*args, "--output", str(tmp_path / "x.html"), "--validation", "external"]
    )
    assert result.exit_code == 2
    assert "sex" in result.output and "'X'" in result.output
    assert not (tmp_path / "x.html").exists()
