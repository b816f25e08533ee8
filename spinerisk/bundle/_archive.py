"""Reading a bundle's zip archive in bounded memory, and its trust anchors.

A bundle comes from storage spinerisk does not control, so nothing in the archive is
believed before it is counted:

- the file is read once (at most :data:`MAX_FILE_BYTES`), so every later check sees
  the same bytes;
- the end record is read before the zip is opened: no zip64, one disk, at most
  :data:`MAX_MEMBERS` members and a central directory of at most
  :data:`MAX_DIRECTORY_BYTES`;
- every member is first *streamed* (at most :data:`CHUNK_BYTES` at a time, nothing
  kept) to count its real uncompressed bytes against :data:`MAX_MEMBER_BYTES` and the
  running total against :data:`MAX_TOTAL_BYTES`, whatever its header says; a header
  that differs from the real size is refused; only stored and deflated members,
  never encrypted ones;
- only then are the members that are needed read into memory.

Trust anchors: the sha256 of the whole file (from a trusted register) and an
HMAC-SHA256 signature of the manifest with a key from an environment variable.
:func:`require_bundle` makes them required for every bundle read inside a block (the
command line uses it, so the check covers the very bytes that are loaded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from spinerisk.bundle import _format as fmt
from spinerisk.exceptions import ArtifactError

#: Name of the signature member (outside the manifest, which it signs).
SIGNATURE = "signature.json"
SIGNATURE_ALGORITHM = "HMAC-SHA256"
#: Shortest HMAC key accepted, in bytes.
MIN_KEY_BYTES = 32
_MAX_SIGNATURE_BYTES = 4096
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_NOT_A_BUNDLE = "is not a spinerisk bundle (not a zip file; truncated or a different format)."


# -- trust anchors ----------------------------------------------------------------------
@dataclass(frozen=True)
class Trust:
    """What a bundle must prove: the file's sha256 (any of them: all must match) and a
    valid signature under the key in each named environment variable."""

    sha256: tuple[str, ...] = ()
    key_envs: tuple[str, ...] = ()

    def merged(self, sha256: str | None, key_env: str | None) -> Trust:
        return Trust(
            self.sha256 + (() if sha256 is None else (check_sha256(sha256),)),
            self.key_envs + (() if key_env is None else (check_env_name(key_env),)),
        )


_REQUIRED: ContextVar[Trust | None] = ContextVar("spinerisk_bundle_required", default=None)


@contextmanager
def require_bundle(
    *, sha256: str | None = None, verify_key_env: str | None = None
) -> Iterator[None]:
    """Require a trusted sha256 and/or a valid signature of every bundle read inside the
    block (by :func:`~spinerisk.bundle.load_bundle`, :func:`~spinerisk.bundle.read_manifest`
    and everything built on them: batch scoring, the HTTP API).

    Parameters
    ----------
    sha256 : str or None, default=None
        Expected sha256 (hex) of the bundle file, from a trusted register.
    verify_key_env : str or None, default=None
        Name of the environment variable holding the HMAC key the bundle was signed
        with (:func:`~spinerisk.bundle.save_bundle` with ``sign_key_env``).

    Examples
    --------
    >>> from spinerisk.bundle import require_bundle
    >>> with require_bundle(sha256="0" * 64):
    ...     pass  # every bundle read here must have this sha256
    >>> with require_bundle(sha256="not hex"):
    ...     pass
    Traceback (most recent call last):
    ...
    spinerisk.exceptions.ArtifactError: sha256 must be 64 hexadecimal characters; got 'not hex'.
    """
    token = _REQUIRED.set(required(sha256, verify_key_env))
    try:
        yield
    finally:
        _REQUIRED.reset(token)


def required(sha256: str | None, key_env: str | None) -> Trust:
    """The requirements in force (:func:`require_bundle`) plus those of one call."""
    return (_REQUIRED.get() or Trust()).merged(sha256, key_env)


def check_sha256(value: object) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value.strip()):
        raise ArtifactError(f"sha256 must be 64 hexadecimal characters; got {value!r}.")
    return value.strip().lower()


def check_env_name(value: object) -> str:
    if not isinstance(value, str) or not value or "=" in value or "\x00" in value:
        raise ArtifactError(f"The key's environment variable name is invalid: {value!r}.")
    return value


def key_from_env(name: str, purpose: str) -> bytes:
    """The HMAC key held by environment variable ``name`` (never shown in messages)."""
    value = os.environ.get(check_env_name(name), "")
    if not value:
        raise ArtifactError(
            f"Cannot {purpose}: the environment variable {name} is not set or is empty."
        )
    key = value.encode("utf-8", "surrogateescape")
    if len(key) < MIN_KEY_BYTES:
        raise ArtifactError(
            f"Cannot {purpose}: the key in {name} has {len(key)} bytes; an HMAC key needs "
            f"at least {MIN_KEY_BYTES} (for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`)."
        )
    return key


def signature(manifest: bytes, key: bytes) -> bytes:
    """The signature member: HMAC-SHA256 of the manifest's exact bytes."""
    mac = hmac.new(key, manifest, hashlib.sha256).hexdigest()
    doc = {"algorithm": SIGNATURE_ALGORITHM, "signed": fmt._MANIFEST, "mac": mac}
    return json.dumps(doc, indent=1).encode("utf-8")


