"""Gemini end to end: the openai, portkey-ai and anthropic SDKs against the gateway, a fake
Gemini API on loopback answering with recorded bodies and checking what it receives (the
x-goog-api-key header, the translated body, alt=sse for streams)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from portkey_ai import Portkey

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes, fixture_json

KEY = "AIza-gemini-test-key-0123456789"
FLASH = "/v1beta/models/gemini-2.0-flash"


def headers(fake: FakeUpstream) -> dict[str, str]:
    return {"x-portkey-provider": "google", "x-portkey-custom-host": fake.url}


def client(gateway: GatewayServer, fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY, base_url=f"{gateway.url}/v1", max_retries=0, default_headers=headers(fake)
    )


def test_chat_is_translated_and_the_key_goes_in_a_header(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1beta/models/gemini-3-pro-preview:generateContent",
        Reply(body=fixture_bytes("gemini/generateContent.text.json")),
    )
    raw = client(gateway, fake).chat.completions.with_raw_response.create(
        model="gemini-3-pro-preview",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How many r's in strawberry?"},
        ],
        max_tokens=500,
    )
    body = json.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)
    openapi.check("CreateChatCompletionResponse", body)
    assert "3" in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 244
    assert raw.http_response.headers["x-portkey-provider"] == "google"
    seen = fake.last()
    assert seen.headers["x-goog-api-key"] == KEY and "authorization" not in seen.headers
    assert KEY not in seen.query
    assert seen.json() == {
        "contents": [{"role": "user", "parts": [{"text": "How many r's in strawberry?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 500},
    }


def test_a_streamed_tool_call_then_its_result(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        f"{FLASH}:streamGenerateContent",
        Stream(chunks=[fixture_bytes("gemini/streamGenerateContent.function-call.sse.txt")]),
    )
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_capital",
                "description": "Get the capital of a country.",
                "parameters": {
                    "type": "object",
                    "properties": {"country": {"type": "string"}},
                    "required": ["country"],
                },
            },
        }
    ]
    question: Any = {"role": "user", "content": "What is the temperature of the capital of France?"}
    sdk = client(gateway, fake)
    with sdk.chat.completions.stream(model="gemini-2.0-flash", messages=[question], tools=tools) as stream:
        for event in stream:
            if event.type == "chunk":
                ChatCompletionChunk.model_validate(event.chunk.model_dump())
        final = stream.get_final_completion()
    assert fake.last().query == "alt=sse"
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_capital" and json.loads(call.function.arguments) == {
        "country": "France"
    }

    fake.on("POST", f"{FLASH}:generateContent", Reply(body=fixture_bytes("gemini/generateContent.text.json")))
    sdk.chat.completions.create(
        model="gemini-2.0-flash",
        tools=tools,
        messages=[
            question,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"return_value": "Paris"}'},
        ],
    )
    contents = fake.last().json()["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_capital", "args": {"country": "France"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_capital", "response": {"return_value": "Paris"}}}],
    }


def test_a_stream_that_ends_without_its_finish_reason_is_an_error(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    raw = fixture_bytes("gemini/streamGenerateContent.text.sse.txt")
    fake.on(
        "POST",
        "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent",
        Stream(chunks=[raw[: raw.rindex(b"data: ")]]),
    )
    text = ""
    with pytest.raises(openai.APIError, match="before its finish reason"):
        for chunk in client(gateway, fake).chat.completions.create(
            model="gemini-2.0-flash-exp",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
        ):
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert text == "The capital of France"


def test_errors_keep_status_and_ask_for_the_wait_gemini_asks_for(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", f"{FLASH}:generateContent", Reply(status=429, body=fixture_json("gemini/error.429.json")))
    with pytest.raises(openai.RateLimitError) as caught:
        client(gateway, fake).chat.completions.create(
            model="gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    assert caught.value.response.headers.get("retry-after") == "35"
    assert KEY not in caught.value.response.text


def test_embeddings_base64_through_the_openai_sdk(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        Reply(body={"embeddings": [{"values": [0.5, -0.25, 2.0]}, {"values": [1.0, 0.125, 0.0]}]}),
    )
    result = client(gateway, fake).embeddings.create(
        model="text-embedding-004", input=["a", "b"]
    )  # base64 by default
    assert [d.embedding for d in result.data] == [[0.5, -0.25, 2.0], [1.0, 0.125, 0.0]]
    assert [r["content"]["parts"][0]["text"] for r in fake.last().json()["requests"]] == ["a", "b"]


def test_models_portkey_sdk_and_the_messages_api(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "GET",
        "/v1beta/models",
        Reply(body={"models": [{"name": "models/gemini-2.0-flash"}, {"name": "models/text-embedding-004"}]}),
    )
    models = client(gateway, fake).models.list()
    assert [m.id for m in models.data] == ["gemini-2.0-flash", "text-embedding-004"]

    fake.on(
        "POST",
        f"{FLASH}:generateContent",
        Reply(body=fixture_bytes("gemini/generateContent.function-call.json")),
    )
    portkey: Any = Portkey(
        base_url=f"{gateway.url}/v1", provider="google", custom_host=fake.url, Authorization=KEY
    )
    answer = portkey.chat.completions.create(
        model="gemini-2.0-flash",
        messages=[{"role": "user", "content": "Where am I?"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "get_user_country", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    )
    assert answer.choices[0].message.tool_calls[0].function.name == "get_user_country"
    assert fake.last().headers["x-goog-api-key"] == KEY

    messages = anthropic.Anthropic(
        api_key=KEY, base_url=gateway.url, max_retries=0, default_headers=headers(fake)
    )
    message = messages.messages.create(
        model="gemini-2.0-flash", max_tokens=100, messages=[{"role": "user", "content": "Where am I?"}]
    )
    Message.model_validate(message.model_dump())
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "../../v1/files", "messages": [{"role": "user", "content": "x"}]}, "model"),
        (
            {
                "model": "gemini-2.0-flash",
                "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}],
            },
            "messages[0].tool_call_id",
        ),
        (
            {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}], "tool_choice": 3},
            "tool_choice",
        ),
    ],
)
def test_bad_requests_are_400s_before_anything_is_sent(
    gateway: GatewayServer, fake: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway, fake).chat.completions.create(**body)
    assert caught.value.param == param
    assert fake.requests == []
