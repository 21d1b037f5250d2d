"""Streams into the cache and back out: a recorded OpenAI stream assembles into the answer
it carried, and a stored answer replays as a stream the openai SDK parses strictly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crossroads.cache.streams import PIECE, assemble, replay
from tests.support.upstream import fixture_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def chunks(stream: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: {")]


def test_a_recorded_stream_with_tool_calls_assembles_into_a_strict_chat_completion() -> None:
    answer = assemble(fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt"))
    assert answer is not None
    completion = ChatCompletion.model_validate(answer)
    calls = completion.choices[0].message.tool_calls or []
    assert calls and all(json.loads(c.function.arguments) is not None for c in calls)  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_replay_then_assemble_gives_the_answer_back() -> None:
    for name in ("openai/chat-completion.text.json", "openai/chat-completion.tool-calls.json"):
        answer = json.loads(fixture_bytes(name))
        stream = replay(answer, include_usage=True)
        parsed = [ChatCompletionChunk.model_validate(c) for c in chunks(stream)]
        assert parsed[-1].usage is not None and not parsed[-1].choices
        again = assemble(stream)
        assert again is not None
        assert again["choices"][0]["message"]["content"] == answer["choices"][0]["message"]["content"]
        assert again["choices"][0]["message"].get("tool_calls") == answer["choices"][0]["message"].get(
            "tool_calls"
        )
        assert again["usage"] == answer["usage"]


def test_long_text_is_replayed_in_pieces_and_usage_only_when_asked() -> None:
    answer = json.loads(fixture_bytes("openai/chat-completion.text.json"))
    answer["choices"][0]["message"]["content"] = "x" * (PIECE * 2 + 7)
    stream = replay(answer, include_usage=False)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks(stream) if c["choices"]]
    assert [len(d) for d in deltas if d] == [PIECE, PIECE, 7]
    assert all("usage" not in c for c in chunks(stream))
    assert stream.endswith(b"data: [DONE]\n\n")


def test_a_cut_off_or_failed_stream_is_not_an_answer() -> None:
    full = fixture_bytes("openai/chat-completion.stream.text-after-tool.sse.txt")
    assert assemble(full) is not None
    assert assemble(full.replace(b"data: [DONE]", b"")) is None  # no end
    cut = full[: len(full) // 2].rsplit(b"\n\n", 1)[0] + b"\n\ndata: [DONE]\n\n"
    assert assemble(cut) is None  # no finish reason
    error = b'data: {"error": {"message": "overloaded"}}\n\ndata: [DONE]\n\n'
    assert assemble(full.replace(b"data: [DONE]\n\n", b"") + error) is None


def test_legacy_completions_round_trip() -> None:
    answer = json.loads(fixture_bytes("openai/completion.legacy.json"))
    again = assemble(replay(answer, include_usage=True))
    assert again is not None and again["object"] == "text_completion"
    assert again["choices"][0]["text"] == answer["choices"][0]["text"]