def verify_signature(sig: bytes | None, manifest: bytes, key: bytes, label: str, env: str) -> None:
    if sig is None:
        raise ArtifactError(
            f"{label} is not signed; a signature made with the key in {env} is required."
        )
    doc = fmt._loads_json(sig, SIGNATURE)
    if (
        not isinstance(doc, dict)
        or set(doc) != {"algorithm", "signed", "mac"}
        or doc["algorithm"] != SIGNATURE_ALGORITHM
        or doc["signed"] != fmt._MANIFEST
        or not isinstance(doc["mac"], str)
    ):
        raise ArtifactError(f"{label}: the signature member is malformed.")
    expected = hmac.new(key, manifest, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, doc["mac"]):
        raise ArtifactError(
            f"{label}: the signature does not match the key in {env}: the bundle was "
            "changed after it was signed, or signed with another key."
        )


# -- the archive --------------------------------------------------------------------------
def read_file(path: Path) -> bytes:
    """The bundle file's bytes, read once; a regular file of at most MAX_FILE_BYTES."""
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(f"Cannot read bundle {path}: not a regular file.")
            if info.st_size > fmt.MAX_FILE_BYTES:
                raise ArtifactError(_too_large(str(path), info.st_size, fmt.MAX_FILE_BYTES))
            raw = fh.read(info.st_size + 1)  # a buffer of the file's size, not the limit's
    except OSError as exc:
        raise ArtifactError(f"Cannot read bundle {path}: {exc}") from exc
    if len(raw) != info.st_size:
        raise ArtifactError(f"Cannot read bundle {path}: it changed while being read.")
    return raw


def _too_large(label: str, size: int, limit: int) -> str:
    return f"{label} has {size} bytes; a bundle file has at most {limit}."


def _end_record(raw: bytes, label: str, max_members: int) -> None:
    """Check the zip's end record the way :mod:`zipfile` finds it, before zipfile reads
    the central directory: one disk, no zip64, few members, a small directory."""
    record = None
    if len(raw) >= _EOCD_SIZE and raw[-_EOCD_SIZE:][:4] == _EOCD and raw[-2:] == b"\0\0":
        start = len(raw) - _EOCD_SIZE
    else:
        window = max(len(raw) - (1 << 16) - _EOCD_SIZE, 0)
        found = raw.rfind(_EOCD, window)
        start = found if found >= 0 else -1
    if start >= 0:
        record = raw[start : start + _EOCD_SIZE]
    if record is None or len(record) != _EOCD_SIZE:
        raise ArtifactError(f"{label} {_NOT_A_BUNDLE}")
    _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", record)
    zip64 = start >= 20 and raw[start - 20 : start - 16] == _ZIP64_LOCATOR
    if zip64 or 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise ArtifactError(f"{label}: a zip64 archive is not a spinerisk bundle.")
    if disk or cd_disk or n_disk != n_total:
        raise ArtifactError(f"{label}: a multi-part zip archive is not a spinerisk bundle.")
    if n_total > max_members:
        raise ArtifactError(
            f"{label}: {n_total} members; a bundle has at most {max_members}. Refused "
            "before reading them."
        )
    if cd_size > fmt.MAX_DIRECTORY_BYTES:
        raise ArtifactError(
            f"{label}: a zip directory of {cd_size} bytes; a bundle's has at most "
            f"{fmt.MAX_DIRECTORY_BYTES}."
        )


