"""How many tokens an answer used, read from what the client is sent.

A complete answer carries `usage` (OpenAI's prompt/completion tokens, or Anthropic's
input/output tokens on /v1/messages). A stream carries it when the client asked
(`stream_options.include_usage`) or always (Anthropic's message_start / message_delta); when
it does not, the completion is counted as one token per content event, which is what OpenAI
streams send, and the prompt is the estimate made before the request.
"""

from __future__ import annotations

from typing import Any

import msgspec

_decode = msgspec.json.decode


def json_usage(body: bytes) -> tuple[int, int] | None:
    if b'"usage"' not in body:
        return None
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return None
    return _tokens(data.get("usage")) if isinstance(data, dict) else None


def _tokens(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if prompt is None and completion is None:
        prompt = usage.get("input_tokens")
        completion = usage.get("output_tokens")
        if isinstance(prompt, int):
            for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                value = usage.get(extra)
                if isinstance(value, int):
                    prompt += value
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    return (prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0)


class StreamMeter:
    """Watches a stream's pieces on their way to the client."""

    __slots__ = ("_completion", "_events", "_prompt")

    def __init__(self) -> None:
        self._prompt: int | None = None
        self._completion: int | None = None
        self._events = 0

    def observe(self, piece: bytes) -> None:
        self._events += piece.count(b"data:")
        if b'"usage"' in piece:
            for line in piece.split(b"\n"):
                if line.startswith(b"data:") and b'"usage"' in line:
                    self._read(line[5:])

    def _read(self, data: bytes) -> None:
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            return
        if not isinstance(event, dict):
            return
        usage = event.get("usage")
        if usage is None and isinstance(event.get("message"), dict):
            usage = event["message"].get("usage")  # Anthropic's message_start
        found = _tokens(usage)
        if found is None:
            return
        prompt, completion = found
        if prompt:
            self._prompt = max(prompt, self._prompt or 0)
        self._completion = max(completion, self._completion or 0)

    def tokens(self, prompt_estimate: int) -> tuple[int, int]:
        prompt = self._prompt if self._prompt is not None else prompt_estimate
        if self._completion is not None:
            return prompt, self._completion
        return prompt, max(0, self._events - 2)  # not the role and finish events (nor [DONE])
