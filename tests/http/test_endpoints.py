"""The other unified routes and the proxy route, through the openai SDK where it has a call."""

from __future__ import annotations

import base64
import io
import struct
import wave

import openai
import pytest
from openai.types import CreateEmbeddingResponse, ImagesResponse, ModerationCreateResponse
from openai.types.audio import Transcription, TranscriptionVerbose

from tests.support import openapi
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes, fixture_json

KEY = "sk-endpoint-test-key"


def client(gateway: GatewayServer, fake: FakeUpstream, provider: str = "openai") -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY,
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": provider, "x-portkey-custom-host": f"{fake.url}/v1"},
    )


def test_embeddings_with_sdk_default_base64(gateway: GatewayServer, fake: FakeUpstream) -> None:
    vector = [0.25, -0.5, 0.125]
    encoded = base64.b64encode(struct.pack("<3f", *vector)).decode()
    answer = fixture_json("openai/embeddings.json")
    answer["data"] = [{"object": "embedding", "index": 0, "embedding": encoded}]
    fake.on("POST", "/v1/embeddings", Reply(body=answer))
    result = client(gateway, fake).embeddings.create(model="text-embedding-3-small", input="hello")
    CreateEmbeddingResponse.model_validate(result.model_dump())
    assert result.data[0].embedding == vector
    assert fake.last().json()["encoding_format"] == "base64"  # the SDK's default reached the provider


