"""A provider key never leaves through the gateway: for every native provider, an upstream that
echoes the key in its error (before the stream and inside it) leaves no trace of the key in the
client's response, its headers, the gateway's log or /metrics (the canary scan of the security
matrix: the whole key and any 12-character piece of it)."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream

CANARY = "canary-" + secrets.token_hex(20)
CHAT = {"model": "m-1", "messages": [{"role": "user", "content": "hi"}]}


def pieces(text: str) -> list[str]:
    return [CANARY[i : i + 12] for i in range(len(CANARY) - 11)]


def leaked(text: str) -> list[str]:
    return [p for p in pieces(text) if p in text]


Route = tuple[dict[str, str], str, Any, Callable[[str], list[bytes]] | None]


def routes(fake: FakeUpstream) -> dict[str, Route]:
    """provider -> (headers, upstream path, the error body echoing the key, a stream that errors)."""
    echo = f"invalid key {CANARY} (was {CANARY[:20]})"
    return {
        "azure-openai": (
            {"x-portkey-custom-host": f"{fake.url}/openai", "x-portkey-azure-deployment-id": "d1"},
            "/openai/deployments/d1/chat/completions",
            {"error": {"code": "401", "message": echo}},
            lambda _: [b'data: {"error": {"message": "' + echo.encode() + b'", "code": 500}}\n\n'],
        ),
        "google": (
            {"x-portkey-custom-host": fake.url},
            "/v1beta/models/m-1:generateContent",
            {"error": {"code": 400, "message": echo, "status": "INVALID_ARGUMENT"}},
            None,
        ),
        "vertex-ai": (
            {"x-portkey-custom-host": fake.url, "x-portkey-vertex-project-id": "proj-1"},
            "/v1/projects/proj-1/locations/us-central1/publishers/google/models/m-1:generateContent",
            {"error": {"code": 401, "message": echo, "status": "UNAUTHENTICATED"}},
            None,
        ),
        "cohere": (
            {"x-portkey-custom-host": fake.url},
            "/v2/chat",
            {"message": echo},
            None,
        ),
        "anthropic": (
            {"x-portkey-custom-host": f"{fake.url}/v1"},
            "/v1/messages",
            {"type": "error", "error": {"type": "authentication_error", "message": echo}},
            lambda _: [
                b"event: message_start\ndata: "
                + b'{"type":"message_start","message":{"id":"m","model":"x","usage":{}}}\n\n',
                b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"'
                + echo.encode()
                + b'"}}\n\n',
            ],
        ),
    }


@pytest.mark.parametrize("provider", ["azure-openai", "google", "vertex-ai", "cohere", "anthropic"])
def test_a_key_echoed_by_the_provider_never_reaches_anyone(
    gateway: GatewayServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, provider: str
) -> None:
    caplog.set_level(logging.DEBUG)
    headers, path, error, stream = routes(fake)[provider]
    head = {"x-portkey-provider": provider, "authorization": f"Bearer {CANARY}", **headers}
    seen: list[str] = []
    fake.on("POST", path, Reply(status=401, body=error, headers={"x-echo": CANARY}))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=head)
    assert response.status_code >= 400
    seen.append(response.text + json.dumps(dict(response.headers)))
    if stream is not None:
        fake.on("POST", path, Stream(chunks=stream(CANARY)))
        with httpx.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=head
        ) as streamed:
            body = b""
            try:
                for piece in streamed.iter_bytes():
                    body += piece
            except httpx.RemoteProtocolError:
                pass  # the broken stream ends without its last chunk
            assert b'"error"' in body
            seen.append(body.decode() + json.dumps(dict(streamed.headers)))
    seen.append(httpx.get(f"{gateway.url}/metrics").text)
    seen.append(caplog.text)
    assert fake.requests, "the provider was called"
    for text in seen:
        assert leaked(text) == [], text[:500]
