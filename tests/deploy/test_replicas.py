"""The compose topology as processes: two `crossroads serve` replicas sharing PostgreSQL and Redis,
behind a round-robin load balancer. What one replica learns, the other must act on: a cached
answer, a rate-limit count, a revoked key (within catalog_cache_ttl_ms, docs/deployment.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from crossroads.settings import Settings
from tests.support.balancer import UPSTREAM_HEADER, RoundRobin
from tests.support.databases import postgres_schema
from tests.support.gateway import GatewayProcess

REDIS = "redis://127.0.0.1:6379/0"
ADMIN_KEY = "admin-" + secrets.token_urlsafe(32)
MASTER = base64.b64encode(os.urandom(32)).decode()
# The documented bound on a revoked key still working on another replica: the catalog cache
# TTL (the default, as deployed) plus one catalog read that may have started before the change.
TTL_S = Settings().catalog_cache_ttl_ms / 1000
SLACK_S = 0.5


@dataclass
class Topology:
    replicas: list[GatewayProcess]
    lb: RoundRobin

    def admin(self, replica: int) -> httpx.Client:
        return httpx.Client(
            base_url=self.replicas[replica].url, headers={"x-portkey-api-key": ADMIN_KEY}, timeout=10
        )

    def new_key(self, **fields: Any) -> tuple[str, str]:
        with self.admin(0) as client:
            resp = client.post("/v1/api-keys/workspace/service", json={"name": "deploy-test", **fields})
        assert resp.status_code == 200, resp.text
        created = resp.json()
        return created["id"], created["key"]


def _wait_ready(replicas: list[GatewayProcess], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    for replica in replicas:
        assert replica.proc is not None
        while True:
            if replica.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {replica.output()}")
            try:
                if httpx.get(f"{replica.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not become ready: {replica.output()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    # A fresh schema per run, so keys (and so cache tenants and counters) are new every time.
    with postgres_schema() as database:
        env = {
            "CROSSROADS_DATABASE_URL": database,
            "CROSSROADS_REDIS_URL": REDIS,
            "CROSSROADS_REQUIRE_API_KEY": "true",
            "CROSSROADS_ADMIN_KEY": ADMIN_KEY,
            "CROSSROADS_MASTER_KEY": MASTER,
            "CROSSROADS_LOG_LEVEL": "warning",
        }
        replicas = [GatewayProcess(env=env), GatewayProcess(env=env)]
        # The first one migrates the schema; the second starts on the migrated database.
        replicas[0].start()
        replicas[1].start(wait=False)
        lb: RoundRobin | None = None
        try:
            _wait_ready(replicas)
            lb = RoundRobin([r.url for r in replicas]).start()
            yield Topology(replicas, lb)
        finally:
            if lb is not None:
                lb.stop()
            for replica in replicas:
                replica.stop()


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-1", "messages": [{"role": "user", "content": content}], **extra}


def test_an_answer_cached_by_one_replica_is_a_hit_on_the_other(topology: Topology) -> None:
    _, key = topology.new_key()
    config = json.dumps({"provider": "mock", "cache": {"mode": "simple", "max_age": 60}})
    headers = {"x-portkey-api-key": key, "x-portkey-config": config}
    body = _chat(f"cache me {uuid.uuid4()}")
    with httpx.Client(base_url=topology.lb.url, headers=headers, timeout=10) as client:
        first = client.post("/v1/chat/completions", json=body)
        second = client.post("/v1/chat/completions", json=body)
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
    assert first.status_code == second.status_code == streamed.status_code == 200, first.text
    assert first.headers[UPSTREAM_HEADER] != second.headers[UPSTREAM_HEADER]  # two replicas answered
    assert first.headers["x-portkey-cache-status"] == "MISS"
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert second.json()["choices"] == first.json()["choices"]
    # And the stored answer replays as a stream on the replica that stored it.
    assert streamed.headers[UPSTREAM_HEADER] == first.headers[UPSTREAM_HEADER]
    assert streamed.headers["x-portkey-cache-status"] == "HIT"
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_a_rate_limit_holds_exactly_across_both_replicas(topology: Topology) -> None:
    limit = 5
    _, key = topology.new_key(rate_limits=[{"type": "requests", "unit": "rpd", "value": limit}])
    headers = {"x-portkey-api-key": key, "x-portkey-provider": "mock"}
    with httpx.Client(base_url=topology.lb.url, headers=headers, timeout=10) as client:
        answers = [client.post("/v1/chat/completions", json=_chat("count me")) for _ in range(2 * limit)]
    statuses = [r.status_code for r in answers]
    # Strict alternation: were each replica counting alone, all 2 * limit would pass.
    assert [r.headers[UPSTREAM_HEADER] for r in answers[:4]] in (["0", "1", "0", "1"], ["1", "0", "1", "0"])
    assert statuses == [200] * limit + [429] * limit, statuses
    assert {r.headers[UPSTREAM_HEADER] for r in answers if r.status_code == 200} == {"0", "1"}
    assert {r.headers[UPSTREAM_HEADER] for r in answers if r.status_code == 429} == {"0", "1"}


def test_a_concurrent_burst_through_the_balancer_lets_exactly_the_limit_through(topology: Topology) -> None:
    limit, count = 10, 40
    _, key = topology.new_key(rate_limits=[{"type": "requests", "unit": "rpd", "value": limit}])
    headers = {"x-portkey-api-key": key, "x-portkey-provider": "mock"}

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(
            base_url=topology.lb.url, headers=headers, timeout=30, limits=limits
        ) as client:
            return await asyncio.gather(
                *(client.post("/v1/chat/completions", json=_chat("burst")) for _ in range(count))
            )

    answers = asyncio.run(burst())
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == limit, statuses
    assert statuses.count(429) == count - limit
    assert {r.headers[UPSTREAM_HEADER] for r in answers} == {"0", "1"}


def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_the_cache_ttl(
    topology: Topology,
) -> None:
    key_id, key = topology.new_key()
    a, b = topology.replicas

    def status(replica: GatewayProcess) -> int:
        return httpx.post(
            f"{replica.url}/v1/chat/completions",
            json=_chat("still here?"),
            headers={"x-portkey-api-key": key, "x-portkey-provider": "mock"},
            timeout=10,
        ).status_code

    assert status(b) == 200  # b now holds the key in its catalog cache
    began = time.monotonic()
    with topology.admin(0) as client:
        assert client.delete(f"/v1/api-keys/{key_id}").status_code == 200
    assert status(a) == 401  # the replica that made the change: at once
    seen = [status(b)]
    while seen[-1] != 401:
        elapsed = time.monotonic() - began
        assert elapsed <= TTL_S + SLACK_S, f"still accepted {elapsed:.2f} s after the revocation"
        time.sleep(0.05)
        seen.append(status(b))
    elapsed = time.monotonic() - began
    # b served the key from its cache for a while (the bound is not trivially 0) ...
    assert seen[0] == 200, seen
    # ... and refused it within the documented bound.
    assert elapsed <= TTL_S + SLACK_S, elapsed
    with httpx.Client(base_url=topology.lb.url, timeout=10) as client:
        through_lb = [
            client.post(
                "/v1/chat/completions",
                json=_chat("and now?"),
                headers={"x-portkey-api-key": key, "x-portkey-provider": "mock"},
            ).status_code
            for _ in range(2)
        ]
    assert through_lb == [401, 401]
