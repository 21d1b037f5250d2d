"""The event-stream decoder against botocore's reference decoder and the recorded Bedrock streams."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from crossroads.codecs.eventstream import EventStreamDecoder, EventStreamError, encode_frame
from tests.support.upstream import fixture_bytes

STREAMS = [
    "bedrock/converse-stream.text.eventstream.bin",
    "bedrock/converse-stream.tool-use.eventstream.bin",
    "bedrock/converse-stream.exception.eventstream.bin",
]


def ours(pieces: list[bytes]) -> list[tuple[Any, bytes]]:
    decoder = EventStreamDecoder()
    return [(f.headers, f.payload) for piece in pieces for f in decoder.feed(piece)]


def reference(raw: bytes) -> list[tuple[Any, bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(m.headers, m.payload) for m in buffer]


@pytest.mark.parametrize("name", STREAMS)
def test_same_frames_as_botocore_however_split(name: str) -> None:
    raw = fixture_bytes(name)
    expected = reference(raw)
    assert ours([raw]) == expected
    for cut in range(1, len(raw), 37):
        assert ours([raw[:cut], raw[cut:]]) == expected
    assert ours([raw[i : i + 1] for i in range(len(raw))]) == expected


def test_matches_the_decoded_fixture() -> None:
    decoded = [
        json.loads(line) for line in fixture_bytes("bedrock/converse-stream.text.decoded.jsonl").splitlines()
    ]
    frames = ours([fixture_bytes("bedrock/converse-stream.text.eventstream.bin")])
    assert [(h, json.loads(p)) for h, p in frames] == [(d["headers"], d["payload"]) for d in decoded]


def test_checksums_are_checked() -> None:
    raw = bytearray(encode_frame([(":event-type", "x")], b'{"a":1}'))
    raw[-6] ^= 0xFF  # a payload byte
    with pytest.raises(EventStreamError, match="message checksum"):
        EventStreamDecoder().feed(bytes(raw))
    raw = bytearray(encode_frame([(":event-type", "x")], b"{}"))
    raw[2] ^= 0x01  # the length in the prelude
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(raw))


def test_every_header_type() -> None:
    headers = (
        b"\x01a\x00"
        + b"\x01b\x01"
        + b"\x01c\x02\xff"
        + b"\x01d\x03\x00\x10"
        + b"\x01e\x04\x00\x00\x00\x20"
        + b"\x01f\x05"
        + struct.pack(">q", -5)
        + b"\x01g\x06\x00\x02\x00\x01"
        + b"\x01h\x08"
        + struct.pack(">q", 1000)
        + b"\x01i\x09"
        + bytes(range(16))
    )
    prelude = struct.pack(">II", 16 + len(headers), len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers
    raw = message + struct.pack(">I", zlib.crc32(message))
    assert ours([raw]) == reference(raw)


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=10), st.binary(max_size=200)), min_size=1, max_size=5),
    st.integers(1, 50),
)
def test_encode_decode_round_trip(events: list[tuple[str, bytes]], step: int) -> None:
    raw = b"".join(encode_frame([(":event-type", name)], payload) for name, payload in events)
    frames = ours([raw[i : i + step] for i in range(0, len(raw), step)])
    assert [(h[":event-type"], p) for h, p in frames] == events
