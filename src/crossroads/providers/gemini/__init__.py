"""Google Gemini (`google`, also `gemini`): OpenAI chat, completions, embeddings and the model
list translated to the Gemini API (generativelanguage.googleapis.com); the proxy route relays
anything else with the key.

Auth: the key from `Authorization: Bearer` goes as `x-goog-api-key` (never in the URL, so it
cannot leak into logs of the URL). URLs: `<base>/models/<model>:generateContent`,
`:streamGenerateContent?alt=sse`, `:batchEmbedContents`, `<base>/models`. `<base>` is
`https://generativelanguage.googleapis.com/v1beta`; a custom host replaces it (`/v1beta` is
added when the host has no version segment, as Portkey does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MODELS,
    PROXY,
    Call,
    LocalResponder,
    Reply,
    StreamTranslator,
    Target,
)
from crossroads.providers.gemini.request import (
    chat_to_gemini,
    completion_to_gemini,
    embeddings_to_gemini,
    model_of,
)
from crossroads.providers.gemini.response import (
    answer_to_chat,
    answer_to_completion,
    decode,
    embeddings_to_openai,
    error_from,
    models_to_openai,
)
from crossroads.providers.gemini.stream import GeminiToOpenAI
from crossroads.secret import redact
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]
BASE_URL: Final = "https://generativelanguage.googleapis.com/v1beta"
_SKIP_PROXY: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "authorization", "accept-encoding"}
)


class GeminiAdapter:
    endpoints = frozenset({CHAT, COMPLETIONS, EMBEDDINGS, MODELS, PROXY})

    def __init__(self, name: str = "google", base_url: str | None = None) -> None:
        self.name = name
        self.base_url = (base_url or BASE_URL).rstrip("/")

    @property
    def responder(self) -> LocalResponder | None:
        return None

    # -- request -----------------------------------------------------------------------------

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by {self.name}")
        base = self.base(target)
        body = call.body
        query = call.query
        if call.endpoint in (CHAT, COMPLETIONS, EMBEDDINGS):
            assert call.json is not None
            model = model_of(call.json)
            if call.endpoint == EMBEDDINGS:
                path = f"/models/{model}:batchEmbedContents"
                translated = embeddings_to_gemini(call.json, model)
            else:
                translated = self.translate(call)
                path = f"/models/{model}:{'streamGenerateContent' if call.stream else 'generateContent'}"
                if call.stream:
                    query = "alt=sse"
            body = msgspec.json.encode(translated)
            method = "POST"
        elif call.endpoint == MODELS:
            path, method, body = "/models", "GET", b""
        else:
            path, method = call.path, call.method
        url = base + path + ("?" + query if query else "")
        return UpstreamRequest(
            method, url, self.headers(call, target), body, guarded=target.custom_host is not None
        )

    def translate(self, call: Call) -> JSON:
        """A chat or completion request as a `generateContent` body."""
        assert call.json is not None
        if call.endpoint == CHAT:
            return chat_to_gemini(call.json, stream=call.stream)
        return completion_to_gemini(call.json)

    def base(self, target: Target) -> str:
        if not target.custom_host:
            return self.base_url
        host = target.custom_host.rstrip("/")
        return host if host.rsplit("/", 1)[-1] in ("v1", "v1beta", "v1alpha") else host + "/v1beta"

    def headers(self, call: Call, target: Target) -> dict[str, str]:
        if call.endpoint == PROXY:
            headers = {
                k: v
                for k, v in call.headers.items()
                if k not in _SKIP_PROXY and not k.startswith("x-portkey-") and k != "x-goog-api-key"
            }
        else:
            headers = {"content-type": "application/json"} if call.endpoint != MODELS else {}
        if target.api_key is None:
            raise BadRequest(
                f"{self.name} needs an API key: send it as Authorization: Bearer <key>", param="authorization"
            )
        headers["x-goog-api-key"] = target.api_key.reveal()
        headers.update(call.forwarded(target.forward_headers))
        return headers

    # -- response ----------------------------------------------------------------------------

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if call.endpoint == PROXY:
            return Reply(
                status=status, body=body, content_type=headers.get("content-type", "application/json")
            )
        answer = decode(body)
        if not isinstance(answer, dict):
            raise UpstreamUnavailable(
                f"invalid response received from {self.name}: the body is not a JSON object",
                provider=self.name,
            )
        if "error" in answer:
            raise self.error(target, 502, headers, body)
        request = call.json or {}
        model = str(request.get("model") or "")
        if call.endpoint == CHAT:
            out = answer_to_chat(
                answer, model=model, created=call.created, strict=target.strict_open_ai_compliance
            )
        elif call.endpoint == COMPLETIONS:
            out = answer_to_completion(answer, model=model, created=call.created)
        elif call.endpoint == EMBEDDINGS:
            out = embeddings_to_openai(
                answer, model=model, as_base64=request.get("encoding_format") == "base64"
            )
        else:
            out = models_to_openai(answer)
        return Reply(status=status, body=msgspec.json.encode(out))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        data = decode(body)
        if data is None:
            text = body.decode("utf-8", "replace").strip()
            data = {"error": {"message": "" if text.startswith("<") else text[:300]}}
        error = error_from(data, status, self.name)
        error.message = redact(error.message, target.api_key)
        return error

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        request = call.json or {}
        return GeminiToOpenAI(
            provider=self.name,
            model=str(request.get("model") or ""),
            created=call.created,
            include_usage=bool((request.get("stream_options") or {}).get("include_usage")),
            strict=target.strict_open_ai_compliance,
            completion=call.endpoint == COMPLETIONS,
        )


__all__ = ["GeminiAdapter"]
