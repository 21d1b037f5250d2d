"""GET /metrics: Prometheus text that counts what the gateway did, with bounded labels and no
secrets, behind a key with `metrics.read` (or loopback while open, or public when set), and
summed over worker processes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import GatewayProcess, GatewayServer
from tests.support.upstream import FakeUpstream, Reply, Stream, fixture_bytes

ADMIN = "admin-" + secrets.token_urlsafe(32)
MOCK = {"model": "mock-1", "messages": [{"role": "user", "content": "one two"}]}


@pytest.fixture(scope="module")
def open_gateway() -> Iterator[GatewayServer]:
    server = GatewayServer().start()
    yield server
    server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(gateway: GatewayServer | GatewayProcess, **headers: str) -> str:
    response = httpx.get(f"{gateway.url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def test_requests_attempts_cache_and_streams_are_counted(
    open_gateway: GatewayServer, fake: FakeUpstream
) -> None:
    before = scrape(open_gateway)
    client = open_gateway.client()
    secret = "sk-metrics-" + secrets.token_urlsafe(16)
    for _ in range(3):
        assert (
            client.post("/v1/chat/completions", json=MOCK, headers={"x-portkey-provider": "mock"}).status_code
            == 200
        )
    # A fallback whose first target answers 503: two tries at openai, one answer.
    fake.on("POST", "/bad/v1/chat/completions", Reply(status=503, body={"error": {"message": "down"}}))
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": secret, "custom_host": f"{fake.url}/bad/v1"},
            {"provider": "openai", "api_key": secret, "custom_host": f"{fake.url}/v1"},
        ],
        "cache": {"mode": "simple"},
    }
    head = {"x-portkey-config": json.dumps(config), "x-portkey-cache-namespace": secrets.token_hex(4)}
    assert client.post("/v1/chat/completions", json=MOCK, headers=head).status_code == 200
    assert client.post("/v1/chat/completions", json=MOCK, headers=head).status_code == 200  # a cache hit
    # An unknown provider: a 400 counted without a provider.
    assert (
        client.post("/v1/chat/completions", json=MOCK, headers={"x-portkey-provider": "nope"}).status_code
        == 400
    )
    # A stream cut off after its first bytes.
    chunks = fixture_bytes("openai/chat-completion.stream.tool-calls.sse.txt").split(b"\n\n")
    fake.on(
        "POST", "/cut/v1/chat/completions", Stream(chunks=[b"\n\n".join(chunks[:3]) + b"\n\n"], end="drop")
    )
    stream_head = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{fake.url}/cut/v1",
        "authorization": f"Bearer {secret}",
    }
    body = b""
    with (  # the broken answer ends without its last chunk
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", "/v1/chat/completions", json={**MOCK, "stream": True}, headers=stream_head
        ) as resp,
    ):
        for piece in resp.iter_bytes():
            body += piece
    assert b'"error"' in body

    after = scrape(open_gateway)
    assert secret not in after

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "crossroads_requests_total"
    assert delta(requests, endpoint="chat", provider="mock", status="200", cache="DISABLED") == 3
    assert delta(requests, endpoint="chat", provider="openai", status="200", cache="MISS") == 1
    assert delta(requests, endpoint="chat", provider="openai", status="200", cache="HIT") == 1
    assert delta(requests, endpoint="chat", provider="none", status="400", cache="DISABLED") == 1
    attempts = "crossroads_upstream_attempts_total"
    # Both requests try the failing target first (its cache entry is its own: the host is in the key).
    assert delta(attempts, provider="openai", status="503") == 2
    assert (
        delta(attempts, provider="openai", status="200") == 2
    )  # the miss's answer and the stream; not the hit
    assert delta("crossroads_streams_interrupted_total", endpoint="chat", provider="openai") == 1
    assert delta("crossroads_request_duration_seconds_count", endpoint="chat", provider="mock") == 3
    assert delta("crossroads_time_to_first_byte_seconds_count", endpoint="chat", provider="openai") == 1
    assert delta("crossroads_cache_lookups_total", result="hit") == 1
    assert value(after, "crossroads_requests_in_flight") == 1  # the scrape itself
    labels = {key for (name, pairs) in samples(after) for key, _ in pairs if name == requests}
    assert labels == {"endpoint", "provider", "status", "cache"}  # no model, key or metadata labels


def test_an_unreachable_provider_is_counted_under_its_name(open_gateway: GatewayServer) -> None:
    before = scrape(open_gateway)
    head = {"x-portkey-provider": "groq", "x-portkey-custom-host": "http://127.0.0.1:1/v1"}
    resp = open_gateway.client().post("/v1/chat/completions", json=MOCK, headers=head)
    assert resp.status_code == 502 and resp.json()["provider"] == "groq"
    after = scrape(open_gateway)
    name = "crossroads_requests_total"
    labels = {"endpoint": "chat", "status": "502", "cache": "DISABLED"}
    assert value(after, name, provider="groq", **labels) - value(before, name, provider="groq", **labels) == 1
    assert value(after, name, provider="none", **labels) == value(before, name, provider="none", **labels)


def test_who_may_scrape() -> None:
    server = GatewayServer(admin_key=ADMIN, master_key="m" * 44).start()
    try:
        admin = server.client(headers={"x-portkey-api-key": ADMIN})
        made = admin.post(
            "/v1/api-keys/workspace/service", json={"name": "app", "scopes": ["completions.write"]}
        )
        app_key = made.json()["key"]
        made = admin.post("/v1/api-keys/workspace/service", json={"name": "prom", "scopes": ["metrics.read"]})
        prom_key = made.json()["key"]
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        forbidden = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {app_key}"})
        assert forbidden.status_code == 403 and "metrics.read" in forbidden.text
        scrape(server, authorization=f"Bearer {prom_key}")
        scrape(server, **{"x-portkey-api-key": ADMIN})
    finally:
        server.stop()
    public = GatewayServer(admin_key=ADMIN, master_key="m" * 44, metrics={"public": True}).start()
    off = GatewayServer(metrics={"enabled": False}).start()
    try:
        scrape(public)
        assert httpx.get(f"{off.url}/metrics").status_code == 404
        assert (
            off.client()
            .post("/v1/chat/completions", json=MOCK, headers={"x-portkey-provider": "mock"})
            .status_code
            == 200
        )
    finally:
        public.stop()
        off.stop()


def test_two_workers_are_summed() -> None:
    gateway = GatewayProcess("--workers", "2").start()
    try:
        with httpx.Client(base_url=gateway.url) as client:  # new connections spread over the workers
            for _ in range(20):
                response = client.post(
                    "/v1/chat/completions",
                    json=MOCK,
                    headers={"x-portkey-provider": "mock", "connection": "close"},
                )
                assert response.status_code == 200
        text = scrape(gateway)
        assert (
            value(
                text,
                "crossroads_requests_total",
                endpoint="chat",
                provider="mock",
                status="200",
                cache="DISABLED",
            )
            == 20
        )
    finally:
        gateway.stop()


def test_metrics_setting_names_are_checked(tmp_path: Any) -> None:
    from crossroads.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError, match="unknown key `publik`"):
        parse_settings({"metrics": {"publik": True}})