def test_embeddings_float_fixture_validates(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/embeddings", Reply(body=fixture_bytes("openai/embeddings.json")))
    with gateway.client() as http:
        resp = http.post(
            "/v1/embeddings",
            json={"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"},
            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"},
        )
    assert resp.status_code == 200
    openapi.check("CreateEmbeddingResponse", resp.json())


def test_image_generation(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/images/generations", Reply(body=fixture_bytes("openai/images.generations.b64.json")))
    result = client(gateway, fake).images.generate(prompt="a lighthouse", model="gpt-image-1")
    ImagesResponse.model_validate(result.model_dump())
    openapi.check("ImagesResponse", fixture_json("openai/images.generations.b64.json"))
    assert result.data and result.data[0].b64_json
    assert fake.last().json() == {"prompt": "a lighthouse", "model": "gpt-image-1"}


def test_image_edit_multipart_passes_through(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/images/edits", Reply(body=fixture_bytes("openai/images.generations.b64.json")))
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    result = client(gateway, fake).images.edit(
        image=("in.png", png, "image/png"), prompt="add a boat", model="gpt-image-1"
    )
    assert result.data
    seen = fake.last()
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert png in seen.body and b"add a boat" in seen.body


def test_speech_binary_is_streamed_back(gateway: GatewayServer, fake: FakeUpstream) -> None:
    audio = bytes(range(256)) * 400
    fake.on(
        "POST",
        "/v1/audio/speech",
        Stream(chunks=[audio[i : i + 8192] for i in range(0, len(audio), 8192)], content_type="audio/mpeg"),
    )
    result = client(gateway, fake).audio.speech.create(model="tts-1", voice="alloy", input="Hello there")
    assert result.content == audio
    assert result.response.headers["content-type"] == "audio/mpeg"
    assert fake.last().json() == {"input": "Hello there", "model": "tts-1", "voice": "alloy"}


def test_transcription_multipart(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/audio/transcriptions",
        Reply(body=fixture_bytes("openai/audio.transcriptions.verbose.json")),
    )
    wav = io.BytesIO()
    with wave.open(wav, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 800)
    result = client(gateway, fake).audio.transcriptions.create(
        file=("speech.wav", wav.getvalue(), "audio/wav"),
        model="whisper-1",
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    TranscriptionVerbose.model_validate(result.model_dump())
    assert result.text.startswith("Galileo")
    body = fake.last().body
    assert b'name="timestamp_granularities[]"' in body and wav.getvalue() in body


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK deprecates response_format="text"
def test_translation_text_format(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST", "/v1/audio/translations", Reply(body=b"Hello world", content_type="text/plain; charset=utf-8")
    )
    result = client(gateway, fake).audio.translations.create(
        file=("a.wav", b"RIFF....", "audio/wav"), model="whisper-1", response_format="text"
    )
    assert "Hello world" in str(result)


def test_moderations(
    gateway: GatewayServer,
    fake: FakeUpstream,
) -> None:
    body = {
        "id": "modr-1",
        "model": "omni-moderation-latest",
        "results": [{"flagged": False, "categories": {}, "category_scores": {}}],
    }
    fake.on("POST", "/v1/moderations", Reply(body=body))
    result = client(gateway, fake).moderations.create(input="hello")
    assert result.id == "modr-1" and fake.last().json() == {"input": "hello"}


def test_models_list(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "GET",
        "/v1/models",
        Reply(
            body={
                "object": "list",
                "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}],
            }
        ),
    )
    models = client(gateway, fake).models.list()
    assert [m.id for m in models] == ["gpt-4o"]
    assert fake.last().headers["authorization"] == f"Bearer {KEY}"


def test_proxy_route_forwards_any_v1_path(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/rerank", Reply(body={"results": [{"index": 0, "relevance_score": 0.9}]}))
    fake.on("GET", "/v1/files/file-1", Reply(body={"id": "file-1", "object": "file"}))
    fake.on("DELETE", "/v1/files/file-1", Reply(body={"id": "file-1", "deleted": True}))
    fake.on("GET", "/v1/chat/completions", Reply(body={"object": "list", "data": []}))
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{fake.url}/v1",
        "authorization": f"Bearer {KEY}",
        "x-portkey-metadata": '{"team": "a"}',
        "x-custom": "kept",
    }
    with gateway.client() as http:
        resp = http.post(
            "/v1/rerank?top_n=3",
            content=b'{"query":"q","documents":["a"]}',
            headers={**headers, "content-type": "application/json"},
        )
        assert resp.status_code == 200 and resp.json()["results"][0]["index"] == 0
        seen = fake.last()
        assert seen.query == "top_n=3" and seen.body == b'{"query":"q","documents":["a"]}'
        assert seen.headers["authorization"] == f"Bearer {KEY}" and seen.headers["x-custom"] == "kept"
        assert not [h for h in seen.headers if h.startswith("x-portkey")]
        assert http.get("/v1/files/file-1", headers=headers).json()["object"] == "file"
        assert http.delete("/v1/files/file-1", headers=headers).json()["deleted"] is True
        assert http.get("/v1/chat/completions", headers=headers).json()["object"] == "list"


def test_proxy_route_keeps_upstream_error_status(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "GET",
        "/v1/files/missing",
        Reply(
            status=404,
            body={
                "error": {
                    "message": "No such File object: missing",
                    "type": "invalid_request_error",
                    "param": "id",
                    "code": None,
                }
            },
        ),
    )
    with gateway.client() as http:
        resp = http.get(
            "/v1/files/missing",
            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"},
        )
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "openai error: No such File object: missing"
    assert resp.json()["error"]["param"] == "id"


def test_unprefixed_paths_work_for_unified_routes(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    c = openai.OpenAI(
        api_key=KEY,
        base_url=gateway.url,
        max_retries=0,
        default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"},
    )
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices


def test_transcription_json_is_valid(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/audio/transcriptions",
        Reply(body={"text": "hi", "usage": {"type": "duration", "seconds": 1}}),
    )
    result = client(gateway, fake).audio.transcriptions.create(
        file=("a.wav", b"RIFF", "audio/wav"), model="whisper-1"
    )
    Transcription.model_validate(result.model_dump())
    openapi.check("CreateTranscriptionResponseJson", result.model_dump(exclude_unset=True))


def test_moderation_shape_from_mock_validates(gateway: GatewayServer) -> None:
    c = openai.OpenAI(
        api_key="x",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": "mock"},
    )
    result = c.moderations.create(input=["a", "b"])
    ModerationCreateResponse.model_validate(result.model_dump())
    openapi.check("CreateModerationResponse", result.model_dump(exclude_unset=True))
