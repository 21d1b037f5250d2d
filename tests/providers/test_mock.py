"""The built-in mock provider through the gateway: deterministic answers and injected failures."""

from __future__ import annotations

import base64
import json
import struct
import time

import httpx
import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crossroads.providers.mock import count_tokens, embed
from tests.support import openapi
from tests.support.gateway import GatewayServer


def mock(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="unused",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": "mock"},
    )


def test_chat_echoes_and_counts(gateway: GatewayServer) -> None:
    c = mock(gateway)
    raw = c.chat.completions.with_raw_response.create(
        model="mock-1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
    )
    body = json.loads(raw.http_response.content)
    openapi.check("CreateChatCompletionResponse", body)
    completion = ChatCompletion.model_validate(body)
    assert completion.choices[0].message.content == "Hello!"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens("Hello!") == 2
    assert completion.usage.prompt_tokens == count_tokens("Be brief. Hello!") + 6
    again = c.chat.completions.create(
        model="mock-1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
    )
    assert again.id == completion.id


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5", "anything/at-all"])
def test_any_model_name_is_answered_under_its_own_name(gateway: GatewayServer, model: str) -> None:
    completion = mock(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.model == model and completion.choices[0].message.content == "Hi"


def test_stream_with_chunk_count_and_usage(gateway: GatewayServer) -> None:
    chunks = list(
        mock(gateway).chat.completions.create(
            model="mock-1?chunks=4",
            messages=[{"role": "user", "content": "one two three four five six seven eight"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) == 4
    assert "".join(contents) == "one two three four five six seven eight"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_chunk_delay_paces_the_stream(gateway: GatewayServer) -> None:
    start = time.monotonic()
    list(
        mock(gateway).chat.completions.create(
            model="mock-1",
            messages=[{"role": "user", "content": "a b c d"}],
            stream=True,
            extra_body={"mock": {"chunk_delay_ms": 100}},
        )
    )
    assert time.monotonic() - start >= 0.4  # 4 word chunks + finish, 100 ms apart


def test_injected_status_and_retry_after(gateway: GatewayServer) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        mock(gateway).chat.completions.create(
            model="mock-1?status=429&retry_after=2", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.headers["retry-after"] == "2"
    assert "mock error: injected failure: status 429 requested" in caught.value.message
    with pytest.raises(openai.InternalServerError):
        mock(gateway).chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": "x"}], extra_body={"mock": {"status": 503}}
        )


def test_injected_mid_stream_failures(gateway: GatewayServer) -> None:
    for option in ("fail_after", "error_after"):
        stream = mock(gateway).chat.completions.create(
            model=f"mock-1?{option}=2", messages=[{"role": "user", "content": "a b c d"}], stream=True
        )
        received = []
        with pytest.raises((openai.APIError, httpx.RemoteProtocolError)):
            for chunk in stream:
                received.append(chunk)
        assert len(received) == 2


def test_injected_latency_meets_the_request_timeout(gateway: GatewayServer) -> None:
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            json={"model": "mock-1?latency_ms=1000", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-portkey-provider": "mock", "x-portkey-request-timeout": "100"},
        )
    assert resp.status_code == 408


def test_bad_mock_options_are_400(gateway: GatewayServer) -> None:
    with pytest.raises(openai.BadRequestError, match="invalid mock options"):
        mock(gateway).chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": "x"}], extra_body={"mock": {"stauts": 500}}
        )


def test_embeddings_float_and_base64_agree(gateway: GatewayServer) -> None:
    c = mock(gateway)
    via_sdk = c.embeddings.create(model="mock-embedding-1", input=["alpha", "beta"])  # SDK asks for base64
    CreateEmbeddingResponse.model_validate(via_sdk.model_dump())
    floats = c.embeddings.create(model="mock-embedding-1", input=["alpha", "beta"], encoding_format="float")
    openapi.check("CreateEmbeddingResponse", floats.model_dump(exclude_unset=True))
    assert (
        [d.embedding for d in via_sdk.data]
        == [d.embedding for d in floats.data]
        == [embed("alpha", 16), embed("beta", 16)]
    )
    assert abs(sum(v * v for v in embed("alpha", 16)) - 1) < 1e-5
    raw = c.embeddings.with_raw_response.create(model="m", input="x", dimensions=4)
    encoded = json.loads(raw.http_response.content)["data"][0]["embedding"]
    assert list(struct.unpack("<4f", base64.b64decode(encoded))) == embed("x", 4)


def test_models_images_speech_transcription(gateway: GatewayServer) -> None:
    c = mock(gateway)
    assert "mock-1" in [m.id for m in c.models.list()]
    image = c.images.generate(prompt="a cat", n=2)
    assert len(image.data or []) == 2 and (image.data or [])[0].b64_json
    audio = c.audio.speech.create(model="mock-tts-1", voice="alloy", input="hello world")
    assert audio.content.startswith(b"RIFF") and audio.content[8:12] == b"WAVE"
    text = c.audio.transcriptions.create(
        file=("clip.wav", audio.content, "audio/wav"), model="mock-whisper-1"
    )
    assert text.text == f"mock transcription of clip.wav ({len(audio.content)} bytes)"


def test_tool_choice_required_calls_the_tool(gateway: GatewayServer) -> None:
    tools: list[openai.types.chat.ChatCompletionFunctionToolParam] = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]
    completion = mock(gateway).chat.completions.create(
        model="mock-1", messages=[{"role": "user", "content": "x"}], tools=tools, tool_choice="required"
    )
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.type == "function" and call.function.name == "lookup"
    with mock(gateway).chat.completions.stream(
        model="mock-1", messages=[{"role": "user", "content": "x"}], tools=tools, tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    assert (final.choices[0].message.tool_calls or [])[0].function.name == "lookup"
