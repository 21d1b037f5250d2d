"""AWS Bedrock: chat through Converse / ConverseStream, embeddings (Titan, Cohere) and
Anthropic's Messages API (for Anthropic models) through InvokeModel.

Credentials come from `x-portkey-aws-access-key-id`, `-aws-secret-access-key`,
`-aws-session-token`, `-aws-region` or the config's `aws_*` fields, and every request is
signed with SigV4 (`sigv4.py`, checked against botocore's signer; service `bedrock`; the
model id is URL-encoded in the path and encoded again in the canonical request, see the
fixtures' test vector). A Bedrock API
key sent as `Authorization: Bearer` is used when no key pair is given.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

import msgspec

from crossroads.codecs.eventstream import EventStreamDecoder, EventStreamError
from crossroads.codecs.sse import frame
from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers import chunks
from crossroads.providers.anthropic.stream import anthropic_error_event
from crossroads.providers.base import (
    CHAT,
    EMBEDDINGS,
    MESSAGES,
    Call,
    LocalResponder,
    Reply,
    StreamInterrupted,
    StreamTranslator,
    Target,
)
from crossroads.providers.bedrock import sigv4
from crossroads.providers.bedrock.request import chat_to_converse
from crossroads.providers.bedrock.response import (
    ConverseStream,
    converse_to_chat,
    error_from,
    exception_frame,
)
from crossroads.providers.messages import MessagesBridge
from crossroads.secret import Secret
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]
DEFAULT_REGION: Final = "us-east-1"
BEDROCK_ANTHROPIC_VERSION: Final = "bedrock-2023-05-31"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class BedrockAdapter:
    name = "bedrock"
    endpoints = frozenset({CHAT, EMBEDDINGS, MESSAGES})

    def __init__(self, base_url: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        self._clock = clock  # the signature's time
        self._bridge = MessagesBridge(self)

    @property
    def responder(self) -> LocalResponder | None:
        return None

    # -- request ---------------------------------------------------------------------------

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by bedrock")
        if call.endpoint == MESSAGES and not _is_anthropic(_model(call, target)):
            return self._bridge.build(call, target)
        model = _model(call, target)
        assert call.json is not None
        if call.endpoint == CHAT:
            body = chat_to_converse(call.json)
            action = "converse-stream" if call.stream else "converse"
        elif call.endpoint == EMBEDDINGS:
            body = _embedding_request(model, call.json)
            action = "invoke"
        else:  # Anthropic's Messages API, for Anthropic models
            body = {k: v for k, v in call.json.items() if k not in ("model", "stream", "anthropic_version")}
            body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
            beta = call.headers.get("anthropic-beta") or body.pop("anthropic_beta", None)
            if beta:
                body["anthropic_beta"] = beta.split(",") if isinstance(beta, str) else beta
            action = "invoke-with-response-stream" if call.json.get("stream") else "invoke"
        base = (
            target.custom_host or self._base_url or f"https://bedrock-runtime.{_region(target)}.amazonaws.com"
        )
        url = f"{base}/model/{quote(model, safe='')}/{action}"
        payload = msgspec.json.encode(body)
        headers = {"content-type": "application/json", **call.forwarded(target.forward_headers)}
        if action.endswith("stream"):
            headers["accept"] = "application/vnd.amazon.eventstream"
        headers.update(_sign(url, payload, target, self._clock()))
        return UpstreamRequest("POST", url, headers, payload, guarded=target.custom_host is not None)

    # -- response --------------------------------------------------------------------------

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if call.endpoint == MESSAGES:
            if not _is_anthropic(_model(call, target)):
                return self._bridge.parse(call, target, status, headers, body)
            return Reply(status=status, body=body)
        try:
            answer = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise UpstreamUnavailable(
                "invalid response received from bedrock: the body is not JSON", provider=self.name
            ) from None
        if not isinstance(answer, dict):
            raise UpstreamUnavailable("invalid response received from bedrock", provider=self.name)
        model = _model(call, target)
        if call.endpoint == EMBEDDINGS:
            assert call.json is not None
            tokens = headers.get("x-amzn-bedrock-input-token-count")
            return Reply(
                status=status, body=msgspec.json.encode(_embedding_response(model, call.json, answer, tokens))
            )
        chat = converse_to_chat(
            answer,
            id=_request_id(headers),
            model=model,
            created=call.created,
            strict=target.strict_open_ai_compliance,
        )
        return Reply(status=status, body=msgspec.json.encode(chat))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return error_from(status, headers, body)

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        if call.endpoint == MESSAGES:
            if not _is_anthropic(_model(call, target)):
                return self._bridge.translator(call, target)
            return AnthropicInvokeStream()
        include_usage = bool(((call.json or {}).get("stream_options") or {}).get("include_usage"))
        return ConverseStream(
            id="chatcmpl-" + call.request_id.replace("-", ""),
            model=_model(call, target),
            created=call.created,
            include_usage=include_usage,
            strict=target.strict_open_ai_compliance,
        )


class AnthropicInvokeStream:
    """InvokeModelWithResponseStream for Anthropic models: each `chunk` frame carries one
    Anthropic event as base64 JSON; they are relayed as Anthropic SSE events."""

    def __init__(self) -> None:
        self._decoder = EventStreamDecoder()
        self._stopped = False

    def feed(self, data: bytes) -> bytes:
        try:
            frames = self._decoder.feed(data)
        except EventStreamError as exc:
            raise StreamInterrupted(
                UpstreamUnavailable(f"bedrock sent a malformed stream: {exc}", provider="bedrock")
            ) from None
        parts: list[bytes] = []
        for item in frames:
            if item.message_type != "event":
                raise StreamInterrupted(exception_frame(item.event_type, item.payload), b"".join(parts))
            try:
                event = base64.b64decode(msgspec.json.decode(item.payload).get("bytes", ""))
                kind = msgspec.json.decode(event).get("type", "")
            except (msgspec.DecodeError, ValueError, AttributeError):
                continue
            if kind == "message_stop":
                self._stopped = True
            parts.append(frame(event, kind.encode()))
        return b"".join(parts)

    def close(self) -> bytes:
        if not self._stopped:
            raise StreamInterrupted(
                UpstreamUnavailable("bedrock ended the stream before message_stop", provider="bedrock")
            )
        return b""

    def error_event(self, error: UpstreamError) -> bytes:
        return anthropic_error_event(error)


# -- helpers ------------------------------------------------------------------------------------


def _model(call: Call, target: Target) -> str:
    model = _text(target.options.get("aws_bedrock_model")) or (call.json or {}).get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required: a Bedrock model id, inference profile or ARN", param="model")
    return model


def _is_anthropic(model: str) -> bool:
    return "anthropic." in model or "/anthropic." in model


def _region(target: Target) -> str:
    region = _text(target.options.get("aws_region")) or DEFAULT_REGION
    if not _REGION.match(region):
        raise BadRequest(
            f"aws_region {region[:40]!r} is not an AWS region name", param="x-portkey-aws-region"
        )
    return region


def _text(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.reveal()
    return value if isinstance(value, str) and value else None


def _sign(url: str, payload: bytes, target: Target, now: float) -> dict[str, str]:
    access = _text(target.options.get("aws_access_key_id"))
    secret = _text(target.options.get("aws_secret_access_key"))
    if access and secret:
        return sigv4.sign(
            url,
            payload,
            access_key=access,
            secret_key=secret,
            session_token=_text(target.options.get("aws_session_token")),
            region=_region(target),
            service="bedrock",
            now=now,
        )
    if target.api_key:  # a Bedrock API key
        return {"authorization": f"Bearer {target.api_key.reveal()}"}
    raise BadRequest(
        "bedrock needs credentials: x-portkey-aws-access-key-id and x-portkey-aws-secret-access-key "
        "(or aws_access_key_id / aws_secret_access_key in the config), or a Bedrock API key as Authorization",
        param="x-portkey-aws-access-key-id",
    )


def _request_id(headers: Mapping[str, str]) -> str:
    return "chatcmpl-" + (headers.get("x-amzn-requestid") or "bedrock").replace("-", "")


def _embedding_request(model: str, body: JSON) -> JSON:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    if not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise BadRequest("input must be a non-empty string or list of strings", param="input")
    if "cohere." in model:
        return {"texts": inputs, "input_type": body.get("input_type", "search_document")}
    if len(inputs) != 1:
        raise BadRequest("Titan embeds one text per request: send one input", param="input")
    out: JSON = {"inputText": inputs[0]}
    if body.get("dimensions"):
        out["dimensions"] = body["dimensions"]
    return out


def _embedding_response(model: str, request: JSON, answer: JSON, tokens: str | None) -> JSON:
    vectors: list[list[float]]
    if "embeddings" in answer:
        embeddings = answer["embeddings"]
        vectors = embeddings.get("float", []) if isinstance(embeddings, dict) else embeddings
    else:
        vectors = [answer.get("embedding") or []]
    count = int(tokens) if tokens and tokens.isdigit() else int(answer.get("inputTextTokenCount") or 0)
    return chunks.embedding_list(
        model, vectors, as_base64=request.get("encoding_format") == "base64", tokens=count
    )
