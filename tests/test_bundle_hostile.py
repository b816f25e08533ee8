"""Hostile bundles (issue 13, items 7-10): decompression bombs and lying zip headers are
refused in bounded memory; an edited manifest is refused by cross-checks, a trusted
sha256 or a signature; a spoofed skops part is refused at load; deep or malformed JSON
is an ArtifactError. The gate as a nested bundle, format 3 bundles and the fuzz test of
mutated bundles are in ``tests/test_bundle.py``."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import skops.io as sio

import spinerisk as sr
from spinerisk.bundle import ArtifactError, load_bundle, read_manifest, save_bundle

KEY_ENV = "SPINERISK_TEST_BUNDLE_KEY"
KEY = "k" * 40
GIGA = 10**9


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return sr.make_spine_cohort(600, seed=0)  # SYNTHETIC


def _fit(cohort: pd.DataFrame, endpoint: str, backend: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sr.RiskModel(endpoint, backend=backend, cv=2).fit(cohort)


@pytest.fixture(scope="module")
def models(cohort: pd.DataFrame) -> dict[str, Any]:
    return {
        "linear": _fit(cohort, "nonunion", "linear"),
        "xgboost": _fit(cohort, "nonunion", "xgboost"),
        "competing": _fit(cohort, "future_fracture", "linear"),
    }


@pytest.fixture(scope="module")
def bundles(models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {name: save_bundle(m, folder / f"{name}.srb") for name, m in models.items()}


def _risks(model: Any, cohort: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.predict_risk(cohort)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _rehash(
    members: dict[str, bytes], edit: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Recompute the manifest's member hashes (as an attacker would), after ``edit``."""
    manifest = json.loads(members["manifest.json"])
    if edit is not None:
        edit(manifest)
    manifest["members"] = {
        n: hashlib.sha256(b).hexdigest()
        for n, b in members.items()
        if n.endswith((".skops", ".json", ".srb")) and n not in ("manifest.json", "signature.json")
    }
    members["manifest.json"] = json.dumps(manifest).encode()


@pytest.fixture
def no_object_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("skops.io.loads was called for a bundle that should be refused")

    monkeypatch.setattr(sio, "loads", refuse)


