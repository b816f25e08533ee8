"""Property-based fuzzing of ``spinerisk score`` on generated CSV files (Hypothesis).

A small valid extract (synthetic records) is damaged at the byte level: fields replaced by
hostile text (NUL bytes, lenient numbers, quotes, line breaks, formulas, a field over the
length limit), raw bytes inserted (invalid UTF-8 among them), lines dropped, doubled or
cut, header names duplicated or removed, the delimiter changed. Whatever the input, the
command ends with exit code 0 or 2 and a message, never a traceback; when it ends with 0,
every data row is accounted for: rows in = scored + rejected, and the files hold exactly
those rows. Examples are derandomised, so a run is reproducible.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spinerisk as sr
from spinerisk.io import MAX_FIELD_CHARS

typer_testing = pytest.importorskip("typer.testing")

from spinerisk.cli import app  # noqa: E402

runner = typer_testing.CliRunner()
N_ROWS = 8

HOSTILE = [
    "",
    " ",
    "NA",
    "NAN",
    "-nan",
    "8_1",
    "\uff18\uff11",
    "\u0668\u0661",
    "1e309",
    "inf",
    "-0",
    "\x00",
    "30\x00x",
    '"',
    '"abc',
    'a"b',
    '"a""b"',
    "a,b",
    "\r",
    "\n",
    "\r\n",
    "=cmd|' /C calc'!A0",
    "\ufeff",
    "\u202e",
    "\ud7ff",
    "A" * (MAX_FIELD_CHARS + 1),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "collapse.srb"
    sr.RiskModel("collapse", backend="linear").fit(sr.make_spine_cohort(300, seed=0)).save(path)
    return path


@pytest.fixture(scope="module")
def base() -> list[bytes]:
    text = sr.make_spine_cohort(N_ROWS, seed=3).to_csv(index=False)
    return [line.encode() for line in text.splitlines()]


texts = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)


@st.composite
def damaged(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    lines = list(lines)
    width = len(lines[0].split(b","))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                ["field", "field", "field", "bytes", "drop", "double", "cut", "header", "sep"]
            )
        )
        row = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        if kind == "field":
            fields = lines[row].split(b",")
            fields[draw(st.integers(0, len(fields) - 1))] = draw(texts).encode("utf-8")
            lines[row] = b",".join(fields)
        elif kind == "bytes":
            pos = draw(st.integers(0, len(lines[row])))
            lines[row] = (
                lines[row][:pos] + draw(st.binary(min_size=1, max_size=4)) + lines[row][pos:]
            )
        elif kind == "drop":
            del lines[row]
        elif kind == "double":
            lines.insert(row, lines[row])
        elif kind == "cut":
            lines[row] = lines[row][: draw(st.integers(0, len(lines[row])))]
        elif kind == "header":
            names = lines[0].split(b",")
            j = draw(st.integers(0, width - 1))
            names[j] = draw(st.sampled_from([names[(j + 1) % width], b"", b"age_years"]))
            lines[0] = b",".join(names)
        else:
            lines[row] = lines[row].replace(b",", draw(st.sampled_from([b";", b"\t", b",,"])))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(lines) + draw(st.sampled_from([ending, b""]))


def _rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1  # less the header


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_score_ends_in_0_or_2_and_accounts_for_every_row(bundle, base, data):
    content = data.draw(damaged(base))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = folder / "in.csv"
        src.write_bytes(content)
        out, rej = folder / "scores.csv", folder / "rejects.csv"
        argv = ["score", "--model", str(bundle), "--input", str(src), "--output", str(out)]
        result = runner.invoke(app, [*argv, "--rejects", str(rej), "--no-progress"])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output
        leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
        assert leftovers == []
        if result.exit_code == 2:
            assert result.stderr.strip()  # a message says why
            assert not out.exists() and not rej.exists()
            return
        counts = re.search(
            r"rows in: (\d+) = scored: (\d+) \+ rejected: (\d+)(?: \+ out of scope[^:]*: (\d+))?",
            result.output,
        )
        assert counts, result.output
        rows_in, scored, rejected, held = (int(g or 0) for g in counts.groups())
        assert rows_in == scored + rejected + held  # held: out of a gated model's scope
        assert _rows(out) == scored + held and _rows(rej) == rejected
        # no row is invented: at most one row per non-blank line of the input
        lines = [x for x in io.BytesIO(content).read().splitlines()[1:] if x.strip()]
        assert rows_in <= len(lines)
