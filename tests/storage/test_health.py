"""One contract for every health store: the in-process one and Redis (real, on 127.0.0.1:6379)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from crossroads.routing.breaker import HealthRecord, transition
from crossroads.routing.plan import BreakerPolicy
from crossroads.storage.health import MemoryHealth, RedisHealth
from crossroads.storage.redis import connect

REDIS_URL = "redis://127.0.0.1:6379/0"
POLICY = BreakerPolicy(
    failure_threshold=3,
    failure_percentage=60,
    minimum_requests=5,
    cooldown_s=10,
    max_cooldown_s=25,
    window_s=30,
)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryHealth | RedisHealth]:
    if request.param == "memory":
        yield MemoryHealth()
        return
    client = connect(REDIS_URL)
    yield RedisHealth(client, prefix=f"test:{uuid.uuid4().hex}:")
    await client.aclose()


SEQUENCES = [
    [True, True, True],
    [True, True, False, True, True, True, False],
    [False, True, False, True, True, False, True],
    [True] * 8,
]


@pytest.mark.parametrize("events", SEQUENCES)
async def test_store_follows_the_pure_rules(store: MemoryHealth | RedisHealth, events: list[bool]) -> None:
    expected = HealthRecord()
    now = 1_800_000_000.0
    for step, failed in enumerate(events):
        t = now + step * 4
        await store.record("t", failed, POLICY, t)
        expected = transition(expected, failed, POLICY, t)
        is_open = "t" in await store.open_among(["t", "other"], t)
        assert is_open == (expected.open_until > t), (step, expected)
    if isinstance(store, RedisHealth):
        stored = await store.read("t")
        assert (stored.consecutive, stored.trips, stored.window_requests, stored.window_failures) == (
            expected.consecutive,
            expected.trips,
            expected.window_requests,
            expected.window_failures,
        )
        assert stored.open_until == pytest.approx(expected.open_until, abs=0.001)


async def test_unknown_keys_are_closed(store: MemoryHealth | RedisHealth) -> None:
    assert await store.open_among(["nope"], 1.0) == set()


async def test_redis_down_means_no_health_not_an_error() -> None:
    client = connect("redis://127.0.0.1:1/0")
    store = RedisHealth(client)
    await store.record("t", True, POLICY, 1.0)
    assert await store.open_among(["t"], 1.0) == set()
    await client.aclose()
