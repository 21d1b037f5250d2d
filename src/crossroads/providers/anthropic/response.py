"""Anthropic Messages answers and errors -> OpenAI shapes (pure).

finish_reason and usage follow provider-wire-formats.md §8-§9: end_turn, stop_sequence and
pause_turn are `stop`; max_tokens and model_context_window_exceeded are `length`; tool_use
is `tool_calls`; refusal is `content_filter`; anything new is `stop`. prompt_tokens counts
cached and cache-writing input too (Anthropic's input_tokens excludes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from crossroads.errors import UpstreamError
from crossroads.providers import chunks

JSON = dict[str, Any]

FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic error types by status, for errors we render in Anthropic's shape (/v1/messages).
ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    412: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STATUS_OF_TYPE: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


ANTHROPIC_TYPES: Final = frozenset(_STATUS_OF_TYPE)


def finish_reason(stop_reason: str | None) -> str:
    return FINISH.get(stop_reason or "end_turn", "stop")


def openai_usage(data: Mapping[str, Any] | None) -> JSON:
    data = data or {}
    cache_read = int(data.get("cache_read_input_tokens") or 0)
    cache_write = int(data.get("cache_creation_input_tokens") or 0)
    prompt = int(data.get("input_tokens") or 0) + cache_read + cache_write
    return chunks.usage(
        prompt, int(data.get("output_tokens") or 0), cached=cache_read, cache_creation=cache_write or None
    )


def message_to_chat(message: JSON, *, created: int, strict: bool) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    thinking: list[str] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(
                chunks.tool_call(block.get("id", ""), block.get("name", ""), block.get("input") or {})
            )
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
    extra: JSON = {}
    if not strict:
        # Portkey's non-strict extras: the raw blocks (thinking with signatures) and reasoning text.
        extra["content_blocks"] = message.get("content") or []
        if thinking:
            extra["reasoning_content"] = "".join(thinking)
    return chunks.chat_completion(
        id=message.get("id", ""),
        model=message.get("model", ""),
        created=created,
        text="".join(texts),
        tool_calls=calls,
        finish_reason=finish_reason(message.get("stop_reason")),
        usage=openai_usage(message.get("usage")),
        extra_message=extra,
    )


def message_to_completion(message: JSON, *, created: int) -> JSON:
    text = "".join(b.get("text", "") for b in message.get("content") or () if b.get("type") == "text")
    return chunks.text_completion(
        id=message.get("id", ""),
        model=message.get("model", ""),
        created=created,
        text=text,
        finish_reason=finish_reason(message.get("stop_reason")),
        usage=openai_usage(message.get("usage")),
    )


def error_from(
    data: Any, status: int, headers: Mapping[str, str], provider: str = "anthropic"
) -> UpstreamError:
    """`{"type": "error", "error": {"type", "message"}}` (or anything else) -> UpstreamError."""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        etype = err.get("type") if isinstance(err.get("type"), str) else None
        message = str(err.get("message") or etype or "error")
    else:
        etype, message = None, str(data)[:300] if data else f"HTTP {status}"
    relay = {k: v for k, v in headers.items() if k.lower() in ("retry-after", "retry-after-ms")}
    return UpstreamError(
        f"{provider} error: {message}",
        provider=provider,
        status=status,
        error_type=etype,
        code=etype,
        retryable=status in (429, 500, 502, 503, 504, 529)
        or etype in ("overloaded_error", "rate_limit_error"),
        headers=relay,
    )


def status_of(error_type: str | None) -> int:
    return _STATUS_OF_TYPE.get(error_type or "", 502)
