"""Anthropic's streaming events -> OpenAI chunks, and Anthropic streams relayed as they are.

The event state machine (provider-wire-formats.md §3.3): message_start, then per content
block content_block_start / _delta / _stop, then message_delta (stop reason, cumulative
usage) and message_stop; `ping` anywhere; `error` anywhere. Content block indexes count
every block (text first), while OpenAI tool-call indexes count tool calls only, so the
translator keeps a block -> tool ordinal map. Events decode into typed structs with every
field optional, so unknown event and delta types pass harmlessly.
"""

from __future__ import annotations

from typing import Any

import msgspec

from crossroads.codecs.sse import Event, frame
from crossroads.errors import GatewayError, UpstreamError, UpstreamUnavailable
from crossroads.providers.anthropic.response import (
    ANTHROPIC_TYPES,
    ERROR_TYPES,
    error_from,
    finish_reason,
    openai_usage,
    status_of,
)
from crossroads.providers.base import StreamInterrupted
from crossroads.providers.chunks import ChunkWriter
from crossroads.providers.stream import SSETranslator


class Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None


class Block(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    text: str | None = None


class Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None


class ErrorBody(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class AnthropicEvent(msgspec.Struct):
    type: str = ""
    index: int | None = None
    delta: Delta | None = None
    content_block: Block | None = None
    message: Message | None = None
    usage: Usage | None = None
    error: ErrorBody | None = None


_decode_event = msgspec.json.Decoder(AnthropicEvent).decode


class AnthropicToOpenAI(SSETranslator):
    def __init__(self, *, created: int, include_usage: bool, strict: bool, completion: bool = False) -> None:
        super().__init__()
        self._out = ChunkWriter(created=created, include_usage=include_usage, completion=completion)
        self._strict = strict
        self._tools: dict[int, int] = {}  # content block index -> tool call ordinal
        self._usage: dict[str, int] = {}
        self._stopped = False

    def feed(self, data: bytes) -> bytes:
        return self._collect(self._decoder.feed(data))

    def close(self) -> bytes:
        out = self._collect(self._decoder.close())
        if not self._stopped:
            raise StreamInterrupted(
                UpstreamUnavailable("anthropic ended the stream before message_stop", provider="anthropic"),
                out,
            )
        return out + self.terminator

    def _collect(self, events: list[Event]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            try:
                piece = self._event(event)
            except StreamInterrupted as exc:
                exc.partial = b"".join(parts)
                raise
            if piece:
                parts.append(piece)
        return b"".join(parts)

    def _event(self, event: Event) -> bytes:
        if event.comment or not event.data or self._stopped:
            return b""
        try:
            data = _decode_event(event.data)
        except msgspec.DecodeError:
            return b""  # a malformed event is skipped, never fatal
        kind = data.type or (event.name.decode() if event.name else "")
        out = self._out
        if kind == "content_block_delta" and data.delta is not None:
            delta = data.delta
            if delta.text is not None:
                return out.text(delta.text)
            if delta.partial_json is not None:
                ordinal = self._tools.get(data.index or 0)
                return out.tool_arguments(ordinal, delta.partial_json) if ordinal is not None else b""
            if delta.thinking is not None and not self._strict:
                return out.reasoning(delta.thinking)
            return b""
        if kind == "message_start":
            message = data.message or Message()
            out.start(message.id or "", message.model or "")
            self._add_usage(message.usage)
            return out.role()
        if kind == "content_block_start" and data.content_block is not None:
            block = data.content_block
            if block.type == "tool_use":
                ordinal = len(self._tools)
                self._tools[data.index or 0] = ordinal
                return out.tool_start(ordinal, block.id or "", block.name or "")
            if block.type == "text" and block.text:
                return out.text(block.text)
            return b""
        if kind == "message_delta":
            self._add_usage(data.usage)
            reason = data.delta.stop_reason if data.delta is not None else None
            return out.finish(finish_reason(reason))
        if kind == "message_stop":
            self._stopped = True
            if not out.finished:
                return out.finish("stop") + out.usage(self._final_usage())
            return out.usage(self._final_usage())
        if kind == "error" or event.name == b"error":
            error = data.error or ErrorBody()
            raise StreamInterrupted(
                error_from(
                    {"error": {"type": error.type, "message": error.message}}, status_of(error.type), {}
                )
            )
        return b""  # ping, content_block_stop, and event types added after this was written

    def _add_usage(self, usage: Usage | None) -> None:
        if usage is None:
            return
        for field in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = getattr(usage, field)
            if value is not None:
                self._usage[field] = value  # message_delta usage is cumulative: the last value wins

    def _final_usage(self) -> dict[str, Any]:
        return openai_usage(self._usage)


class AnthropicRelay(SSETranslator):
    """An Anthropic stream to an Anthropic client (/v1/messages): events forwarded with their
    `event:` lines; an `error` event or a stream that ends before message_stop is an error."""

    terminator = b""

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__()
        self._provider = provider
        self._stopped = False

    def feed(self, data: bytes) -> bytes:
        return self._frame_named(self._decoder.feed(data))

    def close(self) -> bytes:
        out = self._frame_named(self._decoder.close())
        if not self._stopped:
            raise StreamInterrupted(
                UpstreamUnavailable(
                    f"{self._provider} ended the stream before message_stop", provider=self._provider
                ),
                out,
            )
        return out

    def error_event(self, error: UpstreamError) -> bytes:
        return anthropic_error_event(error)

    def _frame_named(self, events: list[Event]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            if event.comment or not event.data:
                continue
            name = event.name
            if name == b"error" or (name is None and b'"type":"error"' in event.data.replace(b" ", b"")):
                try:
                    data = msgspec.json.decode(event.data)
                except msgspec.DecodeError:
                    data = {"error": {"message": event.data.decode("utf-8", "replace")[:300]}}
                err = data.get("error") if isinstance(data, dict) else None
                etype = err.get("type") if isinstance(err, dict) else None
                raise StreamInterrupted(
                    error_from(data, status_of(etype), {}, self._provider), b"".join(parts)
                )
            if name is None:  # Bedrock-style payloads carry the type inside
                try:
                    name = str(msgspec.json.decode(event.data).get("type", "")).encode() or None
                except (msgspec.DecodeError, AttributeError):
                    name = None
            if name == b"message_stop":
                self._stopped = True
            parts.append(frame(event.data, name))
        return b"".join(parts)


def anthropic_error_body(error: GatewayError) -> bytes:
    """An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`."""
    return msgspec.json.encode(
        {"type": "error", "error": {"type": anthropic_type(error), "message": error.message}}
    )


def anthropic_error_event(error: GatewayError) -> bytes:
    """An Anthropic `event: error` for a failure after the stream began."""
    return frame(anthropic_error_body(error), b"error")


def anthropic_type(error: GatewayError) -> str:
    kind = error.error_type
    if kind in ANTHROPIC_TYPES:
        return kind
    return ERROR_TYPES.get(error.http_status, "api_error")
