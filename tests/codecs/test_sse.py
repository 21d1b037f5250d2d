"""The SSE decoder against every framing providers use, split at every byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crossroads.codecs.sse import SSEDecoder, frame
from tests.support.upstream import fixture_bytes


def decode(chunks: list[bytes]) -> list[tuple[bytes | None, bytes, bool]]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()
    return [(e.name, e.data, e.comment) for e in events]


def test_data_lines_names_and_comments() -> None:
    raw = (
        b': keep-alive\n\nevent: message_start\ndata: {"a":1}\n\ndata: line1\ndata: line2\n\ndata:nospace\n\n'
    )
    assert decode([raw]) == [
        (None, b"", True),
        (b"message_start", b'{"a":1}', False),
        (None, b"line1\nline2", False),
        (None, b"nospace", False),
    ]


def test_crlf_and_cr_line_ends() -> None:
    assert decode([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [
        (None, b"a", False),
        (None, b"b", False),
        (None, b"c", False),
    ]


def test_crlf_split_between_reads() -> None:
    assert decode([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [(None, b"a", False), (None, b"b", False)]


def test_unterminated_last_event_is_flushed_on_close() -> None:
    assert decode([b"data: a\n\nevent: message_stop\ndata: {}"]) == [
        (None, b"a", False),
        (b"message_stop", b"{}", False),
    ]


def test_every_split_of_real_streams_decodes_the_same() -> None:
    for name in (
        "openai/chat-completion.stream.tool-calls.sse.txt",
        "openai-compatible/openrouter.stream.comments-and-error.sse.txt",
    ):
        raw = fixture_bytes(name)
        whole = decode([raw])
        assert len(whole) > 5
        for cut in range(0, len(raw), 7):
            assert decode([raw[:cut], raw[cut:]]) == whole


@given(
    st.lists(
        st.binary(min_size=0, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=8
    ),
    st.data(),
)
def test_frame_round_trips(payloads: list[bytes], data: st.DataObject) -> None:
    payloads = payloads or [b"x"]
    raw = b"".join(frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert [d for _, d, _ in decode(pieces)] == payloads


def test_multiline_data_is_framed_as_several_lines() -> None:
    assert frame(b"a\nb") == b"data: a\ndata: b\n\n"
    assert frame(b"x", b"ping") == b"event: ping\ndata: x\n\n"
