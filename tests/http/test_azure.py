"""Azure OpenAI end to end: the openai SDK against the gateway, a fake Azure resource on
loopback that checks the URL layout, the api-version and the api-key header."""

from __future__ import annotations

import json

import httpx
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes, jsonl_as_sse

KEY = "azure-resource-key-0123456789"
CHAT_PATH = "/openai/deployments/gpt4o-prod/chat/completions"


def azure_headers(fake: FakeUpstream, **extra: str) -> dict[str, str]:
    return {
        "x-portkey-provider": "azure-openai",
        "x-portkey-custom-host": f"{fake.url}/openai",
        "x-portkey-azure-deployment-id": "gpt4o-prod",
        "x-portkey-azure-api-version": "2024-10-21",
        **extra,
    }


def client(gateway: GatewayServer, headers: dict[str, str], key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gateway.url}/v1", max_retries=0, default_headers=headers)


def test_chat_reaches_the_deployment_with_the_api_key(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", CHAT_PATH, Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    raw = client(gateway, azure_headers(fake)).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}]
    )
    body = json.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)
    openapi.check("CreateChatCompletionResponse", body)
    assert raw.http_response.headers["x-portkey-provider"] == "azure-openai"
    seen = fake.last()
    assert seen.path == CHAT_PATH and seen.query == "api-version=2024-10-21"
    assert seen.headers["api-key"] == KEY and "authorization" not in seen.headers
    assert seen.json()["messages"] == [{"role": "user", "content": "Hello"}]


def test_stream_with_content_filter_annotations(gateway: GatewayServer, fake: FakeUpstream) -> None:
    chunks = jsonl_as_sse("azure/chat-completion.stream.content-filter.chunks.jsonl")
    fake.on("POST", CHAT_PATH, Stream(chunks=chunks))
    stream = client(gateway, azure_headers(fake)).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Capital of Denmark?"}], stream=True
    )
    parts = [ChatCompletionChunk.model_validate(chunk.model_dump()) for chunk in stream]
    # Azure's preamble (no id, no object, only prompt_filter_results) is not relayed.
    assert all(part.object == "chat.completion.chunk" and part.id for part in parts)
    text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    assert text.startswith("Capital of Denmark")
    assert [p.choices[0].finish_reason for p in parts if p.choices][-1] == "stop"


def test_the_deployment_defaults_to_the_model_and_the_config_names_work(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on(
        "POST", "/openai/deployments/my-emb/embeddings", Reply(body=fixture_bytes("openai/embeddings.json"))
    )
    config = {
        "provider": "azure-openai",
        "api_key": KEY,
        "custom_host": f"{fake.url}/openai",
        "api_version": "2025-04-01-preview",
    }
    result = client(gateway, {"x-portkey-config": json.dumps(config)}, key="unused").embeddings.create(
        model="my-emb", input="hello", encoding_format="float"
    )
    assert len(result.data[0].embedding) > 0
    seen = fake.last()
    assert seen.query == "api-version=2025-04-01-preview" and seen.headers["api-key"] == KEY


def test_entra_token_and_v1_api(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST", "/openai/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json"))
    )
    headers = azure_headers(
        fake, **{"x-portkey-azure-api-version": "v1", "x-portkey-azure-ad-token": "eyJ.entra"}
    )
    client(gateway, headers, key="unused").chat.completions.create(
        model="gpt4o-prod", messages=[{"role": "user", "content": "Hello"}]
    )
    seen = fake.last()
    assert (
        seen.query == ""
        and seen.headers["authorization"] == "Bearer eyJ.entra"
        and "api-key" not in seen.headers
    )


def test_azure_errors_keep_their_code_and_never_echo_the_key(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    filtered = {
        "error": {
            "message": f"The response was filtered (key {KEY}).",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
        }
    }
    fake.on("POST", CHAT_PATH, Reply(status=400, body=filtered))
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={**azure_headers(fake), "authorization": f"Bearer {KEY}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter" and KEY not in response.text


def test_a_resource_name_that_is_not_one_is_refused_before_anything_is_sent(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={
            "x-portkey-provider": "azure-openai",
            "x-portkey-azure-resource-name": "127.0.0.1:9/x#",
            "authorization": f"Bearer {KEY}",
        },
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-portkey-azure-resource-name"
    assert fake.requests == []
