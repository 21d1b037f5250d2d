"""Routing end to end: several fake providers on loopback, driven through the portkey-ai and openai SDKs."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.support.gateway import GatewayProcess, GatewayServer
from tests.support.upstream import FakeUpstream, Hang, Reply, Stream, fixture_bytes, sse

OK = fixture_bytes("openai/chat-completion.text.json")
CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}],
}
FINISH = {**CHUNK, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
MESSAGES: Any = [{"role": "user", "content": "Hello"}]


def host(fake: FakeUpstream, name: str) -> str:
    return f"{fake.url}/{name}/v1"


def target(fake: FakeUpstream, where: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "api_key": f"sk-{where}-secret", "custom_host": host(fake, where), **extra}


def hits(fake: FakeUpstream) -> list[str]:
    return [r.path.split("/")[1] for r in fake.requests]


def error_body(status: int, message: str = "upstream trouble") -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def portkey(gateway: GatewayServer, config: dict[str, Any] | str, **kwargs: Any) -> Any:
    return Portkey(base_url=f"{gateway.url}/v1", config=config, **kwargs)


def test_fallback_through_503_timeout_and_dead_stream(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=503, body=error_body(503)))
    fake.on("POST", "/b/v1/chat/completions", Hang())
    fake.on("POST", "/c/v1/chat/completions", Stream(chunks=[], end="drop"))
    fake.on("POST", "/d/v1/chat/completions", Reply(body=OK))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            target(fake, "a"),
            target(fake, "b", request_timeout=300),
            target(fake, "c"),
            target(fake, "d"),
        ],
    }
    completion = portkey(gateway, config).chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES)
    assert completion.choices[0].message.content == json.loads(OK)["choices"][0]["message"]["content"]
    headers = completion.get_headers()
    assert headers["last-used-option-index"] == "config.targets[3]"
    assert headers["retry-attempt-count"] == "0"
    assert headers["provider"] == "openai"
    assert hits(fake) == ["a", "b", "c", "d"]
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-d-secret"
    assert fake.wait_for(lambda: fake.requests[1].cancelled)  # the timed-out attempt was abandoned


def test_streaming_falls_back_before_the_first_chunk_only(gateway: GatewayServer, fake: FakeUpstream) -> None:
    error = {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}}
    fake.on("POST", "/a/v1/chat/completions", Stream(chunks=sse([error], done=False)))  # error event first
    fake.on("POST", "/b/v1/chat/completions", Stream(chunks=[b": keep-alive\n\n"], end="drop"))  # dies first
    fake.on("POST", "/c/v1/chat/completions", Stream(chunks=sse([CHUNK, FINISH])))
    config = {"strategy": {"mode": "fallback"}, "targets": [target(fake, n) for n in "abc"]}
    client = openai.OpenAI(
        api_key="unused",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-config": json.dumps(config)},
    )
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, stream=True
    ) as resp:
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[2]"
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == "hi" and hits(fake) == ["a", "b", "c"]


def test_retries_then_fallback_with_retry_after(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/a/v1/chat/completions",
        Reply(status=429, body=error_body(429), headers={"retry-after-ms": "20"}),
    )
    fake.on("POST", "/b/v1/chat/completions", Reply(status=500, body=error_body(500)), Reply(body=OK))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [target(fake, "a", retry={"attempts": 2}), target(fake, "b", retry={"attempts": 2})],
    }
    start = time.monotonic()
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        resp = http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-portkey-config": json.dumps(config), "x-portkey-debug": "true"},
        )
    assert resp.status_code == 200
    assert hits(fake) == ["a", "a", "a", "b", "b"]
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert resp.headers["x-portkey-retry-attempt-count"] == "1"
    assert resp.headers["x-crossroads-attempts"] == (
        "config.targets[0]=429, config.targets[0]=429#1, config.targets[0]=429#2, "
        "config.targets[1]=500, config.targets[1]=200#1"
    )
    assert time.monotonic() - start < 10


def test_everything_failing_sums_up_every_attempt(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=503, body=error_body(503, "no capacity")))
    fake.on("POST", "/b/v1/chat/completions", Reply(status=429, body=error_body(429, "slow down")))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            target(fake, "a"),
            target(fake, "b", retry={"attempts": 1, "use_retry_after_header": False}),
        ],
    }
    client = openai.OpenAI(
        api_key="unused",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-config": json.dumps(config)},
    )
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)
    response = caught.value.response
    message = response.json()["error"]["message"]
    assert message.startswith("All 3 attempts failed: ")
    assert "config.targets[0] (openai): 503 openai error: no capacity" in message
    assert "config.targets[1] (openai, retry 1): 429 openai error: slow down" in message
    assert "secret" not in response.text
    assert response.headers["x-portkey-retry-attempt-count"] == "-1"
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert response.headers["x-portkey-request-id"]


def test_fallback_stops_on_unlisted_status(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=400, body=error_body(400, "bad input")))
    fake.on("POST", "/b/v1/chat/completions", Reply(body=OK))
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [429, 503]},
        "targets": [target(fake, "a"), target(fake, "b")],
    }
    with httpx.Client(base_url=gateway.url) as http:
        resp = http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-portkey-config": json.dumps(config)},
        )
    assert resp.status_code == 400 and hits(fake) == ["a"]
    assert resp.json()["error"]["message"] == "openai error: bad input"


def test_override_params_rewrite_the_body_per_target(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=503, body=error_body(503)))
    fake.on("POST", "/b/v1/chat/completions", Reply(body=OK))
    config = {
        "strategy": {"mode": "fallback"},
        "override_params": {"temperature": 0},
        "targets": [
            target(fake, "a", override_params={"model": "model-a"}),
            target(fake, "b", override_params={"model": "model-b", "max_tokens": 7}),
        ],
    }
    portkey(gateway, config).chat.completions.create(model="client-model", messages=MESSAGES, top_p=0.5)
    first, second = (r.json() for r in fake.requests)
    assert first == {"model": "model-a", "messages": MESSAGES, "top_p": 0.5, "temperature": 0}
    assert second == {
        "model": "model-b",
        "messages": MESSAGES,
        "top_p": 0.5,
        "temperature": 0,
        "max_tokens": 7,
    }


def test_conditional_routing_on_metadata_and_params(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/paid/v1/chat/completions", Reply(body=OK))
    fake.on("POST", "/free/v1/chat/completions", Reply(body=OK))
    config = {
        "strategy": {
            "mode": "conditional",
            "default": "free",
            "conditions": [
                {
                    "query": {"$or": [{"metadata.plan": "paid"}, {"params.model": {"$regex": "^premium-"}}]},
                    "then": "paid",
                },
            ],
        },
        "targets": [target(fake, "paid", name="paid"), target(fake, "free", name="free")],
    }
    portkey(gateway, config, metadata={"plan": "paid"}).chat.completions.create(model="m", messages=MESSAGES)
    portkey(gateway, config, metadata={"plan": "free"}).chat.completions.create(model="m", messages=MESSAGES)
    completion = portkey(gateway, config).chat.completions.create(model="premium-x", messages=MESSAGES)
    assert hits(fake) == ["paid", "free", "paid"]
    assert completion.get_headers()["last-used-option-index"] == "config.targets[0]"


def test_loadbalance_spreads_by_weight(gateway: GatewayServer, fake: FakeUpstream) -> None:
    for name in "abc":
        fake.on("POST", f"/{name}/v1/chat/completions", Reply(body=OK))
    config = {
        "strategy": {"mode": "loadbalance"},
        "targets": [target(fake, "a", weight=3), target(fake, "b", weight=1), target(fake, "c", weight=0)],
    }
    with httpx.Client(base_url=gateway.url) as http:
        for _ in range(200):
            http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                headers={"x-portkey-config": json.dumps(config)},
            )
    counts = {name: hits(fake).count(name) for name in "abc"}
    assert counts["c"] == 0 and 120 <= counts["a"] <= 180, counts


def test_header_provider_and_key_fill_in_for_config_targets(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(body=OK))
    config = {"retry": {"attempts": 1}, "custom_host": host(fake, "a")}
    client = Portkey(
        base_url=f"{gateway.url}/v1", config=config, provider="openai", Authorization="sk-from-header"
    )
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert fake.last().headers["authorization"] == "Bearer sk-from-header"


def test_saved_and_default_configs(fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(body=OK))
    fake.on("POST", "/b/v1/chat/completions", Reply(body=OK))
    server = GatewayServer(
        configs={
            "pc-a": target(fake, "a"),
            "pc-b": {"strategy": {"mode": "single"}, "targets": [target(fake, "b")]},
        },
        default_config="pc-b",
    ).start()
    try:
        portkey(server, "pc-a").chat.completions.create(model="m", messages=MESSAGES)
        openai.OpenAI(api_key="x", base_url=f"{server.url}/v1", max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES
        )
        with pytest.raises(Exception, match="no saved config has the slug or id 'pc-missing'"):
            portkey(server, "pc-missing").chat.completions.create(model="m", messages=MESSAGES)
    finally:
        server.stop()
    assert hits(fake) == ["a", "b"]


def test_invalid_config_is_a_400_that_says_where(gateway: GatewayServer) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"provider": "openai"}, {"provider": "groq", "retry": {"atempts": 2}}],
    }
    with httpx.Client(base_url=gateway.url) as http:
        resp = http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-portkey-config": json.dumps(config)},
        )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "invalid_config" and error["param"] == "x-portkey-config"
    assert "unknown key `atempts` at `targets[1].retry`" in error["message"]


def test_circuit_breaker_skips_a_failing_target(fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=503, body=error_body(503)))
    fake.on("POST", "/b/v1/chat/completions", Reply(body=OK))
    server = GatewayServer(circuit_breaker={"failure_threshold": 3, "cooldown_ms": 60000}).start()
    config = json.dumps({"strategy": {"mode": "fallback"}, "targets": [target(fake, "a"), target(fake, "b")]})
    try:
        with httpx.Client(base_url=server.url) as http:
            for _ in range(6):
                resp = http.post(
                    "/v1/chat/completions",
                    json={"model": "m", "messages": MESSAGES},
                    headers={"x-portkey-config": config},
                )
                assert resp.status_code == 200
    finally:
        server.stop()
    assert hits(fake) == ["a", "b", "a", "b", "a", "b", "b", "b", "b"]


def test_breaker_state_is_shared_by_two_gateways_through_redis(fake: FakeUpstream) -> None:
    fake.on("POST", "/a/v1/chat/completions", Reply(status=503, body=error_body(503)))
    fake.on("POST", "/b/v1/chat/completions", Reply(body=OK))
    unique = uuid.uuid4().hex  # a fresh key, so a fresh health record in the shared Redis
    config = json.dumps(
        {
            "strategy": {"mode": "fallback", "cb_config": {"failure_threshold": 2}},
            "targets": [target(fake, "a", api_key=f"sk-{unique}"), target(fake, "b")],
        }
    )
    env = {"CROSSROADS_REDIS_URL": "redis://127.0.0.1:6379/0", "CROSSROADS_LOG_LEVEL": "warning"}
    first, second = GatewayProcess(env=env), GatewayProcess(env=env)
    try:
        first.start()
        second.start()
        for gateway in (first, first):
            resp = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                headers={"x-portkey-config": config},
                timeout=10,
            )
            assert resp.status_code == 200
        assert hits(fake) == ["a", "b", "a", "b"]
        resp = httpx.post(
            f"{second.url}/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-portkey-config": config},
            timeout=10,
        )
        assert resp.status_code == 200
        assert hits(fake) == ["a", "b", "a", "b", "b"], "the second gateway did not see the open circuit"
    finally:
        first.stop()
        second.stop()
