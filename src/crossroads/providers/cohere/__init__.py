"""Cohere (`cohere`): OpenAI chat and embeddings translated to Cohere's v2 API; the proxy route
relays anything else (`/v1/rerank` -> `/v2/rerank`, ...) with the key.

Auth: the key from `Authorization: Bearer` goes to Cohere the same way. Base URL
`https://api.cohere.com`; a custom host replaces it (a trailing `/v2` is accepted too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.base import (
    CHAT,
    EMBEDDINGS,
    PROXY,
    Call,
    LocalResponder,
    Reply,
    StreamTranslator,
    Target,
)
from crossroads.providers.cohere.translate import (
    CohereToOpenAI,
    answer_to_chat,
    chat_to_cohere,
    embeddings_to_cohere,
    embeddings_to_openai,
    error_from,
)
from crossroads.secret import redact
from crossroads.upstream.response import UpstreamRequest

BASE_URL: Final = "https://api.cohere.com"
_PATHS: Final = {CHAT: "/chat", EMBEDDINGS: "/embed"}
_SKIP_PROXY: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "authorization", "accept-encoding"}
)


class CohereAdapter:
    name = "cohere"
    endpoints = frozenset({CHAT, EMBEDDINGS, PROXY})

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = (base_url or BASE_URL).rstrip("/")

    @property
    def responder(self) -> LocalResponder | None:
        return None

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by cohere")
        root = (target.custom_host or self.base_url).rstrip("/").removesuffix("/v2").removesuffix("/v1")
        if target.api_key is None:
            raise BadRequest(
                "cohere needs an API key: send it as Authorization: Bearer <key>", param="authorization"
            )
        auth = "Bearer " + target.api_key.reveal()
        if call.endpoint == PROXY:
            headers = {
                k: v
                for k, v in call.headers.items()
                if k not in _SKIP_PROXY and not k.startswith("x-portkey-")
            }
            headers["authorization"] = auth
            url = root + "/v2" + call.path + ("?" + call.query if call.query else "")
            return UpstreamRequest(
                call.method, url, headers, call.body, guarded=target.custom_host is not None
            )
        assert call.json is not None
        translate = chat_to_cohere if call.endpoint == CHAT else embeddings_to_cohere
        body = msgspec.json.encode(translate(call.json))
        headers = {"content-type": "application/json", "authorization": auth}
        if call.stream:
            headers["accept"] = "text/event-stream"
        headers.update(call.forwarded(target.forward_headers))
        url = root + "/v2" + _PATHS[call.endpoint]
        return UpstreamRequest("POST", url, headers, body, guarded=target.custom_host is not None)

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if call.endpoint == PROXY:
            return Reply(
                status=status, body=body, content_type=headers.get("content-type", "application/json")
            )
        try:
            answer = msgspec.json.decode(body)
        except msgspec.DecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamUnavailable(
                "invalid response received from cohere: not a JSON object", provider=self.name
            )
        request = call.json or {}
        model = str(request.get("model") or "")
        if call.endpoint == CHAT:
            out = answer_to_chat(
                answer, model=model, created=call.created, strict=target.strict_open_ai_compliance
            )
        else:
            out = embeddings_to_openai(
                answer, model=model, as_base64=request.get("encoding_format") == "base64"
            )
        return Reply(status=status, body=msgspec.json.encode(out))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            data: Any = msgspec.json.decode(body) if body.strip() else None
        except msgspec.DecodeError:
            text = body.decode("utf-8", "replace").strip()
            data = {"message": "" if text.startswith("<") else text[:300]}
        error = error_from(data, status)
        error.message = redact(error.message, target.api_key)
        return error

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        request = call.json or {}
        return CohereToOpenAI(
            model=str(request.get("model") or ""),
            created=call.created,
            include_usage=bool((request.get("stream_options") or {}).get("include_usage")),
            strict=target.strict_open_ai_compliance,
        )


__all__ = ["CohereAdapter"]
