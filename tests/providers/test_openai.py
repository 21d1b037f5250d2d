"""The OpenAI-format adapter, pure: request building, error normalising, stream relaying."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from crossroads.errors import UnsupportedEndpoint, UpstreamUnavailable
from crossroads.providers.base import Call, StreamInterrupted, Target
from crossroads.providers.compatible import TABLE
from crossroads.providers.openai import OpenAIFormat, PassthroughStream
from crossroads.secret import Secret
from tests.support.upstream import fixture_bytes

PROFILES = {p.slug: p for p in TABLE}


def call(
    body: dict[str, Any] | None = None,
    endpoint: str = "chat",
    path: str = "/chat/completions",
    headers: dict[str, str] | None = None,
) -> Call:
    data = body if body is not None else {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return Call(
        endpoint=endpoint,
        method="POST",
        path=path,
        query="",
        body=msgspec.json.encode(data),
        json=data,
        content_type="application/json",
        stream=False,
        headers=headers or {},
        request_id="r",
        trace_id="t",
        metadata={},
    )


@pytest.mark.parametrize("profile", TABLE, ids=lambda p: p.slug)
def test_every_profile_builds_its_real_url_and_auth(profile: Any) -> None:
    adapter = OpenAIFormat(profile)
    target = Target(provider=profile.slug, api_key=Secret("k-1"))
    if profile.base_url is None:
        with pytest.raises(Exception, match="x-portkey-custom-host"):
            adapter.build(call(), target)
        target = Target(provider=profile.slug, api_key=Secret("k-1"), custom_host="http://127.0.0.1:8000/v1")
    request = adapter.build(call(), target)
    base = profile.base_url or "http://127.0.0.1:8000/v1"
    assert request.url == base + "/chat/completions"
    assert request.url.startswith(("https://", "http://localhost", "http://127.0.0.1"))
    if profile.auth_header:
        assert request.headers[profile.auth_header] == "Bearer k-1"
    else:
        assert "k-1" not in json.dumps(request.headers)
    assert request.guarded is (profile.base_url is None)


def test_custom_host_replaces_base_and_gets_the_portkey_prefix() -> None:
    together = OpenAIFormat(PROFILES["together-ai"])
    target = Target(provider="together-ai", custom_host="http://127.0.0.1:9000")
    assert together.build(call(), target).url == "http://127.0.0.1:9000/v1/chat/completions"
    target = Target(provider="together-ai", custom_host="http://127.0.0.1:9000/v1")
    assert together.build(call(), target).url == "http://127.0.0.1:9000/v1/chat/completions"
    openai_ = OpenAIFormat(PROFILES["openai"])
    target = Target(provider="openai", custom_host="http://127.0.0.1:8000/v1")
    request = openai_.build(call(), target)
    assert request.url == "http://127.0.0.1:8000/v1/chat/completions" and request.guarded


def test_settings_override_the_base_url() -> None:
    adapter = OpenAIFormat(PROFILES["groq"], "http://proxy.example/v1/")
    assert adapter.build(call(), Target(provider="groq")).url == "http://proxy.example/v1/chat/completions"


def test_unchanged_bodies_are_the_same_bytes() -> None:
    c = call({"model": "m", "messages": [], "future_param": {"x": [1]}})
    assert OpenAIFormat(PROFILES["openai"]).build(c, Target(provider="openai")).body is c.body


def test_deepseek_drops_reasoning_content_from_history() -> None:
    body = {
        "model": "deepseek-reasoner",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "reasoning_content": "long thoughts"},
        ],
    }
    sent = msgspec.json.decode(
        OpenAIFormat(PROFILES["deepseek"]).build(call(body), Target(provider="deepseek")).body
    )
    assert sent["messages"][1] == {"role": "assistant", "content": "a"}


def test_endpoints_outside_the_profile_are_refused() -> None:
    with pytest.raises(UnsupportedEndpoint, match="embeddings is not supported by perplexity-ai"):
        OpenAIFormat(PROFILES["perplexity-ai"]).build(
            call(endpoint="embeddings", path="/embeddings"), Target(provider="perplexity-ai")
        )


def test_proxy_copies_client_headers_but_never_gateway_ones() -> None:
    c = Call(
        endpoint="proxy",
        method="GET",
        path="/files",
        query="limit=2",
        body=b"",
        json=None,
        content_type="",
        stream=False,
        request_id="r",
        trace_id="t",
        metadata={},
        headers={
            "x-portkey-api-key": "pk",
            "x-portkey-provider": "openai",
            "authorization": "Bearer k",
            "host": "gw",
            "content-length": "0",
            "openai-beta": "assistants=v2",
            "user-agent": "sdk",
        },
    )
    request = OpenAIFormat(PROFILES["openai"]).build(c, Target(provider="openai", api_key=Secret("k")))
    assert request.url == "https://api.openai.com/v1/files?limit=2"
    assert request.headers == {
        "openai-beta": "assistants=v2",
        "user-agent": "sdk",
        "authorization": "Bearer k",
    }


def test_error_carries_provider_status_and_relays_retry_after() -> None:
    adapter = OpenAIFormat(PROFILES["openai"])
    err = adapter.error(
        Target(provider="openai"),
        429,
        {"retry-after": "3", "x-secret": "no"},
        b'{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
    )
    assert err.http_status == 429 and err.retryable
    assert err.body() == {
        "error": {
            "message": "openai error: slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        "provider": "openai",
    }
    assert err.headers == {"retry-after": "3"}


def translator(slug: str) -> PassthroughStream:
    return OpenAIFormat(PROFILES[slug]).translator(call(), Target(provider=slug))


def relay(slug: str, pieces: list[bytes]) -> bytes:
    t = translator(slug)
    return b"".join(t.feed(p) for p in pieces) + t.close()


def test_passthrough_relays_the_bytes_unchanged_however_they_are_split() -> None:
    raw = fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt")
    assert relay("openai", [raw]) == raw
    for cut in range(1, len(raw), 13):
        assert relay("openai", [raw[:cut], raw[cut:]]) == raw


def test_slow_path_output_is_the_same_frames() -> None:
    raw = fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt")
    with_noise = b": keep-alive\n\n" + raw.replace(b"\n\n", b"\r\n\r\n", 3)
    assert relay("openai", [with_noise]) == raw


def test_passthrough_raises_on_in_stream_errors_with_the_output_before_them() -> None:
    raw = fixture_bytes("openai-compatible/openrouter.stream.comments-and-error.sse.txt")
    with pytest.raises(StreamInterrupted) as caught:
        relay("openrouter", [raw])
    assert caught.value.error.http_status == 400
    assert "Token limit reached" in caught.value.error.message
    assert caught.value.partial.count(b"data: ") == 3  # the three chunks before the error
    assert b"OPENROUTER PROCESSING" not in caught.value.partial


def test_cut_off_and_empty_streams_are_errors() -> None:
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
    with pytest.raises(StreamInterrupted) as cut:
        relay("openai", [chunk])
    assert isinstance(cut.value.error, UpstreamUnavailable)
    with pytest.raises(StreamInterrupted):
        relay("openai", [b""])
    finished = chunk.replace(b"null", b'"stop"')
    assert relay("openai", [finished]) == finished + b"data: [DONE]\n\n"


def test_passthrough_splits_events_joined_by_single_newlines() -> None:
    raw = b'data: {"choices":[],"a":1}\ndata: {"choices":[],"a":2}\n\ndata: [DONE]\n\n'
    assert (
        relay("deepinfra", [raw])
        == b'data: {"choices":[],"a":1}\n\ndata: {"choices":[],"a":2}\n\ndata: [DONE]\n\n'
    )


def test_mistral_stream_tool_calls_get_ordinal_indexes() -> None:
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"id": "abcdefghi", "function": {"name": "f", "arguments": "{}"}}]},
            }
        ]
    }
    frame = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    t = translator("mistral-ai")
    out = (t.feed(frame) + t.feed(frame)).split(b"\n\n")
    first, second = (json.loads(part[6:]) for part in out[:2])
    assert first["choices"][0]["delta"]["tool_calls"][0] == {
        "id": "abcdefghi",
        "index": 0,
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    assert second["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
