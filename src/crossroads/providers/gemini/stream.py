"""Gemini's `streamGenerateContent?alt=sse` -> OpenAI chunks.

Each event is a whole GenerateContentResponse holding only what is new: text parts, whole
function calls (a call arrives complete, in one event), running usage, and on the last event
the finish reason. There is no end marker: the body ends. So a stream is complete only if a
finish reason came; the usage chunk (when asked) goes out at the end, from the last usage seen.
"""

from __future__ import annotations

from typing import Any

import msgspec

from crossroads.codecs.sse import Event
from crossroads.providers.base import StreamInterrupted
from crossroads.providers.chunks import ChunkWriter
from crossroads.providers.gemini.response import call_id, error_from, finish_reason, openai_usage
from crossroads.providers.stream import ChunkTranslator


class Part(msgspec.Struct):
    text: str | None = None
    thought: bool | None = None
    functionCall: dict[str, Any] | None = None
    thoughtSignature: str | None = None


class Content(msgspec.Struct):
    parts: list[Part] | None = None


class Candidate(msgspec.Struct):
    content: Content | None = None
    finishReason: str | None = None


class Chunk(msgspec.Struct):
    candidates: list[Candidate] | None = None
    usageMetadata: dict[str, Any] | None = None
    modelVersion: str | None = None
    responseId: str | None = None
    promptFeedback: dict[str, Any] | None = None
    error: Any = None


_decode_chunk = msgspec.json.Decoder(Chunk).decode


class GeminiToOpenAI(ChunkTranslator):
    unfinished = "ended the stream before its finish reason"

    def __init__(
        self, *, provider: str, model: str, created: int, include_usage: bool, strict: bool, completion: bool
    ) -> None:
        super().__init__()
        self.provider = self._provider = provider
        self._model = model
        self._strict = strict
        self._out = ChunkWriter(created=created, include_usage=include_usage, completion=completion)
        self._calls = 0
        self._usage: dict[str, Any] | None = None
        self._reason: str | None = None
        self._response_id = "gemini"
        self._prefix = "cmpl-" if completion else "chatcmpl-"

    def on_event(self, event: Event) -> list[bytes]:
        if event.comment or not event.data or self._out.finished:
            return []
        try:
            data = _decode_chunk(event.data)
        except msgspec.DecodeError:
            return []  # a malformed event is skipped, never fatal
        if data.error is not None:
            code = data.error.get("code") if isinstance(data.error, dict) else None
            status = code if isinstance(code, int) and 400 <= code <= 599 else 502
            raise StreamInterrupted(error_from({"error": data.error}, status, self._provider))
        out = self._out
        parts: list[bytes] = []
        if not out.started:
            self._response_id = data.responseId or "gemini"
            out.start(self._prefix + self._response_id, data.modelVersion or self._model)
            parts.append(out.role())
        if data.usageMetadata is not None:
            self._usage = data.usageMetadata
        candidate = data.candidates[0] if data.candidates else None
        content = candidate.content if candidate is not None else None
        for part in (content.parts if content is not None else None) or ():
            if part.functionCall is not None:
                function = part.functionCall
                ordinal = self._calls
                self._calls += 1
                identifier = call_id(self._response_id, ordinal, part.thoughtSignature)
                arguments = msgspec.json.encode(function.get("args") or {}).decode()
                parts.append(out.tool_start(ordinal, identifier, str(function.get("name", ""))))
                parts.append(out.tool_arguments(ordinal, arguments))
            elif part.text:
                if part.thought:
                    if not self._strict:
                        parts.append(out.reasoning(part.text))
                else:
                    parts.append(out.text(part.text))
        reason = candidate.finishReason if candidate is not None else None
        if candidate is None and (data.promptFeedback or {}).get("blockReason"):
            reason = "SAFETY"
        if reason:
            parts.append(out.finish(finish_reason(reason, called=self._calls > 0)))
        return [p for p in parts if p]

    def complete(self) -> bool:
        return self._out.finished

    def ending(self) -> bytes:
        return self._out.usage(openai_usage(self._usage))
