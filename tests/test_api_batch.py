"""Batches on the HTTP API's request path: bodies read as before, faster.

``loads_request`` (orjson, with ``json.loads`` for whatever orjson reads differently or
refuses) must give ``json.loads``'s value, or its very error, for every body.
"""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

pytest.importorskip("fastapi")

from spinerisk.api._app import loads_request  # noqa: E402

BODIES = [
    b'{"records": [{"patient_id": "P-1", "age_years": 81.5, "hu_l1": null}]}',
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
    b"-0",
    b"-0.0",
    b"1E2",
    b"[1e-7, 4.9e-324, 2.2250738585072011e-308, 1.7976931348623157e308]",
    b"0.1000000000000000055511151231257827021181583404541015625",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551615",
    # beyond 64 bits: orjson would give a float, json an int
    b"18446744073709551616",
    b"-9223372036854775809",
    b'{"age_years": 123456789012345678901234567890}',
    b'"digits in text 1234567890123456789012"',
    # what orjson refuses and json reads
    b"1e400",
    b"-1e400",
    b"1.7976931348623159e308",
    b"NaN",
    b"[Infinity, -Infinity]",
    b'"\\ud800"',
    b'"\\ud83d\\ude00"',
    b'\xef\xbb\xbf{"a": 1}',
    '"é \u2028"'.encode(),
    b'"\\u0000"',
    b' {"a" : [1 , 2 ] } ',
    # what both refuse: json's own error
    b'"a\x01"',
    b'{"a": 1}x',
    b"",
    b'"\xff"',
    b"{",
    b"[" * 3000 + b"]" * 3000,
]


def _outcome(fn, body: bytes):
    try:
        return "value", repr(fn(body)), type(fn(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return "error", type(exc).__name__, str(exc)


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_bodies_read_as_json_reads_them(body):
    assert _outcome(loads_request, body) == _outcome(json.loads, body)


def test_numbers_read_as_json_reads_them():
    rng = random.Random(0)
    texts = []
    for _ in range(20_000):
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            texts += [repr(x), f"{x:.25g}", f"{x:.12e}"]
    texts += [str(rng.randrange(-(2**70), 2**70)) for _ in range(2_000)]
    body = ("[" + ",".join(texts) + "]").encode()
    got, expected = loads_request(body), json.loads(body)
    assert [(type(v), repr(v)) for v in got] == [(type(v), repr(v)) for v in expected]
    for text in texts[:3000]:  # one by one too (the long-integer check is per body)
        assert repr(loads_request(text.encode())) == repr(json.loads(text))
