"""Cohere end to end: the openai SDK against the gateway, a fake Cohere v2 API on loopback
that answers with the recorded stream and checks the bearer key and the translated body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes

KEY = "co-test-key-0123456789"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cityAttractions",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
]


def recorded_stream() -> list[bytes]:
    lines = [
        line
        for line in fixture_bytes("openai-compatible/cohere-v2.stream.tool-call.chunks.jsonl").splitlines()
        if line.strip()
    ]
    return [b"event: " + json.loads(line)["type"].encode() + b"\ndata: " + line + b"\n\n" for line in lines]


def client(gateway: GatewayServer, fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY,
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": "cohere", "x-portkey-custom-host": fake.url},
    )


def test_streamed_parallel_tool_calls_reassemble(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v2/chat", Stream(chunks=recorded_stream()))
    with client(gateway, fake).chat.completions.stream(
        model="command-r-plus",
        messages=[{"role": "user", "content": "Weather and attractions in SF?"}],
        tools=TOOLS,
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("weather", {"location": "San Francisco"}),
        ("cityAttractions", {"city": "San Francisco"}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    seen = fake.last()
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.json()["stream"] is True and seen.json()["tools"] == TOOLS


def test_chat_and_embeddings(gateway: GatewayServer, fake: FakeUpstream) -> None:
    answer = {
        "id": "c14c80c3",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
        "finish_reason": "COMPLETE",
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 2},
            "tokens": {"input_tokens": 70, "output_tokens": 2},
        },
    }
    fake.on("POST", "/v2/chat", Reply(body=answer))
    raw = client(gateway, fake).chat.completions.with_raw_response.create(
        model="command-a-03-2025", messages=[{"role": "user", "content": "Capital of France?"}], top_p=0.5
    )
    body = json.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)
    openapi.check("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "Paris." and body["usage"]["prompt_tokens"] == 70
    assert fake.last().json()["p"] == 0.5

    fake.on(
        "POST",
        "/v2/embed",
        Reply(body={"embeddings": {"float": [[0.5, -0.25]]}, "meta": {"billed_units": {"input_tokens": 1}}}),
    )
    result = client(gateway, fake).embeddings.create(model="embed-v4.0", input="hello")  # base64 by default
    assert result.data[0].embedding == [0.5, -0.25] and result.usage.prompt_tokens == 1
    assert fake.last().json()["input_type"] == "search_document"


def test_rate_limits_and_mid_stream_cuts_are_errors(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v2/chat", Reply(status=429, body={"message": "You are using a Trial key"}))
    with pytest.raises(openai.RateLimitError, match="Trial key"):
        client(gateway, fake).chat.completions.create(
            model="command-r", messages=[{"role": "user", "content": "hi"}]
        )

    fake.on("POST", "/v2/chat", Stream(chunks=recorded_stream()[:30]))
    with pytest.raises(openai.APIError, match="before message-end"):
        for _ in client(gateway, fake).chat.completions.create(
            model="command-r", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, stream=True
        ):
            pass


def test_rerank_goes_through_the_proxy_route_to_v2(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v2/rerank", Reply(body={"results": [{"index": 1, "relevance_score": 0.9}]}))
    response = httpx.post(
        f"{gateway.url}/v1/rerank",
        headers={
            "x-portkey-provider": "cohere",
            "x-portkey-custom-host": fake.url,
            "authorization": f"Bearer {KEY}",
        },
        json={"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"]},
    )
    assert response.status_code == 200 and response.json()["results"][0]["index"] == 1
    assert fake.last().headers["authorization"] == f"Bearer {KEY}"


def test_a_named_tool_choice_offers_only_that_tool(gateway: GatewayServer, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError, match="not in tools"):
        client(gateway, fake).chat.completions.create(
            model="command-r",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert fake.requests == []
