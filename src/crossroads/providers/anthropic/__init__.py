"""Anthropic: OpenAI chat and completions translated to the Messages API; the Messages API
itself (/v1/messages, count_tokens) relayed as it is.

Auth: the key goes as `x-api-key` (from `Authorization: Bearer`, or the client's own
`x-api-key`, which Claude Code sends). `anthropic-version` defaults to 2023-06-01 and
`anthropic-beta` to none; a client's own headers (or Portkey's `x-portkey-anthropic-*`, or
`anthropic_version` / `anthropic_beta` in the body) are forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.anthropic.request import chat_to_messages, completion_to_messages
from crossroads.providers.anthropic.response import error_from, message_to_chat, message_to_completion
from crossroads.providers.anthropic.stream import AnthropicRelay, AnthropicToOpenAI
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    MESSAGES,
    MODELS,
    PROXY,
    Call,
    LocalResponder,
    Reply,
    StreamTranslator,
    Target,
)
from crossroads.secret import Secret, redact
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]
BASE_URL: Final = "https://api.anthropic.com/v1"
DEFAULT_VERSION: Final = "2023-06-01"
_PATHS: Final = {
    CHAT: "/messages",
    COMPLETIONS: "/messages",
    MESSAGES: "/messages",
    COUNT_TOKENS: "/messages/count_tokens",
}
_SKIP_PROXY: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "authorization",
        "x-api-key",
        "accept-encoding",
    }
)


class AnthropicAdapter:
    name = "anthropic"
    endpoints = frozenset({CHAT, COMPLETIONS, MESSAGES, COUNT_TOKENS, MODELS, PROXY})

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = (base_url or BASE_URL).rstrip("/")

    @property
    def responder(self) -> LocalResponder | None:
        return None

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by anthropic")
        base = target.custom_host or self.base_url
        body = call.body
        if call.endpoint in (CHAT, COMPLETIONS):
            assert call.json is not None
            convert = chat_to_messages if call.endpoint == CHAT else completion_to_messages
            translated = convert(call.json, call.json.get("model"))
            body = msgspec.json.encode(translated)
            path = _PATHS[call.endpoint]
        elif call.endpoint in (MESSAGES, COUNT_TOKENS):
            path = _PATHS[call.endpoint]
            if call.json is not None and ("anthropic_version" in call.json or "anthropic_beta" in call.json):
                body = msgspec.json.encode(
                    {k: v for k, v in call.json.items() if k not in ("anthropic_version", "anthropic_beta")}
                )
        else:
            path = call.path
        url = base + path + ("?" + call.query if call.query else "")
        return UpstreamRequest(
            call.method, url, self._headers(call, target), body, guarded=target.custom_host is not None
        )

    def _headers(self, call: Call, target: Target) -> dict[str, str]:
        if call.endpoint in (PROXY, MODELS):
            headers = {
                k: v
                for k, v in call.headers.items()
                if k not in _SKIP_PROXY and not k.startswith("x-portkey-")
            }
        else:
            headers = {"content-type": "application/json"}
        key = target.api_key or _secret(target.options.get("x_api_key"))
        if key:
            headers["x-api-key"] = key.reveal()
        body = call.json or {}
        version = (
            call.headers.get("anthropic-version")
            or _text(target.options.get("anthropic_version"))
            or body.get("anthropic_version")
            or DEFAULT_VERSION
        )
        headers["anthropic-version"] = str(version)
        beta = (
            call.headers.get("anthropic-beta")
            or _text(target.options.get("anthropic_beta"))
            or body.get("anthropic_beta")
        )
        if beta:
            headers["anthropic-beta"] = ",".join(beta) if isinstance(beta, list) else str(beta)
        headers.update(call.forwarded(target.forward_headers))
        return headers

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if call.endpoint not in (CHAT, COMPLETIONS):
            return Reply(
                status=status, body=body, content_type=headers.get("content-type", "application/json")
            )
        try:
            message = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise UpstreamUnavailable(
                "invalid response received from anthropic: the body is not JSON", provider=self.name
            ) from None
        if not isinstance(message, dict) or message.get("type") == "error":
            raise error_from(message, 502, headers)
        if call.endpoint == CHAT:
            answer = message_to_chat(message, created=call.created, strict=target.strict_open_ai_compliance)
        else:
            answer = message_to_completion(message, created=call.created)
        return Reply(status=status, body=msgspec.json.encode(answer))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            data: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            data = {"error": {"message": body.decode("utf-8", "replace").strip()[:300] or f"HTTP {status}"}}
        error = error_from(data, status, headers)
        error.message = redact(error.message, target.api_key, _secret(target.options.get("x_api_key")))
        return error

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        if call.endpoint in (MESSAGES, COUNT_TOKENS):
            return AnthropicRelay()
        include_usage = bool(((call.json or {}).get("stream_options") or {}).get("include_usage"))
        return AnthropicToOpenAI(
            created=call.created,
            include_usage=include_usage,
            strict=target.strict_open_ai_compliance,
            completion=call.endpoint == COMPLETIONS,
        )


def _secret(value: Any) -> Secret | None:
    if isinstance(value, Secret):
        return value
    return Secret(value) if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.reveal()
    return value if isinstance(value, str) and value else None


__all__ = ["AnthropicAdapter", "BadRequest"]
