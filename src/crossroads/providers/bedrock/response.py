"""Bedrock Converse answers, ConverseStream events and errors -> OpenAI shapes (pure).

Stop reasons per provider-wire-formats.md §8. Usage arrives only in the stream's `metadata`
event, after `messageStop`: the finish chunk is sent at messageStop and the usage chunk
when metadata comes. Exception frames inside a 200 stream become errors with the status
their exception type stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.codecs.eventstream import EventStreamDecoder, EventStreamError
from crossroads.codecs.sse import DONE, frame
from crossroads.errors import UpstreamError, UpstreamUnavailable
from crossroads.providers import chunks
from crossroads.providers.base import StreamInterrupted
from crossroads.providers.chunks import ChunkWriter

JSON = dict[str, Any]

FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Exception types (header or stream frame) -> HTTP status; botocore's service model.
STATUS: Final = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "modelerrorexception": 424,
    "modelstreamerrorexception": 424,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "servicequotaexceededexception": 400,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}
RETRYABLE: Final = frozenset(
    {
        "throttlingexception",
        "modelnotreadyexception",
        "internalserverexception",
        "serviceunavailableexception",
        "modeltimeoutexception",
    }
)


def finish_reason(stop: str | None) -> str:
    return FINISH.get(stop or "end_turn", "stop")


def openai_usage(data: Mapping[str, Any] | None) -> JSON:
    data = data or {}
    read = int(data.get("cacheReadInputTokens") or 0)
    write = int(data.get("cacheWriteInputTokens") or 0)
    return chunks.usage(
        int(data.get("inputTokens") or 0) + read + write,
        int(data.get("outputTokens") or 0),
        cached=read,
        cache_creation=write or None,
    )


def converse_to_chat(answer: JSON, *, id: str, model: str, created: int, strict: bool) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    reasoning: list[str] = []
    for block in ((answer.get("output") or {}).get("message") or {}).get("content") or ():
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(
                chunks.tool_call(use.get("toolUseId", ""), use.get("name", ""), use.get("input") or {})
            )
        elif "reasoningContent" in block:
            reasoning.append(((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text", ""))
    extra = {"reasoning_content": "".join(reasoning)} if reasoning and not strict else None
    return chunks.chat_completion(
        id=id,
        model=model,
        created=created,
        text="".join(texts),
        tool_calls=calls,
        finish_reason=finish_reason(answer.get("stopReason")),
        usage=openai_usage(answer.get("usage")),
        extra_message=extra,
    )


def error_from(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    kind = (headers.get("x-amzn-errortype") or "").split(":", 1)[0]
    try:
        data: Any = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError:
        data = {"message": body.decode("utf-8", "replace")[:300]}
    if not isinstance(data, dict):
        data = {"message": str(data)[:300]}
    kind = kind or str(data.get("__type") or data.get("code") or "").rsplit("#", 1)[-1]
    message = data.get("message") or data.get("Message") or f"HTTP {status}"
    return UpstreamError(
        f"bedrock error: {kind + ': ' if kind else ''}{message}",
        provider="bedrock",
        status=status,
        code=kind or None,
        retryable=kind.lower() in RETRYABLE or status in (429, 500, 502, 503, 504),
    )


def exception_frame(kind: str, payload: bytes) -> UpstreamError:
    try:
        data: Any = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        data = {}
    message = (data.get("message") or data.get("Message") or kind) if isinstance(data, dict) else kind
    status = STATUS.get(kind.lower(), 502)
    original = data.get("originalStatusCode") if isinstance(data, dict) else None
    if isinstance(original, int) and 400 <= original <= 599:
        status = original
    return UpstreamError(
        f"bedrock error: {kind}: {message}",
        provider="bedrock",
        status=status,
        code=kind,
        retryable=kind.lower() in RETRYABLE,
    )


class _ToolUse(msgspec.Struct):
    toolUseId: str | None = None
    name: str | None = None
    input: str | None = None


class _Reasoning(msgspec.Struct):
    text: str | None = None


class _Delta(msgspec.Struct):
    text: str | None = None
    toolUse: _ToolUse | None = None
    reasoningContent: _Reasoning | None = None


class _Start(msgspec.Struct):
    toolUse: _ToolUse | None = None


class _Event(msgspec.Struct):
    """Every ConverseStream event's fields, all optional: unknown events decode harmlessly."""

    contentBlockIndex: int | None = None
    delta: _Delta | None = None
    start: _Start | None = None
    stopReason: str | None = None
    usage: dict[str, Any] | None = None


_decode_event = msgspec.json.Decoder(_Event).decode


class ConverseStream:
    """ConverseStream (binary event stream) -> OpenAI chunks (framed SSE)."""

    terminator = DONE

    def __init__(self, *, id: str, model: str, created: int, include_usage: bool, strict: bool) -> None:
        self._decoder = EventStreamDecoder()
        self._out = ChunkWriter(created=created, include_usage=include_usage)
        self._out.start(id, model)
        self._strict = strict
        self._tools: dict[int, int] = {}
        self._stopped = False
        self._started = False

    def feed(self, data: bytes) -> bytes:
        try:
            frames = self._decoder.feed(data)
        except EventStreamError as exc:
            raise StreamInterrupted(
                UpstreamUnavailable(f"bedrock sent a malformed stream: {exc}", provider="bedrock")
            ) from None
        parts: list[bytes] = []
        for item in frames:
            try:
                piece = self._frame(item.message_type, item.event_type, item.payload)
            except StreamInterrupted as exc:
                exc.partial = b"".join(parts)
                raise
            if piece:
                parts.append(piece)
        return b"".join(parts)

    def close(self) -> bytes:
        if not self._stopped:
            raise StreamInterrupted(
                UpstreamUnavailable("bedrock ended the stream before messageStop", provider="bedrock")
            )
        return self.terminator

    def error_event(self, error: UpstreamError) -> bytes:
        return frame(error.render())

    def _frame(self, message_type: str, kind: str, payload: bytes) -> bytes:
        if message_type != "event":
            raise StreamInterrupted(exception_frame(kind or "UnknownException", payload))
        try:
            event = _decode_event(payload)
        except msgspec.DecodeError:
            return b""  # a malformed event is skipped, never fatal
        out = self._out
        if kind == "contentBlockDelta":
            delta = event.delta
            if delta is None:
                return b""
            if delta.text is not None:
                return self._role() + out.text(delta.text)
            if delta.toolUse is not None:
                ordinal = self._tools.get(event.contentBlockIndex or 0)
                return out.tool_arguments(ordinal, delta.toolUse.input or "") if ordinal is not None else b""
            if delta.reasoningContent is not None and not self._strict:
                return self._role() + out.reasoning(delta.reasoningContent.text or "")
            return b""
        if kind == "messageStart":
            return self._role()
        if kind == "contentBlockStart":
            use = event.start.toolUse if event.start is not None else None
            if use is not None:
                ordinal = len(self._tools)
                self._tools[event.contentBlockIndex or 0] = ordinal
                return self._role() + out.tool_start(ordinal, use.toolUseId or "", use.name or "")
            return b""
        if kind == "messageStop":
            self._stopped = True
            return self._role() + out.finish(finish_reason(event.stopReason))
        if kind == "metadata":
            return out.usage(openai_usage(event.usage))
        return b""  # contentBlockStop, and event types added later

    def _role(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._out.role()
