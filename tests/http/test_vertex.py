"""Vertex AI end to end: Gemini and Claude models through the openai and anthropic SDKs, with
an access token or a service account key. The fake serves Vertex's URLs and an OAuth2 token
endpoint that verifies the signed JWT grant with the key's public half."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.google import TOKEN, service_account, token_endpoint
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes

ROOT = "/v1/projects/my-project/locations/europe-west4/publishers"


def headers(fake: FakeUpstream, **extra: str) -> dict[str, str]:
    return {
        "x-portkey-provider": "vertex-ai",
        "x-portkey-custom-host": fake.url,
        "x-portkey-vertex-project-id": "my-project",
        "x-portkey-vertex-region": "europe-west4",
        **extra,
    }


def client(gateway: GatewayServer, extra: dict[str, str], key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gateway.url}/v1", max_retries=0, default_headers=extra)


def test_gemini_on_vertex_with_an_access_token(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        f"{ROOT}/google/models/gemini-2.0-flash:generateContent",
        Reply(body=fixture_bytes("gemini/generateContent.function-call.json")),
    )
    raw = client(gateway, headers(fake)).chat.completions.with_raw_response.create(
        model="gemini-2.0-flash", messages=[{"role": "user", "content": "Where am I?"}]
    )
    body = json.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)
    openapi.check("CreateChatCompletionResponse", body)
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    seen = fake.last()
    assert seen.headers["authorization"] == f"Bearer {TOKEN}" and "x-goog-api-key" not in seen.headers
    assert seen.json()["contents"] == [{"role": "user", "parts": [{"text": "Where am I?"}]}]


def test_a_service_account_key_is_exchanged_once_and_the_token_reused(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/token", token_endpoint(fake))
    path = (
        "/v1/projects/sa-project/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash-exp:streamGenerateContent"
    )
    fake.on("POST", path, Stream(chunks=[fixture_bytes("gemini/streamGenerateContent.text.sse.txt")]))
    config = {
        "provider": "vertex-ai",
        "custom_host": fake.url,
        "vertex_service_account_json": service_account(fake),  # an object, as Portkey configs write it
    }
    sdk = client(gateway, {"x-portkey-config": json.dumps(config)}, key="unused")
    for _ in range(3):
        text = ""
        for chunk in sdk.chat.completions.create(
            model="gemini-2.0-flash-exp",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
        ):
            ChatCompletionChunk.model_validate(chunk.model_dump())
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
        assert text == "The capital of France is Paris.\n"
    assert [r.path for r in fake.requests].count("/token") == 1
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests if r.path == path)


def test_a_refused_key_is_a_401_that_shows_nothing_of_the_key(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on(
        "POST",
        "/token",
        Reply(status=400, body={"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    )
    extra = headers(fake, **{"x-portkey-vertex-service-account-json": json.dumps(service_account(fake))})
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=extra,
        json={"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 401
    assert "Invalid JWT Signature" in response.json()["error"]["message"]
    assert "PRIVATE KEY" not in response.text and "assertion" not in response.text
    assert [r.path for r in fake.requests] == ["/token"]


def test_claude_on_vertex_chat_and_stream(gateway: GatewayServer, fake: FakeUpstream) -> None:
    model = "claude-sonnet-4@20250514"
    fake.on(
        "POST",
        f"{ROOT}/anthropic/models/{model}:rawPredict",
        Reply(body=fixture_bytes("anthropic/messages.text.json")),
    )
    sdk = client(gateway, headers(fake))
    answer = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello, how are you?"}]
    )
    assert (answer.choices[0].message.content or "").startswith("Hello! I'm doing well")
    sent = fake.last().json()
    assert (
        sent["anthropic_version"] == "vertex-2023-10-16"
        and "model" not in sent
        and sent["max_tokens"] == 4096
    )

    fake.on(
        "POST",
        f"{ROOT}/anthropic/models/{model}:streamRawPredict",
        Stream(chunks=[fixture_bytes("anthropic/messages.stream.tool-use.sse.txt")]),
    )
    with sdk.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"


def test_claude_on_vertex_through_the_messages_api(gateway: GatewayServer, fake: FakeUpstream) -> None:
    model = "claude-sonnet-4@20250514"
    fake.on(
        "POST",
        f"{ROOT}/anthropic/models/{model}:rawPredict",
        Reply(body=fixture_bytes("anthropic/messages.text.json")),
    )
    sdk = anthropic.Anthropic(
        api_key=TOKEN, base_url=gateway.url, max_retries=0, default_headers=headers(fake)
    )
    message = sdk.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "Hello"}])
    Message.model_validate(message.model_dump())
    sent = fake.last().json()
    assert sent == {
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hello"}],
        "anthropic_version": "vertex-2023-10-16",
    }
    assert fake.last().headers["authorization"] == f"Bearer {TOKEN}"


def test_embeddings_on_vertex(gateway: GatewayServer, fake: FakeUpstream) -> None:
    answer = {
        "predictions": [
            {"embeddings": {"values": [0.5, 0.25], "statistics": {"token_count": 3, "truncated": False}}},
            {"embeddings": {"values": [1.0, -1.0], "statistics": {"token_count": 4, "truncated": False}}},
        ]
    }
    fake.on("POST", f"{ROOT}/google/models/text-embedding-005:predict", Reply(body=answer))
    result = client(gateway, headers(fake)).embeddings.create(
        model="text-embedding-005", input=["a b", "c d e"], dimensions=2
    )
    assert [d.embedding for d in result.data] == [[0.5, 0.25], [1.0, -1.0]]
    assert result.usage.prompt_tokens == 7
    assert fake.last().json() == {
        "instances": [{"content": "a b"}, {"content": "c d e"}],
        "parameters": {"outputDimensionality": 2},
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"x-portkey-vertex-region": "us-central1.evil.com/"}, "x-portkey-vertex-region"),
        ({"x-portkey-vertex-project-id": "../../x"}, "x-portkey-vertex-project-id"),
        ({"x-portkey-vertex-service-account-json": "{not json"}, "vertex_service_account_json"),
    ],
)
def test_bad_settings_are_400s_before_anything_is_sent(
    gateway: GatewayServer, fake: FakeUpstream, extra: dict[str, str], param: str
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={**headers(fake), **extra},
        json={"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake.requests == []


def test_a_token_uri_pointing_at_cloud_metadata_is_refused(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    key = {**service_account(fake), "token_uri": "http://169.254.169.254/computeMetadata/v1/token"}
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=headers(fake, **{"x-portkey-vertex-service-account-json": json.dumps(key)}),
        json={"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400 and "metadata" in response.json()["error"]["message"]
    assert fake.requests == []


def test_gemini_on_vertex_through_the_messages_api(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        f"{ROOT}/google/models/gemini-2.0-flash:generateContent",
        Reply(body=fixture_bytes("gemini/generateContent.function-call.json")),
    )
    fake.on(
        "POST",
        f"{ROOT}/google/models/gemini-2.0-flash-exp:streamGenerateContent",
        Stream(chunks=[fixture_bytes("gemini/streamGenerateContent.text.sse.txt")]),
    )
    sdk = anthropic.Anthropic(
        api_key=TOKEN, base_url=gateway.url, max_retries=0, default_headers=headers(fake)
    )
    message = sdk.messages.create(
        model="gemini-2.0-flash", max_tokens=50, messages=[{"role": "user", "content": "Where am I?"}]
    )
    Message.model_validate(message.model_dump())
    assert message.stop_reason == "tool_use" and message.content[0].type == "tool_use"
    assert fake.last().json()["generationConfig"] == {"maxOutputTokens": 50}
    with sdk.messages.stream(
        model="gemini-2.0-flash-exp",
        max_tokens=50,
        messages=[{"role": "user", "content": "Capital of France?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "The capital of France is Paris.\n"