class Archive:
    """A bundle's zip archive, opened on bytes held in memory, with every member's real
    size and sha256 counted by streaming before any member is kept."""

    def __init__(
        self,
        raw: bytes,
        label: str,
        *,
        max_members: int = fmt.MAX_MEMBERS,
        max_member: int = fmt.MAX_MEMBER_BYTES,
        max_total: int = fmt.MAX_TOTAL_BYTES,
        limits: dict[str, int] | None = None,
    ) -> None:
        import io

        self.label = label
        _end_record(raw, label, max_members)
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(raw))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise ArtifactError(f"{label} {_NOT_A_BUNDLE}") from exc
        names = [i.filename for i in infos]
        if len(infos) > max_members:
            raise ArtifactError(f"{label}: {len(infos)} members; at most {max_members}.")
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ArtifactError(f"{label}: member(s) {twice[:5]} appear more than once.")
        declared = 0
        for info in infos:
            limit = (limits or {}).get(info.filename, max_member)
            if info.flag_bits & 0x1:
                raise ArtifactError(f"{label}: member {info.filename!r} is encrypted.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArtifactError(
                    f"{label}: member {info.filename!r} uses compression method "
                    f"{info.compress_type}; bundles are stored or deflated."
                )
            if info.file_size > limit:
                raise ArtifactError(_member_too_large(label, info.filename, info.file_size, limit))
            declared += info.file_size
        if declared > max_total:
            raise ArtifactError(_total_too_large(label, declared, max_total))
        self.infos = {i.filename: i for i in infos}
        # stream every member once, keeping nothing: real sizes and hashes
        self.sha256: dict[str, str] = {}
        total = 0
        for info in infos:
            limit = (limits or {}).get(info.filename, max_member)
            digest, size = self._stream(info, limit, max_total - total, keep=None)
            total += size
            self.sha256[info.filename] = digest

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def read(self, name: str) -> bytes:
        """A member's bytes (already counted), checked to be the bytes that were hashed."""
        info = self.infos[name]
        chunks: list[bytes] = []
        digest, _ = self._stream(info, info.file_size, info.file_size, keep=chunks)
        if digest != self.sha256[name]:  # pragma: no cover - the bytes are immutable
            raise ArtifactError(f"{self.label}: member {name!r} changed while being read.")
        return b"".join(chunks)

    def close(self) -> None:
        self._zip.close()

    def _stream(
        self, info: zipfile.ZipInfo, limit: int, room: int, keep: list[bytes] | None
    ) -> tuple[str, int]:
        name = info.filename
        digest = hashlib.sha256()
        size = 0
        try:
            with self._zip.open(info) as fh:
                while chunk := fh.read(fmt.CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise ArtifactError(_member_too_large(self.label, name, size, limit, True))
                    if size > room:
                        raise ArtifactError(
                            f"{self.label}: the members hold more than "
                            f"{fmt.MAX_TOTAL_BYTES} bytes in all (refused while reading "
                            f"{name!r})."
                        )
                    digest.update(chunk)
                    if keep is not None:
                        keep.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactError(f"{self.label}: the zip archive is damaged: {exc}") from exc
        if size != info.file_size:
            raise ArtifactError(
                f"{self.label}: member {name!r} holds {size} bytes but its zip header says "
                f"{info.file_size}; the archive was tampered with or damaged."
            )
        return digest.hexdigest(), size


def _member_too_large(label: str, name: str, size: int, limit: int, counted: bool = False) -> str:
    how = f"more than {limit}" if counted else str(size)
    return (
        f"{label}: member {name!r} is larger than a bundle member may be ({how} bytes "
        f"uncompressed; the limit is {limit}). Refused before keeping it in memory."
    )


def _total_too_large(label: str, size: int, limit: int) -> str:
    return (
        f"{label}: the members hold {size} bytes uncompressed in all; a bundle holds at "
        f"most {limit}."
    )


def check_skops_archive(data: bytes, member: str) -> None:
    """Bound a skops file's own zip (files, real sizes, nesting of its schema.json)
    before skops reads it: skops would decompress and parse it without limits."""
    label = f"member {member!r}"
    try:
        archive = Archive(
            data,
            label,
            max_members=fmt.MAX_SKOPS_FILES,
            max_member=fmt.MAX_MEMBER_BYTES,
            max_total=fmt.MAX_MEMBER_BYTES,
            limits={"schema.json": fmt.MAX_MANIFEST_BYTES},
        )
    except ArtifactError as exc:
        raise ArtifactError(f"{label} is not a valid skops file: {exc}") from exc
    try:
        if "schema.json" not in archive.infos:
            raise ArtifactError(f"{label} is not a valid skops file (no schema.json).")
        schema = archive.read("schema.json")
        depth = fmt.json_depth(schema)
        if depth > fmt.MAX_SKOPS_JSON_DEPTH:
            raise ArtifactError(
                f"{label} nests {depth} levels deep; a bundle's skops parts nest at most "
                f"{fmt.MAX_SKOPS_JSON_DEPTH}."
            )
    finally:
        archive.close()


def check_trusted(data: bytes, member: str, *, action: str) -> None:
    """Refuse a skops file that would create a type outside :data:`TRUSTED_TYPES`, after
    bounding its inner zip (files, sizes, nesting of its schema) so skops never
    decompresses or recurses without limit."""
    import skops.io as sio

    check_skops_archive(data, member)
    try:
        found = set(sio.get_untrusted_types(data=data))
    except (*fmt._SKOPS_ERRORS, RecursionError) as exc:
        raise ArtifactError(f"Member {member!r} is not a valid skops file: {exc}") from exc
    bad = sorted(found - fmt.TRUSTED_TYPES)
    if bad:
        verb = "would load" if action == "load" else "holds"
        raise ArtifactError(
            f"Member {member!r} {verb} type(s) outside spinerisk.bundle.TRUSTED_TYPES: "
            f"{', '.join(bad)}. Refusing to {action} it."
        )
