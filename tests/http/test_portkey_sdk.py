"""The portkey-ai SDK pointed at the gateway: its headers, its parsing, its retry rule."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from portkey_ai import Portkey, createHeaders
from portkey_ai._vendor.openai import APIStatusError, InternalServerError  # the SDK's inference errors
from portkey_ai.api_resources.exceptions import APIStatusError as ControlPlaneError  # its own APIs' errors

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes


def portkey(gateway: GatewayServer, fake: FakeUpstream, **kwargs: Any) -> Any:
    # The SDK's own annotations are loose (stream/non-stream unions), so tests treat it as Any.
    return Portkey(
        base_url=f"{gateway.url}/v1",
        provider="openai",
        custom_host=f"{fake.url}/v1",
        Authorization="sk-provider-key",
        **kwargs,
    )


def test_chat_and_response_headers(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    client = portkey(
        gateway,
        fake,
        trace_id="trace-sdk-1",
        metadata={"_user": "u1", "env": "dev"},
        forward_headers=["x_custom_one"],
        x_custom_one="c1",
    )
    completion = client.chat.completions.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": "Hi"}]
    )
    ChatCompletion.model_validate(completion.model_dump())
    headers = completion.get_headers() or {}
    assert headers["trace-id"] == "trace-sdk-1"
    assert headers["provider"] == "openai"
    assert headers["cache-status"] == "DISABLED"
    assert headers["retry-attempt-count"] == "0"
    assert headers["request-id"]
    seen = fake.last()
    assert seen.headers["authorization"] == "Bearer sk-provider-key"
    assert seen.headers["x-custom-one"] == "c1"
    assert not [h for h in seen.headers if h.startswith("x-portkey")]
    assert "x-stainless-lang" not in seen.headers  # SDK bookkeeping is not forwarded on unified routes


def test_streaming(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Stream(chunks=[fixture_bytes("openai/chat-completion.stream.text-after-tool.sse.txt")]),
    )
    client = portkey(gateway, fake)
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        if chunk.choices
    )
    assert text


def test_model_portkey_default_means_no_model(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/embeddings", Reply(body=fixture_bytes("openai/embeddings.json")))
    client = portkey(gateway, fake)
    client.embeddings.create(input="hello")  # the SDK sends model="portkey-default"
    assert "model" not in fake.last().json()


def test_server_errors_are_not_retried_by_the_sdk(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(
            status=500,
            body={"error": {"message": "boom", "type": "server_error", "param": None, "code": None}},
        ),
    )
    with pytest.raises(InternalServerError):
        portkey(gateway, fake).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert len(fake.requests) == 1  # x-portkey-request-id on the 500 stops the SDK's silent retry


def test_gateway_errors_are_not_retried_either(gateway: GatewayServer) -> None:
    client: Any = Portkey(
        base_url=f"{gateway.url}/v1", provider="openai", custom_host="http://127.0.0.1:1/v1"
    )
    with pytest.raises(APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502


def test_openai_sdk_with_create_headers(gateway: GatewayServer, fake: FakeUpstream) -> None:
    import openai

    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    client = openai.OpenAI(
        api_key="sk-openai",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers=createHeaders(
            provider="openai",
            api_key="PORTKEY_KEY",
            custom_host=f"{fake.url}/v1",
            metadata={"u": "1"},
            trace_id="tt",
        ),
    )
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.http_response.headers["x-portkey-trace-id"] == "tt"
    assert fake.last().headers["authorization"] == "Bearer sk-openai"
    assert "PORTKEY_KEY" not in str(fake.last().headers)


def test_mock_provider_through_the_portkey_sdk(gateway: GatewayServer) -> None:
    client: Any = Portkey(base_url=f"{gateway.url}/v1", provider="mock")
    completion = client.chat.completions.create(
        model="mock-1", messages=[{"role": "user", "content": "ping"}]
    )
    assert completion.choices[0].message.content == "ping"
    vectors = client.embeddings.create(model="mock-embedding-1", input="x")
    assert vectors.data


def test_control_plane_calls_are_refused_and_never_reach_the_provider(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    client = portkey(gateway, fake)
    calls = [
        ("Feedback", lambda: client.feedback.create(trace_id="t-1", value=1)),
        (
            "Request logs",
            lambda: client.logs.create(request={"messages": [{"role": "user", "content": "secret chat"}]}),
        ),
        ("Request logs", lambda: client.logs.exports.create(filters={}, requested_data=["id"])),
        ("Prompt templates", lambda: client.prompts.completions.create(prompt_id="pp-1", variables={})),
    ]
    for feature, call in calls:
        with pytest.raises(ControlPlaneError) as refused:
            call()
        assert refused.value.status_code == 501, feature
        error = refused.value.response.json()["error"]
        assert feature in error["message"] and error["code"] == "not_implemented"
    assert fake.requests == []
    # Without any provider header: the same answer, not "x-portkey-provider header is required".
    bare = gateway.client().post("/v1/feedback", json={"trace_id": "t-1", "value": 1})
    assert bare.status_code == 501 and "Feedback" in bare.json()["error"]["message"]
