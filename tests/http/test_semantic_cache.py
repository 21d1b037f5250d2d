"""The semantic cache through the gateway: a reworded question is a SEMANTIC HIT that never
reaches the provider, a different question is not, with the local model (in process and
with vectors shared through Redis by two gateway processes) and with a provider embedder."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import GatewayProcess, GatewayServer
from tests.support.upstream import FakeUpstream, Recorded, Reply, fixture_bytes

REDIS = "redis://127.0.0.1:6379/0"
TEXT = fixture_bytes("openai/chat-completion.text.json")


def ask(gateway_url: str, fake: FakeUpstream, question: str, namespace: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": question}]},
        headers={
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"{fake.url}/v1",
            "authorization": "Bearer sk-semantic",
            "x-portkey-cache": "semantic",
            "x-portkey-cache-namespace": namespace,
            **extra,
        },
        timeout=60,
    )


@pytest.fixture(scope="module", params=["memory", "redis"])
def semantic(request: pytest.FixtureRequest) -> Iterator[GatewayServer]:
    settings: dict[str, Any] = {"cache": {"semantic": {"embedder": "local"}}}
    if request.param == "redis":
        settings["redis_url"] = REDIS
    server = GatewayServer(**settings).start()
    yield server
    server.stop()


def test_a_reworded_question_is_a_semantic_hit_and_a_different_one_is_not(
    semantic: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=TEXT))
    namespace = uuid.uuid4().hex
    first = ask(semantic.url, fake, "What is the capital of France?", namespace)
    assert first.status_code == 200 and first.headers["x-portkey-cache-status"] == "SEMANTIC MISS"
    exact = ask(semantic.url, fake, "What is the capital of France?", namespace)
    assert exact.headers["x-portkey-cache-status"] == "HIT"
    reworded = ask(semantic.url, fake, "What's the capital of France?", namespace)
    assert reworded.headers["x-portkey-cache-status"] == "SEMANTIC HIT"
    assert reworded.json() == first.json()
    assert len(fake.requests) == 1
    other = ask(semantic.url, fake, "What is the capital of Germany?", namespace)
    assert other.headers["x-portkey-cache-status"] == "SEMANTIC MISS"
    assert len(fake.requests) == 2
    elsewhere = ask(semantic.url, fake, "What's the capital of France?", uuid.uuid4().hex)
    assert elsewhere.headers["x-portkey-cache-status"] == "SEMANTIC MISS"  # another namespace, another scope
    hotter = ask(
        semantic.url,
        fake,
        "What's the capital of France?",
        namespace,
        **{"x-portkey-config": json.dumps({"override_params": {"temperature": 0.9}})},
    )
    assert hotter.headers["x-portkey-cache-status"] == "SEMANTIC MISS"  # other parameters, other scope


def test_two_gateway_processes_share_semantic_hits_through_redis(fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=TEXT))
    env = {"CROSSROADS_REDIS_URL": REDIS, "CROSSROADS_CACHE__SEMANTIC__EMBEDDER": "local"}
    one, two = GatewayProcess(env=env).start(), GatewayProcess(env=env).start()
    namespace = uuid.uuid4().hex
    try:
        assert (
            ask(one.url, fake, "Who wrote Pride and Prejudice?", namespace).headers["x-portkey-cache-status"]
            == "SEMANTIC MISS"
        )
        hit = ask(two.url, fake, "Who is the author of Pride and Prejudice?", namespace)
    finally:
        one.stop()
        two.stop()
    assert hit.headers["x-portkey-cache-status"] == "SEMANTIC HIT"
    assert len(fake.requests) == 1


VECTORS = {
    "What is the capital of France?": [1.0, 0.0, 0.0],
    "What's the capital of France?": [0.99, 0.14, 0.0],
    "What is the capital of Germany?": [0.6, 0.8, 0.0],
}


def embeddings(seen: Recorded) -> Reply:
    body = seen.json()
    vector = VECTORS[body["input"]]
    return Reply(
        body={
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "model": body["model"],
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
    )


def test_the_provider_embedder_uses_the_request_target(fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=TEXT))
    fake.on("POST", "/v1/embeddings", embeddings)
    server = GatewayServer(cache={"semantic": {"embedder": "provider", "threshold": 0.95}}).start()
    namespace = uuid.uuid4().hex
    try:
        statuses = [
            ask(server.url, fake, q, namespace).headers["x-portkey-cache-status"]
            for q in (
                "What is the capital of France?",
                "What's the capital of France?",
                "What is the capital of Germany?",
            )
        ]
    finally:
        server.stop()
    assert statuses == ["SEMANTIC MISS", "SEMANTIC HIT", "SEMANTIC MISS"]
    paths = [r.path for r in fake.requests]
    assert paths.count("/v1/chat/completions") == 2 and paths.count("/v1/embeddings") == 3
    embedding_call = next(r for r in fake.requests if r.path == "/v1/embeddings")
    assert embedding_call.headers["authorization"] == "Bearer sk-semantic"
    assert embedding_call.json()["model"] == "text-embedding-3-small"


def test_an_embedder_that_fails_leaves_the_exact_cache_working(fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=TEXT))
    fake.on("POST", "/v1/embeddings", Reply(status=500, body={"error": {"message": "down"}}))
    server = GatewayServer(cache={"semantic": {"embedder": "provider"}}).start()
    namespace = uuid.uuid4().hex
    try:
        first = ask(server.url, fake, "What is the capital of France?", namespace)
        second = ask(server.url, fake, "What is the capital of France?", namespace)
        reworded = ask(server.url, fake, "What's the capital of France?", namespace)
    finally:
        server.stop()
    assert [r.status_code for r in (first, second, reworded)] == [200, 200, 200]
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert reworded.headers["x-portkey-cache-status"] == "MISS"
