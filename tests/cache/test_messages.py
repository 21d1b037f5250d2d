"""Anthropic Messages streams in and out of the cache: recorded streams rebuild the Message,
replays parse in the anthropic SDK and rebuild the same Message, broken streams are refused."""

from __future__ import annotations

import json

import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent

from crossroads.cache.messages import assemble_message, replay_message
from crossroads.codecs.sse import SSEDecoder
from tests.support.upstream import fixture_bytes

EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def test_a_recorded_tool_use_stream_rebuilds_its_message() -> None:
    message = assemble_message(fixture_bytes("anthropic/messages.stream.tool-use.sse.txt"))
    assert message is not None
    Message.model_validate(message)
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    assert message["content"][0]["text"] == "I'll check the current weather in Paris for you."
    assert message["content"][1]["input"] == {"location": "Paris"}
    assert message["usage"]["output_tokens"] > 1


@pytest.mark.parametrize("name", ["messages.text.json", "messages.tool-use.parallel.json"])
def test_a_replay_parses_in_the_sdk_and_rebuilds_the_same_message(name: str) -> None:
    original = json.loads(fixture_bytes(f"anthropic/{name}"))
    replayed = replay_message(original)
    decoder = SSEDecoder()
    events = decoder.feed(replayed) + decoder.close()
    assert all(e.name is not None for e in events)  # the SDK drops events without `event:`
    parsed = [EVENT.validate_json(e.data) for e in events]
    assert parsed[0].type == "message_start" and parsed[-1].type == "message_stop"
    assert assemble_message(replayed) == original


def test_long_text_is_replayed_in_pieces() -> None:
    original = json.loads(fixture_bytes("anthropic/messages.text.json"))
    original["content"] = [{"type": "text", "text": "x" * 1201}]
    deltas = [e for e in replay_message(original).split(b"\n\n") if b"text_delta" in e]
    assert len(deltas) == 3
    assert assemble_message(replay_message(original)) == original


def test_broken_streams_are_not_messages() -> None:
    whole = fixture_bytes("anthropic/messages.stream.text.sse.txt")
    assert assemble_message(whole) is not None
    assert assemble_message(whole.split(b"event: message_stop")[0]) is None  # cut off
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    assert assemble_message(whole.split(b"event: message_delta")[0] + error) is None
