"""/v1/messages for every provider: the bridge that serves Anthropic-format clients from a
provider that speaks OpenAI's chat format, and the OpenAI -> Anthropic stream translator.

The bridge wraps any adapter with chat support: the request is converted to chat, the
inner adapter builds and parses it as usual, and the answer (or the stream the inner
translator produces) is converted back to Anthropic's shapes, `event:` lines included
(the anthropic SDK drops events without them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from crossroads.codecs.sse import SSEDecoder, frame
from crossroads.errors import UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.anthropic.stream import anthropic_error_event
from crossroads.providers.base import (
    CHAT,
    MESSAGES,
    Adapter,
    Call,
    LocalResponder,
    Reply,
    StreamInterrupted,
    StreamTranslator,
    Target,
)
from crossroads.providers.messages.convert import (
    anthropic_usage,
    chat_to_message,
    messages_to_chat,
    stop_reason,
)
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]
_encode = msgspec.json.encode


class MessagesBridge:
    def __init__(self, inner: Adapter) -> None:
        self.inner = inner
        self.name = inner.name
        self.endpoints = frozenset({MESSAGES})

    @property
    def responder(self) -> LocalResponder | None:
        return self.inner.responder

    def _chat_call(self, call: Call) -> Call:
        if call.endpoint != MESSAGES:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by {self.name}")
        assert call.json is not None
        body = messages_to_chat(call.json)
        return msgspec.structs.replace(
            call,
            endpoint=CHAT,
            path="/chat/completions",
            json=body,
            body=_encode(body),
            stream=bool(body.get("stream")),
        )

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        return self.inner.build(self._chat_call(call), target)

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        reply = self.inner.parse(self._chat_call(call), target, status, headers, body)
        try:
            chat = msgspec.json.decode(reply.body)
        except msgspec.DecodeError:
            raise UpstreamUnavailable(
                f"invalid response received from {self.name}", provider=self.name
            ) from None
        return Reply(status=reply.status, body=_encode(chat_to_message(chat)))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return self.inner.error(target, status, headers, body)

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        return Chain(self.inner.translator(self._chat_call(call), target), OpenAIToAnthropic())


class Chain:
    """Two translators in a row: `first`'s output is `second`'s input."""

    def __init__(self, first: StreamTranslator, second: StreamTranslator) -> None:
        self._first = first
        self._second = second

    def feed(self, data: bytes) -> bytes:
        try:
            middle = self._first.feed(data)
        except StreamInterrupted as exc:
            exc.partial = self._second.feed(exc.partial)
            raise
        return self._second.feed(middle)

    def close(self) -> bytes:
        try:
            middle = self._first.close()
        except StreamInterrupted as exc:
            exc.partial = self._second.feed(exc.partial)
            raise
        return self._second.feed(middle) + self._second.close()

    def error_event(self, error: UpstreamError) -> bytes:
        return self._second.error_event(error)


class OpenAIToAnthropic:
    """OpenAI chat chunks (as framed SSE) -> Anthropic Messages stream events."""

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._started = False
        self._block: str | None = None  # "text" or "tool_use": the open content block
        self._index = -1
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool index -> content block index
        self._stop: str | None = None
        self._usage: JSON = {}
        self._done = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(data):
            if event.comment or not event.data:
                continue
            if event.data == b"[DONE]":
                self._done = True
                continue
            try:
                chunk = msgspec.json.decode(event.data)
            except msgspec.DecodeError:
                continue
            if isinstance(chunk, dict):
                out += self._chunk(chunk)
        return b"".join(out)

    def close(self) -> bytes:
        out = [self.feed(b"")]
        if not self._started:
            out += self._start({})
        out += self._close_block()
        usage = anthropic_usage(self._usage) if self._usage else {"output_tokens": 0}
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason(self._stop), "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error_event(self, error: UpstreamError) -> bytes:
        return anthropic_error_event(error)

    def _start(self, chunk: JSON) -> list[bytes]:
        self._started = True
        message = {
            "id": chunk.get("id") or "msg_crossroads",
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model", ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [_event("message_start", {"type": "message_start", "message": message})]

    def _chunk(self, chunk: JSON) -> list[bytes]:
        out: list[bytes] = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self._block != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(
                    _event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self._index,
                            "delta": {"type": "text_delta", "text": text},
                        },
                    )
                )
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop = choice["finish_reason"]
                out += self._close_block()
        return out

    def _tool_delta(self, call: JSON) -> list[bytes]:
        out: list[bytes] = []
        ordinal = call.get("index", 0)
        function = call.get("function") or {}
        if ordinal not in self._tool_blocks:
            out += self._open(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{ordinal}",
                    "name": function.get("name", ""),
                    "input": {},
                },
            )
            self._tool_blocks[ordinal] = self._index
        arguments = function.get("arguments")
        if arguments:
            out.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._tool_blocks[ordinal],
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )
        return out

    def _open(self, kind: str, block: JSON) -> list[bytes]:
        out = self._close_block()
        self._index += 1
        self._block = kind
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )
        return out

    def _close_block(self) -> list[bytes]:
        if self._block is None:
            return []
        self._block = None
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self._index})]


def _event(name: str, data: JSON) -> bytes:
    return frame(_encode(data), name.encode())
