"""Chat completions end to end: the official openai SDK -> the gateway -> a fake OpenAI on loopback."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes, fixture_json, jsonl_as_sse

KEY = "sk-test-provider-key-123456"


def client(
    gateway: GatewayServer, fake: FakeUpstream, provider: str = "openai", **headers: str
) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY,
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={
            "x-portkey-provider": provider,
            "x-portkey-custom-host": f"{fake.url}/v1",
            **headers,
        },
    )


def test_non_streaming_passes_body_through_and_back(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    request = {
        "model": "gpt-4.1-nano",
        "messages": [{"role": "user", "content": "Hello!"}],
        "brand_new_param": {"nested": [1, 2]},  # unknown fields must survive
    }
    raw = client(gateway, fake).chat.completions.with_raw_response.create(
        model="gpt-4.1-nano",
        messages=[{"role": "user", "content": "Hello!"}],
        extra_body={"brand_new_param": {"nested": [1, 2]}},
    )
    completion = raw.parse()
    ChatCompletion.model_validate(completion.model_dump())
    body = json.loads(raw.http_response.content)
    openapi.check("CreateChatCompletionResponse", body)
    assert body == fixture_json("openai/chat-completion.text.json")

    seen = fake.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.json() == request
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert not [h for h in seen.headers if h.startswith("x-portkey")]

    headers = raw.http_response.headers
    assert headers["x-portkey-provider"] == "openai"
    assert headers["x-portkey-retry-attempt-count"] == "0"
    assert headers["x-portkey-cache-status"] == "DISABLED"
    assert headers["x-portkey-request-id"]
    assert headers["x-portkey-trace-id"]


def test_request_body_bytes_reach_upstream_unchanged(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    body = b'{"model": "m",   "messages": [{"role": "user", "content": "caf\\u00e9"}], "zz": 1.50}'
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            content=body,
            headers={
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"{fake.url}/v1",
                "content-type": "application/json",
            },
        )
    assert resp.status_code == 200
    assert fake.last().body == body


def test_trace_id_is_echoed_and_generated(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    c = client(gateway, fake, **{"x-portkey-trace-id": "trace-abc"})
    raw = c.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert raw.http_response.headers["x-portkey-trace-id"] == "trace-abc"
    raw = client(gateway, fake).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    first = raw.http_response.headers["x-portkey-trace-id"]
    raw = client(gateway, fake).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert first and first != raw.http_response.headers["x-portkey-trace-id"]


def test_tool_calls_non_streaming(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.tool-calls.json"))
    )
    request = fixture_json("openai/chat-completion.tool-calls.request.json")["body"]
    completion = client(gateway, fake).chat.completions.create(**request)
    ChatCompletion.model_validate(completion.model_dump())
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls
    assert fake.last().json() == request


def test_streaming_tool_calls_reassemble(gateway: GatewayServer, fake: FakeUpstream) -> None:
    raw = fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt")
    fake.on("POST", "/v1/chat/completions", Stream(chunks=[raw[i : i + 97] for i in range(0, len(raw), 97)]))
    request = fixture_json("openai/chat-completion.stream.tool-calls.request.json")["body"]
    c = client(gateway, fake)
    chunks = list(c.chat.completions.create(**request))
    for chunk in chunks:
        # (the spec's chunk schema rejects the null finish_reason real OpenAI chunks carry,
        # so chunks are checked with the SDK's strict model instead)
        ChatCompletionChunk.model_validate(chunk.model_dump())
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    arguments = "".join(
        call.function.arguments or ""
        for chunk in chunks
        for choice in chunk.choices
        for call in (choice.delta.tool_calls or [])
        if call.function is not None
    )
    assert json.loads(arguments)

    fake.on("POST", "/v1/chat/completions", Stream(chunks=[raw]))
    with c.chat.completions.stream(**{k: v for k, v in request.items() if k != "stream"}) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls
    assert call and call[0].function.name == "get_capital"


def test_streaming_text_is_forwarded_event_by_event(gateway: GatewayServer, fake: FakeUpstream) -> None:
    raw = fixture_bytes("openai/chat-completion.stream.text-after-tool.sse.txt")
    events = [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]
    fake.on("POST", "/v1/chat/completions", Stream(chunks=events, gap=0.01))
    request = fixture_json("openai/chat-completion.stream.text-after-tool.request.json")["body"]
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client(gateway, fake).chat.completions.create(**request)
        if chunk.choices
    )
    assert text
    assert fake.last().json() == request


@pytest.mark.parametrize(
    ("fixture", "provider"),
    [
        ("openai-compatible/groq.stream.tool-call.chunks.jsonl", "groq"),
        ("openai-compatible/mistral.stream.tool-call.chunks.jsonl", "mistral-ai"),
        ("azure/chat-completion.stream.content-filter.chunks.jsonl", "openai"),
    ],
)
def test_compatible_streams_parse_strictly(
    gateway: GatewayServer, fake: FakeUpstream, fixture: str, provider: str
) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=jsonl_as_sse(fixture)))
    c = client(gateway, fake, provider)
    chunks = list(
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    )
    assert chunks
    calls = []
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                assert call.index is not None
                if call.id:
                    calls.append(call)
    if "tool-call" in fixture:
        assert calls and all(c.type == "function" for c in calls)


def test_mistral_quirks_rewrite_the_request(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    client(gateway, fake, "mistral-ai").chat.completions.create(
        model="mistral-small-latest",
        seed=7,
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_ZR5UUuTt3pf61kjwAJIYdVMj",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "content": "sunny"},
        ],
    )
    sent = fake.last().json()
    assert sent["random_seed"] == 7 and "seed" not in sent
    new_id = sent["messages"][1]["tool_calls"][0]["id"]
    assert len(new_id) == 9 and new_id.isalnum()
    assert sent["messages"][2]["tool_call_id"] == new_id


def test_openai_organization_project_and_forward_headers(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    c = client(
        gateway,
        fake,
        **{
            "x-portkey-openai-organization": "org-1",
            "x-portkey-openai-project": "proj-1",
            "x-portkey-forward-headers": "X_Custom_One, x-two",
            "x_custom_one": "c1",
            "x-two": "c2",
            "x-not-forwarded": "secret",
        },
    )
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    seen = fake.last().headers
    assert seen["openai-organization"] == "org-1"
    assert seen["openai-project"] == "proj-1"
    assert seen["x-custom-one"] == "c1"
    assert seen["x-two"] == "c2"
    assert "x-not-forwarded" not in seen
    assert not [h for h in seen if h.startswith("x-portkey")]


def test_organization_header_is_only_for_openai(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    client(gateway, fake, "groq", **{"x-portkey-openai-organization": "org-1"}).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert "openai-organization" not in fake.last().headers
