"""Anthropic and Bedrock end to end: the official SDKs against the gateway, fake providers on
loopback that check what they receive (auth headers, body shape, a SigV4 signature recomputed
from the AWS specification), and /v1/messages for every kind of provider."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import anthropic
import openai
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support import aws, openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Recorded, Reply, Stream, fixture_bytes, fixture_json

AK, SK = "AKIDEXAMPLE", "bedrock-test-secret"
NOVA = "us.amazon.nova-micro-v1:0"
CLAUDE_ON_BEDROCK = "anthropic.claude-3-haiku-20240307-v1:0"
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def bedrock_headers(fake: FakeUpstream) -> dict[str, str]:
    return {
        "x-portkey-provider": "bedrock",
        "x-portkey-custom-host": fake.url,
        "x-portkey-aws-access-key-id": AK,
        "x-portkey-aws-secret-access-key": SK,
        "x-portkey-aws-region": "eu-west-1",
    }


def assert_signed(seen: Recorded) -> None:
    expected = aws.expected_authorization(
        method=seen.method,
        path=seen.raw_path,
        query=seen.query,
        headers=seen.headers,
        body=seen.body,
        access_key=AK,
        secret_key=SK,
        region="eu-west-1",
    )
    assert seen.headers["authorization"] == expected
    assert "SignedHeaders=content-type;host;x-amz-date" in expected


def chat_client(gateway: GatewayServer, headers: dict[str, str], key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gateway.url}/v1", max_retries=0, default_headers=headers)


# -- Anthropic behind the OpenAI surface ----------------------------------------------------------


def anthropic_headers(fake: FakeUpstream) -> dict[str, str]:
    return {"x-portkey-provider": "anthropic", "x-portkey-custom-host": f"{fake.url}/v1"}


def test_chat_through_anthropic(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/messages", Reply(body=fixture_bytes("anthropic/messages.text.json")))
    client = chat_client(gateway, anthropic_headers(fake), key="sk-ant-test")
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": "Hello, how are you?"},
        ],
    )
    body = json.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)
    openapi.check("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"].startswith("Hello! I'm doing well")
    assert raw.http_response.headers["x-portkey-provider"] == "anthropic"
    seen = fake.last()
    assert seen.headers["x-api-key"] == "sk-ant-test" and "authorization" not in seen.headers
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.json()["system"] == "Be nice." and seen.json()["max_tokens"] == 4096


def test_streamed_tool_call_through_anthropic_reassembles(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST", "/v1/messages", Stream(chunks=[fixture_bytes("anthropic/messages.stream.tool-use.sse.txt")])
    )
    client = chat_client(
        gateway, {**anthropic_headers(fake), "anthropic-beta": "fine-grained-tool-streaming-2025-05-14"}
    )
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    with client.chat.completions.stream(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "Paris?"}], tools=tools
    ) as stream:
        for event in stream:
            if event.type == "chunk":
                ChatCompletionChunk.model_validate(event.chunk.model_dump())
        final = stream.get_final_completion()
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "location": "Paris"
    }
    assert final.choices[0].finish_reason == "tool_calls"
    assert fake.last().headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"


def test_claude_code_style_x_api_key(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/messages", Reply(body=fixture_bytes("anthropic/messages.text.json")))
    with gateway.client() as http:
        resp = http.post(
            "/v1/messages",
            json={
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={**anthropic_headers(fake), "x-api-key": "sk-ant-code"},
        )
    assert resp.status_code == 200
    assert fake.last().headers["x-api-key"] == "sk-ant-code"


def test_anthropic_overload_mid_stream_reaches_the_sdk(gateway: GatewayServer, fake: FakeUpstream) -> None:
    body = (
        fixture_bytes("anthropic/messages.stream.text.sse.txt").split(b"event: message_delta")[0]
        + b"event: error\n"
        + b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    fake.on("POST", "/v1/messages", Stream(chunks=[body[:300], body[300:]]))
    stream = chat_client(gateway, anthropic_headers(fake)).chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        for _ in stream:
            pass


# -- Bedrock ------------------------------------------------------------------------------------


def test_chat_through_bedrock_is_signed(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", f"/model/{NOVA}/converse", Reply(body=fixture_bytes("bedrock/converse.tool-use.json")))
    client = chat_client(gateway, bedrock_headers(fake))
    completion = client.chat.completions.create(
        model=NOVA,
        messages=[{"role": "user", "content": "Capital of France?"}],
        tools=[{"type": "function", "function": {"name": "get_capital", "parameters": {"type": "object"}}}],
    )
    ChatCompletion.model_validate(completion.model_dump())
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and json.loads(call.function.arguments) == {"country": "France"}
    seen = fake.last()
    assert seen.raw_path == f"/model/{quote(NOVA, safe='')}/converse"
    assert_signed(seen)
    assert seen.json()["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_capital"


def test_converse_stream_through_bedrock(gateway: GatewayServer, fake: FakeUpstream) -> None:
    raw = fixture_bytes("bedrock/converse-stream.tool-use.eventstream.bin")
    fake.on(
        "POST",
        f"/model/{NOVA}/converse-stream",
        Stream(
            chunks=[raw[i : i + 500] for i in range(0, len(raw), 500)],
            content_type="application/vnd.amazon.eventstream",
        ),
    )
    client = chat_client(gateway, bedrock_headers(fake))
    with client.chat.completions.stream(
        model=NOVA, messages=[{"role": "user", "content": "x"}], stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert (final.choices[0].message.tool_calls or [])[0].function.name
    assert final.usage is not None and final.usage.prompt_tokens > 0
    assert_signed(fake.last())


def test_bedrock_exception_frame_mid_stream(gateway: GatewayServer, fake: FakeUpstream) -> None:
    body = (
        aws.event("messageStart", {"role": "assistant"})
        + aws.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
        + aws.exception("throttlingException", "Too many tokens")
    )
    fake.on(
        "POST",
        f"/model/{NOVA}/converse-stream",
        Stream(chunks=[body], content_type="application/vnd.amazon.eventstream"),
    )
    stream = chat_client(gateway, bedrock_headers(fake)).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="Too many tokens"):
        for chunk in stream:
            received.append(chunk)
    assert received  # the text before the failure arrived first


def test_bedrock_errors_keep_status_and_exception_type(gateway: GatewayServer, fake: FakeUpstream) -> None:
    recorded = fixture_json("bedrock/error.validation.json")
    fake.on(
        "POST",
        f"/model/{NOVA}/converse",
        Reply(
            status=400,
            body=recorded["body"],
            headers={"x-amzn-errortype": recorded["headers"]["x-amzn-errortype"]},
        ),
    )
    with pytest.raises(openai.BadRequestError) as caught:
        chat_client(gateway, bedrock_headers(fake)).chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "ValidationException"
    assert "The content field in the Message object" in caught.value.message


def test_bedrock_without_credentials_is_a_clear_400(gateway: GatewayServer, fake: FakeUpstream) -> None:
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            json={"model": NOVA, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-portkey-provider": "bedrock", "x-portkey-custom-host": fake.url},
        )
    assert resp.status_code == 400 and "bedrock needs credentials" in resp.json()["error"]["message"]
    assert not fake.requests


def test_bedrock_embeddings_titan(gateway: GatewayServer, fake: FakeUpstream) -> None:
    model = "amazon.titan-embed-text-v2:0"
    fake.on(
        "POST",
        f"/model/{model}/invoke",
        Reply(
            body={"embedding": [0.5, -0.25, 0.125], "inputTextTokenCount": 3},
            headers={"x-amzn-bedrock-input-token-count": "3"},
        ),
    )
    result = chat_client(gateway, bedrock_headers(fake)).embeddings.create(model=model, input="hello")
    assert result.data[0].embedding == [0.5, -0.25, 0.125]  # the SDK asked for base64 and decoded it
    assert result.usage.prompt_tokens == 3
    assert fake.last().json() == {"inputText": "hello"}
    assert_signed(fake.last())


# -- /v1/messages with the anthropic SDK ------------------------------------------------------------


def messages_client(gateway: GatewayServer, headers: dict[str, str]) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-client", base_url=gateway.url, max_retries=0, default_headers=headers
    )


def tool_use_check(message: Message) -> None:
    Message.model_validate(message.model_dump())
    assert message.stop_reason == "tool_use"
    tool = next(b for b in message.content if b.type == "tool_use")
    assert tool.type == "tool_use" and isinstance(tool.input, dict) and tool.name


@pytest.mark.parametrize("route", ["anthropic", "openai", "bedrock-converse", "bedrock-claude"])
def test_messages_stream_for_every_kind_of_provider(
    gateway: GatewayServer, fake: FakeUpstream, route: str
) -> None:
    if route == "anthropic":
        headers = anthropic_headers(fake)
        fake.on(
            "POST",
            "/v1/messages",
            Stream(chunks=[fixture_bytes("anthropic/messages.stream.tool-use.sse.txt")]),
        )
        model = "claude-sonnet-4"
    elif route == "openai":
        headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"}
        fake.on(
            "POST",
            "/v1/chat/completions",
            Stream(chunks=[fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt")]),
        )
        model = "gpt-4o-mini"
    elif route == "bedrock-converse":
        headers = bedrock_headers(fake)
        fake.on(
            "POST",
            f"/model/{NOVA}/converse-stream",
            Stream(
                chunks=[fixture_bytes("bedrock/converse-stream.tool-use.eventstream.bin")],
                content_type="application/vnd.amazon.eventstream",
            ),
        )
        model = NOVA
    else:
        headers = bedrock_headers(fake)
        sse = fixture_bytes("anthropic/messages.stream.tool-use.sse.txt").decode()
        frames = b"".join(
            aws.event("chunk", {"bytes": __import__("base64").b64encode(line[6:].encode()).decode()})
            for line in sse.splitlines()
            if line.startswith("data: ")
        )
        fake.on(
            "POST",
            f"/model/{CLAUDE_ON_BEDROCK}/invoke-with-response-stream",
            Stream(chunks=[frames], content_type="application/vnd.amazon.eventstream"),
        )
        model = CLAUDE_ON_BEDROCK
    client = messages_client(gateway, headers)
    tools: Any = [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ]
    kinds = []
    for event in client.messages.create(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=tools,
        stream=True,
    ):
        EVENT.validate_python(event.model_dump())
        kinds.append(event.type)
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Weather?"}], tools=tools
    ) as stream:
        final = stream.get_final_message()
    tool_use_check(final)
    if route.startswith("bedrock"):
        assert_signed(fake.last())


@pytest.mark.parametrize("route", ["anthropic", "openai", "bedrock-converse", "bedrock-claude"])
def test_messages_non_stream_for_every_kind_of_provider(
    gateway: GatewayServer, fake: FakeUpstream, route: str
) -> None:
    if route == "anthropic":
        headers = anthropic_headers(fake)
        fake.on(
            "POST", "/v1/messages", Reply(body=fixture_bytes("anthropic/messages.tool-use.parallel.json"))
        )
        model = "claude-haiku-4-5"
    elif route == "openai":
        headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"}
        fake.on(
            "POST",
            "/v1/chat/completions",
            Reply(body=fixture_bytes("openai/chat-completion.tool-calls.json")),
        )
        model = "gpt-4o"
    elif route == "bedrock-converse":
        headers = bedrock_headers(fake)
        fake.on(
            "POST", f"/model/{NOVA}/converse", Reply(body=fixture_bytes("bedrock/converse.tool-use.json"))
        )
        model = NOVA
    else:
        headers = bedrock_headers(fake)
        fake.on(
            "POST",
            f"/model/{CLAUDE_ON_BEDROCK}/invoke",
            Reply(body=fixture_bytes("anthropic/messages.tool-use.parallel.json")),
        )
        model = CLAUDE_ON_BEDROCK
    message = messages_client(gateway, headers).messages.create(
        model=model,
        max_tokens=100,
        system="Use tools.",
        messages=[{"role": "user", "content": "Who is youngest?"}],
        tools=[{"name": "retrieve_entity_info", "input_schema": {"type": "object"}}],
    )
    tool_use_check(message)
    sent = fake.last().json()
    if route == "openai":
        assert sent["messages"][0] == {"role": "system", "content": "Use tools."}
        assert sent["tools"][0]["function"]["name"] == "retrieve_entity_info"
    if route == "bedrock-claude":
        assert sent["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent


def test_messages_errors_are_anthropic_shaped(gateway: GatewayServer, fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        messages_client(gateway, {}).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "x-portkey-provider" in body["error"]["message"]
    fake.on(
        "POST", "/v1/chat/completions", Reply(status=429, body={"error": {"message": "slow", "type": "rate"}})
    )
    with pytest.raises(anthropic.RateLimitError) as limited:
        messages_client(
            gateway, {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"}
        ).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.json()["error"]["type"] == "rate_limit_error"


def test_count_tokens(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/messages/count_tokens", Reply(body={"input_tokens": 14}))
    counted = messages_client(gateway, anthropic_headers(fake)).messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hello"}]
    )
    assert counted.input_tokens == 14
    with pytest.raises(anthropic.BadRequestError, match="not supported by openai"):
        messages_client(gateway, {"x-portkey-provider": "openai"}).messages.count_tokens(
            model="gpt-4o", messages=[{"role": "user", "content": "Hello"}]
        )


def test_fallback_anthropic_to_bedrock_to_openai_streaming(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on(
        "POST",
        "/v1/messages",
        Reply(
            status=529, body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        ),
    )
    fake.on(
        "POST",
        f"/model/{NOVA}/converse-stream",
        Reply(
            status=429,
            body={"message": "Too many requests"},
            headers={
                "x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            },
        ),
    )
    fake.on(
        "POST",
        "/v1/chat/completions",
        Stream(chunks=[fixture_bytes("openai/chat-completion.stream.text-after-tool.sse.txt")]),
    )
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {
                "provider": "anthropic",
                "api_key": "sk-ant",
                "custom_host": f"{fake.url}/v1",
                "override_params": {"model": "claude-sonnet-4-5"},
            },
            {
                "provider": "bedrock",
                "custom_host": fake.url,
                "aws_access_key_id": AK,
                "aws_secret_access_key": SK,
                "aws_region": "eu-west-1",
                "override_params": {"model": NOVA},
            },
            {"provider": "openai", "api_key": "sk-oa", "custom_host": f"{fake.url}/v1"},
        ],
    }
    client = chat_client(gateway, {"x-portkey-config": json.dumps(config), "x-portkey-debug": "true"})
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
    ) as resp:
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[2]"
        assert (
            resp.headers["x-crossroads-attempts"]
            == "config.targets[0]=529, config.targets[1]=429, config.targets[2]=200"
        )
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text
    assert [r.path for r in fake.requests] == [
        "/v1/messages",
        f"/model/{NOVA}/converse-stream",
        "/v1/chat/completions",
    ]
