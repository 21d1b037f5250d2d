"""The answer cache end to end, in process and in the real Redis: hits that never reach the
provider, streams stored and replayed, expiry, force refresh, errors and cut-off streams
never stored, tenants never sharing, replicas sharing Redis, Redis going away."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from portkey_ai import Portkey

from tests.support.gateway import CROSSROADS, GatewayProcess, GatewayServer, free_port
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes

REDIS = "redis://127.0.0.1:6379/0"
ADMIN_KEY = "cache-admin-" + "k" * 32
TEXT = fixture_bytes("openai/chat-completion.text.json")
SSE = fixture_bytes("openai/chat-completion.stream.text-after-tool.sse.txt")
CHAT: dict[str, Any] = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module", params=["memory", "redis"])
def cached(request: pytest.FixtureRequest) -> Iterator[GatewayServer]:
    settings: dict[str, Any] = {}
    if request.param == "redis":
        settings["redis_url"] = REDIS
    server = GatewayServer(**settings).start()
    yield server
    server.stop()


def headers(fake: FakeUpstream, **extra: str) -> dict[str, str]:
    # A namespace per test keeps tests apart in the shared Redis.
    return {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{fake.url}/v1",
        "authorization": "Bearer sk-cache-test",
        "x-portkey-cache": "simple",
        "x-portkey-cache-namespace": extra.pop("namespace", uuid.uuid4().hex),
        **extra,
    }


def post(gateway: GatewayServer, head: dict[str, str], body: dict[str, Any] | None = None) -> httpx.Response:
    return gateway.client().post("/v1/chat/completions", json=body or CHAT, headers=head)


def answer(fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=TEXT))


def test_a_repeated_request_is_a_hit_that_never_reaches_the_provider(
    cached: GatewayServer, fake: FakeUpstream
) -> None:
    answer(fake)
    head = headers(fake)
    client = OpenAI(api_key="sk-cache-test", base_url=f"{cached.url}/v1", default_headers=head, max_retries=0)
    first = client.chat.completions.with_raw_response.create(**CHAT)
    second = client.chat.completions.with_raw_response.create(**CHAT)
    assert first.headers["x-portkey-cache-status"] == "MISS"
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert len(fake.requests) == 1
    assert second.parse().model_dump() == first.parse().model_dump()
    ChatCompletion.model_validate(second.parse().model_dump())


def test_equal_requests_written_differently_share_an_entry(cached: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    head = headers(fake)
    base: dict[str, Any] = {
        "model": "gpt-4.1-nano",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5,
    }
    assert post(cached, head, base).headers["x-portkey-cache-status"] == "MISS"
    same = [
        {"temperature": 0.5, "messages": [{"content": "Hi", "role": "user"}], "model": "gpt-4.1-nano"},
        {**base, "n": 1, "top_p": 1.0, "stream_options": None, "user": "someone", "presence_penalty": 0},
        {**base, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
        {**base, "temperature": 0.50},
    ]
    for body in same:
        assert post(cached, head, body).headers["x-portkey-cache-status"] == "HIT", body
    raw = cached.client().post(
        "/v1/chat/completions",
        content=b'{ "model" : "gpt-4.1-nano",\n "temperature":0.5, '
        b'"messages":[{"role":"user","content":"Hi"}]}',
        headers={**head, "content-type": "application/json"},
    )
    assert raw.headers["x-portkey-cache-status"] == "HIT"
    different = [
        {**base, "model": "gpt-4o-mini"},
        {**base, "temperature": 0.6},
        {**base, "max_tokens": 10},
        {**base, "messages": [{"role": "user", "content": "Hi!"}]},
        {**base, "messages": [{"role": "system", "content": "Be brief"}, *base["messages"]]},
    ]
    for body in different:
        assert post(cached, head, body).headers["x-portkey-cache-status"] == "MISS", body
    assert (
        post(cached, {**head, "authorization": "Bearer sk-other"}, base).headers["x-portkey-cache-status"]
        == "MISS"
    )
    assert post(cached, headers(fake), base).headers["x-portkey-cache-status"] == "MISS"  # another namespace
    assert (
        post(cached, {**head, "x-portkey-custom-host": f"{fake.url}/v1/"}, base).headers[
            "x-portkey-cache-status"
        ]
        == "HIT"
    )  # the same host, spelled with a slash


def test_a_stream_is_stored_when_complete_and_replayed(cached: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=[SSE]))
    head = headers(fake)
    client = OpenAI(api_key="x", base_url=f"{cached.url}/v1", default_headers=head, max_retries=0)

    def streamed() -> tuple[str, list[ChatCompletionChunk], str]:
        with client.chat.completions.with_streaming_response.create(**CHAT, stream=True) as resp:
            chunks = [ChatCompletionChunk.model_validate(c.model_dump()) for c in resp.parse()]
            return resp.headers["x-portkey-cache-status"], chunks, ""

    status, live, _ = streamed()
    assert status == "MISS"
    status, replayed, _ = streamed()
    assert status == "HIT"
    assert len(fake.requests) == 1

    def text(chunks: list[ChatCompletionChunk]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert text(replayed) == text(live) and text(live)
    finish = [c.choices[0].finish_reason for c in replayed if c.choices and c.choices[0].finish_reason]
    assert finish == [
        next(c.choices[0].finish_reason for c in live if c.choices and c.choices[0].finish_reason)
    ]
    # The same entry answers a plain request, as the JSON the stream carried.
    plain = post(cached, head)
    assert plain.headers["x-portkey-cache-status"] == "HIT"
    message = ChatCompletion.model_validate(plain.json()).choices[0].message
    assert message.content == text(live)


def test_messages_streams_are_stored_and_replayed_for_the_anthropic_sdk(
    cached: GatewayServer, fake: FakeUpstream
) -> None:
    recorded = fixture_bytes("anthropic/messages.stream.tool-use.sse.txt")
    fake.on(
        "POST",
        "/v1/messages",
        Stream(chunks=[recorded.split(b"event: message_stop")[0]]),
        Stream(chunks=[recorded]),
    )
    head = headers(fake, **{"x-portkey-provider": "anthropic"})
    client = anthropic.Anthropic(api_key="sk-ant", base_url=cached.url, default_headers=head, max_retries=0)
    ask: Any = {
        "model": "claude-sonnet-4",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Weather?"}],
    }

    with pytest.raises(anthropic.APIError), client.messages.stream(**ask) as stream:
        stream.get_final_message()  # cut off before message_stop: an error, and nothing stored
    with client.messages.stream(**ask) as stream:
        live = stream.get_final_message()
    assert len(fake.requests) == 2
    with client.messages.with_streaming_response.create(**ask, stream=True) as resp:
        assert resp.headers["x-portkey-cache-status"] == "HIT"
    with client.messages.stream(**ask) as stream:
        replayed = stream.get_final_message()
    assert len(fake.requests) == 2
    assert replayed.model_dump() == live.model_dump()
    assert live.content[1].type == "tool_use" and live.content[1].input == {"location": "Paris"}
    plain = client.messages.with_raw_response.create(**ask)
    assert plain.headers["x-portkey-cache-status"] == "HIT" and len(fake.requests) == 2
    assert plain.parse().model_dump() == live.model_dump()


def test_a_plain_answer_is_replayed_to_a_streaming_request_with_usage(
    cached: GatewayServer, fake: FakeUpstream
) -> None:
    answer(fake)
    head = headers(fake)
    assert post(cached, head).headers["x-portkey-cache-status"] == "MISS"
    client = OpenAI(api_key="x", base_url=f"{cached.url}/v1", default_headers=head, max_retries=0)
    stream = client.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True})
    chunks = [ChatCompletionChunk.model_validate(c.model_dump()) for c in stream]
    stored = json.loads(TEXT)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == stored["choices"][0]["message"]["content"]
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == stored["usage"]["total_tokens"]
    assert len(fake.requests) == 1


def test_errors_and_cut_off_streams_are_never_stored(cached: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(status=500, body={"error": {"message": "boom"}}),
        Reply(body=TEXT),
    )
    head = headers(fake)
    failed = post(cached, head)
    assert failed.status_code == 500 and failed.headers["x-portkey-cache-status"] == "MISS"
    assert post(cached, head).headers["x-portkey-cache-status"] == "MISS"
    assert post(cached, head).headers["x-portkey-cache-status"] == "HIT"
    assert len(fake.requests) == 2
    mock = {
        "x-portkey-provider": "mock",
        "x-portkey-cache": "simple",
        "x-portkey-cache-namespace": uuid.uuid4().hex,
    }
    broken = {
        "model": "mock-1?fail_after=2",
        "stream": True,
        "messages": [{"role": "user", "content": "a b c d e"}],
    }
    received = b""
    with (
        cached.client().stream("POST", "/v1/chat/completions", json=broken, headers=mock) as resp,
        pytest.raises(httpx.RemoteProtocolError),  # the broken stream ends without its last chunk
    ):
        for piece in resp.iter_bytes():
            received += piece
    assert b'"error"' in received and b"[DONE]" not in received
    with cached.client().stream("POST", "/v1/chat/completions", json=broken, headers=mock) as again:
        assert again.headers["x-portkey-cache-status"] == "MISS"  # nothing was stored


def test_max_age_and_force_refresh(cached: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    namespace = uuid.uuid4().hex
    config = json.dumps(
        {
            "provider": "openai",
            "custom_host": f"{fake.url}/v1",
            "api_key": "sk-config",
            "cache": {"mode": "simple", "max_age": 1},
        }
    )
    head = {"x-portkey-config": config, "x-portkey-cache-namespace": namespace}
    assert post(cached, head).headers["x-portkey-cache-status"] == "MISS"
    assert post(cached, head).headers["x-portkey-cache-status"] == "HIT"
    refreshed = post(cached, {**head, "x-portkey-cache-force-refresh": "true"})
    assert refreshed.headers["x-portkey-cache-status"] == "REFRESH"
    assert len(fake.requests) == 2
    time.sleep(1.2)
    assert post(cached, head).headers["x-portkey-cache-status"] == "MISS"


def test_the_portkey_sdk_with_a_cache_config(cached: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    client: Any = Portkey(
        base_url=f"{cached.url}/v1",
        config={"provider": "openai", "custom_host": f"{fake.url}/v1", "api_key": "sk-p", "cache": "simple"},
        cache_namespace=uuid.uuid4().hex,
    )
    client.chat.completions.create(**CHAT)
    hit = client.chat.completions.create(**CHAT)
    assert hit.get_headers()["cache-status"] == "HIT"
    assert len(fake.requests) == 1


def test_two_api_keys_never_share_an_entry(fake: FakeUpstream) -> None:
    answer(fake)
    server = GatewayServer(admin_key=ADMIN_KEY).start()
    try:
        keys = [
            server.client()
            .post(
                "/v1/api-keys/workspace/service", json={"name": n}, headers={"x-portkey-api-key": ADMIN_KEY}
            )
            .json()["key"]
            for n in ("a", "b")
        ]
        head = headers(fake, namespace="shared")
        statuses = [
            post(server, {**head, "x-portkey-api-key": k}).headers["x-portkey-cache-status"] for k in keys * 2
        ]
    finally:
        server.stop()
    assert statuses == ["MISS", "MISS", "HIT", "HIT"]
    assert len(fake.requests) == 2


def test_callers_bringing_their_own_provider_keys_through_one_gateway_key_never_share(
    fake: FakeUpstream,
) -> None:
    answer(fake)
    server = GatewayServer(admin_key=ADMIN_KEY).start()
    try:
        key = (
            server.client()
            .post(
                "/v1/api-keys/workspace/service",
                json={"name": "app"},
                headers={"x-portkey-api-key": ADMIN_KEY},
            )
            .json()["key"]
        )
        head = {**headers(fake, namespace="shared"), "x-portkey-api-key": key}
        statuses = [
            post(server, {**head, "authorization": f"Bearer sk-user-{who}"}).headers["x-portkey-cache-status"]
            for who in ("alice", "bob", "alice", "bob")
        ]
    finally:
        server.stop()
    assert statuses == ["MISS", "MISS", "HIT", "HIT"]
    sent = [r.headers["authorization"] for r in fake.requests]
    assert sent == ["Bearer sk-user-alice", "Bearer sk-user-bob"]


def test_a_cache_hit_costs_no_budget(fake: FakeUpstream) -> None:
    answer(fake)
    server = GatewayServer(admin_key=ADMIN_KEY).start()
    try:
        created = (
            server.client()
            .post(
                "/v1/api-keys/workspace/service",
                json={"name": "b", "usage_limits": {"credit_limit": 100000, "type": "tokens"}},
                headers={"x-portkey-api-key": ADMIN_KEY},
            )
            .json()
        )
        head = {**headers(fake), "x-portkey-api-key": created["key"]}
        post(server, head)

        def used() -> Any:
            return (
                server.client()
                .get(f"/v1/api-keys/{created['id']}", headers={"x-portkey-api-key": ADMIN_KEY})
                .json()["usage"]["current"]
            )

        after_miss = used()
        assert post(server, head).headers["x-portkey-cache-status"] == "HIT"
        assert used() == after_miss > 0
    finally:
        server.stop()


def test_two_gateway_processes_share_hits_through_redis(fake: FakeUpstream) -> None:
    answer(fake)
    env = {"CROSSROADS_REDIS_URL": REDIS}
    one, two = GatewayProcess(env=env).start(), GatewayProcess(env=env).start()
    try:
        head = headers(fake)
        first = httpx.post(f"{one.url}/v1/chat/completions", json=CHAT, headers=head)
        second = httpx.post(f"{two.url}/v1/chat/completions", json=CHAT, headers=head)
    finally:
        one.stop()
        two.stop()
    assert first.headers["x-portkey-cache-status"] == "MISS"
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert len(fake.requests) == 1


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_requests_succeed_while_redis_is_down_and_the_cache_returns_with_it(fake: FakeUpstream) -> None:
    answer(fake)
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False).stdout
            != b"PONG\n"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        return proc

    redis = start()
    server = GatewayServer(redis_url=f"redis://127.0.0.1:{port}/0").start()
    try:
        head = headers(fake)
        assert post(server, head).headers["x-portkey-cache-status"] == "MISS"
        assert post(server, head).headers["x-portkey-cache-status"] == "HIT"
        redis.send_signal(signal.SIGKILL)
        redis.wait()
        down = [post(server, head) for _ in range(3)]
        assert [r.status_code for r in down] == [200, 200, 200]
        assert {r.headers["x-portkey-cache-status"] for r in down} == {"MISS"}
        redis = start()  # empty: the next answer is stored again
        assert post(server, head).headers["x-portkey-cache-status"] == "MISS"
        assert post(server, head).headers["x-portkey-cache-status"] == "HIT"
        assert server.app.gateway.caching is not None
        assert server.app.gateway.caching.cache.stats.unavailable >= 3
    finally:
        server.stop()
        redis.send_signal(signal.SIGKILL)
        redis.wait()
    assert os.environ.get("CROSSROADS_REDIS_URL") is None


def test_clearing_a_namespace_or_everything(cached: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    keep, drop = headers(fake), headers(fake)
    for head in (keep, drop):
        post(cached, head)
        assert post(cached, head).headers["x-portkey-cache-status"] == "HIT"
    namespace = drop["x-portkey-cache-namespace"]
    cleared = cached.client().delete("/v1/cache", params={"namespace": namespace})
    assert cleared.status_code == 200 and cleared.json()["deleted"] == 1
    assert post(cached, drop).headers["x-portkey-cache-status"] == "MISS"
    assert post(cached, keep).headers["x-portkey-cache-status"] == "HIT"
    assert cached.client().delete("/v1/cache").json()["deleted"] >= 2
    assert post(cached, keep).headers["x-portkey-cache-status"] == "MISS"
    wrong = cached.client().post("/v1/cache")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "DELETE"


def test_clearing_needs_the_cache_clear_scope(fake: FakeUpstream) -> None:
    server = GatewayServer(admin_key=ADMIN_KEY).start()
    try:
        client = server.client()
        created = client.post(
            "/v1/api-keys/workspace/service", json={"name": "n"}, headers={"x-portkey-api-key": ADMIN_KEY}
        ).json()
        refused = client.delete("/v1/cache", headers={"x-portkey-api-key": created["key"]})
        assert refused.status_code == 403 and "cache.clear" in refused.json()["error"]["message"]
        assert client.delete("/v1/cache", headers={"x-portkey-api-key": ADMIN_KEY}).status_code == 200
    finally:
        server.stop()


def test_the_cli_clears_redis_directly_and_a_running_gateway_through_its_api(fake: FakeUpstream) -> None:
    answer(fake)
    redis_gateway = GatewayServer(redis_url=REDIS).start()
    memory = GatewayProcess(env={"CROSSROADS_ADMIN_KEY": ADMIN_KEY}).start()
    try:
        head = headers(fake)
        for url in (redis_gateway.url, memory.url):
            httpx.post(
                f"{url}/v1/chat/completions", json=CHAT, headers={**head, "x-portkey-api-key": ADMIN_KEY}
            )
        namespace = head["x-portkey-cache-namespace"]
        env = {**os.environ, "CROSSROADS_REDIS_URL": REDIS}
        out = subprocess.run(
            [str(CROSSROADS), "cache", "clear", "--namespace", namespace],
            env=env,
            capture_output=True,
            check=True,
        )
        assert json.loads(out.stdout)["deleted"] == 1
        again = post(redis_gateway, head)
        assert again.headers["x-portkey-cache-status"] == "MISS"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
        out = subprocess.run(
            [str(CROSSROADS), "cache", "clear", "--url", memory.url, "--api-key", ADMIN_KEY],
            env=env,
            capture_output=True,
            check=True,
        )
        assert json.loads(out.stdout)["deleted"] == 1
        refused = subprocess.run(
            [str(CROSSROADS), "cache", "clear", "--url", memory.url, "--api-key", "xr-wrong"],
            env=env,
            capture_output=True,
            check=False,
        )
        assert refused.returncode == 2 and b"401" in refused.stderr and b"Traceback" not in refused.stderr
    finally:
        redis_gateway.stop()
        memory.stop()