# -- item 7: zip bombs and lying headers, in bounded memory -------------------------------
def _zero_stream(n: int) -> bytes:
    """A raw deflate stream of ``n`` zero bytes built without compressing them: full-
    flush blocks of 10^6 zeros are position-independent, so one is repeated."""
    block = 10**6
    assert n % block == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    return one * (n // block) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


_ZEROS: dict[int, tuple[bytes, int, str]] = {}


def _zeros(n: int) -> tuple[bytes, int, str]:
    """Deflate stream, crc32 and sha256 of ``n`` zero bytes (cached: 10^9 takes 2 s)."""
    if n not in _ZEROS:
        crc, digest, chunk = 0, hashlib.sha256(), bytes(10**6)
        for _ in range(n // 10**6):
            crc = zlib.crc32(chunk, crc)
            digest.update(chunk)
        _ZEROS[n] = (_zero_stream(n), crc, digest.hexdigest())
    return _ZEROS[n]


def _raw_zip(entries: list[tuple[str, bytes, int, int, int, int]]) -> bytes:
    """A zip written by hand: (name, stored data, method, crc, declared size, flags) per
    member, so headers can say what the data are not."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, method, crc, size, flags in entries:
        offset = out.tell()
        raw_name = name.encode()
        sizes = (crc, len(data), size, len(raw_name))
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0, *sizes, 0))
        out.write(raw_name + data)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0,
                                  *sizes, 0, 0, 0, 0, 0, offset) + raw_name)  # fmt: skip
    cd = central.getvalue()
    n = len(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(cd), out.tell(), 0)
    return out.getvalue() + cd + end


def _normal_entries(path: Path) -> list[tuple[str, bytes, int, int, int, int]]:
    entries = []
    for name, data in _members(path).items():
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        entries.append((name, c.compress(data) + c.flush(), 8, zlib.crc32(data), len(data), 0))
    return entries


def _with_bombs(path: Path, n_bombs: int, declared: int | None = None) -> bytes:
    """The bundle plus ``n_bombs`` members of 10^9 zero bytes, listed in the manifest
    with their true sha256 (an attacker's bundle); headers say ``declared`` bytes."""
    stream, crc, digest = _zeros(GIGA)
    entries = _normal_entries(path)
    assert entries[0][0] == "manifest.json"
    manifest = json.loads(_members(path)["manifest.json"])
    names = [
        f"frames/{i}.json"
        for i in range(len(manifest["frames"]), len(manifest["frames"]) + n_bombs)
    ]
    manifest["frames"] += names
    manifest["members"].update(dict.fromkeys(names, digest))
    payload = json.dumps(manifest).encode()
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    entries[0] = (
        "manifest.json",
        c.compress(payload) + c.flush(),
        8,
        zlib.crc32(payload),
        len(payload),
        0,
    )
    size = GIGA if declared is None else declared
    entries += [(n, stream, 8, crc, size, 0) for n in names]
    return _raw_zip(entries)


def _peak_while(fn: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """Peak of Python allocations (bytes) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    error = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        error = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("n_bombs", [1, 3])
def test_members_of_a_billion_zero_bytes_are_refused_before_decompression(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None, n_bombs: int
) -> None:
    path = tmp_path / "bomb.srb"
    path.write_bytes(_with_bombs(bundles["linear"], n_bombs))
    assert path.stat().st_size < 1.5e6 * n_bombs  # ~1 MB per 10^9 bytes
    peak, error = _peak_while(lambda: load_bundle(path))
    assert isinstance(error, ArtifactError), error
    assert "larger than a bundle member may be" in str(error)
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("declared", [1000, 100 << 20])
def test_a_member_whose_header_understates_its_size_is_refused_in_bounded_memory(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None, declared: int
) -> None:
    path = tmp_path / "liar.srb"
    path.write_bytes(_with_bombs(bundles["linear"], 1, declared=declared))
    peak, error = _peak_while(lambda: load_bundle(path))
    assert isinstance(error, ArtifactError), error
    assert "damaged" in str(error) or "header says" in str(error)
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_a_member_whose_header_overstates_its_size_is_refused(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None
) -> None:
    entries = _normal_entries(bundles["linear"])
    name, data, method, crc, size, flags = entries[-1]
    entries[-1] = (name, data, method, crc, size + 12345, flags)
    path = tmp_path / "over.srb"
    path.write_bytes(_raw_zip(entries))
    with pytest.raises(ArtifactError, match="header says"):
        load_bundle(path)


def test_three_members_under_the_member_limit_exceed_the_total_limit(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None
) -> None:
    path = tmp_path / "total.srb"
    path.write_bytes(_with_bombs(bundles["linear"], 3, declared=100 << 20))
    peak, error = _peak_while(lambda: load_bundle(path))
    assert isinstance(error, ArtifactError), error
    assert "in all" in str(error)
    assert peak < 16 << 20


def test_ten_thousand_members_are_refused_before_they_are_listed(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None
) -> None:
    entries = _normal_entries(bundles["linear"])
    entries += [(f"frames/x{i}.json", b"\x03\x00", 8, 0, 0, 0) for i in range(10_000)]
    path = tmp_path / "many.srb"
    path.write_bytes(_raw_zip(entries))
    with pytest.raises(ArtifactError, match="10[0-9]{3} members; a bundle has at most 256"):
        load_bundle(path)


@pytest.mark.parametrize(
    ("method", "flags", "message"),
    [(12, 0, "compression method 12"), (14, 0, "compression method 14"), (8, 1, "encrypted")],
)
def test_other_compression_methods_and_encryption_are_refused(
    bundles: dict[str, Path],
    tmp_path: Path,
    no_object_built: None,
    method: int,
    flags: int,
    message: str,
) -> None:
    entries = _normal_entries(bundles["linear"])
    name, data, _, crc, size, _ = entries[-1]
    entries[-1] = (name, data, method, crc, size, flags)
    path = tmp_path / "method.srb"
    path.write_bytes(_raw_zip(entries))
    with pytest.raises(ArtifactError, match=message):
        load_bundle(path)


def test_a_bomb_inside_a_skops_member_is_refused_before_skops_reads_it(
    bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("skops read a member that should have been refused")

    monkeypatch.setattr(sio, "get_untrusted_types", refuse)
    members = _members(bundles["linear"])
    with zipfile.ZipFile(io.BytesIO(members["estimator.skops"])) as inner:
        files = {n: inner.read(n) for n in inner.namelist()}
    stream, crc, _ = _zeros(GIGA)
    entries = [(n, d, 0, zlib.crc32(d), len(d), 0) for n, d in files.items()]
    entries.append(("140000000000000.npy", stream, 8, crc, GIGA, 0))
    members["estimator.skops"] = _raw_zip(entries)
    _rehash(members)
    path = _zip(members, tmp_path / "skops-bomb.srb")
    peak, error = _peak_while(lambda: load_bundle(path))
    assert isinstance(error, ArtifactError), error
    assert "'estimator.skops' is not a valid skops file" in str(error)
    assert peak < 16 << 20


def test_a_device_or_folder_is_refused_without_reading_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a regular file"):
        load_bundle("/dev/zero")
    with pytest.raises(ArtifactError, match="Cannot read bundle"):
        load_bundle(tmp_path)


_PEAK_SCRIPT = """
import resource, sys, tracemalloc, warnings
warnings.simplefilter("ignore")
import skops.io, sklearn.linear_model, xgboost, spinerisk as sr, spinerisk.bundle as b

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

print("baseline", rss(), 0, "imports done")
for path in sys.argv[1:]:  # hostile bundles first: the peak RSS only ever grows
    tracemalloc.start()
    try:
        sr.load(path)
        outcome = "loaded"
    except b.ArtifactError as exc:
        outcome = "refused: ..." + str(exc).split(": ", 1)[1][-70:]
    traced = tracemalloc.get_traced_memory()[1] // 2**20
    tracemalloc.stop()
    print(path, rss(), traced, outcome)
"""


def test_hostile_bundles_peak_no_higher_than_a_normal_load(
    bundles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Peak memory of one fresh process loading the issue's hostile bundles, then a
    normal bundle: peak RSS over the baseline after imports and the peak of Python
    allocations during each load (figures printed; run with -s to see them)."""
    cases = {}
    for label, n, declared in [
        ("1 member of 10^9 zero bytes", 1, None),
        ("3 members of 10^9 zero bytes", 3, None),
        ("a header understating 10^9 bytes", 1, 1000),
    ]:
        path = tmp_path / f"{n}-{declared}.srb"
        path.write_bytes(_with_bombs(bundles["linear"], n, declared))
        cases[str(path)] = label
    cases[str(bundles["xgboost"])] = "normal load (nonunion, xgboost)"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, *cases],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    rows = [line.split(" ", 3) for line in done.stdout.strip().splitlines()]
    baseline = int(rows[0][1])
    figures = {cases[p]: (int(r) - baseline, int(t), o) for p, r, t, o in rows[1:]}
    with capsys.disabled():
        print(f"\n  baseline after imports: {baseline} MiB RSS")
        for label, (rss, traced, outcome) in figures.items():
            print(f"  {label}: +{rss} MiB peak RSS, {traced} MiB Python peak; {outcome}")
    normal = figures.pop("normal load (nonunion, xgboost)")
    assert normal[2] == "loaded"
    for rss, traced, outcome in figures.values():
        assert outcome.startswith("refused")
        assert rss <= normal[0] + 16 and traced <= 16


# -- item 10: deep and malformed JSON ---------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests 100000 levels deep"),
        (b'{"format": "spinerisk-bundle", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "Infinity is not a JSON number"),
        (b'{"a": 1e999}', "out of range"),
        (b'{"a": ' + b"9" * 100_000 + b"}", "out of range"),
        (b'{"format": "a", "format": "spinerisk-bundle"}', "appears twice"),
        (b'{"a": "\xff"}', "not valid JSON"),
    ],
)
def test_deep_or_malformed_manifest_json_is_an_artifact_error(
    bundles: dict[str, Path], tmp_path: Path, no_object_built: None, payload: bytes, message: str
) -> None:
    members = _members(bundles["linear"])
    members["manifest.json"] = payload
    path = _zip(members, tmp_path / "deep.srb")
    for read in (load_bundle, read_manifest):
        with pytest.raises(ArtifactError, match=message):
            read(path)


def test_deep_json_in_a_table_member_and_in_a_skops_schema_is_an_artifact_error(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    members = _members(bundles["competing"])
    members["frames/0.json"] = b"[" * 100_000 + b"]" * 100_000
    _rehash(members)
    with pytest.raises(ArtifactError, match="nests 100000 levels"):
        load_bundle(_zip(members, tmp_path / "frame.srb"))

    members = _members(bundles["linear"])
    with zipfile.ZipFile(io.BytesIO(members["estimator.skops"])) as inner:
        files = {n: inner.read(n) for n in inner.namelist()}
    files["schema.json"] = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    members["estimator.skops"] = _zip_bytes(files)
    _rehash(members)
    with pytest.raises(ArtifactError, match="estimator.skops' nests 100001 levels"):
        load_bundle(_zip(members, tmp_path / "skops.srb"))


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


# -- item 8: the manifest against the fitted parts ---------------------------------------
def _edited(path: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    members = _members(path)
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    return _zip(members, tmp_path / "edited.srb")


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value(target[keys[-1]]) if callable(value) else value

    return edit


def _relabel_horizon(manifest: dict[str, Any]) -> None:
    """Relabel the 6-month risk as a 1-year risk wherever the manifest names it."""
    manifest["horizons"] = [365.25]
    manifest["model"]["params"]["horizons"] = [365.25]
    ref = manifest["reference"]
    ref["horizons"] = [365.25]
    ref["predictions"] = {"risk_365d": ref["predictions"].pop("risk_183d")}


EDITS = {
    "horizons relabelled": (_set("horizons", value=[365.25]), "horizons"),
    "horizons and the parameter": (_relabel_horizon, "nonunion endpoint is a binary outcome"),
    "age range widened": (
        _set("training_ranges", "age_years", "range", value=lambda r: [r[0], 130.0]),
        "training range of 'age_years'",
    ),
    "age range narrowed": (
        _set("training_ranges", "age_years", "range", value=lambda r: [r[0], r[1] - 5]),
        "training range of 'age_years'",
    ),
    "an unknown sex code": (
        _set("training_ranges", "sex", "categories", value=["F", "M", "X"]),
        "training codes of 'sex'",
    ),
    "a range dropped": (
        lambda m: m["training_ranges"].pop("age_years"),
        "training ranges lack 'age_years'",
    ),
    "endpoint parameter": (_set("model", "params", "endpoint", value="collapse"), "name endpoint"),
    "endpoint description": (
        _set("endpoint", "description", value="Something else."),
        "name endpoint 'nonunion'",
    ),
    "backend": (_set("backend", value="lightgbm"), "backend 'lightgbm'"),
    "backend and parameter": (
        lambda m: (
            _set("backend", value="spline")(m),
            _set("model", "params", "backend", value="spline")(m),
        ),
        "spline model's terms",
    ),
    "cv": (_set("model", "params", "cv", value=1), r"\['cv'\]"),
    "booster_params on a linear model": (
        _set("model", "params", "booster_params", value={"max_depth": 9}),
        "booster_params",
    ),
    "n_train": (_set("n_train", value=lambda n: n - 1), "fitted on"),
    "reference count": (_set("reference", "n", value=lambda n: n + 1), "counts"),
    "reference missing rate": (
        _set("reference", "fields", "egfr", "missing_rate", value=0.5),
        "missing",
    ),
    "feature names": (
        _set("feature_names_out", value=lambda names: names[::-1]),
        "feature_names_out",
    ),
    "id field": (_set("id_field", value="record_no"), "id field"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edited_manifest_is_refused(bundles: dict[str, Path], tmp_path: Path, name: str) -> None:
    edit, message = EDITS[name]
    path = _edited(bundles["linear"], tmp_path, edit)
    with pytest.raises(ArtifactError, match=message):
        load_bundle(path)


def test_edits_of_a_boosted_and_a_competing_model_are_refused(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    cases = [
        ("xgboost", _set("model", "params", "random_state", value=7), "random_state=7"),
        (
            "xgboost",
            _set("model", "params", "booster_params", value={"max_depth": 9}),
            "booster_params",
        ),
        (
            "xgboost",
            lambda m: (
                _set("backend", value="lightgbm")(m),
                _set("model", "params", "backend", value="lightgbm")(m),
            ),
            "not a fitted lightgbm model",
        ),
        ("competing", _set("horizons", value=[365.25, 730.5, 3652.5]), "horizons"),
        ("competing", _set("endpoint", "event_codes", "event", value=2), "name endpoint"),
        (
            "competing",
            lambda m: (
                _set("backend", value="xgboost")(m),
                _set("model", "params", "backend", value="xgboost")(m),
            ),
            "BoostedCoxSurvival",
        ),
    ]
    for bundle, edit, message in cases:
        with pytest.raises(ArtifactError, match=message):
            load_bundle(_edited(bundles[bundle], tmp_path, edit))


def test_a_consistent_rewrite_needs_the_sha256_or_the_signature(
    models: dict[str, Any],
    bundles: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A manifest rewritten consistently (every mention of the horizon, and the endpoint
    declared anew) passes the cross-checks: only a trusted sha256 or a signature shows it."""
    from spinerisk.bundle import require_bundle

    def rewrite(manifest: dict[str, Any]) -> None:
        _relabel_horizon(manifest)
        manifest["endpoint"]["horizons"] = [365.25]
        manifest["model"]["params"]["endpoint"] = manifest["endpoint"]
        manifest["model"]["params"]["horizons"] = None
        manifest["reference"]["endpoint"] = "nonunion"

    original = bundles["linear"]
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    forged = _edited(original, tmp_path, rewrite)
    assert load_bundle(forged).horizons_ == (365.25,)  # the cross-checks cannot tell
    with pytest.raises(ArtifactError, match="sha256 differs from the expected"):
        load_bundle(forged, sha256=digest)
    with require_bundle(sha256=digest), pytest.raises(ArtifactError, match="sha256 differs"):
        read_manifest(forged)
    with require_bundle(sha256=digest):
        assert load_bundle(original).horizons_ == models["linear"].horizons_

    monkeypatch.setenv(KEY_ENV, KEY)
    signed = save_bundle(models["linear"], tmp_path / "signed.srb", sign_key_env=KEY_ENV)
    members = _members(signed)
    manifest = json.loads(members["manifest.json"])
    rewrite(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    forged_signed = _zip(members, tmp_path / "forged-signed.srb")
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_bundle(forged_signed, verify_key_env=KEY_ENV)


def test_signed_bundles_verify_and_unsigned_or_wrongly_keyed_ones_are_refused(
    models: dict[str, Any],
    bundles: dict[str, Path],
    cohort: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_object_built: None,
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("OTHER_KEY", "o" * 40)
    monkeypatch.setenv("SHORT_KEY", "short")
    signed = save_bundle(models["linear"], tmp_path / "signed.srb", sign_key_env=KEY_ENV)
    assert KEY.encode() not in signed.read_bytes()
    assert "signature.json" in _members(signed)
    assert read_manifest(signed, verify_key_env=KEY_ENV)["backend"] == "linear"
    with pytest.raises(ArtifactError, match="not signed"):
        read_manifest(bundles["linear"], verify_key_env=KEY_ENV)
    with pytest.raises(ArtifactError, match="signature does not match the key in OTHER_KEY"):
        read_manifest(signed, verify_key_env="OTHER_KEY")
    with pytest.raises(ArtifactError, match="UNSET_KEY is not set"):
        read_manifest(signed, verify_key_env="UNSET_KEY")
    with pytest.raises(ArtifactError, match="at least 32"):
        save_bundle(models["linear"], tmp_path / "short.srb", sign_key_env="SHORT_KEY")
    members = _members(signed)
    del members["signature.json"]
    with pytest.raises(ArtifactError, match="not signed"):
        read_manifest(_zip(members, tmp_path / "stripped.srb"), verify_key_env=KEY_ENV)


def test_signed_bundle_loads_and_scores_identically(
    models: dict[str, Any], cohort: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    signed = save_bundle(models["xgboost"], tmp_path / "signed.srb", sign_key_env=KEY_ENV)
    loaded = load_bundle(signed, verify_key_env=KEY_ENV)
    pd.testing.assert_frame_equal(_risks(loaded, cohort), _risks(models["xgboost"], cohort))
    assert load_bundle(signed).backend_ == "xgboost"  # a signature is checked when asked for


# -- the command line: --sha256 and --verify-key-env ---------------------------------------
def test_score_and_serve_take_a_trusted_sha256_and_a_signature_key(
    models: dict[str, Any],
    bundles: dict[str, Path],
    cohort: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from spinerisk.cli import app

    runner = CliRunner()
    records = tmp_path / "records.csv"
    cohort.head(30).to_csv(records, index=False)
    bundle = bundles["linear"]
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()

    def score(*extra: str) -> Any:
        out = tmp_path / "scores.csv"
        out.unlink(missing_ok=True)
        args = [
            "score",
            "--model",
            str(bundle),
            "--input",
            str(records),
            "--output",
            str(out),
            "--no-progress",
            *extra,
        ]
        return runner.invoke(app, args), out

    result, out = score("--sha256", digest)
    assert result.exit_code == 0, result.output
    result, out = score("--sha256", "0" * 64)
    assert result.exit_code == 2 and "sha256 differs from the expected" in result.output
    assert not out.exists()
    result, out = score("--sha256", "xyz")
    assert result.exit_code == 2 and "64 hexadecimal" in result.output

    monkeypatch.setenv(KEY_ENV, KEY)
    result, _ = score("--verify-key-env", KEY_ENV)
    assert result.exit_code == 2 and "not signed" in result.output
    bundle = save_bundle(models["linear"], tmp_path / "signed.srb", sign_key_env=KEY_ENV)
    result, out = score("--verify-key-env", KEY_ENV)
    assert result.exit_code == 0, result.output
    assert out.exists()

    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    result = runner.invoke(app, ["serve", "--model", str(bundle), "--sha256", "0" * 64])
    assert result.exit_code == 2 and "sha256 differs" in result.output
    result = runner.invoke(
        app, ["serve", "--model", str(bundles["linear"]), "--verify-key-env", KEY_ENV]
    )
    assert result.exit_code == 2 and "not signed" in result.output


def test_serve_workers_check_the_bundle_again(
    bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    from spinerisk.cli import _serve

    bundle = bundles["linear"]
    monkeypatch.setenv(_serve._ENV["model"], str(bundle))
    monkeypatch.setenv(_serve._ENV["max_records"], "10")
    monkeypatch.setenv(_serve._ENV["max_body_bytes"], "10000")
    monkeypatch.setenv(_serve._ENV["sha256"], "0" * 64)
    with pytest.raises(ArtifactError, match="sha256 differs"):
        _serve.app_from_environment()
    monkeypatch.setenv(_serve._ENV["sha256"], hashlib.sha256(bundle.read_bytes()).hexdigest())
    assert _serve.app_from_environment() is not None


# -- item 9: spoofed skops nodes --------------------------------------------------------
def _relabel_nodes(
    skops_bytes: bytes, cls: str, content: dict[str, Any], which: Callable[[int], bool]
) -> bytes:
    """Replace the state of the ``which``-th nodes of class ``cls`` inside a skops file
    with ``content`` (an untrusted object's state relabelled as a trusted class).

    skops numbers its nodes by ``id()`` of the saved objects and loads two nodes with one
    number as one object; ``content`` comes from another save, so each copy gets numbers
    the file does not use, or a chance collision would make the load fail elsewhere."""
    with zipfile.ZipFile(io.BytesIO(skops_bytes)) as inner:
        files = {n: inner.read(n) for n in inner.namelist()}
    schema = json.loads(files["schema.json"])
    seen = [0]
    free = itertools.count(max(_ids(schema), default=0) + 1)

    def renumbered(node: Any, new: dict[int, int]) -> Any:
        if isinstance(node, dict):
            out = {k: renumbered(v, new) for k, v in node.items()}
            if "__id__" in node:
                out["__id__"] = new.setdefault(node["__id__"], next(free))
            return out
        return [renumbered(v, new) for v in node] if isinstance(node, list) else node

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("__class__") == cls and "content" in node:
                if which(seen[0]):
                    node["content"] = renumbered(content, {})
                seen[0] += 1
            for value in list(node.values()):
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    assert seen[0], f"no {cls} node"
    files["schema.json"] = json.dumps(schema).encode()
    return _zip_bytes(files)


def _ids(node: Any) -> list[int]:
    """Every skops node number (``__id__``) in a schema."""
    if isinstance(node, dict):
        own = [node["__id__"]] if isinstance(node.get("__id__"), int) else []
        return own + [i for v in node.values() for i in _ids(v)]
    return [i for v in node for i in _ids(v)] if isinstance(node, list) else []


def _state_of(obj: Any) -> dict[str, Any]:
    """The skops node content of an object's state."""
    with zipfile.ZipFile(io.BytesIO(sio.dumps(obj))) as inner:
        return json.loads(inner.read("schema.json"))["content"]


class Untrusted:
    """Stands for an object an attacker would like to smuggle in."""

    def __init__(self) -> None:
        self.payload = "anything"
        self.classes_ = [0, 1]


SPOOFS = {
    "every fitted EarlyStoppingClassifier": ("xgboost", "EarlyStoppingClassifier", lambda i: i > 0),
    "one fold's EarlyStoppingClassifier": ("xgboost", "EarlyStoppingClassifier", lambda i: i == 2),
    "every XGBClassifier": ("xgboost", "XGBClassifier", lambda i: True),
    "the logistic model": ("linear", "LogisticRegressionCV", lambda i: i == 0),
    "the clinical features": ("linear", "ClinicalFeatures", lambda i: i == 0),
    "one cause's Cox model": ("competing", "CoxPHSurvival", lambda i: i == 2),
}


@pytest.mark.parametrize("name", list(SPOOFS))
def test_a_spoofed_skops_node_is_refused_at_load(
    bundles: dict[str, Path],
    models: dict[str, Any],
    cohort: pd.DataFrame,
    tmp_path: Path,
    name: str,
) -> None:
    """An untrusted object's state relabelled as a trusted class, hashes recomputed: the
    load is refused (not a model that fails at the first score)."""
    bundle, cls, which = SPOOFS[name]
    members = _members(bundles[bundle])
    members["estimator.skops"] = _relabel_nodes(
        members["estimator.skops"], cls, _state_of(Untrusted()), which
    )
    _rehash(members)
    path = _zip(members, tmp_path / "spoof.srb")
    with pytest.raises(ArtifactError, match="refusing|nothing uses|unknown or repeated"):
        load_bundle(path)


def test_a_part_of_another_kind_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The competing model's estimator put in a binary bundle (hashes recomputed)."""
    members = _members(bundles["linear"])
    members["estimator.skops"] = _members(bundles["competing"])["estimator.skops"]
    _rehash(members)
    with pytest.raises(ArtifactError, match="pipeline|not what it|unknown or repeated"):
        load_bundle(_zip(members, tmp_path / "swap.srb"))
    # a binary model of another backend, with its own (consistent) features
    members = _members(bundles["linear"])
    members["estimator.skops"] = _members(bundles["xgboost"])["estimator.skops"]
    _rehash(members)
    with pytest.raises(ArtifactError, match="backend 'linear' fits"):
        load_bundle(_zip(members, tmp_path / "swap.srb"))
